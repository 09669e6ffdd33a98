//! Append and read throughput of weir-stream, with the disk's own fsync ceiling measured alongside.
//!
//! Run with `cargo bench -p weir-stream --bench throughput`. `WEIR_BENCH_SECONDS` (default 3) is
//! how long each measurement runs and `WEIR_BENCH_RUNS` (default 3) how many times it is repeated;
//! every cell is the median (min–max) over the runs. The report on stdout is Markdown ready to
//! paste into BENCHMARKS.md; progress goes to stderr. Everything is written under Cargo's
//! `target/tmp` (`CARGO_TARGET_TMPDIR`), i.e. on the same disk as the repository.
//!
//! # What is measured
//! 1. **Appends.** 200-byte records with 8-character partition keys, in batches of 1, 50 and 500,
//!    from 1 and 16 concurrent appenders (tokio tasks, each awaiting its append before sending the
//!    next), into a fresh 4-shard stream per run with the default `SyncPolicy::Always`: a batch is
//!    acknowledged only after an fsync that covers it. Reported: records/s, MB/s of record data
//!    (10^6 bytes of `data`, keys and framing not counted), and the group-commit factor
//!    `batches_appended / groups_written`: how many batches shared one write and one fsync.
//! 2. **The ceiling.** Right after each stream run, the same process appends to a plain file in the
//!    same directory with one `pwrite` + `fdatasync` per write, each write as large as that run's
//!    average group (`bytes_appended / groups_written`). Its bytes/s, divided by the stream's
//!    on-disk bytes per record, is the ceiling in records/s.
//! 3. **Reads.** A 1-shard stream of 1,000,000 records (filled in batches of 500) is drained from
//!    `TrimHorizon` with GetRecords' limits (10,000 records or 10 MiB per read), over and over for
//!    the measurement time, after one untimed drain: the data comes from memory (the segment's tail
//!    and the read-back cache of `weir_stream::direct`, or the page cache where there is no direct I/O).
//!
//! # Why the ceiling is fair
//! What a group costs the stream durably is one write of its frames at the end of a growing file
//! and one `fdatasync`. The ceiling does exactly that, at the same size, on the same disk, in the
//! same run, minus everything the stream adds (routing, encoding, checksums, channels, waking
//! appenders, rolling to a new segment every 128 MiB), so `stream / ceiling` is the share of the
//! disk's fsync-bound rate the stream keeps. Building each batch (cloning a prepared `Vec`) counts
//! against the stream, as it would for any client.
//!
//! Because the ceiling uses the stream's *achieved* group size, it neither credits nor penalises how
//! well appends are grouped: the group-commit factor and the "16 appenders vs 1" target show that.
//! Each run pairs a stream measurement with its own ceiling, so a disk whose speed drifts (a
//! virtual disk, a busy machine) moves both; a share above 100% means it drifted within the pair.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::runtime::Runtime;
use weir_stream::{PutRecord, ReadLimits, ShardId, ShardIteratorType, Stream, StreamConfig, StreamStats, SyncPolicy};

const RECORD_BYTES: usize = 200;
const APPEND_SHARDS: u32 = 4;
const APPENDERS: [usize; 2] = [1, 16];
const BATCH_SIZES: [usize; 3] = [1, 50, 500];
const READ_RECORDS: u64 = 1_000_000;
const READ_FILL_BATCH: usize = 500;
const READ_LIMITS: ReadLimits = ReadLimits {
    max_records: 10_000,
    max_bytes: 10 << 20,
};

/// Batched appends (batch > 1) should reach this share of the ceiling.
const TARGET_SHARE_OF_CEILING: f64 = 0.70;
/// 16 single-record appenders should reach this multiple of one single-record appender.
const TARGET_CONCURRENT_SPEEDUP: f64 = 10.0;
const TARGET_READ_RECORDS_PER_SEC: f64 = 1_000_000.0;

fn main() {
    // `cargo bench` passes `--bench`; test runners that list or run every target (cargo test
    // --all-targets, nextest) must not start a minutes-long benchmark in a debug build.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let settings = Settings::from_env();
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("create a temp dir under target/tmp");
    let runtime = Runtime::new().expect("start the tokio runtime");
    let appends: Vec<CaseResult> = APPENDERS
        .iter()
        .flat_map(|&appenders| BATCH_SIZES.map(|batch| Case { appenders, batch }))
        .map(|case| CaseResult {
            case,
            samples: measure_appends(&runtime, scratch.path(), case, &settings),
        })
        .collect();
    let reads = measure_reads(&runtime, scratch.path(), &settings);
    print_report(&settings, scratch.path(), &appends, &reads);
}

/// How long each measurement runs and how many times, from the environment.
struct Settings {
    seconds: f64,
    runs: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let seconds: f64 = env_or("WEIR_BENCH_SECONDS", 3.0);
        let runs: usize = env_or("WEIR_BENCH_RUNS", 3);
        assert!(
            seconds.is_finite() && seconds > 0.0,
            "WEIR_BENCH_SECONDS must be positive"
        );
        assert!(runs > 0, "WEIR_BENCH_RUNS must be at least 1");
        Settings { seconds, runs }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// The command that reproduces this run.
    fn command(&self) -> String {
        format!(
            "WEIR_BENCH_SECONDS={} WEIR_BENCH_RUNS={} cargo bench -p weir-stream --bench throughput",
            self.seconds, self.runs
        )
    }
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a valid number")),
        Err(_) => default,
    }
}

/// `count` records of `RECORD_BYTES` bytes, with keys unique to `appender` (spread over the shards).
fn batch(appender: usize, count: usize) -> Vec<PutRecord> {
    (0..count)
        .map(|i| PutRecord::new(format!("a{appender:02}-{i:04}"), vec![b'x'; RECORD_BYTES]))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Appends and their ceiling

/// One append configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Case {
    appenders: usize,
    batch: usize,
}

/// What one stream run did, from the stream's own counters.
struct StreamRun {
    elapsed: Duration,
    stats: StreamStats,
}

impl StreamRun {
    fn bytes_per_group(&self) -> u64 {
        (self.stats.bytes_appended / self.stats.groups_written).max(1)
    }
}

/// One raw-file run: `bytes` written as back-to-back pwrite + fdatasync pairs.
struct CeilingRun {
    bytes: u64,
    elapsed: Duration,
}

/// One run of one configuration: the stream, then the plain file at the stream's group size.
struct AppendSample {
    records_per_sec: f64,
    data_mb_per_sec: f64,
    group_factor: f64,
    bytes_per_fsync: f64,
    ceiling_records_per_sec: f64,
}

impl AppendSample {
    fn new(stream: &StreamRun, ceiling: &CeilingRun) -> AppendSample {
        let stats = &stream.stats;
        let secs = stream.elapsed.as_secs_f64();
        let records = stats.records_appended as f64;
        let disk_bytes_per_record = stats.bytes_appended as f64 / records;
        AppendSample {
            records_per_sec: records / secs,
            data_mb_per_sec: records * RECORD_BYTES as f64 / secs / 1e6,
            group_factor: stats.batches_appended as f64 / stats.groups_written as f64,
            bytes_per_fsync: stream.bytes_per_group() as f64,
            ceiling_records_per_sec: ceiling.bytes as f64 / ceiling.elapsed.as_secs_f64() / disk_bytes_per_record,
        }
    }

    fn share_of_ceiling(&self) -> f64 {
        self.records_per_sec / self.ceiling_records_per_sec
    }
}

/// All runs of one configuration.
struct CaseResult {
    case: Case,
    samples: Vec<AppendSample>,
}

impl CaseResult {
    fn summary(&self, quantity: impl Fn(&AppendSample) -> f64) -> Summary {
        summarize(self.samples.iter().map(quantity))
    }
}

fn measure_appends(runtime: &Runtime, scratch: &Path, case: Case, settings: &Settings) -> Vec<AppendSample> {
    (1..=settings.runs)
        .map(|run| {
            let dir = tempfile::tempdir_in(scratch).expect("create a run directory");
            let stream = time_stream_appends(runtime, dir.path(), case, settings.duration());
            let ceiling = time_raw_writes(dir.path(), stream.bytes_per_group(), settings.duration());
            let sample = AppendSample::new(&stream, &ceiling);
            eprintln!(
                "appends, {} appender(s) × batch {}, run {run}/{}: {:.0} records/s, {:.1} batches/fsync, {:.0}% of ceiling",
                case.appenders,
                case.batch,
                settings.runs,
                sample.records_per_sec,
                sample.group_factor,
                100.0 * sample.share_of_ceiling()
            );
            sample
        })
        .collect()
}

/// Appends to a fresh stream in `dir` for `duration`, then closes it.
fn time_stream_appends(runtime: &Runtime, dir: &Path, case: Case, duration: Duration) -> StreamRun {
    let config = StreamConfig {
        shard_count: APPEND_SHARDS,
        ..StreamConfig::default()
    };
    let stream = Stream::open(dir, "bench", config).expect("open the append stream");
    let elapsed = runtime.block_on(append_for(&stream, case, duration));
    // Every acknowledged group is already counted: the writer counts before it replies.
    let stats = stream.stats();
    assert_eq!(stats.append_failures, 0, "appends failed during the run");
    assert!(stats.groups_written > 0, "the run wrote nothing");
    StreamRun { elapsed, stats }
}

/// Runs `case.appenders` tasks that append `case.batch`-record batches back to back until
/// `duration` has passed; returns when the last acknowledgement arrived.
async fn append_for(stream: &Stream, case: Case, duration: Duration) -> Duration {
    let start = Instant::now();
    let appenders: Vec<_> = (0..case.appenders)
        .map(|appender| {
            let stream = stream.clone();
            let records = batch(appender, case.batch);
            tokio::spawn(async move {
                while start.elapsed() < duration {
                    stream.append(records.clone()).await.expect("append");
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.await.expect("appender task");
    }
    start.elapsed()
}

/// Appends `write_bytes`-byte writes to a new plain file in `dir`, each followed by an
/// `fdatasync`, for `duration`: the stream's fsync pattern with nothing else.
fn time_raw_writes(dir: &Path, write_bytes: u64, duration: Duration) -> CeilingRun {
    use std::os::unix::fs::FileExt;

    let path = dir.join("ceiling.raw");
    let file = std::fs::File::create_new(&path).expect("create the ceiling file");
    let buf = vec![0x5a; usize::try_from(write_bytes).expect("group size fits in memory")];
    let mut bytes = 0;
    let start = Instant::now();
    while start.elapsed() < duration {
        file.write_all_at(&buf, bytes).expect("pwrite the ceiling file");
        file.sync_data().expect("fdatasync the ceiling file");
        bytes += write_bytes;
    }
    let elapsed = start.elapsed();
    std::fs::remove_file(&path).expect("remove the ceiling file");
    CeilingRun { bytes, elapsed }
}

// ---------------------------------------------------------------------------------------------
// Reads

/// One timed read run.
struct ReadSample {
    records_per_sec: f64,
    data_mb_per_sec: f64,
}

/// Records and data bytes read.
#[derive(Debug, Default, Clone, Copy)]
struct Drained {
    records: u64,
    data_bytes: u64,
}

fn measure_reads(runtime: &Runtime, scratch: &Path, settings: &Settings) -> Vec<ReadSample> {
    let dir = tempfile::tempdir_in(scratch).expect("create the read directory");
    let stream = filled_read_stream(runtime, dir.path());
    let warm_up = drain(&stream);
    assert_eq!(
        warm_up.records, READ_RECORDS,
        "the read stream holds every filled record"
    );
    (1..=settings.runs)
        .map(|run| {
            let sample = time_drains(&stream, settings.duration());
            eprintln!(
                "reads run {run}/{}: {:.0} records/s",
                settings.runs, sample.records_per_sec
            );
            sample
        })
        .collect()
}

/// A 1-shard stream holding `READ_RECORDS` records. It is filled under the interval sync policy
/// to keep setup short, then fsynced: readers only see fsynced records.
fn filled_read_stream(runtime: &Runtime, dir: &Path) -> Stream {
    let config = StreamConfig {
        shard_count: 1,
        sync: SyncPolicy::Interval(Duration::from_secs(1)),
        ..StreamConfig::default()
    };
    let stream = Stream::open(dir, "bench", config).expect("open the read stream");
    runtime.block_on(async {
        let records = batch(0, READ_FILL_BATCH);
        for _ in 0..READ_RECORDS / READ_FILL_BATCH as u64 {
            stream.append(records.clone()).await.expect("fill the read stream");
        }
        stream.sync().await.expect("fsync the read stream");
    });
    stream
}

/// Drains the whole stream at least once, and again until `duration` has passed.
fn time_drains(stream: &Stream, duration: Duration) -> ReadSample {
    let start = Instant::now();
    let mut total = Drained::default();
    while total.records == 0 || start.elapsed() < duration {
        let drained = drain(stream);
        total.records += drained.records;
        total.data_bytes += drained.data_bytes;
    }
    let secs = start.elapsed().as_secs_f64();
    ReadSample {
        records_per_sec: total.records as f64 / secs,
        data_mb_per_sec: total.data_bytes as f64 / secs / 1e6,
    }
}

/// Reads shard 0 from its trim horizon to its tip.
fn drain(stream: &Stream) -> Drained {
    let mut iterator = stream
        .iterator(ShardId(0), ShardIteratorType::TrimHorizon)
        .expect("iterator at the trim horizon");
    let mut drained = Drained::default();
    loop {
        let batch = stream.read(&iterator, READ_LIMITS).expect("read");
        if batch.records.is_empty() {
            return drained;
        }
        drained.records += batch.records.len() as u64;
        drained.data_bytes += batch.records.iter().map(|r| r.data.len() as u64).sum::<u64>();
        iterator = batch.next_iterator;
    }
}

// ---------------------------------------------------------------------------------------------
// Report

/// The median and range of one quantity over the runs.
#[derive(Debug, Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

fn summarize(values: impl Iterator<Item = f64>) -> Summary {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    Summary {
        median,
        min: *sorted.first().expect("at least one run"),
        max: *sorted.last().expect("at least one run"),
    }
}

impl Summary {
    /// `median (min–max)`, or just the value when every run agrees (e.g. a single run).
    fn show(&self, format: impl Fn(f64) -> String) -> String {
        let (median, min, max) = (format(self.median), format(self.min), format(self.max));
        if min == max {
            median
        } else {
            format!("{median} ({min}–{max})")
        }
    }
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn one_decimal(value: f64) -> String {
    format!("{value:.1}")
}

fn percent(share: f64) -> String {
    format!("{:.0}%", 100.0 * share)
}

fn verdict(met: bool) -> &'static str {
    if met { "✅" } else { "❌" }
}

fn print_report(settings: &Settings, scratch: &Path, appends: &[CaseResult], reads: &[ReadSample]) {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("### weir-stream throughput, {}", utc_date());
    println!();
    println!("- Command: `{}`", settings.command());
    println!("- Machine: nproc = {nproc}; data under `{}`", scratch.display());
    println!(
        "- Each cell: median (min–max) of {} run(s) of {} s. MB = 10^6 bytes of record data.",
        settings.runs, settings.seconds
    );
    println!();
    print_append_table(appends);
    println!();
    print_read_table(reads);
}

fn print_append_table(results: &[CaseResult]) {
    let single = Case { appenders: 1, batch: 1 };
    let single_rate = results
        .iter()
        .find(|r| r.case == single)
        .expect("the single-appender case ran")
        .summary(|s| s.records_per_sec)
        .median;
    println!(
        "Appends: {RECORD_BYTES}-byte records, {APPEND_SHARDS} shards, `SyncPolicy::Always` (acknowledged after fsync). \
         Ceiling: pwrite + fdatasync of a plain file, at the stream's bytes per fsync."
    );
    println!();
    println!(
        "| Appenders | Batch | Records/s | Data MB/s | Batches per fsync | Bytes per fsync | Ceiling records/s | Stream / ceiling | Target |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for result in results {
        let Case { appenders, batch } = result.case;
        println!(
            "| {appenders} | {batch} | {} | {} | {} | {} | {} | {} | {} |",
            result.summary(|s| s.records_per_sec).show(thousands),
            result.summary(|s| s.data_mb_per_sec).show(one_decimal),
            result.summary(|s| s.group_factor).show(one_decimal),
            result.summary(|s| s.bytes_per_fsync).show(thousands),
            result.summary(|s| s.ceiling_records_per_sec).show(thousands),
            result.summary(AppendSample::share_of_ceiling).show(percent),
            append_target(result, single_rate),
        );
    }
}

/// The target a row is held to, and whether its median meets it.
fn append_target(result: &CaseResult, single_appender_rate: f64) -> String {
    let Case { appenders, batch } = result.case;
    if batch > 1 {
        let share = result.summary(AppendSample::share_of_ceiling).median;
        let met = share >= TARGET_SHARE_OF_CEILING;
        format!("≥ {} of ceiling {}", percent(TARGET_SHARE_OF_CEILING), verdict(met))
    } else if appenders > 1 {
        let speedup = result.summary(|s| s.records_per_sec).median / single_appender_rate;
        let met = speedup >= TARGET_CONCURRENT_SPEEDUP;
        format!(
            "≥ {TARGET_CONCURRENT_SPEEDUP:.0}× 1 appender: {speedup:.1}× {}",
            verdict(met)
        )
    } else {
        "—".to_owned()
    }
}

fn print_read_table(samples: &[ReadSample]) {
    let records_per_sec = summarize(samples.iter().map(|s| s.records_per_sec));
    let data_mb_per_sec = summarize(samples.iter().map(|s| s.data_mb_per_sec));
    let met = records_per_sec.median >= TARGET_READ_RECORDS_PER_SEC;
    println!("| Read (from memory) | Records/s | Data MB/s | Target |");
    println!("|---|---:|---:|---|");
    println!(
        "| 1 shard of {} records, {} records per read | {} | {} | ≥ {} records/s {} |",
        thousands(READ_RECORDS as f64),
        thousands(READ_LIMITS.max_records as f64),
        records_per_sec.show(thousands),
        data_mb_per_sec.show(one_decimal),
        thousands(TARGET_READ_RECORDS_PER_SEC),
        verdict(met),
    );
}

/// Today's UTC date as `YYYY-MM-DD` (Howard Hinnant's `civil_from_days`, to avoid a date crate).
fn utc_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let days = secs / 86_400 + 719_468; // days since 0000-03-01
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

//! Real crashes: a child process (`src/bin/crash_appender.rs`) appends to a stream and prints every
//! acknowledgement; the test SIGKILLs it at a random moment, reopens the stream in-process and checks
//! what recovery kept, then starts the next child on the same directory.
//!
//! Environment: `WEIR_CRASH_CYCLES` (default 20) and `WEIR_CRASH_SEED` (default random; the seed is
//! printed, and every failure message names it).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weir_stream::{ReadLimits, Record, ShardId, ShardIteratorType, Stream, StreamConfig};

const APPENDER: &str = env!("CARGO_BIN_EXE_weir-stream-crash-appender");
const SHARDS: u32 = 4;
/// The whole run fails below this many acknowledged records, so it cannot pass vacuously.
const MIN_TOTAL_ACKS: usize = 200;

/// The appender's configuration (the shard count must match; the segment size only matters to it).
fn config() -> StreamConfig {
    StreamConfig {
        shard_count: SHARDS,
        segment_bytes: 64 * 1024,
        ..StreamConfig::default()
    }
}

/// What the appender puts in each record.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    id: String,
    batch: u64,
    of: u64,
    #[allow(dead_code)]
    pad: String,
}

/// A record as found on disk, identified by its appender run and number within the run.
#[derive(Debug)]
struct Found {
    id: String,
    run: u64,
    n: u64,
    batch: u64,
}

/// An `ACK <id> <shard> <offset>` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    shard: u32,
    offset: u64,
}

fn parse_ack(line: &str) -> Option<(String, Ack)> {
    let mut words = line.split(' ');
    let (Some("ACK"), Some(id), Some(shard), Some(offset), None) =
        (words.next(), words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let ack = Ack {
        shard: shard.parse().ok()?,
        offset: offset.parse().ok()?,
    };
    Some((id.to_owned(), ack))
}

/// Reads the child's acknowledgements until it dies. A last line without its newline was cut by the
/// kill: the test never saw that acknowledgement, so it is dropped.
fn read_acks(stdout: impl Read + Send + 'static) -> JoinHandle<Result<Vec<(String, Ack)>, String>> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut acks = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(acks),
                Ok(_) if !line.ends_with('\n') => return Ok(acks),
                Ok(_) => acks.push(parse_ack(line.trim_end()).ok_or_else(|| format!("bad ACK line {line:?}"))?),
                Err(e) => return Err(format!("reading the appender's stdout: {e}")),
            }
        }
    })
}

fn read_all(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = from.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

#[cfg(unix)]
fn killed_by_sigkill(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

#[cfg(not(unix))]
fn killed_by_sigkill(status: ExitStatus) -> bool {
    !status.success()
}

fn drain(stream: &Stream, shard: ShardId) -> Vec<Record> {
    let mut it = stream
        .iterator(shard, ShardIteratorType::TrimHorizon)
        .expect("iterator");
    let mut out = Vec::new();
    loop {
        let batch = stream.read(&it, ReadLimits::default()).expect("read");
        assert_eq!(batch.skipped_records, 0, "nothing is ever removed from this stream");
        if batch.records.is_empty() {
            return out;
        }
        out.extend(batch.records);
        it = batch.next_iterator;
    }
}

/// Everything the checks remember from one cycle to the next.
#[derive(Default)]
struct History {
    /// Every acknowledgement the test has seen, from every run.
    acks: HashMap<String, Ack>,
    /// Per shard, the ids found there by the previous check, in offset order.
    shards: Vec<Vec<String>>,
}

/// Opens the stream after run `run` was killed and checks everything recovery kept against what was
/// acknowledged. Returns what it found.
fn check(dir: &Path, run: u64, history: &mut History, ctx: &str) -> Checked {
    let stream = Stream::open(dir, "events", config()).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let stats = stream.stats();
    // id -> (where it is, its run and batch)
    let mut located: HashMap<String, (Ack, u64, u64)> = HashMap::new();
    // (run, batch) -> (records found, batch size they claim)
    let mut batches: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
    let mut shards: Vec<Vec<String>> = Vec::new();
    let mut total = 0;
    for shard in stream.shard_ids() {
        let records = drain(&stream, shard);
        let mut previous: Option<(u64, u64)> = None;
        let mut previous_arrival = i64::MIN;
        let mut ids = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let seq = record.sequence_number;
            assert_eq!(
                (seq.shard, seq.offset),
                (shard, index as u64),
                "{ctx}: offsets of {shard} are not 0..n contiguous"
            );
            assert_eq!(
                stream.shard_for(&record.partition_key, None),
                shard,
                "{ctx}: record {seq} with partition key {:?} is on the wrong shard",
                record.partition_key
            );
            let payload: Payload = serde_json::from_slice(&record.data)
                .unwrap_or_else(|e| panic!("{ctx}: record {seq} has data that is not the appender's: {e}"));
            let found = found(&payload, run).unwrap_or_else(|| panic!("{ctx}: record {seq} has a bad id {payload:?}"));
            let at = Ack {
                shard: shard.0,
                offset: seq.offset,
            };
            if let Some(first) = located.insert(found.id.clone(), (at, found.run, found.batch)) {
                panic!("{ctx}: id {} is stored twice: at {:?} and at {seq}", found.id, first.0);
            }
            // One appender at a time, one batch at a time: each shard holds runs, and records of a
            // run, in the order they were appended.
            assert!(
                previous.is_none_or(|p| p < (found.run, found.n)),
                "{ctx}: {} at {seq} comes after {previous:?} on its shard",
                found.id
            );
            previous = Some((found.run, found.n));
            assert!(
                record.approximate_arrival_timestamp_ms >= previous_arrival,
                "{ctx}: arrival time goes back at {seq}"
            );
            previous_arrival = record.approximate_arrival_timestamp_ms;
            let entry = batches.entry((found.run, found.batch)).or_insert((0, payload.of));
            assert_eq!(
                entry.1,
                payload.of,
                "{ctx}: batch {:?} disagrees about its size",
                (found.run, found.batch)
            );
            entry.0 += 1;
            ids.push(found.id);
        }
        total += records.len();
        shards.push(ids);
    }
    drop(stream);

    // Every acknowledgement, of this run and all earlier ones, is exactly where it was acknowledged.
    // Per run, the highest batch with an acknowledgement the test saw:
    let mut last_acked_batch: HashMap<u64, u64> = HashMap::new();
    for (id, ack) in &history.acks {
        match located.get(id) {
            Some(&(at, r, b)) => {
                assert_eq!(&at, ack, "{ctx}: acknowledged record {id} moved");
                let last = last_acked_batch.entry(r).or_insert(b);
                *last = (*last).max(b);
            }
            None => panic!("{ctx}: acknowledged record {id} ({ack:?}) is lost"),
        }
    }
    // Batches are all or nothing, and each run's batches form a prefix: the appender sends a batch
    // only after the previous one was acknowledged, so at most one batch beyond the last
    // acknowledgement the test saw can exist (acknowledged but not printed, or in flight but durable).
    let mut present_per_run: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (&(r, b), &(count, of)) in &batches {
        assert_eq!(
            count, of,
            "{ctx}: batch {b} of run {r} is partly stored: {count} of {of} records"
        );
        present_per_run.entry(r).or_default().push(b);
    }
    for (r, present) in &present_per_run {
        let expected: Vec<u64> = (0..present.len() as u64).collect();
        assert_eq!(present, &expected, "{ctx}: run {r}'s stored batches have a gap");
        let acked = last_acked_batch.get(r).map_or(0, |b| b + 1);
        assert!(
            present.len() as u64 <= acked + 1,
            "{ctx}: run {r} has {} batches stored but only {acked} acknowledged; the appender never sent more \
             than one beyond that",
            present.len()
        );
    }
    // Whatever an earlier check read is still there, unchanged, in the same place.
    for (shard, before) in history.shards.iter().enumerate() {
        let now = &shards[shard];
        assert!(
            now.len() >= before.len() && now[..before.len()] == before[..],
            "{ctx}: shard {shard} no longer starts with the {} records an earlier check read",
            before.len()
        );
    }
    history.shards = shards;
    Checked {
        records: total,
        segments: stats.segments,
        truncated: stats.truncated_bytes_at_open,
    }
}

struct Checked {
    records: usize,
    segments: usize,
    /// Bytes recovery cut off a torn tail.
    truncated: u64,
}

/// Parses a payload's id, `<run>-<n>`, for a run that has happened.
fn found(payload: &Payload, last_run: u64) -> Option<Found> {
    let (run, n) = payload.id.split_once('-')?;
    let (run, n) = (run.parse().ok()?, n.parse().ok()?);
    (run <= last_run && (1..=40).contains(&payload.of)).then(|| Found {
        id: payload.id.clone(),
        run,
        n,
        batch: payload.batch,
    })
}

/// Kills `child` and reaps it; fails, showing its stderr, if it had died on its own.
fn kill(mut child: Child, stderr: JoinHandle<String>, ctx: &str) {
    child.kill().unwrap_or_else(|e| panic!("{ctx}: kill: {e}"));
    let status = child.wait().unwrap_or_else(|e| panic!("{ctx}: wait: {e}"));
    let stderr = stderr.join().expect("stderr reader panicked");
    assert!(
        killed_by_sigkill(status),
        "{ctx}: the appender died on its own ({status}) before it was killed; stderr:\n{stderr}"
    );
}

#[test]
fn acknowledged_appends_survive_sigkill_exactly_where_acknowledged() {
    let cycles: u64 = std::env::var("WEIR_CRASH_CYCLES").map_or(20, |v| v.parse().expect("WEIR_CRASH_CYCLES"));
    let seed: u64 =
        std::env::var("WEIR_CRASH_SEED").map_or_else(|_| rand::random(), |v| v.parse().expect("WEIR_CRASH_SEED"));
    eprintln!("crash test: {cycles} cycles, seed {seed} (rerun with WEIR_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut history = History::default();
    let mut segments = 0;
    for run in 0..cycles {
        let ctx = format!("seed {seed}, cycle {run}");
        let delay = Duration::from_millis(rng.random_range(5..150));
        let mut child = Command::new(APPENDER)
            .arg(dir.path())
            .arg(run.to_string())
            .arg(rng.random::<u64>().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{ctx}: spawning {APPENDER}: {e}"));
        let acks = read_acks(child.stdout.take().expect("piped stdout"));
        let stderr = read_all(child.stderr.take().expect("piped stderr"));
        std::thread::sleep(delay);
        kill(child, stderr, &ctx);
        let acks = acks
            .join()
            .expect("ACK reader panicked")
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let new_acks = acks.len();
        for (id, ack) in acks {
            if history.acks.insert(id.clone(), ack).is_some() {
                panic!("{ctx}: id {id} was acknowledged twice");
            }
        }
        let checked = check(dir.path(), run, &mut history, &ctx);
        segments = checked.segments;
        eprintln!(
            "cycle {run:>3}: killed after {delay:>6.0?}, {new_acks:>5} new acks, {:>6} records in {:>4} segments, \
             {:>6} bytes truncated at open",
            checked.records, checked.segments, checked.truncated
        );
    }
    let total = history.acks.len();
    eprintln!(
        "crash test: {total} acknowledged records over {cycles} cycles, {:.1?}",
        started.elapsed()
    );
    assert!(
        total >= MIN_TOTAL_ACKS,
        "seed {seed}: only {total} records were acknowledged over {cycles} cycles (need {MIN_TOTAL_ACKS}); \
         the appender barely ran before each kill, so this run proves nothing"
    );
    assert!(
        segments >= 3,
        "seed {seed}: the stream has only {segments} segments, so no kill could have hit a segment roll"
    );
}

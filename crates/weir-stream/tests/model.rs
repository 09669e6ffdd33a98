//! A state-machine test: random sequences of appends, reads with every iterator type, consumer
//! registrations and checkpoints, clock moves, retention passes and reopens, checked step by step
//! against an in-memory model of what Kinesis semantics promise.
//!
//! Cases per run: 1,000 by default; set `WEIR_PROPTEST_CASES` for more.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use weir_stream::vfs::StdVfs;
use weir_stream::{
    CheckpointError, ManualClock, PutRecord, ReadLimits, SequenceNumber, ShardId, ShardIteratorType, Stream,
    StreamConfig,
};

const SHARDS: u32 = 3;
const CONSUMERS: [&str; 2] = ["delivery", "audit"];
const RETENTION_MS: i64 = 1_000;

#[derive(Debug, Clone)]
enum Start {
    TrimHorizon,
    Latest,
    /// A record chosen by `fraction` of the shard's whole history (trimmed records included).
    At(f64),
    After(f64),
    /// A time chosen by `fraction` between the first arrival − 50 ms and the last + 50 ms.
    AtTimestamp(f64),
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, usize)>),
    Read {
        shard: u32,
        start: Start,
        max_records: usize,
        max_bytes: usize,
    },
    Register(usize),
    Checkpoint {
        consumer: usize,
        shard: u32,
        fraction: f64,
    },
    AdvanceClock(i64),
    Retention,
    Reopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let start = prop_oneof![
        Just(Start::TrimHorizon),
        Just(Start::Latest),
        (0.0..1.0f64).prop_map(Start::At),
        (0.0..1.0f64).prop_map(Start::After),
        (0.0..1.0f64).prop_map(Start::AtTimestamp),
    ];
    prop_oneof![
        6 => prop::collection::vec((any::<u8>(), 1usize..300), 1..12).prop_map(Op::Append),
        4 => (0..SHARDS, start, 1usize..20, 1usize..2_000).prop_map(|(shard, start, max_records, max_bytes)| Op::Read {
            shard, start, max_records, max_bytes
        }),
        1 => (0..CONSUMERS.len()).prop_map(Op::Register),
        2 => (0..CONSUMERS.len(), 0..SHARDS, 0.0..1.0f64).prop_map(|(consumer, shard, fraction)| Op::Checkpoint {
            consumer, shard, fraction
        }),
        2 => (0i64..700).prop_map(Op::AdvanceClock),
        2 => Just(Op::Retention),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelRecord {
    key: String,
    data: Vec<u8>,
    arrival_ms: i64,
}

#[derive(Debug, Default)]
struct Model {
    shards: Vec<Vec<ModelRecord>>,
    trim: Vec<u64>,
    /// Registered consumers and their checkpoints (offset of the last processed record).
    consumers: BTreeMap<String, Vec<Option<u64>>>,
    appended: u64,
}

impl Model {
    fn consumed_below(&self, shard: usize) -> Option<u64> {
        self.consumers.values().map(|c| c[shard].map_or(0, |o| o + 1)).min()
    }
}

fn open(dir: &Path, clock: &ManualClock) -> Stream {
    let config = StreamConfig {
        shard_count: SHARDS,
        segment_bytes: 4096,
        retention: Duration::from_millis(RETENTION_MS as u64),
        ..StreamConfig::default()
    };
    Stream::open_with(dir, "model", config, Arc::new(StdVfs), Arc::new(clock.clone())).expect("open")
}

fn pick(len: usize, fraction: f64) -> u64 {
    ((len as f64 * fraction) as u64).min(len.saturating_sub(1) as u64)
}

/// What a read with these limits returns from `records[start..]`.
fn expected_read(records: &[ModelRecord], start: u64, max_records: usize, max_bytes: usize) -> Vec<ModelRecord> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for r in records.iter().skip(start as usize) {
        if out.len() == max_records || (!out.is_empty() && bytes + r.data.len() > max_bytes) {
            break;
        }
        bytes += r.data.len();
        out.push(r.clone());
    }
    out
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_700_000_000_000);
    let mut stream = open(dir.path(), &clock);
    let mut model = Model {
        shards: vec![Vec::new(); SHARDS as usize],
        trim: vec![0; SHARDS as usize],
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Append(records) => {
                let batch: Vec<PutRecord> = records
                    .iter()
                    .map(|&(key, len)| {
                        model.appended += 1;
                        let data = format!("{:0>width$}", model.appended, width = len.max(8)).into_bytes();
                        PutRecord::new(format!("pk-{key}"), data)
                    })
                    .collect();
                let results = stream.append_blocking(batch.clone()).expect("append");
                prop_assert_eq!(results.len(), batch.len());
                for (record, result) in batch.into_iter().zip(results) {
                    let shard = &mut model.shards[result.shard_id.0 as usize];
                    prop_assert_eq!(result.shard_id, stream.shard_for(&record.partition_key, None));
                    prop_assert_eq!(result.sequence_number.offset, shard.len() as u64);
                    shard.push(ModelRecord {
                        key: record.partition_key,
                        data: record.data.to_vec(),
                        arrival_ms: clock.now(),
                    });
                }
            }
            Op::Read {
                shard,
                start,
                max_records,
                max_bytes,
            } => {
                let records = &model.shards[shard as usize];
                let trim = model.trim[shard as usize];
                let id = ShardId(shard);
                let seq = |offset| SequenceNumber { shard: id, offset };
                let (kind, expected_start) = match start {
                    Start::TrimHorizon => (ShardIteratorType::TrimHorizon, trim),
                    Start::Latest => (ShardIteratorType::Latest, records.len() as u64),
                    Start::At(_) | Start::After(_) | Start::AtTimestamp(_) if records.is_empty() => {
                        (ShardIteratorType::TrimHorizon, 0)
                    }
                    Start::At(f) => {
                        let o = pick(records.len(), f);
                        (ShardIteratorType::AtSequenceNumber(seq(o)), o)
                    }
                    Start::After(f) => {
                        let o = pick(records.len(), f);
                        (ShardIteratorType::AfterSequenceNumber(seq(o)), o + 1)
                    }
                    Start::AtTimestamp(f) => {
                        let first = records[0].arrival_ms - 50;
                        let last = records[records.len() - 1].arrival_ms + 50;
                        let ts = first + ((last - first) as f64 * f) as i64;
                        let at = records.iter().position(|r| r.arrival_ms >= ts).unwrap_or(records.len()) as u64;
                        // Arrivals never decrease, so a match before the horizon means the horizon.
                        (ShardIteratorType::AtTimestamp(ts), at.max(trim))
                    }
                };
                let it = stream.iterator(id, kind).expect("iterator");
                let limits = ReadLimits { max_records, max_bytes };
                let batch = stream.read(&it, limits).expect("read");
                let from = expected_start.max(trim);
                let want = expected_read(records, from, max_records, max_bytes);
                let got: Vec<ModelRecord> = batch
                    .records
                    .iter()
                    .map(|r| ModelRecord {
                        key: r.partition_key.clone(),
                        data: r.data.to_vec(),
                        arrival_ms: r.approximate_arrival_timestamp_ms,
                    })
                    .collect();
                prop_assert_eq!(&got, &want, "first read from {:?}", kind);
                prop_assert_eq!(batch.skipped_records, trim.saturating_sub(expected_start));
                if batch.skipped_records > 0 {
                    COVERAGE.skipped_reads.fetch_add(1, Relaxed);
                }
                if matches!(kind, ShardIteratorType::AtTimestamp(_)) && !got.is_empty() {
                    COVERAGE.timestamp_reads.fetch_add(1, Relaxed);
                }
                for (i, r) in batch.records.iter().enumerate() {
                    prop_assert_eq!(r.sequence_number, seq(from + i as u64));
                }
                // The rest, through the returned iterators: every record once, in order, then the tip.
                let mut it = batch.next_iterator;
                let mut seen = got.len() as u64;
                loop {
                    let next = stream.read(&it, limits).expect("read");
                    if next.records.is_empty() {
                        prop_assert_eq!(next.millis_behind_latest, 0);
                        break;
                    }
                    for r in &next.records {
                        prop_assert_eq!(r.sequence_number, seq(from + seen));
                        prop_assert_eq!(&r.data[..], &records[(from + seen) as usize].data[..]);
                        seen += 1;
                    }
                    it = next.next_iterator;
                }
                prop_assert_eq!(from + seen, (records.len() as u64).max(from));
            }
            Op::Register(c) => {
                stream.register_consumer(CONSUMERS[c]).expect("register");
                let start: Vec<Option<u64>> = model.trim.iter().map(|t| t.checked_sub(1)).collect();
                model.consumers.entry(CONSUMERS[c].to_owned()).or_insert(start);
            }
            Op::Checkpoint {
                consumer,
                shard,
                fraction,
            } => {
                let name = CONSUMERS[consumer];
                let len = model.shards[shard as usize].len();
                let offset = pick(len, fraction);
                let seq = SequenceNumber {
                    shard: ShardId(shard),
                    offset,
                };
                let result = stream.checkpoint(name, seq);
                match model.consumers.get_mut(name) {
                    None => prop_assert!(matches!(result, Err(CheckpointError::UnknownConsumer(_)))),
                    Some(_) if len == 0 => {
                        prop_assert!(matches!(result, Err(CheckpointError::InvalidSequenceNumber(_))))
                    }
                    Some(checkpoints) => {
                        result.expect("checkpoint");
                        COVERAGE.checkpoints.fetch_add(1, Relaxed);
                        checkpoints[shard as usize] = Some(offset);
                    }
                }
            }
            Op::AdvanceClock(ms) => clock.advance(ms),
            Op::Retention => {
                stream.apply_retention_blocking().expect("retention");
            }
            Op::Reopen => {
                drop(stream);
                stream = open(dir.path(), &clock);
                COVERAGE.reopens.fetch_add(1, Relaxed);
                for (name, checkpoints) in &model.consumers {
                    let on_disk = stream.checkpoints(name).expect("consumer survives reopen");
                    let on_disk: Vec<Option<u64>> = on_disk.iter().map(|c| c.map(|s| s.offset)).collect();
                    prop_assert_eq!(&on_disk, checkpoints);
                }
                prop_assert_eq!(stream.consumers().len(), model.consumers.len());
            }
        }
        // Retention also runs by itself after a segment rolls, so the horizon may move after any step.
        let stats = stream.stats();
        let cutoff = clock.now() - RETENTION_MS;
        for (s, shard) in stats.shards.iter().enumerate() {
            prop_assert_eq!(shard.next_offset, model.shards[s].len() as u64);
            let trim = shard.trim_offset;
            prop_assert!(trim >= model.trim[s], "trim horizon moved back");
            prop_assert!(trim <= model.shards[s].len() as u64);
            if trim > model.trim[s] {
                COVERAGE.segments_removed.fetch_add(1, Relaxed);
                if let Some(below) = model.consumed_below(s) {
                    prop_assert!(trim <= below, "removed records a consumer has not read");
                }
                let newest_removed = &model.shards[s][trim as usize - 1];
                prop_assert!(
                    newest_removed.arrival_ms < cutoff,
                    "removed a record younger than the retention period"
                );
            }
            model.trim[s] = trim;
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("WEIR_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// How often the interesting paths ran across all cases, so the test cannot pass vacuously.
#[derive(Default)]
struct Coverage {
    segments_removed: AtomicU64,
    reopens: AtomicU64,
    skipped_reads: AtomicU64,
    checkpoints: AtomicU64,
    timestamp_reads: AtomicU64,
}

static COVERAGE: Coverage = Coverage {
    segments_removed: AtomicU64::new(0),
    reopens: AtomicU64::new(0),
    skipped_reads: AtomicU64::new(0),
    checkpoints: AtomicU64::new(0),
    timestamp_reads: AtomicU64::new(0),
};

#[test]
fn stream_behaves_like_the_model() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(e) = runner.run(&prop::collection::vec(op_strategy(), 1..40), run) {
        panic!("{e}");
    }
    let c = &COVERAGE;
    let counts = [
        ("segments removed", c.segments_removed.load(Relaxed)),
        ("reopens", c.reopens.load(Relaxed)),
        ("reads past the horizon", c.skipped_reads.load(Relaxed)),
        ("checkpoints", c.checkpoints.load(Relaxed)),
        ("timestamp reads", c.timestamp_reads.load(Relaxed)),
    ];
    eprintln!("coverage: {counts:?}");
    for (what, n) in counts {
        assert!(n > 0, "no case exercised {what}: the model test is not testing it");
    }
}

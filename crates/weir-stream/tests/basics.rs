//! Appending and reading with every iterator type, consumers, and reopening.

use std::time::Duration;
use weir_stream::{
    ManualClock, PutRecord, ReadLimits, SequenceNumber, ShardId, ShardIteratorType, Stream, StreamConfig, SyncPolicy,
};

fn config(shards: u32) -> StreamConfig {
    StreamConfig {
        shard_count: shards,
        segment_bytes: 4096,
        ..StreamConfig::default()
    }
}

fn open(dir: &std::path::Path, shards: u32, clock: &ManualClock) -> Stream {
    Stream::open_with(
        dir,
        "events",
        config(shards),
        std::sync::Arc::new(weir_stream::vfs::StdVfs),
        std::sync::Arc::new(clock.clone()),
    )
    .expect("open")
}

fn drain(stream: &Stream, shard: ShardId, kind: ShardIteratorType) -> Vec<(u64, String)> {
    let mut it = stream.iterator(shard, kind).expect("iterator");
    let mut out = Vec::new();
    loop {
        let batch = stream
            .read(
                &it,
                ReadLimits {
                    max_records: 7,
                    max_bytes: 1 << 20,
                },
            )
            .expect("read");
        if batch.records.is_empty() {
            return out;
        }
        for r in batch.records {
            out.push((
                r.sequence_number.offset,
                String::from_utf8(r.data.to_vec()).expect("utf8"),
            ));
        }
        it = batch.next_iterator;
    }
}

#[test]
fn appended_records_read_back_in_order_across_segments_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000);
    let stream = open(dir.path(), 3, &clock);
    let mut expected: Vec<Vec<(u64, String)>> = vec![Vec::new(); 3];
    for batch in 0..60 {
        clock.advance(10);
        let records: Vec<PutRecord> = (0..5)
            .map(|i| PutRecord::new(format!("key-{batch}-{i}"), format!("record {batch}/{i}")))
            .collect();
        let results = stream.append_blocking(records).expect("append");
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.shard_id, stream.shard_for(&format!("key-{batch}-{i}"), None));
            assert_eq!(r.sequence_number.offset, expected[r.shard_id.0 as usize].len() as u64);
            expected[r.shard_id.0 as usize].push((r.sequence_number.offset, format!("record {batch}/{i}")));
        }
    }
    assert!(
        stream.stats().segments >= 3,
        "small segments roll: {:?}",
        stream.stats()
    );
    for shard in 0..3 {
        assert_eq!(
            drain(&stream, ShardId(shard), ShardIteratorType::TrimHorizon),
            expected[shard as usize]
        );
    }
    drop(stream);
    let stream = open(dir.path(), 3, &clock);
    for shard in 0..3 {
        let got = drain(&stream, ShardId(shard), ShardIteratorType::TrimHorizon);
        assert_eq!(got, expected[shard as usize]);
        let seq = SequenceNumber {
            shard: ShardId(shard),
            offset: 4,
        };
        assert_eq!(
            drain(&stream, ShardId(shard), ShardIteratorType::AtSequenceNumber(seq)),
            got[4..]
        );
        assert_eq!(
            drain(&stream, ShardId(shard), ShardIteratorType::AfterSequenceNumber(seq)),
            got[5..]
        );
        assert!(drain(&stream, ShardId(shard), ShardIteratorType::Latest).is_empty());
    }
    // Batch 30 arrived at 1_000 + 31 * 10.
    let from_ts = drain(&stream, ShardId(0), ShardIteratorType::AtTimestamp(1_310));
    let all = drain(&stream, ShardId(0), ShardIteratorType::TrimHorizon);
    let batch_of = |data: &str| -> u32 {
        data["record ".len()..]
            .split('/')
            .next()
            .and_then(|b| b.parse().ok())
            .expect("batch")
    };
    let first = all
        .iter()
        .position(|(_, d)| batch_of(d) >= 30)
        .expect("a record at or after batch 30");
    assert_eq!(from_ts, all[first..]);
}

#[tokio::test]
async fn reader_at_the_tip_wakes_when_records_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = Stream::open(dir.path(), "events", config(1)).expect("open");
    let it = stream
        .iterator(ShardId(0), ShardIteratorType::Latest)
        .expect("iterator");
    assert!(!stream.wait_for_records(&it, Duration::from_millis(20)).await);
    let writer = stream.clone();
    let append = tokio::spawn(async move { writer.append(vec![PutRecord::new("k", "v")]).await });
    assert!(stream.wait_for_records(&it, Duration::from_secs(30)).await);
    append.await.expect("join").expect("append");
    let batch = stream.read(&it, ReadLimits::default()).expect("read");
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.millis_behind_latest, 0);
}

#[test]
fn consumer_checkpoints_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(0);
    let stream = open(dir.path(), 2, &clock);
    stream.register_consumer("delivery").expect("register");
    let results = stream
        .append_blocking((0..20).map(|i| PutRecord::new(format!("{i}"), "x")).collect())
        .expect("append");
    let mine = results
        .iter()
        .find(|r| r.shard_id == ShardId(1))
        .expect("a record on shard 1");
    stream.checkpoint("delivery", mine.sequence_number).expect("checkpoint");
    drop(stream);
    let stream = open(dir.path(), 2, &clock);
    let checkpoints = stream.checkpoints("delivery").expect("registered");
    assert_eq!(checkpoints, vec![None, Some(mine.sequence_number)]);
    let it = stream
        .resume_iterator("delivery", ShardId(1))
        .expect("ok")
        .expect("registered");
    assert_eq!(it.next_sequence_number().offset, mine.sequence_number.offset + 1);
}

#[test]
fn interval_sync_policy_acknowledges_and_publishes_after_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = Stream::open(
        dir.path(),
        "events",
        StreamConfig {
            sync: SyncPolicy::Interval(Duration::from_millis(5)),
            ..config(1)
        },
    )
    .expect("open");
    stream.append_blocking(vec![PutRecord::new("k", "v")]).expect("append");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let it = stream
        .iterator(ShardId(0), ShardIteratorType::TrimHorizon)
        .expect("iterator");
    assert!(rt.block_on(stream.wait_for_records(&it, Duration::from_secs(30))));
}

//! Retention by age and size: whole segments, oldest first, never past a registered consumer unless
//! the hard disk cap forces it, and then counted.

use std::sync::Arc;
use std::time::Duration;
use weir_stream::vfs::StdVfs;
use weir_stream::{ManualClock, PutRecord, ReadLimits, ShardId, ShardIteratorType, Stream, StreamConfig};

const SEGMENT: u64 = 4096;

fn open(dir: &std::path::Path, clock: &ManualClock, config: StreamConfig) -> Stream {
    Stream::open_with(dir, "s", config, Arc::new(StdVfs), Arc::new(clock.clone())).expect("open")
}

fn base() -> StreamConfig {
    StreamConfig {
        shard_count: 1,
        segment_bytes: SEGMENT,
        ..StreamConfig::default()
    }
}

/// Appends ~`bytes` of 100-byte records, one batch per 1 ms of clock.
fn fill(stream: &Stream, clock: &ManualClock, bytes: u64) -> u64 {
    let mut n = 0;
    while n * 120 < bytes {
        clock.advance(1);
        stream
            .append_blocking(vec![PutRecord::new("k", vec![b'x'; 100])])
            .expect("append");
        n += 1;
    }
    n
}

#[test]
fn age_retention_removes_only_segments_whose_newest_record_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000_000);
    let stream = open(
        dir.path(),
        &clock,
        StreamConfig {
            retention: Duration::from_secs(60),
            ..base()
        },
    );
    fill(&stream, &clock, 5 * SEGMENT);
    clock.advance(59_000);
    let report = stream.apply_retention_blocking().expect("retention");
    assert_eq!(report.segments_removed, 0, "nothing is 60 s old yet");
    clock.advance(1_000);
    // The next roll runs retention by itself.
    let recent = fill(&stream, &clock, SEGMENT * 3 / 2);
    stream.apply_retention_blocking().expect("retention");
    let stats = stream.stats();
    assert!(stats.segments_removed >= 4, "{stats:?}");
    assert_eq!(stats.records_expired, stats.shards[0].trim_offset);
    let it = stream
        .iterator(ShardId(0), ShardIteratorType::TrimHorizon)
        .expect("iterator");
    let left = stream.read(&it, ReadLimits::default()).expect("read").records;
    assert!(left.len() as u64 >= recent, "young records stay");
    let cutoff = clock.now() - 60_000;
    assert!(left.iter().any(|r| r.approximate_arrival_timestamp_ms >= cutoff));
}

#[test]
fn size_retention_waits_for_registered_consumers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(0);
    let stream = open(
        dir.path(),
        &clock,
        StreamConfig {
            retention_bytes: Some(2 * SEGMENT),
            ..base()
        },
    );
    stream.register_consumer("slow").expect("register");
    fill(&stream, &clock, 6 * SEGMENT);
    stream.apply_retention_blocking().expect("retention");
    assert_eq!(stream.stats().shards[0].trim_offset, 0, "the consumer has read nothing");

    // Checkpoint half way: retention may remove up to there, not further.
    let it = stream
        .iterator(ShardId(0), ShardIteratorType::TrimHorizon)
        .expect("iterator");
    let records = stream.read(&it, ReadLimits::default()).expect("read").records;
    let middle = records[records.len() / 2].sequence_number;
    stream.checkpoint("slow", middle).expect("checkpoint");
    stream.apply_retention_blocking().expect("retention");
    let trim = stream.stats().shards[0].trim_offset;
    assert!(
        trim > 0 && trim <= middle.offset + 1,
        "trim {trim}, checkpoint {}",
        middle.offset
    );
    assert_eq!(stream.stats().unconsumed_records_removed, 0);

    // Once the consumer is done, the stream shrinks to the cap.
    stream
        .checkpoint("slow", records[records.len() - 1].sequence_number)
        .expect("checkpoint");
    stream.apply_retention_blocking().expect("retention");
    assert!(
        stream.stats().disk_bytes <= 2 * SEGMENT + SEGMENT,
        "{:?}",
        stream.stats()
    );
}

#[test]
fn the_hard_disk_cap_removes_unread_records_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(0);
    let stream = open(
        dir.path(),
        &clock,
        StreamConfig {
            max_disk_bytes: Some(3 * SEGMENT),
            ..base()
        },
    );
    stream.register_consumer("stuck").expect("register");
    let written = fill(&stream, &clock, 8 * SEGMENT);
    stream.apply_retention_blocking().expect("retention");
    let stats = stream.stats();
    assert!(stats.disk_bytes <= 3 * SEGMENT + SEGMENT, "{stats:?}");
    let trim = stats.shards[0].trim_offset;
    assert!(trim > 0);
    assert_eq!(
        stats.unconsumed_records_removed, trim,
        "every removed record was unread and is counted: {stats:?}"
    );
    // The stuck consumer resumes at the horizon and is told how much it missed.
    let it = stream
        .resume_iterator("stuck", ShardId(0))
        .expect("ok")
        .expect("registered");
    let batch = stream.read(&it, ReadLimits::default()).expect("read");
    assert_eq!(batch.skipped_records, trim);
    assert_eq!(batch.records.len() as u64, written - trim);
}

//! Injected I/O failures: a failed write, fsync, rename, directory fsync or file creation never
//! acknowledges a batch, and the stream reopens consistent.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use weir_stream::vfs::{FaultOp, FaultyVfs, StdVfs};
use weir_stream::{
    AppendError, PutRecord, ReadLimits, ShardId, ShardIteratorType, Stream, StreamConfig, SyncPolicy, SystemClock,
};

fn config() -> StreamConfig {
    StreamConfig {
        shard_count: 2,
        segment_bytes: 4096,
        ..StreamConfig::default()
    }
}

fn open_faulty(dir: &Path, config: StreamConfig) -> (Stream, FaultyVfs) {
    let vfs = FaultyVfs::new();
    let stream = Stream::open_with(dir, "s", config, Arc::new(vfs.clone()), Arc::new(SystemClock)).expect("open");
    (stream, vfs)
}

fn reopen(dir: &Path) -> Stream {
    Stream::open_with(dir, "s", config(), Arc::new(StdVfs), Arc::new(SystemClock)).expect("reopen")
}

fn batch(tag: &str, n: usize) -> Vec<PutRecord> {
    (0..n)
        .map(|i| PutRecord::new(format!("{tag}-{i}"), format!("{tag} {i} {}", "p".repeat(40))))
        .collect()
}

/// Every record's data, per shard, in order; also checks offsets are dense from the horizon.
fn contents(stream: &Stream) -> Vec<Vec<String>> {
    stream
        .shard_ids()
        .into_iter()
        .map(|shard| {
            let mut it = stream
                .iterator(shard, ShardIteratorType::TrimHorizon)
                .expect("iterator");
            let mut expected_offset = it.next_sequence_number().offset;
            let mut out = Vec::new();
            loop {
                let b = stream.read(&it, ReadLimits::default()).expect("read");
                if b.records.is_empty() {
                    return out;
                }
                for r in b.records {
                    assert_eq!(r.sequence_number.offset, expected_offset, "offsets are dense");
                    expected_offset += 1;
                    out.push(String::from_utf8(r.data.to_vec()).expect("utf8"));
                }
                it = b.next_iterator;
            }
        })
        .collect()
}

fn acked_data(batches: &[Vec<PutRecord>]) -> Vec<String> {
    let mut all: Vec<String> = batches
        .iter()
        .flatten()
        .map(|r| String::from_utf8(r.data.to_vec()).expect("utf8"))
        .collect();
    all.sort();
    all
}

fn all_sorted(contents: &[Vec<String>]) -> Vec<String> {
    let mut all: Vec<String> = contents.iter().flatten().cloned().collect();
    all.sort();
    all
}

#[test]
fn a_full_disk_fails_the_append_and_the_stream_recovers_when_space_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, vfs) = open_faulty(dir.path(), config());
    let mut acked = Vec::new();
    let first = batch("a", 5);
    stream.append_blocking(first.clone()).expect("append");
    acked.push(first);
    // Three failures in a row: each write lands half its bytes before failing, like a real full disk.
    vfs.inject(FaultOp::Write, 0, 3, ErrorKind::StorageFull);
    for i in 0..3 {
        let err = stream
            .append_blocking(batch(&format!("full{i}"), 5))
            .expect_err("disk is full");
        assert!(matches!(err, AppendError::DiskFull(_)), "{err}");
    }
    let after = batch("b", 5);
    stream.append_blocking(after.clone()).expect("space is back");
    acked.push(after);
    assert_eq!(all_sorted(&contents(&stream)), acked_data(&acked));
    assert_eq!(stream.stats().append_failures, 3);
    drop(stream);
    assert_eq!(all_sorted(&contents(&reopen(dir.path()))), acked_data(&acked));
}

#[test]
fn a_failed_fsync_is_never_acknowledged_and_is_rolled_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, vfs) = open_faulty(dir.path(), config());
    let ok = batch("ok", 4);
    stream.append_blocking(ok.clone()).expect("append");
    vfs.inject(FaultOp::Sync, 0, 1, ErrorKind::Other);
    let err = stream.append_blocking(batch("lost", 4)).expect_err("fsync failed");
    assert!(matches!(err, AppendError::Io(_)), "{err}");
    let next = batch("next", 4);
    let results = stream.append_blocking(next.clone()).expect("writer continues");
    // The failed batch's sequence numbers are free again: nothing was published with them.
    let stats = stream.stats();
    assert_eq!(stats.shards.iter().map(|s| s.next_offset).sum::<u64>(), 8);
    assert!(results.iter().all(|r| r.sequence_number.offset < 8));
    let expected = acked_data(&[ok, next]);
    assert_eq!(all_sorted(&contents(&stream)), expected);
    drop(stream);
    assert_eq!(all_sorted(&contents(&reopen(dir.path()))), expected);
}

#[test]
fn when_rollback_also_fails_the_writer_stops_and_reopen_is_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, vfs) = open_faulty(dir.path(), config());
    let ok = batch("ok", 4);
    stream.append_blocking(ok.clone()).expect("append");
    vfs.inject(FaultOp::Sync, 0, 1, ErrorKind::Other);
    vfs.inject(FaultOp::SetLen, 0, 1, ErrorKind::Other);
    let failed = batch("failed", 4);
    stream.append_blocking(failed.clone()).expect_err("fsync failed");
    let err = stream
        .append_blocking(batch("later", 1))
        .expect_err("writer is stopped");
    assert!(matches!(err, AppendError::Poisoned(_)), "{err}");
    drop(stream);
    // The unacknowledged batch may or may not have reached the disk, but only as a whole.
    let got = all_sorted(&contents(&reopen(dir.path())));
    let without = acked_data(std::slice::from_ref(&ok));
    let with = acked_data(&[ok, failed]);
    assert!(got == without || got == with, "partial batch after reopen: {got:?}");
}

#[test]
fn failures_while_rolling_a_segment_fail_the_append_and_keep_the_stream_usable() {
    for (op, kind) in [
        (FaultOp::Create, ErrorKind::StorageFull),
        (FaultOp::SyncDir, ErrorKind::Other),
        (FaultOp::Write, ErrorKind::StorageFull),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stream, vfs) = open_faulty(dir.path(), config());
        let mut acked = Vec::new();
        // Fill the first segment so that the next append must roll.
        while stream.stats().disk_bytes < 4096 {
            let b = batch(&format!("fill{}", acked.len()), 8);
            stream.append_blocking(b.clone()).expect("append");
            acked.push(b);
        }
        let segments = stream.stats().segments;
        vfs.inject(op, 0, 1, kind);
        let err = stream.append_blocking(batch("rolling", 3)).expect_err("roll fails");
        assert!(
            matches!(err, AppendError::DiskFull(_) | AppendError::Io(_)),
            "{op:?}: {err}"
        );
        let b = batch("after", 3);
        stream.append_blocking(b.clone()).expect("next append rolls");
        acked.push(b);
        assert_eq!(stream.stats().segments, segments + 1, "{op:?}");
        assert_eq!(all_sorted(&contents(&stream)), acked_data(&acked), "{op:?}");
        drop(stream);
        assert_eq!(all_sorted(&contents(&reopen(dir.path()))), acked_data(&acked), "{op:?}");
    }
}

#[test]
fn a_failed_checkpoint_rename_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, vfs) = open_faulty(dir.path(), config());
    stream.register_consumer("c").expect("register");
    let results = stream.append_blocking(batch("x", 10)).expect("append");
    let on = |shard| {
        let mut offsets = results
            .iter()
            .filter(|r| r.shard_id == ShardId(shard))
            .map(|r| r.sequence_number);
        (offsets.next().expect("first"), offsets.next_back().expect("last"))
    };
    let (first, last) = on(0);
    stream.checkpoint("c", first).expect("checkpoint");
    vfs.inject(FaultOp::Rename, 0, 1, ErrorKind::Other);
    stream.checkpoint("c", last).expect_err("rename fails");
    assert_eq!(stream.checkpoints("c").expect("c")[0], Some(first));
    drop(stream);
    let stream = reopen(dir.path());
    assert_eq!(stream.checkpoints("c").expect("c")[0], Some(first));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("s/consumers"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["c.json"], "no temporary file survives reopen");
}

#[test]
fn a_failed_checkpoint_directory_fsync_is_reported_and_either_checkpoint_may_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, vfs) = open_faulty(dir.path(), config());
    stream.register_consumer("c").expect("register");
    let results = stream.append_blocking(batch("x", 10)).expect("append");
    let first = results[0].sequence_number;
    let later = results
        .iter()
        .filter(|r| r.shard_id == first.shard)
        .map(|r| r.sequence_number)
        .next_back()
        .expect("same shard");
    stream.checkpoint("c", first).expect("checkpoint");
    vfs.inject(FaultOp::SyncDir, 0, 1, ErrorKind::Other);
    stream.checkpoint("c", later).expect_err("directory fsync fails");
    // Retention keeps using the older (more conservative) checkpoint until one succeeds.
    assert_eq!(stream.checkpoints("c").expect("c")[first.shard.0 as usize], Some(first));
    drop(stream);
    let on_disk = reopen(dir.path()).checkpoints("c").expect("c")[first.shard.0 as usize];
    assert!(on_disk == Some(first) || on_disk == Some(later));
}

#[test]
fn interval_policy_counts_acknowledged_records_lost_to_a_failed_fsync_and_never_shows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StreamConfig {
        sync: SyncPolicy::Interval(Duration::from_secs(60)),
        ..config()
    };
    let (stream, vfs) = open_faulty(dir.path(), config);
    stream
        .append_blocking(batch("acked", 6))
        .expect("acknowledged before fsync");
    assert!(
        contents(&stream).iter().all(Vec::is_empty),
        "readers only see fsynced records"
    );
    vfs.inject(FaultOp::Sync, 0, 1, ErrorKind::Other);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(stream.sync()).expect_err("fsync fails");
    assert_eq!(stream.stats().acknowledged_records_lost, 6);
    let kept = batch("kept", 2);
    let results = stream.append_blocking(kept.clone()).expect("append");
    rt.block_on(stream.sync()).expect("fsync");
    assert!(
        results.iter().all(|r| r.sequence_number.offset < 2),
        "numbers nobody saw are reused"
    );
    assert_eq!(all_sorted(&contents(&stream)), acked_data(&[kept]));
}

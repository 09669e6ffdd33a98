//! Delivery from a real stream to a real directory: keys, buffering, shutdown, and replays after
//! crashes at each step of the exactly-once protocol.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_delivery::intent::IntentStore;
use weir_delivery::{Delivery, DeliveryConfig, DeliveryStats, LocalDirSink};
use weir_stream::{PutRecord, SequenceNumber, ShardId, Stream, StreamConfig};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    stream: Stream,
}

fn setup(shards: u32) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let config = StreamConfig {
        shard_count: shards,
        ..StreamConfig::default()
    };
    let stream = Stream::open(root.join("streams"), "events", config).expect("open stream");
    Setup {
        _dir: dir,
        root,
        stream,
    }
}

fn start(s: &Setup, buffer_bytes: u64, interval: Duration) -> Delivery {
    let sink = LocalDirSink::open(s.root.join("bucket")).expect("sink");
    let config = DeliveryConfig {
        name: "events".into(),
        version: 1,
        buffer_bytes,
        buffer_interval: interval,
        ..DeliveryConfig::default()
    };
    Delivery::start(s.stream.clone(), config, Arc::new(sink), s.root.join("delivery/events")).expect("start")
}

async fn append(stream: &Stream, from: usize, n: usize, pad: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(500) {
        let records: Vec<PutRecord> = chunk
            .iter()
            .map(|i| {
                ids.push(format!("r{i}"));
                PutRecord::new(
                    format!("k{i}"),
                    format!(r#"{{"id":"r{i}","pad":"{}"}}"#, "x".repeat(pad)),
                )
            })
            .collect();
        stream.append(records).await.expect("append");
    }
    ids
}

/// Every object under the bucket: key → its lines.
fn objects(root: &Path) -> BTreeMap<String, Vec<String>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<String>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let key = path
                    .strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned();
                let body = std::fs::read_to_string(&path).expect("read object");
                assert!(body.ends_with('\n'), "{key}: every record ends with a newline");
                out.insert(key, body.lines().map(str::to_owned).collect());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&root.join("bucket"), &root.join("bucket"), &mut out);
    out
}

fn ids_in(objects: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut ids: Vec<String> = objects
        .values()
        .flatten()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line is one JSON record");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect();
    ids.sort();
    ids
}

async fn wait_delivered(stats: &DeliveryStats, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while DeliveryStats::get(&stats.records_delivered) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} delivered",
            DeliveryStats::get(&stats.records_delivered)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_in_exactly_one_object_under_a_firehose_key() {
    let s = setup(3);
    let delivery = start(&s, 1024 * 1024, Duration::from_millis(50));
    let ids = append(&s.stream, 0, 2_000, 50).await;
    wait_delivered(delivery.stats(), 2_000).await;
    delivery.shutdown().await;
    let objects = objects(&s.root);
    assert_eq!(ids_in(&objects), sorted(ids));
    for key in objects.keys() {
        let (prefix, name) = key.rsplit_once('/').expect("prefix");
        assert_eq!(prefix.len(), "2026/11/24/17".len(), "{key}");
        assert!(name.starts_with("events-1-"), "{key}");
        // events-1-YYYY-MM-dd-HH-mm-ss-<uuid>, and the prefix is the same hour.
        let time = &name["events-1-".len().."events-1-".len() + 19];
        assert_eq!(time[..13].replace('-', "/"), prefix, "{key}");
        let uuid = &name["events-1-".len() + 20..];
        assert_eq!(uuid.len(), 36, "{key}");
        assert_eq!(uuid.as_bytes()[14], b'5', "{key}: a version-5 (name-based) UUID");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_flush_by_size() {
    let s = setup(1);
    let delivery = start(&s, 1024 * 1024, Duration::from_secs(900));
    // ~3.2 MiB of records: three full buffers, the rest waits for the 900 s interval.
    let ids = append(&s.stream, 0, 3_200, 1_000).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while DeliveryStats::get(&delivery.stats().objects_delivered) < 3 {
        assert!(Instant::now() < deadline, "size-triggered flushes did not happen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (key, lines) in objects(&s.root) {
        let bytes: usize = lines.iter().map(String::len).sum();
        assert!(
            (1024 * 1024 - 1100..=1024 * 1024 + 1100).contains(&bytes),
            "{key}: {bytes} bytes"
        );
    }
    // Shutdown delivers what is still buffered.
    delivery.shutdown().await;
    assert_eq!(ids_in(&objects(&s.root)), sorted(ids));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_everything_buffered() {
    let s = setup(2);
    let delivery = start(&s, 128 * 1024 * 1024, Duration::from_secs(900));
    let ids = append(&s.stream, 0, 500, 20).await;
    // Wait until delivery has read them into its buffers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while DeliveryStats::get(&delivery.stats().records_read) < 500 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(objects(&s.root).is_empty(), "nothing is due before the interval");
    delivery.shutdown().await;
    assert_eq!(ids_in(&objects(&s.root)), sorted(ids));
    let checkpoints = s.stream.checkpoints("firehose-events").expect("consumer");
    for (shard, checkpoint) in checkpoints.iter().enumerate() {
        let next = s.stream.stats().shards[shard].next_offset;
        assert_eq!(
            checkpoint.map_or(0, |c| c.offset + 1),
            next,
            "shard {shard} fully checkpointed"
        );
    }
}

/// Rewinds the consumer to just before the shard's last recorded batch, as if the process had died
/// after writing the batch intent (and maybe the object) but before checkpointing.
fn rewind_to_last_intent(s: &Setup, shard: ShardId) -> (SequenceNumber, SequenceNumber) {
    let intents = IntentStore::open(s.root.join("delivery/events")).expect("intents");
    let intent = intents.load(shard).expect("load").expect("an intent was recorded");
    let (first, last) = intent.bounds().expect("valid");
    s.stream.deregister_consumer("firehose-events").expect("deregister");
    s.stream.register_consumer("firehose-events").expect("register");
    if first.offset > 0 {
        let before = SequenceNumber {
            shard,
            offset: first.offset - 1,
        };
        s.stream.checkpoint("firehose-events", before).expect("rewind");
    }
    // Other shards stay delivered.
    for other in s.stream.shard_ids().into_iter().filter(|&o| o != shard) {
        let next = s.stream.stats().shards[other.0 as usize].next_offset;
        if next > 0 {
            let all = SequenceNumber {
                shard: other,
                offset: next - 1,
            };
            s.stream.checkpoint("firehose-events", all).expect("checkpoint");
        }
    }
    (first, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_object_was_written_rewrites_the_same_object() {
    let s = setup(2);
    let delivery = start(&s, 1024 * 1024, Duration::from_millis(20));
    let ids = append(&s.stream, 0, 300, 20).await;
    wait_delivered(delivery.stats(), 300).await;
    delivery.shutdown().await;
    let before = objects(&s.root);

    rewind_to_last_intent(&s, ShardId(0));
    let delivery = start(&s, 1024 * 1024, Duration::from_millis(20));
    let deadline = Instant::now() + Duration::from_secs(30);
    while DeliveryStats::get(&delivery.stats().objects_replayed) < 1 {
        assert!(Instant::now() < deadline, "the pending batch was not replayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    delivery.shutdown().await;
    assert_eq!(objects(&s.root), before, "same keys, same bytes: no duplicate object");
    assert_eq!(ids_in(&before), sorted(ids));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_object_was_written_writes_exactly_the_recorded_batch() {
    let s = setup(1);
    let delivery = start(&s, 1024 * 1024, Duration::from_millis(20));
    let ids = append(&s.stream, 0, 300, 20).await;
    wait_delivered(delivery.stats(), 300).await;
    delivery.shutdown().await;
    let before = objects(&s.root);

    // The last batch's object never made it to disk.
    let (first, last) = rewind_to_last_intent(&s, ShardId(0));
    let last_key = before
        .iter()
        .find(|(_, lines)| {
            lines.len() as u64 == last.offset - first.offset + 1
                && lines.last().is_some_and(|l| l.contains(&format!("\"r{}\"", 299)))
        })
        .map(|(k, _)| k.clone())
        .expect("the last batch's object");
    std::fs::remove_file(s.root.join("bucket").join(&last_key)).expect("remove");
    // New records arrive before the restart; they must not join the recorded batch.
    let more = append(&s.stream, 300, 50, 20).await;
    let delivery = start(&s, 1024 * 1024, Duration::from_millis(20));
    wait_delivered(delivery.stats(), (last.offset - first.offset + 1) + 50).await;
    delivery.shutdown().await;
    let after = objects(&s.root);
    assert_eq!(
        after.get(&last_key),
        before.get(&last_key),
        "rebuilt under the same key with the same records"
    );
    let mut all = ids;
    all.extend(more);
    assert_eq!(ids_in(&after), sorted(all));
}

/// The object log announces every batch after its objects exist; a replayed batch announces the same
/// batch id and keys again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_log_announces_every_object_and_a_replay_repeats_its_notice() {
    use weir_delivery::object_log::{LogPosition, ObjectLogReader};
    let s = setup(2);
    let start_logged = |s: &Setup| {
        let sink = LocalDirSink::open(s.root.join("bucket")).expect("sink");
        let config = DeliveryConfig {
            name: "events".into(),
            version: 1,
            buffer_interval: Duration::from_millis(20),
            ..DeliveryConfig::default()
        };
        Delivery::start_with_log(
            s.stream.clone(),
            config,
            Arc::new(sink),
            s.root.join("delivery/events"),
            true,
        )
        .expect("start")
    };
    let delivery = start_logged(&s);
    append(&s.stream, 0, 300, 20).await;
    wait_delivered(delivery.stats(), 300).await;
    delivery.shutdown().await;

    let reader = ObjectLogReader::new(Delivery::object_log_dir(&s.root.join("delivery/events")));
    let notices = reader.read(LogPosition::default(), 1000).expect("read log");
    let announced: BTreeMap<String, u64> = notices
        .iter()
        .flat_map(|(n, _)| n.objects.iter().map(|o| (o.key.clone(), o.records)))
        .collect();
    let written: BTreeMap<String, u64> = objects(&s.root)
        .into_iter()
        .map(|(k, lines)| (k, lines.len() as u64))
        .collect();
    assert_eq!(announced, written);
    assert_eq!(notices.iter().map(|(n, _)| n.records_in).sum::<u64>(), 300);
    assert!(
        notices
            .iter()
            .all(|(n, _)| n.records_in == n.delivered + n.dropped + n.failed)
    );

    // A crash before the checkpoint: the batch is delivered again, and announced again unchanged.
    rewind_to_last_intent(&s, ShardId(0));
    let delivery = start_logged(&s);
    let deadline = Instant::now() + Duration::from_secs(30);
    while DeliveryStats::get(&delivery.stats().objects_replayed) < 1 {
        assert!(Instant::now() < deadline, "the pending batch was not replayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    delivery.shutdown().await;
    let after = reader.read(LogPosition::default(), 1000).expect("read log");
    assert_eq!(after.len(), notices.len() + 1);
    let replayed = &after.last().expect("a notice").0;
    // Same batch, same objects (only the time it was written differs).
    assert!(
        notices
            .iter()
            .any(|(n, _)| n.batch_id == replayed.batch_id && n.objects == replayed.objects),
        "the replay's notice repeats an earlier one: {replayed:?}"
    );
}

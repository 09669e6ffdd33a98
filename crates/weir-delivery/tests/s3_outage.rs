//! Exactly-once delivery to S3 across a store outage: a producer appends for ~30 s while the S3
//! server is down for 20 s in the middle; every record still lands in exactly one object.
//!
//! Both retry layers are exercised: each put retries inside `object_store` for `retry_duration`
//! (2 s here), then fails back to delivery, which keeps the batch and tries it again later.

mod support;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir_delivery::{Delivery, DeliveryConfig, DeliveryStats, S3Config, S3Sink, Sink};
use weir_stream::{PutRecord, SequenceNumber, Stream, StreamConfig};

const PRODUCE_FOR: Duration = Duration::from_secs(30);
const OUTAGE_STARTS_AFTER: Duration = Duration::from_secs(5);
const OUTAGE: Duration = Duration::from_secs(20);
/// Short, so that puts fail back to delivery during the outage.
const RETRY_DURATION: Duration = Duration::from_secs(2);
/// Generous bounds, so a regression fails instead of hanging.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long each put took and whether it failed: shows how long a put retried inside itself.
#[derive(Debug)]
struct TimedSink {
    inner: S3Sink,
    failed_puts: Mutex<Vec<Duration>>,
}

impl Sink for TimedSink {
    fn put(&self, key: &str, body: &[u8]) -> io::Result<()> {
        let started = Instant::now();
        let result = self.inner.put(key, body);
        if result.is_err() {
            self.failed_puts.lock().expect("not poisoned").push(started.elapsed());
        }
        result
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn read_head(&self, key: &str, max_bytes: usize) -> io::Result<Vec<u8>> {
        self.inner.read_head(key, max_bytes)
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        self.inner.get(key)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        self.inner.list(prefix)
    }
}

/// Appends batches of records with unique ids until `stop`; returns each id's sequence number.
async fn produce(stream: Stream, stop: Arc<AtomicBool>) -> HashMap<String, SequenceNumber> {
    let mut written = HashMap::new();
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<String> = (next..next + 20).map(|i| format!("r{i}")).collect();
        next += ids.len();
        let records = ids
            .iter()
            .map(|id| {
                PutRecord::new(
                    format!("k-{id}"),
                    format!(r#"{{"id":"{id}","pad":"xxxxxxxxxxxxxxxx"}}"#),
                )
            })
            .collect();
        let results = stream.append(records).await.expect("append");
        written.extend(ids.into_iter().zip(results.into_iter().map(|r| r.sequence_number)));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    written
}

/// Every object in the bucket: key → the ids of its records, in order.
async fn objects(sink: &S3Sink) -> BTreeMap<String, Vec<String>> {
    let store = sink.store();
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list the bucket");
    let mut out = BTreeMap::new();
    for meta in listed {
        let body = store
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        let text = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            text.ends_with('\n'),
            "{}: every record ends with a newline",
            meta.location
        );
        let ids = text
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("each line is one JSON record");
                v["id"].as_str().expect("id").to_owned()
            })
            .collect();
        out.insert(meta.location.to_string(), ids);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_land_exactly_once_across_a_store_outage() {
    let mut server = support::S3Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let stream_config = StreamConfig {
        shard_count: 2,
        ..StreamConfig::default()
    };
    let stream = Stream::open(dir.path().join("streams"), "events", stream_config).expect("open stream");
    let s3 = S3Sink::new(S3Config {
        retry_duration: RETRY_DURATION,
        ..server.config("firehose")
    })
    .expect("S3 sink");
    let sink = Arc::new(TimedSink {
        inner: s3.clone(),
        failed_puts: Mutex::new(Vec::new()),
    });
    let config = DeliveryConfig {
        buffer_bytes: 1024 * 1024,
        buffer_interval: Duration::from_millis(200),
        ..DeliveryConfig::default()
    };
    let delivery = Delivery::start(stream.clone(), config, sink.clone(), dir.path().join("delivery")).expect("start");
    let stats = delivery.stats().clone();

    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(produce(stream.clone(), stop.clone()));
    let started = Instant::now();
    tokio::time::sleep(OUTAGE_STARTS_AFTER).await;
    let delivered_before = DeliveryStats::get(&stats.objects_delivered);
    tokio::task::block_in_place(|| server.stop());
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(|| server.restart());
    tokio::time::sleep(PRODUCE_FOR.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    let written = producer.await.expect("producer");

    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while DeliveryStats::get(&stats.records_delivered) < written.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {} records delivered {DRAIN_TIMEOUT:?} after the producer stopped",
            DeliveryStats::get(&stats.records_delivered),
            written.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(SHUTDOWN_TIMEOUT, delivery.shutdown())
        .await
        .expect("delivery shuts down");

    // The outage was noticed, and each layer retried: every failed put had retried inside itself
    // for the retry duration (and not much longer) before delivery took over.
    assert!(delivered_before > 0, "objects were delivered before the outage");
    let failures = DeliveryStats::get(&stats.delivery_failures);
    let failed_puts = sink.failed_puts.lock().expect("not poisoned").clone();
    assert!(failures > 0, "the outage was not noticed");
    assert_eq!(failures, failed_puts.len() as u64, "every failure was a failed put");
    for took in &failed_puts {
        assert!(
            (RETRY_DURATION..RETRY_DURATION + Duration::from_secs(5)).contains(took),
            "a failed put took {took:?}; expected the retry duration ({RETRY_DURATION:?}) and a little more"
        );
    }

    // Exactly once: every id in exactly one object, each object a contiguous run of one shard.
    let objects = objects(&s3).await;
    assert_eq!(
        objects.len() as u64,
        DeliveryStats::get(&stats.objects_delivered),
        "one object per delivered batch"
    );
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (key, ids) in &objects {
        assert!(key.starts_with("firehose/"), "{key} is outside the prefix");
        assert!(!ids.is_empty(), "{key} is empty");
        for id in ids {
            if let Some(other) = seen.insert(id, key) {
                panic!("{id} is in both {other} and {key}");
            }
        }
        let seqs: Vec<SequenceNumber> = ids
            .iter()
            .map(|id| {
                *written
                    .get(id)
                    .unwrap_or_else(|| panic!("{key} holds {id}, which was never written"))
            })
            .collect();
        for pair in seqs.windows(2) {
            assert_eq!(pair[1].shard, pair[0].shard, "{key} mixes shards");
            assert_eq!(pair[1].offset, pair[0].offset + 1, "{key} is not a contiguous range");
        }
    }
    assert_eq!(seen.len(), written.len(), "every appended record was delivered");
    eprintln!(
        "{} records in {} objects; {} failed puts during the {OUTAGE:?} outage",
        written.len(),
        objects.len(),
        failed_puts.len()
    );
}

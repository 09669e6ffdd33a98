//! Firehose semantics end to end through a real stream and a real directory: built-in transforms,
//! the error output (field by field), the transformation contract enforced against a real program
//! standing in for the Lambda (missing, duplicated and unknown ids, function errors, retries),
//! Dropped records, partition keys from the transform, prefix expressions, and the counters
//! (`records in = delivered + dropped + failed`). Also: replays keep keys with random strings.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_core::transform::TransformSpec;
use weir_delivery::config::{DynamicPartitioning, ProcessorConfig};
use weir_delivery::encode::Format;
use weir_delivery::intent::IntentStore;
use weir_delivery::{Delivery, DeliveryConfig, DeliveryStats, LocalDirSink};
use weir_stream::{PutRecord, SequenceNumber, ShardId, Stream, StreamConfig};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    stream: Stream,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let config = StreamConfig {
        shard_count: 1,
        ..StreamConfig::default()
    };
    let stream = Stream::open(root.join("streams"), "events", config).expect("open stream");
    Setup {
        _dir: dir,
        root,
        stream,
    }
}

fn base_config() -> DeliveryConfig {
    DeliveryConfig {
        name: "events".into(),
        buffer_bytes: 1024 * 1024,
        buffer_interval: Duration::from_millis(20),
        ..DeliveryConfig::default()
    }
}

fn start(s: &Setup, config: DeliveryConfig) -> Delivery {
    let sink = LocalDirSink::open(s.root.join("bucket")).expect("sink");
    Delivery::start(s.stream.clone(), config, Arc::new(sink), s.root.join("delivery/events")).expect("start")
}

fn shim(mode: &str) -> ProcessorConfig {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lambda_shim.py");
    ProcessorConfig {
        command: Some(vec!["python3".into(), script.display().to_string(), mode.into()]),
        retries: 2,
        ..ProcessorConfig::default()
    }
}

async fn append(stream: &Stream, records: &[String]) {
    let puts = records
        .iter()
        .enumerate()
        .map(|(i, r)| PutRecord::new(format!("k{i}"), r.clone()))
        .collect();
    stream.append(puts).await.expect("append");
}

/// Waits until every record read was accounted for (delivered, dropped or failed).
async fn wait_accounted(stats: &DeliveryStats, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let get = DeliveryStats::get;
        let done = get(&stats.records_delivered) + get(&stats.records_dropped) + get(&stats.records_failed);
        if done >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {done} of {n} records accounted for");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every object under the bucket: key → bytes.
fn objects(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let key = path
                    .strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned();
                out.insert(key, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&root.join("bucket"), &root.join("bucket"), &mut out);
    out
}

fn lines(body: &[u8]) -> Vec<String> {
    String::from_utf8(body.to_vec())
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The error documents in every object whose key contains `marker`.
fn error_documents(objects: &BTreeMap<String, Vec<u8>>, marker: &str) -> Vec<serde_json::Value> {
    objects
        .iter()
        .filter(|(k, _)| k.contains(marker))
        .flat_map(|(_, body)| lines(body))
        .map(|l| serde_json::from_str(&l).expect("an error document is JSON"))
        .collect()
}

fn decoded(raw: &serde_json::Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.as_str().expect("rawData is a string"))
        .expect("base64");
    String::from_utf8(bytes).expect("UTF-8")
}

fn assert_reconciled(stats: &DeliveryStats, n: u64) {
    let get = DeliveryStats::get;
    assert_eq!(get(&stats.records_read), n);
    assert_eq!(
        get(&stats.records_delivered) + get(&stats.records_dropped) + get(&stats.records_failed),
        n,
        "records in = delivered + dropped + failed"
    );
    assert_eq!(stats.records_buffered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_transform_delivers_good_records_and_sends_bad_ones_to_the_error_output() {
    let s = setup();
    let transform: TransformSpec = toml::from_str::<toml::Table>(
        r#"t = { kind = "csv", columns = [
            { name = "id", pointer = "/id", type = "integer" },
            { name = "name", pointer = "/name", type = "string", required = false } ] }"#,
    )
    .expect("toml")["t"]
        .clone()
        .try_into()
        .expect("a csv spec");
    let config = DeliveryConfig {
        format: Format::Csv { header: None }
            .for_transform(&transform)
            .expect("csv format"),
        transform,
        ..base_config()
    };
    let delivery = start(&s, config);
    let records = [
        r#"{"id":1,"name":"a, \"quoted\""}"#.to_owned(),
        r#"{"id":"x"}"#.to_owned(),
        "not json".to_owned(),
        r#"{"id":3}"#.to_owned(),
    ];
    append(&s.stream, &records).await;
    wait_accounted(delivery.stats(), 4).await;
    let stats = delivery.stats().clone();
    delivery.shutdown().await;
    let objects = objects(&s.root);

    let delivered: Vec<_> = objects
        .iter()
        .filter(|(k, _)| !k.starts_with("processing-failed/"))
        .collect();
    assert_eq!(delivered.len(), 1, "{:?}", objects.keys());
    let (key, body) = delivered[0];
    assert!(key.starts_with("20") && key.contains("/events-1-"), "{key}");
    assert_eq!(lines(body), ["id,name", r#"1,"a, ""quoted""""#, "3,"]);

    let docs = error_documents(&objects, "processing-failed/");
    assert_eq!(docs.len(), 2);
    let arrival = s.stream.stats().shards[0].last_arrival_ms;
    let mut raw: Vec<String> = docs.iter().map(|d| decoded(&d["rawData"])).collect();
    raw.sort();
    assert_eq!(raw, ["not json", r#"{"id":"x"}"#]);
    for doc in &docs {
        let fields: Vec<&str> = doc.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(
            fields.len(),
            7,
            "attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp, rawData, lambdaArn: {fields:?}"
        );
        assert_eq!(doc["attemptsMade"], 1);
        assert_eq!(doc["arrivalTimestamp"], arrival);
        assert!(doc["attemptEndingTimestamp"].as_i64().expect("number") >= arrival);
        assert_eq!(doc["lambdaArn"], "weir:csv");
        let code = doc["errorCode"].as_str().expect("code");
        let message = doc["errorMessage"].as_str().expect("message");
        if decoded(&doc["rawData"]) == "not json" {
            assert_eq!(code, "Transform.InvalidJson", "{message}");
        } else {
            assert_eq!(code, "Transform.TypeMismatch");
            assert!(message.contains("id") && message.contains("/id"), "{message}");
        }
    }
    assert_eq!(DeliveryStats::get(&stats.records_delivered), 2);
    assert_eq!(DeliveryStats::get(&stats.records_failed), 2);
    assert_reconciled(&stats, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_contract_fails_the_batch_after_the_retries() {
    for (mode, code) in [
        ("missing", "Lambda.MissingRecordId"),
        ("duplicate", "Lambda.DuplicatedRecordId"),
        ("unknown", "Lambda.MissingRecordId"),
        ("crash", "Lambda.FunctionError"),
    ] {
        let s = setup();
        let delivery = start(
            &s,
            DeliveryConfig {
                processor: shim(mode),
                ..base_config()
            },
        );
        let records: Vec<String> = (0..5).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
        append(&s.stream, &records).await;
        wait_accounted(delivery.stats(), 5).await;
        let stats = delivery.stats().clone();
        delivery.shutdown().await;
        let objects = objects(&s.root);
        assert!(
            objects.keys().all(|k| k.starts_with("processing-failed/")),
            "{mode}: {:?}",
            objects.keys()
        );
        let docs = error_documents(&objects, "processing-failed/");
        assert_eq!(
            docs.len(),
            5,
            "{mode}: every record of the batch goes to the error output"
        );
        for doc in &docs {
            assert_eq!(doc["errorCode"], code, "{mode}: {doc}");
            assert_eq!(doc["attemptsMade"], 3, "{mode}: the first attempt and 2 retries");
            assert!(doc["lambdaArn"].as_str().expect("arn").contains("python3"), "{doc}");
        }
        let mut raw: Vec<String> = docs.iter().map(|d| decoded(&d["rawData"])).collect();
        raw.sort();
        assert_eq!(raw, records, "{mode}: the original records, not the transform's output");
        assert_eq!(DeliveryStats::get(&stats.transform_retries), 2, "{mode}");
        assert_reconciled(&stats, 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_failed_results_are_counted_and_the_rest_delivered() {
    for (mode, dropped, failed) in [("drop-odd", 3, 0), ("fail-odd", 0, 3)] {
        let s = setup();
        let delivery = start(
            &s,
            DeliveryConfig {
                processor: shim(mode),
                ..base_config()
            },
        );
        let records: Vec<String> = (0..6).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
        append(&s.stream, &records).await;
        wait_accounted(delivery.stats(), 6).await;
        let stats = delivery.stats().clone();
        delivery.shutdown().await;
        let objects = objects(&s.root);
        let delivered: Vec<String> = objects
            .iter()
            .filter(|(k, _)| !k.starts_with("processing-failed/"))
            .flat_map(|(_, b)| lines(b))
            .collect();
        assert_eq!(
            delivered,
            [r#"{"N":0}"#, r#"{"N":2}"#, r#"{"N":4}"#],
            "{mode}: the transform's output"
        );
        let docs = error_documents(&objects, "processing-failed/");
        assert_eq!(docs.len() as u64, failed, "{mode}");
        for doc in &docs {
            assert_eq!(doc["errorCode"], "Lambda.ProcessingFailedStatus");
            assert_eq!(doc["errorMessage"], "ProcessingFailed status set for record");
        }
        assert_eq!(DeliveryStats::get(&stats.records_dropped), dropped, "{mode}");
        assert_eq!(DeliveryStats::get(&stats.records_failed), failed, "{mode}");
        assert_reconciled(&stats, 6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_partition_keys_and_prefix_expressions_shape_the_keys() {
    let s = setup();
    let config = DeliveryConfig {
        processor: shim("ok"),
        prefix: Some("kind=!{partitionKeyFromLambda:kind}/year=!{timestamp:yyyy}/!{firehose:random-string}/".into()),
        error_output_prefix: Some("errors/!{firehose:error-output-type}/".into()),
        dynamic_partitioning: Some(DynamicPartitioning {
            query_keys: BTreeMap::new(),
            max_active_partitions: 500,
        }),
        ..base_config()
    };
    let delivery = start(&s, config);
    let records: Vec<String> = ["a", "b", "a", "../etc", "b"]
        .iter()
        .enumerate()
        .map(|(n, kind)| format!(r#"{{"n":{n},"kind":"{kind}"}}"#))
        .collect();
    append(&s.stream, &records).await;
    wait_accounted(delivery.stats(), 5).await;
    let stats = delivery.stats().clone();
    delivery.shutdown().await;
    let objects = objects(&s.root);
    let year = chrono_year();
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, body) in &objects {
        if key.starts_with("errors/") {
            continue;
        }
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 4, "{key}");
        assert_eq!(parts[1], format!("year={year}"), "{key}");
        assert_eq!(parts[2].len(), 11, "{key}: an 11-character random string");
        assert!(parts[3].starts_with("events-1-"), "{key}");
        by_kind.entry(parts[0].to_owned()).or_default().extend(lines(body));
    }
    assert_eq!(by_kind.keys().collect::<Vec<_>>(), ["kind=a", "kind=b"]);
    assert_eq!(by_kind["kind=a"].len(), 2);
    // A value that would leave its prefix goes to the error output instead.
    let docs = error_documents(&objects, "errors/partitioning-failed/");
    assert_eq!(docs.len(), 1, "{:?}", objects.keys());
    assert!(decoded(&docs[0]["rawData"]).contains("../etc"));
    assert_reconciled(&stats, 5);
}

fn chrono_year() -> String {
    chrono::Utc::now().format("%Y").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_rewrites_the_same_keys_even_with_random_strings_and_partitions() {
    let s = setup();
    let config = || DeliveryConfig {
        processor: shim("ok"),
        prefix: Some("kind=!{partitionKeyFromLambda:kind}/!{firehose:random-string}/".into()),
        error_output_prefix: Some("errors/!{firehose:error-output-type}/".into()),
        dynamic_partitioning: Some(DynamicPartitioning {
            query_keys: BTreeMap::new(),
            max_active_partitions: 500,
        }),
        ..base_config()
    };
    let delivery = start(&s, config());
    let records: Vec<String> = (0..40).map(|n| format!(r#"{{"n":{n},"kind":"k{}"}}"#, n % 3)).collect();
    append(&s.stream, &records).await;
    wait_accounted(delivery.stats(), 40).await;
    delivery.shutdown().await;
    let before = objects(&s.root);
    assert_eq!(before.len(), 3, "{:?}", before.keys());

    // As if the process died after writing the objects, before the checkpoint.
    let intents = IntentStore::open(s.root.join("delivery/events")).expect("intents");
    let (first, _) = intents
        .load(ShardId(0))
        .expect("load")
        .expect("intent")
        .bounds()
        .expect("bounds");
    s.stream.deregister_consumer("firehose-events").expect("deregister");
    s.stream.register_consumer("firehose-events").expect("register");
    if first.offset > 0 {
        let before_first = SequenceNumber {
            shard: ShardId(0),
            offset: first.offset - 1,
        };
        s.stream.checkpoint("firehose-events", before_first).expect("rewind");
    }
    let delivery = start(&s, config());
    let deadline = Instant::now() + Duration::from_secs(30);
    while DeliveryStats::get(&delivery.stats().objects_replayed) < 1 {
        assert!(Instant::now() < deadline, "the pending batch was not replayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    delivery.shutdown().await;
    assert_eq!(objects(&s.root), before, "same keys, same bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jq_query_keys_partition_records_and_over_quota_partitions_go_to_the_error_output() {
    let s = setup();
    let config = DeliveryConfig {
        prefix: Some("customer=!{partitionKeyFromQuery:customer}/device=!{partitionKeyFromQuery:device}/".into()),
        error_output_prefix: Some("errors/!{firehose:error-output-type}/".into()),
        dynamic_partitioning: Some(DynamicPartitioning {
            query_keys: BTreeMap::from([
                ("customer".to_owned(), ".customer_id".to_owned()),
                ("device".to_owned(), ".type.device".to_owned()),
            ]),
            max_active_partitions: 2,
        }),
        ..base_config()
    };
    let delivery = start(&s, config);
    let records = [
        r#"{"customer_id":"c1","type":{"device":"mobile"}}"#,
        r#"{"customer_id":"c2","type":{"device":"web"}}"#,
        r#"{"customer_id":"c1","type":{"device":"mobile"}}"#,
        r#"{"customer_id":7,"type":{"device":"web"}}"#,
        r#"{"type":{"device":"web"}}"#,
    ]
    .map(str::to_owned);
    append(&s.stream, &records).await;
    wait_accounted(delivery.stats(), 5).await;
    let stats = delivery.stats().clone();
    delivery.shutdown().await;
    let objects = objects(&s.root);
    let delivered: BTreeMap<String, usize> = objects
        .iter()
        .filter(|(k, _)| !k.starts_with("errors/"))
        .map(|(k, b)| (k.rsplit_once('/').expect("a prefix").0.to_owned(), lines(b).len()))
        .collect();
    // Three partitions with a quota of two: the first two (in key order) are delivered.
    assert_eq!(
        delivered,
        BTreeMap::from([
            ("customer=7/device=web".to_owned(), 1),
            ("customer=c1/device=mobile".to_owned(), 2)
        ])
    );
    let docs = error_documents(&objects, "errors/partitioning-failed/");
    let mut codes: Vec<&str> = docs.iter().map(|d| d["errorCode"].as_str().expect("code")).collect();
    codes.sort();
    assert_eq!(
        codes.len(),
        2,
        "the record without customer_id and the over-quota partition: {docs:?}"
    );
    assert!(
        codes.contains(&"DynamicPartitioning.ActivePartitionsLimitExceeded"),
        "{codes:?}"
    );
    assert_reconciled(&stats, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_objects_carry_firehose_extensions_and_decompress_to_the_records() {
    use weir_delivery::encode::Compression;
    for (compression, extension) in [
        (Compression::Gzip, ".gz"),
        (Compression::Zstd, ".zst"),
        (Compression::Snappy, ".snappy"),
    ] {
        let s = setup();
        let delivery = start(
            &s,
            DeliveryConfig {
                compression,
                ..base_config()
            },
        );
        let records: Vec<String> = (0..50).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
        append(&s.stream, &records).await;
        wait_accounted(delivery.stats(), 50).await;
        delivery.shutdown().await;
        let objects = objects(&s.root);
        assert_eq!(objects.len(), 1);
        let (key, body) = objects.iter().next().expect("one object");
        assert!(key.ends_with(extension), "{key}");
        let plain = match compression {
            Compression::Gzip => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).expect("gzip");
                out
            }
            Compression::Zstd => zstd::decode_all(&body[..]).expect("zstd"),
            _ => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut snap::read::FrameDecoder::new(&body[..]), &mut out).expect("snappy");
                out
            }
        };
        assert_eq!(lines(&plain), records, "{key}");
    }
}

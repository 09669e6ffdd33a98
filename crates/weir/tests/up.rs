//! `weir up` end to end: a real process, real HTTP, real files.

mod common;

use common::{Weir, fast_config, http, objects};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The `sequence_number`s a 200 response acknowledged, checking its shape.
fn acknowledged(response: &common::Response, records: usize) -> Vec<String> {
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(body["failed_record_count"], 0);
    let entries = body["records"].as_array().expect("records");
    assert_eq!(entries.len(), records);
    entries
        .iter()
        .map(|e| {
            let shard = e["shard_id"].as_str().expect("shard_id");
            assert!(shard.starts_with("shardId-") && shard.len() == 20, "{shard}");
            let seq = e["sequence_number"].as_str().expect("sequence_number");
            assert!(seq.len() == 32 && seq.starts_with("49"), "{seq}");
            seq.to_owned()
        })
        .collect()
}

#[test]
fn objects_arrays_ndjson_and_gzip_bodies_land_in_firehose_named_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(""));
    let path = "/v1/streams/events/records";
    let mut expected: Vec<serde_json::Value> = Vec::new();

    let one = serde_json::json!({"id": "single", "user_id": 42, "nested": {"a": [1, 2, {"b": null}]}});
    acknowledged(&weir.post(path, "application/json", one.to_string().as_bytes()), 1);
    expected.push(one);

    // A pretty-printed array: each element still becomes one line.
    let array: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({"id": format!("array-{i}"), "n": i}))
        .collect();
    let pretty = serde_json::to_string_pretty(&array).expect("json");
    acknowledged(&weir.post(path, "application/json", pretty.as_bytes()), 20);
    expected.extend(array);

    let ndjson_records: Vec<serde_json::Value> = (0..30)
        .map(|i| serde_json::json!({"id": format!("ndjson-{i}"), "text": "ünïcødé ✓"}))
        .collect();
    let mut ndjson = String::new();
    for (i, r) in ndjson_records.iter().enumerate() {
        ndjson.push_str(&r.to_string());
        ndjson.push_str(if i % 3 == 0 { "\r\n\n" } else { "\n" });
    }
    acknowledged(&weir.post(path, "application/x-ndjson", ndjson.as_bytes()), 30);
    expected.extend(ndjson_records);

    let gz_records: Vec<serde_json::Value> = (0..10)
        .map(|i| serde_json::json!({"id": format!("gzip-{i}")}))
        .collect();
    let gz_body = gzip(serde_json::to_string(&gz_records).expect("json").as_bytes());
    let response = http(
        weir.addr,
        "POST",
        path,
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        &gz_body,
    );
    acknowledged(&response, 10);
    expected.extend(gz_records);

    let (status, output) = weir.stop();
    assert!(status.success(), "weir up exited with {status}: {output}");

    let objects = objects(&dir.path().join("bucket"));
    assert!(!objects.is_empty());
    let mut delivered: Vec<serde_json::Value> = Vec::new();
    for (key, lines) in &objects {
        // YYYY/MM/dd/HH/events-1-YYYY-MM-dd-HH-mm-ss-<uuid>
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 5, "{key}");
        assert!(
            parts[..4].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
            "{key}"
        );
        let name = parts[4];
        assert!(name.starts_with("events-1-"), "{key}");
        assert_eq!(
            &name[9..22].replace('-', "/"),
            &parts[..4].join("/"),
            "{key}: prefix hour = name hour"
        );
        assert_eq!(name.len(), "events-1-".len() + 19 + 1 + 36, "{key}");
        for line in lines {
            delivered.push(serde_json::from_str(line).expect("one JSON record per line"));
        }
    }
    let key = |v: &serde_json::Value| v["id"].as_str().expect("id").to_owned();
    delivered.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(delivered, expected, "every record exactly once, values intact");
}

#[test]
fn the_default_pipeline_runs_without_a_config_and_prints_how_to_use_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(common::WEIR)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    while !banner.contains("stop with Ctrl-C") {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).expect("read") > 0,
            "{banner}"
        );
        banner.push_str(&line);
    }
    assert!(banner.contains("curl -sS -X POST http://127.0.0.1:"), "{banner}");
    assert!(banner.contains("dashboard: http://127.0.0.1:"), "{banner}");
    assert!(banner.contains("/v1/streams/events/records"), "{banner}");
    assert!(
        banner.contains(&dir.path().join("bucket").display().to_string()),
        "{banner}"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn invalid_configs_fail_at_start_naming_the_key_and_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("weir.toml");
    for (text, needle) in [
        ("[[deliveries]]\nbuffer_size = \"500MiB\"", "deliveries[0].buffer_size"),
        ("[server]\nmax_request_bytes = \"11MB\"", "server.max_request_bytes"),
        ("[server]\nmax_conections = 3", "max_conections"),
    ] {
        std::fs::write(&config, text).expect("write");
        let out = std::process::Command::new(common::WEIR)
            .args(["up", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{text}: {stderr}");
    }
}

#[test]
fn a_non_loopback_address_without_auth_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::WEIR)
        .args(["up", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
}

/// weir.toml's Firehose settings reach the delivery: a csv transform with its header, gzip, a
/// jq-partitioned prefix, and bad records in the error output, all from one POST.
#[test]
fn a_configured_csv_delivery_partitions_compresses_and_routes_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = r#"
[[streams]]
name = "events"
shards = 2

[[deliveries]]
name = "csv"
stream = "events"
buffer_interval = "100ms"
transform = { kind = "csv", columns = [
  { name = "user_id", pointer = "/user_id", type = "integer" },
  { name = "event", pointer = "/event", type = "string" } ] }
format = "csv"
compression = "gzip"
prefix = "event=!{partitionKeyFromQuery:event}/"
error_output_prefix = "errors/!{firehose:error-output-type}/"

[deliveries.dynamic_partitioning]
query_keys = { event = ".event" }
"#;
    let weir = Weir::start(dir.path(), config);
    let body = [
        r#"{"user_id":1,"event":"signup"}"#,
        r#"{"user_id":2,"event":"login"}"#,
        r#"{"user_id":3,"event":"signup"}"#,
        r#"{"user_id":"four","event":"login"}"#,
    ]
    .join("\n");
    let response = weir.post("/v1/streams/events/records", "application/x-ndjson", body.as_bytes());
    acknowledged(&response, 4);
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");

    let bucket = dir.path().join("bucket");
    let mut rows: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    let mut errors = Vec::new();
    for key in keys(&bucket, &bucket) {
        let raw = std::fs::read(bucket.join(&key)).expect("read");
        let mut text = String::new();
        if key.starts_with("errors/") {
            errors.extend(String::from_utf8(raw).expect("UTF-8").lines().map(str::to_owned));
            continue;
        }
        assert!(key.ends_with(".gz"), "{key}");
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text).expect("gzip");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("user_id,event"), "{key}: the header first");
        let partition = key.split('/').next().expect("prefix").to_owned();
        rows.entry(partition).or_default().extend(lines.map(str::to_owned));
    }
    for lines in rows.values_mut() {
        lines.sort();
    }
    assert_eq!(rows["event=signup"], ["1,signup", "3,signup"]);
    assert_eq!(rows["event=login"], ["2,login"]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let doc: serde_json::Value = serde_json::from_str(&errors[0]).expect("JSON");
    assert_eq!(doc["errorCode"], "Transform.TypeMismatch");
}

/// Every object key under `dir` (objects may be binary).
fn keys(dir: &std::path::Path, base: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(keys(&path, base));
        } else {
            out.push(
                path.strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    out
}

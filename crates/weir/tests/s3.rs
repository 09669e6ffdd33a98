//! `weir up` delivering to S3: weir.toml's `[deliveries.s3]` section reaches a real S3-compatible
//! server (s3rver, started by the test), and every acknowledged record is in exactly one object there.

mod common;
#[path = "../../weir-delivery/tests/support/mod.rs"]
mod support;

use common::{Weir, http};
use weir_delivery::{S3Sink, Sink};

#[test]
fn weir_up_delivers_to_s3_from_the_config() {
    let server = support::S3Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        r#"
[[streams]]
name = "events"
shards = 2

[[deliveries]]
name = "events"
stream = "events"
buffer_interval = "100ms"
compression = "gzip"

[deliveries.s3]
bucket = "{bucket}"
prefix = "landing"
region = "us-east-1"
endpoint = "{endpoint}"
path_style = true
access_key_id = "S3RVER"
secret_access_key = "S3RVER"
retry_duration = "5s"
"#,
        bucket = support::BUCKET,
        endpoint = server.endpoint()
    );
    let weir = Weir::start(dir.path(), &config);
    let mut sent = Vec::new();
    for batch in 0..10 {
        let body: String = (0..50)
            .map(|i| {
                let id = batch * 50 + i;
                sent.push(id);
                format!("{{\"id\":{id}}}\n")
            })
            .collect();
        let response = weir.post("/v1/streams/events/records", "application/x-ndjson", body.as_bytes());
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    }
    // The dashboard's object list reads previews back through the S3 sink.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = http(weir.addr, "GET", "/api/objects?limit=1", &[], b"").json();
        if listed.as_array().is_some_and(|a| !a.is_empty()) {
            assert!(
                listed[0]["key"].as_str().is_some_and(|k| k.ends_with(".gz")),
                "{listed}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no object listed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sink = {
        let _guard = runtime.enter();
        S3Sink::new(server.config("landing")).expect("sink")
    };
    let mut ids = Vec::new();
    let keys = sink.list("").expect("list");
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.ends_with(".gz") && key.contains("/events-1-"), "{key}");
        let body = sink.get(key).expect("get");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).expect("gzip");
        for line in text.lines() {
            let record: serde_json::Value = serde_json::from_str(line).expect("JSON");
            ids.push(record["id"].as_u64().expect("id") as usize);
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, sent, "every acknowledged record exactly once");
    drop(runtime);

    // The warehouse loaded the same objects from S3 (DuckDB cannot; the loader reads them through the
    // S3 sink).
    let out = common::weir_query(
        dir.path(),
        None,
        "csv",
        "select count(*) as n, count(distinct record->>'id') as ids, \
         bool_and(_object like '%/events-1-%.gz') as keys from events",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n,ids,keys\n500,500,true\n");
}

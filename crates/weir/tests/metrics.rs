//! `/metrics`, `/api/status` and `/api/objects` against what was sent: the Prometheus text parses
//! (with an independent parser) and its counters equal the records and requests the test made.

mod common;

use common::{Weir, fast_config, http, objects};
use prometheus_parse::{Sample, Scrape, Value};
use std::time::{Duration, Instant};

fn scrape(weir: &Weir) -> Scrape {
    let response = http(weir.addr, "GET", "/metrics", &[], b"");
    assert_eq!(response.status, 200);
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = String::from_utf8(response.body).expect("UTF-8");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"))
}

fn samples<'a>(scrape: &'a Scrape, name: &str) -> Vec<&'a Sample> {
    let found: Vec<&Sample> = scrape.samples.iter().filter(|s| s.metric == name).collect();
    assert!(!found.is_empty(), "no samples of {name}");
    found
}

fn value(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{}: unexpected {other:?}", sample.metric),
    }
}

/// The sum over all label sets of `name` (where `label` = `value`, if given).
fn total(scrape: &Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    samples(scrape, name)
        .into_iter()
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(value)
        .sum()
}

#[test]
fn metrics_and_status_count_what_was_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(""));
    let mut sent = 0;
    for i in 0..20 {
        let body: String = (0..i + 1).map(|k| format!("{{\"request\":{i},\"k\":{k}}}\n")).collect();
        let response = weir.post("/v1/streams/events/records", "application/x-ndjson", body.as_bytes());
        assert_eq!(response.status, 200);
        sent += i + 1;
    }
    // Two rejected requests: counted by status, nothing stored.
    assert_eq!(
        weir.post("/v1/streams/events/records", "application/json", b"[1]")
            .status,
        400
    );
    assert_eq!(
        weir.post("/v1/streams/nope/records", "application/json", b"{}").status,
        404
    );

    // Wait for delivery (100 ms buffers) rather than for a fixed time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let scrape = loop {
        let scrape = scrape(&weir);
        if total(&scrape, "weir_delivery_records_delivered_total", None) as u64 == sent || Instant::now() > deadline {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    assert_eq!(total(&scrape, "weir_api_requests_total", Some(("code", "200"))), 20.0);
    assert_eq!(total(&scrape, "weir_api_requests_total", Some(("code", "400"))), 1.0);
    assert_eq!(total(&scrape, "weir_api_requests_total", Some(("code", "404"))), 1.0);
    assert_eq!(total(&scrape, "weir_api_records_accepted_total", None) as u64, sent);
    assert_eq!(total(&scrape, "weir_stream_incoming_records_total", None) as u64, sent);
    assert_eq!(
        samples(&scrape, "weir_stream_incoming_records_total").len(),
        4,
        "one per shard"
    );
    let bytes = total(&scrape, "weir_stream_incoming_bytes_total", None);
    assert_eq!(bytes, total(&scrape, "weir_api_bytes_accepted_total", None));
    assert!(bytes > 0.0);
    assert_eq!(total(&scrape, "weir_delivery_records_in_total", None) as u64, sent);
    assert_eq!(
        total(&scrape, "weir_delivery_records_delivered_total", None) as u64,
        sent
    );
    assert_eq!(total(&scrape, "weir_delivery_records_buffered", None), 0.0);
    assert_eq!(total(&scrape, "weir_delivery_records_failed_total", None), 0.0);
    let lines: usize = objects(&dir.path().join("bucket")).values().map(Vec::len).sum();
    assert_eq!(lines as u64, sent);
    assert_eq!(
        total(&scrape, "weir_delivery_objects_total", None) as usize,
        objects(&dir.path().join("bucket")).len()
    );
    // The latency histogram: one observation per acknowledged request.
    let histogram = samples(&scrape, "weir_api_put_latency_seconds");
    match &histogram[0].value {
        Value::Histogram(buckets) => {
            let inf = buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .expect("+Inf bucket");
            assert_eq!(inf.count, 20.0);
            assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count), "cumulative");
        }
        other => panic!("latency is not a histogram: {other:?}"),
    }

    // The JSON status says the same.
    let status = http(weir.addr, "GET", "/api/status", &[], b"").json();
    let delivery = &status["deliveries"][0];
    assert_eq!(delivery["records_in"], sent);
    assert_eq!(delivery["records_delivered"], sent);
    assert_eq!(delivery["healthy"], true);
    assert_eq!(status["gateway"]["requests"]["200"], 20);
    let incoming: u64 = status["streams"][0]["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["incoming_records"].as_u64().expect("count"))
        .sum();
    assert_eq!(incoming, sent);

    // The newest objects, with previews that are the objects' first lines.
    let listed = http(weir.addr, "GET", "/api/objects?limit=5", &[], b"").json();
    let listed = listed.as_array().expect("array");
    assert!(!listed.is_empty() && listed.len() <= 5);
    let bucket = objects(&dir.path().join("bucket"));
    for object in listed {
        let key = object["key"].as_str().expect("key");
        let lines = &bucket[key];
        assert_eq!(object["records"], lines.len());
        let preview: Vec<&str> = object["preview"]
            .as_array()
            .expect("preview")
            .iter()
            .map(|l| l.as_str().expect("line"))
            .collect();
        assert_eq!(preview, lines.iter().take(3).map(String::as_str).collect::<Vec<_>>());
    }
    let written: Vec<i64> = listed.iter().map(|o| o["written_ms"].as_i64().expect("ms")).collect();
    assert!(written.windows(2).all(|w| w[0] >= w[1]), "newest first: {written:?}");
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
}

//! The ingest handler against a real Kinesis implementation: kinesalite (npm), started on 127.0.0.1 by
//! the test, read back with GetRecords through aws-sdk-kinesis. For throttling and partial failures a
//! proxy in front of it (tests/kinesis-server/server.js) fails whole PutRecords calls or chosen entries
//! the way Kinesis does, and forwards the rest.

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use support::{KinesisServer, event, fixture_json, ingest_config, kinesis_client};
use weir_core::kinesis::{HashKey, ShardRanges, parse_shard_id};
use weir_lambda::config::{MAX_RECORDS_PER_REQUEST, PARTITION_KEY, PUT_RETRY_DEADLINE_MS};
use weir_lambda::ingest::Ingest;
use weir_lambda::put::Backoff;

/// Short waits, so the retry tests take milliseconds.
const FAST: Backoff = Backoff {
    base: Duration::from_millis(5),
    max: Duration::from_millis(20),
};

fn ndjson_event(stream: &str, lines: &[String]) -> weir_lambda::gateway::GatewayEvent {
    let mut value = fixture_json("apigw-v2-http-api.json");
    value["rawPath"] = format!("/v1/streams/{stream}/records").into();
    value["pathParameters"] = json!({ "stream": stream });
    value["headers"]["content-type"] = "application/x-ndjson".into();
    value["body"] = lines.join("\n").into();
    event(&value)
}

/// `n` records `{"tag":"t<i>","user_id":"u<i % keys>"}`.
fn tagged(n: usize, keys: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"tag":"t{i}","user_id":"u{}"}}"#, i % keys))
        .collect()
}

/// The tag of a record's data.
fn tag(data: &str) -> String {
    let value: Value = serde_json::from_str(data).expect("JSON data");
    value["tag"].as_str().expect("a tag").to_owned()
}

fn body(response: &weir_lambda::gateway::GatewayResponse) -> Value {
    serde_json::from_str(response.body()).unwrap_or_else(|e| panic!("{e}: {}", response.body()))
}

#[tokio::test]
async fn records_from_both_payload_versions_are_read_back_with_their_keys_shards_and_sequence_numbers() {
    let Some(kinesis) = KinesisServer::start() else { return };
    kinesis.create_stream("events", 2).await;
    let random = Ingest::new(ingest_config("events", &[]), kinesis_client(&kinesis.endpoint()));
    let keyed = Ingest::new(
        ingest_config("events", &[(PARTITION_KEY, "/user_id")]),
        kinesis_client(&kinesis.endpoint()),
    );

    // Payload 2.0 (HTTP API, the fixture's JSON array), random partition keys.
    let (response, counts) = random
        .handle(&event(&fixture_json("apigw-v2-http-api.json")), None)
        .await;
    assert_eq!(response.status(), 200, "{}", response.body());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        (counts.received, counts.put, counts.failed, counts.retried),
        (2, 2, 0, 0)
    );
    let v2 = body(&response);
    assert_eq!(v2["failed_record_count"], 0);
    // Payload 1.0 (REST proxy, the fixture's NDJSON), keys from /user_id.
    let (response, _) = keyed
        .handle(&event(&fixture_json("apigw-v1-rest-proxy.json")), None)
        .await;
    assert_eq!(response.status(), 200, "{}", response.body());
    let v1 = body(&response);
    // Base64 + gzip, as API Gateway delivers a compressed body; header names in another case.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        b"[{\"user_id\":\"u3\",\"event\":\"gz\"}, {\"user_id\":9,\n  \"event\":\"gz\"}]",
    )
    .expect("gzip");
    let mut value = fixture_json("apigw-v1-rest-proxy.json");
    value["multiValueHeaders"] = json!({"CONTENT-TYPE": ["application/json"], "Content-Encoding": ["GZIP"]});
    value["body"] =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, gz.finish().expect("gzip")).into();
    value["isBase64Encoded"] = true.into();
    let (response, _) = keyed.handle(&event(&value), None).await;
    assert_eq!(response.status(), 200, "{}", response.body());
    let gz_reply = body(&response);

    let stored = kinesis.read_all("events").await;
    assert_eq!(stored.len(), 6, "{stored:?}");
    let by_sequence: HashMap<&str, &(String, String, String, String)> =
        stored.iter().map(|r| (r.3.as_str(), r)).collect();
    let expected = [
        (&v2, 0, None, r#"{"user_id":42,"event":"signup"}"#),
        (&v2, 1, None, r#"{"user_id":7,"event":"login"}"#),
        (&v1, 0, Some("u1"), r#"{"user_id":"u1","event":"view"}"#),
        (&v1, 1, Some("u2"), r#"{"user_id":"u2","event":"click"}"#),
        (&gz_reply, 0, Some("u3"), r#"{"user_id":"u3","event":"gz"}"#),
        // A record with a line break inside is stored compacted, as weir up stores it.
        (&gz_reply, 1, Some("9"), r#"{"user_id":9,"event":"gz"}"#),
    ];
    let ranges = ShardRanges::even(2);
    for (reply, index, key, data) in expected {
        let entry = &reply["records"][index];
        let sequence = entry["sequence_number"].as_str().expect("a sequence number");
        let (shard, partition_key, stored_data, _) = by_sequence
            .get(sequence)
            .unwrap_or_else(|| panic!("{sequence} not in the stream: {stored:?}"));
        assert_eq!(entry["shard_id"].as_str(), Some(shard.as_str()), "{data}");
        assert_eq!(stored_data, data);
        match key {
            Some(key) => assert_eq!(partition_key, key),
            None => assert_eq!(partition_key.len(), 32, "a random key: {partition_key}"),
        }
        // Kinesis routed it by MD5 of the key, as weir-core computes it.
        let shard_index = ranges.shard_for(HashKey::from_partition_key(partition_key));
        assert_eq!(parse_shard_id(shard), Some(shard_index), "{partition_key}");
    }
}

#[tokio::test]
async fn throttled_calls_and_failed_entries_are_retried_and_stored_exactly_once_in_order_per_key() {
    let Some(kinesis) = KinesisServer::start() else { return };
    kinesis.create_stream("faulty", 2).await;
    let ingest = Ingest::new(
        ingest_config(
            "faulty",
            &[(PARTITION_KEY, "/user_id"), (PUT_RETRY_DEADLINE_MS, "5000")],
        ),
        kinesis_client(&kinesis.proxy_endpoint()),
    )
    .with_backoff(FAST);
    // Two whole calls refused (throttled, then a 500), then entries t3 (twice) and t7 (once) failed.
    kinesis.set_faults(json!({
        "calls": [
            {"status": 400, "type": "ProvisionedThroughputExceededException"},
            {"status": 500, "type": "InternalFailure"}
        ],
        "entries": [
            {"contains": "\"tag\":\"t3\"", "code": "ProvisionedThroughputExceededException", "times": 2},
            {"contains": "\"tag\":\"t7\"", "code": "InternalFailure", "times": 1}
        ]
    }));
    let records = tagged(20, 3);
    let (response, counts) = ingest.handle(&ndjson_event("faulty", &records), None).await;
    assert_eq!(response.status(), 200, "{}", response.body());
    let reply = body(&response);
    assert_eq!(reply["failed_record_count"], 0);
    // Sends: 20 + 20 (the refused calls), then 20 with t3 and t7 failed, then t3 and t7, then t3.
    assert_eq!((counts.received, counts.put, counts.failed), (20, 20, 0));
    assert_eq!(counts.retried, 20 + 20 + 2 + 1);
    let stats = kinesis.stats();
    assert_eq!(stats["putRecordsCalls"], 5, "{stats}");
    assert_eq!(
        (stats["callsFailed"].as_u64(), stats["entriesFailed"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(stats["entriesForwarded"], 20);

    let stored = kinesis.read_all("faulty").await;
    let mut tags: Vec<String> = stored.iter().map(|r| tag(&r.2)).collect();
    tags.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    expected.sort();
    assert_eq!(tags, expected, "every record exactly once");
    // The reply's sequence numbers are the stored ones, in request order.
    for (i, entry) in reply["records"].as_array().expect("records").iter().enumerate() {
        let record = stored
            .iter()
            .find(|r| Some(r.3.as_str()) == entry["sequence_number"].as_str())
            .unwrap_or_else(|| panic!("record {i}: {entry} not stored"));
        assert_eq!(tag(&record.2), format!("t{i}"));
        assert_eq!(Some(record.0.as_str()), entry["shard_id"].as_str());
    }
    // Per key, in the order Kinesis holds them (read_all is in sequence order per shard, and a key's
    // records share a shard): request order, except that a retried record comes after the records that
    // went through before it, and a record retried twice after one retried once. PutRecords promises no
    // more than that.
    let order = |key: &str| -> Vec<String> { stored.iter().filter(|r| r.1 == key).map(|r| tag(&r.2)).collect() };
    assert_eq!(order("u0"), ["t0", "t6", "t9", "t12", "t15", "t18", "t3"]);
    assert_eq!(order("u1"), ["t1", "t4", "t10", "t13", "t16", "t19", "t7"]);
    assert_eq!(order("u2"), ["t2", "t5", "t8", "t11", "t14", "t17"]);
}

#[tokio::test]
async fn records_kinesis_keeps_refusing_get_a_503_listing_exactly_what_was_stored() {
    let Some(kinesis) = KinesisServer::start() else { return };
    kinesis.create_stream("stuck", 1).await;
    let ingest = Ingest::new(
        ingest_config("stuck", &[(PUT_RETRY_DEADLINE_MS, "300")]),
        kinesis_client(&kinesis.proxy_endpoint()),
    )
    .with_backoff(FAST);
    kinesis.set_faults(json!({"entries": [
        {"contains": "\"tag\":\"t2\"", "code": "ProvisionedThroughputExceededException", "times": null},
        {"contains": "\"tag\":\"t5\"", "code": "InternalFailure", "times": null}
    ]}));
    let started = std::time::Instant::now();
    let (response, counts) = ingest.handle(&ndjson_event("stuck", &tagged(8, 4)), None).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503, "{}", response.body());
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!((counts.received, counts.put, counts.failed), (8, 6, 2));
    assert!(counts.retried >= 2, "{counts:?}");

    let reply = body(&response);
    assert_eq!(reply["error"]["code"], "records_not_stored", "{reply}");
    let message = reply["error"]["message"].as_str().expect("a message");
    assert!(message.starts_with("2 of 8 records were not stored"), "{message}");
    assert_eq!(reply["failed_record_count"], 2);
    let stored = kinesis.read_all("stuck").await;
    assert_eq!(stored.len(), 6, "{stored:?}");
    let entries = reply["records"].as_array().expect("records");
    assert_eq!(entries.len(), 8);
    for (i, entry) in entries.iter().enumerate() {
        match i {
            2 => assert_eq!(entry["error_code"], "ProvisionedThroughputExceededException", "{entry}"),
            5 => assert_eq!(entry["error_code"], "InternalFailure", "{entry}"),
            _ => {
                let record = stored
                    .iter()
                    .find(|r| Some(r.3.as_str()) == entry["sequence_number"].as_str())
                    .unwrap_or_else(|| panic!("record {i}: {entry} is listed stored but is not in the stream"));
                assert_eq!(tag(&record.2), format!("t{i}"));
                assert_eq!(Some(record.0.as_str()), entry["shard_id"].as_str());
                assert_eq!(entry.as_object().map(|o| o.len()), Some(2), "{entry}");
            }
        }
        if matches!(i, 2 | 5) {
            assert!(
                entry["error_message"].as_str().is_some_and(|m| !m.is_empty()),
                "{entry}"
            );
            assert!(entry.get("sequence_number").is_none(), "{entry}");
        }
    }
    let mut stored_tags: Vec<String> = stored.iter().map(|r| tag(&r.2)).collect();
    stored_tags.sort();
    assert_eq!(stored_tags, ["t0", "t1", "t3", "t4", "t6", "t7"]);
}

#[tokio::test]
async fn a_request_over_500_records_goes_out_in_chunks_and_a_refused_chunk_stops_the_rest() {
    let Some(kinesis) = KinesisServer::start() else { return };
    kinesis.create_stream("big", 2).await;
    let ingest = Ingest::new(
        ingest_config(
            "big",
            &[(MAX_RECORDS_PER_REQUEST, "1200"), (PUT_RETRY_DEADLINE_MS, "300")],
        ),
        kinesis_client(&kinesis.proxy_endpoint()),
    )
    .with_backoff(FAST);

    kinesis.set_faults(json!({}));
    let (response, counts) = ingest.handle(&ndjson_event("big", &tagged(1200, 7)), None).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        &response.body()[..200.min(response.body().len())]
    );
    assert_eq!(counts.put, 1200);
    assert_eq!(kinesis.stats()["putRecordsCalls"], 3, "500 + 500 + 200");
    assert_eq!(kinesis.read_all("big").await.len(), 1200);

    // The second chunk is refused for good (access denied): the first stays stored, the third is not sent.
    kinesis.set_faults(json!({"calls": [
        {"pass": true},
        {"status": 400, "type": "AccessDeniedException", "message": "not authorized to perform kinesis:PutRecords"}
    ]}));
    let (response, counts) = ingest.handle(&ndjson_event("big", &tagged(1200, 7)), None).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.header("retry-after"), None);
    assert_eq!((counts.put, counts.failed, counts.retried), (500, 700, 0));
    assert_eq!(kinesis.stats()["putRecordsCalls"], 2, "the third chunk is not sent");
    let reply = body(&response);
    assert_eq!(reply["error"]["code"], "stream_error");
    assert_eq!(reply["failed_record_count"], 700);
    let entries = reply["records"].as_array().expect("records");
    assert!(entries[..500].iter().all(|e| e["sequence_number"].is_string()));
    assert!(
        entries[500..1000]
            .iter()
            .all(|e| e["error_code"] == "AccessDeniedException")
    );
    assert!(entries[1000..].iter().all(|e| e["error_code"] == "NotSent"));
    assert_eq!(kinesis.read_all("big").await.len(), 1200 + 500);
}

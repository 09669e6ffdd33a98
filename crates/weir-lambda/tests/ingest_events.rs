//! The ingest handler on API Gateway events (payload 2.0 and REST/1.0, from AWS-documented fixtures):
//! every bad request gets `weir up`'s status, code and `record_index` (the cases of
//! crates/weir/tests/bad_input.rs that reach a handler through API Gateway), in both payload versions,
//! and never reaches Kinesis: the client points at a closed port, so a request that got as far as
//! `PutRecords` would answer 503 or 500 instead.

mod support;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use std::io::Write;
use support::{event, fixture_json, ingest_config, kinesis_client};
use weir_lambda::config::{MAX_REQUEST_BYTES, PARTITION_KEY, PUT_RETRY_DEADLINE_MS};
use weir_lambda::gateway::GatewayResponse;
use weir_lambda::ingest::Ingest;

const EVENTS: &str = "/v1/streams/events/records";
const KEYED: &str = "/v1/streams/keyed/records";
const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const MAX_BODY: usize = 5 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
enum Version {
    V1,
    V2,
}

/// Nothing listens on port 9 of 127.0.0.1 (discard): any PutRecords fails at once.
const NO_KINESIS: &str = "http://127.0.0.1:9";

fn functions() -> (Ingest, Ingest) {
    let deadline = [(PUT_RETRY_DEADLINE_MS, "50")];
    let events = Ingest::new(ingest_config("events", &deadline), kinesis_client(NO_KINESIS));
    let keyed = Ingest::new(
        ingest_config("keyed", &[(PUT_RETRY_DEADLINE_MS, "50"), (PARTITION_KEY, "/user_id")]),
        kinesis_client(NO_KINESIS),
    );
    (events, keyed)
}

/// An event as API Gateway would send it for this request: the fixture of `version` with its method,
/// path, headers and body replaced. Bodies that are not UTF-8 (gzip) arrive base64-encoded, as API
/// Gateway sends binary bodies; `stream` is a path parameter only when the records route matched.
fn request(version: Version, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let (text, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64_encode(body), true),
    };
    let stream = path
        .strip_prefix("/v1/streams/")
        .and_then(|rest| rest.strip_suffix("/records"))
        .filter(|s| !s.contains('/'));
    let parameters = stream.map_or(Value::Null, |s| json!({ "stream": s }));
    match version {
        Version::V2 => {
            let mut e = fixture_json("apigw-v2-http-api.json");
            // HTTP APIs lowercase header names.
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), Value::from(*v)))
                .collect();
            e["rawPath"] = path.into();
            e["requestContext"]["http"]["method"] = method.into();
            e["requestContext"]["http"]["path"] = path.into();
            e["headers"] = Value::Object(headers);
            e["pathParameters"] = parameters;
            e["body"] = text.into();
            e["isBase64Encoded"] = base64.into();
            e
        }
        Version::V1 => {
            let mut e = fixture_json("apigw-v1-rest-proxy.json");
            let single: serde_json::Map<String, Value> =
                headers.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
            let multi: serde_json::Map<String, Value> =
                headers.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
            e["httpMethod"] = method.into();
            e["path"] = path.into();
            e["requestContext"]["httpMethod"] = method.into();
            e["requestContext"]["path"] = format!("/prod{path}").into();
            e["headers"] = Value::Object(single);
            e["multiValueHeaders"] = Value::Object(multi);
            e["pathParameters"] = parameters;
            e["body"] = text.into();
            e["isBase64Encoded"] = base64.into();
            e
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip into a Vec");
    encoder.finish().expect("gzip into a Vec")
}

fn array_of(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!("{{\"rejected\":{i}}}")).collect();
    format!("[{}]", items.join(","))
}

/// Asserts `response` is `weir up`'s JSON error: status, code, `record_index` exactly as given, only
/// `code`/`message`(/`record_index`) in the error object, `Retry-After` only on 429/503. Returns the message.
fn assert_error(case: &str, response: &GatewayResponse, status: u16, code: &str, record_index: Option<u64>) -> String {
    let text = response.body();
    assert_eq!(response.status(), status, "{case}: status ({text})");
    assert_eq!(response.header("content-type"), Some(JSON), "{case}: content type");
    let body: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{case}: {e}: {text}"));
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{case}: no error object in {text}"));
    assert_eq!(error["code"], code, "{case}: code ({text})");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{case}: empty message");
    assert_eq!(
        error.get("record_index").and_then(Value::as_u64),
        record_index,
        "{case}: record_index ({text})"
    );
    assert_eq!(
        error.len(),
        2 + usize::from(record_index.is_some()),
        "{case}: error fields"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "{case}: only `error` at the top"
    );
    assert_eq!(
        response.header("retry-after").is_some(),
        matches!(status, 429 | 503),
        "{case}: Retry-After"
    );
    message.to_owned()
}

/// Bad headers on a good body: (case, headers, status, code).
type HeaderCase = (&'static str, &'static [(&'static str, &'static str)], u16, &'static str);
/// A bad body: (case, path, content type, body, status, code, record_index).
type BodyCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [u8],
    u16,
    &'static str,
    Option<u64>,
);

#[tokio::test]
async fn bad_requests_get_weir_ups_status_code_and_record_index_in_both_payload_versions() {
    let (events, keyed) = functions();
    #[rustfmt::skip]
    let body_cases: &[BodyCase] = &[
        ("invalid JSON", EVENTS, JSON, br#"{"rejected": 1,}"#, 400, "invalid_json", Some(0)),
        ("empty body", EVENTS, JSON, b"", 400, "empty", None),
        ("only whitespace", EVENTS, JSON, b" \r\n\t ", 400, "empty", None),
        ("empty array", EVENTS, JSON, b"[]", 400, "empty", None),
        ("array holding a number", EVENTS, JSON, br#"[{"rejected":0},2]"#, 400, "not_an_object", Some(1)),
        ("top-level string", EVENTS, JSON, br#""rejected""#, 400, "not_an_object", None),
        ("trailing comma", EVENTS, JSON, br#"[{"rejected":0},]"#, 400, "invalid_json", None),
        ("unclosed array", EVENTS, JSON, br#"[{"rejected":0}"#, 400, "invalid_json", None),
        ("text after the array", EVENTS, JSON, br#"[{"rejected":0}] {}"#, 400, "invalid_json", None),
        (
            "NDJSON, a bad line in the middle", EVENTS, NDJSON,
            b"{\"rejected\":0}\n{\"rejected\":\n{\"rejected\":2}\n", 400, "invalid_json", Some(1),
        ),
        (
            "JSONL, an array line", EVENTS, "application/jsonl",
            b"{\"rejected\":0}\r\n\r\n{\"rejected\":1}\r\n[{\"rejected\":2}]\r\n", 400, "not_an_object", Some(2),
        ),
        ("NDJSON of blank lines", EVENTS, NDJSON, b"\n\r\n \n", 400, "empty", None),
        (
            "partition key missing", KEYED, JSON,
            br#"[{"user_id":"u1","rejected":0},{"userid":"u2"}]"#, 400, "partition_key_missing", Some(1),
        ),
        ("partition key is an object", KEYED, JSON, br#"{"user_id":{"id":1}}"#, 400, "partition_key_invalid", Some(0)),
        ("partition key is null", KEYED, NDJSON, b"{\"user_id\":null}\n", 400, "partition_key_invalid", Some(0)),
        ("partition key is empty", KEYED, JSON, br#"{"user_id":""}"#, 400, "partition_key_invalid", Some(0)),
    ];
    let mut cases = 0;
    for version in [Version::V1, Version::V2] {
        let run = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
            let e = event(&request(version, method, path, headers, body));
            let function = if path == KEYED { &keyed } else { &events };
            async move { function.handle(&e, None).await }
        };
        for &(case, path, content_type, body, status, code, record_index) in body_cases {
            let (response, counts) = run("POST", path, &[("Content-Type", content_type)], body).await;
            let case = format!("{version:?} {case}");
            let message = assert_error(&case, &response, status, code, record_index);
            if path == KEYED {
                assert!(message.contains("/user_id"), "{case}: {message}");
            }
            assert_eq!((counts.received, counts.status), (0, status), "{case}");
            cases += 1;
        }

        // Invalid UTF-8 reaches the function base64-encoded (API Gateway treats it as binary).
        let (response, _) = run(
            "POST",
            EVENTS,
            &[("Content-Type", JSON)],
            b"{\"rejected\":\"\xff\xfe\"}",
        )
        .await;
        assert_error(
            &format!("{version:?} invalid UTF-8"),
            &response,
            400,
            "invalid_utf8",
            Some(0),
        );

        let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        let (response, _) = run("POST", EVENTS, &[("Content-Type", JSON)], deep.as_bytes()).await;
        assert_error(
            &format!("{version:?} 10,000-deep nesting"),
            &response,
            400,
            "too_deep",
            Some(0),
        );

        let long_key = format!("{{\"user_id\":\"{}\"}}", "k".repeat(257));
        let (response, _) = run("POST", KEYED, &[("Content-Type", JSON)], long_key.as_bytes()).await;
        assert_error(
            &format!("{version:?} 257-character key"),
            &response,
            400,
            "partition_key_invalid",
            Some(0),
        );

        // Headers: media types, charsets, encodings.
        let record = br#"{"rejected":"headers"}"#;
        #[rustfmt::skip]
        let header_cases: &[HeaderCase] = &[
            ("Content-Type: text/plain", &[("Content-Type", "text/plain")], 415, "unsupported_media_type"),
            ("no Content-Type", &[], 415, "unsupported_media_type"),
            ("multipart/form-data", &[("Content-Type", "multipart/form-data; boundary=x")], 415, "unsupported_media_type"),
            ("charset=iso-8859-1", &[("Content-Type", "application/json; charset=iso-8859-1")], 415, "unsupported_charset"),
            ("Content-Encoding: br", &[("Content-Type", JSON), ("Content-Encoding", "br")], 415, "unsupported_encoding"),
            ("gzip applied twice", &[("Content-Type", JSON), ("Content-Encoding", "gzip, gzip")], 415, "unsupported_encoding"),
            ("gzip header, plain body", &[("Content-Type", JSON), ("Content-Encoding", "gzip")], 400, "invalid_gzip"),
            ("non-ASCII Content-Type", &[("Content-Type", "application/json\u{e9}")], 400, "invalid_header"),
        ];
        for &(case, headers, status, code) in header_cases {
            let (response, _) = run("POST", EVENTS, headers, record).await;
            let case = format!("{version:?} {case}");
            let message = assert_error(&case, &response, status, code, None);
            if code == "invalid_header" {
                assert_eq!(message, "content-type is not ASCII", "{case}: as weir up words it");
            }
            cases += 1;
        }

        let gz = gzip(array_of(3).as_bytes());
        let gzip_headers = [("Content-Type", JSON), ("Content-Encoding", "gzip")];
        let (response, _) = run("POST", EVENTS, &gzip_headers, &gz[..gz.len() / 2]).await;
        assert_error(
            &format!("{version:?} truncated gzip"),
            &response,
            400,
            "invalid_gzip",
            None,
        );

        // A gzip bomb: 100 MiB of zeros in ~100 KB, refused once 5 MiB are inflated.
        let bomb = gzip(&vec![0u8; 100 << 20]);
        let (response, _) = run("POST", EVENTS, &gzip_headers, &bomb).await;
        let message = assert_error(
            &format!("{version:?} gzip bomb"),
            &response,
            413,
            "body_too_large",
            None,
        );
        assert!(message.contains("decompresses"), "{message}");

        // Sizes and counts.
        let (response, _) = run("POST", EVENTS, &[("Content-Type", JSON)], array_of(501).as_bytes()).await;
        assert_error(
            &format!("{version:?} 501 records"),
            &response,
            413,
            "too_many_records",
            None,
        );
        let ndjson: String = (0..=500).map(|i| format!("{{\"rejected\":{i}}}\n")).collect();
        let (response, _) = run("POST", EVENTS, &[("Content-Type", NDJSON)], ndjson.as_bytes()).await;
        assert_error(
            &format!("{version:?} 501 NDJSON lines"),
            &response,
            413,
            "too_many_records",
            None,
        );
        let big = format!("[{{\"rejected\":0}},{{\"rejected\":\"{}\"}}]", "x".repeat(1024 * 1024));
        let (response, _) = run("POST", EVENTS, &[("Content-Type", JSON)], big.as_bytes()).await;
        assert_error(
            &format!("{version:?} a record over 1 MiB"),
            &response,
            413,
            "record_too_large",
            Some(1),
        );
        let mut over = array_of(10).into_bytes();
        over.resize(MAX_BODY + 1, b' ');
        let (response, _) = run("POST", EVENTS, &[("Content-Type", JSON)], &over).await;
        let message = assert_error(
            &format!("{version:?} a body over 5 MiB"),
            &response,
            413,
            "body_too_large",
            None,
        );
        assert_eq!(
            message,
            format!("the request body exceeds {MAX_BODY} bytes"),
            "as weir up words it"
        );

        // Routing.
        let json = [("Content-Type", JSON)];
        let record = br#"{"rejected":"routing"}"#;
        let (response, _) = run("POST", "/v1/streams/nope/records", &json, record).await;
        let message = assert_error(
            &format!("{version:?} unknown stream"),
            &response,
            404,
            "unknown_stream",
            None,
        );
        assert_eq!(message, r#"no stream named "nope""#);
        for path in [
            "/v1/records",
            "/v1/streams/events",
            "/v1/streams/events/records/1",
            "/v2",
        ] {
            let (response, _) = run("POST", path, &json, record).await;
            assert_error(
                &format!("{version:?} unknown path {path}"),
                &response,
                404,
                "not_found",
                None,
            );
        }
        for method in ["GET", "PUT", "DELETE", "PATCH"] {
            let (response, _) = run(method, EVENTS, &json, record).await;
            assert_error(
                &format!("{version:?} {method}"),
                &response,
                405,
                "method_not_allowed",
                None,
            );
            assert_eq!(response.header("allow"), Some("POST"), "{method}");
        }
        cases += 24;
    }
    assert!(cases >= 60, "{cases} cases");
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_refused_as_sent_and_after_decompression() {
    let small = Ingest::new(
        ingest_config("events", &[(MAX_REQUEST_BYTES, "1000")]),
        kinesis_client(NO_KINESIS),
    );
    let records = format!("[{}]", vec![r#"{"pad":"xxxxxxxxxxxxxxxxxxxx"}"#; 40].join(","));
    assert!(records.len() > 1000);
    let e = event(&request(
        Version::V2,
        "POST",
        EVENTS,
        &[("Content-Type", JSON)],
        records.as_bytes(),
    ));
    let (response, _) = small.handle(&e, None).await;
    let message = assert_error("as sent", &response, 413, "body_too_large", None);
    assert_eq!(message, "the request body exceeds 1000 bytes");
    let gz = gzip(records.as_bytes());
    assert!(gz.len() < 1000, "compressed: {}", gz.len());
    let e = event(&request(
        Version::V2,
        "POST",
        EVENTS,
        &[("Content-Type", JSON), ("Content-Encoding", "gzip")],
        &gz,
    ));
    let (response, _) = small.handle(&e, None).await;
    let message = assert_error("after gzip", &response, 413, "body_too_large", None);
    assert!(message.contains("decompresses to more than 1000 bytes"), "{message}");
}

#[tokio::test]
async fn invalid_base64_from_the_gateway_is_a_body_read_failure() {
    let (events, _) = functions();
    let mut value = request(Version::V2, "POST", EVENTS, &[("Content-Type", JSON)], b"{}");
    value["body"] = "not base64!".into();
    value["isBase64Encoded"] = true.into();
    let (response, _) = events.handle(&event(&value), None).await;
    assert_error("bad base64", &response, 400, "body_read_failed", None);
}

#[tokio::test]
async fn both_payload_versions_answer_in_their_own_shape() {
    let (events, _) = functions();
    for (version, fields) in [(Version::V1, 5), (Version::V2, 6)] {
        let e = event(&request(version, "POST", "/v2", &[("Content-Type", JSON)], b"{}"));
        let (response, _) = events.handle(&e, None).await;
        let json = serde_json::to_value(&response).expect("serializable");
        assert_eq!(json["statusCode"], 404, "{version:?}: {json}");
        assert_eq!(json["headers"]["content-type"], JSON, "{version:?}: {json}");
        assert_eq!(json["isBase64Encoded"], false, "{version:?}: {json}");
        let body: Value = serde_json::from_str(json["body"].as_str().expect("a string body")).expect("JSON");
        assert_eq!(body["error"]["code"], "not_found");
        // payload 2.0's response has `cookies`; 1.0's does not.
        assert_eq!(json.as_object().map(|o| o.len()), Some(fields), "{version:?}: {json}");
    }
}

#[tokio::test]
async fn a_rejected_request_emits_an_emf_line_with_requests_rejected_by_status() {
    let (events, _) = functions();
    let e = event(&request(
        Version::V2,
        "POST",
        EVENTS,
        &[("Content-Type", "text/plain")],
        b"{}",
    ));
    let (_, counts) = events.handle(&e, None).await;
    let line = counts.counters().emf_line(&events.config().metrics, 1_795_515_300_000);
    let doc: Value = serde_json::from_str(&line).expect("an EMF line is one JSON object");
    let aws = &doc["_aws"];
    assert_eq!(aws["Timestamp"], 1_795_515_300_000u64);
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics is an array");
    assert_eq!(directives.len(), 2, "{line}");
    for directive in directives {
        assert_eq!(directive["Namespace"], "weir", "{line}");
        // Every dimension and every metric the directive names is a top-level member of the line.
        for dimension in directive["Dimensions"][0].as_array().expect("one dimension set") {
            let name = dimension.as_str().expect("a dimension name");
            assert!(doc[name].is_string(), "{name} in {line}");
        }
        for metric in directive["Metrics"].as_array().expect("metrics") {
            assert_eq!(metric["Unit"], "Count");
            let name = metric["Name"].as_str().expect("a metric name");
            assert!(doc[name].is_u64(), "{name} in {line}");
        }
    }
    assert_eq!(directives[0]["Dimensions"], json!([["FunctionName"]]));
    let names: Vec<&str> = directives[0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert_eq!(names, ["RecordsReceived", "RecordsPut", "PutRetries", "RecordsFailed"]);
    assert_eq!(directives[1]["Dimensions"], json!([["FunctionName", "Status"]]));
    assert_eq!(
        directives[1]["Metrics"],
        json!([{"Name": "RequestsRejected", "Unit": "Count"}])
    );
    assert_eq!(
        (doc["FunctionName"].as_str(), doc["Status"].as_str()),
        (Some("ingest"), Some("415"))
    );
    assert_eq!(doc["RequestsRejected"], 1);
    assert_eq!(doc["RecordsReceived"], 0);
}

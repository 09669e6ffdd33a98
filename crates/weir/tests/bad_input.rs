//! Bad input against one real `weir up`: every rejected request gets its documented status and JSON error
//! (with `record_index` when one record is at fault), the server keeps serving after each, slow clients
//! are cut off, and nothing from a rejected request is ever stored: after the battery, exactly the three
//! good records are in the bucket.

mod common;

use common::{Response, Weir, http, objects, read_response};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const EVENTS: &str = "/v1/streams/events/records";
const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
/// The stream whose partition key is the pointer `/user_id`.
const KEYED: &str = "/v1/streams/keyed/records";
/// `max_request_bytes` of [`CONFIG`] (the default, 5 MiB): above Kinesis's 1 MiB record limit, so an
/// oversized record is told apart from an oversized body.
const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
const MAX_RECORDS: usize = 500;
/// The server's header and body read timeouts in [`CONFIG`].
const TIMEOUT: Duration = Duration::from_secs(1);

const CONFIG: &str = r#"
[server]
max_records_per_request = 500
max_request_bytes = "5MiB"
max_json_depth = 64
header_read_timeout = "1s"
body_read_timeout = "1s"

[[streams]]
name = "events"
shards = 4

[[streams]]
name = "keyed"
shards = 2
partition_key = "/user_id"

[[deliveries]]
name = "events"
stream = "events"
buffer_interval = "100ms"

[[deliveries]]
name = "keyed"
stream = "keyed"
buffer_interval = "100ms"
"#;

const TOKEN: &str = "0123456789abcdef-token";

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
/// Bad headers on a good body: (case, headers, status, code).
type HeaderCase = (&'static str, &'static [(&'static str, &'static str)], u16, &'static str);

/// Runs cases against one server, counting them; every check ends with the server still healthy.
struct Battery {
    addr: SocketAddr,
    cases: usize,
}

impl Battery {
    /// Asserts `response` is the JSON error `code` with `status`, with `record_index` exactly as given
    /// (absent for `None`), `Retry-After` only on 429 and 503, `WWW-Authenticate: Bearer` only on 401;
    /// then that the server still serves. Returns the error message.
    fn error(&mut self, case: &str, response: &Response, status: u16, code: &str, record_index: Option<u64>) -> String {
        let text = String::from_utf8_lossy(&response.body);
        assert_eq!(response.status, status, "{case}: status ({text})");
        assert_eq!(response.header("content-type"), Some(JSON), "{case}: content type");
        let body = response.json();
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("{case}: no error object in {text}"));
        assert_eq!(error["code"], code, "{case}: code ({text})");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{case}: empty message ({text})");
        assert_eq!(
            error
                .get("record_index")
                .map(|i| i.as_u64().expect("record_index is a count")),
            record_index,
            "{case}: record_index ({text})"
        );
        let expected_keys = 2 + usize::from(record_index.is_some());
        assert_eq!(error.len(), expected_keys, "{case}: error fields ({text})");
        assert_eq!(
            response.header("retry-after").is_some(),
            matches!(status, 429 | 503),
            "{case}: Retry-After"
        );
        if status == 401 {
            assert_eq!(response.header("www-authenticate"), Some("Bearer"), "{case}");
        } else {
            assert_eq!(response.header("www-authenticate"), None, "{case}");
        }
        self.cases += 1;
        self.healthy(case);
        message.to_owned()
    }

    /// `GET /healthz` answers 200 `{"status":"ok"}`.
    fn healthy(&self, after: &str) {
        let response = http(self.addr, "GET", "/healthz", &[], b"");
        assert_eq!(response.status, 200, "healthz after {after}");
        assert_eq!(
            response.json(),
            serde_json::json!({"status": "ok"}),
            "healthz after {after}"
        );
    }

    fn post(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        request(self.addr, "POST", path, &[("Content-Type", content_type)], body.into())
    }
}

/// A request head; with `content_length`, a `Content-Length` header (the caller then sends that many
/// bytes, or fewer to stall).
fn head(method: &str, path: &str, headers: &[(&str, &str)], content_length: Option<usize>) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = content_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// One request with a `Content-Length` body, on a fresh connection.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    exchange(addr, head(method, path, headers, Some(body.len())), body)
}

/// Sends `head` and then `body` on a fresh connection while reading the response, so an answer the
/// server gives before reading the whole body (413, 415, 404…) is heard even though the server then
/// closes the connection under the sender.
fn exchange(addr: SocketAddr, head: Vec<u8>, body: Vec<u8>) -> Response {
    let mut socket = TcpStream::connect(addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut writer = socket.try_clone().expect("clone the socket");
    writer
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("write timeout");
    let sender = thread::spawn(move || {
        // When the server answers early and closes, the rest of the body fails to send: expected.
        let _ = writer.write_all(&head).and_then(|()| writer.write_all(&body));
    });
    let response = read_response(&mut socket);
    sender.join().expect("sender thread");
    response
}

/// `body` in HTTP/1.1 chunked framing, in chunks of `chunk` bytes; with `end`, the final empty chunk.
fn chunked(body: &[u8], chunk: usize, end: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / chunk * 12 + 16);
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    if end {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip into a Vec");
    encoder.finish().expect("gzip into a Vec")
}

/// About 1 GB of zeros, gzipped (about 1 MB), built streaming in 1 MiB chunks.
fn gzip_bomb() -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1000 {
        encoder.write_all(&zeros).expect("gzip into a Vec");
    }
    encoder.finish().expect("gzip into a Vec")
}

/// A JSON array of `n` small objects.
fn array_of(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!("{{\"rejected\":{i}}}")).collect();
    format!("[{}]", items.join(","))
}

/// A connection that sends `partial` (maybe nothing) and then stalls, mid-headers.
struct Stalled {
    name: &'static str,
    socket: TcpStream,
    since: Instant,
}

impl Stalled {
    fn open(addr: SocketAddr, name: &'static str, partial: &[u8]) -> Stalled {
        let mut socket = TcpStream::connect(addr).expect("connect");
        socket.write_all(partial).expect("send partial headers");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Stalled {
            name,
            socket,
            since: Instant::now(),
        }
    }

    /// Waits for the server to end the connection; returns what it sent first and when it closed.
    fn closed(mut self) -> (Vec<u8>, Duration) {
        let mut received = Vec::new();
        match self.socket.read_to_end(&mut received) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => panic!(
                "{}: the connection was still open {:?} after stalling (header_read_timeout is {TIMEOUT:?})",
                self.name,
                self.since.elapsed()
            ),
            Err(e) => panic!("{}: {e}", self.name),
        }
        (received, self.since.elapsed())
    }
}

#[test]
fn every_bad_request_is_refused_with_its_status_and_code_and_stores_nothing() {
    let bomb = thread::spawn(gzip_bomb);
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), CONFIG);
    let mut t = Battery {
        addr: weir.addr,
        cases: 0,
    };
    let started = Instant::now();

    // Slow clients first, all at once: each costs the server's timeout in wall time.
    let stalled = [
        Stalled::open(
            weir.addr,
            "stall mid-headers",
            b"POST /v1/streams/events/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
        ),
        Stalled::open(weir.addr, "connect and send nothing", b""),
    ];
    // Half an HTTP/2 preface is not HTTP/1.1: hyper answers its own 400 (empty body) at once.
    let h2 = Stalled::open(weir.addr, "stall inside an HTTP/2 preface", b"PRI * HTTP/2");
    let slow_body = {
        let addr = weir.addr;
        thread::spawn(move || {
            let started = Instant::now();
            let head = head("POST", EVENTS, &[("Content-Type", JSON)], Some(100));
            let response = exchange(addr, head, br#"{"rejected":"#.to_vec());
            (response, started.elapsed())
        })
    };
    // Stalled clients hold connections, not the server: others are served meanwhile.
    t.healthy("opening stalled connections");
    let (received, _) = h2.closed();
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{received}");
    assert!(received.contains("\r\ncontent-length: 0\r\n"), "{received}");
    t.cases += 1;
    t.healthy("half an HTTP/2 preface");
    for stalled in stalled {
        let name = stalled.name;
        let (received, after) = stalled.closed();
        // hyper answers a header timeout by closing the connection without a response.
        assert!(
            received.is_empty(),
            "{name}: got {:?}",
            String::from_utf8_lossy(&received)
        );
        assert!(
            after >= TIMEOUT - Duration::from_millis(100),
            "{name}: closed after {after:?}"
        );
        assert!(after < TIMEOUT * 5, "{name}: closed only after {after:?}");
        t.cases += 1;
        t.healthy(name);
    }
    let (response, after) = slow_body.join().expect("slow body thread");
    t.error("partial body, then a stall", &response, 408, "body_timeout", None);
    assert!(after >= TIMEOUT - Duration::from_millis(100), "408 after {after:?}");

    // The body's syntax and shape.
    #[rustfmt::skip]
    let cases: &[BodyCase] = &[
        ("invalid JSON", EVENTS, JSON, br#"{"rejected": 1,}"#, 400, "invalid_json", Some(0)),
        ("invalid UTF-8", EVENTS, JSON, b"{\"rejected\":\"\xff\xfe\"}", 400, "invalid_utf8", Some(0)),
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
        // The keyed stream takes each record's partition key from /user_id.
        (
            "partition key missing", KEYED, JSON,
            br#"[{"user_id":"u1","rejected":0},{"userid":"u2"}]"#, 400, "partition_key_missing", Some(1),
        ),
        ("partition key is an object", KEYED, JSON, br#"{"user_id":{"id":1}}"#, 400, "partition_key_invalid", Some(0)),
        ("partition key is null", KEYED, NDJSON, b"{\"user_id\":null}\n", 400, "partition_key_invalid", Some(0)),
        ("partition key is empty", KEYED, JSON, br#"{"user_id":""}"#, 400, "partition_key_invalid", Some(0)),
    ];
    for &(case, path, content_type, body, status, code, record_index) in cases {
        let message = t.error(case, &t.post(path, content_type, body), status, code, record_index);
        if path == KEYED {
            assert!(message.contains("/user_id"), "{case}: {message}");
        }
    }

    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let started_deep = Instant::now();
    let response = t.post(EVENTS, JSON, deep);
    t.error("10,000-deep nesting", &response, 400, "too_deep", Some(0));
    assert!(
        started_deep.elapsed() < Duration::from_secs(2),
        "{:?}",
        started_deep.elapsed()
    );

    let long_key = format!("{{\"user_id\":\"{}\"}}", "k".repeat(257));
    let message = t.error(
        "partition key of 257 characters",
        &t.post(KEYED, JSON, long_key),
        400,
        "partition_key_invalid",
        Some(0),
    );
    assert!(message.contains("/user_id"), "{message}");

    // Headers: media types, charsets, encodings.
    let record = br#"{"rejected":"headers"}"#.to_vec();
    #[rustfmt::skip]
    let cases: &[HeaderCase] = &[
        ("Content-Type: text/plain", &[("Content-Type", "text/plain")], 415, "unsupported_media_type"),
        ("no Content-Type", &[], 415, "unsupported_media_type"),
        ("multipart/form-data", &[("Content-Type", "multipart/form-data; boundary=x")], 415, "unsupported_media_type"),
        ("charset=iso-8859-1", &[("Content-Type", "application/json; charset=iso-8859-1")], 415, "unsupported_charset"),
        ("Content-Encoding: br", &[("Content-Type", JSON), ("Content-Encoding", "br")], 415, "unsupported_encoding"),
        ("gzip applied twice", &[("Content-Type", JSON), ("Content-Encoding", "gzip, gzip")], 415, "unsupported_encoding"),
        ("gzip header, plain body", &[("Content-Type", JSON), ("Content-Encoding", "gzip")], 400, "invalid_gzip"),
    ];
    for &(case, headers, status, code) in cases {
        let response = request(t.addr, "POST", EVENTS, headers, record.clone());
        t.error(case, &response, status, code, None);
    }
    // A header value with a byte outside ASCII (hyper passes obs-text through).
    let mut raw_head = head("POST", EVENTS, &[], Some(record.len()));
    let at = raw_head.len() - 2;
    raw_head.splice(at..at, b"Content-Type: application/json\xff\r\n".iter().copied());
    let response = exchange(t.addr, raw_head, record.clone());
    t.error("non-ASCII Content-Type", &response, 400, "invalid_header", None);

    let gz = gzip(array_of(3).as_bytes());
    let truncated = gz[..gz.len() / 2].to_vec();
    let headers = [("Content-Type", JSON), ("Content-Encoding", "gzip")];
    let response = request(t.addr, "POST", EVENTS, &headers, truncated);
    t.error("truncated gzip", &response, 400, "invalid_gzip", None);

    let bomb = bomb.join().expect("gzip bomb thread");
    assert!(
        bomb.len() < MAX_REQUEST_BYTES / 4,
        "the bomb is {} bytes compressed",
        bomb.len()
    );
    let started_bomb = Instant::now();
    let response = request(t.addr, "POST", EVENTS, &headers, bomb);
    let message = t.error("gzip bomb (1000 MiB of zeros)", &response, 413, "body_too_large", None);
    assert!(message.contains("decompresses"), "{message}");
    assert!(
        started_bomb.elapsed() < Duration::from_secs(5),
        "{:?}",
        started_bomb.elapsed()
    );

    // Sizes and counts.
    let response = t.post(EVENTS, JSON, array_of(MAX_RECORDS + 1));
    t.error("501 records", &response, 413, "too_many_records", None);
    let ndjson: String = (0..=MAX_RECORDS).map(|i| format!("{{\"rejected\":{i}}}\n")).collect();
    let response = t.post(EVENTS, NDJSON, ndjson);
    t.error("501 NDJSON lines", &response, 413, "too_many_records", None);

    let huge = array_of(100_000);
    assert!(huge.len() < MAX_REQUEST_BYTES);
    let started_huge = Instant::now();
    let response = t.post(EVENTS, JSON, huge);
    t.error("100,000 tiny objects", &response, 413, "too_many_records", None);
    assert!(
        started_huge.elapsed() < Duration::from_secs(3),
        "{:?}",
        started_huge.elapsed()
    );

    let big = format!("[{{\"rejected\":0}},{{\"rejected\":\"{}\"}}]", "x".repeat(1024 * 1024));
    let response = t.post(EVENTS, JSON, big);
    t.error("a record over 1 MiB", &response, 413, "record_too_large", Some(1));

    let mut over = array_of(10).into_bytes();
    over.resize(MAX_REQUEST_BYTES + 1, b' ');
    let response = t.post(EVENTS, JSON, over);
    t.error(
        "a body one byte over max_request_bytes",
        &response,
        413,
        "body_too_large",
        None,
    );

    // Declares more than the cap and sends nothing: refused at once (waiting for the body would be 408).
    let declared = head("POST", EVENTS, &[("Content-Type", JSON)], Some(MAX_REQUEST_BYTES + 1));
    let response = exchange(t.addr, declared, Vec::new());
    t.error("Content-Length over the cap", &response, 413, "body_too_large", None);

    // Chunked past the cap and never finished: refused while streaming (waiting for the end would be 408).
    let mut body = array_of(10).into_bytes();
    body.resize(MAX_REQUEST_BYTES + 64 * 1024, b' ');
    let chunked_head = head(
        "POST",
        EVENTS,
        &[("Content-Type", JSON), ("Transfer-Encoding", "chunked")],
        None,
    );
    let response = exchange(t.addr, chunked_head.clone(), chunked(&body, 64 * 1024, false));
    t.error("chunked body over the cap", &response, 413, "body_too_large", None);

    let mut broken = chunked(br#"{"rejected":"chunk"}"#, 8, false);
    broken.extend_from_slice(b"zz\r\nnot hex\r\n0\r\n\r\n");
    let response = exchange(t.addr, chunked_head.clone(), broken);
    t.error("malformed chunk size", &response, 400, "body_read_failed", None);

    // Routing.
    let record = br#"{"rejected":"routing"}"#;
    let json = [("Content-Type", JSON)];
    let response = request(t.addr, "POST", "/v1/streams/nope/records", &json, record.to_vec());
    t.error("unknown stream", &response, 404, "unknown_stream", None);
    for path in [
        "/v1/records",
        "/v1/streams/events",
        "/v1/streams/events/records/1",
        "/v2",
    ] {
        let response = request(t.addr, "POST", path, &json, record.to_vec());
        t.error(&format!("unknown path {path}"), &response, 404, "not_found", None);
    }
    // `/` is the dashboard's page: other methods are refused there, not routed.
    let response = request(t.addr, "POST", "/", &json, record.to_vec());
    t.error("POST on the dashboard", &response, 405, "method_not_allowed", None);
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let response = request(t.addr, method, EVENTS, &json, record.to_vec());
        t.error(
            &format!("{method} on the records route"),
            &response,
            405,
            "method_not_allowed",
            None,
        );
        assert_eq!(response.header("allow"), Some("POST"), "{method}");
    }
    let response = request(t.addr, "POST", "/healthz", &json, record.to_vec());
    t.error("POST /healthz", &response, 405, "method_not_allowed", None);
    assert_eq!(response.header("allow"), Some("GET,HEAD"));

    eprintln!("{} bad requests refused in {:?}", t.cases, started.elapsed());
    assert!(t.cases >= 30, "{} cases", t.cases);

    // Three good records: two sent chunked to `events`, one to `keyed`.
    let good_events = br#"[{"id":"good-1","user_id":1},{"id":"good-2","nested":{"a":[1,2]}}]"#;
    let response = exchange(t.addr, chunked_head, chunked(good_events, 7, true));
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.json()["records"].as_array().map(Vec::len), Some(2));
    let response = t.post(KEYED, NDJSON, &b"{\"id\":\"good-3\",\"user_id\":\"u3\"}\n"[..]);
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.json()["records"].as_array().map(Vec::len), Some(1));

    let (status, output) = weir.stop();
    assert!(status.success(), "weir up exited with {status}: {output}");
    let mut delivered: Vec<serde_json::Value> = objects(&dir.path().join("bucket"))
        .into_values()
        .flatten()
        .map(|line| serde_json::from_str(&line).expect("one JSON record per line"))
        .collect();
    delivered.sort_by_key(|v| v["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        delivered,
        vec![
            serde_json::json!({"id": "good-1", "user_id": 1}),
            serde_json::json!({"id": "good-2", "nested": {"a": [1, 2]}}),
            serde_json::json!({"id": "good-3", "user_id": "u3"}),
        ],
        "the bucket holds exactly the good records"
    );
}

#[test]
fn with_auth_tokens_only_the_right_bearer_token_gets_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        r#"
[server]
auth_tokens = ["{TOKEN}"]

[[streams]]
name = "events"

[[deliveries]]
name = "events"
stream = "events"
buffer_interval = "100ms"
"#
    );
    let weir = Weir::start(dir.path(), &config);
    let mut t = Battery {
        addr: weir.addr,
        cases: 0,
    };
    let record = br#"{"id":"authorized"}"#;
    let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let basic = "Basic dXNlcjpwYXNz".to_owned();
    let bare = TOKEN.to_owned();
    for (case, authorization, path) in [
        ("no token", None, EVENTS),
        ("wrong token", Some(&wrong), EVENTS),
        ("a prefix of the token", Some(&short), EVENTS),
        ("Basic credentials", Some(&basic), EVENTS),
        ("the token without a scheme", Some(&bare), EVENTS),
        (
            "no token, unknown stream (401 before 404)",
            None,
            "/v1/streams/nope/records",
        ),
    ] {
        let mut headers = vec![("Content-Type", JSON)];
        if let Some(authorization) = authorization {
            headers.push(("Authorization", authorization));
        }
        let response = request(t.addr, "POST", path, &headers, record.to_vec());
        t.error(case, &response, 401, "unauthorized", None);
    }
    // The auth scheme is case-insensitive (RFC 9110 §11.1).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let authorization = format!("{scheme} {TOKEN}");
        let headers = [("Content-Type", JSON), ("Authorization", &authorization)];
        let response = request(t.addr, "POST", EVENTS, &headers, record.to_vec());
        assert_eq!(
            response.status,
            200,
            "{scheme}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(response.json()["failed_record_count"], 0);
    }
    // The health check needs no token.
    t.healthy("auth cases");
    let (status, output) = weir.stop();
    assert!(status.success(), "weir up exited with {status}: {output}");
    let delivered: Vec<String> = objects(&dir.path().join("bucket")).into_values().flatten().collect();
    assert_eq!(
        delivered,
        vec![r#"{"id":"authorized"}"#; 3],
        "only the authorized records"
    );
}

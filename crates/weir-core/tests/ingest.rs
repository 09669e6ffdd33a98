//! The ingest contract end to end, as a server runs it: content type, encoding, decoding, parsing.

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::io::Write;
use weir_core::ingest::{
    self, BodyFormat, ContentEncoding, IngestError, IngestLimits, IngestRecord, InvalidLimit, MAX_BODY_BYTES_LIMIT,
    MAX_DEPTH_LIMIT, PartitionKeySpec, code,
};

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const MIB: usize = 1024 * 1024;

/// The four steps a server runs on a request.
fn ingest(
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: &[u8],
    limits: &IngestLimits,
    key: &PartitionKeySpec,
) -> Result<Vec<IngestRecord>, IngestError> {
    let format = ingest::body_format(content_type)?;
    let encoding = ingest::content_encoding(encoding)?;
    let body = ingest::decode_body(encoding, body, limits)?;
    ingest::parse_records(format, &body, limits, key)
}

fn parse(content_type: &str, body: &[u8]) -> Vec<IngestRecord> {
    ingest(
        Some(content_type),
        None,
        body,
        &IngestLimits::default(),
        &PartitionKeySpec::Random,
    )
    .unwrap_or_else(|e| panic!("{body:?} refused: {e:?}"))
}

fn parse_keyed(content_type: &str, body: &[u8], pointer: &str) -> Result<Vec<IngestRecord>, IngestError> {
    let key = PartitionKeySpec::parse(pointer).unwrap_or_else(|e| panic!("{e}"));
    ingest(Some(content_type), None, body, &IngestLimits::default(), &key)
}

fn data(records: &[IngestRecord]) -> Vec<&[u8]> {
    records.iter().map(|r| r.data.as_slice()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

/// One gzip member inflating to `len` zero bytes, compressed as it streams.
fn gzip_zeros(len: usize) -> Vec<u8> {
    let chunk = vec![0u8; MIB];
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        encoder.write_all(&chunk[..n]).expect("writing to a Vec");
        left -= n;
    }
    encoder.finish().expect("writing to a Vec")
}

/// A gzip bomb: 1 GiB of zeros as 1024 concatenated members (a valid gzip file) of 1 MiB each, built
/// in milliseconds where compressing 1 GiB in one member would take seconds in a debug build.
fn gzip_bomb() -> Vec<u8> {
    gzip_zeros(MIB).repeat(1024)
}

/// A record nested `depth` deep: `{"a":[[...]]}`.
fn nested(depth: usize) -> String {
    format!("{{\"a\":{}{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1))
}

fn objects(n: usize) -> String {
    format!("[{}]", vec!["{}"; n].join(","))
}

/// A request that must be refused.
struct Bad {
    name: &'static str,
    content_type: Option<&'static str>,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    limits: IngestLimits,
    key: PartitionKeySpec,
}

impl Bad {
    fn new(name: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Bad {
        Bad {
            name,
            content_type: Some(content_type),
            encoding: None,
            body: body.into(),
            limits: IngestLimits::default(),
            key: PartitionKeySpec::Random,
        }
    }

    fn json(name: &'static str, body: impl Into<Vec<u8>>) -> Bad {
        Bad::new(name, JSON, body)
    }

    fn ndjson(name: &'static str, body: impl Into<Vec<u8>>) -> Bad {
        Bad::new(name, NDJSON, body)
    }

    fn content_type(mut self, content_type: Option<&'static str>) -> Bad {
        self.content_type = content_type;
        self
    }

    fn gzip(mut self) -> Bad {
        self.encoding = Some("gzip");
        self
    }

    fn encoding(mut self, encoding: &'static str) -> Bad {
        self.encoding = Some(encoding);
        self
    }

    fn limits(mut self, limits: IngestLimits) -> Bad {
        self.limits = limits;
        self
    }

    fn key(mut self, pointer: &str) -> Bad {
        self.key = PartitionKeySpec::parse(pointer).unwrap_or_else(|e| panic!("{e}"));
        self
    }
}

#[test]
fn bad_requests_are_refused_with_their_status_code_and_record() {
    let small_body = IngestLimits {
        max_body_bytes: 100,
        ..IngestLimits::default()
    };
    let mut invalid_utf8_string = br#"{"a":"caf"#.to_vec();
    invalid_utf8_string.extend_from_slice(b"\xC3\x28\"}");
    let mut invalid_utf8_line = b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":\"".to_vec();
    invalid_utf8_line.extend_from_slice(b"\xFF\"}\n");
    let mut invalid_utf8_element = b"[{\"a\":1},\n {\"b\":\"\xE2\x82\"}]".to_vec();
    invalid_utf8_element.push(b'\n');
    let deep = format!("{{\"a\":{}}}", "[".repeat(10_000) + &"]".repeat(10_000));
    let deep_unclosed = "[".repeat(10_000);
    let deep_element = format!("[{{}},{deep}]");
    let mut truncated_gzip = gzip(br#"{"a":1}"#);
    truncated_gzip.truncate(truncated_gzip.len() - 5);
    let mut corrupt_gzip = gzip(br#"[{"a":1},{"b":2},{"c":3}]"#);
    let middle = corrupt_gzip.len() / 2;
    corrupt_gzip[middle] ^= 0xFF;
    let big_string = "x".repeat(MIB);
    let big_record = format!(r#"[{{}}, {{"a":"{big_string}"}}]"#);
    let big_ndjson_record = format!("{{}}\n{{}}\n{{\"a\":\"{big_string}\"}}\n");
    let ndjson_501 = "{}\n".repeat(501);
    let too_many_then_garbage = format!("[{},{{oops", vec!["{}"; 500].join(","));

    #[rustfmt::skip]
    let cases: Vec<(Bad, u16, &str, Option<usize>)> = vec![
        // Content type and encoding.
        (Bad::json("no content type", "{}").content_type(None), 415, code::UNSUPPORTED_MEDIA_TYPE, None),
        (Bad::new("text/plain", "text/plain", "{}"), 415, code::UNSUPPORTED_MEDIA_TYPE, None),
        (Bad::new("json suffix type", "application/vnd.api+json", "{}"), 415, code::UNSUPPORTED_MEDIA_TYPE, None),
        (Bad::new("latin-1 charset", "application/json; charset=ISO-8859-1", "{}"), 415, code::UNSUPPORTED_CHARSET, None),
        (Bad::new("utf-16 ndjson", "application/x-ndjson;charset=utf-16", "{}"), 415, code::UNSUPPORTED_CHARSET, None),
        (Bad::json("brotli", "{}").encoding("br"), 415, code::UNSUPPORTED_ENCODING, None),
        (Bad::json("deflate", "{}").encoding("deflate"), 415, code::UNSUPPORTED_ENCODING, None),
        (Bad::json("gzip twice", "{}").encoding("gzip, gzip"), 415, code::UNSUPPORTED_ENCODING, None),
        // Decoding.
        (Bad::json("gzip bomb, 1 GiB of zeros in 1 MiB members", gzip_bomb()).gzip(), 413, code::BODY_TOO_LARGE, None),
        (Bad::json("gzip bomb, 32 MiB of zeros in one member", gzip_zeros(32 * MIB)).gzip(), 413, code::BODY_TOO_LARGE, None),
        (Bad::json("truncated gzip", truncated_gzip).gzip(), 400, code::INVALID_GZIP, None),
        (Bad::json("corrupt gzip", corrupt_gzip).gzip(), 400, code::INVALID_GZIP, None),
        (Bad::json("plain text sent as gzip", r#"{"a":1,"b":2}"#).gzip(), 400, code::INVALID_GZIP, None),
        (Bad::json("identity body over the cap", objects(34)).limits(small_body), 413, code::BODY_TOO_LARGE, None),
        (Bad::json("gzip body over the cap", gzip(objects(34).as_bytes())).gzip().limits(small_body), 413, code::BODY_TOO_LARGE, None),
        // Empty.
        (Bad::json("empty body", ""), 400, code::EMPTY, None),
        (Bad::json("whitespace body", " \r\n\t "), 400, code::EMPTY, None),
        (Bad::json("empty batch", " [ ] "), 400, code::EMPTY, None),
        (Bad::ndjson("only blank lines", "\n \r\n\t\n"), 400, code::EMPTY, None),
        (Bad::json("empty gzip member", gzip(b"")).gzip(), 400, code::EMPTY, None),
        // JSON shape and syntax.
        (Bad::json("unterminated object", r#"{"a":"#), 400, code::INVALID_JSON, Some(0)),
        (Bad::json("two objects in a json body", r#"{"a":1}{"b":2}"#), 400, code::INVALID_JSON, Some(0)),
        (Bad::json("not json", "hello"), 400, code::INVALID_JSON, None),
        (Bad::json("a json string body", r#""hello""#), 400, code::NOT_AN_OBJECT, None),
        (Bad::json("array holding a number", r#"[{"a":1}, 2, {"b":2}]"#), 400, code::NOT_AN_OBJECT, Some(1)),
        (Bad::json("array holding an array", r#"[[{"a":1}]]"#), 400, code::NOT_AN_OBJECT, Some(0)),
        (Bad::json("bad element in array", r#"[{"a":1},{"b":}]"#), 400, code::INVALID_JSON, Some(1)),
        (Bad::json("missing comma in array", r#"[{"a":1} {"b":2}]"#), 400, code::INVALID_JSON, Some(0)),
        (Bad::json("empty element", r#"[{"a":1},,{"b":2}]"#), 400, code::INVALID_JSON, Some(1)),
        (Bad::json("trailing comma", r#"[{"a":1},]"#), 400, code::INVALID_JSON, None),
        (Bad::json("unclosed array", r#"[{"a":1}"#), 400, code::INVALID_JSON, None),
        (Bad::json("array cut inside a record", r#"[{"a":1},{"b":[1,"#), 400, code::INVALID_JSON, Some(1)),
        (Bad::json("array cut inside a string", r#"[{"a":1},{"b":"x"#), 400, code::INVALID_JSON, Some(1)),
        (Bad::json("text after the array", r#"[{"a":1}] {}"#), 400, code::INVALID_JSON, None),
        (Bad::json("stray brace in array", r#"[{"a":1}}]"#), 400, code::INVALID_JSON, None),
        (Bad::json("control character in a string", "{\"a\":\"x\u{1}y\"}"), 400, code::INVALID_JSON, Some(0)),
        (Bad::ndjson("bad line in the middle", "{\"a\":1}\n\n{\"b\":\n{\"c\":3}\n"), 400, code::INVALID_JSON, Some(1)),
        (Bad::ndjson("two objects on a line", "{\"a\":1}\n{\"b\":2} {\"c\":3}\n"), 400, code::INVALID_JSON, Some(1)),
        (Bad::ndjson("ndjson line holding an array", "{}\n[{\"a\":1}]\n"), 400, code::NOT_AN_OBJECT, Some(1)),
        (Bad::ndjson("ndjson line holding null", "{}\r\n{}\r\nnull\r\n"), 400, code::NOT_AN_OBJECT, Some(2)),
        (Bad::ndjson("a json array sent as ndjson", "[{\"a\":1},\n{\"b\":2}]"), 400, code::INVALID_JSON, Some(0)),
        // UTF-8.
        (Bad::json("invalid utf-8 inside a string", invalid_utf8_string), 400, code::INVALID_UTF8, Some(0)),
        (Bad::ndjson("invalid utf-8 on the third record", invalid_utf8_line), 400, code::INVALID_UTF8, Some(2)),
        (Bad::json("invalid utf-8 in an array element", invalid_utf8_element), 400, code::INVALID_UTF8, Some(1)),
        (Bad::json("invalid utf-8 outside records", b"\xFF".to_vec()), 400, code::INVALID_UTF8, None),
        // Depth.
        (Bad::json("10,000-deep nesting", deep), 400, code::TOO_DEEP, Some(0)),
        (Bad::json("10,000 unclosed brackets", deep_unclosed), 400, code::TOO_DEEP, Some(0)),
        (Bad::json("10,000-deep second element", deep_element), 400, code::TOO_DEEP, Some(1)),
        (Bad::ndjson("65 deep on line 2", format!("{}\n{}\n", nested(64), nested(65))), 400, code::TOO_DEEP, Some(1)),
        // Counts and sizes.
        (Bad::json("501 records", objects(501)), 413, code::TOO_MANY_RECORDS, None),
        (Bad::ndjson("501 ndjson records", ndjson_501), 413, code::TOO_MANY_RECORDS, None),
        (Bad::json("too many records stops before the garbage", too_many_then_garbage), 413, code::TOO_MANY_RECORDS, None),
        (Bad::json("record over 1 MiB", big_record), 413, code::RECORD_TOO_LARGE, Some(1)),
        (Bad::ndjson("ndjson record over 1 MiB", big_ndjson_record), 413, code::RECORD_TOO_LARGE, Some(2)),
        // Partition keys.
        (Bad::json("missing pointer field", r#"[{"user_id":"a"},{"user":"b"}]"#).key("/user_id"), 400, code::PARTITION_KEY_MISSING, Some(1)),
        (Bad::json("pointer through a scalar", r#"{"user":"b"}"#).key("/user/id"), 400, code::PARTITION_KEY_MISSING, Some(0)),
        (Bad::json("pointer past an array's end", r#"{"tags":["a"]}"#).key("/tags/1"), 400, code::PARTITION_KEY_MISSING, Some(0)),
        (Bad::json("pointer to an object", r#"{"user_id":{"id":1}}"#).key("/user_id"), 400, code::PARTITION_KEY_INVALID, Some(0)),
        (Bad::json("pointer to an array", r#"{"user_id":[1]}"#).key("/user_id"), 400, code::PARTITION_KEY_INVALID, Some(0)),
        (Bad::json("pointer to null", r#"{"user_id":null}"#).key("/user_id"), 400, code::PARTITION_KEY_INVALID, Some(0)),
        (Bad::json("pointer to a boolean", r#"{"user_id":true}"#).key("/user_id"), 400, code::PARTITION_KEY_INVALID, Some(0)),
        (Bad::json("pointer to an empty string", r#"{"user_id":""}"#).key("/user_id"), 400, code::PARTITION_KEY_INVALID, Some(0)),
        (Bad::json("pointer to 257 characters", format!(r#"{{"user_id":"{}"}}"#, "é".repeat(257))).key("/user_id"), 400, code::PARTITION_KEY_INVALID, Some(0)),
        (Bad::ndjson("invalid json wins over a missing key", "{\"user_id\":1}\n{\"b\":}\n").key("/user_id"), 400, code::INVALID_JSON, Some(1)),
    ];
    assert!(cases.len() >= 30);
    for (case, status, code, index) in cases {
        let result = ingest(case.content_type, case.encoding, &case.body, &case.limits, &case.key);
        match result {
            Err(e) => {
                assert_eq!(
                    (e.status, e.code, e.record_index),
                    (status, code, index),
                    "{}: {}",
                    case.name,
                    e.message
                );
                assert!(!e.message.is_empty(), "{}", case.name);
            }
            Ok(records) => panic!("{}: accepted {} records", case.name, records.len()),
        }
    }
}

#[test]
fn error_messages_name_the_record_line_and_pointer() {
    let e = ingest(
        Some(NDJSON),
        None,
        b"{\"a\":1}\n\n{\"b\":\n",
        &IngestLimits::default(),
        &PartitionKeySpec::Random,
    )
    .expect_err("bad line");
    assert!(e.message.starts_with("record 1 is not valid JSON"), "{}", e.message);
    assert!(e.message.contains("line 3"), "{}", e.message);

    let e = parse_keyed(JSON, br#"[{"user_id":1},{"user":2}]"#, "/user_id").expect_err("missing key");
    assert!(
        e.message.contains("record 1") && e.message.contains("/user_id"),
        "{}",
        e.message
    );

    let e = parse_keyed(JSON, br#"{"user_id":{}}"#, "/user_id").expect_err("object key");
    assert!(
        e.message.contains("/user_id") && e.message.contains("an object"),
        "{}",
        e.message
    );

    let e = ingest(
        Some(JSON),
        None,
        deep_body(10_000).as_bytes(),
        &IngestLimits::default(),
        &PartitionKeySpec::Random,
    )
    .expect_err("deep");
    assert!(e.message.contains("deeper than 64"), "{}", e.message);
}

fn deep_body(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

#[test]
fn a_single_object_is_one_record_with_its_text_as_sent() {
    let records = parse(JSON, b" \r\n { \"id\" : 1, \"e\": \"a b\\n\" }\t\n");
    assert_eq!(data(&records), [br#"{ "id" : 1, "e": "a b\n" }"#]);
}

#[test]
fn array_elements_keep_their_exact_bytes() {
    let body = br#"[{"a": 1.50e3} , { "b" :[1, "x,]}"]},{"z":1,"a":"\u00e9"}]"#;
    let records = parse(JSON, body);
    assert_eq!(
        data(&records),
        [
            &br#"{"a": 1.50e3}"#[..],
            br#"{ "b" :[1, "x,]}"]}"#,
            br#"{"z":1,"a":"\u00e9"}"#
        ]
    );
}

#[test]
fn ndjson_skips_blank_lines_and_accepts_crlf() {
    let body = b"\r\n{\"a\":1}\r\n   \r\n\t\n{ \"b\" : 2 }\n\n{\"c\":3}";
    let records = parse(NDJSON, body);
    assert_eq!(data(&records), [&b"{\"a\":1}"[..], b"{ \"b\" : 2 }", b"{\"c\":3}"]);
    assert_eq!(data(&parse("application/jsonl", body)), data(&records));
}

#[test]
fn gzip_bodies_parse_like_identity_ones() {
    let bodies: [(&str, &[u8]); 4] = [
        (JSON, br#"{"a":1}"#),
        (JSON, b"[{\"a\":1},\n {\"b\":\n 2}]"),
        (NDJSON, b"{\"a\":1}\r\n\n{\"b\":2}\n"),
        (JSON, &[]),
    ];
    for (content_type, body) in bodies {
        let key = PartitionKeySpec::Random;
        let limits = IngestLimits::default();
        let plain = ingest(Some(content_type), None, body, &limits, &key).map(|r| data(&r).concat());
        let gzipped = ingest(Some(content_type), Some("gzip"), &gzip(body), &limits, &key).map(|r| data(&r).concat());
        assert_eq!(plain, gzipped, "{body:?}");
    }
}

#[test]
fn concatenated_gzip_members_are_one_body() {
    let mut body = gzip(b"{\"a\":1}\n");
    body.extend(gzip(b"{\"b\":2}\n"));
    let records = ingest(
        Some(NDJSON),
        Some("x-gzip"),
        &body,
        &IngestLimits::default(),
        &PartitionKeySpec::Random,
    )
    .expect("two members");
    assert_eq!(data(&records), [b"{\"a\":1}", b"{\"b\":2}"]);
}

#[test]
fn gzip_is_capped_at_exactly_max_body_bytes() {
    let limits = IngestLimits {
        max_body_bytes: 1000,
        ..IngestLimits::default()
    };
    let exact = gzip_zeros(1000);
    let decoded = ingest::decode_body(ContentEncoding::Gzip, &exact, &limits).expect("at the cap");
    assert_eq!(decoded.len(), 1000);
    let over = gzip_zeros(1001);
    let e = ingest::decode_body(ContentEncoding::Gzip, &over, &limits).expect_err("over the cap");
    assert_eq!((e.status, e.code), (413, code::BODY_TOO_LARGE));
}

#[test]
fn identity_bodies_are_borrowed_not_copied() {
    let body = b"{}".to_vec();
    let decoded = ingest::decode_body(ContentEncoding::Identity, &body, &IngestLimits::default()).expect("small");
    assert!(matches!(decoded, std::borrow::Cow::Borrowed(_)));
}

#[test]
fn pretty_printed_records_become_single_line_compact_data() {
    let body = b"[\n  {\n    \"z\": 1,\n    \"a\": [\n      1.50,\n      \"x y\\n\"\n    ]\n  },\r\n  {\"b\": 2}\n]\n";
    let records = parse(JSON, body);
    assert_eq!(data(&records), [&br#"{"z":1,"a":[1.50,"x y\n"]}"#[..], br#"{"b": 2}"#]);

    let records = parse(JSON, b"{\n \"a\" : 1\n}");
    assert_eq!(data(&records), [br#"{"a":1}"#]);

    // A carriage return alone inside an NDJSON line is a line break too.
    let records = parse(NDJSON, b"{\"a\":\r 1}\n");
    assert_eq!(data(&records), [br#"{"a":1}"#]);
}

#[test]
fn partition_keys_come_from_the_pointer() {
    let body = br#"[
        {"user_id":"u-1"},
        {"user_id":42},
        {"user_id":12345678901234567890123},
        {"user_id":-1.50e3},
        {"user_id":"caf\u00e9"},
        {"user_id":"a","user_id":"last wins"}
    ]"#;
    let keys: Vec<String> = parse_keyed(JSON, body, "/user_id")
        .expect("keys")
        .into_iter()
        .map(|r| r.partition_key)
        .collect();
    assert_eq!(
        keys,
        ["u-1", "42", "12345678901234567890123", "-1.50e3", "café", "last wins"]
    );

    let nested = br#"{"user":{"id":"n"},"tags":["t0",{"k":7}],"a/b":"slash","m~n":"tilde","":"empty"}"#;
    for (pointer, key) in [
        ("/user/id", "n"),
        ("/tags/0", "t0"),
        ("/tags/1/k", "7"),
        ("/a~1b", "slash"),
        ("/m~0n", "tilde"),
        ("/", "empty"),
    ] {
        let records = parse_keyed(JSON, nested, pointer).expect(pointer);
        assert_eq!(records[0].partition_key, key, "{pointer}");
        assert_eq!(records[0].data, nested, "{pointer}");
    }
}

#[test]
fn random_keys_are_32_lowercase_hex_characters_and_differ() {
    let records = parse(NDJSON, "{}\n".repeat(100).as_bytes());
    for record in &records {
        assert_eq!(record.partition_key.len(), 32);
        assert!(
            record
                .partition_key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{}",
            record.partition_key
        );
    }
    let distinct: std::collections::HashSet<&str> = records.iter().map(|r| r.partition_key.as_str()).collect();
    assert_eq!(distinct.len(), 100);
}

#[test]
fn partition_key_specs_are_random_or_json_pointers() {
    assert_eq!(PartitionKeySpec::parse("random"), Ok(PartitionKeySpec::Random));
    let spec = PartitionKeySpec::parse("/user/id").expect("pointer");
    assert_eq!(spec.to_string(), "/user/id");
    assert_eq!(
        "/a~1b".parse::<PartitionKeySpec>().map(|s| s.to_string()),
        Ok("/a~1b".to_string())
    );
    for bad in ["", "user_id", "Random", "/a~2", "/a~"] {
        assert!(PartitionKeySpec::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn content_types_ignore_case_and_parameters_but_not_charset() {
    for (value, format) in [
        ("application/json", BodyFormat::Json),
        ("Application/JSON; charset=\"UTF-8\"", BodyFormat::Json),
        ("application/json;charset=utf8; foo=bar", BodyFormat::Json),
        ("application/json;", BodyFormat::Json),
        ("application/x-ndjson", BodyFormat::Ndjson),
        ("application/jsonl; charset=utf-8", BodyFormat::Ndjson),
    ] {
        assert_eq!(ingest::body_format(Some(value)), Ok(format), "{value}");
    }
}

#[test]
fn content_encodings_are_identity_or_gzip() {
    for (value, encoding) in [
        (None, ContentEncoding::Identity),
        (Some(""), ContentEncoding::Identity),
        (Some("identity"), ContentEncoding::Identity),
        (Some("GZIP"), ContentEncoding::Gzip),
        (Some("x-gzip"), ContentEncoding::Gzip),
        (Some("identity, gzip"), ContentEncoding::Gzip),
    ] {
        assert_eq!(ingest::content_encoding(value), Ok(encoding), "{value:?}");
    }
}

#[test]
fn limits_default_to_put_records_and_validation_names_the_field() {
    let limits = IngestLimits::default();
    assert_eq!(
        (
            limits.max_records,
            limits.max_body_bytes,
            limits.max_record_bytes,
            limits.max_depth
        ),
        (500, 5 * MIB, MIB, 64)
    );
    assert_eq!(limits.validate(), Ok(()));
    let at_max = IngestLimits {
        max_records: 100_000,
        max_body_bytes: MAX_BODY_BYTES_LIMIT,
        max_record_bytes: MIB,
        max_depth: MAX_DEPTH_LIMIT,
    };
    assert_eq!(at_max.validate(), Ok(()));
    let field = |limits: IngestLimits| limits.validate().map_err(|e: InvalidLimit| (e.field, e.to_string()));
    let e = field(IngestLimits {
        max_body_bytes: MAX_BODY_BYTES_LIMIT + 1,
        ..limits
    })
    .expect_err("10 MB + 1");
    assert_eq!(e.0, "max_body_bytes");
    assert_eq!(
        e.1,
        "ingest limit max_body_bytes is 10000001; it must be 1 to 10000000 (API Gateway's payload limit)"
    );
    let e = field(IngestLimits {
        max_records: 0,
        ..limits
    })
    .expect_err("no records");
    assert_eq!(e.1, "ingest limit max_records is 0; it must be at least 1");
    for (bad, name) in [
        (
            IngestLimits {
                max_records: 0,
                ..limits
            },
            "max_records",
        ),
        (
            IngestLimits {
                max_body_bytes: 0,
                ..limits
            },
            "max_body_bytes",
        ),
        (
            IngestLimits {
                max_record_bytes: MIB + 1,
                ..limits
            },
            "max_record_bytes",
        ),
        (IngestLimits { max_depth: 0, ..limits }, "max_depth"),
        (
            IngestLimits {
                max_depth: MAX_DEPTH_LIMIT + 1,
                ..limits
            },
            "max_depth",
        ),
    ] {
        assert_eq!(field(bad).map_err(|e| e.0), Err(name));
    }
}

#[test]
fn the_deepest_allowed_record_is_accepted_and_serde_json_parses_it_again() {
    let limits = IngestLimits {
        max_depth: MAX_DEPTH_LIMIT,
        ..IngestLimits::default()
    };
    let record = nested(MAX_DEPTH_LIMIT);
    for key in [
        PartitionKeySpec::Random,
        PartitionKeySpec::parse("/a/0/0").expect("pointer"),
    ] {
        let body = format!("[{record}]");
        let result = ingest(Some(JSON), None, body.as_bytes(), &limits, &key);
        // `/a/0/0` points at an array, so the deepest record is walked and then its key refused.
        match key {
            PartitionKeySpec::Random => {
                let records = result.expect("deepest record");
                serde_json::from_slice::<Value>(&records[0].data).expect("serde_json parses it again");
            }
            PartitionKeySpec::Pointer(_) => {
                assert_eq!(result.map_err(|e| e.code), Err(code::PARTITION_KEY_INVALID));
            }
        }
    }
    let too_deep = nested(MAX_DEPTH_LIMIT + 1);
    let e = ingest(
        Some(JSON),
        None,
        too_deep.as_bytes(),
        &limits,
        &PartitionKeySpec::Random,
    )
    .expect_err("too deep");
    assert_eq!((e.code, e.record_index), (code::TOO_DEEP, Some(0)));
    assert!(serde_json::from_str::<Value>(&too_deep).is_err());
}

#[test]
fn exactly_the_limits_are_accepted() {
    assert_eq!(parse(JSON, objects(500).as_bytes()).len(), 500);
    assert_eq!(parse(NDJSON, "{}\n".repeat(500).as_bytes()).len(), 500);
    let record = format!(r#"{{"a":"{}"}}"#, "x".repeat(MIB - 8));
    assert_eq!(record.len(), MIB);
    assert_eq!(parse(JSON, record.as_bytes())[0].data.len(), MIB);
    assert_eq!(parse(JSON, nested(64).as_bytes()).len(), 1);
}

#[test]
fn the_size_limit_applies_to_the_compacted_data() {
    // 1 MiB of data, sent pretty-printed (so more than 1 MiB on the wire), is accepted.
    let record = format!("{{\n  \"a\" : \"{}\"\n}}", "x".repeat(MIB - 8));
    assert!(record.len() > MIB);
    assert_eq!(parse(JSON, record.as_bytes())[0].data.len(), MIB);
}

#[test]
fn a_utf8_byte_order_mark_at_the_start_is_skipped() {
    let records = parse(JSON, b"\xEF\xBB\xBF{\"a\":1}");
    assert_eq!(data(&records), [b"{\"a\":1}"]);
    let records = parse(NDJSON, b"\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}");
    assert_eq!(data(&records), [b"{\"a\":1}", b"{\"b\":2}"]);
}

#[test]
fn brackets_and_escaped_quotes_inside_strings_do_not_count_as_nesting() {
    let limits = IngestLimits {
        max_depth: 1,
        ..IngestLimits::default()
    };
    let body = br#"[{"a":"[[[{{{\"]]]","b\\":"\\"}]"#;
    let records = ingest(Some(JSON), None, body, &limits, &PartitionKeySpec::Random).expect("depth 1");
    assert_eq!(data(&records), [br#"{"a":"[[[{{{\"]]]","b\\":"\\"}"#]);
}

/// Small JSON values: no floats, so that every value survives a round trip exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        r#"[a-z \\"\n\r\t/é😀\u2028\x00-\x1f]{0,8}"#.prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\"]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z_\" ]{0,6}", json_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
}

proptest! {
    #[test]
    fn objects_sent_as_ndjson_or_an_array_parse_back_in_order(values in prop::collection::vec(json_object(), 1..20)) {
        let compact: Vec<Vec<u8>> = values.iter().map(|v| serde_json::to_vec(v).expect("serializes")).collect();
        let ndjson = compact.iter().fold(Vec::new(), |mut out, line| {
            out.extend_from_slice(line);
            out.push(b'\n');
            out
        });
        let bodies = [
            (NDJSON, ndjson),
            (JSON, serde_json::to_vec(&values).expect("serializes")),
            (JSON, serde_json::to_vec_pretty(&values).expect("serializes")),
        ];
        for (content_type, body) in bodies {
            let records = ingest(Some(content_type), None, &body, &IngestLimits::default(), &PartitionKeySpec::Random);
            let records = records.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let parsed: Vec<Value> = records
                .iter()
                .map(|r| serde_json::from_slice(&r.data).expect("data is JSON"))
                .collect();
            prop_assert_eq!(&parsed, &values);
            prop_assert_eq!(data(&records), compact.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }
}

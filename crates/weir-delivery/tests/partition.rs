//! Dynamic partitioning's inline parsing: AWS's documented examples, Firehose's failure cases, and weir's own
//! rules (deterministic filters, sanitised values).

use std::collections::BTreeMap;
use weir_delivery::partition::{MAX_QUERY_CHARS, METADATA_EXTRACTION_FAILED, QueryError, QueryKeys, QuerySource};

/// The sample record of AWS's "Understand partitioning keys" (its `#epoch timestamp` comment dropped).
const AWS_RECORD: &[u8] = br#"{
    "type": {
        "device": "mobile",
        "event": "user_clicked_submit_button"
    },
    "customer_id": "1234567890",
    "event_timestamp": 1565382027,
    "region": "sample_region"
}"#;

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn extract(query: &str, record: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let compiled = QueryKeys::compile(query).expect("the query compiles");
    compiled.extract(record).map_err(|e| {
        assert_eq!(e.code, METADATA_EXTRACTION_FAILED, "{e}");
        e.message
    })
}

fn failure(query: &str, record: &[u8]) -> String {
    extract(query, record).expect_err("the record fails partitioning")
}

#[test]
fn aws_documented_query_extracts_top_level_and_nested_keys() {
    let extracted = extract("{customer_id: .customer_id, device: .type.device}", AWS_RECORD).expect("keys");
    assert_eq!(extracted, keys(&[("customer_id", "1234567890"), ("device", "mobile")]));
}

#[test]
fn aws_documented_strftime_expressions_format_the_epoch_timestamp() {
    // The table of jq expressions in "Understand partitioning keys", as the CDK's jq16 example writes them.
    let query = r#"{year: .event_timestamp|strftime("%Y"), month: .event_timestamp|strftime("%m"),
                     day: .event_timestamp|strftime("%d"), hour: .event_timestamp|strftime("%H")}"#;
    let extracted = extract(query, AWS_RECORD).expect("keys");
    // 1565382027 is 2019-08-09T20:20:27Z.
    assert_eq!(
        extracted,
        keys(&[("year", "2019"), ("month", "08"), ("day", "09"), ("hour", "20")])
    );
}

#[test]
fn numbers_and_booleans_are_rendered_as_jq_prints_them() {
    let record = br#"{"n": 1565382027, "f": 1.50, "neg": -3, "big": 12345678901234567890, "e": 1e17, "small": 0.00001,
                      "t": true, "no": false}"#;
    let query = "{n: .n, f: .f, neg: .neg, big: .big, e: .e, small: .small, t: .t, no: .no}";
    let extracted = extract(query, record).expect("keys");
    assert_eq!(
        extracted,
        keys(&[
            ("n", "1565382027"),
            ("f", "1.5"),
            ("neg", "-3"),
            ("big", "12345678901234567000"),
            ("e", "1e+17"),
            ("small", "1e-05"),
            ("t", "true"),
            ("no", "false"),
        ])
    );
}

#[test]
fn a_missing_field_fails_the_record_naming_the_key() {
    let message = failure("{customer_id: .customer_id, region: .country}", AWS_RECORD);
    assert!(message.contains("`region`") && message.contains("null"), "{message}");
}

#[test]
fn a_null_value_fails_the_record() {
    let message = failure("{customer_id: .customer_id}", br#"{"customer_id": null}"#);
    assert!(message.contains("`customer_id` is null"), "{message}");
}

#[test]
fn object_and_array_values_fail_the_record() {
    let message = failure("{device: .type}", AWS_RECORD);
    assert!(message.contains("`device` is an object"), "{message}");
    let message = failure("{tags: .tags}", br#"{"tags": ["a", "b"]}"#);
    assert!(message.contains("`tags` is an array"), "{message}");
}

#[test]
fn a_jq_runtime_error_fails_the_record() {
    // Indexing a string, as jq 1.6 refuses to.
    let message = failure("{device: .type.device}", br#"{"type": "mobile"}"#);
    assert!(message.starts_with("the query failed:"), "{message}");
    let message = failure(r#"{id: (.id | error("no id"))}"#, br#"{"id": 1}"#);
    assert!(message.contains("no id"), "{message}");
}

#[test]
fn a_query_yielding_no_object_or_several_fails_the_record() {
    let message = failure("select(.customer_id == \"other\") | {customer_id}", AWS_RECORD);
    assert!(message.contains("yielded no value"), "{message}");
    let message = failure("{id: .ids[]}", br#"{"ids": ["a", "b"]}"#);
    assert!(message.contains("more than one value"), "{message}");
    let message = failure(".customer_id", AWS_RECORD);
    assert!(message.contains("yielded a string, not an object"), "{message}");
}

#[test]
fn a_record_that_is_not_json_fails() {
    let message = failure("{customer_id: .customer_id}", b"customer_id=1234567890");
    assert!(message.starts_with("the record is not valid JSON"), "{message}");
    // jaq's own reader would take these; jq 1.6 and weir don't.
    for record in [
        &b"{\"a\": NaN}"[..],
        b"{\"a\": 1} # comment",
        b"{\"a\": 1}{\"a\": 2}",
        b"",
    ] {
        let message = failure("{a: .a}", record);
        assert!(message.starts_with("the record is not valid JSON"), "{message}");
    }
}

#[test]
fn traversal_values_are_refused_by_the_sanitiser() {
    for (value, problem) in [
        ("..", "relative path segment"),
        (".", "relative path segment"),
        ("a/b", "`/`"),
        ("a\\\\b", "`\\`"),
        ("", "empty"),
    ] {
        let record = format!(r#"{{"customer_id": "{value}"}}"#);
        let message = failure("{customer_id: .customer_id}", record.as_bytes());
        assert!(
            message.contains("`customer_id`") && message.contains(problem),
            "{value}: {message}"
        );
    }
}

#[test]
fn compile_errors_name_the_position() {
    let error = QueryKeys::compile("{customer_id: .customer_id").expect_err("unclosed brace");
    let QueryError::Invalid {
        text,
        position,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*text, QuerySource::Query);
    assert_eq!(*position, 26, "where the closing brace is missing: {error}");
    assert!(message.contains("closing brace"), "{error}");

    let error = QueryKeys::compile("{customer_id: .customer_id | nosuchfilter}").expect_err("undefined filter");
    assert!(matches!(error, QueryError::Invalid { position: 29, .. }), "{error}");
    assert!(error.to_string().contains("nosuchfilter/0"), "{error}");

    let error = QueryKeys::compile("{a: .a,, b: .b}").expect_err("syntax error");
    assert!(matches!(error, QueryError::Invalid { position: 7, .. }), "{error}");
}

#[test]
fn filters_that_depend_on_more_than_the_record_are_refused() {
    for query in [
        "{t: now | tostring}",
        "{t: .event_timestamp | localtime | mktime | tostring}",
        r#"{t: .event_timestamp | strflocaltime("%H")}"#,
        "{home: env.HOME}",
        "{home: $ENV.HOME}",
    ] {
        let error = QueryKeys::compile(query).expect_err(query);
        assert!(matches!(error, QueryError::Invalid { .. }), "{query}: {error}");
    }
    let error = QueryKeys::compile("{t: now}").expect_err("now");
    assert!(
        error.to_string().contains("`now` is not available: it reads the clock"),
        "{error}"
    );
}

#[test]
fn debug_and_stderr_pass_their_input_through() {
    let extracted = extract("{customer_id: .customer_id | debug | stderr}", AWS_RECORD).expect("keys");
    assert_eq!(extracted, keys(&[("customer_id", "1234567890")]));
}

#[test]
fn queries_are_checked_against_firehose_length_rules() {
    assert_eq!(
        QueryKeys::compile("  \n").expect_err("blank"),
        QueryError::Empty(QuerySource::Query)
    );
    let long = format!("{{a: .a{}}}", " ".repeat(MAX_QUERY_CHARS));
    assert!(matches!(QueryKeys::compile(&long), Err(QueryError::TooLong { .. })));
    assert_eq!(
        QueryKeys::from_keys(&BTreeMap::new()).expect_err("no keys"),
        QueryError::NoKeys
    );
    assert_eq!(
        QueryKeys::from_keys(&keys(&[("", ".a")])).expect_err("empty name"),
        QueryError::EmptyKeyName
    );
    assert_eq!(
        QueryKeys::from_keys(&keys(&[("a", " ")])).expect_err("blank expression"),
        QueryError::Empty(QuerySource::Key("a".to_owned()))
    );
}

#[test]
fn from_keys_compile_errors_name_the_key_and_position_in_its_expression() {
    let error = QueryKeys::from_keys(&keys(&[("customer_id", ".customer_id"), ("year", ".ts | strftime(")]))
        .expect_err("unclosed call");
    let QueryError::Invalid { text, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*text, QuerySource::Key("year".to_owned()));
    assert!(error.to_string().starts_with("query_keys.year, offset "), "{error}");
}

#[test]
fn from_keys_extracts_what_the_object_query_extracts() {
    let per_key = QueryKeys::from_keys(&keys(&[
        ("customer_id", ".customer_id"),
        ("device", ".type.device"),
        ("year", r#".event_timestamp|strftime("%Y")"#),
    ]))
    .expect("compiles");
    let object = QueryKeys::compile(
        r#"{customer_id: .customer_id, device: .type.device, year: .event_timestamp|strftime("%Y")}"#,
    )
    .expect("compiles");
    let records: [&[u8]; 7] = [
        AWS_RECORD,
        br#"{"customer_id": 7, "type": {"device": true}, "event_timestamp": 0}"#,
        br#"{"customer_id": "a", "type": {"device": "b"}}"#,
        br#"{"customer_id": null, "type": {"device": "b"}, "event_timestamp": 0}"#,
        br#"{"customer_id": "a/b", "type": {"device": "b"}, "event_timestamp": 0}"#,
        br#"{"customer_id": "a", "type": "mobile", "event_timestamp": 0}"#,
        b"not json",
    ];
    for record in records {
        let (a, b) = (per_key.extract(record), object.extract(record));
        assert_eq!(a.as_ref().ok(), b.as_ref().ok(), "{}", String::from_utf8_lossy(record));
        assert_eq!(a.is_err(), b.is_err(), "{}", String::from_utf8_lossy(record));
        if let (Err(a), Err(b)) = (a, b) {
            assert_eq!(a.code, b.code);
        }
    }
}

#[test]
fn the_compiled_query_is_reused_across_records() {
    let compiled = QueryKeys::compile("{customer_id: .customer_id}").expect("compiles");
    for id in 0..100 {
        let record = format!(r#"{{"customer_id": "c{id}"}}"#);
        let extracted = compiled.extract(record.as_bytes()).expect("keys");
        assert_eq!(extracted["customer_id"], format!("c{id}"));
    }
}

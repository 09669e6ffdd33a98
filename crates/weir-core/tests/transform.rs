//! The transformation contract, the Lambda envelope, the error output and the built-in transforms:
//! golden inputs → exact output bytes.

use proptest::prelude::*;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use weir_core::transform::csv::{self, ColumnType, CsvColumn};
use weir_core::transform::envelope::{self, EnvelopeError, FirehoseEvent, InvokeError};
use weir_core::transform::newline::NewlineTransform;
use weir_core::transform::{
    ContractError, InputRecord, MAX_RESPONSE_BYTES, OutputRecord, ProcessingError, ProcessingFailedDocument, Transform,
    TransformResult, TransformSpec, check_response, code, pair_response,
};

const EVENT: &str = include_str!("fixtures/firehose-event-kinesis.json");
const EVENT_DIRECT_PUT: &str = include_str!("fixtures/firehose-event-direct-put.json");
const RESPONSE_NEWLINE: &str = include_str!("fixtures/firehose-response-newline.json");

const ARRIVAL: i64 = 1_708_495_953_500; // 2024-02-21T06:12:33.500Z

fn record<'a>(id: &'a str, data: &'a str) -> InputRecord<'a> {
    InputRecord {
        record_id: id.into(),
        approximate_arrival_ms: ARRIVAL,
        data: Cow::Borrowed(data.as_bytes()),
        shard_id: "shardId-000000000003".into(),
        partition_key: "pk-1".into(),
        sequence_number: "49590338271490256608559692538361571095921575989136588850".into(),
    }
}

fn batch<'a>(data: &[&'a str]) -> Vec<InputRecord<'a>> {
    const IDS: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
    data.iter().enumerate().map(|(i, d)| record(IDS[i], d)).collect()
}

/// Each record's outcome: its output text, or its error code and message.
fn run(transform: &dyn Transform, data: &[&str]) -> Vec<Result<String, (String, String)>> {
    let input = batch(data);
    let output = transform.process(&input).expect("no batch failure");
    let paired = pair_response(&input, &output).expect("the contract holds");
    paired
        .into_iter()
        .zip(&input)
        .map(|(out, input)| match out.result {
            TransformResult::Ok => Ok(String::from_utf8(out.data.to_vec()).expect("UTF-8 output")),
            TransformResult::ProcessingFailed => {
                assert_eq!(out.data, input.data, "a failed record keeps its original data");
                let error = out.error.clone().expect("built-ins say why");
                Err((error.code.into_owned(), error.message))
            }
            TransformResult::Dropped => panic!("built-ins never drop"),
        })
        .collect()
}

fn failed(result: &Result<String, (String, String)>) -> (&str, &str) {
    match result {
        Err((code, message)) => (code, message),
        Ok(out) => panic!("expected a failure, got {out:?}"),
    }
}

fn spec(toml_text: &str) -> TransformSpec {
    #[derive(Deserialize)]
    struct Config {
        transform: TransformSpec,
    }
    toml::from_str::<Config>(toml_text)
        .expect("a valid transform")
        .transform
}

fn spec_error(toml_text: &str) -> String {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Config {
        transform: TransformSpec,
    }
    toml::from_str::<Config>(toml_text)
        .expect_err("an invalid transform")
        .to_string()
}

fn build(toml_text: &str) -> Box<dyn Transform> {
    spec(toml_text).build().expect("a valid transform")
}

fn build_error(toml_text: &str) -> String {
    match spec(toml_text).build() {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------
// The contract

fn outputs<'a>(ids: &[&'a str]) -> Vec<OutputRecord<'a>> {
    ids.iter().map(|id| OutputRecord::ok(*id, &b"x\n"[..])).collect()
}

#[test]
fn response_in_another_order_pairs_back_by_id() {
    let input = batch(&["{}", "{}", "{}"]);
    let output = outputs(&["r2", "r0", "r1"]);
    let paired = pair_response(&input, &output).expect("every id once");
    let ids: Vec<&str> = paired.iter().map(|o| &*o.record_id).collect();
    assert_eq!(ids, ["r0", "r1", "r2"]);
    check_response(&input, &output).expect("every id once");
}

#[test]
fn a_missing_record_id_fails_the_batch_naming_the_id() {
    let input = batch(&["{}", "{}", "{}"]);
    let error = check_response(&input, &outputs(&["r0", "r2"])).expect_err("r1 is missing");
    assert_eq!(error, ContractError::MissingRecordId { record_id: "r1".into() });
    assert_eq!(error.code(), "Lambda.MissingRecordId");
    assert!(error.to_string().contains("\"r1\""), "{error}");
}

#[test]
fn a_duplicated_record_id_fails_the_batch_naming_the_id() {
    let input = batch(&["{}", "{}"]);
    let error = check_response(&input, &outputs(&["r0", "r1", "r0"])).expect_err("r0 twice");
    assert_eq!(error, ContractError::DuplicatedRecordId { record_id: "r0".into() });
    assert_eq!(error.code(), "Lambda.DuplicatedRecordId");
    assert_eq!(error.to_processing_error().code, "Lambda.DuplicatedRecordId");
}

#[test]
fn an_unknown_record_id_fails_the_batch_naming_the_id() {
    let input = batch(&["{}", "{}"]);
    let error = check_response(&input, &outputs(&["r0", "r1-renamed"])).expect_err("unknown id");
    assert_eq!(
        error,
        ContractError::UnknownRecordId {
            record_id: "r1-renamed".into()
        }
    );
    // AWS reports a replaced id as a missing one.
    assert_eq!(error.code(), "Lambda.MissingRecordId");
}

#[test]
fn a_response_over_six_mib_of_lambda_json_fails_the_batch() {
    let input = batch(&["{}", "{}"]);
    // 2.4 MB of data is 3.2 MB of base64 each: 6.4 MB together.
    let big = vec![b'a'; 2_400_000];
    let output = vec![OutputRecord::ok("r0", &big[..]), OutputRecord::ok("r1", &big[..])];
    let size = envelope::response_size(&output);
    assert!(size > MAX_RESPONSE_BYTES);
    assert_eq!(
        check_response(&input, &output),
        Err(ContractError::ResponseTooLarge {
            bytes: size,
            max: 6_291_456
        })
    );
    assert_eq!(
        check_response(&input, &output).expect_err("too large").code(),
        "Lambda.FunctionError"
    );
    // Just under the limit passes.
    let fits = vec![b'a'; 2_300_000];
    let output = vec![OutputRecord::ok("r0", &fits[..]), OutputRecord::ok("r1", &fits[..])];
    check_response(&input, &output).expect("under 6 MiB");
}

#[test]
fn dropped_and_processing_failed_records_satisfy_the_contract() {
    let input = batch(&["{\"keep\":true}", "{\"drop\":true}", "oops"]);
    let output = vec![
        OutputRecord::ok("r0", &b"{\"keep\":true}\n"[..]),
        OutputRecord::dropped("r1"),
        OutputRecord::failed(&input[2], ProcessingError::new(code::INVALID_JSON, "not JSON")),
    ];
    check_response(&input, &output).expect("every id once");
    assert_eq!(output[1].data.len(), 0);
    assert_eq!(&*output[2].data, b"oops", "the original data");
    assert_eq!(output[2].failure().code, "Transform.InvalidJson");
}

#[test]
fn a_processing_failed_record_from_lambda_json_gets_firehoses_code() {
    let response = br#"{"records":[{"recordId":"r0","result":"ProcessingFailed","data":"b29wcw=="}]}"#;
    let output = envelope::decode_response(response).expect("a valid response");
    assert_eq!(output[0].error, None);
    let failure = output[0].failure();
    assert_eq!(failure.code, "Lambda.ProcessingFailedStatus");
    assert_eq!(failure.message, "ProcessingFailed status set for record");
}

// ---------------------------------------------------------------------------------------------------
// The envelope

#[test]
fn event_fixture_decodes_to_input_records() {
    let invocation = envelope::decode_event(EVENT.as_bytes()).expect("AWS's event shape");
    assert_eq!(invocation.invocation_id, "5d2f3a8e-7c1b-4e0a-9f6d-2b8c4a1e9f70");
    assert_eq!(
        invocation.delivery_stream_arn,
        "arn:aws:firehose:us-east-1:123456789012:deliverystream/events"
    );
    assert_eq!(
        invocation.source_kinesis_stream_arn.as_deref(),
        Some("arn:aws:kinesis:us-east-1:123456789012:stream/events")
    );
    assert_eq!(invocation.region, "us-east-1");
    assert_eq!(invocation.records.len(), 3);
    let first = &invocation.records[0];
    assert_eq!(
        first.record_id,
        "49546986683135544286507457936321625675700192471156785154000000"
    );
    assert_eq!(first.approximate_arrival_ms, 1_708_495_953_500);
    assert_eq!(
        &*first.data,
        br#"{"user_id":7,"event":"click","page":{"path":"/home","ref":null}}"#
    );
    assert_eq!(first.shard_id, "shardId-000000000000");
    assert_eq!(first.partition_key, "7");
    assert_eq!(
        first.sequence_number,
        "49546986683135544286507457936321625675700192471156785154"
    );
    assert_eq!(&*invocation.records[2].data, b"not json");
    assert!(matches!(first.record_id, Cow::Borrowed(_)), "ids borrow from the event");
}

#[test]
fn event_round_trips_through_encode_and_decode() {
    let invocation = envelope::decode_event(EVENT.as_bytes()).expect("AWS's event shape");
    let encoded = envelope::encode_event(&invocation);
    let again = envelope::decode_event(&encoded).expect("weir's own event");
    assert_eq!(again, invocation);
    // The wire types keep every field of AWS's shape, the same JSON value after a round trip.
    let wire: FirehoseEvent<'_> = serde_json::from_str(EVENT).expect("AWS's event shape");
    let reencoded = serde_json::to_value(&wire).expect("serializable");
    let original: serde_json::Value = serde_json::from_str(EVENT).expect("JSON");
    assert_eq!(reencoded, original);
    // And encode_event writes the same document as the fixture.
    let ours: serde_json::Value = serde_json::from_slice(&encoded).expect("JSON");
    assert_eq!(ours, original);
}

#[test]
fn events_that_are_not_utf8_fail_as_json_errors() {
    let mut event = EVENT.as_bytes().to_vec();
    let at = event.windows(12).position(|w| w == b"invocationId").expect("a key") + 2;
    event[at] = 0xff;
    let error = envelope::decode_event(&event).expect_err("not UTF-8");
    assert!(matches!(error, EnvelopeError::Json { what: "event", .. }), "{error}");
}

#[test]
fn direct_put_events_have_no_kinesis_metadata() {
    let invocation = envelope::decode_event(EVENT_DIRECT_PUT.as_bytes()).expect("a Direct PUT event");
    assert_eq!(invocation.source_kinesis_stream_arn, None);
    let record = &invocation.records[0];
    assert_eq!(&*record.data, b"{\"a\":1}");
    assert_eq!(
        (&*record.shard_id, &*record.partition_key, &*record.sequence_number),
        ("", "", "")
    );
    let encoded = envelope::encode_event(&invocation);
    let ours: serde_json::Value = serde_json::from_slice(&encoded).expect("JSON");
    let original: serde_json::Value = serde_json::from_str(EVENT_DIRECT_PUT).expect("JSON");
    assert_eq!(ours, original);
}

#[test]
fn invoke_runs_the_newline_transform_as_the_seeds_lambda_would() {
    let response = envelope::invoke(&NewlineTransform::new(), EVENT.as_bytes()).expect("a whole invocation");
    assert_eq!(String::from_utf8(response).expect("UTF-8"), RESPONSE_NEWLINE);
}

#[test]
fn response_round_trips_with_partition_keys() {
    let input = batch(&["{}", "{}", "{}"]);
    let mut ok = OutputRecord::ok("r0", &b"{\"a\":1}\n"[..]);
    ok.partition_keys = BTreeMap::from([
        ("customer".to_owned(), "7".to_owned()),
        ("day".to_owned(), "21".to_owned()),
    ]);
    let output = vec![
        ok,
        OutputRecord::dropped("r1"),
        OutputRecord::failed(&input[2], ProcessingError::new(code::INVALID_JSON, "x")),
    ];
    let encoded = envelope::encode_response(&output);
    assert_eq!(
        String::from_utf8(encoded.clone()).expect("UTF-8"),
        concat!(
            r#"{"records":[{"recordId":"r0","result":"Ok","data":"eyJhIjoxfQo=","metadata":{"partitionKeys":{"customer":"7","day":"21"}}},"#,
            r#"{"recordId":"r1","result":"Dropped","data":""},"#,
            r#"{"recordId":"r2","result":"ProcessingFailed","data":"e30="}]}"#
        )
    );
    assert_eq!(envelope::response_size(&output), encoded.len());
    let decoded = envelope::decode_response(&encoded).expect("weir's own response");
    let expected: Vec<OutputRecord<'_>> = output
        .into_iter()
        .map(|mut o| {
            o.error = None; // not part of Firehose's contract
            o
        })
        .collect();
    assert_eq!(decoded, expected);
}

#[test]
fn response_records_without_data_are_read_as_aws_blueprints_write_them() {
    let dropped = envelope::decode_response(br#"{"records":[{"recordId":"a","result":"Dropped"}]}"#).expect("valid");
    assert_eq!(dropped[0].result, TransformResult::Dropped);
    assert!(dropped[0].data.is_empty());
    let error = envelope::decode_response(br#"{"records":[{"recordId":"a","result":"Ok"}]}"#).expect_err("no data");
    assert!(matches!(error, EnvelopeError::MissingData { ref record_id } if record_id == "a"));
    assert_eq!(error.code(), "Lambda.JsonProcessingException");
    let error = envelope::decode_response(br#"{"records":[{"recordId":"a","result":"Fine","data":""}]}"#)
        .expect_err("unknown result");
    assert!(matches!(error, EnvelopeError::Json { what: "response", .. }), "{error}");
}

#[test]
fn invoke_refuses_bad_base64_and_broken_transforms() {
    let bad = EVENT.replace("bm90IGpzb24=", "bm90IGpzb24");
    let error = envelope::invoke(&NewlineTransform::new(), bad.as_bytes()).expect_err("unpadded base64");
    assert!(
        matches!(error, InvokeError::Event(EnvelopeError::Base64 { ref record_id, .. })
            if record_id == "49546986683135544286507457936321625675700192471156785156000000"),
        "{error}"
    );
    assert!(
        envelope::invoke(&NewlineTransform::new(), b"{\"records\":[]}").is_err(),
        "not an event"
    );

    struct Forgetful;
    impl Transform for Forgetful {
        fn id(&self) -> &str {
            "forgetful"
        }
        fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError> {
            Ok(batch[1..]
                .iter()
                .map(|r| OutputRecord::dropped(&*r.record_id))
                .collect())
        }
    }
    let error = envelope::invoke(&Forgetful, EVENT.as_bytes()).expect_err("a record is missing");
    assert!(
        matches!(error, InvokeError::Contract(ContractError::MissingRecordId { ref record_id })
            if record_id == "49546986683135544286507457936321625675700192471156785154000000"),
        "{error}"
    );
}

fn output_strategy() -> impl Strategy<Value = (String, u8, Vec<u8>, BTreeMap<String, String>)> {
    (
        any::<String>(),
        0u8..3,
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..3),
    )
}

proptest! {
    #[test]
    fn response_size_is_the_encoded_length(records in prop::collection::vec(output_strategy(), 0..6)) {
        let output: Vec<OutputRecord<'_>> = records
            .iter()
            .map(|(id, result, data, keys)| OutputRecord {
                record_id: Cow::Borrowed(id),
                result: [TransformResult::Ok, TransformResult::Dropped, TransformResult::ProcessingFailed]
                    [*result as usize],
                data: Cow::Borrowed(data),
                partition_keys: keys.clone(),
                error: None,
            })
            .collect();
        let encoded = envelope::encode_response(&output);
        prop_assert_eq!(envelope::response_size(&output), encoded.len());
        let decoded = envelope::decode_response(&encoded).expect("weir's own response");
        prop_assert_eq!(decoded, output);
    }
}

// ---------------------------------------------------------------------------------------------------
// The error output

#[test]
fn processing_failed_document_has_firehoses_fields_in_order() {
    let input = record("r0", "not json");
    let error = ProcessingError::new(
        code::INVALID_JSON,
        "the record is not valid JSON: expected ident at line 1 column 2",
    );
    let document = ProcessingFailedDocument::new(&input, &error, 1, 1_708_495_960_000, "weir:newline");
    let line = String::from_utf8(document.to_line()).expect("UTF-8");
    assert_eq!(
        line,
        concat!(
            r#"{"attemptsMade":1,"arrivalTimestamp":1708495953500,"errorCode":"Transform.InvalidJson","#,
            r#""errorMessage":"the record is not valid JSON: expected ident at line 1 column 2","#,
            r#""attemptEndingTimestamp":1708495960000,"rawData":"bm90IGpzb24=","lambdaArn":"weir:newline"}"#,
            "\n"
        )
    );
    // Field by field, with JSON types as in real files: numbers, not strings.
    let value: serde_json::Value = serde_json::from_str(&line).expect("one JSON document");
    assert_eq!(value["attemptsMade"], serde_json::json!(1));
    assert_eq!(value["arrivalTimestamp"], serde_json::json!(1_708_495_953_500_i64));
    assert_eq!(value["errorCode"], "Transform.InvalidJson");
    assert_eq!(
        value["attemptEndingTimestamp"],
        serde_json::json!(1_708_495_960_000_i64)
    );
    assert_eq!(value["rawData"], "bm90IGpzb24=");
    assert_eq!(value["lambdaArn"], "weir:newline");
    assert_eq!(value.as_object().expect("an object").len(), 7);
    // A real file's line reads back into the same type.
    let aws = r#"{"attemptsMade":1,"arrivalTimestamp":1575020067711,"errorCode":"Lambda.MissingRecordId","errorMessage":"One or more record Ids were not returned. Ensure that the Lambda function returns all received record Ids.","attemptEndingTimestamp":1575020129986,"rawData":"eyJhIjoxfQ==","lambdaArn":""}"#;
    let parsed: ProcessingFailedDocument<'_> = serde_json::from_str(aws).expect("AWS's shape");
    assert_eq!(parsed.error_code, "Lambda.MissingRecordId");
    assert_eq!(String::from_utf8(parsed.to_line()).expect("UTF-8"), format!("{aws}\n"));
}

#[test]
fn processing_failed_raw_data_is_the_original_record_even_if_the_output_differs() {
    let input = record("r0", "{\"a\":");
    let mut output = OutputRecord::failed(&input, ProcessingError::new(code::INVALID_JSON, "x"));
    output.data = Cow::Borrowed(b"something else");
    let error = output.failure();
    let document =
        ProcessingFailedDocument::new(&input, &error, 4, 0, "arn:aws:lambda:us-east-1:123456789012:function:t");
    assert_eq!(document.raw_data, "eyJhIjo=");
    assert_eq!(document.attempts_made, 4);
}

// ---------------------------------------------------------------------------------------------------
// newline

#[test]
fn newline_appends_a_line_break_to_each_json_record() {
    let out = run(
        &NewlineTransform::new(),
        &[
            r#"{"a":1,"b":"x y"}"#,
            "{\n  \"a\": 2,\n  \"s\": \"keep  spaces\\n\"\n}",
            "[1, 2]",
            "  {\"a\" : 3}  ",
            "\"just a string\"",
        ],
    );
    assert_eq!(
        out,
        vec![
            Ok("{\"a\":1,\"b\":\"x y\"}\n".to_owned()),
            Ok("{\"a\":2,\"s\":\"keep  spaces\\n\"}\n".to_owned()),
            Ok("[1, 2]\n".to_owned()),
            Ok("  {\"a\" : 3}  \n".to_owned()),
            Ok("\"just a string\"\n".to_owned()),
        ]
    );
}

#[test]
fn newline_fails_records_that_are_not_json_and_never_drops_them() {
    let input = vec![
        record("r0", "not json"),
        record("r1", "{\"a\":1"),
        record("r2", ""),
        InputRecord {
            data: Cow::Borrowed(b"{\"a\":\"\xff\"}"),
            ..record("r3", "")
        },
    ];
    let output = NewlineTransform::new().process(&input).expect("no batch failure");
    for (out, input) in output.iter().zip(&input) {
        assert_eq!(out.result, TransformResult::ProcessingFailed, "{:?}", input.data);
        assert_eq!(out.data, input.data);
        assert_eq!(out.failure().code, "Transform.InvalidJson");
    }
    assert!(output[3].failure().message.contains("not UTF-8"));
}

#[test]
fn newline_applies_select_rename_and_add_before_encoding() {
    let transform = build(
        r#"transform = { kind = "newline", fields = { select = ["event", "/user/id", "/user/name", "missing"], rename = { event = "type" }, add = { arrival_timestamp = "_arrival", shard_id = "_shard", sequence_number = "_seq", partition_key = "_pk" } } }"#,
    );
    let out = run(
        &*transform,
        &[
            r#"{"user":{"id":7,"name":"Ann","email":"a@x"},"event":"click","extra":[1]}"#,
            r#"{"event":"view","user":"not an object"}"#,
        ],
    );
    assert_eq!(
        out,
        vec![
            Ok(concat!(
                r#"{"type":"click","user":{"id":7,"name":"Ann"},"_arrival":1708495953500,"_shard":"shardId-000000000003","#,
                r#""_seq":"49590338271490256608559692538361571095921575989136588850","_pk":"pk-1"}"#,
                "\n"
            )
            .to_owned()),
            Ok(concat!(
                r#"{"type":"view","_arrival":1708495953500,"_shard":"shardId-000000000003","#,
                r#""_seq":"49590338271490256608559692538361571095921575989136588850","_pk":"pk-1"}"#,
                "\n"
            )
            .to_owned()),
        ]
    );
}

#[test]
fn renames_and_additions_never_overwrite_a_field() {
    let transform = build(r#"transform = { kind = "newline", fields = { rename = { a = "b" } } }"#);
    let out = run(&*transform, &[r#"{"a":1,"b":2}"#, r#"{"a":1}"#, r#"{"c":1}"#]);
    let (code, message) = failed(&out[0]);
    assert_eq!(code, "Transform.KeyCollision");
    assert!(message.contains("\"a\"") && message.contains("\"b\""), "{message}");
    assert_eq!(out[1], Ok("{\"b\":1}\n".to_owned()));
    assert_eq!(out[2], Ok("{\"c\":1}\n".to_owned()), "nothing to rename");

    let transform = build(r#"transform = { kind = "newline", fields = { add = { shard_id = "shard" } } }"#);
    let out = run(&*transform, &[r#"{"shard":"mine"}"#, "[1]"]);
    assert_eq!(failed(&out[0]).0, "Transform.KeyCollision");
    assert_eq!(
        failed(&out[1]).0,
        "Transform.NotAnObject",
        "field operations need an object"
    );
}

// ---------------------------------------------------------------------------------------------------
// flatten

#[test]
fn flatten_joins_nested_keys_and_keeps_arrays_and_empty_objects() {
    let transform = build(r#"transform = "flatten""#);
    let out = run(
        &*transform,
        &[
            r#"{"a":{"b":{"c":1},"d":"x"},"e":[{"f":1},2],"g":{},"h":null}"#,
            "{ \"user\" : { \"id\" : 7 ,\n \"tags\" : [ \"a\" , \"b\" ] } }",
            r#"{"flat":true}"#,
        ],
    );
    assert_eq!(
        out,
        vec![
            Ok("{\"a_b_c\":1,\"a_d\":\"x\",\"e\":[{\"f\":1},2],\"g\":{},\"h\":null}\n".to_owned()),
            Ok("{\"user_id\":7,\"user_tags\":[\"a\",\"b\"]}\n".to_owned()),
            Ok("{\"flat\":true}\n".to_owned()),
        ]
    );
}

#[test]
fn flatten_uses_the_configured_separator_after_field_operations() {
    let transform = build(
        r#"transform = { kind = "flatten", separator = ".", fields = { select = ["user"], add = { partition_key = "pk" } } }"#,
    );
    let out = run(&*transform, &[r#"{"user":{"id":7,"geo":{"cc":"FR"}},"drop":{"x":1}}"#]);
    assert_eq!(
        out,
        vec![Ok("{\"user.id\":7,\"user.geo.cc\":\"FR\",\"pk\":\"pk-1\"}\n".to_owned())]
    );
}

#[test]
fn flatten_fails_on_key_collisions_naming_the_key() {
    let transform = build(r#"transform = "flatten""#);
    let out = run(
        &*transform,
        &[
            r#"{"a_b":1,"a":{"b":2}}"#,
            r#"{"a":{"b":2},"a_b":1}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            "7",
        ],
    );
    for result in &out[..2] {
        let (code, message) = failed(result);
        assert_eq!(code, "Transform.KeyCollision");
        assert!(message.contains("\"a_b\""), "{message}");
    }
    let (code, message) = failed(&out[2]);
    assert_eq!(code, "Transform.DuplicateKey");
    assert!(message.contains("\"b\""), "{message}");
    assert_eq!(failed(&out[3]).0, "Transform.NotAnObject");
}

// ---------------------------------------------------------------------------------------------------
// csv

const CSV_SPEC: &str = r#"
[transform]
kind = "csv"
columns = [
  { name = "id", type = "integer" },
  { name = "name", type = "string" },
  { name = "note", type = "string", required = false },
  { name = "score", type = "float", required = false },
  { name = "ok", type = "boolean", required = false },
  { name = "at", type = "timestamp", required = false },
  { name = "meta", type = "json", required = false },
  { name = "city", pointer = "/address/city", type = "string", required = false },
  { name = "first tag", pointer = "/tags/0", type = "string", required = false },
  { name = "arrived", pointer = "/_arrival", type = "timestamp" },
  { name = "shard", pointer = "/_shard", type = "string" },
]
fields = { add = { arrival_timestamp = "_arrival", shard_id = "_shard" } }
"#;

#[test]
fn csv_writes_typed_columns_with_rfc_4180_quoting() {
    let transform = build(CSV_SPEC);
    let out = run(
        &*transform,
        &[
            r#"{"id":1,"name":"plain","note":"","score":1.5,"ok":true,"at":"2024-02-21T06:12:33Z","meta":{"a": [1, 2]},"address":{"city":"Paris"},"tags":["x","y"]}"#,
            r#"{"id":-2,"name":"a, \"quoted\"\nline","note":null,"tags":[]}"#,
            r#"{"name":" padded ","id":3,"at":1708495953500,"meta":"text","ok":false,"score":-1e-3,"note":"back\\slash"}"#,
            r#"{"id":9223372036854775807,"name":"é ☃ 𝄞","at":"2024-02-21T06:12:33.123456789-03:30","meta":null,"score":7}"#,
        ],
    );
    let rest = ",2024-02-21T06:12:33.500000000+00:00,shardId-000000000003\n";
    assert_eq!(
        out,
        vec![
            Ok(format!(
                "1,plain,\"\",1.5,true,2024-02-21T06:12:33.000000000+00:00,\"{{\"\"a\"\":[1,2]}}\",Paris,x{rest}"
            )),
            Ok(format!("-2,\"a, \"\"quoted\"\"\nline\",,,,,,,{rest}")),
            Ok(format!(
                "3,\" padded \",\"back\\slash\",-1e-3,false,2024-02-21T06:12:33.500000000+00:00,\"\"\"text\"\"\",,{rest}"
            )),
            Ok(format!(
                "9223372036854775807,é ☃ 𝄞,,7,,2024-02-21T06:12:33.123456789-03:30,,,{rest}"
            )),
        ]
    );
}

#[test]
fn csv_header_is_one_line_in_the_same_dialect() {
    let spec = spec(CSV_SPEC);
    let header = spec.header().expect("csv has a header");
    assert_eq!(
        String::from_utf8(header.clone()).expect("UTF-8"),
        "id,name,note,score,ok,at,meta,city,first tag,arrived,shard\n"
    );
    let columns = vec![
        CsvColumn {
            name: "a,b".into(),
            pointer: None,
            kind: ColumnType::String,
            required: true,
        },
        CsvColumn {
            name: "say \"x\"".into(),
            pointer: Some("/x".into()),
            kind: ColumnType::Json,
            required: false,
        },
    ];
    assert_eq!(csv::header_line(&columns), b"\"a,b\",\"say \"\"x\"\"\"\n");
    assert_eq!(TransformSpec::default().header(), None);
}

#[test]
fn csv_fails_a_missing_required_column_naming_column_and_pointer() {
    let transform = build(CSV_SPEC);
    let out = run(&*transform, &[r#"{"name":"no id"}"#, r#"{"id":null,"name":"null id"}"#]);
    let (code, message) = failed(&out[0]);
    assert_eq!(code, "Transform.MissingField");
    assert_eq!(
        message,
        "column \"id\" (integer) is required but the value at /id is missing"
    );
    let (code, message) = failed(&out[1]);
    assert_eq!(code, "Transform.MissingField");
    assert!(message.ends_with("at /id is null"), "{message}");
}

#[test]
fn csv_checks_each_type_and_names_column_and_pointer() {
    let transform = build(CSV_SPEC);
    let cases = [
        (
            r#"{"id":"1","name":"x"}"#,
            r#"column "id" (integer) at /id: expected an integer, found a string"#,
        ),
        (
            r#"{"id":1.0,"name":"x"}"#,
            r#"column "id" (integer) at /id: expected an integer, found 1.0"#,
        ),
        (
            r#"{"id":1e3,"name":"x"}"#,
            r#"column "id" (integer) at /id: expected an integer, found 1e3"#,
        ),
        (
            r#"{"id":9223372036854775808,"name":"x"}"#,
            r#"column "id" (integer) at /id: 9223372036854775808 is out of range for an integer (i64)"#,
        ),
        (
            r#"{"id":1,"name":7}"#,
            r#"column "name" (string) at /name: expected a string, found a number"#,
        ),
        (
            r#"{"id":1,"name":"x","score":"1.5"}"#,
            r#"column "score" (float) at /score: expected a number, found a string"#,
        ),
        (
            r#"{"id":1,"name":"x","score":1e999}"#,
            r#"column "score" (float) at /score: 1e999 is out of range for a float (f64)"#,
        ),
        (
            r#"{"id":1,"name":"x","ok":"true"}"#,
            r#"column "ok" (boolean) at /ok: expected true or false, found a string"#,
        ),
        (
            r#"{"id":1,"name":"x","at":"yesterday"}"#,
            r#"column "at" (timestamp) at /at: "yesterday" is not an RFC 3339 timestamp (premature end of input)"#,
        ),
        (
            r#"{"id":1,"name":"x","at":1.5}"#,
            r#"column "at" (timestamp) at /at: expected an integer, found 1.5; a number must be integer epoch milliseconds"#,
        ),
        (
            r#"{"id":1,"name":"x","at":true}"#,
            r#"column "at" (timestamp) at /at: expected an RFC 3339 string or epoch milliseconds, found a boolean"#,
        ),
        (
            r#"{"id":1,"name":"x","address":{"city":["Paris"]}}"#,
            r#"column "city" (string) at /address/city: expected a string, found an array"#,
        ),
    ];
    let data: Vec<&str> = cases.iter().map(|(data, _)| *data).collect();
    for chunk in data.chunks(8).zip(cases.chunks(8)) {
        let out = run(&*transform, chunk.0);
        for (result, (data, expected)) in out.iter().zip(chunk.1) {
            let (code, message) = failed(result);
            assert_eq!(code, "Transform.TypeMismatch", "{data}");
            assert_eq!(message, *expected, "{data}");
        }
    }
}

#[test]
fn csv_column_of_the_whole_record_is_compact_json() {
    let transform = build(
        r#"transform = { kind = "csv", columns = [{ name = "raw", pointer = "", type = "json" }, { name = "n", type = "integer", required = false }] }"#,
    );
    let out = run(&*transform, &["{ \"n\" : 1, \"s\": \"a b\" }", "not json", "[1]"]);
    assert_eq!(out[0], Ok("\"{\"\"n\"\":1,\"\"s\"\":\"\"a b\"\"}\",1\n".to_owned()));
    assert_eq!(failed(&out[1]).0, "Transform.InvalidJson");
    assert_eq!(failed(&out[2]).0, "Transform.NotAnObject");
}

#[test]
fn csv_refuses_a_record_with_an_ambiguous_key_on_a_column_path() {
    let transform = build(CSV_SPEC);
    let out = run(
        &*transform,
        &[
            r#"{"id":1,"name":"x","id":2}"#,
            r#"{"id":1,"name":"x","address":{"city":"A","city":"B"}}"#,
        ],
    );
    assert_eq!(failed(&out[0]).0, "Transform.DuplicateKey");
    let (code, message) = failed(&out[1]);
    assert_eq!(code, "Transform.DuplicateKey");
    assert!(message.contains("\"city\""), "{message}");
}

#[test]
fn snowflake_file_format_reads_nulls_and_empty_strings_apart() {
    for option in [
        "FIELD_OPTIONALLY_ENCLOSED_BY = '\"'",
        "EMPTY_FIELD_AS_NULL = TRUE",
        "NULL_IF = ()",
        "ESCAPE_UNENCLOSED_FIELD = NONE",
        "SKIP_HEADER = 1",
        "TIMESTAMP_FORMAT = 'YYYY-MM-DD\"T\"HH24:MI:SS.FF9TZH:TZM'",
    ] {
        assert!(csv::SNOWFLAKE_FILE_FORMAT.contains(option), "{option}");
    }
}

/// Text with what CSV must quote: quotes, commas, CR, LF, spaces at the ends, backslashes, Unicode.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z ,\"\r\n\t\\\\é☃𝄞]{0,12}",
        Just(String::new()),
        Just(" ".to_owned())
    ]
}

proptest! {
    #[test]
    fn csv_round_trips_strings_and_keeps_null_and_empty_apart(
        values in prop::collection::vec(prop::option::of(tricky_string()), 2..6)
    ) {
        let columns: Vec<CsvColumn> = (0..values.len())
            .map(|i| CsvColumn { name: format!("c{i}"), pointer: None, kind: ColumnType::String, required: false })
            .collect();
        let transform = csv::CsvTransform::new(&columns, &Default::default()).expect("valid columns");
        let object: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("c{i}"), v.clone().map_or(serde_json::Value::Null, serde_json::Value::String)))
            .collect();
        let data = serde_json::to_string(&object).expect("JSON");
        let out = run(&transform, &[&data]);
        let line = out[0].clone().expect("strings are always valid");
        prop_assert!(line.ends_with('\n'));

        // weir's reader gives back exactly the values, None for null and Some("") for "".
        prop_assert_eq!(&csv::decode_line(&line).expect("weir's own CSV"), &values);

        // An independent RFC 4180 reader agrees on every string.
        let mut reader = ::csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
        let mut records = reader.records();
        let record = records.next().expect("one record").expect("valid CSV");
        prop_assert!(records.next().is_none());
        let read: Vec<&str> = record.iter().collect();
        let expected: Vec<&str> = values.iter().map(|v| v.as_deref().unwrap_or("")).collect();
        prop_assert_eq!(read, expected);
    }
}

#[test]
fn decode_records_reads_a_whole_object() {
    let body = "id,name\n1,\"two\nlines\"\n2,\n";
    assert_eq!(
        csv::decode_records(body).expect("valid"),
        vec![
            vec![Some("id".to_owned()), Some("name".to_owned())],
            vec![Some("1".to_owned()), Some("two\nlines".to_owned())],
            vec![Some("2".to_owned()), None],
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// TransformSpec

#[test]
fn spec_accepts_a_kind_name_or_a_table() {
    assert_eq!(spec(r#"transform = "newline""#), TransformSpec::default());
    assert_eq!(spec(r#"transform = { kind = "newline" }"#), TransformSpec::default());
    assert_eq!(spec(r#"transform = "flatten""#).kind(), "flatten");
    let csv_spec = spec(CSV_SPEC);
    assert_eq!(csv_spec.kind(), "csv");
    let TransformSpec::Csv(csv_spec) = csv_spec else {
        panic!("a csv spec")
    };
    assert_eq!(csv_spec.columns.len(), 11);
    assert!(csv_spec.columns[0].required, "columns are required by default");
    assert_eq!(csv_spec.columns[7].pointer.as_deref(), Some("/address/city"));
    assert_eq!(build(r#"transform = "newline""#).id(), "weir:newline");
    assert_eq!(build(r#"transform = "flatten""#).id(), "weir:flatten");
    assert_eq!(build(CSV_SPEC).id(), "weir:csv");
}

#[test]
fn spec_rejects_unknown_kinds_and_keys() {
    for (toml_text, expected) in [
        (r#"transform = "upper""#, "unknown variant `upper`"),
        (r#"transform = "csv""#, "a csv transform needs columns"),
        (
            r#"transform = { kind = "flatten", separatr = "." }"#,
            "unknown field `separatr`",
        ),
        (r#"transform = { kind = "csv", colums = [] }"#, "unknown field `colums`"),
        (
            r#"transform = { kind = "csv", columns = [{ name = "a", type = "text" }] }"#,
            "unknown variant `text`",
        ),
        (
            r#"transform = { kind = "csv", columns = [{ name = "a", type = "string", pointr = "/a" }] }"#,
            "unknown field `pointr`",
        ),
        (
            r#"transform = { kind = "newline", fields = { selct = ["a"] } }"#,
            "unknown field `selct`",
        ),
        (
            r#"transform = { kind = "newline", fields = { add = { arrival = "t" } } }"#,
            "unknown field `arrival`",
        ),
    ] {
        let error = spec_error(toml_text);
        assert!(error.contains(expected), "{toml_text}: {error}");
    }
}

#[test]
fn spec_build_names_the_field_at_fault() {
    for (toml_text, expected) in [
        (
            r#"transform = { kind = "csv", columns = [] }"#,
            "columns: a csv transform needs at least one column",
        ),
        (
            r#"transform = { kind = "csv", columns = [{ name = "a", type = "string" }, { name = "a", type = "json" }] }"#,
            "columns[1].name: \"a\" names two columns",
        ),
        (
            r#"transform = { kind = "csv", columns = [{ name = "a", pointer = "a", type = "string" }] }"#,
            "columns[0].pointer: JSON pointer \"a\" does not start with '/'",
        ),
        (
            r#"transform = { kind = "csv", columns = [{ name = "a", pointer = "/a~2", type = "string" }] }"#,
            "columns[0].pointer: JSON pointer \"/a~2\" has a '~' not followed by 0 or 1",
        ),
        (
            r#"transform = { kind = "csv", columns = [{ name = "a", type = "string", required = false }] }"#,
            "columns[0].required: a csv transform with one column needs it required",
        ),
        (
            r#"transform = { kind = "flatten", separator = "" }"#,
            "separator: the separator must not be empty",
        ),
        (
            r#"transform = { kind = "newline", fields = { select = [] } }"#,
            "fields.select: select is empty",
        ),
        (
            r#"transform = { kind = "newline", fields = { select = ["a", "/a/b"] } }"#,
            "fields.select[1]: \"/a/b\" overlaps \"/a\"",
        ),
        (
            r#"transform = { kind = "newline", fields = { select = ["a"], rename = { b = "c" } } }"#,
            "fields.rename.b: renames \"b\", which select does not keep",
        ),
        (
            r#"transform = { kind = "newline", fields = { rename = { a = "c", b = "c" } } }"#,
            "fields.rename.a: renames \"a\" and \"b\" both to \"c\"",
        ),
        (
            r#"transform = { kind = "newline", fields = { select = ["a", "b"], rename = { a = "b" } } }"#,
            "fields.rename: two selected fields would both be named \"b\"",
        ),
        (
            r#"transform = { kind = "newline", fields = { rename = { a = "t" }, add = { shard_id = "t" } } }"#,
            "fields.add.shard_id: \"t\" is also a rename target",
        ),
        (
            r#"transform = { kind = "newline", fields = { add = { shard_id = "t", partition_key = "t" } } }"#,
            "fields.add.partition_key: \"t\" is already added by another entry",
        ),
        (
            r#"transform = { kind = "newline", fields = { select = ["t"], add = { shard_id = "t" } } }"#,
            "fields.add.shard_id: \"t\" is also a selected field",
        ),
    ] {
        let error = build_error(toml_text);
        assert!(
            error.starts_with(expected),
            "{toml_text}:\n  got      {error}\n  expected {expected}"
        );
    }
}

#[test]
fn spec_serializes_back_to_the_same_configuration() {
    let original = spec(CSV_SPEC);
    let value = serde_json::to_value(&original).expect("serializable");
    assert_eq!(value["kind"], "csv");
    let again: TransformSpec = serde_json::from_value(value).expect("reads back");
    assert_eq!(again, original);
}

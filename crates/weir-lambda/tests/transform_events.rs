//! The transform handler on Firehose transformation events: the documented event shape (a fixture with a
//! Kinesis source), the built-in transforms' results, and a response that would exceed Lambda's 6 MB.

mod support;

use aws_lambda_events::firehose::KinesisFirehoseEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::borrow::Cow;
use support::fixture;
use weir_core::transform::envelope::{self, Invocation};
use weir_core::transform::{InputRecord, MAX_RESPONSE_BYTES, OutputRecord, TransformResult};
use weir_lambda::config::{TRANSFORM, TransformConfig};
use weir_lambda::transform::{TransformFunction, fit_within};

fn function(spec: Option<&str>) -> TransformFunction {
    let spec = spec.map(str::to_owned);
    let config = TransformConfig::from_lookup(move |name| if name == TRANSFORM { spec.clone() } else { None })
        .expect("a valid spec");
    TransformFunction::new(&config).expect("builds")
}

fn event_of(records: Vec<InputRecord<'static>>) -> Vec<u8> {
    envelope::encode_event(&Invocation {
        invocation_id: "inv-1".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/events".into(),
        source_kinesis_stream_arn: Some("arn:aws:kinesis:us-east-1:123456789012:stream/events".into()),
        region: "us-east-1".into(),
        records,
    })
}

fn record(id: String, data: Vec<u8>) -> InputRecord<'static> {
    InputRecord {
        record_id: id.into(),
        approximate_arrival_ms: 1_795_515_300_000,
        data: data.into(),
        shard_id: "shardId-000000000000".into(),
        partition_key: "k".repeat(256).into(),
        sequence_number: "49546986683135544286507457936321625675700192471156785154".into(),
    }
}

#[test]
fn the_fixture_is_firehoses_documented_event_and_newline_answers_every_record_ok() {
    let event = fixture("firehose-kinesis-source.json");
    let typed: KinesisFirehoseEvent = serde_json::from_str(&event).expect("aws_lambda_events reads the fixture");
    assert_eq!(typed.records.len(), 3);

    let (response, counts) = function(None).handle(event.as_bytes()).expect("invocation succeeds");
    let output = envelope::decode_response(&response).expect("a Firehose response");
    assert_eq!(output.len(), 3);
    for (input, output) in typed.records.iter().zip(&output) {
        assert_eq!(input.record_id.as_deref(), Some(&*output.record_id));
        assert_eq!(output.result, TransformResult::Ok);
        let mut expected = input.data.0.clone();
        expected.push(b'\n');
        assert_eq!(&*output.data, &expected[..]);
    }
    assert_eq!(
        (counts.records_in, counts.ok, counts.dropped, counts.processing_failed),
        (3, 3, 0, 0)
    );
    // Exactly the contract's fields, no more.
    let json: serde_json::Value = serde_json::from_slice(&response).expect("JSON");
    let first = json["records"][0].as_object().expect("a record");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["data", "recordId", "result"]);
}

#[test]
fn a_record_the_csv_transform_cannot_type_fails_alone_with_its_original_data() {
    let spec = r#"{"kind":"csv","columns":[{"name":"user_id","type":"integer"},{"name":"event","type":"string"}]}"#;
    let records = vec![
        record("r0".into(), br#"{"user_id":42,"event":"signup"}"#.to_vec()),
        record("r1".into(), br#"{"user_id":"forty-two","event":"login"}"#.to_vec()),
        record("r2".into(), br#"{"user_id":7,"event":"a,b"}"#.to_vec()),
    ];
    let originals: Vec<Vec<u8>> = records.iter().map(|r| r.data.to_vec()).collect();
    let (response, counts) = function(Some(spec))
        .handle(&event_of(records))
        .expect("invocation succeeds");
    let output = envelope::decode_response(&response).expect("a Firehose response");
    let results: Vec<_> = output.iter().map(|r| (r.record_id.to_string(), r.result)).collect();
    assert_eq!(
        results,
        [
            ("r0".to_owned(), TransformResult::Ok),
            ("r1".to_owned(), TransformResult::ProcessingFailed),
            ("r2".to_owned(), TransformResult::Ok),
        ]
    );
    assert_eq!(&*output[0].data, b"42,signup\n");
    assert_eq!(&*output[1].data, &originals[1][..]);
    assert_eq!(&*output[2].data, b"7,\"a,b\"\n");
    assert_eq!((counts.ok, counts.processing_failed), (2, 1));
}

#[test]
fn an_unreadable_event_fails_the_invocation_so_firehose_retries_it() {
    for bad in [&b"not json"[..], br#"{"records": "x"}"#, br#"{"invocationId":"i","deliveryStreamArn":"a","region":"r","records":[{"recordId":"1","approximateArrivalTimestamp":1,"data":"***"}]}"#] {
        assert!(function(None).handle(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_response_over_6_mb_answers_what_fits_and_fails_the_rest_with_their_original_data() {
    // `add` makes each 7-byte record about 700 bytes; 9,000 of them would answer ~8.4 MB.
    let spec = format!(
        r#"{{"kind":"newline","fields":{{"add":{{"sequence_number":"{}","partition_key":"{}"}}}}}}"#,
        "s".repeat(200),
        "p".repeat(200)
    );
    let n = 9_000;
    let records: Vec<_> = (0..n)
        .map(|i| record(format!("r{i}"), format!(r#"{{"i":{i}}}"#).into_bytes()))
        .collect();
    let originals: Vec<Vec<u8>> = records.iter().map(|r| r.data.to_vec()).collect();
    let event = event_of(records);
    let (response, counts) = function(Some(&spec)).handle(&event).expect("answered, not failed");
    assert!(response.len() <= MAX_RESPONSE_BYTES, "{} bytes", response.len());
    // Not wastefully short: one more record answered Ok (≈ 1 KB as base64) would not have fitted.
    assert!(response.len() > MAX_RESPONSE_BYTES - 1_100, "{} bytes", response.len());

    let output = envelope::decode_response(&response).expect("a Firehose response");
    assert_eq!(output.len(), n);
    let kept = output.iter().take_while(|r| r.result == TransformResult::Ok).count();
    assert!(kept > 1_000 && kept < n, "{kept} kept");
    for (i, record) in output.iter().enumerate() {
        assert_eq!(record.record_id, format!("r{i}"), "in order, every id once");
        if i < kept {
            assert!(record.data.starts_with(format!(r#"{{"i":{i},"#).as_bytes()));
        } else {
            assert_eq!(record.result, TransformResult::ProcessingFailed, "record {i}");
            assert_eq!(&*record.data, &originals[i][..], "record {i} keeps its original data");
        }
    }
    assert_eq!(
        (
            counts.records_in,
            counts.ok,
            counts.processing_failed,
            counts.over_limit
        ),
        (n as u64, kept as u64, (n - kept) as u64, (n - kept) as u64)
    );
    let line = counts.counters().emf_line(
        &weir_lambda::config::MetricsConfig {
            namespace: "weir".into(),
            function_name: "transform".into(),
        },
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(doc["ProcessingFailedOverLimit"], (n - kept) as u64, "{line}");
}

#[test]
fn fitting_keeps_dropped_and_failed_results_and_turns_only_ok_records() {
    let inputs: Vec<InputRecord<'static>> = (0..6).map(|i| record(format!("r{i}"), vec![b'i'; 30])).collect();
    let results = [
        TransformResult::Ok,
        TransformResult::Dropped,
        TransformResult::Ok,
        TransformResult::ProcessingFailed,
        TransformResult::Ok,
        TransformResult::Dropped,
    ];
    let output = || -> Vec<OutputRecord<'_>> {
        inputs
            .iter()
            .zip(results)
            .map(|(input, result)| match result {
                TransformResult::Ok => OutputRecord::ok(Cow::Borrowed(&*input.record_id), vec![b'o'; 300]),
                TransformResult::Dropped => OutputRecord::dropped(Cow::Borrowed(&*input.record_id)),
                TransformResult::ProcessingFailed => OutputRecord::failed(
                    input,
                    weir_core::transform::ProcessingError::new("Transform.InvalidJson", "bad"),
                ),
            })
            .collect()
    };
    let full = envelope::response_size(&output());
    // Everything fits: nothing changes.
    let (same, turned) = fit_within(&inputs, output(), full);
    assert_eq!((same, turned), (output(), 0));
    // One Ok record too many: the last Ok one is turned, with its original data.
    let (fitted, turned) = fit_within(&inputs, output(), full - 1);
    assert_eq!(turned, 1);
    let got: Vec<TransformResult> = fitted.iter().map(|r| r.result).collect();
    assert_eq!(
        got,
        [
            TransformResult::Ok,
            TransformResult::Dropped,
            TransformResult::Ok,
            TransformResult::ProcessingFailed,
            TransformResult::ProcessingFailed,
            TransformResult::Dropped,
        ]
    );
    assert_eq!(&*fitted[4].data, &inputs[4].data[..]);
    assert!(envelope::response_size(&fitted) < full);
    // Room for nothing Ok: every Ok record turned, Dropped and failed ones as they were.
    let (fitted, turned) = fit_within(&inputs, output(), 0);
    assert_eq!(turned, 3);
    assert_eq!(fitted[1].result, TransformResult::Dropped);
    assert_eq!(fitted[3].data, output()[3].data);
    // The decoded data of the turned records is base64 of the original in the response.
    let response = envelope::encode_response(&fitted);
    let json: serde_json::Value = serde_json::from_slice(&response).expect("JSON");
    assert_eq!(json["records"][0]["data"], STANDARD.encode(&inputs[0].data[..]));
}

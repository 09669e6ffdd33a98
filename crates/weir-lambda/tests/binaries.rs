//! The real `ingest` and `transform` binaries, run under a local Lambda runtime API
//! (tests/support/runtime_api.rs): they poll for events, answer through `lambda_runtime`, report bad
//! events as invocation errors, refuse a bad configuration at start, and write their EMF lines to stdout.

mod support;

use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::runtime_api::{Outcome, RuntimeApi, function_env};
use support::{KinesisServer, fixture, fixture_json};
use weir_core::transform::TransformResult;
use weir_core::transform::envelope;

fn spawn(binary: &str, api: &RuntimeApi, name: &str, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .envs(function_env(api, name))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap_or_else(|e| panic!("starting {binary}: {e}"))
}

/// Stops the function (by its PID) and returns what it wrote to stdout and stderr.
fn stop(mut child: Child) -> (String, String) {
    let _ = child.kill();
    let _ = child.wait();
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    (out, err)
}

/// The EMF lines among `stdout`'s lines.
fn emf_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| line.contains("\"_aws\""))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn the_transform_binary_answers_firehose_through_the_runtime_api_and_emits_emf() {
    let mut api = RuntimeApi::start();
    let child = spawn(
        env!("CARGO_BIN_EXE_transform"),
        &api,
        "weir-transform-test",
        &[
            ("WEIR_TRANSFORM", r#"{"kind":"newline"}"#.to_owned()),
            ("WEIR_METRICS_NAMESPACE", "weir-test".to_owned()),
        ],
    );
    let response = api
        .invoke(fixture("firehose-kinesis-source.json").into_bytes())
        .response();
    let output = envelope::decode_response(&response).expect("a Firehose response");
    assert_eq!(output.len(), 3);
    assert!(
        output
            .iter()
            .all(|r| r.result == TransformResult::Ok && r.data.ends_with(b"}\n"))
    );
    // A broken event fails the invocation (Firehose retries it), and the function keeps serving.
    assert!(matches!(api.invoke(br#"{"records":"x"}"#.to_vec()), Outcome::Error(_)));
    let again = api
        .invoke(fixture("firehose-kinesis-source.json").into_bytes())
        .response();
    assert_eq!(again, response, "no state kept between invocations");
    let (stdout, _) = stop(child);

    let lines = emf_lines(&stdout);
    assert_eq!(lines.len(), 2, "one line per answered invocation: {stdout}");
    let doc = &lines[0];
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "weir-test");
    assert_eq!(directive["Dimensions"], serde_json::json!([["FunctionName"]]));
    let names: Vec<&str> = directive["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "RecordsIn",
            "Ok",
            "Dropped",
            "ProcessingFailed",
            "ProcessingFailedOverLimit"
        ]
    );
    assert!(doc["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000));
    assert_eq!(doc["FunctionName"], "weir-transform-test");
    assert_eq!((doc["RecordsIn"].as_u64(), doc["Ok"].as_u64()), (Some(3), Some(3)));
    // The logs are JSON lines too.
    assert!(
        stdout
            .lines()
            .filter(|l| !l.contains("\"_aws\""))
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{stdout}"
    );
}

#[test]
fn the_transform_binary_refuses_a_bad_spec_at_start_naming_the_variable() {
    let api = RuntimeApi::start();
    let mut child = spawn(
        env!("CARGO_BIN_EXE_transform"),
        &api,
        "weir-transform-test",
        &[("WEIR_TRANSFORM", r#"{"kind":"xml"}"#.to_owned())],
    );
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().expect("try_wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let (stdout, stderr) = stop(child);
    let status = status.unwrap_or_else(|| panic!("still running with a bad spec: {stdout} {stderr}"));
    assert!(!status.success());
    assert!(
        format!("{stdout}{stderr}").contains("WEIR_TRANSFORM"),
        "{stdout} {stderr}"
    );
}

#[tokio::test]
async fn the_ingest_binary_puts_into_kinesis_with_the_standard_aws_configuration_chain() {
    let Some(kinesis) = KinesisServer::start() else { return };
    kinesis.create_stream("events", 2).await;
    let mut api = RuntimeApi::start();
    let dir = std::env::temp_dir();
    let missing = dir.join("weir-no-such-aws-file").display().to_string();
    // Everything from the environment, as on Lambda: endpoint, region, keys; no files, no IMDS.
    let child = spawn(
        env!("CARGO_BIN_EXE_ingest"),
        &api,
        "weir-ingest-test",
        &[
            ("WEIR_STREAM_NAME", "events".to_owned()),
            ("WEIR_PARTITION_KEY", "/user_id".to_owned()),
            ("AWS_ENDPOINT_URL", kinesis.endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "AKIDTEST".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret".to_owned()),
            ("AWS_CONFIG_FILE", missing.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ],
    );
    let answer = |outcome: Outcome| -> Value { serde_json::from_slice(&outcome.response()).expect("JSON") };
    let v2 = answer(api.invoke(fixture("apigw-v2-http-api.json").into_bytes()));
    assert_eq!(v2["statusCode"], 200, "{v2}");
    let v1 = answer(api.invoke(fixture("apigw-v1-rest-proxy.json").into_bytes()));
    assert_eq!(v1["statusCode"], 200, "{v1}");
    let mut bad = fixture_json("apigw-v2-http-api.json");
    bad["pathParameters"]["stream"] = "other".into();
    let refused = answer(api.invoke(bad.to_string().into_bytes()));
    assert_eq!(refused["statusCode"], 404, "{refused}");
    let (stdout, stderr) = stop(child);

    let body: Value = serde_json::from_str(v1["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(body["records"].as_array().map(Vec::len), Some(2), "{body}");
    let stored = kinesis.read_all("events").await;
    let mut keys: Vec<&str> = stored.iter().map(|r| r.1.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["42", "7", "u1", "u2"], "{stderr}");
    let lines = emf_lines(&stdout);
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        (lines[0]["RecordsPut"].as_u64(), lines[2]["Status"].as_str()),
        (Some(2), Some("404"))
    );
}

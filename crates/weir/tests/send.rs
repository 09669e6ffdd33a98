//! `weir send` end to end: a real `weir send` process against a real `weir up` (or, for retries and
//! pacing, a scripted local server), checked by its JSON summary, its exit status and what the bucket
//! holds after `weir up` stops.

mod common;

use common::{WEIR, Weir, fast_config, objects};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Sent {
    output: Output,
    summary: Value,
}

impl Sent {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn assert_all_acknowledged(&self, records: u64) {
        assert!(
            self.output.status.success(),
            "exit {:?}: {}",
            self.output.status,
            self.stderr()
        );
        assert_eq!(self.summary["records_acknowledged"], records, "{}", self.summary);
        assert_eq!(self.summary["records_sent"], records, "{}", self.summary);
        assert_eq!(self.summary["records_failed"], 0, "{}", self.summary);
    }
}

/// Runs `weir send --output json --quiet <args>` against `addr`, with `stdin` piped in if given.
fn send(addr: SocketAddr, args: &[&str], stdin: Option<&[u8]>) -> Sent {
    let mut child = Command::new(WEIR)
        .args([
            "send",
            "--output",
            "json",
            "--quiet",
            "--url",
            &format!("http://{addr}"),
        ])
        .args(args)
        .env_remove("WEIR_TOKEN")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir send");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write stdin");
    }
    let output = child.wait_with_output().expect("weir send output");
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Sent { output, summary }
}

/// Stops `weir` (SIGTERM: it delivers what is buffered) and returns every delivered record.
fn delivered(weir: Weir) -> Vec<Value> {
    let bucket = weir.data_dir.join("bucket");
    let (status, output) = weir.stop();
    assert!(status.success(), "weir up: {status:?}\n{output}");
    objects(&bucket)
        .values()
        .flatten()
        .map(|line| serde_json::from_str(line).expect("a delivered record is JSON"))
        .collect()
}

/// Asserts `records` hold exactly the ids `expected`, each once.
fn assert_ids(records: &[Value], expected: impl IntoIterator<Item = u64>) {
    let ids: Vec<u64> = records.iter().map(|r| r["id"].as_u64().expect("numeric id")).collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), distinct.len(), "every id exactly once");
    assert_eq!(distinct, expected.into_iter().collect::<BTreeSet<u64>>());
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

#[test]
fn template_records_are_all_acknowledged_and_delivered_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(""));
    const N: u64 = 2_000;
    let template = r#"{"id":{{seq}},"uid":"{{uuid}}","n":{{int 0 100}},"ts":"{{now}}","kind":"{{choice a b c}}","pad":"{{string 16}}","ok":{{bool}}}"#;
    let sent = send(
        weir.addr,
        &[
            "--template",
            template,
            "--count",
            &N.to_string(),
            "--batch-size",
            "50",
            "--connections",
            "4",
        ],
        None,
    );
    sent.assert_all_acknowledged(N);
    assert_eq!(sent.summary["requests"], N / 50);
    assert_eq!(sent.summary["status_codes"]["200"], N / 50);

    let records = delivered(weir);
    assert_ids(&records, 0..N);
    let uids: HashSet<&str> = records.iter().map(|r| r["uid"].as_str().expect("uid")).collect();
    assert_eq!(uids.len() as u64, N, "every generated uuid is distinct");
    for r in &records {
        assert!(r["n"].as_u64().is_some_and(|n| n <= 100), "{r}");
        assert!(["a", "b", "c"].contains(&r["kind"].as_str().expect("kind")), "{r}");
        assert_eq!(r["pad"].as_str().expect("pad").len(), 16);
    }
}

#[test]
fn ndjson_and_json_array_files_are_delivered_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(&dir.path().join("weir"), &fast_config(""));
    let make = |ids: std::ops::Range<u64>| -> Vec<Value> {
        ids.map(|i| serde_json::json!({"id": i, "text": format!("record {i} ✓"), "nested": {"a": [i, null]}}))
            .collect()
    };
    let ndjson_path = dir.path().join("records.ndjson");
    std::fs::write(&ndjson_path, ndjson(&make(0..300))).expect("write ndjson");
    // Pretty-printed, with an extension that says nothing: detected from the content.
    let array_path = dir.path().join("records.txt");
    std::fs::write(
        &array_path,
        serde_json::to_string_pretty(&make(300..700)).expect("json"),
    )
    .expect("write json");

    let path = ndjson_path.to_str().expect("UTF-8 path");
    send(weir.addr, &[path, "--batch-size", "64", "--connections", "4"], None).assert_all_acknowledged(300);
    let path = array_path.to_str().expect("UTF-8 path");
    let sent = send(
        weir.addr,
        &[path, "--batch-size", "50", "--batch-format", "array", "--gzip"],
        None,
    );
    sent.assert_all_acknowledged(400);
    assert_eq!(sent.summary["requests"], 8);

    let records = delivered(weir);
    assert_ids(&records, 0..700);
    let original: Vec<Value> = make(0..700);
    for r in &records {
        let id = r["id"].as_u64().expect("id") as usize;
        assert_eq!(r, &original[id], "records arrive unchanged");
    }
}

#[test]
fn stdin_records_are_sent_and_repeat_sends_them_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(""));
    let records: Vec<Value> = (0..120).map(|i| serde_json::json!({"id": i})).collect();
    let body = ndjson(&records);
    send(weir.addr, &["-", "--batch-size", "10"], Some(body.as_bytes())).assert_all_acknowledged(120);
    send(weir.addr, &["-", "--repeat", "2"], Some(body.as_bytes())).assert_all_acknowledged(240);

    let records = delivered(weir);
    assert_eq!(records.len(), 360);
    for id in 0..120u64 {
        assert_eq!(records.iter().filter(|r| r["id"] == id).count(), 3, "id {id}");
    }
}

#[test]
fn a_rejected_record_fails_the_run_and_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(""));
    let body = br#"[{"id":0},{"id":1},42,{"id":3}]"#;

    let sent = send(weir.addr, &["-"], Some(body));
    assert_eq!(sent.output.status.code(), Some(1), "{}", sent.stderr());
    assert_eq!(sent.summary["records_acknowledged"], 3);
    assert_eq!(sent.summary["records_failed"], 1);
    assert_eq!(sent.summary["status_codes"]["400"], 1);
    assert_eq!(sent.summary["errors"]["400 not_an_object"], 1);
    let sample = sent.summary["error_samples"][0].as_str().expect("a sample");
    assert!(
        sample.starts_with("400 ") && sample.contains("not_an_object"),
        "{sample}"
    );
    assert!(
        sent.stderr().contains("1 of 4 records sent were not acknowledged"),
        "{}",
        sent.stderr()
    );

    // In one batch the whole request is refused, and nothing of it is stored.
    let sent = send(weir.addr, &["-", "--batch-size", "4"], Some(body));
    assert_eq!(sent.output.status.code(), Some(1));
    assert_eq!(sent.summary["records_failed"], 4);
    assert_eq!(sent.summary["retries"], 0, "a 400 is not retried");

    assert_ids(&delivered(weir), [0, 1, 3]);
}

#[test]
fn the_token_comes_from_weir_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(r#"auth_tokens = ["secret-token-123"]"#));
    let template = r#"{"id":{{seq}}}"#;
    let refused = send(weir.addr, &["--template", template, "--count", "5"], None);
    assert_eq!(refused.output.status.code(), Some(1));
    assert_eq!(refused.summary["errors"]["401 unauthorized"], 5);

    let output = Command::new(WEIR)
        .args([
            "send",
            "--output",
            "json",
            "--quiet",
            "--url",
            &format!("http://{}", weir.addr),
        ])
        .args(["--template", template, "--count", "5"])
        .env("WEIR_TOKEN", "secret-token-123")
        .output()
        .expect("weir send");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_ids(&delivered(weir), 0..5);
}

#[test]
fn bad_arguments_and_templates_are_explained() {
    let run = |args: &[&str]| {
        let output = Command::new(WEIR).arg("send").args(args).output().expect("weir send");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--template", r#"{"id":{{seq}}}"#]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--count") && err.contains("--duration"), "{err}");

    let (code, err) = run(&["--template", r#"{"id":"{{uid}}"}"#, "--count", "1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("{{uid}}") && err.contains("unknown generator"), "{err}");

    let (code, err) = run(&["--template", r#"{"id":{{uuid}}}"#, "--count", "1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not render to JSON"), "{err}");

    let (code, err) = run(&["-", "--batch-size", "501"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["--count", "5"]);
    assert_eq!(code, Some(2), "{err}");
}

/// A scripted HTTP/1.1 server: keep-alive connections, one thread each; the `n`-th request (0-based,
/// over all connections) gets `answer(n)` as (status, extra headers, body).
struct ScriptedServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

type Answer = fn(usize) -> (u16, &'static str, String);

impl ScriptedServer {
    fn start(answer: Answer) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(socket) = socket else { return };
                let counter = counter.clone();
                std::thread::spawn(move || serve(socket, &counter, answer));
            }
        });
        ScriptedServer { addr, requests }
    }
}

fn serve(socket: TcpStream, counter: &AtomicUsize, answer: Answer) {
    let mut writer = socket.try_clone().expect("clone socket");
    let mut reader = BufReader::new(socket);
    loop {
        let mut length = 0;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().expect("Content-Length");
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, headers, body) = answer(counter.fetch_add(1, Ordering::SeqCst));
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

const ONE_ACK: &str = r#"{"failed_record_count":0,"records":[{"shard_id":"shardId-000000000000","sequence_number":"49000000000000000000000000000000"}]}"#;

#[test]
fn a_503_is_retried_after_its_retry_after() {
    let server = ScriptedServer::start(|n| match n {
        0 => (
            503,
            "Retry-After: 1\r\n",
            r#"{"error":{"code":"shutting_down","message":"stopping"}}"#.into(),
        ),
        _ => (200, "", ONE_ACK.into()),
    });
    let started = Instant::now();
    let sent = send(server.addr, &["--template", r#"{"id":{{seq}}}"#, "--count", "1"], None);
    let elapsed = started.elapsed();
    sent.assert_all_acknowledged(1);
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried after {elapsed:?}, before Retry-After"
    );
    assert_eq!(sent.summary["retries"], 1);
    assert_eq!(sent.summary["status_codes"]["503"], 1);
    assert_eq!(sent.summary["status_codes"]["200"], 1);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn retries_are_capped_by_max_retries() {
    let server = ScriptedServer::start(|_| {
        (
            429,
            "Retry-After: 0\r\n",
            r#"{"error":{"code":"overloaded","message":"queue full"}}"#.into(),
        )
    });
    let sent = send(
        server.addr,
        &["--template", r#"{"id":{{seq}}}"#, "--count", "1", "--max-retries", "2"],
        None,
    );
    assert_eq!(sent.output.status.code(), Some(1));
    assert_eq!(sent.summary["retries"], 2);
    assert_eq!(sent.summary["errors"]["429 overloaded (retries exhausted)"], 1);
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}

#[test]
fn rate_paces_records() {
    let server = ScriptedServer::start(|_| (200, "", ONE_ACK.into()));
    let started = Instant::now();
    let sent = send(
        server.addr,
        &["--template", r#"{"id":{{seq}}}"#, "--count", "200", "--rate", "400"],
        None,
    );
    let elapsed = started.elapsed();
    sent.assert_all_acknowledged(200);
    // The 200th record is due 199/400 s after the start; a lower bound only.
    assert!(
        elapsed >= Duration::from_millis(450),
        "200 records at 400/s took {elapsed:?}"
    );
    assert!(
        sent.summary["duration_s"].as_f64().expect("duration") >= 0.45,
        "{}",
        sent.summary
    );
}

#[test]
fn an_unreachable_server_is_reported_after_the_retries() {
    // A port that was free a moment ago: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let sent = send(
        addr,
        &["--template", r#"{"id":{{seq}}}"#, "--count", "10", "--max-retries", "1"],
        None,
    );
    assert_eq!(sent.output.status.code(), Some(1));
    assert!(
        sent.summary["connection_errors"].as_u64().expect("count") >= 2,
        "{}",
        sent.summary
    );
    let why = sent.summary["stopped_early"].as_str().expect("stopped early");
    assert!(why.contains("giving up") && why.contains("2 attempts"), "{why}");
}

//! The dashboard in a real browser: `weir up` with records flowing, and Debian's headless Chromium driven
//! by `tests/browser/dashboard.mjs` (playwright-core), which reports what the page showed as JSON.
//!
//! Needs Node.js, Chromium and `npm ci --prefix tests/browser`; `scripts/test.sh` installs them. When one
//! is missing the tests fail and say how to install it: a skipped browser test would look like a pass.

mod common;

use common::{Weir, fast_config, http, objects};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const INSTALL: &str = "install them with ./scripts/test.sh (it runs every test), or by hand: \
                       `apt-get install -y chromium nodejs npm && npm ci --prefix tests/browser`";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The browser script, after checking that everything it needs is installed.
fn browser_script() -> PathBuf {
    let root = repo_root();
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the dashboard test needs Node.js (`node` on PATH); {INSTALL}"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core/package.json")
            .exists(),
        "the dashboard test needs playwright-core in tests/browser/node_modules; {INSTALL}"
    );
    let chromium = std::env::var_os("WEIR_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.exists(),
        "the dashboard test needs Chromium at {} (or set WEIR_CHROMIUM); {INSTALL}",
        chromium.display()
    );
    root.join("tests/browser/dashboard.mjs")
}

/// Where screenshots go: under target/, kept after the test for a person to look at.
fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard").join(name)
}

/// Runs the browser script against `url` and returns its report (see dashboard.mjs).
fn run_browser(script: &Path, url: &str, screenshot: &Path, extra: &[&str]) -> Value {
    let _ = std::fs::remove_file(screenshot);
    let output = Command::new("node")
        .arg(script)
        .arg(url)
        .arg(screenshot)
        .args(extra)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "{} printed no report ({}):\n{stdout}\n{stderr}",
                script.display(),
                output.status
            )
        });
    assert!(
        output.status.success() && report["error"].is_null(),
        "the browser run failed ({}): {}\nreport: {report:#}\nstderr: {stderr}",
        output.status,
        report["error"]
    );
    report
}

/// Runs `weir send` (20-record batches from a template, about 1,000 records/s) until `stop`, then stops
/// it as Ctrl-C would and returns how many records it says were acknowledged.
fn send_until(weir: &Weir, stop: Arc<AtomicBool>, token: Option<&str>) -> JoinHandle<u64> {
    let url = format!("http://{}", weir.addr);
    let token = token.map(str::to_owned);
    std::thread::spawn(move || {
        let mut command = Command::new(common::WEIR);
        command
            .args(["send", "--url", &url, "--quiet", "--output", "json"])
            .arg("--template")
            .arg(r#"{"user_id":{{int 0 96}},"event":"dashboard-test","n":{{seq}}}"#)
            .args("--duration 300s --rate 1000 --batch-size 20 --connections 2".split(' '))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(token) = &token {
            command.env("WEIR_TOKEN", token);
        }
        let child = command.spawn().expect("start weir send");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGINT, by the PID of the process this test started: weir send stops sending, lets the
        // requests in flight finish, and prints its summary.
        let interrupted = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(interrupted.success(), "could not interrupt weir send");
        let output = child.wait_with_output().expect("weir send's output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "weir send's summary is not JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert_eq!(summary["records_acknowledged"], summary["records_sent"], "{summary}");
        summary["records_acknowledged"].as_u64().expect("a count")
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect()
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a count: {value}"))
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is not a full-page PNG",
        path.display()
    );
    println!("dashboard screenshot: {}", path.display());
}

#[test]
fn dashboard_shows_the_pipeline_live_in_a_browser() {
    let script = browser_script();
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(""));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = send_until(&weir, stop.clone(), None);

    let screenshot = screenshot_path("dashboard.png");
    let report = run_browser(&script, &format!("http://{}/", weir.addr), &screenshot, &[]);
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender thread");
    assert!(sent > 0);

    for problems in ["consoleErrors", "pageErrors", "failedRequests", "badResponses"] {
        assert!(
            strings(&report[problems]).is_empty(),
            "{problems}: {:#}",
            report[problems]
        );
    }

    // The ingest rate moved with every poll while records flowed, and the chart grew a point per poll.
    let samples = report["ingestSamples"].as_array().expect("samples");
    let last3 = &samples[samples.len() - 3..];
    for pair in last3.windows(2) {
        assert!(number(&pair[1]["poll"]) > number(&pair[0]["poll"]), "{samples:#?}");
        assert!(number(&pair[1]["points"]) > number(&pair[0]["points"]), "{samples:#?}");
        assert!(number(&pair[1]["total"]) > number(&pair[0]["total"]), "{samples:#?}");
    }
    for sample in last3 {
        assert!(sample["value"].as_f64().is_some_and(|v| v > 0.0), "{samples:#?}");
        assert_ne!(sample["text"], "—", "{samples:#?}");
    }

    // The object the page lists is in the bucket, and its preview is the object's first lines.
    let object = &report["object"];
    let key = object["key"].as_str().expect("object key");
    let preview = strings(&object["preview"]);
    let bucket = objects(&dir.path().join("bucket"));
    let lines = bucket
        .get(key)
        .unwrap_or_else(|| panic!("{key} is not in the bucket: {:?}", bucket.keys()));
    assert!(!preview.is_empty() && preview.len() <= lines.len(), "{object:#}");
    assert_eq!(preview, lines[..preview.len()], "preview of {key}");
    assert!(preview[0].contains("dashboard-test"), "{preview:?}");
    assert_eq!(number(&object["records"]), lines.len() as u64, "{object:#}");

    // Reconciliation: every record read is delivered, dropped, failed or still in flight.
    let r = &report["reconciliation"];
    assert_eq!(r["delivery"], "events");
    assert_eq!(r["holds"], true, "{r:#}");
    assert!(number(&r["delivered"]) > 0, "{r:#}");
    assert_eq!(
        number(&r["in"]),
        number(&r["delivered"]) + number(&r["dropped"]) + number(&r["failed"]) + number(&r["buffered"]),
        "{r:#}"
    );
    assert!(r["text"].as_str().is_some_and(|t| t.contains("holds")), "{r:#}");

    let stages = &report["stages"];
    for stage in ["api", "stream", "delivery", "bucket", "warehouse"] {
        assert_eq!(stages[stage], "ok", "{stage}: {stages:#}");
    }

    // With the status API cut off the page says so, and recovers by itself.
    let disconnected = report["disconnectedText"].as_str().expect("disconnected text");
    assert!(
        disconnected.contains("disconnected") && disconnected.contains("retrying"),
        "{disconnected}"
    );
    assert_eq!(report["reconnected"], true);

    assert_png(&screenshot);
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
}

#[test]
fn dashboard_asks_for_the_bearer_token_once() {
    const TOKEN: &str = "dashboard-test-token-0123";
    let script = browser_script();
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &fast_config(&format!("auth_tokens = [\"{TOKEN}\"]")));
    // The page itself needs no token; its data does.
    let page = http(weir.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert_eq!(http(weir.addr, "GET", "/api/status", &[], b"").status, 401);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = send_until(&weir, stop.clone(), Some(TOKEN));

    let screenshot = screenshot_path("dashboard-auth.png");
    let report = run_browser(
        &script,
        &format!("http://{}/", weir.addr),
        &screenshot,
        &["--token", TOKEN],
    );
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender thread");

    assert_eq!(report["tokenDialogShown"], true, "{report:#}");
    assert_eq!(
        report["tokenAskedAfterReload"], false,
        "asked again after a reload: {report:#}"
    );
    assert_eq!(report["storedToken"], TOKEN);
    let sent = strings(&report["apiAuthorization"]);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|a| *a == format!("Bearer {TOKEN}")), "{sent:?}");
    // The only errors are the 401s that made the page ask (Chromium logs each as a console error).
    for bad in strings(&report["badResponses"]) {
        assert!(bad.starts_with("401 ") && bad.contains("/api/"), "{bad}");
    }
    for error in strings(&report["consoleErrors"]) {
        assert!(error.contains("401"), "console error: {error}");
    }
    assert!(strings(&report["pageErrors"]).is_empty(), "{:#}", report["pageErrors"]);
    assert!(
        strings(&report["failedRequests"]).is_empty(),
        "{:#}",
        report["failedRequests"]
    );
    assert_eq!(report["reconciliation"]["holds"], true, "{report:#}");

    assert_png(&screenshot);
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
}

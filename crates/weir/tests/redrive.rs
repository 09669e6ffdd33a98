//! `weir redrive`: failed records go through the fixed transform once, exactly once, with a report.

mod common;

use common::{WEIR, Weir};
use std::path::Path;
use std::process::Command;

fn config(user_id_type: &str) -> String {
    format!(
        r#"
[[streams]]
name = "events"
shards = 1

[[deliveries]]
name = "csv"
stream = "events"
buffer_interval = "100ms"
transform = {{ kind = "csv", columns = [
  {{ name = "user_id", pointer = "/user_id", type = "{user_id_type}" }},
  {{ name = "event", pointer = "/event", type = "string" }} ] }}
format = "csv"
"#
    )
}

fn redrive(dir: &Path, config: &str, extra: &[&str]) -> serde_json::Value {
    let path = dir.join("redrive.toml");
    std::fs::write(&path, config).expect("write config");
    let output = Command::new(WEIR)
        .args(["redrive", "csv", "--output", "json", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run weir redrive");
    assert!(
        output.status.success(),
        "weir redrive failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn failed_records_are_redriven_once_through_the_fixed_transform() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &config("integer"));
    let body = "{\"user_id\":1,\"event\":\"signup\"}\n{\"user_id\":\"four\",\"event\":\"login\"}\n";
    let response = weir.post("/v1/streams/events/records", "application/x-ndjson", body.as_bytes());
    assert_eq!(response.status, 200);
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
    let bucket = dir.path().join("bucket");
    let before = files(&bucket);
    let errors: Vec<&String> = before.iter().filter(|f| f.contains("processing-failed")).collect();
    assert_eq!(errors.len(), 1, "{before:?}");

    // A dry run reports and writes nothing.
    let report = redrive(dir.path(), &config("string"), &["--dry-run"]);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["records"][0]["outcome"], "delivered");
    assert_eq!(files(&bucket), before);

    // The same transform fails the record again: a new error object, the original marked done.
    let report = redrive(dir.path(), &config("integer"), &[]);
    let record = &report["records"][0];
    assert_eq!(record["outcome"], "failed", "{report}");
    assert_eq!(record["error_code"], "Transform.TypeMismatch");
    assert!(
        record["source_key"]
            .as_str()
            .expect("key")
            .contains("processing-failed/")
    );

    // The fixed transform (user_id as a string) delivers it; only the new error object is redriven.
    let report = redrive(dir.path(), &config("string"), &[]);
    assert_eq!(report["already_redriven"], 1, "{report}");
    let records = report["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{report}");
    assert_eq!(records[0]["outcome"], "delivered");
    let key = records[0]["key"].as_str().expect("key");
    let object = std::fs::read_to_string(bucket.join(key)).expect("the redriven object");
    assert_eq!(object, "user_id,event\nfour,login\n");

    // Nothing is left to redrive, and a rerun changes nothing.
    let after = files(&bucket);
    let report = redrive(dir.path(), &config("string"), &[]);
    assert_eq!(report["records"].as_array().map(Vec::len), Some(0), "{report}");
    assert_eq!(report["already_redriven"], 2);
    assert_eq!(files(&bucket), after);
}

//! `weir snowflake`: the generated SQL loads objects that `weir up` really delivered, on fakesnow (a
//! Snowflake emulator over DuckDB), and the rows are the records posted, value by value.
//!
//! The loading runs in tests/snowflake/load.py (in-process fakesnow, and sqlglot's Snowflake dialect for
//! the statements fakesnow cannot run); that file says what it substitutes and why.

mod common;

use common::{WEIR, Weir};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
[[streams]]
name = "events"
shards = 2

[[deliveries]]
name = "rows"
stream = "events"
buffer_interval = "100ms"
transform = { kind = "csv", columns = [
  { name = "id", type = "integer" },
  { name = "name", type = "string" },
  { name = "note", type = "string", required = false },
  { name = "amount", type = "float", required = false },
  { name = "ok", type = "boolean", required = false },
  { name = "big", type = "integer", required = false },
  { name = "at", type = "timestamp" },
] }
format = "csv"
compression = "gzip"
prefix = "csv/"
error_output_prefix = "csv-errors/!{firehose:error-output-type}/"

[[deliveries]]
name = "docs"
stream = "events"
buffer_interval = "100ms"
transform = "newline"
format = "ndjson"
compression = "zstd"
prefix = "json/"
error_output_prefix = "json-errors/!{firehose:error-output-type}/"
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test venv's Python with fakesnow, the Snowflake connector and sqlglot; panics with how to get them.
fn python() -> PathBuf {
    let root = workspace();
    let python = root.join(".venv-tests/bin/python");
    let hint = "run ./scripts/test.sh once (it creates .venv-tests from requirements-test.txt), or: \
                python3 -m venv .venv-tests && .venv-tests/bin/pip install -r requirements-test.txt";
    assert!(python.exists(), "{} is missing: {hint}", python.display());
    let check = Command::new(&python)
        // fakesnow makes a temporary directory when imported: only look for it here.
        .args([
            "-c",
            "import importlib.util, snowflake.connector, sqlglot; assert importlib.util.find_spec('fakesnow')",
        ])
        .output()
        .expect("run the venv's python");
    assert!(
        check.status.success(),
        "fakesnow, snowflake-connector-python or sqlglot is missing from .venv-tests ({}): {hint}",
        String::from_utf8_lossy(&check.stderr).trim()
    );
    python
}

/// Records with the values CSV and JSON get wrong: delimiters, quotes, line breaks, unicode, empty
/// strings next to missing and null values, integers past 2^53, floats, booleans, timestamps with
/// offsets and as epoch milliseconds.
fn records() -> Vec<Value> {
    vec![
        json!({"id": 1, "name": "comma, inside", "note": "quote \" inside", "amount": 1.5, "ok": true,
               "big": 9223372036854775807_i64, "at": "2024-02-21T06:12:33.5+01:00",
               "nested": {"a": [1, 2, {"b": null}]}}),
        json!({"id": 2, "name": "", "amount": null, "ok": false, "at": 1708495953123_i64}),
        json!({"id": 3, "name": "line\nbreak\r\nand crlf", "note": "", "amount": -0.25, "big": -9007199254740993_i64,
               "at": "2024-02-21T06:12:33Z"}),
        json!({"id": 4, "name": "ünïcødé 日本語 🎉", "note": "  spaced  ", "amount": 1e-7, "ok": null,
               "at": "1999-12-31T23:59:59.999999-08:00"}),
        json!({"id": 5, "name": "back\\slash", "note": "NULL", "amount": 0, "ok": true,
               "at": "2024-02-29T12:00:00+05:45"}),
        json!({"id": 6, "name": "\\N", "note": ",", "amount": 12345678901234567_i64, "big": 0,
               "at": "0001-01-01T00:00:00Z", "extra": "only in the JSON"}),
        json!({"id": 7, "name": "\"", "note": "\"\"", "ok": false, "at": "9999-12-31T23:59:59.999+00:00"}),
        json!({"id": 8, "name": "tab\there", "note": "trailing space ", "amount": 3.0, "at": 0}),
    ]
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn snowflake_sql(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(WEIR)
        .arg("snowflake")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run weir snowflake")
}

fn script(config: &Path, delivery: &str) -> Value {
    let output = snowflake_sql(
        config,
        &[
            "--delivery",
            delivery,
            "--bucket",
            "weir-test-bucket",
            "--prefix",
            "landing",
            "--role-arn",
            "arn:aws:iam::123456789012:role/weir-snowflake",
            "--database",
            "weir_test",
            "--schema",
            "raw",
            "--output",
            "json",
        ],
    );
    assert!(
        output.status.success(),
        "weir snowflake --delivery {delivery} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("weir snowflake --output json prints JSON")
}

#[test]
fn delivered_objects_load_into_the_emulator_as_posted() {
    let python = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), CONFIG);
    let records = records();
    let body = serde_json::to_vec(&records).expect("records");
    let response = weir.post("/v1/streams/events/records", "application/json", &body);
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.json()["failed_record_count"], 0);
    let (status, output) = weir.stop();
    assert!(status.success(), "weir up did not stop cleanly: {output}");

    let bucket = dir.path().join("bucket");
    for errors in ["csv-errors", "json-errors"] {
        assert!(
            files(&bucket.join(errors)).is_empty(),
            "{errors}: records failed: {output}"
        );
    }
    let csv_files = files(&bucket.join("csv"));
    let json_files = files(&bucket.join("json"));
    assert!(
        !csv_files.is_empty() && !json_files.is_empty(),
        "nothing delivered: {output}"
    );

    let config = dir.path().join("weir.toml");
    let columns = &toml::from_str::<toml::Value>(CONFIG).expect("config")["deliveries"][0]["transform"]["columns"];
    let case = json!({
        "records": records,
        "csv": {"script": script(&config, "rows"), "files": csv_files, "columns": columns},
        "ndjson": {"script": script(&config, "docs"), "files": json_files},
    });
    let case_path = dir.path().join("case.json");
    std::fs::write(&case_path, serde_json::to_vec_pretty(&case).expect("case")).expect("write case");
    let load = Command::new(&python)
        .arg("-W")
        .arg("ignore")
        .arg(workspace().join("tests/snowflake/load.py"))
        .arg(&case_path)
        // fakesnow keeps internal stages in temporary directories it does not remove: keep them in
        // the test's own, which is removed.
        .env("TMPDIR", dir.path())
        .output()
        .expect("run tests/snowflake/load.py");
    let stdout = String::from_utf8_lossy(&load.stdout);
    let stderr = String::from_utf8_lossy(&load.stderr);
    assert!(load.status.success(), "load.py failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

#[test]
fn unloadable_deliveries_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "[[deliveries]]\nname = \"events\"\nstream = \"events\"\ncompression = \"snappy\"\nprefix = \"events/\"\n",
    )
    .expect("write config");
    let output = snowflake_sql(&config, &["--bucket", "weir-test-bucket"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Snowflake cannot load Snappy-framed NDJSON"),
        "{stderr}"
    );

    // A local delivery needs the bucket its objects are copied to.
    let output = snowflake_sql(&config, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--bucket"), "{stderr}");
}

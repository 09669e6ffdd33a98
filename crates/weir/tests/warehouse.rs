//! The Snowpipe stage end to end: records POSTed to `weir up` are rows in DuckDB, counted and typed
//! as posted, for NDJSON, CSV and Parquet; exactly once when the loader is killed between reading an
//! object, inserting its rows and committing; `weir query` through the running server and from the
//! file, and never outside the warehouse.

mod common;

use common::{WEIR, Weir};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CSV_COLUMNS: &str = r#"[
  { name = "id", type = "integer" },
  { name = "name", type = "string", required = false },
  { name = "amount", type = "float", required = false },
  { name = "ok", type = "boolean", required = false },
  { name = "at", type = "timestamp", required = false },
  { name = "extra", type = "json", required = false },
]"#;

fn config(delivery_extra: &str) -> String {
    format!(
        "[warehouse]\npoll_interval = \"20ms\"\nthreads = 1\n\n[[streams]]\nname = \"events\"\nshards = 2\n\n\
         [[deliveries]]\nname = \"events\"\nstream = \"events\"\nbuffer_interval = \"100ms\"\n{delivery_extra}\n"
    )
}

/// `weir query` as a user runs it; `url` for a running server. Returns stdout, or panics with stderr.
fn weir_query(data_dir: &Path, url: Option<&str>, sql: &str) -> Value {
    let out = query_command(data_dir, url, sql);
    assert!(
        out.status.success(),
        "weir query {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("weir query --format json prints JSON")
}

fn query_command(data_dir: &Path, url: Option<&str>, sql: &str) -> std::process::Output {
    common::weir_query(data_dir, url, "json", sql)
}

/// `weir status` against `url` (or the files, when nothing listens there).
fn weir_status(data_dir: &Path, url: &str) -> String {
    let out = Command::new(WEIR)
        .args(["status", "--config"])
        .arg(data_dir.join("weir.toml"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--url", url])
        .output()
        .expect("run weir status");
    assert!(
        out.status.success(),
        "weir status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn count(data_dir: &Path, url: Option<&str>, table: &str) -> u64 {
    let rows = weir_query(data_dir, url, &format!("select count(*) as n from {table}"));
    rows[0]["n"].as_u64().expect("count")
}

/// Waits until the table holds `expected` rows (asking the running server).
fn wait_rows(weir: &Weir, table: &str, expected: u64) {
    let url = format!("http://{}", weir.addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(&weir.data_dir, Some(&url), table);
        if n == expected {
            return;
        }
        assert!(n < expected, "{table} has {n} rows, more than the {expected} posted");
        assert!(
            Instant::now() < deadline,
            "{table} has {n} of {expected} rows after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "id": i,
                "name": if i % 7 == 0 { json!(format!("quote \" comma, line\nbreak {i}")) } else { json!(format!("n{i}")) },
                "amount": i as f64 * 0.25,
                "ok": i % 2 == 0,
                "at": format!("2024-05-01T12:{:02}:{:02}.250+00:00", i / 60 % 60, i % 60),
                "extra": {"i": i, "tags": ["a", "b"]},
            })
        })
        .collect()
}

fn post(weir: &Weir, records: &[Value]) {
    for chunk in records.chunks(100) {
        let body: String = chunk.iter().map(|r| format!("{r}\n")).collect();
        let response = weir.post("/v1/streams/events/records", "application/x-ndjson", body.as_bytes());
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    }
}

/// Posts, waits for the rows, and checks count, values and types through the server and from the file.
fn round_trip(delivery_extra: &str, columns_typed: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &config(delivery_extra));
    let posted = records(500);
    post(&weir, &posted);
    wait_rows(&weir, "events", 500);
    let live = weir_status(dir.path(), &format!("http://{}", weir.addr));
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
    let offline = weir_status(dir.path(), "http://127.0.0.1:1");
    for (text, source) in [
        (&live, "from the running weir up"),
        (&offline, "weir up is not running"),
    ] {
        assert!(text.contains(source), "{text}");
        assert!(
            text.contains("records in 500 = loaded 500 + dropped 0 + failed 0   ✓ balanced"),
            "{text}"
        );
        assert!(text.contains("waiting 0"), "{text}");
    }

    // From the file now: the same answers.
    assert_eq!(count(dir.path(), None, "events"), 500);
    let sql = if columns_typed {
        "select id, name, amount, ok, \"at\", extra::varchar as extra from events where id in (7, 8) order by id"
    } else {
        "select (record->>'id')::bigint as id, record->>'name' as name, (record->>'amount')::double as amount, \
         (record->>'ok')::boolean as ok, record->>'at' as at, (record->'extra')::varchar as extra \
         from events where (record->>'id')::bigint in (7, 8) order by id"
    };
    let rows = weir_query(dir.path(), None, sql);
    let expected_at = |i: u64| {
        if columns_typed {
            format!("2024-05-01T12:00:{i:02}.250000Z")
        } else {
            format!("2024-05-01T12:00:{i:02}.250+00:00")
        }
    };
    assert_eq!(
        rows,
        json!([
            {"id": 7, "name": "quote \" comma, line\nbreak 7", "amount": 1.75, "ok": false, "at": expected_at(7),
             "extra": "{\"i\":7,\"tags\":[\"a\",\"b\"]}"},
            {"id": 8, "name": "n8", "amount": 2.0, "ok": true, "at": expected_at(8),
             "extra": "{\"i\":8,\"tags\":[\"a\",\"b\"]}"},
        ])
    );
    let sums = weir_query(
        dir.path(),
        None,
        "select count(distinct _object) > 0 as objects, count(*) as n from events",
    );
    assert_eq!(sums[0]["n"], 500);
    let reconciliation = weir_query(
        dir.path(),
        None,
        "select records_in, rows_loaded, balanced from weir.reconciliation",
    );
    assert_eq!(
        reconciliation,
        json!([{"records_in": 500, "rows_loaded": 500, "balanced": true}])
    );
}

#[test]
fn ndjson_records_become_json_rows() {
    round_trip("compression = \"gzip\"\n", false);
}

#[test]
fn csv_records_become_typed_rows() {
    round_trip(
        &format!(
            "format = \"csv\"\ncompression = \"zstd\"\n[deliveries.transform]\nkind = \"csv\"\ncolumns = {CSV_COLUMNS}\n"
        ),
        true,
    );
}

#[test]
fn parquet_records_become_typed_rows() {
    round_trip(
        &format!("[deliveries.format]\nkind = \"parquet\"\ncolumns = {CSV_COLUMNS}\n"),
        true,
    );
}

/// Kills the loader at each of its steps, again and again; every acknowledged record ends up in the
/// table exactly once.
#[test]
fn killed_between_read_insert_and_commit_every_record_is_loaded_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config("");
    let points = ["staged", "inserted", "committed"];
    let mut acked: Vec<String> = Vec::new();
    let (mut crashes, mut cycle) = (0, 0);
    while crashes < 21 {
        assert!(cycle < 60, "only {crashes} crashes in {cycle} cycles");
        let point = points[cycle % points.len()];
        let nth = 1 + cycle / points.len() % 3;
        let plan = format!("{point}:{nth}");
        let weir = Weir::start_with_env(dir.path(), &config, &[("WEIR_WAREHOUSE_CRASH_AT", &plan)]);
        // Batches until the loader aborts the process (a replay of the last cycle's batch may do it
        // before the first one); a refused or cut request is simply not acknowledged.
        for batch in 0..20 {
            let ids: Vec<String> = (0..200).map(|i| format!("c{cycle}-b{batch}-{i}")).collect();
            let body: String = ids.iter().map(|id| format!("{{\"id\":\"{id}\"}}\n")).collect();
            let headers = [("Content-Type", "application/x-ndjson")];
            match common::try_http(
                weir.addr,
                "POST",
                "/v1/streams/events/records",
                &headers,
                body.as_bytes(),
            ) {
                Ok(r) if r.status == 200 => acked.extend(ids),
                Ok(r) => panic!("status {}: {}", r.status, String::from_utf8_lossy(&r.body)),
                Err(_) => break,
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        let (status, output) = weir.wait_exit(Duration::from_secs(60));
        assert!(
            !status.success(),
            "cycle {cycle}: expected an abort at {plan}: {output}"
        );
        assert!(
            output.contains(&format!("aborting at {point}")),
            "cycle {cycle}: {output}"
        );
        crashes += 1;
        cycle += 1;
    }
    let weir = Weir::start(dir.path(), &config);
    let url = format!("http://{}", weir.addr);
    // Settled: nothing buffered in delivery, nothing waiting in the warehouse, every ack loaded.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = common::http(weir.addr, "GET", "/api/status", &[], b"").json();
        let settled = status["deliveries"][0]["records_buffered"] == 0
            && status["warehouse"]["objects_pending"] == 0
            && status["warehouse"]["rows_loaded"].as_u64() >= Some(acked.len() as u64);
        if settled {
            break;
        }
        assert!(Instant::now() < deadline, "not settled after 60 s: {status:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ids = weir_query(dir.path(), Some(&url), "select record->>'id' as id from events");
    let loaded: Vec<String> = ids
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["id"].as_str().expect("id").to_owned())
        .collect();
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
    let mut seen = std::collections::HashSet::new();
    let duplicates: Vec<&String> = loaded.iter().filter(|id| !seen.insert(id.as_str())).collect();
    assert!(
        duplicates.is_empty(),
        "loaded twice: {:?}",
        &duplicates[..duplicates.len().min(10)]
    );
    let missing: Vec<&String> = acked.iter().filter(|id| !seen.contains(id.as_str())).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // Requests cut by the abort may have been stored without an answer: loaded ⊇ acknowledged.
    assert!(loaded.len() >= acked.len());
    eprintln!(
        "{crashes} aborts in {cycle} cycles; {} records acknowledged, {} loaded",
        acked.len(),
        loaded.len()
    );
    let history = weir_query(
        dir.path(),
        None,
        "select count(*) as objects, count(distinct object_key) as keys, sum(rows_loaded) as rows \
         from weir.load_history where status = 'loaded'",
    );
    assert_eq!(history[0]["objects"], history[0]["keys"]);
    assert_eq!(history[0]["rows"], loaded.len());
    let reconciliation = weir_query(dir.path(), None, "select balanced from weir.reconciliation");
    assert_eq!(reconciliation, json!([{"balanced": true}]));
}

#[test]
fn weir_query_cannot_read_files_and_reports_errors_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &config(""));
    post(&weir, &records(3));
    wait_rows(&weir, "events", 3);
    let check = |url: Option<&str>| {
        let out = query_command(dir.path(), url, "select * from read_csv('/etc/passwd')");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("disabled") || stderr.contains("Permission"),
            "{url:?}: {stderr}"
        );
        let out = query_command(dir.path(), url, "delete from events");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("read-only"), "{url:?}: {stderr}");
    };
    // Through the running server, then from the file.
    check(Some(&format!("http://{}", weir.addr)));
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
    check(None);
    assert_eq!(count(dir.path(), None, "events"), 3);
}

//! The loader against real objects in a local bucket and a real DuckDB file: every format and
//! compression, replays, bad objects, the reconciliation, and the query guard.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_core::query::QueryResult;
use weir_core::transform::csv::{ColumnType, CsvColumn};
use weir_delivery::encode::{Compression, Format, encode_object};
use weir_delivery::object_log::{BatchNotice, NoticeObject, NoticeSource, ObjectLog};
use weir_delivery::{LocalDirSink, Sink};
use weir_warehouse::{Layout, QueryError, Source, TableSpec, Warehouse, WarehouseSettings};

struct Fixture {
    dir: tempfile::TempDir,
    sink: Arc<LocalDirSink>,
    log: ObjectLog,
    batches: u64,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = Arc::new(LocalDirSink::open(dir.path().join("bucket")).expect("bucket"));
        let log = ObjectLog::open(dir.path().join("objects")).expect("log");
        Fixture {
            dir,
            sink,
            log,
            batches: 0,
        }
    }

    fn settings(&self) -> WarehouseSettings {
        WarehouseSettings {
            path: self.dir.path().join("warehouse.duckdb"),
            memory_limit: "256MiB".into(),
            threads: 1,
            poll_interval: Duration::from_millis(20),
        }
    }

    fn source(&self, layout: Layout, compression: Compression) -> Source {
        Source {
            table: TableSpec {
                delivery: "events".into(),
                table: "events".into(),
                layout,
                compression,
            },
            sink: self.sink.clone(),
            object_log: self.dir.path().join("objects"),
        }
    }

    /// Writes the objects and announces them as one batch.
    fn deliver(&mut self, objects: &[(&str, Vec<u8>, u64, Option<&str>)], dropped: u64) -> BatchNotice {
        self.batches += 1;
        for (key, body, _, _) in objects {
            self.sink.put(key, body).expect("put");
        }
        let failed: u64 = objects.iter().filter(|o| o.3.is_some()).map(|o| o.2).sum();
        let delivered: u64 = objects.iter().filter(|o| o.3.is_none()).map(|o| o.2).sum();
        let notice = BatchNotice {
            batch_id: format!("batch-{}", self.batches),
            source: NoticeSource::Stream,
            written_ms: 1_700_000_000_000,
            records_in: delivered + dropped + failed,
            delivered,
            dropped,
            failed,
            objects: objects
                .iter()
                .map(|(key, body, records, error)| NoticeObject {
                    key: key.to_string(),
                    bytes: body.len() as u64,
                    records: *records,
                    error_output: error.map(str::to_owned),
                })
                .collect(),
        };
        self.log.append(&notice).expect("append");
        notice
    }
}

/// Waits until the loader has nothing pending and `objects` objects are accounted for.
fn wait_loaded(w: &Warehouse, objects: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = &w.status()[0];
        if s.objects_pending == 0 && s.objects_loaded + s.objects_failed >= objects {
            return;
        }
        assert!(Instant::now() < deadline, "not loaded in time: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scalar(w: &Warehouse, sql: &str) -> serde_json::Value {
    let r = w.query(sql, 10).expect(sql);
    r.rows[0][0].clone()
}

fn rows(r: &QueryResult) -> Vec<Vec<serde_json::Value>> {
    r.rows.clone()
}

fn ndjson(records: &[serde_json::Value], compression: Compression) -> Vec<u8> {
    let lines: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut l = serde_json::to_vec(r).expect("json");
            l.push(b'\n');
            l
        })
        .collect();
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    encode_object(&Format::Ndjson, compression, &refs).expect("encode").body
}

#[test]
fn ndjson_objects_load_once_whatever_is_replayed() {
    let mut f = Fixture::new();
    let records: Vec<_> = (0..100)
        .map(|i| serde_json::json!({"id": i, "name": format!("n{i}")}))
        .collect();
    let notice = f.deliver(
        &[(
            "2024/01/01/00/events-1-a.gz",
            ndjson(&records[..60], Compression::Gzip),
            60,
            None,
        )],
        0,
    );
    f.deliver(
        &[(
            "2024/01/01/00/events-1-b.gz",
            ndjson(&records[60..], Compression::Gzip),
            40,
            None,
        )],
        0,
    );
    let w = Warehouse::start(f.settings(), vec![f.source(Layout::Json, Compression::Gzip)]).expect("start");
    wait_loaded(&w, 2);
    assert_eq!(scalar(&w, "select count(*) from events"), 100);
    assert_eq!(scalar(&w, "select count(distinct record->>'id') from events"), 100);
    assert_eq!(
        rows(
            &w.query(
                "select record->>'name', _row from events where _object like '%-b.gz' order by _row limit 2",
                10
            )
            .expect("q")
        ),
        [
            vec![serde_json::json!("n60"), serde_json::json!(1)],
            vec![serde_json::json!("n61"), serde_json::json!(2)]
        ]
    );

    // The same batch announced again (a delivery replay after a crash), and the same object in a
    // batch of another id: neither adds a row.
    f.log.append(&notice).expect("replay");
    let mut other = notice.clone();
    other.batch_id = "batch-other".into();
    f.log.append(&other).expect("same object, other batch");
    let log_end = std::fs::metadata(f.dir.path().join("objects/objects-00000000000000000001.log"))
        .expect("segment")
        .len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&w, "select \"offset\" from weir.cursors") != log_end {
        assert!(Instant::now() < deadline, "{:?}", w.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(scalar(&w, "select count(*) from events"), 100);
    assert_eq!(scalar(&w, "select count(*) from weir.load_history"), 2);
    assert_eq!(scalar(&w, "select count(*) from weir.batches"), 2);
    let status = &w.status()[0];
    assert!(status.reconciliation.balanced, "{status:?}");
    w.shutdown(Duration::from_secs(10));
    drop(w);

    // A restart resumes after the last notice: nothing is loaded again.
    let w = Warehouse::start(f.settings(), vec![f.source(Layout::Json, Compression::Gzip)]).expect("restart");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(scalar(&w, "select count(*) from events"), 100);
    assert_eq!(w.status()[0].objects_loaded, 2);
}

fn columns() -> Vec<CsvColumn> {
    let col = |name: &str, kind, required| CsvColumn {
        name: name.into(),
        pointer: None,
        kind,
        required,
    };
    vec![
        col("id", ColumnType::Integer, true),
        col("name", ColumnType::String, false),
        col("amount", ColumnType::Float, false),
        col("ok", ColumnType::Boolean, false),
        col("at", ColumnType::Timestamp, false),
        col("extra", ColumnType::Json, false),
    ]
}

#[test]
fn csv_keeps_values_quotes_nulls_and_types() {
    let mut f = Fixture::new();
    // The csv transform's dialect: "" quoting, a bare empty field is NULL, a quoted one is "".
    let lines: Vec<&[u8]> = vec![
        b"1,plain,1.5,true,2024-05-01T12:00:00.123456789+00:00,\"{\"\"a\"\":[1,2]}\"\n",
        b"2,\"comma, \"\"quote\"\"\nnewline\",-2,false,2024-05-01T14:00:00.000000000+02:00,null\n",
        b"3,\"\",,,,\n",
    ];
    let format = Format::Csv {
        header: Some("id,name,amount,ok,at,extra".into()),
    };
    let body = encode_object(&format, Compression::Zstd, &lines).expect("encode").body;
    f.deliver(&[("k/events-1-c.zst", body, 3, None)], 0);
    let layout = Layout::Csv {
        columns: columns(),
        header: true,
    };
    let w = Warehouse::start(f.settings(), vec![f.source(layout, Compression::Zstd)]).expect("start");
    wait_loaded(&w, 1);
    let r = w
        .query("select id, name, amount, ok, \"at\", extra from events order by id", 10)
        .expect("query");
    let types: Vec<&str> = r.columns.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        types[..5],
        ["BIGINT", "VARCHAR", "DOUBLE", "BOOLEAN", "TIMESTAMP WITH TIME ZONE"]
    );
    use serde_json::json;
    assert_eq!(
        rows(&r),
        [
            vec![
                json!(1),
                json!("plain"),
                json!(1.5),
                json!(true),
                json!("2024-05-01T12:00:00.123456Z"),
                json!("{\"a\":[1,2]}")
            ],
            vec![
                json!(2),
                json!("comma, \"quote\"\nnewline"),
                json!(-2.0),
                json!(false),
                json!("2024-05-01T12:00:00.000000Z"),
                json!("null")
            ],
            vec![json!(3), json!(""), json!(null), json!(null), json!(null), json!(null)],
        ]
    );
}

#[test]
fn parquet_loads_with_declared_types() {
    let mut f = Fixture::new();
    let format = Format::Parquet {
        columns: columns(),
        compression: Default::default(),
        timestamp_unit: weir_delivery::encode::TimestampUnit::Nanosecond,
    };
    let records: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "id": i, "name": format!("n{i}"), "amount": i as f64 / 2.0, "ok": i % 2 == 0,
                "at": "2024-05-01T12:00:00.5Z", "extra": {"i": i}
            }))
            .expect("json")
        })
        .collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let body = encode_object(&format, Compression::None, &refs).expect("encode").body;
    f.deliver(&[("k/events-1-p.parquet", body, 50, None)], 0);
    let layout = Layout::Parquet { columns: columns() };
    let w = Warehouse::start(f.settings(), vec![f.source(layout, Compression::None)]).expect("start");
    wait_loaded(&w, 1);
    assert_eq!(scalar(&w, "select count(*) from events"), 50);
    assert_eq!(scalar(&w, "select sum(id) from events"), 1225);
    assert_eq!(
        scalar(&w, "select \"at\" from events where id = 7"),
        "2024-05-01T12:00:00.500000Z"
    );
    assert_eq!(scalar(&w, "select extra->>'i' from events where id = 7"), "7");
    assert_eq!(scalar(&w, "select max(_row) from events"), 50);
}

#[test]
fn error_output_bad_and_missing_objects_are_accounted_for() {
    let mut f = Fixture::new();
    let good = ndjson(&[serde_json::json!({"id": 1})], Compression::None);
    let error_doc = serde_json::json!({
        "attemptsMade": 1, "arrivalTimestamp": 1_700_000_000_123_i64, "errorCode": "Lambda.ProcessingFailedStatus",
        "errorMessage": "bad", "attemptEndingTimestamp": 1_700_000_001_000_i64, "rawData": "aGVsbG8=", "lambdaArn": "csv"
    });
    let mut errors = serde_json::to_vec(&error_doc).expect("json");
    errors.push(b'\n');
    f.deliver(
        &[
            ("d/events-1-good", good, 1, None),
            ("processing-failed/events-1-err", errors, 1, Some("processing-failed")),
        ],
        2,
    );
    // Not JSON: DuckDB refuses it, the rest of its batch still loads.
    f.deliver(
        &[
            ("d/events-1-bad", b"{not json\n".to_vec(), 1, None),
            (
                "d/events-1-good2",
                ndjson(&[serde_json::json!({"id": 2})], Compression::None),
                1,
                None,
            ),
        ],
        0,
    );
    let w = Warehouse::start(f.settings(), vec![f.source(Layout::Json, Compression::None)]).expect("start");
    wait_loaded(&w, 4);
    assert_eq!(scalar(&w, "select count(*) from events"), 2);
    let r = w
        .query(
            "select error_output_type, error_code, raw_data::varchar, arrived_at from events_errors",
            10,
        )
        .expect("errors");
    assert_eq!(
        rows(&r),
        [vec![
            serde_json::json!("processing-failed"),
            serde_json::json!("Lambda.ProcessingFailedStatus"),
            serde_json::json!("hello"),
            serde_json::json!("2023-11-14T22:13:20.123000Z")
        ]]
    );
    let failed = w
        .query(
            "select object_key, error from weir.load_history where status = 'failed'",
            10,
        )
        .expect("history");
    assert_eq!(failed.rows.len(), 1);
    assert_eq!(failed.rows[0][0], "d/events-1-bad");
    let status = &w.status()[0];
    assert_eq!((status.objects_loaded, status.objects_failed), (3, 1));
    // in 6 = loaded 2 + dropped 2 + failed 1, and one record lost to a bad object: not balanced.
    let r = &status.reconciliation;
    assert_eq!(
        (r.records_in, r.rows_loaded, r.dropped, r.failed_rows_loaded),
        (6, 2, 2, 1)
    );
    assert!(!r.balanced);
    assert_eq!(r.objects_failed, 1);
}

#[test]
fn queries_are_read_only_and_cannot_touch_files() {
    let mut f = Fixture::new();
    f.deliver(
        &[(
            "d/events-1-x",
            ndjson(&[serde_json::json!({"id": 1})], Compression::None),
            1,
            None,
        )],
        0,
    );
    let w = Warehouse::start(f.settings(), vec![f.source(Layout::Json, Compression::None)]).expect("start");
    wait_loaded(&w, 1);
    let passwd = w
        .query("select * from read_csv('/etc/passwd')", 10)
        .expect_err("read_csv");
    assert!(
        passwd.to_string().contains("disabled") || passwd.to_string().contains("Permission"),
        "{passwd}"
    );
    for sql in [
        "delete from events",
        "insert into events select * from events",
        "copy events to '/tmp/weir-leak.csv'",
        "attach '/tmp/other.duckdb'",
        "set enable_external_access = true",
        "drop table events",
    ] {
        let e = w.query(sql, 10).expect_err(sql);
        assert!(matches!(e, QueryError::NotAllowed(_)), "{sql}: {e:?}");
    }
    let e = w.query("select 1; select 2", 10).expect_err("two statements");
    assert!(matches!(e, QueryError::NotAllowed(_)), "{e:?}");
    let e = w.query("selec 1", 10).expect_err("syntax");
    assert!(matches!(e, QueryError::Sql(_)), "{e:?}");
    assert_eq!(scalar(&w, "select count(*) from events"), 1);
    for sql in [
        "from events",
        "describe events",
        "show tables",
        "with t as (select 1 as x) select x from t",
    ] {
        w.query(sql, 10).expect(sql);
    }
    let many = w.query("select * from range(100)", 10).expect("range");
    assert_eq!((many.rows.len(), many.truncated), (10, true));

    // (Another process's read-only open fails while this one holds the file — DuckDB's lock is per
    // process, so that is tested end to end in crates/weir/tests/warehouse.rs.)
    w.shutdown(Duration::from_secs(10));
    drop(w);
    let r = weir_warehouse::query_offline(&f.settings(), "select count(*) from events", 1).expect("offline");
    assert_eq!(r.rows[0][0], 1);
    let e = weir_warehouse::query_offline(&f.settings(), "select * from read_csv('/etc/passwd')", 1)
        .expect_err("offline file");
    assert!(
        e.to_string().contains("disabled") || e.to_string().contains("Permission"),
        "{e}"
    );
    assert!(!Path::new("/tmp/weir-leak.csv").exists());
}

//! Load throughput: the loader against DuckDB loading the same files itself (the ceiling).
//!
//! For each format, objects of ~5 MiB are written by weir's encoders to a local bucket and announced
//! in an object log; the loader's rows/s (first notice read → last commit) is set against one DuckDB
//! connection running `INSERT INTO … SELECT …, '<key>', <row number>, now() FROM read_*('<file>')` over
//! the same files into a table of the same shape (the same rows, object key and row number included),
//! once with a transaction per file and once with one transaction for all of them; the better of the
//! two is the ceiling. All use the same DuckDB settings.
//!
//! `cargo bench --workspace --exclude weir-lambda --bench load [-- RUNS OBJECTS]`, or through
//! scripts/bench-warehouse.sh, which also measures the lag through `weir up`.

use duckdb::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_core::transform::csv::{ColumnType, CsvColumn};
use weir_delivery::encode::{Compression, Format, encode_object};
use weir_delivery::object_log::{BatchNotice, NoticeObject, NoticeSource, ObjectLog};
use weir_delivery::{LocalDirSink, Sink};
use weir_warehouse::{Layout, Source, TableSpec, Warehouse, WarehouseSettings};

const OBJECT_BYTES: usize = 5 << 20;

fn columns() -> Vec<CsvColumn> {
    let col = |name: &str, kind| CsvColumn {
        name: name.into(),
        pointer: None,
        kind,
        required: true,
    };
    vec![
        col("user_id", ColumnType::Integer),
        col("event", ColumnType::String),
        col("amount", ColumnType::Float),
        col("ok", ColumnType::Boolean),
        col("at", ColumnType::Timestamp),
        col("page", ColumnType::String),
    ]
}

/// One record as JSON and as the csv transform's line.
fn record(i: usize) -> (Vec<u8>, Vec<u8>) {
    let json = format!(
        "{{\"user_id\":{i},\"event\":\"{}\",\"amount\":{}.25,\"ok\":{},\"at\":\"2024-05-01T12:{:02}:{:02}.000000000+00:00\",\"page\":\"/products/{}\"}}\n",
        ["signup", "login", "purchase"][i % 3],
        i % 1000,
        i.is_multiple_of(2),
        i / 60 % 60,
        i % 60,
        i % 977
    );
    let csv = format!(
        "{i},{},{}.25,{},2024-05-01T12:{:02}:{:02}.000000000+00:00,/products/{}\n",
        ["signup", "login", "purchase"][i % 3],
        i % 1000,
        i.is_multiple_of(2),
        i / 60 % 60,
        i % 60,
        i % 977
    );
    (json.into_bytes(), csv.into_bytes())
}

struct Case {
    name: &'static str,
    format: Format,
    layout: Layout,
    /// DuckDB's own reader over a file (path, object key), for the ceiling: the same rows the loader
    /// inserts, with the object key and row number.
    reader: fn(&str, &str) -> String,
}

fn cases() -> Vec<Case> {
    let header = "user_id,event,amount,ok,at,page".to_string();
    vec![
        Case {
            name: "NDJSON",
            format: Format::Ndjson,
            layout: Layout::Json,
            reader: |p, k| {
                format!(
                    "SELECT json, '{k}', row_number() OVER (), now() \
                     FROM read_json_objects('{p}', format = 'newline_delimited')"
                )
            },
        },
        Case {
            name: "CSV",
            format: Format::Csv { header: Some(header) },
            layout: Layout::Csv {
                columns: columns(),
                header: true,
            },
            reader: |p, k| format!("SELECT *, '{k}', row_number() OVER (), now() FROM read_csv('{p}', header = true)"),
        },
        Case {
            name: "Parquet",
            format: Format::Parquet {
                columns: columns(),
                compression: Default::default(),
                timestamp_unit: Default::default(),
            },
            layout: Layout::Parquet { columns: columns() },
            reader: |p, k| {
                format!(
                    "SELECT * EXCLUDE (file_row_number), '{k}', file_row_number + 1, now() \
                     FROM read_parquet('{p}', file_row_number = true)"
                )
            },
        },
    ]
}

fn settings(dir: &std::path::Path) -> WarehouseSettings {
    WarehouseSettings {
        path: dir.join("warehouse.duckdb"),
        memory_limit: "1GiB".into(),
        threads: 2,
        poll_interval: Duration::from_millis(5),
    }
}

/// Writes `objects` objects of ~5 MiB; returns their keys and the row count.
fn write_objects(case: &Case, sink: &LocalDirSink, objects: usize) -> (Vec<(String, u64, u64)>, u64) {
    let mut keys = Vec::new();
    let mut rows = 0;
    let mut i = 0;
    for n in 0..objects {
        let mut records = Vec::new();
        let mut bytes = 0;
        while bytes < OBJECT_BYTES {
            let (json, csv) = record(i);
            i += 1;
            let r = if matches!(case.format, Format::Csv { .. }) {
                csv
            } else {
                json
            };
            bytes += r.len();
            records.push(r);
        }
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let body = encode_object(&case.format, Compression::None, &refs)
            .expect("encode")
            .body;
        let key = format!("2024/05/01/12/bench-1-{n:04}{}", case.layout_extension());
        sink.put(&key, &body).expect("put");
        keys.push((key, records.len() as u64, body.len() as u64));
        rows += records.len() as u64;
    }
    (keys, rows)
}

impl Case {
    fn layout_extension(&self) -> &'static str {
        match self.layout {
            Layout::Json => ".json",
            Layout::Csv { .. } => ".csv",
            Layout::Parquet { .. } => ".parquet",
        }
    }
}

/// rows/s of the loader over the objects.
fn loader_run(case: &Case, objects: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(LocalDirSink::open(dir.path().join("bucket")).expect("bucket"));
    let (keys, rows) = write_objects(case, &sink, objects);
    let table = TableSpec {
        delivery: "bench".into(),
        table: "bench".into(),
        layout: case.layout.clone(),
        compression: Compression::None,
    };
    let log = ObjectLog::open(dir.path().join("objects")).expect("log");
    let w = Warehouse::start(
        settings(dir.path()),
        vec![Source {
            table,
            sink: sink.clone(),
            object_log: dir.path().join("objects"),
        }],
    )
    .expect("start");
    let started = Instant::now();
    for (n, (key, records, bytes)) in keys.iter().enumerate() {
        log.append(&BatchNotice {
            batch_id: format!("b{n}"),
            source: NoticeSource::Stream,
            written_ms: 0,
            records_in: *records,
            delivered: *records,
            dropped: 0,
            failed: 0,
            objects: vec![NoticeObject {
                key: key.clone(),
                bytes: *bytes,
                records: *records,
                error_output: None,
            }],
        })
        .expect("append");
    }
    loop {
        // progress(), not status(): polling must not run queries beside the loader.
        let s = &w.progress()[0];
        if s.objects_loaded + s.objects_failed == keys.len() as u64 {
            assert_eq!(s.objects_failed, 0, "{s:?}");
            assert_eq!(s.rows_loaded, rows);
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed().as_secs_f64();
    w.shutdown(Duration::from_secs(30));
    (rows as f64 / elapsed, rows)
}

/// rows/s of DuckDB loading the same files itself: one transaction per file, or one for all of them.
fn ceiling_run(case: &Case, objects: usize, one_transaction: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = LocalDirSink::open(dir.path().join("bucket")).expect("bucket");
    let (keys, rows) = write_objects(case, &sink, objects);
    let s = settings(dir.path());
    let config = duckdb::Config::default()
        .max_memory(&s.memory_limit)
        .and_then(|c| c.threads(i64::from(s.threads)))
        .expect("config");
    let conn = Connection::open_with_flags(&s.path, config).expect("open");
    let spec = TableSpec {
        delivery: "bench".into(),
        table: "bench".into(),
        layout: case.layout.clone(),
        compression: Compression::None,
    };
    conn.execute_batch(&spec.create_sql()).expect("create");
    let started = Instant::now();
    if one_transaction {
        conn.execute_batch("BEGIN").expect("begin");
    }
    for (key, _, _) in &keys {
        let path = dir.path().join("bucket").join(key);
        let sql = format!("INSERT INTO bench {}", (case.reader)(&path.to_string_lossy(), key));
        if one_transaction {
            conn.execute_batch(&sql).expect("insert");
        } else {
            conn.execute_batch(&format!("BEGIN; {sql}; COMMIT;")).expect("insert");
        }
    }
    if one_transaction {
        conn.execute_batch("COMMIT").expect("commit");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM bench", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n as u64, rows);
    rows as f64 / elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let objects: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    println!("{objects} objects of ~5 MiB per run, median (min–max) of {runs} runs (loader and ceilings alternate)");
    println!(
        "| format | rows/object | weir loader rows/s | DuckDB alone, a transaction per file | \
         DuckDB alone, one transaction | weir / best DuckDB |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for case in cases() {
        let (mut loader, mut per_file, mut one) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows = 0;
        for _ in 0..runs {
            let (r, n) = loader_run(&case, objects);
            loader.push(r);
            rows = n;
            per_file.push(ceiling_run(&case, objects, false));
            one.push(ceiling_run(&case, objects, true));
        }
        let ratios: Vec<f64> = (0..runs).map(|i| 100.0 * loader[i] / per_file[i].max(one[i])).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            case.name,
            rows / objects as u64,
            summary(loader, ""),
            summary(per_file, ""),
            summary(one, ""),
            summary(ratios, " %")
        );
    }
}

/// `median (min–max)` with thousands separators.
fn summary(mut v: Vec<f64>, unit: &str) -> String {
    v.sort_by(f64::total_cmp);
    let fmt = |x: f64| {
        let digits = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    format!(
        "{}{unit} ({}–{})",
        fmt(median(v.clone())),
        fmt(v[0]),
        fmt(v[v.len() - 1])
    )
}

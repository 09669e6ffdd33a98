//! Object encoding throughput per core: [`encode_object`] on ~5 MiB of transformed records (Firehose's
//! default S3 buffer size), for NDJSON + gzip, CSV + zstd and Parquet (Snappy inside).
//!
//! Run through `scripts/bench-transform.sh` (which prints the table for BENCHMARKS.md), or alone:
//! `cargo bench -p weir-delivery --bench encode`. `WEIR_BENCH_SECONDS` (default 3) is how long each
//! encoding is measured. Input MB are the uncompressed record bytes handed to `encode_object` (JSON
//! lines for NDJSON and Parquet, the csv transform's lines for CSV), 10^6 bytes, as Firehose counts
//! its buffer before compression. Each measurement prints one `BENCH key=value …` line and a readable
//! summary on stderr. One thread: figures are per core.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};
use weir_core::transform::csv::{ColumnType, CsvColumn};
use weir_core::transform::{InputRecord, TransformResult, TransformSpec};
use weir_delivery::encode::{Compression, Format, ParquetCompression, TimestampUnit, encode_object};

/// Firehose's default S3 buffering size.
const INPUT_BYTES: usize = 5 * 1024 * 1024;

fn main() {
    let seconds: f64 = std::env::var("WEIR_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let json = generate(INPUT_BYTES);
    let ndjson: Vec<Vec<u8>> = json.iter().map(|r| [r.as_slice(), b"\n"].concat()).collect();
    let (csv_spec, csv_lines) = csv_lines(&json);
    let csv_format = Format::Csv { header: None }
        .for_transform(&csv_spec)
        .expect("csv with the csv transform");
    let parquet = Format::Parquet {
        columns: parquet_columns(),
        compression: ParquetCompression::Snappy,
        timestamp_unit: TimestampUnit::Microsecond,
    };
    let cases: [(&str, &Format, Compression, &[Vec<u8>]); 3] = [
        ("ndjson+gzip", &Format::Ndjson, Compression::Gzip, &ndjson),
        ("csv+zstd", &csv_format, Compression::Zstd, &csv_lines),
        ("parquet+snappy", &parquet, Compression::None, &ndjson),
    ];
    for (name, format, compression, records) in cases {
        let records: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let input_bytes: usize = records.iter().map(|r| r.len()).sum();
        let object = encode_object(format, compression, &records).expect("encodes");
        assert!(object.failed.is_empty(), "{name}: every record converts");
        let deadline = Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut objects = 0u64;
        while objects == 0 || start.elapsed() < deadline {
            black_box(encode_object(format, compression, black_box(&records)).expect("encodes"));
            objects += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "BENCH kind=encode name={name} impl=rust seconds={elapsed:.6} invocations={objects} records={} \
             input_bytes={input_bytes} output_bytes={}",
            records.len(),
            object.body.len()
        );
        eprintln!(
            "{name:>15}: {:>7.1} MB/s of input, {:>10.0} records/s, ratio {:.2}, {:.1} ms per object",
            objects as f64 * input_bytes as f64 / elapsed / 1e6,
            objects as f64 * records.len() as f64 / elapsed,
            input_bytes as f64 / object.body.len() as f64,
            elapsed * 1e3 / objects as f64
        );
    }
}

/// The Parquet columns: the JSON record's fields with their types, one nested.
fn parquet_columns() -> Vec<CsvColumn> {
    let column = |name: &str, pointer: Option<&str>, kind, required| CsvColumn {
        name: name.into(),
        pointer: pointer.map(Into::into),
        kind,
        required,
    };
    vec![
        column("event_id", None, ColumnType::String, true),
        column("user_id", Some("/user/id"), ColumnType::Integer, true),
        column("country", Some("/user/country"), ColumnType::String, true),
        column("event", None, ColumnType::String, true),
        column("amount", None, ColumnType::Float, false),
        column("ok", None, ColumnType::Boolean, true),
        column("page", None, ColumnType::String, true),
        column("ts", None, ColumnType::Timestamp, true),
        column("ua", None, ColumnType::String, false),
    ]
}

/// The csv transform over the records, with the same columns as Parquet.
fn csv_lines(json: &[Vec<u8>]) -> (TransformSpec, Vec<Vec<u8>>) {
    let spec: TransformSpec = serde_json::from_value(serde_json::json!({
        "kind": "csv",
        "columns": parquet_columns(),
    }))
    .expect("a csv spec");
    let transform = spec.build().expect("a valid transform");
    let input: Vec<InputRecord<'_>> = json
        .iter()
        .enumerate()
        .map(|(i, data)| InputRecord {
            record_id: Cow::Owned(i.to_string()),
            data: Cow::Borrowed(data),
            ..InputRecord::default()
        })
        .collect();
    let output = transform.process(&input).expect("a batch");
    let lines = output
        .into_iter()
        .map(|o| {
            assert_eq!(o.result, TransformResult::Ok, "{:?}", o.error);
            o.data.into_owned()
        })
        .collect();
    (spec, lines)
}

/// Deterministic ~200-byte JSON records, `bytes` of them in all.
fn generate(bytes: usize) -> Vec<Vec<u8>> {
    const EVENTS: [&str; 4] = ["page_view", "click", "add_to_cart", "purchase"];
    const COUNTRIES: [&str; 5] = ["DE", "US", "FR", "JP", "BR"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut records = Vec::new();
    let mut total = 0;
    while total < bytes {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let i = records.len();
        let record = format!(
            r#"{{"event_id":"e-{i:010}","user":{{"id":{},"country":"{}"}},"event":"{}","amount":{}.{:02},"ok":{},"page":"/products/{}?ref=campaign-{}","ts":"2024-02-21T06:{:02}:{:02}.{:03}Z","ua":"Mozilla/5.0"}}"#,
            r % 1_000_000,
            COUNTRIES[(r >> 20) as usize % COUNTRIES.len()],
            EVENTS[(r >> 24) as usize % EVENTS.len()],
            (r >> 28) % 500,
            (r >> 37) % 100,
            (r >> 44).is_multiple_of(2),
            (r >> 45) % 100_000,
            (r >> 50) % 100,
            (i / 60) % 60,
            i % 60,
            (r >> 54) % 1000,
        );
        total += record.len() + 1;
        records.push(record.into_bytes());
    }
    records
}

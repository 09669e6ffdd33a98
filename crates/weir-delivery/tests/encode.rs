//! Golden tests of object encoding: every format × compression on fixed records, read back with
//! readers that share no code with the writers (flate2's, zstd's and snap's decoders, the parquet
//! crate's Arrow reader, and Python's gzip, zstandard and pyarrow).

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression as Codec;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use weir_core::transform::csv::{ColumnType, CsvColumn, decode_records};
use weir_core::transform::{InputRecord, TransformResult, TransformSpec};
use weir_delivery::encode::{Compression, EncodeError, Format, ParquetCompression, TimestampUnit, code, encode_object};

/// What the `newline` transform hands the encoder: JSON lines.
const EVENTS: [&str; 3] = [
    r#"{"id":1,"user":{"name":"ada"},"amount":12.5,"ok":true,"at":"2024-02-21T06:12:33.5+01:00","tags":["a","b"]}"#,
    r#"{"id":2,"user":{"name":"grace, \"amazing\""},"amount":null,"ok":false,"at":1708495953500}"#,
    r#"{"id":-3,"user":{"name":"é☃\nline"},"ok":true,"at":"1970-01-01T00:00:00Z","tags":{ "k" : [1, 2.50] }}"#,
];

const COMPRESSIONS: [Compression; 4] = [
    Compression::None,
    Compression::Gzip,
    Compression::Zstd,
    Compression::Snappy,
];

fn lines() -> Vec<Vec<u8>> {
    EVENTS.iter().map(|e| format!("{e}\n").into_bytes()).collect()
}

fn slices(records: &[Vec<u8>]) -> Vec<&[u8]> {
    records.iter().map(Vec::as_slice).collect()
}

/// Decompresses with the codec's reference decoder (not the encoder's crate where avoidable).
fn decompress(compression: Compression, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match compression {
        Compression::None => out.extend_from_slice(body),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Compression::Zstd => out = zstd::stream::decode_all(body).expect("valid zstd"),
        Compression::Snappy => {
            snap::read::FrameDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid Snappy framing");
        }
    }
    out
}

fn column(name: &str, pointer: Option<&str>, kind: ColumnType, required: bool) -> CsvColumn {
    CsvColumn {
        name: name.into(),
        pointer: pointer.map(Into::into),
        kind,
        required,
    }
}

fn table_columns() -> Vec<CsvColumn> {
    vec![
        column("id", None, ColumnType::Integer, true),
        column("name", Some("/user/name"), ColumnType::String, true),
        column("amount", None, ColumnType::Float, false),
        column("ok", None, ColumnType::Boolean, true),
        column("at", None, ColumnType::Timestamp, true),
        column("tags", None, ColumnType::Json, false),
    ]
}

fn parquet(compression: ParquetCompression) -> Format {
    Format::Parquet {
        columns: table_columns(),
        compression,
        timestamp_unit: TimestampUnit::Microsecond,
    }
}

/// Reads a Parquet body with the parquet crate's Arrow reader: its one row group as one batch, and the
/// codec of its column chunks.
fn read_parquet(body: &[u8]) -> (RecordBatch, usize, Vec<Codec>) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(body)).expect("a Parquet file");
    let metadata = builder.metadata().clone();
    let codecs = metadata
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
        .collect();
    let batches: Vec<RecordBatch> = builder
        .with_batch_size(1 << 20)
        .build()
        .expect("a reader")
        .collect::<Result<_, _>>()
        .expect("readable batches");
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("one schema");
    (batch, metadata.num_row_groups(), codecs)
}

fn array<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> &'b T {
    batch
        .column_by_name(name)
        .expect("the column")
        .as_any()
        .downcast_ref::<T>()
        .expect("the column's array type")
}

#[test]
fn ndjson_objects_are_the_records_concatenated_under_every_compression() {
    let records = lines();
    let expected: Vec<u8> = records.concat();
    for compression in COMPRESSIONS {
        let object = encode_object(&Format::Ndjson, compression, &slices(&records)).expect("encodes");
        assert_eq!(decompress(compression, &object.body), expected, "{compression}");
        assert_eq!(object.records, 3);
        assert!(object.failed.is_empty());
        let (extension, content_type, magic): (&str, &str, &[u8]) = match compression {
            Compression::None => ("", "application/x-ndjson", b"{\"id\":1"),
            Compression::Gzip => (".gz", "application/gzip", &[0x1f, 0x8b, 8]),
            Compression::Zstd => (".zst", "application/zstd", &[0x28, 0xb5, 0x2f, 0xfd]),
            // The framing format's stream identifier chunk: type 0xff, length 6, "sNaPpY".
            Compression::Snappy => (".snappy", "application/x-snappy-framed", b"\xff\x06\x00\x00sNaPpY"),
        };
        assert_eq!(object.extension, extension);
        assert_eq!(object.content_type, content_type);
        assert!(object.body.starts_with(magic), "{compression}: {:?}", &object.body[..8]);
    }
}

#[test]
fn zstd_frames_declare_their_content_size() {
    let records = lines();
    let object = encode_object(&Format::Ndjson, Compression::Zstd, &slices(&records)).expect("encodes");
    let size = zstd::zstd_safe::get_frame_content_size(&object.body).expect("a frame header");
    assert_eq!(size, Some(records.concat().len() as u64));
}

#[test]
fn csv_objects_are_the_transforms_header_and_lines() {
    let spec: TransformSpec = serde_json::from_value(serde_json::json!({
        "kind": "csv",
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "name", "pointer": "/user/name", "type": "string"},
            {"name": "amount", "type": "float", "required": false},
        ],
    }))
    .expect("a csv transform");
    let transform = spec.build().expect("valid");
    let input: Vec<InputRecord<'_>> = EVENTS
        .iter()
        .enumerate()
        .map(|(i, e)| InputRecord {
            record_id: i.to_string().into(),
            data: e.as_bytes().into(),
            ..InputRecord::default()
        })
        .collect();
    let output = transform.process(&input).expect("a batch");
    assert!(output.iter().all(|o| o.result == TransformResult::Ok));
    let rows: Vec<&[u8]> = output.iter().map(|o| &*o.data).collect();

    let format = Format::Csv { header: None }.for_transform(&spec).expect("csv with csv");
    assert_eq!(
        format,
        Format::Csv {
            header: Some("id,name,amount\n".into())
        }
    );
    for compression in COMPRESSIONS {
        let object = encode_object(&format, compression, &rows).expect("encodes");
        assert_eq!(object.extension, compression.extension());
        let text = String::from_utf8(decompress(compression, &object.body)).expect("UTF-8");
        let decoded = decode_records(&text).expect("weir's CSV dialect");
        let field = |s: &str| Some(s.to_owned());
        assert_eq!(
            decoded,
            vec![
                vec![field("id"), field("name"), field("amount")],
                vec![field("1"), field("ada"), field("12.5")],
                vec![field("2"), field("grace, \"amazing\""), None],
                vec![field("-3"), field("é☃\nline"), None],
            ],
            "{compression}"
        );
    }
    let untitled = encode_object(
        &Format::Csv {
            header: Some("a,b".into()),
        },
        Compression::None,
        &[b"1,2\n"],
    );
    assert_eq!(
        untitled.expect("encodes").body,
        b"a,b\n1,2\n",
        "a header gets its line break"
    );
}

#[test]
fn parquet_objects_read_back_with_their_schema_values_and_nulls() {
    let records = lines();
    let object = encode_object(
        &parquet(ParquetCompression::Snappy),
        Compression::None,
        &slices(&records),
    )
    .expect("encodes");
    assert_eq!(
        (object.extension, object.content_type),
        (".parquet", "application/vnd.apache.parquet")
    );
    assert!(object.failed.is_empty(), "{:?}", object.failed);
    assert!(object.body.starts_with(b"PAR1") && object.body.ends_with(b"PAR1"));

    let (batch, row_groups, codecs) = read_parquet(&object.body);
    assert_eq!(row_groups, 1);
    assert!(codecs.iter().all(|c| *c == Codec::SNAPPY), "{codecs:?}");
    let schema = batch.schema();
    let fields: Vec<(&str, &DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
        .collect();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    assert_eq!(
        fields,
        vec![
            ("id", &DataType::Int64, false),
            ("name", &DataType::Utf8, false),
            ("amount", &DataType::Float64, true),
            ("ok", &DataType::Boolean, false),
            ("at", &utc, false),
            ("tags", &DataType::Utf8, true),
        ]
    );
    assert_eq!(batch.num_rows(), 3);
    let ids: Vec<i64> = array::<Int64Array>(&batch, "id").values().to_vec();
    assert_eq!(ids, [1, 2, -3]);
    let names: Vec<&str> = array::<StringArray>(&batch, "name").iter().flatten().collect();
    assert_eq!(names, ["ada", "grace, \"amazing\"", "é☃\nline"]);
    let amounts: Vec<Option<f64>> = array::<Float64Array>(&batch, "amount").iter().collect();
    assert_eq!(amounts, [Some(12.5), None, None], "null and missing are both null");
    let oks: Vec<Option<bool>> = array::<BooleanArray>(&batch, "ok").iter().collect();
    assert_eq!(oks, [Some(true), Some(false), Some(true)]);
    let at: Vec<Option<i64>> = array::<TimestampMicrosecondArray>(&batch, "at").iter().collect();
    // 06:12:33.5 at +01:00 is 05:12:33.5 UTC; the epoch number is 06:12:33.5 UTC.
    assert_eq!(at, [Some(1_708_492_353_500_000), Some(1_708_495_953_500_000), Some(0)]);
    let tags: Vec<Option<&str>> = array::<StringArray>(&batch, "tags").iter().collect();
    assert_eq!(tags, [Some(r#"["a","b"]"#), None, Some(r#"{"k":[1,2.50]}"#)]);
}

#[test]
fn parquet_compresses_inside_with_the_configured_codec() {
    let records = lines();
    for (compression, codec) in [
        (ParquetCompression::Uncompressed, Codec::UNCOMPRESSED),
        (ParquetCompression::Snappy, Codec::SNAPPY),
        (ParquetCompression::Gzip, Codec::GZIP(Default::default())),
        (ParquetCompression::Zstd, Codec::ZSTD(Default::default())),
    ] {
        let object = encode_object(&parquet(compression), Compression::None, &slices(&records)).expect("encodes");
        let (batch, _, codecs) = read_parquet(&object.body);
        assert_eq!(batch.num_rows(), 3);
        let same_codec = |c: &Codec| std::mem::discriminant(c) == std::mem::discriminant(&codec);
        assert!(codecs.iter().all(same_codec), "{compression:?}: {codecs:?}");
    }
}

#[test]
fn parquet_leaves_out_records_that_do_not_fit_and_says_why() {
    let good = br#"{"id":7,"user":{"name":"x"},"ok":true,"at":0}"#;
    let cases: [(&[u8], &str, &str); 10] = [
        (b"not json", code::INVALID_JSON, "not valid JSON"),
        (b"\xff{}", code::INVALID_JSON, "not UTF-8"),
        (b"[1,2]", code::NOT_AN_OBJECT, "an array"),
        (br#"{"id":1,"id":2}"#, code::DUPLICATE_KEY, "\"id\""),
        (
            br#"{"user":{"name":"x"},"ok":true,"at":0}"#,
            code::MISSING_FIELD,
            "column \"id\" (integer) is required but the value at /id is missing",
        ),
        (
            br#"{"id":1,"user":{"name":null},"ok":true,"at":0}"#,
            code::MISSING_FIELD,
            "column \"name\" (string) is required but the value at /user/name is null",
        ),
        (
            br#"{"id":1.5,"user":{"name":"x"},"ok":true,"at":0}"#,
            code::TYPE_MISMATCH,
            "column \"id\" (integer) at /id: expected an integer, found 1.5",
        ),
        (
            br#"{"id":99999999999999999999,"user":{"name":"x"},"ok":true,"at":0}"#,
            code::TYPE_MISMATCH,
            "out of range for an integer",
        ),
        (
            br#"{"id":1,"user":{"name":7},"ok":"yes","at":0}"#,
            code::TYPE_MISMATCH,
            "column \"name\" (string) at /user/name: expected a string, found a number",
        ),
        (
            br#"{"id":1,"user":{"name":"x"},"ok":true,"at":"2024-02-21T06:12:33.123456789Z"}"#,
            code::TYPE_MISMATCH,
            "digits below the microsecond",
        ),
    ];
    let mut records: Vec<&[u8]> = vec![good];
    for (record, _, _) in &cases {
        records.push(record);
        records.push(good);
    }
    let object = encode_object(&parquet(ParquetCompression::Snappy), Compression::None, &records).expect("encodes");
    assert_eq!(object.records, cases.len() + 1);
    let failed: Vec<usize> = object.failed.iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, (0..cases.len()).map(|i| 2 * i + 1).collect::<Vec<_>>());
    for ((_, error), (record, code, message)) in object.failed.iter().zip(&cases) {
        let record = String::from_utf8_lossy(record);
        assert_eq!(error.code, *code, "{record}: {error}");
        assert!(error.message.contains(message), "{record}: {}", error.message);
    }
    let (batch, _, _) = read_parquet(&object.body);
    assert_eq!(batch.num_rows(), cases.len() + 1);
    assert!(array::<Int64Array>(&batch, "id").values().iter().all(|&id| id == 7));
}

#[test]
fn nanosecond_timestamps_keep_every_digit_and_refuse_far_years() {
    let format = Format::Parquet {
        columns: vec![column("at", None, ColumnType::Timestamp, true)],
        compression: ParquetCompression::Snappy,
        timestamp_unit: TimestampUnit::Nanosecond,
    };
    let records: [&[u8]; 3] = [
        br#"{"at":"2024-02-21T06:12:33.123456789Z"}"#,
        br#"{"at":"9999-12-31T00:00:00Z"}"#,
        br#"{"at":1}"#,
    ];
    let object = encode_object(&format, Compression::None, &records).expect("encodes");
    assert_eq!(object.failed.len(), 1);
    assert_eq!(object.failed[0].0, 1);
    assert!(
        object.failed[0].1.message.contains("1677 to 2262"),
        "{}",
        object.failed[0].1
    );
    let (batch, _, _) = read_parquet(&object.body);
    assert_eq!(
        batch.schema().field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    let at = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::TimestampNanosecondArray>()
        .expect("nanoseconds");
    assert_eq!(at.values().to_vec(), [1_708_495_953_123_456_789, 1_000_000]);
}

#[test]
fn parquet_with_an_outer_compression_is_refused_naming_the_rule() {
    let error = encode_object(&parquet(ParquetCompression::Snappy), Compression::Gzip, &[]).expect_err("refused");
    let EncodeError::Format(error) = error else {
        panic!("a format error, not {error}");
    };
    assert_eq!(error.key, "compression");
    assert!(error.message.contains("UNCOMPRESSED"), "{error}");
    assert!(error.message.contains("format.compression"), "{error}");

    let bad = Format::Parquet {
        columns: vec![column("a", Some("no-slash"), ColumnType::String, true)],
        compression: ParquetCompression::Snappy,
        timestamp_unit: TimestampUnit::Microsecond,
    };
    let error = bad.validate(Compression::None).expect_err("invalid pointer");
    assert_eq!(error.key, "format.columns[0].pointer");
    let twice = Format::Parquet {
        columns: vec![
            column("a", None, ColumnType::String, true),
            column("a", None, ColumnType::Integer, true),
        ],
        compression: ParquetCompression::Snappy,
        timestamp_unit: TimestampUnit::Microsecond,
    };
    assert_eq!(
        twice.validate(Compression::None).expect_err("duplicate").key,
        "format.columns[1].name"
    );
}

#[test]
fn formats_check_the_transform_they_follow() {
    let newline = TransformSpec::default();
    let csv: TransformSpec = serde_json::from_value(serde_json::json!({
        "kind": "csv", "columns": [{"name": "a", "type": "string"}],
    }))
    .expect("a csv transform");
    assert_eq!(Format::Ndjson.for_transform(&newline), Ok(Format::Ndjson));
    assert!(parquet(ParquetCompression::Snappy).for_transform(&newline).is_ok());
    assert_eq!(
        Format::Csv {
            header: Some("x".into())
        }
        .for_transform(&csv),
        Ok(Format::Csv {
            header: Some("x".into())
        }),
        "a configured header is kept"
    );
    for (format, transform) in [
        (Format::Csv { header: None }, &newline),
        (Format::Ndjson, &csv),
        (parquet(ParquetCompression::Snappy), &csv),
    ] {
        let error = format.clone().for_transform(transform).expect_err("mismatch");
        assert_eq!(error.key, "format", "{format:?}");
    }
}

#[test]
fn formats_and_compressions_deserialize_from_weir_toml() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Delivery {
        #[serde(default)]
        format: Format,
        #[serde(default)]
        compression: Compression,
    }
    let parse = |text: &str| toml::from_str::<Delivery>(text);
    let plain = parse("").expect("defaults");
    assert_eq!((plain.format, plain.compression), (Format::Ndjson, Compression::None));
    let csv = parse("format = \"csv\"\ncompression = \"zstd\"").expect("valid");
    assert_eq!(
        (csv.format, csv.compression),
        (Format::Csv { header: None }, Compression::Zstd)
    );
    assert_eq!(
        parse("compression = \"uncompressed\"").expect("alias").compression,
        Compression::None
    );
    let table = parse(
        r#"format = { kind = "parquet", compression = "zstd", columns = [
             { name = "id", type = "integer" },
             { name = "name", pointer = "/user/name", type = "string", required = false },
           ] }"#,
    )
    .expect("valid");
    assert_eq!(
        table.format,
        Format::Parquet {
            columns: vec![
                column("id", None, ColumnType::Integer, true),
                column("name", Some("/user/name"), ColumnType::String, false),
            ],
            compression: ParquetCompression::Zstd,
            timestamp_unit: TimestampUnit::Microsecond,
        }
    );
    for (bad, says) in [
        ("format = \"parquet\"", "needs columns"),
        ("format = \"avro\"", "unknown variant"),
        ("format = { kind = \"csv\", colour = 1 }", "unknown field"),
        (
            "format = { kind = \"parquet\", columns = [], compression = \"lz4\" }",
            "unknown variant",
        ),
        ("compression = \"zip\"", "unknown variant"),
        ("compression = \"GZIP\"", "unknown variant"),
    ] {
        let error = parse(bad).expect_err(bad).to_string();
        assert!(error.contains(says), "{bad}: {error}");
    }
}

#[test]
fn objects_without_records_are_still_valid() {
    let csv = encode_object(
        &Format::Csv {
            header: Some("a".into()),
        },
        Compression::Gzip,
        &[],
    )
    .expect("encodes");
    assert_eq!(decompress(Compression::Gzip, &csv.body), b"a\n");
    let object = encode_object(&parquet(ParquetCompression::Snappy), Compression::None, &[]).expect("encodes");
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(object.body)).expect("a Parquet file");
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    assert_eq!(builder.schema().fields().len(), 6);
}

/// The repository's test venv (scripts/test.sh creates it from requirements-test.txt).
fn test_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-tests/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test.sh, which creates .venv-tests from requirements-test.txt",
        python.display()
    );
    python
}

#[test]
fn python_reads_gzip_zstd_and_parquet_objects() {
    let python = test_python();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let records = lines();
    let ndjson = records.concat();
    for (compression, name) in [(Compression::Gzip, "events.gz"), (Compression::Zstd, "events.zst")] {
        let object = encode_object(&Format::Ndjson, compression, &slices(&records)).expect("encodes");
        std::fs::write(dir.path().join(name), &object.body).expect("written");
    }
    let object = encode_object(
        &parquet(ParquetCompression::Snappy),
        Compression::None,
        &slices(&records),
    )
    .expect("encodes");
    std::fs::write(dir.path().join("events.parquet"), &object.body).expect("written");

    let script = r#"
import gzip, json, sys, zstandard, pyarrow.parquet as pq
d = sys.argv[1]
out = {}
out["gz"] = gzip.open(d + "/events.gz").read().decode()
out["zst"] = zstandard.ZstdDecompressor().decompress(open(d + "/events.zst", "rb").read()).decode()
t = pq.read_table(d + "/events.parquet")
out["schema"] = [[f.name, str(f.type), f.nullable] for f in t.schema]
rows = t.to_pylist()
for r in rows:
    r["at"] = r["at"].isoformat()
out["rows"] = rows
out["row_groups"] = pq.ParquetFile(d + "/events.parquet").metadata.num_row_groups
print(json.dumps(out))
"#;
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON from the script");
    let text = String::from_utf8(ndjson).expect("UTF-8");
    assert_eq!(read["gz"], text.as_str());
    assert_eq!(read["zst"], text.as_str());
    assert_eq!(read["row_groups"], 1);
    assert_eq!(
        read["schema"],
        serde_json::json!([
            ["id", "int64", false],
            ["name", "string", false],
            ["amount", "double", true],
            ["ok", "bool", false],
            ["at", "timestamp[us, tz=UTC]", false],
            ["tags", "string", true],
        ])
    );
    assert_eq!(
        read["rows"],
        serde_json::json!([
            {"id": 1, "name": "ada", "amount": 12.5, "ok": true, "at": "2024-02-21T05:12:33.500000+00:00", "tags": "[\"a\",\"b\"]"},
            {"id": 2, "name": "grace, \"amazing\"", "amount": null, "ok": false, "at": "2024-02-21T06:12:33.500000+00:00", "tags": null},
            {"id": -3, "name": "é☃\nline", "amount": null, "ok": true, "at": "1970-01-01T00:00:00+00:00", "tags": "{\"k\":[1,2.50]}"},
        ])
    );
}

//! Parquet objects: JSON records → typed Arrow columns → one Parquet file with one row group.
//!
//! | column type | Arrow / Parquet | accepts (the csv transform's rules) |
//! |---|---|---|
//! | `string` | `Utf8` / `BYTE_ARRAY (STRING)` | a JSON string |
//! | `integer` | `Int64` / `INT64` | a JSON integer in i64's range (not `1.0` or `1e3`) |
//! | `float` | `Float64` / `DOUBLE` | any finite JSON number |
//! | `boolean` | `Boolean` / `BOOLEAN` | `true` or `false` |
//! | `timestamp` | `Timestamp(unit, "UTC")` / `INT64 TIMESTAMP(isAdjustedToUTC, unit)` | an RFC 3339 string (years 0001–9999) or integer epoch milliseconds |
//! | `json` | `Utf8` / `BYTE_ARRAY (STRING)` | any value, stored as compact JSON text |
//!
//! A required column is a non-nullable field; an optional one is null when its value is missing or
//! `null`. A record that does not fit is reported with its index and left out; the object holds the
//! rest. One row group holds the whole object: a delivery buffer is at most 128 MiB, and one row group
//! per file is what Firehose's own writer aims for (its block size is ≥ 64 MiB). Pages and dictionaries
//! keep the writer's defaults (1 MiB pages, dictionary encoding on, page statistics).

use super::format::{ParquetCompression, TimestampUnit};
use super::json::{self, Path, Record};
use super::{EncodeError, code};
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use weir_core::transform::ProcessingError;
use weir_core::transform::csv::{ColumnType, CsvColumn};

/// The zone of every timestamp column: values are UTC instants.
const UTC: &str = "UTC";

/// The declared columns, compiled.
pub(super) struct Table {
    columns: Vec<Column>,
    schema: SchemaRef,
    unit: TimestampUnit,
}

struct Column {
    name: String,
    path: Path,
    kind: ColumnType,
    required: bool,
}

/// One converted value, borrowed from its record where it can be.
enum Cell<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// In the table's [`TimestampUnit`].
    Time(i64),
}

/// One Arrow array being built.
enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Micros(TimestampMicrosecondBuilder),
    Nanos(TimestampNanosecondBuilder),
}

impl Table {
    /// Compiles `columns`, already checked by [`Format::validate`](super::Format::validate).
    pub(super) fn new(columns: &[CsvColumn], unit: TimestampUnit) -> Table {
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| Field::new(&c.name, data_type(c.kind, unit), !c.required))
            .collect();
        Table {
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    path: Path::new(&c.name, c.pointer.as_deref()).expect("Format::validate checked the pointers"),
                    kind: c.kind,
                    required: c.required,
                })
                .collect(),
            schema: Arc::new(Schema::new(fields)),
            unit,
        }
    }

    /// The Parquet file of the records that fit, and the ones that do not.
    #[allow(clippy::type_complexity)]
    pub(super) fn encode(
        &self,
        records: &[&[u8]],
        compression: ParquetCompression,
    ) -> Result<(Vec<u8>, Vec<(usize, ProcessingError)>), EncodeError> {
        let data_bytes = records.iter().map(|r| r.len()).sum::<usize>();
        let mut builders: Vec<Builder> = self
            .columns
            .iter()
            .map(|c| Builder::new(c.kind, self.unit, records.len(), data_bytes / self.columns.len()))
            .collect();
        let mut failed = Vec::new();
        let mut row: Vec<Cell<'_>> = Vec::with_capacity(self.columns.len());
        for (index, record) in records.iter().enumerate() {
            row.clear();
            match self.convert(record, &mut row) {
                Ok(()) => {
                    for (builder, cell) in builders.iter_mut().zip(row.drain(..)) {
                        builder.append(cell);
                    }
                }
                Err(error) => failed.push((index, error)),
            }
        }
        let arrays: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| EncodeError::Parquet(e.to_string()))?;
        Ok((write(&batch, compression)?, failed))
    }

    /// Converts one record into `row`, one cell per column, or fails it.
    fn convert<'a>(&self, data: &'a [u8], row: &mut Vec<Cell<'a>>) -> Result<(), ProcessingError> {
        let record = Record::parse(data)?;
        let mut hint = 0;
        for column in &self.columns {
            let value = record.get(&column.path, &mut hint)?;
            row.push(column.cell(value, self.unit)?);
        }
        Ok(())
    }
}

impl Column {
    fn cell<'a>(&self, value: Option<&'a RawValue>, unit: TimestampUnit) -> Result<Cell<'a>, ProcessingError> {
        let value = match value {
            Some(value) if value.get() != "null" => value,
            found => {
                if self.required {
                    let what = if found.is_some() { "is null" } else { "is missing" };
                    return Err(ProcessingError::new(
                        code::MISSING_FIELD,
                        format!(
                            "column {:?} ({}) is required but the value at {} {what}",
                            self.name,
                            self.kind,
                            self.path.describe()
                        ),
                    ));
                }
                return Ok(Cell::Null);
            }
        };
        let text = value.get();
        let first = text.as_bytes().first().copied().unwrap_or_default();
        let is_number = matches!(first, b'-' | b'0'..=b'9');
        let mismatch = |detail: String| {
            ProcessingError::new(
                code::TYPE_MISMATCH,
                format!(
                    "column {:?} ({}) at {}: {detail}",
                    self.name,
                    self.kind,
                    self.path.describe()
                ),
            )
        };
        Ok(match self.kind {
            ColumnType::String if first == b'"' => Cell::Str(json::string(value)?),
            ColumnType::Integer if is_number => Cell::Int(integer(text).map_err(mismatch)?),
            ColumnType::Float if is_number => match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Cell::Float(n),
                _ => return Err(mismatch(format!("{text} is out of range for a float (f64)"))),
            },
            ColumnType::Boolean if matches!(text, "true" | "false") => Cell::Bool(text == "true"),
            ColumnType::Timestamp if first == b'"' => {
                let text = json::string(value)?;
                let time = DateTime::parse_from_rfc3339(&text)
                    .map_err(|e| mismatch(format!("{:?} is not an RFC 3339 timestamp ({e})", text.as_ref())))?;
                Cell::Time(instant(&time, unit).map_err(mismatch)?)
            }
            ColumnType::Timestamp if is_number => {
                let ms =
                    integer(text).map_err(|e| mismatch(format!("{e}; a number must be integer epoch milliseconds")))?;
                let time = DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| mismatch(format!("{ms} ms since the epoch is out of range")))?
                    .fixed_offset();
                Cell::Time(instant(&time, unit).map_err(mismatch)?)
            }
            ColumnType::Json => Cell::Str(weir_core::json::compact_str(text)),
            _ => {
                return Err(mismatch(format!(
                    "expected {}, found {}",
                    expected(self.kind),
                    json::kind_of(first)
                )));
            }
        })
    }
}

fn data_type(kind: ColumnType, unit: TimestampUnit) -> DataType {
    match kind {
        ColumnType::String | ColumnType::Json => DataType::Utf8,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => {
            let unit = match unit {
                TimestampUnit::Microsecond => TimeUnit::Microsecond,
                TimestampUnit::Nanosecond => TimeUnit::Nanosecond,
            };
            DataType::Timestamp(unit, Some(UTC.into()))
        }
    }
}

fn expected(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::String => "a string",
        ColumnType::Integer => "an integer",
        ColumnType::Float => "a number",
        ColumnType::Boolean => "true or false",
        ColumnType::Timestamp => "an RFC 3339 string or epoch milliseconds",
        ColumnType::Json => "any JSON value",
    }
}

/// A JSON number's text as an i64, refusing fractions and exponents.
fn integer(text: &str) -> Result<i64, String> {
    if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return Err(format!("expected an integer, found {text}"));
    }
    text.parse::<i64>()
        .map_err(|_| format!("{text} is out of range for an integer (i64)"))
}

/// The instant in `unit` since the Unix epoch, refusing what the unit cannot hold exactly.
fn instant(time: &DateTime<FixedOffset>, unit: TimestampUnit) -> Result<i64, String> {
    if !(1..=9999).contains(&time.year()) {
        return Err(format!("{} is outside the years 0001 to 9999", time.to_rfc3339()));
    }
    match unit {
        TimestampUnit::Microsecond => {
            if !time.nanosecond().is_multiple_of(1_000) {
                return Err(format!(
                    "{} has digits below the microsecond, which timestamp_unit = \"microsecond\" would lose; \
                     use \"nanosecond\"",
                    time.to_rfc3339()
                ));
            }
            Ok(time.timestamp_micros())
        }
        TimestampUnit::Nanosecond => time.timestamp_nanos_opt().ok_or_else(|| {
            format!(
                "{} is outside the years 1677 to 2262 that nanosecond timestamps hold; use timestamp_unit = \
                 \"microsecond\"",
                time.to_rfc3339()
            )
        }),
    }
}

impl Builder {
    fn new(kind: ColumnType, unit: TimestampUnit, rows: usize, text_bytes: usize) -> Builder {
        match (kind, unit) {
            (ColumnType::String | ColumnType::Json, _) => Builder::Str(StringBuilder::with_capacity(rows, text_bytes)),
            (ColumnType::Integer, _) => Builder::Int(Int64Builder::with_capacity(rows)),
            (ColumnType::Float, _) => Builder::Float(Float64Builder::with_capacity(rows)),
            (ColumnType::Boolean, _) => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            (ColumnType::Timestamp, TimestampUnit::Microsecond) => {
                Builder::Micros(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC))
            }
            (ColumnType::Timestamp, TimestampUnit::Nanosecond) => {
                Builder::Nanos(TimestampNanosecondBuilder::with_capacity(rows).with_timezone(UTC))
            }
        }
    }

    /// Appends a cell; [`Column::cell`] only makes cells of the column's type.
    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
            (Builder::Int(b), Cell::Int(n)) => b.append_value(n),
            (Builder::Float(b), Cell::Float(n)) => b.append_value(n),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Builder::Micros(b), Cell::Time(t)) => b.append_value(t),
            (Builder::Nanos(b), Cell::Time(t)) => b.append_value(t),
            (Builder::Str(b), _) => b.append_null(),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Float(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Micros(b), _) => b.append_null(),
            (Builder::Nanos(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Str(mut b) => Arc::new(b.finish()),
            Builder::Int(mut b) => Arc::new(b.finish()),
            Builder::Float(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Micros(mut b) => Arc::new(b.finish()),
            Builder::Nanos(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Writes `batch` as one Parquet file with one row group.
fn write(batch: &RecordBatch, compression: ParquetCompression) -> Result<Vec<u8>, EncodeError> {
    let codec = match compression {
        ParquetCompression::Uncompressed => Codec::UNCOMPRESSED,
        ParquetCompression::Snappy => Codec::SNAPPY,
        ParquetCompression::Gzip => Codec::GZIP(GzipLevel::default()),
        ParquetCompression::Zstd => Codec::ZSTD(ZstdLevel::default()),
    };
    let properties = WriterProperties::builder()
        .set_compression(codec)
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .build();
    let failed = |e: parquet::errors::ParquetError| EncodeError::Parquet(e.to_string());
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).map_err(failed)?;
    writer.write(batch).map_err(failed)?;
    writer.into_inner().map_err(failed)
}

//! [`Format`]: what an object holds, as configured in weir.toml, and the rules on combining it with a
//! compression and a transform.
//!
//! ```toml
//! format = "ndjson"                       # the default: the transform's JSON lines
//! compression = "gzip"                    # none | gzip | zstd | snappy
//!
//! format = "csv"                          # the csv transform's lines, under its header line
//!
//! [deliveries.format]                     # Parquet, typed by the columns (the csv transform's syntax)
//! kind = "parquet"
//! compression = "snappy"                  # inside the file: uncompressed | snappy | gzip | zstd
//! timestamp_unit = "microsecond"          # or "nanosecond"
//! columns = [
//!   { name = "user_id", pointer = "/user/id", type = "integer" },
//!   { name = "event", type = "string" },
//!   { name = "amount", type = "float", required = false },
//! ]
//! ```

use super::compression::Compression;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::fmt;
use weir_core::ingest::JsonPointer;
use weir_core::transform::TransformSpec;
use weir_core::transform::csv::CsvColumn;

/// What an object holds. Deserializes from `"ndjson"` or `"csv"`, or from a table with `kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Format {
    /// JSON lines, as the `newline` and `flatten` transforms write them.
    #[default]
    Ndjson,
    /// The `csv` transform's lines.
    Csv {
        /// The line the object starts with (a trailing `\n` is added if missing). In configuration,
        /// `None` means the csv transform's own header, filled in by [`Format::for_transform`]; at
        /// encoding, `None` writes no header (weir's Snowflake file format skips one header line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
    },
    /// Firehose's record format conversion: JSON objects to Parquet with a declared schema.
    Parquet {
        /// The columns, in order; the csv transform's syntax and type rules.
        columns: Vec<CsvColumn>,
        /// The compression of the file's pages.
        #[serde(default)]
        compression: ParquetCompression,
        /// The unit of `timestamp` columns.
        #[serde(default)]
        timestamp_unit: TimestampUnit,
    },
}

/// The codec inside a Parquet file (Firehose's ParquetSerDe `Compression`, plus zstd).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    /// Pages stored as encoded.
    Uncompressed,
    /// Firehose's default: fast, and what Athena, Snowflake and Spark read best.
    #[default]
    Snappy,
    /// Smaller and much slower to write.
    Gzip,
    /// zstd level 3: about gzip's size at near Snappy's speed. Not a Firehose choice.
    Zstd,
}

impl ParquetCompression {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ParquetCompression::Uncompressed => "uncompressed",
            ParquetCompression::Snappy => "snappy",
            ParquetCompression::Gzip => "gzip",
            ParquetCompression::Zstd => "zstd",
        }
    }
}

/// How `timestamp` columns are stored: both are UTC instants (`Timestamp(unit, "UTC")` in Arrow,
/// `TIMESTAMP(isAdjustedToUTC = true)` in Parquet). The offset a string was written with is not kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Microseconds: every year the csv transform accepts (0001–9999). A timestamp with a nonzero digit
    /// below the microsecond fails its record rather than losing it.
    #[default]
    Microsecond,
    /// Nanoseconds: every digit an RFC 3339 string can carry, for the years 1677–2262 that an i64 of
    /// nanoseconds reaches; a timestamp outside them fails its record.
    Nanosecond,
}

/// A format that does not go with its compression or transform, or an invalid column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct FormatError {
    /// The setting at fault, e.g. `compression` or `format.columns[2].pointer`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FormatError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> FormatError {
        FormatError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Format {
    /// `ndjson`, `csv` or `parquet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv { .. } => "csv",
            Format::Parquet { .. } => "parquet",
        }
    }

    /// Checks the format's own settings and its combination with the object's compression.
    pub fn validate(&self, compression: Compression) -> Result<(), FormatError> {
        let Format::Parquet { columns, .. } = self else {
            return Ok(());
        };
        if compression != Compression::None {
            return Err(FormatError::new(
                "compression",
                format!(
                    "a Parquet object is compressed inside (format.compression), so the object's compression \
                     must be \"none\", not {compression:?}; Firehose likewise requires UNCOMPRESSED when record \
                     format conversion is enabled",
                    compression = compression.as_str()
                ),
            ));
        }
        validate_columns(columns)
    }

    /// Checks the format against the delivery's transform and completes it: a csv object's header
    /// defaults to the transform's. NDJSON and Parquet need JSON records (`newline` or `flatten`); CSV
    /// needs the `csv` transform.
    pub fn for_transform(self, transform: &TransformSpec) -> Result<Format, FormatError> {
        let transform_kind = transform.kind();
        match (&self, transform_kind) {
            (Format::Csv { .. }, "csv") | (Format::Ndjson | Format::Parquet { .. }, "newline" | "flatten") => {}
            (Format::Csv { .. }, _) => {
                return Err(FormatError::new(
                    "format",
                    format!("a csv object needs the csv transform, not {transform_kind:?}"),
                ));
            }
            (_, _) => {
                return Err(FormatError::new(
                    "format",
                    format!(
                        "{} objects need JSON records from the newline or flatten transform, not {transform_kind:?} \
                         (use format = \"csv\" with the csv transform)",
                        self.kind()
                    ),
                ));
            }
        }
        Ok(match self {
            Format::Csv { header: None } => Format::Csv {
                header: transform
                    .header()
                    .map(|line| String::from_utf8_lossy(&line).into_owned()),
            },
            other => other,
        })
    }
}

/// The header as written into the object: exactly one trailing `\n`.
pub(super) fn header_line(header: &str) -> Cow<'_, str> {
    if header.ends_with('\n') {
        Cow::Borrowed(header)
    } else {
        Cow::Owned(format!("{header}\n"))
    }
}

/// At least one column; names unique and not empty; pointers valid.
fn validate_columns(columns: &[CsvColumn]) -> Result<(), FormatError> {
    if columns.is_empty() {
        return Err(FormatError::new(
            "format.columns",
            "a Parquet format needs at least one column",
        ));
    }
    for (i, column) in columns.iter().enumerate() {
        if column.name.is_empty() {
            return Err(FormatError::new(
                format!("format.columns[{i}].name"),
                "the name must not be empty",
            ));
        }
        if columns[..i].iter().any(|c| c.name == column.name) {
            return Err(FormatError::new(
                format!("format.columns[{i}].name"),
                format!("{:?} names two columns", column.name),
            ));
        }
        if let Some(pointer) = column.pointer.as_deref().filter(|p| !p.is_empty()) {
            JsonPointer::parse(pointer).map_err(|e| FormatError::new(format!("format.columns[{i}].pointer"), e))?;
        }
    }
    Ok(())
}

/// The table form, `kind` naming the variant.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Tagged {
    Ndjson,
    Csv {
        #[serde(default)]
        header: Option<String>,
    },
    Parquet {
        columns: Vec<CsvColumn>,
        #[serde(default)]
        compression: ParquetCompression,
        #[serde(default)]
        timestamp_unit: TimestampUnit,
    },
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Format, D::Error> {
        struct FormatVisitor;

        impl<'de> Visitor<'de> for FormatVisitor {
            type Value = Format;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a format: \"ndjson\", \"csv\", or a table with `kind` and its settings")
            }

            fn visit_str<E: de::Error>(self, kind: &str) -> Result<Format, E> {
                match kind {
                    "ndjson" => Ok(Format::Ndjson),
                    "csv" => Ok(Format::Csv { header: None }),
                    "parquet" => Err(E::custom(
                        "a parquet format needs columns: write format = { kind = \"parquet\", columns = [...] }",
                    )),
                    other => Err(E::unknown_variant(other, &["ndjson", "csv", "parquet"])),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Format, A::Error> {
                Ok(match Tagged::deserialize(de::value::MapAccessDeserializer::new(map))? {
                    Tagged::Ndjson => Format::Ndjson,
                    Tagged::Csv { header } => Format::Csv { header },
                    Tagged::Parquet {
                        columns,
                        compression,
                        timestamp_unit,
                    } => Format::Parquet {
                        columns,
                        compression,
                        timestamp_unit,
                    },
                })
            }
        }

        deserializer.deserialize_any(FormatVisitor)
    }
}

//! Object formats and compression: a batch's transformed records in, one object's bytes out.
//!
//! The delivery calls [`encode_object`] once per object with the data of the records the transform
//! returned `Ok`, in order. What comes back is the object's body, its extension and content type, and
//! the records that could not be converted (Parquet only), which go to the error output under
//! Firehose's `format-conversion-failed` type and are left out of the object.
//!
//! | format | records are | object |
//! |---|---|---|
//! | [`Format::Ndjson`] | JSON lines from `newline` or `flatten`, each ending in `\n` | concatenated |
//! | [`Format::Csv`] | lines from the `csv` transform | the header line (if any), then the lines |
//! | [`Format::Parquet`] | one JSON object each | one Parquet file with one row group, typed by the declared columns |
//!
//! # Firehose's choices, and weir's additions
//! - Firehose's S3 `CompressionFormat` is `UNCOMPRESSED | GZIP | ZIP | Snappy | HADOOP_SNAPPY` (Firehose
//!   API reference, `ExtendedS3DestinationConfiguration`). weir offers none, gzip and Snappy with
//!   Firehose's extensions (`.gz`, `.snappy`; uncompressed objects have none), and adds zstd (`.zst`),
//!   which Firehose does not offer for S3 objects. ZIP and HADOOP_SNAPPY are not implemented.
//! - Firehose's `Snappy` is the Snappy framing format (stream identifier + CRC-checked chunks), which
//!   `python-snappy`'s `StreamDecompressor` and `snap::read::FrameDecoder` read. HADOOP_SNAPPY is
//!   Hadoop's block format, a different layout.
//! - Parquet: with record format conversion on, Firehose disables the S3 compression and compresses
//!   inside the file (ParquetSerDe `Compression`: UNCOMPRESSED, GZIP, SNAPPY; default SNAPPY). weir
//!   refuses an outer compression with Parquet for the same reason and adds zstd inside. Objects get
//!   `.parquet`.
//!
//! # Sizes
//! `encode_object` takes the uncompressed records: Firehose's buffer size counts bytes before
//! compression, so the caller sizes its buffer (≤ 128 MiB) on the records' data and hands the whole
//! buffer here. The body is built in memory: about the compressed size for NDJSON and CSV, and the
//! Arrow columns plus the encoded file for Parquet.

mod compression;
mod format;
mod json;
mod parquet_file;

pub use compression::Compression;
pub use format::{Format, FormatError, ParquetCompression, TimestampUnit};

use std::borrow::Cow;
use weir_core::transform::ProcessingError;

/// The `errorCode`s of records that could not be converted to the object's format.
pub mod code {
    /// The record is not UTF-8 JSON.
    pub const INVALID_JSON: &str = "Format.InvalidJson";
    /// The record is JSON but not an object.
    pub const NOT_AN_OBJECT: &str = "Format.NotAnObject";
    /// An object on a column's path has a key twice, so the value is ambiguous.
    pub const DUPLICATE_KEY: &str = "Format.DuplicateKey";
    /// A required column has no value (missing or `null`).
    pub const MISSING_FIELD: &str = "Format.MissingField";
    /// A column's value is not of the column's type, or out of its range.
    pub const TYPE_MISMATCH: &str = "Format.TypeMismatch";
}

/// The error output type of records that [`EncodedObject::failed`] lists, for
/// `!{firehose:error-output-type}`.
pub const ERROR_OUTPUT_TYPE: &str = "format-conversion-failed";

/// One object, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedObject {
    /// The object's bytes.
    pub body: Vec<u8>,
    /// Appended to the key: `""`, `.gz`, `.zst`, `.snappy` or `.parquet`.
    pub extension: &'static str,
    /// The object's `Content-Type`.
    pub content_type: &'static str,
    /// Records left out of the object, by their index in the input, with why.
    pub failed: Vec<(usize, ProcessingError)>,
    /// How many records the object holds.
    pub records: usize,
}

/// The object could not be built at all (not a record's fault).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The format and compression do not go together; see [`Format::validate`].
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The compressor failed (it writes to memory, so this is a bug or an allocation failure).
    #[error("{compression} compression failed: {source}")]
    Compress {
        /// The compression in use.
        compression: Compression,
        /// The compressor's error.
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("writing Parquet failed: {0}")]
    Parquet(String),
}

/// Encodes one object from `records`, the transformed records' data (uncompressed), in order.
///
/// NDJSON and CSV copy the records as they are (the transforms made them lines); Parquet parses each
/// record against the declared columns and lists the ones that do not fit in
/// [`EncodedObject::failed`]. With no records, the object is still valid (a CSV object is its header);
/// whether to write it is the caller's decision.
pub fn encode_object(
    format: &Format,
    compression: Compression,
    records: &[&[u8]],
) -> Result<EncodedObject, EncodeError> {
    format.validate(compression)?;
    match format {
        Format::Ndjson => concatenated(None, compression, records, "application/x-ndjson"),
        Format::Csv { header } => {
            let header = header.as_deref().map(format::header_line);
            concatenated(header, compression, records, "text/csv")
        }
        Format::Parquet {
            columns,
            compression: inner,
            timestamp_unit,
        } => {
            let table = parquet_file::Table::new(columns, *timestamp_unit);
            let (body, failed) = table.encode(records, *inner)?;
            Ok(EncodedObject {
                body,
                extension: ".parquet",
                content_type: "application/vnd.apache.parquet",
                records: records.len() - failed.len(),
                failed,
            })
        }
    }
}

fn concatenated(
    header: Option<Cow<'_, str>>,
    compression: Compression,
    records: &[&[u8]],
    content_type: &'static str,
) -> Result<EncodedObject, EncodeError> {
    let size = header.as_ref().map_or(0, |h| h.len()) + records.iter().map(|r| r.len()).sum::<usize>();
    let mut writer = compression::Writer::new(compression, size)?;
    if let Some(header) = &header {
        writer.write(header.as_bytes())?;
    }
    for record in records {
        writer.write(record)?;
    }
    Ok(EncodedObject {
        body: writer.finish()?,
        extension: compression.extension(),
        content_type: compression.content_type().unwrap_or(content_type),
        failed: Vec::new(),
        records: records.len(),
    })
}

//! The compression around an NDJSON or CSV object, streamed: records go into the compressor one by
//! one, so the uncompressed object is never built in memory.

use super::EncodeError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;

/// gzip's level: flate2's default, zlib's 6, the usual speed/size balance (Firehose does not say
/// which level it uses).
const GZIP_LEVEL: u32 = 6;

/// zstd's level: the library's default, ~7× faster than gzip 6 here at a similar ratio.
const ZSTD_LEVEL: i32 = 3;

/// How an NDJSON or CSV object is compressed: `compression = "gzip"` in weir.toml.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Firehose's `UNCOMPRESSED`; no extension.
    #[default]
    #[serde(alias = "uncompressed")]
    None,
    /// Firehose's `GZIP`: one gzip member, `.gz`.
    Gzip,
    /// Zstandard, one frame with its content size, `.zst`. Not a Firehose choice (its S3 compression
    /// formats are UNCOMPRESSED, GZIP, ZIP, Snappy and HADOOP_SNAPPY): weir's addition.
    Zstd,
    /// Firehose's `Snappy`: the Snappy framing format, `.snappy`.
    Snappy,
}

impl Compression {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
        }
    }

    /// What Firehose appends to the key (`.zst` for weir's zstd).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::Snappy => ".snappy",
        }
    }

    /// Decompresses an object written with this compression, streaming (the warehouse loader reads
    /// objects through it). gzip reads every member, as `gunzip` does.
    pub fn reader<'r>(self, compressed: impl std::io::Read + 'r) -> Box<dyn std::io::Read + 'r> {
        match self {
            Compression::None => Box::new(compressed),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            Compression::Zstd => match zstd::stream::read::Decoder::new(compressed) {
                Ok(decoder) => Box::new(decoder),
                // Only allocating the decoder's context can fail: report it when read.
                Err(e) => Box::new(FailingReader(Some(e))),
            },
            Compression::Snappy => Box::new(snap::read::FrameDecoder::new(compressed)),
        }
    }

    /// The compressed object's content type; `None` when uncompressed (the format's own type).
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("application/gzip"),
            Compression::Zstd => Some("application/zstd"),
            Compression::Snappy => Some("application/x-snappy-framed"),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reader whose first read returns an error.
struct FailingReader(Option<std::io::Error>);

impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| std::io::Error::other("decoder unavailable")))
    }
}

/// A compressor writing into memory.
pub(super) enum Writer {
    None(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::Encoder<'static, Vec<u8>>),
    /// Boxed: the encoder keeps its 64 KiB-block state inline (~2 KiB).
    Snappy(Box<snap::write::FrameEncoder<Vec<u8>>>),
}

impl Writer {
    /// A compressor for an object of `size` uncompressed bytes.
    pub(super) fn new(compression: Compression, size: usize) -> Result<Writer, EncodeError> {
        let failed = |source| EncodeError::Compress { compression, source };
        Ok(match compression {
            Compression::None => Writer::None(Vec::with_capacity(size)),
            // A guess of the compressed size that avoids most reallocations of large objects.
            Compression::Gzip => Writer::Gzip(flate2::write::GzEncoder::new(
                Vec::with_capacity(size / 4),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Compression::Zstd => {
                let mut encoder =
                    zstd::stream::Encoder::new(Vec::with_capacity(size / 4), ZSTD_LEVEL).map_err(failed)?;
                // With the size in the frame header, one-shot decoders (Python's
                // `zstandard.decompress`) know how much to allocate.
                encoder.set_pledged_src_size(Some(size as u64)).map_err(failed)?;
                encoder.include_contentsize(true).map_err(failed)?;
                Writer::Zstd(encoder)
            }
            Compression::Snappy => {
                Writer::Snappy(Box::new(snap::write::FrameEncoder::new(Vec::with_capacity(size / 2))))
            }
        })
    }

    pub(super) fn compression(&self) -> Compression {
        match self {
            Writer::None(_) => Compression::None,
            Writer::Gzip(_) => Compression::Gzip,
            Writer::Zstd(_) => Compression::Zstd,
            Writer::Snappy(_) => Compression::Snappy,
        }
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let result = match self {
            Writer::None(out) => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            Writer::Gzip(encoder) => encoder.write_all(bytes),
            Writer::Zstd(encoder) => encoder.write_all(bytes),
            Writer::Snappy(encoder) => encoder.write_all(bytes),
        };
        result.map_err(|source| EncodeError::Compress {
            compression: self.compression(),
            source,
        })
    }

    pub(super) fn finish(self) -> Result<Vec<u8>, EncodeError> {
        let compression = self.compression();
        let result = match self {
            Writer::None(out) => Ok(out),
            Writer::Gzip(encoder) => encoder.finish(),
            Writer::Zstd(encoder) => encoder.finish(),
            Writer::Snappy(encoder) => encoder.into_inner().map_err(|e| e.into_error()),
        };
        result.map_err(|source| EncodeError::Compress { compression, source })
    }
}

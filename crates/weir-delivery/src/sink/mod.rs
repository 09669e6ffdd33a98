//! Where objects go. A sink's `put` returns only once the object is durable under its key, and
//! writing the same key twice leaves one object: delivery's replays rely on both.
//!
//! - [`LocalDirSink`]: a local directory (the default bucket of `weir up`).
//! - [`S3Sink`]: any S3-compatible store through `object_store`, configured by [`S3Config`]; its
//!   credentials come from the standard AWS chain, with the shared files read by [`aws_profile`].
//!
//! `tests/sink_conformance.rs` runs one suite against every backend.

pub mod aws_profile;
mod local;
mod s3;
mod s3_config;

use std::io;

pub use local::LocalDirSink;
pub use s3::{MULTIPART_THRESHOLD, S3Sink, S3SinkError};
pub use s3_config::{DEFAULT_RETRY_DURATION, MAX_RETRY_DURATION, S3Config};

/// The destination of delivered objects. Synchronous on purpose: delivery calls it from a blocking
/// thread, and a local directory needs no runtime.
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// Stores `body` under `key` (a relative, `/`-separated object key), replacing any object there.
    fn put(&self, key: &str, body: &[u8]) -> io::Result<()>;
    /// Where objects land, for people (`/data/bucket`, `s3://bucket/prefix`).
    fn location(&self) -> String;
    /// The first `max_bytes` bytes of the object at `key` (for previews).
    fn read_head(&self, key: &str, max_bytes: usize) -> io::Result<Vec<u8>>;
    /// The file holding the object at `key`, when the sink keeps objects as local files (the warehouse
    /// then links it into its staging directory instead of copying it).
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// The whole object at `key` (redrive reads error-output objects).
    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        self.read_head(key, usize::MAX)
    }
    /// Every object key that starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
}

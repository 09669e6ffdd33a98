//! weir-stream: an embedded, durable, sharded, append-only stream with Kinesis Data Streams semantics.
//!
//! # Model
//! A stream has a fixed number of shards. A record (1 byte to 1 MiB of data, a 1–256 character
//! partition key, an optional explicit hash key) is routed exactly as Kinesis routes it (see
//! [`weir_core::kinesis`]) and gets the next sequence number of its shard: offsets 0, 1, 2, … with no
//! gaps, printed as fixed-width decimal strings ([`SequenceNumber`]). Every record carries its arrival
//! time (epoch ms), non-decreasing along the stream. Readers use Kinesis's iterator types; named
//! consumers keep durable per-shard checkpoints.
//!
//! # Storage
//! One write-ahead log per stream, split into segment files `segments/<id:020>.seg` (layout in
//! [`format`]). A batch becomes one CRC-checked frame per shard it touches, written back to back with
//! the last one flagged, so a batch is atomic across shards and one fsync covers a whole group of
//! batches from many appenders (group commit, see [`writer`]). Readers of one shard skip other
//! shards' frames by their header. An in-memory sparse index (one point per shard per 64 KiB) and
//! each segment's header (every shard's next sequence number at creation) locate any record.
//!
//! # Invariants
//! 1. An append is acknowledged only after its bytes are fsynced (with the default
//!    [`SyncPolicy::Always`]); readers only ever see fsynced records, under every policy.
//! 2. A batch is all or nothing: recovery cuts frames after the last batch-end flag.
//! 3. Only the last segment can have a torn tail; recovery truncates it and logs file, offset, bytes
//!    and records kept. Damage anywhere else is reported as corruption with its position.
//! 4. Sequence numbers are never reused: segment headers carry the numbering across retention, and
//!    failed appends are rolled back before anything is published.
//! 5. Retention removes whole segments, oldest first, never the active one, and never records a
//!    registered consumer has not checkpointed past, unless the hard disk cap forces it (logged at
//!    ERROR and counted).
//! 6. A directory is fsynced whenever a segment or checkpoint file is created, renamed or removed.
//!
//! # Layout
//! - [`stream`]: [`Stream`], opening, appending, consumers, retention, statistics.
//! - [`reader`]: iterators and reads.
//! - [`writer`]: the writer thread: group commit, segment rolling, failure rollback, retention.
//! - [`recovery`]: replaying segments at open.
//! - [`format`]: byte layout of segments and frames.
//! - [`state`]: the in-memory index readers and the writer share.
//! - [`consumers`]: named consumers' checkpoint files.
//! - [`vfs`]: the file-system seam, with a fault-injecting implementation for tests.

pub mod config;
mod consumers;
pub mod direct;
pub mod error;
pub mod format;
mod reader;
mod recovery;
mod state;
mod stream;
pub mod types;
pub mod vfs;
pub mod writer;

pub use config::{ConfigError, RecoveryMode, StreamConfig, SyncPolicy};
pub use consumers::valid_name;
pub use error::{AppendError, CheckpointError, OpenError, ReadError};
pub use stream::{ShardStats, Stream, StreamStats, stored_shard_count};
pub use types::{
    Clock, ManualClock, PutRecord, PutResult, ReadBatch, ReadLimits, Record, SequenceNumber, ShardId, ShardIterator,
    ShardIteratorType, SystemClock,
};
pub use writer::RetentionReport;

/// Most records in one appended batch.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Most bytes (data plus partition keys) in one appended batch. The HTTP API's own limits are lower.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

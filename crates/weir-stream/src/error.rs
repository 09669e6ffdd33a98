//! One error enum per operation family.

use std::io;
use std::path::PathBuf;
use weir_core::kinesis::RecordError;

use crate::config::ConfigError;
use crate::types::{SequenceNumber, ShardId};

/// Opening (and recovering) a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid stream name {0:?}: use 1 to 128 of A-Z a-z 0-9 _ . -")]
    InvalidName(String),
    #[error("stream has {on_disk} shards on disk but {configured} are configured; resharding is not supported")]
    ShardCountMismatch { on_disk: u32, configured: u32 },
    #[error("stream is already open (locked: {0}); only one process may open a stream")]
    Locked(PathBuf),
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// An append was not acknowledged. Nothing of the batch is stored (or, if some bytes reached the disk,
/// recovery removes them: an unacknowledged batch never becomes readable in part).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("a batch needs at least one record")]
    EmptyBatch,
    #[error("record {index}: {source}")]
    InvalidRecord { index: usize, source: RecordError },
    #[error(
        "batch of {records} records and {bytes} bytes exceeds the limit of {max_records} records and {max_bytes} bytes"
    )]
    BatchTooLarge {
        records: usize,
        bytes: usize,
        max_records: usize,
        max_bytes: usize,
    },
    /// The disk is full. The stream stays usable and accepts appends again once there is space.
    #[error("disk full: {0}")]
    DiskFull(io::Error),
    /// The write or fsync failed. The stream stays usable if the writer could roll the file back.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// Too many bytes are queued for the writer (only `try_append`).
    #[error("stream writer is overloaded; retry later")]
    Overloaded,
    /// The writer stopped after an error it could not roll back; reopen the stream.
    #[error("stream writer stopped: {0}")]
    Poisoned(String),
    #[error("stream is closed")]
    Closed,
}

impl AppendError {
    /// The error for a failed write or fsync, keeping a full disk apart.
    pub(crate) fn from_io(e: &io::Error) -> AppendError {
        let copy = io::Error::new(e.kind(), e.to_string());
        if e.kind() == io::ErrorKind::StorageFull {
            AppendError::DiskFull(copy)
        } else {
            AppendError::Io(copy)
        }
    }
}

/// Creating an iterator or reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("unknown shard {0}")]
    UnknownShard(ShardId),
    #[error("sequence number {sequence_number} does not belong to {shard}")]
    WrongShard {
        sequence_number: SequenceNumber,
        shard: ShardId,
    },
    #[error("sequence number {0} has not been assigned yet")]
    FutureSequenceNumber(SequenceNumber),
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("I/O error reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Registering a consumer or checkpointing failed; the previous checkpoint is still in force.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("invalid consumer name {0:?}: use 1 to 128 of A-Z a-z 0-9 _ . -")]
    InvalidName(String),
    #[error("unknown consumer {0:?}; register it first")]
    UnknownConsumer(String),
    #[error("sequence number {0} is not one of this stream's records")]
    InvalidSequenceNumber(SequenceNumber),
    #[error("I/O error writing checkpoint {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

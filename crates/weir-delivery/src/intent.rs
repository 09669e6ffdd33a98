//! Batch intents: a batch's boundaries, made durable before its object is written.
//!
//! Without them a restart would cut the buffer differently (the interval timer starts over), name the
//! object differently, and duplicate records that an earlier, uncheckpointed object already holds.
//! With them, a restart finds the intent, rebuilds exactly that batch from the stream, and rewrites the
//! same object under the same key. One file per shard, replaced atomically.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use weir_stream::vfs::{StdVfs, Vfs};
use weir_stream::{SequenceNumber, ShardId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchIntent {
    pub shard_id: String,
    pub first_sequence_number: String,
    pub last_sequence_number: String,
}

impl BatchIntent {
    pub fn new(first: SequenceNumber, last: SequenceNumber) -> BatchIntent {
        BatchIntent {
            shard_id: first.shard.to_string(),
            first_sequence_number: first.to_string(),
            last_sequence_number: last.to_string(),
        }
    }

    /// The parsed boundaries; `Err` names what is wrong with the file.
    pub fn bounds(&self) -> Result<(SequenceNumber, SequenceNumber), String> {
        let first: SequenceNumber = self
            .first_sequence_number
            .parse()
            .map_err(|e: weir_stream::types::InvalidId| e.0)?;
        let last: SequenceNumber = self
            .last_sequence_number
            .parse()
            .map_err(|e: weir_stream::types::InvalidId| e.0)?;
        let shard: ShardId = self.shard_id.parse().map_err(|e: weir_stream::types::InvalidId| e.0)?;
        if first.shard != shard || last.shard != shard || first.offset > last.offset {
            return Err(format!("inconsistent batch intent {self:?}"));
        }
        Ok((first, last))
    }
}

#[derive(Debug, Clone)]
pub struct IntentStore {
    dir: PathBuf,
}

impl IntentStore {
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<IntentStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(IntentStore { dir })
    }

    fn path(&self, shard: ShardId) -> PathBuf {
        self.dir.join(format!("intent-{shard}.json"))
    }

    /// Records the batch durably (atomic replace of the shard's intent).
    pub fn record(&self, intent: &BatchIntent, shard: ShardId) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(intent).map_err(io::Error::other)?;
        let vfs: &dyn Vfs = &StdVfs;
        vfs.write_atomic(&self.path(shard), &bytes)
    }

    /// The shard's last recorded intent, if any.
    pub fn load(&self, shard: ShardId) -> io::Result<Option<BatchIntent>> {
        match std::fs::read(self.path(shard)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.path(shard).display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

//! Named consumers and their durable per-shard checkpoints.
//!
//! Each consumer is one JSON file, `consumers/<name>.json`, replaced atomically (temporary file, fsync,
//! rename, directory fsync) on every checkpoint, so after a crash a consumer resumes exactly after the
//! last checkpoint that was acknowledged. Registered consumers also hold back retention: a segment is
//! not removed (short of the hard disk cap) while a consumer has not checkpointed past it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{CheckpointError, OpenError};
use crate::types::{SequenceNumber, ShardId};
use crate::vfs::Vfs;

const SUFFIX: &str = ".json";

/// The file's shape. Sequence numbers are strings, as everywhere in the API.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerFile {
    consumer: String,
    checkpoints: BTreeMap<String, String>,
}

/// Per consumer, per shard: the offset of the last record it has processed, if any.
type Checkpoints = Vec<Option<u64>>;

#[derive(Debug)]
pub(crate) struct ConsumerStore {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    shard_count: usize,
    /// Held across the file write, so concurrent checkpoints of one stream are serialized and the
    /// file and the map never disagree.
    consumers: Mutex<HashMap<String, Checkpoints>>,
}

/// Whether `name` is a valid stream or consumer name: 1 to 128 of `A-Z a-z 0-9 _ . -` (Kinesis's rule).
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl ConsumerStore {
    pub fn load(vfs: Arc<dyn Vfs>, dir: PathBuf, shard_count: usize) -> Result<ConsumerStore, OpenError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        vfs.create_dir_all(&dir).map_err(io(&dir))?;
        let mut consumers = HashMap::new();
        for name in vfs.list(&dir).map_err(io(&dir))? {
            let path = dir.join(&name);
            if name.ends_with(".tmp") {
                // An interrupted checkpoint: the previous file is still in force.
                vfs.remove_file(&path).map_err(io(&path))?;
                continue;
            }
            let Some(consumer) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            let corrupt = |reason: String| OpenError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason,
            };
            let bytes = vfs.read_to_end(&path).map_err(io(&path))?;
            let file: ConsumerFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
            if file.consumer != consumer {
                return Err(corrupt(format!("names consumer {:?}", file.consumer)));
            }
            let mut checkpoints = vec![None; shard_count];
            for (shard, seq) in &file.checkpoints {
                let shard: ShardId = shard.parse().map_err(|e: crate::types::InvalidId| corrupt(e.0))?;
                let seq: SequenceNumber = seq.parse().map_err(|e: crate::types::InvalidId| corrupt(e.0))?;
                if seq.shard != shard || shard.0 as usize >= shard_count {
                    return Err(corrupt(format!("checkpoint {seq} does not fit {shard}")));
                }
                checkpoints[shard.0 as usize] = Some(seq.offset);
            }
            consumers.insert(consumer.to_owned(), checkpoints);
        }
        Ok(ConsumerStore {
            dir,
            vfs,
            shard_count,
            consumers: Mutex::new(consumers),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Checkpoints>> {
        self.consumers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, name: &str, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        let file = ConsumerFile {
            consumer: name.to_owned(),
            checkpoints: checkpoints
                .iter()
                .enumerate()
                .filter_map(|(shard, offset)| {
                    let shard = ShardId(shard as u32);
                    offset.map(|offset| (shard.to_string(), SequenceNumber { shard, offset }.to_string()))
                })
                .collect(),
        };
        let path = self.dir.join(format!("{name}{SUFFIX}"));
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| CheckpointError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.vfs
            .write_atomic(&path, &bytes)
            .map_err(|source| CheckpointError::Io { path, source })
    }

    /// Registers `name` (idempotent). A new consumer starts at each shard's trim horizon
    /// (`trim_seq`) and protects every retained record until it checkpoints.
    pub fn register(&self, name: &str, trim_seq: &[u64]) -> Result<(), CheckpointError> {
        if !valid_name(name) {
            return Err(CheckpointError::InvalidName(name.to_owned()));
        }
        let mut consumers = self.lock();
        if consumers.contains_key(name) {
            return Ok(());
        }
        // "Processed up to just before the horizon": a later forced removal then shows up as skipped.
        let checkpoints: Checkpoints = trim_seq.iter().map(|&trim| trim.checked_sub(1)).collect();
        self.write(name, &checkpoints)?;
        consumers.insert(name.to_owned(), checkpoints);
        Ok(())
    }

    /// Removes `name` and its checkpoints; it no longer holds back retention.
    pub fn deregister(&self, name: &str) -> Result<(), CheckpointError> {
        let mut consumers = self.lock();
        if consumers.remove(name).is_none() {
            return Err(CheckpointError::UnknownConsumer(name.to_owned()));
        }
        let path = self.dir.join(format!("{name}{SUFFIX}"));
        let io = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        self.vfs.remove_file(&path).map_err(io)?;
        self.vfs.sync_dir(&self.dir).map_err(io)
    }

    /// Records that `name` has processed shard `seq.shard` up to and including `seq`.
    /// `next_seq` is the shard's next unassigned offset, for validation.
    pub fn checkpoint(&self, name: &str, seq: SequenceNumber, next_seq: u64) -> Result<(), CheckpointError> {
        let mut consumers = self.lock();
        let current = consumers
            .get(name)
            .ok_or_else(|| CheckpointError::UnknownConsumer(name.to_owned()))?;
        if seq.shard.0 as usize >= self.shard_count || seq.offset >= next_seq {
            return Err(CheckpointError::InvalidSequenceNumber(seq));
        }
        let mut updated = current.clone();
        updated[seq.shard.0 as usize] = Some(seq.offset);
        self.write(name, &updated)?;
        consumers.insert(name.to_owned(), updated);
        Ok(())
    }

    /// The last checkpointed record of each shard, or `None` for an unknown consumer.
    pub fn get(&self, name: &str) -> Option<Vec<Option<SequenceNumber>>> {
        self.lock().get(name).map(|checkpoints| {
            checkpoints
                .iter()
                .enumerate()
                .map(|(shard, offset)| {
                    offset.map(|offset| SequenceNumber {
                        shard: ShardId(shard as u32),
                        offset,
                    })
                })
                .collect()
        })
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Per shard, the offset below which every registered consumer has processed every record;
    /// `None` when no consumer is registered.
    pub fn consumed_below(&self) -> Option<Vec<u64>> {
        let consumers = self.lock();
        if consumers.is_empty() {
            return None;
        }
        Some(
            (0..self.shard_count)
                .map(|shard| {
                    consumers
                        .values()
                        .map(|c| c[shard].map_or(0, |offset| offset + 1))
                        .min()
                        .unwrap_or(0)
                })
                .collect(),
        )
    }
}

//! [`Stream`]: opening, appending, consumers, retention and statistics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{Semaphore, oneshot, watch};
use weir_core::kinesis::{self, HashKey, ShardRanges};

use crate::config::StreamConfig;
use crate::consumers::{ConsumerStore, valid_name};
use crate::error::{AppendError, CheckpointError, OpenError};
use crate::recovery::recover;
use crate::state::{FrameInfo, State};
use crate::types::{Clock, PutRecord, PutResult, SequenceNumber, ShardId, SystemClock};
use crate::vfs::{StdVfs, Vfs};
use crate::writer::{Request, RetentionReport, Writer};
use crate::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS};

/// Monotonic counters, readable at any time through [`Stream::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records_appended: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub batches_appended: AtomicU64,
    pub groups_written: AtomicU64,
    pub fsyncs: AtomicU64,
    pub append_failures: AtomicU64,
    pub segments_created: AtomicU64,
    pub segments_removed: AtomicU64,
    pub records_expired: AtomicU64,
    pub unconsumed_records_removed: AtomicU64,
    pub acknowledged_records_lost: AtomicU64,
    /// Record data bytes appended per shard (Kinesis's IncomingBytes).
    pub shard_data_bytes: Vec<AtomicU64>,
}

impl Counters {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the writer thread and every handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub name: String,
    pub segments_dir: PathBuf,
    pub config: StreamConfig,
    pub ranges: ShardRanges,
    pub vfs: Arc<dyn Vfs>,
    pub clock: Arc<dyn Clock>,
    pub state: RwLock<State>,
    pub consumers: ConsumerStore,
    /// Bumped whenever records become visible; readers waiting at the tip watch it.
    pub published: watch::Sender<u64>,
    pub counters: Counters,
    /// Bytes of appends queued for the writer (backpressure).
    pub pending: Arc<Semaphore>,
    pub truncated_at_open: u64,
    /// An exclusive lock on `<stream>/LOCK`, held while the stream is open: two writers on one
    /// directory would corrupt it.
    _lock: std::fs::File,
}

impl Shared {
    pub fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes durable frames of segment `segment_id` visible and wakes waiting readers.
    pub fn publish(&self, segment_id: u64, visible_len: u64, frames: &[FrameInfo]) {
        {
            let mut state = self.write_state();
            let State { segments, tips } = &mut *state;
            let Some(entry) = segments.last_mut().filter(|e| e.file.id == segment_id) else {
                unreachable!("the writer publishes only to the active segment");
            };
            for &frame in frames {
                entry.add_frame(frame);
                let tip = &mut tips[frame.shard as usize];
                tip.next_seq = frame.first_seq + frame.count;
                tip.last_arrival_ms = tip.last_arrival_ms.max(frame.arrival_ms);
            }
            entry.visible_len = visible_len;
        }
        self.published.send_modify(|generation| *generation += 1);
    }

    pub fn published_next_seq(&self) -> Vec<u64> {
        self.read_state().tips.iter().map(|t| t.next_seq).collect()
    }
}

/// Owns the writer thread: dropping the last [`Stream`] handle closes the queue, and the thread
/// finishes its last group (and fsync) before the drop returns.
#[derive(Debug)]
struct WriterHandle {
    tx: Mutex<Option<Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterHandle {
    fn send(&self, request: Request) -> Result<(), AppendError> {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        tx.as_ref()
            .ok_or(AppendError::Closed)?
            .send(request)
            .map_err(|_| AppendError::Closed)
    }

    fn close(&self) {
        drop(self.tx.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(thread) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// A durable, sharded, append-only stream with Kinesis semantics. Cheap to clone; all clones share
/// one writer thread.
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) shared: Arc<Shared>,
    writer: Arc<WriterHandle>,
}

/// A point-in-time view of a stream's counters and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub records_appended: u64,
    pub bytes_appended: u64,
    pub batches_appended: u64,
    /// Groups written by the writer; `batches_appended / groups_written` is the group-commit factor.
    pub groups_written: u64,
    pub fsyncs: u64,
    pub append_failures: u64,
    pub segments_created: u64,
    pub segments_removed: u64,
    /// Records removed by retention after every consumer had read them (or with no consumers).
    pub records_expired: u64,
    /// Records removed by the hard disk cap before every registered consumer had read them.
    pub unconsumed_records_removed: u64,
    /// Acknowledged records lost to a failed fsync under the interval sync policy.
    pub acknowledged_records_lost: u64,
    /// Bytes cut off a torn tail when the stream was opened.
    pub truncated_bytes_at_open: u64,
    pub disk_bytes: u64,
    pub segments: usize,
    pub shards: Vec<ShardStats>,
}

/// One shard's positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStats {
    pub shard_id: ShardId,
    /// Sequence offset of the oldest retained record.
    pub trim_offset: u64,
    /// Sequence offset the next record will get.
    pub next_offset: u64,
    /// Arrival time of the newest record (epoch ms), 0 if none.
    pub last_arrival_ms: i64,
    /// Record data bytes appended to the shard since the stream was opened.
    pub data_bytes_appended: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamMeta {
    name: String,
    shard_count: u32,
    format_version: u16,
}

impl Stream {
    /// Opens (creating if needed) stream `name` under `dir` (`dir/<name>/…`), recovering from whatever
    /// a crash left.
    pub fn open(dir: impl AsRef<Path>, name: &str, config: StreamConfig) -> Result<Stream, OpenError> {
        Stream::open_with(dir, name, config, Arc::new(StdVfs), Arc::new(SystemClock))
    }

    /// [`Stream::open`] with an explicit file system and clock (for fault injection and retention tests).
    pub fn open_with(
        dir: impl AsRef<Path>,
        name: &str,
        config: StreamConfig,
        vfs: Arc<dyn Vfs>,
        clock: Arc<dyn Clock>,
    ) -> Result<Stream, OpenError> {
        config.validate()?;
        if !valid_name(name) {
            return Err(OpenError::InvalidName(name.to_owned()));
        }
        let root = dir.as_ref().join(name);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        vfs.create_dir_all(&root).map_err(io(&root))?;
        let lock = lock_dir(&root)?;
        ensure_meta(vfs.as_ref(), &root, name, config.shard_count)?;
        let shard_count = config.shard_count as usize;
        let segments_dir = root.join("segments");
        let recovered = recover(
            vfs.as_ref(),
            &segments_dir,
            shard_count,
            config.recovery,
            clock.now_ms(),
        )?;
        let consumers = ConsumerStore::load(vfs.clone(), root.join("consumers"), shard_count)?;

        let active_entry = recovered
            .state
            .segments
            .last()
            .expect("recovery leaves at least one segment");
        let active = active_entry.file.clone();
        let len = active_entry.visible_len;
        let next_seq = recovered.state.tips.iter().map(|t| t.next_seq).collect();
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            segments_dir,
            ranges: ShardRanges::even(config.shard_count),
            pending: Arc::new(Semaphore::new(config.max_pending_bytes as usize)),
            config,
            vfs,
            clock,
            state: RwLock::new(recovered.state),
            consumers,
            published: watch::Sender::new(0),
            counters: Counters {
                shard_data_bytes: (0..shard_count).map(|_| AtomicU64::new(0)).collect(),
                ..Counters::default()
            },
            truncated_at_open: recovered.truncated_bytes,
            _lock: lock,
        });
        let writer = Writer {
            shared: shared.clone(),
            active,
            len,
            synced_len: len,
            next_seq,
            last_arrival_ms: recovered.last_arrival_ms,
            next_segment_id: recovered.next_segment_id,
            unsynced: Vec::new(),
            dirty_since: None,
            poisoned: None,
            last_retention: Instant::now(),
            buf: Vec::new(),
            last_group_batches: 0,
            last_fsync: std::time::Duration::ZERO,
            sealed: None,
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("weir-stream-{name}"))
            .spawn(move || writer.run(rx))
            .map_err(io(&root))?;
        Ok(Stream {
            shared,
            writer: Arc::new(WriterHandle {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn config(&self) -> &StreamConfig {
        &self.shared.config
    }

    pub fn shard_ids(&self) -> Vec<ShardId> {
        (0..self.shared.config.shard_count).map(ShardId).collect()
    }

    /// The shard a record would be routed to.
    pub fn shard_for(&self, partition_key: &str, explicit_hash_key: Option<HashKey>) -> ShardId {
        let key = explicit_hash_key.unwrap_or_else(|| HashKey::from_partition_key(partition_key));
        ShardId(self.shared.ranges.shard_for(key))
    }

    /// Validates and routes a batch; returns the shard of each record and the queued size.
    fn prepare(&self, records: &[PutRecord]) -> Result<(Vec<u32>, usize), AppendError> {
        if records.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        let bytes: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
        if records.len() > MAX_BATCH_RECORDS || bytes > MAX_BATCH_BYTES {
            return Err(AppendError::BatchTooLarge {
                records: records.len(),
                bytes,
                max_records: MAX_BATCH_RECORDS,
                max_bytes: MAX_BATCH_BYTES,
            });
        }
        let mut shards = Vec::with_capacity(records.len());
        for (index, r) in records.iter().enumerate() {
            kinesis::validate_data(&r.data)
                .and_then(|()| kinesis::validate_partition_key(&r.partition_key))
                .map_err(|source| AppendError::InvalidRecord { index, source })?;
            shards.push(self.shard_for(&r.partition_key, r.explicit_hash_key).0);
        }
        Ok((shards, bytes.max(1)))
    }

    fn submit(
        &self,
        shards: Vec<u32>,
        records: Vec<PutRecord>,
        bytes: usize,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<oneshot::Receiver<Result<Vec<PutResult>, AppendError>>, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.writer.send(Request::Append {
            shards,
            records,
            bytes,
            reply,
            _permit: Some(permit),
        })?;
        Ok(rx)
    }

    /// Appends a batch atomically: all records or none. Returns each record's shard and sequence
    /// number in request order, once the batch is durable (per the sync policy). Waits while the
    /// writer's queue is full.
    pub async fn append(&self, records: Vec<PutRecord>) -> Result<Vec<PutResult>, AppendError> {
        let (shards, bytes) = self.prepare(&records)?;
        let permit = self
            .shared
            .pending
            .clone()
            .acquire_many_owned(bytes as u32)
            .await
            .map_err(|_| AppendError::Closed)?;
        self.submit(shards, records, bytes, permit)?
            .await
            .map_err(|_| AppendError::Closed)?
    }

    /// Like [`Stream::append`], but fails with [`AppendError::Overloaded`] instead of waiting for
    /// queue space (an HTTP server answers 503/429 with it).
    pub async fn try_append(&self, records: Vec<PutRecord>) -> Result<Vec<PutResult>, AppendError> {
        let rx = self.try_submit(records)?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    /// [`Stream::try_append`] for threads outside an async runtime.
    pub fn append_blocking(&self, records: Vec<PutRecord>) -> Result<Vec<PutResult>, AppendError> {
        let rx = self.try_submit(records)?;
        rx.blocking_recv().map_err(|_| AppendError::Closed)?
    }

    fn try_submit(
        &self,
        records: Vec<PutRecord>,
    ) -> Result<oneshot::Receiver<Result<Vec<PutResult>, AppendError>>, AppendError> {
        let (shards, bytes) = self.prepare(&records)?;
        let permit = self
            .shared
            .pending
            .clone()
            .try_acquire_many_owned(bytes as u32)
            .map_err(|_| AppendError::Overloaded)?;
        self.submit(shards, records, bytes, permit)
    }

    /// Forces an fsync of anything written but not yet synced (only matters with the interval policy).
    pub async fn sync(&self) -> Result<(), AppendError> {
        let (reply, rx) = oneshot::channel();
        self.writer.send(Request::Sync(reply))?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    /// Runs retention now (it also runs on its own every `retention_check_interval` and after each
    /// new segment).
    pub async fn apply_retention(&self) -> Result<RetentionReport, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.writer.send(Request::Retention(reply))?;
        rx.await.map_err(|_| AppendError::Closed)
    }

    /// [`Stream::apply_retention`] for threads outside an async runtime.
    pub fn apply_retention_blocking(&self) -> Result<RetentionReport, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.writer.send(Request::Retention(reply))?;
        rx.blocking_recv().map_err(|_| AppendError::Closed)
    }

    /// Registers a named consumer (idempotent), starting at each shard's trim horizon. Until it
    /// checkpoints a shard, it holds back retention of every record of that shard.
    pub fn register_consumer(&self, name: &str) -> Result<(), CheckpointError> {
        let trim: Vec<u64> = self.shared.read_state().tips.iter().map(|t| t.trim_seq).collect();
        self.shared.consumers.register(name, &trim)
    }

    pub fn deregister_consumer(&self, name: &str) -> Result<(), CheckpointError> {
        self.shared.consumers.deregister(name)
    }

    pub fn consumers(&self) -> Vec<String> {
        self.shared.consumers.names()
    }

    /// Durably records that `consumer` has processed `sequence_number`'s shard up to and including it.
    pub fn checkpoint(&self, consumer: &str, sequence_number: SequenceNumber) -> Result<(), CheckpointError> {
        let shard = sequence_number.shard.0 as usize;
        let next_seq = self.shared.read_state().tips.get(shard).map_or(0, |tip| tip.next_seq);
        self.shared.consumers.checkpoint(consumer, sequence_number, next_seq)
    }

    /// A consumer's last checkpoint per shard (index = shard), or `None` if it is not registered.
    pub fn checkpoints(&self, consumer: &str) -> Option<Vec<Option<SequenceNumber>>> {
        self.shared.consumers.get(consumer)
    }

    pub fn stats(&self) -> StreamStats {
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let state = self.shared.read_state();
        StreamStats {
            records_appended: get(&c.records_appended),
            bytes_appended: get(&c.bytes_appended),
            batches_appended: get(&c.batches_appended),
            groups_written: get(&c.groups_written),
            fsyncs: get(&c.fsyncs),
            append_failures: get(&c.append_failures),
            segments_created: get(&c.segments_created),
            segments_removed: get(&c.segments_removed),
            records_expired: get(&c.records_expired),
            unconsumed_records_removed: get(&c.unconsumed_records_removed),
            acknowledged_records_lost: get(&c.acknowledged_records_lost),
            truncated_bytes_at_open: self.shared.truncated_at_open,
            disk_bytes: state.disk_bytes(),
            segments: state.segments.len(),
            shards: state
                .tips
                .iter()
                .enumerate()
                .map(|(i, tip)| ShardStats {
                    shard_id: ShardId(i as u32),
                    trim_offset: tip.trim_seq,
                    next_offset: tip.next_seq,
                    last_arrival_ms: tip.last_arrival_ms,
                    data_bytes_appended: c.shard_data_bytes.get(i).map_or(0, get),
                })
                .collect(),
        }
    }

    /// Stops the writer after it finishes what is queued. Other clones then fail with `Closed`.
    pub fn close(&self) {
        self.writer.close();
    }
}

/// The shard count of stream `name` under `dir`, if it exists there.
pub fn stored_shard_count(dir: impl AsRef<Path>, name: &str) -> Result<Option<u32>, OpenError> {
    let path = dir.as_ref().join(name).join("stream.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<StreamMeta>(&bytes)
            .map(|meta| Some(meta.shard_count))
            .map_err(|e| OpenError::Corrupt {
                path,
                offset: 0,
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OpenError::Io { path, source }),
    }
}

fn lock_dir(root: &Path) -> Result<std::fs::File, OpenError> {
    let path = root.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked(path)),
        Err(std::fs::TryLockError::Error(source)) => Err(OpenError::Io { path, source }),
    }
}

/// Writes `stream.json` on first open; later opens check it against the configuration.
fn ensure_meta(vfs: &dyn Vfs, root: &Path, name: &str, shard_count: u32) -> Result<(), OpenError> {
    let path = root.join("stream.json");
    let io = |source| OpenError::Io {
        path: path.clone(),
        source,
    };
    match vfs.read_to_end(&path) {
        Ok(bytes) => {
            let meta: StreamMeta = serde_json::from_slice(&bytes).map_err(|e| OpenError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: e.to_string(),
            })?;
            if meta.shard_count != shard_count {
                return Err(OpenError::ShardCountMismatch {
                    on_disk: meta.shard_count,
                    configured: shard_count,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let meta = StreamMeta {
                name: name.to_owned(),
                shard_count,
                format_version: crate::format::FORMAT_VERSION,
            };
            let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| io(std::io::Error::other(e)))?;
            vfs.write_atomic(&path, &bytes).map_err(io)?;
            // The stream directory itself is new: make its entry in the parent durable too.
            vfs.sync_dir(root.parent().unwrap_or(Path::new("."))).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

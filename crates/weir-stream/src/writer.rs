//! The writer thread: the only code that appends to segments or removes them.
//!
//! Group commit: the thread takes every append request waiting in its queue, writes all their frames
//! with one `pwrite`, and (with [`SyncPolicy::Always`]) fsyncs once for the whole group before it
//! acknowledges any of them. While it fsyncs, new requests queue up and form the next group, so
//! concurrent appenders share fsyncs. One refinement, like PostgreSQL's `commit_delay`: when the
//! previous group had more batches than are queued now, the writer waits up to half an fsync for the
//! appenders it just acknowledged to come back, instead of splitting them into two alternating half
//! groups (which would cost every append two fsyncs). A lone appender never waits.
//!
//! Failure handling: a failed write is rolled back by truncating the segment to its previous length;
//! a failed fsync truncates to the last durable length (after a failed fsync the page cache can no
//! longer be trusted, so the write is never retried and acknowledged). If even the rollback fails,
//! the writer stops ("poisoned") and every append fails until the stream is reopened, when recovery
//! re-reads what is really on disk.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tracing::{error, warn};

use crate::config::SyncPolicy;
use crate::direct::SEALED_TAIL_BYTES;
use crate::error::AppendError;
use crate::format::encode_frame;
use crate::recovery::create_segment;
use crate::state::{FrameInfo, SegmentEntry, SegmentFile};
use crate::stream::Shared;
use crate::types::{PutRecord, PutResult, SequenceNumber, ShardId};

/// A group stops growing at this many bytes, which bounds the write buffer and the time the first
/// request of a group waits.
pub(crate) const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// The longest a group waits for more appenders (see [`Writer::commit_delay`]).
const MAX_COMMIT_DELAY: Duration = Duration::from_micros(500);

pub(crate) type AppendReply = oneshot::Sender<Result<Vec<PutResult>, AppendError>>;

pub(crate) enum Request {
    Append {
        /// The shard of each record, already routed and validated.
        shards: Vec<u32>,
        records: Vec<PutRecord>,
        bytes: usize,
        reply: AppendReply,
        /// Returned to the backpressure semaphore once the request is done.
        _permit: Option<OwnedSemaphorePermit>,
    },
    Retention(oneshot::Sender<RetentionReport>),
    Sync(oneshot::Sender<Result<(), AppendError>>),
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub segments_removed: u64,
    pub records_removed: u64,
    /// Records removed before every registered consumer had read them (hard disk cap only).
    pub unconsumed_records_removed: u64,
}

pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub active: Arc<SegmentFile>,
    /// Bytes written to the active segment.
    pub len: u64,
    /// Bytes of the active segment known durable (and visible to readers).
    pub synced_len: u64,
    /// Next sequence number to assign, per shard (includes written but unsynced records).
    pub next_seq: Vec<u64>,
    pub last_arrival_ms: i64,
    pub next_segment_id: u64,
    /// Frames written but not yet fsynced ([`SyncPolicy::Interval`] only).
    pub unsynced: Vec<FrameInfo>,
    pub dirty_since: Option<Instant>,
    pub poisoned: Option<String>,
    pub last_retention: Instant,
    pub buf: Vec<u8>,
    /// Batches in the last group written, and how long the last fsync took (for the commit delay).
    pub last_group_batches: usize,
    pub last_fsync: Duration,
    /// The segment sealed last, whose end stays in memory for readers just behind the roll.
    pub sealed: Option<Arc<SegmentFile>>,
}

struct PendingAppend {
    shards: Vec<u32>,
    records: Vec<PutRecord>,
    reply: AppendReply,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Request>) {
        loop {
            let first = match rx.recv_timeout(self.idle_timeout()) {
                Ok(request) => Some(request),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut appends = Vec::new();
            let mut others = Vec::new();
            let mut group_bytes = 0;
            let mut next = first;
            let mut delay_until = None;
            while let Some(request) = next {
                match request {
                    Request::Append {
                        shards,
                        records,
                        bytes,
                        reply,
                        _permit,
                    } => {
                        group_bytes += bytes;
                        appends.push(PendingAppend {
                            shards,
                            records,
                            reply,
                            _permit,
                        });
                    }
                    other => others.push(other),
                }
                if group_bytes >= MAX_GROUP_BYTES {
                    break;
                }
                next = rx.try_recv().ok();
                if next.is_none() && !appends.is_empty() && appends.len() < self.last_group_batches {
                    // The appenders acknowledged with the last group are still coming back: wait a
                    // moment for them instead of splitting them into alternating half groups.
                    let deadline = *delay_until.get_or_insert_with(|| Instant::now() + self.commit_delay());
                    next = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok();
                }
            }
            if !appends.is_empty() {
                self.last_group_batches = appends.len();
                self.commit_group(appends);
            }
            for request in others {
                match request {
                    Request::Retention(reply) => {
                        let _ = reply.send(self.retention());
                    }
                    Request::Sync(reply) => {
                        let _ = reply.send(self.sync_now());
                    }
                    Request::Append { .. } => unreachable!("appends are grouped above"),
                }
            }
            self.periodic();
        }
        if let Err(e) = self.sync_now() {
            error!(stream = %self.shared.name, error = %e, "Final fsync at close failed.");
        }
    }

    /// How long a group may wait for appenders of the previous group: half an fsync, capped, so
    /// that waiting never costs more than the fsync it saves.
    fn commit_delay(&self) -> Duration {
        (self.last_fsync / 2).min(MAX_COMMIT_DELAY)
    }

    fn idle_timeout(&self) -> Duration {
        let retention_due = self
            .shared
            .config
            .retention_check_interval
            .saturating_sub(self.last_retention.elapsed());
        match (self.shared.config.sync, self.dirty_since) {
            (SyncPolicy::Interval(every), Some(since)) => every.saturating_sub(since.elapsed()).min(retention_due),
            _ => retention_due,
        }
    }

    fn periodic(&mut self) {
        if let (SyncPolicy::Interval(every), Some(since)) = (self.shared.config.sync, self.dirty_since)
            && since.elapsed() >= every
        {
            let _ = self.sync_now();
        }
        if self.last_retention.elapsed() >= self.shared.config.retention_check_interval {
            self.retention();
        }
    }

    fn commit_group(&mut self, appends: Vec<PendingAppend>) {
        if let Some(reason) = &self.poisoned {
            for a in appends {
                let _ = a.reply.send(Err(AppendError::Poisoned(reason.clone())));
            }
            return;
        }
        let arrival_ms = self.shared.clock.now_ms().max(self.last_arrival_ms);
        if self.len >= self.shared.config.segment_bytes
            && self.len > self.active.header_len
            && let Err(e) = self.roll(arrival_ms)
        {
            for a in appends {
                let _ = a.reply.send(Err(self
                    .poisoned
                    .clone()
                    .map_or_else(|| e.clone_error(), AppendError::Poisoned)));
            }
            return;
        }

        self.buf.clear();
        let mut next_seq = self.next_seq.clone();
        let mut frames = Vec::new();
        let mut results = Vec::with_capacity(appends.len());
        for append in &appends {
            results.push(self.encode_batch(append, arrival_ms, &mut next_seq, &mut frames));
        }

        let record_count: u64 = frames.iter().map(|f| f.count).sum();
        let bytes = self.buf.len() as u64;
        if let Err(e) = self.active.file.write_all_at(&self.buf, self.len) {
            self.rollback_write(&e);
            return fail_all(appends, &e, &self.poisoned);
        }
        self.len += bytes;
        self.next_seq = next_seq;
        self.last_arrival_ms = arrival_ms;
        self.unsynced.extend(frames);
        match self.shared.config.sync {
            SyncPolicy::Always => {
                if let Err(e) = self.sync_now() {
                    return fail_all(appends, &e.io(), &self.poisoned);
                }
            }
            SyncPolicy::Interval(_) => {
                self.dirty_since.get_or_insert_with(Instant::now);
            }
        }
        let counters = &self.shared.counters;
        counters.add(&counters.records_appended, record_count);
        counters.add(&counters.bytes_appended, bytes);
        counters.add(&counters.batches_appended, appends.len() as u64);
        counters.add(&counters.groups_written, 1);
        for append in &appends {
            for (record, &shard) in append.records.iter().zip(&append.shards) {
                if let Some(c) = counters.shard_data_bytes.get(shard as usize) {
                    counters.add(c, record.data.len() as u64);
                }
            }
        }
        for (append, result) in appends.into_iter().zip(results) {
            let _ = append.reply.send(Ok(result));
        }
    }

    /// Encodes one batch as one frame per shard (ascending), the last flagged as the batch's end, and
    /// returns each record's assigned position in request order.
    fn encode_batch(
        &mut self,
        append: &PendingAppend,
        arrival_ms: i64,
        next_seq: &mut [u64],
        frames: &mut Vec<FrameInfo>,
    ) -> Vec<PutResult> {
        let mut order: Vec<usize> = (0..append.records.len()).collect();
        // Stable: records of one shard keep their request order.
        order.sort_by_key(|&i| append.shards[i]);
        let mut results = vec![None; append.records.len()];
        let mut start = 0;
        while start < order.len() {
            let shard = append.shards[order[start]];
            let end = start + order[start..].partition_point(|&i| append.shards[i] == shard);
            let first_seq = next_seq[shard as usize];
            let offset = self.len + self.buf.len() as u64;
            let chunk = &order[start..end];
            encode_frame(
                &mut self.buf,
                shard as u16,
                end == order.len(),
                arrival_ms,
                first_seq,
                chunk.iter().map(|&i| {
                    let r = &append.records[i];
                    (r.partition_key.as_str(), &r.data[..])
                }),
            );
            for (k, &i) in chunk.iter().enumerate() {
                results[i] = Some(PutResult {
                    shard_id: ShardId(shard),
                    sequence_number: SequenceNumber {
                        shard: ShardId(shard),
                        offset: first_seq + k as u64,
                    },
                });
            }
            let count = chunk.len() as u64;
            next_seq[shard as usize] += count;
            frames.push(FrameInfo {
                shard,
                offset,
                arrival_ms,
                first_seq,
                count,
            });
            start = end;
        }
        results.into_iter().flatten().collect()
    }

    /// After a failed write: cut the partial bytes off so the next group starts on a clean boundary.
    fn rollback_write(&mut self, cause: &std::io::Error) {
        self.shared.counters.add(&self.shared.counters.append_failures, 1);
        if let Err(e) = self.active.file.set_len(self.len) {
            self.poison(format!("write failed ({cause}) and truncating it back failed ({e})"));
        } else {
            warn!(stream = %self.shared.name, error = %cause, "Append failed; the partial write was rolled back.");
        }
    }

    /// fsyncs the active segment if it has unsynced bytes, then publishes them to readers.
    fn sync_now(&mut self) -> Result<(), AppendError> {
        if let Some(reason) = &self.poisoned {
            return Err(AppendError::Poisoned(reason.clone()));
        }
        if self.len == self.synced_len {
            return Ok(());
        }
        let started = Instant::now();
        if let Err(e) = self.active.file.sync_data() {
            self.rollback_sync(&e);
            return Err(AppendError::from_io(&e));
        }
        self.last_fsync = started.elapsed();
        self.shared.counters.add(&self.shared.counters.fsyncs, 1);
        self.synced_len = self.len;
        self.dirty_since = None;
        let frames = std::mem::take(&mut self.unsynced);
        self.shared.publish(self.active.id, self.synced_len, &frames);
        Ok(())
    }

    /// After a failed fsync: the unsynced bytes may or may not be on disk, so drop them and make the
    /// file agree with what readers were shown.
    fn rollback_sync(&mut self, cause: &std::io::Error) {
        let counters = &self.shared.counters;
        counters.add(&counters.append_failures, 1);
        let lost: u64 = self.unsynced.drain(..).map(|f| f.count).sum();
        if matches!(self.shared.config.sync, SyncPolicy::Interval(_)) && lost > 0 {
            counters.add(&counters.acknowledged_records_lost, lost);
            error!(stream = %self.shared.name, records = lost, error = %cause,
                "fsync failed: acknowledged records written under the interval sync policy are lost.");
        }
        let rolled_back = self
            .active
            .file
            .set_len(self.synced_len)
            .and_then(|()| self.active.file.sync_data());
        if let Err(e) = rolled_back {
            self.poison(format!("fsync failed ({cause}) and truncating it back failed ({e})"));
            return;
        }
        warn!(stream = %self.shared.name, error = %cause, "fsync failed; unsynced writes were rolled back.");
        self.len = self.synced_len;
        self.dirty_since = None;
        self.next_seq = self.shared.published_next_seq();
    }

    fn poison(&mut self, reason: String) {
        error!(stream = %self.shared.name, reason, "Stream writer stopped; reopen the stream to recover.");
        self.poisoned = Some(reason);
    }

    /// Seals the active segment and starts a new one.
    fn roll(&mut self, created_ms: i64) -> Result<(), AppendError> {
        self.sync_now()?;
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        let shared = &self.shared;
        match create_segment(
            shared.vfs.as_ref(),
            &shared.segments_dir,
            id,
            created_ms,
            &self.next_seq,
        ) {
            Ok(file) => {
                self.len = file.header_len;
                self.synced_len = file.header_len;
                let sealed = std::mem::replace(&mut self.active, file.clone());
                sealed.file.retire(SEALED_TAIL_BYTES);
                if let Some(older) = self.sealed.replace(sealed) {
                    older.file.retire(0);
                }
                shared.write_state().segments.push(SegmentEntry::new(file));
                shared.counters.add(&shared.counters.segments_created, 1);
                self.retention();
                Ok(())
            }
            Err((e, removed)) => {
                if !removed {
                    // A durable header with stale numbering would break recovery's continuity check.
                    self.poison(format!("creating segment {id} failed ({e}) and removing it failed"));
                }
                Err(AppendError::from_io(&e))
            }
        }
    }

    /// Removes the oldest segments that retention allows; never the active one.
    pub fn retention(&mut self) -> RetentionReport {
        self.last_retention = Instant::now();
        let shared = self.shared.clone();
        let config = &shared.config;
        let now_ms = shared.clock.now_ms();
        let retention_ms = i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX);
        let consumed_below = shared.consumers.consumed_below();
        let mut report = RetentionReport::default();
        let mut removed = Vec::new();
        {
            let mut state = shared.write_state();
            while state.segments.len() > 1 {
                let total = state.disk_bytes();
                let oldest = &state.segments[0];
                let unconsumed: u64 = consumed_below.as_ref().map_or(0, |below| {
                    oldest
                        .shards
                        .iter()
                        .zip(below)
                        .filter(|(span, _)| span.count > 0)
                        .map(|(span, &below)| (span.last_seq + 1).saturating_sub(below.max(span.first_seq)))
                        .sum()
                });
                let expired = oldest.last_arrival_ms < now_ms.saturating_sub(retention_ms);
                let over_soft = config.retention_bytes.is_some_and(|cap| total > cap);
                let over_hard = config.max_disk_bytes.is_some_and(|cap| total > cap);
                if !((expired || over_soft) && unconsumed == 0) && !over_hard {
                    break;
                }
                let entry = state.segments.remove(0);
                let next_oldest = state.segments[0].file.clone();
                for (tip, &base) in state.tips.iter_mut().zip(&next_oldest.base_seq) {
                    tip.trim_seq = base;
                }
                report.segments_removed += 1;
                report.records_removed += entry.records;
                if unconsumed > 0 {
                    report.unconsumed_records_removed += unconsumed;
                    error!(
                        stream = %shared.name, segment = %entry.file.path.display(), records = unconsumed, disk_bytes = total,
                        "Hard disk cap removed records that registered consumers had not read."
                    );
                }
                removed.push(entry.file);
            }
        }
        for file in &removed {
            if let Err(e) = shared.vfs.remove_file(&file.path) {
                error!(segment = %file.path.display(), error = %e, "Removing a retained-out segment failed; it reappears at the next open.");
            }
        }
        if !removed.is_empty()
            && let Err(e) = shared.vfs.sync_dir(&shared.segments_dir)
        {
            error!(dir = %shared.segments_dir.display(), error = %e, "fsync of the segments directory failed after retention.");
        }
        let counters = &shared.counters;
        counters.add(&counters.segments_removed, report.segments_removed);
        counters.add(
            &counters.records_expired,
            report.records_removed - report.unconsumed_records_removed,
        );
        counters.add(&counters.unconsumed_records_removed, report.unconsumed_records_removed);
        report
    }
}

fn fail_all(appends: Vec<PendingAppend>, cause: &std::io::Error, poisoned: &Option<String>) {
    for a in appends {
        let err = match poisoned {
            Some(reason) => AppendError::Poisoned(reason.clone()),
            None => AppendError::from_io(cause),
        };
        let _ = a.reply.send(Err(err));
    }
}

impl AppendError {
    /// A copy for replying to several requests (io::Error is not Clone).
    fn clone_error(&self) -> AppendError {
        match self {
            AppendError::DiskFull(e) | AppendError::Io(e) => AppendError::from_io(e),
            AppendError::Poisoned(reason) => AppendError::Poisoned(reason.clone()),
            _ => AppendError::Io(std::io::Error::other(self.to_string())),
        }
    }

    fn io(&self) -> std::io::Error {
        match self {
            AppendError::DiskFull(e) | AppendError::Io(e) => std::io::Error::new(e.kind(), e.to_string()),
            other => std::io::Error::other(other.to_string()),
        }
    }
}

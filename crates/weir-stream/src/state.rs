//! The in-memory view of a stream: its segments with a sparse per-shard index, and each shard's tip.
//!
//! Only the writer thread changes it, and only after data is durable, so readers never see a record
//! that a crash could take back. Readers hold the lock just long enough to find where to start.

use std::path::PathBuf;
use std::sync::Arc;

use crate::vfs::VfsFile;

/// An index point is added for a shard at most once per this many bytes of its segment, which bounds
/// both the index's memory (~24 bytes per 64 KiB per shard) and the bytes a lookup scans.
pub(crate) const INDEX_INTERVAL: u64 = 64 * 1024;

/// A segment file and what its header says; immutable once created.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub id: u64,
    pub path: PathBuf,
    pub file: Arc<dyn VfsFile>,
    pub header_len: u64,
    /// Each shard's next sequence number when the segment was created: every record of shard `s` with
    /// a sequence number below `base_seq[s]` is in an earlier segment.
    pub base_seq: Vec<u64>,
    pub created_ms: i64,
}

/// Where a shard's record can be found: a frame starting at `offset` whose first record is `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexPoint {
    pub seq: u64,
    pub offset: u64,
    pub arrival_ms: i64,
}

/// One shard's records within one segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardSpan {
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub points: Vec<IndexPoint>,
}

/// A frame that became durable: what the index learns from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameInfo {
    pub shard: u32,
    pub offset: u64,
    pub arrival_ms: i64,
    pub first_seq: u64,
    pub count: u64,
}

#[derive(Debug)]
pub(crate) struct SegmentEntry {
    pub file: Arc<SegmentFile>,
    /// Bytes readers may read: everything up to here is durable.
    pub visible_len: u64,
    /// The newest record's arrival time (the creation time while empty).
    pub last_arrival_ms: i64,
    pub records: u64,
    pub shards: Vec<ShardSpan>,
}

impl SegmentEntry {
    pub fn new(file: Arc<SegmentFile>) -> SegmentEntry {
        SegmentEntry {
            visible_len: file.header_len,
            last_arrival_ms: file.created_ms,
            records: 0,
            shards: vec![ShardSpan::default(); file.base_seq.len()],
            file,
        }
    }

    pub fn add_frame(&mut self, f: FrameInfo) {
        let span = &mut self.shards[f.shard as usize];
        if span.count == 0 {
            span.first_seq = f.first_seq;
        }
        span.count += f.count;
        span.last_seq = f.first_seq + f.count - 1;
        if span.points.last().is_none_or(|p| f.offset - p.offset >= INDEX_INTERVAL) {
            span.points.push(IndexPoint {
                seq: f.first_seq,
                offset: f.offset,
                arrival_ms: f.arrival_ms,
            });
        }
        self.records += f.count;
        self.last_arrival_ms = self.last_arrival_ms.max(f.arrival_ms);
    }

    /// The offset of a frame at or before shard `shard`'s record `seq` (which must be in this segment).
    pub fn seek_seq(&self, shard: u32, seq: u64) -> u64 {
        let points = &self.shards[shard as usize].points;
        let i = points.partition_point(|p| p.seq <= seq);
        if i == 0 {
            self.file.header_len
        } else {
            points[i - 1].offset
        }
    }

    /// The offset of a frame at or before shard `shard`'s first record that arrived at or after `ts`.
    pub fn seek_time(&self, shard: u32, ts: i64) -> u64 {
        let points = &self.shards[shard as usize].points;
        let i = points.partition_point(|p| p.arrival_ms < ts);
        if i == 0 {
            self.file.header_len
        } else {
            points[i - 1].offset
        }
    }
}

/// A shard's published positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShardTip {
    /// The next sequence number to be assigned; every lower one is durable (or trimmed).
    pub next_seq: u64,
    /// The oldest retained sequence number.
    pub trim_seq: u64,
    /// The newest record's arrival time, 0 if the shard never had a record.
    pub last_arrival_ms: i64,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Oldest first; never empty; the last one is where the writer appends.
    pub segments: Vec<SegmentEntry>,
    pub tips: Vec<ShardTip>,
}

impl State {
    pub fn position_of(&self, segment_id: u64) -> Option<usize> {
        self.segments.binary_search_by_key(&segment_id, |e| e.file.id).ok()
    }

    /// The segment holding shard `shard`'s record `seq` and an offset to scan from, assuming
    /// `trim_seq <= seq < next_seq`.
    pub fn locate_seq(&self, shard: u32, seq: u64) -> (usize, u64) {
        let i = self
            .segments
            .partition_point(|e| e.file.base_seq[shard as usize] <= seq)
            .max(1)
            - 1;
        (i, self.segments[i].seek_seq(shard, seq))
    }

    /// The first segment that may hold a record of shard `shard` arriving at or after `ts`, and an
    /// offset to scan from.
    pub fn locate_time(&self, shard: u32, ts: i64) -> (usize, u64) {
        let i = self
            .segments
            .partition_point(|e| e.last_arrival_ms < ts)
            .min(self.segments.len() - 1);
        (i, self.segments[i].seek_time(shard, ts))
    }

    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|e| e.visible_len).sum()
    }
}

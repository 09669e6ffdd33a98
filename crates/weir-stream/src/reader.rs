//! Reading: iterators, bounded reads, and waiting at the tip.
//!
//! A read locks the state only to find where to start (the iterator's hint, or a binary search of
//! segment bases and the sparse index), then reads with `pread` and no lock held, so readers never
//! hold up the writer. Only frames of the wanted shard are checksummed and decoded; others are skipped
//! by their header. Sequence numbers are dense, so a frame that does not continue the shard where
//! expected is reported as corruption rather than silently skipped.

use std::sync::Arc;
use std::time::Duration;

use crate::error::ReadError;
use crate::format::{CursorError, FrameCursor};
use crate::state::{SegmentFile, State};
use crate::stream::Stream;
use crate::types::{
    ReadBatch, ReadHint, ReadLimits, Record, SequenceNumber, ShardId, ShardIterator, ShardIteratorType,
};

/// Where a scan is: a segment and a frame boundary in it, and how far readers may go.
struct Cursor {
    segment: Arc<SegmentFile>,
    frames: FrameCursor,
}

impl Stream {
    fn check_shard(&self, shard: ShardId) -> Result<(), ReadError> {
        if shard.0 < self.shared.config.shard_count {
            Ok(())
        } else {
            Err(ReadError::UnknownShard(shard))
        }
    }

    /// Creates an iterator for `shard`, as `GetShardIterator` does.
    pub fn iterator(&self, shard: ShardId, kind: ShardIteratorType) -> Result<ShardIterator, ReadError> {
        self.check_shard(shard)?;
        let tip = self.shared.read_state().tips[shard.0 as usize];
        let at = |seq: SequenceNumber, after: u64| {
            if seq.shard != shard {
                return Err(ReadError::WrongShard {
                    sequence_number: seq,
                    shard,
                });
            }
            if seq.offset >= tip.next_seq {
                return Err(ReadError::FutureSequenceNumber(seq));
            }
            Ok(seq.offset + after)
        };
        let next_offset = match kind {
            ShardIteratorType::TrimHorizon => tip.trim_seq,
            ShardIteratorType::Latest => tip.next_seq,
            ShardIteratorType::AtSequenceNumber(seq) => at(seq, 0)?,
            ShardIteratorType::AfterSequenceNumber(seq) => at(seq, 1)?,
            ShardIteratorType::AtTimestamp(ts) => return self.iterator_at_time(shard, ts),
        };
        Ok(ShardIterator {
            shard,
            next_offset,
            hint: None,
        })
    }

    /// The iterator a registered consumer resumes from: just after its checkpoint, or where it started.
    /// If retention had to remove records it had not read (hard disk cap), the first read reports them
    /// in [`crate::ReadBatch::skipped_records`].
    pub fn resume_iterator(&self, consumer: &str, shard: ShardId) -> Result<Option<ShardIterator>, ReadError> {
        self.check_shard(shard)?;
        let Some(checkpoints) = self.checkpoints(consumer) else {
            return Ok(None);
        };
        match checkpoints[shard.0 as usize] {
            Some(seq) => self
                .iterator(shard, ShardIteratorType::AfterSequenceNumber(seq))
                .map(Some),
            None => Ok(Some(ShardIterator {
                shard,
                next_offset: 0,
                hint: None,
            })),
        }
    }

    fn iterator_at_time(&self, shard: ShardId, ts: i64) -> Result<ShardIterator, ReadError> {
        let (mut cursor, next_seq) = {
            let state = self.shared.read_state();
            let (i, offset) = state.locate_time(shard.0, ts);
            (cursor_at(&state, i, offset), state.tips[shard.0 as usize].next_seq)
        };
        while let Some((frame_offset, records)) = self.next_shard_frame(&mut cursor, shard)? {
            if records.arrival_ms >= ts && records.last_seq() < next_seq {
                return Ok(ShardIterator {
                    shard,
                    next_offset: records.first_seq,
                    hint: Some(ReadHint {
                        segment_id: cursor.segment.id,
                        offset: frame_offset,
                    }),
                });
            }
        }
        Ok(ShardIterator {
            shard,
            next_offset: next_seq,
            hint: None,
        })
    }

    /// Reads up to `limits` records from `iterator`, as `GetRecords` does. Returns immediately, with
    /// no records at the tip; see [`Stream::wait_for_records`].
    pub fn read(&self, iterator: &ShardIterator, limits: ReadLimits) -> Result<ReadBatch, ReadError> {
        let shard = iterator.shard;
        self.check_shard(shard)?;
        let max_records = limits.max_records.max(1);
        let mut records: Vec<Record> = Vec::new();
        let mut bytes = 0;
        let mut pos = iterator.next_offset;
        let mut skipped = 0;
        let (mut cursor, next_seq) = {
            let state = self.shared.read_state();
            let tip = state.tips[shard.0 as usize];
            if pos < tip.trim_seq {
                skipped = tip.trim_seq - pos;
                pos = tip.trim_seq;
            }
            if pos >= tip.next_seq {
                return Ok(ReadBatch {
                    records,
                    next_iterator: ShardIterator {
                        shard,
                        next_offset: pos,
                        hint: iterator.hint,
                    },
                    millis_behind_latest: 0,
                    skipped_records: skipped,
                });
            }
            let hinted = iterator
                .hint
                .filter(|_| skipped == 0)
                .and_then(|h| state.position_of(h.segment_id).map(|i| (i, h.offset)))
                .filter(|&(i, offset)| offset <= state.segments[i].visible_len);
            let (i, offset) = hinted.unwrap_or_else(|| state.locate_seq(shard.0, pos));
            (cursor_at(&state, i, offset), tip.next_seq)
        };

        let mut resume = None;
        'frames: while let Some((frame_offset, frame)) = self.next_shard_frame(&mut cursor, shard)? {
            if frame.last_seq() < pos {
                continue;
            }
            if frame.first_seq > pos {
                // Only a salvage recovery leaves gaps; the records are gone.
                skipped += frame.first_seq - pos;
                pos = frame.first_seq;
            }
            let decoded = frame
                .decode()
                .map_err(|reason| corrupt(&cursor.segment, frame_offset, reason))?;
            for (k, (partition_key, data)) in decoded.into_iter().enumerate() {
                let seq = frame.first_seq + k as u64;
                if seq < pos {
                    continue;
                }
                if seq >= next_seq
                    || records.len() == max_records
                    || (!records.is_empty() && bytes + data.len() > limits.max_bytes)
                {
                    resume = Some(frame_offset);
                    break 'frames;
                }
                bytes += data.len();
                records.push(Record {
                    sequence_number: SequenceNumber { shard, offset: seq },
                    partition_key,
                    data,
                    approximate_arrival_timestamp_ms: frame.arrival_ms,
                });
                pos = seq + 1;
            }
        }
        let millis_behind_latest = match records.last() {
            Some(last) if pos < self.shared.read_state().tips[shard.0 as usize].next_seq => {
                let now = self.shared.clock.now_ms();
                u64::try_from(now - last.approximate_arrival_timestamp_ms).unwrap_or(0)
            }
            _ => 0,
        };
        Ok(ReadBatch {
            records,
            next_iterator: ShardIterator {
                shard,
                next_offset: pos,
                hint: Some(ReadHint {
                    segment_id: cursor.segment.id,
                    offset: resume.unwrap_or(cursor.frames.offset()),
                }),
            },
            millis_behind_latest,
            skipped_records: skipped,
        })
    }

    /// Whether a read from `iterator` would return at least one record now.
    pub fn has_records(&self, iterator: &ShardIterator) -> bool {
        let state = self.shared.read_state();
        state
            .tips
            .get(iterator.shard.0 as usize)
            .is_some_and(|tip| iterator.next_offset < tip.next_seq)
    }

    /// Waits until a read from `iterator` would return records, or `timeout` passes; returns whether
    /// records are there. No polling: the writer wakes waiters when it publishes.
    pub async fn wait_for_records(&self, iterator: &ShardIterator, timeout: Duration) -> bool {
        let mut published = self.shared.published.subscribe();
        let wait = async {
            loop {
                if self.has_records(iterator) {
                    return true;
                }
                if published.changed().await.is_err() {
                    return self.has_records(iterator);
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// The next verified frame of `shard` at or after the cursor, moving on to later segments as
    /// needed; `None` at the end of what is visible.
    fn next_shard_frame(
        &self,
        cursor: &mut Cursor,
        shard: ShardId,
    ) -> Result<Option<(u64, crate::format::FrameRecords)>, ReadError> {
        loop {
            match cursor.frames.next_frame_of(shard.0 as u16) {
                Ok(Some(frame)) => {
                    let records = frame
                        .verify()
                        .map_err(|reason| corrupt(&cursor.segment, frame.offset, reason))?;
                    return Ok(Some((frame.offset, records)));
                }
                Ok(None) => {
                    let state = self.shared.read_state();
                    // By id, not position: retention may have removed segments meanwhile.
                    let next = state.segments.partition_point(|e| e.file.id <= cursor.segment.id);
                    if next >= state.segments.len() {
                        return Ok(None);
                    }
                    let header_len = state.segments[next].file.header_len;
                    *cursor = cursor_at(&state, next, header_len);
                }
                Err(CursorError::Io(source)) => {
                    return Err(ReadError::Io {
                        path: cursor.segment.path.clone(),
                        source,
                    });
                }
                Err(CursorError::Corrupt { offset, reason }) => return Err(corrupt(&cursor.segment, offset, reason)),
                Err(CursorError::Truncated { offset }) => {
                    return Err(corrupt(&cursor.segment, offset, "frame runs past the durable end"));
                }
            }
        }
    }
}

fn cursor_at(state: &State, segment: usize, offset: u64) -> Cursor {
    let entry = &state.segments[segment];
    Cursor {
        segment: entry.file.clone(),
        frames: FrameCursor::new(entry.file.file.clone(), offset, entry.visible_len),
    }
}

fn corrupt(segment: &SegmentFile, offset: u64, reason: &str) -> ReadError {
    ReadError::Corrupt {
        path: segment.path.clone(),
        offset,
        reason: reason.to_owned(),
    }
}

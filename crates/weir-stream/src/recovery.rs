//! Opening a stream's segments: rebuild the index by replaying every frame, verify every checksum,
//! and cut a torn or corrupt tail off the last segment.
//!
//! Invariants this relies on (kept by the writer):
//! - a new segment's header is fsynced, and its directory too, before any frame is written to it, so
//!   a last segment with an unreadable header never holds data and is removed;
//! - a segment is sealed only after all its data is fsynced, so only the last segment can have a torn
//!   tail; damage anywhere else is corruption;
//! - a batch's frames end with one flagged `FLAG_BATCH_END`; frames after the last end flag belong to
//!   a batch that was never acknowledged and are cut with the torn tail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{error, info, warn};

use crate::config::RecoveryMode;
use crate::error::OpenError;
use crate::format::{CursorError, FrameCursor, SegmentHeader, segment_header_len};
use crate::state::{FrameInfo, SegmentEntry, SegmentFile, ShardTip, State};
use crate::vfs::Vfs;

pub(crate) const SEGMENT_SUFFIX: &str = ".seg";

/// The most bytes one group write can span, with the zeros a direct file writes beyond it; damage
/// further from the end than this cannot be a torn write.
const MAX_WRITE_BYTES: u64 =
    (crate::writer::MAX_GROUP_BYTES + crate::MAX_BATCH_BYTES) as u64 + crate::direct::MAX_ZERO_TAIL;

pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SEGMENT_SUFFIX}"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What the writer resumes from.
pub(crate) struct Recovered {
    pub state: State,
    pub next_segment_id: u64,
    pub last_arrival_ms: i64,
    /// Bytes cut off the last segment's tail.
    pub truncated_bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates segment `id`: header written and fsynced, directory fsynced. On failure the file is removed
/// again; `Err((error, removed))` says whether that worked.
pub(crate) fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    id: u64,
    created_ms: i64,
    next_seq: &[u64],
) -> Result<Arc<SegmentFile>, (std::io::Error, bool)> {
    let path = segment_path(dir, id);
    let header = SegmentHeader {
        segment_id: id,
        created_ms,
        next_seq: next_seq.to_vec(),
    };
    let file = vfs.create_log(&path).map_err(|e| (e, true))?;
    let bytes = header.encode();
    let written = file
        .write_all_at(&bytes, 0)
        .and_then(|()| file.sync_data())
        .and_then(|()| vfs.sync_dir(dir));
    if let Err(e) = written {
        drop(file);
        let removed = vfs.remove_file(&path).and_then(|()| vfs.sync_dir(dir)).is_ok();
        return Err((e, removed));
    }
    Ok(Arc::new(SegmentFile {
        id,
        path,
        file,
        header_len: bytes.len() as u64,
        base_seq: header.next_seq,
        created_ms,
    }))
}

pub(crate) fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    shard_count: usize,
    mode: RecoveryMode,
    now_ms: i64,
) -> Result<Recovered, OpenError> {
    vfs.create_dir_all(dir).map_err(io_err(dir))?;
    let mut ids: Vec<u64> = vfs
        .list(dir)
        .map_err(io_err(dir))?
        .iter()
        .filter_map(|name| parse_segment_name(name))
        .collect();
    ids.sort_unstable();

    let header_len = segment_header_len(shard_count);
    let mut segments: Vec<(Arc<SegmentFile>, u64)> = Vec::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        let path = segment_path(dir, id);
        let file = vfs.open_log(&path).map_err(io_err(&path))?;
        let len = file.size().map_err(io_err(&path))?;
        let mut buf = vec![0; header_len.min(len as usize)];
        crate::vfs::read_exact_at(file.as_ref(), &mut buf, 0).map_err(io_err(&path))?;
        match SegmentHeader::decode(&buf, shard_count) {
            Ok(header) if header.segment_id == id => segments.push((
                Arc::new(SegmentFile {
                    id,
                    path,
                    file,
                    header_len: header_len as u64,
                    base_seq: header.next_seq,
                    created_ms: header.created_ms,
                }),
                len,
            )),
            result => {
                let reason = result.err().unwrap_or("segment header names another segment id");
                if i + 1 == ids.len() {
                    // The writer fsyncs a header before writing any frame: nothing here was acknowledged.
                    warn!(file = %path.display(), len, reason, "Removing a segment whose creation was interrupted.");
                    drop(file);
                    vfs.remove_file(&path).map_err(io_err(&path))?;
                    vfs.sync_dir(dir).map_err(io_err(dir))?;
                } else {
                    return Err(OpenError::Corrupt {
                        path,
                        offset: 0,
                        reason: reason.to_owned(),
                    });
                }
            }
        }
    }

    if segments.is_empty() {
        let file = create_segment(vfs, dir, 1, now_ms, &vec![0; shard_count])
            .map_err(|(e, _)| io_err(&segment_path(dir, 1))(e))?;
        let len = file.header_len;
        segments.push((file, len));
    }

    let mut tips: Vec<ShardTip> = segments[0]
        .0
        .base_seq
        .iter()
        .map(|&seq| ShardTip {
            next_seq: seq,
            trim_seq: seq,
            last_arrival_ms: 0,
        })
        .collect();
    let mut entries = Vec::with_capacity(segments.len());
    let mut truncated_bytes = 0;
    let last = segments.len() - 1;
    for (i, (file, len)) in segments.into_iter().enumerate() {
        let mut entry = SegmentEntry::new(file.clone());
        check_continuity(&file, &mut tips, mode)?;
        let scan = match scan_segment(&file, len, &mut entry, &mut tips) {
            Err(Damage::At(..)) if is_padding(&file, entry.visible_len, len).map_err(io_err(&file.path))? => {
                // The zeros after a direct write's last frame (crate::direct), not damage.
                file.file
                    .set_len(entry.visible_len)
                    .and_then(|()| file.file.sync_data())
                    .map_err(io_err(&file.path))?;
                Ok(())
            }
            scan => scan,
        };
        if let Err(Damage::Io(e)) = scan {
            return Err(io_err(&file.path)(e));
        }
        if let Err(Damage::At(offset, reason)) = scan {
            let good_len = entry.visible_len;
            if i == last {
                let dropped_bytes = len - good_len;
                if dropped_bytes <= MAX_WRITE_BYTES {
                    warn!(
                        file = %file.path.display(), offset, kept_bytes = good_len, dropped_bytes,
                        records = entry.records, reason, "Truncated torn tail during recovery."
                    );
                } else {
                    // No single write is this large: acknowledged data was damaged, not a write torn.
                    error!(
                        file = %file.path.display(), offset, kept_bytes = good_len, dropped_bytes,
                        records = entry.records, reason,
                        "Truncated a damaged active segment during recovery; acknowledged records after the damage are lost."
                    );
                }
                file.file
                    .set_len(good_len)
                    .and_then(|()| file.file.sync_data())
                    .map_err(io_err(&file.path))?;
                truncated_bytes = len - good_len;
            } else if mode == RecoveryMode::SkipCorruptSegmentTail {
                error!(
                    file = %file.path.display(), offset, skipped_bytes = len - good_len, records_kept = entry.records,
                    reason, "Skipping the corrupt rest of a sealed segment; its records after this offset are lost."
                );
            } else {
                return Err(OpenError::Corrupt {
                    path: file.path.clone(),
                    offset,
                    reason: reason.to_owned(),
                });
            }
        }
        entries.push(entry);
    }
    let last_arrival_ms = entries.iter().map(|e| e.last_arrival_ms).max().unwrap_or(now_ms);
    let next_segment_id = entries.last().map_or(1, |e| e.file.id + 1);
    info!(
        dir = %dir.display(), segments = entries.len(), records = entries.iter().map(|e| e.records).sum::<u64>(),
        truncated_bytes, "Recovered stream segments."
    );
    Ok(Recovered {
        state: State {
            segments: entries,
            tips,
        },
        next_segment_id,
        last_arrival_ms,
        truncated_bytes,
    })
}

/// A segment's header must continue its predecessor's numbering exactly (a gap is tolerated only after
/// a skipped corrupt region).
fn check_continuity(file: &SegmentFile, tips: &mut [ShardTip], mode: RecoveryMode) -> Result<(), OpenError> {
    for (tip, &base) in tips.iter_mut().zip(&file.base_seq) {
        if base == tip.next_seq {
            continue;
        }
        if base > tip.next_seq && mode == RecoveryMode::SkipCorruptSegmentTail {
            error!(file = %file.path.display(), from = tip.next_seq, to = base, "Sequence numbers lost to corruption.");
            tip.next_seq = base;
            continue;
        }
        return Err(OpenError::Corrupt {
            path: file.path.clone(),
            offset: 0,
            reason: format!(
                "segment starts a shard at sequence offset {base}, but the previous segment ends at {}",
                tip.next_seq
            ),
        });
    }
    Ok(())
}

/// Whether the bytes from `good_len` to `len` are the zeros a direct file leaves after its last
/// frame: the last block's padding and the zeros written ahead, at most
/// [`crate::direct::MAX_ZERO_TAIL`] bytes to a block boundary.
fn is_padding(file: &SegmentFile, good_len: u64, len: u64) -> std::io::Result<bool> {
    let align = crate::direct::ALIGN as u64;
    if !len.is_multiple_of(align) || len - good_len > crate::direct::MAX_ZERO_TAIL {
        return Ok(false);
    }
    let mut rest = vec![0; (len - good_len) as usize];
    crate::vfs::read_exact_at(file.file.as_ref(), &mut rest, good_len)?;
    Ok(rest.iter().all(|&b| b == 0))
}

enum Damage {
    /// Bytes that are not a valid frame (or batch), at this offset.
    At(u64, &'static str),
    /// Reading failed: nothing is known about the bytes, so nothing may be cut.
    Io(std::io::Error),
}

/// Replays a segment's frames into `entry` and `tips`, batch by batch. Stops at the first problem,
/// returning its offset and reason; `entry.visible_len` is then the end of the last complete batch.
fn scan_segment(
    file: &Arc<SegmentFile>,
    len: u64,
    entry: &mut SegmentEntry,
    tips: &mut [ShardTip],
) -> Result<(), Damage> {
    let mut cursor = FrameCursor::new(file.file.clone(), file.header_len, len);
    let mut batch: Vec<FrameInfo> = Vec::new();
    loop {
        let frame = match cursor.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) if batch.is_empty() => return Ok(()),
            Ok(None) => return Err(Damage::At(batch[0].offset, "batch without its end frame")),
            Err(CursorError::Truncated { offset }) => {
                return Err(Damage::At(offset, "frame runs past the end of the file"));
            }
            Err(CursorError::Corrupt { offset, reason }) => return Err(Damage::At(offset, reason)),
            Err(CursorError::Io(e)) => return Err(Damage::Io(e)),
        };
        let shard = frame.shard as usize;
        if shard >= tips.len() {
            return Err(Damage::At(frame.offset, "frame names a shard the stream does not have"));
        }
        let damaged = |reason| Damage::At(frame.offset, reason);
        let records = frame.verify().map_err(damaged)?;
        records.check_layout().map_err(damaged)?;
        let expected = tips[shard].next_seq
            + batch
                .iter()
                .filter(|f| f.shard as usize == shard)
                .map(|f| f.count)
                .sum::<u64>();
        if records.first_seq != expected {
            return Err(damaged("sequence numbers do not continue the shard"));
        }
        batch.push(FrameInfo {
            shard: shard as u32,
            offset: frame.offset,
            arrival_ms: records.arrival_ms,
            first_seq: records.first_seq,
            count: u64::from(records.count),
        });
        if frame.is_batch_end() {
            for f in batch.drain(..) {
                let tip = &mut tips[f.shard as usize];
                tip.next_seq = f.first_seq + f.count;
                tip.last_arrival_ms = tip.last_arrival_ms.max(f.arrival_ms);
                entry.add_frame(f);
            }
            entry.visible_len = frame.end();
        }
    }
}

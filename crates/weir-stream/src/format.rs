//! Byte layout of segment files (all integers little-endian).
//!
//! ```text
//! segment  := header frame*
//! header   := magic "WEIRSEG\0" | version u16 | shard_count u16 | segment_id u64 | created_ms i64
//!             | next_seq u64 × shard_count | crc32c u32            (crc over everything before it)
//! frame    := len u32 | crc32c u32 | kind u8 | flags u8 | shard u16 | payload[len]
//!             crc32c covers len, kind, flags, shard and payload: a zeroed or flipped length fails it.
//! payload  := arrival_ms i64 | first_seq u64 | count u32 | record × count        (kind 1: records)
//! record   := key_len u16 | data_len u32 | partition_key[key_len] | data[data_len]
//! ```
//!
//! One appended batch becomes one frame per shard it touches, written back to back; the last carries
//! `FLAG_BATCH_END`. A batch is therefore complete only when its end frame is intact, which is how
//! recovery keeps batches atomic across shards. The records of one frame have consecutive sequence
//! numbers from `first_seq`, and all share the batch's arrival time. `next_seq` in the header is each
//! shard's next sequence number when the segment was created, so numbering survives retention deleting
//! every earlier segment.

use bytes::Bytes;
use std::io;
use std::sync::Arc;

use crate::vfs::VfsFile;

pub const SEGMENT_MAGIC: [u8; 8] = *b"WEIRSEG\0";
pub const FORMAT_VERSION: u16 = 1;
pub const FRAME_HEADER_LEN: usize = 12;
pub const PAYLOAD_PREFIX_LEN: usize = 20;
pub const RECORD_HEADER_LEN: usize = 6;
pub const KIND_RECORDS: u8 = 1;
pub const FLAG_BATCH_END: u8 = 1;
/// Any longer length is corruption: batches are capped well below it, and trusting a flipped length
/// would make a reader allocate gigabytes.
pub const MAX_FRAME_PAYLOAD: u32 = 64 * 1024 * 1024;
/// How much a cursor that wants every frame (recovery) reads per system call.
const READ_CHUNK: usize = 1024 * 1024;
/// A cursor that wants one shard's frames reads small: at least this much for a frame it wants…
const SHARD_FRAME_READ: usize = 16 * 1024;
/// …and this much for a header it has to look at (another shard's frames are skipped unread).
const SHARD_HEADER_READ: usize = 4 * 1024;

pub fn segment_header_len(shard_count: usize) -> usize {
    8 + 2 + 2 + 8 + 8 + 8 * shard_count + 4
}

/// What a segment records about itself when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment_id: u64,
    pub created_ms: i64,
    /// Each shard's next sequence number at creation.
    pub next_seq: Vec<u64>,
}

impl SegmentHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(segment_header_len(self.next_seq.len()));
        out.extend_from_slice(&SEGMENT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.next_seq.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.segment_id.to_le_bytes());
        out.extend_from_slice(&self.created_ms.to_le_bytes());
        for seq in &self.next_seq {
            out.extend_from_slice(&seq.to_le_bytes());
        }
        out.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
        out
    }

    /// Decodes a header; `Err` names what is wrong.
    pub fn decode(buf: &[u8], shard_count: usize) -> Result<SegmentHeader, &'static str> {
        let len = segment_header_len(shard_count);
        if buf.len() < len {
            return Err("segment header is incomplete");
        }
        let (body, crc) = buf[..len].split_at(len - 4);
        if crc32c::crc32c(body) != u32_at(crc, 0) {
            return Err("segment header checksum mismatch");
        }
        if body[..8] != SEGMENT_MAGIC {
            return Err("not a weir segment (bad magic)");
        }
        if u16_at(body, 8) != FORMAT_VERSION {
            return Err("unsupported segment format version");
        }
        if usize::from(u16_at(body, 10)) != shard_count {
            return Err("segment shard count differs from the stream's");
        }
        Ok(SegmentHeader {
            segment_id: u64_at(body, 12),
            created_ms: i64_at(body, 20),
            next_seq: (0..shard_count).map(|i| u64_at(body, 28 + 8 * i)).collect(),
        })
    }
}

/// Appends one records frame to `out`.
pub fn encode_frame<'a>(
    out: &mut Vec<u8>,
    shard: u16,
    batch_end: bool,
    arrival_ms: i64,
    first_seq: u64,
    records: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for (key, data) in records {
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(data);
    }
    let payload_len = (out.len() - start - FRAME_HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 8] = KIND_RECORDS;
    out[start + 9] = if batch_end { FLAG_BATCH_END } else { 0 };
    out[start + 10..start + 12].copy_from_slice(&shard.to_le_bytes());
    let crc = frame_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// crc32c over a whole frame's bytes except the crc field itself.
fn frame_crc(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[8..])
}

/// A frame as read from disk; its checksum is verified by [`RawFrame::verify`].
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Offset of the frame's first byte in its segment.
    pub offset: u64,
    pub kind: u8,
    pub flags: u8,
    pub shard: u16,
    crc: u32,
    /// Header and payload.
    bytes: Bytes,
}

impl RawFrame {
    /// Offset just past the frame.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }

    pub fn is_batch_end(&self) -> bool {
        self.flags & FLAG_BATCH_END != 0
    }

    /// Checks the checksum and decodes the payload's fixed prefix. `Err` names the problem.
    pub fn verify(&self) -> Result<FrameRecords, &'static str> {
        if frame_crc(&self.bytes) != self.crc {
            return Err("frame checksum mismatch");
        }
        if self.kind != KIND_RECORDS {
            return Err("unknown frame kind");
        }
        if self.flags & !FLAG_BATCH_END != 0 {
            return Err("unknown frame flags");
        }
        let payload = self.bytes.slice(FRAME_HEADER_LEN..);
        if payload.len() < PAYLOAD_PREFIX_LEN {
            return Err("frame payload shorter than its prefix");
        }
        let records = FrameRecords {
            arrival_ms: i64_at(&payload, 0),
            first_seq: u64_at(&payload, 8),
            count: u32_at(&payload, 16),
            body: payload.slice(PAYLOAD_PREFIX_LEN..),
        };
        if records.count == 0 {
            return Err("frame holds no records");
        }
        Ok(records)
    }
}

/// The records of one verified frame.
#[derive(Debug, Clone)]
pub struct FrameRecords {
    pub arrival_ms: i64,
    pub first_seq: u64,
    pub count: u32,
    body: Bytes,
}

impl FrameRecords {
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count) - 1
    }

    /// Decodes every record as `(partition_key, data)`, checking the layout exactly.
    pub fn decode(&self) -> Result<Vec<(String, Bytes)>, &'static str> {
        let mut out = Vec::with_capacity(self.count as usize);
        self.walk(|key, data| {
            out.push((key.to_owned(), self.body.slice(data)));
        })?;
        Ok(out)
    }

    /// Checks the layout exactly, without allocating (recovery's check).
    pub fn check_layout(&self) -> Result<(), &'static str> {
        self.walk(|_, _| {})
    }

    /// Calls `f(partition_key, data_range)` for every record; fails on any layout error.
    fn walk(&self, mut f: impl FnMut(&str, std::ops::Range<usize>)) -> Result<(), &'static str> {
        let body = &self.body[..];
        let mut pos = 0;
        for _ in 0..self.count {
            if body.len() - pos < RECORD_HEADER_LEN {
                return Err("record header runs past the frame");
            }
            let key_len = usize::from(u16_at(body, pos));
            let data_len = u32_at(body, pos + 2) as usize;
            pos += RECORD_HEADER_LEN;
            if body.len() - pos < key_len + data_len || key_len == 0 || data_len == 0 {
                return Err("record runs past the frame or is empty");
            }
            let key = std::str::from_utf8(&body[pos..pos + key_len]).map_err(|_| "partition key is not UTF-8")?;
            pos += key_len;
            f(key, pos..pos + data_len);
            pos += data_len;
        }
        if pos != body.len() {
            return Err("frame has bytes after its last record");
        }
        Ok(())
    }
}

/// Why a cursor stopped before `end`.
#[derive(Debug)]
pub enum CursorError {
    Io(io::Error),
    /// The bytes at `offset` cannot be a frame (zeroed or absurd length).
    Corrupt {
        offset: u64,
        reason: &'static str,
    },
    /// A frame starts at `offset` but the file ends before it does.
    Truncated {
        offset: u64,
    },
}

/// Walks the frames of a segment between two offsets, reading in large chunks into a buffer that is
/// reused from read to read (a thread's cursors share one; see [`SCRATCH`]). Only the frames a caller
/// asks for are copied out of it; the others are passed over by their header, and when their payload
/// lies beyond the buffer it is not read at all.
pub struct FrameCursor {
    file: Arc<dyn VfsFile>,
    offset: u64,
    end: u64,
    buf: Vec<u8>,
    buf_offset: u64,
    buf_len: usize,
}

thread_local! {
    /// The chunk buffer of this thread's last cursor. A fresh 1 MiB allocation per read was mapped,
    /// zeroed and page-faulted every time: most of the readers' cost under load.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A frame header: enough to skip the frame or decide to read it.
struct Header {
    len: usize,
    shard: u16,
}

impl FrameCursor {
    pub fn new(file: Arc<dyn VfsFile>, offset: u64, end: u64) -> FrameCursor {
        FrameCursor {
            file,
            offset,
            end,
            buf: SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut())),
            buf_offset: offset,
            buf_len: 0,
        }
    }

    /// Offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame, `Ok(None)` exactly at `end`. Checksums are not verified here.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, CursorError> {
        self.next_frame_where(|_| true, READ_CHUNK, READ_CHUNK)
    }

    /// The next frame of `shard`, stepping over other shards' frames by their headers (their
    /// checksums are not read).
    pub fn next_frame_of(&mut self, shard: u16) -> Result<Option<RawFrame>, CursorError> {
        self.next_frame_where(|s| s == shard, SHARD_HEADER_READ, SHARD_FRAME_READ)
    }

    fn next_frame_where(
        &mut self,
        wanted: impl Fn(u16) -> bool,
        header_read: usize,
        frame_read: usize,
    ) -> Result<Option<RawFrame>, CursorError> {
        loop {
            if self.offset >= self.end {
                return Ok(None);
            }
            let header = self.header(header_read)?;
            let frame_len = FRAME_HEADER_LEN + header.len;
            if !wanted(header.shard) {
                if self.offset + frame_len as u64 > self.end {
                    return Err(CursorError::Truncated { offset: self.offset });
                }
                self.offset += frame_len as u64;
                continue;
            }
            let bytes = Bytes::copy_from_slice(self.bytes(self.offset, frame_len, frame_read)?);
            let frame = RawFrame {
                offset: self.offset,
                crc: u32_at(&bytes, 4),
                kind: bytes[8],
                flags: bytes[9],
                shard: header.shard,
                bytes,
            };
            self.offset = frame.end();
            return Ok(Some(frame));
        }
    }

    fn header(&mut self, read: usize) -> Result<Header, CursorError> {
        let header = self.bytes(self.offset, FRAME_HEADER_LEN, read)?;
        let len = u32_at(header, 0);
        let shard = u16_at(header, 10);
        if len > MAX_FRAME_PAYLOAD || (len as usize) < PAYLOAD_PREFIX_LEN {
            return Err(CursorError::Corrupt {
                offset: self.offset,
                reason: "frame length is out of range",
            });
        }
        Ok(Header {
            len: len as usize,
            shard,
        })
    }

    /// `len` bytes at `offset`, from the buffer or from a read of at least `read` bytes into it.
    fn bytes(&mut self, offset: u64, len: usize, read: usize) -> Result<&[u8], CursorError> {
        if offset + len as u64 > self.end {
            return Err(CursorError::Truncated { offset: self.offset });
        }
        let buf_end = self.buf_offset + self.buf_len as u64;
        if offset < self.buf_offset || offset + len as u64 > buf_end {
            let want = (self.end - offset).min(read.max(len) as u64) as usize;
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            self.buf_len = 0;
            crate::vfs::read_exact_at(self.file.as_ref(), &mut self.buf[..want], offset).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    CursorError::Truncated { offset: self.offset }
                } else {
                    CursorError::Io(e)
                }
            })?;
            self.buf_offset = offset;
            self.buf_len = want;
        }
        let start = (offset - self.buf_offset) as usize;
        Ok(&self.buf[start..start + len])
    }
}

impl Drop for FrameCursor {
    fn drop(&mut self) {
        // Keep the larger buffer; a frame bigger than a chunk may have grown this one.
        let buf = std::mem::take(&mut self.buf);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if buf.capacity() > s.capacity() && buf.capacity() <= 4 * READ_CHUNK {
                *s = buf;
            }
        });
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            segment_id: 7,
            created_ms: 1_700_000_000_000,
            next_seq: vec![3, 0, 9],
        };
        let bytes = header.encode();
        assert_eq!(bytes.len(), segment_header_len(3));
        assert_eq!(SegmentHeader::decode(&bytes, 3), Ok(header));
        assert!(SegmentHeader::decode(&bytes, 2).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(SegmentHeader::decode(&bad, 3).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn frame_round_trips() {
        let mut out = Vec::new();
        let records = [("k1", &b"hello"[..]), ("ключ", &b"x"[..])];
        encode_frame(&mut out, 3, true, 42, 10, records.iter().copied());
        let bytes = Bytes::from(out);
        let frame = RawFrame {
            offset: 0,
            crc: u32_at(&bytes, 4),
            kind: bytes[8],
            flags: bytes[9],
            shard: u16_at(&bytes, 10),
            bytes,
        };
        assert_eq!(frame.shard, 3);
        assert!(frame.is_batch_end());
        let recs = frame.verify().expect("valid frame");
        assert_eq!((recs.arrival_ms, recs.first_seq, recs.last_seq()), (42, 10, 11));
        let decoded = recs.decode().expect("decodes");
        assert_eq!(decoded[1].0, "ключ");
        assert_eq!(&decoded[0].1[..], b"hello");
    }
}

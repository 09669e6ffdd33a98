//! Direct I/O (`O_DIRECT`) for the log's segments and for whole files written once (delivered
//! objects).
//!
//! Why: a buffered write copies every byte into page-cache pages, and on virtual machines that hand
//! free guest memory back to the host (free page reporting, DAMON reclaim) most of those pages are
//! fresh host allocations, several times slower than a copy into warm memory. Direct I/O writes
//! from a few reused, aligned buffers instead, and the device reads them by DMA.
//!
//! A [`DirectFile`] keeps the last [`TAIL_CHUNKS`] MiB it wrote in memory, so readers at the tip
//! (delivery) are served from there; older bytes are read back with direct I/O a chunk at a time
//! into a small cache that every reader shares ([`read_cache`]): readers of different shards pass
//! over the same bytes of the log at about the same time, and each chunk then comes from the device
//! once, into warm memory, instead of through fresh page-cache pages per byte.
//!
//! Writes are appends: each one rewrites the last partial 4 KiB block (its durable prefix with
//! identical bytes, so a torn sector cannot damage acknowledged data) and pads the block with zeros.
//! Small appends also keep [`ZERO_AHEAD`] bytes of zeros written beyond the end, as PostgreSQL
//! zero-fills its WAL: overwriting allocated blocks inside the file changes no metadata, so their
//! `fdatasync` is a device flush without a journal commit (107 against 164 µs here). A segment may
//! therefore end with up to [`MAX_ZERO_TAIL`] zero bytes after its last frame; recovery knows this,
//! and a file closed cleanly is cut at its last byte.
//!
//! File systems without `O_DIRECT` get ordinary buffered files.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::vfs::VfsFile;

mod read_cache;

/// The alignment of direct I/O offsets, lengths and buffers (the largest logical block size in use).
pub const ALIGN: usize = 4096;

/// The unit of the in-memory tail, and of the pieces written by [`create_with`].
const CHUNK: usize = 1 << 20;

/// How much of a segment's end stays in memory for readers while it is written (in chunks).
pub const TAIL_CHUNKS: usize = 16;

/// How much a sealed segment keeps in memory until the next one is sealed, for readers just behind
/// the roll.
pub const SEALED_TAIL_BYTES: usize = 4 * CHUNK;

/// How many bytes of zeros an append keeps written beyond the end of the file.
pub const ZERO_AHEAD: usize = CHUNK;

/// Appends this large do not extend the zeros: a write of many blocks costs more than the journal
/// commit the zeros would save, and zeroing ahead would double its bytes.
const ZERO_AHEAD_MAX_WRITE: usize = ZERO_AHEAD / 4;

/// The most one append copies into the tail before writing: with the chunk it starts in, it touches
/// at most [`TAIL_CHUNKS`] chunks, none of which the tail lets go before they are written.
const MAX_APPEND: usize = (TAIL_CHUNKS - 1) * CHUNK;

/// The most zero bytes a direct file can hold after its last written byte (the padding of the last
/// block and the zeros ahead).
pub const MAX_ZERO_TAIL: u64 = (ZERO_AHEAD + ALIGN) as u64;

/// Chunks kept for reuse, so the tail's memory stays warm (see the module comment).
const POOL_CHUNKS: usize = TAIL_CHUNKS;

static POOL: Mutex<Vec<Aligned>> = Mutex::new(Vec::new());

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

fn align_up_u64(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

/// A chunk of zeros that is never written to, the source of the zeros written ahead.
fn zeros() -> &'static [u8] {
    static ZEROS: std::sync::OnceLock<Aligned> = std::sync::OnceLock::new();
    ZEROS.get_or_init(Aligned::zeroed).bytes()
}

/// One chunk of memory aligned for direct I/O, in safe code: over-allocate and start at the first
/// aligned byte.
#[derive(Debug)]
struct Aligned {
    buf: Vec<u8>,
    start: usize,
}

impl Aligned {
    fn take() -> Aligned {
        lock(&POOL).pop().unwrap_or_else(Aligned::zeroed)
    }

    fn zeroed() -> Aligned {
        let buf = vec![0; CHUNK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        Aligned { buf, start }
    }

    fn give_back(self) {
        let mut pool = lock(&POOL);
        if pool.len() < POOL_CHUNKS {
            pool.push(self);
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + CHUNK]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + CHUNK]
    }
}

type SharedChunk = Arc<RwLock<Aligned>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_chunk(c: &SharedChunk) -> RwLockReadGuard<'_, Aligned> {
    c.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_chunk(c: &SharedChunk) -> RwLockWriteGuard<'_, Aligned> {
    c.write().unwrap_or_else(PoisonError::into_inner)
}

/// The chunk's memory back, unless a reader is still copying out of it (then it is simply freed).
fn reclaim(chunk: SharedChunk) -> Option<Aligned> {
    Arc::try_unwrap(chunk)
        .ok()
        .map(|lock| lock.into_inner().unwrap_or_else(PoisonError::into_inner))
}

fn recycle(chunk: SharedChunk) {
    if let Some(memory) = reclaim(chunk) {
        memory.give_back();
    }
}

/// Opens `path` a second time with `O_DIRECT`; `None` where the file system has no direct I/O.
fn open_direct(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An append-only file written with direct I/O; see the module comment.
#[derive(Debug)]
pub struct DirectFile {
    /// Opened with `O_DIRECT`: every write, from the tail's memory, and reads into the read cache.
    direct: File,
    /// The same file without it: size, truncation, and the tail's reload.
    buffered: File,
    tail: Mutex<Tail>,
    /// This file's key in the read cache.
    id: read_cache::FileId,
}

#[derive(Debug, Default)]
struct Tail {
    /// Whether `end` and `chunks` reflect the file (filled on the first write or truncation).
    loaded: bool,
    /// Bytes written. On disk the file may run on to the next [`ALIGN`] boundary, with zeros.
    end: u64,
    /// The file offset of `chunks[0]` (a multiple of [`CHUNK`]).
    start: u64,
    chunks: VecDeque<SharedChunk>,
    /// Where the file ends on disk (block-aligned): the last block's padding and the zeros written
    /// ahead lie between `end` and here.
    zeroed_end: u64,
}

impl Tail {
    /// Makes the chunk holding `end` the last one, loading its written part from the file.
    fn load(&mut self, buffered: &File) -> io::Result<()> {
        if self.loaded {
            return Ok(());
        }
        let end = buffered.metadata()?.len();
        let start = end - end % CHUNK as u64;
        let mut chunk = Aligned::take();
        let written = (end - start) as usize;
        buffered.read_exact_at(&mut chunk.bytes_mut()[..written], start)?;
        self.release(0);
        self.chunks.push_back(Arc::new(RwLock::new(chunk)));
        self.start = start;
        self.end = end;
        self.zeroed_end = align_up_u64(end);
        self.loaded = true;
        Ok(())
    }

    /// The chunk for file offset `at` (at most one chunk past the last), recycling the oldest beyond
    /// [`TAIL_CHUNKS`].
    fn chunk_at(&mut self, at: u64) -> SharedChunk {
        let index = ((at - self.start) / CHUNK as u64) as usize;
        if let Some(chunk) = self.chunks.get(index) {
            return chunk.clone();
        }
        let oldest = if self.chunks.len() >= TAIL_CHUNKS {
            self.start += CHUNK as u64;
            self.chunks.pop_front().and_then(reclaim)
        } else {
            None
        };
        let chunk = Arc::new(RwLock::new(oldest.unwrap_or_else(Aligned::take)));
        self.chunks.push_back(chunk.clone());
        chunk
    }

    /// Keeps only the last `keep` chunks.
    fn release(&mut self, keep: usize) {
        while self.chunks.len() > keep {
            if let Some(c) = self.chunks.pop_front() {
                recycle(c);
                self.start += CHUNK as u64;
            }
        }
    }
}

impl DirectFile {
    /// Creates a new file (failing if it exists); a buffered file where direct I/O is unsupported.
    pub fn create_new(path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let buffered = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        Self::with(buffered, path)
    }

    /// Opens an existing file.
    pub fn open(path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let buffered = OpenOptions::new().read(true).write(true).open(path)?;
        Self::with(buffered, path)
    }

    fn with(buffered: File, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        Ok(match open_direct(path)? {
            Some(direct) => Arc::new(DirectFile {
                direct,
                buffered,
                tail: Mutex::default(),
                id: read_cache::FileId::new(),
            }),
            None => Arc::new(crate::vfs::StdFile(buffered)),
        })
    }
}

impl VfsFile for DirectFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let found = {
            let tail = lock(&self.tail);
            if tail.loaded && offset >= tail.end {
                return Ok(0);
            }
            let limit = if tail.loaded { tail.end - offset } else { u64::MAX };
            let want = buf.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
            if tail.loaded && offset >= tail.start {
                let index = ((offset - tail.start) / CHUNK as u64) as usize;
                tail.chunks.get(index).map(|c| (c.clone(), want))
            } else {
                // Below the tail: never into it, where the disk's last block may still be padding.
                let disk_end = tail.loaded.then_some(tail.start);
                drop(tail);
                return self.read_back(&mut buf[..want], offset, disk_end);
            }
        };
        let Some((chunk, want)) = found else {
            return Ok(0);
        };
        let within = (offset % CHUNK as u64) as usize;
        let n = want.min(CHUNK - within);
        buf[..n].copy_from_slice(&read_chunk(&chunk).bytes()[within..within + n]);
        Ok(n)
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        // In parts that the tail can hold whole: a part never pushes its own chunks out of the tail
        // before they are on disk, so whatever lies below the tail is on disk for `read_back`.
        let mut at = offset;
        for part in data.chunks(MAX_APPEND) {
            self.append(part, at)?;
            at += part.len() as u64;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.direct.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut tail = lock(&self.tail);
        self.buffered.set_len(len)?;
        // Rare (rollbacks, recovery): start over from the file.
        tail.release(0);
        tail.loaded = false;
        self.id.forget_cached();
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        let tail = lock(&self.tail);
        if tail.loaded {
            Ok(tail.end)
        } else {
            Ok(self.buffered.metadata()?.len())
        }
    }

    /// Sealed: no more writes, so the zeros after the end go too.
    fn retire(&self, keep_bytes: usize) {
        let mut tail = lock(&self.tail);
        tail.release(keep_bytes / CHUNK);
        self.cut_zeros(&mut tail);
    }
}

impl DirectFile {
    /// Appends at most [`MAX_APPEND`] bytes at the end of the file.
    fn append(&self, data: &[u8], offset: u64) -> io::Result<()> {
        // Copy into the tail under its lock, then write without it (readers only read what the
        // writer has published as durable, never the bytes being written).
        let mut pieces = Vec::new();
        let mut zero_ahead = None;
        {
            let mut tail = lock(&self.tail);
            tail.load(&self.buffered)?;
            if offset != tail.end {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("direct log files are append-only: write at {offset}, end {}", tail.end),
                ));
            }
            let mut at = offset;
            let mut rest = data;
            while !rest.is_empty() {
                let chunk = tail.chunk_at(at);
                let chunk_start = at - at % CHUNK as u64;
                let within = (at - chunk_start) as usize;
                let n = rest.len().min(CHUNK - within);
                let (from, to) = (within - within % ALIGN, align_up(within + n));
                {
                    let mut bytes = write_chunk(&chunk);
                    let bytes = bytes.bytes_mut();
                    bytes[within..within + n].copy_from_slice(&rest[..n]);
                    // The padding to the block boundary: zeros, never stale bytes of reused memory.
                    bytes[within + n..to].fill(0);
                }
                pieces.push((chunk, from, to, chunk_start));
                at += n as u64;
                rest = &rest[n..];
            }
            tail.end = at;
            let padded_end = align_up_u64(at);
            if padded_end > tail.zeroed_end {
                tail.zeroed_end = padded_end;
                if data.len() < ZERO_AHEAD_MAX_WRITE {
                    zero_ahead = Some(padded_end);
                    tail.zeroed_end += ZERO_AHEAD as u64;
                }
            }
        }
        if let Some(from) = zero_ahead {
            self.direct.write_all_at(&zeros()[..ZERO_AHEAD], from)?;
        }
        for (chunk, from, to, chunk_start) in pieces {
            self.direct
                .write_all_at(&read_chunk(&chunk).bytes()[from..to], chunk_start + from as u64)?;
        }
        Ok(())
    }

    /// Cuts the zeros after the last written byte (the last block's padding, the zeros ahead), so a
    /// file no longer written ends at its last frame. Best effort and not fsynced: recovery accepts
    /// the zeros.
    fn cut_zeros(&self, tail: &mut Tail) {
        if tail.loaded && tail.zeroed_end > tail.end {
            let _ = self.buffered.set_len(tail.end);
            tail.zeroed_end = tail.end;
        }
    }
}

impl Drop for DirectFile {
    fn drop(&mut self) {
        let mut tail = std::mem::take(self.tail.get_mut().unwrap_or_else(PoisonError::into_inner));
        tail.release(0);
        self.cut_zeros(&mut tail);
        self.id.forget_cached();
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Aligned>> = const { std::cell::RefCell::new(None) };
}

/// Files at least this large are written with direct I/O by [`create_with`]; for small ones
/// (checkpoints, intents) the padding and second descriptor are not worth it.
const DIRECT_WRITE_MIN: usize = 64 * 1024;

/// Creates `path` (failing if it exists) with `contents` and fsyncs it, writing with direct I/O
/// through a reused 1 MiB buffer per thread; buffered for small files and where direct I/O is
/// unsupported.
pub fn create_with(path: &Path, contents: &[u8]) -> io::Result<()> {
    let buffered = OpenOptions::new().write(true).create_new(true).open(path)?;
    let direct = if contents.len() < DIRECT_WRITE_MIN {
        None
    } else {
        open_direct(path)?
    };
    let Some(direct) = direct else {
        buffered.write_all_at(contents, 0)?;
        return buffered.sync_data();
    };
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let scratch = scratch.get_or_insert_with(Aligned::take);
        for (i, piece) in contents.chunks(CHUNK).enumerate() {
            let padded = align_up(piece.len());
            let bytes = scratch.bytes_mut();
            bytes[..piece.len()].copy_from_slice(piece);
            bytes[piece.len()..padded].fill(0);
            direct.write_all_at(&scratch.bytes()[..padded], (i * CHUNK) as u64)?;
        }
        io::Result::Ok(())
    })?;
    if !contents.len().is_multiple_of(ALIGN) {
        buffered.set_len(contents.len() as u64)?;
    }
    direct.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::read_exact_at;

    fn contents(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// A new direct file `log` in a temporary directory (kept alive by the returned guard).
    fn new_log() -> (tempfile::TempDir, std::path::PathBuf, Arc<dyn VfsFile>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let file = DirectFile::create_new(&path).expect("create");
        (dir, path, file)
    }

    /// Appends pieces of odd sizes (crossing block and chunk boundaries) to `file`, and to `expected`
    /// which mirrors it, until both hold `len` bytes or more.
    fn append_until(file: &Arc<dyn VfsFile>, expected: &mut Vec<u8>, len: usize, seed: u8) {
        let mut seed = seed;
        while expected.len() < len {
            let piece = contents(7_001 + expected.len() % 300_007, seed);
            seed = seed.wrapping_add(1);
            file.write_all_at(&piece, expected.len() as u64).expect("append");
            expected.extend_from_slice(&piece);
        }
    }

    /// `len` bytes of `file` from `offset`.
    fn read(file: &Arc<dyn VfsFile>, offset: usize, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        read_exact_at(file.as_ref(), &mut buf, offset as u64).expect("read");
        buf
    }

    #[test]
    fn appends_read_back_from_memory_and_from_disk() {
        let (_dir, path, file) = new_log();
        let mut expected = Vec::new();
        // Enough to push the first chunks out of the tail.
        append_until(&file, &mut expected, (TAIL_CHUNKS + 3) * CHUNK, 0);
        file.sync_data().expect("sync");
        assert_eq!(file.size().expect("size"), expected.len() as u64);
        for &(offset, len) in &[
            (0, 100),
            (CHUNK - 50, 100),
            (expected.len() - 10_000, 10_000),
            (5, CHUNK * 3),
        ] {
            assert_eq!(
                read(&file, offset, len),
                expected[offset..offset + len],
                "read at {offset}"
            );
        }
        let mut past = [0; 8];
        assert_eq!(file.read_at(&mut past, expected.len() as u64).expect("read at end"), 0);
        drop(file);
        // Closed: the padding is cut and the disk holds every byte.
        assert_eq!(std::fs::read(&path).expect("read file"), expected);
    }

    #[test]
    fn truncation_and_reopen_continue_where_the_file_ends() {
        let (_dir, path, file) = new_log();
        let a = contents(10_000, 1);
        file.write_all_at(&a, 0).expect("write");
        file.set_len(6_000).expect("truncate");
        let b = contents(3_000, 2);
        assert!(file.write_all_at(&b, 10_000).is_err(), "not at the end");
        file.write_all_at(&b, 6_000).expect("append after truncation");
        file.sync_data().expect("sync");
        let mut expected = a[..6_000].to_vec();
        expected.extend_from_slice(&b);
        assert_eq!(read(&file, 0, expected.len()), expected);
        // On disk before close: the data, then zeros to the block boundary and beyond.
        let on_disk = std::fs::read(&path).expect("read file");
        assert_eq!(on_disk.len(), align_up(expected.len()) + ZERO_AHEAD);
        assert_eq!(on_disk[..expected.len()], expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
        std::mem::forget(file); // as after a crash: the padding stays

        let file = DirectFile::open(&path).expect("reopen");
        file.set_len(expected.len() as u64).expect("cut the padding");
        let c = contents(5_000, 3);
        file.write_all_at(&c, expected.len() as u64)
            .expect("append after reopen");
        expected.extend_from_slice(&c);
        drop(file);
        assert_eq!(std::fs::read(&path).expect("read file"), expected);
    }

    #[test]
    fn bytes_read_back_are_forgotten_when_the_file_is_cut() {
        let (_dir, _path, file) = new_log();
        let mut first = Vec::new();
        append_until(&file, &mut first, (TAIL_CHUNKS + 4) * CHUNK, 1);
        file.sync_data().expect("sync");
        // Below the tail: read back from disk into the cache, twice (the second time from the cache).
        for _ in 0..2 {
            assert_eq!(read(&file, 100, 3 * CHUNK), first[100..100 + 3 * CHUNK]);
        }
        // A rollback cuts into the cached chunks; different bytes are written there.
        let cut = CHUNK + 12_345;
        file.set_len(cut as u64).expect("cut");
        let mut expected = first[..cut].to_vec();
        append_until(&file, &mut expected, (TAIL_CHUNKS + 4) * CHUNK, 100);
        assert_eq!(
            read(&file, 100, 3 * CHUNK),
            expected[100..100 + 3 * CHUNK],
            "no stale cached bytes"
        );
    }

    #[test]
    fn a_write_larger_than_the_tail_reads_back_whole() {
        let (_dir, path, file) = new_log();
        let small = contents(5_000, 1);
        file.write_all_at(&small, 0).expect("small append");
        let large = contents((2 * TAIL_CHUNKS + 3) * CHUNK + 777, 2);
        file.write_all_at(&large, small.len() as u64).expect("large append");
        let mut expected = small;
        expected.extend_from_slice(&large);
        assert!(read(&file, 0, expected.len()) == expected, "read back differs");
        drop(file);
        assert!(std::fs::read(&path).expect("read file") == expected, "the file differs");
    }

    #[test]
    fn a_reopened_file_reads_back_to_its_unaligned_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let data = contents(3 * CHUNK + 777, 9);
        create_with(&path, &data).expect("write");
        let file = DirectFile::open(&path).expect("open");
        assert_eq!(read(&file, 0, data.len()), data);
        let mut past = [0; 8];
        assert_eq!(file.read_at(&mut past, data.len() as u64).expect("read at end"), 0);
    }

    #[test]
    fn small_appends_keep_zeros_ahead_and_sealing_cuts_them() {
        let (_dir, path, file) = new_log();
        let disk_len = || std::fs::metadata(&path).expect("meta").len() as usize;
        let small = contents(5_000, 1);
        file.write_all_at(&small, 0).expect("small append");
        assert_eq!(disk_len(), align_up(small.len()) + ZERO_AHEAD);
        // Further small appends land in the zeros: the file does not grow.
        let more = contents(6_000, 2);
        file.write_all_at(&more, small.len() as u64)
            .expect("append into the zeros");
        assert_eq!(disk_len(), align_up(small.len()) + ZERO_AHEAD);
        // A large append is written as it is, without zeros beyond it.
        let end = small.len() + more.len();
        let large = contents(2 * ZERO_AHEAD, 3);
        file.write_all_at(&large, end as u64).expect("large append");
        let end = end + large.len();
        assert_eq!(disk_len(), align_up(end));
        let on_disk = std::fs::read(&path).expect("read");
        assert_eq!(&on_disk[..5_000], &small[..]);
        assert!(on_disk[end..].iter().all(|&b| b == 0));
        file.retire(0);
        assert_eq!(disk_len(), end, "sealed: cut at the last byte");
    }

    #[test]
    fn whole_files_of_any_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, len) in [0, 1, ALIGN, ALIGN + 1, CHUNK, 3 * CHUNK + 17].into_iter().enumerate() {
            let path = dir.path().join(format!("object-{i}"));
            let data = contents(len, i as u8);
            create_with(&path, &data).expect("write");
            assert_eq!(std::fs::read(&path).expect("read"), data, "length {len}");
            assert!(create_with(&path, &data).is_err(), "exists");
        }
    }
}

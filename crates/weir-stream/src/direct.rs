//! Direct I/O (`O_DIRECT`) for the log's segments and for whole files written once (delivered
//! objects).
//!
//! Why: a buffered write copies every byte into page-cache pages, and on virtual machines that hand
//! free guest memory back to the host (free page reporting, DAMON reclaim) most of those pages are
//! fresh host allocations, several times slower than a copy into warm memory. Direct I/O writes
//! from a few reused, aligned buffers instead, and the device reads them by DMA.
//!
//! A [`DirectFile`] keeps the last [`TAIL_CHUNKS`] MiB it wrote in memory, so readers at the tip
//! (delivery) are served from there; older bytes are read through an ordinary descriptor (the
//! kernel keeps page cache and direct writes coherent). Writes are appends: each one rewrites the
//! last partial 4 KiB block (its durable prefix with identical bytes, so a torn sector cannot damage
//! acknowledged data) and pads the block with zeros. A segment may therefore end with fewer than
//! [`ALIGN`] zero bytes after its last frame; recovery knows this.
//!
//! File systems without `O_DIRECT` get ordinary buffered files.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::vfs::VfsFile;

/// The alignment of direct I/O offsets, lengths and buffers (the largest logical block size in use).
pub const ALIGN: usize = 4096;

/// The unit of the in-memory tail, and of the pieces written by [`create_with`].
const CHUNK: usize = 1 << 20;

/// How much of a segment's end stays in memory for readers while it is written (in chunks).
pub const TAIL_CHUNKS: usize = 32;

/// How much a sealed segment keeps in memory until the next one is sealed, for readers just behind
/// the roll.
pub const SEALED_TAIL_BYTES: usize = 4 * CHUNK;

/// Chunks kept for reuse, so the tail's memory stays warm (see the module comment).
const POOL_CHUNKS: usize = 2 * TAIL_CHUNKS;

static POOL: Mutex<Vec<Aligned>> = Mutex::new(Vec::new());

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
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
        lock(&POOL).pop().unwrap_or_else(|| {
            let buf = vec![0; CHUNK + ALIGN];
            let start = buf.as_ptr().align_offset(ALIGN);
            Aligned { buf, start }
        })
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

/// Opens `path` a second time with `O_DIRECT` for writing; `None` where the file system has no direct
/// I/O.
fn open_direct(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An append-only file written with direct I/O; see the module comment.
#[derive(Debug)]
pub struct DirectFile {
    /// Opened with `O_DIRECT`: every write, from the tail's memory.
    direct: File,
    /// The same file without it: reads of what the tail no longer holds, size, truncation, fsync.
    buffered: File,
    tail: Mutex<Tail>,
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
                let below = if tail.loaded { tail.start - offset } else { u64::MAX };
                let want = want.min(usize::try_from(below).unwrap_or(usize::MAX));
                drop(tail);
                return self.buffered.read_at(&mut buf[..want], offset);
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
        // Copy into the tail under its lock, then write without it (readers only read what the
        // writer has published as durable, never the bytes being written).
        let mut pieces = Vec::new();
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
        }
        for (chunk, from, to, chunk_start) in pieces {
            self.direct
                .write_all_at(&read_chunk(&chunk).bytes()[from..to], chunk_start + from as u64)?;
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

    fn retire(&self, keep_bytes: usize) {
        lock(&self.tail).release(keep_bytes / CHUNK);
    }
}

impl Drop for DirectFile {
    fn drop(&mut self) {
        let tail = self.tail.get_mut().unwrap_or_else(PoisonError::into_inner);
        tail.release(0);
        // Cut the last block's padding, so a cleanly closed segment ends at its last frame. Best
        // effort and not fsynced: recovery accepts the padding.
        if tail.loaded && self.buffered.metadata().is_ok_and(|m| m.len() > tail.end) {
            let _ = self.buffered.set_len(tail.end);
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Aligned>> = const { std::cell::RefCell::new(None) };
}

/// Creates `path` (failing if it exists) with `contents` and fsyncs it, writing with direct I/O
/// through a reused 1 MiB buffer per thread; buffered where direct I/O is unsupported.
pub fn create_with(path: &Path, contents: &[u8]) -> io::Result<()> {
    let buffered = OpenOptions::new().write(true).create_new(true).open(path)?;
    let Some(direct) = open_direct(path)? else {
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

    #[test]
    fn appends_read_back_from_memory_and_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let file = DirectFile::create_new(&path).expect("create");
        let mut expected = Vec::new();
        // Odd sizes cross block and chunk boundaries; enough to push the first chunks out of the tail.
        let mut seed = 0u8;
        while expected.len() < (TAIL_CHUNKS + 3) * CHUNK {
            let piece = contents(7_001 + expected.len() % 300_007, seed);
            seed = seed.wrapping_add(1);
            file.write_all_at(&piece, expected.len() as u64).expect("append");
            expected.extend_from_slice(&piece);
        }
        file.sync_data().expect("sync");
        assert_eq!(file.size().expect("size"), expected.len() as u64);
        for &(offset, len) in &[
            (0, 100),
            (CHUNK - 50, 100),
            (expected.len() - 10_000, 10_000),
            (5, CHUNK * 3),
        ] {
            let mut buf = vec![0; len];
            read_exact_at(file.as_ref(), &mut buf, offset as u64).expect("read");
            assert_eq!(buf, expected[offset..offset + len], "read at {offset}");
        }
        let mut past = [0; 8];
        assert_eq!(file.read_at(&mut past, expected.len() as u64).expect("read at end"), 0);
        drop(file);
        // Closed: the padding is cut and the disk holds every byte.
        assert_eq!(std::fs::read(&path).expect("read file"), expected);
    }

    #[test]
    fn truncation_and_reopen_continue_where_the_file_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let file = DirectFile::create_new(&path).expect("create");
        let a = contents(10_000, 1);
        file.write_all_at(&a, 0).expect("write");
        file.set_len(6_000).expect("truncate");
        let b = contents(3_000, 2);
        assert!(file.write_all_at(&b, 10_000).is_err(), "not at the end");
        file.write_all_at(&b, 6_000).expect("append after truncation");
        file.sync_data().expect("sync");
        let mut expected = a[..6_000].to_vec();
        expected.extend_from_slice(&b);
        let mut buf = vec![0; expected.len()];
        read_exact_at(file.as_ref(), &mut buf, 0).expect("read");
        assert_eq!(buf, expected);
        // On disk before close: the data, then zeros to the block boundary.
        let on_disk = std::fs::read(&path).expect("read file");
        assert_eq!(on_disk.len(), align_up(expected.len()));
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

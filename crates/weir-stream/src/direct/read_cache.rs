//! The read-back cache: chunks of direct files read from disk with direct I/O, shared by every
//! reader in the process and evicted least recently used first.
//!
//! Delivery reads each shard of a stream with its own cursor, and all of them pass over the whole log
//! (one log per stream). When they lag behind the in-memory tail, the first reader of a chunk reads
//! it from the device into reused, aligned memory and the others copy from there: the device is read
//! once per chunk, and no byte goes through the page cache.
//!
//! Cached bytes never change: only what lies below a file's tail is read back (already on disk: an
//! append never lets go of a chunk before writing it, see `MAX_APPEND`), and that part of an
//! append-only file is only ever cut (`set_len`), which forgets the file's chunks. A chunk read while
//! its file was being cut is not kept: every file has a generation, and a read that started in an
//! older one is dropped.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::{Aligned, CHUNK, DirectFile, align_up_u64, lock};

/// Chunks the cache holds (1 MiB each), for all files together.
pub const CHUNKS: usize = 32;

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    entries: Vec::new(),
    clock: 0,
});

/// A file's identity in the cache, and its generation.
#[derive(Debug)]
pub(super) struct FileId {
    id: u64,
    generation: AtomicU64,
}

impl FileId {
    pub fn new() -> FileId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        FileId {
            id: NEXT.fetch_add(1, Relaxed),
            generation: AtomicU64::new(0),
        }
    }

    /// Drops the file's chunks and starts a new generation (the file was cut or is closing).
    pub fn forget_cached(&self) {
        let mut cache = lock(&CACHE);
        self.generation.fetch_add(1, Relaxed);
        cache.entries.retain(|e| e.file != self.id);
    }
}

struct Cache {
    entries: Vec<Entry>,
    /// Advances on every use; an entry's `used` is the clock at its last use.
    clock: u64,
}

struct Entry {
    file: u64,
    /// The chunk's index in the file (its offset / [`CHUNK`]).
    index: u64,
    /// The bytes of the chunk that hold file data.
    len: usize,
    used: u64,
    memory: Arc<Aligned>,
}

impl Cache {
    fn get(&mut self, file: u64, index: u64) -> Option<(Arc<Aligned>, usize)> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.iter_mut().find(|e| e.file == file && e.index == index)?;
        entry.used = clock;
        Some((entry.memory.clone(), entry.len))
    }

    /// Adds a chunk (as just used), evicting the least recently used beyond [`CHUNKS`].
    fn insert(&mut self, file: u64, index: u64, len: usize, memory: Arc<Aligned>) {
        self.clock += 1;
        let entry = Entry {
            file,
            index,
            len,
            used: self.clock,
            memory,
        };
        self.entries
            .retain(|e| !(e.file == entry.file && e.index == entry.index));
        if self.entries.len() >= CHUNKS
            && let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].used)
        {
            let evicted = self.entries.swap_remove(oldest);
            if let Ok(memory) = Arc::try_unwrap(evicted.memory) {
                memory.give_back();
            }
        }
        self.entries.push(entry);
    }
}

impl DirectFile {
    /// Reads at `offset` from the bytes below the tail, which end at `disk_end` (`None`: at the
    /// file's end), through the cache.
    pub(super) fn read_back(&self, buf: &mut [u8], offset: u64, disk_end: Option<u64>) -> io::Result<usize> {
        let index = offset / CHUNK as u64;
        let within = (offset % CHUNK as u64) as usize;
        let (cached, generation) = {
            let mut cache = lock(&CACHE);
            (cache.get(self.id.id, index), self.id.generation.load(Relaxed))
        };
        let (memory, len) = match cached {
            Some((memory, len)) if within < len => (memory, len),
            _ => {
                let chunk_start = index * CHUNK as u64;
                let disk_end = match disk_end {
                    Some(end) => end,
                    None => self.buffered.metadata()?.len(),
                };
                if offset >= disk_end {
                    // Past what may be read back (no reader reads here): not through the cache.
                    return self.buffered.read_at(buf, offset);
                }
                let mut memory = Aligned::take();
                let want = align_up_u64((disk_end - chunk_start).min(CHUNK as u64)) as usize;
                let len = match read_direct(&self.direct, &mut memory.bytes_mut()[..want], chunk_start) {
                    Ok(n) => n.min((disk_end - chunk_start) as usize),
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        memory.give_back();
                        return self.buffered.read_at(buf, offset);
                    }
                    Err(e) => {
                        memory.give_back();
                        return Err(e);
                    }
                };
                let memory = Arc::new(memory);
                let mut cache = lock(&CACHE);
                if self.id.generation.load(Relaxed) == generation {
                    cache.insert(self.id.id, index, len, memory.clone());
                }
                (memory, len)
            }
        };
        if within >= len {
            return Ok(0);
        }
        let n = buf.len().min(len - within);
        buf[..n].copy_from_slice(&memory.bytes()[within..within + n]);
        Ok(n)
    }
}

/// Fills `buf` from `offset` with direct reads; fewer bytes only at the end of the file.
fn read_direct(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            // A direct read stops short only at the end of the file, or on a block boundary.
            Ok(n) if (done + n) % super::ALIGN != 0 => return Ok(done + n),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

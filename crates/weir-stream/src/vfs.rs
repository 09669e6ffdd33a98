//! The file-system seam: every byte the stream reads or writes goes through [`Vfs`] and [`VfsFile`],
//! so tests can inject failures into writes, fsyncs, renames and directory fsyncs ([`FaultyVfs`])
//! and check that nothing is acknowledged that is not durable.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::direct::DirectFile;

/// A file opened for positional reads and writes.
///
/// Positional I/O (`pread`/`pwrite`) lets one handle be shared by the writer and any number of
/// readers without a seek cursor to race on.
pub trait VfsFile: Send + Sync + Debug {
    /// Reads into `buf` from `offset`; returns the number of bytes read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Flushes the file's data (and the metadata needed to read it back, such as its size).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's current size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// The file will not be written again: keep at most `keep_bytes` of it cached in memory.
    fn retire(&self, _keep_bytes: usize) {}
}

/// Directory-level operations.
pub trait Vfs: Send + Sync + Debug {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory (files and directories).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a new file for reading and writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Creates a new append-only log file (a segment); the real file system writes it with direct I/O
    /// ([`crate::direct`]).
    fn create_log(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        self.create_new(path)
    }
    /// Opens an existing log file.
    fn open_log(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        self.open(path)
    }
    /// Creates a new file holding `contents` and fsyncs it; fails if it exists.
    fn create_with(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let file = self.create_new(path)?;
        file.write_all_at(contents, 0)?;
        file.sync_data()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory, making entries created, renamed or removed in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

impl<'a> dyn Vfs + 'a {
    /// Reads a whole (small) file.
    pub fn read_to_end(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path)?;
        let len = usize::try_from(file.size()?).map_err(|_| io::Error::other("file too large"))?;
        let mut buf = vec![0; len];
        read_exact_at(file.as_ref(), &mut buf, 0)?;
        Ok(buf)
    }

    /// Replaces `path` atomically with `contents`: write a temporary file, fsync it, rename it over
    /// `path`, fsync the directory. A crash leaves either the old or the new contents, never a mix.
    pub fn write_atomic(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = tmp_path(path);
        // A leftover from a crash between create and rename is garbage: start over.
        match self.remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = self.create_with(&tmp, contents).and_then(|()| self.rename(&tmp, path)) {
            let _ = self.remove_file(&tmp);
            return Err(e);
        }
        self.sync_dir(dir)
    }
}

/// The temporary sibling used by [`Vfs::write_atomic`]: `.name.tmp`, hidden so that nothing listing
/// the directory (a loader watching a bucket) mistakes it for a finished file.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads exactly `buf.len()` bytes at `offset`, failing with `UnexpectedEof` on a short file.
pub fn read_exact_at(file: &dyn VfsFile, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdVfs;

#[derive(Debug)]
pub(crate) struct StdFile(pub(crate) File);

impl VfsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Vfs for StdVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        Ok(Arc::new(StdFile(file)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(file)))
    }
    fn create_log(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        DirectFile::create_new(path)
    }
    fn open_log(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        DirectFile::open(path)
    }
    fn create_with(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        crate::direct::create_with(path, contents)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The operations [`FaultyVfs`] can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// `VfsFile::write_all_at`. A failed write first writes half of its buffer, as a real short write
    /// on a full disk does.
    Write,
    /// `VfsFile::sync_data` (fsync of a file).
    Sync,
    /// `Vfs::rename`.
    Rename,
    /// `Vfs::sync_dir` (fsync of a directory).
    SyncDir,
    /// `Vfs::create_new`.
    Create,
    /// `VfsFile::set_len` (truncation).
    SetLen,
}

#[derive(Debug)]
struct Fault {
    op: FaultOp,
    /// Matching calls to let through before failing.
    skip: u64,
    /// Failures left to inject.
    times: u64,
    kind: io::ErrorKind,
}

/// A [`Vfs`] over the real file system that fails chosen operations on demand.
#[derive(Debug, Clone, Default)]
pub struct FaultyVfs {
    faults: Arc<Mutex<VecDeque<Fault>>>,
}

impl FaultyVfs {
    pub fn new() -> FaultyVfs {
        FaultyVfs::default()
    }

    /// Fails the `skip+1`-th next call of `op` (and `times - 1` more after it) with `kind`.
    pub fn inject(&self, op: FaultOp, skip: u64, times: u64, kind: io::ErrorKind) {
        self.lock().push_back(Fault { op, skip, times, kind });
    }

    /// Removes every pending fault (the disk "has space again").
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self, op: FaultOp) -> io::Result<()> {
        let mut faults = self.lock();
        let Some(pos) = faults.iter().position(|f| f.op == op) else {
            return Ok(());
        };
        let fault = &mut faults[pos];
        if fault.skip > 0 {
            fault.skip -= 1;
            return Ok(());
        }
        let kind = fault.kind;
        fault.times -= 1;
        if fault.times == 0 {
            faults.remove(pos);
        }
        Err(io::Error::new(kind, format!("injected {op:?} fault")))
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn VfsFile>,
    vfs: FaultyVfs,
}

impl VfsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if let Err(e) = self.vfs.check(FaultOp::Write) {
            self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            return Err(e);
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.vfs.check(FaultOp::Sync)?;
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.vfs.check(FaultOp::SetLen)?;
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn retire(&self, keep_bytes: usize) {
        self.inner.retire(keep_bytes);
    }
}

impl Vfs for FaultyVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdVfs.create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        self.check(FaultOp::Create)?;
        let inner = StdVfs.create_new(path)?;
        Ok(Arc::new(FaultyFile {
            inner,
            vfs: self.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let inner = StdVfs.open(path)?;
        Ok(Arc::new(FaultyFile {
            inner,
            vfs: self.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(FaultOp::Rename)?;
        StdVfs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdVfs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(FaultOp::SyncDir)?;
        StdVfs.sync_dir(dir)
    }
}

//! The local-directory sink: objects as files, written atomically and durably.

use std::io;
use std::path::{Component, Path, PathBuf};
use weir_stream::vfs::{StdVfs, Vfs, tmp_path};

use super::Sink;

/// Objects as files under a local directory: `<root>/<key>`.
///
/// A put writes a hidden temporary file, fsyncs it, renames it over the key and fsyncs the directory
/// (and every directory it had to create), so an object is either absent or complete and durable.
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
}

impl LocalDirSink {
    /// Opens (creating) the directory and removes temporary files an interrupted put left behind.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<LocalDirSink> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        remove_leftovers(&root)?;
        Ok(LocalDirSink { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        let relative = Path::new(key);
        let safe = !key.is_empty() && relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsafe object key {key:?}"),
            ));
        }
        Ok(self.root.join(relative))
    }
}

impl Sink for LocalDirSink {
    fn put(&self, key: &str, body: &[u8]) -> io::Result<()> {
        let path = self.path_of(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        create_dirs_durably(&self.root, dir)?;
        let vfs: &dyn Vfs = &StdVfs;
        vfs.write_atomic(&path, body)
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key).ok()
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        // Walk only the directory the prefix's complete segments name.
        let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_part)?
        };
        let mut keys = Vec::new();
        if start.is_dir() {
            walk_keys(&self.root, &start, &mut keys)?;
        }
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn read_head(&self, key: &str, max_bytes: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut head = Vec::with_capacity(max_bytes.min(64 * 1024));
        std::fs::File::open(self.path_of(key)?)?
            .take(max_bytes as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

/// `mkdir -p` that also fsyncs the parent of every directory it creates, so a new `2026/11/24/17/`
/// survives a power loss together with the object inside it.
fn create_dirs_durably(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![dir];
    while let Some(parent) = missing.last().and_then(|d| d.parent()) {
        if parent.is_dir() || parent == root {
            break;
        }
        missing.push(parent);
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        StdVfs.sync_dir(d.parent().unwrap_or(root))?;
    }
    Ok(())
}

fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            remove_leftovers(&path)?;
        } else if path == tmp_path(&path.with_file_name(original_name(&path))) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// `name` for a temporary file `.name.tmp` (anything else maps to a name that will not match).
fn original_name(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .map_or_else(|| format!("{name}\0"), str::to_owned)
}

/// The keys of the objects under `dir` (temporary files of unfinished puts excluded).
fn walk_keys(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk_keys(root, &path, out)?;
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            let relative = path.strip_prefix(root).map_err(io::Error::other)?;
            let key: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(key.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_writes_nested_keys_and_replaces_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = LocalDirSink::open(dir.path().join("bucket")).expect("open");
        sink.put("2026/11/24/17/events-1-x", b"one\n").expect("put");
        sink.put("2026/11/24/17/events-1-x", b"two\n").expect("put again");
        let got = std::fs::read(dir.path().join("bucket/2026/11/24/17/events-1-x")).expect("read");
        assert_eq!(got, b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("bucket/2026/11/24/17"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["events-1-x"]);
    }

    #[test]
    fn unsafe_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = LocalDirSink::open(dir.path()).expect("open");
        for key in ["", "../escape", "/abs", "a/../../b"] {
            assert!(sink.put(key, b"x").is_err(), "{key:?} accepted");
        }
    }

    #[test]
    fn leftover_temporary_files_are_removed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        std::fs::write(dir.path().join("a/b/.obj.tmp"), b"partial").expect("write");
        std::fs::write(dir.path().join("a/b/obj"), b"done").expect("write");
        LocalDirSink::open(dir.path()).expect("open");
        assert!(!dir.path().join("a/b/.obj.tmp").exists());
        assert!(dir.path().join("a/b/obj").exists());
    }
}

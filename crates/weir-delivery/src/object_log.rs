//! The object log: every batch a delivery stream finished, with the objects it wrote, in order — the
//! S3 event notifications (and Snowpipe's queue) of weir's single-machine shape. The warehouse loader
//! reads it instead of listing the bucket.
//!
//! One JSON line per batch, appended and fsynced after the batch's objects are durable and before its
//! checkpoint moves. A crash in between replays the batch, which appends the same notice again (same
//! batch id, same keys): readers see a batch at least once and deduplicate by batch id. A crash inside
//! an append leaves a line without its `\n`; the next writer cuts it off before appending.
//!
//! The log is split into segments (`objects-<n>.log`) so that a reader can delete what it has
//! consumed. Appends from other processes (`weir redrive`) take the same file lock as `weir up`'s
//! writer, and only the long-lived writer starts new segments.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A segment is closed when an append would take it past this size.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
const LOCK_FILE: &str = "objects.lock";

/// One finished batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchNotice {
    /// The batch's id (a UUID derived from its boundaries): the same on every replay.
    pub batch_id: String,
    /// `stream` for batches read from the stream, `redrive` for failed records sent through again.
    pub source: NoticeSource,
    /// When the batch's objects were written (Unix ms).
    pub written_ms: i64,
    /// Records the batch took in: `delivered + dropped + failed`.
    pub records_in: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub failed: u64,
    pub objects: Vec<NoticeObject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeSource {
    Stream,
    Redrive,
}

impl NoticeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeSource::Stream => "stream",
            NoticeSource::Redrive => "redrive",
        }
    }
}

/// An object a batch wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeObject {
    pub key: String,
    pub bytes: u64,
    pub records: u64,
    /// The error output type (`processing-failed`, …) of an error-output object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_output: Option<String>,
}

/// A place in the log: a segment number and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogPosition {
    pub segment: u64,
    pub offset: u64,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("objects-{segment:020}.log"))
}

/// The segment numbers in `dir`, ascending.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("objects-")
            .and_then(|rest| rest.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Holds the log's lock file locked exclusively while alive.
struct Locked(File);

impl Locked {
    fn acquire(dir: &Path) -> io::Result<Locked> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        file.lock()?;
        Ok(Locked(file))
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Opens the newest segment for appending, cutting off a torn last line; creates the first segment in
/// an empty log.
fn open_newest(dir: &Path) -> io::Result<(u64, File)> {
    let segment = segments(dir)?.last().copied().unwrap_or(1);
    let path = segment_path(dir, segment);
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        // The torn line (if any) is shorter than the file: read back to the last newline.
        let tail_len = len.min(1024 * 1024);
        let mut tail = vec![0; tail_len as usize];
        file.seek(SeekFrom::Start(len - tail_len))?;
        file.read_exact(&mut tail)?;
        if tail.last() != Some(&b'\n') {
            let keep = match tail.iter().rposition(|&b| b == b'\n') {
                Some(i) => len - tail_len + i as u64 + 1,
                None if tail_len == len => 0,
                None => return Err(io::Error::other(format!("{}: a line over 1 MiB", path.display()))),
            };
            file.set_len(keep)?;
            file.sync_data()?;
        }
    }
    File::open(dir)?.sync_all()?;
    Ok((segment, file))
}

/// Appends notices. One per delivery stream in `weir up` (shared by its shard loops).
#[derive(Debug)]
pub struct ObjectLog {
    dir: PathBuf,
    current: Mutex<(u64, File)>,
}

impl ObjectLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<ObjectLog> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let _lock = Locked::acquire(&dir)?;
        let current = open_newest(&dir)?;
        Ok(ObjectLog {
            dir,
            current: Mutex::new(current),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `notice` durably, starting a new segment when the current one is full.
    pub fn append(&self, notice: &BatchNotice) -> io::Result<()> {
        let line = notice_line(notice)?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = Locked::acquire(&self.dir)?;
        let len = current.1.metadata()?.len();
        if len > 0 && len + line.len() as u64 > SEGMENT_BYTES {
            let next = current.0 + 1;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, next))?;
            File::open(&self.dir)?.sync_all()?;
            *current = (next, file);
        }
        current.1.write_all(&line)?;
        current.1.sync_data()
    }

    /// Appends one notice from another process (`weir redrive`) to the newest segment.
    pub fn append_once(dir: &Path, notice: &BatchNotice) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let line = notice_line(notice)?;
        let _lock = Locked::acquire(dir)?;
        let (_, mut file) = open_newest(dir)?;
        file.write_all(&line)?;
        file.sync_data()
    }
}

fn notice_line(notice: &BatchNotice) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(notice).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Reads the log from a position. Readers never block writers: they read whole lines only.
#[derive(Debug, Clone)]
pub struct ObjectLogReader {
    dir: PathBuf,
}

/// A notice and the position right after it (where reading resumes once it is consumed).
pub type PositionedNotice = (BatchNotice, LogPosition);

impl ObjectLogReader {
    pub fn new(dir: impl Into<PathBuf>) -> ObjectLogReader {
        ObjectLogReader { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Up to `max` notices after `from`, moving on to the next segment when one is exhausted and a
    /// newer one exists. A line that is not a notice is an error naming its place.
    pub fn read(&self, from: LogPosition, max: usize) -> io::Result<Vec<PositionedNotice>> {
        let segments = match segments(&self.dir) {
            Ok(segments) => segments,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut pos = from;
        for &segment in segments.iter().filter(|&&s| s >= from.segment) {
            if segment > pos.segment {
                pos = LogPosition { segment, offset: 0 };
            }
            let mut file = match File::open(segment_path(&self.dir, segment)) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(pos.offset))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let mut start = 0;
            while out.len() < max {
                let Some(end) = bytes[start..].iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line = &bytes[start..start + end];
                let notice: BatchNotice = serde_json::from_slice(line).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} at byte {}: not a batch notice: {e}",
                            segment_path(&self.dir, segment).display(),
                            pos.offset + start as u64
                        ),
                    )
                })?;
                start += end + 1;
                out.push((
                    notice,
                    LogPosition {
                        segment,
                        offset: pos.offset + start as u64,
                    },
                ));
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes the segments before `segment` (a reader has consumed them).
    pub fn remove_before(&self, segment: u64) -> io::Result<()> {
        for old in segments(&self.dir)?.into_iter().filter(|&s| s < segment) {
            match std::fs::remove_file(segment_path(&self.dir, old)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(n: u64) -> BatchNotice {
        BatchNotice {
            batch_id: format!("batch-{n}"),
            source: NoticeSource::Stream,
            written_ms: 1_700_000_000_000 + n as i64,
            records_in: n,
            delivered: n,
            dropped: 0,
            failed: 0,
            objects: vec![NoticeObject {
                key: format!("2024/01/01/00/events-1-{n}"),
                bytes: 10 * n,
                records: n,
                error_output: None,
            }],
        }
    }

    #[test]
    fn reads_back_in_order_and_resumes_from_a_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ObjectLog::open(dir.path()).expect("open");
        for n in 1..=5 {
            log.append(&notice(n)).expect("append");
        }
        let reader = ObjectLogReader::new(dir.path());
        let all = reader.read(LogPosition::default(), 100).expect("read");
        assert_eq!(
            all.iter().map(|(n, _)| n.records_in).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let rest = reader.read(all[1].1, 100).expect("read");
        assert_eq!(rest.iter().map(|(n, _)| n.records_in).collect::<Vec<_>>(), [3, 4, 5]);
        let two = reader.read(all[1].1, 2).expect("read");
        assert_eq!(two.len(), 2);
        assert!(reader.read(all[4].1, 100).expect("read").is_empty());
    }

    #[test]
    fn a_torn_line_is_cut_off_by_the_next_writer_and_never_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ObjectLog::open(dir.path()).expect("open");
        log.append(&notice(1)).expect("append");
        drop(log);
        let path = segment_path(dir.path(), 1);
        let mut file = OpenOptions::new().append(true).open(&path).expect("open segment");
        file.write_all(b"{\"batch_id\":\"torn").expect("write");
        let reader = ObjectLogReader::new(dir.path());
        assert_eq!(reader.read(LogPosition::default(), 100).expect("read").len(), 1);

        let log = ObjectLog::open(dir.path()).expect("reopen");
        log.append(&notice(2)).expect("append");
        let all = reader.read(LogPosition::default(), 100).expect("read");
        assert_eq!(all.iter().map(|(n, _)| n.records_in).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn segments_roll_over_and_consumed_ones_can_be_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ObjectLog::open(dir.path()).expect("open");
        let mut big = notice(1);
        // Two fit in a segment; the third starts the next one.
        big.objects[0].key = "k".repeat(SEGMENT_BYTES as usize / 3);
        for _ in 0..3 {
            log.append(&big).expect("append");
        }
        assert_eq!(segments(dir.path()).expect("segments"), [1, 2]);
        let reader = ObjectLogReader::new(dir.path());
        let all = reader.read(LogPosition::default(), 100).expect("read");
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].1.segment, 2);
        reader.remove_before(all[2].1.segment).expect("remove");
        assert_eq!(segments(dir.path()).expect("segments"), [2]);
        // Reading from a removed segment's position continues at the start of the next one.
        assert_eq!(reader.read(all[0].1, 100).expect("read").len(), 1);
    }

    #[test]
    fn another_process_appends_to_the_newest_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ObjectLog::open(dir.path()).expect("open");
        log.append(&notice(1)).expect("append");
        ObjectLog::append_once(dir.path(), &notice(2)).expect("append once");
        log.append(&notice(3)).expect("append");
        let all = ObjectLogReader::new(dir.path())
            .read(LogPosition::default(), 100)
            .expect("read");
        assert_eq!(all.iter().map(|(n, _)| n.records_in).collect::<Vec<_>>(), [1, 2, 3]);
    }
}

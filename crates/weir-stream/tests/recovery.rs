//! Recovery from torn tails and corruption: what a crash or a bad disk leaves behind.

use std::fs;
use std::path::{Path, PathBuf};
use weir_stream::{
    OpenError, PutRecord, ReadError, ReadLimits, RecoveryMode, ShardIteratorType, Stream, StreamConfig, direct,
};

const SHARDS: u32 = 3;

/// A stored record as (shard, offset, data).
type Stored = (u32, u64, Vec<u8>);

fn config(segment_bytes: u64) -> StreamConfig {
    StreamConfig {
        shard_count: SHARDS,
        segment_bytes,
        ..StreamConfig::default()
    }
}

/// Every readable record as (shard, offset, data), in shard then offset order.
fn read_all(stream: &Stream) -> Result<Vec<Stored>, ReadError> {
    let mut out = Vec::new();
    for shard in stream.shard_ids() {
        let mut it = stream.iterator(shard, ShardIteratorType::TrimHorizon)?;
        loop {
            let batch = stream.read(&it, ReadLimits::default())?;
            if batch.records.is_empty() {
                break;
            }
            out.extend(
                batch
                    .records
                    .iter()
                    .map(|r| (shard.0, r.sequence_number.offset, r.data.to_vec())),
            );
            it = batch.next_iterator;
        }
    }
    Ok(out)
}

/// Appends `batches` multi-shard batches; returns each batch's records and the active segment's
/// length after it was acknowledged.
fn write_batches(dir: &Path, segment_bytes: u64, batches: usize) -> Vec<(Vec<Stored>, u64)> {
    let stream = Stream::open(dir, "s", config(segment_bytes)).expect("open");
    let mut out = Vec::new();
    for b in 0..batches {
        let records: Vec<PutRecord> = (0..4)
            .map(|i| {
                PutRecord::new(
                    format!("key-{b}-{i}"),
                    format!("batch {b} record {i} {}", "x".repeat(b % 7)),
                )
            })
            .collect();
        let data: Vec<Vec<u8>> = records.iter().map(|r| r.data.to_vec()).collect();
        let results = stream.append_blocking(records).expect("append");
        let written = results
            .iter()
            .zip(data)
            .map(|(r, d)| (r.shard_id.0, r.sequence_number.offset, d))
            .collect();
        // The stream's logical size: with one segment, where this batch ends in it. (The file itself
        // may run on with zeros while the stream writes it directly: padding and zeros written ahead.)
        out.push((written, stream.stats().disk_bytes));
    }
    out
}

/// Every record of `batches`, in order.
fn records_of(batches: &[(Vec<Stored>, u64)]) -> Vec<Stored> {
    batches.iter().flat_map(|(records, _)| records.clone()).collect()
}

/// Cuts or extends a segment file as a crash or a bad disk might.
fn set_file_len(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment")
        .set_len(len)
        .expect("set the length");
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("s/segments"))
        .expect("segments dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().expect("a segment")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn sorted(mut records: Vec<Stored>) -> Vec<Stored> {
    records.sort();
    records
}

#[test]
fn truncating_the_tail_at_every_byte_keeps_exactly_the_complete_batches() {
    let original = tempfile::tempdir().expect("tempdir");
    let batches = write_batches(original.path(), 1 << 20, 12);
    let segment_name = last_segment(original.path()).file_name().expect("name").to_owned();
    let from = batches[batches.len() - 4].1;
    let to = batches.last().expect("batches").1;
    for cut in from..=to {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(original.path(), dir.path());
        let segment = dir.path().join("s/segments").join(&segment_name);
        set_file_len(&segment, cut);
        let stream = Stream::open(dir.path(), "s", config(1 << 20)).expect("recovery opens a torn tail");
        let complete: Vec<_> = batches
            .iter()
            .filter(|(_, end)| *end <= cut)
            .flat_map(|(records, _)| records.clone())
            .collect();
        assert_eq!(
            read_all(&stream).expect("read"),
            sorted(complete.clone()),
            "cut at {cut}"
        );
        // Appends continue with the next sequence numbers of each shard.
        let results = stream
            .append_blocking((0..6).map(|i| PutRecord::new(format!("after-{i}"), "after")).collect())
            .expect("append after recovery");
        for r in results {
            let before = complete.iter().filter(|(s, _, _)| *s == r.shard_id.0).count() as u64;
            let after = stream.stats().shards[r.shard_id.0 as usize].next_offset;
            assert!(
                r.sequence_number.offset >= before && r.sequence_number.offset < after,
                "cut at {cut}"
            );
        }
        let stats = stream.stats();
        let appended_per_shard: u64 = stats.shards.iter().map(|s| s.next_offset).sum();
        assert_eq!(appended_per_shard, complete.len() as u64 + 6, "cut at {cut}");
        let kept = batches.iter().map(|b| b.1).filter(|&end| end <= cut).max().unwrap_or(0);
        assert_eq!(
            stats.truncated_bytes_at_open,
            cut - kept.max(header_len()),
            "cut at {cut}"
        );
    }
}

fn header_len() -> u64 {
    weir_stream::format::segment_header_len(SHARDS as usize) as u64
}

#[test]
fn bit_flips_and_zeroed_lengths_in_the_active_segment_never_return_corrupt_records() {
    let original = tempfile::tempdir().expect("tempdir");
    let batches = write_batches(original.path(), 1 << 20, 10);
    let all = records_of(&batches);
    let segment_name = last_segment(original.path()).file_name().expect("name").to_owned();
    let header = header_len();
    let len = batches.last().expect("batches").1;
    let mut damaged_at = Vec::new();
    // Every byte of the last three batches, and every 7th byte before them.
    for pos in (header..len).filter(|&p| p >= batches[6].1 || p % 7 == 0) {
        damaged_at.push((pos, Damage::FlipBit));
    }
    for &(_, end) in &batches[..batches.len() - 1] {
        damaged_at.push((end, Damage::ZeroLength));
    }
    for (pos, damage) in damaged_at {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(original.path(), dir.path());
        let segment = dir.path().join("s/segments").join(&segment_name);
        damage.apply(&segment, pos);
        let stream = Stream::open(dir.path(), "s", config(1 << 20)).expect("open truncates the damaged tail");
        let got = read_all(&stream).expect("read");
        // Exactly the batches wholly before the damage: never a damaged payload, never half a batch.
        let intact: Vec<_> = batches
            .iter()
            .filter(|(_, end)| *end <= pos)
            .flat_map(|(records, _)| records.clone())
            .collect();
        assert_eq!(got, sorted(intact), "{damage:?} at {pos}");
        assert!(got.iter().all(|r| all.contains(r)));
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    FlipBit,
    /// Zeroes the 4-byte length of the frame starting at the position.
    ZeroLength,
}

impl Damage {
    fn apply(self, path: &Path, pos: u64) {
        let mut bytes = fs::read(path).expect("read segment");
        let pos = pos as usize;
        match self {
            Damage::FlipBit => bytes[pos] ^= 0x04,
            Damage::ZeroLength => bytes[pos..pos + 4].fill(0),
        }
        fs::write(path, bytes).expect("write segment");
    }
}

#[test]
fn corruption_in_a_sealed_segment_is_reported_with_its_position() {
    let original = tempfile::tempdir().expect("tempdir");
    write_batches(original.path(), 4096, 80);
    let files = segments(original.path());
    assert!(files.len() >= 3, "need sealed segments, have {}", files.len());
    let sealed_name = files[1].file_name().expect("name").to_owned();
    let sealed_len = fs::metadata(&files[1]).expect("meta").len();
    let header = header_len();
    for pos in (0..sealed_len).step_by(97).chain([header, sealed_len - 1]) {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(original.path(), dir.path());
        let segment = dir.path().join("s/segments").join(&sealed_name);
        Damage::FlipBit.apply(&segment, pos);
        match Stream::open(dir.path(), "s", config(4096)) {
            Err(OpenError::Corrupt { path, offset, reason }) => {
                assert_eq!(path, segment, "flip at {pos}: {reason}");
                assert!(offset <= pos, "flip at {pos} reported at {offset}: {reason}");
            }
            other => panic!("flip at {pos} in a sealed segment: expected a corruption error, got {other:?}"),
        }
    }
}

#[test]
fn salvage_mode_skips_a_corrupt_sealed_region_and_keeps_everything_else() {
    let original = tempfile::tempdir().expect("tempdir");
    let batches = write_batches(original.path(), 4096, 80);
    let all = records_of(&batches);
    let files = segments(original.path());
    let sealed = &files[1];
    let pos = fs::metadata(sealed).expect("meta").len() / 2;
    Damage::FlipBit.apply(sealed, pos);
    assert!(matches!(
        Stream::open(original.path(), "s", config(4096)),
        Err(OpenError::Corrupt { .. })
    ));
    let salvage = StreamConfig {
        recovery: RecoveryMode::SkipCorruptSegmentTail,
        ..config(4096)
    };
    let stream = Stream::open(original.path(), "s", salvage).expect("salvage opens");
    let got = read_all(&stream).expect("read");
    assert!(got.iter().all(|r| all.contains(r)), "only original records come back");
    assert!(
        got.len() < all.len() && got.len() > all.len() / 2,
        "{} of {}",
        got.len(),
        all.len()
    );
    // Numbering continues after the highest number ever assigned: nothing is reused.
    let before = stream.stats();
    let results = stream
        .append_blocking(vec![PutRecord::new("after", "after")])
        .expect("append");
    let shard = results[0].shard_id.0 as usize;
    assert_eq!(results[0].sequence_number.offset, before.shards[shard].next_offset);
    let max_written = all
        .iter()
        .filter(|r| r.0 as usize == shard)
        .map(|r| r.1)
        .max()
        .unwrap_or(0);
    assert!(results[0].sequence_number.offset > max_written);
}

#[test]
fn corruption_appearing_under_a_running_stream_fails_the_read_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments: the oldest are sealed and no longer held in memory, so reads go to the disk.
    let stream = Stream::open(dir.path(), "s", config(4096)).expect("open");
    for b in 0..20 {
        stream
            .append_blocking(
                (0..50)
                    .map(|i| PutRecord::new(format!("{b}-{i}"), format!("payload {b} {i}")))
                    .collect(),
            )
            .expect("append");
    }
    let files = segments(dir.path());
    assert!(files.len() >= 3, "need retired segments, have {}", files.len());
    let segment = files[0].clone();
    // Inside the first frame's records, past its header.
    let pos = header_len() + 40;
    Damage::FlipBit.apply(&segment, pos);
    let mut failures = 0;
    for shard in stream.shard_ids() {
        let it = stream
            .iterator(shard, ShardIteratorType::TrimHorizon)
            .expect("iterator");
        match stream.read(&it, ReadLimits::default()) {
            Ok(batch) => assert!(batch.records.iter().all(|r| r.data.starts_with(b"payload "))),
            Err(ReadError::Corrupt { path, offset, .. }) => {
                assert_eq!(path, segment);
                assert!(offset <= pos, "flip at {pos} reported at {offset}");
                failures += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(failures, 1, "exactly the shard owning the damaged frame fails");
}

#[test]
fn zeros_after_the_last_frame_are_not_damage() {
    // What a crash leaves behind direct writes (weir_stream::direct): any segment, sealed or active,
    // may end with zeros: the last block's padding, and up to ZERO_AHEAD more written ahead.
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = write_batches(dir.path(), 4096, 40);
    let all = records_of(&batches);
    let files = segments(dir.path());
    assert!(files.len() >= 3, "need sealed segments, have {}", files.len());
    let mut lens = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let len = fs::metadata(file).expect("meta").len();
        let padded = len.div_ceil(4096) * 4096;
        assert!(padded > len, "{} is already aligned", file.display());
        // Alternately: the block's padding only, and the most zeros a direct file leaves.
        let zeros_ahead = if i % 2 == 0 { 0 } else { direct::ZERO_AHEAD as u64 };
        assert!(padded + zeros_ahead - len <= direct::MAX_ZERO_TAIL);
        set_file_len(file, padded + zeros_ahead);
        lens.push(len);
    }
    let stream = Stream::open(dir.path(), "s", config(4096)).expect("open");
    assert_eq!(read_all(&stream).expect("read"), sorted(all));
    assert_eq!(stream.stats().truncated_bytes_at_open, 0, "padding is not a torn tail");
    drop(stream);
    let after: Vec<u64> = files.iter().map(|f| fs::metadata(f).expect("meta").len()).collect();
    assert_eq!(after, lens, "the zeros are cut");
}

#[test]
fn more_zeros_than_a_direct_file_writes_are_damage_in_a_sealed_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_batches(dir.path(), 4096, 40);
    let files = segments(dir.path());
    let sealed = &files[0];
    let len = fs::metadata(sealed).expect("meta").len();
    let too_long = (len + direct::MAX_ZERO_TAIL + 1).div_ceil(4096) * 4096;
    set_file_len(sealed, too_long);
    match Stream::open(dir.path(), "s", config(4096)) {
        Err(OpenError::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (sealed.clone(), len)),
        other => panic!("expected corruption at the end of {}, got {other:?}", sealed.display()),
    }
}

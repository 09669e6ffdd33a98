//! The stream's data model, named as Kinesis names it.

use bytes::Bytes;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use weir_core::kinesis::HashKey;

/// A shard's index within its stream; prints as Kinesis's `shardId-000000000003`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    /// Appends `shardId-000000000003` to `out`: the Display form, for hot paths (padded integer
    /// formatting through `fmt` costs a call per digit).
    pub fn write_ascii(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"shardId-");
        push_digits(out, u64::from(self.0), 12);
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same format as weir_core::kinesis::shard_id, without allocating.
        write!(f, "shardId-{:012}", self.0)
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits (wider values are written whole).
fn push_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while value > 0 {
        i -= 1;
        digits[i] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits[(digits.len() - width).min(i)..]);
}

impl FromStr for ShardId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<ShardId, InvalidId> {
        weir_core::kinesis::parse_shard_id(s)
            .map(ShardId)
            .ok_or_else(|| InvalidId(format!("{s:?} is not a shard id like shardId-000000000000")))
    }
}

/// A string that is not a valid shard id or sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub String);

/// A record's position: its shard and its offset within the shard (0, 1, 2, … with no gaps).
///
/// It prints as a fixed-width 32-digit decimal string, `49` + 10-digit shard + 20-digit offset, so
/// string order equals numeric order, numbers are unique across the stream's shards as Kinesis's are,
/// and the string has no leading zero (Kinesis's API pattern is `0|([1-9]\d{0,128})`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub shard: ShardId,
    pub offset: u64,
}

impl SequenceNumber {
    pub const STRING_LEN: usize = 32;

    /// Appends the 32-digit Display form to `out`, for hot paths (see [`ShardId::write_ascii`]).
    pub fn write_ascii(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"49");
        push_digits(out, u64::from(self.shard.0), 10);
        push_digits(out, self.offset, 20);
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "49{:010}{:020}", self.shard.0, self.offset)
    }
}

impl FromStr for SequenceNumber {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<SequenceNumber, InvalidId> {
        let invalid = || {
            InvalidId(format!(
                "{s:?} is not a weir sequence number (32 digits starting with 49)"
            ))
        };
        if s.len() != SequenceNumber::STRING_LEN || !s.starts_with("49") || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let shard = s[2..12].parse::<u32>().map_err(|_| invalid())?;
        let offset = s[12..].parse::<u64>().map_err(|_| invalid())?;
        Ok(SequenceNumber {
            shard: ShardId(shard),
            offset,
        })
    }
}

/// A record to append: `PutRecords`' request entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecord {
    pub data: Bytes,
    pub partition_key: String,
    /// Routes the record by this hash key instead of the partition key's MD5.
    pub explicit_hash_key: Option<HashKey>,
}

impl PutRecord {
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> PutRecord {
        PutRecord {
            data: data.into(),
            partition_key: partition_key.into(),
            explicit_hash_key: None,
        }
    }
}

/// Where an appended record went: `PutRecords`' result entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    pub shard_id: ShardId,
    pub sequence_number: SequenceNumber,
}

/// A record read back: `GetRecords`' record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence_number: SequenceNumber,
    pub partition_key: String,
    pub data: Bytes,
    /// When the stream accepted the record (epoch ms). Non-decreasing along the stream.
    pub approximate_arrival_timestamp_ms: i64,
}

/// Where a new iterator starts, as in `GetShardIterator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardIteratorType {
    /// The oldest record still retained.
    TrimHorizon,
    /// Just after the newest record: only records appended from now on.
    Latest,
    /// At the record with this sequence number.
    AtSequenceNumber(SequenceNumber),
    /// Just after the record with this sequence number.
    AfterSequenceNumber(SequenceNumber),
    /// At the first record whose arrival timestamp (epoch ms) is at or after this one.
    AtTimestamp(i64),
}

/// A position in one shard. Unlike Kinesis's, it never expires; it carries a hint of where the next
/// record is on disk so that sequential reads never search the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub(crate) shard: ShardId,
    /// Offset of the next record to return.
    pub(crate) next_offset: u64,
    pub(crate) hint: Option<ReadHint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadHint {
    pub segment_id: u64,
    /// A frame boundary at or before the next record of the shard, in that segment.
    pub offset: u64,
}

impl ShardIterator {
    pub fn shard_id(&self) -> ShardId {
        self.shard
    }

    /// The sequence number of the next record this iterator returns (which may not exist yet).
    pub fn next_sequence_number(&self) -> SequenceNumber {
        SequenceNumber {
            shard: self.shard,
            offset: self.next_offset,
        }
    }
}

/// How much one read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// At most this many records (at least 1).
    pub max_records: usize,
    /// At most this many data bytes, except that a read always returns at least one record if any is
    /// available, however large.
    pub max_bytes: usize,
}

impl Default for ReadLimits {
    /// GetRecords' limits: 10,000 records or 10 MiB.
    fn default() -> ReadLimits {
        ReadLimits {
            max_records: 10_000,
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// The result of a read: `GetRecords`' reply.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    pub next_iterator: ShardIterator,
    /// 0 when the reader is at the tip; otherwise how old (now − arrival, ms) the last record returned is.
    pub millis_behind_latest: u64,
    /// Records the iterator pointed at that no longer exist, so the read went past them: removed by
    /// retention (registered consumers see this only when the hard disk cap forced it), or lost to
    /// corruption skipped by a salvage recovery. Never silently: callers should log it.
    pub skipped_records: u64,
}

/// The source of arrival timestamps (epoch ms). Tests drive retention with a [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(now_ms)))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_fixed_width_and_ordered_as_strings() {
        let a = SequenceNumber {
            shard: ShardId(1),
            offset: 9,
        };
        let b = SequenceNumber {
            shard: ShardId(1),
            offset: 10,
        };
        let c = SequenceNumber {
            shard: ShardId(2),
            offset: 0,
        };
        let max = SequenceNumber {
            shard: ShardId(u32::MAX),
            offset: u64::MAX,
        };
        for s in [a, b, c, max] {
            assert_eq!(s.to_string().len(), SequenceNumber::STRING_LEN);
            assert_eq!(s.to_string().parse::<SequenceNumber>(), Ok(s));
        }
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
        assert_eq!(b.to_string(), "49000000000100000000000000000010");
        assert!("0049".parse::<SequenceNumber>().is_err());
        assert!("59000000000100000000000000000000".parse::<SequenceNumber>().is_err());
    }

    #[test]
    fn ascii_writers_match_display() {
        for (shard, offset) in [
            (0, 0),
            (3, 7),
            (12, 1_234_567_890),
            (u32::MAX, u64::MAX),
            (1_000_000, 10),
        ] {
            let seq = SequenceNumber {
                shard: ShardId(shard),
                offset,
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            seq.write_ascii(&mut a);
            seq.shard.write_ascii(&mut b);
            assert_eq!(String::from_utf8(a).expect("ASCII"), seq.to_string());
            assert_eq!(String::from_utf8(b).expect("ASCII"), seq.shard.to_string());
        }
    }
}

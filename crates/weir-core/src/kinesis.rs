//! Kinesis Data Streams' data model: record limits, partition keys, hash keys and shard routing.
//!
//! Routing is exactly Kinesis's: the MD5 digest of the partition key's UTF-8 bytes, read as an unsigned
//! 128-bit big-endian integer (or the record's explicit hash key), falls into one shard's inclusive
//! `[starting_hash_key, ending_hash_key]` range. A new stream's shards split `0..=2^128-1` into even,
//! contiguous ranges: each range is `floor(2^128 / n)` keys wide and the last shard takes the remainder,
//! which is what `CreateStream` produces (e.g. 3 shards end at `…070484`, `…140969`, `2^128-1`).

use md5::{Digest, Md5};
use std::fmt;
use thiserror::Error;

/// Largest data blob of one record (Kinesis' default 1 MiB).
pub const MAX_RECORD_DATA_BYTES: usize = 1024 * 1024;
/// Longest partition key, in Unicode scalar values (not bytes).
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// `PutRecords`: most records in one call.
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;
/// `PutRecords`: most bytes (data plus partition keys) in one call.
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Why a record does not fit Kinesis's data model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record data is empty; Kinesis records carry 1 byte to 1 MiB")]
    EmptyData,
    #[error("record data is {len} bytes; the limit is {MAX_RECORD_DATA_BYTES} bytes (1 MiB)")]
    DataTooLarge { len: usize },
    #[error("partition key is empty; it must be 1 to 256 Unicode characters")]
    EmptyPartitionKey,
    #[error("partition key has {chars} characters; the limit is 256")]
    PartitionKeyTooLong { chars: usize },
    #[error("explicit hash key {value:?} is not a decimal integer in 0..=2^128-1")]
    InvalidExplicitHashKey { value: String },
}

/// Checks a record's data blob size (1 byte to 1 MiB).
pub fn validate_data(data: &[u8]) -> Result<(), RecordError> {
    match data.len() {
        0 => Err(RecordError::EmptyData),
        len if len > MAX_RECORD_DATA_BYTES => Err(RecordError::DataTooLarge { len }),
        _ => Ok(()),
    }
}

/// Checks a partition key (1 to 256 Unicode characters).
pub fn validate_partition_key(key: &str) -> Result<(), RecordError> {
    if key.is_empty() {
        return Err(RecordError::EmptyPartitionKey);
    }
    // Counting stops early: a 10 MB key costs no more than a 257-character one.
    let chars = key.chars().take(MAX_PARTITION_KEY_CHARS + 1).count();
    if chars > MAX_PARTITION_KEY_CHARS {
        return Err(RecordError::PartitionKeyTooLong {
            chars: key.chars().count(),
        });
    }
    Ok(())
}

/// A position in Kinesis's 128-bit hash key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl HashKey {
    /// The hash key Kinesis derives from a partition key: MD5 of its UTF-8 bytes, big-endian.
    pub fn from_partition_key(key: &str) -> HashKey {
        let digest: [u8; 16] = Md5::digest(key.as_bytes()).into();
        HashKey(u128::from_be_bytes(digest))
    }

    /// Parses an `ExplicitHashKey`: a decimal integer in `0..=2^128-1`, as the Kinesis API takes it.
    pub fn parse_explicit(value: &str) -> Result<HashKey, RecordError> {
        let invalid = || RecordError::InvalidExplicitHashKey {
            value: value.chars().take(64).collect(),
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        value.parse::<u128>().map(HashKey).map_err(|_| invalid())
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One shard's inclusive hash key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeyRange {
    pub starting_hash_key: HashKey,
    pub ending_hash_key: HashKey,
}

impl HashKeyRange {
    pub fn contains(&self, key: HashKey) -> bool {
        self.starting_hash_key <= key && key <= self.ending_hash_key
    }
}

/// The hash key ranges of a stream created with `shard_count` shards (1 or more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRanges {
    shard_count: u32,
    /// `floor(2^128 / shard_count)`; `None` for a single shard, whose width 2^128 does not fit a u128.
    width: Option<u128>,
}

impl ShardRanges {
    /// Even split of the hash key space, as `CreateStream` does it.
    ///
    /// # Panics
    /// If `shard_count` is 0: a stream has at least one shard, and callers validate their config.
    pub fn even(shard_count: u32) -> ShardRanges {
        assert!(shard_count > 0, "a stream has at least one shard");
        let width = (shard_count > 1).then(|| {
            let n = u128::from(shard_count);
            // floor(2^128 / n) = floor((2^128 - 1) / n), plus one when n divides 2^128 exactly.
            u128::MAX / n + u128::from(u128::MAX % n == n - 1)
        });
        ShardRanges { shard_count, width }
    }

    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// The index of the shard whose range holds `key`.
    pub fn shard_for(&self, key: HashKey) -> u32 {
        match self.width {
            None => 0,
            // The last shard's range is wider by the remainder, so clamp.
            Some(width) => u32::try_from(key.0 / width).map_or(self.shard_count - 1, |i| i.min(self.shard_count - 1)),
        }
    }

    /// The inclusive range of shard `index` (`index < shard_count`).
    pub fn range(&self, index: u32) -> HashKeyRange {
        match self.width {
            None => HashKeyRange {
                starting_hash_key: HashKey(0),
                ending_hash_key: HashKey(u128::MAX),
            },
            Some(width) => {
                let start = width * u128::from(index);
                let end = if index + 1 == self.shard_count {
                    u128::MAX
                } else {
                    start + width - 1
                };
                HashKeyRange {
                    starting_hash_key: HashKey(start),
                    ending_hash_key: HashKey(end),
                }
            }
        }
    }
}

/// A shard id as Kinesis prints it: `shardId-` and 12 zero-padded digits.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Parses `shardId-000000000003` back to its index.
pub fn parse_shard_id(id: &str) -> Option<u32> {
    let digits = id.strip_prefix("shardId-")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn three_shards_split_like_create_stream() {
        let ranges = ShardRanges::even(3);
        let bounds: Vec<(String, String)> = (0..3)
            .map(|i| {
                let r = ranges.range(i);
                (r.starting_hash_key.to_string(), r.ending_hash_key.to_string())
            })
            .collect();
        assert_eq!(
            bounds,
            [
                ("0", "113427455640312821154458202477256070484"),
                (
                    "113427455640312821154458202477256070485",
                    "226854911280625642308916404954512140969"
                ),
                (
                    "226854911280625642308916404954512140970",
                    "340282366920938463463374607431768211455"
                ),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn power_of_two_shards_split_exactly() {
        let ranges = ShardRanges::even(4);
        assert_eq!(ranges.range(0).ending_hash_key.0, (1u128 << 126) - 1);
        assert_eq!(ranges.range(1).starting_hash_key.0, 1u128 << 126);
        assert_eq!(ranges.range(3).ending_hash_key.0, u128::MAX);
        let one = ShardRanges::even(1);
        assert_eq!(one.range(0).ending_hash_key.0, u128::MAX);
        assert_eq!(one.shard_for(HashKey(u128::MAX)), 0);
    }

    #[test]
    fn md5_hash_key_matches_known_digest() {
        // md5("1") = c4ca4238a0b923820dcc509a6f75849b
        assert_eq!(
            HashKey::from_partition_key("1").0,
            0xc4ca4238a0b923820dcc509a6f75849b_u128
        );
    }

    #[test]
    fn explicit_hash_keys_are_decimal_u128() {
        assert_eq!(HashKey::parse_explicit("0"), Ok(HashKey(0)));
        assert_eq!(
            HashKey::parse_explicit("340282366920938463463374607431768211455"),
            Ok(HashKey(u128::MAX))
        );
        for bad in ["", "-1", "+1", "1e3", "340282366920938463463374607431768211456", " 1"] {
            assert!(HashKey::parse_explicit(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn partition_keys_are_counted_in_characters() {
        assert!(validate_partition_key(&"é".repeat(256)).is_ok());
        assert_eq!(
            validate_partition_key(&"é".repeat(257)),
            Err(RecordError::PartitionKeyTooLong { chars: 257 })
        );
        assert_eq!(validate_partition_key(""), Err(RecordError::EmptyPartitionKey));
    }

    #[test]
    fn data_is_one_byte_to_one_mib() {
        assert_eq!(validate_data(b""), Err(RecordError::EmptyData));
        assert!(validate_data(&vec![0; MAX_RECORD_DATA_BYTES]).is_ok());
        assert!(matches!(
            validate_data(&vec![0; MAX_RECORD_DATA_BYTES + 1]),
            Err(RecordError::DataTooLarge { .. })
        ));
    }

    #[test]
    fn shard_ids_round_trip() {
        assert_eq!(shard_id(1), "shardId-000000000001");
        assert_eq!(parse_shard_id("shardId-000000000001"), Some(1));
        assert_eq!(parse_shard_id("shardId-1"), None);
    }

    proptest! {
        #[test]
        fn every_key_falls_in_the_range_of_its_shard(n in 1u32..=1024, key in any::<u128>()) {
            let ranges = ShardRanges::even(n);
            let shard = ranges.shard_for(HashKey(key));
            prop_assert!(shard < n);
            prop_assert!(ranges.range(shard).contains(HashKey(key)));
        }

        #[test]
        fn ranges_are_contiguous_and_cover_the_space(n in 1u32..=1024) {
            let ranges = ShardRanges::even(n);
            prop_assert_eq!(ranges.range(0).starting_hash_key.0, 0);
            prop_assert_eq!(ranges.range(n - 1).ending_hash_key.0, u128::MAX);
            for i in 1..n {
                prop_assert_eq!(ranges.range(i).starting_hash_key.0, ranges.range(i - 1).ending_hash_key.0 + 1);
            }
        }
    }
}

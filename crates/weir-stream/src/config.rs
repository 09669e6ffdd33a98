//! What a stream's owner chooses: shards, segment size, retention, durability, recovery.

use std::time::Duration;

/// When an append is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before acknowledging (the default). Concurrent appenders share one fsync (group commit).
    /// Risk: none; an acknowledged record survives a process crash and a power loss.
    Always,
    /// Acknowledge once the batch is written to the OS, fsync at most this long afterwards.
    /// Risk: a power loss or kernel crash loses acknowledged records of the last interval (a process
    /// crash loses nothing: the data is in the page cache). Readers only see records after their fsync,
    /// so nothing downstream ever holds a record that a power loss took back.
    Interval(Duration),
}

/// What opening a stream does about a corrupt frame in a sealed (non-last) segment. A torn or corrupt
/// tail of the last segment is always truncated: that is what an interrupted write leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Refuse to open, naming the file and offset (the default): an operator decides.
    Strict,
    /// Keep the records before the corruption, skip the rest of that segment, log at ERROR with the
    /// position, and open. The skipped sequence numbers are never reused.
    SkipCorruptSegmentTail,
}

/// A stream's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Number of shards, 1..=1024. Fixed once the stream exists on disk.
    pub shard_count: u32,
    /// Target segment size; a segment is sealed once it reaches this size. Retention removes whole
    /// segments, so this is also the granularity of retention.
    pub segment_bytes: u64,
    /// Records older than this are removed (Kinesis: 24 h by default).
    pub retention: Duration,
    /// Soft size cap: the oldest segments are removed while the stream is larger, but never before
    /// every registered consumer has checkpointed past them.
    pub retention_bytes: Option<u64>,
    /// Hard size cap: the oldest segments are removed while the stream is larger, even records a
    /// registered consumer has not read. Logged at ERROR and counted; nothing disappears silently.
    pub max_disk_bytes: Option<u64>,
    pub sync: SyncPolicy,
    pub recovery: RecoveryMode,
    /// Bytes of appends queued for the writer before `append` waits and `try_append` fails with
    /// `Overloaded`.
    pub max_pending_bytes: u64,
    /// How often retention runs by itself.
    pub retention_check_interval: Duration,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            shard_count: 4,
            segment_bytes: 128 * 1024 * 1024,
            retention: Duration::from_secs(24 * 3600),
            retention_bytes: None,
            max_disk_bytes: None,
            sync: SyncPolicy::Always,
            recovery: RecoveryMode::Strict,
            max_pending_bytes: 64 * 1024 * 1024,
            retention_check_interval: Duration::from_secs(30),
        }
    }
}

/// A configuration value outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream config `{key}`: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

pub const MAX_SHARDS: u32 = 1024;
pub const MIN_SEGMENT_BYTES: u64 = 4096;
pub const MAX_SEGMENT_BYTES: u64 = 1 << 32;
/// Kinesis allows up to 8,760 hours (365 days).
pub const MAX_RETENTION: Duration = Duration::from_secs(8760 * 3600);

impl StreamConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        if !(1..=MAX_SHARDS).contains(&self.shard_count) {
            return err(
                "shard_count",
                format!("{} is outside 1..={MAX_SHARDS}", self.shard_count),
            );
        }
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return err(
                "segment_bytes",
                format!(
                    "{} is outside {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES}",
                    self.segment_bytes
                ),
            );
        }
        if self.retention < Duration::from_secs(1) || self.retention > MAX_RETENTION {
            return err("retention", format!("{:?} is outside 1s..=8760h", self.retention));
        }
        for (key, cap) in [
            ("retention_bytes", self.retention_bytes),
            ("max_disk_bytes", self.max_disk_bytes),
        ] {
            if cap.is_some_and(|cap| cap < self.segment_bytes) {
                return err(
                    key,
                    format!("{cap:?} is smaller than segment_bytes ({})", self.segment_bytes),
                );
            }
        }
        if let SyncPolicy::Interval(every) = self.sync
            && (every.is_zero() || every > Duration::from_secs(60))
        {
            return err("sync", format!("interval {every:?} is outside 1ms..=60s"));
        }
        if self.max_pending_bytes < 2 * crate::MAX_BATCH_BYTES as u64 {
            return err(
                "max_pending_bytes",
                format!(
                    "{} is below twice the largest batch ({})",
                    self.max_pending_bytes,
                    crate::MAX_BATCH_BYTES
                ),
            );
        }
        if self.retention_check_interval.is_zero() {
            return err("retention_check_interval", "must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_key() {
        assert_eq!(StreamConfig::default().validate(), Ok(()));
        let bad = StreamConfig {
            shard_count: 0,
            ..StreamConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.key), Err("shard_count"));
        let bad = StreamConfig {
            retention_bytes: Some(10),
            ..StreamConfig::default()
        };
        let e = bad.validate().expect_err("too small");
        assert_eq!(e.key, "retention_bytes");
        assert!(e.to_string().contains("segment_bytes"), "{e}");
    }
}

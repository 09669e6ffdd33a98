//! A delivery stream's configuration, with Firehose's allowed ranges.

use std::time::Duration;

/// Firehose's buffering-hint ranges for S3 destinations.
pub const MIN_BUFFER_BYTES: u64 = 1024 * 1024;
pub const MAX_BUFFER_BYTES: u64 = 128 * 1024 * 1024;
pub const MAX_BUFFER_INTERVAL: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// The delivery stream's name: the first part of every object name.
    pub name: String,
    /// Firehose's `DeliveryStreamVersion`, the second part of every object name.
    pub version: u32,
    /// Deliver once this many bytes of records are buffered (counted before any compression).
    pub buffer_bytes: u64,
    /// Deliver once the first buffered record has waited this long.
    pub buffer_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            name: "events".into(),
            version: 1,
            buffer_bytes: 5 * 1024 * 1024,
            buffer_interval: Duration::from_secs(300),
        }
    }
}

/// A value outside Firehose's range, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid delivery config `{key}`: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

impl DeliveryConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return err("name", format!("{:?}: use 1 to 64 of A-Z a-z 0-9 _ . -", self.name));
        }
        if self.version == 0 {
            return err("version", "starts at 1".into());
        }
        if !(MIN_BUFFER_BYTES..=MAX_BUFFER_BYTES).contains(&self.buffer_bytes) {
            return err(
                "buffer_size",
                format!("{} bytes is outside 1 MiB..=128 MiB", self.buffer_bytes),
            );
        }
        if self.buffer_interval > MAX_BUFFER_INTERVAL {
            return err(
                "buffer_interval",
                format!("{:?} is outside 0s..=900s", self.buffer_interval),
            );
        }
        Ok(())
    }
}

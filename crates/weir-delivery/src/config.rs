//! A delivery stream's configuration, with Firehose's allowed ranges.

use std::collections::BTreeMap;
use std::time::Duration;
use weir_core::prefix::Prefixes;
use weir_core::transform::TransformSpec;

use crate::encode::{Compression, Format};

/// Firehose's buffering-hint ranges for S3 destinations.
pub const MIN_BUFFER_BYTES: u64 = 1024 * 1024;
pub const MAX_BUFFER_BYTES: u64 = 128 * 1024 * 1024;
pub const MAX_BUFFER_INTERVAL: Duration = Duration::from_secs(900);

/// Firehose's processor (Lambda) settings: Firehose invokes the transform with batches of at most
/// `buffer_bytes` (0.2–3 MB, default 1 MB) and retries a failed invocation `retries` times (0–300,
/// default 3) before the batch goes to the error output.
pub const MIN_PROCESSOR_BUFFER_BYTES: u64 = 200_000;
pub const MAX_PROCESSOR_BUFFER_BYTES: u64 = 3_000_000;
pub const MAX_PROCESSOR_RETRIES: u32 = 300;
/// Firehose's default quota of active partitions per delivery stream (raisable to 5,000).
pub const DEFAULT_MAX_ACTIVE_PARTITIONS: usize = 500;
pub const MAX_ACTIVE_PARTITIONS: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorConfig {
    /// An executable that acts as the transformation Lambda: Firehose's event JSON on stdin, the
    /// response JSON on stdout (so the seed's Python handler runs unchanged behind a small shim).
    /// `None`: the built-in [`DeliveryConfig::transform`].
    pub command: Option<Vec<String>>,
    /// How long one invocation of `command` may take (Lambda's limit is 15 minutes; Firehose's
    /// processor timeout is the function's).
    pub timeout: Duration,
    pub retries: u32,
    pub buffer_bytes: u64,
}

impl Default for ProcessorConfig {
    fn default() -> ProcessorConfig {
        ProcessorConfig {
            command: None,
            timeout: Duration::from_secs(60),
            retries: 3,
            buffer_bytes: 1_000_000,
        }
    }
}

/// Dynamic partitioning: partition keys from jq expressions over each record (Firehose's inline
/// parsing) and/or from the transform's `metadata.partitionKeys`, used by the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicPartitioning {
    /// Key name → jq expression over the record as the producer sent it.
    pub query_keys: BTreeMap<String, String>,
    pub max_active_partitions: usize,
}

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
    /// The built-in transform (the seed's `newline` by default).
    pub transform: TransformSpec,
    pub processor: ProcessorConfig,
    /// Firehose's `Prefix` and `ErrorOutputPrefix` (expressions allowed; see [`weir_core::prefix`]).
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub dynamic_partitioning: Option<DynamicPartitioning>,
    /// The objects' format and compression.
    pub format: Format,
    pub compression: Compression,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            name: "events".into(),
            version: 1,
            buffer_bytes: 5 * 1024 * 1024,
            buffer_interval: Duration::from_secs(300),
            transform: TransformSpec::default(),
            processor: ProcessorConfig::default(),
            prefix: None,
            error_output_prefix: None,
            dynamic_partitioning: None,
            format: Format::default(),
            compression: Compression::default(),
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
        let p = &self.processor;
        if !(MIN_PROCESSOR_BUFFER_BYTES..=MAX_PROCESSOR_BUFFER_BYTES).contains(&p.buffer_bytes) {
            return err(
                "processor.buffer_size",
                format!("{} bytes is outside Firehose's 0.2 MB..=3 MB", p.buffer_bytes),
            );
        }
        if p.retries > MAX_PROCESSOR_RETRIES {
            return err("processor.retries", format!("{} is outside 0..=300", p.retries));
        }
        if p.command
            .as_ref()
            .is_some_and(|c| c.first().is_none_or(String::is_empty))
        {
            return err("processor.command", "names no program".into());
        }
        if p.timeout.is_zero() || p.timeout > Duration::from_secs(900) {
            return err(
                "processor.timeout",
                format!("{:?} is outside 1s..=900s (Lambda's limit)", p.timeout),
            );
        }
        if let Some(dp) = &self.dynamic_partitioning
            && !(1..=MAX_ACTIVE_PARTITIONS).contains(&dp.max_active_partitions)
        {
            return err(
                "dynamic_partitioning.max_active_partitions",
                format!("{} is outside 1..=5000", dp.max_active_partitions),
            );
        }
        self.prefixes()?;
        if let Some(dp) = &self.dynamic_partitioning
            && !dp.query_keys.is_empty()
            && let Err(e) = crate::partition::QueryKeys::from_keys(&dp.query_keys)
        {
            return err("dynamic_partitioning.query_keys", e.to_string());
        }
        if self.processor.command.is_none()
            && let Err(e) = self.transform.build()
        {
            return err("transform", e.to_string());
        }
        self.format.validate(self.compression).map_err(|e| ConfigError {
            key: "format",
            message: e.to_string(),
        })?;
        Ok(())
    }

    /// The prefixes, checked against Firehose's rules (including that partition keys need dynamic
    /// partitioning).
    pub fn prefixes(&self) -> Result<Prefixes, ConfigError> {
        Prefixes::from_config(
            self.prefix.as_deref(),
            self.error_output_prefix.as_deref(),
            self.dynamic_partitioning.is_some(),
        )
        .map_err(|e| ConfigError {
            key: "prefix",
            message: e.to_string(),
        })
    }
}

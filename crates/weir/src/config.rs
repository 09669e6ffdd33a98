//! `weir.toml`: the pipeline definition. Every field is optional; the defaults are the default
//! pipeline of `weir up` (stream `events` with 4 shards, delivery `events` with the newline transform
//! into `<data_dir>/bucket/`, buffering 1 MiB or 10 s). See `weir.example.toml` for every field.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use weir_core::ingest::{IngestLimits, MAX_BODY_BYTES_LIMIT, PartitionKeySpec};
use weir_core::transform::TransformSpec;
use weir_delivery::S3Config;
use weir_delivery::encode::{Compression, Format};

/// A configuration value outside its allowed range, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn invalid<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.into(),
        message: message.into(),
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where streams, delivery state and the local bucket live.
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    pub server: ServerConfig,
    pub streams: Vec<StreamSection>,
    pub deliveries: Vec<DeliverySection>,
    pub warehouse: WarehouseSection,
}

/// The Snowpipe stage: every delivery stream loaded into a DuckDB table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarehouseSection {
    /// On by default: `weir query` works on the default pipeline.
    pub enabled: bool,
    /// The DuckDB database file, relative to `data_dir` unless absolute.
    pub path: PathBuf,
    /// DuckDB's memory limit (its buffer pool; loads spill beyond it).
    pub memory_limit: ByteSize,
    /// DuckDB's worker threads.
    pub threads: u32,
    /// How often the loader looks for new objects when idle.
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
}

impl Default for WarehouseSection {
    fn default() -> WarehouseSection {
        WarehouseSection {
            enabled: true,
            path: PathBuf::from("warehouse.duckdb"),
            memory_limit: ByteSize(512 << 20),
            threads: 2,
            poll_interval: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub max_records_per_request: usize,
    /// After decompression; at most 10 MB (API Gateway's payload limit).
    pub max_request_bytes: ByteSize,
    pub max_json_depth: usize,
    pub max_connections: usize,
    #[serde(with = "humantime_serde_compat")]
    pub header_read_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub body_read_timeout: Duration,
    /// Bearer tokens; when set, requests without one of them get 401.
    pub auth_tokens: Vec<String>,
    /// Allow listening on a non-loopback address without `auth_tokens`.
    pub allow_unauthenticated_remote: bool,
    /// How long shutdown may take to deliver what is buffered.
    #[serde(with = "humantime_serde_compat")]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSection {
    pub name: String,
    pub shards: u32,
    /// `random`, or a JSON pointer into each record such as `/user_id`.
    pub partition_key: String,
    #[serde(with = "humantime_serde_compat")]
    pub retention: Duration,
    /// `always` (fsync before acknowledging) or an interval such as `100ms`.
    pub sync: String,
    pub retention_bytes: Option<ByteSize>,
    pub max_disk_bytes: Option<ByteSize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySection {
    pub name: String,
    pub stream: String,
    /// The built-in transform: `"newline"` (the seed's), `"flatten"`, or a table such as
    /// `{ kind = "csv", columns = [...] }` (see `weir_core::transform::TransformSpec`).
    pub transform: TransformSpec,
    pub buffer_size: ByteSize,
    #[serde(with = "humantime_serde_compat")]
    pub buffer_interval: Duration,
    /// The local directory objects go to, relative to `data_dir` unless absolute.
    pub bucket: PathBuf,
    /// Firehose's `Prefix` and `ErrorOutputPrefix`, with its expressions.
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub processor: ProcessorSection,
    pub dynamic_partitioning: Option<DynamicPartitioningSection>,
    /// `"ndjson"` (default), `"csv"` (with the csv transform) or `{ kind = "parquet", columns = [...] }`.
    pub format: Format,
    /// `"none"`, `"gzip"`, `"zstd"` or `"snappy"` (text formats; Parquet compresses inside).
    pub compression: Compression,
    /// Deliver to S3 (or any S3-compatible store) instead of the local `bucket` directory.
    pub s3: Option<S3Config>,
    /// The warehouse table the objects are loaded into [default: the delivery stream's name].
    pub table: Option<String>,
}

/// Firehose's processing configuration: how the transform is invoked.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorSection {
    /// A program standing in for the transformation Lambda (event JSON on stdin, response on stdout);
    /// replaces the built-in `transform`.
    pub command: Option<Vec<String>>,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    pub retries: u32,
    pub buffer_size: ByteSize,
}

impl Default for ProcessorSection {
    fn default() -> ProcessorSection {
        let p = weir_delivery::config::ProcessorConfig::default();
        ProcessorSection {
            command: p.command,
            timeout: p.timeout,
            retries: p.retries,
            buffer_size: ByteSize(p.buffer_bytes),
        }
    }
}

/// Dynamic partitioning; present = enabled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicPartitioningSection {
    /// Partition key → jq expression over each record (Firehose's inline parsing).
    #[serde(default)]
    pub query_keys: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_max_active_partitions")]
    pub max_active_partitions: usize,
}

fn default_max_active_partitions() -> usize {
    weir_delivery::config::DEFAULT_MAX_ACTIVE_PARTITIONS
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./weir-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            server: ServerConfig::default(),
            streams: vec![StreamSection::default()],
            deliveries: vec![DeliverySection::default()],
            warehouse: WarehouseSection::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        let limits = IngestLimits::default();
        ServerConfig {
            max_records_per_request: limits.max_records,
            max_request_bytes: ByteSize(limits.max_body_bytes as u64),
            max_json_depth: limits.max_depth,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            auth_tokens: Vec::new(),
            allow_unauthenticated_remote: false,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for StreamSection {
    fn default() -> StreamSection {
        StreamSection {
            name: "events".into(),
            shards: 4,
            partition_key: "random".into(),
            retention: Duration::from_secs(24 * 3600),
            sync: "always".into(),
            retention_bytes: None,
            max_disk_bytes: None,
        }
    }
}

impl Default for DeliverySection {
    fn default() -> DeliverySection {
        DeliverySection {
            name: "events".into(),
            stream: "events".into(),
            transform: TransformSpec::default(),
            buffer_size: ByteSize(1024 * 1024),
            buffer_interval: Duration::from_secs(10),
            bucket: PathBuf::from("bucket"),
            prefix: None,
            error_output_prefix: None,
            processor: ProcessorSection::default(),
            dynamic_partitioning: None,
            format: Format::default(),
            compression: Compression::default(),
            s3: None,
            table: None,
        }
    }
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn ingest_limits(&self) -> IngestLimits {
        IngestLimits {
            max_records: self.server.max_records_per_request,
            max_body_bytes: self.server.max_request_bytes.0 as usize,
            max_depth: self.server.max_json_depth,
            ..IngestLimits::default()
        }
    }

    /// Checks every value, naming the key and the allowed range on error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if !(1..=10_000).contains(&s.max_records_per_request) {
            return invalid(
                "server.max_records_per_request",
                format!("{} is outside 1..=10000", s.max_records_per_request),
            );
        }
        if !(1..=MAX_BODY_BYTES_LIMIT as u64).contains(&s.max_request_bytes.0) {
            return invalid(
                "server.max_request_bytes",
                format!(
                    "{} bytes is outside 1..={MAX_BODY_BYTES_LIMIT} (API Gateway's 10 MB)",
                    s.max_request_bytes.0
                ),
            );
        }
        if let Err(e) = self.ingest_limits().validate() {
            return invalid("server", e.to_string());
        }
        if !(1..=100_000).contains(&s.max_connections) {
            return invalid(
                "server.max_connections",
                format!("{} is outside 1..=100000", s.max_connections),
            );
        }
        for (key, d) in [
            ("server.header_read_timeout", s.header_read_timeout),
            ("server.body_read_timeout", s.body_read_timeout),
            ("server.shutdown_timeout", s.shutdown_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                return invalid(key, format!("{} is outside 1ms..=1h", humantime::format_duration(d)));
            }
        }
        if s.auth_tokens.iter().any(|t| t.len() < 16) {
            return invalid("server.auth_tokens", "every token needs at least 16 characters");
        }
        if self.streams.is_empty() {
            return invalid("streams", "define at least one stream");
        }
        for (i, stream) in self.streams.iter().enumerate() {
            let key = |field: &str| format!("streams[{i}].{field}");
            if self.streams[..i].iter().any(|other| other.name == stream.name) {
                return invalid(key("name"), format!("{:?} is defined twice", stream.name));
            }
            if let Err(e) = PartitionKeySpec::parse(&stream.partition_key) {
                return invalid(key("partition_key"), e);
            }
            if let Err(e) = stream.stream_config() {
                return invalid(key(&e.key), e.message);
            }
        }
        for (i, delivery) in self.deliveries.iter().enumerate() {
            let key = |field: &str| format!("deliveries[{i}].{field}");
            if self.deliveries[..i].iter().any(|other| other.name == delivery.name) {
                return invalid(key("name"), format!("{:?} is defined twice", delivery.name));
            }
            if !self.streams.iter().any(|s| s.name == delivery.stream) {
                return invalid(key("stream"), format!("no stream named {:?}", delivery.stream));
            }
            if let Err(e) = delivery.transform.build() {
                return invalid(key("transform"), e.to_string());
            }
            if let Some(s3) = &delivery.s3
                && let Err(e) = s3.validate()
            {
                return invalid(key(&format!("s3.{}", e.key)), e.message);
            }
            let config = match delivery.delivery_config() {
                Ok(config) => config,
                Err(e) => return invalid(key(e.key), e.message),
            };
            if let Err(e) = config.validate() {
                return invalid(key(e.key), e.message);
            }
            if self.warehouse.enabled {
                let table = delivery.table_name();
                if let Err(e) = weir_warehouse::table::validate_table_name(&table) {
                    let field = if delivery.table.is_some() { "table" } else { "name" };
                    return invalid(key(field), format!("{e} (set `table` to name the warehouse table)"));
                }
                if let Some((j, _)) = self.deliveries[..i]
                    .iter()
                    .enumerate()
                    .find(|(_, other)| other.table_name().eq_ignore_ascii_case(&table))
                {
                    return invalid(key("table"), format!("{table:?} is also deliveries[{j}]'s table"));
                }
            }
        }
        let w = &self.warehouse;
        if !(1..=64).contains(&w.threads) {
            return invalid("warehouse.threads", format!("{} is outside 1..=64", w.threads));
        }
        if w.memory_limit.0 < (16 << 20) {
            return invalid("warehouse.memory_limit", "at least 16MiB");
        }
        if w.poll_interval.is_zero() || w.poll_interval > Duration::from_secs(60) {
            return invalid(
                "warehouse.poll_interval",
                format!("{} is outside 1ms..=60s", humantime::format_duration(w.poll_interval)),
            );
        }
        Ok(())
    }

    /// The warehouse's database settings (path resolved against `data_dir`).
    pub fn warehouse_settings(&self) -> weir_warehouse::WarehouseSettings {
        let w = &self.warehouse;
        weir_warehouse::WarehouseSettings {
            path: self.data_dir.join(&w.path),
            memory_limit: format!("{}MiB", w.memory_limit.0 >> 20),
            threads: w.threads,
            poll_interval: w.poll_interval,
        }
    }
}

impl StreamSection {
    /// The stream's engine configuration; `Err` names the field (without the `streams[i].` prefix).
    pub fn stream_config(&self) -> Result<weir_stream::StreamConfig, ConfigError> {
        let sync = match self.sync.as_str() {
            "always" => weir_stream::SyncPolicy::Always,
            other => match humantime::parse_duration(other) {
                Ok(every) => weir_stream::SyncPolicy::Interval(every),
                Err(_) => {
                    return invalid(
                        "sync",
                        format!("{other:?}: use `always` or an interval such as `100ms`"),
                    );
                }
            },
        };
        let config = weir_stream::StreamConfig {
            shard_count: self.shards,
            retention: self.retention,
            retention_bytes: self.retention_bytes.map(|b| b.0),
            max_disk_bytes: self.max_disk_bytes.map(|b| b.0),
            sync,
            ..weir_stream::StreamConfig::default()
        };
        config.validate().map_err(|e| ConfigError {
            key: match e.key {
                "shard_count" => "shards".into(),
                other => other.into(),
            },
            message: e.message,
        })?;
        if !weir_stream::valid_name(&self.name) {
            return invalid("name", format!("{:?}: use 1 to 128 of A-Z a-z 0-9 _ . -", self.name));
        }
        Ok(config)
    }
}

impl DeliverySection {
    /// The warehouse table: `table`, or the delivery stream's name.
    pub fn table_name(&self) -> String {
        self.table.clone().unwrap_or_else(|| self.name.clone())
    }

    /// The warehouse's view of this delivery stream (after [`Config::validate`]).
    pub fn table_spec(&self) -> Result<weir_warehouse::TableSpec, ConfigError> {
        let config = self.delivery_config().map_err(|e| ConfigError {
            key: e.key.into(),
            message: e.message,
        })?;
        let csv_columns = match &self.transform {
            TransformSpec::Csv(csv) => Some(&csv.columns[..]),
            _ => None,
        };
        let layout = weir_warehouse::Layout::of(&config.format, csv_columns).map_err(|message| ConfigError {
            key: "format".into(),
            message,
        })?;
        Ok(weir_warehouse::TableSpec {
            delivery: self.name.clone(),
            table: self.table_name(),
            layout,
            compression: self.compression,
        })
    }

    /// The delivery stream's configuration; `Err` names the field (without the `deliveries[i].` prefix).
    pub fn delivery_config(&self) -> Result<weir_delivery::DeliveryConfig, weir_delivery::ConfigError> {
        let p = &self.processor;
        let format = self
            .format
            .clone()
            .for_transform(&self.transform)
            .map_err(|e| weir_delivery::ConfigError {
                key: "format",
                message: e.to_string(),
            })?;
        Ok(weir_delivery::DeliveryConfig {
            name: self.name.clone(),
            version: 1,
            buffer_bytes: self.buffer_size.0,
            buffer_interval: self.buffer_interval,
            transform: self.transform.clone(),
            processor: weir_delivery::config::ProcessorConfig {
                command: p.command.clone(),
                timeout: p.timeout,
                retries: p.retries,
                buffer_bytes: p.buffer_size.0,
            },
            prefix: self.prefix.clone(),
            error_output_prefix: self.error_output_prefix.clone(),
            dynamic_partitioning: self.dynamic_partitioning.as_ref().map(|d| {
                weir_delivery::config::DynamicPartitioning {
                    query_keys: d.query_keys.clone(),
                    max_active_partitions: d.max_active_partitions,
                }
            }),
            format,
            compression: self.compression,
        })
    }
}

/// A size in bytes, written as `5MiB`, `1 MiB`, `512KB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let number: u64 = number.parse().map_err(|_| format!("{s:?} is not a size like `5MiB`"))?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            other => return Err(format!("{other:?} is not a unit: use B, KB, KiB, MB, MiB, GB or GiB")),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Durations written as `10s`, `24h`, `250ms` (humantime).
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let config = Config::parse(include_str!("../../../weir.example.toml")).expect("example parses");
        config.validate().expect("example is valid");
        assert_eq!(config.streams[0].name, "events");
    }

    #[test]
    fn the_empty_config_is_the_default_pipeline() {
        let config = Config::parse("").expect("parses");
        config.validate().expect("valid");
        assert_eq!(config.streams[0].shards, 4);
        assert_eq!(config.deliveries[0].buffer_size, ByteSize(1 << 20));
        assert_eq!(config.deliveries[0].buffer_interval, Duration::from_secs(10));
    }

    #[test]
    fn invalid_values_name_the_key_and_range() {
        for (text, key, needle) in [
            (
                "[server]\nmax_request_bytes = \"20MB\"",
                "server.max_request_bytes",
                "10000000",
            ),
            ("[[streams]]\nshards = 0", "streams[0].shards", "1..=1024"),
            (
                "[[streams]]\npartition_key = \"user_id\"",
                "streams[0].partition_key",
                "/",
            ),
            (
                "[[deliveries]]\nbuffer_size = \"200MiB\"",
                "deliveries[0].buffer_size",
                "128 MiB",
            ),
            (
                "[[deliveries]]\nbuffer_interval = \"901s\"",
                "deliveries[0].buffer_interval",
                "900s",
            ),
            ("[[deliveries]]\nstream = \"nope\"", "deliveries[0].stream", "nope"),
            ("[[streams]]\nsync = \"sometimes\"", "streams[0].sync", "always"),
            (
                "[[deliveries]]\nprefix = \"p/!{timestamp:yyyy}/\"",
                "deliveries[0].prefix",
                "ErrorOutputPrefix",
            ),
            (
                "[[deliveries]]\nprefix = \"!{partitionKeyFromQuery:a}/\"\nerror_output_prefix = \"e/!{firehose:error-output-type}/\"",
                "deliveries[0].prefix",
                "ynamic",
            ),
            ("[[deliveries]]\nformat = \"csv\"", "deliveries[0].format", "csv"),
            (
                "[[deliveries]]\n[deliveries.processor]\nretries = 301",
                "deliveries[0].processor.retries",
                "0..=300",
            ),
            (
                "[[deliveries]]\n[deliveries.processor]\nbuffer_size = \"4MB\"",
                "deliveries[0].processor.buffer_size",
                "3 MB",
            ),
            (
                "[[deliveries]]\nprefix = \"a/!{partitionKeyFromQuery:k}/\"\nerror_output_prefix = \"e/!{firehose:error-output-type}/\"\n[deliveries.dynamic_partitioning]\nquery_keys = { k = \".a | \" }",
                "deliveries[0].dynamic_partitioning.query_keys",
                "",
            ),
            (
                "[[deliveries]]\ntransform = { kind = \"csv\", columns = [] }",
                "deliveries[0].transform",
                "column",
            ),
        ] {
            let config = Config::parse(text).expect("parses");
            let e = config.validate().expect_err(text);
            assert_eq!(e.key, key, "{text}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_units_are_rejected_at_parse() {
        let e = Config::parse("[server]\nmax_conections = 5").expect_err("typo");
        assert!(e.contains("max_conections"), "{e}");
        let e = Config::parse("[[deliveries]]\nbuffer_size = \"5 parsecs\"").expect_err("unit");
        assert!(e.contains("parsecs"), "{e}");
    }

    #[test]
    fn sizes_take_human_units() {
        for (text, bytes) in [("5MiB", 5 << 20), ("1 MiB", 1 << 20), ("512KB", 512_000), ("42", 42)] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
    }
}

//! The functions' configuration: the environment variables deploy/aws/template.yaml sets (docs/aws.md,
//! "The functions' environment"). Read through a lookup function, so tests pass a map instead of
//! changing the process's environment.

use std::time::Duration;
use thiserror::Error;
use weir_core::ingest::{IngestLimits, PartitionKeySpec};
use weir_core::transform::TransformSpec;

/// The Kinesis stream, and the only `{stream}` the route accepts.
pub const STREAM_NAME: &str = "WEIR_STREAM_NAME";
/// `random` or a JSON pointer such as `/user_id`.
pub const PARTITION_KEY: &str = "WEIR_PARTITION_KEY";
/// Most records in one request.
pub const MAX_RECORDS_PER_REQUEST: &str = "WEIR_MAX_RECORDS_PER_REQUEST";
/// Most body bytes after decompression.
pub const MAX_REQUEST_BYTES: &str = "WEIR_MAX_REQUEST_BYTES";
/// Deepest nesting in one record.
pub const MAX_JSON_DEPTH: &str = "WEIR_MAX_JSON_DEPTH";
/// How long failed PutRecords entries are retried, in milliseconds.
pub const PUT_RETRY_DEADLINE_MS: &str = "WEIR_PUT_RETRY_DEADLINE_MS";
/// The transform as `TransformSpec` JSON.
pub const TRANSFORM: &str = "WEIR_TRANSFORM";
/// The CloudWatch namespace of the embedded-metric-format counters.
pub const METRICS_NAMESPACE: &str = "WEIR_METRICS_NAMESPACE";
/// Set by Lambda: the function's name, the metrics' `FunctionName` dimension.
pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The template's default for [`PUT_RETRY_DEADLINE_MS`].
pub const DEFAULT_PUT_RETRY_DEADLINE: Duration = Duration::from_secs(10);
/// The template's default for [`METRICS_NAMESPACE`].
pub const DEFAULT_METRICS_NAMESPACE: &str = "weir";

/// A variable that is missing or out of range: names it and says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            variable,
            message: message.into(),
        }
    }
}

/// Where the metrics go: namespace and the `FunctionName` dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub namespace: String,
    pub function_name: String,
}

impl MetricsConfig {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>, default_function: &str) -> MetricsConfig {
        MetricsConfig {
            namespace: lookup(METRICS_NAMESPACE)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned()),
            function_name: lookup(FUNCTION_NAME)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| default_function.to_owned()),
        }
    }
}

/// The ingest function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// The Kinesis stream records go to; the only `{stream}` accepted.
    pub stream_name: String,
    pub partition_key: PartitionKeySpec,
    /// The limits of `weir up`'s `[server]`: records, bytes after decompression, depth.
    pub limits: IngestLimits,
    /// How long records a PutRecords call failed are retried before the reply reports them failed.
    pub put_retry_deadline: Duration,
    pub metrics: MetricsConfig,
}

impl IngestConfig {
    /// Reads the process's environment.
    pub fn from_env() -> Result<IngestConfig, ConfigError> {
        IngestConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`. Only [`STREAM_NAME`] is required; the others default to
    /// `weir up`'s defaults (random keys, 500 records, 5 MiB, depth 64) and a 10 s retry deadline.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<IngestConfig, ConfigError> {
        let stream_name = lookup(STREAM_NAME)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::new(STREAM_NAME, "is not set; it names the Kinesis stream"))?;
        let partition_key = match lookup(PARTITION_KEY).filter(|s| !s.is_empty()) {
            None => PartitionKeySpec::Random,
            Some(text) => PartitionKeySpec::parse(&text).map_err(|e| ConfigError::new(PARTITION_KEY, e))?,
        };
        let defaults = IngestLimits::default();
        let limits = IngestLimits {
            max_records: number(&lookup, MAX_RECORDS_PER_REQUEST)?.unwrap_or(defaults.max_records),
            max_body_bytes: number(&lookup, MAX_REQUEST_BYTES)?.unwrap_or(defaults.max_body_bytes),
            max_depth: number(&lookup, MAX_JSON_DEPTH)?.unwrap_or(defaults.max_depth),
            ..defaults
        };
        limits.validate().map_err(|e| {
            let variable = match e.field {
                "max_records" => MAX_RECORDS_PER_REQUEST,
                "max_body_bytes" => MAX_REQUEST_BYTES,
                _ => MAX_JSON_DEPTH,
            };
            ConfigError::new(variable, e.to_string())
        })?;
        let put_retry_deadline = number(&lookup, PUT_RETRY_DEADLINE_MS)?
            .map(|ms| Duration::from_millis(ms as u64))
            .unwrap_or(DEFAULT_PUT_RETRY_DEADLINE);
        Ok(IngestConfig {
            stream_name,
            partition_key,
            limits,
            put_retry_deadline,
            metrics: MetricsConfig::from_lookup(&lookup, "ingest"),
        })
    }
}

/// A non-negative integer variable, `None` when unset or empty.
fn number(lookup: &impl Fn(&str) -> Option<String>, variable: &'static str) -> Result<Option<usize>, ConfigError> {
    match lookup(variable).filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::new(variable, format!("{text:?} is not a non-negative integer"))),
    }
}

/// The transform function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformConfig {
    /// The built-in transform; `newline` (the seed's) when [`TRANSFORM`] is unset.
    pub spec: TransformSpec,
    pub metrics: MetricsConfig,
}

impl TransformConfig {
    /// Reads the process's environment.
    pub fn from_env() -> Result<TransformConfig, ConfigError> {
        TransformConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`. The spec is validated by building it once, so a bad
    /// column or pointer stops the function at start, not at its first invocation.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<TransformConfig, ConfigError> {
        let spec = match lookup(TRANSFORM).filter(|s| !s.trim().is_empty()) {
            None => TransformSpec::default(),
            Some(json) => serde_json::from_str::<TransformSpec>(&json)
                .map_err(|e| ConfigError::new(TRANSFORM, format!("is not a transform spec: {e}")))?,
        };
        spec.build().map_err(|e| ConfigError::new(TRANSFORM, e.to_string()))?;
        Ok(TransformConfig {
            spec,
            metrics: MetricsConfig::from_lookup(&lookup, "transform"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn ingest_defaults_are_weir_ups_and_only_the_stream_is_required() {
        let config = IngestConfig::from_lookup(lookup(&[(STREAM_NAME, "events")])).expect("valid");
        assert_eq!(config.stream_name, "events");
        assert_eq!(config.partition_key, PartitionKeySpec::Random);
        assert_eq!(config.limits, IngestLimits::default());
        assert_eq!(config.put_retry_deadline, DEFAULT_PUT_RETRY_DEADLINE);
        assert_eq!(config.metrics.namespace, "weir");
        assert_eq!(config.metrics.function_name, "ingest");
        let missing = IngestConfig::from_lookup(lookup(&[])).expect_err("no stream");
        assert_eq!(missing.variable, STREAM_NAME);
    }

    #[test]
    fn ingest_errors_name_the_variable() {
        let cases = [
            (PARTITION_KEY, "user_id"),
            (MAX_RECORDS_PER_REQUEST, "many"),
            (MAX_RECORDS_PER_REQUEST, "0"),
            (MAX_REQUEST_BYTES, "20000000"),
            (MAX_JSON_DEPTH, "200"),
            (PUT_RETRY_DEADLINE_MS, "-1"),
        ];
        for (variable, value) in cases {
            let e = IngestConfig::from_lookup(lookup(&[(STREAM_NAME, "s"), (variable, value)])).expect_err(value);
            assert_eq!(e.variable, variable, "{value}: {e}");
        }
        let config = IngestConfig::from_lookup(lookup(&[
            (STREAM_NAME, "s"),
            (PARTITION_KEY, "/user/id"),
            (MAX_RECORDS_PER_REQUEST, "1000"),
            (PUT_RETRY_DEADLINE_MS, "250"),
            (METRICS_NAMESPACE, "acme"),
            (FUNCTION_NAME, "stack-IngestFunction-1"),
        ]))
        .expect("valid");
        assert_eq!(config.limits.max_records, 1000);
        assert_eq!(config.put_retry_deadline, Duration::from_millis(250));
        assert_eq!(config.partition_key.to_string(), "/user/id");
        assert_eq!(config.metrics.namespace, "acme");
        assert_eq!(config.metrics.function_name, "stack-IngestFunction-1");
    }

    #[test]
    fn transform_spec_is_json_and_checked_at_start() {
        let config = TransformConfig::from_lookup(lookup(&[])).expect("default");
        assert_eq!(config.spec, TransformSpec::default());
        let csv = r#"{"kind":"csv","columns":[{"name":"id","type":"integer"}]}"#;
        let config = TransformConfig::from_lookup(lookup(&[(TRANSFORM, csv)])).expect("csv");
        assert_eq!(config.spec.kind(), "csv");
        for bad in [r#"{"kind":"xml"}"#, "not json", r#"{"kind":"csv","columns":[]}"#] {
            let e = TransformConfig::from_lookup(lookup(&[(TRANSFORM, bad)])).expect_err(bad);
            assert_eq!(e.variable, TRANSFORM, "{bad}: {e}");
        }
    }
}

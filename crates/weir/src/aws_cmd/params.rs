//! weir.toml → the parameters of `deploy/aws/template.yaml`: one stream and one delivery stream of the
//! local pipeline become the stack's Kinesis stream, Firehose delivery stream and function settings.
//!
//! What the AWS shape cannot express is an [`Inexpressible`] error naming the weir.toml key; what it
//! expresses differently (or ignores) comes back as notes for the operator.

use crate::config::{Config, DeliverySection, StreamSection};
use std::time::Duration;
use weir_delivery::encode::{Compression, Format};

/// Firehose's minimum buffer size with dynamic partitioning.
const DYNAMIC_PARTITIONING_MIN_BUFFER_MIB: u64 = 64;
/// Lambda allows 4 KB of environment in total; the rest holds the other variables.
const MAX_TRANSFORM_SPEC_BYTES: usize = 3 * 1024;
/// Firehose waits at most 5 minutes for a transform invocation.
const MAX_TRANSFORM_TIMEOUT: Duration = Duration::from_secs(300);
const MIB: u64 = 1 << 20;

/// One `ParameterKey`/`ParameterValue` pair of the template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Parameter {
    #[serde(rename = "ParameterKey")]
    pub key: &'static str,
    #[serde(rename = "ParameterValue")]
    pub value: String,
}

/// A weir.toml setting the AWS deployment cannot express, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` cannot be deployed to AWS: {message}")]
pub struct Inexpressible {
    pub key: String,
    pub message: String,
}

fn inexpressible<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, Inexpressible> {
    Err(Inexpressible {
        key: key.into(),
        message: message.into(),
    })
}

/// Kinesis capacity mode of the stack's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// `shards` provisioned shards: the same shard count, so a partition key lands in the same shard
    /// index locally and on AWS.
    Provisioned,
    /// Kinesis scales the shards; `shards` is not used.
    OnDemand,
}

/// The template's parameters, plus notes on settings AWS expresses differently or ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub parameters: Vec<Parameter>,
    pub notes: Vec<String>,
}

/// Maps the delivery stream `delivery` (or the only one) and the stream it reads to the template's
/// parameters. `config` must have passed `validate()`.
pub fn template_parameters(
    config: &Config,
    delivery: Option<&str>,
    mode: StreamMode,
) -> Result<Mapping, Inexpressible> {
    let (d, delivery) = pick_delivery(config, delivery)?;
    let (s, stream) = config
        .streams
        .iter()
        .enumerate()
        .find(|(_, s)| s.name == delivery.stream)
        .ok_or_else(|| Inexpressible {
            key: format!("deliveries[{d}].stream"),
            message: format!("no stream named {:?}", delivery.stream),
        })?;
    let mut out = Mapping {
        parameters: Vec::new(),
        notes: Vec::new(),
    };
    map_stream(&mut out, s, stream, mode)?;
    map_server(&mut out, config);
    map_delivery(&mut out, d, delivery)?;
    Ok(out)
}

fn pick_delivery<'a>(config: &'a Config, name: Option<&str>) -> Result<(usize, &'a DeliverySection), Inexpressible> {
    let names = || {
        config
            .deliveries
            .iter()
            .map(|d| format!("{:?}", d.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => config
            .deliveries
            .iter()
            .enumerate()
            .find(|(_, d)| d.name == name)
            .ok_or_else(|| Inexpressible {
                key: "deliveries".into(),
                message: format!("no delivery stream named {name:?} (defined: {})", names()),
            }),
        None => match config.deliveries.as_slice() {
            [only] => Ok((0, only)),
            [] => inexpressible("deliveries", "define a delivery stream: the stack deploys one"),
            _ => inexpressible(
                "deliveries",
                format!(
                    "the stack deploys one delivery stream: pick one with --delivery ({})",
                    names()
                ),
            ),
        },
    }
}

fn push(out: &mut Mapping, key: &'static str, value: impl ToString) {
    out.parameters.push(Parameter {
        key,
        value: value.to_string(),
    });
}

fn map_stream(out: &mut Mapping, s: usize, stream: &StreamSection, mode: StreamMode) -> Result<(), Inexpressible> {
    push(out, "StreamName", &stream.name);
    match mode {
        StreamMode::Provisioned => push(out, "StreamMode", "PROVISIONED"),
        StreamMode::OnDemand => {
            push(out, "StreamMode", "ON_DEMAND");
            out.notes.push(format!(
                "streams[{s}].shards ({}) is not used: an on-demand stream scales its own shards",
                stream.shards
            ));
        }
    }
    push(out, "ShardCount", stream.shards);
    let hours = stream.retention.as_secs().div_ceil(3600);
    if !(24..=8760).contains(&hours) {
        return inexpressible(
            format!("streams[{s}].retention"),
            format!(
                "{} is outside Kinesis's retention of 24h..=8760h",
                humantime::format_duration(stream.retention)
            ),
        );
    }
    push(out, "RetentionHours", hours);
    push(out, "PartitionKey", &stream.partition_key);
    Ok(())
}

fn map_server(out: &mut Mapping, config: &Config) {
    let server = &config.server;
    push(out, "MaxRecordsPerRequest", server.max_records_per_request);
    push(out, "MaxRequestBytes", server.max_request_bytes.0);
    push(out, "MaxJsonDepth", server.max_json_depth);
    if !server.auth_tokens.is_empty() {
        out.notes.push(
            "server.auth_tokens are not used on AWS: the API authorizes with IAM or JWT (the AuthMode parameter)"
                .into(),
        );
    }
}

fn map_delivery(out: &mut Mapping, d: usize, delivery: &DeliverySection) -> Result<(), Inexpressible> {
    let key = |field: &str| format!("deliveries[{d}].{field}");
    if let Some(command) = &delivery.processor.command {
        return inexpressible(
            key("processor.command"),
            format!(
                "{command:?} runs on this machine; on AWS the transform is the weir transform function \
                 (a built-in `transform`), or replace its code with your own Lambda"
            ),
        );
    }
    if let Format::Parquet { .. } = delivery.format {
        return inexpressible(
            key("format"),
            "Parquet needs Firehose's record format conversion with an AWS Glue table, which the template \
             does not create; use \"ndjson\" or \"csv\"",
        );
    }
    let compression = match delivery.compression {
        Compression::None => "UNCOMPRESSED",
        Compression::Gzip => "GZIP",
        Compression::Snappy => "Snappy",
        Compression::Zstd => {
            return inexpressible(
                key("compression"),
                "zstd is weir's addition; Firehose writes none, gzip or snappy",
            );
        }
    };
    let s3_prefix = match &delivery.s3 {
        Some(s3) => {
            if let Some(endpoint) = &s3.endpoint {
                return inexpressible(
                    key("s3.endpoint"),
                    format!("{endpoint:?} is an S3-compatible store; Firehose delivers to the stack's own S3 bucket"),
                );
            }
            out.notes.push(format!(
                "deliveries[{d}].s3.bucket {:?} is not used: the stack creates its bucket (output BucketName)",
                s3.bucket
            ));
            s3.prefix.trim_matches('/').to_owned()
        }
        None => String::new(),
    };
    if let Format::Csv { .. } = delivery.format {
        out.notes.push(format!(
            "deliveries[{d}].format csv: objects on AWS have no header line (Firehose cannot write one); \
             load them with SKIP_HEADER = 0"
        ));
    }

    push(out, "DeliveryStreamName", &delivery.name);
    let buffer_mib = delivery.buffer_size.0.div_ceil(MIB).max(1);
    push(out, "BufferSizeMiB", buffer_mib);
    let interval = whole_seconds(delivery.buffer_interval);
    push(out, "BufferIntervalSeconds", interval);
    push(out, "Compression", compression);
    let under_s3_prefix = |p: &str| match s3_prefix.as_str() {
        "" => p.to_owned(),
        s3 => format!("{s3}/{p}"),
    };
    let prefix = match &delivery.prefix {
        Some(p) => under_s3_prefix(p),
        // No Prefix: Firehose appends YYYY/MM/dd/HH/, under the S3 prefix when there is one.
        None if s3_prefix.is_empty() => String::new(),
        None => format!("{s3_prefix}/"),
    };
    push(out, "Prefix", prefix);
    push(
        out,
        "ErrorOutputPrefix",
        delivery
            .error_output_prefix
            .as_deref()
            .map(under_s3_prefix)
            .unwrap_or_default(),
    );

    let spec = serde_json::to_string(&delivery.transform).map_err(|e| Inexpressible {
        key: key("transform"),
        message: format!("cannot be written as JSON: {e}"),
    })?;
    if spec.len() > MAX_TRANSFORM_SPEC_BYTES {
        return inexpressible(
            key("transform"),
            format!(
                "its JSON is {} bytes; the transform function's environment holds at most {MAX_TRANSFORM_SPEC_BYTES}",
                spec.len()
            ),
        );
    }
    push(out, "TransformSpec", spec);

    let processor = &delivery.processor;
    push(out, "ProcessorRetries", processor.retries);
    push(out, "ProcessorBufferSizeMB", megabytes(processor.buffer_size.0));
    push(out, "ProcessorBufferIntervalSeconds", interval);
    if processor.timeout > MAX_TRANSFORM_TIMEOUT {
        return inexpressible(
            key("processor.timeout"),
            format!(
                "{} is longer than Firehose waits for a transform (5m)",
                humantime::format_duration(processor.timeout)
            ),
        );
    }
    push(out, "TransformTimeoutSeconds", whole_seconds(processor.timeout).max(1));

    match &delivery.dynamic_partitioning {
        None => {
            push(out, "DynamicPartitioning", "false");
            push(out, "PartitionKeyQuery", "");
        }
        Some(dp) => {
            if buffer_mib < DYNAMIC_PARTITIONING_MIN_BUFFER_MIB {
                return inexpressible(
                    key("buffer_size"),
                    format!(
                        "Firehose needs at least {DYNAMIC_PARTITIONING_MIN_BUFFER_MIB} MiB with dynamic partitioning \
                         (configured: {buffer_mib} MiB)"
                    ),
                );
            }
            let query = partition_key_query(&dp.query_keys, delivery).map_err(|message| Inexpressible {
                key: key("dynamic_partitioning.query_keys"),
                message,
            })?;
            if dp.max_active_partitions != weir_delivery::config::DEFAULT_MAX_ACTIVE_PARTITIONS {
                out.notes.push(format!(
                    "deliveries[{d}].dynamic_partitioning.max_active_partitions ({}) is a Firehose quota: \
                     request it from AWS Support (the default is 500)",
                    dp.max_active_partitions
                ));
            }
            push(out, "DynamicPartitioning", "true");
            push(out, "PartitionKeyQuery", query);
        }
    }
    Ok(())
}

/// Firehose's MetadataExtractionQuery from weir's `query_keys`: `{k: (jq), ...}`, or empty for keys from
/// the transform only. Firehose runs it on the transformed record, weir on the record as sent: the two
/// agree only when the transform passes records through unchanged (`newline` without field operations).
fn partition_key_query(
    query_keys: &std::collections::BTreeMap<String, String>,
    delivery: &DeliverySection,
) -> Result<String, String> {
    if query_keys.is_empty() {
        return Ok(String::new());
    }
    let passes_records_through = matches!(
        &delivery.transform,
        weir_core::transform::TransformSpec::Newline(spec) if spec.fields == Default::default()
    );
    if !passes_records_through {
        return Err(format!(
            "Firehose evaluates them on the output of the `{}` transform, weir on the record as sent; use the \
             newline transform without `fields`, or partition keys from the transform",
            delivery.transform.kind()
        ));
    }
    let mut parts = Vec::with_capacity(query_keys.len());
    for (name, jq) in query_keys {
        let identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(format!("key {name:?}: Firehose's keys are letters, digits and _"));
        }
        parts.push(format!("{name}: ({jq})"));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}

/// Firehose's hints are whole seconds; a fraction rounds up so buffering never ends sooner than asked.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Firehose's processor BufferSizeInMBs: decimal megabytes, e.g. `1`, `0.2`, `2.5`.
fn megabytes(bytes: u64) -> String {
    let text = format!("{:.2}", bytes as f64 / 1_000_000.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests;

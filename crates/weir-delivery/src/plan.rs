//! From one batch of stream records to the objects that deliver it: transform (in invocations of
//! the processor's buffer size, retried), partition, name, encode, and route every record that cannot
//! be delivered to the error output. Deterministic: the same records give the same keys and the same
//! delivered bytes, which is what lets a replay after a crash rewrite objects instead of adding them.
//! (Error documents carry `attemptEndingTimestamp`, the one field that may differ on a replay.)

use std::borrow::Cow;
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::firehose;
use weir_core::prefix::{ErrorOutputType, PrefixContext, Prefixes};
use weir_core::transform::{
    InputRecord, OutputRecord, ProcessingError, ProcessingFailedDocument, Transform, TransformResult, pair_response,
};
use weir_stream::Record;

use crate::config::DeliveryConfig;
use crate::encode::{Compression, Format, encode_object};

/// Partition keys from a record (Firehose's inline parsing).
pub(crate) type QueryKeysFn = Box<dyn Fn(&[u8]) -> Result<BTreeMap<String, String>, ProcessingError> + Send + Sync>;

/// What a delivery stream needs, built once from its configuration.
pub(crate) struct Setup {
    pub config: DeliveryConfig,
    pub transform: Box<dyn Transform>,
    pub prefixes: Prefixes,
    pub query_keys: Option<QueryKeysFn>,
    pub format: Format,
    pub compression: Compression,
}

/// One object to write.
#[derive(Debug)]
pub(crate) struct PlannedObject {
    pub key: String,
    pub body: Vec<u8>,
    pub records: u64,
    /// `None` for delivered records, the error type for the error output.
    pub error: Option<ErrorOutputType>,
    /// The batch's records in this object (their index in the batch), with the error code of each
    /// failed one.
    pub members: Vec<(usize, Option<String>)>,
}

/// A failed record, for the dashboard's list.
#[derive(Debug, Clone)]
pub(crate) struct FailedRecord {
    pub arrival_ms: i64,
    pub error: ProcessingError,
    pub data_preview: String,
}

#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub objects: Vec<PlannedObject>,
    pub delivered: u64,
    pub dropped: u64,
    pub failed: u64,
    /// Transform invocations that failed and were retried.
    pub retries: u64,
    /// A sample of the failed records (the first few).
    pub failures: Vec<FailedRecord>,
}

/// How many failed records a plan keeps for the dashboard.
const FAILURE_SAMPLE: usize = 8;

/// Where one record ends.
enum Outcome {
    Delivered {
        data: Vec<u8>,
        keys: BTreeMap<String, String>,
    },
    Dropped,
    Failed {
        kind: ErrorOutputType,
        error: ProcessingError,
        attempts: u32,
    },
}

/// Plans the objects for `records` (consecutive records of one shard, oldest first).
pub(crate) fn plan(setup: &Setup, records: &[Record], batch_id: Uuid, now_ms: i64) -> Plan {
    // The strings every input carries, made once: each shard id (a stream batch has one shard; a
    // redriven error object may not) and each sequence number, which is also the record id.
    let mut shard_ids: Vec<(weir_stream::ShardId, String)> = Vec::new();
    for r in records {
        let shard = r.sequence_number.shard;
        if !shard_ids.iter().any(|(s, _)| *s == shard) {
            shard_ids.push((shard, shard.to_string()));
        }
    }
    let sequence_numbers: Vec<String> = records.iter().map(|r| ascii(r.sequence_number)).collect();
    let inputs: Vec<InputRecord<'_>> = records
        .iter()
        .zip(&sequence_numbers)
        .map(|(r, seq)| {
            let shard_id = shard_ids
                .iter()
                .find(|(s, _)| *s == r.sequence_number.shard)
                .map_or("", |(_, text)| text.as_str());
            input_record(r, seq, shard_id)
        })
        .collect();
    let mut outcomes = transform_all(setup, &inputs);
    let retries = outcomes.1;
    let outcomes = &mut outcomes.0;
    let mut plan = Plan {
        retries,
        ..Plan::default()
    };

    // Partition the delivered records by their keys (one group without dynamic partitioning).
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<usize>> = BTreeMap::new();
    for (i, outcome) in outcomes.iter_mut().enumerate() {
        if let Outcome::Delivered { keys, .. } = outcome {
            let partition = if let Some(query) = &setup.query_keys {
                match query(&records[i].data) {
                    Ok(query_keys) => {
                        let mut all = std::mem::take(keys);
                        all.extend(query_keys.into_iter().map(|(k, v)| (format!("q:{k}"), v)));
                        all
                    }
                    Err(error) => {
                        *outcome = partitioning_failed(error);
                        continue;
                    }
                }
            } else {
                std::mem::take(keys)
            };
            groups.entry(partition).or_default().push(i);
        }
    }
    let max_partitions = setup
        .config
        .dynamic_partitioning
        .as_ref()
        .map_or(usize::MAX, |d| d.max_active_partitions);
    if groups.len() > max_partitions {
        // Firehose sends the records of partitions over the quota to the error output.
        let excess: Vec<_> = groups.keys().skip(max_partitions).cloned().collect();
        for partition in excess {
            for i in groups.remove(&partition).unwrap_or_default() {
                outcomes[i] = partitioning_failed(ProcessingError::new(
                    "DynamicPartitioning.ActivePartitionsLimitExceeded",
                    format!("the batch has more than {max_partitions} active partitions"),
                ));
            }
        }
    }

    for (partition, members) in &groups {
        let (query, lambda) = split_keys(partition);
        let oldest = members
            .iter()
            .map(|&i| records[i].approximate_arrival_timestamp_ms)
            .min();
        let oldest = oldest.unwrap_or(now_ms);
        let id = if partition.is_empty() {
            batch_id
        } else {
            Uuid::new_v5(&batch_id, partition_name(partition).as_bytes())
        };
        let mut ctx = PrefixContext::new(oldest, id)
            .with_query_keys(&query)
            .with_lambda_keys(&lambda);
        let prefix = match setup.prefixes.output.evaluate(&mut ctx) {
            Ok(prefix) => prefix,
            Err(e) => {
                let kind = e.error_output_type().unwrap_or(ErrorOutputType::PartitioningFailed);
                let error = ProcessingError::new("DynamicPartitioning.PrefixEvaluationFailed", e.to_string());
                for &i in members {
                    outcomes[i] = Outcome::Failed {
                        kind,
                        error: error.clone(),
                        attempts: 1,
                    };
                }
                continue;
            }
        };
        let data: Vec<&[u8]> = members
            .iter()
            .map(|&i| match &outcomes[i] {
                Outcome::Delivered { data, .. } => &data[..],
                _ => unreachable!("a group holds delivered records only"),
            })
            .collect();
        let encoded = encode_object(&setup.format, setup.compression, &data);
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                let error = ProcessingError::new("Format.EncodingFailed", e.to_string());
                for &i in members {
                    outcomes[i] = Outcome::Failed {
                        kind: ErrorOutputType::FormatConversionFailed,
                        error: error.clone(),
                        attempts: 1,
                    };
                }
                continue;
            }
        };
        let mut converted = members.len() as u64;
        let mut in_object = vec![true; members.len()];
        for (k, error) in encoded.failed {
            outcomes[members[k]] = Outcome::Failed {
                kind: ErrorOutputType::FormatConversionFailed,
                error,
                attempts: 1,
            };
            in_object[k] = false;
            converted -= 1;
        }
        if converted == 0 {
            continue;
        }
        let name = firehose::object_name(&setup.config.name, setup.config.version, oldest, id, encoded.extension);
        plan.delivered += converted;
        plan.objects.push(PlannedObject {
            key: format!("{prefix}{name}"),
            body: encoded.body,
            records: converted,
            error: None,
            members: members
                .iter()
                .zip(&in_object)
                .filter(|(_, kept)| **kept)
                .map(|(&i, _)| (i, None))
                .collect(),
        });
    }

    error_objects(setup, records, &inputs, outcomes, batch_id, now_ms, &mut plan);
    plan.dropped = outcomes.iter().filter(|o| matches!(o, Outcome::Dropped)).count() as u64;
    plan
}

/// The sequence number's 32-digit form, without `format!`'s padding machinery (once per record).
fn ascii(seq: weir_stream::SequenceNumber) -> String {
    let mut digits = Vec::with_capacity(weir_stream::SequenceNumber::STRING_LEN);
    seq.write_ascii(&mut digits);
    String::from_utf8(digits).expect("a sequence number is ASCII digits")
}

fn input_record<'a>(record: &'a Record, seq: &'a str, shard_id: &'a str) -> InputRecord<'a> {
    InputRecord {
        // The sequence number is also the record id: unique in the batch and meaningful to a transform.
        record_id: Cow::Borrowed(seq),
        approximate_arrival_ms: record.approximate_arrival_timestamp_ms,
        data: Cow::Borrowed(&record.data),
        shard_id: Cow::Borrowed(shard_id),
        partition_key: Cow::Borrowed(&record.partition_key),
        sequence_number: Cow::Borrowed(seq),
    }
}

fn partitioning_failed(error: ProcessingError) -> Outcome {
    Outcome::Failed {
        kind: ErrorOutputType::PartitioningFailed,
        error,
        attempts: 1,
    }
}

/// The keys of one partition, back into query and Lambda keys (the group key prefixes query keys
/// with `q:` so that a key of either source cannot shadow the other).
fn split_keys(partition: &BTreeMap<String, String>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut query = BTreeMap::new();
    let mut lambda = BTreeMap::new();
    for (k, v) in partition {
        match k.strip_prefix("q:") {
            Some(name) => query.insert(name.to_owned(), v.clone()),
            None => lambda.insert(k.clone(), v.clone()),
        };
    }
    (query, lambda)
}

/// A stable text for a partition: its keys and values, length-prefixed so no two differ only in
/// where one value ends.
fn partition_name(partition: &BTreeMap<String, String>) -> String {
    partition
        .iter()
        .map(|(k, v)| format!("{}:{k}{}:{v}", k.len(), v.len()))
        .collect::<Vec<_>>()
        .join(";")
}

/// Runs the transform over `inputs` in invocations of at most the processor's buffer size, each
/// retried up to the configured count when it fails as a whole; returns each record's outcome and the
/// number of retries.
fn transform_all(setup: &Setup, inputs: &[InputRecord<'_>]) -> (Vec<Outcome>, u64) {
    let mut outcomes = Vec::with_capacity(inputs.len());
    let mut retries = 0;
    let limit = setup.config.processor.buffer_bytes as usize;
    let mut start = 0;
    while start < inputs.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < inputs.len() && (end == start || bytes + inputs[end].data.len() <= limit) {
            bytes += inputs[end].data.len();
            end += 1;
        }
        let chunk = &inputs[start..end];
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = setup
                .transform
                .process(chunk)
                .and_then(|output| paired_outcomes(chunk, &output, attempts));
            match result {
                Ok(chunk_outcomes) => {
                    outcomes.extend(chunk_outcomes);
                    break;
                }
                Err(error) if attempts > setup.config.processor.retries => {
                    outcomes.extend(chunk.iter().map(|_| Outcome::Failed {
                        kind: ErrorOutputType::ProcessingFailed,
                        error: error.clone(),
                        attempts,
                    }));
                    break;
                }
                Err(_) => retries += 1,
            }
        }
        start = end;
    }
    (outcomes, retries)
}

/// The transform's results in input order, or the contract error that fails the invocation.
fn paired_outcomes(
    chunk: &[InputRecord<'_>],
    output: &[OutputRecord<'_>],
    attempts: u32,
) -> Result<Vec<Outcome>, ProcessingError> {
    let paired = pair_response(chunk, output).map_err(|e| e.to_processing_error())?;
    Ok(paired
        .into_iter()
        .map(|o| match o.result {
            TransformResult::Ok => Outcome::Delivered {
                data: o.data.to_vec(),
                keys: o.partition_keys.clone(),
            },
            TransformResult::Dropped => Outcome::Dropped,
            TransformResult::ProcessingFailed => Outcome::Failed {
                kind: ErrorOutputType::ProcessingFailed,
                error: o.failure(),
                attempts,
            },
        })
        .collect())
}

/// One error-output object per error type, holding Firehose's documents for the failed records.
fn error_objects(
    setup: &Setup,
    records: &[Record],
    inputs: &[InputRecord<'_>],
    outcomes: &[Outcome],
    batch_id: Uuid,
    now_ms: i64,
    plan: &mut Plan,
) {
    let mut by_type: BTreeMap<&'static str, (ErrorOutputType, Vec<usize>)> = BTreeMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Outcome::Failed { kind, .. } = outcome {
            by_type.entry(kind.as_str()).or_insert((*kind, Vec::new())).1.push(i);
        }
    }
    for (name, (kind, members)) in by_type {
        let oldest = members
            .iter()
            .map(|&i| records[i].approximate_arrival_timestamp_ms)
            .min()
            .unwrap_or(now_ms);
        let id = Uuid::new_v5(&batch_id, format!("error-output:{name}").as_bytes());
        let mut ctx = PrefixContext::new(oldest, id).with_error_output_type(kind);
        // The error prefix has no partition keys, and its rules are checked at start: it evaluates.
        let prefix = setup
            .prefixes
            .error_output
            .evaluate(&mut ctx)
            .unwrap_or_else(|_| format!("{name}/"));
        let mut body = Vec::new();
        let mut documented = Vec::with_capacity(members.len());
        for &i in &members {
            let Outcome::Failed { error, attempts, .. } = &outcomes[i] else {
                continue;
            };
            documented.push((i, Some(error.code.to_string())));
            let doc = ProcessingFailedDocument::new(&inputs[i], error, *attempts, now_ms, setup.transform.id());
            body.extend_from_slice(&doc.to_line());
            if plan.failures.len() < FAILURE_SAMPLE {
                plan.failures.push(FailedRecord {
                    arrival_ms: records[i].approximate_arrival_timestamp_ms,
                    error: error.clone(),
                    data_preview: preview(&records[i].data),
                });
            }
        }
        let name = firehose::object_name(&setup.config.name, setup.config.version, oldest, id, "");
        plan.failed += members.len() as u64;
        plan.objects.push(PlannedObject {
            key: format!("{prefix}{name}"),
            body,
            records: members.len() as u64,
            error: Some(kind),
            members: documented,
        });
    }
}

/// The first 200 characters of a record, lossily decoded.
fn preview(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(&data[..data.len().min(800)]);
    text.chars().take(200).collect()
}

//! Firehose's JSON envelope for a transformation Lambda: the event it sends, the response it expects,
//! and [`invoke`], one whole Lambda invocation over a [`Transform`].
//!
//! The serde types mirror the wire format field for field and borrow strings from the JSON they were
//! read from. [`invoke`] is the hot path of weir's transform Lambda: the event is parsed borrowing its
//! base64 text, each record decoded once, and the response written by hand into one buffer sized
//! exactly up front ([`response_size`]), with no intermediate strings.

use super::contract::{self, ContractError, InputRecord, OutputRecord, ProcessingError, Transform, TransformResult};
use super::doc::{json_str_len, write_json_str};
use super::event_scan::{self, ScannedEvent, ScannedRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use thiserror::Error;

/// The event Firehose sends a transformation Lambda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseEvent<'a> {
    /// New for every invocation, retries included.
    #[serde(borrow)]
    pub invocation_id: Cow<'a, str>,
    /// `arn:aws:firehose:<region>:<account>:deliverystream/<name>`.
    #[serde(borrow)]
    pub delivery_stream_arn: Cow<'a, str>,
    /// The source stream's ARN; absent for Direct PUT.
    #[serde(default, deserialize_with = "borrowed_opt", skip_serializing_if = "Option::is_none")]
    pub source_kinesis_stream_arn: Option<Cow<'a, str>>,
    /// The delivery stream's region, e.g. `us-east-1`.
    #[serde(borrow)]
    pub region: Cow<'a, str>,
    /// The batch.
    #[serde(borrow)]
    pub records: Vec<FirehoseEventRecord<'a>>,
}

/// One record of a [`FirehoseEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseEventRecord<'a> {
    /// Unique in the batch.
    #[serde(borrow)]
    pub record_id: Cow<'a, str>,
    /// Epoch milliseconds.
    pub approximate_arrival_timestamp: i64,
    /// The record's data in base64.
    #[serde(borrow)]
    pub data: Cow<'a, str>,
    /// Where the record came from, for a Kinesis stream source.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub kinesis_record_metadata: Option<KinesisRecordMetadata<'a>>,
}

/// A record's place in its Kinesis stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisRecordMetadata<'a> {
    /// `shardId-000000000000`.
    #[serde(borrow)]
    pub shard_id: Cow<'a, str>,
    /// The producer's partition key.
    #[serde(borrow)]
    pub partition_key: Cow<'a, str>,
    /// The record's sequence number, a decimal string.
    #[serde(borrow)]
    pub sequence_number: Cow<'a, str>,
    /// The position inside a KPL-aggregated record; 0 otherwise (weir never aggregates).
    #[serde(default)]
    pub subsequence_number: u64,
    /// Epoch milliseconds, the same as the record's.
    pub approximate_arrival_timestamp: i64,
}

/// What a transformation Lambda answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirehoseResponse<'a> {
    /// One result per record of the event.
    #[serde(borrow)]
    pub records: Vec<FirehoseResponseRecord<'a>>,
}

/// One record's result in a [`FirehoseResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseResponseRecord<'a> {
    /// The event record's id.
    #[serde(borrow)]
    pub record_id: Cow<'a, str>,
    /// `Ok`, `Dropped` or `ProcessingFailed`.
    pub result: TransformResult,
    /// The transformed data in base64. Required for `Ok`; AWS's own blueprints leave it out of
    /// `Dropped` records, so it is optional here.
    #[serde(default, deserialize_with = "borrowed_opt", skip_serializing_if = "Option::is_none")]
    pub data: Option<Cow<'a, str>>,
    /// Dynamic partitioning keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ResponseMetadata>,
}

/// `metadata` of a response record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseMetadata {
    /// Keys for `!{partitionKeyFromLambda:<key>}` in the prefix.
    #[serde(default)]
    pub partition_keys: BTreeMap<String, String>,
}

/// An `Option<Cow<str>>` that borrows: serde's `Option<Cow<str>>` always copies.
fn borrowed_opt<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'b>(#[serde(borrow)] Cow<'b, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|b| b.0))
}

/// A decoded event: the invocation's context and its records, data decoded from base64.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation<'a> {
    /// New for every invocation.
    pub invocation_id: Cow<'a, str>,
    /// The delivery stream's ARN.
    pub delivery_stream_arn: Cow<'a, str>,
    /// The source stream's ARN, for a Kinesis source.
    pub source_kinesis_stream_arn: Option<Cow<'a, str>>,
    /// The region.
    pub region: Cow<'a, str>,
    /// The batch.
    pub records: Vec<InputRecord<'a>>,
}

/// An event or response that is not what the contract says.
#[derive(Debug, Error)]
pub enum EnvelopeError {
    /// Not JSON, or not JSON in the envelope's shape.
    #[error("not a Firehose transformation {what}: {source}")]
    Json {
        /// `event` or `response`.
        what: &'static str,
        /// serde_json's description, with line and column.
        source: serde_json::Error,
    },
    /// A record's `data` is not standard base64 with padding.
    #[error("record {record_id:?}: data is not valid base64: {source}")]
    Base64 {
        /// The record's id.
        record_id: String,
        /// What is wrong with it.
        source: base64::DecodeError,
    },
    /// A response record with result `Ok` but no `data`.
    #[error("record {record_id:?}: result Ok without data")]
    MissingData {
        /// The record's id.
        record_id: String,
    },
}

impl EnvelopeError {
    /// The `errorCode` for every record of the batch when a Lambda's response is at fault.
    pub fn code(&self) -> &'static str {
        contract::code::LAMBDA_JSON_PROCESSING_EXCEPTION
    }
}

/// Why [`invoke`] failed: the Lambda handler returns this as its error, which Firehose sees as a
/// function error and retries.
#[derive(Debug, Error)]
pub enum InvokeError {
    /// The event could not be read.
    #[error(transparent)]
    Event(#[from] EnvelopeError),
    /// The transform failed the whole batch.
    #[error("the transform failed the batch: {0}")]
    Transform(ProcessingError),
    /// The transform broke the contract (a bug in the transform, or a response over 6 MiB).
    #[error(transparent)]
    Contract(#[from] ContractError),
}

/// Reads Firehose's event, decoding each record's base64 data. Strings borrow from `event`.
pub fn decode_event(event: &[u8]) -> Result<Invocation<'_>, EnvelopeError> {
    if let Some(scanned) = event_scan::scan(event)
        && let Some(records) = scanned
            .records
            .iter()
            .map(|record| Some(scanned_record(record, Cow::Owned(STANDARD.decode(record.data).ok()?))))
            .collect::<Option<Vec<_>>>()
    {
        return Ok(scanned_invocation(&scanned, records));
    }
    let wire = parse_event(event)?;
    let records = wire
        .records
        .into_iter()
        .map(|record| {
            let data = STANDARD
                .decode(record.data.as_bytes())
                .map_err(|source| EnvelopeError::Base64 {
                    record_id: record.record_id.to_string(),
                    source,
                })?;
            let (shard_id, partition_key, sequence_number) = match record.kinesis_record_metadata {
                Some(m) => (m.shard_id, m.partition_key, m.sequence_number),
                None => (Cow::Borrowed(""), Cow::Borrowed(""), Cow::Borrowed("")),
            };
            Ok(InputRecord {
                record_id: record.record_id,
                approximate_arrival_ms: record.approximate_arrival_timestamp,
                data: Cow::Owned(data),
                shard_id,
                partition_key,
                sequence_number,
            })
        })
        .collect::<Result<Vec<_>, EnvelopeError>>()?;
    Ok(Invocation {
        invocation_id: wire.invocation_id,
        delivery_stream_arn: wire.delivery_stream_arn,
        source_kinesis_stream_arn: wire.source_kinesis_stream_arn,
        region: wire.region,
        records,
    })
}

fn scanned_record<'a>(record: &ScannedRecord<'a>, data: Cow<'a, [u8]>) -> InputRecord<'a> {
    InputRecord {
        record_id: Cow::Borrowed(record.record_id),
        approximate_arrival_ms: record.arrival_ms,
        data,
        shard_id: Cow::Borrowed(record.shard_id),
        partition_key: Cow::Borrowed(record.partition_key),
        sequence_number: Cow::Borrowed(record.sequence_number),
    }
}

fn scanned_invocation<'a>(scanned: &ScannedEvent<'a>, records: Vec<InputRecord<'a>>) -> Invocation<'a> {
    Invocation {
        invocation_id: Cow::Borrowed(scanned.invocation_id),
        delivery_stream_arn: Cow::Borrowed(scanned.delivery_stream_arn),
        source_kinesis_stream_arn: scanned.source_kinesis_stream_arn.map(Cow::Borrowed),
        region: Cow::Borrowed(scanned.region),
        records,
    }
}

/// Parses the event's JSON. One UTF-8 check of the whole event lets serde_json borrow every string
/// without checking each one again, which was ~6% of a whole invocation on a 3 MB event.
fn parse_event(event: &[u8]) -> Result<FirehoseEvent<'_>, EnvelopeError> {
    match std::str::from_utf8(event) {
        Ok(text) => serde_json::from_str(text),
        // serde_json's own reading says where the invalid byte is.
        Err(_) => serde_json::from_slice(event),
    }
    .map_err(|source| EnvelopeError::Json { what: "event", source })
}

/// Writes the event Firehose would send for `invocation`. Records with a shard id get
/// `kinesisRecordMetadata` (subsequence number 0); records without one are Direct PUT records.
pub fn encode_event(invocation: &Invocation<'_>) -> Vec<u8> {
    let wire = FirehoseEvent {
        invocation_id: Cow::Borrowed(&invocation.invocation_id),
        delivery_stream_arn: Cow::Borrowed(&invocation.delivery_stream_arn),
        source_kinesis_stream_arn: invocation.source_kinesis_stream_arn.as_deref().map(Cow::Borrowed),
        region: Cow::Borrowed(&invocation.region),
        records: invocation
            .records
            .iter()
            .map(|record| FirehoseEventRecord {
                record_id: Cow::Borrowed(&record.record_id),
                approximate_arrival_timestamp: record.approximate_arrival_ms,
                data: Cow::Owned(STANDARD.encode(&record.data)),
                kinesis_record_metadata: (!record.shard_id.is_empty()).then(|| KinesisRecordMetadata {
                    shard_id: Cow::Borrowed(&record.shard_id),
                    partition_key: Cow::Borrowed(&record.partition_key),
                    sequence_number: Cow::Borrowed(&record.sequence_number),
                    subsequence_number: 0,
                    approximate_arrival_timestamp: record.approximate_arrival_ms,
                }),
            })
            .collect(),
    };
    serde_json::to_vec(&wire).expect("serializing strings and integers to a Vec cannot fail")
}

/// Reads a Lambda's response. `data` is decoded from base64 (empty when a `Dropped` or
/// `ProcessingFailed` record leaves it out); `error` is `None`, as the contract has no such field.
/// The pairing with the event's records is [`pair_response`](super::pair_response)'s job.
pub fn decode_response(response: &[u8]) -> Result<Vec<OutputRecord<'_>>, EnvelopeError> {
    let wire: FirehoseResponse<'_> = serde_json::from_slice(response).map_err(|source| EnvelopeError::Json {
        what: "response",
        source,
    })?;
    wire.records
        .into_iter()
        .map(|record| {
            let data = match (&record.data, record.result) {
                (Some(text), _) => STANDARD
                    .decode(text.as_bytes())
                    .map_err(|source| EnvelopeError::Base64 {
                        record_id: record.record_id.to_string(),
                        source,
                    })?,
                (None, TransformResult::Ok) => {
                    return Err(EnvelopeError::MissingData {
                        record_id: record.record_id.to_string(),
                    });
                }
                (None, _) => Vec::new(),
            };
            Ok(OutputRecord {
                record_id: record.record_id,
                result: record.result,
                data: Cow::Owned(data),
                partition_keys: record.metadata.map(|m| m.partition_keys).unwrap_or_default(),
                error: None,
            })
        })
        .collect()
}

/// Writes the response a Lambda returns for `records`: compact JSON, every record with `data` (empty
/// for `Dropped`), `metadata` only when there are partition keys. Exactly [`response_size`] bytes.
pub fn encode_response(records: &[OutputRecord<'_>]) -> Vec<u8> {
    write_response(records, response_size(records))
}

const RESPONSE_OPEN: &[u8] = b"{\"records\":[";
const RESPONSE_CLOSE: &[u8] = b"]}";
const RECORD_ID: &[u8] = b"{\"recordId\":";
const RESULT: &[u8] = b",\"result\":\"";
const DATA: &[u8] = b"\",\"data\":\"";
const METADATA: &[u8] = b",\"metadata\":{\"partitionKeys\":";

fn write_response(records: &[OutputRecord<'_>], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(RESPONSE_OPEN);
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(RECORD_ID);
        write_json_str(&mut out, &record.record_id);
        out.extend_from_slice(RESULT);
        out.extend_from_slice(record.result.as_str().as_bytes());
        out.extend_from_slice(DATA);
        let start = out.len();
        out.resize(start + base64_len(record.data.len()), 0);
        STANDARD
            .encode_slice(&record.data, &mut out[start..])
            .expect("the buffer was sized for the base64 text");
        out.push(b'"');
        if !record.partition_keys.is_empty() {
            out.extend_from_slice(METADATA);
            out.push(b'{');
            for (j, (key, value)) in record.partition_keys.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_json_str(&mut out, key);
                out.push(b':');
                write_json_str(&mut out, value);
            }
            out.extend_from_slice(b"}}");
        }
        out.push(b'}');
    }
    out.extend_from_slice(RESPONSE_CLOSE);
    debug_assert_eq!(out.len(), size, "response_size must match write_response");
    out
}

/// The length of [`encode_response`]'s output, computed without writing it: what the response weighs
/// against Lambda's 6 MiB limit.
pub fn response_size(records: &[OutputRecord<'_>]) -> usize {
    let records_size: usize = records
        .iter()
        .map(|record| {
            let mut size = RECORD_ID.len()
                + json_str_len(&record.record_id)
                + RESULT.len()
                + record.result.as_str().len()
                + DATA.len()
                + base64_len(record.data.len())
                + 2; // the data's closing quote and the record's closing brace
            if !record.partition_keys.is_empty() {
                size += METADATA.len() + 3; // `{` … `}}`
                size += record.partition_keys.len() - 1; // commas
                size += record
                    .partition_keys
                    .iter()
                    .map(|(key, value)| json_str_len(key) + 1 + json_str_len(value))
                    .sum::<usize>();
            }
            size
        })
        .sum();
    RESPONSE_OPEN.len() + records_size + records.len().saturating_sub(1) + RESPONSE_CLOSE.len()
}

/// Padded base64's length for `n` bytes.
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// One whole Lambda invocation: reads the event, runs `transform` over its records, checks the contract
/// and writes the response. The transform Lambda's handler is this function.
///
/// An event of the usual shape is read by the scanner in `event_scan.rs`, its records' data decoded
/// into one buffer that they borrow; any other goes through [`decode_event`].
pub fn invoke(transform: &dyn Transform, event: &[u8]) -> Result<Vec<u8>, InvokeError> {
    let mut data = Vec::new();
    if let Some(scanned) = event_scan::scan(event)
        && let Some(spans) = scanned.decode_data(&mut data)
    {
        let records: Vec<InputRecord<'_>> = scanned
            .records
            .iter()
            .zip(spans)
            .map(|(record, (start, end))| scanned_record(record, Cow::Borrowed(&data[start..end])))
            .collect();
        return respond(transform, &records);
    }
    respond(transform, &decode_event(event)?.records)
}

/// Runs `transform` over `records`, checks the contract and writes the response.
fn respond(transform: &dyn Transform, records: &[InputRecord<'_>]) -> Result<Vec<u8>, InvokeError> {
    let output = transform.process(records).map_err(InvokeError::Transform)?;
    contract::pair_ids(records, &output)?;
    let size = response_size(&output);
    if size > contract::MAX_RESPONSE_BYTES {
        return Err(ContractError::ResponseTooLarge {
            bytes: size,
            max: contract::MAX_RESPONSE_BYTES,
        }
        .into());
    }
    Ok(write_response(&output, size))
}

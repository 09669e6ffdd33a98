//! Records into Kinesis with `PutRecords`: chunks within the call's limits, failed entries retried with
//! jittered exponential backoff until a deadline, and an outcome for every record.
//!
//! Invariants:
//! - A record is [`RecordOutcome::Stored`] only with the shard id and sequence number Kinesis returned
//!   for it; nothing else is ever reported as stored.
//! - Chunks hold at most 500 records and 5 MiB counted as Kinesis counts them (data plus partition
//!   key bytes), and go out one after another in request order. Only the entries a reply failed
//!   (`ProvisionedThroughputExceededException`, `InternalFailure`, `KMSThrottlingException`), or a
//!   whole call that was throttled, failed with a 5xx or did not complete, are sent again.
//! - When a chunk cannot be stored completely (the deadline passed, or Kinesis refused it for good),
//!   later chunks are not sent ([`RecordOutcome::NotSent`]): what is left for the producer to resend
//!   is then everything that is not stored, and nothing was sent needlessly into a throttled stream.
//! - A call that timed out or lost its connection may have stored its records; sending them again can
//!   store them twice. That is Kinesis's at-least-once contract (AWS SDKs retry the same way).
//!
//! The SDK's own retries are switched off ([`kinesis_client`]) so that this module alone decides what
//! is retried and for how long.

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use rand::Rng;
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, warn};
use weir_core::ingest::IngestRecord;
use weir_core::kinesis::{PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS};

/// How long one `PutRecords` attempt may take before it counts as failed (and is retried).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A Kinesis client for [`put_records`]: the SDK's retries off (this module retries, within its
/// deadline) and bounded connect and attempt times.
pub fn kinesis_client(sdk: &SdkConfig) -> Client {
    let config = aws_sdk_kinesis::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Backoff between attempts: before retry `n` (1-based), a random wait in `0..=min(max, base × 2^(n-1))`
/// ("full jitter"), so producers throttled together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 50 ms doubling to at most 1 s: Kinesis's shard limits are per second.
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    fn delay(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX))
            .min(self.max);
        let millis = rand::rng().random_range(0..=ceiling.as_millis() as u64);
        Duration::from_millis(millis)
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Kinesis accepted it: its shard and sequence number.
    Stored { shard_id: String, sequence_number: String },
    /// Not stored: the last error Kinesis gave for it.
    Failed { error_code: String, error_message: String },
    /// Not sent: an earlier chunk of the request could not be stored.
    NotSent,
}

/// Why records were left unstored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Kinesis kept failing records with retryable errors until the deadline passed.
    Deadline { error_code: String },
    /// Kinesis refused with an error that retrying does not fix (access, missing stream, KMS, invalid
    /// request), or answered something that is not a valid reply.
    Refused { error_code: String, error_message: String },
}

/// Every record's outcome, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReport {
    pub outcomes: Vec<RecordOutcome>,
    /// Record sends beyond each record's first (one per record per retry).
    pub retried_records: u64,
    /// `PutRecords` calls made.
    pub calls: u64,
    /// Set when some record is not stored.
    pub stop: Option<Stop>,
}

impl PutReport {
    pub fn stored(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, RecordOutcome::Stored { .. }))
            .count()
    }
}

/// Splits `records` into `PutRecords` calls of at most 500 records and 5 MiB (data plus partition key
/// bytes, as Kinesis counts them), in order.
pub fn chunks(records: &[IngestRecord]) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = record.data.len() + record.partition_key.len();
        if i > start && (i - start == PUT_RECORDS_MAX_RECORDS || bytes + size > PUT_RECORDS_MAX_BYTES) {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        chunks.push(start..records.len());
    }
    chunks
}

/// Entry errors Kinesis documents as transient (`PutRecords` reply) or that clear with time.
fn retryable_entry(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException" | "InternalFailure" | "KMSThrottlingException"
    )
}

/// How a failed call is handled.
enum CallFailure {
    Retryable { code: String, message: String },
    Permanent { code: String, message: String },
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
    status: Option<u16>,
) -> CallFailure {
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_owned();
            let message = service.err().message().unwrap_or_default().to_owned();
            let throttled = matches!(
                code.as_str(),
                "ProvisionedThroughputExceededException"
                    | "LimitExceededException"
                    | "KMSThrottlingException"
                    | "ThrottlingException"
                    | "InternalFailure"
                    | "InternalFailureException"
                    | "ServiceUnavailable"
            );
            if throttled || status.is_some_and(|s| s == 429 || s >= 500) {
                CallFailure::Retryable { code, message }
            } else {
                CallFailure::Permanent { code, message }
            }
        }
        SdkError::TimeoutError(_) => CallFailure::Retryable {
            code: "Timeout".into(),
            message: format!("the PutRecords call did not complete within {ATTEMPT_TIMEOUT:?}"),
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => CallFailure::Retryable {
            code: "ConnectionError".into(),
            message: error_chain(&error),
        },
        _ => CallFailure::Permanent {
            code: "RequestError".into(),
            message: error_chain(&error),
        },
    }
}

/// An error and its sources, joined: the SDK's top-level messages alone ("dispatch failure") say little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Stores `records` in `stream`, retrying failed entries with `backoff` until `deadline`.
pub async fn put_records(
    client: &Client,
    stream: &str,
    records: &[IngestRecord],
    deadline: Instant,
    backoff: Backoff,
) -> PutReport {
    let mut report = PutReport {
        outcomes: vec![RecordOutcome::NotSent; records.len()],
        retried_records: 0,
        calls: 0,
        stop: None,
    };
    for chunk in chunks(records) {
        put_chunk(client, stream, records, chunk, deadline, backoff, &mut report).await;
        if report.stop.is_some() {
            break;
        }
    }
    report
}

async fn put_chunk(
    client: &Client,
    stream: &str,
    records: &[IngestRecord],
    chunk: Range<usize>,
    deadline: Instant,
    backoff: Backoff,
    report: &mut PutReport,
) {
    let mut pending: Vec<usize> = chunk.collect();
    let mut retry = 0u32;
    loop {
        let entries = pending
            .iter()
            .map(|&i| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(records[i].data.clone()))
                    .partition_key(records[i].partition_key.clone())
                    .build()
                    .expect("data and partition key, the required fields, are set")
            })
            .collect();
        report.calls += 1;
        let result = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await;
        let mut failed = Vec::new();
        let mut last_code = String::new();
        match result {
            Ok(output) if output.records().len() == pending.len() => {
                for (&i, entry) in pending.iter().zip(output.records()) {
                    match (entry.error_code(), entry.shard_id(), entry.sequence_number()) {
                        (None, Some(shard_id), Some(sequence_number)) => {
                            report.outcomes[i] = RecordOutcome::Stored {
                                shard_id: shard_id.to_owned(),
                                sequence_number: sequence_number.to_owned(),
                            };
                        }
                        (code, _, _) => {
                            let error_code = code.unwrap_or("InvalidResponse").to_owned();
                            let error_message = entry
                                .error_message()
                                .unwrap_or("the reply names no sequence number for this record")
                                .to_owned();
                            if retryable_entry(&error_code) {
                                failed.push(i);
                                last_code.clone_from(&error_code);
                            } else if report.stop.is_none() {
                                report.stop = Some(Stop::Refused {
                                    error_code: error_code.clone(),
                                    error_message: error_message.clone(),
                                });
                            }
                            report.outcomes[i] = RecordOutcome::Failed {
                                error_code,
                                error_message,
                            };
                        }
                    }
                }
            }
            Ok(output) => {
                let error_message = format!(
                    "Kinesis answered {} entries for {} records; none of them can be trusted as stored",
                    output.records().len(),
                    pending.len()
                );
                fail_all(report, &pending, "InvalidResponse", &error_message);
                report.stop = Some(Stop::Refused {
                    error_code: "InvalidResponse".into(),
                    error_message,
                });
                return;
            }
            Err(error) => {
                let status = match &error {
                    SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
                    _ => None,
                };
                match classify(error, status) {
                    CallFailure::Retryable { code, message } => {
                        debug!(
                            stream,
                            code,
                            message,
                            records = pending.len(),
                            "PutRecords call failed; retrying."
                        );
                        fail_all(report, &pending, &code, &message);
                        last_code = code;
                        failed.clone_from(&pending);
                    }
                    CallFailure::Permanent { code, message } => {
                        fail_all(report, &pending, &code, &message);
                        report.stop = Some(Stop::Refused {
                            error_code: code,
                            error_message: message,
                        });
                        return;
                    }
                }
            }
        }
        if failed.is_empty() {
            return;
        }
        retry += 1;
        let delay = backoff.delay(retry);
        if Instant::now() + delay >= deadline {
            warn!(
                stream,
                records = failed.len(),
                retries = retry - 1,
                code = last_code,
                "Records still failing when the PutRecords retry deadline passed."
            );
            report.stop.get_or_insert(Stop::Deadline { error_code: last_code });
            return;
        }
        report.retried_records += failed.len() as u64;
        tokio::time::sleep(delay).await;
        pending = failed;
    }
}

fn fail_all(report: &mut PutReport, indexes: &[usize], code: &str, message: &str) {
    for &i in indexes {
        report.outcomes[i] = RecordOutcome::Failed {
            error_code: code.to_owned(),
            error_message: message.to_owned(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data_len: usize, key: &str) -> IngestRecord {
        IngestRecord {
            data: vec![b'x'; data_len],
            partition_key: key.to_owned(),
        }
    }

    #[test]
    fn chunks_hold_at_most_500_records() {
        let records: Vec<_> = (0..1201).map(|_| record(10, "k")).collect();
        assert_eq!(chunks(&records), vec![0..500, 500..1000, 1000..1201]);
        assert_eq!(chunks(&[]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn chunks_count_partition_keys_toward_5_mib() {
        // Five records of exactly 1 MiB including their 16-byte keys fill one call; the sixth starts a new one.
        let key = "0123456789abcdef";
        let records: Vec<_> = (0..6).map(|_| record(1024 * 1024 - key.len(), key)).collect();
        assert_eq!(chunks(&records), vec![0..5, 5..6]);
        // One byte more per record and only four fit.
        let records: Vec<_> = (0..6).map(|_| record(1024 * 1024 - key.len() + 1, key)).collect();
        assert_eq!(chunks(&records), vec![0..4, 4..6]);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_below_it() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        };
        for retry in 1..40 {
            let ceiling = Duration::from_millis((10u64 << (retry - 1).min(20)).min(100));
            for _ in 0..20 {
                assert!(backoff.delay(retry) <= ceiling, "retry {retry}");
            }
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff.delay(10)).collect();
        assert!(spread.len() > 5, "jitter: {spread:?}");
    }
}

//! The ingest function: `POST /v1/streams/{stream}/records` from API Gateway → Kinesis `PutRecords`.
//!
//! The request is checked and parsed exactly as `weir up` does it (the same `weir_core::ingest` steps
//! in the same order, the same `weir_core::api` errors): route and method, stream, `Content-Type`,
//! `Content-Encoding`, body size as sent, decompression, records. Then the records go to Kinesis
//! ([`crate::put`]) and the answer is one of:
//!
//! - 200, `weir up`'s reply: `{"failed_record_count":0,"records":[{"shard_id","sequence_number"}…]}`;
//! - 503 with `Retry-After` when Kinesis still throttled (or failed) some records at the retry
//!   deadline, or 500 when it refused them for good; both with the body of [`not_stored_body`], which
//!   says per record which were stored (with shard and sequence number) and which were not.
//!
//! No success is ever claimed for a record Kinesis did not accept.

use crate::config::IngestConfig;
use crate::gateway::{GatewayEvent, GatewayResponse, HttpReply};
use crate::metrics::Counters;
use crate::put::{self, Backoff, PutReport, RecordOutcome, Stop};
use aws_lambda_events::http::Method;
use aws_sdk_kinesis::Client;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{error, warn};
use weir_core::api::{ApiError, StoredReply};
use weir_core::ingest::{self, IngestRecord};

/// The code of the partial-failure answer (503 or 500).
pub const NOT_STORED: &str = "records_not_stored";
/// The code of a refusal by Kinesis that retrying does not fix (500).
pub const STREAM_ERROR: &str = "stream_error";
/// `Retry-After` of a 503 for throttled records.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Time kept back from the function's own deadline, to answer before Lambda stops the invocation.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The ingest function: its configuration and the Kinesis client, built once per execution environment.
#[derive(Debug, Clone)]
pub struct Ingest {
    config: IngestConfig,
    kinesis: Client,
    backoff: Backoff,
}

/// What one invocation did, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Records parsed from an accepted request.
    pub received: u64,
    /// Records Kinesis stored.
    pub put: u64,
    /// Record sends beyond each record's first.
    pub retried: u64,
    /// Records not stored (failed or not sent).
    pub failed: u64,
    /// The response status.
    pub status: u16,
}

impl IngestCounts {
    /// `RecordsReceived`, `RecordsPut`, `PutRetries`, `RecordsFailed`; `RequestsRejected` by `Status`
    /// for any status but 200.
    pub fn counters(&self) -> Counters {
        Counters {
            counts: vec![
                ("RecordsReceived", self.received),
                ("RecordsPut", self.put),
                ("PutRetries", self.retried),
                ("RecordsFailed", self.failed),
            ],
            by_status: (self.status != 200).then_some((self.status, "RequestsRejected", 1)),
        }
    }
}

impl Ingest {
    pub fn new(config: IngestConfig, kinesis: Client) -> Ingest {
        Ingest {
            config,
            kinesis,
            backoff: Backoff::default(),
        }
    }

    /// The same, with another backoff (tests shorten it).
    pub fn with_backoff(mut self, backoff: Backoff) -> Ingest {
        self.backoff = backoff;
        self
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Handles one event. `function_deadline` is Lambda's deadline for the invocation, if known: PutRecords
    /// retries stop [`DEADLINE_MARGIN`] before it even when `WEIR_PUT_RETRY_DEADLINE_MS` is later.
    pub async fn handle(
        &self,
        event: &GatewayEvent,
        function_deadline: Option<Instant>,
    ) -> (GatewayResponse, IngestCounts) {
        let started = Instant::now();
        let mut counts = IngestCounts::default();
        let reply = match self.parse(event) {
            Err(e) => HttpReply::from(e),
            Ok((stream, records)) => {
                counts.received = records.len() as u64;
                let mut deadline = started + self.config.put_retry_deadline;
                if let Some(function_deadline) = function_deadline {
                    deadline = deadline.min(function_deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(started));
                }
                let report = put::put_records(&self.kinesis, stream, &records, deadline, self.backoff).await;
                counts.put = report.stored() as u64;
                counts.failed = counts.received - counts.put;
                counts.retried = report.retried_records;
                self.reply(&report)
            }
        };
        counts.status = reply.status;
        (event.respond(reply), counts)
    }

    /// Route, method, stream, headers and body, in `weir up`'s order; the records, or the error.
    fn parse<'e>(&'e self, event: &GatewayEvent) -> Result<(&'e str, Vec<IngestRecord>), ApiError> {
        let stream = event.records_stream().ok_or_else(ApiError::no_such_resource)?;
        if event.method() != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        if *stream != self.config.stream_name {
            return Err(ApiError::unknown_stream(&stream));
        }
        let limits = &self.config.limits;
        let format = ingest::body_format(event.header("content-type")?)?;
        let encoding = ingest::content_encoding(event.header("content-encoding")?)?;
        let raw = event.body()?;
        if raw.len() > limits.max_body_bytes {
            return Err(ApiError::body_too_large(limits.max_body_bytes));
        }
        let decoded = ingest::decode_body(encoding, &raw, limits)?;
        let records = ingest::parse_records(format, &decoded, limits, &self.config.partition_key)?;
        Ok((&self.config.stream_name, records))
    }

    fn reply(&self, report: &PutReport) -> HttpReply {
        let Some(stop) = &report.stop else {
            let mut reply = StoredReply::with_capacity(report.outcomes.len());
            for outcome in &report.outcomes {
                if let RecordOutcome::Stored {
                    shard_id,
                    sequence_number,
                } = outcome
                {
                    reply.push(shard_id, sequence_number);
                }
            }
            return HttpReply::ok(reply.finish());
        };
        let total = report.outcomes.len();
        let unstored = total - report.stored();
        let stream = &self.config.stream_name;
        let resend = "records with a sequence_number are stored; send only the others again";
        let (status, code, message, retry_after) = match stop {
            Stop::Deadline { error_code } => {
                warn!(
                    stream,
                    unstored, total, error_code, "Answering 503: records not stored by the retry deadline."
                );
                (
                    503,
                    NOT_STORED,
                    format!(
                        "{unstored} of {total} records were not stored: Kinesis still refused them ({error_code}) when \
                         retrying stopped after {} ms; {resend}",
                        self.config.put_retry_deadline.as_millis()
                    ),
                    Some(RETRY_AFTER_SECONDS),
                )
            }
            Stop::Refused {
                error_code,
                error_message,
            } => {
                error!(
                    stream,
                    unstored, total, error_code, error_message, "Kinesis refused records."
                );
                (
                    500,
                    STREAM_ERROR,
                    format!(
                        "{unstored} of {total} records were not stored: Kinesis refused them ({error_code}: \
                         {error_message}); {resend}"
                    ),
                    None,
                )
            }
        };
        let mut headers = Vec::new();
        if let Some(seconds) = retry_after {
            headers.push(("retry-after", seconds.to_string()));
        }
        HttpReply {
            status,
            headers,
            body: not_stored_body(code, &message, &report.outcomes),
        }
    }
}

#[derive(Serialize)]
struct NotStoredBody<'a> {
    error: ErrorField<'a>,
    failed_record_count: usize,
    records: Vec<RecordEntry<'a>>,
}

#[derive(Serialize)]
struct ErrorField<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RecordEntry<'a> {
    Stored {
        shard_id: &'a str,
        sequence_number: &'a str,
    },
    NotStored {
        error_code: &'a str,
        error_message: &'a str,
    },
}

/// The 503/500 body: `weir up`'s error object plus, in `PutRecords`'s shape, `failed_record_count` and
/// one entry per record in request order: `{"shard_id","sequence_number"}` for a stored record,
/// `{"error_code","error_message"}` for one that is not (`NotSent` for records never sent).
pub fn not_stored_body(code: &str, message: &str, outcomes: &[RecordOutcome]) -> Vec<u8> {
    let records: Vec<RecordEntry<'_>> = outcomes
        .iter()
        .map(|outcome| match outcome {
            RecordOutcome::Stored {
                shard_id,
                sequence_number,
            } => RecordEntry::Stored {
                shard_id,
                sequence_number,
            },
            RecordOutcome::Failed {
                error_code,
                error_message,
            } => RecordEntry::NotStored {
                error_code,
                error_message,
            },
            RecordOutcome::NotSent => RecordEntry::NotStored {
                error_code: "NotSent",
                error_message: "not sent: an earlier part of this request could not be stored",
            },
        })
        .collect();
    let body = NotStoredBody {
        error: ErrorField { code, message },
        failed_record_count: records
            .iter()
            .filter(|r| matches!(r, RecordEntry::NotStored { .. }))
            .count(),
        records,
    };
    serde_json::to_vec(&body).expect("serializing strings and integers to a Vec cannot fail")
}

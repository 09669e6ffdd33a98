//! Firehose's processing-failed document: one JSON line per record that failed transformation, written
//! under the error prefix (`processing-failed/` for `!{firehose:error-output-type}`).
//!
//! Field names and order are as in Firehose's files: `attemptsMade`, `arrivalTimestamp`, `errorCode`,
//! `errorMessage`, `attemptEndingTimestamp`, `rawData`, `lambdaArn`. AWS's documentation shows every
//! value quoted, but real files have numbers for the counts and timestamps, e.g.
//!
//! ```text
//! {"attemptsMade":1,"arrivalTimestamp":1575020067711,"errorCode":"Lambda.MissingRecordId","errorMessage":"…",
//!  "attemptEndingTimestamp":1575020129986,"rawData":"eyJ…","lambdaArn":"arn:aws:lambda:…"}
//! ```

use super::contract::{InputRecord, ProcessingError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One processing-failed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingFailedDocument<'a> {
    /// How many times the batch was sent to the transform (1 when the transform answered
    /// `ProcessingFailed`, more after invocation errors and retries).
    pub attempts_made: u32,
    /// The record's approximate arrival time, epoch milliseconds.
    pub arrival_timestamp: i64,
    /// One of [`code`](super::code), e.g. `Lambda.ProcessingFailedStatus`.
    #[serde(borrow)]
    pub error_code: Cow<'a, str>,
    /// What went wrong.
    #[serde(borrow)]
    pub error_message: Cow<'a, str>,
    /// When the last attempt ended, epoch milliseconds.
    pub attempt_ending_timestamp: i64,
    /// The original record's data in base64, never the transform's output.
    #[serde(borrow)]
    pub raw_data: Cow<'a, str>,
    /// The transform: a Lambda's ARN on AWS, a built-in's [`id`](super::Transform::id) in weir.
    #[serde(borrow)]
    pub lambda_arn: Cow<'a, str>,
}

impl<'a> ProcessingFailedDocument<'a> {
    /// The document for `input`, which failed with `error` after `attempts_made` attempts, the last
    /// ending at `attempt_ending_ms`, in the transform `lambda_arn`.
    pub fn new(
        input: &InputRecord<'_>,
        error: &'a ProcessingError,
        attempts_made: u32,
        attempt_ending_ms: i64,
        lambda_arn: &'a str,
    ) -> ProcessingFailedDocument<'a> {
        ProcessingFailedDocument {
            attempts_made,
            arrival_timestamp: input.approximate_arrival_ms,
            error_code: Cow::Borrowed(&error.code),
            error_message: Cow::Borrowed(&error.message),
            attempt_ending_timestamp: attempt_ending_ms,
            raw_data: Cow::Owned(STANDARD.encode(&input.data)),
            lambda_arn: Cow::Borrowed(lambda_arn),
        }
    }

    /// The document as one line of compact JSON ending in `\n`, as the error output object holds it.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("serializing strings and integers to a Vec cannot fail");
        line.push(b'\n');
        line
    }
}

//! The transformation contract: records in, one result per record out, every record id exactly once.

use super::envelope;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// Lambda's limit on a synchronous invocation's response (and request): 6 MiB, which Lambda calls
/// "6 MB" and enforces at 6,291,456 bytes.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Lambda's limit on a synchronous invocation's request, the same 6 MiB as the response.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// The `errorCode`s weir writes into processing-failed documents.
///
/// The `Lambda.*` codes are Firehose's, as they appear in its error output on AWS (Firehose does not
/// document a list; these are the ones observed in real processing-failed files). The `Transform.*`
/// codes are weir's, for records its built-in transforms fail in process. The same built-in running as
/// an AWS Lambda can only answer `ProcessingFailed`, so on AWS such a record reads
/// [`LAMBDA_PROCESSING_FAILED_STATUS`](code::LAMBDA_PROCESSING_FAILED_STATUS) with Firehose's fixed message instead.
pub mod code {
    /// The function answered `ProcessingFailed` for the record (Firehose's message:
    /// [`PROCESSING_FAILED_STATUS_MESSAGE`](super::PROCESSING_FAILED_STATUS_MESSAGE)).
    pub const LAMBDA_PROCESSING_FAILED_STATUS: &str = "Lambda.ProcessingFailedStatus";
    /// The response left out a record id (AWS also reports a replaced id this way).
    pub const LAMBDA_MISSING_RECORD_ID: &str = "Lambda.MissingRecordId";
    /// The response returned a record id more than once.
    pub const LAMBDA_DUPLICATED_RECORD_ID: &str = "Lambda.DuplicatedRecordId";
    /// The invocation failed: the function raised, timed out, or answered more than 6 MiB.
    pub const LAMBDA_FUNCTION_ERROR: &str = "Lambda.FunctionError";
    /// The response was not JSON in the contract's shape.
    pub const LAMBDA_JSON_PROCESSING_EXCEPTION: &str = "Lambda.JsonProcessingException";

    /// The record is not UTF-8 JSON.
    pub const INVALID_JSON: &str = "Transform.InvalidJson";
    /// The transform needs a JSON object and the record is another JSON value.
    pub const NOT_AN_OBJECT: &str = "Transform.NotAnObject";
    /// An object the transform reads has a key twice, so which value is meant is ambiguous.
    pub const DUPLICATE_KEY: &str = "Transform.DuplicateKey";
    /// A required CSV column has no value (missing or `null`).
    pub const MISSING_FIELD: &str = "Transform.MissingField";
    /// A CSV column's value is not of the column's type, or out of its range.
    pub const TYPE_MISMATCH: &str = "Transform.TypeMismatch";
    /// Two fields of the output would have the same key (`flatten`, `rename` or `add`).
    pub const KEY_COLLISION: &str = "Transform.KeyCollision";
}

/// The message Firehose writes with [`code::LAMBDA_PROCESSING_FAILED_STATUS`].
pub const PROCESSING_FAILED_STATUS_MESSAGE: &str = "ProcessingFailed status set for record";

/// One record handed to a transform, decoded (Firehose sends `data` in base64).
///
/// Borrowed where it can be: from the stream's buffers in process, from the event's JSON in a Lambda.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputRecord<'a> {
    /// Unique within the batch; the response must return each exactly once.
    pub record_id: Cow<'a, str>,
    /// When the stream accepted the record, epoch milliseconds (Kinesis's `ApproximateArrivalTimestamp`).
    pub approximate_arrival_ms: i64,
    /// The record's data as the producer sent it.
    pub data: Cow<'a, [u8]>,
    /// `shardId-000000000000`, or empty for a source other than a Kinesis stream.
    pub shard_id: Cow<'a, str>,
    /// The partition key the producer sent (empty without a Kinesis source).
    pub partition_key: Cow<'a, str>,
    /// The record's sequence number in its shard (empty without a Kinesis source).
    pub sequence_number: Cow<'a, str>,
}

/// A record's outcome, as Firehose names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TransformResult {
    /// Transformed; `data` is delivered.
    Ok,
    /// Removed on purpose; counts as processed, nothing is delivered.
    Dropped,
    /// Could not be transformed; the original record goes to the error output.
    ProcessingFailed,
}

impl TransformResult {
    /// `Ok`, `Dropped` or `ProcessingFailed`, as in the JSON envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            TransformResult::Ok => "Ok",
            TransformResult::Dropped => "Dropped",
            TransformResult::ProcessingFailed => "ProcessingFailed",
        }
    }
}

/// Why a record (or a whole batch) failed: the `errorCode` and `errorMessage` of its processing-failed
/// document.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct ProcessingError {
    /// A code in [`code`]'s `Namespace.Name` shape.
    pub code: Cow<'static, str>,
    /// What went wrong, naming the column, pointer or key involved.
    pub message: String,
}

impl ProcessingError {
    /// An error with one of [`code`]'s constants.
    pub fn new(code: &'static str, message: impl Into<String>) -> ProcessingError {
        ProcessingError {
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }
}

/// One record's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord<'a> {
    /// The input record's id.
    pub record_id: Cow<'a, str>,
    /// What happened to it.
    pub result: TransformResult,
    /// For `Ok`, the transformed data; for `ProcessingFailed`, the original data (as Firehose's own
    /// blueprints echo it); for `Dropped`, empty.
    pub data: Cow<'a, [u8]>,
    /// Keys for dynamic partitioning (`metadata.partitionKeys` in the envelope).
    pub partition_keys: BTreeMap<String, String>,
    /// Why a `ProcessingFailed` record failed. Firehose's contract has no such field, so a record decoded
    /// from a Lambda's JSON has `None`; see [`OutputRecord::failure`].
    pub error: Option<ProcessingError>,
}

impl<'a> OutputRecord<'a> {
    /// A transformed record.
    pub fn ok(record_id: impl Into<Cow<'a, str>>, data: impl Into<Cow<'a, [u8]>>) -> OutputRecord<'a> {
        OutputRecord {
            record_id: record_id.into(),
            result: TransformResult::Ok,
            data: data.into(),
            partition_keys: BTreeMap::new(),
            error: None,
        }
    }

    /// A record dropped on purpose.
    pub fn dropped(record_id: impl Into<Cow<'a, str>>) -> OutputRecord<'a> {
        OutputRecord {
            record_id: record_id.into(),
            result: TransformResult::Dropped,
            data: Cow::Borrowed(&[]),
            partition_keys: BTreeMap::new(),
            error: None,
        }
    }

    /// A failed record, keeping the input's original data.
    pub fn failed(input: &'a InputRecord<'_>, error: ProcessingError) -> OutputRecord<'a> {
        OutputRecord {
            record_id: Cow::Borrowed(&input.record_id),
            result: TransformResult::ProcessingFailed,
            data: Cow::Borrowed(&input.data),
            partition_keys: BTreeMap::new(),
            error: Some(error),
        }
    }

    /// `Ok` with the transformed data, or `ProcessingFailed` with the error.
    pub fn from_outcome(input: &'a InputRecord<'_>, outcome: Result<Vec<u8>, ProcessingError>) -> OutputRecord<'a> {
        match outcome {
            Ok(data) => OutputRecord::ok(Cow::Borrowed(&*input.record_id), data),
            Err(error) => OutputRecord::failed(input, error),
        }
    }

    /// The code and message for the error output: the transform's own, or Firehose's for a record that
    /// only says `ProcessingFailed`.
    pub fn failure(&self) -> ProcessingError {
        self.error.clone().unwrap_or_else(|| {
            ProcessingError::new(code::LAMBDA_PROCESSING_FAILED_STATUS, PROCESSING_FAILED_STATUS_MESSAGE)
        })
    }
}

/// A batch transformation: the one interface every built-in implements, and what a Lambda does.
///
/// `process` returns one [`OutputRecord`] per input record, in any order (delivery pairs them by id
/// with [`pair_response`]). A record that cannot be transformed is `ProcessingFailed`, never an `Err`:
/// `Err` means the whole batch failed (an invocation error) and every record is retried or, in the
/// end, written to the error output with that error.
pub trait Transform: Send + Sync {
    /// Names the transform in logs and in the error output's `lambdaArn` (a Lambda's ARN on AWS).
    fn id(&self) -> &str;

    /// Transforms one batch.
    fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError>;
}

/// A response that breaks the contract. Firehose fails the whole invocation for any of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    /// An input record has no result.
    #[error("the transform did not return record {record_id:?}; every record must come back exactly once")]
    MissingRecordId {
        /// The input's id.
        record_id: String,
    },
    /// A record id came back twice.
    #[error("the transform returned record {record_id:?} more than once")]
    DuplicatedRecordId {
        /// The repeated id.
        record_id: String,
    },
    /// A record id that was not in the batch.
    #[error("the transform returned record {record_id:?}, which is not in the batch")]
    UnknownRecordId {
        /// The unknown id.
        record_id: String,
    },
    /// The response is over Lambda's limit.
    #[error("the response is {bytes} bytes as Lambda JSON; Lambda's limit is {max} bytes")]
    ResponseTooLarge {
        /// The response's size in the JSON envelope.
        bytes: usize,
        /// [`MAX_RESPONSE_BYTES`].
        max: usize,
    },
}

impl ContractError {
    /// The `errorCode` Firehose writes for every record of the batch.
    pub fn code(&self) -> &'static str {
        match self {
            ContractError::MissingRecordId { .. } | ContractError::UnknownRecordId { .. } => {
                code::LAMBDA_MISSING_RECORD_ID
            }
            ContractError::DuplicatedRecordId { .. } => code::LAMBDA_DUPLICATED_RECORD_ID,
            ContractError::ResponseTooLarge { .. } => code::LAMBDA_FUNCTION_ERROR,
        }
    }

    /// The error each record of the batch carries to the error output.
    pub fn to_processing_error(&self) -> ProcessingError {
        ProcessingError::new(self.code(), self.to_string())
    }
}

/// Checks a response against its batch: every input id exactly once, no other id, and at most
/// [`MAX_RESPONSE_BYTES`] as Firehose would receive it.
///
/// The size is what [`envelope::encode_response`] would write for `output` (compact JSON, data in
/// base64), computed without writing it. That is the size a weir transform would answer with as a
/// Lambda, so a transform that passes here in process also fits on AWS. A response that arrived as JSON
/// from a real function should also be checked by its actual length.
pub fn check_response(input: &[InputRecord<'_>], output: &[OutputRecord<'_>]) -> Result<(), ContractError> {
    pair_response(input, output).map(drop)
}

/// [`check_response`], returning each input's result in input order.
pub fn pair_response<'o, 'a>(
    input: &[InputRecord<'_>],
    output: &'o [OutputRecord<'a>],
) -> Result<Vec<&'o OutputRecord<'a>>, ContractError> {
    let bytes = envelope::response_size(output);
    if bytes > MAX_RESPONSE_BYTES {
        return Err(ContractError::ResponseTooLarge {
            bytes,
            max: MAX_RESPONSE_BYTES,
        });
    }
    pair_ids(input, output)
}

/// Pairs results to inputs by id. The common case, results in input order, needs no map.
pub(crate) fn pair_ids<'o, 'a>(
    input: &[InputRecord<'_>],
    output: &'o [OutputRecord<'a>],
) -> Result<Vec<&'o OutputRecord<'a>>, ContractError> {
    if input.len() == output.len() && input.iter().zip(output).all(|(i, o)| i.record_id == o.record_id) {
        return Ok(output.iter().collect());
    }
    let index: HashMap<&str, usize> = input.iter().enumerate().map(|(i, r)| (&*r.record_id, i)).collect();
    let mut paired: Vec<Option<&OutputRecord<'a>>> = vec![None; input.len()];
    for record in output {
        let Some(&i) = index.get(&*record.record_id) else {
            return Err(ContractError::UnknownRecordId {
                record_id: record.record_id.to_string(),
            });
        };
        if paired[i].replace(record).is_some() {
            return Err(ContractError::DuplicatedRecordId {
                record_id: record.record_id.to_string(),
            });
        }
    }
    paired
        .into_iter()
        .zip(input)
        .map(|(found, record)| {
            found.ok_or_else(|| ContractError::MissingRecordId {
                record_id: record.record_id.to_string(),
            })
        })
        .collect()
}

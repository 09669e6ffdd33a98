//! Firehose's data transformation contract and weir's built-in transforms. Pure: no I/O.
//!
//! Firehose hands a transformation Lambda a batch of records and expects one result per record:
//! `Ok` with new data, `Dropped`, or `ProcessingFailed`, every record id exactly once. weir keeps that
//! contract in two places: in process, where `weir up`'s delivery calls a [`Transform`] directly, and
//! on AWS, where the same transform runs as a Lambda behind [`envelope::invoke`]. Either way a record
//! ends in exactly one place: delivered (`Ok`), counted (`Dropped`), or written to the error output
//! with its original data (`ProcessingFailed`, see [`error_output`]).
//!
//! # Layout
//! - [`contract`]: the decoded record types, the [`Transform`] trait, the response checks
//!   ([`check_response`], [`pair_response`]) and the error codes ([`code`]).
//! - [`envelope`]: the JSON event and response a Lambda sees, and [`envelope::invoke`].
//! - [`error_output`]: the processing-failed document.
//! - [`spec`]: [`TransformSpec`], the configuration that builds a built-in.
//! - The built-ins, each encoding after optional field operations ([`fields`]: select, rename, add):
//!   [`newline`] (the seed's: JSON + `\n`), [`flatten`] (nested keys joined, JSON + `\n`) and [`csv`]
//!   (one typed RFC 4180 line per record, with the Snowflake file format that reads it back).
//!
//! # Errors, two kinds
//! A record that cannot be transformed is `ProcessingFailed` with a [`ProcessingError`] (a code and a
//! message naming the column, pointer or key), and the rest of the batch goes on. A batch-level failure
//! (a transform's `Err`, a broken contract, an unreadable envelope) fails every record of the batch.

pub mod contract;
pub mod csv;
mod doc;
pub mod envelope;
pub mod error_output;
mod event_scan;
pub mod fields;
pub mod flatten;
pub mod newline;
pub mod spec;

pub use contract::{
    ContractError, InputRecord, MAX_EVENT_BYTES, MAX_RESPONSE_BYTES, OutputRecord, PROCESSING_FAILED_STATUS_MESSAGE,
    ProcessingError, Transform, TransformResult, check_response, code, pair_response,
};
pub use error_output::ProcessingFailedDocument;
pub use spec::{SpecError, TransformSpec};

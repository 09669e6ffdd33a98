//! weir's shared logic: pure functions and types, no I/O.
//!
//! Everything here is used by more than one shape of weir: the single-machine pipeline (`weir up`)
//! and the AWS Lambda functions. Keeping it free of I/O keeps the Lambdas small and lets every rule be
//! tested without a runtime.
//!
//! # Layout
//! - [`kinesis`]: Kinesis Data Streams' record limits, partition-key and explicit-hash-key rules, and
//!   the routing of a record to a shard (MD5 → 128-bit hash key → evenly split hash key ranges).

pub mod kinesis;

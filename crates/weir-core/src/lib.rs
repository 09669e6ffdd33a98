//! weir's shared logic: pure functions and types, no I/O.
//!
//! Everything here is used by more than one shape of weir: the single-machine pipeline (`weir up`)
//! and the AWS Lambda functions. Keeping it free of I/O keeps the Lambdas small and lets every rule be
//! tested without a runtime.
//!
//! # Layout
//! - [`kinesis`]: Kinesis Data Streams' record limits, partition-key and explicit-hash-key rules, and
//!   the routing of a record to a shard (MD5 → 128-bit hash key → evenly split hash key ranges).
//! - [`firehose`]: Firehose's object keys and the seed's newline transform.
//! - [`prefix`]: Firehose's S3 prefix expressions (`!{timestamp:…}`, partition keys): rules and evaluation.
//! - [`ingest`]: the HTTP ingest contract's parsing half: content type and encoding, capped gzip
//!   decoding, and splitting a body into validated JSON records with partition keys.
//! - [`api`]: its answering half: error bodies and their statuses, the stored-records reply.
//! - [`transform`]: Firehose's transformation contract (records, results, the Lambda JSON envelope,
//!   the processing-failed document) and weir's built-in transforms (`newline`, `flatten`, `csv`).
//! - [`query`]: the shape of a warehouse query's result (`weir query`, `POST /api/query`).
//! - [`snowflake`]: the Snowflake SQL (integration, file format, stage, table, Snowpipe) that loads a
//!   delivery stream's objects.

pub mod api;
pub mod firehose;
pub mod ingest;
pub mod json;
pub mod kinesis;
pub mod prefix;
pub mod query;
pub mod snowflake;
pub mod transform;

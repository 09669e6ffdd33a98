//! weir-lambda: the two AWS Lambda functions of weir's AWS shape (deploy/aws/template.yaml), thin
//! handlers over `weir-core`, so they answer and transform exactly as `weir up` does.
//!
//! - `ingest` (src/bin/ingest.rs): API Gateway (HTTP API payload 2.0, or REST/1.0) →
//!   `POST /v1/streams/{stream}/records` with `weir up`'s contract → Kinesis `PutRecords`.
//! - `transform` (src/bin/transform.rs): Firehose's transformation event → the configured built-in
//!   transform → Firehose's response.
//!
//! Each binary's `main` builds its handler from the environment and runs it under `lambda_runtime`;
//! tests call the handlers directly with JSON events. Both log JSON with `tracing` and write one
//! CloudWatch embedded-metric-format line per invocation.
//!
//! Dependencies are `weir-core`, the AWS SDK (Kinesis) and the Lambda runtime only: never the stream
//! engine, delivery, the HTTP server or DuckDB, so the binaries stay small and start fast.
//!
//! # Layout
//! - [`config`]: the environment variables the template sets, validated at start.
//! - [`gateway`]: API Gateway's proxy events (both payload versions) as one request, and the answer.
//! - [`ingest`]: the ingest handler: parse as `weir up` does, put, answer (200, or 503/500 per record).
//! - [`put`]: `PutRecords` in chunks, retrying failed entries with backoff until a deadline.
//! - [`transform`]: the transform handler, and how a response over 6 MB is answered.
//! - [`metrics`]: CloudWatch embedded metric format lines.
//! - [`logging`]: the JSON tracing subscriber.

pub mod config;
pub mod gateway;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod put;
pub mod transform;

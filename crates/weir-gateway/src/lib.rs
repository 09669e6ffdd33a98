//! weir-gateway: the HTTP side of weir — the API Gateway + ingest Lambda stage of the seed pipeline.
//!
//! `POST /v1/streams/{stream}/records` takes JSON objects (one, or an array) or NDJSON, optionally
//! gzip-compressed, validates the whole request (parsing rules in [`weir_core::ingest`]), appends it to
//! the stream as one atomic batch and answers only once the batch is durable, with each record's shard
//! id and sequence number. Any error stores nothing and answers with a JSON body
//! `{"error":{"code","message","record_index"?}}`; [`error`] is the one place that maps errors to
//! statuses.
//!
//! # Layout
//! - [`api`]: the router and handlers.
//! - [`dashboard`]: the live dashboard at `GET /`, its files compiled in.
//! - [`error`]: API errors and their HTTP statuses.
//! - [`server`]: the accept loop: connection cap, header-read timeout, graceful shutdown.
//! - [`status`]: the pipeline's status snapshot, as JSON (`/api/status`) and Prometheus text (`/metrics`).

pub mod api;
pub mod dashboard;
pub mod error;
pub mod server;
pub mod status;

pub use api::{AppState, StreamRoute, router};
pub use server::{ServerLimits, serve};

//! The router and its handlers.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;
use weir_core::ingest::{self, IngestLimits, PartitionKeySpec};
use weir_stream::{PutRecord, Stream};

use crate::error::ApiError;

/// A stream the API accepts records for.
#[derive(Debug, Clone)]
pub struct StreamRoute {
    pub stream: Stream,
    pub partition_key: PartitionKeySpec,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub streams: Arc<HashMap<String, StreamRoute>>,
    pub limits: IngestLimits,
    /// Accepted bearer tokens; empty means no authentication.
    pub auth_tokens: Arc<Vec<String>>,
    /// How long reading a request body may take (slow clients are cut off with 408).
    pub body_read_timeout: Duration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/streams/{stream}/records",
            post(put_records).fallback(|| async { ApiError::method_not_allowed() }),
        )
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) })
                .fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET") }),
        )
        .fallback(|| async { ApiError::not_found("no such resource; records go to POST /v1/streams/{stream}/records") })
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct PutRecordsResponse {
    failed_record_count: u32,
    records: Vec<PutRecordsEntry>,
}

#[derive(Debug, Serialize)]
struct PutRecordsEntry {
    shard_id: String,
    sequence_number: String,
}

async fn put_records(
    State(app): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let route = app
        .streams
        .get(&stream)
        .ok_or_else(|| ApiError::unknown_stream(&stream))?;
    let format = ingest::body_format(header_str(&headers, header::CONTENT_TYPE)?)?;
    let encoding = ingest::content_encoding(header_str(&headers, header::CONTENT_ENCODING)?)?;
    let raw = read_body(body, app.limits.max_body_bytes, app.body_read_timeout).await?;
    let decoded = ingest::decode_body(encoding, &raw, &app.limits)?;
    let records = ingest::parse_records(format, &decoded, &app.limits, &route.partition_key)?;
    let puts = records
        .into_iter()
        .map(|r| PutRecord::new(r.partition_key, r.data))
        .collect();
    let results = route.stream.try_append(puts).await.map_err(|e| {
        warn!(stream, error = %e, "Append failed.");
        ApiError::from(e)
    })?;
    let response = PutRecordsResponse {
        failed_record_count: 0,
        records: results
            .into_iter()
            .map(|r| PutRecordsEntry {
                shard_id: r.shard_id.to_string(),
                sequence_number: r.sequence_number.to_string(),
            })
            .collect(),
    };
    Ok(Json(response).into_response())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ApiError> {
    headers
        .get(&name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    format!("{name} is not ASCII"),
                )
            })
        })
        .transpose()
}

/// Reads the body, enforcing the size cap while streaming (chunked bodies included) and a deadline.
async fn read_body(body: Body, max_bytes: usize, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
    let limited = Limited::new(body, max_bytes);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body was not received within {timeout:?}"),
        )),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {max_bytes} bytes"),
        )),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            format!("reading the request body failed: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if app.auth_tokens.is_empty() {
        return Ok(());
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    if app
        .auth_tokens
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

/// Compares without an early exit, so response time does not reveal how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! The router and its handlers.

use axum::body::{Body, HttpBody as _};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Limited};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;
use weir_core::ingest::{self, IngestLimits, PartitionKeySpec};
use weir_core::kinesis::HashKey;
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

/// Where records are posted.
pub const RECORDS_PATH: &str = "/v1/streams/{stream}/records";
/// The health check.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Every route [`router`] serves, as (method, path) with OpenAPI's (and axum's) `{param}` syntax; `GET`
/// also answers `HEAD`, and other methods get 405. `docs/openapi.json` documents exactly these: the
/// `openapi` test of the `weir` crate checks the spec against this list and against a running server.
pub const ROUTES: &[(&str, &str)] = &[("POST", RECORDS_PATH), ("GET", HEALTHZ_PATH)];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            RECORDS_PATH,
            post(put_records).fallback(|| async { ApiError::method_not_allowed() }),
        )
        .route(
            HEALTHZ_PATH,
            get(|| async { Json(serde_json::json!({"status": "ok"})) })
                .fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET") }),
        )
        .fallback(|| async { ApiError::not_found(format!("no such resource; records go to POST {RECORDS_PATH}")) })
        .with_state(state)
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
    let random_keys = matches!(route.partition_key, PartitionKeySpec::Random);
    let puts = records
        .into_iter()
        .map(|r| {
            let mut put = PutRecord::new(r.partition_key, r.data);
            if random_keys {
                // A random key is 128 random bits in hex: use them as the hash key (Kinesis's
                // ExplicitHashKey) instead of hashing them again with MD5. Just as uniform, cheaper.
                put.explicit_hash_key = u128::from_str_radix(&put.partition_key, 16).ok().map(HashKey);
            }
            put
        })
        .collect();
    let results = route.stream.try_append(puts).await.map_err(|e| {
        warn!(stream, error = %e, "Append failed.");
        ApiError::from(e)
    })?;
    Ok(put_records_response(&results))
}

/// `{"failed_record_count":0,"records":[{"shard_id":…,"sequence_number":…},…]}`, written directly:
/// both fields are fixed-format ASCII, so no escaping and no string per record is needed.
fn put_records_response(results: &[weir_stream::PutResult]) -> Response {
    let mut body = Vec::with_capacity(40 + results.len() * 90);
    body.extend_from_slice(br#"{"failed_record_count":0,"records":["#);
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"shard_id":""#);
        r.shard_id.write_ascii(&mut body);
        body.extend_from_slice(br#"","sequence_number":""#);
        r.sequence_number.write_ascii(&mut body);
        body.extend_from_slice(br#""}"#);
    }
    body.extend_from_slice(b"]}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
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
/// A `Content-Length` over the cap is refused before any of the body is read.
async fn read_body(body: Body, max_bytes: usize, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {max_bytes} bytes"),
        )
    };
    if body.size_hint().lower() > max_bytes as u64 {
        return Err(too_large());
    }
    let limited = Limited::new(body, max_bytes);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body was not received within {timeout:?}"),
        )),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
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
        .and_then(bearer_token)
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

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Compares without an early exit, so response time does not reveal how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

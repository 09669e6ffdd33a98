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
use std::time::{Duration, Instant};
use tracing::warn;
use weir_core::ingest::{self, IngestLimits, PartitionKeySpec};
use weir_core::kinesis::HashKey;
use weir_stream::{PutRecord, Stream};

use crate::error::ApiError;
use crate::status::{GatewayMetrics, PipelineStatus, StatusSource};

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
    /// The records route's own counters and latency.
    pub metrics: Arc<GatewayMetrics>,
    /// The rest of the pipeline, for `/metrics` and the dashboard's `/api/*`.
    pub status: Arc<dyn StatusSource>,
}

impl std::fmt::Debug for dyn StatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusSource")
    }
}

/// Where records are posted.
pub const RECORDS_PATH: &str = weir_core::api::RECORDS_PATH;
/// The health check.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// The pipeline's status as JSON (the dashboard polls it).
pub const STATUS_PATH: &str = "/api/status";
/// The newest delivered objects with a preview.
pub const OBJECTS_PATH: &str = "/api/objects";
/// The newest records that failed processing.
pub const ERRORS_PATH: &str = "/api/errors";
/// A read-only SQL query on the warehouse (`weir query` while `weir up` runs).
pub const QUERY_PATH: &str = "/api/query";
/// Every route [`router`] serves, as (method, path) with OpenAPI's (and axum's) `{param}` syntax; `GET`
/// also answers `HEAD`, and other methods get 405. `docs/openapi.json` documents exactly these: the
/// `openapi` test of the `weir` crate checks the spec against this list and against a running server.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", RECORDS_PATH),
    ("GET", HEALTHZ_PATH),
    ("GET", METRICS_PATH),
    ("GET", STATUS_PATH),
    ("GET", OBJECTS_PATH),
    ("GET", ERRORS_PATH),
    ("POST", QUERY_PATH),
];

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
        .route(METRICS_PATH, get(metrics).fallback(get_only))
        .route(STATUS_PATH, get(status).fallback(get_only))
        .route(OBJECTS_PATH, get(recent_objects).fallback(get_only))
        .route(ERRORS_PATH, get(recent_failures).fallback(get_only))
        .route(
            QUERY_PATH,
            post(query)
                .fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST") }),
        )
        // The dashboard (`/`, `/assets/…`): a page for people, not part of the API, so not in ROUTES.
        .merge(crate::dashboard::router())
        .fallback(|| async { ApiError::from(weir_core::api::ApiError::no_such_resource()) })
        .with_state(state)
}

async fn get_only() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET")
}

/// The records route, measured: every response is counted by status, every acknowledgement timed.
async fn put_records(
    State(app): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let response = match accept_records(&app, stream, headers, body).await {
        Ok((response, records, bytes)) => {
            app.metrics.record_accepted(records, bytes, started.elapsed());
            response
        }
        Err(e) => e.into_response(),
    };
    app.metrics.record_response(response.status().as_u16());
    response
}

fn snapshot(app: &AppState) -> PipelineStatus {
    PipelineStatus {
        version: env!("CARGO_PKG_VERSION"),
        now_ms: crate::status::now_ms(),
        started_ms: app.metrics.started_ms(),
        gateway: app.metrics.snapshot(),
        streams: app.status.streams(),
        deliveries: app.status.deliveries(),
        warehouse: app.status.warehouse(),
    }
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let text = crate::status::prometheus_text(&snapshot(&app));
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

async fn status(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    Ok(Json(snapshot(&app)).into_response())
}

#[derive(Debug, serde::Deserialize)]
struct Limit {
    limit: Option<usize>,
}

/// At most this many items per list request.
const MAX_LIST: usize = 100;

fn list_limit(
    query: Result<axum::extract::Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Result<usize, ApiError> {
    let axum::extract::Query(Limit { limit }) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be a number from 1 to {MAX_LIST}: {e}"),
        )
    })?;
    match limit.unwrap_or(10) {
        n @ 1..=MAX_LIST => Ok(n),
        n => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit {n} is not from 1 to {MAX_LIST}"),
        )),
    }
}

type LimitQuery = Result<axum::extract::Query<Limit>, axum::extract::rejection::QueryRejection>;

async fn recent_objects(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: LimitQuery,
) -> Result<Response, ApiError> {
    list(app, &headers, query, |status, limit| status.recent_objects(limit)).await
}

async fn recent_failures(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: LimitQuery,
) -> Result<Response, ApiError> {
    list(app, &headers, query, |status, limit| status.recent_failures(limit)).await
}

/// A list endpoint: authorized, `limit` checked, and the source asked on a blocking thread (object
/// previews read files or S3).
async fn list<T: serde::Serialize + Send + 'static>(
    app: AppState,
    headers: &HeaderMap,
    query: LimitQuery,
    get: impl FnOnce(&dyn StatusSource, usize) -> Vec<T> + Send + 'static,
) -> Result<Response, ApiError> {
    authorize(&app, headers)?;
    let limit = list_limit(query)?;
    let items = tokio::task::spawn_blocking(move || get(app.status.as_ref(), limit))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(items).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
    max_rows: Option<usize>,
}

/// At most this many rows per query answer.
const MAX_QUERY_ROWS: usize = 1_000_000;

/// One read-only statement on the warehouse, run on a blocking thread.
async fn query(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<QueryRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let Json(request) = body.map_err(|e| {
        let code = match e.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "invalid_body",
        };
        let status = if code == "invalid_body" {
            StatusCode::BAD_REQUEST
        } else {
            e.status()
        };
        ApiError::new(status, code, e.body_text())
    })?;
    let max_rows = request.max_rows.unwrap_or(10_000);
    if !(1..=MAX_QUERY_ROWS).contains(&max_rows) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("max_rows {max_rows} is not from 1 to {MAX_QUERY_ROWS}"),
        ));
    }
    let answer = tokio::task::spawn_blocking(move || app.status.query(&request.sql, max_rows))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match answer {
        None => Err(ApiError::not_found(
            "this pipeline has no warehouse (it is off in weir.toml: [warehouse] enabled = false)",
        )),
        Some(Ok(result)) => Ok(Json(result).into_response()),
        Some(Err(failure)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            if failure.not_allowed {
                "query_not_allowed"
            } else {
                "sql_error"
            },
            failure.message,
        )),
    }
}

/// Validates, stores and acknowledges one request; returns the response, its records and their bytes.
async fn accept_records(
    app: &AppState,
    stream: String,
    headers: HeaderMap,
    body: Body,
) -> Result<(Response, u64, u64), ApiError> {
    authorize(app, &headers)?;
    let route = app
        .streams
        .get(&stream)
        .ok_or_else(|| ApiError::unknown_stream(&stream))?;
    let format = ingest::body_format(header_str(&headers, header::CONTENT_TYPE)?)?;
    let encoding = ingest::content_encoding(header_str(&headers, header::CONTENT_ENCODING)?)?;
    let raw = read_body(body, app.limits.max_body_bytes, app.body_read_timeout).await?;
    let decoded = ingest::decode_body(encoding, &raw, &app.limits)?;
    let records = ingest::parse_records(format, &decoded, &app.limits, &route.partition_key)?;
    let (count, bytes) = (records.len() as u64, records.iter().map(|r| r.data.len() as u64).sum());
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
    Ok((put_records_response(&results), count, bytes))
}

/// The 200 reply ([`weir_core::api::StoredReply`]), ids written without a `String` per record.
fn put_records_response(results: &[weir_stream::PutResult]) -> Response {
    let mut reply = weir_core::api::StoredReply::with_capacity(results.len());
    for r in results {
        reply.push_ascii(|b| r.shard_id.write_ascii(b), |b| r.sequence_number.write_ascii(b));
    }
    ([(header::CONTENT_TYPE, "application/json")], reply.finish()).into_response()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ApiError> {
    headers
        .get(&name)
        .map(|v| weir_core::api::header_text(name.as_str(), v.as_bytes()).map_err(ApiError::from))
        .transpose()
}

/// Reads the body, enforcing the size cap while streaming (chunked bodies included) and a deadline.
/// A `Content-Length` over the cap is refused before any of the body is read.
async fn read_body(body: Body, max_bytes: usize, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
    let too_large = || ApiError::from(weir_core::api::ApiError::body_too_large(max_bytes));
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
        Ok(Err(e)) => Err(weir_core::api::ApiError::body_read_failed(e).into()),
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

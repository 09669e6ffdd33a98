//! API errors and the one mapping from errors to HTTP responses. The error body, and the status and
//! code of every error the ingest Lambda answers too, live in [`weir_core::api`]; this adds what only
//! `weir up` raises (the stream's append errors) and the axum response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use weir_core::api;
use weir_core::ingest::IngestError;
use weir_stream::AppendError;

/// An error answered as `{"error":{"code":…,"message":…,"record_index":…}}` (see [`weir_core::api::ApiError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub api::ApiError);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError(api::ApiError::new(status.as_u16(), code, message))
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError(api::ApiError::not_found(message))
    }

    pub fn unknown_stream(name: &str) -> ApiError {
        ApiError(api::ApiError::unknown_stream(name))
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError(api::ApiError::method_not_allowed())
    }

    pub fn unauthorized() -> ApiError {
        ApiError(api::ApiError::unauthorized())
    }

    fn retry_after(self, seconds: u32) -> ApiError {
        ApiError(self.0.with_retry_after(seconds))
    }
}

impl From<api::ApiError> for ApiError {
    fn from(e: api::ApiError) -> ApiError {
        ApiError(e)
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        ApiError(e.into())
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> ApiError {
        let message = e.to_string();
        match e {
            AppendError::Overloaded => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", message).retry_after(1)
            }
            AppendError::DiskFull(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "disk_full", message).retry_after(30)
            }
            AppendError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message).retry_after(5)
            }
            AppendError::InvalidRecord { index, .. } => {
                let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_record", message);
                e.0.record_index = Some(index);
                e
            }
            AppendError::BatchTooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            AppendError::EmptyBatch => ApiError::new(StatusCode::BAD_REQUEST, "empty", message),
            AppendError::Io(_) | AppendError::Poisoned(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, [(header::CONTENT_TYPE, "application/json")], e.body()).into_response();
        if let Some(seconds) = e.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

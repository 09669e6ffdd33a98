//! The answering half of weir's HTTP ingest contract, shared by `weir up` (weir-gateway) and the ingest
//! Lambda (weir-lambda), so both shapes answer `POST /v1/streams/{stream}/records` with the same
//! statuses and bytes.
//!
//! - Errors: [`ApiError`], written by [`ApiError::body`] as
//!   `{"error":{"code":"…","message":"…","record_index":N}}` (`record_index` only when one record is at
//!   fault). The errors both shapes raise have their constructors here, with their status and code;
//!   parsing errors convert from [`IngestError`].
//! - Success: [`StoredReply`], `{"failed_record_count":0,"records":[{"shard_id":…,"sequence_number":…}]}`
//!   in request order.
//! - Headers: [`header_text`], the one rule for header values that are not text.
//!
//! The transport (axum in `weir up`, API Gateway's JSON events on AWS) stays with each shape; only what
//! the client sees is here.

use crate::ingest::IngestError;
use serde::Serialize;

/// Where records are posted, with OpenAPI's (and axum's) `{param}` syntax.
pub const RECORDS_PATH: &str = "/v1/streams/{stream}/records";

/// An error answer: status, stable code, message, and what else the response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// A stable snake_case code (docs/api.md lists them).
    pub code: &'static str,
    /// What is wrong, for a human.
    pub message: String,
    /// The 0-based index of the offending record, when one record is at fault.
    pub record_index: Option<usize>,
    /// Seconds for a `Retry-After` header (429 and 503 only).
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_index: Option<usize>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            record_index: None,
            retry_after: None,
        }
    }

    /// 404 `not_found`: no such path.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    /// 404 `not_found` for any path but the records route, naming where records go.
    pub fn no_such_resource() -> ApiError {
        ApiError::not_found(format!("no such resource; records go to POST {RECORDS_PATH}"))
    }

    /// 404 `unknown_stream`.
    pub fn unknown_stream(name: &str) -> ApiError {
        ApiError::new(404, "unknown_stream", format!("no stream named {name:?}"))
    }

    /// 405 `method_not_allowed` on the records route (answer with `Allow: POST`).
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, "method_not_allowed", "use POST for this resource")
    }

    /// 401 `unauthorized` (answer with `WWW-Authenticate: Bearer`).
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            401,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        )
    }

    /// 400 `invalid_header`: a header whose value is not text (see [`header_text`]).
    pub fn invalid_header(name: &str) -> ApiError {
        ApiError::new(400, "invalid_header", format!("{name} is not ASCII"))
    }

    /// 413 `body_too_large`: the body as sent (before decompression) is over the limit.
    pub fn body_too_large(max_bytes: usize) -> ApiError {
        ApiError::new(
            413,
            "body_too_large",
            format!("the request body exceeds {max_bytes} bytes"),
        )
    }

    /// 400 `body_read_failed`: the body could not be read (broken framing, bad base64 from a gateway).
    pub fn body_read_failed(reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            400,
            "body_read_failed",
            format!("reading the request body failed: {reason}"),
        )
    }

    /// The same error, answered with `Retry-After: seconds`.
    pub fn with_retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body: `{"error":{"code":…,"message":…,"record_index":…}}`.
    pub fn body(&self) -> Vec<u8> {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                record_index: self.record_index,
            },
        };
        serde_json::to_vec(&body).expect("serializing strings and integers to a Vec cannot fail")
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        ApiError {
            status: e.status,
            code: e.code,
            message: e.message,
            record_index: e.record_index,
            retry_after: None,
        }
    }
}

/// A header value as text: visible ASCII, spaces and tabs, as HTTP libraries accept for `to_str`.
/// Anything else (obs-text, UTF-8, control characters) is 400 `invalid_header` naming the header.
pub fn header_text<'a>(name: &str, value: &'a [u8]) -> Result<&'a str, ApiError> {
    if value.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        // Every byte is ASCII, so this cannot fail.
        std::str::from_utf8(value).map_err(|_| ApiError::invalid_header(name))
    } else {
        Err(ApiError::invalid_header(name))
    }
}

/// The 200 reply: `{"failed_record_count":0,"records":[{"shard_id":…,"sequence_number":…},…]}`, one entry
/// per record in request order, written directly into one buffer.
#[derive(Debug)]
pub struct StoredReply {
    body: Vec<u8>,
    records: usize,
}

const REPLY_OPEN: &[u8] = br#"{"failed_record_count":0,"records":["#;

impl StoredReply {
    /// A reply sized for `records` entries of Kinesis-sized ids.
    pub fn with_capacity(records: usize) -> StoredReply {
        let mut body = Vec::with_capacity(REPLY_OPEN.len() + 2 + records * 90);
        body.extend_from_slice(REPLY_OPEN);
        StoredReply { body, records: 0 }
    }

    /// Appends one record's entry, each id written by its closure as ASCII that needs no JSON escaping
    /// (shard ids and decimal sequence numbers), for callers that format them without a `String`.
    pub fn push_ascii(&mut self, shard_id: impl FnOnce(&mut Vec<u8>), sequence_number: impl FnOnce(&mut Vec<u8>)) {
        if self.records > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(br#"{"shard_id":""#);
        shard_id(&mut self.body);
        self.body.extend_from_slice(br#"","sequence_number":""#);
        sequence_number(&mut self.body);
        self.body.extend_from_slice(br#""}"#);
        self.records += 1;
    }

    /// Appends one record's entry from strings, escaped as JSON needs.
    pub fn push(&mut self, shard_id: &str, sequence_number: &str) {
        if self.records > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(br#"{"shard_id":"#);
        serde_json::to_writer(&mut self.body, shard_id).expect("writing a string to a Vec cannot fail");
        self.body.extend_from_slice(br#","sequence_number":"#);
        serde_json::to_writer(&mut self.body, sequence_number).expect("writing a string to a Vec cannot fail");
        self.body.push(b'}');
        self.records += 1;
    }

    /// The finished body.
    pub fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(b"]}");
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_record_index_only_when_set() {
        assert_eq!(
            ApiError::unknown_stream("nope").body(),
            br#"{"error":{"code":"unknown_stream","message":"no stream named \"nope\""}}"#
        );
        let mut e = ApiError::new(400, "invalid_json", "bad");
        e.record_index = Some(3);
        assert_eq!(
            e.body(),
            br#"{"error":{"code":"invalid_json","message":"bad","record_index":3}}"#
        );
    }

    #[test]
    fn both_ways_of_pushing_write_the_same_reply() {
        let mut ascii = StoredReply::with_capacity(2);
        let mut strings = StoredReply::with_capacity(2);
        for (shard, seq) in [("shardId-000000000001", "49001"), ("shardId-000000000000", "49002")] {
            ascii.push_ascii(
                |b| b.extend_from_slice(shard.as_bytes()),
                |b| b.extend_from_slice(seq.as_bytes()),
            );
            strings.push(shard, seq);
        }
        let (ascii, strings) = (ascii.finish(), strings.finish());
        assert_eq!(ascii, strings);
        let parsed: serde_json::Value = serde_json::from_slice(&ascii).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!({"failed_record_count": 0, "records": [
                {"shard_id": "shardId-000000000001", "sequence_number": "49001"},
                {"shard_id": "shardId-000000000000", "sequence_number": "49002"},
            ]})
        );
        assert_eq!(
            StoredReply::with_capacity(0).finish(),
            br#"{"failed_record_count":0,"records":[]}"#
        );
    }

    #[test]
    fn header_text_refuses_what_is_not_visible_ascii() {
        assert_eq!(
            header_text("content-type", b"application/json; charset=utf-8"),
            Ok("application/json; charset=utf-8")
        );
        for bad in [&b"application/json\xff"[..], "appl\u{e9}".as_bytes(), b"a\x01b"] {
            assert_eq!(
                header_text("content-type", bad).map_err(|e| (e.status, e.code, e.message)),
                Err((400, "invalid_header", "content-type is not ASCII".to_owned()))
            );
        }
    }
}

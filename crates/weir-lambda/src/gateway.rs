//! API Gateway's Lambda proxy events, both payload versions, seen as one HTTP request; and the answer
//! in the version the request came in.
//!
//! - HTTP API, payload 2.0 (`"version": "2.0"`, what deploy/aws/template.yaml configures): method in
//!   `requestContext.http.method`, path in `rawPath`, header names lowercased, repeated headers joined
//!   with commas.
//! - REST API proxy and HTTP API payload 1.0: `httpMethod`, `path`, `headers` (last value) and
//!   `multiValueHeaders` (every value).
//!
//! Either way the body arrives as a JSON string, base64-encoded when `isBase64Encoded` is true (API
//! Gateway does that for binary bodies, e.g. gzip). Header names are matched case-insensitively.

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use weir_core::api::ApiError;

/// An API Gateway proxy event of either payload version.
#[derive(Debug, Clone)]
pub enum GatewayEvent {
    /// REST API proxy integration, or HTTP API payload 1.0.
    V1(Box<ApiGatewayProxyRequest>),
    /// HTTP API payload 2.0.
    V2(Box<ApiGatewayV2httpRequest>),
}

/// Just the `version` field, to pick the payload type.
#[derive(Deserialize)]
struct Version<'a> {
    #[serde(borrow, default)]
    version: Option<Cow<'a, str>>,
}

impl GatewayEvent {
    /// Reads an event: payload 2.0 when `version` is `"2.0"`, the 1.0 shape otherwise (REST APIs send
    /// no version, HTTP APIs `"1.0"`).
    pub fn from_json(text: &str) -> Result<GatewayEvent, serde_json::Error> {
        let version: Version<'_> = serde_json::from_str(text)?;
        if version.version.as_deref() == Some("2.0") {
            serde_json::from_str(text).map(|e| GatewayEvent::V2(Box::new(e)))
        } else {
            serde_json::from_str(text).map(|e| GatewayEvent::V1(Box::new(e)))
        }
    }

    /// `1.0` or `2.0`, for logs.
    pub fn payload_version(&self) -> &'static str {
        match self {
            GatewayEvent::V1(_) => "1.0",
            GatewayEvent::V2(_) => "2.0",
        }
    }

    pub fn method(&self) -> &Method {
        match self {
            GatewayEvent::V1(e) => &e.http_method,
            GatewayEvent::V2(e) => &e.request_context.http.method,
        }
    }

    /// The path as the client sent it (`rawPath` / `path`), which may start with a stage name.
    pub fn path(&self) -> &str {
        match self {
            GatewayEvent::V1(e) => e.path.as_deref().unwrap_or_default(),
            GatewayEvent::V2(e) => e.raw_path.as_deref().unwrap_or_default(),
        }
    }

    /// The stage, when it is part of the path (every stage but HTTP APIs' `$default`).
    fn stage(&self) -> Option<&str> {
        match self {
            GatewayEvent::V1(e) => e.request_context.stage.as_deref(),
            GatewayEvent::V2(e) => e.request_context.stage.as_deref(),
        }
        .filter(|stage| *stage != "$default" && !stage.is_empty())
    }

    /// The `{stream}` of `/v1/streams/{stream}/records`: API Gateway's decoded path parameter when its
    /// route matched, else read from the path (with or without the stage in front). `None` for any
    /// other path.
    pub fn records_stream(&self) -> Option<Cow<'_, str>> {
        let parameters = match self {
            GatewayEvent::V1(e) => &e.path_parameters,
            GatewayEvent::V2(e) => &e.path_parameters,
        };
        let path = self.path();
        let unstaged = self
            .stage()
            .and_then(|stage| path.strip_prefix('/')?.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path);
        let from_path = records_path_stream(unstaged).or_else(|| records_path_stream(path));
        match (parameters.get("stream"), from_path) {
            (Some(stream), _) => Some(Cow::Borrowed(stream.as_str())),
            (None, from_path) => from_path.map(Cow::Borrowed),
        }
    }

    /// The request headers; for payload 1.0, `multiValueHeaders` when present (every value).
    fn headers(&self) -> &HeaderMap {
        match self {
            GatewayEvent::V1(e) if !e.multi_value_headers.is_empty() => &e.multi_value_headers,
            GatewayEvent::V1(e) => &e.headers,
            GatewayEvent::V2(e) => &e.headers,
        }
    }

    /// The first value of a header (names are case-insensitive), as text; 400 `invalid_header` when it
    /// is not ASCII, as in `weir up`.
    pub fn header(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        self.headers()
            .get(HeaderName::from_static(name))
            .map(|v| weir_core::api::header_text(name, v.as_bytes()))
            .transpose()
    }

    /// The body as sent: decoded from base64 when `isBase64Encoded`; empty when there is none.
    pub fn body(&self) -> Result<Cow<'_, [u8]>, ApiError> {
        let (body, base64) = match self {
            GatewayEvent::V1(e) => (e.body.as_deref(), e.is_base64_encoded),
            GatewayEvent::V2(e) => (e.body.as_deref(), e.is_base64_encoded),
        };
        let body = body.unwrap_or_default();
        if !base64 {
            return Ok(Cow::Borrowed(body.as_bytes()));
        }
        STANDARD.decode(body).map(Cow::Owned).map_err(|e| {
            ApiError::body_read_failed(format!("the event's base64 body (isBase64Encoded) is invalid: {e}"))
        })
    }

    /// The answer in this event's payload version.
    pub fn respond(&self, reply: HttpReply) -> GatewayResponse {
        let mut headers = HeaderMap::with_capacity(reply.headers.len() + 1);
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        for (name, value) in reply.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let body = match String::from_utf8(reply.body) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        };
        match self {
            GatewayEvent::V1(_) => {
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = i64::from(reply.status);
                response.headers = headers;
                response.is_base64_encoded = matches!(body, Body::Binary(_));
                response.body = Some(body);
                GatewayResponse::V1(response)
            }
            GatewayEvent::V2(_) => {
                let mut response = ApiGatewayV2httpResponse::default();
                response.status_code = i64::from(reply.status);
                response.headers = headers;
                response.is_base64_encoded = matches!(body, Body::Binary(_));
                response.body = Some(body);
                GatewayResponse::V2(response)
            }
        }
    }
}

impl<'de> Deserialize<'de> for GatewayEvent {
    /// Captures the event's JSON first, to read `version` before choosing the type.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<GatewayEvent, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        GatewayEvent::from_json(raw.get()).map_err(serde::de::Error::custom)
    }
}

/// `stream` if `path` is exactly `/v1/streams/<stream>/records` with a non-empty stream.
fn records_path_stream(path: &str) -> Option<&str> {
    let stream = path.strip_prefix("/v1/streams/")?.strip_suffix("/records")?;
    (!stream.is_empty() && !stream.contains('/')).then_some(stream)
}

/// What the handler answers, before it is put in an event's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Headers besides `content-type: application/json`, which every reply has.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A 200 with a JSON body.
    pub fn ok(body: Vec<u8>) -> HttpReply {
        HttpReply {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }
}

impl From<ApiError> for HttpReply {
    /// The error's body and status, `Retry-After` when set and `Allow: POST` on 405, as `weir up` answers.
    fn from(e: ApiError) -> HttpReply {
        let mut headers = Vec::new();
        if let Some(seconds) = e.retry_after {
            headers.push(("retry-after", seconds.to_string()));
        }
        if e.status == 405 {
            headers.push(("allow", "POST".to_owned()));
        }
        HttpReply {
            status: e.status,
            headers,
            body: e.body(),
        }
    }
}

/// The function's answer, in the request's payload version.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum GatewayResponse {
    V1(ApiGatewayProxyResponse),
    V2(ApiGatewayV2httpResponse),
}

impl GatewayResponse {
    pub fn status(&self) -> u16 {
        let code = match self {
            GatewayResponse::V1(r) => r.status_code,
            GatewayResponse::V2(r) => r.status_code,
        };
        u16::try_from(code).unwrap_or(500)
    }

    /// A response header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let headers = match self {
            GatewayResponse::V1(r) => &r.headers,
            GatewayResponse::V2(r) => &r.headers,
        };
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's text (every reply weir writes is JSON).
    pub fn body(&self) -> &str {
        let body = match self {
            GatewayResponse::V1(r) => r.body.as_ref(),
            GatewayResponse::V2(r) => r.body.as_ref(),
        };
        match body {
            Some(Body::Text(text)) => text,
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_path_is_matched_exactly() {
        assert_eq!(records_path_stream("/v1/streams/events/records"), Some("events"));
        for other in [
            "/v1/streams//records",
            "/v1/streams/events/records/1",
            "/v1/streams/a/b/records",
            "/v1/records",
            "/v2",
        ] {
            assert_eq!(records_path_stream(other), None, "{other}");
        }
    }
}

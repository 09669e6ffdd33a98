//! The parsing half of weir's HTTP ingest contract, shared by the local server and the ingest Lambda.
//!
//! `POST /v1/streams/{stream}/records` carries JSON records in one of two body formats:
//!
//! - `Content-Type: application/json`: one JSON object is one record; a JSON array of objects is a batch;
//! - `Content-Type: application/x-ndjson` (or `application/jsonl`): one object per line; lines that hold
//!   only whitespace are skipped, and a line may end in `\r\n`.
//!
//! Parameters of the content type are ignored except `charset`, which must be UTF-8. The body may be sent
//! with `Content-Encoding: gzip` (`identity` and no header mean uncompressed). A server runs the four steps
//! in order: [`body_format`], [`content_encoding`], [`decode_body`], [`parse_records`]. Every failure is an
//! [`IngestError`] carrying the HTTP status, a stable snake_case code (see [`code`]), a message naming
//! the problem and, when one record is at fault, its 0-based index. A request is all-or-nothing:
//! [`parse_records`] returns every record or none.
//!
//! Limits ([`IngestLimits`]) are checked cheaply and early: the decompressed size is capped while
//! decompressing (a gzip bomb stops one byte past the cap, without allocating more), nesting depth is
//! counted by a byte scanner before any JSON parser sees a record (a 10,000-deep body fails with
//! `too_deep` after reading `max_depth + 1` brackets), and the record count fails as soon as it is
//! exceeded, before the rest of the body is read.
//!
//! Each record's data is its JSON text exactly as sent, minus surrounding whitespace, when that text has
//! no line break (`\n` or `\r`); otherwise it is compacted by dropping the whitespace outside strings (key
//! order, number spelling and string escapes stay as sent). Data therefore never holds a line break, so
//! newline-delimited output downstream has one record per line.
//!
//! ```
//! use weir_core::ingest::{self, IngestLimits, PartitionKeySpec};
//!
//! let limits = IngestLimits::default();
//! let key = PartitionKeySpec::parse("/user_id")?;
//! let format = ingest::body_format(Some("application/x-ndjson; charset=utf-8"))?;
//! let encoding = ingest::content_encoding(None)?;
//! let body = ingest::decode_body(encoding, b"{\"user_id\":7,\"e\":\"a\"}\r\n\n{\"user_id\":\"u8\"}\n", &limits)?;
//! let records = ingest::parse_records(format, &body, &limits, &key)?;
//! assert_eq!(records[0].data, br#"{"user_id":7,"e":"a"}"#);
//! assert_eq!(records[0].partition_key, "7");
//! assert_eq!(records[1].partition_key, "u8");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::kinesis;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::str::FromStr;
use thiserror::Error;

/// The largest allowed [`IngestLimits::max_body_bytes`]: API Gateway's 10 MB payload limit, so that a
/// request the local server accepts is one the AWS shape accepts too.
pub const MAX_BODY_BYTES_LIMIT: usize = 10_000_000;

/// The largest allowed [`IngestLimits::max_depth`]: serde_json's default recursion limit lets a value
/// nest 127 levels, so every accepted record can be parsed again downstream with serde_json's defaults.
pub const MAX_DEPTH_LIMIT: usize = 127;

/// A UTF-8 byte order mark. RFC 8259 lets parsers ignore one at the start of a body; it is skipped.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The stable error codes of [`IngestError::code`], for clients to match on.
pub mod code {
    /// 415: no `Content-Type`, or one other than JSON or NDJSON.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 415: a `charset` parameter other than UTF-8.
    pub const UNSUPPORTED_CHARSET: &str = "unsupported_charset";
    /// 415: a `Content-Encoding` other than `gzip` or `identity` (or gzip applied twice).
    pub const UNSUPPORTED_ENCODING: &str = "unsupported_encoding";
    /// 400: `Content-Encoding: gzip` on a body that is not valid gzip (corrupt or truncated).
    pub const INVALID_GZIP: &str = "invalid_gzip";
    /// 413: the body, after decompression, is over [`IngestLimits::max_body_bytes`](super::IngestLimits).
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// 413: more records than [`IngestLimits::max_records`](super::IngestLimits).
    pub const TOO_MANY_RECORDS: &str = "too_many_records";
    /// 413: a record's data is over [`IngestLimits::max_record_bytes`](super::IngestLimits).
    pub const RECORD_TOO_LARGE: &str = "record_too_large";
    /// 400: the body has no records: empty, only whitespace, `[]`, or only blank lines.
    pub const EMPTY: &str = "empty";
    /// 400: bytes that are not UTF-8.
    pub const INVALID_UTF8: &str = "invalid_utf8";
    /// 400: text that is not JSON, or not JSON in the body format's shape.
    pub const INVALID_JSON: &str = "invalid_json";
    /// 400: a record nests arrays and objects deeper than [`IngestLimits::max_depth`](super::IngestLimits).
    pub const TOO_DEEP: &str = "too_deep";
    /// 400: a record (or a JSON body) that is valid JSON but not an object.
    pub const NOT_AN_OBJECT: &str = "not_an_object";
    /// 400: the partition key pointer finds no value in a record.
    pub const PARTITION_KEY_MISSING: &str = "partition_key_missing";
    /// 400: the partition key pointer finds a value that is not a string or number, or not a valid key.
    pub const PARTITION_KEY_INVALID: &str = "partition_key_invalid";
}

/// Why a request was refused: everything an HTTP error response needs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct IngestError {
    /// The HTTP status: 400, 413 or 415.
    pub status: u16,
    /// A stable snake_case code, one of [`code`].
    pub code: &'static str,
    /// What is wrong, for a human: names the record, line, pointer or limit involved.
    pub message: String,
    /// The 0-based index of the offending record, when one record is at fault.
    pub record_index: Option<usize>,
}

impl IngestError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> IngestError {
        IngestError {
            status,
            code,
            message: message.into(),
            record_index: None,
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> IngestError {
        IngestError::new(400, code, message)
    }

    fn too_large(code: &'static str, message: impl Into<String>) -> IngestError {
        IngestError::new(413, code, message)
    }

    fn unsupported(code: &'static str, message: impl Into<String>) -> IngestError {
        IngestError::new(415, code, message)
    }

    fn at(mut self, index: usize) -> IngestError {
        self.record_index = Some(index);
        self
    }
}

/// The limits one request must fit. [`Default`] is Kinesis's `PutRecords` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Most records in one request (default 500, as `PutRecords`).
    pub max_records: usize,
    /// Most body bytes after decompression (default 5 MiB, as `PutRecords`; at most
    /// [`MAX_BODY_BYTES_LIMIT`]).
    pub max_body_bytes: usize,
    /// Most bytes of one record's data (default and maximum 1 MiB, Kinesis's record limit).
    pub max_record_bytes: usize,
    /// Deepest nesting of arrays and objects in one record; `{}` is 1 deep (default 64, at most
    /// [`MAX_DEPTH_LIMIT`]).
    pub max_depth: usize,
}

impl Default for IngestLimits {
    fn default() -> IngestLimits {
        IngestLimits {
            max_records: kinesis::PUT_RECORDS_MAX_RECORDS,
            max_body_bytes: kinesis::PUT_RECORDS_MAX_BYTES,
            max_record_bytes: kinesis::MAX_RECORD_DATA_BYTES,
            max_depth: 64,
        }
    }
}

/// A configured [`IngestLimits`] field out of its range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct InvalidLimit {
    /// The field's name, as in [`IngestLimits`].
    pub field: &'static str,
    /// The configured value.
    pub value: usize,
    /// The largest allowed value, if there is one (the smallest is always 1).
    pub max: Option<usize>,
    /// Where the maximum comes from, e.g. "API Gateway's payload limit" (empty without a maximum).
    pub reason: &'static str,
}

impl fmt::Display for InvalidLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ingest limit {} is {}; ", self.field, self.value)?;
        match self.max {
            Some(max) => write!(f, "it must be 1 to {max} ({})", self.reason),
            None => f.write_str("it must be at least 1"),
        }
    }
}

impl IngestLimits {
    /// Checks every field is in range: each at least 1; `max_body_bytes` at most
    /// [`MAX_BODY_BYTES_LIMIT`], `max_record_bytes` at most Kinesis's 1 MiB, `max_depth` at most
    /// [`MAX_DEPTH_LIMIT`]. The error names the first field out of range.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        let checks = [
            ("max_records", self.max_records, None, ""),
            (
                "max_body_bytes",
                self.max_body_bytes,
                Some(MAX_BODY_BYTES_LIMIT),
                "API Gateway's payload limit",
            ),
            (
                "max_record_bytes",
                self.max_record_bytes,
                Some(kinesis::MAX_RECORD_DATA_BYTES),
                "Kinesis's record limit, 1 MiB",
            ),
            (
                "max_depth",
                self.max_depth,
                Some(MAX_DEPTH_LIMIT),
                "what serde_json parses with its default recursion limit",
            ),
        ];
        for (field, value, max, reason) in checks {
            if value == 0 || max.is_some_and(|max| value > max) {
                return Err(InvalidLimit {
                    field,
                    value,
                    max,
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// How a body carries records, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: one object, or an array of objects.
    Json,
    /// `application/x-ndjson` or `application/jsonl`: one object per non-blank line.
    Ndjson,
}

/// How a body is compressed, from its `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// Not compressed (no header, or `identity`).
    Identity,
    /// gzip (`gzip` or its legacy alias `x-gzip`); concatenated gzip members are one body.
    Gzip,
}

/// The body format named by a `Content-Type` header (media type case-insensitive, parameters ignored
/// except `charset`, which must be `utf-8`). A missing header is 415 like any unsupported type.
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, IngestError> {
    let Some(value) = content_type else {
        return Err(IngestError::unsupported(
            code::UNSUPPORTED_MEDIA_TYPE,
            "the request has no Content-Type; send application/json or application/x-ndjson",
        ));
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let format = if essence.eq_ignore_ascii_case("application/json") {
        BodyFormat::Json
    } else if essence.eq_ignore_ascii_case("application/x-ndjson") || essence.eq_ignore_ascii_case("application/jsonl")
    {
        BodyFormat::Ndjson
    } else {
        return Err(IngestError::unsupported(
            code::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {} is not supported; send application/json (an object or an array of objects) \
                 or application/x-ndjson (one object per line)",
                excerpt(value)
            ),
        ));
    };
    for param in parts {
        let Some((name, charset)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = charset.trim().trim_matches('"');
            if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")) {
                return Err(IngestError::unsupported(
                    code::UNSUPPORTED_CHARSET,
                    format!("charset {} is not supported; JSON must be UTF-8", excerpt(charset)),
                ));
            }
        }
    }
    Ok(format)
}

/// The encoding named by a `Content-Encoding` header: none, `identity`, `gzip` or `x-gzip`
/// (case-insensitive; a list such as `identity, gzip` is read in full, and gzip may appear once).
pub fn content_encoding(header: Option<&str>) -> Result<ContentEncoding, IngestError> {
    let mut encoding = ContentEncoding::Identity;
    for coding in header.unwrap_or_default().split(',').map(str::trim) {
        if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
            continue;
        }
        if !(coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) {
            return Err(IngestError::unsupported(
                code::UNSUPPORTED_ENCODING,
                format!(
                    "Content-Encoding {} is not supported; send gzip or identity",
                    excerpt(coding)
                ),
            ));
        }
        if encoding == ContentEncoding::Gzip {
            return Err(IngestError::unsupported(
                code::UNSUPPORTED_ENCODING,
                "Content-Encoding applies gzip more than once; compress the body once",
            ));
        }
        encoding = ContentEncoding::Gzip;
    }
    Ok(encoding)
}

/// The body as [`parse_records`] takes it: borrowed when not compressed, decompressed otherwise.
///
/// The size after decompression is capped at [`IngestLimits::max_body_bytes`] (413 `body_too_large`).
/// Decompression reads at most one byte past the cap and never allocates more than that, so a gzip bomb
/// costs at most the cap in memory and the time to inflate it. Corrupt or truncated gzip is 400
/// `invalid_gzip`.
pub fn decode_body<'a>(
    encoding: ContentEncoding,
    raw: &'a [u8],
    limits: &IngestLimits,
) -> Result<Cow<'a, [u8]>, IngestError> {
    match encoding {
        ContentEncoding::Identity if raw.len() > limits.max_body_bytes => {
            Err(body_too_large(raw.len(), limits.max_body_bytes))
        }
        ContentEncoding::Identity => Ok(Cow::Borrowed(raw)),
        ContentEncoding::Gzip => gunzip(raw, limits.max_body_bytes).map(Cow::Owned),
    }
}

fn body_too_large(len: usize, max: usize) -> IngestError {
    IngestError::too_large(
        code::BODY_TOO_LARGE,
        format!("the body is {len} bytes; the limit is {max} bytes"),
    )
}

/// Inflates every gzip member of `raw` into a buffer that never grows past `cap + 1` bytes.
fn gunzip(raw: &[u8], cap: usize) -> Result<Vec<u8>, IngestError> {
    let bound = cap.saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(raw);
    let mut out = Vec::new();
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if filled == bound {
                return Err(IngestError::too_large(
                    code::BODY_TOO_LARGE,
                    format!("the body decompresses to more than {cap} bytes; the limit is {cap} bytes"),
                ));
            }
            // Double (from a guess based on the compressed size), but never past the bound.
            let grow_to = filled
                .saturating_mul(2)
                .max(raw.len().saturating_mul(4))
                .max(16 * 1024)
                .min(bound);
            out.reserve_exact(grow_to - filled);
            out.resize(grow_to, 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(IngestError::bad_request(
                    code::INVALID_GZIP,
                    format!("the body is not valid gzip: {e}"),
                ));
            }
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// One accepted record, ready to append to a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRecord {
    /// The record's JSON object, on one line (see the module docs). `bytes::Bytes::from(data)` takes
    /// it without copying.
    pub data: Vec<u8>,
    /// The Kinesis partition key: 1 to 256 characters.
    pub partition_key: String,
}

/// Where each record's partition key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PartitionKeySpec {
    /// 32 random lowercase hex characters per record: records spread evenly over shards.
    #[default]
    Random,
    /// The value at a JSON pointer in each record: a string (1 to 256 characters) or a number (its JSON
    /// text as sent, e.g. `1e3` stays `1e3`). Records with the same key stay in order on one shard.
    Pointer(JsonPointer),
}

impl PartitionKeySpec {
    /// Parses `random` or an RFC 6901 JSON pointer such as `/user_id` or `/user/id` (`~1` is `/`,
    /// `~0` is `~`, and a token such as `0` also indexes arrays).
    pub fn parse(s: &str) -> Result<PartitionKeySpec, String> {
        if s == "random" {
            return Ok(PartitionKeySpec::Random);
        }
        if !s.starts_with('/') {
            return Err(format!(
                "partition key {s:?} is neither `random` nor a JSON pointer starting with '/' (such as /user_id)"
            ));
        }
        JsonPointer::parse(s).map(PartitionKeySpec::Pointer)
    }
}

impl FromStr for PartitionKeySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<PartitionKeySpec, String> {
        PartitionKeySpec::parse(s)
    }
}

impl fmt::Display for PartitionKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionKeySpec::Random => f.write_str("random"),
            PartitionKeySpec::Pointer(pointer) => f.write_str(pointer.as_str()),
        }
    }
}

/// A parsed RFC 6901 JSON pointer with at least one reference token (it starts with `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    text: String,
    tokens: Vec<String>,
}

impl JsonPointer {
    /// Parses a pointer that starts with `/`; `~` must be followed by `0` or `1`.
    pub fn parse(s: &str) -> Result<JsonPointer, String> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("JSON pointer {s:?} does not start with '/'"));
        };
        let tokens = rest
            .split('/')
            .map(|token| {
                let mut out = String::with_capacity(token.len());
                let mut chars = token.chars();
                while let Some(c) = chars.next() {
                    if c != '~' {
                        out.push(c);
                        continue;
                    }
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("JSON pointer {s:?} has a '~' not followed by 0 or 1")),
                    }
                }
                Ok(out)
            })
            .collect::<Result<Vec<String>, String>>()?;
        Ok(JsonPointer {
            text: s.to_owned(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The reference tokens, unescaped (`~1` → `/`, `~0` → `~`).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits a decoded body into records, validating each: UTF-8, nesting depth, JSON, object, size and
/// partition key, in that order, record by record; the first failure is the answer and no record is
/// returned. The body is also checked against [`IngestLimits::max_body_bytes`], and a UTF-8 byte order
/// mark at its start is skipped.
///
/// With [`PartitionKeySpec::Random`] no JSON value is built: a record is only validated, and its data
/// copied. With a pointer, the record is walked to the pointed value without building a tree.
pub fn parse_records(
    format: BodyFormat,
    body: &[u8],
    limits: &IngestLimits,
    key: &PartitionKeySpec,
) -> Result<Vec<IngestRecord>, IngestError> {
    if body.len() > limits.max_body_bytes {
        return Err(body_too_large(body.len(), limits.max_body_bytes));
    }
    let start = if body.starts_with(UTF8_BOM) { UTF8_BOM.len() } else { 0 };
    let mut batch = Batch {
        body,
        limits,
        key,
        records: Vec::new(),
    };
    match format {
        BodyFormat::Json => batch.json(start)?,
        BodyFormat::Ndjson => batch.ndjson(start)?,
    }
    if batch.records.is_empty() {
        return Err(IngestError::bad_request(code::EMPTY, "the body has no records"));
    }
    Ok(batch.records)
}

/// The records parsed so far from one body.
struct Batch<'a> {
    body: &'a [u8],
    limits: &'a IngestLimits,
    key: &'a PartitionKeySpec,
    records: Vec<IngestRecord>,
}

impl Batch<'_> {
    /// `application/json`: an object, or an array of objects.
    fn json(&mut self, start: usize) -> Result<(), IngestError> {
        let body = self.body;
        let pos = skip_whitespace(body, start);
        let end = trim_end(body, pos, body.len());
        match body.get(pos) {
            None => Ok(()),
            Some(b'[') => self.json_array(pos + 1),
            Some(b'{') => {
                let scan = self.scan(pos, end, false)?;
                self.push(pos..end, scan.line_break.is_some_and(|at| at < end))
            }
            Some(_) => {
                // A scalar: say what it is if it is JSON at all.
                let text = std::str::from_utf8(&body[pos..end])
                    .map_err(|e| invalid_utf8(body, pos + e.valid_up_to(), None))?;
                serde_json::from_str::<IgnoredAny>(text).map_err(|e| invalid_json(body, pos, None, &e))?;
                Err(IngestError::bad_request(
                    code::NOT_AN_OBJECT,
                    format!(
                        "the body is {}; send a JSON object or an array of objects",
                        json_type(body[pos])
                    ),
                ))
            }
        }
    }

    /// The elements of a top-level array whose `[` ends just before `pos`.
    fn json_array(&mut self, mut pos: usize) -> Result<(), IngestError> {
        let body = self.body;
        pos = skip_whitespace(body, pos);
        if body.get(pos) == Some(&b']') {
            return self.after_array(pos + 1);
        }
        loop {
            let index = self.records.len();
            if pos == body.len() {
                return Err(syntax(body, pos, None, "the body ends before its JSON array is closed"));
            }
            if index == self.limits.max_records {
                return Err(too_many_records(self.limits.max_records));
            }
            let scan = self.scan(pos, body.len(), true)?;
            let end = trim_end(body, pos, scan.end);
            if end == pos {
                return Err(syntax(body, pos, Some(index), "expected a record"));
            }
            self.push(pos..end, scan.line_break.is_some_and(|at| at < end))?;
            match body.get(scan.end) {
                Some(b',') => {
                    pos = skip_whitespace(body, scan.end + 1);
                    if body.get(pos) == Some(&b']') {
                        return Err(syntax(body, pos, None, "trailing comma before `]`"));
                    }
                }
                Some(b']') => return self.after_array(scan.end + 1),
                Some(_) => return Err(syntax(body, scan.end, None, "unexpected `}` in the JSON array")),
                None => {
                    return Err(syntax(
                        body,
                        body.len(),
                        None,
                        "the body ends before its JSON array is closed",
                    ));
                }
            }
        }
    }

    /// Only whitespace may follow the top-level array.
    fn after_array(&self, pos: usize) -> Result<(), IngestError> {
        let rest = skip_whitespace(self.body, pos);
        if rest < self.body.len() {
            return Err(syntax(self.body, rest, None, "unexpected text after the JSON array"));
        }
        Ok(())
    }

    /// `application/x-ndjson`: one record per line that is not blank.
    fn ndjson(&mut self, start: usize) -> Result<(), IngestError> {
        let body = self.body;
        let mut line_start = start;
        while line_start <= body.len() {
            let line_end = memchr::memchr(b'\n', &body[line_start..]).map_or(body.len(), |i| line_start + i);
            let first = skip_whitespace(&body[..line_end], line_start);
            let end = trim_end(body, first, line_end);
            if first < end {
                if self.records.len() == self.limits.max_records {
                    return Err(too_many_records(self.limits.max_records));
                }
                let scan = self.scan(first, end, false)?;
                self.push(first..end, scan.line_break.is_some())?;
            }
            line_start = line_end + 1;
        }
        Ok(())
    }

    /// Scans the next record (index `self.records.len()`) for its extent and depth.
    fn scan(&self, start: usize, end: usize, in_array: bool) -> Result<Scan, IngestError> {
        let index = self.records.len();
        scan_value(&self.body[..end], start, self.limits.max_depth, in_array).map_err(|e| match e {
            ScanError::TooDeep { at } => {
                let (line, column) = position(self.body, at);
                IngestError::bad_request(
                    code::TOO_DEEP,
                    format!(
                        "record {index} nests arrays and objects deeper than {} levels (line {line}, column {column})",
                        self.limits.max_depth
                    ),
                )
                .at(index)
            }
            ScanError::Truncated => syntax(
                self.body,
                end,
                Some(index),
                "the body ends inside this record (an unclosed string, array or object)",
            ),
        })
    }

    /// Validates the record at `range` (trimmed) and appends it.
    fn push(&mut self, range: Range<usize>, line_break: bool) -> Result<(), IngestError> {
        let index = self.records.len();
        let body = self.body;
        let bytes = &body[range.clone()];
        let text =
            std::str::from_utf8(bytes).map_err(|e| invalid_utf8(body, range.start + e.valid_up_to(), Some(index)))?;
        let first = bytes.first().copied().unwrap_or_default();
        if first != b'{' {
            serde_json::from_str::<IgnoredAny>(text).map_err(|e| invalid_json(body, range.start, Some(index), &e))?;
            return Err(IngestError::bad_request(
                code::NOT_AN_OBJECT,
                format!("record {index} is {}; records must be JSON objects", json_type(first)),
            )
            .at(index));
        }
        // Validating the JSON and finding the key is one pass over the record.
        let key = match self.key {
            PartitionKeySpec::Random => {
                serde_json::from_str::<IgnoredAny>(text)
                    .map_err(|e| invalid_json(body, range.start, Some(index), &e))?;
                Ok(random_key())
            }
            PartitionKeySpec::Pointer(pointer) => {
                let found = lookup(text, pointer).map_err(|e| invalid_json(body, range.start, Some(index), &e))?;
                key_from(found, pointer, index)
            }
        };
        let data = if line_break {
            crate::json::compact(bytes).into_owned()
        } else {
            bytes.to_vec()
        };
        if data.len() > self.limits.max_record_bytes {
            return Err(IngestError::too_large(
                code::RECORD_TOO_LARGE,
                format!(
                    "record {index} is {} bytes; the limit is {} bytes",
                    data.len(),
                    self.limits.max_record_bytes
                ),
            )
            .at(index));
        }
        self.records.push(IngestRecord {
            data,
            partition_key: key?,
        });
        Ok(())
    }
}

fn too_many_records(max: usize) -> IngestError {
    IngestError::too_large(
        code::TOO_MANY_RECORDS,
        format!("the request has more than {max} records; send at most {max} per request"),
    )
}

/// 32 random lowercase hex characters (128 bits from the thread-local generator). Written by hand:
/// `format!("{:032x}")` was 5 % of the CPU time of a 500-record NDJSON request.
fn random_key() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::random::<u128>();
    let key: String = (0..32)
        .rev()
        .map(|i| HEX[(bits >> (4 * i)) as usize & 0xf] as char)
        .collect();
    key
}

/// The partition key from the pointed value: a string's contents, or a number's JSON text.
fn key_from(found: Option<&RawValue>, pointer: &JsonPointer, index: usize) -> Result<String, IngestError> {
    let Some(raw) = found else {
        return Err(IngestError::bad_request(
            code::PARTITION_KEY_MISSING,
            format!("record {index} has no value at the partition key pointer {pointer}"),
        )
        .at(index));
    };
    let text = raw.get();
    let invalid = |what: String| {
        IngestError::bad_request(
            code::PARTITION_KEY_INVALID,
            format!("record {index}: the partition key at {pointer} {what}"),
        )
        .at(index)
    };
    let first = text.as_bytes().first().copied().unwrap_or_default();
    let key = match first {
        b'"' => serde_json::from_str::<String>(text).map_err(|e| invalid(format!("is not a valid string: {e}")))?,
        b'-' | b'0'..=b'9' => text.to_owned(),
        other => {
            return Err(invalid(format!(
                "is {}; it must be a string or a number",
                json_type(other)
            )));
        }
    };
    kinesis::validate_partition_key(&key).map_err(|e| invalid(format!("is not usable: {e}")))?;
    Ok(key)
}

/// Walks the record `text` to the value at `pointer`, validating the whole record on the way: the first
/// step reads all of it, each later step only the value the step before found.
fn lookup<'t>(text: &'t str, pointer: &JsonPointer) -> Result<Option<&'t RawValue>, serde_json::Error> {
    let mut current = text;
    let mut found = None;
    for (step, token) in pointer.tokens.iter().enumerate() {
        let mut de = serde_json::Deserializer::from_str(current);
        let next = match (current.as_bytes().first(), array_index(token)) {
            (Some(b'{'), _) => de::Deserializer::deserialize_map(&mut de, Member { key: token })?,
            (Some(b'['), Some(index)) => de::Deserializer::deserialize_seq(&mut de, Element { index })?,
            _ if step == 0 => {
                de::Deserializer::deserialize_ignored_any(&mut de, IgnoredAny)?;
                None
            }
            _ => None,
        };
        if step == 0 {
            de.end()?;
        }
        match next {
            Some(raw) => {
                current = raw.get();
                found = Some(raw);
            }
            None => return Ok(None),
        }
    }
    Ok(found)
}

/// RFC 6901 array index: `0`, or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let valid =
        token == "0" || (!token.starts_with('0') && !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()));
    if valid { token.parse().ok() } else { None }
}

/// Finds the last member named `key` in an object, skipping (and validating) the rest.
struct Member<'p> {
    key: &'p str,
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(matches) = map.next_key_seed(KeyIs(self.key))? {
            if matches {
                found = Some(map.next_value::<&RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Deserializes an object key to whether it equals the wanted one, without allocating.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Finds the element at `index` in an array, skipping (and validating) the rest.
struct Element {
    index: usize,
}

impl<'de> Visitor<'de> for Element {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        for _ in 0..self.index {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(None);
            }
        }
        let found = seq.next_element::<&RawValue>()?;
        if found.is_some() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
        }
        Ok(found)
    }
}

/// What [`scan_value`] found.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    /// Where the value's text ends: the end of the input, or in an array the `,` or closer after it.
    end: usize,
    /// Where the first `\n` or `\r` outside strings is (inside them, valid JSON has none); it may be
    /// in the whitespace after the value.
    line_break: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
enum ScanError {
    /// An array or object opens at `at` deeper than the limit.
    TooDeep { at: usize },
    /// In an array, the input ends inside a string or before the value's containers close.
    Truncated,
}

/// Scans the JSON text from `start` for its nesting depth and line breaks without parsing it: strings
/// (with their escapes) are skipped, `[` and `{` count a level, `]` and `}` close one. With `in_array`,
/// it stops at the first `,`, `]` or `}` outside strings and containers: where an array element ends.
/// Syntax is left to serde_json; this only has to be right about valid JSON and safe on anything.
fn scan_value(bytes: &[u8], start: usize, max_depth: usize, in_array: bool) -> Result<Scan, ScanError> {
    let mut depth = 0usize;
    let mut line_break = None;
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => match skip_string(bytes, i + 1) {
                Some(after) => {
                    i = after;
                    continue;
                }
                None if in_array => return Err(ScanError::Truncated),
                None => break,
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(ScanError::TooDeep { at: i });
                }
            }
            b']' | b'}' | b',' if depth == 0 && in_array => return Ok(Scan { end: i, line_break }),
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' | b'\r' => {
                line_break.get_or_insert(i);
            }
            _ => {}
        }
        i += 1;
    }
    if in_array {
        // The element may be complete, but its array is not; the caller names that unless a
        // container or string of the element itself is open.
        if depth > 0 {
            return Err(ScanError::Truncated);
        }
    }
    Ok(Scan {
        end: bytes.len(),
        line_break,
    })
}

/// The index just past the string whose opening quote is just before `i`, or `None` if it never ends.
fn skip_string(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let offset = memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        i += offset;
        if bytes[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// Valid JSON without the whitespace outside its strings.
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|&b| is_whitespace(b)) {
        i += 1;
    }
    i
}

/// `end` moved back over whitespace, not before `start`.
fn trim_end(bytes: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_whitespace(bytes[end - 1]) {
        end -= 1;
    }
    end
}

/// What a JSON value starting with `first` is, for messages.
fn json_type(first: u8) -> &'static str {
    match first {
        b'{' => "an object",
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

/// 1-based line and column (in bytes) of `offset` in `body`.
fn position(body: &[u8], offset: usize) -> (usize, usize) {
    let before = &body[..offset.min(body.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (line, before.len() - line_start + 1)
}

fn subject(index: Option<usize>) -> String {
    match index {
        Some(index) => format!("record {index}"),
        None => "the body".to_owned(),
    }
}

fn invalid_utf8(body: &[u8], offset: usize, index: Option<usize>) -> IngestError {
    let (line, column) = position(body, offset);
    let error = IngestError::bad_request(
        code::INVALID_UTF8,
        format!("{} is not valid UTF-8 (line {line}, column {column})", subject(index)),
    );
    match index {
        Some(index) => error.at(index),
        None => error,
    }
}

/// A JSON syntax error found by the splitter itself, at `offset` of the body.
fn syntax(body: &[u8], offset: usize, index: Option<usize>, what: &str) -> IngestError {
    let (line, column) = position(body, offset);
    let error = IngestError::bad_request(
        code::INVALID_JSON,
        format!(
            "{} is not valid JSON: {what} (line {line}, column {column})",
            subject(index)
        ),
    );
    match index {
        Some(index) => error.at(index),
        None => error,
    }
}

/// serde_json's error on the text starting at `start` of the body, with its position made body-relative.
fn invalid_json(body: &[u8], start: usize, index: Option<usize>, e: &serde_json::Error) -> IngestError {
    let full = e.to_string();
    let what = full
        .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
        .unwrap_or(&full);
    let message = if e.line() == 0 {
        format!("{} is not valid JSON: {what}", subject(index))
    } else {
        let (start_line, start_column) = position(body, start);
        let line = start_line + e.line() - 1;
        let column = if e.line() == 1 {
            start_column - 1 + e.column()
        } else {
            e.column()
        };
        format!(
            "{} is not valid JSON: {what} (line {line}, column {column})",
            subject(index)
        )
    };
    let error = IngestError::bad_request(code::INVALID_JSON, message);
    match index {
        Some(index) => error.at(index),
        None => error,
    }
}

/// Up to 100 characters of a header value, quoted, for messages.
fn excerpt(value: &str) -> String {
    let short: String = value.chars().take(100).collect();
    if short.len() < value.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_skips_brackets_and_escaped_quotes_inside_strings() {
        let text = br#"{"a":"[[[{\"]}\\","b":[1]}"#;
        assert_eq!(
            scan_value(text, 0, 2, false),
            Ok(Scan {
                end: text.len(),
                line_break: None
            })
        );
        assert_eq!(scan_value(text, 0, 1, false), Err(ScanError::TooDeep { at: 22 }));
    }

    #[test]
    fn scanner_stops_at_the_element_end_in_an_array() {
        let text = b"{\"a\":[1,2]}\n, {}]";
        assert_eq!(
            scan_value(text, 0, 8, true),
            Ok(Scan {
                end: 12,
                line_break: Some(11)
            })
        );
        assert_eq!(scan_value(b"{\"a\":[1", 0, 8, true), Err(ScanError::Truncated));
        assert_eq!(scan_value(b"\"abc", 0, 8, true), Err(ScanError::Truncated));
    }

    #[test]
    fn decompression_never_allocates_past_the_cap() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &[b' '; 100_000]).expect("writing to a Vec");
        let gz = encoder.finish().expect("writing to a Vec");
        let out = gunzip(&gz, 100_000).expect("at the cap");
        assert_eq!(out.len(), 100_000);
        assert!(out.capacity() <= 100_001, "capacity {}", out.capacity());
        assert_eq!(gunzip(&gz, 99_999).map_err(|e| e.code), Err(code::BODY_TOO_LARGE));
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        assert_eq!(position(b"ab\ncd", 0), (1, 1));
        assert_eq!(position(b"ab\ncd", 4), (2, 2));
    }

    #[test]
    fn array_indexes_follow_rfc_6901() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("12"), Some(12));
        for bad in ["", "01", "-", "-1", "1a", "+1"] {
            assert_eq!(array_index(bad), None, "{bad:?}");
        }
    }
}

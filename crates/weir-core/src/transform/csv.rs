//! `csv`: one RFC 4180 line per record, columns picked from the record by JSON pointers and checked
//! against a type.
//!
//! # The dialect
//! - Fields are separated by `,`; a line ends in `\n` (a record is exactly one line, plus the line
//!   breaks inside its quoted fields).
//! - A field is quoted (`"…"`, with `"` inside doubled) when it is empty or holds `,` `"` `\` CR or
//!   LF, or starts or ends with a space or tab. Otherwise it is written bare.
//! - A missing or `null` value of an optional column is an empty bare field: `a,,c`. An empty string
//!   is a quoted empty field: `a,"",c`. [`SNOWFLAKE_FILE_FORMAT`] reads the first as NULL and the
//!   second as `''`.
//! - The header ([`header_line`]) is written once per object, not per record.
//!
//! # Types
//! | type | accepts | writes |
//! |---|---|---|
//! | `string` | a JSON string | its text |
//! | `integer` | a JSON integer in i64's range (`1`, `-7`; not `1.0` or `1e3`) | the number as sent |
//! | `float` | any finite JSON number | the number as sent |
//! | `boolean` | `true` or `false` | `true` / `false` |
//! | `timestamp` | an RFC 3339 string (`2024-02-21T06:12:33.5+01:00`), or an integer of epoch **milliseconds** (the unit of Kinesis's arrival times and of `add.arrival_timestamp`) | `2024-02-21T06:12:33.500000000+01:00`: nanoseconds, the offset as sent (`+00:00` for epoch numbers), years 0001–9999 |
//! | `json` | any value | the value as compact JSON (key order and number spelling kept) |
//!
//! Anything else (a number for a `string` column, a string for an `integer` one) fails the record with
//! `Transform.TypeMismatch`; a required column with no value fails it with `Transform.MissingField`.
//! Both messages name the column and its pointer. A value is never converted between types: a record
//! that does not match its schema goes to the error output, where it can be seen and replayed.

use super::contract::{InputRecord, OutputRecord, ProcessingError, Transform, code};
use super::doc::{self, Members, Pointer, Value};
use super::fields::{Fields, FieldsSpec};
use super::spec::SpecError;
use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;

/// The Snowflake `CREATE FILE FORMAT` options that read weir's CSV back exactly: NULL only for an empty
/// bare field, `''` for `""`, quoted line breaks kept, no trimming, no escapes (a backslash is always
/// quoted, and quoted text has none), the header skipped, timestamps in weir's one format.
pub const SNOWFLAKE_FILE_FORMAT: &str = "TYPE = CSV \
COMPRESSION = AUTO \
FIELD_DELIMITER = ',' \
RECORD_DELIMITER = '\\n' \
MULTI_LINE = TRUE \
SKIP_HEADER = 1 \
PARSE_HEADER = FALSE \
SKIP_BLANK_LINES = FALSE \
FIELD_OPTIONALLY_ENCLOSED_BY = '\"' \
ESCAPE = NONE \
ESCAPE_UNENCLOSED_FIELD = NONE \
EMPTY_FIELD_AS_NULL = TRUE \
NULL_IF = () \
TRIM_SPACE = FALSE \
ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE \
REPLACE_INVALID_CHARACTERS = FALSE \
SKIP_BYTE_ORDER_MARK = TRUE \
ENCODING = 'UTF8' \
TIMESTAMP_FORMAT = 'YYYY-MM-DD\"T\"HH24:MI:SS.FF9TZH:TZM'";

/// A column as configured: `{ name = "user_id", pointer = "/user/id", type = "integer", required = false }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvColumn {
    /// The header's name for the column (unique, not empty).
    pub name: String,
    /// Where the value is in the record, after field operations. Absent: the top-level member named
    /// like the column (`/name`, with `~` and `/` escaped). `""` is the whole record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Whether a record without a value here (missing or `null`) fails. Default true.
    #[serde(default = "required_default")]
    pub required: bool,
}

fn required_default() -> bool {
    true
}

/// A column's type; see the [module docs](self) for what each accepts and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// A JSON string.
    String,
    /// A JSON integer within i64.
    Integer,
    /// Any finite JSON number.
    Float,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 string or epoch milliseconds.
    Timestamp,
    /// Any JSON value, written as compact JSON.
    Json,
}

impl ColumnType {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Json => "json",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    pointer: Pointer,
    kind: ColumnType,
    required: bool,
}

/// The `csv` transform.
#[derive(Debug, Clone)]
pub struct CsvTransform {
    columns: Vec<Column>,
    fields: Fields,
    /// For the scanned path ([`CsvTransform::encode_scanned`]): the distinct top-level keys the columns'
    /// pointers start with, and each column's index into them. Empty when that path does not apply
    /// (field operations, or a column of the whole record).
    top_keys: Vec<String>,
    slots: Vec<usize>,
}

/// The most top-level members [`CsvTransform::encode_scanned`] keeps track of; a record with more takes
/// the general path.
const SCANNED_MEMBERS: usize = 32;

impl CsvTransform {
    /// The [`Transform::id`] of every `csv` transform.
    pub const ID: &'static str = "weir:csv";

    /// Validates the columns (at least one; names unique and not empty; pointers valid; a lone column
    /// required) and the field operations. Errors name the field, e.g. `columns[2].pointer`.
    pub fn new(columns: &[CsvColumn], fields: &FieldsSpec) -> Result<CsvTransform, SpecError> {
        if columns.is_empty() {
            return Err(SpecError::new("columns", "a csv transform needs at least one column"));
        }
        let mut compiled: Vec<Column> = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            if column.name.is_empty() {
                return Err(SpecError::new(
                    format!("columns[{i}].name"),
                    "the name must not be empty",
                ));
            }
            if compiled.iter().any(|c| c.name == column.name) {
                return Err(SpecError::new(
                    format!("columns[{i}].name"),
                    format!("{:?} names two columns", column.name),
                ));
            }
            let pointer = match &column.pointer {
                Some(text) => Pointer::parse(text).map_err(|e| SpecError::new(format!("columns[{i}].pointer"), e))?,
                None => Pointer::member(&column.name),
            };
            compiled.push(Column {
                name: column.name.clone(),
                pointer,
                kind: column.kind,
                required: column.required,
            });
        }
        if let [only] = compiled.as_slice()
            && !only.required
        {
            return Err(SpecError::new(
                "columns[0].required",
                "a csv transform with one column needs it required: a null would be a blank line, which \
                 CSV readers skip and Snowflake rejects",
            ));
        }
        let fields = Fields::new(fields, "fields")?;
        let mut top_keys: Vec<String> = Vec::new();
        let mut slots = Vec::new();
        if fields.is_identity() && compiled.iter().all(|c| !c.pointer.tokens().is_empty()) {
            for column in &compiled {
                let key = &column.pointer.tokens()[0].key;
                let slot = match top_keys.iter().position(|k| k == key) {
                    Some(slot) => slot,
                    None => {
                        top_keys.push(key.clone());
                        top_keys.len() - 1
                    }
                };
                slots.push(slot);
            }
        }
        if top_keys.len() > SCANNED_MEMBERS {
            top_keys.clear();
            slots.clear();
        }
        Ok(CsvTransform {
            columns: compiled,
            fields,
            top_keys,
            slots,
        })
    }

    /// The header line for this transform's objects.
    pub fn header(&self) -> Vec<u8> {
        header_of(self.columns.iter().map(|c| c.name.as_str()))
    }

    fn encode(&self, record: &InputRecord<'_>) -> Result<Vec<u8>, ProcessingError> {
        if !self.top_keys.is_empty()
            && let Some(outcome) = self.encode_scanned(&record.data)
        {
            return outcome;
        }
        let members = doc::parse_record(&record.data)?;
        let members = if self.fields.is_identity() {
            members
        } else {
            self.fields.apply(record, members)?
        };
        let mut out = Vec::with_capacity(record.data.len() + self.columns.len());
        let mut hint = 0;
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let value = lookup(&members, &column.pointer, &mut hint)?;
            write_cell(&mut out, column, value.as_ref())?;
        }
        out.push(b'\n');
        Ok(out)
    }
}

impl CsvTransform {
    /// [`CsvTransform::encode`] for a plain record without field operations, the same bytes and errors:
    /// one pass over the record's members with [`doc::scan_object`], keeping only the values the columns
    /// start from, instead of a vector of every member. `None` (the record is not UTF-8, not plain for
    /// the scanner, has more than [`SCANNED_MEMBERS`] members or a repeated key) leaves the record to the
    /// general path, which also words its error.
    fn encode_scanned(&self, data: &[u8]) -> Option<Result<Vec<u8>, ProcessingError>> {
        let text = std::str::from_utf8(data).ok()?;
        let mut keys = [""; SCANNED_MEMBERS];
        let mut count = 0;
        let mut values = [None::<&str>; SCANNED_MEMBERS];
        doc::scan_object(text, |key, value| {
            if count == SCANNED_MEMBERS || keys[..count].iter().any(|k| same(k, key)) {
                return false;
            }
            keys[count] = key;
            count += 1;
            if let Some(slot) = self.top_keys.iter().position(|k| same(k, key)) {
                values[slot] = Some(value);
            }
            true
        })?;
        let mut out = Vec::with_capacity(data.len() + self.columns.len());
        for (i, (column, &slot)) in self.columns.iter().zip(&self.slots).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let rest = &column.pointer.tokens()[1..];
            let value = match values[slot] {
                None => None,
                Some(text) if rest.is_empty() => Some(Value::Raw(text)),
                Some(text) => match nested_member(text, rest) {
                    Some(found) => found.map(Value::Raw),
                    None => match doc::descend(&Value::Raw(text), rest) {
                        Ok(value) => value,
                        Err(e) => return Some(Err(e)),
                    },
                },
            };
            if let Err(e) = write_cell(&mut out, column, value.as_ref()) {
                return Some(Err(e));
            }
        }
        out.push(b'\n');
        Some(Ok(out))
    }
}

/// Whether two keys are equal, compared inline: keys are a few bytes, shorter than a call to `memcmp`.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// The value at the one-token pointer `rest` in the object `text`, read with [`doc::scan_object`]:
/// `Some(None)` when the object has no such member. `None` (not an object, a longer pointer, the key
/// twice, or an object the scanner leaves to serde_json) leaves it to [`doc::descend`], which also
/// words the errors.
fn nested_member<'a>(text: &'a str, rest: &[doc::Token]) -> Option<Option<&'a str>> {
    let [token] = rest else {
        return None;
    };
    if !text.starts_with('{') {
        return None;
    }
    let mut found = None;
    doc::scan_object(text, |key, value| {
        if !same(key, &token.key) {
            return true;
        }
        let first = found.is_none();
        found = Some(value);
        first
    })?;
    Some(found)
}

/// The value at `pointer` among a record's top-level members.
fn lookup<'m>(
    members: &Members<'m>,
    pointer: &Pointer,
    hint: &mut usize,
) -> Result<Option<Value<'m>>, ProcessingError> {
    let Some((first, rest)) = pointer.tokens().split_first() else {
        return Ok(Some(Value::Object(members.clone())));
    };
    match doc::find(members, &first.key, hint) {
        None => Ok(None),
        Some(value) if rest.is_empty() => Ok(Some(value.clone())),
        Some(value) => doc::descend(value, rest),
    }
}

fn write_cell(out: &mut Vec<u8>, column: &Column, value: Option<&Value<'_>>) -> Result<(), ProcessingError> {
    let value = match value {
        Some(value) if !value.is_null() => value,
        found => {
            if column.required {
                let what = if found.is_some() { "is null" } else { "is missing" };
                return Err(ProcessingError::new(
                    code::MISSING_FIELD,
                    format!(
                        "column {:?} ({}) is required but the value at {} {what}",
                        column.name,
                        column.kind,
                        pointer_name(&column.pointer)
                    ),
                ));
            }
            return Ok(());
        }
    };
    let mismatch = |detail: String| {
        ProcessingError::new(
            code::TYPE_MISMATCH,
            format!(
                "column {:?} ({}) at {}: {detail}",
                column.name,
                column.kind,
                pointer_name(&column.pointer)
            ),
        )
    };
    let found = || format!("expected {}, found {}", expected(column.kind), value.kind());
    match (column.kind, value) {
        (ColumnType::String, Value::Str(s)) => write_field(out, s),
        (ColumnType::String, Value::Raw(raw)) if value.first_byte() == b'"' => {
            write_field(out, &doc::unescape(raw)?);
        }
        (ColumnType::Integer | ColumnType::Float | ColumnType::Timestamp | ColumnType::Json, Value::Int(n)) => {
            if column.kind == ColumnType::Timestamp {
                write_epoch_ms(out, *n).map_err(mismatch)?;
            } else {
                out.extend_from_slice(n.to_string().as_bytes());
            }
        }
        (ColumnType::Integer, Value::Raw(raw)) if is_number(value) => {
            let text = *raw;
            integer(text).map_err(mismatch)?;
            out.extend_from_slice(text.as_bytes());
        }
        (ColumnType::Float, Value::Raw(raw)) if is_number(value) => {
            let text = *raw;
            // Without an exponent, fewer than 309 characters are fewer than 309 integer digits, below
            // f64's maximum (1.8e308): finite without parsing the number.
            let plainly_finite = text.len() < 309 && !text.bytes().any(|b| matches!(b, b'e' | b'E'));
            if !plainly_finite && !text.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(mismatch(format!("{text} is out of range for a float (f64)")));
            }
            out.extend_from_slice(text.as_bytes());
        }
        (ColumnType::Boolean, Value::Raw(raw)) if matches!(*raw, "true" | "false") => {
            out.extend_from_slice((*raw).as_bytes());
        }
        (ColumnType::Timestamp, Value::Raw(raw)) if value.first_byte() == b'"' => {
            let text = doc::unescape(raw)?;
            let time = DateTime::parse_from_rfc3339(&text)
                .map_err(|e| mismatch(format!("{:?} is not an RFC 3339 timestamp ({e})", text.as_ref())))?;
            write_timestamp(out, &time).map_err(mismatch)?;
        }
        (ColumnType::Timestamp, Value::Raw(raw)) if is_number(value) => {
            let ms = integer(raw).map_err(|e| mismatch(format!("{e}; a number must be integer epoch milliseconds")))?;
            write_epoch_ms(out, ms).map_err(mismatch)?;
        }
        (ColumnType::Json, value) => {
            let mut json = Vec::new();
            doc::write_value(&mut json, value);
            // The compact text of a valid value is valid UTF-8.
            write_field(out, std::str::from_utf8(&json).expect("JSON text is UTF-8"));
        }
        _ => return Err(mismatch(found())),
    }
    Ok(())
}

fn is_number(value: &Value<'_>) -> bool {
    matches!(value.first_byte(), b'-' | b'0'..=b'9')
}

fn expected(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::String => "a string",
        ColumnType::Integer => "an integer",
        ColumnType::Float => "a number",
        ColumnType::Boolean => "true or false",
        ColumnType::Timestamp => "an RFC 3339 string or epoch milliseconds",
        ColumnType::Json => "any JSON value",
    }
}

fn pointer_name(pointer: &Pointer) -> &str {
    if pointer.as_str().is_empty() {
        "\"\" (the whole record)"
    } else {
        pointer.as_str()
    }
}

/// A JSON number's text as an i64, refusing fractions and exponents.
fn integer(text: &str) -> Result<i64, String> {
    if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return Err(format!("expected an integer, found {text}"));
    }
    text.parse::<i64>()
        .map_err(|_| format!("{text} is out of range for an integer (i64)"))
}

fn write_epoch_ms(out: &mut Vec<u8>, ms: i64) -> Result<(), String> {
    let time = DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| format!("{ms} ms since the epoch is out of range"))?
        .fixed_offset();
    write_timestamp(out, &time)
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn±HH:MM`, Snowflake's `YYYY-MM-DD"T"HH24:MI:SS.FF9TZH:TZM`.
fn write_timestamp(out: &mut Vec<u8>, time: &DateTime<FixedOffset>) -> Result<(), String> {
    if !(1..=9999).contains(&time.year()) {
        return Err(format!("{} is outside the years 0001 to 9999", time.to_rfc3339()));
    }
    let offset = time.offset().local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs() / 60;
    // A leap second is second 59 with 1_000_000_000 or more nanoseconds in chrono; written as :60.
    let (second, nanos) = match time.nanosecond() {
        n if n >= 1_000_000_000 => (time.second() + 1, n - 1_000_000_000),
        n => (time.second(), n),
    };
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}{sign}{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        second,
        nanos,
        offset / 60,
        offset % 60
    )
    .expect("writing to a Vec cannot fail");
    Ok(())
}

/// Whether a field must be quoted to read back as itself.
fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.starts_with([' ', '\t'])
        || s.ends_with([' ', '\t'])
        || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\\' | b'\r' | b'\n'))
}

/// Writes one field, quoted when `needs_quotes` says so.
pub fn write_field(out: &mut Vec<u8>, s: &str) {
    if !needs_quotes(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for (i, part) in s.split('"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.push(b'"');
}

/// The header line naming `columns`, in the same dialect, ending in `\n`.
pub fn header_line(columns: &[CsvColumn]) -> Vec<u8> {
    header_of(columns.iter().map(|c| c.name.as_str()))
}

fn header_of<'c>(names: impl Iterator<Item = &'c str>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_field(&mut out, name);
    }
    out.push(b'\n');
    out
}

impl Transform for CsvTransform {
    fn id(&self) -> &str {
        CsvTransform::ID
    }

    fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError> {
        Ok(batch
            .iter()
            .map(|record| OutputRecord::from_outcome(record, self.encode(record)))
            .collect())
    }
}

/// Text that is not CSV in weir's dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CSV at byte {offset}: {message}")]
pub struct CsvDecodeError {
    /// Where the problem is, in bytes from the start of the text.
    pub offset: usize,
    /// What it is.
    pub message: &'static str,
}

/// One decoded field: `None` for an empty bare field (NULL), the text otherwise (`""` is `Some("")`).
pub type CsvField = Option<String>;

/// Reads one record written by the `csv` transform (its trailing `\n` optional). The reader is strict:
/// a quote inside a bare field, text after a closing quote, an unclosed quote, a CR outside quotes or
/// a second line are errors.
pub fn decode_line(line: &str) -> Result<Vec<CsvField>, CsvDecodeError> {
    let (fields, end) = decode_record(line, 0)?;
    if end < line.len() {
        return Err(CsvDecodeError {
            offset: end,
            message: "more than one line",
        });
    }
    Ok(fields)
}

/// Reads every record of `text` (an object's body, header included if it has one).
pub fn decode_records(text: &str) -> Result<Vec<Vec<CsvField>>, CsvDecodeError> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let (fields, end) = decode_record(text, pos)?;
        records.push(fields);
        pos = end;
    }
    Ok(records)
}

/// Decodes the record starting at `pos`; returns its fields and the position after its `\n`.
fn decode_record(text: &str, mut pos: usize) -> Result<(Vec<CsvField>, usize), CsvDecodeError> {
    let bytes = text.as_bytes();
    let error = |offset, message| Err(CsvDecodeError { offset, message });
    let mut fields = Vec::new();
    loop {
        if bytes.get(pos) == Some(&b'"') {
            let mut field = String::new();
            pos += 1;
            loop {
                let Some(close) = bytes[pos..].iter().position(|&b| b == b'"') else {
                    return error(pos, "a quoted field is never closed");
                };
                field.push_str(&text[pos..pos + close]);
                pos += close + 1;
                if bytes.get(pos) == Some(&b'"') {
                    field.push('"');
                    pos += 1;
                } else {
                    break;
                }
            }
            fields.push(Some(field));
        } else {
            let end = bytes[pos..]
                .iter()
                .position(|&b| b == b',' || b == b'\n')
                .map_or(bytes.len(), |i| pos + i);
            let field = &text[pos..end];
            if let Some(i) = field.bytes().position(|b| b == b'"' || b == b'\r') {
                return error(pos + i, "a quote or CR in a field that is not quoted");
            }
            fields.push((!field.is_empty()).then(|| field.to_owned()));
            pos = end;
        }
        match bytes.get(pos) {
            None => return Ok((fields, pos)),
            Some(b',') => pos += 1,
            Some(b'\n') => return Ok((fields, pos + 1)),
            Some(_) => return error(pos, "text after a closing quote"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let cases = [
            ("plain", "plain"),
            ("", "\"\""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("cr\r", "\"cr\r\""),
            (" lead", "\" lead\""),
            ("trail\t", "\"trail\t\""),
            ("in side", "in side"),
            ("back\\slash", "\"back\\slash\""),
            ("é☃", "é☃"),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            write_field(&mut out, value);
            assert_eq!(String::from_utf8(out).expect("UTF-8"), expected, "{value:?}");
        }
    }

    #[test]
    fn timestamps_keep_their_offset_and_epoch_numbers_are_utc() {
        let mut out = Vec::new();
        let time = DateTime::parse_from_rfc3339("2024-02-21T06:12:33.5-03:30").expect("RFC 3339");
        write_timestamp(&mut out, &time).expect("in range");
        out.push(b' ');
        write_epoch_ms(&mut out, 1_708_495_953_500).expect("in range");
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "2024-02-21T06:12:33.500000000-03:30 2024-02-21T06:12:33.500000000+00:00"
        );
        assert!(write_epoch_ms(&mut Vec::new(), i64::MAX).is_err());
        assert!(
            write_epoch_ms(&mut Vec::new(), 300_000_000_000_000).is_err(),
            "year 11000"
        );
    }

    #[test]
    fn decoder_rejects_what_the_writer_never_writes() {
        for bad in ["a\"b", "\"open", "\"x\"y", "a\r\n", "a\nb"] {
            assert!(decode_line(bad).is_err(), "{bad:?}");
        }
        assert_eq!(decode_line("").expect("one empty field"), vec![None]);
        assert_eq!(
            decode_line("1,,\"\",\"a\"\"b\"\n").expect("valid"),
            vec![Some("1".into()), None, Some(String::new()), Some("a\"b".into())]
        );
    }
}

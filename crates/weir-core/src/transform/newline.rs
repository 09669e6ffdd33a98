//! `newline`: the seed's transform. Each record's JSON followed by `\n`, so an object holds one record
//! per line.
//!
//! Unlike the seed's Python, which appended a newline to anything, a record that is not JSON fails
//! (`Transform.InvalidJson`) and goes to the error output; it is never dropped. Any JSON value passes.
//! The data is copied as sent unless it holds a line break (`\n` or `\r`, as pretty-printed JSON does),
//! which would split it across lines: then it is compacted, dropping the whitespace outside strings.
//! With field operations the record must be an object, and it is written as compact JSON.

use super::contract::{InputRecord, OutputRecord, ProcessingError, Transform, code};
use super::doc;
use super::fields::{Fields, FieldsSpec};
use super::spec::SpecError;
use serde::de::IgnoredAny;

/// The `newline` transform.
#[derive(Debug, Clone)]
pub struct NewlineTransform {
    fields: Fields,
}

impl NewlineTransform {
    /// The [`Transform::id`] of every `newline` transform.
    pub const ID: &'static str = "weir:newline";

    /// The seed's transform: records as sent, one per line.
    pub fn new() -> NewlineTransform {
        NewlineTransform {
            fields: Fields::default(),
        }
    }

    /// With field operations before encoding (errors name fields under `fields`).
    pub fn with_fields(fields: &FieldsSpec) -> Result<NewlineTransform, SpecError> {
        Ok(NewlineTransform {
            fields: Fields::new(fields, "fields")?,
        })
    }

    fn encode(&self, record: &InputRecord<'_>) -> Result<Vec<u8>, ProcessingError> {
        let data: &[u8] = &record.data;
        if self.fields.is_identity() {
            // serde_json skips over strings it ignores without checking their UTF-8, so check first.
            let text = std::str::from_utf8(data).map_err(|e| {
                ProcessingError::new(
                    code::INVALID_JSON,
                    format!("the record is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
                )
            })?;
            serde_json::from_str::<IgnoredAny>(text)
                .map_err(|e| ProcessingError::new(code::INVALID_JSON, format!("the record is not valid JSON: {e}")))?;
            let mut out = Vec::with_capacity(data.len() + 1);
            if data.iter().any(|&b| b == b'\n' || b == b'\r') {
                crate::json::write_compact(&mut out, text.as_bytes());
            } else {
                out.extend_from_slice(data);
            }
            out.push(b'\n');
            return Ok(out);
        }
        let members = self.fields.apply(record, doc::parse_record(data)?)?;
        let mut out = Vec::with_capacity(data.len() + 64);
        doc::write_object(&mut out, &members);
        out.push(b'\n');
        Ok(out)
    }
}

impl Default for NewlineTransform {
    fn default() -> NewlineTransform {
        NewlineTransform::new()
    }
}

impl Transform for NewlineTransform {
    fn id(&self) -> &str {
        NewlineTransform::ID
    }

    fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError> {
        Ok(batch
            .iter()
            .map(|record| OutputRecord::from_outcome(record, self.encode(record)))
            .collect())
    }
}

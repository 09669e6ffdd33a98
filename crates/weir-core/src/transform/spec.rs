//! [`TransformSpec`]: a transform as configured, e.g. in a weir.toml delivery.
//!
//! ```toml
//! transform = "newline"                  # the seed's transform: each record's JSON on its own line
//!
//! transform = { kind = "flatten", separator = "." }
//!
//! [deliveries.transform]                 # the same table, written long-hand
//! kind = "csv"
//! columns = [
//!   { name = "user_id", pointer = "/user/id", type = "integer" },
//!   { name = "event", type = "string" },                       # pointer defaults to "/event"
//!   { name = "amount", type = "float", required = false },     # missing or null: an empty field
//!   { name = "arrived", pointer = "/_arrival", type = "timestamp" },
//! ]
//! fields = { select = ["user", "event", "amount"], add = { arrival_timestamp = "_arrival" } }
//! ```
//!
//! Every table rejects unknown keys. [`TransformSpec::build`] validates the rest and names the field at
//! fault (`columns[2].pointer: …`), relative to the transform's table.

use super::contract::Transform;
use super::csv::{CsvColumn, CsvTransform};
use super::fields::FieldsSpec;
use super::flatten::{self, FlattenTransform};
use super::newline::NewlineTransform;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use thiserror::Error;

/// A configuration error, naming the field relative to the transform's table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The field at fault, e.g. `columns[2].pointer` or `fields.rename.user_id`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A built-in transform and its settings. Deserializes from a kind's name alone (`"newline"`,
/// `"flatten"`) or from a table with `kind` and the kind's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransformSpec {
    /// Each record's JSON followed by `\n` (see [`super::newline`]).
    Newline(NewlineSpec),
    /// Nested objects flattened into top-level keys, JSON followed by `\n` (see [`super::flatten`]).
    Flatten(FlattenSpec),
    /// One CSV line per record (see [`super::csv`]).
    Csv(CsvSpec),
}

/// Settings of `kind = "newline"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewlineSpec {
    /// Field operations before encoding; none by default, which copies records as sent.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fields: FieldsSpec,
}

/// Settings of `kind = "flatten"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenSpec {
    /// Joins the keys of a nested path; default `_`.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Field operations before flattening.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fields: FieldsSpec,
}

impl Default for FlattenSpec {
    fn default() -> FlattenSpec {
        FlattenSpec {
            separator: default_separator(),
            fields: FieldsSpec::default(),
        }
    }
}

fn default_separator() -> String {
    flatten::DEFAULT_SEPARATOR.to_owned()
}

/// Settings of `kind = "csv"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    /// The columns, in order.
    pub columns: Vec<CsvColumn>,
    /// Field operations before the columns are read; pointers see their result.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fields: FieldsSpec,
}

fn is_default(fields: &FieldsSpec) -> bool {
    *fields == FieldsSpec::default()
}

impl Default for TransformSpec {
    /// The seed's `newline`.
    fn default() -> TransformSpec {
        TransformSpec::Newline(NewlineSpec::default())
    }
}

impl TransformSpec {
    /// `newline`, `flatten` or `csv`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransformSpec::Newline(_) => "newline",
            TransformSpec::Flatten(_) => "flatten",
            TransformSpec::Csv(_) => "csv",
        }
    }

    /// Validates the settings and builds the transform.
    pub fn build(&self) -> Result<Box<dyn Transform>, SpecError> {
        Ok(match self {
            TransformSpec::Newline(spec) => Box::new(NewlineTransform::with_fields(&spec.fields)?),
            TransformSpec::Flatten(spec) => Box::new(FlattenTransform::new(&spec.separator, &spec.fields)?),
            TransformSpec::Csv(spec) => Box::new(CsvTransform::new(&spec.columns, &spec.fields)?),
        })
    }

    /// The header line each object starts with: the column names for `csv`, nothing otherwise.
    pub fn header(&self) -> Option<Vec<u8>> {
        match self {
            TransformSpec::Csv(spec) => Some(super::csv::header_line(&spec.columns)),
            _ => None,
        }
    }
}

/// The table form, `kind` naming the variant.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tagged {
    Newline(NewlineSpec),
    Flatten(FlattenSpec),
    Csv(CsvSpec),
}

impl<'de> Deserialize<'de> for TransformSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TransformSpec, D::Error> {
        struct SpecVisitor;

        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = TransformSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a transform: \"newline\", \"flatten\", or a table with `kind` and its settings")
            }

            fn visit_str<E: de::Error>(self, kind: &str) -> Result<TransformSpec, E> {
                match kind {
                    "newline" => Ok(TransformSpec::Newline(NewlineSpec::default())),
                    "flatten" => Ok(TransformSpec::Flatten(FlattenSpec::default())),
                    "csv" => Err(E::custom(
                        "a csv transform needs columns: write transform = { kind = \"csv\", columns = [...] }",
                    )),
                    other => Err(E::unknown_variant(other, &["newline", "flatten", "csv"])),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TransformSpec, A::Error> {
                let tagged = Tagged::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(match tagged {
                    Tagged::Newline(spec) => TransformSpec::Newline(spec),
                    Tagged::Flatten(spec) => TransformSpec::Flatten(spec),
                    Tagged::Csv(spec) => TransformSpec::Csv(spec),
                })
            }
        }

        deserializer.deserialize_any(SpecVisitor)
    }
}

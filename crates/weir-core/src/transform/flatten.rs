//! `flatten`: nested objects become top-level keys joined by a separator (default `_`), so
//! `{"a":{"b":{"c":1}},"d":2}` is written `{"a_b_c":1,"d":2}` followed by `\n`.
//!
//! - Arrays stay JSON values, whatever they hold (`{"a":[{"b":1}]}` stays `{"a":[{"b":1}]}`): their
//!   length varies per record, so numbered keys would give every record a different set of columns.
//! - An empty object stays a value (`{"a":{}}` stays `{"a":{}}`) rather than vanishing.
//! - Keys keep the record's order, depth first.
//! - Two paths that flatten to the same key (`{"a_b":1,"a":{"b":2}}`) fail the record with
//!   `Transform.KeyCollision` naming the key: one value would otherwise be lost without a trace.

use super::contract::{InputRecord, OutputRecord, ProcessingError, Transform, code};
use super::doc::{self, Members, Value};
use super::fields::{Fields, FieldsSpec};
use super::spec::SpecError;
use std::borrow::Cow;
use std::collections::HashSet;

/// The default separator between the keys of a flattened path.
pub const DEFAULT_SEPARATOR: &str = "_";

/// The `flatten` transform.
#[derive(Debug, Clone)]
pub struct FlattenTransform {
    separator: String,
    fields: Fields,
}

impl FlattenTransform {
    /// The [`Transform::id`] of every `flatten` transform.
    pub const ID: &'static str = "weir:flatten";

    /// Flattens with `separator` (not empty) after the field operations `fields`.
    pub fn new(separator: &str, fields: &FieldsSpec) -> Result<FlattenTransform, SpecError> {
        if separator.is_empty() {
            return Err(SpecError::new(
                "separator",
                "the separator must not be empty: keys would run together",
            ));
        }
        Ok(FlattenTransform {
            separator: separator.to_owned(),
            fields: Fields::new(fields, "fields")?,
        })
    }

    fn encode(&self, record: &InputRecord<'_>) -> Result<Vec<u8>, ProcessingError> {
        let members = self.fields.apply(record, doc::parse_record(&record.data)?)?;
        let mut flat: Members<'_> = Vec::with_capacity(members.len() * 2);
        self.flatten_into(None, members, &mut flat)?;
        check_collisions(&flat)?;
        let mut out = Vec::with_capacity(record.data.len() + 16);
        doc::write_object(&mut out, &flat);
        out.push(b'\n');
        Ok(out)
    }

    fn flatten_into<'m>(
        &self,
        prefix: Option<&str>,
        members: Members<'m>,
        out: &mut Members<'m>,
    ) -> Result<(), ProcessingError> {
        for (key, value) in members {
            let name = match prefix {
                None => key,
                Some(prefix) => Cow::Owned(format!("{prefix}{}{key}", self.separator)),
            };
            match value {
                Value::Object(children) if !children.is_empty() => self.flatten_into(Some(&name), children, out)?,
                Value::Raw(raw) if raw.starts_with('{') => {
                    let children = doc::raw_members(raw)?;
                    if children.is_empty() {
                        out.push((name, Value::Raw(raw)));
                    } else {
                        self.flatten_into(Some(&name), children, out)?;
                    }
                }
                value => out.push((name, value)),
            }
        }
        Ok(())
    }
}

fn check_collisions(flat: &Members<'_>) -> Result<(), ProcessingError> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(flat.len());
    for (key, _) in flat {
        if !seen.insert(key) {
            return Err(ProcessingError::new(
                code::KEY_COLLISION,
                format!("flattening gives the key {key:?} to two different values"),
            ));
        }
    }
    Ok(())
}

impl Transform for FlattenTransform {
    fn id(&self) -> &str {
        FlattenTransform::ID
    }

    fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError> {
        Ok(batch
            .iter()
            .map(|record| OutputRecord::from_outcome(record, self.encode(record)))
            .collect())
    }
}

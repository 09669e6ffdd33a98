//! Field operations applied before a built-in's encoding: `select`, then `rename`, then `add`.
//!
//! - `select` keeps only the listed fields, in the listed order. An entry is a top-level name, or a
//!   JSON pointer (starting with `/`) that keeps one nested member with its enclosing objects:
//!   `["/user/id", "/user/name"]` turns `{"user":{"id":1,"name":"a","x":0},"y":2}` into
//!   `{"user":{"id":1,"name":"a"}}`. A field the record lacks is left out, not an error (a CSV column
//!   marks what is required). Pointers step through objects only; to pick an array element, use a CSV
//!   column's pointer.
//! - `rename` maps a top-level name to a new one. Renames apply one at a time in name order, so a swap
//!   (`{ a = "b", b = "a" }`) collides.
//! - `add` appends the record's Kinesis metadata under names of your choice: `arrival_timestamp` (epoch
//!   milliseconds, a number), `shard_id`, `sequence_number`, `partition_key` (strings).
//!
//! A rename or an added field whose name the record already has fails the record with
//! `Transform.KeyCollision` rather than overwriting either value.

use super::contract::{InputRecord, ProcessingError, code};
use super::doc::{self, Members, Pointer, Value};
use super::spec::SpecError;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The field operations as configured, e.g. in weir.toml:
/// `fields = { select = ["user_id", "/event/type"], rename = { user_id = "uid" }, add = { shard_id = "_shard" } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldsSpec {
    /// Fields to keep, in output order: top-level names, or JSON pointers to nested members. Absent:
    /// keep every field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    /// Top-level renames, old name → new name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// Kinesis metadata to add, each under the given name.
    #[serde(skip_serializing_if = "AddSpec::is_empty")]
    pub add: AddSpec,
}

/// The metadata [`FieldsSpec::add`] can append, each under the name given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddSpec {
    /// The record's approximate arrival time, epoch milliseconds (a JSON number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival_timestamp: Option<String>,
    /// The shard the record was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// The record's sequence number (a string: it does not fit a JSON number exactly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// The producer's partition key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
}

impl AddSpec {
    /// Whether nothing is added.
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, Meta, &String)> {
        [
            ("arrival_timestamp", Meta::ArrivalTimestamp, &self.arrival_timestamp),
            ("shard_id", Meta::ShardId, &self.shard_id),
            ("sequence_number", Meta::SequenceNumber, &self.sequence_number),
            ("partition_key", Meta::PartitionKey, &self.partition_key),
        ]
        .into_iter()
        .filter_map(|(field, meta, name)| name.as_ref().map(|name| (field, meta, name)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    ArrivalTimestamp,
    ShardId,
    SequenceNumber,
    PartitionKey,
}

/// [`FieldsSpec`], validated and ready to apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    select: Option<Vec<Pointer>>,
    rename: Vec<(String, String)>,
    add: Vec<(String, Meta)>,
}

impl Fields {
    /// Validates `spec`; errors name the field under `at` (e.g. `fields`).
    pub(crate) fn new(spec: &FieldsSpec, at: &str) -> Result<Fields, SpecError> {
        let select = match &spec.select {
            None => None,
            Some(entries) => Some(compile_select(entries, &format!("{at}.select"))?),
        };
        // The top-level names select keeps, to check renames and additions against.
        let kept: Option<Vec<&str>> = select.as_ref().map(|pointers| {
            let mut names: Vec<&str> = Vec::new();
            for pointer in pointers {
                let name = pointer.tokens()[0].key.as_str();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names
        });

        let mut rename = Vec::new();
        for (old, new) in &spec.rename {
            let field = format!("{at}.rename.{old}");
            if old.is_empty() || new.is_empty() {
                return Err(SpecError::new(field, "names must not be empty"));
            }
            if let Some(kept) = &kept
                && !kept.contains(&old.as_str())
            {
                return Err(SpecError::new(
                    field,
                    format!("renames {old:?}, which select does not keep"),
                ));
            }
            if let Some((other, _)) = spec.rename.iter().find(|(o, n)| *o != old && *n == new) {
                return Err(SpecError::new(
                    field,
                    format!("renames {old:?} and {other:?} both to {new:?}"),
                ));
            }
            rename.push((old.clone(), new.clone()));
        }
        // The output's top-level names when select fixes them.
        let output_names: Option<Vec<&str>> = kept.map(|kept| {
            kept.into_iter()
                .map(|name| spec.rename.get(name).map_or(name, String::as_str))
                .collect()
        });
        if let Some(names) = &output_names
            && let Some((_, name)) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n))
        {
            return Err(SpecError::new(
                format!("{at}.rename"),
                format!("two selected fields would both be named {name:?}"),
            ));
        }

        let mut add: Vec<(String, Meta)> = Vec::new();
        for (field, meta, name) in spec.add.entries() {
            let field = format!("{at}.add.{field}");
            if name.is_empty() {
                return Err(SpecError::new(field, "the name must not be empty"));
            }
            if add.iter().any(|(other, _)| other == name) {
                return Err(SpecError::new(
                    field,
                    format!("{name:?} is already added by another entry"),
                ));
            }
            if spec.rename.values().any(|new| new == name) {
                return Err(SpecError::new(field, format!("{name:?} is also a rename target")));
            }
            if output_names
                .as_ref()
                .is_some_and(|names| names.contains(&name.as_str()))
            {
                return Err(SpecError::new(field, format!("{name:?} is also a selected field")));
            }
            add.push((name.clone(), meta));
        }
        Ok(Fields { select, rename, add })
    }

    /// Whether the operations leave every record as it is.
    pub(crate) fn is_identity(&self) -> bool {
        self.select.is_none() && self.rename.is_empty() && self.add.is_empty()
    }

    /// Applies select, rename and add to a record's top-level `members`.
    pub(crate) fn apply<'m>(
        &'m self,
        record: &'m InputRecord<'_>,
        members: Members<'m>,
    ) -> Result<Members<'m>, ProcessingError> {
        let mut members = match &self.select {
            None => members,
            Some(pointers) => select(pointers, &members)?,
        };
        for (old, new) in &self.rename {
            let Some(position) = members.iter().position(|(key, _)| key == old) else {
                continue;
            };
            if members.iter().any(|(key, _)| key == new) {
                return Err(ProcessingError::new(
                    code::KEY_COLLISION,
                    format!("renaming {old:?} to {new:?} collides with the record's own {new:?}"),
                ));
            }
            members[position].0 = Cow::Borrowed(new);
        }
        for (name, meta) in &self.add {
            if members.iter().any(|(key, _)| key == name) {
                return Err(ProcessingError::new(
                    code::KEY_COLLISION,
                    format!("adding {name:?} collides with the record's own {name:?}"),
                ));
            }
            let value = match meta {
                Meta::ArrivalTimestamp => Value::Int(record.approximate_arrival_ms),
                Meta::ShardId => Value::Str(&record.shard_id),
                Meta::SequenceNumber => Value::Str(&record.sequence_number),
                Meta::PartitionKey => Value::Str(&record.partition_key),
            };
            members.push((Cow::Borrowed(name), value));
        }
        Ok(members)
    }
}

fn compile_select(entries: &[String], at: &str) -> Result<Vec<Pointer>, SpecError> {
    if entries.is_empty() {
        return Err(SpecError::new(
            at,
            "select is empty, which would keep nothing; leave it out to keep every field",
        ));
    }
    let mut pointers: Vec<Pointer> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("{at}[{i}]");
        let pointer = if entry.starts_with('/') {
            Pointer::parse(entry).map_err(|e| SpecError::new(&field, e))?
        } else if entry.is_empty() {
            return Err(SpecError::new(field, "a field name must not be empty"));
        } else {
            Pointer::member(entry)
        };
        // Selecting `a` and `/a/b` (or the same field twice) would mean two copies of `b`.
        let path: Vec<&str> = pointer.tokens().iter().map(|t| t.key.as_str()).collect();
        if let Some(other) = pointers.iter().find(|other| {
            let other_path: Vec<&str> = other.tokens().iter().map(|t| t.key.as_str()).collect();
            path.starts_with(&other_path) || other_path.starts_with(&path)
        }) {
            return Err(SpecError::new(
                field,
                format!("{entry:?} overlaps {:?}, selected before it", other.as_str()),
            ));
        }
        pointers.push(pointer);
    }
    Ok(pointers)
}

/// The selected members, in selection order, nested pointers rebuilt inside their enclosing objects.
fn select<'m>(pointers: &'m [Pointer], members: &Members<'m>) -> Result<Members<'m>, ProcessingError> {
    let mut out: Members<'m> = Vec::with_capacity(pointers.len());
    let mut hint = 0;
    for pointer in pointers {
        let tokens = pointer.tokens();
        let Some(top) = doc::find(members, &tokens[0].key, &mut hint) else {
            continue;
        };
        if tokens.len() == 1 {
            out.push((Cow::Borrowed(&tokens[0].key), top.clone()));
            continue;
        }
        if let Some(value) = descend_objects(top, &tokens[1..])? {
            insert(&mut out, tokens, value);
        }
    }
    Ok(out)
}

/// The value at `tokens` below `value`, stepping through objects only.
fn descend_objects<'m>(value: &Value<'m>, tokens: &[doc::Token]) -> Result<Option<Value<'m>>, ProcessingError> {
    let mut current = value.clone();
    for token in tokens {
        if current.first_byte() != b'{' {
            return Ok(None);
        }
        match doc::descend(&current, std::slice::from_ref(token))? {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Puts `value` at `tokens` in `out`, creating the enclosing objects it needs.
fn insert<'m>(out: &mut Members<'m>, tokens: &'m [doc::Token], value: Value<'m>) {
    let (first, rest) = tokens.split_first().expect("select pointers have at least one token");
    if rest.is_empty() {
        out.push((Cow::Borrowed(&first.key), value));
        return;
    }
    let position = match out.iter().position(|(key, _)| *key == first.key) {
        Some(position) => position,
        None => {
            out.push((Cow::Borrowed(&first.key), Value::Object(Vec::new())));
            out.len() - 1
        }
    };
    if let Value::Object(children) = &mut out[position].1 {
        insert(children, rest, value);
    }
}

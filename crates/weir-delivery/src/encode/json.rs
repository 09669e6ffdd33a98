//! Reading columns out of a JSON record without building a tree: the record's top-level members are
//! borrowed [`RawValue`]s, and a pointer re-parses only the values on its path.
//!
//! The rules are the csv transform's, so a record that one accepts the other accepts too: the record
//! must be a JSON object, and an object on a column's path with a key twice fails (which duplicate wins
//! differs between JSON readers).

use super::code;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use weir_core::ingest::JsonPointer;
use weir_core::transform::ProcessingError;

/// A column's path, parsed once.
#[derive(Debug, Clone)]
pub(super) struct Path {
    /// As configured (or `/name`), for messages.
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
struct Token {
    key: String,
    /// RFC 6901's array index, when the token is one.
    index: Option<usize>,
}

impl Path {
    /// The column's pointer, or the top-level member named like the column.
    pub(super) fn new(name: &str, pointer: Option<&str>) -> Result<Path, String> {
        let (text, tokens) = match pointer {
            Some("") => (String::new(), Vec::new()),
            Some(text) => (text.to_owned(), JsonPointer::parse(text)?.tokens().to_vec()),
            None => (
                format!("/{}", name.replace('~', "~0").replace('/', "~1")),
                vec![name.to_owned()],
            ),
        };
        let tokens = tokens
            .into_iter()
            .map(|key| Token {
                index: array_index(&key),
                key,
            })
            .collect();
        Ok(Path { text, tokens })
    }

    /// For messages: the pointer, or a description of `""`.
    pub(super) fn describe(&self) -> &str {
        if self.text.is_empty() {
            "\"\" (the whole record)"
        } else {
            &self.text
        }
    }
}

fn array_index(token: &str) -> Option<usize> {
    let valid =
        token == "0" || (!token.starts_with('0') && !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()));
    if valid { token.parse().ok() } else { None }
}

/// A record's top-level members, keys unescaped, values borrowed.
pub(super) struct Record<'a> {
    text: &'a str,
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Record<'a> {
    /// Parses a record that must be a JSON object with unique keys.
    pub(super) fn parse(data: &'a [u8]) -> Result<Record<'a>, ProcessingError> {
        let text = std::str::from_utf8(data).map_err(|e| {
            ProcessingError::new(
                code::INVALID_JSON,
                format!("the record is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
            )
        })?;
        let first = text.bytes().find(|b| !b.is_ascii_whitespace()).unwrap_or_default();
        if first != b'{' {
            serde_json::from_str::<IgnoredAny>(text).map_err(|e| invalid_json(&e))?;
            return Err(ProcessingError::new(
                code::NOT_AN_OBJECT,
                format!("the record is {}, not a JSON object", kind_of(first)),
            ));
        }
        let mut members = Vec::with_capacity(16);
        let mut de = serde_json::Deserializer::from_str(text);
        de::Deserializer::deserialize_map(&mut de, MembersVisitor { members: &mut members })
            .map_err(|e| invalid_json(&e))?;
        de.end().map_err(|e| invalid_json(&e))?;
        if let Some(key) = duplicate(&members) {
            return Err(duplicate_key(&format!("the record has the key {key:?} more than once")));
        }
        Ok(Record { text, members })
    }

    /// The value at `path`; `None` when a step finds nothing or a value that is neither an object nor
    /// an array. `hint` speeds up columns declared in the record's own order.
    pub(super) fn get(&self, path: &Path, hint: &mut usize) -> Result<Option<&'a RawValue>, ProcessingError> {
        let Some((first, rest)) = path.tokens.split_first() else {
            return Ok(Some(whole(self.text)));
        };
        let len = self.members.len();
        let start = (*hint).min(len);
        let Some(position) = (start..len).chain(0..start).find(|&i| self.members[i].0 == first.key) else {
            return Ok(None);
        };
        *hint = position + 1;
        let mut current = self.members[position].1;
        for token in rest {
            match step(current, token)? {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }
}

/// The whole record as a value: a `RawValue` borrowing `text` (a valid object, whitespace around it
/// trimmed).
fn whole(text: &str) -> &RawValue {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    serde_json::from_str::<&RawValue>(trimmed).unwrap_or(RawValue::NULL)
}

fn duplicate<'m>(members: &'m [(Cow<'_, str>, &RawValue)]) -> Option<&'m str> {
    if members.len() <= 16 {
        return members
            .iter()
            .enumerate()
            .find(|(i, (key, _))| members[..*i].iter().any(|(other, _)| other == key))
            .map(|(_, (key, _))| key.as_ref());
    }
    let mut keys: Vec<&str> = members.iter().map(|(key, _)| key.as_ref()).collect();
    keys.sort_unstable();
    keys.windows(2).find(|pair| pair[0] == pair[1]).map(|pair| pair[0])
}

fn invalid_json(e: &serde_json::Error) -> ProcessingError {
    ProcessingError::new(code::INVALID_JSON, format!("the record is not valid JSON: {e}"))
}

fn duplicate_key(message: &str) -> ProcessingError {
    ProcessingError::new(code::DUPLICATE_KEY, message)
}

/// "a string", "an object", … from a value's first byte.
pub(super) fn kind_of(first: u8) -> &'static str {
    match first {
        b'{' => "an object",
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

/// One pointer step into a value.
fn step<'a>(value: &'a RawValue, token: &Token) -> Result<Option<&'a RawValue>, ProcessingError> {
    let text = value.get();
    let mut de = serde_json::Deserializer::from_str(text);
    match (text.as_bytes().first(), token.index) {
        (Some(b'{'), _) => {
            let mut found = None;
            let unique = de::Deserializer::deserialize_map(
                &mut de,
                MemberVisitor {
                    key: &token.key,
                    found: &mut found,
                },
            )
            .map_err(|e| invalid_json(&e))?;
            if !unique {
                return Err(duplicate_key(&format!(
                    "an object in the record has the key {:?} more than once",
                    token.key
                )));
            }
            Ok(found)
        }
        (Some(b'['), Some(index)) => {
            de::Deserializer::deserialize_seq(&mut de, ElementVisitor { index }).map_err(|e| invalid_json(&e))
        }
        _ => Ok(None),
    }
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct MembersVisitor<'m, 'a> {
    members: &'m mut Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Visitor<'a> for MembersVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
            self.members.push((key, map.next_value()?));
        }
        Ok(())
    }
}

/// Captures the member named `key`; answers whether it appeared at most once.
struct MemberVisitor<'k, 'f, 'a> {
    key: &'k str,
    found: &'f mut Option<&'a RawValue>,
}

impl<'a> Visitor<'a> for MemberVisitor<'_, '_, 'a> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut unique = true;
        while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
            if key == self.key {
                unique &= self.found.is_none();
                *self.found = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(unique)
    }
}

/// Captures the array element at `index`.
struct ElementVisitor {
    index: usize,
}

impl<'a> Visitor<'a> for ElementVisitor {
    type Value = Option<&'a RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut i = 0;
        loop {
            if i == self.index {
                match seq.next_element::<&'a RawValue>()? {
                    Some(value) => found = Some(value),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }
}

/// A JSON string's contents, borrowed when it has no escapes.
pub(super) fn string(raw: &RawValue) -> Result<Cow<'_, str>, ProcessingError> {
    let text = raw.get();
    match text.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(text)
            .map(Cow::Owned)
            .map_err(|e| invalid_json(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(record: &str, pointer: Option<&str>, name: &str) -> Result<Option<String>, ProcessingError> {
        let record = Record::parse(record.as_bytes())?;
        let value = record.get(&Path::new(name, pointer).expect("a valid pointer"), &mut 0)?;
        Ok(value.map(|v| v.get().to_owned()))
    }

    #[test]
    fn paths_step_through_objects_and_arrays() {
        let record = r#"{"a":{"b":[10,{"c":"x"}]},"n/m":1}"#;
        assert_eq!(at(record, Some("/a/b/0"), "x").expect("valid").as_deref(), Some("10"));
        assert_eq!(
            at(record, Some("/a/b/1/c"), "x").expect("valid").as_deref(),
            Some("\"x\"")
        );
        assert_eq!(at(record, Some("/a/b/2"), "x").expect("valid"), None);
        assert_eq!(at(record, None, "n/m").expect("valid").as_deref(), Some("1"));
        assert_eq!(at(record, Some(""), "x").expect("valid").as_deref(), Some(record));
    }

    #[test]
    fn duplicate_keys_on_the_path_fail() {
        let error = at(r#"{"a":1,"a":2}"#, None, "a").expect_err("duplicate");
        assert_eq!(error.code, code::DUPLICATE_KEY);
        let error = at(r#"{"a":{"b":1,"b":2}}"#, Some("/a/b"), "x").expect_err("duplicate");
        assert_eq!(error.code, code::DUPLICATE_KEY);
    }
}

//! The document model the built-in transforms share: a record's top-level members borrowed from its
//! JSON text, JSON pointers over it, and the compact JSON writer.
//!
//! Nothing here builds a `serde_json::Value`. A record is parsed once into its top-level members, each
//! value kept as the slice of the record's text that holds it; a pointer re-parses only the values on its
//! path. Keys and values borrow from the record unless a key has escapes, so a record costs one vector.

use super::{ProcessingError, code};
use crate::ingest::JsonPointer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A value in a document: from the record, built by `select`, or metadata added by `add`.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    /// A value's JSON text as it appears in the record (valid JSON, without surrounding whitespace;
    /// written compacted).
    Raw(&'a str),
    /// An object built by selecting pointers, members in selection order.
    Object(Members<'a>),
    /// A string (not JSON-escaped).
    Str(&'a str),
    /// An integer.
    Int(i64),
}

/// An object's members in document order, keys unescaped.
pub(crate) type Members<'a> = Vec<(Cow<'a, str>, Value<'a>)>;

/// What a JSON value is, for messages and type checks.
pub(crate) fn kind_of(first: u8) -> &'static str {
    match first {
        b'{' => "an object",
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

impl Value<'_> {
    /// The first byte of the value's JSON text, which names its kind.
    pub(crate) fn first_byte(&self) -> u8 {
        match self {
            Value::Raw(raw) => raw.as_bytes().first().copied().unwrap_or(b'n'),
            Value::Object(_) => b'{',
            Value::Str(_) => b'"',
            Value::Int(_) => b'0',
        }
    }

    /// "a string", "an object", …
    pub(crate) fn kind(&self) -> &'static str {
        kind_of(self.first_byte())
    }

    /// Whether the value is JSON `null`.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Raw(raw) if *raw == "null")
    }
}

/// Parses a record's data as a JSON object into its members. Fails with `Transform.InvalidJson` for
/// data that is not UTF-8 JSON, `Transform.NotAnObject` for other JSON, and `Transform.DuplicateKey`
/// when a key repeats: which duplicate wins differs between JSON readers, so weir refuses to guess.
pub(crate) fn parse_record(data: &[u8]) -> Result<Members<'_>, ProcessingError> {
    let text = std::str::from_utf8(data).map_err(|e| {
        ProcessingError::new(
            code::INVALID_JSON,
            format!("the record is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        )
    })?;
    parse_object(text, "the record")
}

/// Parses `text` (trusted to be one JSON value when it came from a parsed record) as an object.
fn parse_object<'a>(text: &'a str, what: &str) -> Result<Members<'a>, ProcessingError> {
    let first = text.bytes().find(|b| !b.is_ascii_whitespace()).unwrap_or_default();
    if first != b'{' {
        serde_json::from_str::<IgnoredAny>(text).map_err(|e| invalid_json(&e))?;
        return Err(ProcessingError::new(
            code::NOT_AN_OBJECT,
            format!("{what} is {}, not a JSON object", kind_of(first)),
        ));
    }
    if let Some(members) = scan_members(text) {
        check_unique(&members, what)?;
        return Ok(members);
    }
    let mut members = Vec::with_capacity(16);
    let mut de = serde_json::Deserializer::from_str(text);
    de::Deserializer::deserialize_map(&mut de, ObjectVisitor { members: &mut members })
        .map_err(|e| invalid_json(&e))?;
    de.end().map_err(|e| invalid_json(&e))?;
    check_unique(&members, what)?;
    Ok(members)
}

/// Reads an object's members in one pass without serde, when it is plain: keys without escapes, nesting
/// at most [`SCAN_DEPTH`] deep. Capturing each value as a serde_json `RawValue` was most of a `csv`
/// record's cost. Accepts only valid JSON (what serde_json accepts when it skips a value); anything
/// else, invalid or not, returns `None` and is left to serde_json, which also words the error.
fn scan_members(text: &str) -> Option<Members<'_>> {
    let mut members = Vec::with_capacity(16);
    scan_object(text, |key, value| {
        members.push((Cow::Borrowed(key), Value::Raw(value)));
        true
    })?;
    Some(members)
}

/// [`scan_members`]'s reader: hands each member's key and value text to `member`, which returns `false`
/// to give up (then `None`, as for text the scanner leaves to serde_json).
pub(crate) fn scan_object<'a>(text: &'a str, mut member: impl FnMut(&'a str, &'a str) -> bool) -> Option<()> {
    let b = text.as_bytes();
    let mut pos = skip_ws(b, 0);
    if b.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_ws(b, pos + 1);
    if b.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            if b.get(pos) != Some(&b'"') {
                return None;
            }
            let key_start = pos + 1;
            let key_end = string_end(b, key_start)?;
            if b[key_start..key_end].contains(&b'\\') {
                return None;
            }
            pos = skip_ws(b, key_end + 1);
            if b.get(pos) != Some(&b':') {
                return None;
            }
            let value_start = skip_ws(b, pos + 1);
            pos = skip_value(b, value_start, 1)?;
            // Every index here is at an ASCII byte (a quote or a value's first or last byte), a char boundary.
            if !member(&text[key_start..key_end], &text[value_start..pos]) {
                return None;
            }
            pos = skip_ws(b, pos);
            match b.get(pos) {
                Some(b',') => pos = skip_ws(b, pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, pos) == b.len()).then_some(())
}

/// How deep [`scan_members`] follows nested values; serde_json's own limit is 128.
const SCAN_DEPTH: usize = 64;

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(pos) {
        pos += 1;
    }
    pos
}

/// The end of the JSON value starting at `pos`, if it is valid; `depth` counts the enclosing containers.
fn skip_value(b: &[u8], pos: usize, depth: usize) -> Option<usize> {
    match *b.get(pos)? {
        b'"' => string_end(b, pos + 1).map(|end| end + 1),
        open @ (b'{' | b'[') => {
            if depth >= SCAN_DEPTH {
                return None;
            }
            let close = if open == b'{' { b'}' } else { b']' };
            let mut pos = skip_ws(b, pos + 1);
            if b.get(pos) == Some(&close) {
                return Some(pos + 1);
            }
            loop {
                if open == b'{' {
                    if b.get(pos) != Some(&b'"') {
                        return None;
                    }
                    pos = skip_ws(b, string_end(b, pos + 1)? + 1);
                    if b.get(pos) != Some(&b':') {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                }
                pos = skip_ws(b, skip_value(b, pos, depth + 1)?);
                match *b.get(pos)? {
                    b',' => pos = skip_ws(b, pos + 1),
                    c if c == close => return Some(pos + 1),
                    _ => return None,
                }
            }
        }
        b't' => b[pos..].starts_with(b"true").then_some(pos + 4),
        b'f' => b[pos..].starts_with(b"false").then_some(pos + 5),
        b'n' => b[pos..].starts_with(b"null").then_some(pos + 4),
        b'-' | b'0'..=b'9' => number_end(b, pos),
        _ => None,
    }
}

/// The end of the number at `pos`, in JSON's grammar: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
fn number_end(b: &[u8], mut pos: usize) -> Option<usize> {
    let digits = |pos: usize| pos + b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b[pos] == b'-' {
        pos += 1;
    }
    pos = match *b.get(pos)? {
        b'0' => pos + 1,
        b'1'..=b'9' => digits(pos + 1),
        _ => return None,
    };
    if b.get(pos) == Some(&b'.') {
        let end = digits(pos + 1);
        if end == pos + 1 {
            return None;
        }
        pos = end;
    }
    if let Some(b'e' | b'E') = b.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = b.get(pos) {
            pos += 1;
        }
        let end = digits(pos);
        if end == pos {
            return None;
        }
        pos = end;
    }
    Some(pos)
}

/// The position of the closing quote of the string whose text starts at `pos`; `None` for a control
/// character or an invalid escape. `\u` escapes are not checked for surrogates, as serde_json does not
/// when it skips a string.
fn string_end(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos = next_special(b, pos);
        match *b.get(pos)? {
            b'"' => return Some(pos),
            b'\\' => {
                pos = match *b.get(pos + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => pos + 2,
                    b'u' if b.get(pos + 2..pos + 6)?.iter().all(u8::is_ascii_hexdigit) => pos + 6,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

/// The first position at or after `pos` that holds `"`, `\` or a control character, or `b.len()`. Eight
/// bytes at a time: strings are most of a record's and an event's bytes.
pub(crate) fn next_special(b: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    while let Some(word) = b.get(pos..pos + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // Each term sets the high bit of the bytes that are zero (below 0x20 for the last), and maybe of
        // bytes above them, never below: the lowest bit set marks the first special byte exactly.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & (ONES * 0x80);
        if found != 0 {
            return pos + (found.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&c) = b.get(pos)
        && c != b'"'
        && c != b'\\'
        && c >= 0x20
    {
        pos += 1;
    }
    pos
}

fn invalid_json(e: &serde_json::Error) -> ProcessingError {
    ProcessingError::new(code::INVALID_JSON, format!("the record is not valid JSON: {e}"))
}

/// Fails if two members share a key. Small objects compare pairwise; large ones sort their keys.
pub(crate) fn check_unique(members: &Members<'_>, what: &str) -> Result<(), ProcessingError> {
    let duplicate = if members.len() <= 16 {
        members
            .iter()
            .enumerate()
            .find(|(i, (key, _))| members[..*i].iter().any(|(other, _)| other == key))
            .map(|(_, (key, _))| key.as_ref())
    } else {
        let mut keys: Vec<&str> = members.iter().map(|(key, _)| key.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).find(|pair| pair[0] == pair[1]).map(|pair| pair[0])
    };
    match duplicate {
        Some(key) => Err(ProcessingError::new(
            code::DUPLICATE_KEY,
            format!("{what} has the key {key:?} more than once"),
        )),
        None => Ok(()),
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

struct ObjectVisitor<'m, 'a> {
    members: &'m mut Members<'a>,
}

impl<'a> Visitor<'a> for ObjectVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
            let value: &'a RawValue = map.next_value()?;
            self.members.push((key, Value::Raw(value.get())));
        }
        Ok(())
    }
}

/// A JSON pointer, parsed once at configuration time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    text: String,
    tokens: Vec<Token>,
}

/// One reference token: a member name, which also indexes arrays when it is an RFC 6901 array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) key: String,
    index: Option<usize>,
}

impl Pointer {
    /// Parses an RFC 6901 pointer: `""` is the whole record, otherwise it starts with `/`.
    pub(crate) fn parse(text: &str) -> Result<Pointer, String> {
        if text.is_empty() {
            return Ok(Pointer {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let parsed = JsonPointer::parse(text)?;
        let tokens = parsed
            .tokens()
            .iter()
            .map(|key| Token {
                index: array_index(key),
                key: key.clone(),
            })
            .collect();
        Ok(Pointer {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The pointer to a top-level member: `/` + the name with `~` and `/` escaped.
    pub(crate) fn member(name: &str) -> Pointer {
        Pointer {
            text: format!("/{}", name.replace('~', "~0").replace('/', "~1")),
            tokens: vec![Token {
                key: name.to_owned(),
                index: array_index(name),
            }],
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// RFC 6901's array index: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let valid =
        token == "0" || (!token.starts_with('0') && !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()));
    if valid { token.parse().ok() } else { None }
}

/// Finds `key` among `members`, starting the search at `*hint` and leaving `*hint` just past the match:
/// columns are usually declared in the record's own order, which makes a row's lookups one pass.
pub(crate) fn find<'m, 'a>(members: &'m Members<'a>, key: &str, hint: &mut usize) -> Option<&'m Value<'a>> {
    let len = members.len();
    let start = (*hint).min(len);
    let position = (start..len).chain(0..start).find(|&i| members[i].0 == key)?;
    *hint = position + 1;
    Some(&members[position].1)
}

/// The value at `tokens` below `value`; `None` when a step finds nothing or a value that is neither an
/// object nor an array. Objects on the path are checked for duplicate keys.
pub(crate) fn descend<'a>(value: &Value<'a>, tokens: &[Token]) -> Result<Option<Value<'a>>, ProcessingError> {
    let mut current = value.clone();
    for token in tokens {
        let next = match &current {
            Value::Object(members) => find(members, &token.key, &mut 0).cloned(),
            Value::Raw(raw) => raw_step(raw, token)?.map(Value::Raw),
            Value::Str(_) | Value::Int(_) => None,
        };
        match next {
            Some(value) => current = value,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// One pointer step into a value from the record's text.
fn raw_step<'a>(text: &'a str, token: &Token) -> Result<Option<&'a str>, ProcessingError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = match (text.as_bytes().first(), token.index) {
        (Some(b'{'), _) => {
            let mut found = None;
            de::Deserializer::deserialize_map(
                &mut de,
                MemberVisitor {
                    key: &token.key,
                    found: &mut found,
                },
            )
            .map_err(|e| invalid_json(&e))?
            .map_err(|key| {
                ProcessingError::new(
                    code::DUPLICATE_KEY,
                    format!("an object in the record has the key {key:?} more than once"),
                )
            })?;
            found
        }
        (Some(b'['), Some(index)) => {
            de::Deserializer::deserialize_seq(&mut de, ElementVisitor { index }).map_err(|e| invalid_json(&e))?
        }
        _ => None,
    };
    Ok(found.map(RawValue::get))
}

/// Captures the member named `key`; the result is `Err(key)` when it appears twice.
struct MemberVisitor<'k, 'f, 'a> {
    key: &'k str,
    found: &'f mut Option<&'a RawValue>,
}

impl<'a> Visitor<'a> for MemberVisitor<'_, '_, 'a> {
    type Value = Result<(), String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut duplicate = false;
        while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
            if key == self.key {
                duplicate |= self.found.is_some();
                *self.found = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(if duplicate { Err(self.key.to_owned()) } else { Ok(()) })
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

/// Parses a nested value from the record's text as an object, for `flatten` and `select`.
pub(crate) fn raw_members(raw: &str) -> Result<Members<'_>, ProcessingError> {
    parse_object(raw, "an object in the record")
}

/// Writes `members` as a compact JSON object.
pub(crate) fn write_object(out: &mut Vec<u8>, members: &Members<'_>) {
    out.push(b'{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// Writes a value as compact JSON.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Raw(raw) => crate::json::write_compact(out, raw.as_bytes()),
        Value::Object(members) => write_object(out, members),
        Value::Str(s) => write_json_str(out, s),
        Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

/// How JSON writes each byte of a string: 0 as itself, `b'u'` as `\u00XX`, otherwise `\` + that byte.
/// The same escapes as serde_json, so sizes computed here match what serde_json would write.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether `s` is written into a JSON string as it is, which record ids, keys and values usually are.
/// One pass without an early exit, so the compiler can vectorize it.
fn needs_no_escapes(s: &str) -> bool {
    !s.bytes()
        .fold(false, |escape, b| escape | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// Writes `s` as a JSON string, quotes included.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if needs_no_escapes(s) {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The length of [`write_json_str`]'s output for `s`.
pub(crate) fn json_str_len(s: &str) -> usize {
    if needs_no_escapes(s) {
        return 2 + s.len();
    }
    2 + s
        .bytes()
        .map(|b| match ESCAPE[b as usize] {
            0 => 1,
            b'u' => 6,
            _ => 2,
        })
        .sum::<usize>()
}

/// The contents of a JSON string's text (quotes included), borrowed when it has no escapes.
pub(crate) fn unescape(raw: &str) -> Result<Cow<'_, str>, ProcessingError> {
    match raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| invalid_json(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "quote \" and \\ back",
            "\u{0}\u{1f}\u{7f}\t\n\r\u{8}\u{c}",
            "é ☃ 𝄞",
            "</script>",
        ] {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            let expected = serde_json::to_string(s).expect("a string serializes");
            assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
            assert_eq!(json_str_len(s), expected.len());
        }
    }

    #[test]
    fn special_bytes_are_found_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(next_special(&bytes, 0), at, "{len} {at} {special}");
                }
            }
            assert_eq!(next_special(&vec![0xe2; len], 0), len);
            assert_eq!(next_special(&vec![b' '; len], 0), len);
        }
    }

    #[test]
    fn the_scanner_reads_what_serde_json_reads() {
        let cases = [
            r#"{}"#,
            r#" { "a" : 1 , "b":[1,-2.5e+3,{"c":null}],"d":"x\"\u00e9y","e":true,"f":false } "#,
            r#"{"a":"é☃","b":{},"c":[],"d":0,"e":-0.0,"f":1E5}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1} x"#,
            r#"{"a\"b":1}"#,
            r#"{"a" 1}"#,
            r#"{"a":{"b":1}"#,
        ];
        for text in cases {
            let serde: Option<Vec<(String, String)>> =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                    .ok()
                    .and_then(|_| {
                        let mut members = Vec::new();
                        let mut de = serde_json::Deserializer::from_str(text);
                        de::Deserializer::deserialize_map(&mut de, ObjectVisitor { members: &mut members }).ok()?;
                        Some(members.iter().map(|(k, v)| (k.to_string(), raw_text(v))).collect())
                    });
            if let Some(scanned) = scan_members(text) {
                let scanned: Vec<(String, String)> =
                    scanned.iter().map(|(k, v)| (k.to_string(), raw_text(v))).collect();
                assert_eq!(Some(scanned), serde, "{text}");
            }
        }
        assert!(scan_members(&format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100))).is_none());
    }

    fn raw_text(value: &Value<'_>) -> String {
        match value {
            Value::Raw(raw) => (*raw).to_owned(),
            _ => String::new(),
        }
    }

    #[test]
    fn records_with_a_repeated_key_fail() {
        let error = parse_record(br#"{"a":1,"b":2,"a":3}"#).expect_err("duplicate");
        assert_eq!(error.code, code::DUPLICATE_KEY);
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        let error = parse_record(format!("{{{many}\"k7\":0}}").as_bytes()).expect_err("duplicate");
        assert!(error.message.contains("\"k7\""), "{}", error.message);
    }

    #[test]
    fn pointers_step_through_objects_and_arrays() {
        let members = parse_record(br#"{"a":{"b":[10,{"c":"x"}]},"n":1}"#).expect("an object");
        let root = Value::Object(members);
        let at = |p: &str| {
            descend(&root, Pointer::parse(p).expect("a pointer").tokens())
                .expect("valid")
                .map(|v| {
                    let mut out = Vec::new();
                    write_value(&mut out, &v);
                    String::from_utf8(out).expect("UTF-8")
                })
        };
        assert_eq!(at("/a/b/0").as_deref(), Some("10"));
        assert_eq!(at("/a/b/1/c").as_deref(), Some("\"x\""));
        assert_eq!(at("/a/b/2"), None);
        assert_eq!(at("/n/x"), None);
        assert_eq!(at("/missing"), None);
        assert_eq!(at("").as_deref(), Some(r#"{"a":{"b":[10,{"c":"x"}]},"n":1}"#));
    }
}

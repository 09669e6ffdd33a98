//! JSON text helpers shared by ingest, the transforms, delivery's encoders and `weir send`.

use std::borrow::Cow;

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Appends valid JSON text without the whitespace between its tokens, so a pretty-printed record fits
/// on one line; strings (escapes included), numbers and key order stay byte for byte.
pub fn write_compact(out: &mut Vec<u8>, json: &[u8]) {
    if !json.iter().copied().any(is_whitespace) {
        out.extend_from_slice(json);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !is_whitespace(b) {
            out.push(b);
            in_string = b == b'"';
        }
    }
}

/// [`write_compact`] into a new buffer, or `json` itself when it has no whitespace at all.
pub fn compact(json: &[u8]) -> Cow<'_, [u8]> {
    if !json.iter().copied().any(is_whitespace) {
        return Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len());
    write_compact(&mut out, json);
    Cow::Owned(out)
}

/// [`compact`] for text.
pub fn compact_str(json: &str) -> Cow<'_, str> {
    match compact(json.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(json),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8(bytes).expect("removing ASCII whitespace keeps UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_keeps_strings_and_drops_whitespace_outside_them() {
        let pretty = b"{\n  \"a b\" : [ 1 , \"x\\\" \\n y\" ],\r\n\t\"c\": 1.50e3\n}";
        assert_eq!(&*compact(pretty), br#"{"a b":[1,"x\" \n y"],"c":1.50e3}"#);
        assert_eq!(
            compact_str("{ \"a b\" : [ 1 ,\n 2 ], \"c\":\"x \\\" y\" }"),
            r#"{"a b":[1,2],"c":"x \" y"}"#
        );
        assert!(matches!(compact(br#"{"a":"b c"}"#), Cow::Owned(_)));
        assert!(matches!(compact(br#"{"a":1}"#), Cow::Borrowed(_)));
    }
}

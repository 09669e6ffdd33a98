//! Records from a file or stdin: one JSON value, a JSON array of records, or NDJSON. Records are
//! checked to be JSON here, but not to be objects: the server's verdict on them is what is reported.

use anyhow::{Context, bail};
use serde_json::value::RawValue;
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One JSON value (one record) or a JSON array of records.
    Json,
    /// One JSON record per non-empty line (also called JSON Lines).
    Ndjson,
}

/// Reads every record of `input` (`-` is stdin), each as compact JSON text on one line.
pub fn read_records(input: &Path, format: Option<InputFormat>) -> anyhow::Result<Vec<Box<[u8]>>> {
    let stdin = input == Path::new("-");
    let bytes = if stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
        bytes
    } else {
        std::fs::read(input).with_context(|| format!("reading {}", input.display()))?
    };
    let name = if stdin {
        "stdin".to_owned()
    } else {
        input.display().to_string()
    };
    let format = format
        .or_else(|| format_from_extension(input))
        .unwrap_or_else(|| detect_format(&bytes));
    let records = match format {
        InputFormat::Json => parse_json(&bytes),
        InputFormat::Ndjson => parse_ndjson(&bytes),
    }
    .with_context(|| {
        format!(
            "{name} (read as {})",
            if format == InputFormat::Json { "JSON" } else { "NDJSON" }
        )
    })?;
    if records.is_empty() {
        bail!("{name} holds no records");
    }
    Ok(records)
}

fn format_from_extension(path: &Path) -> Option<InputFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some(InputFormat::Json),
        "ndjson" | "jsonl" => Some(InputFormat::Ndjson),
        _ => None,
    }
}

/// An array, or a text that is one JSON value, is JSON; anything else is taken as NDJSON (one object
/// alone on one line reads the same either way).
pub fn detect_format(bytes: &[u8]) -> InputFormat {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"[") || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        InputFormat::Json
    } else {
        InputFormat::Ndjson
    }
}

fn parse_json(bytes: &[u8]) -> anyhow::Result<Vec<Box<[u8]>>> {
    let value: &RawValue = serde_json::from_slice(bytes).context("invalid JSON")?;
    if value.get().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(value.get()).context("invalid JSON array")?;
        Ok(items.into_iter().map(|item| minify(item.get())).collect())
    } else {
        Ok(vec![minify(value.get())])
    }
}

fn parse_ndjson(bytes: &[u8]) -> anyhow::Result<Vec<Box<[u8]>>> {
    let mut records = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(line)
            .with_context(|| format!("line {}: invalid JSON", index + 1))?;
        records.push(line.into());
    }
    Ok(records)
}

/// One record on one NDJSON line (weir_core's compaction: strings, numbers and key order kept).
fn minify(json: &str) -> Box<[u8]> {
    weir_core::json::compact(json.as_bytes())
        .into_owned()
        .into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(records: Vec<Box<[u8]>>) -> Vec<String> {
        records
            .into_iter()
            .map(|r| String::from_utf8(r.into_vec()).expect("UTF-8"))
            .collect()
    }

    #[test]
    fn json_array_gives_one_minified_record_per_element() {
        let records = parse_json(b"[\n  {\"a\": 1,\n   \"s\": \"x y\\\" z\"},\n  7\n]\n").expect("valid");
        assert_eq!(texts(records), vec![r#"{"a":1,"s":"x y\" z"}"#, "7"]);
    }

    #[test]
    fn one_json_object_is_one_record() {
        let records = parse_json(b" {\"a\" : [1, 2]} ").expect("valid");
        assert_eq!(texts(records), vec![r#"{"a":[1,2]}"#]);
    }

    #[test]
    fn ndjson_skips_blank_lines_and_crlf() {
        let records = parse_ndjson(b"{\"a\":1}\r\n\n  {\"b\": 2}\n").expect("valid");
        assert_eq!(texts(records), vec![r#"{"a":1}"#, r#"{"b": 2}"#]);
    }

    #[test]
    fn ndjson_error_names_the_line() {
        let e = parse_ndjson(b"{\"a\":1}\n{oops}\n").expect_err("invalid");
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
    }

    #[test]
    fn detection_by_content() {
        assert_eq!(detect_format(b"  [{\"a\":1}]"), InputFormat::Json);
        assert_eq!(detect_format(b"{\n \"a\": 1\n}\n"), InputFormat::Json);
        assert_eq!(detect_format(b"{\"a\":1}\n{\"a\":2}\n"), InputFormat::Ndjson);
    }

    #[test]
    fn detection_by_extension() {
        assert_eq!(format_from_extension(Path::new("x.JSONL")), Some(InputFormat::Ndjson));
        assert_eq!(format_from_extension(Path::new("x.json")), Some(InputFormat::Json));
        assert_eq!(format_from_extension(Path::new("-")), None);
    }
}

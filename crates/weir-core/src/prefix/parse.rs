//! The grammar: a configured prefix split into literal text and expressions.

use super::timestamp::Pattern;
use super::{MAX_CONFIGURED_PREFIX_CHARS, Part, PartitionKeySource, PrefixError, PrefixKind};

/// Splits a configured prefix into parts, each with the character offset it starts at.
pub(super) fn parse(kind: PrefixKind, text: &str) -> Result<Vec<(usize, Part)>, PrefixError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_CONFIGURED_PREFIX_CHARS {
        return Err(PrefixError::TooLong {
            kind,
            length: chars.len(),
        });
    }
    let opens_expression = |at: usize| chars[at] == '!' && chars.get(at + 1) == Some(&'{');
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut literal_start = 0;
    let mut pos = 0;
    while pos < chars.len() {
        if !opens_expression(pos) {
            if literal.is_empty() {
                literal_start = pos;
            }
            literal.push(chars[pos]);
            pos += 1;
            continue;
        }
        let start = pos;
        let mut end = start + 2;
        while end < chars.len() && chars[end] != '}' {
            if opens_expression(end) {
                return Err(PrefixError::Unterminated { kind, position: start });
            }
            end += 1;
        }
        if end == chars.len() {
            return Err(PrefixError::Unterminated { kind, position: start });
        }
        if !literal.is_empty() {
            parts.push((literal_start, Part::Literal(std::mem::take(&mut literal))));
        }
        let body: String = chars[start + 2..end].iter().collect();
        parts.push((start, parse_expression(kind, start, &body)?));
        pos = end + 1;
    }
    if !literal.is_empty() {
        parts.push((literal_start, Part::Literal(literal)));
    }
    Ok(parts)
}

fn parse_expression(kind: PrefixKind, position: usize, body: &str) -> Result<Part, PrefixError> {
    let Some((namespace, value)) = body.split_once(':') else {
        return Err(PrefixError::MissingColon {
            kind,
            position,
            expression: body.to_owned(),
        });
    };
    let partition_key = |namespace: PartitionKeySource| {
        if value.is_empty() {
            Err(PrefixError::EmptyPartitionKey {
                kind,
                position,
                namespace,
            })
        } else {
            Ok(Part::PartitionKey(namespace, value.to_owned()))
        }
    };
    match namespace {
        "timestamp" => Pattern::parse(value)
            .map(Part::Timestamp)
            .map_err(|problem| PrefixError::TimestampPattern {
                kind,
                position,
                pattern: value.to_owned(),
                problem,
            }),
        "firehose" => match value {
            "random-string" => Ok(Part::RandomString),
            "error-output-type" => Ok(Part::ErrorOutputType),
            _ => Err(PrefixError::UnknownFirehoseValue {
                kind,
                position,
                value: value.to_owned(),
            }),
        },
        "partitionKeyFromQuery" => partition_key(PartitionKeySource::Query),
        "partitionKeyFromLambda" => partition_key(PartitionKeySource::Lambda),
        _ => Err(PrefixError::UnknownNamespace {
            kind,
            position,
            namespace: namespace.to_owned(),
        }),
    }
}

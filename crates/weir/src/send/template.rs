//! Synthetic records: JSON text with `{{generator args}}` placeholders, parsed once and rendered per
//! record into a reused buffer.
//!
//! A placeholder is replaced by raw text, so the template says whether it is quoted:
//! `{"id":"{{uuid}}","n":{{int 0 100}}}`. Generators:
//!
//! | placeholder | renders |
//! |---|---|
//! | `uuid` | a random UUID v4, `3f2c…-…` (36 characters) |
//! | `int A B` | a random integer from A to B, both included |
//! | `float A B` | a random number from A (included) to B |
//! | `seq` | the record's number in this run: 0, 1, 2, … (unique across connections) |
//! | `now` | the current time, RFC 3339 in UTC with milliseconds: `2026-11-24T10:00:00.123Z` |
//! | `now_ms` | the current time in milliseconds since the Unix epoch |
//! | `choice W1 W2 …` | one of the words, at random (words are separated by spaces) |
//! | `string N` | N random alphanumeric characters |
//! | `bool` | `true` or `false`, at random |

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest `string N` accepted: a record larger than Kinesis's 1 MiB would only be rejected.
const MAX_STRING_LEN: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Text(Box<[u8]>),
    Gen(Generator),
}

#[derive(Debug, Clone, PartialEq)]
enum Generator {
    Uuid,
    Int(i64, i64),
    Float(f64, f64),
    Seq,
    Now,
    NowMs,
    Choice(Vec<String>),
    String(usize),
    Bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("placeholder `{{{{{placeholder}}}}}` at byte {offset}: {reason}")]
    BadPlaceholder {
        placeholder: String,
        offset: usize,
        reason: String,
    },
    #[error("`{{{{` at byte {offset} is not closed by `}}}}`")]
    Unclosed { offset: usize },
    #[error("the template does not render to JSON ({error}); a rendered sample: {sample}")]
    NotJson { error: String, sample: String },
    #[error("the template renders to a JSON {kind}, not an object; a rendered sample: {sample}")]
    NotObject { kind: &'static str, sample: String },
}

/// What a render may vary: the record's number and the random source.
pub struct RenderContext<'a, R: Rng> {
    pub seq: u64,
    pub rng: &'a mut R,
    /// Validation only: every `choice` takes its word at this index (modulo its length), so each word is
    /// rendered at least once.
    choice_index: Option<usize>,
}

impl<'a, R: Rng> RenderContext<'a, R> {
    pub fn new(seq: u64, rng: &'a mut R) -> Self {
        RenderContext {
            seq,
            rng,
            choice_index: None,
        }
    }
}

impl Template {
    /// Parses the placeholders and checks that rendering gives a JSON object (one render per `choice`
    /// word, so a word that breaks the JSON is caught here, not by the server).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let template = Template::parse_placeholders(text)?;
        template.validate()?;
        Ok(template)
    }

    fn parse_placeholders(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest.as_bytes()[..open].into()));
            }
            let inner_start = open + 2;
            let close = rest[inner_start..]
                .find("}}")
                .ok_or(TemplateError::Unclosed { offset: offset + open })?;
            let inner = &rest[inner_start..inner_start + close];
            let generator = parse_generator(inner).map_err(|reason| TemplateError::BadPlaceholder {
                placeholder: inner.to_owned(),
                offset: offset + open,
                reason,
            })?;
            segments.push(Segment::Gen(generator));
            let consumed = inner_start + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.as_bytes().into()));
        }
        Ok(Template { segments })
    }

    fn validate(&self) -> Result<(), TemplateError> {
        let choices = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Gen(Generator::Choice(words)) => words.len(),
                _ => 1,
            })
            .max()
            .unwrap_or(1);
        let mut rng = rand::rng();
        let mut out = Vec::new();
        for index in 0..choices {
            out.clear();
            let mut ctx = RenderContext {
                seq: 0,
                rng: &mut rng,
                choice_index: Some(index),
            };
            self.render(&mut ctx, &mut out);
            let sample = || String::from_utf8_lossy(&out).into_owned();
            let value: serde_json::Value = serde_json::from_slice(&out).map_err(|e| TemplateError::NotJson {
                error: e.to_string(),
                sample: sample(),
            })?;
            let kind = match value {
                serde_json::Value::Object(_) => continue,
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Null => "null",
            };
            return Err(TemplateError::NotObject { kind, sample: sample() });
        }
        Ok(())
    }

    /// Appends one record to `out`.
    pub fn render<R: Rng>(&self, ctx: &mut RenderContext<'_, R>, out: &mut Vec<u8>) {
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.extend_from_slice(text),
                Segment::Gen(generator) => generator.render(ctx, out),
            }
        }
    }
}

fn parse_generator(inner: &str) -> Result<Generator, String> {
    let mut words = inner.split_whitespace();
    let name = words
        .next()
        .ok_or("empty placeholder; expected a generator such as uuid or int 0 100")?;
    let args: Vec<&str> = words.collect();
    let no_args = |g: Generator| {
        if args.is_empty() {
            Ok(g)
        } else {
            Err(format!("{name} takes no arguments"))
        }
    };
    match name {
        "uuid" => no_args(Generator::Uuid),
        "seq" => no_args(Generator::Seq),
        "now" => no_args(Generator::Now),
        "now_ms" => no_args(Generator::NowMs),
        "bool" => no_args(Generator::Bool),
        "int" => {
            let [lo, hi] = two_args(name, &args, "integers")?;
            let (lo, hi) = (parse_number::<i64>(lo)?, parse_number::<i64>(hi)?);
            if lo > hi {
                return Err(format!("int {lo} {hi}: the lower bound is above the upper bound"));
            }
            Ok(Generator::Int(lo, hi))
        }
        "float" => {
            let [lo, hi] = two_args(name, &args, "numbers")?;
            let (lo, hi) = (parse_number::<f64>(lo)?, parse_number::<f64>(hi)?);
            if !lo.is_finite() || !hi.is_finite() || lo > hi {
                return Err(format!("float {lo} {hi}: needs finite bounds, the lower one first"));
            }
            Ok(Generator::Float(lo, hi))
        }
        "choice" => {
            if args.is_empty() {
                return Err("choice needs at least one word: choice a b c".into());
            }
            Ok(Generator::Choice(args.iter().map(|w| (*w).to_owned()).collect()))
        }
        "string" => {
            let [len] = args[..] else {
                return Err("string needs one argument, the length: string 16".into());
            };
            let len = parse_number::<usize>(len)?;
            if len > MAX_STRING_LEN {
                return Err(format!("string {len}: at most {MAX_STRING_LEN} characters"));
            }
            Ok(Generator::String(len))
        }
        other => Err(format!(
            "unknown generator {other:?}; known: uuid, int A B, float A B, seq, now, now_ms, choice W1 W2 …, string N, bool"
        )),
    }
}

fn two_args<'a>(name: &str, args: &[&'a str], what: &str) -> Result<[&'a str; 2], String> {
    match args {
        [lo, hi] => Ok([lo, hi]),
        _ => Err(format!("{name} needs two {what}, the bounds: {name} 0 100")),
    }
}

fn parse_number<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| format!("{s:?} is not a valid number ({e})"))
}

impl Generator {
    fn render<R: Rng>(&self, ctx: &mut RenderContext<'_, R>, out: &mut Vec<u8>) {
        match self {
            Generator::Uuid => {
                let uuid = uuid::Builder::from_random_bytes(ctx.rng.random()).into_uuid();
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                out.extend_from_slice(uuid.hyphenated().encode_lower(&mut buf).as_bytes());
            }
            Generator::Int(lo, hi) => push_display(out, ctx.rng.random_range(*lo..=*hi)),
            Generator::Float(lo, hi) => push_display(out, lo + (hi - lo) * ctx.rng.random::<f64>()),
            Generator::Seq => push_display(out, ctx.seq),
            Generator::Now => {
                let now = DateTime::<Utc>::from(SystemTime::now());
                out.extend_from_slice(now.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
            }
            Generator::NowMs => {
                let ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                push_display(out, ms);
            }
            Generator::Choice(words) => {
                let index = match ctx.choice_index {
                    Some(i) => i % words.len(),
                    None => ctx.rng.random_range(0..words.len()),
                };
                out.extend_from_slice(words[index].as_bytes());
            }
            Generator::String(len) => out.extend((0..*len).map(|_| ctx.rng.sample(Alphanumeric))),
            Generator::Bool => out.extend_from_slice(if ctx.rng.random() { b"true" } else { b"false" }),
        }
    }
}

fn push_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests;

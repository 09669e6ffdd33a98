//! Firehose's S3 prefix expressions: grammar, validation and evaluation, as pure functions.
//!
//! An object's key is `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`; this
//! module computes the first half. A delivery stream has two prefixes, `Prefix` for delivered records and
//! `ErrorOutputPrefix` for failed ones. [`Prefixes::from_config`] checks both against Firehose's rules once,
//! when the configuration is loaded, and [`PrefixTemplate::evaluate`] turns one into the prefix of an
//! object, given a [`PrefixContext`]: the object's instant, its error output type, its partition keys and
//! a seed for random strings.
//!
//! ```
//! use std::collections::BTreeMap;
//! use uuid::Uuid;
//! use weir_core::prefix::{ErrorOutputType, PrefixContext, Prefixes};
//!
//! let prefixes = Prefixes::from_config(
//!     Some("customer_id=!{partitionKeyFromQuery:customer_id}/!{timestamp:yyyy/MM/dd}/"),
//!     Some("errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"),
//!     true, // dynamic partitioning
//! )?;
//! assert_eq!(prefixes.output.query_keys().collect::<Vec<_>>(), ["customer_id"]);
//!
//! let keys = BTreeMap::from([("customer_id".to_owned(), "1234567890".to_owned())]);
//! let batch = Uuid::from_u128(7); // the batch id: seeds `random-string`, so replays repeat keys
//! let at = 1_535_365_800_000; // 2018-08-27T10:30:00Z, the oldest record's arrival
//! let mut ctx = PrefixContext::new(at, batch).with_query_keys(&keys);
//! assert_eq!(prefixes.output.evaluate(&mut ctx)?, "customer_id=1234567890/2018/08/27/");
//!
//! let mut ctx = PrefixContext::new(at, batch).with_error_output_type(ErrorOutputType::PartitioningFailed);
//! assert_eq!(prefixes.error_output.evaluate(&mut ctx)?, "errors/partitioning-failed/2018/08/27/");
//! # Ok::<(), weir_core::prefix::PrefixError>(())
//! ```
//!
//! # Grammar
//!
//! ```text
//! prefix    := ( literal | "!{" namespace ":" value "}" )*
//! namespace := "timestamp" | "firehose" | "partitionKeyFromQuery" | "partitionKeyFromLambda"
//! ```
//!
//! An expression ends at the first `}`, and `!{` may only open one. `timestamp` takes a Java
//! `DateTimeFormatter` pattern: letters `y u M d D H h k K m s S a E`, `'quoted text'` and `''` for a quote;
//! any other ASCII letter is refused with a reason (the week-based `Y`, the zone letters, …), never passed
//! through. All `timestamp` expressions of one evaluation format the same instant, in UTC. `firehose` takes
//! `random-string` (a new string for each occurrence) or `error-output-type` ([`ErrorOutputType`]). The two
//! partition-key namespaces take a key name, looked up in the record's keys from the jq query or from the
//! Lambda's `metadata.partitionKeys`. Errors name the problem and its 0-based character offset.
//!
//! # Firehose's rules
//!
//! From AWS's "Custom prefixes for Amazon S3 objects" (its "Semantic rules"), the Firehose API reference
//! and the dynamic partitioning pages. Each is its own [`PrefixError`] variant:
//!
//! - a configured prefix is at most 1,024 characters (the API's length constraint on `Prefix` and
//!   `ErrorOutputPrefix`); an evaluated one at most 512 ("Neither `Prefix` nor `ErrorOutputPrefix` can be
//!   greater than 512 characters after they're evaluated");
//! - `ErrorOutputPrefix` is required when `Prefix` has expressions ("can be null only if `Prefix` contains no
//!   expressions") and when dynamic partitioning is on, which also requires a `Prefix`;
//! - `!{firehose:error-output-type}` may not appear in `Prefix`, and an `ErrorOutputPrefix` with expressions
//!   must contain it;
//! - partition keys only in `Prefix`, and only with dynamic partitioning (AWS: "Dynamic Partitioning
//!   Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled.").
//!
//! # Where AWS contradicts itself, and what weir does
//!
//! The rule says "If you specify a prefix that doesn't contain a timestamp namespace expression, Firehose
//! appends the expression `!{timestamp:yyyy/MM/dd/HH/}`", and the example table says `myFirehosePrefix`
//! becomes `myFirehosePrefix/2018/08/27/` (a `/` inserted, the hour gone); the same table prints
//! `…/anyMonth/10` and `month=07/day=06/hour=23` "at 10:30 AM UTC on Aug 27, 2018". weir follows what
//! Firehose was seen doing on AWS (floci-io/floci#1857, 2026-07-13, eu-west-1):
//!
//! - A prefix with no expression at all (absent and empty included) gets `yyyy/MM/dd/HH/` appended by plain
//!   concatenation: `legacy` → `legacy2026/07/13/14/`, no prefix → `2026/07/13/14/`. This is the rule as
//!   worded; the example's `/` and missing hour are not what AWS does.
//! - A prefix with any expression gets nothing appended, timestamp or not. The docs' own examples agree
//!   (`myPrefix/!{firehose:random-string}/` → `myPrefix/046b6c7f-0b/`; the dynamic partitioning example key
//!   `customer_id=1234567890/…/hour=20/my-delivery-stream-…`), only the rule's wording does not.
//! - With no `ErrorOutputPrefix` (so a `Prefix` without expressions), failed records go under
//!   `<Prefix>!{firehose:error-output-type}/yyyy/MM/dd/HH/`: the rule's
//!   `<specified-prefix><error-output-type>YYYY/MM/DD/HH/` with the `/` after the type that real keys show
//!   (`processing-failed/2025/03/04/11/…`), and concatenated to the prefix as the main prefix is. The `/`
//!   before the type in the docs' example is, as above, not followed. This one is inferred, not observed.
//! - An `ErrorOutputPrefix` without expressions is treated as such a `Prefix` is (the date appended); AWS
//!   documents nothing for it.
//!
//! `tests/prefix.rs` keeps each documented example with both what the docs print and what weir produces.
//!
//! # Random strings and exactly-once
//!
//! Firehose's `random-string` is random; weir's must not be, because a replay after a crash has to write
//! the same object key again (see [`crate::firehose`]). [`PrefixContext::new`] therefore takes a seed, the
//! batch id, and the `n`-th random string of an evaluation is the first 11 hex digits of a name-based
//! UUID of (seed, prefix kind, `n`): the same in every process and every weir version, with no dependence
//! on `rand`'s algorithms. Callers that do not replay, and tests, may inject any [`RandomStrings`] source
//! instead, such as [`RngStrings`] over a `rand` generator. The strings are lowercase hex, 11 characters:
//! AWS's examples show `5abf82daaa5`, `046b6c7f-0b` and `ztWxkdg3Thg`, so no consumer can rely on an
//! alphabet, and hex is safe on case-insensitive file systems.
//!
//! # Partition values
//!
//! Firehose puts a partition value into the key as it is. weir also writes keys to local file systems,
//! where `../..` or `a/b` would leave or reshape the prefix, so every value passes
//! [`sanitize_partition_value`] ([`PrefixTemplate::evaluate`] calls it itself), which refuses rather than
//! rewrites: an empty value, one over 255 bytes (a value has no `/`, so it lies within one path segment,
//! and no segment can be longer on common file systems), one containing `/`, `\` or a control character,
//! and `.` or `..`. Refusing keeps every key weir does write identical to the key AWS would write, where an
//! encoding would diverge silently; and a record whose prefix can't be evaluated is one Firehose sends to
//! the error output, which [`PrefixError::error_output_type`] tells the caller to do, as
//! `partitioning-failed`. Independently, and also weir's rule rather than AWS's, a template's fixed text is
//! checked at configuration time and each evaluated prefix again: no leading `/`, no `.` or `..` segment,
//! no `\`, no control character.
//!
//! Not supported: Firehose's `CustomTimeZone` (weir formats in UTC, Firehose's default).

mod error;
mod parse;
mod timestamp;

pub use error::{PartitionValueError, PrefixError, UnsafeReason};
pub use timestamp::PatternError;

use chrono::DateTime;
use parse::parse;
use rand::{Rng, RngCore};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use timestamp::Pattern;
use uuid::Uuid;

/// The longest `Prefix` or `ErrorOutputPrefix` Firehose accepts, in characters (its API reference:
/// "Length Constraints: Minimum length of 0. Maximum length of 1024.").
pub const MAX_CONFIGURED_PREFIX_CHARS: usize = 1024;

/// The longest an evaluated prefix may be, in characters (AWS, "Custom prefixes for Amazon S3 objects",
/// semantic rules: "Neither Prefix nor ErrorOutputPrefix can be greater than 512 characters after they're
/// evaluated.").
pub const MAX_EVALUATED_PREFIX_CHARS: usize = 512;

/// The longest partition value, in UTF-8 bytes: NAME_MAX on ext4, XFS and APFS. A value holds no `/`, so it
/// sits within one path segment, and a longer one could not be written to a local file system.
pub const MAX_PARTITION_VALUE_BYTES: usize = 255;

/// The length of `!{firehose:random-string}` ("Evaluates to a random string of 11 characters").
pub const RANDOM_STRING_CHARS: usize = 11;

/// What Firehose appends to a prefix that has no expression, `!{timestamp:yyyy/MM/dd/HH/}`.
pub const DEFAULT_TIMESTAMP_PATTERN: &str = "yyyy/MM/dd/HH/";

/// The namespace of the name-based UUIDs that seeded random strings are cut from.
const RANDOM_STRING_NAMESPACE: Uuid = Uuid::from_u128(0x7765_6972_2d72_616e_646f_6d2d_7374_0001);

/// Which of a delivery stream's two prefixes, named as in Firehose's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixKind {
    /// `Prefix`: delivered records.
    Prefix,
    /// `ErrorOutputPrefix`: records that failed processing, conversion or partitioning.
    ErrorOutputPrefix,
}

impl fmt::Display for PrefixKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrefixKind::Prefix => "Prefix",
            PrefixKind::ErrorOutputPrefix => "ErrorOutputPrefix",
        })
    }
}

/// Where a partition key's value comes from, named as its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKeySource {
    /// `partitionKeyFromQuery`: Firehose's jq query over the JSON record.
    Query,
    /// `partitionKeyFromLambda`: the transformation Lambda's `metadata.partitionKeys`.
    Lambda,
}

impl fmt::Display for PartitionKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PartitionKeySource::Query => "partitionKeyFromQuery",
            PartitionKeySource::Lambda => "partitionKeyFromLambda",
        })
    }
}

/// What `!{firehose:error-output-type}` evaluates to: why the records under the prefix failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorOutputType {
    /// `processing-failed`: the transformation Lambda failed, or returned `ProcessingFailed`.
    ProcessingFailed,
    /// `format-conversion-failed`: record format conversion could not read the record.
    FormatConversionFailed,
    /// `partitioning-failed`: dynamic partitioning could not key the record. Not in AWS's list; it is the
    /// prefix the AWS CDK's integration test `integ.dynamic-partitioning-with-lambda.ts` finds on AWS for
    /// a record the Lambda gave no key.
    PartitioningFailed,
}

impl ErrorOutputType {
    /// The string Firehose puts in the key.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorOutputType::ProcessingFailed => "processing-failed",
            ErrorOutputType::FormatConversionFailed => "format-conversion-failed",
            ErrorOutputType::PartitioningFailed => "partitioning-failed",
        }
    }
}

impl fmt::Display for ErrorOutputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery stream's two prefixes, checked together against Firehose's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    /// `Prefix`, for delivered objects.
    pub output: PrefixTemplate,
    /// `ErrorOutputPrefix`, for error output objects; the default one when none was configured.
    pub error_output: PrefixTemplate,
}

impl Prefixes {
    /// Parses and checks `Prefix` and `ErrorOutputPrefix` as configured (`None` or `""` when unset), for a
    /// delivery stream with or without dynamic partitioning, and applies Firehose's defaults: see the
    /// module documentation.
    pub fn from_config(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
        dynamic_partitioning: bool,
    ) -> Result<Prefixes, PrefixError> {
        let prefix = prefix.filter(|p| !p.is_empty());
        let error_output_prefix = error_output_prefix.filter(|p| !p.is_empty());
        let parsed = match prefix {
            Some(text) => parse(PrefixKind::Prefix, text)?,
            None => Vec::new(),
        };
        let parsed_error = error_output_prefix
            .map(|text| parse(PrefixKind::ErrorOutputPrefix, text))
            .transpose()?;

        for (position, part) in &parsed {
            match part {
                Part::ErrorOutputType => return Err(PrefixError::ErrorOutputTypeInPrefix { position: *position }),
                Part::PartitionKey(namespace, _) if !dynamic_partitioning => {
                    return Err(PrefixError::PartitionKeyWithoutDynamicPartitioning {
                        position: *position,
                        namespace: *namespace,
                    });
                }
                _ => {}
            }
        }
        for (position, part) in parsed_error.iter().flatten() {
            if let Part::PartitionKey(namespace, _) = part {
                return Err(PrefixError::PartitionKeyInErrorPrefix {
                    position: *position,
                    namespace: *namespace,
                });
            }
        }
        if dynamic_partitioning && prefix.is_none() {
            return Err(PrefixError::PrefixRequiredForDynamicPartitioning);
        }

        let error_parts = match parsed_error {
            Some(parsed_error) => {
                let has_expressions = parsed_error.iter().any(|(_, part)| part.is_expression());
                if has_expressions && !parsed_error.iter().any(|(_, part)| *part == Part::ErrorOutputType) {
                    return Err(PrefixError::ErrorOutputTypeMissing);
                }
                with_default_timestamp(parsed_error.into_iter().map(|(_, part)| part).collect())
            }
            None if dynamic_partitioning => return Err(PrefixError::ErrorOutputPrefixRequiredForDynamicPartitioning),
            None if parsed.iter().any(|(_, part)| part.is_expression()) => {
                return Err(PrefixError::ErrorOutputPrefixRequired);
            }
            None => {
                // `<specified-prefix><error-output-type>/yyyy/MM/dd/HH/`; the prefix is all literal here.
                let mut parts: Vec<Part> = parsed.iter().map(|(_, part)| part.clone()).collect();
                parts.push(Part::ErrorOutputType);
                parts.push(Part::Literal("/".to_owned()));
                parts.push(Part::Timestamp(default_pattern()));
                parts
            }
        };
        let output_parts = with_default_timestamp(parsed.into_iter().map(|(_, part)| part).collect());
        Ok(Prefixes {
            output: PrefixTemplate::new(PrefixKind::Prefix, output_parts)?,
            error_output: PrefixTemplate::new(PrefixKind::ErrorOutputPrefix, error_parts)?,
        })
    }
}

/// One parsed and checked prefix, defaults applied. Its [`Display`](fmt::Display) writes it back as an
/// expression, the appended default included (`legacy` shows as `legacy!{timestamp:yyyy/MM/dd/HH/}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTemplate {
    kind: PrefixKind,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(Pattern),
    RandomString,
    ErrorOutputType,
    PartitionKey(PartitionKeySource, String),
}

impl Part {
    fn is_expression(&self) -> bool {
        !matches!(self, Part::Literal(_))
    }
}

impl PrefixTemplate {
    /// Checks the template's fixed text (weir's rule: it must not be able to leave its directory).
    fn new(kind: PrefixKind, parts: Vec<Part>) -> Result<PrefixTemplate, PrefixError> {
        let template = PrefixTemplate { kind, parts };
        // The fixed text with a stand-in for each variable part. Stand-ins are non-empty and free of `.`,
        // `/` and `\`, as every real value is, so a problem found here is in the fixed text itself.
        let mut skeleton = String::new();
        for part in &template.parts {
            match part {
                Part::Literal(text) => skeleton.push_str(text),
                Part::Timestamp(pattern) => pattern.format(&DateTime::UNIX_EPOCH, &mut skeleton),
                _ => skeleton.push('x'),
            }
        }
        path_safety(&skeleton).map_err(|reason| PrefixError::UnsafeTemplate { kind, reason })?;
        Ok(template)
    }

    /// Which prefix this is.
    pub fn kind(&self) -> PrefixKind {
        self.kind
    }

    /// The keys of its `!{partitionKeyFromQuery:…}` expressions, each once, in order: what the jq query
    /// must extract.
    pub fn query_keys(&self) -> impl Iterator<Item = &str> {
        self.partition_keys(PartitionKeySource::Query)
    }

    /// The keys of its `!{partitionKeyFromLambda:…}` expressions, each once, in order: what the Lambda's
    /// `metadata.partitionKeys` must hold.
    pub fn lambda_keys(&self) -> impl Iterator<Item = &str> {
        self.partition_keys(PartitionKeySource::Lambda)
    }

    /// Whether it has `!{firehose:random-string}`, whose value [`PrefixContext`]'s seed decides.
    pub fn has_random(&self) -> bool {
        self.parts.contains(&Part::RandomString)
    }

    fn partition_keys(&self, source: PartitionKeySource) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .enumerate()
            .filter_map(move |(index, part)| match part {
                Part::PartitionKey(namespace, key) if *namespace == source && !self.parts[..index].contains(part) => {
                    Some(key.as_str())
                }
                _ => None,
            })
    }

    /// The prefix of one object. Every `timestamp` expression formats the context's instant in UTC; each
    /// `random-string` is a new string from the context's seed (or injected source); partition values go
    /// through [`sanitize_partition_value`]. Fails when a value is missing or refused, or the result breaks
    /// Firehose's 512-character limit; [`PrefixError::error_output_type`] says where such a record goes.
    pub fn evaluate(&self, ctx: &mut PrefixContext<'_>) -> Result<String, PrefixError> {
        let time = DateTime::from_timestamp_millis(ctx.oldest_arrival_ms);
        let mut out = String::new();
        let mut random_instance = 0;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Timestamp(pattern) => {
                    let time = time.ok_or(PrefixError::InstantOutOfRange {
                        epoch_ms: ctx.oldest_arrival_ms,
                    })?;
                    pattern.format(&time, &mut out);
                }
                Part::RandomString => {
                    out.push_str(&ctx.random_string(self.kind, random_instance)?);
                    random_instance += 1;
                }
                Part::ErrorOutputType => {
                    let error_output_type = ctx.error_output_type.ok_or(PrefixError::MissingErrorOutputType)?;
                    out.push_str(error_output_type.as_str());
                }
                Part::PartitionKey(namespace, key) => {
                    let keys = match namespace {
                        PartitionKeySource::Query => ctx.query_keys,
                        PartitionKeySource::Lambda => ctx.lambda_keys,
                    };
                    let value = keys.and_then(|keys| keys.partition_value(key)).ok_or_else(|| {
                        PrefixError::MissingPartitionKey {
                            namespace: *namespace,
                            key: key.clone(),
                        }
                    })?;
                    let value =
                        sanitize_partition_value(value).map_err(|problem| PrefixError::InvalidPartitionValue {
                            namespace: *namespace,
                            key: key.clone(),
                            problem,
                        })?;
                    out.push_str(value);
                }
            }
        }
        let length = out.chars().count();
        if length > MAX_EVALUATED_PREFIX_CHARS {
            return Err(PrefixError::EvaluatedTooLong {
                kind: self.kind,
                length,
            });
        }
        if let Err(reason) = path_safety(&out) {
            return Err(PrefixError::UnsafeEvaluatedPrefix {
                kind: self.kind,
                prefix: out,
                reason,
            });
        }
        Ok(out)
    }
}

impl fmt::Display for PrefixTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Timestamp(pattern) => write!(f, "!{{timestamp:{}}}", pattern.source())?,
                Part::RandomString => f.write_str("!{firehose:random-string}")?,
                Part::ErrorOutputType => f.write_str("!{firehose:error-output-type}")?,
                Part::PartitionKey(namespace, key) => write!(f, "!{{{namespace}:{key}}}")?,
            }
        }
        Ok(())
    }
}

/// A record's partition keys, by name: a `BTreeMap` or `HashMap` of strings, or anything else that can look
/// one up.
pub trait PartitionKeys {
    /// The value of `key`, if the record has one.
    fn partition_value(&self, key: &str) -> Option<&str>;
}

impl PartitionKeys for BTreeMap<String, String> {
    fn partition_value(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> PartitionKeys for HashMap<String, String, S> {
    fn partition_value(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A source of `!{firehose:random-string}` values, for callers that want something other than the
/// seeded default (tests, or keys that need not survive a replay).
pub trait RandomStrings {
    /// The next value: ASCII letters, digits, `-` or `_` ([`RANDOM_STRING_CHARS`] of them, as Firehose's).
    fn next_random_string(&mut self) -> String;
}

/// Random strings drawn from a `rand` generator: 11 lowercase hex digits each. Not replay-safe: a replay
/// gets new strings, so new keys.
#[derive(Debug, Clone)]
pub struct RngStrings<R>(pub R);

impl<R: RngCore> RandomStrings for RngStrings<R> {
    fn next_random_string(&mut self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..RANDOM_STRING_CHARS)
            .map(|_| char::from(HEX[self.0.random_range(0..HEX.len())]))
            .collect()
    }
}

/// What one evaluation needs besides the template.
pub struct PrefixContext<'a> {
    oldest_arrival_ms: i64,
    seed: Uuid,
    error_output_type: Option<ErrorOutputType>,
    query_keys: Option<&'a dyn PartitionKeys>,
    lambda_keys: Option<&'a dyn PartitionKeys>,
    random: Option<&'a mut dyn RandomStrings>,
}

impl<'a> PrefixContext<'a> {
    /// A context for an object whose oldest record arrived at `oldest_arrival_ms` (epoch milliseconds),
    /// the instant every `timestamp` expression formats. `seed` decides every `random-string`: pass the
    /// object's batch id, so a replay of the batch evaluates to the same prefix.
    pub fn new(oldest_arrival_ms: i64, seed: Uuid) -> PrefixContext<'a> {
        PrefixContext {
            oldest_arrival_ms,
            seed,
            error_output_type: None,
            query_keys: None,
            lambda_keys: None,
            random: None,
        }
    }

    /// Why the object's records failed, for `!{firehose:error-output-type}`.
    pub fn with_error_output_type(mut self, error_output_type: ErrorOutputType) -> PrefixContext<'a> {
        self.error_output_type = Some(error_output_type);
        self
    }

    /// The record's keys from the jq query, for `!{partitionKeyFromQuery:…}`.
    pub fn with_query_keys(mut self, keys: &'a dyn PartitionKeys) -> PrefixContext<'a> {
        self.query_keys = Some(keys);
        self
    }

    /// The record's keys from the Lambda's `metadata.partitionKeys`, for `!{partitionKeyFromLambda:…}`.
    pub fn with_lambda_keys(mut self, keys: &'a dyn PartitionKeys) -> PrefixContext<'a> {
        self.lambda_keys = Some(keys);
        self
    }

    /// Draws random strings from `source` instead of the seed.
    pub fn with_random(mut self, source: &'a mut dyn RandomStrings) -> PrefixContext<'a> {
        self.random = Some(source);
        self
    }

    fn random_string(&mut self, kind: PrefixKind, instance: u64) -> Result<String, PrefixError> {
        let Some(source) = self.random.as_deref_mut() else {
            return Ok(seeded_random_string(self.seed, kind, instance));
        };
        let value = source.next_random_string();
        let safe = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if safe {
            Ok(value)
        } else {
            Err(PrefixError::InvalidRandomString { value })
        }
    }
}

/// The `instance`-th random string of a `kind` prefix evaluated with `seed`: the first 11 hex digits of a
/// version-5 UUID, which are all hash (the version digit comes later).
fn seeded_random_string(seed: Uuid, kind: PrefixKind, instance: u64) -> String {
    let mut name = [0u8; 25];
    name[..16].copy_from_slice(seed.as_bytes());
    name[16] = match kind {
        PrefixKind::Prefix => 0,
        PrefixKind::ErrorOutputPrefix => 1,
    };
    name[17..].copy_from_slice(&instance.to_be_bytes());
    let hex = Uuid::new_v5(&RANDOM_STRING_NAMESPACE, &name).simple().to_string();
    hex[..RANDOM_STRING_CHARS].to_owned()
}

/// Checks one partition value before it goes into a key, and returns it unchanged: see the module
/// documentation for why values are refused rather than encoded. [`PrefixTemplate::evaluate`] calls this
/// on every value; callers may call it earlier, to route a bad record before buffering it.
pub fn sanitize_partition_value(value: &str) -> Result<&str, PartitionValueError> {
    if value.is_empty() {
        return Err(PartitionValueError::Empty);
    }
    if value.len() > MAX_PARTITION_VALUE_BYTES {
        return Err(PartitionValueError::TooLong { bytes: value.len() });
    }
    if let Some(control) = value.chars().find(|c| c.is_control()) {
        return Err(PartitionValueError::ControlCharacter {
            code: u32::from(control),
        });
    }
    if value.contains('/') {
        return Err(PartitionValueError::Slash);
    }
    if value.contains('\\') {
        return Err(PartitionValueError::Backslash);
    }
    match value {
        "." => Err(PartitionValueError::DotSegment(".")),
        ".." => Err(PartitionValueError::DotSegment("..")),
        _ => Ok(value),
    }
}

/// Whether a prefix stays below its directory when used as a relative local path.
fn path_safety(prefix: &str) -> Result<(), UnsafeReason> {
    if prefix.chars().any(char::is_control) {
        return Err(UnsafeReason::ControlCharacter);
    }
    if prefix.contains('\\') {
        return Err(UnsafeReason::Backslash);
    }
    if prefix.starts_with('/') {
        return Err(UnsafeReason::LeadingSlash);
    }
    if prefix.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(UnsafeReason::DotSegment);
    }
    Ok(())
}

fn default_pattern() -> Pattern {
    Pattern::parse(DEFAULT_TIMESTAMP_PATTERN).expect("the default timestamp pattern is valid")
}

/// Firehose's default: a prefix without expressions gets `yyyy/MM/dd/HH/` appended, by concatenation.
fn with_default_timestamp(mut parts: Vec<Part>) -> Vec<Part> {
    if !parts.iter().any(Part::is_expression) {
        parts.push(Part::Timestamp(default_pattern()));
    }
    parts
}

#[cfg(test)]
mod tests;

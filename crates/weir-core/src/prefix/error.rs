//! Why a prefix is refused or cannot be evaluated.

use super::{
    ErrorOutputType, MAX_CONFIGURED_PREFIX_CHARS, MAX_EVALUATED_PREFIX_CHARS, MAX_PARTITION_VALUE_BYTES,
    PartitionKeySource, PatternError, PrefixKind,
};
use std::fmt;
use thiserror::Error;

/// Why a prefix, fixed or evaluated, could leave its place under the bucket on a local file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    /// It starts with `/`: an absolute path.
    LeadingSlash,
    /// A `/`-separated segment is `.` or `..`.
    DotSegment,
    /// It contains `\`, a path separator on Windows.
    Backslash,
    /// It contains a control character (Unicode category Cc, NUL included).
    ControlCharacter,
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafeReason::LeadingSlash => "it starts with `/`, which makes a local path absolute",
            UnsafeReason::DotSegment => "it has a `.` or `..` path segment, which moves a local path",
            UnsafeReason::Backslash => "it contains `\\`, a path separator on Windows",
            UnsafeReason::ControlCharacter => "it contains a control character",
        })
    }
}

/// Why [`sanitize_partition_value`](super::sanitize_partition_value) refused a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PartitionValueError {
    /// The value is empty: its segment would vanish.
    #[error("the value is empty")]
    Empty,
    /// The value is over [`MAX_PARTITION_VALUE_BYTES`].
    #[error("the value is {bytes} bytes; a path segment holds at most {MAX_PARTITION_VALUE_BYTES}")]
    TooLong {
        /// Its length in UTF-8 bytes.
        bytes: usize,
    },
    /// The value contains `/`: it would add path segments.
    #[error("the value contains `/`, which would add path segments")]
    Slash,
    /// The value contains `\`, a path separator on Windows.
    #[error("the value contains `\\`, a path separator on Windows")]
    Backslash,
    /// The value contains a control character.
    #[error("the value contains the control character U+{code:04X}")]
    ControlCharacter {
        /// The character's code point.
        code: u32,
    },
    /// The value is `.` or `..`, a relative path segment.
    #[error("the value is `{0}`, a relative path segment")]
    DotSegment(&'static str),
}

/// Why a prefix was refused at configuration or could not be evaluated. Configuration errors carry the
/// prefix they are in and a 0-based character offset into it; see [`PrefixError::error_output_type`] for
/// which evaluation errors belong to the record rather than the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefixError {
    /// A configured prefix over [`MAX_CONFIGURED_PREFIX_CHARS`].
    #[error("{kind} is {length} characters; Firehose accepts at most {MAX_CONFIGURED_PREFIX_CHARS}")]
    TooLong {
        /// Which prefix.
        kind: PrefixKind,
        /// Its length in characters.
        length: usize,
    },
    /// A `!{` with no `}` before the end of the prefix or the next `!{`.
    #[error("{kind}: the `!{{` at offset {position} is not closed by `}}` before the end or the next `!{{`")]
    Unterminated {
        /// Which prefix.
        kind: PrefixKind,
        /// Where the `!{` is.
        position: usize,
    },
    /// An expression without the `:` between namespace and value.
    #[error("{kind}: `!{{{expression}}}` at offset {position} has no `:`; expressions are `!{{namespace:value}}`")]
    MissingColon {
        /// Which prefix.
        kind: PrefixKind,
        /// Where the `!{` is.
        position: usize,
        /// The text between the braces.
        expression: String,
    },
    /// A namespace other than Firehose's four.
    #[error(
        "{kind}: unknown namespace `{namespace}` at offset {position}; Firehose has timestamp, firehose, \
         partitionKeyFromQuery and partitionKeyFromLambda"
    )]
    UnknownNamespace {
        /// Which prefix.
        kind: PrefixKind,
        /// Where the `!{` is.
        position: usize,
        /// The namespace as written.
        namespace: String,
    },
    /// A `firehose` value other than `random-string` and `error-output-type`.
    #[error(
        "{kind}: `!{{firehose:{value}}}` at offset {position} is unknown; the firehose namespace has \
         random-string and error-output-type"
    )]
    UnknownFirehoseValue {
        /// Which prefix.
        kind: PrefixKind,
        /// Where the `!{` is.
        position: usize,
        /// The value as written.
        value: String,
    },
    /// A partition-key expression with no key name.
    #[error("{kind}: `!{{{namespace}:}}` at offset {position} names no partition key")]
    EmptyPartitionKey {
        /// Which prefix.
        kind: PrefixKind,
        /// Where the `!{` is.
        position: usize,
        /// Which partition-key namespace.
        namespace: PartitionKeySource,
    },
    /// A `timestamp` pattern Java would refuse, or that uses letters weir does not implement.
    #[error("{kind}: `!{{timestamp:{pattern}}}` at offset {position}: {problem}")]
    TimestampPattern {
        /// Which prefix.
        kind: PrefixKind,
        /// Where the `!{` is.
        position: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it (its offsets count from the pattern's start).
        problem: PatternError,
    },
    /// No `ErrorOutputPrefix` although `Prefix` has expressions.
    #[error(
        "ErrorOutputPrefix is required because Prefix contains expressions (Firehose: \"ErrorOutputPrefix \
         can be null only if Prefix contains no expressions\")"
    )]
    ErrorOutputPrefixRequired,
    /// No `ErrorOutputPrefix` although dynamic partitioning is enabled.
    #[error("ErrorOutputPrefix is required when dynamic partitioning is enabled")]
    ErrorOutputPrefixRequiredForDynamicPartitioning,
    /// No `Prefix` although dynamic partitioning is enabled.
    #[error("Prefix is required when dynamic partitioning is enabled")]
    PrefixRequiredForDynamicPartitioning,
    /// `!{firehose:error-output-type}` in `Prefix`.
    #[error("Prefix can't contain `!{{firehose:error-output-type}}` (offset {position}); only ErrorOutputPrefix can")]
    ErrorOutputTypeInPrefix {
        /// Where the `!{` is.
        position: usize,
    },
    /// An `ErrorOutputPrefix` with expressions but no `!{firehose:error-output-type}`.
    #[error(
        "ErrorOutputPrefix has expressions, so Firehose requires at least one \
         `!{{firehose:error-output-type}}` in it"
    )]
    ErrorOutputTypeMissing,
    /// A partition-key expression in `ErrorOutputPrefix`.
    #[error("ErrorOutputPrefix can't contain `!{{{namespace}:…}}` (offset {position}); keys are for Prefix only")]
    PartitionKeyInErrorPrefix {
        /// Where the `!{` is.
        position: usize,
        /// Which partition-key namespace.
        namespace: PartitionKeySource,
    },
    /// A partition-key expression in `Prefix` without dynamic partitioning.
    #[error(
        "Prefix: `!{{{namespace}:…}}` at offset {position} needs dynamic partitioning (Firehose: \"Dynamic \
         Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled.\")"
    )]
    PartitionKeyWithoutDynamicPartitioning {
        /// Where the `!{` is.
        position: usize,
        /// Which partition-key namespace.
        namespace: PartitionKeySource,
    },
    /// A template whose fixed text could leave the bucket's directory (weir's rule, not AWS's).
    #[error("{kind} is refused because {reason}")]
    UnsafeTemplate {
        /// Which prefix.
        kind: PrefixKind,
        /// What is wrong.
        reason: UnsafeReason,
    },
    /// An instant chrono cannot represent (about 262,000 years from the epoch).
    #[error("{epoch_ms} ms since the epoch is outside the representable dates")]
    InstantOutOfRange {
        /// The instant given.
        epoch_ms: i64,
    },
    /// `ErrorOutputPrefix` evaluated without an [`ErrorOutputType`] in the context: a caller's bug.
    #[error("ErrorOutputPrefix has `!{{firehose:error-output-type}}` but no error output type was given")]
    MissingErrorOutputType,
    /// The record has no value for a partition key the prefix uses.
    #[error("`!{{{namespace}:{key}}}`: the record has no partition key `{key}`")]
    MissingPartitionKey {
        /// Which partition-key namespace.
        namespace: PartitionKeySource,
        /// The key.
        key: String,
    },
    /// The record's value for a partition key was refused by
    /// [`sanitize_partition_value`](super::sanitize_partition_value).
    #[error("`!{{{namespace}:{key}}}`: {problem}")]
    InvalidPartitionValue {
        /// Which partition-key namespace.
        namespace: PartitionKeySource,
        /// The key.
        key: String,
        /// Why the value was refused.
        problem: PartitionValueError,
    },
    /// An injected [`RandomStrings`](super::RandomStrings) source returned something not safe in a key.
    #[error("the random source returned {value:?}; a random string must be ASCII letters, digits, `-` or `_`")]
    InvalidRandomString {
        /// What it returned.
        value: String,
    },
    /// An evaluated prefix over [`MAX_EVALUATED_PREFIX_CHARS`].
    #[error("{kind} evaluates to {length} characters; Firehose allows at most {MAX_EVALUATED_PREFIX_CHARS}")]
    EvaluatedTooLong {
        /// Which prefix.
        kind: PrefixKind,
        /// The evaluated length in characters.
        length: usize,
    },
    /// An evaluated prefix that could leave the bucket's directory. The configuration-time checks and
    /// [`sanitize_partition_value`](super::sanitize_partition_value) should make this unreachable; it is
    /// checked anyway.
    #[error("{kind} evaluates to {prefix:?}, refused because {reason}")]
    UnsafeEvaluatedPrefix {
        /// Which prefix.
        kind: PrefixKind,
        /// The evaluated prefix.
        prefix: String,
        /// What is wrong.
        reason: UnsafeReason,
    },
}

impl PrefixError {
    /// The error output type to deliver the record under when this error is about the record's own data
    /// (a missing or refused partition value, or a `Prefix` that evaluates too long), as Firehose sends
    /// records it cannot partition to the error output. `None` for configuration errors and caller bugs.
    pub fn error_output_type(&self) -> Option<ErrorOutputType> {
        match self {
            PrefixError::MissingPartitionKey { .. }
            | PrefixError::InvalidPartitionValue { .. }
            | PrefixError::EvaluatedTooLong {
                kind: PrefixKind::Prefix,
                ..
            }
            | PrefixError::UnsafeEvaluatedPrefix {
                kind: PrefixKind::Prefix,
                ..
            } => Some(ErrorOutputType::PartitioningFailed),
            _ => None,
        }
    }
}

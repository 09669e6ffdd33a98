//! The prefix module's unit tests; the golden table of AWS's examples is in `tests/prefix.rs`.

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// 2018-08-27T10:30:00Z, the instant of AWS's examples.
const AT: i64 = 1_535_365_800_000;
const SEED: Uuid = Uuid::from_u128(0x5eed);

fn prefixes(prefix: Option<&str>, error: Option<&str>, dynamic: bool) -> Prefixes {
    Prefixes::from_config(prefix, error, dynamic).unwrap_or_else(|e| panic!("{prefix:?} / {error:?} refused: {e}"))
}

fn refused(prefix: Option<&str>, error: Option<&str>, dynamic: bool) -> PrefixError {
    match Prefixes::from_config(prefix, error, dynamic) {
        Ok(accepted) => panic!("{prefix:?} / {error:?} accepted: {accepted:?}"),
        Err(e) => e,
    }
}

fn eval(template: &PrefixTemplate) -> Result<String, PrefixError> {
    template.evaluate(&mut PrefixContext::new(AT, SEED).with_error_output_type(ErrorOutputType::ProcessingFailed))
}

fn query_prefix(template: &str) -> PrefixTemplate {
    prefixes(Some(template), Some("errors/!{firehose:error-output-type}/"), true).output
}

fn eval_with_query(template: &PrefixTemplate, key: &str, value: &str) -> Result<String, PrefixError> {
    let keys = BTreeMap::from([(key.to_owned(), value.to_owned())]);
    template.evaluate(&mut PrefixContext::new(AT, SEED).with_query_keys(&keys))
}

#[test]
fn grammar_errors_name_the_problem_and_offset() {
    use PrefixKind::{ErrorOutputPrefix, Prefix};
    assert_eq!(
        refused(Some("a/!{timestamp:yyyy"), Some("e/"), false),
        PrefixError::Unterminated {
            kind: Prefix,
            position: 2
        }
    );
    assert_eq!(
        refused(Some("!{timestamp:yyyy!{firehose:random-string}/"), Some("e/"), false),
        PrefixError::Unterminated {
            kind: Prefix,
            position: 0
        }
    );
    assert_eq!(
        refused(None, Some("e/!{timestamp}"), false),
        PrefixError::MissingColon {
            kind: ErrorOutputPrefix,
            position: 2,
            expression: "timestamp".to_owned()
        }
    );
    assert_eq!(
        refused(Some("x/!{Timestamp:yyyy}"), Some("e/"), false),
        PrefixError::UnknownNamespace {
            kind: Prefix,
            position: 2,
            namespace: "Timestamp".to_owned()
        }
    );
    assert_eq!(
        refused(Some("!{firehose:random}"), Some("e/"), false),
        PrefixError::UnknownFirehoseValue {
            kind: Prefix,
            position: 0,
            value: "random".to_owned()
        }
    );
    assert_eq!(
        refused(Some("k=!{partitionKeyFromLambda:}/"), Some("e/"), true),
        PrefixError::EmptyPartitionKey {
            kind: Prefix,
            position: 2,
            namespace: PartitionKeySource::Lambda
        }
    );
    assert!(matches!(
        refused(Some("é/!{timestamp:YYYY}"), Some("e/"), false),
        PrefixError::TimestampPattern {
            kind: Prefix,
            position: 2,
            problem: PatternError::UnsupportedLetter { letter: 'Y', .. },
            ..
        }
    ));
    let too_long = "a".repeat(MAX_CONFIGURED_PREFIX_CHARS + 1);
    assert_eq!(
        refused(None, Some(&too_long), false),
        PrefixError::TooLong {
            kind: ErrorOutputPrefix,
            length: 1025
        }
    );
    assert!(Prefixes::from_config(Some(&"a".repeat(MAX_CONFIGURED_PREFIX_CHARS)), None, false).is_ok());
}

#[test]
fn braces_and_bangs_outside_expressions_are_literal() {
    let p = prefixes(Some("a}b!c{d!"), None, false);
    assert_eq!(p.output.to_string(), "a}b!c{d!!{timestamp:yyyy/MM/dd/HH/}");
    assert_eq!(eval(&p.output).as_deref(), Ok("a}b!c{d!2018/08/27/10/"));
}

#[test]
fn each_semantic_rule_is_its_own_error() {
    assert_eq!(
        refused(Some("!{timestamp:yyyy}/"), None, false),
        PrefixError::ErrorOutputPrefixRequired
    );
    assert_eq!(
        refused(Some("a/!{firehose:error-output-type}/"), Some("e/"), false),
        PrefixError::ErrorOutputTypeInPrefix { position: 2 }
    );
    assert_eq!(
        refused(None, Some("e/!{timestamp:yyyy}/"), false),
        PrefixError::ErrorOutputTypeMissing
    );
    assert_eq!(
        refused(
            Some("!{partitionKeyFromQuery:k}/"),
            Some("e/!{partitionKeyFromQuery:k}/"),
            true
        ),
        PrefixError::PartitionKeyInErrorPrefix {
            position: 2,
            namespace: PartitionKeySource::Query
        }
    );
    assert_eq!(
        refused(
            Some("t/!{partitionKeyFromLambda:k}/"),
            Some("e/!{firehose:error-output-type}"),
            false
        ),
        PrefixError::PartitionKeyWithoutDynamicPartitioning {
            position: 2,
            namespace: PartitionKeySource::Lambda
        }
    );
    assert_eq!(
        refused(None, Some("e/"), true),
        PrefixError::PrefixRequiredForDynamicPartitioning
    );
    assert_eq!(
        refused(Some("static/"), None, true),
        PrefixError::ErrorOutputPrefixRequiredForDynamicPartitioning
    );
    let messages = [
        PrefixError::ErrorOutputPrefixRequired.to_string(),
        PrefixError::ErrorOutputTypeMissing.to_string(),
        refused(Some("t/!{partitionKeyFromLambda:k}/"), Some("e/"), false).to_string(),
    ];
    assert!(messages[0].contains("can be null only if Prefix contains no expressions"));
    assert!(messages[1].contains("error-output-type"));
    assert!(messages[2].contains("only be part of a prefix expression when Dynamic Partitioning is enabled"));
}

#[test]
fn defaults_are_appended_only_without_expressions() {
    let p = prefixes(None, None, false);
    assert_eq!(p.output.to_string(), "!{timestamp:yyyy/MM/dd/HH/}");
    assert_eq!(
        p.error_output.to_string(),
        "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH/}"
    );
    assert_eq!(
        prefixes(Some(""), Some(""), false),
        p,
        "empty strings are unset prefixes"
    );
    let p = prefixes(Some("logs/"), Some("failed/"), false);
    assert_eq!(eval(&p.output).as_deref(), Ok("logs/2018/08/27/10/"));
    assert_eq!(eval(&p.error_output).as_deref(), Ok("failed/2018/08/27/10/"));
    let p = prefixes(
        Some("r/!{firehose:random-string}/"),
        Some("e/!{firehose:error-output-type}/"),
        false,
    );
    assert_eq!(p.output.to_string(), "r/!{firehose:random-string}/");
    assert_eq!(p.error_output.to_string(), "e/!{firehose:error-output-type}/");
}

#[test]
fn all_timestamps_format_one_instant() {
    let p = prefixes(
        Some("!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH-mm-ss.SSS}/"),
        Some("e/!{firehose:error-output-type}"),
        false,
    );
    let at = AT + 59_999; // 10:30:59.999: a clock read per expression would tick over here
    let prefix = p.output.evaluate(&mut PrefixContext::new(at, SEED));
    assert_eq!(prefix.as_deref(), Ok("2018/08/27/10-30-59.999/"));
}

#[test]
fn seeded_random_strings_repeat_for_a_seed_and_differ_per_instance() {
    let p = prefixes(
        Some("!{firehose:random-string}/!{firehose:random-string}/"),
        Some("e/!{firehose:random-string}/!{firehose:error-output-type}"),
        false,
    );
    assert!(p.output.has_random());
    let first = eval(&p.output).expect("evaluates");
    assert_eq!(
        eval(&p.output).as_deref(),
        Ok(first.as_str()),
        "a replay gets the same prefix"
    );
    let (a, b) = first.trim_end_matches('/').split_once('/').expect("two strings");
    for s in [a, b] {
        assert_eq!(s.len(), RANDOM_STRING_CHARS);
        assert!(
            s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{s}"
        );
    }
    assert_ne!(a, b, "each occurrence is a new string");
    let other = p.output.evaluate(&mut PrefixContext::new(AT, Uuid::from_u128(1)));
    assert_ne!(other.as_deref(), Ok(first.as_str()), "another batch, other strings");
    // Pinned (computed independently with Python's hashlib): a change here re-keys every replay of a batch
    // that an earlier weir version wrote, turning exactly-once into duplicates.
    assert_eq!(first, "b2abe2fa318/a9f495c6988/");
    let error_prefix = p
        .error_output
        .evaluate(&mut PrefixContext::new(AT, SEED).with_error_output_type(ErrorOutputType::ProcessingFailed));
    assert_eq!(error_prefix.as_deref(), Ok("e/d2f90d3d647/processing-failed"));
}

#[test]
fn injected_random_sources_are_used_and_checked() {
    let p = prefixes(
        Some("r=!{firehose:random-string}/"),
        Some("e/!{firehose:error-output-type}"),
        false,
    );
    let mut rng = RngStrings(StdRng::seed_from_u64(7));
    let a = p
        .output
        .evaluate(&mut PrefixContext::new(AT, SEED).with_random(&mut rng));
    let mut rng = RngStrings(StdRng::seed_from_u64(7));
    let b = p
        .output
        .evaluate(&mut PrefixContext::new(AT, SEED).with_random(&mut rng));
    assert_eq!(a, b);
    let a = a.expect("evaluates");
    assert_eq!(a.len(), "r=".len() + RANDOM_STRING_CHARS + 1);

    struct Fixed(&'static str);
    impl RandomStrings for Fixed {
        fn next_random_string(&mut self) -> String {
            self.0.to_owned()
        }
    }
    for bad in ["../x", "a/b", "", "a\\b", "é"] {
        let mut source = Fixed(bad);
        let result = p
            .output
            .evaluate(&mut PrefixContext::new(AT, SEED).with_random(&mut source));
        assert_eq!(result, Err(PrefixError::InvalidRandomString { value: bad.to_owned() }));
    }
}

#[test]
fn partition_keys_are_listed_once_in_order() {
    let p = prefixes(
        Some(concat!(
            "!{partitionKeyFromQuery:b}/!{partitionKeyFromLambda:a}/",
            "!{partitionKeyFromQuery:b}-!{partitionKeyFromQuery:c}/",
        )),
        Some("e/!{firehose:error-output-type}/"),
        true,
    );
    assert_eq!(p.output.query_keys().collect::<Vec<_>>(), ["b", "c"]);
    assert_eq!(p.output.lambda_keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(p.error_output.query_keys().count(), 0);
    assert!(!p.output.has_random());
}

#[test]
fn missing_and_refused_values_route_to_partitioning_failed() {
    let template = query_prefix("id=!{partitionKeyFromQuery:id}/");
    assert_eq!(eval_with_query(&template, "id", "42").as_deref(), Ok("id=42/"));
    let missing = eval_with_query(&template, "other", "42");
    assert_eq!(
        missing,
        Err(PrefixError::MissingPartitionKey {
            namespace: PartitionKeySource::Query,
            key: "id".to_owned()
        })
    );
    let lambda_only = template.evaluate(&mut PrefixContext::new(AT, SEED));
    assert!(matches!(lambda_only, Err(PrefixError::MissingPartitionKey { .. })));
    for (value, problem) in [
        ("", PartitionValueError::Empty),
        ("..", PartitionValueError::DotSegment("..")),
        (".", PartitionValueError::DotSegment(".")),
        ("../../etc", PartitionValueError::Slash),
        ("a\\b", PartitionValueError::Backslash),
        ("a\0b", PartitionValueError::ControlCharacter { code: 0 }),
        ("line\nbreak", PartitionValueError::ControlCharacter { code: 10 }),
        ("\u{85}", PartitionValueError::ControlCharacter { code: 0x85 }),
    ] {
        let err = eval_with_query(&template, "id", value).expect_err(value);
        assert_eq!(
            err,
            PrefixError::InvalidPartitionValue {
                namespace: PartitionKeySource::Query,
                key: "id".to_owned(),
                problem
            }
        );
        assert_eq!(err.error_output_type(), Some(ErrorOutputType::PartitioningFailed));
    }
    assert_eq!(
        missing.map_err(|e| e.error_output_type()),
        Err(Some(ErrorOutputType::PartitioningFailed))
    );
    assert_eq!(PrefixError::ErrorOutputPrefixRequired.error_output_type(), None);
}

#[test]
fn partition_values_are_kept_as_they_are() {
    for value in ["a b", "...", ".hidden", "x..y", "ü", "%2F", "a=b&c", "😀"] {
        assert_eq!(sanitize_partition_value(value), Ok(value));
    }
    let longest = "é".repeat(MAX_PARTITION_VALUE_BYTES / 2);
    assert_eq!(sanitize_partition_value(&longest), Ok(longest.as_str()));
    let too_long = "a".repeat(MAX_PARTITION_VALUE_BYTES + 1);
    assert_eq!(
        sanitize_partition_value(&too_long),
        Err(PartitionValueError::TooLong { bytes: 256 })
    );
}

#[test]
fn evaluated_prefixes_over_512_characters_are_refused() {
    let keys = BTreeMap::from([("a".to_owned(), "x".repeat(255)), ("b".to_owned(), "é".repeat(127))]);
    let fits = query_prefix("!{partitionKeyFromQuery:a}/!{partitionKeyFromQuery:b}/!{timestamp:yyyy}/");
    let prefix = fits.evaluate(&mut PrefixContext::new(AT, SEED).with_query_keys(&keys));
    assert_eq!(
        prefix.map(|p| p.chars().count()),
        Ok(389),
        "characters, not bytes, are counted"
    );
    let keys = BTreeMap::from([("a".to_owned(), "x".repeat(255)), ("b".to_owned(), "y".repeat(255))]);
    let exactly = query_prefix("!{partitionKeyFromQuery:a}/!{partitionKeyFromQuery:b}/");
    let prefix = exactly.evaluate(&mut PrefixContext::new(AT, SEED).with_query_keys(&keys));
    assert_eq!(prefix.map(|p| p.chars().count()), Ok(MAX_EVALUATED_PREFIX_CHARS));
    let over = query_prefix("z/!{partitionKeyFromQuery:a}/!{partitionKeyFromQuery:b}/");
    let err = over.evaluate(&mut PrefixContext::new(AT, SEED).with_query_keys(&keys));
    assert_eq!(
        err,
        Err(PrefixError::EvaluatedTooLong {
            kind: PrefixKind::Prefix,
            length: 514
        })
    );
    assert_eq!(
        err.map_err(|e| e.error_output_type()),
        Err(Some(ErrorOutputType::PartitioningFailed))
    );
}

#[test]
fn fixed_text_that_leaves_the_directory_is_refused_at_configuration() {
    for (prefix, reason) in [
        ("../escape/", UnsafeReason::DotSegment),
        ("a/./b/", UnsafeReason::DotSegment),
        ("a/../", UnsafeReason::DotSegment),
        ("/absolute/", UnsafeReason::LeadingSlash),
        ("a\\b/", UnsafeReason::Backslash),
        ("a\tb/", UnsafeReason::ControlCharacter),
    ] {
        assert_eq!(
            refused(Some(prefix), None, false),
            PrefixError::UnsafeTemplate {
                kind: PrefixKind::Prefix,
                reason
            },
            "{prefix}"
        );
    }
    for (prefix, reason) in [
        ("!{timestamp:'..'}/x/", UnsafeReason::DotSegment),
        ("!{timestamp:'/'yyyy}/", UnsafeReason::LeadingSlash),
        ("x/.!{firehose:random-string}/../", UnsafeReason::DotSegment),
    ] {
        assert_eq!(
            refused(Some(prefix), Some("e/!{firehose:error-output-type}"), false),
            PrefixError::UnsafeTemplate {
                kind: PrefixKind::Prefix,
                reason
            },
            "{prefix}"
        );
    }
    assert_eq!(
        refused(None, Some("../!{firehose:error-output-type}"), false),
        PrefixError::UnsafeTemplate {
            kind: PrefixKind::ErrorOutputPrefix,
            reason: UnsafeReason::DotSegment
        }
    );
    // Dots next to an expression are not a dot segment, whatever the value (values are never `.`/`..`).
    let p = query_prefix("a/.!{partitionKeyFromQuery:k}./");
    assert_eq!(eval_with_query(&p, "k", "x").as_deref(), Ok("a/.x./"));
    assert!(eval_with_query(&p, "k", ".").is_err());
}

#[test]
fn out_of_range_instants_are_errors_not_the_epoch() {
    let p = prefixes(None, None, false);
    let err = p.output.evaluate(&mut PrefixContext::new(i64::MAX, SEED));
    assert_eq!(err, Err(PrefixError::InstantOutOfRange { epoch_ms: i64::MAX }));
    let err = p.error_output.evaluate(&mut PrefixContext::new(AT, SEED));
    assert_eq!(err, Err(PrefixError::MissingErrorOutputType));
}

/// Templates that put a value in every position a traversal could use.
const TRAVERSAL_TEMPLATES: [&str; 6] = [
    "!{partitionKeyFromQuery:k}",
    "!{partitionKeyFromQuery:k}/",
    "a/!{partitionKeyFromQuery:k}/b/",
    "a/.!{partitionKeyFromQuery:k}/",
    "a/!{partitionKeyFromQuery:k}./",
    "!{partitionKeyFromQuery:k}!{partitionKeyFromQuery:k}/!{partitionKeyFromQuery:k}",
];

fn assert_cannot_escape(value: &str) {
    if let Ok(clean) = sanitize_partition_value(value) {
        assert_eq!(clean, value);
        assert!(!clean.contains('/') && !clean.contains('\\'), "{clean:?}");
        assert!(!clean.chars().any(char::is_control), "{clean:?}");
        assert!(clean != "." && clean != ".." && !clean.is_empty(), "{clean:?}");
    }
    for template in TRAVERSAL_TEMPLATES {
        if let Ok(prefix) = eval_with_query(&query_prefix(template), "k", value) {
            assert!(!prefix.starts_with('/'), "{template} + {value:?} = {prefix:?}");
            assert!(
                prefix.split('/').all(|segment| segment != ".." && segment != "."),
                "{template} + {value:?} = {prefix:?}"
            );
            assert!(
                !prefix.contains('\\') && !prefix.chars().any(char::is_control),
                "{prefix:?}"
            );
        }
    }
}

proptest! {
    #[test]
    fn no_value_escapes_its_prefix(value in any::<String>()) {
        assert_cannot_escape(&value);
    }

    #[test]
    fn no_path_like_value_escapes_its_prefix(value in "[./\\\\a\u{0}\n]{0,8}") {
        assert_cannot_escape(&value);
    }
}

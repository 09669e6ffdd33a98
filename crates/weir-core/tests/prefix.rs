//! AWS's documented prefix examples, evaluated: each keeps what its source prints next to what weir
//! produces, and where the two differ, why (see the module documentation of `weir_core::prefix`).
//!
//! Sources, as named in the cases:
//! - `s3-prefixes`: AWS, "Custom prefixes for Amazon S3 objects" (firehose/latest/dev/s3-prefixes.html):
//!   the "Example prefixes" table, "at 10:30 AM UTC on Aug 27, 2018", the `firehose` namespace table and the
//!   semantic rules.
//! - `dynamic-partitioning`: AWS, "Use Amazon S3 bucket prefix to deliver data"
//!   (firehose/latest/dev/dynamic-partitioning-s3bucketprefix.html).
//! - `athena`: AWS, Athena's "Use custom prefixes and dynamic partitioning" (partition projection).
//! - `prescriptive-guidance`: AWS, "Automatically archive items to Amazon S3 using DynamoDB TTL".
//! - `floci-1857`: keys observed on real AWS, reported in floci-io/floci#1857 (2026-07-13, eu-west-1).
//! - `cdk-integ`: the AWS CDK's integration tests against AWS,
//!   `integ.dynamic-partitioning-with-lambda.ts` and `integ.dynamic-partitioning-with-inline-parsing.ts`.

use chrono::NaiveDate;
use std::collections::{BTreeMap, VecDeque};
use uuid::Uuid;
use weir_core::prefix::{
    ErrorOutputType, PartitionKeySource, PartitionValueError, PatternError, PrefixContext, PrefixError, PrefixKind,
    Prefixes, RandomStrings,
};

/// Epoch milliseconds of a UTC date-time.
fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, s))
        .expect("a valid test date")
        .and_utc()
        .timestamp_millis()
}

/// The instant of the s3-prefixes example table.
fn table_instant() -> i64 {
    at(2018, 8, 27, 10, 30, 0)
}

const SEED: Uuid = Uuid::from_u128(0xd0c5);

/// Hands out the random strings a source printed, so its outputs can be reproduced exactly.
struct Printed(VecDeque<&'static str>);

impl RandomStrings for Printed {
    fn next_random_string(&mut self) -> String {
        self.0
            .pop_front()
            .expect("the case lists enough random strings")
            .to_owned()
    }
}

struct Case {
    source: &'static str,
    prefix: Option<&'static str>,
    error_output_prefix: Option<&'static str>,
    dynamic_partitioning: bool,
    at: i64,
    /// The record's partition keys, offered both as query and as Lambda keys.
    keys: &'static [(&'static str, &'static str)],
    /// Random strings the source printed, used in order (prefix first); empty for the seeded default.
    random: &'static [&'static str],
    /// What the source prints for (Prefix, ErrorOutputPrefix); `None` where it shows nothing.
    documented: (Option<&'static str>, Option<&'static str>),
    /// What weir produces.
    weir: (&'static str, &'static str),
    /// Why weir differs from the source, when it does.
    divergence: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let t = table_instant();
    vec![
        Case {
            source: "s3-prefixes, example 1",
            prefix: None,
            error_output_prefix: Some("myFirehoseFailures/!{firehose:error-output-type}/"),
            dynamic_partitioning: false,
            at: t,
            keys: &[],
            random: &[],
            documented: (Some("2018/08/27/10"), Some("myFirehoseFailures/processing-failed/")),
            weir: ("2018/08/27/10/", "myFirehoseFailures/processing-failed/"),
            divergence: Some("the default prefix ends in `/` (floci-1857: no prefix → `2026/07/13/14/…`)"),
        },
        Case {
            source: "s3-prefixes, example 3 (expressions in both prefixes)",
            prefix: Some("myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}"),
            error_output_prefix: Some(
                "myFirehoseFailures/!{firehose:error-output-type}/!{timestamp:yyyy}/anyMonth/!{timestamp:dd}",
            ),
            dynamic_partitioning: false,
            at: t,
            keys: &[],
            random: &["5abf82daaa5"],
            documented: (
                Some("myFirehose/DeliveredYear=2018/anyMonth/rand=5abf82daaa5"),
                Some("myFirehoseFailures/processing-failed/2018/anyMonth/10"),
            ),
            weir: (
                "myFirehose/DeliveredYear=2018/anyMonth/rand=5abf82daaa5",
                "myFirehoseFailures/processing-failed/2018/anyMonth/27",
            ),
            divergence: Some("the table prints day 10 for its own instant, the 27th"),
        },
        Case {
            source: "s3-prefixes, example 3 at the day it prints",
            prefix: Some("myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}"),
            error_output_prefix: Some(
                "myFirehoseFailures/!{firehose:error-output-type}/!{timestamp:yyyy}/anyMonth/!{timestamp:dd}",
            ),
            dynamic_partitioning: false,
            at: at(2018, 8, 10, 10, 30, 0),
            keys: &[],
            random: &["5abf82daaa5"],
            documented: (
                Some("myFirehose/DeliveredYear=2018/anyMonth/rand=5abf82daaa5"),
                Some("myFirehoseFailures/processing-failed/2018/anyMonth/10"),
            ),
            weir: (
                "myFirehose/DeliveredYear=2018/anyMonth/rand=5abf82daaa5",
                "myFirehoseFailures/processing-failed/2018/anyMonth/10",
            ),
            divergence: None,
        },
        Case {
            source: "s3-prefixes, example 4 (Hive style, quoted text in the pattern)",
            prefix: Some(
                "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
            ),
            error_output_prefix: Some(
                "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}",
            ),
            dynamic_partitioning: false,
            at: t,
            keys: &[],
            random: &[],
            documented: (
                Some("myPrefix/year=2018/month=07/day=06/hour=23/"),
                Some("myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed"),
            ),
            weir: (
                "myPrefix/year=2018/month=08/day=27/hour=10/",
                "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed",
            ),
            divergence: Some("the table prints 2018-07-06 23:00 for its own instant, 2018-08-27 10:30"),
        },
        Case {
            source: "s3-prefixes, example 4 at the hour it prints",
            prefix: Some(
                "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
            ),
            error_output_prefix: Some(
                "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}",
            ),
            dynamic_partitioning: false,
            at: at(2018, 7, 6, 23, 30, 0),
            keys: &[],
            random: &[],
            documented: (
                Some("myPrefix/year=2018/month=07/day=06/hour=23/"),
                Some("myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed"),
            ),
            weir: (
                "myPrefix/year=2018/month=07/day=06/hour=23/",
                "myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed",
            ),
            divergence: None,
        },
        Case {
            source: "s3-prefixes, example 4 as an earlier version wrote its ErrorOutputPrefix",
            prefix: Some(
                "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
            ),
            error_output_prefix: Some(
                "myErrorPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/\
                 !{firehose:error-output-type}",
            ),
            dynamic_partitioning: false,
            at: at(2018, 7, 6, 23, 30, 0),
            keys: &[],
            random: &[],
            documented: (
                Some("myPrefix/year=2018/month=07/day=06/hour=23/"),
                Some("myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed"),
            ),
            weir: (
                "myPrefix/year=2018/month=07/day=06/hour=23/",
                "myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed",
            ),
            divergence: None,
        },
        Case {
            source: "s3-prefixes, example 5 (a static Prefix and no ErrorOutputPrefix)",
            prefix: Some("myFirehosePrefix"),
            error_output_prefix: None,
            dynamic_partitioning: false,
            at: t,
            keys: &[],
            random: &[],
            documented: (
                Some("myFirehosePrefix/2018/08/27/"),
                Some("myFirehosePrefix/processing-failed/2018/08/27/"),
            ),
            weir: (
                "myFirehosePrefix2018/08/27/10/",
                "myFirehosePrefixprocessing-failed/2018/08/27/10/",
            ),
            divergence: Some(
                "the rule appends `!{timestamp:yyyy/MM/dd/HH/}` with no `/` and keeps the hour, as AWS was seen \
                 doing (floci-1857: `legacy` → `legacy2026/07/13/14/`)",
            ),
        },
        Case {
            source: "s3-prefixes, semantic rule for a null ErrorOutputPrefix",
            prefix: Some("myFirehosePrefix"),
            error_output_prefix: None,
            dynamic_partitioning: false,
            at: t,
            keys: &[],
            random: &[],
            // "Prefix evaluates to <specified-prefix>YYYY/MM/DD/HH/ and ErrorOutputPrefix evaluates to
            // <specified-prefix><error-output-type>YYYY/MM/DD/HH/"
            documented: (
                Some("myFirehosePrefix2018/08/27/10/"),
                Some("myFirehosePrefixprocessing-failed2018/08/27/10/"),
            ),
            weir: (
                "myFirehosePrefix2018/08/27/10/",
                "myFirehosePrefixprocessing-failed/2018/08/27/10/",
            ),
            divergence: Some(
                "a `/` after the error output type, as real keys have (`processing-failed/2025/03/04/11/…`)",
            ),
        },
        Case {
            source: "s3-prefixes, firehose namespace: error-output-type",
            prefix: None,
            error_output_prefix: Some("myPrefix/result=!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}"),
            dynamic_partitioning: false,
            at: at(2018, 8, 3, 10, 30, 0),
            keys: &[],
            random: &[],
            documented: (None, Some("myPrefix/result=processing-failed/2018/08/03")),
            weir: ("2018/08/03/10/", "myPrefix/result=processing-failed/2018/08/03"),
            divergence: None,
        },
        Case {
            source: "s3-prefixes, firehose namespace: random-string (nothing appended without a timestamp)",
            prefix: Some("myPrefix/!{firehose:random-string}/"),
            error_output_prefix: Some("myErrors/!{firehose:error-output-type}/"),
            dynamic_partitioning: false,
            at: t,
            keys: &[],
            random: &["046b6c7f-0b"],
            documented: (Some("myPrefix/046b6c7f-0b/"), None),
            weir: ("myPrefix/046b6c7f-0b/", "myErrors/processing-failed/"),
            divergence: None,
        },
        Case {
            source: "floci-1857, a static prefix",
            prefix: Some("legacy"),
            error_output_prefix: None,
            dynamic_partitioning: false,
            at: at(2026, 7, 13, 14, 5, 0),
            keys: &[],
            random: &[],
            documented: (Some("legacy2026/07/13/14/"), None),
            weir: ("legacy2026/07/13/14/", "legacyprocessing-failed/2026/07/13/14/"),
            divergence: None,
        },
        Case {
            source: "floci-1857, no prefix",
            prefix: None,
            error_output_prefix: None,
            dynamic_partitioning: false,
            at: at(2026, 7, 13, 14, 5, 0),
            keys: &[],
            random: &[],
            documented: (Some("2026/07/13/14/"), None),
            weir: ("2026/07/13/14/", "processing-failed/2026/07/13/14/"),
            divergence: None,
        },
        Case {
            source: "dynamic-partitioning, inline parsing (nothing appended without a timestamp)",
            prefix: Some(
                "customer_id=!{partitionKeyFromQuery:customer_id}/device=!{partitionKeyFromQuery:device}/\
                 year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/\
                 day=!{partitionKeyFromQuery:day}/hour=!{partitionKeyFromQuery:hour}/",
            ),
            // The page requires an ErrorOutputPrefix with dynamic partitioning but shows none.
            error_output_prefix: Some("errors/!{firehose:error-output-type}/"),
            dynamic_partitioning: true,
            at: at(2019, 8, 9, 23, 55, 9),
            keys: &[
                ("customer_id", "1234567890"),
                ("device", "mobile"),
                ("year", "2019"),
                ("month", "08"),
                ("day", "09"),
                ("hour", "20"),
            ],
            random: &[],
            documented: (
                Some("customer_id=1234567890/device=mobile/year=2019/month=08/day=09/hour=20/"),
                None,
            ),
            weir: (
                "customer_id=1234567890/device=mobile/year=2019/month=08/day=09/hour=20/",
                "errors/processing-failed/",
            ),
            divergence: None,
        },
        Case {
            source: "athena, custom prefix with a partition key",
            prefix: Some(
                "prefix/!{timestamp:yyyy}-!{timestamp:MM}-!{timestamp:dd}/!{partitionKeyFromQuery:customer_id}/",
            ),
            error_output_prefix: Some("errors/!{firehose:error-output-type}/"),
            dynamic_partitioning: true,
            at: at(2021, 11, 1, 8, 0, 0),
            keys: &[("customer_id", "customer-1234")],
            random: &[],
            documented: (Some("prefix/2021-11-01/customer-1234/"), None),
            weir: ("prefix/2021-11-01/customer-1234/", "errors/processing-failed/"),
            divergence: None,
        },
        Case {
            source: "cdk-integ, Lambda partition keys",
            prefix: Some("key1=!{partitionKeyFromLambda:key1}/key2=!{partitionKeyFromLambda:key2}/"),
            error_output_prefix: Some("error-output/!{firehose:error-output-type}/"),
            dynamic_partitioning: true,
            at: t,
            keys: &[("key1", "recordA"), ("key2", "PARTITION1")],
            random: &[],
            documented: (Some("key1=recordA/key2=PARTITION1/"), None),
            weir: ("key1=recordA/key2=PARTITION1/", "error-output/processing-failed/"),
            divergence: None,
        },
        Case {
            source: "cdk-integ, query partition keys",
            prefix: Some("key1=!{partitionKeyFromQuery:key1}/key2=!{partitionKeyFromQuery:key2}/"),
            error_output_prefix: Some("error-output/!{firehose:error-output-type}/"),
            dynamic_partitioning: true,
            at: t,
            keys: &[("key1", "recordB"), ("key2", "PARTITION2")],
            random: &[],
            documented: (Some("key1=recordB/key2=PARTITION2/"), None),
            weir: ("key1=recordB/key2=PARTITION2/", "error-output/processing-failed/"),
            divergence: None,
        },
        Case {
            source: "prescriptive-guidance, Hive-style prefix and a random error prefix",
            prefix: Some(
                "firehosetos3example/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/\
                 hour=!{timestamp:HH}/",
            ),
            error_output_prefix: Some(
                "firehosetos3erroroutputbase/!{firehose:random-string}/!{firehose:error-output-type}/\
                 !{timestamp:yyyy/MM/dd}/",
            ),
            dynamic_partitioning: false,
            at: 1_604_683_577_000,
            keys: &[],
            random: &["ztWxkdg3Thg"],
            documented: (
                Some("firehosetos3example/year=2020/month=11/day=06/hour=05/"),
                Some("firehosetos3erroroutputbase/ztWxkdg3Thg/processing-failed/2020/11/06/"),
            ),
            weir: (
                "firehosetos3example/year=2020/month=11/day=06/hour=17/",
                "firehosetos3erroroutputbase/ztWxkdg3Thg/processing-failed/2020/11/06/",
            ),
            divergence: Some("1604683577 is 17:26:17 UTC: `HH` is 17 (05 is the 12-hour clock, `hh`)"),
        },
    ]
}

#[test]
fn documented_examples_evaluate_as_weir_decided() {
    for case in cases() {
        let prefixes = Prefixes::from_config(case.prefix, case.error_output_prefix, case.dynamic_partitioning)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", case.source));
        let keys: BTreeMap<String, String> = case
            .keys
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut printed = Printed(case.random.iter().copied().collect());
        let mut evaluate = |template: &weir_core::prefix::PrefixTemplate| {
            let ctx = PrefixContext::new(case.at, SEED)
                .with_error_output_type(ErrorOutputType::ProcessingFailed)
                .with_query_keys(&keys)
                .with_lambda_keys(&keys);
            let mut ctx = if case.random.is_empty() {
                ctx
            } else {
                ctx.with_random(&mut printed)
            };
            template
                .evaluate(&mut ctx)
                .unwrap_or_else(|e| panic!("{}: {template} failed: {e}", case.source))
        };
        let produced = (evaluate(&prefixes.output), evaluate(&prefixes.error_output));
        assert_eq!((produced.0.as_str(), produced.1.as_str()), case.weir, "{}", case.source);

        let agrees = |documented: Option<&str>, weir: &str| documented.is_none_or(|d| d == weir);
        let same = agrees(case.documented.0, case.weir.0) && agrees(case.documented.1, case.weir.1);
        match case.divergence {
            None => assert!(same, "{}: differs from its source without a reason", case.source),
            Some(why) => assert!(!same, "{}: marked as diverging ({why}) but agrees", case.source),
        }
    }
}

#[test]
fn documented_refusals_are_refused() {
    // s3-prefixes, example 2: "Invalid input: ErrorOutputPrefix can't be null when Prefix contains expressions".
    assert_eq!(
        Prefixes::from_config(Some("!{timestamp:yyyy/MM/dd}"), None, false),
        Err(PrefixError::ErrorOutputPrefixRequired)
    );
    // s3-prefixes: "Prefix can't contain !{firehose:error-output-type}".
    assert_eq!(
        Prefixes::from_config(Some("p/!{firehose:error-output-type}/"), Some("e/"), false),
        Err(PrefixError::ErrorOutputTypeInPrefix { position: 2 })
    );
    // s3-prefixes: "If you specify an expression for ErrorOutputPrefix, you must include at least one instance
    // of !{firehose:error-output-type}".
    assert_eq!(
        Prefixes::from_config(Some("p/"), Some("e/!{timestamp:yyyy}/"), false),
        Err(PrefixError::ErrorOutputTypeMissing)
    );
    // An earlier s3-prefixes version's Hive pattern, with a quote left open
    // (awsdocs/amazon-kinesis-data-firehose-developer-guide#8).
    let open_quote = Prefixes::from_config(
        Some("p/!{timestamp:yyyy}/"),
        Some("myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH'}/!{firehose:error-output-type}"),
        false,
    );
    assert!(matches!(
        open_quote,
        Err(PrefixError::TimestampPattern {
            kind: PrefixKind::ErrorOutputPrefix,
            position: 14,
            problem: PatternError::UnterminatedQuote { offset: 41 },
            ..
        })
    ));
    // AWS's answer to a partition key without dynamic partitioning (hashicorp/terraform-provider-aws#29092).
    let refused = Prefixes::from_config(
        Some("!{partitionKeyFromQuery:k}/"),
        Some("e/!{firehose:error-output-type}"),
        false,
    );
    assert_eq!(
        refused,
        Err(PrefixError::PartitionKeyWithoutDynamicPartitioning {
            position: 0,
            namespace: PartitionKeySource::Query
        })
    );
    let message = refused.map_err(|e| e.to_string()).expect_err("refused");
    assert!(message.contains("Dynamic Partitioning Namespaces can only be part of a prefix expression"));
    // The common slip: `YYYY` is the week-based year in Java; weir refuses it and says so.
    let slip = Prefixes::from_config(
        Some("!{timestamp:YYYY/MM/dd}/"),
        Some("e/!{firehose:error-output-type}"),
        false,
    );
    let message = slip.map_err(|e| e.to_string()).expect_err("refused");
    assert!(message.contains("`Y`") && message.contains("write `y`"), "{message}");
    // Evaluated prefixes over 512 characters (s3-prefixes) and configured ones over 1024 (API reference).
    let long = "x".repeat(1025);
    assert_eq!(
        Prefixes::from_config(Some(&long), None, false),
        Err(PrefixError::TooLong {
            kind: PrefixKind::Prefix,
            length: 1025
        })
    );
    let prefixes = Prefixes::from_config(Some(&"x".repeat(499)), None, false).expect("1024 or fewer characters");
    let evaluated = prefixes.output.evaluate(&mut PrefixContext::new(table_instant(), SEED));
    assert_eq!(
        evaluated,
        Err(PrefixError::EvaluatedTooLong {
            kind: PrefixKind::Prefix,
            length: 513
        })
    );
}

#[test]
fn a_record_without_its_partition_key_goes_to_partitioning_failed() {
    // cdk-integ: the record `{"data":"data3"}` has no key2 and lands under `error-output/partitioning-failed/`.
    let prefixes = Prefixes::from_config(
        Some("key1=!{partitionKeyFromLambda:key1}/key2=!{partitionKeyFromLambda:key2}/"),
        Some("error-output/!{firehose:error-output-type}/"),
        true,
    )
    .expect("valid");
    let keys = BTreeMap::from([("key1".to_owned(), "recordC".to_owned())]);
    let err = prefixes
        .output
        .evaluate(&mut PrefixContext::new(table_instant(), SEED).with_lambda_keys(&keys))
        .expect_err("key2 is missing");
    assert_eq!(
        err,
        PrefixError::MissingPartitionKey {
            namespace: PartitionKeySource::Lambda,
            key: "key2".to_owned()
        }
    );
    let error_output_type = err.error_output_type().expect("a record error");
    let error_prefix = prefixes
        .error_output
        .evaluate(&mut PrefixContext::new(table_instant(), SEED).with_error_output_type(error_output_type));
    assert_eq!(error_prefix.as_deref(), Ok("error-output/partitioning-failed/"));
}

#[test]
fn traversal_attempts_go_to_the_error_output_not_outside_the_prefix() {
    let prefixes = Prefixes::from_config(
        Some("tenant=!{partitionKeyFromQuery:tenant}/!{timestamp:yyyy/MM/dd}/"),
        Some("errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"),
        true,
    )
    .expect("valid");
    let long = "a".repeat(256);
    for (value, problem) in [
        ("..", PartitionValueError::DotSegment("..")),
        (".", PartitionValueError::DotSegment(".")),
        ("../../../etc/passwd", PartitionValueError::Slash),
        ("/etc", PartitionValueError::Slash),
        ("a/../../b", PartitionValueError::Slash),
        ("..\\..\\windows", PartitionValueError::Backslash),
        ("x\u{0}y", PartitionValueError::ControlCharacter { code: 0 }),
        ("x\ry", PartitionValueError::ControlCharacter { code: 13 }),
        ("\u{1b}[31m", PartitionValueError::ControlCharacter { code: 0x1b }),
        ("", PartitionValueError::Empty),
        (long.as_str(), PartitionValueError::TooLong { bytes: 256 }),
    ] {
        let keys = BTreeMap::from([("tenant".to_owned(), value.to_owned())]);
        let err = prefixes
            .output
            .evaluate(&mut PrefixContext::new(table_instant(), SEED).with_query_keys(&keys))
            .expect_err(value);
        assert_eq!(
            err,
            PrefixError::InvalidPartitionValue {
                namespace: PartitionKeySource::Query,
                key: "tenant".to_owned(),
                problem
            },
            "{value:?}"
        );
        let error_output_type = err.error_output_type().expect("routed to the error output");
        let error_prefix = prefixes
            .error_output
            .evaluate(&mut PrefixContext::new(table_instant(), SEED).with_error_output_type(error_output_type));
        assert_eq!(error_prefix.as_deref(), Ok("errors/partitioning-failed/2018/08/27/"));
    }
    // Look-alikes that stay inside their segment are kept as they are, as Firehose keeps them.
    for value in ["...", "..a", "a..", "%2e%2e", "．．", "tenant a"] {
        let keys = BTreeMap::from([("tenant".to_owned(), value.to_owned())]);
        let prefix = prefixes
            .output
            .evaluate(&mut PrefixContext::new(table_instant(), SEED).with_query_keys(&keys));
        assert_eq!(prefix, Ok(format!("tenant={value}/2018/08/27/")));
    }
}

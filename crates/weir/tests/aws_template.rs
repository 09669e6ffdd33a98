//! deploy/aws/template.yaml: it parses (CloudFormation's short tags included), every IAM statement is
//! scoped, `weir aws params` produces values the template accepts, and cfn-lint and checkov (installed
//! by scripts/test.sh into .venv-tests and .venv-checkov) find nothing.

use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Actions AWS only grants on `Resource: "*"` (no resource-level permissions), each with the reason.
const STAR_RESOURCE_ACTIONS: &[(&str, &str)] = &[
    (
        "cloudwatch:PutMetricData",
        "metrics have no ARN; scope it with the cloudwatch:namespace condition",
    ),
    (
        "xray:PutTraceSegments",
        "X-Ray trace ingestion has no resource-level permissions",
    ),
    (
        "xray:PutTelemetryRecords",
        "X-Ray telemetry has no resource-level permissions",
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template_path() -> PathBuf {
    repo().join("deploy/aws/template.yaml")
}

fn template() -> Value {
    let text = std::fs::read_to_string(template_path()).expect("read deploy/aws/template.yaml");
    serde_yaml::from_str(&text).expect("the template parses as YAML with CloudFormation tags")
}

fn resources(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_owned(), v))
        .collect()
}

/// A string, or each string of a list; tagged values (`!Sub`, `!GetAtt`, …) as `None`; nothing for null.
fn strings(v: &Value) -> Vec<Option<&str>> {
    match v {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![Some(s)],
        Value::Tagged(_) | Value::Mapping(_) => vec![None],
        other => panic!("unexpected {other:?}"),
    }
}

/// Every policy document in the template, named by where it is.
fn policy_documents(t: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        let props = &r["Properties"];
        match r["Type"].as_str() {
            Some("AWS::IAM::Role") => {
                out.push((
                    format!("{id}.AssumeRolePolicyDocument"),
                    &props["AssumeRolePolicyDocument"],
                ));
                for p in props["Policies"].as_sequence().into_iter().flatten() {
                    let name = p["PolicyName"].as_str().unwrap_or("?");
                    out.push((format!("{id}.Policies.{name}"), &p["PolicyDocument"]));
                }
            }
            Some("AWS::IAM::ManagedPolicy" | "AWS::IAM::Policy" | "AWS::S3::BucketPolicy") => {
                out.push((format!("{id}.PolicyDocument"), &props["PolicyDocument"]));
            }
            _ => {}
        }
    }
    out
}

/// Why a statement is too broad, if it is.
fn statement_problem(s: &Value) -> Option<String> {
    if !s["NotAction"].is_null() || !s["NotResource"].is_null() {
        return Some("NotAction/NotResource grant everything else".into());
    }
    let actions = strings(&s["Action"]);
    if actions.is_empty() {
        return Some("no Action".into());
    }
    for action in actions.iter().flatten() {
        if *action == "*" {
            return Some("Action \"*\"".into());
        }
    }
    let deny = s["Effect"].as_str() == Some("Deny");
    if !s["Principal"].is_null() {
        // Trust policies and resource policies: the resource is the policy's owner.
        let is_trust = actions.iter().flatten().all(|a| a.starts_with("sts:"));
        if is_trust {
            let principal = &s["Principal"];
            if principal.as_str() == Some("*") || !principal["AWS"].is_null() {
                return Some("a role trusted by more than its service".into());
            }
        } else if !deny && principal_is_anyone(&s["Principal"]) {
            return Some("allows anyone".into());
        }
        if is_trust {
            return None;
        }
    }
    if !deny {
        for action in actions.iter().flatten() {
            if action.ends_with(":*") {
                return Some(format!("Action {action:?} grants a whole service"));
            }
        }
    }
    let resources = strings(&s["Resource"]);
    if resources.is_empty() {
        return Some("no Resource".into());
    }
    if resources.iter().flatten().any(|r| *r == "*") {
        let all_allowed = actions
            .iter()
            .all(|a| a.is_some_and(|a| STAR_RESOURCE_ACTIONS.iter().any(|(allowed, _)| *allowed == a)));
        if !all_allowed {
            return Some(format!("Resource \"*\" for {actions:?}"));
        }
    }
    None
}

fn principal_is_anyone(p: &Value) -> bool {
    p.as_str() == Some("*") || p["AWS"].as_str() == Some("*")
}

#[test]
fn the_template_parses_with_cloudformation_short_tags() {
    let t = template();
    assert_eq!(t["Transform"].as_str(), Some("AWS::Serverless-2016-10-31"));
    let stream = &t["Resources"]["DataStream"]["Properties"];
    let Value::Tagged(name) = &stream["Name"] else {
        panic!("StreamName should be a !Ref, got {:?}", stream["Name"]);
    };
    assert_eq!(name.tag, "!Ref");
    assert_eq!(name.value.as_str(), Some("StreamName"));
    let types: Vec<_> = resources(&t).iter().filter_map(|(_, r)| r["Type"].as_str()).collect();
    for expected in [
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Route",
        "AWS::Serverless::Function",
        "AWS::Kinesis::Stream",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::CloudWatch::Alarm",
    ] {
        assert!(types.contains(&expected), "no {expected} in {types:?}");
    }
}

#[test]
fn every_iam_statement_is_scoped_to_actions_and_resources() {
    let t = template();
    let documents = policy_documents(&t);
    let mut checked = 0;
    for (place, document) in &documents {
        let statements = document["Statement"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{place}: no Statement"));
        for (i, s) in statements.iter().enumerate() {
            if let Some(problem) = statement_problem(s) {
                panic!("{place}.Statement[{i}]: {problem}: {s:?}");
            }
            checked += 1;
        }
    }
    // Three function/Firehose roles (trust + permissions), the producer policy and the bucket policy.
    assert!(checked >= 10, "only {checked} statements found in {documents:?}");
}

#[test]
fn the_scope_check_rejects_broad_statements() {
    for (yaml, needle) in [
        ("{Effect: Allow, Action: '*', Resource: arn:aws:s3:::b}", "Action \"*\""),
        (
            "{Effect: Allow, Action: 's3:*', Resource: arn:aws:s3:::b}",
            "whole service",
        ),
        ("{Effect: Allow, Action: s3:GetObject, Resource: '*'}", "Resource \"*\""),
        ("{Effect: Allow, NotAction: s3:GetObject, Resource: '*'}", "NotAction"),
        (
            "{Effect: Allow, Principal: '*', Action: s3:GetObject, Resource: x}",
            "anyone",
        ),
        (
            "{Effect: Allow, Principal: {AWS: '*'}, Action: sts:AssumeRole}",
            "trusted",
        ),
    ] {
        let s: Value = serde_yaml::from_str(yaml).expect("fixture");
        let problem = statement_problem(&s).unwrap_or_else(|| panic!("{yaml} passed"));
        assert!(problem.contains(needle), "{yaml}: {problem}");
    }
    let s: Value =
        serde_yaml::from_str("{Effect: Allow, Action: cloudwatch:PutMetricData, Resource: '*'}").expect("fixture");
    assert_eq!(
        statement_problem(&s),
        None,
        "allow-listed: {:?}",
        STAR_RESOURCE_ACTIONS[0]
    );
}

#[test]
fn no_role_or_function_uses_managed_full_access_policies() {
    let t = template();
    for (id, r) in resources(&t) {
        let props = &r["Properties"];
        for arn in strings(&props["ManagedPolicyArns"]).into_iter().flatten() {
            assert!(!arn.contains("FullAccess"), "{id}: {arn}");
        }
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            // Each function runs with its own role from this template, never SAM's generated policies.
            assert!(props["Policies"].is_null(), "{id} has SAM Policies");
            assert!(matches!(props["Role"], Value::Tagged(_)), "{id} has no role of its own");
        }
    }
    let text = std::fs::read_to_string(template_path()).expect("read");
    assert!(
        !text.contains("FullAccess"),
        "a *FullAccess policy is named in the template"
    );
}

#[test]
fn every_checkov_skip_gives_its_reason() {
    let t = template();
    let mut skips = 0;
    for (id, r) in resources(&t) {
        for skip in r["Metadata"]["checkov"]["skip"].as_sequence().into_iter().flatten() {
            let check = skip["id"].as_str().unwrap_or_else(|| panic!("{id}: a skip without id"));
            let reason = skip["comment"].as_str().unwrap_or("");
            assert!(reason.len() > 20, "{id}: skip of {check} without a reason");
            skips += 1;
        }
    }
    assert!(skips > 0);
}

/// Runs `weir aws params` and checks each value against the template's parameter declaration.
fn assert_params_fit(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["aws", "params"])
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run weir aws params");
    assert!(
        output.status.success(),
        "weir aws params {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let params: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let t = template();
    let declared = &t["Parameters"];
    let params = params.as_array().expect("a list");
    assert!(params.len() >= 20, "{params:?}");
    for p in params {
        let key = p["ParameterKey"].as_str().expect("ParameterKey");
        let value = p["ParameterValue"].as_str().expect("ParameterValue is a string");
        let decl = &declared[key];
        assert!(!decl.is_null(), "{key} is not a parameter of the template");
        if let Some(allowed) = decl["AllowedValues"].as_sequence() {
            let allowed: Vec<String> = allowed
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("{key}: AllowedValues holds {other:?}"),
                })
                .collect();
            assert!(allowed.iter().any(|a| a == value), "{key}={value} not in {allowed:?}");
        }
        if decl["Type"].as_str() == Some("Number") {
            let n: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{key}={value} is not a number"));
            if let Some(min) = decl["MinValue"].as_f64() {
                assert!(n >= min, "{key}={value} < {min}");
            }
            if let Some(max) = decl["MaxValue"].as_f64() {
                assert!(n <= max, "{key}={value} > {max}");
            }
        }
    }
}

#[test]
fn weir_aws_params_produces_values_the_template_accepts() {
    assert_params_fit(&[]);
    assert_params_fit(&["--on-demand"]);
    assert_params_fit(&["--config", "weir.example.toml", "--delivery", "events"]);
}

#[test]
fn weir_aws_params_names_the_key_aws_cannot_express() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "aws",
            "params",
            "--config",
            "weir.example.toml",
            "--delivery",
            "events-csv",
        ])
        .current_dir(repo())
        .output()
        .expect("run weir aws params");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("deliveries[1].compression"), "{stderr}");
}

/// A tool from a venv scripts/test.sh creates; fails (never skips) with the install hint.
fn tool(venv: &str, name: &str) -> PathBuf {
    let path = repo().join(venv).join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test.sh (it installs {name} into {venv})",
        path.display()
    );
    path
}

#[test]
fn cfn_lint_finds_nothing_in_the_template() {
    let output = Command::new(tool(".venv-tests", "cfn-lint"))
        .arg(template_path())
        .output()
        .expect("run cfn-lint");
    assert!(
        output.status.success(),
        "cfn-lint (exit {:?}):\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn checkov_finds_no_failed_checks_and_every_skip_has_a_reason() {
    let output = Command::new(tool(".venv-checkov", "checkov"))
        .args([
            "--skip-download",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--file",
        ])
        .arg(template_path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .expect("run checkov");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov's JSON: {e}\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let summary = &report["summary"];
    let failed: Vec<_> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(failed.is_empty(), "checkov failed checks:\n{}", failed.join("\n"));
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 30,
        "checkov checked little: {summary}"
    );
    for skipped in report["results"]["skipped_checks"].as_array().into_iter().flatten() {
        let reason = skipped["check_result"]["suppress_comment"].as_str().unwrap_or("");
        assert!(!reason.is_empty(), "skip without a reason: {skipped}");
    }
    assert!(output.status.success(), "checkov exit {:?}", output.status.code());
}

/// The two functions are crates/weir-lambda's binaries as `cargo lambda build --release --arm64` leaves
/// them (target/lambda/<bin>/bootstrap, which scripts/test.sh builds and checks), for the runtime and
/// architecture they are built for; and every `WEIR_*` variable the template sets is one the functions
/// read (crates/weir-lambda/src/config.rs), and the other way round.
#[test]
fn the_functions_are_the_weir_lambda_binaries_with_the_variables_they_read() {
    let t = template();
    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(repo().join("crates/weir-lambda/Cargo.toml")).expect("read weir-lambda's manifest"),
    )
    .expect("weir-lambda's manifest is TOML");
    let bins: Vec<&str> = manifest["bin"]
        .as_array()
        .expect("[[bin]] targets")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    let config_rs = std::fs::read_to_string(repo().join("crates/weir-lambda/src/config.rs")).expect("read config.rs");
    let mut set = std::collections::BTreeSet::new();
    for (resource, bin) in [("IngestFunction", "ingest"), ("TransformFunction", "transform")] {
        assert!(bins.contains(&bin), "weir-lambda has no binary {bin}: {bins:?}");
        let props = &t["Resources"][resource]["Properties"];
        assert_eq!(
            props["CodeUri"].as_str(),
            Some(format!("../../target/lambda/{bin}/").as_str())
        );
        assert_eq!(props["Handler"].as_str(), Some("bootstrap"), "{resource}");
        assert_eq!(props["Runtime"].as_str(), Some("provided.al2023"), "{resource}");
        assert_eq!(strings(&props["Architectures"]), vec![Some("arm64")], "{resource}");
        let variables = props["Environment"]["Variables"]
            .as_mapping()
            .expect("environment variables");
        for name in variables
            .keys()
            .filter_map(Value::as_str)
            .filter(|n| n.starts_with("WEIR_"))
        {
            assert!(
                config_rs.contains(&format!("\"{name}\"")),
                "{resource} sets {name}, which weir-lambda never reads"
            );
            set.insert(name.to_owned());
        }
    }
    // Every WEIR_ variable weir-lambda reads is set by the template.
    for quoted in config_rs
        .split('"')
        .filter(|s| s.starts_with("WEIR_") && !s.contains(' '))
    {
        assert!(
            set.contains(quoted),
            "weir-lambda reads {quoted}, which the template never sets"
        );
    }
}

//! `docs/openapi.json` against the server: the spec documents exactly the routes of
//! `weir_gateway::api::ROUTES`, every error with the error schema (and `Retry-After` where used), and the
//! responses of a running `weir up` validate against the spec's schemas.

mod common;

use common::{Response, Weir, http, send_raw};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use weir_core::ingest::code;
use weir_gateway::api::{
    ERRORS_PATH, HEALTHZ_PATH, METRICS_PATH, OBJECTS_PATH, QUERY_PATH, RECORDS_PATH, ROUTES, STATUS_PATH,
};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const TOKEN: &str = "0123456789abcdef-token";

fn spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Follows a local `$ref` (`#/components/...`), if `value` is one.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            let target = spec
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {reference} resolves to nothing"));
            resolve(spec, target)
        }
        None => value,
    }
}

/// Every (METHOD, path) operation in the spec.
fn operations(spec: &Value) -> BTreeSet<(String, String)> {
    let paths = spec["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> &'a Value {
    spec["paths"][path]
        .get(method.to_lowercase())
        .unwrap_or_else(|| panic!("{method} {path} is not in the spec"))
}

/// The `pattern`s the spec may use, checked without a regex engine.
fn matches_pattern(pattern: &str, s: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match pattern {
        "^49[0-9]{30}$" => s.strip_prefix("49").is_some_and(|rest| digits(rest, 30)),
        "^shardId-[0-9]{12}$" => s.strip_prefix("shardId-").is_some_and(|rest| digits(rest, 12)),
        "^[A-Za-z0-9_.-]{1,128}$" => {
            (1..=128).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }
        other => panic!("this test cannot check the pattern {other:?}; teach matches_pattern"),
    }
}

/// Validates `value` against `schema`, for the JSON Schema keywords the spec uses; panics on any other.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    let fail = |what: String| Err(format!("{at}: {what} (value {value})"));
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    for (keyword, rule) in schema.as_object().expect("a schema is an object") {
        match keyword.as_str() {
            "description" | "example" | "nullable" => {}
            "allOf" => {
                for part in rule.as_array().expect("allOf") {
                    validate(spec, part, value, at)?;
                }
            }
            "oneOf" => {
                let matching = rule
                    .as_array()
                    .expect("oneOf")
                    .iter()
                    .filter(|part| validate(spec, part, value, at).is_ok())
                    .count();
                if matching != 1 {
                    return fail(format!("matches {matching} of oneOf"));
                }
            }
            "type" => {
                let ok = match rule.as_str().expect("type") {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    other => panic!("type {other}"),
                };
                if !ok {
                    return fail(format!("not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().expect("enum").contains(value) {
                    return fail(format!("not one of {rule}"));
                }
            }
            "required" => {
                for name in rule.as_array().expect("required") {
                    let name = name.as_str().expect("required name");
                    if value.as_object().is_some_and(|o| !o.contains_key(name)) {
                        return fail(format!("lacks required {name}"));
                    }
                }
            }
            "properties" => {
                let Some(object) = value.as_object() else { continue };
                for (name, property) in rule.as_object().expect("properties") {
                    if let Some(v) = object.get(name) {
                        validate(spec, property, v, &format!("{at}.{name}"))?;
                    }
                }
            }
            "additionalProperties" => match (rule.as_bool(), value.as_object()) {
                (Some(true), _) | (_, None) => {}
                (Some(false), Some(object)) => {
                    let known = schema["properties"].as_object().map(Map::keys);
                    let known: BTreeSet<&String> = known.into_iter().flatten().collect();
                    if let Some(extra) = object.keys().find(|k| !known.contains(k)) {
                        return fail(format!("has undocumented {extra}"));
                    }
                }
                (None, Some(object)) => {
                    let known = schema["properties"].as_object();
                    for (name, v) in object {
                        if !known.is_some_and(|k| k.contains_key(name)) {
                            validate(spec, rule, v, &format!("{at}.{name}"))?;
                        }
                    }
                }
            },
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(spec, rule, item, &format!("{at}[{i}]"))?;
                }
            }
            "minItems" | "maxItems" => {
                let Some(items) = value.as_array() else { continue };
                let bound = rule.as_u64().expect("bound") as usize;
                if (keyword == "minItems" && items.len() < bound) || (keyword == "maxItems" && items.len() > bound) {
                    return fail(format!("{keyword} {bound}"));
                }
            }
            "minLength" => {
                let Some(s) = value.as_str() else { continue };
                if s.chars().count() < rule.as_u64().expect("minLength") as usize {
                    return fail(format!("minLength {rule}"));
                }
            }
            "minimum" => {
                let Some(n) = value.as_f64() else { continue };
                if n < rule.as_f64().expect("minimum") {
                    return fail(format!("minimum {rule}"));
                }
            }
            "pattern" => {
                let Some(s) = value.as_str() else { continue };
                if !matches_pattern(rule.as_str().expect("pattern"), s) {
                    return fail(format!("does not match {rule}"));
                }
            }
            other => panic!("{at}: this test cannot check the keyword {other}; teach validate"),
        }
    }
    Ok(())
}

/// Checks `response` against `documented` (a response object of the spec): its required headers, its
/// JSON content type and its body schema.
fn conforms(spec: &Value, documented: &Value, response: &Response, what: &str) {
    let documented = resolve(spec, documented);
    let body = String::from_utf8_lossy(&response.body);
    for (name, header) in documented["headers"].as_object().into_iter().flatten() {
        let header = resolve(spec, header);
        if header["required"] == true {
            let value = response
                .header(name)
                .unwrap_or_else(|| panic!("{what}: no {name} header ({body})"));
            let value = value.parse().map_or_else(|_| json!(value), |n: u64| json!(n));
            validate(spec, &header["schema"], &value, &format!("{what} {name}")).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    if documented["content"].get("text/plain").is_some() {
        let content_type = response.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/plain"), "{what}: {content_type}");
        assert!(!response.body.is_empty(), "{what}: empty body");
        return;
    }
    let schema = &documented["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{what}: the spec documents no application/json body"
    );
    assert_eq!(response.header("content-type"), Some("application/json"), "{what}");
    validate(spec, schema, &response.json(), what).unwrap_or_else(|e| panic!("{e} ({body})"));
}

#[test]
fn the_spec_documents_exactly_the_routes_the_server_serves() {
    let spec = spec();
    let routes: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(
        operations(&spec),
        routes,
        "docs/openapi.json vs weir_gateway::api::ROUTES"
    );
}

#[test]
fn the_spec_is_openapi_3_0_3_with_every_error_and_header() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.0.3");
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());

    // Every $ref resolves.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(r)) = object.get("$ref") {
                    out.push(r);
                }
                object.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&spec, &mut all);
    for reference in all {
        resolve(&spec, &json!({"$ref": reference}));
    }

    let records = operation(&spec, "POST", RECORDS_PATH);
    let statuses: BTreeSet<&str> = records["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect();
    let expected = ["200", "400", "401", "404", "408", "413", "415", "429", "500", "503"];
    assert_eq!(
        statuses,
        expected.into_iter().collect(),
        "statuses of POST {RECORDS_PATH}"
    );
    let content: BTreeSet<&str> = records["requestBody"]["content"]
        .as_object()
        .expect("request content")
        .keys()
        .map(String::as_str)
        .collect();
    let types = ["application/json", "application/jsonl", "application/x-ndjson"];
    assert_eq!(content, types.into_iter().collect());
    assert_eq!(records["requestBody"]["required"], true);
    // gzip is a transfer detail, not a parameter (a fuzzer would send the header on plain bodies).
    let encodings = records["x-content-encodings"].as_array().expect("x-content-encodings");
    assert!(encodings.contains(&json!("gzip")), "{encodings:?}");
    // Authentication is optional: anonymous, or a bearer token.
    assert_eq!(records["security"], json!([{}, {"bearerAuth": []}]));
    let bearer = &spec["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!((&bearer["type"], &bearer["scheme"]), (&json!("http"), &json!("bearer")));
    assert_eq!(operation(&spec, "GET", HEALTHZ_PATH)["security"], json!([]));

    // Every error: the error schema, Retry-After on 429 and 503, WWW-Authenticate on 401.
    let error_schema = &spec["components"]["schemas"]["Error"];
    assert_eq!(error_schema["required"], json!(["error"]));
    assert_eq!(
        error_schema["properties"]["error"]["required"],
        json!(["code", "message"])
    );
    for (status, response) in records["responses"].as_object().expect("responses") {
        let response = resolve(&spec, response);
        assert!(response["description"].is_string(), "{status}");
        let schema = resolve(&spec, &response["content"]["application/json"]["schema"]);
        if status != "200" {
            let parts = schema["allOf"]
                .as_array()
                .expect("error schemas are allOf Error + codes");
            assert_eq!(parts[0]["$ref"], "#/components/schemas/Error", "{status}");
        }
        let header = |name: &str| response["headers"].get(name).map(|h| resolve(&spec, h));
        let retry_after = header("Retry-After");
        assert_eq!(
            retry_after.is_some(),
            status == "429" || status == "503",
            "{status}: Retry-After"
        );
        if let Some(retry_after) = retry_after {
            assert_eq!(retry_after["required"], true);
            assert_eq!(retry_after["schema"]["type"], "integer");
        }
        assert_eq!(header("WWW-Authenticate").is_some(), status == "401", "{status}");
    }

    // The success shape, precise enough to fuzz against.
    let entry = &spec["components"]["schemas"]["PutRecordsEntry"];
    assert_eq!(entry["required"], json!(["shard_id", "sequence_number"]));
    assert_eq!(entry["properties"]["sequence_number"]["pattern"], "^49[0-9]{30}$");
    assert_eq!(entry["properties"]["shard_id"]["pattern"], "^shardId-[0-9]{12}$");
    assert_eq!(
        spec["components"]["schemas"]["PutRecordsResponse"]["required"],
        json!(["failed_record_count", "records"])
    );

    // Every ingest error code is documented under its status.
    let codes_of = |status: &str| -> Vec<Value> {
        let response = resolve(&spec, &records["responses"][status]);
        let schema = resolve(&spec, &response["content"]["application/json"]["schema"]);
        schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{status}: codes"))
            .clone()
    };
    for (status, code) in [
        ("415", code::UNSUPPORTED_MEDIA_TYPE),
        ("415", code::UNSUPPORTED_CHARSET),
        ("415", code::UNSUPPORTED_ENCODING),
        ("400", code::INVALID_GZIP),
        ("413", code::BODY_TOO_LARGE),
        ("413", code::TOO_MANY_RECORDS),
        ("413", code::RECORD_TOO_LARGE),
        ("400", code::EMPTY),
        ("400", code::INVALID_UTF8),
        ("400", code::INVALID_JSON),
        ("400", code::TOO_DEEP),
        ("400", code::NOT_AN_OBJECT),
        ("400", code::PARTITION_KEY_MISSING),
        ("400", code::PARTITION_KEY_INVALID),
    ] {
        assert!(codes_of(status).contains(&json!(code)), "{code} under {status}");
    }
}

#[test]
fn a_running_server_answers_as_the_spec_says() {
    let spec = spec();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[server]\nauth_tokens = [\"{TOKEN}\"]\nbody_read_timeout = \"1s\"\n\n[[streams]]\nname = \"events\"\n\n\
         [[deliveries]]\nname = \"events\"\nstream = \"events\"\nbuffer_interval = \"100ms\"\n"
    );
    let weir = Weir::start(dir.path(), &config);
    let bearer = format!("Bearer {TOKEN}");
    let records = RECORDS_PATH.replace("{stream}", "events");
    let authorized = |content_type: &str| {
        vec![
            ("Content-Type", content_type.to_owned()),
            ("Authorization", bearer.clone()),
        ]
    };
    let post = |path: &str, headers: &[(&str, String)], body: &[u8]| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(weir.addr, "POST", path, &headers, body)
    };
    let documented = |method: &str, path: &str, status: u16| {
        let op = operation(&spec, method, path);
        op["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{method} {path} does not document {status}"))
            .clone()
    };

    // Each documented operation succeeds as documented.
    for (method, path) in operations(&spec) {
        let response = match (method.as_str(), path.as_str()) {
            ("POST", RECORDS_PATH) => post(
                &records,
                &authorized("application/json"),
                br#"[{"user_id":1},{"user_id":2}]"#,
            ),
            ("GET", HEALTHZ_PATH) => http(weir.addr, "GET", HEALTHZ_PATH, &[], b""),
            ("GET", METRICS_PATH | STATUS_PATH | OBJECTS_PATH | ERRORS_PATH) => {
                http(weir.addr, "GET", &path, &[("Authorization", &bearer)], b"")
            }
            ("POST", QUERY_PATH) => post(
                QUERY_PATH,
                &authorized("application/json"),
                br#"{"sql":"select 1 as one, 'x' as text, [1, 2] as list","max_rows":5}"#,
            ),
            other => panic!("no request for {other:?}: teach this test"),
        };
        assert_eq!(
            response.status,
            200,
            "{method} {path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        conforms(
            &spec,
            &documented(&method, &path, 200),
            &response,
            &format!("{method} {path}"),
        );
    }

    // Other methods on documented paths: 405 with Allow naming exactly the documented methods.
    let paths: BTreeSet<String> = operations(&spec).into_iter().map(|(_, p)| p).collect();
    for path in &paths {
        let concrete = path.replace("{stream}", "events");
        let mut allowed: Vec<String> = operations(&spec)
            .into_iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m)
            .collect();
        if allowed.contains(&"GET".to_owned()) {
            allowed.push("HEAD".to_owned());
        }
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            if allowed.iter().any(|m| m == method) {
                continue;
            }
            let response = http(weir.addr, method, &concrete, &[("Authorization", &bearer)], b"");
            assert_eq!(response.status, 405, "{method} {path}");
            let allow: BTreeSet<&str> = response
                .header("allow")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .collect();
            let expected: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
            assert_eq!(allow, expected, "Allow on {method} {path}");
            let what = format!("{method} {path}");
            conforms(
                &spec,
                &spec["components"]["responses"]["MethodNotAllowed"],
                &response,
                &what,
            );
        }
    }
    // Errors of the query operation.
    for (status, body, content_type) in [
        (400, &br#"{"sql":"delete from events"}"#[..], "application/json"),
        (
            400,
            br#"{"sql":"select * from read_csv('/etc/passwd')"}"#,
            "application/json",
        ),
        (400, br#"{"sql":"select 1","max_rows":0}"#, "application/json"),
        (400, br#"{"query":"select 1"}"#, "application/json"),
        (415, br#"{"sql":"select 1"}"#, "text/plain"),
    ] {
        let response = post(QUERY_PATH, &authorized(content_type), body);
        let what = format!("POST {QUERY_PATH} {}", String::from_utf8_lossy(body));
        assert_eq!(
            response.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&response.body)
        );
        conforms(&spec, &documented("POST", QUERY_PATH, status), &response, &what);
    }

    let response = http(weir.addr, "GET", "/v1/streams", &[], b"");
    assert_eq!(response.status, 404);
    conforms(
        &spec,
        &spec["components"]["responses"]["NoSuchPath"],
        &response,
        "an undocumented path",
    );

    // Errors of the records operation, each against its documented response.
    let json_type = authorized("application/json");
    let many: String = format!("[{}]", vec!["{}"; 501].join(","));
    for (status, response) in [
        (400, post(&records, &json_type, b"{\"a\":")),
        (401, post(&records, &[("Content-Type", "application/json".to_owned())], b"{}")),
        (404, post("/v1/streams/nope/records", &json_type, b"{}")),
        (413, post(&records, &json_type, many.as_bytes())),
        (415, post(&records, &authorized("text/plain"), b"{}")),
        (
            408,
            send_raw(
                weir.addr,
                format!(
                    "POST {records} HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\n\
                     Content-Length: 100\r\n\r\n{{\"a\":"
                )
                .as_bytes(),
            ),
        ),
    ] {
        let what = format!("POST {RECORDS_PATH} → {status}");
        assert_eq!(response.status, status, "{what}: {}", String::from_utf8_lossy(&response.body));
        conforms(&spec, &documented("POST", RECORDS_PATH, status), &response, &what);
    }

    // The status API's own errors: bad limits, and the token it requires like every route but health.
    for path in [OBJECTS_PATH, ERRORS_PATH] {
        for query in ["?limit=0", "?limit=101", "?limit=x"] {
            let response = http(
                weir.addr,
                "GET",
                &format!("{path}{query}"),
                &[("Authorization", &bearer)],
                b"",
            );
            let what = format!("GET {path}{query}");
            assert_eq!(response.status, 400, "{what}");
            conforms(&spec, &documented("GET", path, 400), &response, &what);
        }
    }
    for path in [METRICS_PATH, STATUS_PATH, OBJECTS_PATH, ERRORS_PATH] {
        let response = http(weir.addr, "GET", path, &[], b"");
        assert_eq!(response.status, 401, "GET {path} without a token");
        conforms(
            &spec,
            &documented("GET", path, 401),
            &response,
            &format!("GET {path} → 401"),
        );
    }
    let (status, output) = weir.stop();
    assert!(status.success(), "weir up exited with {status}: {output}");
}

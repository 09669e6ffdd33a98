//! The Postman collection (docs/postman/weir.postman_collection.json) against the server: it covers
//! every route the server serves, and newman runs it against a live `weir up` with every test passing.

mod common;

use common::Weir;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use weir_gateway::api::ROUTES;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn collection() -> Value {
    let path = repo().join("docs/postman/weir.postman_collection.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the collection is JSON")
}

/// (METHOD, URL path) of every request in the collection, folders included.
fn requests(items: &Value, out: &mut Vec<(String, String)>) {
    for item in items.as_array().expect("items") {
        if let Some(children) = item.get("item") {
            requests(children, out);
        } else {
            let request = &item["request"];
            let raw = request["url"]["raw"].as_str().expect("url.raw");
            let path = raw.trim_start_matches("{{baseUrl}}").split('?').next().expect("path");
            out.push((request["method"].as_str().expect("method").to_owned(), path.to_owned()));
        }
    }
}

/// A concrete path against a route template (`{param}` matches one segment, `{{var}}` is Postman's).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || t.starts_with('{') || p.starts_with("{{"))
}

#[test]
fn the_collection_covers_every_route() {
    let mut found = Vec::new();
    requests(&collection()["item"], &mut found);
    let covered: BTreeSet<(&str, &str)> = ROUTES
        .iter()
        .filter(|(method, route)| found.iter().any(|(m, p)| m == method && matches(route, p)))
        .copied()
        .collect();
    let all: BTreeSet<(&str, &str)> = ROUTES.iter().copied().collect();
    assert_eq!(covered, all, "routes without a request in the collection");
    for (method, path) in &found {
        assert!(
            ROUTES.iter().any(|(_, route)| matches(route, path)),
            "{method} {path} is not a route of the server"
        );
    }
}

#[test]
fn newman_runs_the_collection_against_weir_up() {
    let newman = repo().join("tests/api/node_modules/.bin/newman");
    assert!(
        newman.exists(),
        "{} is missing: run ./scripts/test.sh (it runs `npm ci --prefix tests/api`)",
        newman.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(dir.path(), &common::fast_config(""));
    let report = dir.path().join("newman.json");
    let output = Command::new(&newman)
        .arg("run")
        .arg(repo().join("docs/postman/weir.postman_collection.json"))
        .args(["--env-var", &format!("baseUrl=http://{}", weir.addr)])
        .args(["--reporters", "cli,json", "--reporter-json-export"])
        .arg(&report)
        .args(["--timeout-request", "10000", "--color", "off"])
        .output()
        .expect("run newman");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "newman failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("JSON report");
    let stats = &report["run"]["stats"];
    assert_eq!(stats["assertions"]["failed"], 0, "{stdout}");
    assert!(stats["assertions"]["total"].as_u64().expect("total") >= 15, "{stdout}");
    assert_eq!(stats["requests"]["failed"], 0, "{stdout}");
    let (status, output) = weir.stop();
    assert!(status.success(), "{output}");
}

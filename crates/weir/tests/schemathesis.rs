//! Schemathesis fuzzes the HTTP API from docs/openapi.json against a live `weir up` (with bearer
//! auth configured, so the 401 paths are exercised too): no server errors (5xx), no response that
//! violates the spec, every documented status and header as documented.

mod common;

use common::Weir;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOKEN: &str = "schemathesis-token-0123456789";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn schemathesis_finds_no_server_errors_or_spec_violations() {
    let st = repo().join(".venv-tests/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: run ./scripts/test.sh (it installs requirements-test.txt into .venv-tests)",
        st.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let weir = Weir::start(
        dir.path(),
        &common::fast_config(&format!("auth_tokens = [\"{TOKEN}\"]")),
    );
    let output = Command::new(&st)
        .arg("--config-file")
        .arg(repo().join("tests/api/schemathesis.toml"))
        .arg("run")
        .arg(repo().join("docs/openapi.json"))
        .args(["--url", &format!("http://{}", weir.addr)])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--workers",
            "2",
        ])
        .args(["--request-timeout", "10", "--generation-deterministic"])
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", repo().join("tests/api"))
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Proof that it tested something: its summary counts the operations it covered.
    assert!(stdout.contains("passed"), "{stdout}");
    let (status, log) = weir.stop();
    assert!(status.success(), "weir up: {log}");
}

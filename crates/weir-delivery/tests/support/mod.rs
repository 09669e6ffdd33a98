//! A real S3-compatible server for tests: s3rver (npm), which keeps objects as files in a
//! directory, so a restart on the same port and directory serves everything written before.
//!
//! `scripts/test.sh` installs it (pinned by `tests/s3-server/package-lock.json`) into
//! `tests/s3-server/node_modules`; `WEIR_TEST_S3RVER` may point at another `s3rver.js`. Tests fail
//! (never skip) when it is missing.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use weir_delivery::S3Config;

/// The bucket every server is started with.
pub const BUCKET: &str = "weir-test";
/// s3rver's fixed credentials.
const ACCESS_KEY: &str = "S3RVER";
const SECRET_KEY: &str = "S3RVER";
/// How long a starting server may take to listen (node starts in well under a second).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The line s3rver prints once it listens.
const READY_LINE: &str = "S3rver listening on";

const INSTALL_HINT: &str = "install it with `scripts/test.sh` (or `npm ci --prefix tests/s3-server` from the \
     workspace root), or point WEIR_TEST_S3RVER at s3rver.js";

/// `s3rver.js`: `WEIR_TEST_S3RVER`, else where `scripts/test.sh` installs it.
fn s3rver_script() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_TEST_S3RVER") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/s3-server/node_modules/s3rver/bin/s3rver.js")
}

/// One s3rver process serving a temporary directory on a fixed loopback port. Stopped on drop.
pub struct S3Server {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl S3Server {
    /// Starts a server with an empty bucket [`BUCKET`] on a free port.
    pub fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = S3Server {
            dir: tempfile::tempdir().expect("tempdir"),
            port,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A sink config for this server's bucket under `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            prefix: prefix.into(),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint()),
            path_style: true,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            ..S3Config::new(BUCKET)
        }
    }

    /// The requests the server answered so far, one line each (`PUT /bucket/key?uploadId=… 200 …`).
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// Kills the server (by the PID this helper started) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let script = s3rver_script();
        assert!(
            script.is_file(),
            "the S3 test server s3rver is missing at {}: {INSTALL_HINT}",
            script.display()
        );
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("s3rver.log")).expect("log file");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--address", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--directory")
            .arg(&data)
            .args(["--configure-bucket", BUCKET])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting `node {}` ({e}): is node installed? {INSTALL_HINT}",
                    script.display()
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, listening) = mpsc::channel();
        let mut requests = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("requests.log"))
            .expect("request log");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains(READY_LINE) {
                    let _ = ready.send(());
                }
                let _ = writeln!(requests, "{line}");
            }
        });
        if listening.recv_timeout(START_TIMEOUT).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(self.dir.path().join("s3rver.log")).unwrap_or_default();
            panic!(
                "s3rver did not listen on port {} within {START_TIMEOUT:?}: {log}",
                self.port
            );
        }
        self.child = Some(child);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Shared by the weir-lambda tests: fixtures, and a real Kinesis (kinesalite from npm) with a
//! fault-injecting proxy in front, started on 127.0.0.1 (tests/kinesis-server/server.js).
//!
//! `scripts/test.sh` installs kinesalite (pinned by tests/kinesis-server/package-lock.json). Without
//! `node` the Kinesis tests skip with a loud message; with node but without kinesalite they fail.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

pub mod runtime_api;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;
use weir_lambda::config::IngestConfig;
use weir_lambda::gateway::GatewayEvent;

const INSTALL_HINT: &str =
    "install it with `scripts/test.sh` (or `npm ci --prefix tests/kinesis-server` from the workspace root)";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// The event of `value` (a fixture, maybe changed by the test).
pub fn event(value: &serde_json::Value) -> GatewayEvent {
    GatewayEvent::from_json(&value.to_string()).expect("a valid API Gateway event")
}

/// An ingest config for `stream` with `weir up`'s defaults and a short retry deadline.
pub fn ingest_config(stream: &str, vars: &[(&str, &str)]) -> IngestConfig {
    let stream = stream.to_owned();
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    IngestConfig::from_lookup(move |name| {
        if name == weir_lambda::config::STREAM_NAME {
            return Some(stream.clone());
        }
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("a valid config")
}

/// A Kinesis client for `endpoint` with static test credentials, built the way the function builds
/// its own ([`weir_lambda::put::kinesis_client`]).
pub fn kinesis_client(endpoint: &str) -> Client {
    let sdk = aws_config::SdkConfig::builder()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::SharedCredentialsProvider::new(
            Credentials::new("AKIDTEST", "test-secret", None, None, "weir-tests"),
        ))
        .behavior_version(BehaviorVersion::latest())
        .build();
    weir_lambda::put::kinesis_client(&sdk)
}

/// `node`, or `None` (after saying loudly that the test is skipped) when it is not installed.
pub fn node() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("node"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        eprintln!(
            "\n*** SKIPPED: `node` is not installed, so kinesalite cannot run. scripts/test.sh installs it; \
             without it the Kinesis tests of weir-lambda prove nothing. ***\n"
        );
    }
    found
}

/// kinesalite and the fault proxy, stopped (by PID) on drop.
pub struct KinesisServer {
    child: Child,
    /// Held open: the server exits when it closes, even if this process is killed.
    _stdin: ChildStdin,
    pub kinesalite_port: u16,
    pub proxy_port: u16,
}

impl KinesisServer {
    /// Starts the server, or `None` when node is missing (the caller returns: the test is skipped).
    pub fn start() -> Option<KinesisServer> {
        let node = node()?;
        let dir = repo().join("tests/kinesis-server");
        assert!(
            dir.join("node_modules/kinesalite").is_dir(),
            "kinesalite is missing in {}: {INSTALL_HINT}",
            dir.display()
        );
        let mut child = Command::new(node)
            .arg(dir.join("server.js"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting node tests/kinesis-server/server.js");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // The server prints its ports once both listen (node starts in well under a second).
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if !line.is_empty() => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the Kinesis test server did not start within 30 s");
            }
        };
        let ports: serde_json::Value = serde_json::from_str(&line).expect("the ready line is JSON");
        let port = |name: &str| {
            ports[name]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .expect("a port")
        };
        Some(KinesisServer {
            kinesalite_port: port("kinesalite"),
            proxy_port: port("proxy"),
            child,
            _stdin: stdin,
        })
    }

    /// kinesalite itself.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.kinesalite_port)
    }

    /// The fault proxy in front of it.
    pub fn proxy_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// Replaces the proxy's fault plan (and zeroes its stats); see server.js for the shape.
    pub fn set_faults(&self, plan: serde_json::Value) {
        let reply = self.control("POST", "/__weir/faults", &plan.to_string());
        assert_eq!(reply["ok"], true, "{reply}");
    }

    /// The proxy's counters since the last plan.
    pub fn stats(&self) -> serde_json::Value {
        self.control("GET", "/__weir/stats", "")
    }

    fn control(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let mut socket = TcpStream::connect(("127.0.0.1", self.proxy_port)).expect("connect to the proxy");
        write!(
            socket,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut response = String::new();
        socket.read_to_string(&mut response).expect("read");
        let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("proxy answered {response:?}: {e}"))
    }

    /// Creates `stream` with `shards` shards on kinesalite and waits until it is active.
    pub async fn create_stream(&self, stream: &str, shards: i32) {
        let client = kinesis_client(&self.endpoint());
        client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards)
            .send()
            .await
            .expect("CreateStream");
        for _ in 0..200 {
            let summary = client
                .describe_stream_summary()
                .stream_name(stream)
                .send()
                .await
                .expect("DescribeStreamSummary");
            let status = summary.stream_description_summary().map(|s| s.stream_status().clone());
            if status == Some(aws_sdk_kinesis::types::StreamStatus::Active) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("stream {stream} did not become active");
    }

    /// Every record of `stream`, per shard in sequence order: (shard id, partition key, data, sequence number).
    pub async fn read_all(&self, stream: &str) -> Vec<(String, String, String, String)> {
        let client = kinesis_client(&self.endpoint());
        let shards = client
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .expect("ListShards");
        let mut out = Vec::new();
        for shard in shards.shards() {
            let mut iterator = client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator
                .expect("an iterator");
            loop {
                let page = client
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(10_000)
                    .send()
                    .await
                    .expect("GetRecords");
                for record in page.records() {
                    out.push((
                        shard.shard_id().to_owned(),
                        record.partition_key().unwrap_or_default().to_owned(),
                        String::from_utf8(record.data().as_ref().to_vec()).expect("UTF-8 data"),
                        record.sequence_number().to_owned(),
                    ));
                }
                match page.next_shard_iterator {
                    Some(next) if !page.records().is_empty() => iterator = next,
                    _ => break,
                }
            }
        }
        out
    }
}

impl Drop for KinesisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

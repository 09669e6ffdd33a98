//! Shared by the `weir up` tests: a real `weir up` process on port 0 with its own data directory, a
//! minimal HTTP/1.1 client (raw sockets, so tests control every byte), and the bucket's contents.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

pub struct Weir {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The rest of stdout and all of stderr, collected in the background.
    output: Option<std::thread::JoinHandle<String>>,
}

impl Weir {
    /// Starts `weir up` with `config` (TOML) on a free port, data in `data_dir`, and waits for its banner.
    pub fn start(data_dir: &Path, config: &str) -> Weir {
        Weir::start_with_env(data_dir, config, &[])
    }

    /// [`Weir::start`] with extra environment variables.
    pub fn start_with_env(data_dir: &Path, config: &str, env: &[(&str, &str)]) -> Weir {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let config_path = data_dir.join("weir.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(WEIR)
            .arg("up")
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir up");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).expect("read banner") == 0 {
                let mut err = String::new();
                let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
                panic!("weir up exited before listening: {err}");
            }
            if let Some(rest) = line.trim().strip_prefix("weir: listening on http://") {
                break rest.parse().expect("banner address");
            }
        };
        let mut stderr = child.stderr.take().expect("stderr");
        let output = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out);
            let _ = stderr.read_to_string(&mut out);
            out
        });
        Weir {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            output: Some(output),
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns its status and output.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "weir up did not stop within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = self.output.take().expect("output").join().expect("output thread");
        (status, output)
    }

    /// Waits (bounded) for the process to exit by itself; returns its status and output.
    pub fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "weir up did not exit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = self.output.take().expect("output").join().expect("output thread");
        (status, output)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        http(self.addr, "POST", path, &[("Content-Type", content_type)], body)
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), the body sent with Content-Length.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_http(addr, method, path, headers, body).expect("HTTP request")
}

/// [`http`] that reports a refused or cut connection instead of panicking.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    try_send_raw(addr, &bytes)
}

/// Sends raw bytes and parses the response (the server closes the connection after it).
pub fn send_raw(addr: SocketAddr, request: &[u8]) -> Response {
    try_send_raw(addr, request).expect("HTTP exchange")
}

pub fn try_send_raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let mut socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    socket.write_all(request)?;
    try_read_response(&mut socket)
}

pub fn read_response(socket: &mut TcpStream) -> Response {
    try_read_response(socket).expect("HTTP response")
}

pub fn try_read_response(socket: &mut TcpStream) -> std::io::Result<Response> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut reader = BufReader::new(socket);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header {line:?}")))?;
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse::<usize>().ok();
        }
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok(Response { status, headers, body })
}

/// Every object in the bucket: key → its lines.
pub fn objects(bucket: &Path) -> BTreeMap<String, Vec<String>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<String>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let key = path
                    .strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned();
                let body = std::fs::read_to_string(&path).expect("read object");
                out.insert(key, body.lines().map(str::to_owned).collect());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(bucket, bucket, &mut out);
    out
}

/// A config with fast delivery for tests; `server` is put under `[server]`.
pub fn fast_config(server: &str) -> String {
    format!(
        "[server]\n{server}\n\n[[streams]]\nname = \"events\"\nshards = 4\n\n[[deliveries]]\nname = \"events\"\nstream = \"events\"\nbuffer_interval = \"100ms\"\n"
    )
}

/// `weir query --format <format>` on the warehouse in `data_dir` (its weir.toml, if any), through the
/// server at `url`, or from the file when `url` is `None`.
pub fn weir_query(data_dir: &Path, url: Option<&str>, format: &str, sql: &str) -> std::process::Output {
    let mut cmd = Command::new(WEIR);
    cmd.args(["query", "--format", format, "--data-dir"]).arg(data_dir);
    let config = data_dir.join("weir.toml");
    if config.exists() {
        cmd.arg("--config").arg(config);
    }
    // No server: the config's listen address may be port 0, so name one where nothing listens.
    cmd.args(["--url", url.unwrap_or("http://127.0.0.1:1")]).arg(sql);
    cmd.output().expect("run weir query")
}

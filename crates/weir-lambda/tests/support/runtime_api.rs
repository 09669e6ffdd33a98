//! A minimal Lambda runtime API (the HTTP interface a function's runtime polls for events) on
//! 127.0.0.1, to run a function's real binary locally: the tests run `ingest` and `transform` under
//! it, and the benchmark (examples/runtime_api_bench.rs) measures cold starts and warm invocations
//! through it, for weir's binaries and for the seed's Python handlers alike.
//!
//! Served: `GET /2018-06-01/runtime/invocation/next` (blocks until [`RuntimeApi::invoke`] queues an
//! event), `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error` and
//! `POST …/runtime/init/error`. HTTP/1.1 with keep-alive, `Content-Length` bodies (what runtimes send).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST …/response`: the response body.
    Response(Vec<u8>),
    /// `POST …/error`: the error document.
    Error(Vec<u8>),
    /// `POST …/init/error`: the function failed before its first invocation.
    InitError(Vec<u8>),
}

impl Outcome {
    pub fn response(self) -> Vec<u8> {
        match self {
            Outcome::Response(body) => body,
            other => panic!("expected a response, got {:?}", other.describe()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Outcome::Response(b) => format!("response {}", String::from_utf8_lossy(b)),
            Outcome::Error(b) => format!("error {}", String::from_utf8_lossy(b)),
            Outcome::InitError(b) => format!("init error {}", String::from_utf8_lossy(b)),
        }
    }
}

/// The runtime API server; stops accepting when dropped (its threads end with their connections).
pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: Sender<(String, Vec<u8>)>,
    outcomes: Receiver<(Outcome, Instant)>,
    next_id: u64,
}

struct Shared {
    events: Mutex<Receiver<(String, Vec<u8>)>>,
    outcomes: Mutex<Sender<(Outcome, Instant)>>,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (events, event_queue) = channel();
        let (outcome_sender, outcomes) = channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(event_queue),
            outcomes: Mutex::new(outcome_sender),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        RuntimeApi {
            addr,
            events,
            outcomes,
            next_id: 0,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event` and waits (up to `timeout`) for the function's answer and when it arrived.
    pub fn invoke_timed(&mut self, event: Vec<u8>, timeout: Duration) -> (Outcome, Instant) {
        self.next_id += 1;
        let id = format!("weir-invocation-{}", self.next_id);
        self.events.send((id, event)).expect("the server runs");
        self.outcomes
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no answer from the function within {timeout:?}"))
    }

    pub fn invoke(&mut self, event: Vec<u8>) -> Outcome {
        self.invoke_timed(event, Duration::from_secs(60)).0
    }
}

/// The environment a runtime needs, for a function named `name`.
pub fn function_env(api: &RuntimeApi, name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.host_port()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/weir/local/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(length) = headers.get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(Request { method, path, body })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    while let Some(request) = read_request(&mut reader) {
        let now = Instant::now();
        let result = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") => {
                let next = shared.events.lock().expect("lock").recv();
                let Ok((id, event)) = next else { return };
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64 + 30_000);
                respond(
                    &mut writer,
                    "200 OK",
                    &[
                        ("Content-Type", "application/json".to_owned()),
                        ("Lambda-Runtime-Aws-Request-Id", id),
                        ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn",
                            "arn:aws:lambda:us-east-1:000000000000:function:weir-local".to_owned(),
                        ),
                        (
                            "Lambda-Runtime-Trace-Id",
                            "Root=1-00000000-000000000000000000000000".to_owned(),
                        ),
                    ],
                    &event,
                )
            }
            ("POST", path) if path.starts_with("/2018-06-01/runtime/") => {
                let outcome = if path.ends_with("/response") {
                    Outcome::Response(request.body)
                } else if path.ends_with("/init/error") {
                    Outcome::InitError(request.body)
                } else {
                    Outcome::Error(request.body)
                };
                let _ = shared.outcomes.lock().expect("lock").send((outcome, now));
                respond(&mut writer, "202 Accepted", &[], b"{\"status\":\"OK\"}")
            }
            _ => respond(&mut writer, "404 Not Found", &[], b"{}"),
        };
        if result.is_err() {
            return;
        }
    }
}

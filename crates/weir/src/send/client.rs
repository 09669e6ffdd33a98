//! One connection's loop: claim a batch, wait for its turn under `--rate`, send it (retrying 429/503
//! after `Retry-After` and connection errors with backoff) and judge the response.

use super::args::AckMode;
use super::http1::{Connection, Response};
use super::pacer::Pacer;
use super::stats::{LocalStats, Stats};
use super::work::{Scratch, Stop, Work};
use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::cell::RefCell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest wait between two checks for Ctrl-C while pacing or waiting to retry.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Connection errors back off from this, doubling per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Added at random to `Retry-After`, so connections told to wait together do not all return at once.
const RETRY_AFTER_JITTER: Duration = Duration::from_millis(250);

/// Where requests go: the resolved addresses and the request head up to the Content-Length value.
pub struct Target {
    pub url: String,
    addrs: Vec<SocketAddr>,
    head_prefix: Vec<u8>,
}

impl Target {
    /// `url` is `http://host[:port][/base]`; requests go to `{base}/v1/streams/{stream}/records`.
    pub fn new(url: &str, stream: &str, content_type: &str, gzip: bool, token: Option<&str>) -> anyhow::Result<Target> {
        let lower = url.to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &url["http://".len()..]
        } else if lower.starts_with("https://") {
            bail!("--url {url}: https is not supported (weir's ingest API is plain HTTP/1.1; use http://)");
        } else {
            bail!("--url {url}: expected http://host:port");
        };
        let (authority, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            bail!("--url {url}: no host");
        }
        if stream.is_empty() || !stream.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            bail!("--stream {stream:?}: stream names are letters, digits, '-', '_' and '.'");
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .with_context(|| format!("--url {url}: resolving {authority}"))?
            .collect();
        let path = format!("{}/v1/streams/{stream}/records", base.trim_end_matches('/'));
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: weir-send/{}\r\nContent-Type: {content_type}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if gzip {
            head.push_str("Content-Encoding: gzip\r\n");
        }
        if let Some(token) = token {
            if token.bytes().any(|b| b.is_ascii_control()) {
                bail!("the token contains control characters");
            }
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("Content-Length: ");
        Ok(Target {
            url: format!("http://{authority}{path}"),
            addrs,
            head_prefix: head.into_bytes(),
        })
    }
}

/// Everything the connections share.
pub struct Sender {
    pub work: Work,
    pub stop: Stop,
    pub pacer: Option<Pacer>,
    pub target: Target,
    pub max_retries: u32,
    pub timeout: Duration,
    pub ack: AckMode,
    pub stats: Mutex<Stats>,
    /// Set by the first connection that gives up (its retries exhausted on connection errors); every
    /// connection then stops.
    pub gave_up: Mutex<Option<String>>,
}

/// What one response means for its batch.
enum Verdict {
    Acked,
    /// 429 or 503: try again after `after` (or a backoff when the server gave no `Retry-After`).
    Retry {
        after: Option<Duration>,
        kind: String,
        sample: String,
    },
    Failed {
        kind: String,
        sample: String,
    },
}

#[derive(Deserialize)]
struct PutRecordsReply {
    failed_record_count: u64,
    records: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
}

fn judge(response: &Response<'_>, records: u32, ack: AckMode) -> Verdict {
    let status = response.status;
    let body = || format!("{status} {}", String::from_utf8_lossy(response.body).trim_end());
    match (status, ack) {
        (200..=299, AckMode::Status) => Verdict::Acked,
        (200, AckMode::Records) => match serde_json::from_slice::<PutRecordsReply>(response.body) {
            Ok(reply) if reply.failed_record_count == 0 && reply.records.len() == records as usize => Verdict::Acked,
            Ok(reply) => Verdict::Failed {
                kind: "200 with records not stored".into(),
                sample: format!(
                    "{} (failed_record_count {}, {} of {records} records acknowledged)",
                    body(),
                    reply.failed_record_count,
                    reply.records.len()
                ),
            },
            Err(e) => Verdict::Failed {
                kind: "200 without a PutRecords reply".into(),
                sample: format!("{} ({e}; --ack status accepts any 2xx)", body()),
            },
        },
        _ => {
            let kind = match serde_json::from_slice::<ErrorReply>(response.body) {
                Ok(reply) => format!("{status} {}", reply.error.code),
                Err(_) => status.to_string(),
            };
            if status == 429 || status == 503 {
                Verdict::Retry {
                    after: response.retry_after,
                    kind,
                    sample: body(),
                }
            } else {
                Verdict::Failed { kind, sample: body() }
            }
        }
    }
}

/// Sleeps until `until`, waking early if the run is interrupted; false when it was.
async fn sleep_unless_interrupted(stop: &Stop, until: Instant) -> bool {
    loop {
        if stop.is_interrupted() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        tokio::time::sleep((until - now).min(STOP_CHECK)).await;
    }
}

fn backoff(attempt: u32, rng: &mut StdRng) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
    base / 2 + base.mul_f64(rng.random::<f64>() / 2.0)
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Sends batches until the work runs out or the run stops. `stats` is shared by the connections of one
/// thread.
pub async fn run_connection(sender: Arc<Sender>, stats: Rc<RefCell<LocalStats>>) {
    let mut scratch = Scratch::new();
    let mut connection = None;
    let mut rng = StdRng::from_os_rng();
    let mut head = sender.target.head_prefix.clone();
    let prefix_len = head.len();
    let mut now = Instant::now();
    while let Some(claim) = sender.work.next(&sender.stop, now, &mut scratch) {
        if let Some(pacer) = &sender.pacer {
            let due = pacer.schedule(claim.records);
            if sender.stop.deadline().is_some_and(|deadline| due >= deadline)
                || !sleep_unless_interrupted(&sender.stop, due).await
            {
                break;
            }
        }
        head.truncate(prefix_len);
        push_decimal(&mut head, claim.body.len());
        head.extend_from_slice(b"\r\n\r\n");
        stats.borrow_mut().stats.records_sent += u64::from(claim.records);
        let batch = Batch {
            head: &head,
            body: claim.body,
            records: claim.records,
            record_bytes: claim.record_bytes,
        };
        let result = send_batch(&sender, &mut connection, &batch, &stats, &mut rng).await;
        now = Instant::now();
        stats.borrow_mut().maybe_flush(&sender.stats, now);
        if let Err(reason) = result {
            sender.gave_up.lock().expect("gave_up lock").get_or_insert(reason);
            sender.stop.interrupt();
            break;
        }
    }
}

struct Batch<'a> {
    head: &'a [u8],
    body: &'a [u8],
    records: u32,
    record_bytes: u64,
}

/// One attempt: connect if needed, then one request and its response.
enum Attempt {
    Answered {
        status: u16,
        keep_alive: bool,
        latency: Duration,
        verdict: Verdict,
    },
    ConnectionError(String),
}

async fn attempt(sender: &Sender, connection: &mut Option<Connection>, batch: &Batch<'_>) -> Attempt {
    let timed_out = || Attempt::ConnectionError(format!("no response within {:?}", sender.timeout));
    if connection.is_none() {
        match tokio::time::timeout(sender.timeout, Connection::connect(&sender.target.addrs)).await {
            Ok(Ok(open)) => *connection = Some(open),
            Ok(Err(e)) => return Attempt::ConnectionError(e.to_string()),
            Err(_) => return timed_out(),
        }
    }
    let open = connection.as_mut().expect("connected above");
    let started = Instant::now();
    let exchange = async {
        let response = open.exchange(batch.head, batch.body).await?;
        let verdict = judge(&response, batch.records, sender.ack);
        Ok::<_, std::io::Error>((response.status, response.keep_alive, verdict))
    };
    let result = tokio::time::timeout_at((started + sender.timeout).into(), exchange).await;
    match result {
        Ok(Ok((status, keep_alive, verdict))) => Attempt::Answered {
            status,
            keep_alive,
            latency: started.elapsed(),
            verdict,
        },
        Ok(Err(e)) => Attempt::ConnectionError(e.to_string()),
        Err(_) => timed_out(),
    }
}

/// Sends one batch until it is acknowledged, rejected or out of retries. `Err` means the server could
/// not be reached: the whole run should stop.
async fn send_batch(
    sender: &Sender,
    connection: &mut Option<Connection>,
    batch: &Batch<'_>,
    shared_stats: &RefCell<LocalStats>,
    rng: &mut StdRng,
) -> Result<(), String> {
    let mut attempts = 0;
    loop {
        let outcome = attempt(sender, connection, batch).await;
        // The borrow ends with this block, before any await.
        let retry_at = {
            let mut local = shared_stats.borrow_mut();
            let stats = &mut local.stats;
            match outcome {
                Attempt::Answered {
                    status,
                    keep_alive,
                    latency,
                    verdict,
                } => {
                    stats.requests += 1;
                    stats.body_bytes_sent += batch.body.len() as u64;
                    *stats.statuses.entry(status).or_default() += 1;
                    stats.record_latency(latency);
                    if !keep_alive {
                        *connection = None;
                    }
                    match verdict {
                        Verdict::Acked => {
                            stats.records_acked += u64::from(batch.records);
                            stats.record_bytes_acked += batch.record_bytes;
                            return Ok(());
                        }
                        Verdict::Failed { kind, sample } => {
                            stats.record_failure(batch.records, kind, || sample);
                            return Ok(());
                        }
                        Verdict::Retry { kind, sample, .. } if attempts >= sender.max_retries => {
                            stats.record_failure(batch.records, format!("{kind} (retries exhausted)"), || sample);
                            return Ok(());
                        }
                        Verdict::Retry { after, .. } => {
                            let wait = match after {
                                Some(after) => after + RETRY_AFTER_JITTER.mul_f64(rng.random::<f64>()),
                                None => backoff(attempts, rng),
                            };
                            Instant::now() + wait
                        }
                    }
                }
                Attempt::ConnectionError(error) => {
                    *connection = None;
                    stats.connection_errors += 1;
                    if attempts >= sender.max_retries {
                        stats.record_failure(batch.records, "connection".into(), || error.clone());
                        return Err(format!(
                            "giving up on {} after {} attempts: {error}",
                            sender.target.url,
                            attempts + 1
                        ));
                    }
                    Instant::now() + backoff(attempts, rng)
                }
            }
        };
        if !sleep_unless_interrupted(&sender.stop, retry_at).await {
            let stats = &mut shared_stats.borrow_mut().stats;
            stats.record_failure(batch.records, "interrupted before a retry".into(), || {
                "interrupted while waiting to retry".into()
            });
            return Ok(());
        }
        attempts += 1;
        shared_stats.borrow_mut().stats.retries += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response<'_> {
        Response {
            status,
            retry_after: Some(Duration::from_secs(1)),
            keep_alive: true,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn a_batch_is_acked_only_when_every_record_is() {
        let two = r#"{"failed_record_count":0,"records":[{"shard_id":"a"},{"shard_id":"b"}]}"#;
        assert!(matches!(
            judge(&response(200, two), 2, AckMode::Records),
            Verdict::Acked
        ));
        assert!(matches!(
            judge(&response(200, two), 3, AckMode::Records),
            Verdict::Failed { .. }
        ));
        let failed = r#"{"failed_record_count":1,"records":[{},{}]}"#;
        assert!(matches!(
            judge(&response(200, failed), 2, AckMode::Records),
            Verdict::Failed { .. }
        ));
        assert!(matches!(
            judge(&response(200, "{}"), 1, AckMode::Records),
            Verdict::Failed { .. }
        ));
        assert!(matches!(
            judge(&response(200, "{}"), 1, AckMode::Status),
            Verdict::Acked
        ));
    }

    #[test]
    fn overload_is_retried_and_bad_requests_are_not() {
        let overloaded = r#"{"error":{"code":"overloaded","message":"queue full"}}"#;
        match judge(&response(429, overloaded), 1, AckMode::Records) {
            Verdict::Retry { after, kind, .. } => {
                assert_eq!(after, Some(Duration::from_secs(1)));
                assert_eq!(kind, "429 overloaded");
            }
            _ => panic!("429 is retried"),
        }
        let bad = r#"{"error":{"code":"not_an_object","message":"record 1","record_index":1}}"#;
        match judge(&response(400, bad), 1, AckMode::Records) {
            Verdict::Failed { kind, sample } => {
                assert_eq!(kind, "400 not_an_object");
                assert!(sample.starts_with("400 {\"error\""), "{sample}");
            }
            _ => panic!("400 is final"),
        }
    }

    #[test]
    fn target_builds_the_records_path() {
        let target = Target::new(
            "http://127.0.0.1:9/base/",
            "events",
            "application/json",
            true,
            Some("t"),
        )
        .expect("valid target");
        assert_eq!(target.url, "http://127.0.0.1:9/base/v1/streams/events/records");
        let head = String::from_utf8(target.head_prefix).expect("UTF-8");
        assert!(head.starts_with("POST /base/v1/streams/events/records HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(head.contains("Content-Encoding: gzip\r\n") && head.contains("Authorization: Bearer t\r\n"));
        assert!(head.ends_with("Content-Length: "));
        assert!(Target::new("https://x", "events", "", false, None).is_err());
        assert!(Target::new("http://127.0.0.1:9", "a/b", "", false, None).is_err());
    }

    #[test]
    fn decimal() {
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        out.push(b' ');
        push_decimal(&mut out, 1_048_576);
        assert_eq!(out, b"0 1048576");
    }
}

//! Measures how long an acknowledged record takes to appear in an object of the local bucket: scenario
//! (c) of `scripts/bench-up.sh`.
//!
//! ```text
//! cargo run --release -p weir --example ack_to_object -- <host:port> <bucket dir> [samples] [background records/s]
//! ```
//!
//! - Probes: single-record POSTs (~200-byte JSON objects, each with a unique `probe` id) to
//!   `/v1/streams/events/records`, one at a time, 25–75 ms apart (50 ms on average, jittered so probes
//!   do not keep step with the delivery's buffer interval): 250 samples span ~12 s.
//! - Ack time: when the 200 response has been read. Visible time: when a poller that lists the bucket
//!   tree every 2 ms first sees the object (a new file not starting with `.`) whose lines include the
//!   probe. Latency = visible − ack; the polling adds 0–2 ms (+ the time to read a new object).
//! - Background load (default 300 records/s, 0 = idle): single-record POSTs of ~200-byte records
//!   without a probe id, on another connection, paced evenly.
//!
//! Prints the percentiles and, last, one `RESULT key=value …` line for the harness. Exits non-zero if
//! a probe is missing 30 s after its acknowledgement.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PATH: &str = "/v1/streams/events/records";
const RECORD_BYTES: usize = 200;
const POLL_EVERY: Duration = Duration::from_millis(2);
const MEAN_GAP_MS: u64 = 50;
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: ack_to_object <host:port> <bucket dir> [samples (250)] [background records/s (300)]");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let bucket = PathBuf::from(&args[2]);
    let samples: usize = args.get(3).map_or(250, |s| s.parse().expect("samples is a number"));
    let background_rate: u64 = args
        .get(4)
        .map_or(300, |s| s.parse().expect("background records/s is a number"));

    // Unique per run, so a bucket with older objects cannot produce false matches.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    let visible: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let poller = {
        let (visible, stop) = (visible.clone(), stop.clone());
        thread::spawn(move || poll_bucket(&bucket, &visible, &stop))
    };
    let background_sent = Arc::new(AtomicU64::new(0));
    let background_started = Instant::now();
    let background = (background_rate > 0).then(|| {
        let (addr, stop, sent) = (addr.clone(), stop.clone(), background_sent.clone());
        thread::spawn(move || background_load(&addr, background_rate, &stop, &sent))
    });

    let mut client = Client::connect(&addr);
    let mut acked: Vec<(String, Instant)> = Vec::with_capacity(samples);
    let mut send_to_ack = Vec::with_capacity(samples);
    let mut rng = XorShift(run as u64 | 1);
    for i in 0..samples {
        let id = format!("{run}-{i}");
        let sent = Instant::now();
        let status = client.post(&record(Some(&id), i));
        let ack = Instant::now();
        assert_eq!(status, 200, "probe {i} was not accepted");
        send_to_ack.push(ms(ack - sent));
        acked.push((id, ack));
        thread::sleep(Duration::from_millis(MEAN_GAP_MS / 2 + rng.next() % MEAN_GAP_MS));
    }

    let deadline = Instant::now() + GIVE_UP_AFTER;
    while Instant::now() < deadline {
        let seen = visible.lock().expect("poller lock");
        if acked.iter().all(|(id, _)| seen.contains_key(id)) {
            break;
        }
        drop(seen);
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let background_seconds = background_started.elapsed().as_secs_f64();
    poller.join().expect("poller thread");
    if let Some(background) = background {
        background.join().expect("background thread");
    }

    let seen = visible.lock().expect("poller lock");
    let mut latencies: Vec<f64> = acked
        .iter()
        .filter_map(|(id, ack)| seen.get(id).map(|v| ms(v.saturating_duration_since(*ack))))
        .collect();
    let missing = acked.len() - latencies.len();
    latencies.sort_by(f64::total_cmp);
    send_to_ack.sort_by(f64::total_cmp);
    let background_sent = background_sent.load(Ordering::Relaxed);
    let background_rps = background_sent as f64 / background_seconds;
    println!(
        "ack → object visible, {} samples ({missing} missing), background load {background_rps:.0} records/s",
        latencies.len()
    );
    for (name, q) in [("min", 0.0), ("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)] {
        println!("  {name}: {:.1} ms", percentile(&latencies, q));
    }
    println!("POST → ack p50: {:.2} ms", percentile(&send_to_ack, 0.5));
    println!(
        "RESULT samples={} missing={missing} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} background_rps={background_rps:.0} background_sent={background_sent}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    if missing > 0 {
        std::process::exit(1);
    }
}

/// A ~200-byte JSON object, padded to exactly `RECORD_BYTES`; probes carry their id.
fn record(probe: Option<&str>, n: usize) -> String {
    let head = match probe {
        Some(id) => format!(r#"{{"probe":"{id}","user_id":{n},"event":"bench","pad":""#),
        None => format!(r#"{{"user_id":{n},"event":"background","pad":""#),
    };
    let pad = RECORD_BYTES.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

/// Lists the bucket tree every `POLL_EVERY`; reads each new object once and notes when each probe in
/// it became visible.
fn poll_bucket(bucket: &Path, visible: &Mutex<HashMap<String, Instant>>, stop: &AtomicBool) {
    let mut known: HashSet<PathBuf> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut new_files = Vec::new();
        list_objects(bucket, &known, &mut new_files);
        for path in new_files {
            let text = std::fs::read_to_string(&path).expect("reading an object");
            let mut visible = visible.lock().expect("poller lock");
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                if let Some(id) = value.get("probe").and_then(|p| p.as_str()) {
                    visible.entry(id.to_owned()).or_insert(now);
                }
            }
            known.insert(path);
        }
        thread::sleep(POLL_EVERY);
    }
}

fn list_objects(dir: &Path, known: &HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return; // the bucket does not exist yet
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.'); // a put in progress
        match entry.file_type() {
            Ok(t) if t.is_dir() => list_objects(&path, known, out),
            Ok(t) if t.is_file() && !hidden && !known.contains(&path) => out.push(path),
            _ => {}
        }
    }
}

fn background_load(addr: &str, per_second: u64, stop: &AtomicBool, sent: &AtomicU64) {
    let mut client = Client::connect(addr);
    let every = Duration::from_secs(1) / u32::try_from(per_second).expect("a sane rate");
    let mut next = Instant::now();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        assert_eq!(
            client.post(&record(None, n)),
            200,
            "a background record was not accepted"
        );
        sent.fetch_add(1, Ordering::Relaxed);
        n += 1;
        next += every;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Just enough HTTP/1.1 for POSTs on one keep-alive connection (the server sends Content-Length).
struct Client {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connecting to weir");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Client {
            reader: BufReader::new(stream),
            host: addr.to_owned(),
        }
    }

    /// Sends one JSON body and returns the status once the whole response is read.
    fn post(&mut self, body: &str) -> u16 {
        let request = format!(
            "POST {PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("sending a request");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reading the status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("an HTTP status line");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("reading a header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("a numeric Content-Length");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("reading the body");
        status
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A tiny PRNG for the gaps between probes (no dependency needed).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

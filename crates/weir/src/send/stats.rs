//! Counters and the latency histogram. Each connection keeps its own and folds them into the shared
//! copy every [`FLUSH_INTERVAL`], so the hot path takes no lock and touches no shared cache line.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// Error bodies kept verbatim for the summary.
const MAX_SAMPLES: usize = 5;
/// Longest error body kept, in bytes.
const MAX_SAMPLE_LEN: usize = 500;

pub struct Stats {
    /// Responses received, retried attempts included.
    pub requests: u64,
    /// Records in requests sent at least once.
    pub records_sent: u64,
    pub records_acked: u64,
    pub records_failed: u64,
    pub record_bytes_acked: u64,
    /// Request bodies as sent (after gzip), retries included.
    pub body_bytes_sent: u64,
    pub retries: u64,
    pub connection_errors: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Why records failed, counted by kind: `400 not_an_object`, `connection`, ….
    pub errors: BTreeMap<String, u64>,
    /// The first few failures verbatim (status and body, or the connection error).
    pub samples: Vec<String>,
    /// Per HTTP exchange, in microseconds.
    pub latency: Histogram<u64>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            requests: 0,
            records_sent: 0,
            records_acked: 0,
            records_failed: 0,
            record_bytes_acked: 0,
            body_bytes_sent: 0,
            retries: 0,
            connection_errors: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            samples: Vec::new(),
            // 1 µs to 1 hour at 3 significant digits.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
        }
    }

    pub fn record_latency(&mut self, latency: Duration) {
        self.latency.saturating_record(latency.as_micros().max(1) as u64);
    }

    pub fn record_failure(&mut self, records: u32, kind: String, sample: impl FnOnce() -> String) {
        self.records_failed += u64::from(records);
        *self.errors.entry(kind).or_default() += 1;
        if self.samples.len() < MAX_SAMPLES {
            let mut sample = sample();
            if sample.len() > MAX_SAMPLE_LEN {
                let mut end = MAX_SAMPLE_LEN;
                while !sample.is_char_boundary(end) {
                    end -= 1;
                }
                sample.truncate(end);
                sample.push('…');
            }
            self.samples.push(sample);
        }
    }

    /// Adds `other` into `self` and empties `other`.
    pub fn absorb(&mut self, other: &mut Stats) {
        self.requests += other.requests;
        self.records_sent += other.records_sent;
        self.records_acked += other.records_acked;
        self.records_failed += other.records_failed;
        self.record_bytes_acked += other.record_bytes_acked;
        self.body_bytes_sent += other.body_bytes_sent;
        self.retries += other.retries;
        self.connection_errors += other.connection_errors;
        for (status, n) in std::mem::take(&mut other.statuses) {
            *self.statuses.entry(status).or_default() += n;
        }
        for (kind, n) in std::mem::take(&mut other.errors) {
            *self.errors.entry(kind).or_default() += n;
        }
        for sample in other.samples.drain(..) {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(sample);
            }
        }
        if !other.latency.is_empty() {
            self.latency
                .add(&other.latency)
                .expect("histograms with the same bounds");
            other.latency.reset();
        }
        other.requests = 0;
        other.records_sent = 0;
        other.records_acked = 0;
        other.records_failed = 0;
        other.record_bytes_acked = 0;
        other.body_bytes_sent = 0;
        other.retries = 0;
        other.connection_errors = 0;
    }
}

/// A connection's [`Stats`], folded into the shared ones at most every [`FLUSH_INTERVAL`].
pub struct LocalStats {
    pub stats: Stats,
    last_flush: Instant,
}

impl LocalStats {
    pub fn new() -> LocalStats {
        LocalStats {
            stats: Stats::new(),
            last_flush: Instant::now(),
        }
    }

    pub fn maybe_flush(&mut self, shared: &Mutex<Stats>, now: Instant) {
        if now.duration_since(self.last_flush) >= FLUSH_INTERVAL {
            self.flush(shared);
            self.last_flush = now;
        }
    }

    pub fn flush(&mut self, shared: &Mutex<Stats>) {
        shared.lock().expect("stats lock").absorb(&mut self.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_adds_and_empties() {
        let mut total = Stats::new();
        let mut local = Stats::new();
        local.requests = 2;
        local.records_acked = 10;
        *local.statuses.entry(200).or_default() += 2;
        local.record_latency(Duration::from_millis(3));
        local.record_failure(4, "400 not_an_object".into(), || "x".repeat(600));
        total.absorb(&mut local);
        total.absorb(&mut local);
        assert_eq!((total.requests, total.records_acked, total.records_failed), (2, 10, 4));
        assert_eq!(total.statuses[&200], 2);
        assert_eq!(total.errors["400 not_an_object"], 1);
        assert_eq!(total.latency.len(), 1);
        assert!(total.samples[0].len() < 510);
        assert_eq!(local.requests, 0);
        assert_eq!(local.latency.len(), 0);
    }
}

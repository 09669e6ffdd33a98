//! The final summary: as text for people, or as one JSON object for scripts (`--output json`).

use super::stats::Stats;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub url: String,
    /// From the first request to the last response.
    pub duration_s: f64,
    pub requests: u64,
    pub records_sent: u64,
    pub records_acknowledged: u64,
    pub records_failed: u64,
    pub records_per_s: f64,
    pub requests_per_s: f64,
    /// Acknowledged record data (the records' JSON text), 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Request bodies as sent (after gzip), retries included.
    pub body_bytes_sent: u64,
    pub retries: u64,
    pub connection_errors: u64,
    /// Per HTTP exchange (each attempt), from the first byte written to the last byte read.
    pub latency_ms: Latency,
    pub status_codes: BTreeMap<String, u64>,
    /// Failed requests by kind: `400 not_an_object`, `429 overloaded (retries exhausted)`, `connection`.
    pub errors: BTreeMap<String, u64>,
    /// The first few failures: status and body, or the connection error.
    pub error_samples: Vec<String>,
    /// Why sending stopped before the end, if it did: Ctrl-C, or a connection that gave up.
    pub stopped_early: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn new(url: String, stats: &Stats, elapsed: Duration, stopped_early: Option<String>) -> Summary {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let ms = |micros: u64| micros as f64 / 1000.0;
        let latency = &stats.latency;
        Summary {
            url,
            duration_s: elapsed.as_secs_f64(),
            requests: stats.requests,
            records_sent: stats.records_sent,
            records_acknowledged: stats.records_acked,
            records_failed: stats.records_failed,
            records_per_s: stats.records_acked as f64 / seconds,
            requests_per_s: stats.requests as f64 / seconds,
            mb_per_s: stats.record_bytes_acked as f64 / seconds / 1e6,
            body_bytes_sent: stats.body_bytes_sent,
            retries: stats.retries,
            connection_errors: stats.connection_errors,
            latency_ms: Latency {
                p50: ms(latency.value_at_quantile(0.5)),
                p95: ms(latency.value_at_quantile(0.95)),
                p99: ms(latency.value_at_quantile(0.99)),
                max: ms(latency.max()),
                mean: latency.mean() / 1000.0,
            },
            status_codes: stats.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            errors: stats.errors.clone(),
            error_samples: stats.samples.clone(),
            stopped_early,
        }
    }

    /// Every record sent was acknowledged, and nothing gave up.
    pub fn all_acknowledged(&self) -> bool {
        self.records_acknowledged == self.records_sent
            && self.records_failed == 0
            && self.stopped_early.as_ref().is_none_or(|why| why == INTERRUPTED)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary serializes")
    }

    pub fn to_text(&self) -> String {
        let statuses = self
            .status_codes
            .iter()
            .map(|(s, n)| format!("{s}: {}", thousands(*n as f64)))
            .collect::<Vec<_>>()
            .join(", ");
        let l = &self.latency_ms;
        let mut out = format!(
            "Sent to {}\n\
             Duration      {:.2} s\n\
             Requests      {} ({})\n\
             Records       {} acknowledged, {} failed, of {} sent\n\
             Throughput    {} records/s, {} requests/s, {:.2} MB/s of record data\n\
             Latency       p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (per request)\n\
             Retries       {} ({} connection errors)\n",
            self.url,
            self.duration_s,
            thousands(self.requests as f64),
            if statuses.is_empty() {
                "no responses".into()
            } else {
                statuses
            },
            thousands(self.records_acknowledged as f64),
            thousands(self.records_failed as f64),
            thousands(self.records_sent as f64),
            thousands(self.records_per_s),
            thousands(self.requests_per_s),
            self.mb_per_s,
            l.p50,
            l.p95,
            l.p99,
            l.max,
            thousands(self.retries as f64),
            thousands(self.connection_errors as f64),
        );
        if !self.errors.is_empty() {
            out.push_str("Errors\n");
            for (kind, n) in &self.errors {
                out.push_str(&format!("  {kind}: {} requests\n", thousands(*n as f64)));
            }
            out.push_str("First errors\n");
            for sample in &self.error_samples {
                out.push_str(&format!("  {sample}\n"));
            }
        }
        if let Some(why) = &self.stopped_early {
            out.push_str(&format!("Stopped early: {why}\n"));
        }
        out
    }
}

/// Why a run stopped early when the user pressed Ctrl-C.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C)";

/// `1234567.8` → `1,234,568`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn summary_counts_and_verdict() {
        let mut stats = Stats::new();
        stats.requests = 4;
        stats.records_sent = 10;
        stats.records_acked = 8;
        stats.record_failure(2, "400 not_an_object".into(), || "400 {}".into());
        stats.record_latency(Duration::from_millis(2));
        let summary = Summary::new("http://x".into(), &stats, Duration::from_secs(2), None);
        assert_eq!(summary.records_per_s, 4.0);
        assert!(!summary.all_acknowledged());
        let text = summary.to_text();
        assert!(
            text.contains("400 not_an_object: 1 requests") && text.contains("400 {}"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&summary.to_json()).expect("JSON");
        assert_eq!(json["records_failed"], 2);
        assert!((json["latency_ms"]["p50"].as_f64().expect("p50") - 2.0).abs() < 0.01);
    }
}

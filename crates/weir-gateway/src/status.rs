//! What `weir up` reports about itself: one snapshot, served as JSON to the dashboard
//! (`GET /api/status`) and as Prometheus text (`GET /metrics`), so the two never disagree.
//!
//! The gateway measures its own requests ([`GatewayMetrics`]); everything else comes from a
//! [`StatusSource`] the binary plugs in (the streams, the deliveries, the bucket), so this crate
//! does not depend on the delivery stage.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The whole pipeline at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub version: &'static str,
    pub now_ms: i64,
    pub started_ms: i64,
    pub gateway: GatewayStatus,
    pub streams: Vec<StreamStatus>,
    pub deliveries: Vec<DeliveryStatus>,
    /// The warehouse stage; `None` until one is configured.
    pub warehouse: Option<WarehouseStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayStatus {
    /// Responses of the records route by status code.
    pub requests: BTreeMap<u16, u64>,
    pub records_accepted: u64,
    pub bytes_accepted: u64,
    /// Time from request to acknowledgement (successful requests).
    pub put_latency_seconds: HistogramSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub disk_bytes: u64,
    pub segments: usize,
    pub fsyncs: u64,
    pub append_failures: u64,
    pub records_expired: u64,
    pub unconsumed_records_removed: u64,
    pub shards: Vec<StreamShardStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamShardStatus {
    pub shard_id: String,
    /// Records ever appended to the shard (since the stream was created).
    pub incoming_records: u64,
    /// Record bytes appended since this process started.
    pub incoming_bytes: u64,
    /// Arrival time of the newest record (epoch ms), 0 if none.
    pub last_arrival_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryStatus {
    pub name: String,
    pub stream: String,
    /// Where objects go (a directory or an `s3://` URL).
    pub destination: String,
    /// False while writes are failing (retried) or records were lost to retention.
    pub healthy: bool,
    /// Records read from the stream since start: `records_in = delivered + dropped + failed + buffered`.
    pub records_in: u64,
    pub records_delivered: u64,
    pub records_dropped: u64,
    pub records_failed: u64,
    pub records_buffered: u64,
    pub bytes_delivered: u64,
    pub objects_delivered: u64,
    pub delivery_failures: u64,
    /// Transform invocations that failed as a whole and were retried.
    pub transform_retries: u64,
    /// Objects written to the error output.
    pub error_objects: u64,
    /// Records removed from the stream before this delivery read them (hard disk cap).
    pub records_skipped: u64,
    /// Age of the oldest record read but not yet delivered (Firehose's DataFreshness), 0 when none.
    pub data_freshness_ms: u64,
    pub shards: Vec<DeliveryShardStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryShardStatus {
    pub shard_id: String,
    /// How far the delivery's last read was behind the shard's newest record.
    pub millis_behind_latest: u64,
    pub buffered_records: u64,
    pub buffered_bytes: u64,
}

/// The warehouse stage: totals over its tables, and each table.
#[derive(Debug, Clone, Serialize)]
pub struct WarehouseStatus {
    /// The DuckDB database file.
    pub path: String,
    pub objects_loaded: u64,
    pub objects_pending: u64,
    pub rows_loaded: u64,
    /// The largest of the tables' last load lags.
    pub load_lag_ms: u64,
    pub tables: Vec<WarehouseTableStatus>,
}

/// One delivery stream's loading into its table.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct WarehouseTableStatus {
    pub delivery: String,
    pub table: String,
    /// False while loading fails (retried).
    pub healthy: bool,
    pub last_error: Option<String>,
    pub objects_loaded: u64,
    /// Objects that cannot be loaded (see `weir.load_history`).
    pub objects_failed: u64,
    pub rows_loaded: u64,
    pub objects_pending: u64,
    /// The oldest pending object keys.
    pub pending: Vec<String>,
    /// Object written → rows visible, for the last loaded batch.
    pub load_lag_ms: u64,
    /// Records delivery took in, in loaded batches: `records_in = records_loaded + dropped + failed_rows_loaded`.
    pub records_in: u64,
    /// Rows of those records in the table (`rows_loaded` also counts error rows and redriven records).
    pub records_loaded: u64,
    pub dropped: u64,
    pub failed_rows_loaded: u64,
    pub balanced: bool,
}

/// Why a warehouse query did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFailure {
    /// Not a single read-only statement (as opposed to an error in the SQL).
    pub not_allowed: bool,
    pub message: String,
}

/// A recently delivered object, with its first lines.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSummary {
    pub delivery: String,
    pub key: String,
    pub size: u64,
    pub records: u64,
    pub written_ms: i64,
    pub preview: Vec<String>,
}

/// A record that failed processing, as its error output holds it.
#[derive(Debug, Clone, Serialize)]
pub struct FailedRecordSummary {
    pub delivery: String,
    pub arrival_ms: i64,
    pub error_code: String,
    pub error_message: String,
    pub raw_data_preview: String,
}

/// What the binary provides about the parts of the pipeline behind the gateway.
pub trait StatusSource: Send + Sync + 'static {
    fn streams(&self) -> Vec<StreamStatus>;
    fn deliveries(&self) -> Vec<DeliveryStatus>;
    fn warehouse(&self) -> Option<WarehouseStatus> {
        None
    }
    /// Runs a read-only warehouse query; `None` when there is no warehouse.
    fn query(&self, _sql: &str, _max_rows: usize) -> Option<Result<weir_core::query::QueryResult, QueryFailure>> {
        None
    }
    /// The newest delivered objects, newest first.
    fn recent_objects(&self, limit: usize) -> Vec<ObjectSummary>;
    /// The newest processing-failed records, newest first.
    fn recent_failures(&self, _limit: usize) -> Vec<FailedRecordSummary> {
        Vec::new()
    }
}

/// Upper bounds of the put-latency buckets, in seconds (fsync-bound: sub-millisecond to seconds).
const LATENCY_BOUNDS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The gateway's own counters. Updated once per request: a few relaxed atomic adds.
#[derive(Debug)]
pub struct GatewayMetrics {
    started_ms: i64,
    /// Status code → count; few distinct codes, so a small locked map is cheap enough.
    requests: Mutex<BTreeMap<u16, u64>>,
    records_accepted: AtomicU64,
    bytes_accepted: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics {
            started_ms: now_ms(),
            requests: Mutex::default(),
            records_accepted: AtomicU64::new(0),
            bytes_accepted: AtomicU64::new(0),
            latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_count: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
        }
    }
}

impl GatewayMetrics {
    pub fn record_response(&self, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry(status).or_default() += 1;
    }

    /// An acknowledged request: its records, bytes and latency.
    pub fn record_accepted(&self, records: u64, bytes: u64, latency: Duration) {
        self.records_accepted.fetch_add(records, Relaxed);
        self.bytes_accepted.fetch_add(bytes, Relaxed);
        let seconds = latency.as_secs_f64();
        if let Some(i) = LATENCY_BOUNDS.iter().position(|&bound| seconds <= bound) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn snapshot(&self) -> GatewayStatus {
        let mut cumulative = 0;
        let buckets = LATENCY_BOUNDS
            .iter()
            .zip(&self.latency_buckets)
            .map(|(&bound, count)| {
                cumulative += count.load(Relaxed);
                (bound, cumulative)
            })
            .collect();
        GatewayStatus {
            requests: self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            records_accepted: self.records_accepted.load(Relaxed),
            bytes_accepted: self.bytes_accepted.load(Relaxed),
            put_latency_seconds: HistogramSnapshot {
                buckets,
                sum: self.latency_sum_micros.load(Relaxed) as f64 / 1e6,
                count: self.latency_count.load(Relaxed),
            },
        }
    }

    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }
}

/// Cumulative buckets `(upper bound, count)`, as Prometheus histograms have them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The snapshot in Prometheus' text exposition format (version 0.0.4). Names follow Prometheus
/// conventions; each HELP text names the CloudWatch metric it corresponds to.
pub fn prometheus_text(status: &PipelineStatus) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let g = &status.gateway;
    family(
        "weir_up_start_time_seconds",
        "gauge",
        "When this weir up process started (Unix seconds).",
        vec![(String::new(), secs(status.started_ms))],
    );
    family(
        "weir_api_requests_total",
        "counter",
        "Responses of the records API by HTTP status (API Gateway Count, 4XXError, 5XXError).",
        g.requests
            .iter()
            .map(|(code, n)| (labels(&[("code", &code.to_string())]), n.to_string()))
            .collect(),
    );
    family(
        "weir_api_records_accepted_total",
        "counter",
        "Records acknowledged by the API (Kinesis PutRecords.SuccessfulRecords).",
        vec![(String::new(), g.records_accepted.to_string())],
    );
    family(
        "weir_api_bytes_accepted_total",
        "counter",
        "Record bytes acknowledged by the API (Kinesis PutRecords.Bytes).",
        vec![(String::new(), g.bytes_accepted.to_string())],
    );
    let h = &g.put_latency_seconds;
    let mut latency: Vec<(String, String)> = h
        .buckets
        .iter()
        .map(|(bound, n)| (labels(&[("le", &bound.to_string())]), n.to_string()))
        .collect();
    latency.push((labels(&[("le", "+Inf")]), h.count.to_string()));
    let _ = writeln!(
        out,
        "# HELP weir_api_put_latency_seconds Request to durable acknowledgement (Kinesis PutRecords.Latency)."
    );
    let _ = writeln!(out, "# TYPE weir_api_put_latency_seconds histogram");
    for (l, v) in latency {
        let _ = writeln!(out, "weir_api_put_latency_seconds_bucket{l} {v}");
    }
    let _ = writeln!(out, "weir_api_put_latency_seconds_sum {}", h.sum);
    let _ = writeln!(out, "weir_api_put_latency_seconds_count {}", h.count);

    let per_shard = |f: &dyn Fn(&StreamShardStatus) -> String| {
        status
            .streams
            .iter()
            .flat_map(|s| {
                s.shards
                    .iter()
                    .map(|sh| (labels(&[("stream", &s.name), ("shard", &sh.shard_id)]), f(sh)))
            })
            .collect::<Vec<_>>()
    };
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    family(
        "weir_stream_incoming_records_total",
        "counter",
        "Records appended per shard since the stream was created (Kinesis IncomingRecords).",
        per_shard(&|sh| sh.incoming_records.to_string()),
    );
    family(
        "weir_stream_incoming_bytes_total",
        "counter",
        "Record bytes appended per shard since start (Kinesis IncomingBytes).",
        per_shard(&|sh| sh.incoming_bytes.to_string()),
    );
    family(
        "weir_stream_last_arrival_time_seconds",
        "gauge",
        "Arrival time of each shard's newest record (Unix seconds).",
        per_shard(&|sh| secs(sh.last_arrival_ms)),
    );
    let per_stream = |f: &dyn Fn(&StreamStatus) -> String| {
        status
            .streams
            .iter()
            .map(|s| (labels(&[("stream", &s.name)]), f(s)))
            .collect::<Vec<_>>()
    };
    family(
        "weir_stream_disk_bytes",
        "gauge",
        "Bytes of the stream's segment files on disk.",
        per_stream(&|s| s.disk_bytes.to_string()),
    );
    family(
        "weir_stream_segments",
        "gauge",
        "Segment files of the stream.",
        per_stream(&|s| s.segments.to_string()),
    );
    family(
        "weir_stream_fsyncs_total",
        "counter",
        "fsyncs of the stream's log since start.",
        per_stream(&|s| s.fsyncs.to_string()),
    );
    family(
        "weir_stream_append_failures_total",
        "counter",
        "Appends that failed (disk full, I/O errors) since start.",
        per_stream(&|s| s.append_failures.to_string()),
    );
    family(
        "weir_stream_records_expired_total",
        "counter",
        "Records removed by retention after every consumer had read them, since start.",
        per_stream(&|s| s.records_expired.to_string()),
    );
    family(
        "weir_stream_unconsumed_records_removed_total",
        "counter",
        "Records removed by the hard disk cap before every consumer had read them, since start.",
        per_stream(&|s| s.unconsumed_records_removed.to_string()),
    );

    let per_delivery = |f: &dyn Fn(&DeliveryStatus) -> String| {
        status
            .deliveries
            .iter()
            .map(|d| (labels(&[("delivery", &d.name), ("stream", &d.stream)]), f(d)))
            .collect::<Vec<_>>()
    };
    let counters: [DeliveryCounter; 10] = [
        (
            "weir_delivery_records_in_total",
            "Records read from the stream (Firehose IncomingRecords).",
            |d| d.records_in,
        ),
        (
            "weir_delivery_records_delivered_total",
            "Records written to objects (Firehose DeliveryToS3.Records).",
            |d| d.records_delivered,
        ),
        (
            "weir_delivery_records_dropped_total",
            "Records the transform dropped (Firehose ExecuteProcessing Dropped results).",
            |d| d.records_dropped,
        ),
        (
            "weir_delivery_records_failed_total",
            "Records written to the error output (Firehose ProcessingFailed results).",
            |d| d.records_failed,
        ),
        (
            "weir_delivery_bytes_delivered_total",
            "Bytes written to objects (Firehose DeliveryToS3.Bytes).",
            |d| d.bytes_delivered,
        ),
        (
            "weir_delivery_objects_total",
            "Objects written (Firehose DeliveryToS3.Success count).",
            |d| d.objects_delivered,
        ),
        (
            "weir_delivery_failures_total",
            "Failed object or checkpoint writes, each retried (Firehose DeliveryToS3 failures).",
            |d| d.delivery_failures,
        ),
        (
            "weir_delivery_transform_retries_total",
            "Transform invocations retried after failing as a whole (Firehose ExecuteProcessing failures).",
            |d| d.transform_retries,
        ),
        (
            "weir_delivery_error_objects_total",
            "Objects written to the error output.",
            |d| d.error_objects,
        ),
        (
            "weir_delivery_records_skipped_total",
            "Records removed from the stream before delivery read them.",
            |d| d.records_skipped,
        ),
    ];
    for (name, help, get) in counters {
        family(name, "counter", help, per_delivery(&|d| get(d).to_string()));
    }
    family(
        "weir_delivery_records_buffered",
        "gauge",
        "Records read and waiting in the delivery buffer.",
        per_delivery(&|d| d.records_buffered.to_string()),
    );
    family(
        "weir_delivery_data_freshness_seconds",
        "gauge",
        "Age of the oldest record read but not yet delivered (Firehose DeliveryToS3.DataFreshness).",
        per_delivery(&|d| (d.data_freshness_ms as f64 / 1000.0).to_string()),
    );
    let per_delivery_shard = |f: &dyn Fn(&DeliveryShardStatus) -> String| {
        status
            .deliveries
            .iter()
            .flat_map(|d| {
                d.shards
                    .iter()
                    .map(|sh| (labels(&[("delivery", &d.name), ("shard", &sh.shard_id)]), f(sh)))
            })
            .collect::<Vec<_>>()
    };
    family(
        "weir_delivery_millis_behind_latest",
        "gauge",
        "How far the delivery's reads are behind each shard's newest record (Kinesis GetRecords.IteratorAgeMilliseconds).",
        per_delivery_shard(&|sh| sh.millis_behind_latest.to_string()),
    );
    family(
        "weir_delivery_buffer_bytes",
        "gauge",
        "Bytes waiting in each shard's delivery buffer.",
        per_delivery_shard(&|sh| sh.buffered_bytes.to_string()),
    );
    if let Some(w) = &status.warehouse {
        family(
            "weir_warehouse_objects_loaded_total",
            "counter",
            "Objects loaded into the warehouse.",
            vec![(String::new(), w.objects_loaded.to_string())],
        );
        family(
            "weir_warehouse_objects_pending",
            "gauge",
            "Delivered objects not yet loaded.",
            vec![(String::new(), w.objects_pending.to_string())],
        );
        family(
            "weir_warehouse_load_lag_seconds",
            "gauge",
            "Object written → rows visible, for the last loaded object (Snowpipe latency).",
            vec![(String::new(), (w.load_lag_ms as f64 / 1000.0).to_string())],
        );
        let per_table = |value: &dyn Fn(&WarehouseTableStatus) -> u64| {
            w.tables
                .iter()
                .map(|t| {
                    (
                        labels(&[("delivery", &t.delivery), ("table", &t.table)]),
                        value(t).to_string(),
                    )
                })
                .collect()
        };
        family(
            "weir_warehouse_rows_loaded_total",
            "counter",
            "Rows loaded into each table (Snowflake's COPY_HISTORY ROW_COUNT).",
            per_table(&|t| t.rows_loaded),
        );
        family(
            "weir_warehouse_objects_failed_total",
            "counter",
            "Objects that could not be loaded (weir.load_history status 'failed').",
            per_table(&|t| t.objects_failed),
        );
    }
    out
}

/// A delivery counter's name, help text and value.
type DeliveryCounter = (&'static str, &'static str, fn(&DeliveryStatus) -> u64);

fn secs(ms: i64) -> String {
    (ms as f64 / 1000.0).to_string()
}

/// `{a="x",b="y"}` with Prometheus' label value escaping.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\nw")]), r#"{a="x\"y\\z\nw"}"#);
    }

    #[test]
    fn latency_buckets_are_cumulative() {
        let m = GatewayMetrics::default();
        m.record_accepted(1, 10, Duration::from_micros(100));
        m.record_accepted(1, 10, Duration::from_millis(3));
        m.record_accepted(1, 10, Duration::from_secs(60));
        let h = m.snapshot().put_latency_seconds;
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets.first().map(|b| b.1), Some(1));
        assert_eq!(h.buckets.iter().find(|b| b.0 == 0.005).map(|b| b.1), Some(2));
        // Over the last bound: only in +Inf (the count).
        assert_eq!(h.buckets.last().map(|b| b.1), Some(2));
    }
}

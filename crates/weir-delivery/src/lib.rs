//! weir-delivery: the Firehose of weir's single-machine shape (docs/delivery.md).
//!
//! A delivery stream is a named consumer of a stream. Per shard it reads records, buffers them until
//! the buffer holds `buffer_bytes` or its first record has waited `buffer_interval` (Firehose's
//! buffering hints), then plans the batch's objects — transform (Firehose's contract, retried),
//! partition, name with Firehose's prefixes, encode, and route failures to the error output — and
//! writes them to a [`Sink`].
//!
//! # Exactly once
//! For each batch, in this order:
//! 1. its boundaries (shard, first and last sequence number) are recorded durably ([`intent`]);
//! 2. its objects are written under keys derived from those boundaries (deterministic UUIDs and random
//!    strings, the oldest record's arrival time), durably and atomically;
//! 3. the stream consumer's checkpoint moves to the batch's last record.
//!
//! A crash after 1 or 2 replays the recorded batch at start: the same records, the same keys, the same
//! bytes — objects are rewritten, never duplicated. A crash after 3 leaves nothing to do. So every
//! record acknowledged by the stream lands in exactly one place: an object, the error output, or the
//! dropped count.
//!
//! # Layout
//! - [`config`]: buffering hints, processor, prefixes, partitioning, format; Firehose's ranges.
//! - `shard`: the per-shard loop: read, buffer, flush, replay.
//! - `plan`: one batch → its objects (transform, partition, name, encode, error output).
//! - `command`: a program as the transformation Lambda (Firehose's JSON on stdin and stdout).
//! - [`partition`]: partition keys from jq queries (Firehose's inline parsing).
//! - [`encode`]: NDJSON, CSV and Parquet; gzip, zstd and Snappy.
//! - [`intent`]: batch intents.
//! - [`object_log`]: finished batches and their objects, in order, for the warehouse loader.
//! - [`redrive`]: failed records through the current transform again.
//! - [`sink`]: the destination (a local directory; or S3 and any S3-compatible store through `object_store`).

mod command;
pub mod config;
pub mod encode;
pub mod intent;
pub mod object_log;
pub mod partition;
mod plan;
pub mod redrive;
mod shard;
pub mod sink;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_stream::Stream;

pub use config::{ConfigError, DeliveryConfig};
pub use sink::{LocalDirSink, S3Config, S3Sink, S3SinkError, Sink};

/// Starting a delivery stream failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("registering the stream consumer: {0}")]
    Consumer(#[from] weir_stream::CheckpointError),
    #[error("delivery state in {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
}

/// Counters of one delivery stream. `records_read = records_delivered + records_buffered` at rest.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub records_read: AtomicU64,
    pub records_delivered: AtomicU64,
    pub bytes_delivered: AtomicU64,
    pub objects_delivered: AtomicU64,
    /// Objects rewritten from a batch intent at start (crash recovery).
    pub objects_replayed: AtomicU64,
    /// Failed attempts to write an object or checkpoint (each retried).
    pub delivery_failures: AtomicU64,
    /// Records that were gone from the stream before delivery read them (hard disk cap).
    pub records_skipped: AtomicU64,
    /// Unix ms of the newest delivered object's oldest record (Firehose's data freshness).
    pub last_delivered_arrival_ms: AtomicU64,
    /// Records the transform dropped on purpose.
    pub records_dropped: AtomicU64,
    /// Records written to the error output (processing, partitioning or format conversion failed).
    pub records_failed: AtomicU64,
    /// Transform invocations that failed as a whole and were retried.
    pub transform_retries: AtomicU64,
    /// Error-output objects written.
    pub error_objects: AtomicU64,
    /// Per shard, in shard order: what its loop holds right now.
    pub shards: Vec<ShardGauges>,
    /// The newest delivered objects, newest last (at most [`RECENT_OBJECTS`]).
    pub recent_objects: Mutex<VecDeque<DeliveredObject>>,
    /// The newest failed records, newest last (at most [`RECENT_OBJECTS`]).
    pub recent_failures: Mutex<VecDeque<FailedRecord>>,
}

/// A record that went to the error output.
#[derive(Debug, Clone)]
pub struct FailedRecord {
    pub arrival_ms: i64,
    pub error_code: String,
    pub error_message: String,
    /// The start of the original record, lossily decoded.
    pub data_preview: String,
}

/// How many delivered objects [`DeliveryStats::recent_objects`] remembers.
pub const RECENT_OBJECTS: usize = 32;

/// One shard loop's current state.
#[derive(Debug, Default)]
pub struct ShardGauges {
    pub millis_behind_latest: AtomicU64,
    pub buffered_records: AtomicU64,
    pub buffered_bytes: AtomicU64,
    /// Arrival time (Unix ms) of the oldest buffered record; 0 when the buffer is empty.
    pub oldest_buffered_arrival_ms: AtomicU64,
}

/// An object delivery wrote.
#[derive(Debug, Clone)]
pub struct DeliveredObject {
    pub key: String,
    pub size: u64,
    pub records: u64,
    pub written_ms: i64,
    /// The error output type (`processing-failed`, …) for error-output objects.
    pub error_output: Option<&'static str>,
}

impl DeliveryStats {
    fn new(shards: usize) -> DeliveryStats {
        DeliveryStats {
            shards: (0..shards).map(|_| ShardGauges::default()).collect(),
            ..DeliveryStats::default()
        }
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records read and not yet delivered.
    pub fn records_buffered(&self) -> u64 {
        self.shards.iter().map(|s| Self::get(&s.buffered_records)).sum()
    }

    /// Arrival time of the oldest record read but not delivered, if any.
    pub fn oldest_buffered_arrival_ms(&self) -> Option<u64> {
        self.shards
            .iter()
            .map(|s| Self::get(&s.oldest_buffered_arrival_ms))
            .filter(|&ms| ms > 0)
            .min()
    }

    /// The newest delivered objects, newest first.
    pub fn recent_objects(&self, limit: usize) -> Vec<DeliveredObject> {
        let recent = self.recent_objects.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().take(limit).cloned().collect()
    }

    /// The newest failed records, newest first.
    pub fn recent_failures(&self, limit: usize) -> Vec<FailedRecord> {
        let recent = self.recent_failures.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().take(limit).cloned().collect()
    }

    fn remember_failure(&self, failure: plan::FailedRecord) {
        let mut recent = self.recent_failures.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_OBJECTS {
            recent.pop_front();
        }
        recent.push_back(FailedRecord {
            arrival_ms: failure.arrival_ms,
            error_code: failure.error.code.into_owned(),
            error_message: failure.error.message,
            data_preview: failure.data_preview,
        });
    }

    fn remember(&self, object: DeliveredObject) {
        let mut recent = self.recent_objects.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_OBJECTS {
            recent.pop_front();
        }
        recent.push_back(object);
    }
}

/// A running delivery stream.
#[derive(Debug)]
pub struct Delivery {
    name: String,
    consumer: String,
    stats: Arc<DeliveryStats>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    sink: Arc<dyn Sink>,
}

impl Delivery {
    /// Starts delivering `stream` to `sink`; `state_dir` keeps the batch intents. Must be called
    /// inside a tokio runtime.
    pub fn start(
        stream: Stream,
        config: DeliveryConfig,
        sink: Arc<dyn Sink>,
        state_dir: impl Into<PathBuf>,
    ) -> Result<Delivery, DeliveryError> {
        Delivery::start_with_log(stream, config, sink, state_dir, false)
    }

    /// [`Delivery::start`], also announcing every finished batch in the object log
    /// (`<state_dir>/objects`, see [`Delivery::object_log_dir`]) when `object_log` is set.
    pub fn start_with_log(
        stream: Stream,
        config: DeliveryConfig,
        sink: Arc<dyn Sink>,
        state_dir: impl Into<PathBuf>,
        object_log: bool,
    ) -> Result<Delivery, DeliveryError> {
        config.validate()?;
        let setup = setup(&config, stream.name())?;
        let consumer = format!("firehose-{}", config.name);
        stream.register_consumer(&consumer)?;
        let state_dir = state_dir.into();
        let intents = intent::IntentStore::open(&state_dir).map_err(|source| DeliveryError::State {
            path: state_dir.clone(),
            source,
        })?;
        let object_log = if object_log {
            let dir = Delivery::object_log_dir(&state_dir);
            Some(object_log::ObjectLog::open(&dir).map_err(|source| DeliveryError::State { path: dir, source })?)
        } else {
            None
        };
        let stats = Arc::new(DeliveryStats::new(stream.shard_ids().len()));
        let (shutdown, stopping) = watch::channel(false);
        let ctx = Arc::new(shard::Context {
            stream: stream.clone(),
            consumer: consumer.clone(),
            setup,
            sink: sink.clone(),
            intents,
            stats: stats.clone(),
            object_log,
        });
        let tasks = stream
            .shard_ids()
            .into_iter()
            .map(|id| tokio::spawn(shard::run(ctx.clone(), id, stopping.clone())))
            .collect();
        Ok(Delivery {
            name: config.name,
            consumer,
            stats,
            shutdown,
            tasks,
            sink,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the object log of the delivery with state in `state_dir` lives.
    pub fn object_log_dir(state_dir: &std::path::Path) -> PathBuf {
        state_dir.join("objects")
    }

    /// The stream consumer this delivery checkpoints as.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    pub fn stats(&self) -> &Arc<DeliveryStats> {
        &self.stats
    }

    pub fn location(&self) -> String {
        self.sink.location()
    }

    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// Delivers everything buffered, checkpoints, and stops. Records still in the stream are delivered
    /// at the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Builds what the shard loops share from a validated configuration.
fn setup(config: &DeliveryConfig, stream: &str) -> Result<plan::Setup, ConfigError> {
    let config_error = |key: &'static str, message: String| ConfigError { key, message };
    let transform: Box<dyn weir_core::transform::Transform> = match &config.processor.command {
        Some(argv) => Box::new(command::CommandTransform::new(
            argv.clone(),
            config.processor.timeout,
            &config.name,
            stream,
        )),
        None => config
            .transform
            .build()
            .map_err(|e| config_error("transform", e.to_string()))?,
    };
    let query_keys: Option<plan::QueryKeysFn> = match &config.dynamic_partitioning {
        Some(dp) if !dp.query_keys.is_empty() => {
            let query = partition::QueryKeys::from_keys(&dp.query_keys)
                .map_err(|e| config_error("dynamic_partitioning.query_keys", e.to_string()))?;
            Some(Box::new(move |record: &[u8]| query.extract(record)))
        }
        _ => None,
    };
    Ok(plan::Setup {
        config: config.clone(),
        transform,
        prefixes: config.prefixes()?,
        query_keys,
        format: config.format.clone(),
        compression: config.compression,
    })
}

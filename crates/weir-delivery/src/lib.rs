//! weir-delivery: the Firehose of weir's single-machine shape.
//!
//! A delivery stream is a named consumer of a stream. Per shard it reads records, buffers them until
//! the buffer holds `buffer_bytes` or its first record has waited `buffer_interval` (Firehose's
//! buffering hints), transforms them (the seed's newline transform) and writes one object per batch
//! to a [`Sink`], under Firehose's default key layout.
//!
//! # Exactly once
//! For each batch, in this order:
//! 1. its boundaries (shard, first and last sequence number) are recorded durably ([`intent`]);
//! 2. its object is written under a key derived from those boundaries (deterministic UUID, the oldest
//!    record's arrival time), durably and atomically;
//! 3. the stream consumer's checkpoint moves to the batch's last record.
//!
//! A crash after 1 or 2 replays the recorded batch at start: the same records, the same key, the same
//! bytes — the object is rewritten, never duplicated. A crash after 3 leaves nothing to do. So every
//! record acknowledged by the stream lands in exactly one object.
//!
//! # Layout
//! - [`config`]: buffering hints and their ranges.
//! - [`shard`]: the per-shard loop: read, buffer, flush, replay.
//! - [`intent`]: batch intents.
//! - [`sink`]: the destination (a local directory; S3 comes with the Firehose-parity work).

pub mod config;
pub mod intent;
mod shard;
pub mod sink;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_stream::Stream;

pub use config::{ConfigError, DeliveryConfig};
pub use sink::{LocalDirSink, Sink};

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
}

impl DeliveryStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
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
        config.validate()?;
        let consumer = format!("firehose-{}", config.name);
        stream.register_consumer(&consumer)?;
        let state_dir = state_dir.into();
        let intents = intent::IntentStore::open(&state_dir).map_err(|source| DeliveryError::State {
            path: state_dir.clone(),
            source,
        })?;
        let stats = Arc::new(DeliveryStats::default());
        let (shutdown, stopping) = watch::channel(false);
        let ctx = Arc::new(shard::Context {
            stream: stream.clone(),
            consumer: consumer.clone(),
            config: config.clone(),
            sink: sink.clone(),
            intents,
            stats: stats.clone(),
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

    /// Delivers everything buffered, checkpoints, and stops. Records still in the stream are delivered
    /// at the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

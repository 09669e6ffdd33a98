//! One shard's delivery loop: replay a pending batch, then read → buffer → flush, until shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{error, info, warn};
use weir_core::firehose;
use weir_stream::{ReadLimits, Record, SequenceNumber, ShardId, ShardIterator, ShardIteratorType, Stream};

use crate::DeliveryStats;
use crate::intent::{BatchIntent, IntentStore};
use crate::object_log::{BatchNotice, NoticeObject, NoticeSource, ObjectLog};
use crate::plan::{self, Setup};
use crate::sink::Sink;

/// Retries of a failed object write back off up to this long.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long an idle shard waits for records before checking again (no busy loop: the stream wakes it).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

pub(crate) struct Context {
    pub stream: Stream,
    pub consumer: String,
    pub setup: Setup,
    pub sink: Arc<dyn Sink>,
    pub intents: IntentStore,
    pub stats: Arc<DeliveryStats>,
    /// Where finished batches are announced (to the warehouse loader), if anything reads them.
    pub object_log: Option<ObjectLog>,
}

#[derive(Default)]
struct Buffer {
    records: Vec<Record>,
    bytes: u64,
    /// When the first buffered record was read: the interval runs from here.
    since: Option<Instant>,
}

pub(crate) async fn run(ctx: Arc<Context>, shard: ShardId, mut stopping: watch::Receiver<bool>) {
    let mut backoff = Backoff::default();
    loop {
        match replay_pending(&ctx, shard).await {
            Ok(()) => break,
            Err(e) => {
                ctx.stats.delivery_failures.fetch_add(1, Relaxed);
                error!(delivery = %ctx.setup.config.name, %shard, error = %e, "Replaying the pending batch failed; retrying.");
                if *stopping.borrow() || !backoff.wait(&mut stopping).await {
                    return;
                }
            }
        }
    }
    let mut it = match ctx.stream.resume_iterator(&ctx.consumer, shard) {
        Ok(Some(it)) => it,
        Ok(None) => unreachable!("the consumer is registered before the shard loops start"),
        Err(e) => {
            error!(delivery = %ctx.setup.config.name, %shard, error = %e, "Cannot resume; this shard is not delivered.");
            return;
        }
    };
    let mut buffer = Buffer::default();
    loop {
        let stop = *stopping.borrow();
        let got_records = match read_more(&ctx, &mut it, &mut buffer) {
            Ok(got) => got,
            Err(e) => {
                error!(delivery = %ctx.setup.config.name, %shard, error = %e, "Reading the stream failed; retrying.");
                if !backoff.wait(&mut stopping).await {
                    return;
                }
                continue;
            }
        };
        let due = buffer.bytes >= ctx.setup.config.buffer_bytes
            || buffer
                .since
                .is_some_and(|since| since.elapsed() >= ctx.setup.config.buffer_interval);
        if !buffer.records.is_empty() && (due || stop) {
            // On shutdown the loop keeps reading and flushing until the shard is drained. A batch
            // that could not be delivered ends the loop: its intent must stay the shard's last one,
            // so that the next start replays it before anything after it.
            if !flush(&ctx, &mut buffer, &stopping).await {
                return;
            }
            continue;
        }
        if stop {
            return;
        }
        if got_records {
            continue;
        }
        let wait = buffer.since.map_or(IDLE_WAIT, |since| {
            ctx.setup.config.buffer_interval.saturating_sub(since.elapsed())
        });
        tokio::select! {
            _ = ctx.stream.wait_for_records(&it, wait) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Reads what is available into the buffer, up to the buffer's remaining room. Returns whether
/// anything was read.
fn read_more(ctx: &Context, it: &mut ShardIterator, buffer: &mut Buffer) -> Result<bool, weir_stream::ReadError> {
    let room = ctx.setup.config.buffer_bytes.saturating_sub(buffer.bytes).max(1);
    let limits = ReadLimits {
        max_records: 10_000,
        max_bytes: usize::try_from(room).unwrap_or(usize::MAX),
    };
    let batch = ctx.stream.read(it, limits)?;
    if batch.skipped_records > 0 {
        ctx.stats.records_skipped.fetch_add(batch.skipped_records, Relaxed);
        error!(delivery = %ctx.setup.config.name, shard = %it.shard_id(), records = batch.skipped_records,
            "Records were removed from the stream before delivery read them.");
    }
    *it = batch.next_iterator;
    let gauges = &ctx.stats.shards[it.shard_id().0 as usize];
    gauges.millis_behind_latest.store(batch.millis_behind_latest, Relaxed);
    if batch.records.is_empty() {
        return Ok(false);
    }
    ctx.stats.records_read.fetch_add(batch.records.len() as u64, Relaxed);
    buffer.since.get_or_insert_with(Instant::now);
    buffer.bytes += batch.records.iter().map(|r| r.data.len() as u64).sum::<u64>();
    buffer.records.extend(batch.records);
    gauges.buffered_records.store(buffer.records.len() as u64, Relaxed);
    gauges.buffered_bytes.store(buffer.bytes, Relaxed);
    if let Some(first) = buffer.records.first() {
        let arrival = u64::try_from(first.approximate_arrival_timestamp_ms)
            .unwrap_or(1)
            .max(1);
        gauges.oldest_buffered_arrival_ms.store(arrival, Relaxed);
    }
    Ok(true)
}

/// Delivers the buffer, retrying with backoff until it succeeds. Returns false if it gave up because
/// of shutdown: the batch intent makes the next start deliver it.
async fn flush(ctx: &Arc<Context>, buffer: &mut Buffer, stopping: &watch::Receiver<bool>) -> bool {
    let records = Arc::new(std::mem::take(&mut buffer.records));
    *buffer = Buffer::default();
    let mut backoff = Backoff::default();
    let mut stopping = stopping.clone();
    loop {
        let (ctx2, batch) = (ctx.clone(), records.clone());
        let result = tokio::task::spawn_blocking(move || deliver(&ctx2, &batch, true))
            .await
            .unwrap_or_else(|e| Err(format!("delivery task failed: {e}")));
        let Err(e) = result else {
            return true;
        };
        ctx.stats.delivery_failures.fetch_add(1, Relaxed);
        warn!(delivery = %ctx.setup.config.name, error = %e, "Delivering an object failed; retrying.");
        if *stopping.borrow() || !backoff.wait(&mut stopping).await {
            warn!(delivery = %ctx.setup.config.name, "Stopping with an undelivered batch; it is delivered at the next start.");
            return false;
        }
    }
}

/// Steps 1–3 of the exactly-once protocol (see the crate docs) for one batch of consecutive records.
/// Step 2 may write several objects (one per partition, plus error output); the checkpoint moves only
/// after every one of them is durable, and a replay plans and writes the same objects again.
fn deliver(ctx: &Context, records: &[Record], record_intent: bool) -> Result<(), String> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let (first_seq, last_seq) = (first.sequence_number, last.sequence_number);
    let shard = first_seq.shard;
    if record_intent {
        ctx.intents
            .record(&BatchIntent::new(first_seq, last_seq), shard)
            .map_err(|e| format!("recording the batch intent: {e}"))?;
    }
    let id = firehose::batch_id(
        &ctx.setup.config.name,
        &shard.to_string(),
        &first_seq.to_string(),
        &last_seq.to_string(),
    );
    let now = weir_stream::Clock::now_ms(&weir_stream::SystemClock);
    let plan = plan::plan(&ctx.setup, records, id, now);
    for object in &plan.objects {
        ctx.sink
            .put(&object.key, &object.body)
            .map_err(|e| format!("writing object {}: {e}", object.key))?;
    }
    if let Some(log) = &ctx.object_log {
        log.append(&notice(&plan, id, records.len() as u64, now, NoticeSource::Stream))
            .map_err(|e| format!("appending to the object log in {}: {e}", log.dir().display()))?;
    }
    ctx.stream
        .checkpoint(&ctx.consumer, last_seq)
        .map_err(|e| format!("checkpointing {last_seq}: {e}"))?;

    let stats = &ctx.stats;
    // The batch left the buffer: its shard holds nothing until the next read.
    let gauges = &stats.shards[shard.0 as usize];
    gauges.buffered_records.store(0, Relaxed);
    gauges.buffered_bytes.store(0, Relaxed);
    gauges.oldest_buffered_arrival_ms.store(0, Relaxed);
    stats.records_delivered.fetch_add(plan.delivered, Relaxed);
    stats.records_dropped.fetch_add(plan.dropped, Relaxed);
    stats.records_failed.fetch_add(plan.failed, Relaxed);
    stats.transform_retries.fetch_add(plan.retries, Relaxed);
    for object in plan.objects {
        let counter = if object.error.is_some() {
            &stats.error_objects
        } else {
            stats.bytes_delivered.fetch_add(object.body.len() as u64, Relaxed);
            &stats.objects_delivered
        };
        counter.fetch_add(1, Relaxed);
        stats.remember(crate::DeliveredObject {
            key: object.key,
            size: object.body.len() as u64,
            records: object.records,
            written_ms: now,
            error_output: object.error.map(|e| e.as_str()),
        });
    }
    for failure in plan.failures {
        stats.remember_failure(failure);
    }
    stats.last_delivered_arrival_ms.fetch_max(
        u64::try_from(first.approximate_arrival_timestamp_ms).unwrap_or(0),
        Relaxed,
    );
    Ok(())
}

/// The object log's line for a planned batch.
pub(crate) fn notice(
    plan: &plan::Plan,
    batch_id: uuid::Uuid,
    records_in: u64,
    now_ms: i64,
    source: NoticeSource,
) -> BatchNotice {
    BatchNotice {
        batch_id: batch_id.to_string(),
        source,
        written_ms: now_ms,
        records_in,
        delivered: plan.delivered,
        dropped: plan.dropped,
        failed: plan.failed,
        objects: plan
            .objects
            .iter()
            .map(|o| NoticeObject {
                key: o.key.clone(),
                bytes: o.body.len() as u64,
                records: o.records,
                error_output: o.error.map(|e| e.as_str().to_owned()),
            })
            .collect(),
    }
}

/// At start: if the shard's last recorded batch is past its checkpoint, a crash interrupted it —
/// deliver exactly that batch again (same records, same key).
async fn replay_pending(ctx: &Arc<Context>, shard: ShardId) -> Result<(), String> {
    let Some(intent) = ctx.intents.load(shard).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let (first, last) = intent.bounds()?;
    let checkpoint = ctx
        .stream
        .checkpoints(&ctx.consumer)
        .and_then(|c| c.get(shard.0 as usize).copied().flatten());
    if checkpoint.is_some_and(|c| c.offset >= last.offset) {
        return Ok(());
    }
    // Batches are recorded one at a time, each after the previous one's checkpoint: a pending batch
    // starts right after the checkpoint, or later only if retention removed the records between.
    // Anything else means the files were tampered with; delivering from the checkpoint is then the
    // safe choice (nothing skipped, nothing delivered twice by this replay).
    let expected_first = checkpoint.map_or(0, |c| c.offset + 1);
    let trim = ctx.stream.stats().shards[shard.0 as usize].trim_offset;
    if first.offset < expected_first || (first.offset > expected_first && trim <= expected_first) {
        error!(delivery = %ctx.setup.config.name, %shard, intent_first = %first, checkpoint = ?checkpoint,
            "Ignoring a batch intent that does not follow the checkpoint.");
        return Ok(());
    }
    let records = read_exactly(&ctx.stream, first, last)?;
    info!(delivery = %ctx.setup.config.name, %shard, first = %first, last = %last, "Replaying a batch interrupted by a crash.");
    let ctx2 = ctx.clone();
    tokio::task::spawn_blocking(move || deliver(&ctx2, &records, false))
        .await
        .map_err(|e| e.to_string())??;
    ctx.stats.objects_replayed.fetch_add(1, Relaxed);
    Ok(())
}

fn read_exactly(stream: &Stream, first: SequenceNumber, last: SequenceNumber) -> Result<Vec<Record>, String> {
    let mut it = stream
        .iterator(first.shard, ShardIteratorType::AtSequenceNumber(first))
        .map_err(|e| e.to_string())?;
    let mut out: Vec<Record> = Vec::new();
    while out.last().is_none_or(|r| r.sequence_number < last) {
        let batch = stream.read(&it, ReadLimits::default()).map_err(|e| e.to_string())?;
        if batch.skipped_records > 0 || batch.records.is_empty() {
            return Err(format!(
                "records {first}..={last} of the pending batch are no longer in the stream"
            ));
        }
        out.extend(batch.records.into_iter().take_while(|r| r.sequence_number <= last));
        it = batch.next_iterator;
    }
    Ok(out)
}

/// Exponential backoff that wakes early on shutdown.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Sleeps; returns false if shutdown was signalled meanwhile.
    async fn wait(&mut self, stopping: &mut watch::Receiver<bool>) -> bool {
        let delay = Duration::from_millis(100u64 << self.attempt.min(9)).min(MAX_BACKOFF);
        self.attempt += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stopping.changed() => false,
        }
    }
}

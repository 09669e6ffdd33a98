//! The pipeline's status for `/metrics` and the dashboard: the gateway asks, this module reads the
//! streams' and deliveries' counters and the bucket.

use std::sync::Arc;
use weir_delivery::{Delivery, DeliveryStats, Sink};
use weir_gateway::status::{
    DeliveryShardStatus, DeliveryStatus, FailedRecordSummary, ObjectSummary, QueryFailure, StatusSource,
    StreamShardStatus, StreamStatus, WarehouseStatus, WarehouseTableStatus, now_ms,
};
use weir_stream::Stream;

/// How much of an object a preview reads, and how many lines it shows.
const PREVIEW_BYTES: usize = 4096;
const PREVIEW_LINES: usize = 3;
/// How many remembered objects to look through for delivered ones.
const RECENT_SCAN: usize = weir_delivery::RECENT_OBJECTS;

pub struct PipelineView {
    streams: Vec<(String, Stream)>,
    deliveries: Vec<DeliveryView>,
    warehouse: Option<Arc<weir_warehouse::Warehouse>>,
}

struct DeliveryView {
    name: String,
    stream: String,
    stats: Arc<DeliveryStats>,
    sink: Arc<dyn Sink>,
}

impl PipelineView {
    pub fn new(
        streams: Vec<(String, Stream)>,
        deliveries: &[(String, &Delivery)],
        warehouse: Option<Arc<weir_warehouse::Warehouse>>,
    ) -> PipelineView {
        PipelineView {
            streams,
            warehouse,
            deliveries: deliveries
                .iter()
                .map(|(stream, d)| DeliveryView {
                    name: d.name().to_owned(),
                    stream: stream.clone(),
                    stats: d.stats().clone(),
                    sink: d.sink().clone(),
                })
                .collect(),
        }
    }
}

/// The gateway's view of the warehouse's tables.
pub fn warehouse_status(path: &std::path::Path, tables: Vec<weir_warehouse::TableStatus>) -> WarehouseStatus {
    let tables: Vec<WarehouseTableStatus> = tables
        .into_iter()
        .map(|t| WarehouseTableStatus {
            delivery: t.delivery,
            table: t.table,
            healthy: t.healthy,
            last_error: t.last_error,
            objects_loaded: t.objects_loaded,
            objects_failed: t.objects_failed,
            rows_loaded: t.rows_loaded,
            objects_pending: t.objects_pending,
            pending: t.pending,
            load_lag_ms: t.load_lag_ms,
            records_in: t.reconciliation.records_in,
            records_loaded: t.reconciliation.rows_loaded,
            dropped: t.reconciliation.dropped,
            failed_rows_loaded: t.reconciliation.failed_rows_loaded,
            balanced: t.reconciliation.balanced,
        })
        .collect();
    WarehouseStatus {
        path: path.display().to_string(),
        objects_loaded: tables.iter().map(|t| t.objects_loaded).sum(),
        objects_pending: tables.iter().map(|t| t.objects_pending).sum(),
        rows_loaded: tables.iter().map(|t| t.rows_loaded).sum(),
        load_lag_ms: tables.iter().map(|t| t.load_lag_ms).max().unwrap_or(0),
        tables,
    }
}

impl StatusSource for PipelineView {
    fn warehouse(&self) -> Option<WarehouseStatus> {
        let w = self.warehouse.as_ref()?;
        Some(warehouse_status(w.path(), w.status()))
    }

    fn query(&self, sql: &str, max_rows: usize) -> Option<Result<weir_core::query::QueryResult, QueryFailure>> {
        let w = self.warehouse.as_ref()?;
        Some(w.query(sql, max_rows).map_err(|e| QueryFailure {
            not_allowed: matches!(e, weir_warehouse::QueryError::NotAllowed(_)),
            message: e.to_string(),
        }))
    }

    fn streams(&self) -> Vec<StreamStatus> {
        self.streams
            .iter()
            .map(|(name, stream)| {
                let s = stream.stats();
                StreamStatus {
                    name: name.clone(),
                    disk_bytes: s.disk_bytes,
                    segments: s.segments,
                    fsyncs: s.fsyncs,
                    append_failures: s.append_failures,
                    records_expired: s.records_expired,
                    unconsumed_records_removed: s.unconsumed_records_removed,
                    shards: s
                        .shards
                        .iter()
                        .map(|sh| StreamShardStatus {
                            shard_id: sh.shard_id.to_string(),
                            incoming_records: sh.next_offset,
                            incoming_bytes: sh.data_bytes_appended,
                            last_arrival_ms: sh.last_arrival_ms,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn deliveries(&self) -> Vec<DeliveryStatus> {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        self.deliveries
            .iter()
            .map(|d| {
                let s = &d.stats;
                let get = DeliveryStats::get;
                let failing = s
                    .recent_objects(1)
                    .first()
                    .is_none_or(|o| now_ms() - o.written_ms > 60_000)
                    && get(&s.delivery_failures) > 0;
                DeliveryStatus {
                    name: d.name.clone(),
                    stream: d.stream.clone(),
                    destination: d.sink.location(),
                    healthy: !failing && get(&s.records_skipped) == 0,
                    records_in: get(&s.records_read),
                    records_delivered: get(&s.records_delivered),
                    records_dropped: get(&s.records_dropped),
                    records_failed: get(&s.records_failed),
                    records_buffered: s.records_buffered(),
                    bytes_delivered: get(&s.bytes_delivered),
                    objects_delivered: get(&s.objects_delivered),
                    delivery_failures: get(&s.delivery_failures),
                    transform_retries: get(&s.transform_retries),
                    error_objects: get(&s.error_objects),
                    records_skipped: get(&s.records_skipped),
                    data_freshness_ms: s.oldest_buffered_arrival_ms().map_or(0, |t| now.saturating_sub(t)),
                    shards: s
                        .shards
                        .iter()
                        .enumerate()
                        .map(|(i, g)| DeliveryShardStatus {
                            shard_id: weir_core::kinesis::shard_id(i as u32),
                            millis_behind_latest: get(&g.millis_behind_latest),
                            buffered_records: get(&g.buffered_records),
                            buffered_bytes: get(&g.buffered_bytes),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn recent_objects(&self, limit: usize) -> Vec<ObjectSummary> {
        let mut objects: Vec<ObjectSummary> = self
            .deliveries
            .iter()
            .flat_map(|d| {
                // Error-output objects are listed by `recent_failures`, record by record.
                let delivered = d
                    .stats
                    .recent_objects(RECENT_SCAN)
                    .into_iter()
                    .filter(|o| o.error_output.is_none());
                delivered.take(limit).map(|o| ObjectSummary {
                    delivery: d.name.clone(),
                    preview: preview(d.sink.as_ref(), &o.key),
                    key: o.key,
                    size: o.size,
                    records: o.records,
                    written_ms: o.written_ms,
                })
            })
            .collect();
        objects.sort_by_key(|o| std::cmp::Reverse(o.written_ms));
        objects.truncate(limit);
        objects
    }

    fn recent_failures(&self, limit: usize) -> Vec<FailedRecordSummary> {
        let mut failures: Vec<FailedRecordSummary> = self
            .deliveries
            .iter()
            .flat_map(|d| {
                d.stats.recent_failures(limit).into_iter().map(|f| FailedRecordSummary {
                    delivery: d.name.clone(),
                    arrival_ms: f.arrival_ms,
                    error_code: f.error_code,
                    error_message: f.error_message,
                    raw_data_preview: f.data_preview,
                })
            })
            .collect();
        failures.sort_by_key(|f| std::cmp::Reverse(f.arrival_ms));
        failures.truncate(limit);
        failures
    }
}

/// The object's first lines (lossy UTF-8; a line cut by the read limit ends in `…`). An object that
/// cannot be read (removed by the user) previews as nothing.
fn preview(sink: &dyn Sink, key: &str) -> Vec<String> {
    let Ok(head) = sink.read_head(key, PREVIEW_BYTES) else {
        return Vec::new();
    };
    let complete = head.len() < PREVIEW_BYTES;
    let text = String::from_utf8_lossy(&head);
    let mut lines: Vec<String> = text
        .split_inclusive('\n')
        .take(PREVIEW_LINES)
        .map(str::to_owned)
        .collect();
    for line in &mut lines {
        if line.ends_with('\n') {
            line.pop();
        } else if !complete {
            line.push('…');
        }
    }
    lines
}

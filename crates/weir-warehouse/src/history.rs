//! The warehouse's own tables, in schema `weir`:
//!
//! - `weir.load_history`: one row per object, loaded or failed (Snowflake's COPY_HISTORY). Its key
//!   is what makes loading exactly-once: it is written in the same transaction as the object's rows.
//! - `weir.batches`: one row per delivered batch, with the delivery's counts (in = delivered +
//!   dropped + failed), for reconciliation.
//! - `weir.cursors`: per delivery stream, where in its object log the loader has got to.
//! - `weir.reconciliation`: a view per delivery stream: records in = loaded + dropped + failed.

use duckdb::{Connection, params};
use weir_delivery::object_log::LogPosition;

pub(crate) const SCHEMA_SQL: &str = r#"
CREATE SCHEMA IF NOT EXISTS weir;
CREATE TABLE IF NOT EXISTS weir.load_history (
  delivery VARCHAR NOT NULL,
  object_key VARCHAR NOT NULL,
  batch_id VARCHAR NOT NULL,
  target_table VARCHAR NOT NULL,
  -- NULL for data objects; processing-failed, partitioning-failed, … for error output
  error_output_type VARCHAR,
  -- 'loaded', or 'failed' (the object could not be read or parsed; error says why)
  status VARCHAR NOT NULL,
  rows_loaded BIGINT NOT NULL,
  -- the delivery's record count for the object
  records BIGINT NOT NULL,
  bytes BIGINT NOT NULL,
  written_at TIMESTAMPTZ NOT NULL,
  loaded_at TIMESTAMPTZ NOT NULL,
  error VARCHAR,
  PRIMARY KEY (delivery, object_key)
);
CREATE TABLE IF NOT EXISTS weir.batches (
  delivery VARCHAR NOT NULL,
  batch_id VARCHAR NOT NULL,
  -- 'stream', or 'redrive' (failed records sent through the transform again)
  source VARCHAR NOT NULL,
  records_in BIGINT NOT NULL,
  delivered BIGINT NOT NULL,
  dropped BIGINT NOT NULL,
  failed BIGINT NOT NULL,
  objects INTEGER NOT NULL,
  written_at TIMESTAMPTZ NOT NULL,
  loaded_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (delivery, batch_id)
);
CREATE TABLE IF NOT EXISTS weir.cursors (
  delivery VARCHAR PRIMARY KEY,
  segment BIGINT NOT NULL,
  "offset" BIGINT NOT NULL
);
CREATE OR REPLACE VIEW weir.reconciliation AS
SELECT
  b.delivery,
  b.records_in,
  coalesce(h.rows_loaded, 0) AS rows_loaded,
  b.dropped,
  coalesce(h.error_rows_loaded, 0) AS failed_rows_loaded,
  b.records_in = coalesce(h.rows_loaded, 0) + b.dropped + coalesce(h.error_rows_loaded, 0) AS balanced,
  b.redriven_in,
  coalesce(h.redriven_rows_loaded, 0) AS redriven_rows_loaded,
  coalesce(h.objects_failed, 0) AS objects_failed
FROM (
  SELECT delivery,
    coalesce(sum(records_in) FILTER (WHERE source = 'stream'), 0) AS records_in,
    coalesce(sum(dropped) FILTER (WHERE source = 'stream'), 0) AS dropped,
    coalesce(sum(records_in) FILTER (WHERE source = 'redrive'), 0) AS redriven_in
  FROM weir.batches GROUP BY delivery
) b
LEFT JOIN (
  SELECT h.delivery,
    sum(rows_loaded) FILTER (WHERE error_output_type IS NULL AND b.source = 'stream') AS rows_loaded,
    sum(rows_loaded) FILTER (WHERE error_output_type IS NOT NULL AND b.source = 'stream') AS error_rows_loaded,
    sum(rows_loaded) FILTER (WHERE b.source = 'redrive') AS redriven_rows_loaded,
    count(*) FILTER (WHERE status = 'failed') AS objects_failed
  FROM weir.load_history h JOIN weir.batches b USING (delivery, batch_id)
  GROUP BY h.delivery
) h USING (delivery);
"#;

/// Where the loader of `delivery` resumes in its object log.
pub(crate) fn cursor(conn: &Connection, delivery: &str) -> duckdb::Result<LogPosition> {
    let mut stmt = conn.prepare_cached("SELECT segment, \"offset\" FROM weir.cursors WHERE delivery = ?")?;
    let mut rows = stmt.query(params![delivery])?;
    Ok(match rows.next()? {
        Some(row) => LogPosition {
            segment: row.get::<_, i64>(0)? as u64,
            offset: row.get::<_, i64>(1)? as u64,
        },
        None => LogPosition::default(),
    })
}

pub(crate) fn set_cursor(conn: &Connection, delivery: &str, at: LogPosition) -> duckdb::Result<()> {
    conn.prepare_cached(
        "INSERT INTO weir.cursors VALUES (?, ?, ?) \
         ON CONFLICT (delivery) DO UPDATE SET segment = excluded.segment, \"offset\" = excluded.\"offset\"",
    )?
    .execute(params![delivery, at.segment as i64, at.offset as i64])?;
    Ok(())
}

pub(crate) fn batch_loaded(conn: &Connection, delivery: &str, batch_id: &str) -> duckdb::Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT count(*) FROM weir.batches WHERE delivery = ? AND batch_id = ?")?;
    stmt.query_row(params![delivery, batch_id], |row| row.get::<_, i64>(0))
        .map(|n| n > 0)
}

pub(crate) fn object_loaded(conn: &Connection, delivery: &str, key: &str) -> duckdb::Result<bool> {
    let mut stmt =
        conn.prepare_cached("SELECT count(*) FROM weir.load_history WHERE delivery = ? AND object_key = ?")?;
    stmt.query_row(params![delivery, key], |row| row.get::<_, i64>(0))
        .map(|n| n > 0)
}

/// Totals since the warehouse was created, per delivery stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub objects_loaded: u64,
    pub objects_failed: u64,
    pub rows_loaded: u64,
}

pub(crate) fn totals(conn: &Connection, delivery: &str) -> duckdb::Result<Totals> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FILTER (WHERE status = 'loaded'), count(*) FILTER (WHERE status = 'failed'), \
         coalesce(sum(rows_loaded), 0)::BIGINT FROM weir.load_history WHERE delivery = ?",
    )?;
    stmt.query_row(params![delivery], |row| {
        Ok(Totals {
            objects_loaded: row.get::<_, i64>(0)? as u64,
            objects_failed: row.get::<_, i64>(1)? as u64,
            rows_loaded: row.get::<_, i64>(2)? as u64,
        })
    })
}

/// One delivery stream's row of `weir.reconciliation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reconciliation {
    pub delivery: String,
    /// Records delivery took in from the stream (in loaded batches).
    pub records_in: u64,
    /// Rows of those records in the target table.
    pub rows_loaded: u64,
    pub dropped: u64,
    /// Rows of those records in the errors table.
    pub failed_rows_loaded: u64,
    /// `records_in = rows_loaded + dropped + failed_rows_loaded`.
    pub balanced: bool,
    pub redriven_in: u64,
    pub redriven_rows_loaded: u64,
    pub objects_failed: u64,
}

pub(crate) fn reconciliation(conn: &Connection, delivery: &str) -> duckdb::Result<Reconciliation> {
    let mut stmt = conn.prepare_cached(
        "SELECT records_in::BIGINT, rows_loaded::BIGINT, dropped::BIGINT, failed_rows_loaded::BIGINT, balanced, \
         redriven_in::BIGINT, redriven_rows_loaded::BIGINT, objects_failed::BIGINT \
         FROM weir.reconciliation WHERE delivery = ?",
    )?;
    let mut rows = stmt.query(params![delivery])?;
    let Some(row) = rows.next()? else {
        return Ok(Reconciliation {
            delivery: delivery.to_owned(),
            balanced: true,
            ..Reconciliation::default()
        });
    };
    let n = |i: usize| row.get::<_, i64>(i).map(|v| v as u64);
    Ok(Reconciliation {
        delivery: delivery.to_owned(),
        records_in: n(0)?,
        rows_loaded: n(1)?,
        dropped: n(2)?,
        failed_rows_loaded: n(3)?,
        balanced: row.get(4)?,
        redriven_in: n(5)?,
        redriven_rows_loaded: n(6)?,
        objects_failed: n(7)?,
    })
}

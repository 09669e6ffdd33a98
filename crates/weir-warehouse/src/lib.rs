//! weir-warehouse: the Snowpipe stage of weir's single-machine shape. Every object a delivery stream
//! writes is loaded into a DuckDB table, exactly once, and `weir query` reads it with SQL.
//!
//! # How an object gets in
//! Delivery announces each finished batch in its object log (`weir_delivery::object_log`), the
//! equivalent of S3's event notification to Snowpipe's queue. The loader thread follows each
//! delivery stream's log from its cursor; per batch it reads every object from the sink (a local
//! directory or S3), decompresses it into a staging directory (or links a local uncompressed object
//! there), and in **one transaction** inserts the rows with DuckDB's own readers (`read_json_objects`,
//! `read_csv`, `read_parquet`), records each object in `weir.load_history`, the batch in
//! `weir.batches`, and moves the cursor (when it is behind, one transaction covers up to 32 waiting
//! batches). A crash anywhere before the commit rolls all of it back and the batches are loaded again;
//! after it, the cursor has moved and
//! the batch id and object keys are primary keys, so nothing is loaded twice (Snowpipe's per-file
//! load history, made crash-proof).
//!
//! # Layout
//! - [`table`]: a delivery stream's target table and the SQL that creates and loads it.
//! - `history`: the warehouse's own tables (`weir.load_history`, `weir.batches`, `weir.cursors`) and the
//!   `weir.reconciliation` view.
//! - `load`: a group of batches in one transaction.
//! - `database`: opening DuckDB locked down (no downloads, no files outside staging, settings frozen).
//! - [`query`]: read-only user SQL, rows as JSON values.
//! - `crash`: crash points for the crash test.

mod crash;
mod database;
mod history;
mod load;
pub mod query;
pub mod table;

use duckdb::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weir_core::query::QueryResult;
use weir_delivery::Sink;
use weir_delivery::object_log::{BatchNotice, LogPosition, ObjectLogReader};

pub use crash::ENV as CRASH_ENV;
pub use database::OpenError;
pub use history::Reconciliation;
pub use query::QueryError;
pub use table::{Layout, TableSpec};

/// How the warehouse database is opened.
#[derive(Debug, Clone)]
pub struct WarehouseSettings {
    /// The DuckDB database file.
    pub path: PathBuf,
    /// DuckDB's memory limit, e.g. `512MB`.
    pub memory_limit: String,
    pub threads: u32,
    /// How often the loader looks for new objects when it has nothing to do.
    pub poll_interval: Duration,
}

/// A delivery stream to load: its table, where its objects are, and its object log.
#[derive(Debug, Clone)]
pub struct Source {
    pub table: TableSpec,
    pub sink: Arc<dyn Sink>,
    pub object_log: PathBuf,
}

/// Starting the warehouse failed.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("creating the warehouse tables in {path}: {source}")]
    Schema { path: String, source: duckdb::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// One delivery stream's loading, as of now.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableStatus {
    pub delivery: String,
    pub table: String,
    /// False while loading fails (the object could not be read, DuckDB failed); retried.
    pub healthy: bool,
    pub last_error: Option<String>,
    pub objects_loaded: u64,
    /// Objects that could not be loaded (recorded in `weir.load_history` with the reason).
    pub objects_failed: u64,
    pub rows_loaded: u64,
    /// Objects announced and not loaded yet.
    pub objects_pending: u64,
    /// The oldest of them (at most [`PENDING_LISTED`]).
    pub pending: Vec<String>,
    /// Object written → rows committed, for the last loaded batch.
    pub load_lag_ms: u64,
    pub reconciliation: Reconciliation,
}

/// How many pending object keys a status lists.
pub const PENDING_LISTED: usize = 20;
/// How many notices the loader reads from a log at a time.
const READ_AHEAD: usize = 10_000;

/// At most this many objects per load transaction (see [`group_len`]).
const GROUP_OBJECTS: usize = 32;
/// At most this many object bytes per load transaction (as stored, before decompression).
const GROUP_BYTES: u64 = 64 << 20;

struct Shared {
    status: Mutex<Vec<TableStatus>>,
    stopping: AtomicBool,
    wake: Condvar,
    sleeping: Mutex<()>,
}

/// A running warehouse: the loader thread and a connection for queries.
pub struct Warehouse {
    settings: WarehouseSettings,
    sources: Vec<Source>,
    shared: Arc<Shared>,
    query_conn: Mutex<Connection>,
    /// Separate from queries: a long query must not hold up `/api/status`.
    status_conn: Mutex<Connection>,
    loader: Mutex<Option<JoinHandle<()>>>,
}

/// A query running longer is interrupted.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse").field("path", &self.settings.path).finish()
    }
}

/// The staging directory of the database at `path`.
fn staging_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".staging");
    path.with_file_name(name)
}

impl Warehouse {
    /// Opens (or creates) the database with a table per source, and starts loading.
    pub fn start(settings: WarehouseSettings, sources: Vec<Source>) -> Result<Warehouse, WarehouseError> {
        let io = |what: String| move |source| WarehouseError::Io { what, source };
        if let Some(parent) = settings.path.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        }
        // Leftovers of a crash are copies of objects still in the bucket.
        let staging = staging_dir(&settings.path);
        match std::fs::remove_dir_all(&staging) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("clearing {}", staging.display()))(e)),
        }
        std::fs::create_dir_all(&staging).map_err(io(format!("creating {}", staging.display())))?;
        let staging = staging
            .canonicalize()
            .map_err(io(format!("resolving {}", staging.display())))?;

        let conn = database::open_read_write(&settings.path, &settings, &staging)?;
        let schema_error = |source| WarehouseError::Schema {
            path: settings.path.display().to_string(),
            source,
        };
        conn.execute_batch(history::SCHEMA_SQL).map_err(schema_error)?;
        let mut status = Vec::new();
        for source in &sources {
            conn.execute_batch(&source.table.create_sql()).map_err(schema_error)?;
            let totals = history::totals(&conn, &source.table.delivery).map_err(schema_error)?;
            status.push(TableStatus {
                delivery: source.table.delivery.clone(),
                table: source.table.table.clone(),
                healthy: true,
                objects_loaded: totals.objects_loaded,
                objects_failed: totals.objects_failed,
                rows_loaded: totals.rows_loaded,
                ..TableStatus::default()
            });
        }
        let query_conn = conn.try_clone().map_err(schema_error)?;
        let status_conn = conn.try_clone().map_err(schema_error)?;
        let shared = Arc::new(Shared {
            status: Mutex::new(status),
            stopping: AtomicBool::new(false),
            wake: Condvar::new(),
            sleeping: Mutex::new(()),
        });
        let loader = {
            let (shared, sources, settings) = (shared.clone(), sources.clone(), settings.clone());
            std::thread::Builder::new()
                .name("weir-warehouse".into())
                .spawn(move || run_loader(conn, &sources, &settings, staging, &shared))
                .map_err(io("starting the loader thread".into()))?
        };
        Ok(Warehouse {
            settings,
            sources,
            shared,
            query_conn: Mutex::new(query_conn),
            status_conn: Mutex::new(status_conn),
            loader: Mutex::new(Some(loader)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// Each delivery stream's loading, without the reconciliation (no query: cheap enough to poll).
    pub fn progress(&self) -> Vec<TableStatus> {
        self.shared.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Each delivery stream's loading, with its reconciliation (a query over `weir.batches`).
    pub fn status(&self) -> Vec<TableStatus> {
        let mut status = self.progress();
        let conn = self.status_conn.lock().unwrap_or_else(|e| e.into_inner());
        for s in &mut status {
            match history::reconciliation(&conn, &s.delivery) {
                Ok(r) => s.reconciliation = r,
                Err(e) => s.last_error = Some(format!("reconciling: {e}")),
            }
        }
        status
    }

    /// Runs one read-only statement on the live database (interrupted after [`QUERY_TIMEOUT`]).
    pub fn query(&self, sql: &str, max_rows: usize) -> Result<QueryResult, QueryError> {
        let conn = self.query_conn.lock().unwrap_or_else(|e| e.into_inner());
        let interrupt = conn.interrupt_handle();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(QUERY_TIMEOUT) {
                interrupt.interrupt();
            }
        });
        let result = query::run(&conn, sql, max_rows);
        drop(done);
        let _ = watchdog.join();
        result.map_err(|e| match e {
            QueryError::Sql(message) if message.contains("nterrupt") => QueryError::Sql(format!(
                "the query ran longer than {} s and was interrupted",
                QUERY_TIMEOUT.as_secs()
            )),
            other => other,
        })
    }

    /// The delivery streams loaded here.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Loads what is announced by now, then stops (at the latest after `timeout`; what is left is
    /// loaded at the next start).
    pub fn shutdown(&self, timeout: Duration) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        let Some(loader) = self.loader.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let deadline = Instant::now() + timeout;
        while !loader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if loader.is_finished() {
            let _ = loader.join();
        } else {
            tracing::warn!(
                ?timeout,
                "The warehouse loader did not finish in time; it resumes at the next start."
            );
        }
    }
}

/// Runs one read-only statement against the warehouse file while no `weir up` holds it.
pub fn query_offline(settings: &WarehouseSettings, sql: &str, max_rows: usize) -> Result<QueryResult, OfflineError> {
    let conn = database::open_read_only(&settings.path, settings)?;
    Ok(query::run(&conn, sql, max_rows)?)
}

/// Reconciliation and pending objects from the files alone, while no `weir up` runs: each table
/// with the directory of its delivery stream's object log.
pub fn status_offline(
    settings: &WarehouseSettings,
    tables: &[(TableSpec, PathBuf)],
) -> Result<Vec<TableStatus>, OfflineError> {
    let conn = database::open_read_only(&settings.path, settings)?;
    let mut out = Vec::new();
    for (table, object_log) in tables {
        let delivery = &table.delivery;
        let sql_error = |e: duckdb::Error| QueryError::Sql(e.to_string());
        let totals = history::totals(&conn, delivery).map_err(sql_error)?;
        let cursor = history::cursor(&conn, delivery).map_err(sql_error)?;
        let pending = ObjectLogReader::new(object_log)
            .read(cursor, READ_AHEAD)
            .map_err(|e| OfflineError::Log(e.to_string()))?;
        let keys: Vec<String> = pending
            .iter()
            .flat_map(|(n, _)| n.objects.iter().map(|o| o.key.clone()))
            .collect();
        out.push(TableStatus {
            delivery: delivery.clone(),
            table: table.table.clone(),
            healthy: true,
            last_error: None,
            objects_loaded: totals.objects_loaded,
            objects_failed: totals.objects_failed,
            rows_loaded: totals.rows_loaded,
            objects_pending: keys.len() as u64,
            pending: keys.into_iter().take(PENDING_LISTED).collect(),
            load_lag_ms: 0,
            reconciliation: history::reconciliation(&conn, delivery).map_err(sql_error)?,
        });
    }
    Ok(out)
}

/// An offline query or status failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("reading the object log: {0}")]
    Log(String),
}

fn run_loader(
    mut conn: Connection,
    sources: &[Source],
    settings: &WarehouseSettings,
    staging: PathBuf,
    shared: &Shared,
) {
    let mut backoff = settings.poll_interval;
    loop {
        let stopping = shared.stopping.load(Ordering::SeqCst);
        let mut failed = false;
        for (i, source) in sources.iter().enumerate() {
            if let Err(e) = load_source(&mut conn, source, &staging, shared, i) {
                failed = true;
                tracing::warn!(delivery = %source.table.delivery, error = %e, "Loading failed; retrying.");
                let mut status = shared.status.lock().unwrap_or_else(|e| e.into_inner());
                status[i].healthy = false;
                status[i].last_error = Some(e);
            }
        }
        if stopping {
            // One last pass after the deliveries stopped has loaded everything they announced.
            return;
        }
        backoff = if failed {
            (backoff * 2).min(Duration::from_secs(30))
        } else {
            settings.poll_interval
        };
        let guard = shared.sleeping.lock().unwrap_or_else(|e| e.into_inner());
        let _ = shared
            .wake
            .wait_timeout_while(guard, backoff, |_| !shared.stopping.load(Ordering::SeqCst));
    }
}

/// Loads every notice after the source's cursor.
fn load_source(
    conn: &mut Connection,
    source: &Source,
    staging: &Path,
    shared: &Shared,
    i: usize,
) -> Result<(), String> {
    let delivery = &source.table.delivery;
    let cursor = history::cursor(conn, delivery).map_err(|e| e.to_string())?;
    let reader = ObjectLogReader::new(&source.object_log);
    let notices = reader.read(cursor, READ_AHEAD).map_err(|e| e.to_string())?;
    let set_pending = |from: usize| {
        let keys: Vec<&str> = notices[from..]
            .iter()
            .flat_map(|(n, _)| n.objects.iter().map(|o| o.key.as_str()))
            .collect();
        let mut status = shared.status.lock().unwrap_or_else(|e| e.into_inner());
        status[i].objects_pending = keys.len() as u64;
        status[i].pending = keys.iter().take(PENDING_LISTED).map(|k| k.to_string()).collect();
    };
    set_pending(0);
    let loader = load::Loader {
        table: &source.table,
        sink: source.sink.as_ref(),
        staging: staging.to_path_buf(),
    };
    let mut last_segment = cursor.segment;
    let mut done = 0;
    while done < notices.len() {
        let group = &notices[done..done + group_len(&notices[done..])];
        let loaded = loader.load(conn, group).map_err(|e| e.to_string())?;
        {
            let mut status = shared.status.lock().unwrap_or_else(|e| e.into_inner());
            let s = &mut status[i];
            s.healthy = true;
            s.last_error = None;
            for ((notice, _), loaded) in group.iter().zip(&loaded) {
                s.objects_loaded += loaded.objects_loaded;
                s.objects_failed += loaded.objects_failed;
                s.rows_loaded += loaded.rows;
                if loaded.new {
                    s.load_lag_ms = now_ms().saturating_sub(notice.written_ms).max(0) as u64;
                }
            }
        }
        done += group.len();
        set_pending(done);
        let next = group[group.len() - 1].1;
        if next.segment > last_segment {
            // Consumed segments are no longer needed by anyone.
            reader.remove_before(next.segment).map_err(|e| e.to_string())?;
            last_segment = next.segment;
        }
    }
    Ok(())
}

/// How many of the waiting notices one transaction loads: at least one, then more while they stay
/// within [`GROUP_OBJECTS`] objects and [`GROUP_BYTES`] bytes. Behind, the loader commits once per
/// group instead of once per object (a DuckDB commit costs about as much as loading a 5 MiB object).
fn group_len(waiting: &[(BatchNotice, LogPosition)]) -> usize {
    let (mut objects, mut bytes) = (0, 0);
    let mut n = 0;
    for (notice, _) in waiting {
        objects += notice.objects.len();
        bytes += notice.objects.iter().map(|o| o.bytes).sum::<u64>();
        if n > 0 && (objects > GROUP_OBJECTS || bytes > GROUP_BYTES) {
            break;
        }
        n += 1;
    }
    n
}

fn now_ms() -> i64 {
    load::now_us() / 1000
}

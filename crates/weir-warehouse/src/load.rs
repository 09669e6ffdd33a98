//! Loading batch notices: every object of a group of consecutive notices, their load-history rows,
//! batch rows and the loader's cursor, in one DuckDB transaction (one commit per group rather than
//! per object, when the loader is behind). A crash before the commit loses the transaction and the
//! objects are loaded again from the same notices; after it, the notices are never read again and
//! their batch ids and object keys would reject a second load anyway.

use duckdb::{Connection, params};
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use weir_delivery::Sink;
use weir_delivery::object_log::{BatchNotice, LogPosition, NoticeObject};

use crate::crash;
use crate::history;
use crate::table::TableSpec;

/// What became of a notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// False when the batch was loaded before (a replayed notice).
    pub new: bool,
    pub objects_loaded: u64,
    pub objects_failed: u64,
    pub rows: u64,
}

/// A load that did not happen and is retried later (the notice stays unconsumed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("reading object {key}: {source}")]
    Read { key: String, source: io::Error },
    #[error("staging object {key} in {dir}: {source}")]
    Stage {
        key: String,
        dir: String,
        source: io::Error,
    },
    #[error("warehouse: {0}")]
    DuckDb(#[from] duckdb::Error),
}

/// An object that cannot be loaded however often it is tried: its rows are skipped and the failure
/// is recorded (Snowpipe's `LOAD_FAILED`).
#[derive(Debug, Clone)]
struct Rejected {
    key: String,
    error: String,
}

pub(crate) struct Loader<'a> {
    pub table: &'a TableSpec,
    pub sink: &'a dyn Sink,
    pub staging: PathBuf,
}

impl Loader<'_> {
    /// Loads a group of consecutive notices (each with the log position after it) in one transaction
    /// and moves the cursor past the last; returns what became of each notice.
    pub fn load(&self, conn: &mut Connection, group: &[(BatchNotice, LogPosition)]) -> Result<Vec<Loaded>, LoadError> {
        let mut rejected: BTreeMap<String, String> = BTreeMap::new();
        // An object DuckDB refuses aborts the transaction: start again without it, at most once per object.
        loop {
            match self.attempt(conn, group, &rejected)? {
                Ok(loaded) => return Ok(loaded),
                Err(r) => {
                    tracing::warn!(delivery = %self.table.delivery, key = %r.key, error = %r.error,
                        "Object cannot be loaded; recorded as failed in weir.load_history.");
                    rejected.insert(r.key, r.error);
                }
            }
        }
    }

    fn attempt(
        &self,
        conn: &mut Connection,
        group: &[(BatchNotice, LogPosition)],
        rejected: &BTreeMap<String, String>,
    ) -> Result<Result<Vec<Loaded>, Rejected>, LoadError> {
        let tx = conn.transaction()?;
        let mut all = Vec::with_capacity(group.len());
        for (notice, _) in group {
            match self.load_notice(&tx, notice, rejected)? {
                Ok(loaded) => all.push(loaded),
                Err(r) => return Ok(Err(r)),
            }
        }
        crash::point("inserted");
        if let Some((_, next)) = group.last() {
            history::set_cursor(&tx, &self.table.delivery, *next)?;
        }
        tx.commit()?;
        crash::point("committed");
        Ok(Ok(all))
    }

    /// One notice's objects, load-history rows and batch row, inside the group's transaction.
    fn load_notice(
        &self,
        tx: &duckdb::Transaction<'_>,
        notice: &BatchNotice,
        rejected: &BTreeMap<String, String>,
    ) -> Result<Result<Loaded, Rejected>, LoadError> {
        let delivery = self.table.delivery.clone();
        let mut loaded = Loaded::default();
        // A batch seen before (a delivery replay after a crash), or whose every object is loaded
        // already (announced twice under two ids), adds nothing.
        if history::batch_loaded(tx, &delivery, &notice.batch_id)? {
            return Ok(Ok(loaded));
        }
        let mut loaded_before = Vec::with_capacity(notice.objects.len());
        for object in &notice.objects {
            loaded_before.push(history::object_loaded(tx, &delivery, &object.key)?);
        }
        let seen = !notice.objects.is_empty() && loaded_before.iter().all(|&l| l);
        if !seen {
            loaded.new = true;
            let now_us = now_us();
            // A key listed twice in one notice is loaded once.
            let mut recorded = std::collections::BTreeSet::new();
            for (object, before) in notice.objects.iter().zip(loaded_before) {
                if before || !recorded.insert(object.key.as_str()) {
                    continue;
                }
                let outcome = match rejected.get(&object.key) {
                    Some(error) => Err(error.clone()),
                    None => match self.load_object(tx, object, now_us) {
                        Ok(Ok(rows)) => Ok(rows),
                        Ok(Err(error)) => {
                            return Ok(Err(Rejected {
                                key: object.key.clone(),
                                error,
                            }));
                        }
                        Err(e) => return Err(e),
                    },
                };
                let (status, rows, error) = match outcome {
                    Ok(rows) => ("loaded", rows, None),
                    Err(error) => ("failed", 0, Some(error)),
                };
                tx.prepare_cached(
                    "INSERT INTO weir.load_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, \
                     make_timestamp(?::BIGINT * 1000)::TIMESTAMPTZ, make_timestamp(?::BIGINT)::TIMESTAMPTZ, ?)",
                )?
                .execute(params![
                    delivery,
                    object.key,
                    notice.batch_id,
                    if object.error_output.is_some() {
                        self.table.errors_table()
                    } else {
                        self.table.table.clone()
                    },
                    object.error_output,
                    status,
                    rows as i64,
                    object.records as i64,
                    object.bytes as i64,
                    notice.written_ms,
                    now_us,
                    error,
                ])?;
                if status == "loaded" {
                    loaded.objects_loaded += 1;
                    loaded.rows += rows;
                } else {
                    loaded.objects_failed += 1;
                }
            }
            tx.prepare_cached(
                "INSERT INTO weir.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, \
                 make_timestamp(?::BIGINT * 1000)::TIMESTAMPTZ, make_timestamp(?::BIGINT)::TIMESTAMPTZ)",
            )?
            .execute(params![
                delivery,
                notice.batch_id,
                notice.source.as_str(),
                notice.records_in as i64,
                notice.delivered as i64,
                notice.dropped as i64,
                notice.failed as i64,
                notice.objects.len() as i64,
                notice.written_ms,
                now_us,
            ])?;
        }
        Ok(Ok(loaded))
    }

    /// Reads, decompresses and inserts one object; `Ok(Err(_))` when the object itself is bad.
    fn load_object(
        &self,
        conn: &Connection,
        object: &NoticeObject,
        now_us: i64,
    ) -> Result<Result<u64, String>, LoadError> {
        let staged = match self.stage(object)? {
            Ok(path) => path,
            Err(error) => return Ok(Err(error)),
        };
        crash::point("staged");
        let result = match &object.error_output {
            None => conn.execute(&self.table.insert_sql(&staged.0), params![object.key, now_us]),
            Some(kind) => conn.execute(
                &self.table.insert_errors_sql(&staged.0),
                params![object.key, now_us, kind],
            ),
        };
        Ok(result.map(|rows| rows as u64).map_err(|e| e.to_string()))
    }

    /// Puts the object, decompressed, into the staging directory (DuckDB reads it from there): a hard
    /// link to a local uncompressed object (no copy; the loader, not SQL, chooses the file), else a copy.
    fn stage(&self, object: &NoticeObject) -> Result<Result<Staged, String>, LoadError> {
        // Error output is always uncompressed NDJSON.
        let (compression, extension) = match &object.error_output {
            None => (self.table.compression, self.table.layout.staged_extension()),
            Some(_) => (weir_delivery::encode::Compression::None, "json"),
        };
        let path = self
            .staging
            .join(format!("{}.{extension}", uuid::Uuid::new_v4().simple()));
        let gone = || {
            Ok(Err(format!(
                "object {} is gone from {}",
                object.key,
                self.sink.location()
            )))
        };
        if compression == weir_delivery::encode::Compression::None
            && let Some(local) = self.sink.local_path(&object.key)
        {
            match std::fs::hard_link(&local, &path) {
                Ok(()) => return Ok(Ok(Staged(path))),
                Err(e) if e.kind() == io::ErrorKind::NotFound && !local.exists() => return gone(),
                // Another file system, or links not allowed: copy below.
                Err(_) => {}
            }
        }
        let body = match self.sink.get(&object.key) {
            Ok(body) => body,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return gone(),
            Err(source) => {
                return Err(LoadError::Read {
                    key: object.key.clone(),
                    source,
                });
            }
        };
        let stage_error = |source| LoadError::Stage {
            key: object.key.clone(),
            dir: self.staging.display().to_string(),
            source,
        };
        let mut file = std::fs::File::create(&path).map_err(stage_error)?;
        let staged = Staged(path);
        match io::copy(&mut compression.reader(&body[..]), &mut file) {
            Ok(_) => Ok(Ok(staged)),
            // The object is not what its delivery stream writes: loading it again will not help.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Ok(Err(format!(
                    "decompressing {} ({}): {e}",
                    object.key,
                    compression.as_str()
                )))
            }
            Err(e) => Err(stage_error(e)),
        }
    }
}

/// A staged file, removed when dropped.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

//! Opening the DuckDB database, locked down: no extension downloads, no file access outside the
//! loader's staging directory, and settings frozen so that SQL cannot undo either.

use duckdb::{AccessMode, Config, Connection};
use std::path::Path;

use crate::WarehouseSettings;
use crate::table::literal;

/// Errors opening the database, with the file named.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the warehouse {path} does not exist yet (it is created by `weir up` with a [warehouse])")]
    Missing { path: String },
    #[error("the warehouse {path} is in use by a running `weir up`")]
    Locked { path: String },
    #[error("opening the warehouse {path}: {source}")]
    DuckDb { path: String, source: duckdb::Error },
}

fn base_config(settings: &WarehouseSettings) -> duckdb::Result<Config> {
    Config::default()
        // The parquet and json extensions are compiled in; nothing may be fetched from the network.
        .enable_autoload_extension(false)?
        .max_memory(&settings.memory_limit)?
        .threads(i64::from(settings.threads.max(1)))
}

fn classify(path: &Path, source: duckdb::Error) -> OpenError {
    let path = path.display().to_string();
    let message = source.to_string();
    if message.contains("Could not set lock") || message.contains("Conflicting lock") {
        OpenError::Locked { path }
    } else {
        OpenError::DuckDb { path, source }
    }
}

/// The loader's read-write database. It may read files in `staging` only (where it decompresses
/// objects for DuckDB's readers).
pub(crate) fn open_read_write(
    path: &Path,
    settings: &WarehouseSettings,
    staging: &Path,
) -> Result<Connection, OpenError> {
    let conn = base_config(settings)
        .and_then(|config| Connection::open_with_flags(path, config))
        .map_err(|e| classify(path, e))?;
    let staging = format!("{}/", staging.display());
    conn.execute_batch(&format!(
        "SET allowed_directories = [{}];\nSET enable_external_access = false;\nSET lock_configuration = true;",
        literal(&staging)
    ))
    .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// A read-only database for `weir query` when no `weir up` holds it.
pub(crate) fn open_read_only(path: &Path, settings: &WarehouseSettings) -> Result<Connection, OpenError> {
    if !path.exists() {
        return Err(OpenError::Missing {
            path: path.display().to_string(),
        });
    }
    let conn = base_config(settings)
        .and_then(|c| c.access_mode(AccessMode::ReadOnly))
        .and_then(|c| c.enable_external_access(false))
        .and_then(|config| Connection::open_with_flags(path, config))
        .map_err(|e| classify(path, e))?;
    conn.execute_batch("SET lock_configuration = true;")
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

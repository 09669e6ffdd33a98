//! `weir query`: one read-only statement, its rows as JSON values.
//!
//! Only what DuckDB can serialize as a SELECT runs (SELECT, WITH, FROM-first, VALUES, SHOW, DESCRIBE,
//! SUMMARIZE): DuckDB's `json_serialize_sql` is the judge, so the check is DuckDB's own parser rather
//! than a keyword list. Together with external access disabled at open, user SQL can neither change
//! the warehouse nor read or write files.

use base64::Engine as _;
use duckdb::Connection;
use duckdb::arrow::datatypes::DataType;
use duckdb::types::{TimeUnit, Value};
use serde_json::{Value as Json, json};
use weir_core::query::{QueryColumn, QueryResult};

/// Why a query did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not a single read-only statement.
    #[error("{0}")]
    NotAllowed(String),
    /// DuckDB refused it (syntax, binding, a function that is off limits, …).
    #[error("{0}")]
    Sql(String),
}

impl From<duckdb::Error> for QueryError {
    fn from(e: duckdb::Error) -> QueryError {
        QueryError::Sql(e.to_string())
    }
}

/// Checks that `sql` is one read-only statement.
pub fn check_read_only(conn: &Connection, sql: &str) -> Result<(), QueryError> {
    let serialized: String = conn.query_row("SELECT json_serialize_sql(?::VARCHAR)", [sql], |row| row.get(0))?;
    let parsed: Json = serde_json::from_str(&serialized)
        .map_err(|e| QueryError::Sql(format!("checking the statement: unexpected answer from DuckDB: {e}")))?;
    if parsed["error"] == Json::Bool(true) {
        let message = parsed["error_message"].as_str().unwrap_or("not a query").to_owned();
        return Err(if parsed["error_type"] == "parser" {
            QueryError::Sql(format!("Parser Error: {message}"))
        } else {
            QueryError::NotAllowed(format!(
                "only read-only queries run here (SELECT, WITH, FROM, SHOW, DESCRIBE, SUMMARIZE): {message}"
            ))
        });
    }
    match parsed["statements"].as_array().map(Vec::len) {
        Some(1) => Ok(()),
        Some(0) | None => Err(QueryError::NotAllowed("no statement to run".into())),
        Some(n) => Err(QueryError::NotAllowed(format!("one statement at a time ({n} given)"))),
    }
}

/// Runs `sql` (after [`check_read_only`]) and returns at most `max_rows` rows.
pub fn run(conn: &Connection, sql: &str, max_rows: usize) -> Result<QueryResult, QueryError> {
    check_read_only(conn, sql)?;
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    // Executed: the statement knows its columns, whether or not there are rows.
    let (names, types): (Vec<String>, Vec<DataType>) = match rows.as_ref() {
        Some(stmt) => {
            let names = stmt.column_names();
            let types = (0..names.len()).map(|i| stmt.column_type(i)).collect();
            (names, types)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut out = Vec::new();
    let mut truncated = false;
    while let Some(row) = rows.next()? {
        if out.len() == max_rows {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(types.len());
        for (i, kind) in types.iter().enumerate() {
            values.push(to_json(row.get::<_, Value>(i)?, kind));
        }
        out.push(values);
    }
    let columns = names
        .into_iter()
        .zip(&types)
        .map(|(name, kind)| QueryColumn {
            name,
            kind: type_name(kind),
        })
        .collect();
    Ok(QueryResult {
        columns,
        rows: out,
        truncated,
    })
}

/// DuckDB's name for a result column's type (results arrive as Arrow arrays).
fn type_name(kind: &DataType) -> String {
    match kind {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => format!("{}[]", type_name(f.data_type())),
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", type_name(f.data_type())),
        DataType::Struct(fields) => format!(
            "STRUCT({})",
            fields
                .iter()
                .map(|f| format!("\"{}\" {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(..) => "MAP".into(),
        DataType::Dictionary(_, value) => type_name(value),
        other => other.to_string(),
    }
}

/// Integers a double represents exactly; larger ones become strings.
const MAX_SAFE_INTEGER: i128 = (1 << 53) - 1;

fn int(v: i128) -> Json {
    if v.abs() <= MAX_SAFE_INTEGER {
        json!(v as i64)
    } else {
        Json::String(v.to_string())
    }
}

fn to_json(value: Value, kind: &DataType) -> Json {
    let child = |i: usize| -> DataType {
        match kind {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
            DataType::Struct(fields) => fields.get(i).map_or(DataType::Null, |f| f.data_type().clone()),
            _ => DataType::Null,
        }
    };
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::TinyInt(v) => json!(v),
        Value::SmallInt(v) => json!(v),
        Value::Int(v) => json!(v),
        Value::BigInt(v) => int(i128::from(v)),
        Value::HugeInt(v) => int(v),
        Value::UTinyInt(v) => json!(v),
        Value::USmallInt(v) => json!(v),
        Value::UInt(v) => json!(v),
        Value::UBigInt(v) => int(i128::from(v)),
        Value::UHugeInt(v) => i128::try_from(v).map_or_else(|_| Json::String(v.to_string()), int),
        Value::Float(v) => float(f64::from(v)),
        Value::Double(v) => float(v),
        Value::Decimal(d) => Json::String(d.to_string()),
        Value::Timestamp(unit, v) => {
            let utc = matches!(kind, DataType::Timestamp(_, Some(_)));
            Json::String(timestamp(unit, v, utc))
        }
        Value::Text(s) | Value::Enum(s) => Json::String(s),
        Value::Blob(b) | Value::Geometry(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Date32(days) => Json::String(
            chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string()),
        ),
        Value::Time64(unit, v) => {
            let micros = micros(unit, v);
            let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
            Json::String(format!(
                "{:02}:{:02}:{:02}.{frac:06}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ))
        }
        Value::Interval { months, days, nanos } => Json::String(format!("{months} months {days} days {nanos} ns")),
        Value::List(items) | Value::Array(items) => {
            let kind = child(0);
            Json::Array(items.into_iter().map(|v| to_json(v, &kind)).collect())
        }
        Value::Struct(fields) => Json::Object(
            fields
                .iter()
                .enumerate()
                .map(|(i, (k, v))| (k.clone(), to_json(v.clone(), &child(i))))
                .collect(),
        ),
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| {
                    Json::Array(vec![
                        to_json(k.clone(), &DataType::Null),
                        to_json(v.clone(), &DataType::Null),
                    ])
                })
                .collect(),
        ),
        Value::Union(inner) => to_json(*inner, &DataType::Null),
        // A type added to DuckDB after this was written: its debug text beats dropping it.
        other => Json::String(format!("{other:?}")),
    }
}

fn float(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or_else(|| Json::String(v.to_string()), Json::Number)
}

fn micros(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v.div_euclid(1_000),
    }
}

/// RFC 3339 with microseconds (nanoseconds for nanosecond columns); `Z` for time-zone-aware columns.
fn timestamp(unit: TimeUnit, v: i64, utc: bool) -> String {
    let (secs, nanos) = match unit {
        TimeUnit::Nanosecond => (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000) as u32),
        _ => {
            let us = micros(unit, v);
            (us.div_euclid(1_000_000), (us.rem_euclid(1_000_000) * 1_000) as u32)
        }
    };
    let Some(t) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return v.to_string();
    };
    let fraction = if matches!(unit, TimeUnit::Nanosecond) {
        "%.9f"
    } else {
        "%.6f"
    };
    let mut out = t.format(&format!("%Y-%m-%dT%H:%M:%S{fraction}")).to_string();
    if utc {
        out.push('Z');
    }
    out
}

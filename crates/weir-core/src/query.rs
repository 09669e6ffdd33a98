//! The result of a warehouse query (`weir query`, `POST /api/query`): column names and DuckDB types,
//! and rows of JSON values. One shape for the CLI's local path and the server's, so both print alike.

use serde::{Deserialize, Serialize};

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub columns: Vec<QueryColumn>,
    /// One array per row, a JSON value per column: numbers, strings, booleans, `null`; timestamps as
    /// RFC 3339 strings; blobs as base64; lists and structs as arrays and objects. 64-bit integers
    /// beyond ±2^53 and decimals are strings, so no reader loses digits.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// True when the result had more rows than were asked for (the rest were not read).
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryColumn {
    pub name: String,
    /// DuckDB's type name, e.g. `BIGINT`, `VARCHAR`, `TIMESTAMP WITH TIME ZONE`.
    #[serde(rename = "type")]
    pub kind: String,
}

//! A delivery stream's target table: its columns, and the SQL that creates it and loads one staged
//! object into it.
//!
//! | delivery format | table |
//! |---|---|
//! | `ndjson` | `record JSON` plus `_object`, `_row`, `_loaded_at` (Snowflake's VARIANT plus `METADATA$…`) |
//! | `csv`, `parquet` | the declared columns (`string` `integer` `float` `boolean` `timestamp` `json` → `VARCHAR` `BIGINT` `DOUBLE` `BOOLEAN` `TIMESTAMPTZ` `JSON`), then the same three |
//!
//! Error-output objects go to `<table>_errors`: one row per processing-failed document, with the
//! original record decoded from base64 in `raw_data`.

use std::path::Path;
use weir_core::transform::csv::{ColumnType, CsvColumn};
use weir_delivery::encode::{Compression, Format};

/// How a delivery stream's objects are laid out, as far as loading them is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One JSON document per line.
    Json,
    /// The csv transform's dialect with its declared columns; `header` when the object starts with
    /// a header line.
    Csv { columns: Vec<CsvColumn>, header: bool },
    /// Parquet with the declared columns.
    Parquet { columns: Vec<CsvColumn> },
}

impl Layout {
    /// The layout of objects written in `format` by the `transform`'s columns (CSV takes its columns
    /// from the csv transform).
    pub fn of(format: &Format, csv_columns: Option<&[CsvColumn]>) -> Result<Layout, String> {
        Ok(match format {
            Format::Ndjson => Layout::Json,
            Format::Csv { header } => Layout::Csv {
                columns: csv_columns
                    .ok_or("a csv delivery stream needs the csv transform's columns")?
                    .to_vec(),
                header: header.is_some(),
            },
            Format::Parquet { columns, .. } => Layout::Parquet {
                columns: columns.clone(),
            },
        })
    }

    fn columns(&self) -> &[CsvColumn] {
        match self {
            Layout::Json => &[],
            Layout::Csv { columns, .. } | Layout::Parquet { columns } => columns,
        }
    }

    /// The extension of a staged (decompressed) object, which DuckDB's readers go by.
    pub(crate) fn staged_extension(&self) -> &'static str {
        match self {
            Layout::Json => "json",
            Layout::Csv { .. } => "csv",
            Layout::Parquet { .. } => "parquet",
        }
    }
}

/// The warehouse's view of one delivery stream.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The delivery stream's name.
    pub delivery: String,
    /// The target table; error-output rows go to `<table>_errors`.
    pub table: String,
    pub layout: Layout,
    /// The compression around text objects.
    pub compression: Compression,
}

/// The DuckDB type of a declared column.
pub fn duckdb_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::String => "VARCHAR",
        ColumnType::Integer => "BIGINT",
        ColumnType::Float => "DOUBLE",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Timestamp => "TIMESTAMPTZ",
        ColumnType::Json => "JSON",
    }
}

/// `name` as a quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Where each row came from and when it was loaded; every table ends with these.
const METADATA_COLUMNS: &str =
    "\"_object\" VARCHAR NOT NULL,\n  \"_row\" BIGINT NOT NULL,\n  \"_loaded_at\" TIMESTAMPTZ NOT NULL";

/// The checks a table name must pass: a plain identifier, so that it reads the same in SQL,
/// in weir.toml and in Snowflake.
pub fn validate_table_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > 63 {
        return Err(format!(
            "{name:?} is not a table name: use letters, digits and _, starting with a letter or _ (at most 63)"
        ));
    }
    if name.eq_ignore_ascii_case("weir") {
        return Err("\"weir\" is the warehouse's own schema".into());
    }
    Ok(())
}

impl TableSpec {
    pub fn errors_table(&self) -> String {
        format!("{}_errors", self.table)
    }

    /// `CREATE TABLE IF NOT EXISTS` for the target table and its errors table.
    pub fn create_sql(&self) -> String {
        let mut columns = String::new();
        match &self.layout {
            Layout::Json => columns.push_str("  \"record\" JSON NOT NULL,\n"),
            Layout::Csv { columns: cols, .. } | Layout::Parquet { columns: cols } => {
                for c in cols {
                    let not_null = if c.required { " NOT NULL" } else { "" };
                    columns.push_str(&format!("  {} {}{not_null},\n", ident(&c.name), duckdb_type(c.kind)));
                }
            }
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n{columns}  {METADATA_COLUMNS}\n);\n\
             CREATE TABLE IF NOT EXISTS {errors} (\n  \"error_output_type\" VARCHAR NOT NULL,\n  \
             \"error_code\" VARCHAR,\n  \"error_message\" VARCHAR,\n  \"arrived_at\" TIMESTAMPTZ,\n  \
             \"attempts\" INTEGER,\n  \"attempt_ended_at\" TIMESTAMPTZ,\n  \"raw_data\" BLOB,\n  \
             \"lambda_arn\" VARCHAR,\n  {METADATA_COLUMNS}\n);\n",
            table = ident(&self.table),
            errors = ident(&self.errors_table()),
        )
    }

    /// Loads the staged data object at `path`; parameters: `$1` object key, `$2` load time (µs).
    pub(crate) fn insert_sql(&self, path: &Path) -> String {
        let path = literal(&path.to_string_lossy());
        let table = ident(&self.table);
        let loaded = "make_timestamp($2::BIGINT)::TIMESTAMPTZ";
        match &self.layout {
            Layout::Json => format!(
                "INSERT INTO {table} SELECT json, $1, row_number() OVER (), {loaded} \
                 FROM read_json_objects({path}, format = 'newline_delimited')"
            ),
            Layout::Csv { columns, header } => {
                let types = columns
                    .iter()
                    .map(|c| format!("{}: {}", literal(&c.name), literal(duckdb_type(c.kind))))
                    .collect::<Vec<_>>()
                    .join(", ");
                // The csv transform's dialect: RFC 4180 quoting with "" inside quotes, an empty bare
                // field is NULL and "" the empty string, quoted fields may hold newlines.
                format!(
                    "INSERT INTO {table} SELECT {select}, $1, row_number() OVER (), {loaded} \
                     FROM read_csv({path}, columns = {{{types}}}, header = {header}, auto_detect = false, \
                     delim = ',', quote = '\"', escape = '\"', new_line = '\\n', nullstr = '', \
                     allow_quoted_nulls = false, strict_mode = true, parallel = false)",
                    select = self.select_list(),
                )
            }
            Layout::Parquet { .. } => format!(
                "INSERT INTO {table} SELECT {select}, $1, file_row_number + 1, {loaded} \
                 FROM read_parquet({path}, file_row_number = true)",
                select = self.select_list(),
            ),
        }
    }

    /// The declared columns, each cast to its table type (Parquet's nanosecond timestamps and JSON
    /// strings are other types on the way in).
    fn select_list(&self) -> String {
        self.layout
            .columns()
            .iter()
            .map(|c| format!("CAST({} AS {})", ident(&c.name), duckdb_type(c.kind)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Loads the staged error-output object at `path`; parameters: `$1` object key, `$2` load time
    /// (µs), `$3` the error output type.
    pub(crate) fn insert_errors_sql(&self, path: &Path) -> String {
        format!(
            "INSERT INTO {errors} SELECT $3, errorCode, errorMessage, \
             make_timestamp(arrivalTimestamp * 1000)::TIMESTAMPTZ, attemptsMade, \
             make_timestamp(attemptEndingTimestamp * 1000)::TIMESTAMPTZ, from_base64(rawData), lambdaArn, \
             $1, row_number() OVER (), make_timestamp($2::BIGINT)::TIMESTAMPTZ \
             FROM read_json({path}, format = 'newline_delimited', columns = {{attemptsMade: 'INTEGER', \
             arrivalTimestamp: 'BIGINT', errorCode: 'VARCHAR', errorMessage: 'VARCHAR', \
             attemptEndingTimestamp: 'BIGINT', rawData: 'VARCHAR', lambdaArn: 'VARCHAR'}})",
            errors = ident(&self.errors_table()),
            path = literal(&path.to_string_lossy()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        for ok in ["events", "_x", "Events_2024"] {
            assert!(validate_table_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1events", "events-2", "a b", "weir", "x\"y", &"a".repeat(64)] {
            assert!(validate_table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}

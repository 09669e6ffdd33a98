//! `weir query`: one read-only SQL statement on the warehouse. It opens the DuckDB file read-only;
//! while a `weir up` holds the file, it asks that server instead (`POST /api/query`), so a running
//! pipeline never stops for a query.

use anyhow::{Context, bail};
use clap::Args;
use weir_core::query::QueryResult;
use weir_warehouse::{OfflineError, OpenError};

use crate::api_client::{self, Api, PipelineArgs};
use crate::render::{OutputFormat, render};

/// Run one read-only SQL statement (SELECT, WITH, FROM, SHOW, DESCRIBE, SUMMARIZE) on the warehouse
/// and print the rows. Tables: one per delivery stream (named like it), `<table>_errors`, and
/// `weir.load_history`, `weir.batches`, `weir.reconciliation`. Files outside the warehouse cannot be
/// read.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The statement, e.g. "select count(*) from events".
    sql: String,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Print at most this many rows.
    #[arg(long, default_value_t = 10_000)]
    max_rows: usize,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    if args.max_rows == 0 {
        bail!("--max-rows must be at least 1");
    }
    let config = args.pipeline.read_config()?;
    let settings = config.warehouse_settings();
    let result = match weir_warehouse::query_offline(&settings, &args.sql, args.max_rows) {
        Ok(result) => result,
        Err(OfflineError::Open(OpenError::Locked { .. })) => {
            let api = args.pipeline.api(&config)?;
            query_server(&api, &args.sql, args.max_rows)?
        }
        Err(e) => return Err(e.into()),
    };
    print!("{}", render(&result, args.format));
    Ok(())
}

fn query_server(api: &Api, sql: &str, max_rows: usize) -> anyhow::Result<QueryResult> {
    let body = serde_json::json!({ "sql": sql, "max_rows": max_rows }).to_string();
    let (status, body) = api
        .call("POST", weir_gateway::api::QUERY_PATH, Some(body.as_bytes()))
        .context("the warehouse is in use by a running weir up, and asking it failed")?;
    if status != 200 {
        bail!("{}", api_client::error_message(&body));
    }
    serde_json::from_slice(&body).context("reading the query result")
}

//! The `weir` command line. Wiring only: the behaviour lives in the library crates.

mod api_client;
mod aws_cmd;
mod config;
mod query_cmd;
mod redrive_cmd;
mod render;
mod send;
mod snowflake_cmd;
mod status;
mod status_cmd;
mod stream_cmd;
mod up;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: under load the request path allocates per record, and glibc
/// spent about 10 % of the CPU in malloc/free (and returned memory to the OS only to fault it back).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// weir: the Kinesis → Firehose → S3 → Snowflake pipeline, on one machine or on AWS.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline: HTTP ingest → stream → delivery → bucket.
    Up(up::UpArgs),
    /// Work with an embedded stream directly: append, read, inspect.
    Stream(stream_cmd::StreamArgs),
    /// Send records to the ingest API from a file, stdin or a template; report throughput and errors.
    Send(send::SendArgs),
    /// Run one read-only SQL statement on the warehouse (DuckDB) and print the rows.
    Query(query_cmd::QueryArgs),
    /// Show each delivery stream's reconciliation and the objects waiting to load into the warehouse.
    Status(status_cmd::StatusArgs),
    /// Send a delivery stream's processing-failed records through its transform again.
    Redrive(redrive_cmd::RedriveArgs),
    /// Print the Snowflake SQL (integration, file format, stage, table, Snowpipe) that loads a delivery stream.
    Snowflake(snowflake_cmd::SnowflakeArgs),
    /// The pipeline on AWS: the deploy/aws template's parameters from weir.toml.
    Aws(aws_cmd::AwsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Up(args) => up::run(args),
        Command::Stream(args) => stream_cmd::run(args),
        Command::Send(args) => send::run(args),
        Command::Query(args) => query_cmd::run(args),
        Command::Status(args) => status_cmd::run(args),
        Command::Redrive(args) => redrive_cmd::run(args),
        Command::Snowflake(args) => snowflake_cmd::run(args),
        Command::Aws(args) => aws_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

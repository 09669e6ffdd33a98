//! `weir send`'s flags.

use super::body::BatchFormat;
use super::source::InputFormat;
use clap::{ArgGroup, Args};
use std::path::PathBuf;
use std::time::Duration;

/// Examples, generators and the retry rules, printed after the flags by `weir send --help`.
const AFTER_HELP: &str = "\
Examples:
  weir send events.ndjson
  cat events.json | weir send - --batch-size 100
  weir send --template '{\"id\":\"{{uuid}}\",\"n\":{{int 0 100}},\"ts\":\"{{now}}\"}' --count 100000 --batch-size 500
  weir send --template '{\"kind\":\"{{choice a b c}}\"}' --duration 30s --rate 2000 --connections 8

Template placeholders (replaced by raw text: put quotes around strings yourself):
  {{uuid}}             a random UUID v4
  {{int A B}}          a random integer from A to B, both included
  {{float A B}}        a random number from A to B
  {{seq}}              0, 1, 2, … (unique within the run, across connections)
  {{now}}              the current time, RFC 3339 UTC with milliseconds
  {{now_ms}}           the current time in milliseconds since the Unix epoch
  {{choice W1 W2 …}}   one of the words (separated by spaces)
  {{string N}}         N random letters and digits
  {{bool}}             true or false

A record is acknowledged when its request got 200 with failed_record_count 0 and one entry in records
per record sent (--ack status: any 2xx). 429 and 503 are retried after Retry-After (plus up to 250 ms
of jitter), connection errors and timeouts with exponential backoff, up to --max-retries; other errors
are final and reported. A request retried after a broken connection may have been stored the first
time: its records may then be stored twice.

Exit status: 0 when every record sent was acknowledged, 1 otherwise.";

/// Send records to a weir ingest API (or any endpoint of its shape) and report throughput, latency and
/// errors: from a file, stdin or a template of synthetic events.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("bound").args(["count", "duration"]).multiple(true)))]
#[command(after_help = AFTER_HELP)]
pub struct SendArgs {
    /// Records to send: a JSON file (one record, or an array of records), an NDJSON file (one record
    /// per line), or `-` for stdin (read to the end before sending).
    #[arg(
        value_name = "FILE",
        required_unless_present = "template",
        conflicts_with = "template"
    )]
    pub input: Option<PathBuf>,
    /// How to read FILE [default: from the extension (.json; .ndjson, .jsonl), else from the content].
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// Generate records from this JSON template with {{…}} placeholders (see above). Checked once at
    /// start: it must render to a JSON object. Needs --count or --duration.
    #[arg(long, short = 't', requires = "bound")]
    pub template: Option<String>,
    /// Records to generate from --template.
    #[arg(long, short = 'n', requires = "template")]
    pub count: Option<u64>,
    /// Stop sending new requests after this long (e.g. 30s, 2m); in-flight requests finish.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Send FILE this many times; 0 repeats it until --duration ends.
    #[arg(long, default_value_t = 1, conflicts_with = "template")]
    pub repeat: u64,

    /// The ingest API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Stream to send to: POST {url}/v1/streams/{stream}/records.
    #[arg(long, short = 's', default_value = "events")]
    pub stream: String,
    /// Bearer token (sent as `Authorization: Bearer …`).
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Records per request: 1 sends the record itself as `application/json`; more send a batch.
    #[arg(long, short = 'b', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub batch_size: u32,
    /// How a batch (--batch-size above 1) is written.
    #[arg(long, value_enum, default_value_t = BatchFormat::Ndjson)]
    pub batch_format: BatchFormat,
    /// Compress request bodies (`Content-Encoding: gzip`).
    #[arg(long)]
    pub gzip: bool,

    /// Concurrent keep-alive HTTP/1.1 connections, one request in flight on each.
    #[arg(long, short = 'c', default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Target records per second, paced evenly across connections [default: as fast as possible].
    #[arg(long, short = 'r', value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Retries of one request after 429, 503 or a connection error.
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,
    /// Time limit for one attempt: connecting, sending and reading the response.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// What counts as an acknowledgement.
    #[arg(long, value_enum, default_value_t = AckMode::Records)]
    pub ack: AckMode,
    /// Worker threads [default: one per CPU].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// The final summary's format (on stdout).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// No live progress on stderr (it is only shown when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AckMode {
    /// 200 with `failed_record_count` 0 and one entry in `records` per record sent (weir's reply).
    Records,
    /// Any 2xx: for endpoints that are not weir, such as the benchmarks' trivial handler.
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    /// One JSON object.
    Json,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{s:?} is not a positive number of records per second")),
    }
}

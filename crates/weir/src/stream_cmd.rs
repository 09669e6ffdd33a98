//! `weir stream …`: append to, read from and inspect an embedded stream on disk.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use weir_stream::{PutRecord, ReadLimits, ShardId, ShardIteratorType, Stream, StreamConfig};

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Where streams live (`<data-dir>/<stream>/…`).
    #[arg(long, default_value = "./weir-data/streams", global = true)]
    data_dir: PathBuf,
    /// The stream's name.
    #[arg(long, default_value = "events", global = true)]
    stream: String,
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Debug, Subcommand)]
enum StreamCommand {
    /// Append records: each argument is one record, or each non-empty stdin line with no arguments.
    /// Prints each record's shard and sequence number once it is durable.
    Put {
        /// Partition key of every record (default: the record's own data, so equal records share a shard).
        #[arg(long)]
        partition_key: Option<String>,
        /// Shards of a new stream (an existing stream keeps its own).
        #[arg(long, default_value_t = 4)]
        shards: u32,
        records: Vec<String>,
    },
    /// Print records of one shard as JSON lines.
    Get {
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// trim-horizon, latest, at:<sequence-number>, after:<sequence-number> or at-timestamp:<epoch-ms>.
        #[arg(long, default_value = "trim-horizon")]
        from: String,
        /// Most records to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Print the stream's counters, size and per-shard positions as JSON.
    Stats,
}

fn open(args: &StreamArgs, new_shards: u32) -> anyhow::Result<Stream> {
    let shard_count = weir_stream::stored_shard_count(&args.data_dir, &args.stream)?.unwrap_or(new_shards);
    let config = StreamConfig {
        shard_count,
        ..StreamConfig::default()
    };
    Stream::open(&args.data_dir, &args.stream, config)
        .with_context(|| format!("opening stream {:?} in {}", args.stream, args.data_dir.display()))
}

fn parse_from(from: &str, shard: ShardId) -> anyhow::Result<ShardIteratorType> {
    Ok(match from.split_once(':') {
        None if from == "trim-horizon" => ShardIteratorType::TrimHorizon,
        None if from == "latest" => ShardIteratorType::Latest,
        Some(("at", seq)) => ShardIteratorType::AtSequenceNumber(seq.parse()?),
        Some(("after", seq)) => ShardIteratorType::AfterSequenceNumber(seq.parse()?),
        Some(("at-timestamp", ms)) => ShardIteratorType::AtTimestamp(ms.parse().context("epoch milliseconds")?),
        _ => bail!("--from {from:?}: use trim-horizon, latest, at:SEQ, after:SEQ or at-timestamp:MS (shard {shard})"),
    })
}

pub fn run(args: StreamArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match &args.command {
        StreamCommand::Put {
            partition_key,
            shards,
            records,
        } => {
            let lines: Vec<String> = if records.is_empty() {
                std::io::stdin().lock().lines().collect::<Result<_, _>>()?
            } else {
                records.clone()
            };
            let records: Vec<PutRecord> = lines
                .into_iter()
                .filter(|line| !line.is_empty())
                .map(|data| PutRecord::new(partition_key.clone().unwrap_or_else(|| data.clone()), data))
                .collect();
            let stream = open(&args, *shards)?;
            for chunk in records.chunks(weir_core::kinesis::PUT_RECORDS_MAX_RECORDS) {
                for result in stream.append_blocking(chunk.to_vec())? {
                    let line = serde_json::json!({
                        "shard_id": result.shard_id.to_string(),
                        "sequence_number": result.sequence_number.to_string(),
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        StreamCommand::Get { shard, from, limit } => {
            let stream = open(&args, 4)?;
            let shard = ShardId(*shard);
            let mut it = stream.iterator(shard, parse_from(from, shard)?)?;
            let mut left = *limit;
            while left > 0 {
                let limits = ReadLimits {
                    max_records: left,
                    ..ReadLimits::default()
                };
                let batch = stream.read(&it, limits)?;
                if batch.skipped_records > 0 {
                    eprintln!(
                        "note: {} records were removed by retention before this read",
                        batch.skipped_records
                    );
                }
                if batch.records.is_empty() {
                    break;
                }
                left -= batch.records.len();
                for r in &batch.records {
                    let line = serde_json::json!({
                        "sequence_number": r.sequence_number.to_string(),
                        "partition_key": r.partition_key,
                        "approximate_arrival_timestamp": r.approximate_arrival_timestamp_ms,
                        "data": String::from_utf8_lossy(&r.data),
                    });
                    writeln!(out, "{line}")?;
                }
                it = batch.next_iterator;
            }
        }
        StreamCommand::Stats => {
            let stream = open(&args, 4)?;
            let s = stream.stats();
            let shards: Vec<_> = s
                .shards
                .iter()
                .map(|sh| {
                    serde_json::json!({
                        "shard_id": sh.shard_id.to_string(),
                        "trim_offset": sh.trim_offset,
                        "next_offset": sh.next_offset,
                        "last_arrival_ms": sh.last_arrival_ms,
                    })
                })
                .collect();
            let stats = serde_json::json!({
                "stream": stream.name(),
                "segments": s.segments,
                "disk_bytes": s.disk_bytes,
                "truncated_bytes_at_open": s.truncated_bytes_at_open,
                "shards": shards,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
        }
    }
    Ok(())
}

//! `weir redrive <delivery>`: the processing-failed records of a delivery stream's error output,
//! through its current transform again (see `weir_delivery::redrive`).

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

/// Send a delivery stream's processing-failed records through its current transform again: records
/// that now succeed are delivered, the others go to a new error object; each error object is
/// redriven once (a ledger in the delivery's state directory remembers), and a report says what
/// became of every record. Safe to run while `weir up` runs.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The delivery stream, as named in the config.
    delivery: String,
    /// The pipeline definition (weir.toml) `weir up` runs with.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where data lives [default: ./weir-data, or data_dir from the config].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Plan and report, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// `text` (a summary and one line per record) or `json` (the whole report).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

pub fn run(args: RedriveArgs) -> anyhow::Result<()> {
    let config = crate::up::read_config(args.config.as_deref(), args.data_dir.as_deref())?;
    config.validate()?;
    let section = config
        .deliveries
        .iter()
        .find(|d| d.name == args.delivery)
        .with_context(|| {
            let names: Vec<&str> = config.deliveries.iter().map(|d| d.name.as_str()).collect();
            format!(
                "no delivery stream {:?} in the config (it has {names:?})",
                args.delivery
            )
        })?;
    let delivery_config = section.delivery_config().map_err(|e| anyhow::anyhow!("{e}"))?;
    // The S3 sink runs its requests on a runtime; a local directory does not need one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let _guard = runtime.enter();
    let sink = crate::up::open_sink(section, &config.data_dir)?;
    let state = config.data_dir.join("delivery").join(&section.name);
    let report = std::thread::scope(|scope| {
        // Off the runtime's thread: the S3 sink blocks on the runtime.
        scope
            .spawn(|| {
                weir_delivery::redrive::redrive(&delivery_config, &section.stream, sink.as_ref(), &state, args.dry_run)
            })
            .join()
            .expect("the redrive thread does not panic")
    })?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for r in &report.records {
                let to = r.key.as_deref().unwrap_or("-");
                let why = r.error_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
                println!("{}:{} {} {to}{why}", r.source_key, r.line, r.outcome);
            }
            println!(
                "{}redrove {} error object(s), {} record(s): {} delivered, {} dropped, {} failed again; {} object(s) redriven earlier were skipped",
                if report.dry_run { "dry run: would have " } else { "" },
                report.objects.len(),
                report.records.len(),
                report.count("delivered"),
                report.count("dropped"),
                report.count("failed"),
                report.already_redriven
            );
        }
    }
    Ok(())
}

//! `weir send`: a load generator and replay tool for the ingest API (what Postman, oha or kcat would be
//! used for), with acknowledgements checked per record.
//!
//! # Layout
//! - `args`: the flags;
//! - `source`: records from a file or stdin (JSON, JSON array, NDJSON);
//! - `template`: synthetic records from a template with generators;
//! - `body`: framing records into request bodies, gzip;
//! - `work`: what to send next, claimed by connections from shared counters;
//! - `pacer`: `--rate`;
//! - `http1`: the raw HTTP/1.1 client connection;
//! - `client`: a connection's loop, retries and the verdict on each response;
//! - `stats`, `progress`, `report`: counting, live progress, the final summary.

mod args;
mod body;
mod client;
mod http1;
mod pacer;
mod progress;
mod report;
mod source;
mod stats;
mod template;
mod work;

pub use args::SendArgs;

use anyhow::{Context, bail};
use args::OutputFormat;
use body::Framing;
use client::{Sender, Target};
use report::Summary;
use stats::{LocalStats, Stats};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use template::Template;
use work::{Batch, Stop, Work};

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let framing = Framing::new(args.batch_size, args.batch_format);
    let work = prepare_work(&args, framing)?;
    let target = Target::new(
        &args.url,
        &args.stream,
        framing.content_type(),
        args.gzip,
        args.token.as_deref(),
    )?;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    // The main thread only watches (progress, Ctrl-C); connections run on `threads` threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let summary = runtime.block_on(send(&args, work, target, threads, progress))?;
    let out = match args.output {
        OutputFormat::Text => summary.to_text(),
        OutputFormat::Json => summary.to_json() + "\n",
    };
    print!("{out}");
    if !summary.all_acknowledged() {
        bail!(
            "{} of {} records sent were not acknowledged{}",
            summary.records_sent - summary.records_acknowledged,
            summary.records_sent,
            summary
                .stopped_early
                .as_ref()
                .map(|why| format!(" ({why})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn prepare_work(args: &SendArgs, framing: Framing) -> anyhow::Result<Work> {
    if let Some(text) = &args.template {
        let template = Template::parse(text).context("--template")?;
        return Ok(Work::Template {
            template,
            framing,
            gzip: args.gzip,
            batch_size: args.batch_size,
            count: args.count,
            next_record: AtomicU64::new(0),
        });
    }
    let input = args.input.as_ref().context("FILE or --template is required")?;
    if args.repeat == 0 && args.duration.is_none() {
        bail!("--repeat 0 (repeat until stopped) needs --duration");
    }
    let records = source::read_records(input, args.format)?;
    let batches: Vec<Batch> = records
        .chunks(args.batch_size as usize)
        .map(|chunk| Batch::encode(chunk, framing, args.gzip))
        .collect();
    let total = (args.repeat > 0).then(|| args.repeat.saturating_mul(batches.len() as u64));
    Ok(Work::Batches {
        batches,
        total,
        next_batch: AtomicU64::new(0),
    })
}

async fn send(args: &SendArgs, work: Work, target: Target, threads: usize, progress: bool) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let total = work.total_records();
    let sender = Arc::new(Sender {
        work,
        stop: Stop::new(args.duration.map(|d| start + d)),
        pacer: args.rate.map(|rate| pacer::Pacer::new(start, rate)),
        target,
        max_retries: args.max_retries,
        timeout: args.timeout,
        ack: args.ack,
        stats: Mutex::new(Stats::new()),
        gave_up: Mutex::new(None),
    });
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_ctrl_c = tokio::spawn({
        let sender = sender.clone();
        let interrupted = interrupted.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
                sender.stop.interrupt();
                // A second Ctrl-C does not wait for in-flight requests.
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        }
    });
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let progress = progress.then(|| tokio::spawn(progress::show(sender.clone(), total, done_rx)));
    let workers = (0..threads.min(args.connections as usize))
        .map(|thread| {
            // Connections thread, thread + threads, …: an even split.
            let connections = (thread..args.connections as usize).step_by(threads).count();
            let sender = sender.clone();
            std::thread::Builder::new()
                .name(format!("weir-send-{thread}"))
                .spawn(move || run_thread(sender, connections))
        })
        .collect::<Result<Vec<_>, _>>()
        .context("starting sender threads")?;
    for worker in workers {
        match tokio::task::spawn_blocking(move || worker.join()).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("weir send: a sender thread failed: {e:#}"),
            Ok(Err(_)) | Err(_) => eprintln!("weir send: a sender thread panicked"),
        }
    }
    let elapsed = start.elapsed();
    on_ctrl_c.abort();
    let _ = done_tx.send(true);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    let gave_up = sender.gave_up.lock().expect("gave_up lock").clone();
    let stopped_early = gave_up.or_else(|| {
        interrupted
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| report::INTERRUPTED.to_owned())
    });
    let stats = sender.stats.lock().expect("stats lock");
    Ok(Summary::new(sender.target.url.clone(), &stats, elapsed, stopped_early))
}

/// One sender thread: its own single-threaded runtime (its own epoll, no work stealing or cross-thread
/// wake-ups, as wrk's threads) running `connections` connections that share one [`LocalStats`].
fn run_thread(sender: Arc<Sender>, connections: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a sender thread's runtime")?;
    let stats = Rc::new(RefCell::new(LocalStats::new()));
    tokio::task::LocalSet::new().block_on(&runtime, async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::task::spawn_local(client::run_connection(sender.clone(), stats.clone())))
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                eprintln!("weir send: a connection task failed: {e}");
            }
        }
    });
    stats.borrow_mut().flush(&sender.stats);
    Ok(())
}

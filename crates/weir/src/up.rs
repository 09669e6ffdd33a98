//! `weir up`: the whole pipeline in the foreground — HTTP ingest → stream → delivery → bucket.

use anyhow::{Context, bail};
use clap::Args;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::{info, warn};
use weir_core::ingest::PartitionKeySpec;
use weir_delivery::{Delivery, LocalDirSink, S3Sink, Sink};
use weir_gateway::{AppState, ServerLimits, StreamRoute};
use weir_stream::Stream;

use crate::config::Config;
use crate::status::PipelineView;

/// Run the pipeline in the foreground: POST records to the HTTP API; they are durable in the stream
/// when the API answers, and delivery writes them to objects in the bucket, exactly once.
/// SIGTERM or Ctrl-C stops accepting, delivers everything buffered and exits.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The pipeline definition (weir.toml; see weir.example.toml). Without it, the default pipeline:
    /// stream `events` (4 shards, random partition keys) delivered by `events` (newline transform,
    /// 1 MiB or 10 s buffers) to `<data-dir>/bucket/`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where data lives [default: ./weir-data, or data_dir from the config].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080, or listen from the config]. Port 0 picks a
    /// free port (the banner says which).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Listen on a non-loopback address even though no auth_tokens are configured.
    #[arg(long)]
    allow_unauthenticated_remote: bool,
}

/// The config file (or the default pipeline) with `--data-dir` applied, not yet validated.
pub(crate) fn read_config(
    path: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(dir) = data_dir {
        config.data_dir = dir.to_path_buf();
    }
    Ok(config)
}

/// Where a delivery stream's objects go: its S3 bucket, or its local directory under the data dir.
pub(crate) fn open_sink(
    section: &crate::config::DeliverySection,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn Sink>> {
    Ok(match &section.s3 {
        Some(s3) => Arc::new(S3Sink::new(s3.clone()).with_context(|| format!("delivery {:?}: S3 sink", section.name))?),
        None => {
            let bucket = data_dir.join(&section.bucket);
            Arc::new(LocalDirSink::open(&bucket).with_context(|| format!("opening bucket {}", bucket.display()))?)
        }
    })
}

fn load(args: &UpArgs) -> anyhow::Result<Config> {
    let mut config = read_config(args.config.as_deref(), args.data_dir.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.server.allow_unauthenticated_remote |= args.allow_unauthenticated_remote;
    config.validate()?;
    if !config.listen.ip().is_loopback()
        && config.server.auth_tokens.is_empty()
        && !config.server.allow_unauthenticated_remote
    {
        bail!(
            "refusing to listen on {} without authentication: set server.auth_tokens, or pass \
             --allow-unauthenticated-remote if this network is trusted",
            config.listen
        );
    }
    Ok(config)
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let config = load(&args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut routes = HashMap::new();
    for section in &config.streams {
        let stream = Stream::open(data_dir.join("streams"), &section.name, section.stream_config()?)
            .with_context(|| format!("opening stream {:?}", section.name))?;
        let partition_key = PartitionKeySpec::parse(&section.partition_key).map_err(anyhow::Error::msg)?;
        routes.insert(section.name.clone(), StreamRoute { stream, partition_key });
    }
    let mut deliveries = Vec::new();
    for section in &config.deliveries {
        let sink: Arc<dyn Sink> = match &section.s3 {
            Some(s3) => {
                Arc::new(S3Sink::new(s3.clone()).with_context(|| format!("delivery {:?}: S3 sink", section.name))?)
            }
            None => {
                let bucket = data_dir.join(&section.bucket);
                Arc::new(LocalDirSink::open(&bucket).with_context(|| format!("opening bucket {}", bucket.display()))?)
            }
        };
        let stream = routes[&section.stream].stream.clone();
        let state = data_dir.join("delivery").join(&section.name);
        let delivery_config = section
            .delivery_config()
            .map_err(|e| anyhow::anyhow!("deliveries {:?}: {e}", section.name))?;
        deliveries.push(Delivery::start(stream, delivery_config, sink, state)?);
    }

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Handlers first: a SIGTERM that follows the banner must already mean a graceful stop.
    let shutdown = shutdown_signal()?;
    print_banner(&config, addr, &deliveries);

    let view = PipelineView::new(
        routes
            .iter()
            .map(|(name, r)| (name.clone(), r.stream.clone()))
            .collect(),
        &config
            .deliveries
            .iter()
            .zip(&deliveries)
            .map(|(section, d)| (section.stream.clone(), d))
            .collect::<Vec<_>>(),
    );
    let state = AppState {
        streams: Arc::new(routes),
        limits: config.ingest_limits(),
        auth_tokens: Arc::new(config.server.auth_tokens.clone()),
        body_read_timeout: config.server.body_read_timeout,
        metrics: Arc::default(),
        status: Arc::new(view),
    };
    let limits = ServerLimits {
        max_connections: config.server.max_connections,
        header_read_timeout: config.server.header_read_timeout,
        ..ServerLimits::default()
    };
    weir_gateway::serve(listener, weir_gateway::router(state), limits, shutdown).await;

    info!("Stopped accepting requests; delivering what is buffered.");
    let drain = async {
        for delivery in deliveries {
            delivery.shutdown().await;
        }
    };
    if tokio::time::timeout(config.server.shutdown_timeout, drain)
        .await
        .is_err()
    {
        warn!(timeout = ?config.server.shutdown_timeout,
            "Shutdown timed out; undelivered records stay in the stream and are delivered at the next start.");
    }
    info!("weir stopped.");
    Ok(())
}

fn print_banner(config: &Config, addr: SocketAddr, deliveries: &[Delivery]) {
    let stream = &config.streams[0].name;
    let auth = if config.server.auth_tokens.is_empty() {
        ""
    } else {
        " -H 'Authorization: Bearer <token>'"
    };
    println!("weir: listening on http://{addr}");
    println!();
    println!("  send an event:");
    println!(
        "    curl -sS -X POST http://{addr}/v1/streams/{stream}/records{auth} \\\n      -H 'Content-Type: application/json' -d '{{\"user_id\":42,\"event\":\"signup\"}}'"
    );
    println!();
    for d in deliveries {
        println!("  delivery {:?} writes objects under {}", d.name(), d.location());
    }
    println!("  dashboard: http://{addr}/   metrics: http://{addr}/metrics");
    println!(
        "  data in {}; stop with Ctrl-C (buffered records are delivered first)",
        config.data_dir.display()
    );
}

/// Installs the SIGTERM/SIGINT handlers now; the returned future resolves on the first signal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        info!("Shutdown signal received.");
    })
}

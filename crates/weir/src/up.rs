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

/// Where a delivery stream keeps its batch intents and object log.
pub(crate) fn delivery_state_dir(data_dir: &std::path::Path, delivery: &str) -> PathBuf {
    data_dir.join("delivery").join(delivery)
}

/// What the warehouse loads from a delivery stream.
pub(crate) fn warehouse_source(
    section: &crate::config::DeliverySection,
    data_dir: &std::path::Path,
    sink: Arc<dyn Sink>,
) -> anyhow::Result<weir_warehouse::Source> {
    let table = section
        .table_spec()
        .map_err(|e| anyhow::anyhow!("deliveries {:?}: {e}", section.name))?;
    Ok(weir_warehouse::Source {
        table,
        sink,
        object_log: Delivery::object_log_dir(&delivery_state_dir(data_dir, &section.name)),
    })
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
    let warehouse_on = config.warehouse.enabled;
    let mut deliveries = Vec::new();
    let mut sources = Vec::new();
    for section in &config.deliveries {
        let sink = open_sink(section, data_dir)?;
        let stream = routes[&section.stream].stream.clone();
        let state = delivery_state_dir(data_dir, &section.name);
        let delivery_config = section
            .delivery_config()
            .map_err(|e| anyhow::anyhow!("deliveries {:?}: {e}", section.name))?;
        if warehouse_on {
            sources.push(warehouse_source(section, data_dir, sink.clone())?);
        }
        deliveries.push(Delivery::start_with_log(
            stream,
            delivery_config,
            sink,
            state,
            warehouse_on,
        )?);
    }
    let warehouse = if warehouse_on {
        let settings = config.warehouse_settings();
        let path = settings.path.clone();
        let warehouse = tokio::task::spawn_blocking(move || weir_warehouse::Warehouse::start(settings, sources))
            .await
            .context("starting the warehouse")?
            .with_context(|| format!("opening the warehouse {}", path.display()))?;
        Some(Arc::new(warehouse))
    } else {
        None
    };

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Handlers first: a SIGTERM that follows the banner must already mean a graceful stop.
    let shutdown = shutdown_signal()?;
    print_banner(&config, addr, &deliveries, warehouse.as_deref());

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
        warehouse.clone(),
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
    // Deliveries first: their last batches are announced before the loader's last pass.
    let drain = async {
        for delivery in deliveries {
            delivery.shutdown().await;
        }
        if let Some(warehouse) = &warehouse {
            let (warehouse, timeout) = (warehouse.clone(), config.server.shutdown_timeout);
            let _ = tokio::task::spawn_blocking(move || warehouse.shutdown(timeout)).await;
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

fn print_banner(
    config: &Config,
    addr: SocketAddr,
    deliveries: &[Delivery],
    warehouse: Option<&weir_warehouse::Warehouse>,
) {
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
    if let Some(w) = warehouse {
        let tables: Vec<&str> = w.sources().iter().map(|s| s.table.table.as_str()).collect();
        println!(
            "  warehouse {} loads table(s) {}; query with: weir query \"select count(*) from {}\"",
            w.path().display(),
            tables.join(", "),
            tables.first().copied().unwrap_or("events"),
        );
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

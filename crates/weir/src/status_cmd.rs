//! `weir status`: per delivery stream, the reconciliation (records in = loaded + dropped + failed)
//! and the objects still waiting to load — from a running `weir up`, or from the files when none runs.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use weir_gateway::status::WarehouseTableStatus;

use crate::api_client::{self, Api};
use crate::config::Config;

/// Show each delivery stream's reconciliation (records in = loaded + dropped + failed) and the
/// objects still waiting to load into the warehouse.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The pipeline definition (weir.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where data lives [default: ./weir-data, or data_dir from the config].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A running weir's API [default: the config's listen address].
    #[arg(long)]
    url: Option<String>,
    /// Bearer token for the API [default: the first of the config's server.auth_tokens].
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

/// The API of the `weir up` that `config` describes (or `url`).
pub fn api_of(config: &Config, url: Option<&str>, token: Option<String>) -> anyhow::Result<Api> {
    let url = match url {
        Some(url) => url.to_owned(),
        None => format!("http://{}", config.listen),
    };
    Api::new(&url, token.or_else(|| config.server.auth_tokens.first().cloned()))
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let config = crate::up::read_config(args.config.as_deref(), args.data_dir.as_deref())?;
    config.validate()?;
    if !config.warehouse.enabled {
        bail!("this pipeline has no warehouse ([warehouse] enabled = false)");
    }
    let api = api_of(&config, args.url.as_deref(), args.token.clone())?;
    let (tables, live) = if api.is_up() {
        let (status, body) = api.call("GET", weir_gateway::api::STATUS_PATH, None)?;
        if status != 200 {
            bail!("{}", api_client::error_message(&body));
        }
        let status: serde_json::Value = serde_json::from_slice(&body).context("reading /api/status")?;
        let tables: Vec<WarehouseTableStatus> = serde_json::from_value(status["warehouse"]["tables"].clone())
            .context("reading the warehouse tables of /api/status")?;
        (tables, true)
    } else {
        (offline(&config)?, false)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tables)?);
        return Ok(());
    }
    let settings = config.warehouse_settings();
    println!(
        "warehouse {} ({})",
        settings.path.display(),
        if live {
            "from the running weir up"
        } else {
            "weir up is not running"
        }
    );
    for t in &tables {
        println!();
        println!("delivery {:?} → table {:?}", t.delivery, t.table);
        println!(
            "  records in {} = loaded {} + dropped {} + failed {}   {}",
            t.records_in,
            t.records_loaded,
            t.dropped,
            t.failed_rows_loaded,
            if t.balanced { "✓ balanced" } else { "✗ NOT BALANCED" }
        );
        println!(
            "  objects loaded {}, failed to load {}, waiting {}",
            t.objects_loaded, t.objects_failed, t.objects_pending
        );
        for key in &t.pending {
            println!("    waiting: {key}");
        }
        if let Some(e) = &t.last_error {
            println!("  last error: {e}");
        }
    }
    Ok(())
}

fn offline(config: &Config) -> anyhow::Result<Vec<WarehouseTableStatus>> {
    let mut tables = Vec::new();
    for section in &config.deliveries {
        let spec = section
            .table_spec()
            .map_err(|e| anyhow::anyhow!("deliveries {:?}: {e}", section.name))?;
        let state = crate::up::delivery_state_dir(&config.data_dir, &section.name);
        tables.push((spec, weir_delivery::Delivery::object_log_dir(&state)));
    }
    let settings = config.warehouse_settings();
    let tables = weir_warehouse::status_offline(&settings, &tables)?;
    Ok(crate::status::warehouse_status(&settings.path, tables).tables)
}

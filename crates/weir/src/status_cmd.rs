//! `weir status`: per delivery stream, the reconciliation (records in = loaded + dropped + failed)
//! and the objects still waiting to load — from a running `weir up`, or from the files when none runs.

use anyhow::{Context, bail};
use clap::Args;
use weir_gateway::status::WarehouseTableStatus;

use crate::api_client::{self, PipelineArgs};
use crate::config::Config;

/// Show each delivery stream's reconciliation (records in = loaded + dropped + failed) and the
/// objects still waiting to load into the warehouse.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let config = args.pipeline.read_config()?;
    config.validate()?;
    if !config.warehouse.enabled {
        bail!("this pipeline has no warehouse ([warehouse] enabled = false)");
    }
    let api = args.pipeline.api(&config)?;
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

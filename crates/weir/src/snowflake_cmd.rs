//! `weir snowflake`: prints the Snowflake SQL that loads a delivery stream's S3 objects with Snowpipe
//! (see `weir_core::snowflake` and docs/snowflake.md).

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use weir_core::snowflake::{DeliveryDefinition, LoadScript, ObjectCompression, ObjectFormat, Target, load_script};
use weir_delivery::encode::{Compression, Format};

/// Print the Snowflake SQL that loads a delivery stream's objects: storage integration, file format,
/// external stage, table and an auto-ingest pipe, then the IAM and S3 notification steps. Every
/// statement is CREATE … IF NOT EXISTS, so the script can be rerun.
#[derive(Debug, Args)]
pub struct SnowflakeArgs {
    /// The pipeline definition (weir.toml) [default: the default pipeline of `weir up`].
    #[arg(long)]
    config: Option<PathBuf>,
    /// The delivery stream, as named in the config [default: the only one].
    #[arg(long)]
    delivery: Option<String>,
    /// The IAM role the storage integration assumes [default: a placeholder to replace].
    #[arg(long, value_name = "ARN")]
    role_arn: Option<String>,
    /// Create the schema objects in this database (with --schema).
    #[arg(long, requires = "schema")]
    database: Option<String>,
    /// Create the schema objects in this schema [default: the session's].
    #[arg(long)]
    schema: Option<String>,
    /// The S3 bucket the objects are in, for a delivery that writes to a local directory (overrides
    /// `[deliveries.s3] bucket`).
    #[arg(long)]
    bucket: Option<String>,
    /// The key prefix inside the bucket, before the delivery's own prefix (with --bucket).
    #[arg(long, requires = "bucket")]
    prefix: Option<String>,
    /// `sql` (a script to run) or `json` (the statements one by one).
    #[arg(long, value_enum, default_value_t = Output::Sql)]
    output: Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Sql,
    Json,
}

pub fn run(args: SnowflakeArgs) -> anyhow::Result<()> {
    let config = crate::up::read_config(args.config.as_deref(), None)?;
    config.validate()?;
    let names: Vec<&str> = config.deliveries.iter().map(|d| d.name.as_str()).collect();
    let section = match &args.delivery {
        Some(name) => config
            .deliveries
            .iter()
            .find(|d| &d.name == name)
            .with_context(|| format!("no delivery stream {name:?} in the config (it has {names:?})"))?,
        None => match config.deliveries.as_slice() {
            [only] => only,
            _ => bail!("the config has several delivery streams ({names:?}): choose one with --delivery"),
        },
    };
    let delivery = section.delivery_config().map_err(|e| anyhow::anyhow!("{e}"))?;
    delivery.validate()?;
    let (bucket, bucket_prefix) = match (&args.bucket, &section.s3) {
        (Some(bucket), _) => (bucket.clone(), args.prefix.clone().unwrap_or_default()),
        (None, Some(s3)) => (s3.bucket.clone(), s3.prefix.clone()),
        (None, None) => bail!(
            "delivery stream {:?} writes to a local directory: name the S3 bucket its objects are copied to with \
             --bucket (and --prefix), or give it a [deliveries.s3] section",
            section.name
        ),
    };
    let format = match &delivery.format {
        Format::Ndjson => ObjectFormat::Ndjson,
        Format::Csv { .. } => ObjectFormat::Csv,
        Format::Parquet { columns, .. } => ObjectFormat::Parquet { columns },
    };
    let compression = match delivery.compression {
        Compression::None => ObjectCompression::None,
        Compression::Gzip => ObjectCompression::Gzip,
        Compression::Zstd => ObjectCompression::Zstd,
        Compression::Snappy => ObjectCompression::Snappy,
    };
    let definition = DeliveryDefinition {
        name: &delivery.name,
        version: delivery.version,
        transform: &delivery.transform,
        format,
        compression,
        bucket: &bucket,
        bucket_prefix: &bucket_prefix,
        prefix: delivery.prefix.as_deref(),
        error_output_prefix: delivery.error_output_prefix.as_deref(),
    };
    let target = Target {
        role_arn: args.role_arn.as_deref(),
        database: args.database.as_deref(),
        schema: args.schema.as_deref(),
    };
    let script = load_script(&definition, &target)?;
    match args.output {
        Output::Sql => print!("{}", script.to_sql()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&to_json(&script))?),
    }
    if args.role_arn.is_none() {
        eprintln!("weir: the storage integration names a placeholder role; pass --role-arn to fill it in");
    }
    Ok(())
}

fn to_json(script: &LoadScript) -> serde_json::Value {
    let statements: Vec<serde_json::Value> = script
        .statements
        .iter()
        .map(|s| serde_json::json!({ "kind": s.kind.as_str(), "name": s.name, "sql": s.sql }))
        .collect();
    serde_json::json!({ "location": script.location, "statements": statements, "epilogue": script.epilogue })
}

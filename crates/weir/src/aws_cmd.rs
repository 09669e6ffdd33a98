//! `weir aws …`: the AWS shape of the pipeline (`deploy/aws/template.yaml`, docs/aws.md).

mod params;

use clap::{Args, Subcommand};
use std::path::PathBuf;

use params::{Parameter, StreamMode};

/// The pipeline on AWS: API Gateway, Lambda, Kinesis, Firehose and S3 from deploy/aws/template.yaml.
#[derive(Debug, Args)]
pub struct AwsArgs {
    #[command(subcommand)]
    command: AwsCommand,
}

#[derive(Debug, Subcommand)]
enum AwsCommand {
    /// Print the template's parameters for one delivery stream of weir.toml and the stream it reads,
    /// for `aws cloudformation deploy --parameter-overrides file://params.json` (json) or
    /// `sam deploy --parameter-overrides "$(weir aws params --format sam)"` (sam).
    Params(ParamsArgs),
}

#[derive(Debug, Args)]
struct ParamsArgs {
    /// The pipeline definition (weir.toml). Without it, the default pipeline of `weir up`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The delivery stream to deploy [default: the only one in the config].
    #[arg(long)]
    delivery: Option<String>,
    /// `json` (CloudFormation's [{"ParameterKey","ParameterValue"}]) or `sam` (Key=Value pairs).
    #[arg(long, value_enum, default_value_t = Output::Json)]
    format: Output,
    /// An on-demand Kinesis stream instead of the config's `shards` provisioned shards.
    #[arg(long)]
    on_demand: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Json,
    Sam,
}

pub fn run(args: AwsArgs) -> anyhow::Result<()> {
    match args.command {
        AwsCommand::Params(args) => run_params(args),
    }
}

fn run_params(args: ParamsArgs) -> anyhow::Result<()> {
    let config = crate::up::read_config(args.config.as_deref(), None)?;
    config.validate()?;
    let mode = if args.on_demand {
        StreamMode::OnDemand
    } else {
        StreamMode::Provisioned
    };
    let mapping = params::template_parameters(&config, args.delivery.as_deref(), mode)?;
    for note in &mapping.notes {
        eprintln!("note: {note}");
    }
    let text = match args.format {
        Output::Json => serde_json::to_string_pretty(&mapping.parameters)?,
        Output::Sam => sam_overrides(&mapping.parameters)?,
    };
    println!("{text}");
    Ok(())
}

/// `Key=Value Key="a value"` as `sam deploy --parameter-overrides` parses it: a value with spaces or
/// quotes is wrapped in double quotes with `"` escaped as `\"`; SAM unescapes `\"`, `\'` and `\ ` only,
/// so a value with a backslash before one of those cannot be written unambiguously.
fn sam_overrides(parameters: &[Parameter]) -> anyhow::Result<String> {
    let mut pairs = Vec::with_capacity(parameters.len());
    for p in parameters {
        let v = &p.value;
        if [r#"\""#, r"\'", r"\ "].iter().any(|s| v.contains(s)) {
            anyhow::bail!(
                "{}: the value {v:?} cannot be written for sam's --parameter-overrides; use --format json",
                p.key
            );
        }
        if v.is_empty() || v.contains([' ', '"', '\'']) {
            pairs.push(format!("{}=\"{}\"", p.key, v.replace('"', "\\\"")));
        } else {
            pairs.push(format!("{}={v}", p.key));
        }
    }
    Ok(pairs.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sam_pairs_quote_values_with_spaces_and_quotes() {
        let parameters = [
            Parameter {
                key: "StreamName",
                value: "events".into(),
            },
            Parameter {
                key: "TransformSpec",
                value: r#"{"kind":"flatten","separator":" "}"#.into(),
            },
            Parameter {
                key: "Prefix",
                value: String::new(),
            },
        ];
        assert_eq!(
            sam_overrides(&parameters).expect("writable"),
            r#"StreamName=events TransformSpec="{\"kind\":\"flatten\",\"separator\":\" \"}" Prefix="""#
        );
    }

    #[test]
    fn sam_pairs_refuse_values_sam_would_unescape_wrongly() {
        let parameters = [Parameter {
            key: "TransformSpec",
            value: r#"{"kind":"csv","columns":[{"name":"a\"b"}]}"#.into(),
        }];
        let e = sam_overrides(&parameters).expect_err("ambiguous");
        assert!(e.to_string().contains("--format json"), "{e}");
    }
}

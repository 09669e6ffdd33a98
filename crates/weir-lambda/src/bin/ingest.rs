//! The ingest function: API Gateway → weir's ingest contract → Kinesis (see `weir_lambda::ingest`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weir_lambda::config::IngestConfig;
use weir_lambda::gateway::{GatewayEvent, GatewayResponse};
use weir_lambda::ingest::Ingest;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    weir_lambda::logging::init();
    let config = IngestConfig::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ingest = Arc::new(Ingest::new(config, weir_lambda::put::kinesis_client(&sdk)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<GatewayEvent>| {
        let ingest = Arc::clone(&ingest);
        async move { handle(&ingest, event).await }
    }))
    .await
}

async fn handle(ingest: &Ingest, event: LambdaEvent<GatewayEvent>) -> Result<GatewayResponse, Error> {
    let (response, counts) = ingest.handle(&event.payload, deadline(event.context.deadline)).await;
    counts.counters().emit(&ingest.config().metrics);
    Ok(response)
}

/// Lambda's deadline (epoch milliseconds) as an `Instant`.
fn deadline(epoch_ms: u64) -> Option<tokio::time::Instant> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = Duration::from_millis(epoch_ms).checked_sub(now)?;
    Some(tokio::time::Instant::now() + left)
}

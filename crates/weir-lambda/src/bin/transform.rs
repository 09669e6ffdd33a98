//! The transform function: Firehose transformation events → the configured weir-core transform
//! (see `weir_lambda::transform`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use std::sync::Arc;
use weir_lambda::config::TransformConfig;
use weir_lambda::transform::TransformFunction;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    weir_lambda::logging::init();
    let config = Arc::new(TransformConfig::from_env()?);
    let function = Arc::new(TransformFunction::new(&config)?);
    // The event stays raw JSON: `envelope::invoke` reads it with weir-core's own scanner.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let (function, config) = (Arc::clone(&function), Arc::clone(&config));
        async move {
            let (response, counts) = function.handle(event.payload.get().as_bytes())?;
            counts.counters().emit(&config.metrics);
            Ok::<_, Error>(RawValue::from_string(String::from_utf8(response)?)?)
        }
    }))
    .await
}

//! Logs: tracing events as JSON lines on stdout (Lambda sends stdout to CloudWatch Logs), filtered
//! by `RUST_LOG` (the template's `LogLevel`), `info` when unset.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stdout)
        .init();
}

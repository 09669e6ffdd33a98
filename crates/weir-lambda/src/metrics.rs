//! CloudWatch embedded metric format (EMF): one JSON line per invocation on stdout, which CloudWatch
//! Logs turns into metrics without an API call (so no `cloudwatch:PutMetricData` permission, no latency).
//!
//! ```json
//! {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[
//!    {"Namespace":"weir","Dimensions":[["FunctionName"]],"Metrics":[{"Name":"RecordsPut","Unit":"Count"}]},
//!    {"Namespace":"weir","Dimensions":[["FunctionName","Status"]],"Metrics":[{"Name":"RequestsRejected","Unit":"Count"}]}]},
//!  "FunctionName":"weir-IngestFunction-abc","Status":"413","RecordsPut":0,"RequestsRejected":1}
//! ```
//!
//! Counters go under the `FunctionName` dimension; counters broken down by HTTP status (the ingest
//! function's rejected requests) go under `FunctionName` + `Status`, in a second directive of the same
//! line (EMF lets one line carry several).

use crate::config::MetricsConfig;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// One invocation's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// `(name, value)` under the `FunctionName` dimension.
    pub counts: Vec<(&'static str, u64)>,
    /// `(status, name, value)`: counted under `FunctionName` + `Status`.
    pub by_status: Option<(u16, &'static str, u64)>,
}

impl Counters {
    /// The EMF line for these counters, stamped `timestamp_ms`.
    pub fn emf_line(&self, config: &MetricsConfig, timestamp_ms: u64) -> String {
        let names = |counts: &mut dyn Iterator<Item = &'static str>| -> Vec<Value> {
            counts.map(|name| json!({"Name": name, "Unit": "Count"})).collect()
        };
        let mut directives = vec![json!({
            "Namespace": config.namespace,
            "Dimensions": [["FunctionName"]],
            "Metrics": names(&mut self.counts.iter().map(|(name, _)| *name)),
        })];
        let mut document = Map::new();
        document.insert("FunctionName".into(), config.function_name.clone().into());
        for (name, value) in &self.counts {
            document.insert((*name).into(), (*value).into());
        }
        if let Some((status, name, value)) = self.by_status {
            directives.push(json!({
                "Namespace": config.namespace,
                "Dimensions": [["FunctionName", "Status"]],
                "Metrics": names(&mut std::iter::once(name)),
            }));
            document.insert("Status".into(), status.to_string().into());
            document.insert(name.into(), value.into());
        }
        document.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
        Value::Object(document).to_string()
    }

    /// Writes the EMF line to stdout, where Lambda's log capture hands it to CloudWatch.
    pub fn emit(&self, config: &MetricsConfig) {
        let line = self.emf_line(config, now_ms());
        let mut out = std::io::stdout().lock();
        // A full or closed stdout must not fail the invocation; the metrics are then lost, not the data.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

//! `weir redrive`: send the records of the processing-failed error output through the current
//! transform again, and record what became of each. Firehose has no such thing: its failed records
//! stay in the error prefix until someone writes a script.
//!
//! Exactly once, like delivery: the objects a redrive writes are named from the error object they
//! came from (deterministic ids), and the error object is marked done in a ledger
//! (`<state_dir>/redrive-ledger.json`) only after they are durable. A redrive interrupted by a crash
//! rewrites the same objects when it runs again; a finished one is never redriven twice. Records that
//! fail again go to a new error object, which a later redrive can pick up.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use uuid::Uuid;
use weir_core::transform::ProcessingFailedDocument;
use weir_stream::{Record, SequenceNumber, ShardId};

use crate::config::{ConfigError, DeliveryConfig};
use crate::plan;
use crate::sink::Sink;

/// The namespace of redrive batch ids (UUID v5 of the error object's key).
const REDRIVE_NAMESPACE: Uuid = Uuid::from_u128(0x7765_6972_2d72_6564_7269_7665_0000_0001);
const LEDGER: &str = "redrive-ledger.json";

/// What happened to one failed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// The error object the record was read from, and its line (1-based).
    pub source_key: String,
    pub line: usize,
    /// `delivered`, `dropped` or `failed`.
    pub outcome: &'static str,
    /// The object it went to (delivered or failed again).
    pub key: Option<String>,
    /// For a record that failed again: why.
    pub error_code: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct RedriveReport {
    /// Error objects redriven by this run.
    pub objects: Vec<String>,
    /// Error objects skipped because an earlier run redrove them.
    pub already_redriven: usize,
    pub records: Vec<RecordOutcome>,
    pub dry_run: bool,
}

impl RedriveReport {
    pub fn count(&self, outcome: &str) -> usize {
        self.records.iter().filter(|r| r.outcome == outcome).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{key} line {line} is not a processing-failed document: {reason}")]
    BadDocument { key: String, line: usize, reason: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    redriven: BTreeSet<String>,
}

/// Redrives every processing-failed error object of the delivery stream `config` (reading from
/// stream `stream`) found in `sink`. With `dry_run`, plans and reports but writes nothing.
pub fn redrive(
    config: &DeliveryConfig,
    stream: &str,
    sink: &dyn Sink,
    state_dir: &Path,
    dry_run: bool,
) -> Result<RedriveReport, RedriveError> {
    config.validate()?;
    let setup = crate::setup(config, stream)?;
    let ledger_path = state_dir.join(LEDGER);
    let mut ledger = read_ledger(&ledger_path)?;
    let io_err = |what: String| move |source| RedriveError::Io { what, source };

    let mut report = RedriveReport {
        dry_run,
        ..RedriveReport::default()
    };
    for key in error_objects(&setup, sink)? {
        if ledger.redriven.contains(&key) {
            report.already_redriven += 1;
            continue;
        }
        let body = sink.get(&key).map_err(io_err(format!("reading {key}")))?;
        let records = records_of(&key, &body)?;
        if records.is_empty() {
            continue;
        }
        let batch_id = Uuid::new_v5(&REDRIVE_NAMESPACE, key.as_bytes());
        let now = weir_stream::Clock::now_ms(&weir_stream::SystemClock);
        let planned = plan::plan(&setup, &records, batch_id, now);
        report.records.extend(outcomes(&key, &records, &planned));
        if !dry_run {
            for object in &planned.objects {
                sink.put(&object.key, &object.body)
                    .map_err(io_err(format!("writing {}", object.key)))?;
            }
            // A warehouse loader reads the object log (it exists once `weir up` ran with a warehouse):
            // the new objects are announced like any batch, under an id that is the same on a rerun.
            let log_dir = crate::Delivery::object_log_dir(state_dir);
            if log_dir.is_dir() {
                let notice = crate::shard::notice(
                    &planned,
                    batch_id,
                    records.len() as u64,
                    now,
                    crate::object_log::NoticeSource::Redrive,
                );
                crate::object_log::ObjectLog::append_once(&log_dir, &notice)
                    .map_err(io_err(format!("appending to the object log in {}", log_dir.display())))?;
            }
            ledger.redriven.insert(key.clone());
            write_ledger(&ledger_path, &ledger)?;
        }
        report.objects.push(key);
    }
    Ok(report)
}

/// The processing-failed error objects: keys under the error prefix's fixed start that name the
/// `processing-failed` type (Firehose puts the type in every error key: the default error prefix
/// starts with it, and a custom one must contain `!{firehose:error-output-type}`).
fn error_objects(setup: &plan::Setup, sink: &dyn Sink) -> Result<Vec<String>, RedriveError> {
    let template = setup.prefixes.error_output.to_string();
    let fixed = template.split("!{").next().unwrap_or_default();
    let keys = sink.list(fixed).map_err(|source| RedriveError::Io {
        what: format!("listing {fixed:?} in {}", sink.location()),
        source,
    })?;
    let name = format!("{}-{}-", setup.config.name, setup.config.version);
    Ok(keys
        .into_iter()
        .filter(|k| {
            k.rsplit_once('/')
                .is_some_and(|(dir, _)| dir.contains("processing-failed"))
        })
        .filter(|k| k.rsplit('/').next().is_some_and(|file| file.starts_with(&name)))
        .collect())
}

/// The original records of an error object, as stream records (positions are the lines).
fn records_of(key: &str, body: &[u8]) -> Result<Vec<Record>, RedriveError> {
    let text = std::str::from_utf8(body).map_err(|e| RedriveError::BadDocument {
        key: key.to_owned(),
        line: 0,
        reason: e.to_string(),
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let bad = |reason: String| RedriveError::BadDocument {
                key: key.to_owned(),
                line: i + 1,
                reason,
            };
            let doc: ProcessingFailedDocument<'_> = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(doc.raw_data.as_bytes())
                .map_err(|e| bad(format!("rawData: {e}")))?;
            Ok(Record {
                sequence_number: SequenceNumber {
                    shard: ShardId(0),
                    offset: i as u64,
                },
                partition_key: String::new(),
                data: data.into(),
                approximate_arrival_timestamp_ms: doc.arrival_timestamp,
            })
        })
        .collect()
}

/// Each record's outcome, from where the plan put it.
fn outcomes(source_key: &str, records: &[Record], planned: &plan::Plan) -> Vec<RecordOutcome> {
    let mut out: Vec<RecordOutcome> = records
        .iter()
        .enumerate()
        .map(|(i, _)| RecordOutcome {
            source_key: source_key.to_owned(),
            line: i + 1,
            outcome: "dropped",
            key: None,
            error_code: None,
        })
        .collect();
    for object in &planned.objects {
        for (index, error_code) in &object.members {
            let o = &mut out[*index];
            o.key = Some(object.key.clone());
            match object.error {
                None => o.outcome = "delivered",
                Some(_) => {
                    o.outcome = "failed";
                    o.error_code = error_code.clone();
                }
            }
        }
    }
    out
}

fn read_ledger(path: &Path) -> Result<Ledger, RedriveError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RedriveError::Io {
            what: format!("reading {}", path.display()),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ledger::default()),
        Err(source) => Err(RedriveError::Io {
            what: format!("reading {}", path.display()),
            source,
        }),
    }
}

fn write_ledger(path: &Path, ledger: &Ledger) -> Result<(), RedriveError> {
    let dir: PathBuf = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let io_err = |source| RedriveError::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io_err)?;
    let bytes = serde_json::to_vec_pretty(ledger).expect("a set of strings serializes");
    let vfs: &dyn weir_stream::vfs::Vfs = &weir_stream::vfs::StdVfs;
    vfs.write_atomic(path, &bytes).map_err(io_err)
}

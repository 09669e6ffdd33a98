//! The transform function: Firehose's transformation event → the configured `weir-core` transform →
//! Firehose's response, through `weir_core::transform::envelope::invoke` (the same code `weir up`'s
//! delivery runs in process). Nothing is kept between invocations but the built transform.
//!
//! # A response over Lambda's 6 MB
//!
//! Lambda refuses a response over 6 MB, which fails the whole invocation: Firehose retries it (same
//! records, same result) and then sends every record of the batch to the error output. Instead,
//! records are answered in order while they fit; from the first `Ok` record that would not fit on,
//! `Ok` records are answered `ProcessingFailed` with their original data (which is never larger than in
//! the event, itself at most 6 MB), so Firehose delivers what fits and sends the rest to the error output
//! with their original data (`processing-failed/`, error code `Lambda.ProcessingFailedStatus`). Firehose's
//! response has no per-record message, so the reason is logged at ERROR with the advice to lower the
//! processor's buffer size (`ProcessorBufferSizeMB`), and counted (`ProcessingFailedOverLimit`).
//! `Dropped` and `ProcessingFailed` records keep their results. Should even that not fit (a transform
//! that grows every record a lot), the invocation fails as Lambda would fail it.

use crate::config::TransformConfig;
use crate::metrics::Counters;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::error;
use weir_core::transform::envelope::{self, InvokeError};
use weir_core::transform::{
    ContractError, InputRecord, MAX_RESPONSE_BYTES, OutputRecord, ProcessingError, Transform, TransformResult,
};

/// The transform function: the transform built once from `WEIR_TRANSFORM`.
pub struct TransformFunction {
    transform: Box<dyn Transform>,
}

impl std::fmt::Debug for TransformFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformFunction")
            .field("transform", &self.transform.id())
            .finish()
    }
}

/// What one invocation did, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformCounts {
    pub records_in: u64,
    pub ok: u64,
    pub dropped: u64,
    pub processing_failed: u64,
    /// Of `processing_failed`: `Ok` records answered `ProcessingFailed` because the response was full.
    pub over_limit: u64,
}

impl TransformCounts {
    /// `RecordsIn`, `Ok`, `Dropped`, `ProcessingFailed`, `ProcessingFailedOverLimit`.
    pub fn counters(&self) -> Counters {
        Counters {
            counts: vec![
                ("RecordsIn", self.records_in),
                ("Ok", self.ok),
                ("Dropped", self.dropped),
                ("ProcessingFailed", self.processing_failed),
                ("ProcessingFailedOverLimit", self.over_limit),
            ],
            by_status: None,
        }
    }

    fn count(&mut self, output: &[OutputRecord<'_>]) {
        for record in output {
            match record.result {
                TransformResult::Ok => self.ok += 1,
                TransformResult::Dropped => self.dropped += 1,
                TransformResult::ProcessingFailed => self.processing_failed += 1,
            }
        }
    }
}

/// The wrapped transform, counting results as they pass (the fast path writes the response directly).
struct Counting<'t> {
    inner: &'t dyn Transform,
    records_in: AtomicU64,
    ok: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl Transform for Counting<'_> {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError> {
        let output = self.inner.process(batch)?;
        let mut counts = TransformCounts::default();
        counts.count(&output);
        self.records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.ok.fetch_add(counts.ok, Ordering::Relaxed);
        self.dropped.fetch_add(counts.dropped, Ordering::Relaxed);
        self.failed.fetch_add(counts.processing_failed, Ordering::Relaxed);
        Ok(output)
    }
}

impl TransformFunction {
    pub fn new(config: &TransformConfig) -> Result<TransformFunction, weir_core::transform::SpecError> {
        Ok(TransformFunction {
            transform: config.spec.build()?,
        })
    }

    /// Handles one event (its JSON bytes): the response's JSON bytes, or the error that fails the
    /// invocation (an unreadable event, a transform that failed the whole batch).
    pub fn handle(&self, event: &[u8]) -> Result<(Vec<u8>, TransformCounts), InvokeError> {
        let counting = Counting {
            inner: self.transform.as_ref(),
            records_in: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        };
        match envelope::invoke(&counting, event) {
            Ok(response) => Ok((
                response,
                TransformCounts {
                    records_in: counting.records_in.into_inner(),
                    ok: counting.ok.into_inner(),
                    dropped: counting.dropped.into_inner(),
                    processing_failed: counting.failed.into_inner(),
                    over_limit: 0,
                },
            )),
            Err(InvokeError::Contract(ContractError::ResponseTooLarge { bytes, .. })) => self.fit(event, bytes),
            Err(e) => Err(e),
        }
    }

    /// The slow path for a response over the limit: transform again, then answer within it.
    fn fit(&self, event: &[u8], full_bytes: usize) -> Result<(Vec<u8>, TransformCounts), InvokeError> {
        let invocation = envelope::decode_event(event)?;
        let input = &invocation.records;
        let output = self.transform.process(input).map_err(InvokeError::Transform)?;
        let ordered = in_input_order(input, output)?;
        let (fitted, over_limit) = fit_within(input, ordered, MAX_RESPONSE_BYTES);
        let size = envelope::response_size(&fitted);
        if size > MAX_RESPONSE_BYTES {
            return Err(ContractError::ResponseTooLarge {
                bytes: size,
                max: MAX_RESPONSE_BYTES,
            }
            .into());
        }
        error!(
            records = input.len(),
            over_limit,
            response_bytes = full_bytes,
            limit = MAX_RESPONSE_BYTES,
            transform = self.transform.id(),
            "The transformed batch exceeds Lambda's 6 MB response limit: records that did not fit were answered \
             ProcessingFailed and go to the error output with their original data. Lower the processor's buffer \
             size (ProcessorBufferSizeMB) so a transformed batch fits."
        );
        let mut counts = TransformCounts {
            records_in: input.len() as u64,
            over_limit: over_limit as u64,
            ..TransformCounts::default()
        };
        counts.count(&fitted);
        Ok((envelope::encode_response(&fitted), counts))
    }
}

/// Pairs each input with its result (the contract: every id exactly once, no other).
fn in_input_order<'a>(
    input: &[InputRecord<'_>],
    output: Vec<OutputRecord<'a>>,
) -> Result<Vec<OutputRecord<'a>>, InvokeError> {
    let mut by_id: std::collections::HashMap<String, OutputRecord<'a>> = std::collections::HashMap::new();
    for record in output {
        let id = record.record_id.to_string();
        if by_id.insert(id.clone(), record).is_some() {
            return Err(ContractError::DuplicatedRecordId { record_id: id }.into());
        }
    }
    let ordered = input
        .iter()
        .map(|record| {
            by_id
                .remove(&*record.record_id)
                .ok_or_else(|| ContractError::MissingRecordId {
                    record_id: record.record_id.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(extra) = by_id.into_keys().next() {
        return Err(ContractError::UnknownRecordId { record_id: extra }.into());
    }
    Ok(ordered)
}

/// Keeps results in order while the response stays within `limit` bytes, reserving room for every later
/// record as `ProcessingFailed` with its original data; from the first `Ok` record that does not fit, `Ok`
/// results become `ProcessingFailed` with the input's data. Returns the results and how many were turned.
/// `output[i]` must be the result of `input[i]`.
pub fn fit_within<'a>(
    input: &'a [InputRecord<'_>],
    output: Vec<OutputRecord<'a>>,
    limit: usize,
) -> (Vec<OutputRecord<'a>>, usize) {
    let empty = envelope::response_size(&[]);
    // Each record's size in the response, as answered and as it would be if turned.
    let as_answered: Vec<usize> = output
        .iter()
        .map(|r| envelope::response_size(std::slice::from_ref(r)) - empty)
        .collect();
    let turned = |i: usize, r: &OutputRecord<'_>| {
        if r.result == TransformResult::Ok {
            envelope::response_size(std::slice::from_ref(&turn(&input[i], r))) - empty
        } else {
            as_answered[i]
        }
    };
    let n = output.len();
    let separators = n.saturating_sub(1);
    // suffix[i]: the bytes of records i.. if all were turned.
    let mut suffix = vec![0usize; n + 1];
    for i in (0..n).rev() {
        suffix[i] = suffix[i + 1] + turned(i, &output[i]);
    }
    let mut kept = 0;
    let mut prefix = 0usize;
    while kept < n && empty + separators + prefix + as_answered[kept] + suffix[kept + 1] <= limit {
        prefix += as_answered[kept];
        kept += 1;
    }
    let mut over_limit = 0;
    let fitted = output
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            if i >= kept && record.result == TransformResult::Ok {
                over_limit += 1;
                turn(&input[i], &record)
            } else {
                record
            }
        })
        .collect();
    (fitted, over_limit)
}

/// `record` answered `ProcessingFailed` with `input`'s original data.
fn turn<'a>(input: &'a InputRecord<'_>, record: &OutputRecord<'_>) -> OutputRecord<'a> {
    OutputRecord {
        record_id: Cow::Borrowed(&input.record_id),
        result: TransformResult::ProcessingFailed,
        data: Cow::Borrowed(&input.data),
        partition_keys: Default::default(),
        error: Some(ProcessingError {
            code: Cow::Borrowed(weir_core::transform::code::LAMBDA_FUNCTION_ERROR),
            message: format!(
                "record {} did not fit in Lambda's {MAX_RESPONSE_BYTES}-byte response; lower the processor's buffer size",
                record.record_id
            ),
        }),
    }
}

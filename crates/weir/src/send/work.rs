//! What to send next. Connections claim batches from one shared counter, so no channel sits between
//! them and template rendering runs on every connection's task in parallel.

use super::body::{Framing, gzip};
use super::template::{RenderContext, Template};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The records of one run.
pub enum Work {
    /// Rendered per batch by the connection that claims it; `seq` is the claim counter.
    Template {
        template: Template,
        framing: Framing,
        gzip: bool,
        batch_size: u32,
        count: Option<u64>,
        next_record: AtomicU64,
    },
    /// A file's batches, encoded (and gzipped) once before sending, then replayed `--repeat` times.
    Batches {
        batches: Vec<Batch>,
        /// Batches to send in all; `None` repeats until the deadline.
        total: Option<u64>,
        next_batch: AtomicU64,
    },
}

pub struct Batch {
    pub body: Vec<u8>,
    pub records: u32,
    /// The records' JSON text, framing excluded: what "MB/s" counts.
    pub record_bytes: u64,
}

impl Batch {
    pub fn encode(records: &[Box<[u8]>], framing: Framing, gzip_body: bool) -> Batch {
        let mut body = Vec::new();
        framing.encode(records.iter().map(|r| &r[..]), &mut body);
        if gzip_body {
            let raw = std::mem::take(&mut body);
            gzip(&raw, &mut body);
        }
        Batch {
            body,
            records: u32::try_from(records.len()).expect("a batch holds at most 500 records"),
            record_bytes: records.iter().map(|r| r.len() as u64).sum(),
        }
    }
}

/// One connection's own buffers and random source, reused for every batch it renders.
pub struct Scratch {
    rng: StdRng,
    body: Vec<u8>,
    compressed: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            rng: StdRng::from_os_rng(),
            body: Vec::new(),
            compressed: Vec::new(),
        }
    }
}

/// A claimed batch, ready to send.
pub struct Claim<'a> {
    pub body: &'a [u8],
    pub records: u32,
    pub record_bytes: u64,
}

/// Why sending stops early: the deadline, Ctrl-C, or a connection that gave up.
pub struct Stop {
    deadline: Option<Instant>,
    interrupted: AtomicBool,
}

impl Stop {
    pub fn new(deadline: Option<Instant>) -> Stop {
        Stop {
            deadline,
            interrupted: AtomicBool::new(false),
        }
    }

    /// Ctrl-C, or a connection gave up: no new batches, and batches waiting to be retried are dropped.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// No new batches: interrupted or past the deadline (batches already sent are still retried).
    pub fn is_stopped(&self, now: Instant) -> bool {
        self.is_interrupted() || self.deadline.is_some_and(|d| now >= d)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Work {
    /// Records the run will send, when that is known in advance.
    pub fn total_records(&self) -> Option<u64> {
        match self {
            Work::Template { count, .. } => *count,
            Work::Batches { batches, total, .. } => {
                let per_round: u64 = batches.iter().map(|b| u64::from(b.records)).sum();
                let (rounds, rest) = ((*total)? / batches.len() as u64, (*total)? % batches.len() as u64);
                let rest: u64 = batches[..rest as usize].iter().map(|b| u64::from(b.records)).sum();
                Some(rounds * per_round + rest)
            }
        }
    }

    /// Claims the next batch, or `None` when everything is claimed or sending has stopped (`now`: the
    /// caller's latest clock reading, so a request costs no extra one).
    pub fn next<'a>(&'a self, stop: &Stop, now: Instant, scratch: &'a mut Scratch) -> Option<Claim<'a>> {
        if stop.is_stopped(now) {
            return None;
        }
        match self {
            Work::Template {
                template,
                framing,
                gzip: gzip_body,
                batch_size,
                count,
                next_record,
            } => {
                let first = next_record.fetch_add(u64::from(*batch_size), Ordering::Relaxed);
                let records = match count {
                    Some(count) if first >= *count => return None,
                    Some(count) => (count - first).min(u64::from(*batch_size)),
                    None => u64::from(*batch_size),
                };
                let body = &mut scratch.body;
                body.clear();
                framing.open(body);
                let mut record_bytes = 0;
                for seq in first..first + records {
                    if seq > first {
                        framing.separate(body);
                    }
                    let before = body.len();
                    template.render(&mut RenderContext::new(seq, &mut scratch.rng), body);
                    record_bytes += (body.len() - before) as u64;
                    framing.end_record(body);
                }
                framing.close(body);
                let body = if *gzip_body {
                    gzip(&scratch.body, &mut scratch.compressed);
                    &scratch.compressed
                } else {
                    &scratch.body
                };
                Some(Claim {
                    body,
                    records: records as u32,
                    record_bytes,
                })
            }
            Work::Batches {
                batches,
                total,
                next_batch,
            } => {
                let index = next_batch.fetch_add(1, Ordering::Relaxed);
                if total.is_some_and(|total| index >= total) {
                    return None;
                }
                let batch = &batches[(index % batches.len() as u64) as usize];
                Some(Claim {
                    body: &batch.body,
                    records: batch.records,
                    record_bytes: batch.record_bytes,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_work(records: usize, batch_size: usize, total: Option<u64>) -> Work {
        let records: Vec<Box<[u8]>> = (0..records)
            .map(|i| format!("{{\"i\":{i}}}").into_bytes().into())
            .collect();
        Work::Batches {
            batches: records
                .chunks(batch_size)
                .map(|c| Batch::encode(c, Framing::Ndjson, false))
                .collect(),
            total,
            next_batch: AtomicU64::new(0),
        }
    }

    #[test]
    fn file_batches_repeat_and_end() {
        let work = file_work(5, 2, Some(6));
        assert_eq!(work.total_records(), Some(10));
        let stop = Stop::new(None);
        let mut scratch = Scratch::new();
        let mut sizes = Vec::new();
        while let Some(claim) = work.next(&stop, Instant::now(), &mut scratch) {
            sizes.push(claim.records);
        }
        assert_eq!(sizes, vec![2, 2, 1, 2, 2, 1]);
    }

    #[test]
    fn template_claims_stop_at_count_with_a_short_last_batch() {
        let work = Work::Template {
            template: Template::parse(r#"{"s":{{seq}}}"#).expect("valid"),
            framing: Framing::Array,
            gzip: false,
            batch_size: 4,
            count: Some(10),
            next_record: AtomicU64::new(0),
        };
        let stop = Stop::new(None);
        let mut scratch = Scratch::new();
        let mut bodies = Vec::new();
        while let Some(claim) = work.next(&stop, Instant::now(), &mut scratch) {
            bodies.push(String::from_utf8(claim.body.to_vec()).expect("UTF-8"));
        }
        assert_eq!(
            bodies,
            vec![
                r#"[{"s":0},{"s":1},{"s":2},{"s":3}]"#,
                r#"[{"s":4},{"s":5},{"s":6},{"s":7}]"#,
                r#"[{"s":8},{"s":9}]"#
            ]
        );
    }

    #[test]
    fn stopped_work_claims_nothing() {
        let work = file_work(3, 1, None);
        let stop = Stop::new(None);
        stop.interrupt();
        assert!(work.next(&stop, Instant::now(), &mut Scratch::new()).is_none());
    }
}

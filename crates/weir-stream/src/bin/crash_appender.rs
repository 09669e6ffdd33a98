//! Test harness for `tests/crash.rs`; not a user tool.
//!
//! Usage: `weir-stream-crash-appender <data-dir> <run-id> [seed]`
//!
//! Opens stream `events` (4 shards, 64 KiB segments so segments roll while the test kills this
//! process) and appends forever, one batch at a time, batches of 1 to 40 records with random partition
//! keys; one record in 500 is 32 to 256 KiB. Each record's data is
//! `{"id":"<run>-<n>","batch":<b>,"of":<size>,"pad":"…"}`: `n` numbers the records of this run, `b`
//! its batches, and `of` is the batch's size, so the test can check that every batch is whole. After
//! each acknowledged (fsynced) append it prints one line per record,
//! `ACK <id> <shard_index> <offset>`, and flushes stdout. The test SIGKILLs it at a random moment and
//! checks that every acknowledged record survived exactly where it was acknowledged.

use std::io::Write;
use std::process::ExitCode;
use weir_stream::{PutRecord, Stream, StreamConfig};

const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

/// SplitMix64: the harness only needs cheap, seedable noise (the `rand` crate is a dev-dependency).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: weir-stream-crash-appender <data-dir> <run-id> [seed]");
        return ExitCode::from(2);
    }
    let (dir, run) = (&args[1], &args[2]);
    let seed = match args.get(3).map(|s| s.parse::<u64>()) {
        None => run.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        }),
        Some(Ok(seed)) => seed,
        Some(Err(e)) => {
            eprintln!("crash-appender: bad seed {:?}: {e}", args[3]);
            return ExitCode::from(2);
        }
    };
    let mut rng = SplitMix64(seed);
    let config = StreamConfig {
        shard_count: 4,
        segment_bytes: 64 * 1024,
        ..StreamConfig::default()
    };
    let stream = match Stream::open(dir, "events", config) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("crash-appender: cannot open stream in {dir}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut n: u64 = 0;
    for batch in 0_u64.. {
        let size = rng.range(1, 40);
        let mut ids = Vec::with_capacity(size as usize);
        let records: Vec<PutRecord> = (0..size)
            .map(|_| {
                let id = format!("{run}-{n}");
                n += 1;
                // Now and then a large record, so that a kill can land in the middle of a long write.
                let len = if rng.range(0, 499) == 0 {
                    rng.range(32 << 10, 256 << 10)
                } else {
                    rng.range(0, 400)
                };
                let pad = &ALPHABET.repeat(len as usize / ALPHABET.len() + 1)[..len as usize];
                let data = format!(r#"{{"id":"{id}","batch":{batch},"of":{size},"pad":"{pad}"}}"#);
                ids.push(id);
                PutRecord::new(format!("pk-{:x}", rng.next()), data)
            })
            .collect();
        let results = match stream.append_blocking(records) {
            Ok(results) => results,
            Err(e) => {
                eprintln!("crash-appender: append of batch {batch} failed: {e}");
                return ExitCode::from(1);
            }
        };
        if results.len() != ids.len() {
            eprintln!("crash-appender: {} results for a batch of {}", results.len(), ids.len());
            return ExitCode::from(1);
        }
        for (id, result) in ids.iter().zip(&results) {
            let seq = result.sequence_number;
            if writeln!(stdout, "ACK {id} {} {}", seq.shard.0, seq.offset).is_err() {
                return ExitCode::from(1); // The test went away.
            }
        }
        if stdout.flush().is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

//! Transform throughput per core, measured as one whole Lambda invocation: the raw event bytes in,
//! the serialized response bytes out ([`envelope::invoke`]: parse the event JSON, decode base64,
//! transform, encode base64, write the response JSON).
//!
//! Run through `scripts/bench-transform.sh`, which alternates this with the Python baselines on the
//! same event file and prints the table for BENCHMARKS.md. Alone:
//! `cargo bench -p weir-core --bench transform`. Knobs:
//! - `WEIR_BENCH_EVENT`: the event file; written here (deterministically) when it does not exist, so
//!   the Python harness can read the very same bytes. Default: an in-memory event.
//! - `WEIR_BENCH_SECONDS` (default 3): how long each transform is measured.
//!
//! The event imitates what Firehose sends with a Kinesis source: ~3 MB (`TARGET_EVENT_BYTES`) of
//! records of ~200 bytes of JSON each, with record ids, arrival times and Kinesis metadata. Each
//! measurement prints one `BENCH key=value …` line (parsed by the script) and a readable summary on
//! stderr. One thread: figures are per core.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};
use weir_core::transform::envelope::{self, Invocation};
use weir_core::transform::{InputRecord, TransformSpec};

/// Firehose invokes the function with up to 3 MB of records (its Lambda buffer's maximum); this is
/// the size of the whole event, envelope included.
const TARGET_EVENT_BYTES: usize = 3_000_000;

fn main() {
    let seconds: f64 = std::env::var("WEIR_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let event = load_event();
    let invocation = envelope::decode_event(&event).expect("the event is valid");
    let records = invocation.records.len();
    let data_bytes: usize = invocation.records.iter().map(|r| r.data.len()).sum();
    eprintln!(
        "event: {} bytes, {records} records, {:.0} bytes of data per record",
        event.len(),
        data_bytes as f64 / records as f64
    );
    for (name, spec) in specs() {
        let transform = spec.build().expect("a valid transform");
        let response = envelope::invoke(&*transform, &event).expect("the invocation succeeds");
        let output = envelope::decode_response(&response).expect("a valid response");
        assert!(
            output.len() == records && output.iter().all(|r| r.result.as_str() == "Ok"),
            "{name}: every record must come back Ok"
        );
        let deadline = Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut invocations = 0u64;
        while invocations == 0 || start.elapsed() < deadline {
            black_box(envelope::invoke(&*transform, black_box(&event)).expect("the invocation succeeds"));
            invocations += 1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "BENCH kind=transform name={name} impl=rust seconds={elapsed:.6} invocations={invocations} \
             records={records} event_bytes={} data_bytes={data_bytes} response_bytes={}",
            event.len(),
            response.len()
        );
        eprintln!(
            "{name:>8} rust: {:>10.0} records/s, {:>7.1} MB/s of event, {:>6.2} ms per invocation",
            invocations as f64 * records as f64 / elapsed,
            invocations as f64 * event.len() as f64 / elapsed / 1e6,
            elapsed * 1e3 / invocations as f64
        );
    }
}

/// The transforms measured: the seed's `newline`, and `csv` with a few declared columns (one nested).
fn specs() -> Vec<(&'static str, TransformSpec)> {
    let csv = serde_json::json!({
        "kind": "csv",
        "columns": [
            {"name": "event_id", "type": "string"},
            {"name": "user_id", "pointer": "/user/id", "type": "integer"},
            {"name": "event", "type": "string"},
            {"name": "amount", "type": "float", "required": false},
            {"name": "ok", "type": "boolean"},
        ],
    });
    vec![
        ("newline", TransformSpec::default()),
        ("csv", serde_json::from_value(csv).expect("a csv spec")),
    ]
}

/// The event file named by `WEIR_BENCH_EVENT` (written first if missing), or a fresh event.
fn load_event() -> Vec<u8> {
    match std::env::var_os("WEIR_BENCH_EVENT") {
        Some(path) => {
            if let Ok(event) = std::fs::read(&path) {
                return event;
            }
            let event = generate_event();
            std::fs::write(&path, &event).expect("the event file is writable");
            event
        }
        None => generate_event(),
    }
}

/// A deterministic Firehose event of ~[`TARGET_EVENT_BYTES`].
fn generate_event() -> Vec<u8> {
    const FIRST_SEQUENCE: u128 = 49_546_986_683_135_544_286_507_457_936_321_625_675;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut invocation = Invocation {
        invocation_id: Cow::Borrowed("4a7b4b2c-7c5a-4c57-9d2e-2b0f8c1d5e6f"),
        delivery_stream_arn: Cow::Borrowed("arn:aws:firehose:us-east-1:123456789012:deliverystream/events"),
        source_kinesis_stream_arn: Some(Cow::Borrowed("arn:aws:kinesis:us-east-1:123456789012:stream/events")),
        region: Cow::Borrowed("us-east-1"),
        records: Vec::new(),
    };
    let mut size = envelope::encode_event(&invocation).len();
    while size < TARGET_EVENT_BYTES {
        let i = invocation.records.len();
        let sequence = FIRST_SEQUENCE + i as u128;
        let record = InputRecord {
            // Firehose's ids for a Kinesis source: the sequence number, zero-padded.
            record_id: Cow::Owned(format!("{sequence}{:020}", 0)),
            approximate_arrival_ms: 1_708_495_953_000 + i as i64,
            data: Cow::Owned(record(i, &mut rng).into_bytes()),
            shard_id: Cow::Borrowed("shardId-000000000000"),
            partition_key: Cow::Owned(format!("{:08x}", next(&mut rng) as u32)),
            sequence_number: Cow::Owned(sequence.to_string()),
        };
        let alone = Invocation {
            records: vec![record.clone()],
            ..Invocation::default()
        };
        // The record's share of the event: its JSON object and a comma.
        size += envelope::encode_event(&alone).len() - envelope::encode_event(&Invocation::default()).len() + 1;
        invocation.records.push(record);
    }
    envelope::encode_event(&invocation)
}

/// xorshift64*: deterministic and dependency-free.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// One ~200-byte JSON record of a web-analytics kind.
fn record(i: usize, rng: &mut u64) -> String {
    const EVENTS: [&str; 4] = ["page_view", "click", "add_to_cart", "purchase"];
    const COUNTRIES: [&str; 5] = ["DE", "US", "FR", "JP", "BR"];
    let r = next(rng);
    format!(
        r#"{{"event_id":"e-{i:010}","user":{{"id":{},"country":"{}"}},"event":"{}","amount":{}.{:02},"ok":{},"page":"/products/{}?ref=campaign-{}","ts":"2024-02-21T06:{:02}:{:02}.{:03}Z","ua":"Mozilla/5.0"}}"#,
        r % 1_000_000,
        COUNTRIES[(r >> 20) as usize % COUNTRIES.len()],
        EVENTS[(r >> 24) as usize % EVENTS.len()],
        (r >> 28) % 500,
        (r >> 37) % 100,
        (r >> 44).is_multiple_of(2),
        (r >> 45) % 100_000,
        (r >> 50) % 100,
        (i / 60) % 60,
        i % 60,
        (r >> 54) % 1000,
    )
}

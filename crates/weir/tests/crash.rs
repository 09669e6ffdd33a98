//! Exactly once under crashes: clients post records with unique ids while `weir up` is SIGKILLed at
//! random moments; at the end every acknowledged id is in exactly one object, and no id is in two.
//!
//! `WEIR_UP_CRASH_CYCLES` (default 20) sets the number of kills; `WEIR_UP_CRASH_SEED` replays a run.

mod common;

use common::{Weir, objects, try_http};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 2;

/// Posts NDJSON batches with fresh ids until told to stop; returns the acknowledged ids.
fn client(addr: std::net::SocketAddr, tag: String, stop: Arc<AtomicBool>, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let size = rng.random_range(1..60);
        let ids: Vec<String> = (0..size)
            .map(|_| {
                n += 1;
                format!("{tag}-{n}")
            })
            .collect();
        let body: String = ids
            .iter()
            .map(|id| format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}\n", "x".repeat(64)))
            .collect();
        // A connection refused or cut by the kill is simply not acknowledged.
        let headers = [("Content-Type", "application/x-ndjson")];
        match try_http(addr, "POST", "/v1/streams/events/records", &headers, body.as_bytes()) {
            Ok(response) if response.status == 200 => acked.extend(ids),
            Ok(response) => panic!(
                "unexpected status {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
            Err(_) => break,
        }
    }
    acked
}

#[test]
fn every_acknowledged_record_is_delivered_exactly_once_across_sigkills() {
    let cycles: u64 = std::env::var("WEIR_UP_CRASH_CYCLES").map_or(20, |v| v.parse().expect("cycles"));
    let seed: u64 = std::env::var("WEIR_UP_CRASH_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        },
        |v| v.parse().expect("seed"),
    );
    eprintln!("weir up crash test: {cycles} cycles, seed {seed} (rerun with WEIR_UP_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    // Short, varied buffering so kills land before, during and after object writes.
    let config = "[[streams]]\nname = \"events\"\nshards = 3\n\n[[deliveries]]\nname = \"events\"\nstream = \"events\"\nbuffer_interval = \"30ms\"\nbuffer_size = \"1MiB\"\n";
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for cycle in 0..cycles {
        let weir = Weir::start(dir.path(), config);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (addr, stop, tag, seed) = (weir.addr, stop.clone(), format!("c{cycle}x{c}"), rng.random());
                std::thread::spawn(move || client(addr, tag, stop, seed))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(30..400)));
        weir.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            acked.lock().expect("lock").extend(c.join().expect("client thread"));
        }
    }
    // A last clean run delivers everything still in the stream.
    let weir = Weir::start(dir.path(), config);
    let (status, output) = weir.stop();
    assert!(status.success(), "final shutdown failed: {output}");

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 500,
        "seed {seed}: only {} records were acknowledged; the test proves nothing",
        acked.len()
    );
    let mut seen: HashMap<String, String> = HashMap::new();
    for (key, lines) in objects(&dir.path().join("bucket")) {
        assert!(
            !key.rsplit('/').next().is_some_and(|n| n.starts_with('.')),
            "seed {seed}: temporary file {key} left"
        );
        for line in lines {
            let value: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            let id = value["id"].as_str().expect("id").to_owned();
            if let Some(first) = seen.insert(id.clone(), key.clone()) {
                panic!("seed {seed}: id {id} delivered twice: in {first} and in {key}");
            }
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: {} acknowledged ids never delivered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // The warehouse loaded every delivered record exactly once, across the same kills (delivery
    // replays announce batches twice; the loader must not load them twice).
    let out = common::weir_query(
        dir.path(),
        None,
        "json",
        "select count(*) as n, count(distinct record->>'id') as ids from events",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        counts,
        serde_json::json!([{"n": seen.len(), "ids": seen.len()}]),
        "seed {seed}: the warehouse holds each delivered record once"
    );
    let acked: HashSet<&String> = acked.iter().collect();
    eprintln!(
        "weir up crash test: {} acknowledged, {} delivered ({} unacknowledged but durable)",
        acked.len(),
        seen.len(),
        seen.len() - acked.len()
    );
}

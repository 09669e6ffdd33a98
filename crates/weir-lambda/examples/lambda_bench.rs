//! Measures a Lambda function through the runtime API, the way Lambda runs it: a local runtime API
//! (tests/support/runtime_api.rs), the function's process started with `AWS_LAMBDA_RUNTIME_API`
//! pointing at it. Used by scripts/bench-lambda.sh for weir's binaries and the seed's Python handlers
//! alike (any command that speaks the runtime API).
//!
//! ```text
//! lambda_bench cold <label> <event.json> <runs> -- <command…>
//!     per run: start the process, queue the event, stop at the first response:
//!     `BENCH kind=cold label=… ms=…` (process start → response received)
//! lambda_bench warm <label> <event.json> <records> <seconds> -- <command…>
//!     one process: one invocation to warm it, then the same event again and again for <seconds>:
//!     `BENCH kind=warm label=… invocations=… seconds=… records=…`
//! ```
//!
//! Every answer must be a response (not an invocation error); for API Gateway events, `statusCode` 200
//! or an empty (null) body.

// The tests use parts of it this example does not.
#[allow(dead_code)]
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use runtime_api::{Outcome, RuntimeApi, function_env};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(api: &RuntimeApi, label: &str, command: &[String]) -> Child {
    Command::new(&command[0])
        .args(&command[1..])
        .envs(function_env(api, label))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"))
}

fn check(label: &str, outcome: &Outcome) {
    let Outcome::Response(body) = outcome else {
        panic!("{label}: the function did not answer with a response: {outcome:?}");
    };
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(status) = value.get("statusCode")
    {
        assert_eq!(status, 200, "{label}: {value}");
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let split = args.iter().position(|a| a == "--").expect("`--` before the command");
    let (options, command) = (&args[1..split], &args[split + 1..]);
    assert!(!command.is_empty(), "a command after `--`");
    let event = std::fs::read(&options[2]).expect("read the event file");
    let label = &options[1];
    match options[0].as_str() {
        "cold" => {
            let runs: usize = options[3].parse().expect("runs");
            for _ in 0..runs {
                let mut api = RuntimeApi::start();
                let started = Instant::now();
                let child = spawn(&api, label, command);
                let (outcome, at) = api.invoke_timed(event.clone(), Duration::from_secs(60));
                check(label, &outcome);
                let ms = at.duration_since(started).as_secs_f64() * 1e3;
                stop(child);
                println!("BENCH kind=cold label={label} ms={ms:.3}");
            }
        }
        "warm" => {
            let records: u64 = options[3].parse().expect("records per event");
            let seconds: f64 = options[4].parse().expect("seconds");
            let mut api = RuntimeApi::start();
            let child = spawn(&api, label, command);
            check(label, &api.invoke(event.clone()));
            let started = Instant::now();
            let mut invocations = 0u64;
            while invocations == 0 || started.elapsed().as_secs_f64() < seconds {
                let outcome = api.invoke(event.clone());
                check(label, &outcome);
                invocations += 1;
            }
            let elapsed = started.elapsed().as_secs_f64();
            stop(child);
            println!(
                "BENCH kind=warm label={label} invocations={invocations} seconds={elapsed:.6} records={records} \
                 event_bytes={}",
                event.len()
            );
        }
        other => panic!("unknown mode {other}: cold or warm"),
    }
}

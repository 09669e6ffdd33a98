#!/usr/bin/env bash
# Installs what the tests need and runs every test: formatting, lints, unit, property, recovery,
# fault-injection and crash tests. CI runs exactly this (see .ci/run).
#
# Knobs (defaults are what CI runs):
#   WEIR_PROPTEST_CASES  cases of the stream's state-machine test (1000)
#   WEIR_CRASH_CYCLES    SIGKILL cycles of the crash test (20)
set -euo pipefail
cd "$(dirname "$0")/.."

# The routing test computes Kinesis shard routing independently with Python's hashlib.
if ! command -v python3 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3
  else
    echo "python3 is required by the tests; install it and rerun" >&2
    exit 1
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --doc --locked

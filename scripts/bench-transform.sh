#!/usr/bin/env bash
# Benchmarks the Firehose transforms and object encoders, per core, and prints Markdown tables for
# BENCHMARKS.md ("Firehose transforms and encoders").
#
# Per run, alternating, on the same ~3 MB Firehose event file (written once by the Rust bench, from a
# fixed seed, under target/tmp/bench-transform/):
#   1. crates/weir-core/benches/transform.rs: weir_core::transform::envelope::invoke for `newline` and
#      `csv`, raw event bytes in, response bytes out;
#   2. scripts/bench/transform_baseline.py: the seed's Python handler (newline) and a Python csv
#      equivalent, measured the same way (json.loads of the event to json.dumps of the response);
#   3. crates/weir-delivery/benches/encode.rs: encode_object on ~5 MiB of records for NDJSON + gzip,
#      CSV + zstd and Parquet (Snappy inside).
# Every cell is the median (min–max) over the runs; "× Python" is computed within each run.
#
# While measuring, the script holds /tmp/weir-bench.lock (other builds on the machine wait for it to
# go away) and first waits until no rustc is running. Knobs: WEIR_BENCH_RUNS (5), WEIR_BENCH_SECONDS
# (3, per measurement).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${WEIR_BENCH_RUNS:-5}
export WEIR_BENCH_SECONDS=${WEIR_BENCH_SECONDS:-3}
LOCK=/tmp/weir-bench.lock
PYTHON=${PYTHON:-python3}

# Build first (without the lock: building is what the lock pauses), and find the bench executables.
executable() { # <package> <bench>
  cargo bench --no-run --message-format=json -p "$1" --bench "$2" 2>/dev/null |
    "$PYTHON" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$2" | tail -1
}
TRANSFORM=$(executable weir-core transform)
ENCODE=$(executable weir-delivery encode)
[ -x "$TRANSFORM" ] && [ -x "$ENCODE" ] || { echo "building the benches failed" >&2; exit 1; }

WORK=target/tmp/bench-transform
mkdir -p "$WORK"
EVENT=$WORK/event.json
RESULTS=$WORK/results.txt
rm -f "$EVENT" "$RESULTS"

while [ -e "$LOCK" ]; do
  echo "waiting for $LOCK to go away…" >&2
  sleep 15
done
touch "$LOCK"
trap 'rm -f "$LOCK"' EXIT
for _ in $(seq 1 120); do
  pgrep -x rustc >/dev/null || break
  sleep 5
done
pgrep -x rustc >/dev/null && echo "warning: rustc still running; figures may be disturbed" >&2

for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS" >&2
  WEIR_BENCH_EVENT=$EVENT "$TRANSFORM" | sed "s/^BENCH /BENCH run=$run /" >>"$RESULTS"
  "$PYTHON" scripts/bench/transform_baseline.py "$EVENT" "$WEIR_BENCH_SECONDS" | sed "s/^BENCH /BENCH run=$run /" >>"$RESULTS"
  "$ENCODE" | sed "s/^BENCH /BENCH run=$run /" >>"$RESULTS"
done
rm -f "$LOCK"
trap - EXIT

"$PYTHON" - "$RESULTS" "$RUNS" <<'EOF'
import collections, statistics, sys

rows = []
for line in open(sys.argv[1]):
    if line.startswith("BENCH "):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        rows.append(fields)
runs = int(sys.argv[2])

def cell(values, fmt):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"

def num(x):
    return f"{x:,.0f}"

def mb(x):
    return f"{x:,.1f}"

def ms(x):
    return f"{x:,.2f}"

def times(x):
    return f"{x:.1f}×"

series = collections.defaultdict(list)
for r in rows:
    seconds, n = float(r["seconds"]), int(r["invocations"])
    series[(r["kind"], r["name"], r["impl"])].append((int(r["run"]), seconds, n, r))

def per_run(key, f):
    return {run: f(seconds, n, r) for run, seconds, n, r in series[key]}

event = next(r for r in rows if r["kind"] == "transform")
print(f"Event: {int(event['event_bytes']):,} bytes, {int(event['records']):,} records, "
      f"{int(event['data_bytes']) / int(event['records']):.0f} bytes of data per record. "
      f"Each cell: median (min–max) of {runs} runs.\n")
print("| Transform | Implementation | Records/s | Event MB/s | ms per invocation | × Python | Target |")
print("|---|---|---:|---:|---:|---:|---|")
targets = {"newline": 3.0, "csv": 10.0}
for name in ["newline", "csv"]:
    rust = per_run(("transform", name, "rust"), lambda s, n, r: n * int(r["records"]) / s)
    python = per_run(("transform", name, "python"), lambda s, n, r: n * int(r["records"]) / s)
    for impl, label in [("rust", "weir (`envelope::invoke`)"),
                        ("python", "seed's handler" if name == "newline" else "Python csv equivalent")]:
        key = ("transform", name, impl)
        rps = list(per_run(key, lambda s, n, r: n * int(r["records"]) / s).values())
        mbps = list(per_run(key, lambda s, n, r: n * int(r["event_bytes"]) / s / 1e6).values())
        msi = list(per_run(key, lambda s, n, r: s * 1e3 / n).values())
        ratio, target = "", ""
        if impl == "rust":
            ratios = [rust[run] / python[run] for run in rust if run in python]
            ratio = cell(ratios, times)
            met = statistics.median(ratios) >= targets[name]
            target = f"≥ {targets[name]:.0f}× {'✅' if met else '❌'}"
        print(f"| {name} | {label} | {cell(rps, num)} | {cell(mbps, mb)} | {cell(msi, ms)} | {ratio} | {target} |")

print()
print("| Encoding | Input MB/s | Records/s | Compression ratio | ms per object |")
print("|---|---:|---:|---:|---:|")
for name in ["ndjson+gzip", "csv+zstd", "parquet+snappy"]:
    key = ("encode", name, "rust")
    mbps = list(per_run(key, lambda s, n, r: n * int(r["input_bytes"]) / s / 1e6).values())
    rps = list(per_run(key, lambda s, n, r: n * int(r["records"]) / s).values())
    msi = list(per_run(key, lambda s, n, r: s * 1e3 / n).values())
    first = series[key][0][3]
    ratio = int(first["input_bytes"]) / int(first["output_bytes"])
    print(f"| {name} ({int(first['input_bytes']) / 1e6:.1f} MB in) | {cell(mbps, mb)} | {cell(rps, num)} | "
          f"{ratio:.2f} | {cell(msi, ms)} |")
EOF

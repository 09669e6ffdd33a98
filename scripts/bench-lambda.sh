#!/usr/bin/env bash
# Benchmarks weir's Lambda functions against the seed's Python handlers, both run the same way: as a
# process speaking the Lambda runtime API to a local emulator (crates/weir-lambda/examples/lambda_bench.rs,
# over tests/support/runtime_api.rs). Prints Markdown tables for BENCHMARKS.md ("The Lambda functions").
#
#   transform cold start: process start → first response received, on the 3-record fixture event
#                         (weir's `transform` binary vs the seed's handler under scripts/bench/python_runtime.py,
#                         boto3 imported as the seed does);
#   transform warm:       records/s on one warm process, a ~3 MB Firehose event (~200-byte records);
#   ingest:               records/s into kinesalite (tests/kinesis-server, on 127.0.0.1) per invocation size
#                         (1, 10, 100, 500 records per API Gateway event) vs the seed's ingest handler
#                         (one put_record per request, 1 record per event), both on the same kinesalite.
#
# Runs alternate weir and Python; each cell is the median (min–max) over runs. Knobs: WEIR_BENCH_RUNS (5),
# WEIR_BENCH_SECONDS (3, per warm measurement), WEIR_BENCH_COLD (10 cold starts per run). Needs node and
# kinesalite (scripts/test.sh installs it); makes .venv-bench with boto3. Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${WEIR_BENCH_RUNS:-5}
SECONDS_PER=${WEIR_BENCH_SECONDS:-3}
COLD=${WEIR_BENCH_COLD:-10}
WORK=target/tmp/bench-lambda
mkdir -p "$WORK"
source scripts/bench/lib.sh
trap cleanup EXIT

if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/python -c 'import boto3' 2>/dev/null ||
  .venv-bench/bin/python -m pip install --quiet --disable-pip-version-check boto3==1.44.5
PY=$PWD/.venv-bench/bin/python

cargo build --release -p weir-lambda --bins --example lambda_bench
TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$TARGET/release/examples/lambda_bench

# kinesalite and its proxy (the proxy is not used here: no faults).
node tests/kinesis-server/server.js --detached </dev/null >"$WORK/kinesis.ports" &
PIDS+=("$!")
for _ in $(seq 100); do [ -s "$WORK/kinesis.ports" ] && break; sleep 0.05; done
PORT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["kinesalite"])' "$WORK/kinesis.ports")
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true
export RUST_LOG=warn

"$PY" - "$WORK" <<'EOF'
import base64, json, random, sys, time, boto3
work = sys.argv[1]
kinesis = boto3.client('kinesis')
for name in ['events', 'hellotesting']:
    kinesis.create_stream(StreamName=name, ShardCount=4)
for name in ['events', 'hellotesting']:
    while kinesis.describe_stream_summary(StreamName=name)['StreamDescriptionSummary']['StreamStatus'] != 'ACTIVE':
        time.sleep(0.05)
rng = random.Random(7)
def record(i):
    obj = {"event_id": f"e{i:08d}", "user": {"id": rng.randrange(100000), "plan": rng.choice(["free", "pro"])},
           "event": rng.choice(["view", "click", "signup"]), "amount": round(rng.random() * 100, 2), "ok": True,
           "page": "/products/" + str(rng.randrange(1000)), "ts": 1795515300000 + i}
    text = json.dumps(obj, separators=(",", ":"))
    return text + " " * max(0, 200 - len(text))
# ~3 MB Firehose event (Firehose's largest processor buffer).
records, size, i = [], 0, 0
while size < 3_000_000:
    data = base64.b64encode(record(i).encode()).decode()
    r = {"recordId": f"{49546986683135544286507457936321625675700192471156785154 + i}000000000000000000000000000000",
         "approximateArrivalTimestamp": 1795515300000 + i, "data": data,
         "kinesisRecordMetadata": {"shardId": "shardId-000000000000", "partitionKey": f"k{i}",
           "approximateArrivalTimestamp": 1795515300000 + i,
           "sequenceNumber": str(49546986683135544286507457936321625675700192471156785154 + i), "subsequenceNumber": 0}}
    records.append(r); size += len(json.dumps(r)); i += 1
event = {"invocationId": "bench", "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/events",
         "sourceKinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/events", "region": "us-east-1",
         "records": records}
json.dump(event, open(f"{work}/firehose-3mb.json", "w"))
open(f"{work}/firehose-3mb.records", "w").write(str(len(records)))
# API Gateway (payload 2.0) events of 1, 10, 100 and 500 NDJSON records.
base = json.load(open("crates/weir-lambda/tests/fixtures/apigw-v2-http-api.json"))
for n in [1, 10, 100, 500]:
    e = dict(base)
    e["headers"] = dict(base["headers"], **{"content-type": "application/x-ndjson"})
    e["body"] = "\n".join(record(j).rstrip() for j in range(n))
    json.dump(e, open(f"{work}/apigw-{n}.json", "w"))
EOF
FIXTURE=crates/weir-lambda/tests/fixtures/firehose-kinesis-source.json
BIG=$WORK/firehose-3mb.json
BIG_RECORDS=$(cat "$WORK/firehose-3mb.records")
RESULTS=$WORK/results.txt
rm -f "$RESULTS"
RUST_TRANSFORM=("$TARGET/release/transform")
PY_TRANSFORM=("$PY" scripts/bench/python_runtime.py scripts/bench/seed/seed_transform.py)
RUST_INGEST=(env WEIR_STREAM_NAME=events "$TARGET/release/ingest")
PY_INGEST=("$PY" scripts/bench/python_runtime.py scripts/bench/seed/seed_ingest.py)

# Measure on a quiet machine: wait (up to 30 min) until no compiler runs, as scripts/bench-transform.sh does.
for _ in $(seq 1 360); do
  pgrep -x 'rustc|cc1plus|cc1' >/dev/null || break
  sleep 5
done
pgrep -x 'rustc|cc1plus|cc1' >/dev/null && echo "warning: a compiler is still running; figures may be disturbed" >&2

for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS" >&2
  {
    "$BENCH" cold weir "$FIXTURE" "$COLD" -- "${RUST_TRANSFORM[@]}"
    "$BENCH" cold seed "$FIXTURE" "$COLD" -- "${PY_TRANSFORM[@]}"
    "$BENCH" warm weir "$BIG" "$BIG_RECORDS" "$SECONDS_PER" -- "${RUST_TRANSFORM[@]}"
    "$BENCH" warm seed "$BIG" "$BIG_RECORDS" "$SECONDS_PER" -- "${PY_TRANSFORM[@]}"
    for n in 1 10 100 500; do
      "$BENCH" warm "ingest-weir-$n" "$WORK/apigw-$n.json" "$n" "$SECONDS_PER" -- "${RUST_INGEST[@]}"
    done
    "$BENCH" warm ingest-seed-1 "$WORK/apigw-1.json" 1 "$SECONDS_PER" -- "${PY_INGEST[@]}"
  } | sed "s/^BENCH /BENCH run=$run /" >>"$RESULTS"
done

"$PY" - "$RESULTS" "$RUNS" "$COLD" <<'EOF'
import collections, statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1]) if line.startswith("BENCH ")]
runs, cold = int(sys.argv[2]), int(sys.argv[3])
def cell(values, fmt):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"
num = lambda x: f"{x:,.0f}"
ms = lambda x: f"{x:,.1f}"
times = lambda x: f"{x:,.1f}×"
# Cold: the median of each run's cold starts, then the median (min–max) of those over runs.
per_run = collections.defaultdict(lambda: collections.defaultdict(list))
for r in rows:
    if r["kind"] == "cold":
        per_run[r["label"]][r["run"]].append(float(r["ms"]))
cold_ms = {label: {run: statistics.median(v) for run, v in by_run.items()} for label, by_run in per_run.items()}
ratio = [cold_ms["seed"][run] / cold_ms["weir"][run] for run in cold_ms["weir"]]
print(f"Cold start, ms from process start to the first response (median of {cold} starts per run; median (min–max) over {runs} runs):\n")
print("| Function | Cold start, ms | Python ÷ weir | Targets |")
print("|---|---:|---:|---|")
w = statistics.median(cold_ms["weir"].values())
print(f"| weir `transform` | {cell(list(cold_ms['weir'].values()), ms)} | {cell(ratio, times)} | ≤ 20 ms {'✅' if w <= 20 else '❌'}; ≥ 10× faster {'✅' if statistics.median(ratio) >= 10 else '❌'} |")
print(f"| seed's transform handler (Python, boto3 imported) | {cell(list(cold_ms['seed'].values()), ms)} | | |")
warm = collections.defaultdict(dict)
for r in rows:
    if r["kind"] == "warm":
        warm[r["label"]][r["run"]] = int(r["invocations"]) * int(r["records"]) / float(r["seconds"])
big = next(r for r in rows if r["kind"] == "warm" and r["label"] == "weir")
print(f"\nWarm, one process, the same Firehose event again and again ({int(big['event_bytes']):,} bytes, {int(big['records']):,} records):\n")
print("| Function | Records/s | × Python |")
print("|---|---:|---:|")
r = [warm["weir"][run] / warm["seed"][run] for run in warm["weir"]]
print(f"| weir `transform` (newline) | {cell(list(warm['weir'].values()), num)} | {cell(r, times)} |")
print(f"| seed's transform handler | {cell(list(warm['seed'].values()), num)} | |")
print("\nIngest into kinesalite, one warm process, records/s by records per invocation:\n")
print("| Function | Records per invocation | Records/s | × seed |")
print("|---|---:|---:|---:|")
for n in [1, 10, 100, 500]:
    label = f"ingest-weir-{n}"
    r = [warm[label][run] / warm["ingest-seed-1"][run] for run in warm[label]]
    print(f"| weir `ingest` | {n} | {cell(list(warm[label].values()), num)} | {cell(r, times)} |")
print(f"| seed's ingest handler (one put_record) | 1 | {cell(list(warm['ingest-seed-1'].values()), num)} | |")
EOF

#!/usr/bin/env bash
# The warehouse's benchmark (issue: the Snowpipe stage), figures for BENCHMARKS.md:
#  1. load throughput (rows/s) for NDJSON, CSV and Parquet objects of ~5 MiB, against DuckDB loading the
#     same files with its own read_* functions in the same run (the ceiling; target ≥ 70 %);
#  2. object written → rows visible at a steady 10,000 records/s into `weir up` (release build), from
#     weir.load_history after the run.
# Usage: scripts/bench-warehouse.sh [RUNS] [SECONDS]   (defaults 5 runs, 60 s of steady load)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
SECONDS_OF_LOAD=${2:-60}
WORK=$(mktemp -d)
source scripts/bench/lib.sh
trap 'cleanup; rm -rf "$WORK"' EXIT

release_build
LOAD=$(bench_executable load)
[ -x "$LOAD" ] || { echo "building the load bench failed" >&2; exit 1; }
echo "== 1. load throughput ($LOAD --bench $RUNS 8)"
"$LOAD" --bench "$RUNS" 8

echo "== 2. lag at 10,000 records/s for ${SECONDS_OF_LOAD}s"
WEIR=${CARGO_TARGET_DIR:-target}/release/weir
cat >"$WORK/weir.toml" <<TOML
[[streams]]
name = "events"
shards = 4

[[deliveries]]
name = "events"
stream = "events"
buffer_interval = "1s"
TOML
start "$WORK/up.log" "$WEIR" up --config "$WORK/weir.toml" --data-dir "$WORK/data" --listen 127.0.0.1:0
UP_PID=$STARTED_PID
"$WEIR" send --url "http://$STARTED_ADDR" --template '{"id":"{{uuid}}","user_id":{{int 1 100000}},"event":"signup","pad":"{{string 120}}"}' \
  --rate 10000 --duration "${SECONDS_OF_LOAD}s" -b 100 -c 4 --quiet || true
sleep 3
kill -TERM "$UP_PID"
wait "$UP_PID" || true
"$WEIR" query --data-dir "$WORK/data" --config "$WORK/weir.toml" --url http://127.0.0.1:1 "
  select count(*) as objects, sum(rows_loaded) as rows,
         round(median(epoch_ms(loaded_at) - epoch_ms(written_at))) as lag_p50_ms,
         round(quantile_cont(epoch_ms(loaded_at) - epoch_ms(written_at), 0.95)) as lag_p95_ms,
         max(epoch_ms(loaded_at) - epoch_ms(written_at)) as lag_max_ms
  from weir.load_history"

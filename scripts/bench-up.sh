#!/usr/bin/env bash
# Benchmarks `weir up` over HTTP on 127.0.0.1, against a ceiling measured in the same run: a trivial
# axum handler (crates/weir-gateway/examples/trivial_server.rs) that drains the body and answers 200 {}.
#
# Scenarios, per run, on one fresh `weir up` process (data in a fresh directory under target/tmp):
#   (c) ack → object visible: crates/weir/examples/ack_to_object.rs, single-record probes under a
#       background load of single-record POSTs (WEIR_BENCH_BACKGROUND records/s; 0 = idle);
#   (a) single-record POSTs (200-byte JSON object): wrk, 64 connections, trivial handler then weir;
#   (b) NDJSON bodies of 500 records of 200 bytes: wrk, 64 connections, trivial handler then weir;
#   (d) the weir process's peak RSS (VmHWM) after each scenario.
# Scenario (c) comes first so it does not queue behind (b)'s backlog; after every weir scenario the
# script waits until delivery has written every acknowledged record to the bucket, and after (b) it
# reports how long that took. weir's config: stream `events` (4 shards, fsync before every ack) and
# delivery `events` with buffer_size 1 MiB and buffer_interval 1 s in every scenario.
#
# wrk, the clients and the servers share the machine's cores. Only processes this script started are
# stopped, by PID. Knobs: WEIR_BENCH_RUNS (3), WEIR_BENCH_SECONDS (10, per wrk run),
# WEIR_BENCH_SAMPLES (250, probes per run of (c)), WEIR_BENCH_BACKGROUND (300 records/s),
# WEIR_BENCH_WAREHOUSE (false: the DuckDB loader off).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${WEIR_BENCH_RUNS:-3}
SECONDS_PER_RUN=${WEIR_BENCH_SECONDS:-10}
SAMPLES=${WEIR_BENCH_SAMPLES:-250}
BACKGROUND=${WEIR_BENCH_BACKGROUND:-300}
INTERVAL_MS=1000
# The issue measures HTTP → stream → delivery → bucket; the DuckDB loader (on by default in weir up) is
# off unless WEIR_BENCH_WAREHOUSE=true.
WAREHOUSE=${WEIR_BENCH_WAREHOUSE:-false}
RECORD_BYTES=200 # every record the clients send; each is one line of RECORD_BYTES + 1 in an object
WRK=(wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --latency)

command -v wrk >/dev/null || { echo "wrk is required (Debian: apt-get install -y wrk)" >&2; exit 1; }
source scripts/bench/lib.sh
trap cleanup EXIT
release_build
WEIR=target/release/weir
TRIVIAL=target/release/examples/trivial_server
ACK_TO_OBJECT=target/release/examples/ack_to_object

mkdir -p target/tmp
WORK=$(mktemp -d "$PWD/target/tmp/bench-up.XXXXXX")
if [ "$(df --output=source "$WORK" | tail -1)" != "$(df --output=source . | tail -1)" ]; then
  echo "warning: $WORK is not on the repository's disk" >&2
fi

# stop <pid>: SIGTERM (weir delivers what is buffered), SIGKILL after 60 s.
stop() {
  kill -TERM "$1"
  for _ in $(seq 600); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1"
  wait "$1" || true
}

hwm_mib() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# Bytes of delivered objects (temporary `.name.tmp` files excluded).
bucket_bytes() { find "$1" -type f ! -name '.*' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# wait_delivered <bucket> <records>: waits until the objects hold at least <records> lines and have
# stopped growing for longer than the buffer interval (wrk's last in-flight requests are stored too,
# though not counted); prints how many seconds after the call the bucket last grew, or "timeout"
# after 300 s.
wait_delivered() {
  local want=$(($2 * (RECORD_BYTES + 1))) start now changed bytes last=-1
  start=$(date +%s.%N)
  changed=$start
  while :; do
    now=$(date +%s.%N)
    bytes=$(bucket_bytes "$1")
    if [ "$bytes" != "$last" ]; then
      last=$bytes
      changed=$now
    fi
    if [ "$bytes" -ge "$want" ] && awk -v a="$changed" -v b="$now" -v i="$INTERVAL_MS" 'BEGIN { exit !(b - a > i / 1000 + 0.3) }'; then
      awk -v a="$start" -v b="$changed" 'BEGIN { printf "%.1f\n", b - a }'
      return
    fi
    if awk -v a="$start" -v b="$now" 'BEGIN { exit !(b - a > 300) }'; then
      echo timeout
      return
    fi
    sleep 0.1
  done
}

write_wrk_scripts "$WORK"

# Converts wrk's latency ("812.00us", "1.25ms", "1.02s") to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.2f\n", n }'; }

# bench <name> <addr> <lua> <records per request>: runs wrk and appends its figures to $WORK/r.<name>.*
bench() {
  local name=$1 addr=$2 lua=$3 per=$4 out="$WORK/wrk.$1.$run.txt"
  "${WRK[@]}" -s "$lua" "http://$addr/v1/streams/events/records" >"$out"
  local requests seconds bad errors
  requests=$(awk '/requests in/ { print $1 }' "$out")
  seconds=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' "$out")
  bad=$(awk '/Non-2xx/ { print $NF }' "$out")
  errors=$(awk '/Socket errors/' "$out")
  [ -n "$bad" ] && echo "  $name: $bad non-2xx responses (not counted)" >&2
  [ -n "$errors" ] && echo "  $name: $errors" >&2
  local ok=$((requests - ${bad:-0}))
  awk -v n="$ok" -v s="$seconds" 'BEGIN { printf "%.0f\n", n / s }' >>"$WORK/r.$name.rps"
  awk -v n="$ok" -v s="$seconds" -v p="$per" 'BEGIN { printf "%.0f\n", n * p / s }' >>"$WORK/r.$name.eps"
  awk -v n="$ok" -v s="$seconds" -v p="$per" -v b="$RECORD_BYTES" 'BEGIN { printf "%.1f\n", n * p * b / s / 1e6 }' >>"$WORK/r.$name.mbps"
  to_ms "$(awk '$1 == "50%" { print $2 }' "$out")" >>"$WORK/r.$name.p50"
  to_ms "$(awk '$1 == "99%" { print $2 }' "$out")" >>"$WORK/r.$name.p99"
  if [[ $name == *.weir ]]; then ACKED=$((ACKED + ok * per)); fi
  echo "  $name: $(tail -1 "$WORK/r.$name.rps") requests/s, $(tail -1 "$WORK/r.$name.eps") records/s, p50 $(tail -1 "$WORK/r.$name.p50") ms, p99 $(tail -1 "$WORK/r.$name.p99") ms" >&2
}

record() { echo "$2" >>"$WORK/r.$1"; }

echo "bench-up: $RUNS run(s), wrk ${SECONDS_PER_RUN}s, $SAMPLES probes at ${BACKGROUND} records/s background; work dir $WORK" >&2
for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  data="$WORK/run$run"
  mkdir -p "$data"
  cat >"$data/weir.toml" <<EOF
data_dir = "$data/weir-data"
listen = "127.0.0.1:0"

[[streams]]
name = "events"
shards = 4
sync = "always"

[[deliveries]]
name = "events"
stream = "events"
buffer_size = "1MiB"
buffer_interval = "${INTERVAL_MS}ms"

[warehouse]
enabled = $WAREHOUSE
EOF
  start "$data/weir.log" "$WEIR" up --config "$data/weir.toml"
  weir_pid=$STARTED_PID weir_addr=$STARTED_ADDR
  start "$data/trivial.log" "$TRIVIAL" 0
  trivial_pid=$STARTED_PID trivial_addr=$STARTED_ADDR
  bucket="$data/weir-data/bucket"
  ACKED=0

  "$ACK_TO_OBJECT" "$weir_addr" "$bucket" "$SAMPLES" "$BACKGROUND" >"$data/ack_to_object.txt"
  result=$(grep '^RESULT' "$data/ack_to_object.txt")
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
  record c.p50 "$(field p50_ms)"
  record c.p99 "$(field p99_ms)"
  record c.max "$(field max_ms)"
  record c.bg "$(field background_rps)"
  ACKED=$((ACKED + $(field samples) + $(field background_sent)))
  echo "  c: p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, max $(field max_ms) ms, background $(field background_rps) records/s" >&2
  wait_delivered "$bucket" "$ACKED" >/dev/null
  record d.c "$(hwm_mib "$weir_pid")"

  bench a.trivial "$trivial_addr" "$WORK/single.lua" 1
  bench a.weir "$weir_addr" "$WORK/single.lua" 1
  record a.catchup "$(wait_delivered "$bucket" "$ACKED")"
  record d.a "$(hwm_mib "$weir_pid")"

  bench b.trivial "$trivial_addr" "$WORK/ndjson.lua" 500
  bench b.weir "$weir_addr" "$WORK/ndjson.lua" 500
  record d.b "$(hwm_mib "$weir_pid")"
  record b.catchup "$(wait_delivered "$bucket" "$ACKED")"
  record d.end "$(hwm_mib "$weir_pid")"
  record d.trivial "$(hwm_mib "$trivial_pid")"
  echo "  delivery caught up $(tail -1 "$WORK/r.a.catchup") s after (a), $(tail -1 "$WORK/r.b.catchup") s after (b); weir VmHWM $(tail -1 "$WORK/r.d.end") MiB" >&2

  stop "$weir_pid"
  stop "$trivial_pid"
  lines=$(find "$bucket" -type f ! -name '.*' -exec cat {} + | wc -l)
  echo "  bucket after shutdown: $lines records in objects, $ACKED acknowledged" >&2
  [ "$lines" -ge "$ACKED" ] || { echo "acknowledged records are missing from the bucket" >&2; exit 1; }
  rm -rf "$data/weir-data"
done

# ratio <a> <b>: the per-run ratios a/b, as "median% (min%–max%)".
ratio() {
  paste "$WORK/r.$1" "$WORK/r.$2" | awk '{ print 100 * $1 / $2 }' >"$WORK/r.ratio"
  stat ratio 0 %
}

peak=$(cat "$WORK"/r.d.{c,a,b,end} | sort -g | tail -1)
paste "$WORK/r.a.weir.rps" "$WORK/r.a.trivial.rps" | awk '{ print 100 * $1 / $2 }' >"$WORK/r.a.ratio"
a_ratio=$(median a.ratio)
cat <<EOF

Date: $(date -u +%Y-%m-%d). Machine: nproc = $(nproc), $(uname -sr), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'); commit $(git rev-parse --short HEAD)$([ -z "$(git status --porcelain)" ] || echo " (working tree with uncommitted changes)").
Each cell: median (min–max) of $RUNS run(s). wrk: \`${WRK[*]}\`. MB = 10^6 bytes of record data (200 bytes per record).

| Scenario | weir | Trivial handler (ceiling) | weir / ceiling | Target |
|---|---:|---:|---:|---|
| (a) 1 record per POST: requests/s | $(stat a.weir.rps) | $(stat a.trivial.rps) | $(ratio a.weir.rps a.trivial.rps) | ≥ 50% of ceiling $(check "$a_ratio" '>=' 50) |
| (a) latency p50, ms | $(stat a.weir.p50 2) | $(stat a.trivial.p50 2) | | |
| (a) latency p99, ms | $(stat a.weir.p99 2) | $(stat a.trivial.p99 2) | | |
| (a) delivery caught up, s after wrk ended | $(stat a.catchup 1) | | | |
| (b) NDJSON, 500 records per POST: events/s | $(stat b.weir.eps) | $(stat b.trivial.eps) | $(ratio b.weir.eps b.trivial.eps) | ≥ 1,000,000 events/s $(check "$(median b.weir.eps)" '>=' 1000000) |
| (b) record data, MB/s | $(stat b.weir.mbps 1) | $(stat b.trivial.mbps 1) | | |
| (b) latency per POST p50 / p99, ms | $(stat b.weir.p50 1) / $(stat b.weir.p99 1) | $(stat b.trivial.p50 1) / $(stat b.trivial.p99 1) | | |
| (b) delivery caught up, s after wrk ended | $(stat b.catchup 1) | | | |
| (c) ack → object visible p50, ms | $(stat c.p50 1) | | | |
| (c) ack → object visible p99, ms | $(stat c.p99 1) | | | ≤ interval + 250 ms = $((INTERVAL_MS + 250)) ms $(check "$(median c.p99)" '<=' $((INTERVAL_MS + 250))) |
| (c) ack → object visible max, ms | $(stat c.max 1) | | | |
| (c) background load, records/s | $(stat c.bg) | | | |
| (d) VmHWM after (c), MiB | $(stat d.c 1) | | | |
| (d) VmHWM after (a), MiB | $(stat d.a 1) | | | |
| (d) VmHWM after (b), MiB | $(stat d.b 1) | | | |
| (d) VmHWM after delivery caught up, MiB | $(stat d.end 1) | $(stat d.trivial 1) | | ≤ 300 MiB (peak $peak) $(check "$peak" '<=' 300) |
EOF

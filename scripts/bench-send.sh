#!/usr/bin/env bash
# Benchmarks `weir send` as a load generator: against the trivial axum handler
# (crates/weir-gateway/examples/trivial_server.rs, which drains the body and answers 200 {}), as fast as
# possible over 64 keep-alive connections, next to wrk on the same server in the same run:
#   (a) one 200-byte record per request (`application/json`), wrk with scripts/bench-up.sh's single.lua;
#   (b) 500 records of 200 bytes per request (NDJSON, 100 KB), wrk with bench-up.sh's ndjson.lua;
# each for weir send from a file (bodies encoded once, the same bytes wrk sends) and from a template
# (every record rendered per request: `{{seq}}` and `{{int}}` generators).
# weir send runs with `--ack status`: the trivial handler answers `{}`, not weir's PutRecords reply.
#
# Targets (issue #7): weir send's records/s ≥ 2× what `weir up` reaches in BENCHMARKS.md's (a) and (b),
# and within 10 % of wrk's figure in the same run. wrk, weir send and the server share the machine's
# cores. Only processes this script started are stopped, by PID.
#
# Knobs: WEIR_BENCH_RUNS (3), WEIR_BENCH_SECONDS (10 per measurement), WEIR_BENCH_UP_A (requests/s of
# weir up in (a)) and WEIR_BENCH_UP_B (records/s of weir up in (b)), whose defaults are the latest
# figures in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${WEIR_BENCH_RUNS:-3}
SECS=${WEIR_BENCH_SECONDS:-10}
UP_A=${WEIR_BENCH_UP_A:-65358}
UP_B=${WEIR_BENCH_UP_B:-867030}
CONNECTIONS=64
WRK=(wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" --latency)

command -v wrk >/dev/null || { echo "wrk is required (Debian: apt-get install -y wrk)" >&2; exit 1; }

source scripts/bench/lib.sh
trap cleanup EXIT
release_build
WEIR=target/release/weir
TRIVIAL=target/release/examples/trivial_server

mkdir -p target/tmp
WORK=$(mktemp -d "$PWD/target/tmp/bench-send.XXXXXX")

# The records both tools send: bench-up.sh's Lua bodies, and the same records as files for weir send.
write_wrk_scripts "$WORK"
pad() { head -c "$1" /dev/zero | tr '\0' x; }
head='{"user_id":42,"event":"signup","pad":"'
echo "$head$(pad $((200 - ${#head} - 2)))\"}" >"$WORK/single.ndjson"
for i in $(seq 500); do
  head="{\"user_id\":$i,\"event\":\"batch\",\"pad\":\""
  echo "$head$(pad $((200 - ${#head} - 2)))\"}"
done >"$WORK/batch.ndjson"
# 200-byte records when rendered: {"user_id":<0..999>,"event":"signup","seq":<n>,"pad":"x…"} (±6 bytes).
TEMPLATE="{\"user_id\":{{int 0 999}},\"event\":\"signup\",\"seq\":{{seq}},\"pad\":\"$(pad 140)\"}"
for f in single batch; do
  awk -v f="$f" 'length($0) != 200 { print f ": a record is not 200 bytes"; exit 1 }' "$WORK/$f.ndjson"
done


# wrk_run <name> <lua> <records per request>: records/s (and requests/s) into $WORK/r.<name>.*
wrk_run() {
  local out="$WORK/wrk.$1.$run.txt"
  "${WRK[@]}" -s "$WORK/$2" "http://$ADDR/v1/streams/events/records" >"$out"
  local requests seconds
  requests=$(awk '/requests in/ { print $1 }' "$out")
  seconds=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' "$out")
  if grep -q 'Non-2xx\|Socket errors' "$out"; then grep 'Non-2xx\|Socket errors' "$out" >&2; fi
  awk -v n="$requests" -v s="$seconds" -v p="$3" 'BEGIN { printf "%.0f\n", n * p / s }' >>"$WORK/r.$1.rps"
  echo "  $1: $(tail -1 "$WORK/r.$1.rps") records/s" >&2
}

# send_run <name> <weir send args…>: records/s, MB/s and latency from its JSON summary.
send_run() {
  local name=$1 out="$WORK/send.$1.$run.json"
  shift
  "$WEIR" send --url "http://$ADDR" --connections "$CONNECTIONS" --ack status --output json --quiet \
    --duration "${SECS}s" "$@" >"$out"
  python3 - "$out" "$WORK/r.$name" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["records_failed"] == 0 and s["connection_errors"] == 0, s
for key, value in [("rps", s["records_per_s"]), ("mbps", s["mb_per_s"]), ("p50", s["latency_ms"]["p50"]),
                   ("p99", s["latency_ms"]["p99"])]:
    with open(f"{sys.argv[2]}.{key}", "a") as f:
        f.write(f"{value}\n")
EOF
  echo "  $name: $(tail -1 "$WORK/r.$name.rps" | cut -d. -f1) records/s, p50 $(tail -1 "$WORK/r.$name.p50") ms" >&2
}

echo "bench-send: $RUNS run(s) of ${SECS}s per measurement; work dir $WORK" >&2
for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  start "$WORK/trivial.$run.log" "$TRIVIAL" 0
  trivial_pid=$STARTED_PID ADDR=$STARTED_ADDR
  # wrk first in odd runs, weir send first in even runs: neither always gets the warmer (or the
  # noisier) slot.
  if [ $((run % 2)) = 1 ]; then wrk_run a.wrk single.lua 1; fi
  send_run a.file "$WORK/single.ndjson" --repeat 0 --batch-size 1
  send_run a.template --template "$TEMPLATE" --batch-size 1
  if [ $((run % 2)) = 0 ]; then wrk_run a.wrk single.lua 1; fi
  if [ $((run % 2)) = 1 ]; then wrk_run b.wrk ndjson.lua 500; fi
  send_run b.file "$WORK/batch.ndjson" --repeat 0 --batch-size 500
  send_run b.template --template "$TEMPLATE" --batch-size 500
  if [ $((run % 2)) = 0 ]; then wrk_run b.wrk ndjson.lua 500; fi
  kill -TERM "$trivial_pid"
  wait "$trivial_pid" 2>/dev/null || true
done

# vs_wrk <name> <wrk name>: the per-run ratio weir send / wrk, "median% (min%–max%)".
vs_wrk() {
  paste "$WORK/r.$1.rps" "$WORK/r.$2.rps" | awk '{ print 100 * $1 / $2 }' >"$WORK/r.ratio.$1"
  stat "ratio.$1" 0 %
}
thousands() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } print s r }'; }
agree() {
  local r
  r=$(paste "$WORK/r.$1.rps" "$WORK/r.$2.rps" | awk '{ print 100 * $1 / $2 }' | sort -g | awk '{ v[NR] = $1 } END { print v[(NR + 1) / 2] }')
  check "$(awk -v r="$r" 'BEGIN { print (r > 100 ? r - 100 : 100 - r) }')" '<=' 10
}

cat <<EOF

Date: $(date -u +%Y-%m-%d). Machine: nproc = $(nproc), $(uname -sr), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'); commit $(git rev-parse --short HEAD)$([ -z "$(git status --porcelain)" ] || echo " (working tree with uncommitted changes)").
Build: \`${RELEASE_BUILD[*]}\`. Server: \`$TRIVIAL 0\` (one per run).
wrk: \`${WRK[*]} -s single.lua|ndjson.lua http://ADDR/v1/streams/events/records\`.
weir send: \`$WEIR send --url http://ADDR --connections $CONNECTIONS --ack status --output json --quiet --duration ${SECS}s\` plus
  (a) file: \`single.ndjson --repeat 0 --batch-size 1\`; template: \`--template '$TEMPLATE' --batch-size 1\`;
  (b) file: \`batch.ndjson --repeat 0 --batch-size 500\`; template: the same template with \`--batch-size 500\`.
Each cell: median (min–max) of $RUNS run(s); records of 200 bytes; MB = 10^6 bytes of record data.

| Scenario | Records/s | MB/s | Latency p50 / p99, ms | / wrk (same run) | Target |
|---|---:|---:|---:|---:|---|
| (a) wrk, 1 record per request | $(stat a.wrk.rps) | | | | |
| (a) weir send, file | $(stat a.file.rps) | $(stat a.file.mbps 1) | $(stat a.file.p50 2) / $(stat a.file.p99 2) | $(vs_wrk a.file a.wrk) | ≥ 2 × $(thousands "$UP_A") = $(thousands $((2 * UP_A))) $(check "$(median a.file.rps)" '>=' $((2 * UP_A))); ±10 % of wrk $(agree a.file a.wrk) |
| (a) weir send, template | $(stat a.template.rps) | $(stat a.template.mbps 1) | $(stat a.template.p50 2) / $(stat a.template.p99 2) | $(vs_wrk a.template a.wrk) | ≥ 2 × $(thousands "$UP_A") = $(thousands $((2 * UP_A))) $(check "$(median a.template.rps)" '>=' $((2 * UP_A))) |
| (b) wrk, 500 records per request | $(stat b.wrk.rps) | | | | |
| (b) weir send, file | $(stat b.file.rps) | $(stat b.file.mbps 1) | $(stat b.file.p50 2) / $(stat b.file.p99 2) | $(vs_wrk b.file b.wrk) | ≥ 2 × $(thousands "$UP_B") = $(thousands $((2 * UP_B))) $(check "$(median b.file.rps)" '>=' $((2 * UP_B))); ±10 % of wrk $(agree b.file b.wrk) |
| (b) weir send, template | $(stat b.template.rps) | $(stat b.template.mbps 1) | $(stat b.template.p50 2) / $(stat b.template.p99 2) | $(vs_wrk b.template b.wrk) | ≥ 2 × $(thousands "$UP_B") = $(thousands $((2 * UP_B))) $(check "$(median b.template.rps)" '>=' $((2 * UP_B))) |
EOF

# Shared by scripts/bench-up.sh, bench-send.sh and bench-warehouse.sh (sourced, after `cd` to the
# repository): the release build, the servers they start (stopped by PID on exit), wrk's request
# bodies, and the figures' statistics. Callers `trap cleanup EXIT`.

# The one release build every benchmark of the running pipeline uses: binaries, examples and benches
# of the whole workspace but the Lambda functions, in a single cargo invocation. Cargo compiles
# DuckDB's C++ (weir-warehouse) once per feature resolution, about 30 minutes on 2 cores, so every
# script asks for the same resolution.
RELEASE_BUILD=(cargo build --release --workspace --exclude weir-lambda --bins --examples --benches)
release_build() {
  "${RELEASE_BUILD[@]}"
}

# bench_executable <bench target>: the path of a bench executable from the release build.
bench_executable() {
  "${RELEASE_BUILD[@]}" --message-format=json 2>/dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1" | tail -1
}

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# start <log> <command…>: starts a server in the background, waits for its `listening on
# http://<addr>` line, and sets STARTED_PID and STARTED_ADDR.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  for _ in $(seq 200); do
    STARTED_ADDR=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$log" | head -1)
    [ -n "$STARTED_ADDR" ] && return 0
    kill -0 "$STARTED_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start: $*" >&2
  cat "$log" >&2
  exit 1
}

# write_wrk_scripts <dir>: wrk's Lua scripts, a 200-byte JSON object (single.lua) and 500 such
# objects as NDJSON (ndjson.lua).
write_wrk_scripts() {
cat >"$1/single.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local head = '{"user_id":42,"event":"signup","pad":"'
wrk.body = head .. string.rep("x", 200 - #head - 2) .. '"}'
EOF
cat >"$1/ndjson.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"
local lines = {}
for i = 1, 500 do
  local head = string.format('{"user_id":%d,"event":"batch","pad":"', i)
  lines[i] = head .. string.rep("x", 200 - #head - 2) .. '"}'
end
wrk.body = table.concat(lines, "\n") .. "\n"
EOF
}

# stat <file> [decimals] [unit]: "median (min–max)" of the values in the file, with thousands
# separators.
stat() {
  sort -g "$WORK/r.$1" | awk -v d="${2:-0}" -v u="${3:-}" '
    function fmt(x,   s, i, r) { s = sprintf("%." d "f", x); i = index(s, "."); r = i ? substr(s, i) : "";
      s = i ? substr(s, 1, i - 1) : s; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } return s r u }
    { v[NR] = $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
      if (NR == 1) print fmt(m); else printf "%s (%s–%s)\n", fmt(m), fmt(v[1]), fmt(v[NR]) }'
}
median() { sort -g "$WORK/r.$1" | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
check() { if awk -v x="$1" -v t="$3" "BEGIN { exit !(x $2 t) }"; then echo "✅"; else echo "❌"; fi; }

#!/usr/bin/env bash
# Is `tandem bench` fast enough to measure redis-server? Drives the same redis-server with
# redis-benchmark and with `tandem bench`, same clients, same pipeline, same commands (SET then
# GET on `key:<12 digits>` over the same key space, 3-byte values), in one run, and prints the
# ops/s of both, the ratio tandem/redis-benchmark (>= 1.0: tandem bench is not the
# bottleneck), and the CPU time each tool itself spent per request (user + sys), which stays
# meaningful when other work shares the machine.
#
# Usage: benches/bench_vs_redis_benchmark.sh   (REQUESTS=500000 CLIENTS=50 KEYS=100000
#        PIPELINES="1 16" THREADS=<tandem bench --threads, default: its own default>)
# Needs redis-server, redis-benchmark, redis-cli, python3. Builds the release binary first.
# Everything it starts is killed on exit.
set -euo pipefail

REQUESTS=${REQUESTS:-500000}
CLIENTS=${CLIENTS:-50}
KEYS=${KEYS:-100000}
PIPELINES=${PIPELINES:-"1 16"}
THREADS=${THREADS:-}
source "$(dirname "$0")/lib.sh"
require_tools redis-server redis-benchmark redis-cli python3
build_release

PORT=$(free_port)
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
wait_ready "$PORT" "$!" redis

# Each run leaves "ops/s cpu-seconds" in $WORK/result (cpu = user + sys of the tool itself,
# from bash's `time`: the tool's own cost, robust to other load on the machine).
TIMEFORMAT='%U %S'

# redis-benchmark: rb TEST PIPELINE
rb() {
  { time redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$REQUESTS" -r "$KEYS" -t "$1" -P "$2" \
      --csv >"$WORK/out" 2>/dev/null; } 2>"$WORK/time"
  ops=$(awk -F'"' -v t="$(echo "$1" | tr a-z A-Z)" '$2 == t { print $4 }' "$WORK/out")
  echo "$ops $(awk '{ print $1 + $2 }' "$WORK/time")" >"$WORK/result"
}

# tandem bench: tb WORKLOAD PIPELINE
tb() {
  local threads=()
  [ -n "$THREADS" ] && threads=(--threads "$THREADS")
  { time "$BIN" bench --target "127.0.0.1:$PORT" --clients "$CLIENTS" --requests "$REQUESTS" \
      --keys "$KEYS" --workload "$1" --pipeline "$2" "${threads[@]}" --json >"$WORK/out"; } 2>"$WORK/time"
  ops=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["targets"][0]["total"]["ops_per_sec"])' "$WORK/out")
  echo "$ops $(awk '{ print $1 + $2 }' "$WORK/time")" >"$WORK/result"
}

# CPU microseconds per request: per_req CPU_SECONDS
per_req() { awk -v c="$1" -v n="$REQUESTS" 'BEGIN { printf "%.2f", c * 1e6 / n }'; }

echo "== SET/GET against one redis-server ($(redis-server --version | awk '{print $3}')): -c $CLIENTS -n $REQUESTS -r $KEYS, $(nproc) cores =="
printf '%-10s %14s %14s %10s %16s %16s\n' test "rb ops/s" "tandem ops/s" tandem/rb "rb cpu us/req" "tandem cpu us/req"
i=0
for pipeline in $PIPELINES; do
  for t in set get; do
    # Alternate which tool runs first.
    if [ $((i % 2)) -eq 0 ]; then
      rb "$t" "$pipeline"; read -r r_ops r_cpu <"$WORK/result"
      tb "$t" "$pipeline"; read -r b_ops b_cpu <"$WORK/result"
    else
      tb "$t" "$pipeline"; read -r b_ops b_cpu <"$WORK/result"
      rb "$t" "$pipeline"; read -r r_ops r_cpu <"$WORK/result"
    fi
    i=$((i + 1))
    [ -n "$r_ops" ] && [ -n "$b_ops" ] || { echo "error: no figure for $t -P $pipeline" >&2; exit 1; }
    printf '%-10s %14.0f %14.0f %10s %16s %16s\n' "$(echo "$t" | tr a-z A-Z) -P $pipeline" \
      "$r_ops" "$b_ops" "$(ratio "$b_ops" "$r_ops")" "$(per_req "$r_cpu")" "$(per_req "$b_cpu")"
  done
done

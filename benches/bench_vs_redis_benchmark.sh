#!/usr/bin/env bash
# Is `tandem bench` fast enough to measure redis-server? Drives the same redis-server with
# redis-benchmark and with `tandem bench`, same clients, same pipeline, same commands (SET then
# GET on `key:<12 digits>` over the same key space, 3-byte values), in one run, and prints the
# ops/s of both and the ratio tandem/redis-benchmark (>= 1.0: tandem bench is not the
# bottleneck).
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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/tandem

for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || {
    echo "error: $tool not found (apt-get install -y redis-server redis-tools python3)" >&2
    exit 1
  }
done

echo "building the release binary..." >&2
(cd "$ROOT" && cargo build --release -q --bin tandem)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 200); do
  [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break
  sleep 0.05
done
[ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] || { echo "error: redis-server did not start" >&2; cat "$WORK/redis.log" >&2; exit 1; }

# ops/s of redis-benchmark: rb TEST PIPELINE
rb() {
  redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$REQUESTS" -r "$KEYS" -t "$1" -P "$2" --csv 2>/dev/null |
    awk -F'"' -v t="$(echo "$1" | tr a-z A-Z)" '$2 == t { print $4 }'
}

# ops/s of tandem bench: tb WORKLOAD PIPELINE
tb() {
  local threads=()
  [ -n "$THREADS" ] && threads=(--threads "$THREADS")
  "$BIN" bench --target "127.0.0.1:$PORT" --clients "$CLIENTS" --requests "$REQUESTS" \
    --keys "$KEYS" --workload "$1" --pipeline "$2" "${threads[@]}" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["targets"][0]["total"]["ops_per_sec"])'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "== SET/GET against one redis-server ($(redis-server --version | awk '{print $3}')): -c $CLIENTS -n $REQUESTS -r $KEYS, $(nproc) cores =="
printf '%-10s %18s %18s %14s\n' test "redis-benchmark" "tandem bench" tandem/rb
i=0
for pipeline in $PIPELINES; do
  for t in set get; do
    # Alternate which tool runs first.
    if [ $((i % 2)) -eq 0 ]; then
      r=$(rb "$t" "$pipeline"); b=$(tb "$t" "$pipeline")
    else
      b=$(tb "$t" "$pipeline"); r=$(rb "$t" "$pipeline")
    fi
    i=$((i + 1))
    [ -n "$r" ] && [ -n "$b" ] || { echo "error: no figure for $t -P $pipeline" >&2; exit 1; }
    printf '%-10s %18.0f %18.0f %14s\n' "$(echo "$t" | tr a-z A-Z) -P $pipeline" "$r" "$b" "$(ratio "$b" "$r")"
  done
done

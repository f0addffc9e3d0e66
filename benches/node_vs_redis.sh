#!/usr/bin/env bash
# Side-by-side benchmark of `tandem node` and redis-server on this machine, in one run:
#  1. throughput: redis-benchmark -c 50 -n 200000 -t set,get, without pipelining (-P 1) and
#     with 16 commands per pipeline (-P 16), against both servers, ROUNDS times (the order
#     alternating); prints the median ops/s, their ratio node/redis and each round's ratio;
#  2. memory: loads 1,000,000 keys (`key:N`, 16-byte values) into each server through
#     `redis-cli --pipe` and prints the resident set size (VmRSS) of both and the ratio.
#
# Usage: benches/node_vs_redis.sh            (REQUESTS=200000 CLIENTS=50 KEYS=1000000 ROUNDS=3)
# Needs redis-server, redis-benchmark, redis-cli (Debian: apt-get install redis-server
# redis-tools). Builds the release binary first. Everything it starts is killed on exit.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
KEYS=${KEYS:-1000000}
ROUNDS=${ROUNDS:-3}
source "$(dirname "$0")/lib.sh"
require_tools redis-server redis-benchmark redis-cli python3
build_release

NODE_PORT=$(free_port)
mkdir -p "$WORK/node" "$WORK/redis"
"$BIN" node --port "$NODE_PORT" --bind 127.0.0.1 --dir "$WORK/node" --save "" \
  --appendonly no >"$WORK/node.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
wait_ready "$NODE_PORT" "$NODE_PID" node

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" \
  --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_ready "$REDIS_PORT" "$REDIS_PID" redis

# ops/s of one redis-benchmark test: bench PORT TEST PIPELINE
bench() {
  redis-benchmark -p "$1" -c "$CLIENTS" -n "$REQUESTS" -t "$2" -P "$3" --csv 2>/dev/null |
    awk -F'"' -v t="$(echo "$2" | tr a-z A-Z)" '$2 == t { print $4 }'
}

echo "== throughput: redis-benchmark -c $CLIENTS -n $REQUESTS ($(nproc) cores, median of $ROUNDS rounds) =="
printf '%-10s %14s %14s %12s %22s\n' test "node ops/s" "redis ops/s" node/redis "ratio per round"
for pipeline in 1 16; do
  for t in set get; do
    ns=() rs=() per=()
    for round in $(seq 1 "$ROUNDS"); do
      # Alternate the order so neither server always runs first.
      if [ $((round % 2)) -eq 1 ]; then
        r=$(bench "$REDIS_PORT" "$t" "$pipeline"); n=$(bench "$NODE_PORT" "$t" "$pipeline")
      else
        n=$(bench "$NODE_PORT" "$t" "$pipeline"); r=$(bench "$REDIS_PORT" "$t" "$pipeline")
      fi
      [ -n "$n" ] && [ -n "$r" ] || { echo "error: redis-benchmark gave no figure for $t -P $pipeline" >&2; exit 1; }
      ns+=("$n") rs+=("$r") per+=("$(ratio "$n" "$r")")
    done
    n=$(median "${ns[@]}") r=$(median "${rs[@]}")
    printf '%-10s %14.0f %14.0f %12s %22s\n' "$(echo "$t" | tr a-z A-Z) -P $pipeline" "$n" "$r" \
      "$(ratio "$n" "$r")" "$(IFS=' '; echo "${per[*]}")"
  done
done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

echo
echo "== memory: $KEYS keys (key:N -> 16-byte value) loaded with redis-cli --pipe =="
# The RESP stream: *3 SET key:N <16 bytes>, generated once, replayed into both servers.
awk -v n="$KEYS" 'BEGIN {
  for (i = 0; i < n; i++) {
    k = "key:" i; v = sprintf("%016d", i);
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n", length(k), k, v
  }
}' >"$WORK/load.resp"
node_before=$(rss_kb "$NODE_PID")
redis_before=$(rss_kb "$REDIS_PID")
redis-cli -p "$NODE_PORT" FLUSHALL >/dev/null
redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
for port in "$NODE_PORT" "$REDIS_PORT"; do
  out=$(redis-cli -p "$port" --pipe <"$WORK/load.resp" 2>&1)
  echo "$out" | grep -q "errors: 0, replies: $KEYS" || { echo "error: load failed on port $port: $out" >&2; exit 1; }
  size=$(redis-cli -p "$port" DBSIZE)
  [ "$size" = "$KEYS" ] || { echo "error: DBSIZE $size on port $port, expected $KEYS" >&2; exit 1; }
done
sleep 1
node_after=$(rss_kb "$NODE_PID")
redis_after=$(rss_kb "$REDIS_PID")
printf '%-22s %12s %12s %12s\n' "" node redis node/redis
printf '%-22s %9d MB %9d MB %12s\n' "RSS before load" $((node_before / 1024)) $((redis_before / 1024)) "$(ratio "$node_before" "$redis_before")"
printf '%-22s %9d MB %9d MB %12s\n' "RSS with $KEYS keys" $((node_after / 1024)) $((redis_after / 1024)) "$(ratio "$node_after" "$redis_after")"
printf '%-22s %9d B  %9d B  %12s\n' "bytes per key" $(((node_after - node_before) * 1024 / KEYS)) $(((redis_after - redis_before) * 1024 / KEYS)) \
  "$(ratio $((node_after - node_before)) $((redis_after - redis_before)))"

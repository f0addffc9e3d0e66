#!/usr/bin/env bash
# Throughput and latency of `tandem proxy` against the same redis-server direct and through
# twemproxy (Debian's nutcracker), in one run:
#   redis-benchmark -c 50 -n $REQUESTS -t set,get at -P 1 and -P 16, against
#     direct:     redis-server
#     tandem:     tandem proxy --master <redis-server>   (static topology, read policy master)
#     twemproxy:  nutcracker with that redis-server as its only server
# Prints ops/s and p50 latency of each, the ratios tandem/twemproxy and tandem/direct, and the
# p50 latency the proxy adds at -P 1. Targets (issue 6): tandem >= 1.3x twemproxy and >= 0.8x
# direct; added p50 < 100 us at -P 1.
#
# Usage: benches/proxy_vs_twemproxy.sh   (REQUESTS=200000 CLIENTS=50 PROXY_THREADS=0)
# Needs redis-server, redis-benchmark, redis-cli and nutcracker
# (Debian: apt-get install -y redis-server redis-tools nutcracker). Builds the release binary
# first. Everything it starts is killed on exit.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PROXY_THREADS=${PROXY_THREADS:-0}
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)
source "$(dirname "$0")/lib.sh"
require_tools redis-server redis-benchmark redis-cli python3
[ -x "$NUTCRACKER" ] || {
  echo "error: nutcracker (twemproxy) not found (apt-get install -y nutcracker)" >&2
  exit 1
}
build_release

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_ready "$REDIS_PORT" "$!" redis

PROXY_PORT=$(free_port)
"$BIN" proxy --listen "127.0.0.1:$PROXY_PORT" --master "127.0.0.1:$REDIS_PORT" \
  --read-policy master --metrics "" --threads "$PROXY_THREADS" >"$WORK/tandem.log" 2>&1 &
PIDS+=($!)
wait_ready "$PROXY_PORT" "$!" tandem

TWEM_PORT=$(free_port)
cat >"$WORK/nutcracker.yml" <<EOF
bench:
  listen: 127.0.0.1:$TWEM_PORT
  hash: fnv1a_64
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  server_connections: 1
  servers:
   - 127.0.0.1:$REDIS_PORT:1
EOF
"$NUTCRACKER" -c "$WORK/nutcracker.yml" -s "$(free_port)" -o "$WORK/twemproxy.log" &
PIDS+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$TWEM_PORT" SET ping pong >/dev/null 2>&1 && break
  sleep 0.05
done

# "rps p50_ms" of one redis-benchmark test: bench PORT TEST PIPELINE
bench() {
  redis-benchmark -p "$1" -c "$CLIENTS" -n "$REQUESTS" -t "$2" -P "$3" --csv 2>/dev/null |
    awk -F'","' -v t="$(echo "$2" | tr a-z A-Z)" '
      { gsub(/"/, "", $1); gsub(/"/, "", $NF) }
      $1 == t { print $2, $5 }'
}

echo "== redis-benchmark -c $CLIENTS -n $REQUESTS ($(nproc) cores, proxy threads: $PROXY_THREADS) =="
printf '%-4s %-3s %12s %12s %12s %9s %9s %10s %10s %10s %10s\n' \
  test P "direct/s" "tandem/s" "twem/s" "t/twem" "t/direct" "p50 direct" "p50 tandem" "p50 twem" "added p50"
for pipeline in 1 16; do
  for t in set get; do
    read -r d_rps d_p50 <<<"$(bench "$REDIS_PORT" "$t" "$pipeline")"
    read -r p_rps p_p50 <<<"$(bench "$PROXY_PORT" "$t" "$pipeline")"
    read -r w_rps w_p50 <<<"$(bench "$TWEM_PORT" "$t" "$pipeline")"
    added=$(awk -v a="$p_p50" -v b="$d_p50" 'BEGIN { printf "%d us", (a - b) * 1000 }')
    printf '%-4s %-3s %12s %12s %12s %9s %9s %8s ms %8s ms %8s ms %10s\n' \
      "$t" "$pipeline" "$d_rps" "$p_rps" "$w_rps" \
      "$(ratio "$p_rps" "$w_rps")" "$(ratio "$p_rps" "$d_rps")" \
      "$d_p50" "$p_p50" "$w_p50" "$added"
  done
done

#!/usr/bin/env bash
# Throughput and latency of `tandem proxy` against the same redis-server direct and through
# twemproxy (Debian's nutcracker), in one run:
#   redis-benchmark -c 50 -n $REQUESTS -t set,get at -P 1 and -P 16, against
#     direct:     redis-server
#     tandem:     tandem proxy --master <redis-server>   (static topology, read policy master)
#     twemproxy:  nutcracker with that redis-server as its only server
# Each test runs ROUNDS times, interleaved (direct, tandem, twemproxy, then again), and the
# median is printed: ops/s and p50 latency of each, the ratios tandem/twemproxy,
# tandem/direct and twemproxy/direct (a proxy cannot beat direct when the single-threaded
# redis-benchmark is the bottleneck, so when twemproxy reaches direct, 1.3x twemproxy is out
# of reach for any proxy), the p50 latency the proxy adds, and the CPU time (user + system)
# the tandem and twemproxy processes spent per request relayed, which a busy machine
# disturbs less than throughput (on 2 cores the benchmark client, the server and the proxy
# share the CPU). Targets (issue 6): tandem >= 1.3x twemproxy and >= 0.8x
# direct; added p50 < 100 us at -P 1.
#
# Usage: benches/proxy_vs_twemproxy.sh   (REQUESTS=200000 CLIENTS=50 PROXY_THREADS=0 ROUNDS=3)
# Needs redis-server, redis-benchmark, redis-cli and nutcracker
# (Debian: apt-get install -y redis-server redis-tools nutcracker). Builds the release binary
# first. Everything it starts is killed on exit.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PROXY_THREADS=${PROXY_THREADS:-0}
ROUNDS=${ROUNDS:-3}
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
PROXY_PID=$!
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
TWEM_PID=$!
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

# CPU time (user and system, clock ticks) a process has used so far: "user sys".
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))

echo "== redis-benchmark -c $CLIENTS -n $REQUESTS ($(nproc) cores, proxy threads: $PROXY_THREADS, median of $ROUNDS interleaved rounds) =="
printf '%-4s %-3s %11s %11s %11s %7s %8s %8s %9s %9s %9s %9s %s\n' \
  test P "direct/s" "tandem/s" "twem/s" "t/twem" "t/direct" "tw/direct" "p50 dir" "p50 tan" "p50 twem" "added p50" \
  "cpu/req user+sys tandem : twem"
for pipeline in 1 16; do
  for t in set get; do
    d_rps=() p_rps=() w_rps=() d_p50=() p_p50=() w_p50=()
    p_us=0 p_sys=0 w_us=0 w_sys=0
    for _ in $(seq 1 "$ROUNDS"); do
      read -r r l <<<"$(bench "$REDIS_PORT" "$t" "$pipeline")"; d_rps+=("$r"); d_p50+=("$l")
      read -r u0 s0 <<<"$(cpu_ticks "$PROXY_PID")"
      read -r r l <<<"$(bench "$PROXY_PORT" "$t" "$pipeline")"; p_rps+=("$r"); p_p50+=("$l")
      read -r u1 s1 <<<"$(cpu_ticks "$PROXY_PID")"
      p_us=$(( p_us + u1 - u0 )) p_sys=$(( p_sys + s1 - s0 ))
      read -r u0 s0 <<<"$(cpu_ticks "$TWEM_PID")"
      read -r r l <<<"$(bench "$TWEM_PORT" "$t" "$pipeline")"; w_rps+=("$r"); w_p50+=("$l")
      read -r u1 s1 <<<"$(cpu_ticks "$TWEM_PID")"
      w_us=$(( w_us + u1 - u0 )) w_sys=$(( w_sys + s1 - s0 ))
    done
    dr=$(median "${d_rps[@]}") pr=$(median "${p_rps[@]}") wr=$(median "${w_rps[@]}")
    dl=$(median "${d_p50[@]}") pl=$(median "${p_p50[@]}") wl=$(median "${w_p50[@]}")
    added=$(awk -v a="$pl" -v b="$dl" 'BEGIN { printf "%d us", (a - b) * 1000 }')
    # CPU each proxy process spent per request relayed (all rounds), user + system: a busy
    # machine disturbs it far less than throughput.
    cpu=$(awk -v pu="$p_us" -v ps="$p_sys" -v wu="$w_us" -v ws="$w_sys" \
      -v n="$((REQUESTS * ROUNDS))" -v u="$TICK_US" \
      'BEGIN { printf "%.2f+%.2f : %.2f+%.2f us", pu * u / n, ps * u / n, wu * u / n, ws * u / n }')
    printf '%-4s %-3s %11s %11s %11s %7s %8s %9s %6s ms %6s ms %6s ms %9s %s\n' \
      "$t" "$pipeline" "$dr" "$pr" "$wr" \
      "$(ratio "$pr" "$wr")" "$(ratio "$pr" "$dr")" "$(ratio "$wr" "$dr")" "$dl" "$pl" "$wl" "$added" "$cpu"
  done
done

#!/usr/bin/env bash
# Replication benchmark, Tandem->Tandem against redis-server->redis-server in the same run:
#  1. full sync: a master holding KEYS keys (`key:N` -> VALUE_SIZE-byte values, about 100 MB
#     for the defaults) gets an empty replica (REPLICAOF); prints the time until the replica's
#     link is up with every key loaded, for both pairs and the ratio tandem/redis;
#  2. steady-state lag: a writer sends RATE SET/s (pipelined batches every 10 ms) to the
#     master for DURATION seconds while a probe writes a fresh value to one key every 10 ms on
#     the master and polls the replica until it shows it; p50/p99/max of that delay. Repeated
#     ROUNDS times, the order alternating (a p99 of ~1000 probes swings +-20% between runs on
#     a shared machine); prints the medians, their ratios and each round's p99 ratio.
# Both use diskless sync (Redis with repl-diskless-sync-delay 0).
#
# Usage: benches/replication_vs_redis.sh   (KEYS=1000000 VALUE_SIZE=90 RATE=50000 DURATION=20 ROUNDS=5)
# Needs redis-server, redis-cli, python3. Builds the release binary first. Everything it
# starts is killed on exit.
set -euo pipefail

KEYS=${KEYS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-90}
RATE=${RATE:-50000}
SECONDS_RUN=${DURATION:-20}
ROUNDS=${ROUNDS:-5}
source "$(dirname "$0")/lib.sh"
require_tools redis-server redis-cli python3
build_release

start() { # kind name -> prints port
  local port; port=$(free_port)
  mkdir -p "$WORK/$2"
  if [ "$1" = tandem ]; then
    "$BIN" node --port "$port" --bind 127.0.0.1 --dir "$WORK/$2" --save "" --appendonly no \
      --repl-diskless-sync-delay 0 >"$WORK/$2.log" 2>&1 &
  else
    redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/$2" --save "" --appendonly no \
      --repl-diskless-sync yes --repl-diskless-sync-delay 0 >"$WORK/$2.log" 2>&1 &
  fi
  local pid=$!
  # Called as $(start ...): a subshell, so PIDS would not reach the cleanup.
  echo "$pid" >>"$WORK/pids"
  wait_ready "$port" "$pid" "$2"
  echo "$port"
}

awk -v n="$KEYS" -v vs="$VALUE_SIZE" 'BEGIN {
  v = sprintf("%0" vs "d", 0);
  for (i = 0; i < n; i++) {
    k = "key:" i;
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, vs, v
  }
}' >"$WORK/load.resp"

now() { python3 -c 'import time; print(time.time())'; }

# full sync seconds of one pair: kind -> "seconds master_port replica_port"
full_sync() {
  local m r out t0 t1
  m=$(start "$1" "$1-master")
  r=$(start "$1" "$1-replica")
  out=$(redis-cli -p "$m" --pipe <"$WORK/load.resp" 2>&1)
  echo "$out" | grep -q "errors: 0, replies: $KEYS" || { echo "error: load failed on $1: $out" >&2; exit 1; }
  t0=$(now)
  redis-cli -p "$r" REPLICAOF 127.0.0.1 "$m" >/dev/null
  while :; do
    if redis-cli -p "$r" INFO replication | grep -q 'master_link_status:up' &&
       [ "$(redis-cli -p "$r" DBSIZE)" = "$KEYS" ]; then break; fi
    sleep 0.02
  done
  t1=$(now)
  echo "$(python3 -c "print(f'{$t1 - $t0:.2f}')") $m $r"
}

# lag percentiles (ms) under RATE writes/s: master_port replica_port -> "p50 p99 max achieved_rate"
lag() {
  python3 - "$1" "$2" "$RATE" "$SECONDS_RUN" <<'PY'
import socket, sys, threading, time
mport, rport, rate, secs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def conn(p):
    s = socket.create_connection(("127.0.0.1", p)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
stop = threading.Event(); sent = [0]
def writer():
    s = conn(mport); batch = rate // 100
    blob = b"".join(cmd("SET", "load:%d" % i, "x" * 32) for i in range(batch))
    def drain():
        while not stop.is_set():
            try:
                if not s.recv(1 << 20): break
            except OSError: break
    threading.Thread(target=drain, daemon=True).start()
    t = time.perf_counter()
    while not stop.is_set():
        s.sendall(blob); sent[0] += batch
        t += 0.01
        d = t - time.perf_counter()
        if d > 0: time.sleep(d)
w = threading.Thread(target=writer, daemon=True); w.start()
m, r = conn(mport), conn(rport)
def rt(s, c):
    s.sendall(c); buf = b""
    while not buf.endswith(b"\r\n") or (buf.startswith(b"$") and buf.count(b"\r\n") < 2 and not buf.startswith(b"$-1")):
        buf += s.recv(65536)
    return buf
lags = []; end = time.time() + secs; i = 0; t_start = time.time()
while time.time() < end:
    i += 1; v = b"%d" % i
    t0 = time.perf_counter()
    rt(m, cmd("SET", "probe", v))
    while True:
        got = rt(r, cmd("GET", "probe"))
        if got.endswith(b"\r\n" + v + b"\r\n"): break
    lags.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.01)
stop.set(); elapsed = time.time() - t_start
lags.sort()
pct = lambda p: lags[min(len(lags) - 1, int(len(lags) * p))]
print(f"{pct(0.5):.2f} {pct(0.99):.2f} {lags[-1]:.2f} {sent[0] / elapsed:.0f}")
PY
}

echo "== full sync: $KEYS keys of $VALUE_SIZE bytes, diskless, $(nproc) cores =="
read -r tsync tm tr < <(full_sync tandem)
read -r rsync rm rr < <(full_sync redis)
printf '%-12s %10s %10s %14s\n' "" tandem redis tandem/redis
printf '%-12s %9ss %9ss %14s\n' "full sync" "$tsync" "$rsync" "$(ratio "$tsync" "$rsync")"

echo
echo "== replica lag: probe every 10 ms under ~$RATE SET/s for ${SECONDS_RUN}s, median of $ROUNDS rounds =="
declare -A got
per_round=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="tandem redis"; else order="redis tandem"; fi
  for kind in $order; do
    if [ "$kind" = tandem ]; then got[$kind,$round]=$(lag "$tm" "$tr"); else got[$kind,$round]=$(lag "$rm" "$rr"); fi
  done
  read -r _ t99 _ _ <<<"${got[tandem,$round]}"
  read -r _ r99 _ _ <<<"${got[redis,$round]}"
  per_round+=("$(ratio "$t99" "$r99")")
done
# field N of every round of KIND
col() { local r; for r in $(seq 1 "$ROUNDS"); do awk -v f="$2" '{ print $f }' <<<"${got[$1,$r]}"; done; }
printf '%-12s %10s %10s %14s\n' "" tandem redis tandem/redis
for f in 1:p50 2:p99 3:max; do
  t=$(median $(col tandem "${f%%:*}")) r=$(median $(col redis "${f%%:*}"))
  printf '%-12s %8sms %8sms %14s\n' "lag ${f#*:}" "$t" "$r" "$(ratio "$t" "$r")"
done
printf '%-12s %10s %10s\n' "writes/s" "$(median $(col tandem 4))" "$(median $(col redis 4))"
echo "p99 ratio of each round: ${per_round[*]}"

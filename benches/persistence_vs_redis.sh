#!/usr/bin/env bash
# Side-by-side persistence benchmark of `tandem node` and redis-server on this machine:
#  1. loads KEYS keys (`key:N` -> 16-byte value, plus KEYS/100 small hashes, lists, sets and
#     sorted sets) into each server through `redis-cli --pipe`;
#  2. SAVE: wall time of a foreground SAVE on each, and the dump sizes;
#  3. start-up load: each server is killed and restarted on its dump; time until PING
#     answers (and the dataset size is checked);
#  4. BGSAVE pause: a probe client writes a random existing key every 1 ms while a BGSAVE
#     runs and records the longest round trip it saw (Redis: fork; Tandem: shard freeze and
#     copy-on-write of the maps it writes to);
#  and prints the ratios node/redis (lower is better for all).
#
# Usage: benches/persistence_vs_redis.sh        (KEYS=1000000)
# Needs redis-server, redis-cli, python3. Builds the release binary first. Everything it
# starts is killed on exit.
set -euo pipefail

KEYS=${KEYS:-1000000}
source "$(dirname "$0")/lib.sh"
require_tools redis-server redis-cli python3
build_release

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

NODE_PORT=$(free_port)
REDIS_PORT=$(free_port)
mkdir -p "$WORK/node" "$WORK/redis"

start_node() {
  "$BIN" node --port "$NODE_PORT" --bind 127.0.0.1 --dir "$WORK/node" --save "" \
    --appendonly no >>"$WORK/node.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
}
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" \
    --appendonly no >>"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
}
start_node
wait_ready "$NODE_PORT" "$NODE_PID" node 60
start_redis
wait_ready "$REDIS_PORT" "$REDIS_PID" redis 60

echo "== dataset: $KEYS string keys + $((KEYS / 100)) each of hash/list/set/zset, via redis-cli --pipe =="
awk -v n="$KEYS" 'BEGIN {
  for (i = 0; i < n; i++) {
    k = "key:" i; v = sprintf("%016d", i);
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n", length(k), k, v
  }
  for (i = 0; i < n / 100; i++) {
    h = "h:" i; l = "l:" i; s = "s:" i; z = "z:" i;
    printf "*6\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$5\r\nhello\r\n", length(h), h
    printf "*5\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$1\r\nx\r\n$1\r\ny\r\n$3\r\n123\r\n", length(l), l
    printf "*5\r\n$4\r\nSADD\r\n$%d\r\n%s\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\nabc\r\n", length(s), s
    printf "*6\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n$1\r\n1\r\n$1\r\na\r\n$3\r\n2.5\r\n$1\r\nb\r\n", length(z), z
  }
}' >"$WORK/load.resp"
TOTAL=$((KEYS + 4 * (KEYS / 100)))
for port in "$NODE_PORT" "$REDIS_PORT"; do
  out=$(redis-cli -p "$port" --pipe <"$WORK/load.resp" 2>&1)
  echo "$out" | grep -q "errors: 0" || { echo "error: load failed on port $port: $out" >&2; exit 1; }
  size=$(redis-cli -p "$port" DBSIZE)
  [ "$size" = "$TOTAL" ] || { echo "error: DBSIZE $size on port $port, expected $TOTAL" >&2; exit 1; }
done

echo
echo "== SAVE =="
t=$(now); redis-cli -p "$NODE_PORT" SAVE >/dev/null; node_save=$(elapsed "$t")
t=$(now); redis-cli -p "$REDIS_PORT" SAVE >/dev/null; redis_save=$(elapsed "$t")
node_size=$(stat -c %s "$WORK/node/dump.rdb")
redis_size=$(stat -c %s "$WORK/redis/dump.rdb")
printf '%-24s %12s %12s %12s\n' "" node redis node/redis
printf '%-24s %11ss %11ss %12s\n' "SAVE time" "$node_save" "$redis_save" "$(ratio "$node_save" "$redis_save")"
printf '%-24s %10dKB %10dKB %12s\n' "dump.rdb size" $((node_size / 1024)) $((redis_size / 1024)) "$(ratio "$node_size" "$redis_size")"

echo
echo "== BGSAVE: longest round trip of a client writing a random key every 1 ms =="
# probe.py PORT KEYS: sends BGSAVE, then SET key:<random> every 1 ms until the save is done;
# prints "max_ms samples bgsave_s".
cat >"$WORK/probe.py" <<'EOF'
import random, socket, sys, time
port, keys = int(sys.argv[1]), int(sys.argv[2])
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")
def call(c, *args):
    s, f = c
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        return f.read(n + 2)[:-2] if n >= 0 else None
    return line.strip()
probe, admin = conn(), conn()
call(probe, b"PING")
start = time.monotonic()
r = call(admin, b"BGSAVE")
assert r.startswith(b"+Background saving started"), r
worst, n, last_check, done = 0.0, 0, 0.0, False
while not done:
    k = b"key:%d" % random.randrange(keys)
    t = time.monotonic()
    call(probe, b"SET", k, b"probe-value-0000")
    worst = max(worst, time.monotonic() - t); n += 1
    if time.monotonic() - last_check > 0.05:
        last_check = time.monotonic()
        info = call(admin, b"INFO", b"persistence")
        done = b"rdb_bgsave_in_progress:0" in info
    time.sleep(0.001)
print("%.2f %d %.2f" % (worst * 1000, n, time.monotonic() - start))
EOF
read -r node_pause node_n node_bg <<<"$(python3 "$WORK/probe.py" "$NODE_PORT" "$KEYS")"
read -r redis_pause redis_n redis_bg <<<"$(python3 "$WORK/probe.py" "$REDIS_PORT" "$KEYS")"
printf '%-24s %12s %12s %12s\n' "" node redis node/redis
printf '%-24s %10sms %10sms %12s\n' "longest pause" "$node_pause" "$redis_pause" "$(ratio "$node_pause" "$redis_pause")"
printf '%-24s %12s %12s\n' "probe writes" "$node_n" "$redis_n"
printf '%-24s %11ss %11ss %12s\n' "BGSAVE duration" "$node_bg" "$redis_bg" "$(ratio "$node_bg" "$redis_bg")"

echo
echo "== start-up load of the dump (kill -9, restart, time until PING answers) =="
kill -9 "$NODE_PID" "$REDIS_PID"; wait "$NODE_PID" "$REDIS_PID" 2>/dev/null || true
t=$(now); start_node; wait_ready "$NODE_PORT" "$NODE_PID" node 60; node_load=$(elapsed "$t")
t=$(now); start_redis; wait_ready "$REDIS_PORT" "$REDIS_PID" redis 60; redis_load=$(elapsed "$t")
for port in "$NODE_PORT" "$REDIS_PORT"; do
  size=$(redis-cli -p "$port" DBSIZE)
  [ "$size" = "$TOTAL" ] || { echo "error: DBSIZE $size after load on port $port, expected $TOTAL" >&2; exit 1; }
done
printf '%-24s %12s %12s %12s\n' "" node redis node/redis
printf '%-24s %11ss %11ss %12s\n' "load time" "$node_load" "$redis_load" "$(ratio "$node_load" "$redis_load")"

#!/usr/bin/env bash
# Runs Redis's own unit tests (the Tcl suite of redis/redis, tag 7.0.15) against `tandem node`
# as an external server, one test file at a time on a fresh node, and prints a table of
# passed / failed tests per file plus whether the file was cut short by an exception.
#
# Usage: benches/redis_test_suite.sh /path/to/redis-checkout [unit/type/list ...]
# The checkout is read-only input (fetch it to a scratch folder, never into this repo).
# Needs tclsh. Compare with redis-server: TARGET=redis-server benches/redis_test_suite.sh ...
set -uo pipefail

REDIS_SRC=${1:?usage: $0 /path/to/redis-checkout [test ...]}
shift
TESTS=("$@")
if [ ${#TESTS[@]} -eq 0 ]; then
  TESTS=(unit/type/string unit/type/incr unit/keyspace unit/expire unit/type/list unit/type/hash
         unit/type/set unit/type/zset unit/pubsub unit/multi unit/auth unit/protocol unit/info
         unit/info-command unit/scan unit/quit unit/introspection unit/introspection-2
         unit/maxmemory unit/other unit/querybuf unit/limits unit/tracking unit/latency-monitor
         unit/slowlog unit/pause)
fi
TARGET=${TARGET:-tandem}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$TARGET" = tandem ]; then
  (cd "$ROOT" && cargo build --release -q) || exit 1
fi
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

total_ok=0; total_err=0
printf '%-28s %6s %6s %s\n' file passed failed note
for t in "${TESTS[@]}"; do
  port=$(free_port)
  if [ "$TARGET" = tandem ]; then
    "$ROOT/target/release/tandem" node --port "$port" --dir "$WORK" >"$WORK/node.log" 2>&1 &
  else
    redis-server --port "$port" --dir "$WORK" --save "" --enable-debug-command yes >"$WORK/node.log" 2>&1 &
  fi
  PID=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  out=$(cd "$REDIS_SRC" && timeout 600 ./runtest --host 127.0.0.1 --port "$port" --tags -needs:repl \
        --single "$t" --timeout 60 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
  ok=$(grep -c '\[ok\]' <<<"$out")
  err=$(grep -c '\[err\]' <<<"$out")
  note=""
  grep -q '\[exception\]' <<<"$out" && note="stopped by: $(grep -A1 '\[exception\]' <<<"$out" | tail -1 | cut -c1-90)"
  kill -9 "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=
  printf '%-28s %6d %6d %s\n' "$t" "$ok" "$err" "$note"
  echo "$out" > "$WORK/$(echo "$t" | tr / _).log"
  [ -n "${KEEP_LOGS:-}" ] && cp "$WORK/$(echo "$t" | tr / _).log" "${KEEP_LOGS}/"
  total_ok=$((total_ok + ok)); total_err=$((total_err + err))
done
echo "total: $total_ok passed, $total_err failed (files stopped by an exception are marked)"

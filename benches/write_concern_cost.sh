#!/usr/bin/env bash
# The throughput cost of the proxy's safe-writes mode (`write-concern replicated`: a write is
# acknowledged only once a replica has it, through WAIT 1). One Tandem master with one
# replica; two proxies in front of them, identical but for the write concern; `tandem bench`
# drives both one after the other in the same run (SETs only, then a 80/20 GET/SET mix) and
# prints its side-by-side table, with ratios to the first target (write concern master).
#
# Usage: benches/write_concern_cost.sh   (CLIENTS=50 DURATION=10s PIPELINE=1)
# Needs redis-cli, python3. Builds the release binary first. Everything it starts is killed
# on exit.
set -euo pipefail

CLIENTS=${CLIENTS:-50}
DURATION=${DURATION:-10s}
PIPELINE=${PIPELINE:-1}
source "$(dirname "$0")/lib.sh"
require_tools redis-cli python3
build_release

node() { # name port [master_port]
  mkdir -p "$WORK/$1"
  local extra=()
  [ -n "${3:-}" ] && extra=(--replicaof 127.0.0.1 "$3")
  "$BIN" node --port "$2" --bind 127.0.0.1 --dir "$WORK/$1" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 "${extra[@]}" >"$WORK/$1.log" 2>&1 &
  PIDS+=("$!")
  wait_ready "$2" "$!" "$1"
}
proxy() { # name port write_concern
  "$BIN" proxy --listen "127.0.0.1:$2" --master "127.0.0.1:$MASTER" \
    --replica "127.0.0.1:$REPLICA" --write-concern "$3" --metrics "" >"$WORK/$1.log" 2>&1 &
  PIDS+=("$!")
  wait_ready "$2" "$!" "$1"
}

MASTER=$(free_port); REPLICA=$(free_port)
node master "$MASTER"
node replica "$REPLICA" "$MASTER"
until redis-cli -p "$REPLICA" INFO replication | grep -q master_link_status:up; do sleep 0.05; done
P_MASTER=$(free_port); P_REPL=$(free_port)
proxy proxy-master "$P_MASTER" master
proxy proxy-replicated "$P_REPL" replicated

for mix in "--read-ratio 0" "--read-ratio 0.8"; do
  cmd=("$BIN" bench --target "127.0.0.1:$P_MASTER" --target "127.0.0.1:$P_REPL"
       --clients "$CLIENTS" --pipeline "$PIPELINE" --duration "$DURATION" $mix)
  echo "\$ ${cmd[*]}   # first target: write concern master; second: replicated"
  "${cmd[@]}"
  echo
done

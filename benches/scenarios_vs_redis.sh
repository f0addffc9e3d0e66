#!/usr/bin/env bash
# The fault scenarios side by side on the same machine with the same flags: each scenario runs
# on the Tandem stack (`tandem up`: 3 nodes, 3 sentinels, the proxy) and then on
# redis-server + redis-sentinel + twemproxy (`--stack redis`: 3 redis-server 7, 3 Sentinels
# with the same quorum, down-after, failover-timeout and parallel-syncs, twemproxy moved to the
# new master by the Sentinels' client-reconfig-script). Each run starts its own deployment on
# free ports in a temp dir. Prints every command, then its table, for the README's
# "Failure behaviour" section.
#   failover       kill -9 the master under writes            (RUNS runs, default 10)
#   proxy-restart  kill -9 and restart the proxy, 3 cycles    (FEW_RUNS runs, default 3)
#   replica-churn  kill -9 and restart replicas, 4 cycles     (FEW_RUNS runs, default 3)
#   partition      cut the master off from the sentinels and  (FEW_RUNS runs, default 3)
#                  replicas until the failover, then heal
# Twemproxy has no reads from replicas (on the Redis stack every read goes to the master) and
# no write concern: both stacks run with the proxy's default, write concern master.
#
# Usage: benches/scenarios_vs_redis.sh [extra tandem bench flags, given to every run]
# Env: TANDEM (binary; default: build release), RUNS, FEW_RUNS, RATE (default 2000),
#      SCENARIOS (default "failover proxy-restart replica-churn partition").
# Needs redis-server and nutcracker (Debian: apt-get install -y redis-server nutcracker).
set -euo pipefail
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)
source "$(dirname "$0")/lib.sh"
require_tools redis-server
[ -x "$NUTCRACKER" ] || {
  echo "error: nutcracker not found (apt-get install -y nutcracker)" >&2
  exit 1
}
if [[ -z "${TANDEM:-}" ]]; then
  build_release
  TANDEM=$BIN
fi
RUNS=${RUNS:-10}
FEW_RUNS=${FEW_RUNS:-3}
RATE=${RATE:-2000}
SCENARIOS=${SCENARIOS:-failover proxy-restart replica-churn partition}
COMMON=(--rate "$RATE" --clients 8 --kill-after 2s --settle 2s
        --down-after-ms 1000 --failover-timeout-ms 3000)

echo "== fault scenarios, tandem vs redis-server + redis-sentinel + twemproxy ($(nproc) cores) =="
for scenario in $SCENARIOS; do
  case $scenario in
    failover) flags=(--runs "$RUNS") ;;
    proxy-restart) flags=(--runs "$FEW_RUNS" --cycles 3) ;;
    replica-churn) flags=(--runs "$FEW_RUNS" --cycles 4) ;;
    partition) flags=(--runs "$FEW_RUNS") ;;
    *) echo "error: unknown scenario $scenario" >&2; exit 2 ;;
  esac
  for stack in tandem redis; do
    cmd=("$TANDEM" bench --scenario "$scenario" --stack "$stack" "${flags[@]}" "${COMMON[@]}" "$@")
    echo
    echo "\$ ${cmd[*]}"
    "${cmd[@]}" 2>&1
  done
done

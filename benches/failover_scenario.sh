#!/usr/bin/env bash
# The `failover` fault scenario, 10 runs in each write-concern mode (master, replicated):
# kill -9 the master under writes through the proxy; prints one table per mode (median and
# worst of the unavailability window, writes acknowledged, acknowledged writes lost, stale
# reads). Each run starts its own deployment (`tandem up`) on free ports in a temp dir.
# Usage: benches/failover_scenario.sh [extra tandem bench flags]
# Env: TANDEM (binary; default: build release), RATE (default 2000), RUNS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${TANDEM:-}" ]]; then
  cargo build --release --bin tandem >&2
  TANDEM="${CARGO_TARGET_DIR:-target}/release/tandem"
fi
RATE="${RATE:-2000}"
RUNS="${RUNS:-10}"
for wc in master replicated; do
  cmd=("$TANDEM" bench --scenario failover --runs "$RUNS" --rate "$RATE" --clients 8
       --kill-after 2s --settle 2s --down-after-ms 1000 --write-concern "$wc" "$@")
  echo "\$ ${cmd[*]}"
  "${cmd[@]}"
  echo
done

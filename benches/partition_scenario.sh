#!/usr/bin/env bash
# The `partition` fault scenario, 10 runs in each write-concern mode (master, replicated):
# cut the master off from the sentinels and the replicas (each node behind a relay; the
# sentinels and replication links come from 127.0.0.2, the proxy and the clients from
# 127.0.0.1) under writes through the proxy, until a failover has happened; heal; prints one
# table per mode (writes the old master acknowledged during the cut and how many of them
# vanished, acknowledged writes lost, writes refused, unavailability window, whether the old
# master rejoined as a replica). Each run starts its own deployment on free ports in a temp dir.
# Usage: benches/partition_scenario.sh [extra tandem bench flags, e.g. --cut-for 5s]
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
  cmd=("$TANDEM" bench --scenario partition --runs "$RUNS" --rate "$RATE" --clients 8
       --kill-after 2s --settle 2s --down-after-ms 1000 --write-concern "$wc" "$@")
  echo "\$ ${cmd[*]}"
  "${cmd[@]}"
  echo
done

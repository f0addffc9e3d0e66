#!/usr/bin/env bash
# Failover benchmark: unavailability window and lost acknowledged writes after kill -9 of
# the master, with down-after-milliseconds = 1000 for everyone, in one run:
#   - Tandem sentinels over redis-server nodes,
#   - Debian's redis-sentinel over redis-server nodes,
#   - Tandem sentinels over Tandem nodes (when `tandem node` replicates; TANDEM_NODES=0 skips).
# A writer goes through redis-py's Sentinel client (master_for) and RPUSHes sequence numbers;
# the window is kill -> first acknowledged write, lost = acknowledged writes missing from
# the new master. Prints every run, the medians and the ratio Tandem / redis-sentinel
# (target: <= 0.50). The driver is benches/failover_vs_redis_sentinel.py.
#
# Usage: benches/failover_vs_redis_sentinel.sh   (RUNS=3)
# Needs redis-server (apt-get install -y redis-server) and redis-py (pip install redis).
set -euo pipefail

RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/tandem

command -v redis-server >/dev/null || {
  echo "error: redis-server not found (apt-get install -y redis-server)" >&2
  exit 1
}
python3 -c "import redis" 2>/dev/null || {
  echo "error: redis-py not installed (python3 -m pip install redis)" >&2
  exit 1
}

echo "building the release binary..." >&2
(cd "$ROOT" && cargo build --release -q --bin tandem)

# Tandem nodes take part only if they replicate (REPLICAOF answers and the link comes up).
EXTRA=()
if [ "${TANDEM_NODES:-1}" = 1 ]; then
  if python3 - "$BIN" <<'PY'
import os, socket, subprocess, sys, tempfile, time
import redis
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
d = tempfile.mkdtemp(); a, b = port(), port()
ps = [subprocess.Popen([sys.argv[1], "node", "--port", str(p), "--bind", "127.0.0.1", "--dir", d],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in (a, b)]
ok = False
try:
    for _ in range(100):
        try:
            redis.Redis(port=a).ping(); redis.Redis(port=b).ping(); break
        except Exception:
            time.sleep(0.05)
    if redis.Redis(port=b).execute_command("REPLICAOF", "127.0.0.1", a) in (b"OK", "OK", True):
        for _ in range(100):
            if redis.Redis(port=b).info("replication").get("master_link_status") == "up":
                ok = True; break
            time.sleep(0.05)
except Exception:
    pass
finally:
    for p in ps: p.kill()
sys.exit(0 if ok else 1)
PY
  then
    EXTRA+=(--tandem-nodes)
  else
    echo "note: tandem node does not replicate in this build: Tandem-node runs skipped" >&2
  fi
fi

python3 "$ROOT/benches/failover_vs_redis_sentinel.py" "$BIN" --runs "$RUNS" "${EXTRA[@]}"

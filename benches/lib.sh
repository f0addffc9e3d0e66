# Shared by the side-by-side benchmark scripts in benches/ (sourced, not run): the paths, the
# tool check, the release build, a work directory whose processes are all killed on exit,
# free ports, readiness polling and ratios. Defines ROOT, TARGET_DIR, BIN, WORK and PIDS.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/tandem

# require_tools TOOL...: exits with a clear error naming the first missing tool.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "error: $tool not found (apt-get install -y redis-server redis-tools nutcracker python3)" >&2
      exit 1
    }
  done
}

build_release() {
  echo "building the release binary..." >&2
  (cd "$ROOT" && cargo build --release -q --bin tandem)
}

# Every process started goes into PIDS (or, when started inside a command substitution,
# whose variables the script never sees, into the file $WORK/pids); all are killed, and WORK
# removed, on exit.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  if [ -f "$WORK/pids" ]; then
    while read -r p; do PIDS+=("$p"); done <"$WORK/pids"
  fi
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A free loopback port: bind to port 0 and read what the kernel chose.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready PORT PID NAME [TIMEOUT_SECONDS]: polls PING every 10 ms until it answers; exits
# with NAME's log ($WORK/NAME.log) if the process died or the timeout (default 20 s) passed.
wait_ready() {
  local tries=$(( ${4:-20} * 100 ))
  for _ in $(seq 1 "$tries"); do
    if [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "error: $3 exited; log:" >&2; cat "$WORK/$3.log" >&2; exit 1; }
    sleep 0.01
  done
  echo "error: $3 did not answer PING on port $1" >&2
  exit 1
}

# ratio A B: A/B with two decimals ("n/a" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# median NUMBER...: the middle value (the upper middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

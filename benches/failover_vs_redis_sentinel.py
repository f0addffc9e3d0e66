#!/usr/bin/env python3
"""Failover benchmark driver (called by benches/failover_vs_redis_sentinel.sh).

For each setup: 3 data nodes (a master and two replicas) and 3 sentinels with
down-after-milliseconds = 1000, a writer going through redis-py's Sentinel client
(`master_for`, RESP3, re-resolving the master on every new connection) that RPUSHes
sequence numbers as fast as it can, then kill -9 of the master. Measured:
  - window: time from the kill to the first acknowledged write after it;
  - lost: acknowledged writes missing from the new master's list afterwards.
Setups: Tandem sentinels over redis-server nodes, redis-sentinel over redis-server
nodes, and (with --tandem-nodes) Tandem sentinels over Tandem nodes. Prints each run,
the medians, and the ratio of the medians (Tandem / redis-sentinel).

Usage: failover_vs_redis_sentinel.py TANDEM_BIN [--runs N] [--tandem-nodes]
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis
from redis.sentinel import Sentinel

NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 10000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_until(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class Setup:
    def __init__(self, tandem_bin, sentinel_kind, node_kind):
        self.bin = tandem_bin
        self.sentinel_kind = sentinel_kind
        self.node_kind = node_kind
        self.dir = tempfile.mkdtemp(prefix="failover-bench-")
        self.procs = []
        self.nodes = []
        self.sentinels = []

    def spawn(self, args, name):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def node(self, replicaof=None):
        port = free_port()
        d = os.path.join(self.dir, f"node-{port}")
        os.makedirs(d)
        if self.node_kind == "redis":
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                    "--save", "", "--repl-diskless-sync-delay", "0"]
        else:
            args = [self.bin, "node", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                    "--repl-diskless-sync-delay", "0"]
        if replicaof:
            args += ["--replicaof", "127.0.0.1", str(replicaof)]
        p = self.spawn(args, f"node-{port}")
        wait_until(lambda: redis.Redis(port=port).ping(), 20, f"node {port}")
        self.nodes.append((port, p))
        return port

    def sentinel(self, master):
        port = free_port()
        d = os.path.join(self.dir, f"sentinel-{port}")
        os.makedirs(d)
        if self.sentinel_kind == "tandem":
            args = [self.bin, "sentinel", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                    "--monitor", NAME, "127.0.0.1", str(master), "2",
                    "--down-after-ms", str(DOWN_AFTER_MS),
                    "--failover-timeout-ms", str(FAILOVER_TIMEOUT_MS)]
        else:
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                        f"sentinel monitor {NAME} 127.0.0.1 {master} 2\n"
                        f"sentinel down-after-milliseconds {NAME} {DOWN_AFTER_MS}\n"
                        f"sentinel failover-timeout {NAME} {FAILOVER_TIMEOUT_MS}\n")
            args = ["redis-server", conf, "--sentinel"]
        self.spawn(args, f"sentinel-{port}")
        wait_until(lambda: redis.Redis(port=port).ping(), 20, f"sentinel {port}")
        self.sentinels.append(port)
        return port

    def start(self):
        m = self.node()
        for _ in range(2):
            self.node(replicaof=m)
        for port, _ in self.nodes[1:]:
            wait_until(lambda: redis.Redis(port=port).info("replication")
                       .get("master_link_status") == "up", 30, f"replica {port} in sync")
        for _ in range(3):
            self.sentinel(m)

        def discovered(s):
            st = redis.Redis(port=s).sentinel_master(NAME)
            return st["num-slaves"] == 2 and st["num-other-sentinels"] == 2

        for s in self.sentinels:
            wait_until(lambda: discovered(s), 30, f"sentinel {s} discovery")
        return m

    def stop(self):
        for p in self.procs:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def run_once(tandem_bin, sentinel_kind, node_kind):
    setup = Setup(tandem_bin, sentinel_kind, node_kind)
    try:
        master = setup.start()
        s = Sentinel([("127.0.0.1", p) for p in setup.sentinels], socket_timeout=0.5,
                     sentinel_kwargs={"socket_timeout": 0.5})
        client = s.master_for(NAME, socket_timeout=0.5, socket_connect_timeout=0.5)
        acked = []
        stop = threading.Event()
        kill_time = [None]
        first_after = [None]

        def writer():
            i = 0
            while not stop.is_set():
                i += 1
                started = time.monotonic()
                try:
                    client.rpush("log", i)
                    now = time.monotonic()
                    acked.append(i)
                    # Only a write sent after the kill proves the new master is reachable.
                    if kill_time[0] is not None and first_after[0] is None and started > kill_time[0]:
                        first_after[0] = now
                except Exception:
                    time.sleep(0.005)

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(1.5)
        proc = next(p for port, p in setup.nodes if port == master)
        kill_time[0] = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while first_after[0] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.0)
        stop.set()
        t.join()
        if first_after[0] is None:
            raise RuntimeError("no write succeeded within 60 s of the kill")
        window = first_after[0] - kill_time[0]
        found = []
        wait_until(lambda: found.append(s.discover_master(NAME)) or True, 30, "the new master")
        host, port = found[-1]
        final = redis.Redis(host=host, port=port)
        present = set(int(x) for x in final.lrange("log", 0, -1))
        lost = sum(1 for a in acked if a not in present)
        return window, lost, len(acked)
    finally:
        setup.stop()


def main():
    tandem_bin = sys.argv[1]
    runs = 3
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
    setups = [("tandem", "redis"), ("redis", "redis")]
    if "--tandem-nodes" in sys.argv:
        setups.append(("tandem", "tandem"))
    results = {}
    for rnd in range(runs):
        for sk, nk in setups:
            label = f"{'tandem sentinel' if sk == 'tandem' else 'redis-sentinel'} / {'tandem node' if nk == 'tandem' else 'redis-server'}"
            window, lost, acked = run_once(tandem_bin, sk, nk)
            results.setdefault(label, []).append((window, lost))
            print(f"run {rnd + 1}: {label:34s} window {window * 1000:7.0f} ms, "
                  f"acked {acked:6d}, lost {lost}", flush=True)
    print()
    medians = {}
    for label, rs in results.items():
        w = statistics.median(r[0] for r in rs)
        lost = sum(r[1] for r in rs)
        medians[label] = w
        print(f"{label:34s} median window {w * 1000:7.0f} ms, lost writes (all runs) {lost}")
    base = medians.get("redis-sentinel / redis-server")
    for label, w in medians.items():
        if base and label.startswith("tandem sentinel"):
            print(f"ratio {label} vs redis-sentinel / redis-server: {w / base:.2f} (target <= 0.50)")


if __name__ == "__main__":
    main()

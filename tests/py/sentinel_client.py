#!/usr/bin/env python3
"""redis-py Sentinel client check: usage
`python3 tests/py/sentinel_client.py NAME EXPECTED_MASTER_PORT SENTINEL_PORT...`.

Through redis-py's `Sentinel` (which finds the master with SENTINEL MASTERS and the
replicas with SENTINEL SLAVES), in RESP3 (redis-py's default) and RESP2: discovers the
master, checks it is the expected one, writes and reads through `master_for`, and reads
through `slave_for`. Prints each failed check; exits 1 if any failed, 0 otherwise.
"""

import sys
import time

import redis
from redis.sentinel import Sentinel

FAILURES = []


def check(name, got, want):
    if got != want:
        FAILURES.append(name)
        print(f"FAIL {name}: got {got!r}, want {want!r}", flush=True)


def main():
    name = sys.argv[1]
    expected = int(sys.argv[2])
    sentinels = [("127.0.0.1", int(p)) for p in sys.argv[3:]]
    for proto in (3, 2):
        s = Sentinel(
            sentinels,
            socket_timeout=2,
            protocol=proto,
            sentinel_kwargs={"protocol": proto, "socket_timeout": 2},
        )
        host, port = s.discover_master(name)
        check(f"resp{proto} master host", host, "127.0.0.1")
        check(f"resp{proto} master port", port, expected)
        replicas = s.discover_slaves(name)
        check(f"resp{proto} replicas exclude the master", (host, expected) in replicas, False)
        master = s.master_for(name, socket_timeout=2, protocol=proto)
        check(f"resp{proto} set", master.set(f"py-{proto}", "v"), True)
        check(f"resp{proto} get", master.get(f"py-{proto}"), b"v")
        if replicas:
            replica = s.slave_for(name, socket_timeout=2, protocol=proto)
            deadline = time.time() + 10
            got = None
            while time.time() < deadline:
                got = replica.get(f"py-{proto}")
                if got == b"v":
                    break
                time.sleep(0.05)
            check(f"resp{proto} read from a replica", got, b"v")
        try:
            s.discover_master("no-such-master")
            check(f"resp{proto} unknown master raises", False, True)
        except redis.sentinel.MasterNotFoundError:
            pass
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()

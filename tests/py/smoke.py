#!/usr/bin/env python3
"""redis-py smoke test: usage `python3 tests/py/smoke.py PORT`.

Exercises strings, keys, lists, hashes, sets, sorted sets, pipelines, transactions (with
WATCH), pub/sub and RESP3 (protocol=3) through redis-py, the most used Python client.
Every check compares a real value; the script prints each failed check and exits 1 if any
failed, 0 if all passed. It runs against redis-server too (tests/clients.rs), so its
expectations are Redis's own.
"""

import sys
import threading
import time

import redis

FAILURES = []


def check(name, got, want):
    if got != want:
        FAILURES.append(name)
        print(f"FAIL {name}: got {got!r}, want {want!r}", flush=True)


def check_raises(name, fn, text):
    try:
        fn()
    except redis.exceptions.ResponseError as e:
        if text not in str(e):
            FAILURES.append(name)
            print(f"FAIL {name}: error {str(e)!r} does not contain {text!r}", flush=True)
        return
    FAILURES.append(name)
    print(f"FAIL {name}: no error raised, want one containing {text!r}", flush=True)


def strings(r):
    r.flushall()
    check("set", r.set("s", "v"), True)
    check("get", r.get("s"), b"v")
    check("get missing", r.get("missing"), None)
    check("set nx existing", r.set("s", "x", nx=True), None)
    check("set xx", r.set("s", "w", xx=True), True)
    check("set get", r.set("s", "z", get=True), b"w")
    check("set ex", r.set("e", "1", ex=100), True)
    ttl = r.ttl("e")
    check("ttl in range", 0 < ttl <= 100, True)
    check("pttl missing", r.pttl("missing"), -2)
    check("persist", r.persist("e"), True)
    check("ttl after persist", r.ttl("e"), -1)
    check("incr", r.incr("n"), 1)
    check("incrby", r.incrby("n", 41), 42)
    check("decrby", r.decrby("n", 2), 40)
    check("incrbyfloat", r.incrbyfloat("f", 1.5), 1.5)
    check("incrbyfloat again", r.incrbyfloat("f", "0.1"), 1.6)
    check_raises("incr wrong", lambda: r.incr("s"), "not an integer")
    check("append", r.append("s", "zz"), 3)
    check("strlen", r.strlen("s"), 3)
    check("getrange", r.getrange("s", 0, 1), b"zz")
    check("mset", r.mset({"a": "1", "b": "2"}), True)
    check("mget", r.mget(["a", "b", "nope"]), [b"1", b"2", None])
    check("msetnx", r.msetnx({"a": "9", "c": "3"}), False)
    check("getdel", r.getdel("a"), b"1")
    check("exists", r.exists("a", "b"), 1)
    check("delete", r.delete("b", "nope"), 1)
    check("type", r.type("s"), b"string")
    check("rename", r.rename("s", "s2"), True)
    check("keys", sorted(r.keys("s*")), [b"s2"])
    check("expire", r.expire("s2", 50), True)
    check("binary", r.set("bin", bytes(range(256))) and r.get("bin"), bytes(range(256)))
    big = b"x" * (1 << 20)
    r.set("big", big)
    check("1MB value", r.get("big"), big)
    check("dbsize", r.dbsize(), len(r.keys("*")))
    names = set()
    for k in r.scan_iter(match="*", count=2):
        names.add(k)
    check("scan_iter", names, set(r.keys("*")))


def lists(r):
    check("rpush", r.rpush("l", "a", "b", "c"), 3)
    check("lpush", r.lpush("l", "z"), 4)
    check("lrange", r.lrange("l", 0, -1), [b"z", b"a", b"b", b"c"])
    check("llen", r.llen("l"), 4)
    check("lindex", r.lindex("l", -1), b"c")
    check("lpop", r.lpop("l"), b"z")
    check("rpop count", r.rpop("l", 2), [b"c", b"b"])
    check("lpos", r.lpos("l", "a"), 0)
    check("lset", r.lset("l", 0, "A"), True)
    check("linsert", r.linsert("l", "after", "A", "B"), 2)
    check("lrem", r.lrem("l", 0, "B"), 1)
    check("ltrim", r.ltrim("l", 0, 0), True)
    check("lmove", r.lmove("l", "l2", "LEFT", "RIGHT"), b"A")
    check("emptied list is gone", r.exists("l"), 0)
    check("blpop ready", r.blpop(["l2"], timeout=1), (b"l2", b"A"))


def lists_blocking(port):
    r = redis.Redis(port=port)
    r.delete("bq")
    got = {}

    def waiter():
        c = redis.Redis(port=port)
        got["v"] = c.blpop(["bq"], timeout=5)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    r.rpush("bq", "job")
    t.join(10)
    check("blpop woken by rpush", got.get("v"), (b"bq", b"job"))
    check("blpop timeout", r.blpop(["nothing"], timeout=0.1), None)


def hashes(r):
    check("hset", r.hset("h", mapping={"f1": "v1", "f2": "v2"}), 2)
    check("hget", r.hget("h", "f1"), b"v1")
    check("hgetall", r.hgetall("h"), {b"f1": b"v1", b"f2": b"v2"})
    check("hmget", r.hmget("h", ["f1", "nope"]), [b"v1", None])
    check("hincrby", r.hincrby("h", "n", 5), 5)
    check("hincrbyfloat", r.hincrbyfloat("h", "x", 2.5), 2.5)
    check("hexists", r.hexists("h", "f2"), True)
    check("hdel", r.hdel("h", "f2", "nope"), 1)
    check("hlen", r.hlen("h"), 3)
    check("hkeys", sorted(r.hkeys("h")), [b"f1", b"n", b"x"])
    check("hsetnx", r.hsetnx("h", "f1", "other"), False)
    check("hstrlen", r.hstrlen("h", "f1"), 2)
    check_raises("wrongtype", lambda: r.lpush("h", "x"), "WRONGTYPE")


def sets(r):
    check("sadd", r.sadd("set1", "a", "b", "c"), 3)
    check("sadd dup", r.sadd("set1", "a"), 0)
    r.sadd("set2", "b", "c", "d")
    check("smembers", r.smembers("set1"), {b"a", b"b", b"c"})
    check("sismember", r.sismember("set1", "a"), True)
    check("smismember", r.smismember("set1", ["a", "x"]), [True, False])
    check("sinter", r.sinter("set1", "set2"), {b"b", b"c"})
    check("sunion", r.sunion("set1", "set2"), {b"a", b"b", b"c", b"d"})
    check("sdiff", r.sdiff("set1", "set2"), {b"a"})
    check("sinterstore", r.sinterstore("set3", ["set1", "set2"]), 2)
    check("scard", r.scard("set3"), 2)
    check("srem", r.srem("set1", "a", "zz"), 1)
    check("spop in set", r.spop("set3") in {b"b", b"c"}, True)
    check("srandmember", r.srandmember("set2") in {b"b", b"c", b"d"}, True)
    check("smove", r.smove("set2", "set1", "d"), True)


def zsets(r):
    check("zadd", r.zadd("z", {"one": 1, "two": 2, "three": 3}), 3)
    check("zscore", r.zscore("z", "two"), 2.0)
    check("zrange", r.zrange("z", 0, -1), [b"one", b"two", b"three"])
    check(
        "zrange withscores",
        r.zrange("z", 0, -1, withscores=True),
        [(b"one", 1.0), (b"two", 2.0), (b"three", 3.0)],
    )
    check("zrevrange", r.zrevrange("z", 0, 0), [b"three"])
    check("zrangebyscore", r.zrangebyscore("z", 2, "+inf"), [b"two", b"three"])
    check("zincrby", r.zincrby("z", 0.5, "one"), 1.5)
    check("zrank", r.zrank("z", "three"), 2)
    check("zcard", r.zcard("z"), 3)
    check("zcount", r.zcount("z", "(1.5", 3), 2)
    check("zrem", r.zrem("z", "two"), 1)
    check("zpopmin", r.zpopmin("z"), [(b"one", 1.5)])
    check("zadd incr", r.zadd("z", {"three": 1}, incr=True), 4.0)
    check("zadd nx", r.zadd("z", {"three": 100}, nx=True), 0)
    check("zmscore", r.zmscore("z", ["three", "nope"]), [4.0, None])


def pipelines_and_transactions(r, port):
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.set(f"p{i}", i)
    for i in range(100):
        p.get(f"p{i}")
    res = p.execute()
    check("pipeline sets", res[:100], [True] * 100)
    check("pipeline gets", res[100:], [str(i).encode() for i in range(100)])

    p = r.pipeline(transaction=True)
    p.incr("tx").incr("tx").get("tx")
    check("multi/exec", p.execute(), [1, 2, b"2"])

    # Errors inside EXEC are returned in place (raise_on_error=False).
    r.set("str", "x")
    p = r.pipeline(transaction=True)
    p.set("ok1", "1").incr("str").set("ok2", "2")
    res = p.execute(raise_on_error=False)
    check("exec runtime error kept", isinstance(res[1], redis.exceptions.ResponseError), True)
    check("exec others ran", (res[0], res[2]), (True, True))

    # WATCH: another client changes the key -> WatchError; retry succeeds.
    other = redis.Redis(port=port)
    r.set("bal", 10)
    attempts = 0
    with r.pipeline() as p:
        while True:
            try:
                p.watch("bal")
                attempts += 1
                cur = int(p.get("bal"))
                if attempts == 1:
                    other.set("bal", 100)
                p.multi()
                p.set("bal", cur + 1)
                p.execute()
                break
            except redis.WatchError:
                continue
    check("watch retried once", attempts, 2)
    check("watch result", r.get("bal"), b"101")

    # The transaction() helper.
    def incr_double(pipe):
        v = int(pipe.get("bal"))
        pipe.multi()
        pipe.set("bal", v * 2)

    r.transaction(incr_double, "bal")
    check("transaction helper", r.get("bal"), b"202")


def pubsub(port):
    r = redis.Redis(port=port)
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("news")
    ps.psubscribe("sport.*")
    # Wait until both subscriptions are registered.
    deadline = time.time() + 5
    while time.time() < deadline and r.pubsub_numsub("news") != [(b"news", 1)]:
        time.sleep(0.01)
    check("numsub", r.pubsub_numsub("news"), [(b"news", 1)])
    check("numpat", r.pubsub_numpat(), 1)
    check("channels", r.pubsub_channels(), [b"news"])
    check("publish count", r.publish("news", "hello"), 1)
    check("publish pattern count", r.publish("sport.tennis", "ace"), 1)
    got = []
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        m = ps.get_message(timeout=0.5)
        if m:
            got.append((m["type"], m.get("pattern"), m["channel"], m["data"]))
    check(
        "messages",
        got,
        [
            ("message", None, b"news", b"hello"),
            ("pmessage", b"sport.*", b"sport.tennis", b"ace"),
        ],
    )
    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()


def resp3(port):
    r = redis.Redis(port=port, protocol=3)
    r.flushall()
    check("resp3 ping", r.ping(), True)
    r.hset("h", mapping={"a": "1"})
    check("resp3 hgetall (map)", r.hgetall("h"), {b"a": b"1"})
    r.sadd("s", "x")
    check("resp3 smembers (set)", r.smembers("s"), {b"x"})
    r.zadd("z", {"m": 2.5})
    check("resp3 zscore (double)", r.zscore("z", "m"), 2.5)
    check("resp3 zrange withscores", r.zrange("z", 0, -1, withscores=True), [[b"m", 2.5]])
    check("resp3 get missing (null)", r.get("nope"), None)
    info = r.execute_command("HELLO", 3)
    check("resp3 hello proto", info.get(b"proto", info.get("proto")), 3)

    # Pub/sub with push messages.
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("r3")
    deadline = time.time() + 5
    while time.time() < deadline and r.pubsub_numsub("r3") != [(b"r3", 1)]:
        time.sleep(0.01)
    check("resp3 publish", r.publish("r3", "pushed"), 1)
    m = None
    deadline = time.time() + 5
    while m is None and time.time() < deadline:
        m = ps.get_message(timeout=0.5)
    check("resp3 push message", m and (m["type"], m["channel"], m["data"]), ("message", b"r3", b"pushed"))
    ps.close()


def main():
    if len(sys.argv) != 2:
        print("usage: smoke.py PORT", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    r = redis.Redis(port=port, socket_timeout=20)
    sections = [
        ("strings", lambda: strings(r)),
        ("lists", lambda: lists(r)),
        ("lists_blocking", lambda: lists_blocking(port)),
        ("hashes", lambda: hashes(r)),
        ("sets", lambda: sets(r)),
        ("zsets", lambda: zsets(r)),
        ("pipelines_and_transactions", lambda: pipelines_and_transactions(r, port)),
        ("pubsub", lambda: pubsub(port)),
        ("resp3", lambda: resp3(port)),
    ]
    for name, fn in sections:
        try:
            fn()
        except Exception as e:  # a crash in one section must not hide the others
            FAILURES.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print("all redis-py checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

//! Generic key and database commands through a real client: replies and error texts compared
//! with redis-server 7.0 side by side, plus SCAN's iteration guarantees, RANDOMKEY, SWAPDB with
//! WATCH, and RESP3 reply types.

mod common;
use common::compare::{q, run, same_as_redis, same_as_redis_on};
use common::Proc;
use std::collections::HashSet;

#[test]
fn del_exists_type_touch_rename_match_redis() {
    same_as_redis(&[
        &["MSET", "a", "1", "b", "2", "c", "3"],
        &["EXISTS", "a", "a", "nope", "b"],
        &["EXISTS", "nope"],
        &["TYPE", "a"],
        &["TYPE", "nope"],
        &["TOUCH", "a", "nope", "b", "a"],
        &["DEL", "a", "nope", "a"],
        &["UNLINK", "b", "c", "b"],
        &["DEL", "x"],
        &["DBSIZE"],
        &["SET", "src", "v"],
        &["RENAME", "src", "dst"],
        &["GET", "dst"],
        &["EXISTS", "src"],
        &["RENAME", "src", "dst"],
        &["RENAME", "nope", "nope"],
        &["RENAME", "dst", "dst"],
        &["RENAMENX", "dst", "dst"],
        &["SET", "other", "o"],
        &["RENAMENX", "dst", "other"],
        &["RENAMENX", "dst", "fresh"],
        &["RENAMENX", "nope", "x"],
        &["RENAME", "fresh", "other"],
        &["MGET", "fresh", "other"],
        &["SET", "t", "v", "EX", "1000"],
        &["RENAME", "t", "t2"],
        &["EXPIRETIME", "t"],
        &["PERSIST", "t2"],
        &["TTL", "t2"],
        &["DEL"],
        &["RENAME", "a"],
    ]);
}

#[test]
fn expire_family_matches_redis() {
    same_as_redis(&[
        &["SET", "k", "v"],
        &["EXPIRE", "nope", "100"],
        &["TTL", "nope"],
        &["PTTL", "nope"],
        &["EXPIRETIME", "nope"],
        &["PEXPIRETIME", "nope"],
        &["TTL", "k"],
        &["PTTL", "k"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["EXPIREAT", "k", "4000000000"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["PEXPIREAT", "k", "4000000000123"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["EXPIREAT", "k", "4100000000", "NX"],
        &["EXPIREAT", "k", "4100000000", "XX"],
        &["EXPIREAT", "k", "4000000000", "GT"],
        &["EXPIREAT", "k", "4200000000", "GT"],
        &["EXPIREAT", "k", "4300000000", "LT"],
        &["EXPIREAT", "k", "4000000000", "LT"],
        &["EXPIRETIME", "k"],
        &["PERSIST", "k"],
        &["PERSIST", "k"],
        &["PERSIST", "nope"],
        &["EXPIREAT", "k", "4000000000", "XX"],
        &["EXPIREAT", "k", "4000000000", "GT"],
        &["EXPIREAT", "k", "4000000000", "LT"],
        &["PERSIST", "k"],
        &["EXPIREAT", "k", "4000000000", "NX"],
        &["EXPIREAT", "k", "4000000000", "NX"],
        &["EXPIRE", "k", "100", "NX", "XX"],
        &["EXPIRE", "k", "100", "NX", "GT"],
        &["EXPIRE", "k", "100", "GT", "LT"],
        &["EXPIRE", "k", "100", "FOO"],
        &["EXPIRE", "k", "abc"],
        &["EXPIRE", "k", "9223372036854775807"],
        &["EXPIRE", "k", "-9223372036854775808"],
        &["PEXPIRE", "k", "9223372036854775807"],
        &["EXPIREAT", "k", "9223372036854775807"],
        &["PEXPIREAT", "k", "9223372036854775807"],
        &["PEXPIRETIME", "k"],
        &["SET", "p", "v"],
        &["EXPIRE", "p", "-1"],
        &["EXISTS", "p"],
        &["SET", "p", "v"],
        &["PEXPIREAT", "p", "1"],
        &["EXISTS", "p"],
        &["SET", "p", "v"],
        &["EXPIREAT", "p", "0"],
        &["EXISTS", "p"],
        &["SET", "p", "v"],
        &["EXPIRE", "p", "0"],
        &["EXISTS", "p"],
        &["EXPIRE", "k"],
        &["TTL"],
    ]);
}

#[test]
fn copy_move_and_databases_match_redis() {
    same_as_redis(&[
        &["SET", "a", "1"],
        &["COPY", "a", "b"],
        &["GET", "b"],
        &["COPY", "a", "b"],
        &["COPY", "a", "b", "REPLACE"],
        &["COPY", "a", "a"],
        &["COPY", "a", "a", "DB", "0"],
        &["COPY", "a", "a", "DB", "1"],
        &["COPY", "a", "a", "DB", "x"],
        &["COPY", "a", "a", "DB", "99"],
        &["COPY", "a", "a", "DB", "-1"],
        &["COPY", "a", "a", "DB"],
        &["COPY", "a", "a", "FOO"],
        &["COPY", "nope", "x"],
        &["SET", "t", "v", "EX", "1000"],
        &["COPY", "t", "t2"],
        &["TTL", "t2"],
        &["MOVE", "a", "0"],
        &["MOVE", "a", "x"],
        &["MOVE", "a", "99"],
        &["MOVE", "a", "-1"],
        &["MOVE", "nope", "2"],
        &["MOVE", "a", "2"],
        &["MOVE", "b", "1"],
        &["EXISTS", "a", "b"],
        &["SELECT", "2"],
        &["GET", "a"],
        &["SELECT", "1"],
        &["GET", "a"],
        &["GET", "b"],
        &["SET", "a", "db1"],
        &["SELECT", "0"],
        &["SET", "a", "db0"],
        &["MOVE", "a", "1"],
        &["DBSIZE"],
        &["SWAPDB", "0", "1"],
        &["DBSIZE"],
        &["GET", "a"],
        &["GET", "b"],
        &["SWAPDB", "0", "0"],
        &["SWAPDB", "a", "1"],
        &["SWAPDB", "1", "a"],
        &["SWAPDB", "0", "99"],
        &["SWAPDB", "-1", "0"],
        &["SWAPDB", "0"],
        &["FLUSHDB", "FOO"],
        &["FLUSHDB", "SYNC", "ASYNC"],
        &["FLUSHALL", "FOO"],
        &["FLUSHDB"],
        &["DBSIZE"],
        &["SELECT", "2"],
        &["DBSIZE"],
        &["FLUSHDB", "ASYNC"],
        &["DBSIZE"],
        &["SELECT", "1"],
        &["DBSIZE"],
        &["FLUSHALL", "SYNC"],
        &["DBSIZE"],
        &["MSET", "x", "1", "y", "2"],
        &["FLUSHALL", "ASYNC"],
        &["DBSIZE"],
        &["FLUSHALL"],
        &["DBSIZE", "x"],
        &["RANDOMKEY"],
        &["SET", "only", "1"],
        &["RANDOMKEY"],
        &["RANDOMKEY", "x"],
    ]);
}

#[test]
fn keys_and_object_match_redis() {
    same_as_redis(&[
        &[
            "MSET", "user:1", "a", "user:2", "b", "user:10", "c", "admin", "d", "u[x", "e",
        ],
        &["KEYS", "*"],
        &["KEYS", "user:*"],
        &["KEYS", "user:?"],
        &["KEYS", "user:[0-1]*"],
        &["KEYS", "*min"],
        &["KEYS", "u\\[*"],
        &["KEYS", "nomatch*"],
        &["KEYS", ""],
        &["SET", "t", "v", "PXAT", "1"],
        &["KEYS", "t"],
        &["SET", "i", "123"],
        &["SET", "big", "10001"],
        &["SET", "s", "abc"],
        &[
            "SET",
            "r",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ],
        &["OBJECT", "ENCODING", "i"],
        &["OBJECT", "ENCODING", "s"],
        &["OBJECT", "ENCODING", "r"],
        &["OBJECT", "ENCODING", "nope"],
        &["OBJECT", "REFCOUNT", "i"],
        &["OBJECT", "REFCOUNT", "big"],
        &["OBJECT", "REFCOUNT", "s"],
        &["OBJECT", "REFCOUNT", "nope"],
        &["OBJECT", "IDLETIME", "nope"],
        &["OBJECT", "FREQ", "i"],
        &["OBJECT", "HELP"],
        &["OBJECT", "help"],
        &["OBJECT", "HELP", "x"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "ENCODING", "a", "b"],
        &["OBJECT", "FOO", "a"],
        &["OBJECT", "FOO"],
        &["OBJECT"],
        &["SCAN", "x"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT", "x"],
        &["SCAN", "0", "COUNT"],
        &["SCAN", "0", "FOO", "bar"],
        &["SCAN", "0", "MATCH", "nomatch*", "COUNT", "1000"],
        &["SCAN", "0", "TYPE", "list", "COUNT", "1000"],
        &["SCAN", "0", "TYPE", "nosuchtype", "COUNT", "1000"],
    ]);
}

#[test]
fn object_idletime_and_freq() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "k"]);
    assert!((0..=1).contains(&idle), "{idle}");
    let lfu = Proc::node(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = lfu.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    // A new key starts at LFU_INIT_VAL (5); OBJECT FREQ itself does not touch it.
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "FREQ", "k"]), 5);
    for _ in 0..200 {
        let _: String = q(&mut c, &["GET", "k"]);
    }
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "k"]);
    assert!(f > 5 && f < 255, "{f}");
    let e = run(&mut c, &["OBJECT", "IDLETIME", "k"]);
    assert!(
        e.starts_with("-ERR An LFU maxmemory policy is selected, idle time not tracked"),
        "{e}"
    );
}

#[test]
fn resp3_reply_types_match_redis() {
    same_as_redis_on(
        "?protocol=resp3",
        &[
            &["SET", "k", "1"],
            &["TYPE", "k"],
            &["TYPE", "nope"],
            &["OBJECT", "HELP"],
            &["OBJECT", "ENCODING", "k"],
            &["SCAN", "0", "COUNT", "100"],
            &["KEYS", "*"],
            &["RANDOMKEY"],
            &["EXPIRETIME", "k"],
            &["MGET", "k", "nope"],
            &["GET", "nope"],
            &["INCRBYFLOAT", "k", "0.5"],
        ],
    );
}

/// Keys of every type report their type and Redis's encoding (for the collection commands
/// this build has).
#[test]
fn types_and_encodings_of_collections_match_redis() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut have = |probe: &[&str]| {
        let ok = !run(&mut c, probe).contains("not implemented");
        if !ok {
            eprintln!("{} not available in this build: skipping it", probe[0]);
        }
        ok
    };
    let (list, hash) = (have(&["RPUSH", "p1", "x"]), have(&["HSET", "p2", "f", "v"]));
    let (set, zset) = (have(&["SADD", "p3", "1"]), have(&["ZADD", "p4", "1", "m"]));
    let long = "x".repeat(65);
    let many: Vec<String> = (0..129).map(|i| i.to_string()).collect();
    let mut script: Vec<Vec<String>> = Vec::new();
    let mut add = |v: &[&str]| script.push(v.iter().map(|s| s.to_string()).collect());
    let mut keys = vec![];
    if list {
        add(&["RPUSH", "l", "a", "b"]);
        add(&["COPY", "l", "l2"]);
        add(&["RPUSH", "l2", "c"]);
        add(&["LRANGE", "l", "0", "-1"]);
        add(&["LRANGE", "l2", "0", "-1"]);
        add(&["GET", "l"]);
        keys.push("l");
    }
    if hash {
        add(&["HSET", "h", "f", "v"]);
        add(&["HSET", "hbig", "f", &long]);
        let mut hmany = vec!["HSET", "hmany"];
        for m in &many {
            hmany.push(m);
            hmany.push(m);
        }
        add(&hmany);
        keys.extend(["h", "hbig", "hmany"]);
    }
    if set {
        add(&["SADD", "si", "1", "2", "-3"]);
        add(&["SADD", "ss", "1", "a"]);
        keys.extend(["si", "ss"]);
    }
    if zset {
        add(&["ZADD", "z", "1", "m"]);
        add(&["ZADD", "zbig", "1", &long]);
        let mut zmany = vec!["ZADD", "zmany"];
        for m in &many {
            zmany.push("1");
            zmany.push(m);
        }
        add(&zmany);
        keys.extend(["z", "zbig", "zmany"]);
    }
    for k in keys {
        add(&["TYPE", k]);
        add(&["OBJECT", "ENCODING", k]);
        add(&["SET", k, "v", "GET"]);
    }
    for t in ["string", "list", "hash", "set", "zset"] {
        add(&["SCAN", "0", "TYPE", t, "COUNT", "1000"]);
    }
    let refs: Vec<Vec<&str>> = script
        .iter()
        .map(|v| v.iter().map(|s| s.as_str()).collect())
        .collect();
    let slices: Vec<&[&str]> = refs.iter().map(|v| v.as_slice()).collect();
    same_as_redis(&slices);
}

/// Collects a full SCAN iteration.
fn scan_all(c: &mut redis::Connection, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let (next, keys): (String, Vec<String>) = q(c, &args);
        calls += 1;
        out.extend(keys);
        cursor = next;
        if cursor == "0" {
            return (out, calls);
        }
        assert!(calls < 100_000, "SCAN does not terminate");
    }
}

#[test]
fn scan_returns_every_key_with_match_count_and_type() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("SET").arg(format!("user:{i}")).arg(i).ignore();
        p.cmd("SET").arg(format!("item:{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let (all, calls) = scan_all(&mut c, &[]);
    let set: HashSet<&String> = all.iter().collect();
    assert_eq!(set.len(), 6000);
    assert!(all.len() >= 6000);
    assert!(calls > 100, "COUNT 10 should take many calls, took {calls}");
    let (users, _) = scan_all(&mut c, &["MATCH", "user:*", "COUNT", "100"]);
    let users: HashSet<String> = users.into_iter().collect();
    assert_eq!(users.len(), 3000);
    assert!(users.iter().all(|k| k.starts_with("user:")));
    let (strings, calls) = scan_all(&mut c, &["TYPE", "string", "COUNT", "1000"]);
    assert_eq!(strings.iter().collect::<HashSet<_>>().len(), 6000);
    assert!(calls <= 20, "{calls}");
    // A cursor past the end (strtoul wraps "-1") ends the iteration.
    let (next, _): (String, Vec<String>) = q(&mut c, &["SCAN", "-1"]);
    assert_eq!(next, "0");
    let (lists, _) = scan_all(&mut c, &["TYPE", "list"]);
    assert!(lists.is_empty());
    // Other databases are not mixed in.
    let _: () = q(&mut c, &["SELECT", "5"]);
    let (none, _) = scan_all(&mut c, &[]);
    assert!(none.is_empty());
}

#[test]
fn scan_returns_stable_keys_despite_deletes_and_inserts() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..4000 {
        p.cmd("SET").arg(format!("stable:{i}")).arg(i).ignore();
        p.cmd("SET").arg(format!("doomed:{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut step = 0;
    loop {
        let (next, keys): (String, Vec<String>) = q(&mut c, &["SCAN", &cursor, "COUNT", "50"]);
        seen.extend(keys);
        // Between calls: delete some doomed keys and add new ones.
        let mut p = redis::pipe();
        for j in 0..40 {
            p.cmd("DEL")
                .arg(format!("doomed:{}", (step * 40 + j) % 4000))
                .ignore();
            p.cmd("SET").arg(format!("new:{step}:{j}")).arg(1).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
        step += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    for i in 0..4000 {
        assert!(
            seen.contains(&format!("stable:{i}")),
            "stable:{i} never returned"
        );
    }
}

#[test]
fn scan_keys_and_randomkey_skip_expired_keys() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..500 {
        p.cmd("SET")
            .arg(format!("gone:{i}"))
            .arg(1)
            .arg("PX")
            .arg(1)
            .ignore();
    }
    p.cmd("SET").arg("live").arg(1).ignore();
    let _: () = p.query(&mut c).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(10));
    let (keys, _) = scan_all(&mut c, &["COUNT", "1000"]);
    assert_eq!(keys, vec!["live".to_string()]);
    let keys: Vec<String> = q(&mut c, &["KEYS", "*"]);
    assert_eq!(keys, vec!["live".to_string()]);
    for _ in 0..20 {
        let k: Option<String> = q(&mut c, &["RANDOMKEY"]);
        assert_eq!(k.as_deref(), Some("live"));
    }
    let _: i64 = q(&mut c, &["DEL", "live"]);
    let _: () = q(&mut c, &["SET", "x", "1", "PX", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let k: Option<String> = q(&mut c, &["RANDOMKEY"]);
    assert_eq!(k, None);
}

#[test]
fn randomkey_covers_the_keyspace() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    for i in 0..10 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    let mut seen = HashSet::new();
    for _ in 0..500 {
        let k: String = q(&mut c, &["RANDOMKEY"]);
        seen.insert(k);
    }
    assert_eq!(seen.len(), 10);
}

#[test]
fn swapdb_flushdb_and_writes_abort_watchers() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut other = node.conn();
    let _: () = q(&mut c, &["SET", "w", "0"]);
    for (cmd, expect_abort) in [
        (vec!["SWAPDB", "0", "1"], true),
        (vec!["FLUSHDB"], true),
        (vec!["RENAME", "w", "w2"], true),
        (vec!["EXPIRE", "w", "100"], true),
        (vec!["PERSIST", "w"], true),
        (vec!["MOVE", "w", "3"], true),
        (vec!["COPY", "src", "w", "REPLACE"], true),
        (vec!["GET", "w"], false),
        (vec!["TYPE", "w"], false),
        (vec!["TTL", "w"], false),
    ] {
        let _: () = q(&mut c, &["FLUSHALL"]);
        let _: () = q(&mut c, &["MSET", "w", "0", "src", "s"]);
        let _: i64 = q(&mut c, &["EXPIRE", "w", "1000"]);
        let _: () = q(&mut c, &["WATCH", "w"]);
        let _: redis::Value = q(&mut other, &cmd.iter().map(|s| &**s).collect::<Vec<_>>());
        let _: () = q(&mut c, &["MULTI"]);
        let _: () = q(&mut c, &["SET", "w", "1"]);
        let r: redis::Value = q(&mut c, &["EXEC"]);
        assert_eq!(
            r == redis::Value::Nil,
            expect_abort,
            "{cmd:?}: EXEC gave {r:?}"
        );
    }
}

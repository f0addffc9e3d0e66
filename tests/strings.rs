//! String commands through a real client: every command's replies and error texts are compared
//! with redis-server 7.0 side by side, then TTL-sensitive and size-sensitive behaviour is
//! checked directly.

mod common;
use common::compare::{q, run, same_as_redis};
use common::Proc;
use std::time::{Duration, Instant};

#[test]
fn get_set_and_options_match_redis() {
    same_as_redis(&[
        &["GET", "k"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["SET", "k", "v2", "GET"],
        &["SET", "k", "v3", "NX"],
        &["SET", "k", "v3", "NX", "GET"],
        &["SET", "new", "v", "XX"],
        &["SET", "new", "v", "XX", "GET"],
        &["EXISTS", "new"],
        &["SET", "new", "v", "NX", "GET"],
        &["SET", "k", "v4", "XX", "GET"],
        &["SET", "k", "v", "NX", "XX"],
        &["SET", "k", "v", "XX", "NX"],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "EX", "10", "KEEPTTL"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "FOO"],
        &["SET", "k", "v", "PERSIST"],
        &["SET", "k", "v", "EX", "0"],
        &["SET", "k", "v", "EX", "-1"],
        &["SET", "k", "v", "PX", "0"],
        &["SET", "k", "v", "EXAT", "0"],
        &["SET", "k", "v", "PXAT", "-5"],
        &["SET", "k", "v", "EX", "abc"],
        &["SET", "k", "v", "EX", "1.5"],
        &["SET", "k", "v", "EX", "9223372036854775807"],
        &["SET", "k", "v", "EX", "9223372036854775"],
        &["SET", "k", "v", "PX", "9223372036854775807"],
        &["SET", "k", "v", "EXAT", "9223372036854775807"],
        &["GET", "k"],
        &["SET", "k", "v", "ex", "100", "nx"],
        &["SET", "k", "v", "px", "100000", "xx", "get"],
        &["SET", "k", "keep", "KEEPTTL"],
        &["GET", "k"],
        &["SET", "k", "v", "EXAT", "1"],
        &["GET", "k"],
        &["EXISTS", "k"],
        &["SET", "k", "v", "PXAT", "1", "GET"],
        &["SET", "k", "v"],
        &["SET", "k", "v", "PXAT", "1", "GET"],
        &["EXISTS", "k"],
        &["SET", "k", "v", "EXAT", "99999999999"],
        &["GET", "k"],
        &["SET", "bin", "a\r\nb\0c"],
        &["GET", "bin"],
        &["STRLEN", "bin"],
        &["SET", "empty", ""],
        &["GET", "empty"],
        &["STRLEN", "empty"],
        &["SET"],
        &["SET", "k"],
        &["GET"],
        &["GET", "a", "b"],
    ]);
}

#[test]
fn string_variants_match_redis() {
    same_as_redis(&[
        &["SETNX", "a", "1"],
        &["SETNX", "a", "2"],
        &["GET", "a"],
        &["SETEX", "b", "100", "v"],
        &["GET", "b"],
        &["SETEX", "b", "0", "v"],
        &["SETEX", "b", "-1", "v"],
        &["SETEX", "b", "x", "v"],
        &["SETEX", "b", "9223372036854775807", "v"],
        &["PSETEX", "b", "0", "v"],
        &["PSETEX", "b", "100000", "v2"],
        &["GET", "b"],
        &["PSETEX", "b", "-1", "v"],
        &["GETSET", "c", "1"],
        &["GETSET", "c", "2"],
        &["GET", "c"],
        &["GETDEL", "c"],
        &["GETDEL", "c"],
        &["EXISTS", "c"],
        &["SET", "g", "val"],
        &["GETEX", "g"],
        &["GETEX", "g", "EX", "100"],
        &["GETEX", "g", "PERSIST"],
        &["GETEX", "g", "PX", "100000"],
        &["GETEX", "g", "EXAT", "99999999999"],
        &["GETEX", "g", "PXAT", "99999999999999"],
        &["GETEX", "g", "NX"],
        &["GETEX", "g", "KEEPTTL"],
        &["GETEX", "g", "GET"],
        &["GETEX", "g", "PERSIST", "EX", "10"],
        &["GETEX", "g", "EX", "10", "PERSIST"],
        &["GETEX", "g", "EX", "0"],
        &["GETEX", "g", "EX", "abc"],
        &["GETEX", "g", "EX"],
        &["GETEX", "missing", "EX", "0"],
        &["GETEX", "missing"],
        &["GETEX", "g", "EXAT", "1"],
        &["EXISTS", "g"],
        &["MSET", "m1", "a", "m2", "b"],
        &["MGET", "m1", "nope", "m2", "m1"],
        &["MSET", "m1"],
        &["MSET", "m1", "a", "m2"],
        &["MSETNX", "m1", "x", "m3", "y"],
        &["MGET", "m1", "m3"],
        &["MSETNX", "m3", "x", "m4", "y"],
        &["MGET", "m3", "m4"],
        &["MSETNX", "m5"],
        &["MSETNX", "m5", "a", "m5", "b"],
        &["GET", "m5"],
    ]);
}

#[test]
fn counters_match_redis() {
    same_as_redis(&[
        &["INCR", "n"],
        &["INCR", "n"],
        &["DECR", "n"],
        &["INCRBY", "n", "100"],
        &["DECRBY", "n", "50"],
        &["INCRBY", "n", "-1000"],
        &["GET", "n"],
        &["INCRBY", "n", "abc"],
        &["INCRBY", "n", "1.5"],
        &["INCRBY", "n", "99999999999999999999"],
        &["DECR", "d"],
        &["SET", "n", "9223372036854775807"],
        &["INCR", "n"],
        &["INCRBY", "n", "0"],
        &["SET", "n", "-9223372036854775808"],
        &["DECR", "n"],
        &["DECRBY", "n", "1"],
        &["DECRBY", "x", "-9223372036854775808"],
        &["INCRBY", "x", "-9223372036854775808"],
        &["SET", "s", "abc"],
        &["INCR", "s"],
        &["SET", "s", " 1"],
        &["INCR", "s"],
        &["SET", "s", "01"],
        &["INCR", "s"],
        &["SET", "s", "1 "],
        &["INCR", "s"],
        &["SET", "s", "+1"],
        &["INCR", "s"],
        &["SET", "s", "-0"],
        &["INCR", "s"],
        &["SET", "s", "12345678901234567890"],
        &["INCR", "s"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "f", "-3"],
        &["INCRBYFLOAT", "f", "10.50"],
        &["INCRBYFLOAT", "f", "5.0e3"],
        &["INCRBYFLOAT", "f", "-5.0E3"],
        &["INCRBYFLOAT", "f", "abc"],
        &["INCRBYFLOAT", "f", ""],
        &["INCRBYFLOAT", "f", "nan"],
        &["GET", "f"],
        &["SET", "f", "inf"],
        &["INCRBYFLOAT", "f", "1"],
        &["SET", "f", "abc"],
        &["INCRBYFLOAT", "f", "1"],
        &["SET", "f", "17179869184"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "g", "inf"],
        &["EXISTS", "g"],
        &["INCR", "a", "b"],
        &["INCRBY", "a"],
    ]);
}

#[test]
fn ranges_match_redis() {
    same_as_redis(&[
        &["APPEND", "a", "hello"],
        &["APPEND", "a", " world"],
        &["APPEND", "a", ""],
        &["GET", "a"],
        &["STRLEN", "a"],
        &["STRLEN", "missing"],
        &["GETRANGE", "a", "0", "4"],
        &["GETRANGE", "a", "-5", "-1"],
        &["GETRANGE", "a", "0", "-1"],
        &["GETRANGE", "a", "5", "3"],
        &["GETRANGE", "a", "-1", "-5"],
        &["GETRANGE", "a", "-100", "100"],
        &["GETRANGE", "a", "100", "200"],
        &["GETRANGE", "a", "0", "0"],
        &["GETRANGE", "a", "x", "1"],
        &["GETRANGE", "missing", "0", "10"],
        &["SUBSTR", "a", "0", "2"],
        &["SETRANGE", "a", "6", "WORLD"],
        &["GET", "a"],
        &["SETRANGE", "a", "15", "!"],
        &["GET", "a"],
        &["SETRANGE", "a", "0", ""],
        &["SETRANGE", "a", "-1", "x"],
        &["SETRANGE", "a", "x", "x"],
        &["SETRANGE", "a", "536870912", "x"],
        &["SETRANGE", "a", "536870911", ""],
        &["SETRANGE", "pad", "5", "x"],
        &["GET", "pad"],
        &["SETRANGE", "none", "5", ""],
        &["EXISTS", "none"],
        &["SETRANGE", "none", "536870912", ""],
        &["SETRANGE", "none", "536870912", "x"],
        &["SET", "n", "12"],
        &["APPEND", "n", "3"],
        &["GET", "n"],
        &["INCR", "n"],
        &["SETRANGE", "n", "0", "9"],
        &["GET", "n"],
        &["SET", "emb", "12345678901234567890123456789012345678901234"],
        &["OBJECT", "ENCODING", "emb"],
        &["APPEND", "emb", "5"],
        &["OBJECT", "ENCODING", "emb"],
        &["SET", "i", "123"],
        &["OBJECT", "ENCODING", "i"],
        &["SET", "i", "-9223372036854775808"],
        &["OBJECT", "ENCODING", "i"],
        &["SET", "i", "abc"],
        &["OBJECT", "ENCODING", "i"],
    ]);
}

/// Keys of another type answer WRONGTYPE to every string command (needs RPUSH).
#[test]
fn wrongtype_matches_redis() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    if run(&mut c, &["RPUSH", "l", "x"]).contains("not implemented") {
        eprintln!("RPUSH not available in this build: skipping");
        return;
    }
    same_as_redis(&[
        &["RPUSH", "l", "x"],
        &["GET", "l"],
        &["SET", "l", "v", "GET"],
        &["GETSET", "l", "v"],
        &["GETDEL", "l"],
        &["GETEX", "l"],
        &["INCR", "l"],
        &["INCRBYFLOAT", "l", "1"],
        &["APPEND", "l", "x"],
        &["STRLEN", "l"],
        &["GETRANGE", "l", "0", "1"],
        &["SETRANGE", "l", "0", "x"],
        &["MGET", "l"],
        &["SET", "l", "v"],
        &["GET", "l"],
    ]);
}

#[test]
fn set_ex_px_sets_ttl_and_big_values_round_trip() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let _: () = q(&mut c, &["SET", "k", "v", "EX", "100"]);
    let ttl: i64 = q(&mut c, &["TTL", "k"]);
    assert!((99..=100).contains(&ttl), "{ttl}");
    let _: () = q(&mut c, &["SET", "k", "v", "PX", "5000"]);
    let pttl: i64 = q(&mut c, &["PTTL", "k"]);
    assert!((4000..=5000).contains(&pttl), "{pttl}");
    let _: () = q(&mut c, &["SET", "k", "v2", "KEEPTTL"]);
    let pttl: i64 = q(&mut c, &["PTTL", "k"]);
    assert!(
        (4000..=5000).contains(&pttl),
        "KEEPTTL lost the TTL: {pttl}"
    );
    let _: () = q(&mut c, &["INCRBYFLOAT", "f", "1"]);
    let _: () = q(&mut c, &["SET", "k", "v3"]);
    assert_eq!(
        q::<i64>(&mut c, &["TTL", "k"]),
        -1,
        "SET must clear the TTL"
    );
    let _: () = q(&mut c, &["SETEX", "k", "50", "v"]);
    assert!((49..=50).contains(&q::<i64>(&mut c, &["TTL", "k"])));
    let _: i64 = q(&mut c, &["INCR", "k2"]);
    let _: i64 = q(&mut c, &["EXPIRE", "k2", "100"]);
    let _: i64 = q(&mut c, &["INCR", "k2"]);
    let _: i64 = q(&mut c, &["APPEND", "k2", "0"]);
    let _: i64 = q(&mut c, &["SETRANGE", "k2", "0", "3"]);
    assert!(
        q::<i64>(&mut c, &["TTL", "k2"]) > 0,
        "in-place writes keep the TTL"
    );
    let _: String = q(&mut c, &["GETSET", "k2", "x"]);
    assert_eq!(
        q::<i64>(&mut c, &["TTL", "k2"]),
        -1,
        "GETSET clears the TTL"
    );

    // Values of every size class, including 1 MiB, are binary-exact.
    for len in [0usize, 1, 22, 23, 44, 45, 1000, 1 << 20] {
        let v: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let _: () = redis::cmd("SET").arg("big").arg(&v).query(&mut c).unwrap();
        let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut c).unwrap();
        assert_eq!(got, v, "len {len}");
        assert_eq!(q::<usize>(&mut c, &["STRLEN", "big"]), len);
    }
    // Repeated APPEND builds the exact concatenation.
    for i in 0..200 {
        let _: i64 = q(&mut c, &["APPEND", "log", &format!("{i},")]);
    }
    let log: String = q(&mut c, &["GET", "log"]);
    let want: String = (0..200).map(|i| format!("{i},")).collect();
    assert_eq!(log, want);
}

#[test]
fn pipelined_sets_and_gets_keep_order() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..2000 {
        p.cmd("SET")
            .arg(format!("key:{i}"))
            .arg(format!("value:{i}"));
        p.cmd("GET").arg(format!("key:{i}"));
        p.cmd("INCR").arg("counter");
    }
    let out: Vec<redis::Value> = p.query(&mut c).unwrap();
    assert_eq!(out.len(), 6000);
    for i in 0..2000 {
        assert_eq!(out[i * 3], redis::Value::Okay);
        assert_eq!(
            out[i * 3 + 1],
            redis::Value::BulkString(format!("value:{i}").into_bytes())
        );
        assert_eq!(out[i * 3 + 2], redis::Value::Int(i as i64 + 1));
    }
    let vals: Vec<Option<String>> = q(&mut c, &["MGET", "key:0", "key:1999", "nokey"]);
    assert_eq!(
        vals,
        vec![Some("value:0".into()), Some("value:1999".into()), None]
    );
}

#[test]
fn set_px_is_never_visible_after_its_deadline() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    for round in 0..5 {
        let t0 = Instant::now();
        let _: () = q(&mut c, &["SET", "t", "v", "PX", "50"]);
        let t1 = Instant::now();
        loop {
            let sent = Instant::now();
            let v: Option<String> = q(&mut c, &["GET", "t"]);
            if sent >= t1 + Duration::from_millis(51) {
                assert_eq!(v, None, "round {round}: key visible after its deadline");
                break;
            }
            if sent + Duration::from_millis(1) < t0 + Duration::from_millis(50) {
                // Well before the deadline it must still be there.
                if Instant::now() < t0 + Duration::from_millis(45) {
                    assert_eq!(v.as_deref(), Some("v"), "round {round}: expired early");
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

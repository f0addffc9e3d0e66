//! Sorted set commands through real clients: ZADD ... ZDIFF, compared with redis-server 7.0
//! byte for byte (RESP2 and RESP3, scores formatted as Redis 7.0 does), plus the properties
//! of random and cursor commands, STORE semantics, pipelining and large sets staying fast.

mod common;
use common::compare::same_script_as_redis;
use common::{Proc, Raw, Resp};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const SCRIPT: &str = "\
zadd z 1 a 2 b 3 c
set str v
sadd st a b
zadd z nx
zadd z nx xx 1
zadd z nx xx 1 a
zadd z gt nx 1 a
zadd z lt gt 1 a
zadd z incr 1 a 2 b
zadd z 1 a x b
zadd z x a
zadd z incr nan a
zadd z 1 a 2
zadd str 1 a
zadd str xx 1 a
zadd nokey xx 1 a
exists nokey
zadd nokey xx incr 1 a
zadd z ch 5 a 2 b 9 d
zadd z nx 7 a 8 e
zadd z xx 7 a 8 f
zadd z xx ch 7 a 8 f
zadd z gt 1 a
zadd z gt ch 10 a
zadd z lt ch 10 a 1 a
zadd z incr 2.5 a
zadd z nx incr 2.5 a
zadd z xx incr 2.5 zz
zadd z gt incr -1 a
zadd z lt incr -1 a
zadd z incr 0 a
zadd z 1e300 big 0.1 tenth -0 nz 1e-7 small 123456789012345678 l
zadd z inf pinf -inf ninf
zadd z incr -inf pinf
zrange z 0 -1 withscores
zscore z tenth
zscore z nokey
zscore nokey a
zscore str a
zmscore z a nope tenth
zmscore nokey a b
zmscore str a
zincrby z 0.2 tenth
zincrby z x a
zincrby str 1 a
zincrby newz 5 m
zincrby newz -inf m
zincrby newz inf m
zcard z
zcard nokey
zcard str
zcount z -inf +inf
zcount z (1 3
zcount z 1 (3
zcount z x 1
zcount z ( 1
zcount z (1 (3
zcount z 5 1
zcount nokey 0 1
zcount str 0 1
zrank z a
zrank z nope
zrank nokey a
zrank str a
zrevrank z a
zrevrank z big
zrank z a x
zrange z 0 -1
zrange z 0 -1 withscores
zrange z 2 4 withscores
zrange z -3 -1
zrange z -100 100
zrange z 5 2
zrange z 100 200
zrange z 0 -1 rev withscores
zrange z 1 3 rev
zrange z -inf +inf byscore withscores
zrange z (1 3 byscore withscores limit 1 1
zrange z +inf -inf byscore rev limit 1 2 withscores
zrange z 3 0 byscore rev
zrange z 0 -1 limit 0 1
zrange z [a [b bylex withscores
zrange z a b bylex
zrange z x 1 byscore
zrange z x 1
zrange z 0 1 rev rev
zrange z 0 1 byscore bylex
zrange z 0 1 foo
zrange str 0 1
zrange nokey x 1
zrange nokey 0 1
zrangebyscore z 0 1 byscore
zrangebyscore z 0 5 limit 0
zrangebyscore z 0 5 limit -1 1
zrangebyscore z 0 5 limit 1 -1
zrangebyscore z -inf inf withscores limit 2 3
zrangebyscore z (0 (10
zrevrangebyscore z +inf -inf withscores
zrevrangebyscore z 10 (1 limit 1 2
zrevrange z 0 2 withscores
zrevrange z 0 2 rev
zrevrange z 0 -1 byscore
zrangestore d z 0 -1 withscores
zrangestore d str 0 -1
zrangestore d nokey 0 -1
zrangestore d z 0 2
zrange d 0 -1 withscores
zrangestore d z 5 1 byscore rev limit 1 2
zrange d 0 -1 withscores
zrangestore d z 100 200
exists d
zrangestore str z 0 0
type str
set str v
zadd lex 0 a 0 b 0 c 0 d 0 e 0 f
zrangebylex lex - +
zrangebylex lex [b (e
zrangebylex lex (b [e limit 1 2
zrangebylex lex - + limit 1 1
zrangebylex lex + -
zrangebylex lex [b [b
zrangebylex lex b +
zrangebylex lex - + withscores
zrevrangebylex lex + -
zrevrangebylex lex [e (b
zrevrangebylex lex + - limit 2 10
zrange lex [c + bylex
zrange lex + [c bylex rev limit 0 2
zlexcount lex - +
zlexcount lex [b (d
zlexcount lex [a x
zlexcount nokey - +
zlexcount str - +
zremrangebylex lex [b [c
zrange lex 0 -1
zremrangebylex lex x y
zremrangebylex lex - +
exists lex
zadd r 1 a 2 b 3 c 4 d 5 e 6 f 7 g
zremrangebyrank r 0 1
zremrangebyrank r -1 -1
zremrangebyrank r 10 20
zremrangebyrank r x 1
zrange r 0 -1
zremrangebyscore r (3 5
zremrangebyscore r x 1
zremrangebyscore nokey x 1
zremrangebyscore nokey 0 1
zrange r 0 -1 withscores
zremrangebyrank r 0 -1
exists r
zremrangebyrank str 0 1
zrem z a nope b
zrem z nope
zrem nokey a
zrem str a
zadd p 1 a 2 b 3 c 4 d
zpopmin p
zpopmax p
zpopmin p 0
zpopmin p 1
zadd p 1 a 2 b 3 c 4 d
zpopmax p 2
zpopmin p 10
exists p
zpopmin p 1 2
zpopmin p x
zpopmin p -1
zpopmin str 0
zpopmin str
zpopmin nokey 0
zpopmin nokey
zpopmax nokey 3
zrandmember nokey
zrandmember nokey 2
zrandmember nokey 2 withscores
zrandmember str
zrandmember z 1 foo
zrandmember z 1 withscores x
zrandmember z x
zrandmember z -9223372036854775808
zrandmember z 4611686018427387904 withscores
zrandmember z 0
zadd one 5 only
zrandmember one
zrandmember one 3 withscores
zrandmember one -3 withscores
zrandmember one -2
zscan z x
zscan z 0 count 0
zscan nokey 0
zscan str 0
zscan one 0
zscan z 0 match t*
zadd u1 1 a 2 b 3 c
zadd u2 10 b 20 c 30 d
sadd us c d e
zunionstore d 0 z
zunionstore d -1 z
zunionstore d x z
zunionstore d 3 z
zunion 0 z
zunion x z
zunion 2 u1 u2 weights 1
zunion 2 u1 u2 weights 1 x
zunion 2 u1 u2 weights 1 2 3
zunion 2 u1 u2 aggregate foo
zunion 2 u1 u2 aggregate
zunion 2 u1 us withscores
zunion 3 u1 u2 us withscores
zunion 3 u1 u2 us weights 2 3 4 withscores aggregate max
zunion 3 u1 u2 us aggregate min withscores
zunion 2 u1 u2
zunionstore d 2 u1 u2 withscores
zunion 2 u1 str
zunion 2 nokey str
zunion 2 u1 str weights x
zunion 2 u1 u1 weights 1 x
zinter 2 nokey str
zdiff 2 nokey str
zinter 2 u1 u2 withscores
zinter 3 u1 u2 us withscores
zinter 2 u1 u2 weights 2 0.5 aggregate max withscores
zinter 2 u1 nokey
zdiff 2 u1 u2 withscores
zdiff 3 u2 u1 us withscores
zdiff 1 u1
zdiff 2 u1 u2 weights 1 1
zdiff 2 u1 u2 aggregate sum
zdiff 2 nokey u1
zinterstore d 2 u1 u2
zrange d 0 -1 withscores
zinterstore d 2 u1 nokey
exists d
zunionstore d 2 u1 u2 aggregate max
zrange d 0 -1 withscores
zdiffstore d 2 u2 u1
zrange d 0 -1 withscores
zdiffstore d 1 nokey
exists d
zunion 2 u1 u2 weights inf -inf withscores
zunion 1 u1 weights nan
zadd inf1 inf a
zadd ninf -inf a
zunion 2 inf1 ninf withscores
zinter 2 inf1 ninf withscores
zunion 2 inf1 u1 weights 0 1 withscores
zdiffstore d 0 z
zunion 1 z foo
zunionstore u1 2 u1 u2
zrange u1 0 -1 withscores
set str v
zunionstore str 1 u2
type str
zunion 1 st withscores
zinterstore d2 2 st us
zrange d2 0 -1 withscores
";

#[test]
fn replies_match_redis_server() {
    same_script_as_redis(SCRIPT);
}

fn texts(r: &Resp) -> Vec<String> {
    match r {
        Resp::Array(v) | Resp::Set(v) => v.iter().map(Resp::text).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn dbl(s: &str) -> Resp {
    Resp::Double(s.into())
}

#[test]
fn zadd_options_and_score_replies() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    assert_eq!(c.cmd(&["ZADD", "z", "1", "a", "2", "b"]), Resp::Int(2));
    assert_eq!(
        c.cmd(&["ZADD", "z", "CH", "5", "a", "2", "b", "3", "c"]),
        Resp::Int(2)
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "NX", "9", "a", "4", "d"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), Resp::bulk("5"));
    assert_eq!(
        c.cmd(&["ZADD", "z", "XX", "CH", "6", "a", "7", "e"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "e"]), Resp::NullBulk);
    assert_eq!(c.cmd(&["ZADD", "z", "GT", "CH", "1", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZADD", "z", "LT", "CH", "1", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "0.5", "a"]), Resp::bulk("1.5"));
    assert_eq!(
        c.cmd(&["ZADD", "z", "NX", "INCR", "1", "a"]),
        Resp::NullBulk
    );
    assert_eq!(
        c.cmd(&["ZINCRBY", "z", "0.1", "b"]),
        Resp::bulk("2.1000000000000001")
    );
    c.cmd(&["ZADD", "z", "+inf", "top"]);
    assert_eq!(
        c.cmd(&["ZINCRBY", "z", "-inf", "top"]).err_text(),
        "ERR resulting score is not a number (NaN)"
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "top"]), Resp::bulk("inf"));
    assert_eq!(
        c.cmd(&["ZADD", "z", "XX", "NX", "1", "a"]).err_text(),
        "ERR XX and NX options at the same time are not compatible"
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "GT", "LT", "1", "a"]).err_text(),
        "ERR GT, LT, and/or NX options at the same time are not compatible"
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "INCR", "1", "a", "2", "b"]).err_text(),
        "ERR INCR option supports a single increment-element pair"
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "nan", "a"]).err_text(),
        "ERR value is not a valid float"
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "1", "a", "2"]).err_text(),
        "ERR syntax error"
    );
    c.cmd(&["SET", "s", "x"]);
    assert!(c
        .cmd(&["ZADD", "s", "1", "a"])
        .err_text()
        .starts_with("WRONGTYPE"));
    // RESP3: scores are doubles; ZADD INCR nil is `_`.
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), dbl("1.5"));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "1", "a"]), dbl("2.5"));
    assert_eq!(c.cmd(&["ZADD", "z", "XX", "INCR", "1", "nope"]), Resp::Null);
    assert_eq!(
        c.cmd(&["ZMSCORE", "z", "a", "nope"]),
        Resp::Array(vec![dbl("2.5"), Resp::Null])
    );
}

#[test]
fn withscores_shapes_in_resp2_and_resp3() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    c.cmd(&["ZADD", "z", "1", "a", "2.5", "b"]);
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        Resp::bulks(&["a", "1", "b", "2.5"])
    );
    assert_eq!(c.cmd(&["ZPOPMIN", "z"]), Resp::bulks(&["a", "1"]));
    c.cmd(&["ZADD", "z", "1", "a"]);
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    let pair = |m: &str, s: &str| Resp::Array(vec![Resp::bulk(m), dbl(s)]);
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        Resp::Array(vec![pair("a", "1"), pair("b", "2.5")])
    );
    assert_eq!(
        c.cmd(&[
            "ZRANGEBYSCORE",
            "z",
            "-inf",
            "+inf",
            "WITHSCORES",
            "LIMIT",
            "1",
            "1"
        ]),
        Resp::Array(vec![pair("b", "2.5")])
    );
    assert_eq!(
        c.cmd(&["ZUNION", "1", "z", "WITHSCORES"]),
        Resp::Array(vec![pair("a", "1"), pair("b", "2.5")])
    );
    match c.cmd(&["ZRANDMEMBER", "z", "-3", "WITHSCORES"]) {
        Resp::Array(v) => {
            assert_eq!(v.len(), 3);
            assert!(v
                .iter()
                .all(|p| *p == pair("a", "1") || *p == pair("b", "2.5")));
        }
        other => panic!("{other:?}"),
    }
    // A single ZPOPMIN is flat even in RESP3; with a count it is a list of pairs.
    assert_eq!(
        c.cmd(&["ZPOPMIN", "z"]),
        Resp::Array(vec![Resp::bulk("a"), dbl("1")])
    );
    assert_eq!(
        c.cmd(&["ZPOPMAX", "z", "5"]),
        Resp::Array(vec![pair("b", "2.5")])
    );
    assert_eq!(c.cmd(&["EXISTS", "z"]), Resp::Int(0));
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    let mut add = vec!["ZADD".to_string(), "z".to_string()];
    for i in 0..100 {
        add.push(i.to_string());
        add.push(format!("m{i:03}"));
    }
    assert_eq!(c.cmd(&add), Resp::Int(100));
    assert_eq!(
        texts(&c.cmd(&["ZRANGE", "z", "0", "2"])),
        ["m000", "m001", "m002"]
    );
    assert_eq!(
        texts(&c.cmd(&["ZRANGE", "z", "-2", "-1"])),
        ["m098", "m099"]
    );
    assert_eq!(
        texts(&c.cmd(&["ZREVRANGE", "z", "0", "1"])),
        ["m099", "m098"]
    );
    assert_eq!(
        texts(&c.cmd(&["ZRANGE", "z", "(10", "12", "BYSCORE"])),
        ["m011", "m012"]
    );
    assert_eq!(
        texts(&c.cmd(&["ZRANGE", "z", "50", "(48", "BYSCORE", "REV", "LIMIT", "1", "5"])),
        ["m049"]
    );
    assert_eq!(c.cmd(&["ZCOUNT", "z", "(10", "+inf"]), Resp::Int(89));
    assert_eq!(c.cmd(&["ZRANK", "z", "m042"]), Resp::Int(42));
    assert_eq!(c.cmd(&["ZREVRANK", "z", "m042"]), Resp::Int(57));
    assert_eq!(c.cmd(&["ZRANK", "z", "zzz"]), Resp::NullBulk);
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"])
            .err_text(),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "x", "1", "BYSCORE"]).err_text(),
        "ERR min or max is not a float"
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "a", "b", "BYLEX"]).err_text(),
        "ERR min or max not valid string range item"
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"])
            .err_text(),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    c.cmd(&[
        "ZADD", "lex", "0", "alpha", "0", "beta", "0", "gamma", "0", "delta",
    ]);
    assert_eq!(
        texts(&c.cmd(&["ZRANGEBYLEX", "lex", "[b", "(g"])),
        ["beta", "delta"]
    );
    assert_eq!(
        texts(&c.cmd(&["ZREVRANGEBYLEX", "lex", "+", "(beta"])),
        ["gamma", "delta"]
    );
    assert_eq!(c.cmd(&["ZLEXCOUNT", "lex", "-", "+"]), Resp::Int(4));
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "lex", "[a", "[c"]), Resp::Int(2));
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "z", "-inf", "(50"]),
        Resp::Int(50)
    );
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "0", "9"]), Resp::Int(10));
    assert_eq!(c.cmd(&["ZCARD", "z"]), Resp::Int(40));
    assert_eq!(texts(&c.cmd(&["ZRANGE", "z", "0", "0"])), ["m060"]);
    // ZRANGESTORE writes a sorted set (or deletes the destination on an empty result).
    assert_eq!(
        c.cmd(&["ZRANGESTORE", "dst", "z", "60", "62", "BYSCORE"]),
        Resp::Int(3)
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
        Resp::bulks(&["m060", "60", "m061", "61", "m062", "62"])
    );
    assert_eq!(c.cmd(&["ZRANGESTORE", "dst", "z", "5", "1"]), Resp::Int(0));
    assert_eq!(c.cmd(&["EXISTS", "dst"]), Resp::Int(0));
}

#[test]
fn union_inter_diff_with_sets_weights_and_aggregates() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    c.cmd(&["ZADD", "a", "1", "x", "2", "y", "3", "z"]);
    c.cmd(&["ZADD", "b", "10", "y", "20", "z", "30", "w"]);
    c.cmd(&["SADD", "s", "z", "w", "v"]);
    assert_eq!(
        c.cmd(&["ZUNION", "3", "a", "b", "s", "WITHSCORES"]),
        Resp::bulks(&["v", "1", "x", "1", "y", "12", "z", "24", "w", "31"])
    );
    assert_eq!(
        c.cmd(&[
            "ZINTER",
            "2",
            "a",
            "b",
            "WEIGHTS",
            "2",
            "0.5",
            "AGGREGATE",
            "MAX",
            "WITHSCORES"
        ]),
        Resp::bulks(&["y", "5", "z", "10"])
    );
    assert_eq!(
        c.cmd(&[
            "ZINTER",
            "3",
            "a",
            "b",
            "s",
            "AGGREGATE",
            "MIN",
            "WITHSCORES"
        ]),
        Resp::bulks(&["z", "1"])
    );
    assert_eq!(texts(&c.cmd(&["ZDIFF", "2", "a", "s"])), ["x", "y"]);
    c.cmd(&["SET", "dst", "string"]);
    assert_eq!(c.cmd(&["ZUNIONSTORE", "dst", "2", "a", "b"]), Resp::Int(4));
    assert_eq!(c.cmd(&["TYPE", "dst"]), Resp::Simple("zset".into()));
    assert_eq!(
        c.cmd(&["ZINTERSTORE", "dst", "2", "a", "nokey"]),
        Resp::Int(0)
    );
    assert_eq!(c.cmd(&["EXISTS", "dst"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZDIFFSTORE", "dst", "2", "b", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZSCORE", "dst", "w"]), Resp::bulk("30"));
    // The destination may be one of the inputs.
    assert_eq!(c.cmd(&["ZUNIONSTORE", "a", "2", "a", "a"]), Resp::Int(3));
    assert_eq!(c.cmd(&["ZSCORE", "a", "z"]), Resp::bulk("6"));
    assert_eq!(
        c.cmd(&["ZUNION", "0", "a"]).err_text(),
        "ERR at least 1 input key is needed for 'zunion' command"
    );
    assert_eq!(
        c.cmd(&["ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"])
            .err_text(),
        "ERR weight value is not a float"
    );
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "d", "5", "a"]).err_text(),
        "ERR syntax error"
    );
    c.cmd(&["SET", "str", "v"]);
    assert!(c
        .cmd(&["ZUNION", "2", "a", "str"])
        .err_text()
        .starts_with("WRONGTYPE"));
}

#[test]
fn zrandmember_and_zscan() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    let mut add = vec!["ZADD".to_string(), "z".to_string()];
    for i in 0..1000 {
        add.push(i.to_string());
        add.push(format!("e{i}"));
    }
    assert_eq!(c.cmd(&add), Resp::Int(1000));
    let r = texts(&c.cmd(&["ZRANDMEMBER", "z", "100"]));
    assert_eq!(
        r.iter().collect::<HashSet<_>>().len(),
        100,
        "distinct members"
    );
    let r = texts(&c.cmd(&["ZRANDMEMBER", "z", "-3000"]));
    assert_eq!(r.len(), 3000);
    let r = texts(&c.cmd(&["ZRANDMEMBER", "z", "5", "WITHSCORES"]));
    assert_eq!(r.len(), 10);
    for pair in r.chunks(2) {
        assert_eq!(
            pair[0],
            format!("e{}", pair[1]),
            "score belongs to its member"
        );
    }
    assert_eq!(texts(&c.cmd(&["ZRANDMEMBER", "z", "5000"])).len(), 1000);
    assert!(c
        .cmd(&["ZRANDMEMBER", "z", "-9223372036854775808"])
        .err_text()
        .starts_with("ERR value is out of range"));
    assert_eq!(
        c.cmd(&["ZRANDMEMBER", "z", "4611686018427387904", "WITHSCORES"])
            .err_text(),
        "ERR value is out of range"
    );

    // ZSCAN sees every member that stays for the whole scan, even while others are removed.
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut removed = 0;
    loop {
        let Resp::Array(parts) = c.cmd(&["ZSCAN", "z", &cursor, "COUNT", "25"]) else {
            panic!("bad ZSCAN reply")
        };
        cursor = parts[0].text();
        let items = texts(&parts[1]);
        for pair in items.chunks(2) {
            assert_eq!(pair[0], format!("e{}", pair[1]));
            seen.insert(pair[0].clone());
        }
        if removed < 300 {
            for _ in 0..10 {
                c.cmd(&["ZREM", "z", &format!("e{}", 2 * removed + 1)]);
                removed += 1;
            }
        }
        if cursor == "0" {
            break;
        }
    }
    for i in (0..1000).step_by(2) {
        assert!(seen.contains(&format!("e{i}")), "e{i} missed by ZSCAN");
    }
    let Resp::Array(parts) = c.cmd(&["ZSCAN", "z", "0", "MATCH", "e99?", "COUNT", "10000"]) else {
        panic!()
    };
    assert_eq!(parts[0].text(), "0");
    let mut got = texts(&parts[1]);
    got.sort();
    let mut want: Vec<String> = (990..1000).map(|i| i.to_string()).collect();
    want.extend((990..1000).map(|i| format!("e{i}")));
    assert_eq!(got, want);
}

#[test]
fn pipelined_commands() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let (added, card, rank, score): (i64, i64, i64, f64) = redis::pipe()
        .cmd("ZADD")
        .arg("p")
        .arg(&["1", "a", "2", "b", "3", "c"])
        .cmd("ZCARD")
        .arg("p")
        .cmd("ZRANK")
        .arg("p")
        .arg("c")
        .cmd("ZINCRBY")
        .arg("p")
        .arg("0.5")
        .arg("a")
        .query(&mut c)
        .unwrap();
    assert_eq!((added, card, rank, score), (3, 3, 2, 1.5));
    let (popped, left): (Vec<String>, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("ZPOPMAX")
        .arg("p")
        .cmd("ZRANGE")
        .arg("p")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(popped, ["c", "3"]);
    assert_eq!(left, ["a", "b"]);
}

#[test]
fn large_sorted_set_stays_fast() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    let n = 200_000;
    let batch = 10_000;
    for start in (0..n).step_by(batch) {
        let mut add = vec!["ZADD".to_string(), "big".to_string()];
        for i in start..start + batch {
            // Scattered scores: insertion lands all over the index.
            let score = (i * 7919) % n;
            add.push(score.to_string());
            add.push(format!("m{score}"));
        }
        c.send_cmd(&add);
    }
    for _ in (0..n).step_by(batch) {
        assert_eq!(c.read(), Resp::Int(batch as i64));
    }
    let t = Instant::now();
    for i in 0..2000 {
        let k = (i * 97) % n;
        c.send_cmd(&["ZRANK", "big", &format!("m{k}")]);
        c.send_cmd(&["ZRANGE", "big", &k.to_string(), &k.to_string()]);
        c.send_cmd(&["ZCOUNT", "big", &format!("({k}"), "+inf"]);
        c.send_cmd(&[
            "ZADD",
            "big",
            &(k as f64 + 0.5).to_string(),
            &format!("m{k}"),
        ]);
    }
    for i in 0..2000 {
        let k = (i * 97) % n;
        assert_eq!(c.read(), Resp::Int(k as i64));
        assert_eq!(texts(&c.read()), [format!("m{k}")]);
        assert_eq!(c.read(), Resp::Int((n - k - 1) as i64));
        assert_eq!(c.read(), Resp::Int(0));
    }
    // 8000 O(log n) commands; an O(n) implementation would take minutes here.
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "rank/range/update too slow: {:?}",
        t.elapsed()
    );
    assert_eq!(c.cmd(&["ZCARD", "big"]), Resp::Int(n as i64));
    assert_eq!(
        c.cmd(&["ZREMRANGEBYRANK", "big", "0", "99999"]),
        Resp::Int(100_000)
    );
    assert_eq!(c.cmd(&["ZCARD", "big"]), Resp::Int(100_000));
}

//! Set commands through real clients: SADD ... SSCAN, checked value by value, against
//! redis-server 7.0 byte for byte (RESP2 and RESP3), and for the properties random and
//! cursor-based commands guarantee (SPOP/SRANDMEMBER counts, SSCAN under deletions).

mod common;
use common::compare::same_script_as_redis;
use common::{Proc, Raw, Resp};
use std::collections::HashSet;

const SCRIPT: &str = "\
sadd s a b c d
sadd s a e
set str v
sadd str a
scard s
scard nokey
scard str
sismember s a
sismember s z
sismember nokey a
sismember str a
smismember s a z b
smismember nokey a b
~smembers s
smembers nokey
smembers str
srem s a z
srem s z
srem nokey a
srem str a
~smembers s
sadd s2 c d x y
sadd s3 d y q
~sinter s s2
~sinter s s2 s3
sinter s nokey
sinter nokey s
sinter s str
sinter nokey str
~sunion s s2 s3
~sunion s nokey
sunion s str
~sdiff s s2
~sdiff s s3
sdiff nokey s
sdiff s str
sinterstore d1 s s2
~smembers d1
sunionstore d2 s s2 s3
scard d2
sdiffstore d3 s s2
~smembers d3
sinterstore d2 s nokey
exists d2
sinterstore str2 s str
set strdest x
sunionstore strdest s
type strdest
sdiffstore strdest nokey
exists strdest
sintercard 2 s s2
sintercard 2 s s2 limit 1
sintercard 2 s s2 limit 0
sintercard 1 s limit 2
sintercard 0 s
sintercard -1 s
sintercard 3 s
sintercard 1 s limit -1
sintercard 1 s limit x
sintercard 1 s limit
sintercard 1 s foo 1
sintercard x s
sintercard 2 nokey str
sintercard 2 nokey s
smove s s2 b
smove s s2 b
~smembers s
~smembers s2
smove s str c
smove str s a
smove s nokey zz
smove s s c
smove s s zz
smove nokey s a
smove s newset c
~smembers newset
exists s
smove s s2 e
smove s s2 d
exists s
scard s2
spop nokey
spop nokey 2
spop str
spop s2 -1
spop s2 x
spop s2 1 2
srandmember s2 1 2
srandmember s2 x
srandmember s2 -9223372036854775808
srandmember nokey
srandmember nokey 3
srandmember nokey -3
srandmember str
srandmember str 2
srandmember s2 0
spop s2 0
sadd one only
spop one
exists one
sadd one only
srandmember one
srandmember one 5
srandmember one -3
spop one 5
exists one
sadd small 1 2 3
~sscan small 0
sscan small 0 match 1*
sscan small x
sscan small 0 count 0
sscan small 0 count -1
sscan small 0 count x
sscan small 0 match
sscan small 0 type set
sscan small 18446744073709551616
sscan nokey 0
sscan nokey 0 foo
sscan str 0
";

#[test]
fn replies_match_redis_server() {
    same_script_as_redis(SCRIPT);
}

fn members(r: Resp) -> Vec<String> {
    let items = match r {
        Resp::Array(v) | Resp::Set(v) => v,
        other => panic!("expected an array or set, got {other:?}"),
    };
    let mut v: Vec<String> = items.iter().map(Resp::text).collect();
    v.sort();
    v
}

#[test]
fn basic_commands_and_types() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "c", "a"]), Resp::Int(3));
    assert_eq!(c.cmd(&["SADD", "s", "a", "d"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SCARD", "s"]), Resp::Int(4));
    assert_eq!(members(c.cmd(&["SMEMBERS", "s"])), ["a", "b", "c", "d"]);
    assert_eq!(c.cmd(&["SISMEMBER", "s", "a"]), Resp::Int(1));
    assert_eq!(
        c.cmd(&["SMISMEMBER", "s", "a", "x", "d"]),
        Resp::Array(vec![Resp::Int(1), Resp::Int(0), Resp::Int(1)])
    );
    assert_eq!(c.cmd(&["SREM", "s", "a", "x"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SREM", "s", "b", "c", "d"]), Resp::Int(3));
    assert_eq!(
        c.cmd(&["EXISTS", "s"]),
        Resp::Int(0),
        "emptied set is deleted"
    );
    assert_eq!(c.cmd(&["SET", "str", "v"]), Resp::Simple("OK".into()));
    assert!(c
        .cmd(&["SADD", "str", "a"])
        .err_text()
        .starts_with("WRONGTYPE"));
    // RESP3: SMEMBERS / SINTER / SPOP count are sets, SRANDMEMBER count is an array.
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    c.cmd(&["SADD", "s", "x", "y"]);
    assert!(matches!(c.cmd(&["SMEMBERS", "s"]), Resp::Set(v) if v.len() == 2));
    assert!(matches!(c.cmd(&["SINTER", "s"]), Resp::Set(v) if v.len() == 2));
    assert!(matches!(c.cmd(&["SRANDMEMBER", "s", "5"]), Resp::Array(v) if v.len() == 2));
    assert!(matches!(c.cmd(&["SPOP", "s", "1"]), Resp::Set(v) if v.len() == 1));
    assert_eq!(c.cmd(&["SMEMBERS", "nokey"]), Resp::Set(vec![]));
    assert_eq!(c.cmd(&["SPOP", "nokey"]), Resp::Null);
}

#[test]
fn spop_and_srandmember_counts() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    let all: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut cmd = vec!["SADD".to_string(), "s".to_string()];
    cmd.extend(all.iter().cloned());
    assert_eq!(c.cmd(&cmd), Resp::Int(300));
    let universe: HashSet<String> = all.iter().cloned().collect();

    let r = members(c.cmd(&["SRANDMEMBER", "s", "50"]));
    assert_eq!(r.len(), 50);
    assert_eq!(r.iter().collect::<HashSet<_>>().len(), 50, "distinct");
    assert!(r.iter().all(|m| universe.contains(m)));
    assert_eq!(members(c.cmd(&["SRANDMEMBER", "s", "250"])).len(), 250);
    assert_eq!(members(c.cmd(&["SRANDMEMBER", "s", "1000"])).len(), 300);
    let rep = members(c.cmd(&["SRANDMEMBER", "s", "-1000"]));
    assert_eq!(rep.len(), 1000, "negative count allows repeats");
    assert!(rep.iter().all(|m| universe.contains(m)));
    assert!(c
        .cmd(&["SRANDMEMBER", "s", "-9223372036854775808"])
        .err_text()
        .starts_with("ERR value is out of range"));
    assert!(c
        .cmd(&["SRANDMEMBER", "s", "-9223372036854775807"])
        .err_text()
        .starts_with("ERR value is out of range"));
    assert_eq!(
        c.cmd(&["SCARD", "s"]),
        Resp::Int(300),
        "SRANDMEMBER does not remove"
    );

    let popped = members(c.cmd(&["SPOP", "s", "100"]));
    assert_eq!(popped.len(), 100);
    assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 100);
    assert_eq!(c.cmd(&["SCARD", "s"]), Resp::Int(200));
    for m in &popped {
        assert_eq!(c.cmd(&["SISMEMBER", "s", m]), Resp::Int(0));
    }
    let one = c.cmd(&["SPOP", "s"]).text();
    assert!(universe.contains(&one));
    let rest = members(c.cmd(&["SPOP", "s", "1000"]));
    assert_eq!(rest.len(), 199);
    assert_eq!(c.cmd(&["EXISTS", "s"]), Resp::Int(0));
}

#[test]
fn sscan_returns_every_member_despite_deletions() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    let n = 2000;
    let mut cmd = vec!["SADD".to_string(), "big".to_string()];
    cmd.extend((0..n).map(|i| format!("e{i}")));
    assert_eq!(c.cmd(&cmd), Resp::Int(n));
    // Members we never delete must all be seen; we delete "odd" ones while scanning.
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut deleted = 0;
    let mut calls = 0;
    loop {
        let r = c.cmd(&["SSCAN", "big", &cursor, "COUNT", "50"]);
        let Resp::Array(parts) = r else {
            panic!("bad SSCAN reply")
        };
        cursor = parts[0].text();
        for m in members(parts[1].clone()) {
            seen.insert(m);
        }
        if deleted < 500 {
            for _ in 0..10 {
                c.cmd(&["SREM", "big", &format!("e{}", 2 * deleted + 1)]);
                deleted += 1;
            }
        }
        calls += 1;
        assert!(calls < 1000, "scan does not terminate");
        if cursor == "0" {
            break;
        }
    }
    for i in (0..n).step_by(2) {
        assert!(seen.contains(&format!("e{i}")), "e{i} missed by SSCAN");
    }
    // MATCH and COUNT.
    let r = c.cmd(&["SSCAN", "big", "0", "MATCH", "e1?", "COUNT", "100000"]);
    let Resp::Array(parts) = r else { panic!() };
    assert_eq!(parts[0].text(), "0");
    assert_eq!(
        members(parts[1].clone()),
        ["e10", "e12", "e14", "e16", "e18"]
    );
    assert_eq!(
        c.cmd(&["SSCAN", "big", "abc"]).err_text(),
        "ERR invalid cursor"
    );
}

#[test]
fn store_variants_and_smove() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    c.cmd(&["SADD", "a", "1", "2", "3"]);
    c.cmd(&["SADD", "b", "2", "3", "4"]);
    c.cmd(&["SET", "dst", "string"]);
    c.cmd(&["EXPIRE", "dst", "100"]);
    assert_eq!(c.cmd(&["SINTERSTORE", "dst", "a", "b"]), Resp::Int(2));
    assert_eq!(c.cmd(&["TYPE", "dst"]), Resp::Simple("set".into()));
    assert_eq!(
        c.cmd(&["TTL", "dst"]),
        Resp::Int(-1),
        "store replaces the TTL"
    );
    assert_eq!(members(c.cmd(&["SMEMBERS", "dst"])), ["2", "3"]);
    assert_eq!(c.cmd(&["SUNIONSTORE", "dst", "a", "b"]), Resp::Int(4));
    assert_eq!(c.cmd(&["SDIFFSTORE", "dst", "a", "b"]), Resp::Int(1));
    assert_eq!(members(c.cmd(&["SMEMBERS", "dst"])), ["1"]);
    assert_eq!(c.cmd(&["SDIFFSTORE", "dst", "a", "a"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["EXISTS", "dst"]),
        Resp::Int(0),
        "empty result deletes"
    );
    assert_eq!(c.cmd(&["SINTERCARD", "2", "a", "b"]), Resp::Int(2));
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "a", "b", "LIMIT", "1"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["SMOVE", "a", "b", "1"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SMOVE", "a", "b", "1"]), Resp::Int(0));
    assert_eq!(members(c.cmd(&["SMEMBERS", "b"])), ["1", "2", "3", "4"]);
    c.cmd(&["SMOVE", "a", "c", "2"]);
    c.cmd(&["SMOVE", "a", "c", "3"]);
    assert_eq!(c.cmd(&["EXISTS", "a"]), Resp::Int(0));
    assert_eq!(members(c.cmd(&["SMEMBERS", "c"])), ["2", "3"]);
}

#[test]
fn pipelined_and_in_transactions() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let (added, card, ism): (i64, i64, Vec<i64>) = redis::pipe()
        .cmd("SADD")
        .arg("p")
        .arg(&["x", "y", "z"])
        .cmd("SCARD")
        .arg("p")
        .cmd("SMISMEMBER")
        .arg("p")
        .arg(&["x", "q"])
        .query(&mut c)
        .unwrap();
    assert_eq!((added, card, ism), (3, 3, vec![1, 0]));
    let (moved, m): (i64, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("SMOVE")
        .arg("p")
        .arg("q")
        .arg("x")
        .cmd("SMEMBERS")
        .arg("q")
        .query(&mut c)
        .unwrap();
    assert_eq!((moved, m), (1, vec!["x".to_string()]));
    // A WATCHed key touched by SADD aborts the transaction.
    let mut other = node.conn();
    redis::cmd("WATCH").arg("q").exec(&mut c).unwrap();
    redis::cmd("SADD")
        .arg("q")
        .arg("new")
        .exec(&mut other)
        .unwrap();
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .cmd("SCARD")
        .arg("q")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, None, "EXEC aborted after the watched set changed");
}

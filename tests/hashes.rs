//! Hash commands through real clients: values and reply types (HGETALL is a RESP3 map,
//! HRANDFIELD WITHVALUES pairs in RESP3), errors in Redis 7.0's exact words (checked
//! byte-for-byte against Debian's redis-server 7.0), HRANDFIELD's count rules, and HSCAN's
//! guarantee that every field present for the whole scan is returned, even while fields are
//! deleted and added between calls.

mod common;
use common::exact::{same_as_redis, ExactConn as Raw};
use common::Proc;

use std::collections::{HashMap, HashSet};

const HASH_SCRIPT: &str = "
hset h a 1 b 2 c 3
hset h a 10 d 4
hset h a
hset h a 1 b
hmset h a
hmset h e 5 f 6
hsetnx h a x
hsetnx h z 26
hget h a
hget h nosuch
hget nokey a
hmget h a nosuch b
hmget nokey a b
hgetall h
hgetall nokey
hkeys h
hvals h
hkeys nokey
hvals nokey
hlen h
hlen nokey
hstrlen h a
hstrlen h nosuch
hstrlen nokey a
hexists h a
hexists h nosuch
hexists nokey a
hdel h a nosuch b
hdel h nosuch
hdel nokey a
hgetall h
hdel h c d e f z
exists h
hincrby n i 5
hincrby n i -10
hincrby n i x
hincrby n i 1.5
hset n big 9223372036854775807 small -9223372036854775808 s abc f 1.5 z 012
hincrby n big 1
hincrby n small -1
hincrby n big -1
hincrby n s 1
hincrby n f 1
hincrby n z 1
hincrbyfloat n fl 1.5
hincrbyfloat n fl -0.25
hincrbyfloat n fl 3
hincrbyfloat n fl 1e3
hincrbyfloat n i 2.5
hincrbyfloat n s 1
hincrbyfloat n fl x
hincrbyfloat n fl inf
hincrbyfloat n fl -inf
hincrbyfloat n fl nan
hgetall n
hrandfield nokey
hrandfield nokey 3
hrandfield nokey 3 withvalues
hset one only v
hrandfield one
hrandfield one 1
hrandfield one -3
hrandfield one -2 withvalues
hrandfield one 0
hrandfield one 0 withvalues
hrandfield one 5 withvalues
hrandfield n 100
hrandfield n 100 withvalues
hrandfield one x
hrandfield one 1 withvalue
hrandfield one 1 withvalues x
hrandfield one -9223372036854775808
hrandfield one -9223372036854775807 withvalues
hrandfield one 4611686018427387904 withvalues
hscan nokey 0
hscan nokey 0 bad
hscan nokey x
hscan n 0
hscan n 0 match f*
hscan n 0 match nomatch
hscan n 0 count 1
hscan n 0 count 0
hscan n 0 count -1
hscan n 0 count x
hscan n 0 match
hscan n 0 foo bar
hscan n x
hscan n -1
hscan n 0 MATCH * COUNT 100
set s v
hset s a 1
hmset s a 1
hsetnx s a 1
hget s a
hmget s a
hgetall s
hdel s a
hexists s a
hincrby s a 1
hincrbyfloat s a 1
hkeys s
hvals s
hlen s
hstrlen s a
hrandfield s
hrandfield s 1
hscan s 0
hello 3
hgetall one
hgetall nokey
hrandfield one -2 withvalues
hrandfield one 1 withvalues
hrandfield one 1
hrandfield nokey
hscan one 0
hmget one only x
";

#[test]
fn hash_commands_match_redis_byte_for_byte() {
    same_as_redis(HASH_SCRIPT);
}

#[test]
fn hash_values_and_resp3_types_through_a_client() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let added: i64 = redis::cmd("HSET")
        .arg("h")
        .arg(&["f1", "v1", "f2", "v2"])
        .query(&mut c)
        .unwrap();
    assert_eq!(added, 2);
    let all: HashMap<String, String> = redis::cmd("HGETALL").arg("h").query(&mut c).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["f1"], "v1");
    let n: i64 = redis::cmd("HINCRBY")
        .arg("h")
        .arg("n")
        .arg(41)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 41);
    let f: String = redis::cmd("HINCRBYFLOAT")
        .arg("h")
        .arg("n")
        .arg("0.5")
        .query(&mut c)
        .unwrap();
    assert_eq!(f, "41.5");
    let err = redis::cmd("HINCRBY")
        .arg("h")
        .arg("n")
        .arg(1)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("hash value is not an integer"),
        "{err}"
    );

    // RESP3: HGETALL is a map, HRANDFIELD WITHVALUES an array of pairs.
    let mut raw = Raw::connect(node.port);
    raw.cmd(&["HELLO", "3"]);
    raw.cmd(&["DEL", "h"]);
    raw.cmd(&["HSET", "h", "a", "1"]);
    assert_eq!(
        raw.cmd(&["HGETALL", "h"]),
        b"%1\r\n$1\r\na\r\n$1\r\n1\r\n".to_vec()
    );
    assert_eq!(
        raw.cmd(&["HRANDFIELD", "h", "-2", "WITHVALUES"]),
        b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n".to_vec()
    );
    assert_eq!(raw.cmd(&["HGET", "h", "x"]), b"_\r\n".to_vec());
}

#[test]
fn hrandfield_counts() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let fields: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
    let mut cmd = redis::cmd("HSET");
    cmd.arg("h");
    for f in &fields {
        cmd.arg(f).arg(format!("v-{f}"));
    }
    let _: i64 = cmd.query(&mut c).unwrap();
    // Positive count: distinct fields, at most the hash size.
    for count in [1, 10, 100, 299, 300, 1000] {
        let got: Vec<String> = redis::cmd("HRANDFIELD")
            .arg("h")
            .arg(count)
            .query(&mut c)
            .unwrap();
        assert_eq!(got.len(), count.min(300));
        let uniq: HashSet<&String> = got.iter().collect();
        assert_eq!(uniq.len(), got.len(), "duplicates for count {count}");
        assert!(got.iter().all(|f| fields.contains(f)));
    }
    // Negative count: exactly |count| fields, repeats allowed (500 picks out of 300 must repeat).
    let got: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(-500)
        .query(&mut c)
        .unwrap();
    assert_eq!(got.len(), 500);
    let uniq: HashSet<&String> = got.iter().collect();
    assert!(uniq.len() < 500);
    // WITHVALUES in RESP2: flat field, value pairs that belong together.
    let got: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(5)
        .arg("WITHVALUES")
        .query(&mut c)
        .unwrap();
    assert_eq!(got.len(), 10);
    for pair in got.chunks(2) {
        assert_eq!(pair[1], format!("v-{}", pair[0]));
    }
    let single: String = redis::cmd("HRANDFIELD").arg("h").query(&mut c).unwrap();
    assert!(fields.contains(&single));
}

/// Large hashes are scanned in steps; a field that exists for the whole scan must come back
/// at least once even when other fields are deleted and added between the calls.
#[test]
fn hscan_returns_every_stable_field_despite_changes() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let n = 2000;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("HSET")
            .arg("h")
            .arg(format!("f{i}"))
            .arg(i)
            .ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("HSCAN")
            .arg("h")
            .arg(&cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut c)
            .unwrap();
        assert!(
            items.len() <= 100,
            "COUNT 50 returned {} items",
            items.len()
        );
        for pair in items.chunks(2) {
            if !pair[0].starts_with("new") {
                assert_eq!(pair[0], format!("f{}", pair[1]));
            }
            seen.insert(pair[0].clone());
        }
        // Churn: delete fields whose number is a multiple of 7, add new ones.
        let base = calls * 7 * 5;
        let mut pipe = redis::pipe();
        for k in 0..5 {
            pipe.cmd("HDEL")
                .arg("h")
                .arg(format!("f{}", base + k * 7))
                .ignore();
            pipe.cmd("HSET")
                .arg("h")
                .arg(format!("new{calls}-{k}"))
                .arg(0)
                .ignore();
        }
        let _: () = pipe.query(&mut c).unwrap();
        calls += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000, "HSCAN does not terminate");
    }
    assert!(calls > 10, "a 2000-field hash was scanned in {calls} calls");
    for i in (0..n).filter(|i| i % 7 != 0) {
        assert!(seen.contains(&format!("f{i}")), "f{i} never returned");
    }

    // MATCH filters what a step visited.
    let mut matched = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("HSCAN")
            .arg("h")
            .arg(&cursor)
            .arg("MATCH")
            .arg("f1?")
            .query(&mut c)
            .unwrap();
        for pair in items.chunks(2) {
            matched.insert(pair[0].clone());
        }
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let expect: HashSet<String> = (10..20)
        .filter(|i| i % 7 != 0)
        .map(|i| format!("f{i}"))
        .collect();
    assert_eq!(matched, expect);
}

#[test]
fn small_hashes_keep_insertion_order_and_scan_in_one_call() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg(&["a", "1", "b", "2", "c", "3", "d", "4"])
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("HDEL").arg("h").arg("b").query(&mut c).unwrap();
    let keys: Vec<String> = redis::cmd("HKEYS").arg("h").query(&mut c).unwrap();
    assert_eq!(keys, ["a", "c", "d"]);
    let (cursor, items): (String, Vec<String>) = redis::cmd("HSCAN")
        .arg("h")
        .arg(0)
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(cursor, "0");
    assert_eq!(items, ["a", "1", "c", "3", "d", "4"]);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("h")
        .query(&mut c)
        .unwrap();
    assert_eq!(enc, "listpack");
}

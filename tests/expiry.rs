//! Key expiry through a real client: a key is never returned after its deadline (lazy expiry
//! on every read path), keys disappear without being accessed (active expiry), and past
//! deadlines delete keys immediately.

mod common;
use common::compare::{dbsize, q};
use common::{eventually, Proc};
use std::time::{Duration, Instant};

/// Sets `key` with PX 50, then polls `probe` until after the deadline; every answer given
/// after the deadline must say "gone".
fn poll_past_deadline(
    c: &mut redis::Connection,
    key: &str,
    mut gone: impl FnMut(&mut redis::Connection) -> bool,
) {
    let _: () = q(c, &["SET", key, "v", "PX", "50"]);
    let set_done = Instant::now();
    assert!(!gone(c), "{key}: gone right after SET");
    loop {
        let sent = Instant::now();
        let g = gone(c);
        if sent >= set_done + Duration::from_millis(51) {
            assert!(g, "{key}: still visible after its deadline");
            return;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

#[test]
fn every_read_path_hides_keys_after_their_deadline() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    poll_past_deadline(&mut c, "get", |c| {
        q::<Option<String>>(c, &["GET", "get"]).is_none()
    });
    poll_past_deadline(&mut c, "exists", |c| {
        q::<i64>(c, &["EXISTS", "exists"]) == 0
    });
    poll_past_deadline(&mut c, "ttl", |c| q::<i64>(c, &["PTTL", "ttl"]) == -2);
    poll_past_deadline(&mut c, "type", |c| {
        q::<String>(c, &["TYPE", "type"]) == "none"
    });
    poll_past_deadline(&mut c, "mget", |c| {
        q::<Vec<Option<String>>>(c, &["MGET", "mget"])[0].is_none()
    });
    poll_past_deadline(&mut c, "strlen", |c| {
        q::<i64>(c, &["STRLEN", "strlen"]) == 0
    });
    poll_past_deadline(&mut c, "keys", |c| {
        q::<Vec<String>>(c, &["KEYS", "keys"]).is_empty()
    });
    poll_past_deadline(&mut c, "scan", |c| {
        let (_, k): (String, Vec<String>) =
            q(c, &["SCAN", "0", "MATCH", "scan", "COUNT", "100000"]);
        k.is_empty()
    });
    poll_past_deadline(&mut c, "setnx", |c| {
        let created = q::<i64>(c, &["SETNX", "setnx", "again"]) == 1;
        if created {
            let _: i64 = q(c, &["DEL", "setnx"]);
        }
        created
    });
    poll_past_deadline(&mut c, "incr", |c| {
        let v: i64 = redis::cmd("INCR").arg("incr").query(c).unwrap_or(0);
        if v == 1 {
            let _: i64 = q(c, &["DEL", "incr"]);
        }
        v == 1
    });
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.cmd("SET")
            .arg(format!("v:{i}"))
            .arg(i)
            .arg("PX")
            .arg(100)
            .ignore();
    }
    for i in 0..100 {
        p.cmd("SET").arg(format!("p:{i}")).arg(i).ignore();
    }
    // Volatile keys in another database expire too.
    p.cmd("SELECT").arg(3).ignore();
    for i in 0..500 {
        p.cmd("SET")
            .arg(format!("d3:{i}"))
            .arg(i)
            .arg("PX")
            .arg(100)
            .ignore();
    }
    p.cmd("SELECT").arg(0).ignore();
    let _: () = p.query(&mut c).unwrap();
    // (Some may already be gone on a loaded machine.)
    assert!(dbsize(&mut c) <= 5100);
    // DBSIZE counts keys without looking at them, so only active expiry can shrink it.
    assert!(
        eventually(Duration::from_secs(10), || dbsize(&mut c) == 100),
        "active expiry left {} keys",
        dbsize(&mut c)
    );
    let _: () = q(&mut c, &["SELECT", "3"]);
    assert!(eventually(Duration::from_secs(10), || dbsize(&mut c) == 0));
    let _: () = q(&mut c, &["SELECT", "0"]);
    for i in [0, 50, 99] {
        assert_eq!(q::<i64>(&mut c, &["GET", &format!("p:{i}")]), i);
    }
}

#[test]
fn past_deadlines_delete_immediately() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let cases: &[&[&str]] = &[
        &["EXPIRE", "k", "-1"],
        &["EXPIRE", "k", "0"],
        &["PEXPIRE", "k", "-100"],
        &["EXPIREAT", "k", "1"],
        &["PEXPIREAT", "k", "1000"],
        &["SET", "k", "v2", "EXAT", "1"],
        &["SET", "k", "v2", "PXAT", "1"],
        &["GETEX", "k", "PXAT", "1"],
        &["GETEX", "k", "EXAT", "100"],
    ];
    for cmd in cases {
        let _: () = q(&mut c, &["SET", "k", "v"]);
        assert_eq!(dbsize(&mut c), 1);
        let _: redis::Value = q(&mut c, cmd);
        assert_eq!(dbsize(&mut c), 0, "{cmd:?} left the key in the keyspace");
    }
}

#[test]
fn ttl_values_and_what_keeps_or_clears_them() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let _: () = q(&mut c, &["SET", "k", "v", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), 100);
    let pttl: i64 = q(&mut c, &["PTTL", "k"]);
    assert!((99_000..=100_000).contains(&pttl), "{pttl}");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at: i64 = q(&mut c, &["EXPIRETIME", "k"]);
    assert!((now_s + 99..=now_s + 101).contains(&at), "{at} vs {now_s}");
    let pat: i64 = q(&mut c, &["PEXPIRETIME", "k"]);
    assert_eq!(pat / 1000, at);
    // RENAME, MOVE and COPY carry the deadline.
    let _: () = q(&mut c, &["RENAME", "k", "r"]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "r"]), pat);
    let _: i64 = q(&mut c, &["COPY", "r", "c"]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "c"]), pat);
    let _: i64 = q(&mut c, &["MOVE", "r", "1"]);
    let _: () = q(&mut c, &["SELECT", "1"]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "r"]), pat);
    let _: () = q(&mut c, &["SELECT", "0"]);
    // EXPIRE GT/LT against the existing deadline.
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "c", "50", "GT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "c", "200", "GT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "c", "300", "LT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "c", "10", "LT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["TTL", "c"]), 10);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "c"]), 1);
    assert_eq!(q::<i64>(&mut c, &["TTL", "c"]), -1);
    // A short TTL really expires.
    let _: i64 = q(&mut c, &["PEXPIRE", "c", "30"]);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(q::<i64>(&mut c, &["TTL", "c"]), -2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "c"]), 0);
}

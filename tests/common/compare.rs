//! Side-by-side comparison with redis-server: run the same commands on a fresh `tandem node`
//! and a fresh redis-server 7.0 and assert the replies are equal, either as rendered by the
//! `redis` crate ([`same_as_redis`]) or as raw RESP2 and RESP3 values ([`same_script_as_redis`]).

use super::{Proc, Raw, Resp};

/// Runs one command and renders its reply (or error text) for comparison. KEYS and SCAN
/// replies are sorted (their order is unspecified).
pub fn run(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(c) {
        Ok(redis::Value::Array(mut v)) if args[0].eq_ignore_ascii_case("KEYS") => {
            v.sort_by_key(|x| format!("{x:?}"));
            format!("{:?}", redis::Value::Array(v))
        }
        Ok(redis::Value::Array(mut v)) if args[0].eq_ignore_ascii_case("SCAN") && v.len() == 2 => {
            if let redis::Value::Array(keys) = &mut v[1] {
                keys.sort_by_key(|x| format!("{x:?}"));
            }
            format!("{:?}", redis::Value::Array(v))
        }
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("-{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
    }
}

pub fn same_as_redis_on(url_suffix: &str, script: &[&[&str]]) {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    let connect = |p: &Proc| {
        redis::Client::open(format!("{}{}", p.url(), url_suffix))
            .and_then(|c| c.get_connection())
            .expect("connect")
    };
    let (mut a, mut b) = (connect(&node), connect(&redis));
    for cmd in script {
        let (x, y) = (run(&mut a, cmd), run(&mut b, cmd));
        assert_eq!(x, y, "reply to {cmd:?} differs (tandem left, redis right)");
    }
}

pub fn same_as_redis(script: &[&[&str]]) {
    same_as_redis_on("", script)
}

pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs `script` (one command per line, `~` prefix = compare order-insensitively) on a fresh
/// tandem node and a fresh redis-server 7.0, in RESP2 and RESP3, and asserts every reply is
/// the same.
pub fn same_script_as_redis(script: &str) {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    for (db, resp3) in [("1", false), ("2", true)] {
        let mut a = Raw::connect(node.port);
        let mut b = Raw::connect(redis.port);
        for c in [&mut a, &mut b] {
            if resp3 {
                assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
            }
            assert_eq!(c.cmd(&["SELECT", db]), Resp::Simple("OK".into()));
        }
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let unordered = line.starts_with('~');
            let args: Vec<&str> = line.trim_start_matches('~').split_whitespace().collect();
            let (mut x, mut y) = (a.cmd(&args), b.cmd(&args));
            if unordered {
                sort_items(&mut x);
                sort_items(&mut y);
            }
            assert_eq!(x, y, "`{line}` (resp3: {resp3}): tandem vs redis-server");
        }
    }
}

pub fn sort_items(r: &mut Resp) {
    if let Resp::Array(v) | Resp::Set(v) = r {
        v.sort_by_key(|e| format!("{e:?}"));
    }
}

/// Runs `f` against a fresh tandem node and a fresh redis-server started with the same extra
/// flags (the name passed to `f` says which one failed).
pub fn on_both_with(extra: &[&str], f: impl Fn(&str, &Proc)) {
    let node = Proc::node(extra);
    f("tandem", &node);
    let redis = Proc::redis_server(extra);
    f("redis-server", &redis);
}

/// [`on_both_with`] without extra flags.
pub fn on_both(f: impl Fn(&str, &Proc)) {
    on_both_with(&[], f)
}

/// DBSIZE of the connection's database.
pub fn dbsize(c: &mut redis::Connection) -> i64 {
    q(c, &["DBSIZE"])
}

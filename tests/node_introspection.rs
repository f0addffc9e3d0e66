//! Introspection and client-control commands of `tandem node` through real clients: SLOWLOG,
//! the latency monitor (LATENCY), CLIENT REPLY, CLIENT PAUSE / UNPAUSE, OBJECT ENCODING of
//! sets (intset / hashtable, one-way conversion) and the query-buffer figures of CLIENT LIST.

mod common;
use common::query::{cmd, int, text};
use common::{eventually, Proc, Raw, Resp};

use redis::{Connection, Value};
use std::time::{Duration, Instant};

/// The error reply's exact text (`CODE detail`).
fn err(c: &mut Connection, args: &[&str]) -> String {
    match cmd(c, args) {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => e.to_string(),
        },
    }
}

fn array(c: &mut Connection, args: &[&str]) -> Vec<Value> {
    match cmd(c, args).unwrap() {
        Value::Array(a) => a,
        v => panic!("{args:?}: not an array: {v:?}"),
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn bulks(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| bulk(s)).collect())
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        v => panic!("not an integer: {v:?}"),
    }
}

/// The fields of one SLOWLOG GET entry.
fn entry(v: &Value) -> &[Value] {
    match v {
        Value::Array(f) => {
            assert_eq!(f.len(), 6, "an entry has 6 fields: {f:?}");
            f
        }
        v => panic!("not an entry: {v:?}"),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `field=value` of the CLIENT LIST line of the client named `name`.
fn client_field(c: &mut Connection, name: &str, field: &str) -> Option<usize> {
    let list = text(c, &["CLIENT", "LIST"]);
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .and_then(|v| v.parse().ok())
}

#[test]
fn slowlog_records_trims_and_redacts() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "slowlog-*"]).unwrap(),
        Value::Array(vec![
            bulk("slowlog-log-slower-than"),
            bulk("10000"),
            bulk("slowlog-max-len"),
            bulk("128"),
        ])
    );
    assert_eq!(
        text(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        "OK"
    );
    assert_eq!(text(&mut c, &["CLIENT", "SETNAME", "slowpoke"]), "OK");
    assert_eq!(text(&mut c, &["SLOWLOG", "RESET"]), "OK");
    assert_eq!(text(&mut c, &["SET", "k", "v"]), "OK");
    // Newest first: SET, then the RESET that ran after the log was emptied.
    let log = array(&mut c, &["SLOWLOG", "GET"]);
    assert_eq!(log.len(), 2, "{log:?}");
    let set = entry(&log[0]);
    let reset = entry(&log[1]);
    assert_eq!(as_int(&set[0]), as_int(&reset[0]) + 1);
    assert!((as_int(&set[1]) - unix_now()).abs() <= 2);
    assert!(as_int(&set[2]) >= 0);
    assert_eq!(set[3], bulks(&["SET", "k", "v"]));
    assert_eq!(reset[3], bulks(&["SLOWLOG", "RESET"]));
    let me = text(&mut c, &["CLIENT", "INFO"]);
    let addr = me
        .split(' ')
        .find_map(|kv| kv.strip_prefix("addr="))
        .unwrap()
        .to_string();
    assert_eq!(set[4], bulk(&addr));
    assert_eq!(set[5], bulk("slowpoke"));

    // More than 32 arguments, and arguments over 128 bytes, are trimmed as Redis does.
    let mut args: Vec<String> = vec!["SADD".into(), "set".into()];
    args.extend((3..=33).map(|i| i.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(int(&mut c, &refs), 31);
    let long = "A".repeat(129);
    assert_eq!(int(&mut c, &["SADD", "set", "foo", &long]), 2);
    let log = array(&mut c, &["SLOWLOG", "GET", "3"]);
    assert_eq!(log.len(), 3);
    let mut expect: Vec<String> = args[..31].to_vec();
    expect.push("... (2 more arguments)".into());
    let expect: Vec<&str> = expect.iter().map(String::as_str).collect();
    assert_eq!(entry(&log[1])[3], bulks(&expect));
    let trimmed = format!("{}... (1 more bytes)", "A".repeat(128));
    assert_eq!(entry(&log[0])[3], bulks(&["SADD", "set", "foo", &trimmed]));

    // Secrets are redacted.
    assert!(err(&mut c, &["AUTH", "user", "secret"]).contains("WRONGPASS"));
    assert_eq!(text(&mut c, &["CONFIG", "SET", "masterauth", "hush"]), "OK");
    let log = array(&mut c, &["SLOWLOG", "GET", "2"]);
    assert_eq!(
        entry(&log[0])[3],
        bulks(&["CONFIG", "SET", "masterauth", "(redacted)"])
    );
    assert_eq!(
        entry(&log[1])[3],
        bulks(&["AUTH", "(redacted)", "(redacted)"])
    );

    // EXEC itself is not logged; the commands it ran are.
    assert_eq!(text(&mut c, &["SLOWLOG", "RESET"]), "OK");
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("a")
        .arg("1")
        .exec(&mut c)
        .unwrap();
    let names: Vec<Value> = array(&mut c, &["SLOWLOG", "GET", "-1"])
        .iter()
        .map(|e| match &entry(e)[3] {
            Value::Array(a) => a[0].clone(),
            v => panic!("{v:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [bulk("SET"), bulk("MULTI"), bulk("SLOWLOG")],
        "EXEC must not be logged"
    );

    // slowlog-max-len bounds the log; GET's count.
    assert_eq!(
        text(&mut c, &["CONFIG", "SET", "slowlog-max-len", "10"]),
        "OK"
    );
    for _ in 0..30 {
        let _: String = redis::cmd("PING").query(&mut c).unwrap();
    }
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 10);
    assert_eq!(array(&mut c, &["SLOWLOG", "GET", "5"]).len(), 5);
    assert_eq!(array(&mut c, &["SLOWLOG", "GET", "0"]).len(), 0);
    assert_eq!(array(&mut c, &["SLOWLOG", "GET", "-1"]).len(), 10);
    assert_eq!(array(&mut c, &["SLOWLOG", "GET"]).len(), 10);
    for bad in ["-2", "abc"] {
        assert_eq!(
            err(&mut c, &["SLOWLOG", "GET", bad]),
            "ERR count should be greater than or equal to -1"
        );
    }
    assert_eq!(
        err(&mut c, &["SLOWLOG", "LEN", "x"]),
        "ERR wrong number of arguments for 'slowlog|len' command"
    );
    assert_eq!(
        err(&mut c, &["SLOWLOG", "GET", "1", "2"]),
        "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
    );
    assert_eq!(
        err(&mut c, &["SLOWLOG", "NOPE"]),
        "ERR unknown subcommand 'NOPE'. Try SLOWLOG HELP."
    );
    let help = array(&mut c, &["SLOWLOG", "HELP"]);
    assert_eq!(help.len(), 12);

    // Only commands at least as slow as the threshold; -1 disables the log.
    assert_eq!(
        text(
            &mut c,
            &["CONFIG", "SET", "slowlog-log-slower-than", "100000"]
        ),
        "OK"
    );
    assert_eq!(text(&mut c, &["SLOWLOG", "RESET"]), "OK");
    assert_eq!(text(&mut c, &["PING"]), "PONG");
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 0);
    assert_eq!(text(&mut c, &["DEBUG", "SLEEP", "0.2"]), "OK");
    let log = array(&mut c, &["SLOWLOG", "GET"]);
    assert_eq!(log.len(), 1);
    assert!(as_int(&entry(&log[0])[2]) >= 200_000, "{log:?}");
    assert_eq!(entry(&log[0])[3], bulks(&["DEBUG", "SLEEP", "0.2"]));
    assert_eq!(
        text(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]),
        "OK"
    );
    assert_eq!(text(&mut c, &["SLOWLOG", "RESET"]), "OK");
    assert_eq!(text(&mut c, &["DEBUG", "SLEEP", "0.2"]), "OK");
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 0);
    assert!(
        err(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-2"])
            .contains("argument must be between -1 and")
    );
}

#[test]
fn latency_monitor_samples_slow_commands() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "latency-monitor-threshold"]).unwrap(),
        Value::Array(vec![bulk("latency-monitor-threshold"), bulk("0")])
    );
    // Off: nothing is recorded, and the doctor says so.
    assert_eq!(text(&mut c, &["DEBUG", "SLEEP", "0.15"]), "OK");
    assert_eq!(array(&mut c, &["LATENCY", "LATEST"]), vec![]);
    assert!(text(&mut c, &["LATENCY", "DOCTOR"]).starts_with("I'm sorry, Dave"));

    assert_eq!(
        text(
            &mut c,
            &["CONFIG", "SET", "latency-monitor-threshold", "100"]
        ),
        "OK"
    );
    assert_eq!(text(&mut c, &["PING"]), "PONG");
    assert_eq!(array(&mut c, &["LATENCY", "LATEST"]), vec![]);
    assert!(text(&mut c, &["LATENCY", "DOCTOR"]).starts_with("Dave, no latency spike"));
    assert_eq!(text(&mut c, &["DEBUG", "SLEEP", "0.2"]), "OK");
    let latest = array(&mut c, &["LATENCY", "LATEST"]);
    assert_eq!(latest.len(), 1, "{latest:?}");
    let Value::Array(ev) = &latest[0] else {
        panic!("{latest:?}")
    };
    assert_eq!(ev[0], bulk("command"));
    let (time, ms, max) = (as_int(&ev[1]), as_int(&ev[2]), as_int(&ev[3]));
    assert!((time - unix_now()).abs() <= 2);
    assert!((200..1000).contains(&ms), "{ms}");
    assert_eq!(max, ms);
    assert_eq!(
        cmd(&mut c, &["LATENCY", "HISTORY", "command"]).unwrap(),
        Value::Array(vec![Value::Array(vec![Value::Int(time), Value::Int(ms)])])
    );
    let graph = text(&mut c, &["LATENCY", "GRAPH", "command"]);
    assert!(
        graph.starts_with(&format!("command - high {ms} ms, low {ms} ms")),
        "{graph}"
    );
    assert!(text(&mut c, &["LATENCY", "DOCTOR"]).contains("1. command: 1 latency spikes"));
    assert_eq!(
        err(&mut c, &["LATENCY", "GRAPH", "nope"]),
        "ERR No samples available for event 'nope'"
    );
    assert_eq!(array(&mut c, &["LATENCY", "HISTORY", "blabla"]), vec![]);
    assert_eq!(int(&mut c, &["LATENCY", "RESET", "blabla"]), 0);
    assert_eq!(int(&mut c, &["LATENCY", "RESET"]), 1);
    assert_eq!(array(&mut c, &["LATENCY", "LATEST"]), vec![]);
    assert_eq!(
        err(&mut c, &["LATENCY", "HELP", "xxx"]),
        "ERR wrong number of arguments for 'latency|help' command"
    );
    assert_eq!(array(&mut c, &["LATENCY", "HELP"]).len(), 17);
}

/// One command's histogram: name, calls, (bucket label, cumulative count) pairs.
type Hist = (String, i64, Vec<(i64, i64)>);

/// The entries of a LATENCY HISTOGRAM reply, in order.
fn histograms(c: &mut Connection, args: &[&str]) -> Vec<Hist> {
    let Value::Map(m) = cmd(c, args).unwrap() else {
        panic!("LATENCY HISTOGRAM is a map in RESP3")
    };
    m.into_iter()
        .map(|(k, v)| {
            let Value::BulkString(name) = k else {
                panic!("{k:?}")
            };
            let Value::Map(fields) = v else {
                panic!("{v:?}")
            };
            assert_eq!(fields[0].0, bulk("calls"));
            assert_eq!(fields[1].0, bulk("histogram_usec"));
            let Value::Map(buckets) = &fields[1].1 else {
                panic!("{fields:?}")
            };
            let buckets = buckets
                .iter()
                .map(|(a, b)| (as_int(a), as_int(b)))
                .collect();
            (
                String::from_utf8(name).unwrap(),
                as_int(&fields[0].1),
                buckets,
            )
        })
        .collect()
}

#[test]
fn latency_histogram_per_command_and_subcommand() {
    let node = Proc::node(&[]);
    let client = redis::Client::open(format!("{}/?protocol=resp3", node.url())).unwrap();
    let mut c = client.get_connection().unwrap();
    assert_eq!(text(&mut c, &["CONFIG", "RESETSTAT"]), "OK");
    let h = histograms(&mut c, &["LATENCY", "HISTOGRAM"]);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].0, "config|resetstat");
    assert_eq!(h[0].1, 1);

    assert_eq!(text(&mut c, &["CONFIG", "RESETSTAT"]), "OK");
    assert_eq!(text(&mut c, &["SET", "a", "b"]), "OK");
    assert_eq!(text(&mut c, &["SET", "c", "d"]), "OK");
    assert_eq!(text(&mut c, &["GET", "a"]), "b");
    let _ = int(&mut c, &["CLIENT", "ID"]);
    let _ = text(&mut c, &["CLIENT", "LIST"]);
    let h = histograms(&mut c, &["LATENCY", "HISTOGRAM", "set", "blabla", "client"]);
    let names: Vec<&str> = h.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(names, ["set", "client|id", "client|list"]);
    assert_eq!(h[0].1, 2);
    // Buckets are Redis's labels (1, 2, 4 ... 33, 66 ... µs), counts cumulative up to calls.
    let labels = [
        1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16909,
    ];
    for (_, calls, buckets) in &h {
        assert_eq!(buckets.last().unwrap().1, *calls);
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        assert!(buckets
            .iter()
            .all(|(l, _)| labels.contains(l) || *l > 16909));
    }
    let h = histograms(&mut c, &["LATENCY", "HISTOGRAM", "client|id", "get"]);
    let names: Vec<&str> = h.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(names, ["client|id", "get"]);
    assert!(histograms(&mut c, &["LATENCY", "HISTOGRAM", "blabla"]).is_empty());
    let all = histograms(&mut c, &["LATENCY", "HISTOGRAM"]);
    assert!(all.iter().any(|x| x.0 == "config|resetstat"));
    assert!(!all.iter().any(|x| x.0 == "config" || x.0 == "client"));
}

#[test]
fn client_reply_off_skip_on() {
    let node = Proc::node(&[]);
    let mut r = Raw::connect(node.port);
    // OFF silences every reply, errors included, until ON (which replies OK).
    r.send_cmd(&["CLIENT", "REPLY", "OFF"]);
    r.send_cmd(&["PING", "one"]);
    r.send_cmd(&["SET", "k", "v"]);
    r.send_cmd(&["NOSUCHCOMMAND"]);
    r.send_cmd(&["GET"]);
    assert_eq!(r.cmd(&["CLIENT", "REPLY", "ON"]), Resp::Simple("OK".into()));
    assert_eq!(r.cmd(&["GET", "k"]), Resp::bulk("v"));
    // SKIP silences only the next command; pipelined in one write.
    let mut batch = common::encode_cmd(&["CLIENT", "REPLY", "SKIP"]);
    batch.extend(common::encode_cmd(&["PING", "skipped"]));
    batch.extend(common::encode_cmd(&["PING", "seen"]));
    r.send(&batch);
    assert_eq!(r.read(), Resp::bulk("seen"));
    // ON right after SKIP clears it and replies.
    r.send_cmd(&["CLIENT", "REPLY", "SKIP"]);
    assert_eq!(r.cmd(&["CLIENT", "REPLY", "ON"]), Resp::Simple("OK".into()));
    assert_eq!(r.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // SKIP while OFF changes nothing; a bad mode is a syntax error.
    r.send_cmd(&["CLIENT", "REPLY", "OFF"]);
    r.send_cmd(&["CLIENT", "REPLY", "SKIP"]);
    r.send_cmd(&["PING", "quiet"]);
    assert_eq!(r.cmd(&["CLIENT", "REPLY", "ON"]), Resp::Simple("OK".into()));
    assert_eq!(
        r.cmd(&["CLIENT", "REPLY", "MAYBE"]),
        Resp::Error("ERR syntax error".into())
    );
    // RESET turns replies back on.
    r.send_cmd(&["CLIENT", "REPLY", "OFF"]);
    assert_eq!(r.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(r.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // Pub/sub traffic is pushed even with replies off, as in Redis.
    r.send_cmd(&["CLIENT", "REPLY", "OFF"]);
    r.send_cmd(&["SUBSCRIBE", "ch"]);
    assert_eq!(
        r.read(),
        Resp::Array(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("ch"),
            Resp::Int(1)
        ])
    );
    let mut c = node.conn();
    assert_eq!(int(&mut c, &["PUBLISH", "ch", "hello"]), 1);
    assert_eq!(r.read(), Resp::bulks(&["message", "ch", "hello"]));
    // The connection kept working throughout.
    assert_eq!(text(&mut c, &["GET", "k"]), "v");
}

#[test]
fn client_pause_holds_back_writes_or_everything() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "abc"]),
        "ERR timeout is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "10", "READS"]),
        "ERR CLIENT PAUSE mode must be WRITE or ALL"
    );
    assert_eq!(text(&mut c, &["SET", "foo", "old"]), "OK");

    // WRITE: reads answer at once, writes wait (and count as blocked) until UNPAUSE.
    assert_eq!(text(&mut c, &["CLIENT", "PAUSE", "60000", "WRITE"]), "OK");
    let mut r = Raw::connect(node.port);
    assert_eq!(r.cmd(&["GET", "foo"]), Resp::bulk("old"));
    assert_eq!(r.cmd(&["PING"]), Resp::Simple("PONG".into()));
    r.send_cmd(&["SET", "foo", "new"]);
    let mut r2 = Raw::connect(node.port);
    r2.send_cmd(&["PUBLISH", "ch", "m"]);
    assert!(eventually(Duration::from_secs(5), || {
        text(&mut c, &["INFO", "clients"]).contains("blocked_clients:2")
    }));
    assert_eq!(text(&mut c, &["GET", "foo"]), "old");
    // A syntax error is answered at once, paused or not.
    assert!(err(&mut c, &["SET", "foo"]).contains("wrong number of arguments for 'set'"));
    assert_eq!(text(&mut c, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(r.read(), Resp::Simple("OK".into()));
    assert_eq!(r2.read(), Resp::Int(0));
    assert_eq!(text(&mut c, &["GET", "foo"]), "new");
    assert!(text(&mut c, &["INFO", "clients"]).contains("blocked_clients:0"));

    // A transaction waits at EXEC when it holds a write.
    let mut t = Raw::connect(node.port);
    assert_eq!(t.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(t.cmd(&["SET", "foo", "tx"]), Resp::Simple("QUEUED".into()));
    assert_eq!(text(&mut c, &["CLIENT", "PAUSE", "60000", "WRITE"]), "OK");
    t.send_cmd(&["EXEC"]);
    assert!(eventually(Duration::from_secs(5), || {
        text(&mut c, &["INFO", "clients"]).contains("blocked_clients:1")
    }));
    assert_eq!(text(&mut c, &["GET", "foo"]), "new");
    assert_eq!(text(&mut c, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(t.read(), Resp::Array(vec![Resp::Simple("OK".into())]));

    // Keys do not expire while paused (they read as missing); they go once it ends.
    let expired = |c: &mut Connection| -> i64 {
        let info = text(c, &["INFO", "stats"]);
        info.lines()
            .find_map(|l| l.strip_prefix("expired_keys:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = expired(&mut c);
    assert_eq!(text(&mut c, &["SET", "ttl", "v", "PX", "50"]), "OK");
    assert_eq!(text(&mut c, &["CLIENT", "PAUSE", "60000", "WRITE"]), "OK");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cmd(&mut c, &["GET", "ttl"]).unwrap(), Value::Nil);
    assert_eq!(expired(&mut c), before);
    assert_eq!(text(&mut c, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(cmd(&mut c, &["GET", "ttl"]).unwrap(), Value::Nil);
    assert_eq!(expired(&mut c), before + 1);

    // ALL holds every command back until the pause times out.
    assert_eq!(text(&mut c, &["CLIENT", "PAUSE", "400", "ALL"]), "OK");
    let start = Instant::now();
    let mut p = Raw::connect(node.port);
    assert_eq!(p.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert_eq!(text(&mut c, &["PING"]), "PONG");
}

fn encoding(c: &mut Connection, key: &str) -> String {
    text(c, &["OBJECT", "ENCODING", key])
}

#[test]
fn set_encodings_follow_redis_conversions() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    assert_eq!(int(&mut c, &["SADD", "s", "1", "2", "3"]), 3);
    assert_eq!(encoding(&mut c, "s"), "intset");
    // A non-integer member converts the set for good.
    assert_eq!(int(&mut c, &["SADD", "s", "a"]), 1);
    assert_eq!(encoding(&mut c, "s"), "hashtable");
    assert_eq!(int(&mut c, &["SREM", "s", "a"]), 1);
    assert_eq!(encoding(&mut c, "s"), "hashtable");
    // Growing past set-max-intset-entries converts too, also for good.
    assert_eq!(
        text(&mut c, &["CONFIG", "SET", "set-max-intset-entries", "4"]),
        "OK"
    );
    assert_eq!(int(&mut c, &["SADD", "big", "1", "2", "3", "4"]), 4);
    assert_eq!(encoding(&mut c, "big"), "intset");
    assert_eq!(int(&mut c, &["SADD", "big", "5"]), 1);
    assert_eq!(encoding(&mut c, "big"), "hashtable");
    assert_eq!(int(&mut c, &["SREM", "big", "5"]), 1);
    assert_eq!(encoding(&mut c, "big"), "hashtable");
    // Results of *STORE are built fresh: an intset when they can be.
    assert_eq!(int(&mut c, &["SADD", "t", "2", "3", "9"]), 3);
    assert_eq!(int(&mut c, &["SINTERSTORE", "dst", "s", "t"]), 2);
    assert_eq!(encoding(&mut c, "dst"), "intset");
    assert_eq!(int(&mut c, &["SUNIONSTORE", "dst", "s", "t"]), 4);
    assert_eq!(encoding(&mut c, "dst"), "intset");
    assert_eq!(int(&mut c, &["SADD", "w", "x", "1"]), 2);
    assert_eq!(int(&mut c, &["SDIFFSTORE", "dst", "w", "t"]), 2);
    assert_eq!(encoding(&mut c, "dst"), "hashtable");
    assert_eq!(int(&mut c, &["SUNIONSTORE", "dst", "s", "t", "big"]), 5);
    assert_eq!(encoding(&mut c, "dst"), "hashtable");
    // SMOVE: an integer keeps an intset, a string converts it.
    assert_eq!(int(&mut c, &["SMOVE", "w", "t", "1"]), 1);
    assert_eq!(encoding(&mut c, "t"), "intset");
    assert_eq!(int(&mut c, &["SMOVE", "w", "t", "x"]), 1);
    assert_eq!(encoding(&mut c, "t"), "hashtable");
    // The sets are unchanged as data.
    let mut m: Vec<String> = redis::cmd("SMEMBERS").arg("t").query(&mut c).unwrap();
    m.sort();
    assert_eq!(m, ["1", "2", "3", "9", "x"]);
    // After a reload, an all-integer small set is an intset again (as Redis loads it).
    assert_eq!(text(&mut c, &["DEBUG", "RELOAD"]), "OK");
    assert_eq!(encoding(&mut c, "s"), "intset");
    assert_eq!(encoding(&mut c, "t"), "hashtable");
    assert_eq!(
        text(&mut c, &["CONFIG", "SET", "set-max-intset-entries", "512"]),
        "OK"
    );
    // Other types keep Redis 7.0's names.
    assert_eq!(int(&mut c, &["RPUSH", "l", "a"]), 1);
    assert_eq!(encoding(&mut c, "l"), "quicklist");
    assert_eq!(int(&mut c, &["HSET", "h", "f", "v"]), 1);
    assert_eq!(encoding(&mut c, "h"), "listpack");
    assert_eq!(int(&mut c, &["ZADD", "z", "1", "m"]), 1);
    assert_eq!(encoding(&mut c, "z"), "listpack");
}

#[test]
fn query_buffer_figures_grow_and_shrink() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    // The caller sees its own request as the unprocessed buffer (26 bytes, as Redis).
    let me = text(&mut c, &["CLIENT", "LIST"]);
    assert!(me.contains(" qbuf=26 "), "{me}");

    let mut idle = Raw::connect(node.port);
    assert_eq!(
        idle.cmd(&["CLIENT", "SETNAME", "idler"]),
        Resp::Simple("OK".into())
    );
    let q = client_field(&mut c, "idler", "qbuf").unwrap();
    let free = client_field(&mut c, "idler", "qbuf-free").unwrap();
    assert_eq!(q, 0);
    assert!((16384..32768).contains(&(q + free)), "{q} + {free}");
    // Idle for more than 2 s: the buffer is given back.
    assert!(eventually(Duration::from_secs(8), || {
        client_field(&mut c, "idler", "qbuf-free") == Some(0)
    }));
    assert_eq!(client_field(&mut c, "idler", "qbuf"), Some(0));
    // ... and the client still works.
    assert_eq!(idle.cmd(&["PING"]), Resp::Simple("PONG".into()));

    // A partial big argument shows up as unprocessed bytes.
    let mut big = Raw::connect(node.port);
    assert_eq!(
        big.cmd(&["CLIENT", "SETNAME", "big"]),
        Resp::Simple("OK".into())
    );
    let payload = "A".repeat(400_000);
    let req = common::encode_cmd(&["SET", "x", &payload]);
    let cut = 200_000;
    big.send(&req[..cut]);
    assert!(eventually(Duration::from_secs(5), || {
        client_field(&mut c, "big", "qbuf") == Some(cut)
    }));
    big.send(&req[cut..]);
    assert_eq!(big.read(), Resp::Simple("OK".into()));
    let peak = client_field(&mut c, "big", "qbuf").unwrap()
        + client_field(&mut c, "big", "qbuf-free").unwrap();
    assert!(peak > 32768, "{peak}");
    // Small requests afterwards: the buffer shrinks towards the new peak, but not to 0.
    let small = "A".repeat(100);
    assert!(eventually(Duration::from_secs(5), || {
        assert_eq!(big.cmd(&["SET", "x", &small]), Resp::Simple("OK".into()));
        let now = client_field(&mut c, "big", "qbuf").unwrap()
            + client_field(&mut c, "big", "qbuf-free").unwrap();
        now > 0 && now < peak
    }));
    let line = text(&mut c, &["CLIENT", "LIST"]);
    let line = line.lines().find(|l| l.contains(" name=big ")).unwrap();
    let field = |f: &str| -> usize {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        field("tot-mem"),
        field("qbuf") + field("qbuf-free") + field("obl")
    );
}

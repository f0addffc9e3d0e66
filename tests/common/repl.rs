//! Replication test helpers: INFO fields, full keyspace dumps (every type, with absolute
//! expiry times) to compare a master with its replicas, and a mixed write load of every type.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{eventually, Proc};

/// One field of an INFO section (empty if absent).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(c).expect("INFO");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

pub fn info_u64(c: &mut redis::Connection, section: &str, field: &str) -> u64 {
    info_field(c, section, field).parse().unwrap_or(0)
}

/// Waits until the replica's link to its master is up.
pub fn wait_link_up(replica: &Proc) {
    let mut c = replica.conn();
    assert!(
        eventually(Duration::from_secs(20), || info_field(
            &mut c,
            "replication",
            "master_link_status"
        ) == "up"),
        "replica on port {} never got its link up; log:\n{}",
        replica.port,
        std::fs::read_to_string(&replica.log).unwrap_or_default()
    );
}

/// Every key of every database with its type, its content and its absolute expiry.
pub fn dump(p: &Proc, dbs: usize) -> BTreeMap<(usize, Vec<u8>), String> {
    let mut c = p.conn();
    let mut out = BTreeMap::new();
    for db in 0..dbs {
        redis::cmd("SELECT")
            .arg(db)
            .query::<()>(&mut c)
            .expect("SELECT");
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query(&mut c)
                .expect("SCAN");
            for k in keys {
                let t: String = redis::cmd("TYPE").arg(&k).query(&mut c).expect("TYPE");
                let v = match t.as_str() {
                    "string" => format!("{:?}", q_val(&mut c, &["GET"], &k)),
                    "list" => format!("{:?}", q_val(&mut c, &["LRANGE"], &k)),
                    "hash" => sorted(q_val(&mut c, &["HGETALL"], &k), 2),
                    "set" => sorted(q_val(&mut c, &["SMEMBERS"], &k), 1),
                    "zset" => format!("{:?}", q_val(&mut c, &["ZRANGE"], &k)),
                    "none" => continue,
                    other => format!("type {other}"),
                };
                let exp: i64 = redis::cmd("PEXPIRETIME")
                    .arg(&k)
                    .query(&mut c)
                    .expect("PEXPIRETIME");
                out.insert((db, k), format!("{t} {v} exp={exp}"));
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    out
}

fn q_val(c: &mut redis::Connection, cmd: &[&str], key: &[u8]) -> redis::Value {
    let mut r = redis::cmd(cmd[0]);
    r.arg(key);
    match cmd[0] {
        "LRANGE" => {
            r.arg(0).arg(-1);
        }
        "ZRANGE" => {
            r.arg(0).arg(-1).arg("WITHSCORES");
        }
        _ => {}
    }
    r.query(c).expect("dump read")
}

/// Renders an array reply order-insensitively, in groups of `n` (hash field/value pairs).
fn sorted(v: redis::Value, n: usize) -> String {
    let redis::Value::Array(items) = v else {
        return format!("{v:?}");
    };
    let mut groups: Vec<String> = items.chunks(n).map(|g| format!("{g:?}")).collect();
    groups.sort();
    groups.join(",")
}

/// Asserts two nodes eventually hold the same keyspace.
pub fn assert_converge(a: &Proc, b: &Proc, dbs: usize) {
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let ok = eventually(Duration::from_secs(20), || {
        last = (dump(a, dbs), dump(b, dbs));
        last.0 == last.1
    });
    if !ok {
        let (x, y) = last;
        let only_a: Vec<_> = x
            .iter()
            .filter(|(k, v)| y.get(*k) != Some(v))
            .take(5)
            .collect();
        let only_b: Vec<_> = y
            .iter()
            .filter(|(k, v)| x.get(*k) != Some(v))
            .take(5)
            .collect();
        panic!(
            "keyspaces differ ({} vs {} keys) on ports {} and {}; first differences:\n{only_a:?}\n{only_b:?}\nlog b:\n{}",
            x.len(),
            y.len(),
            a.port,
            b.port,
            std::fs::read_to_string(&b.log).unwrap_or_default()
        );
    }
}

/// A deterministic mixed write load touching every type, expiries, MULTI/EXEC and two
/// databases; `n` rounds.
pub fn write_load(c: &mut redis::Connection, seed: u64, n: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for i in 0..n {
        let k = rng.u32(0..50);
        let v = format!("v{seed}-{i}");
        let mut p = redis::pipe();
        match rng.u32(0..22) {
            0 => p.cmd("SET").arg(format!("s{k}")).arg(&v),
            1 => p
                .cmd("SET")
                .arg(format!("s{k}"))
                .arg(&v)
                .arg("EX")
                .arg(100 + k),
            2 => p.cmd("INCRBY").arg(format!("n{k}")).arg(rng.i64(-5..5)),
            3 => p.cmd("INCRBYFLOAT").arg(format!("f{k}")).arg(1.5),
            4 => p.cmd("APPEND").arg(format!("s{k}")).arg(&v),
            5 => p.cmd("RPUSH").arg(format!("l{k}")).arg(&v).arg(i),
            6 => p.cmd("LPOP").arg(format!("l{k}")),
            7 => p
                .cmd("HSET")
                .arg(format!("h{k}"))
                .arg(format!("f{}", i % 7))
                .arg(&v),
            8 => p.cmd("HINCRBY").arg(format!("h{k}")).arg("cnt").arg(2),
            9 => p
                .cmd("HDEL")
                .arg(format!("h{k}"))
                .arg(format!("f{}", i % 7)),
            10 => p.cmd("SADD").arg(format!("t{k}")).arg(&v).arg(i % 10),
            11 => p.cmd("SREM").arg(format!("t{k}")).arg(i % 10),
            12 => p
                .cmd("ZADD")
                .arg(format!("z{k}"))
                .arg(i as f64 / 3.0)
                .arg(&v),
            13 => p.cmd("ZINCRBY").arg(format!("z{k}")).arg(2.5).arg(&v),
            14 => p.cmd("ZREM").arg(format!("z{k}")).arg(&v),
            15 => p.cmd("EXPIRE").arg(format!("l{k}")).arg(1000),
            16 => p.cmd("DEL").arg(format!("s{k}")),
            17 => p
                .cmd("MULTI")
                .ignore()
                .cmd("INCR")
                .arg(format!("n{k}"))
                .ignore()
                .cmd("LPUSH")
                .arg(format!("l{k}"))
                .arg(&v)
                .ignore()
                .cmd("EXEC"),
            18 => p
                .cmd("SELECT")
                .arg(1)
                .ignore()
                .cmd("SET")
                .arg(format!("db1-{k}"))
                .arg(&v)
                .ignore()
                .cmd("SELECT")
                .arg(0),
            19 => p.cmd("SETRANGE").arg(format!("s{k}")).arg(3).arg("xyz"),
            20 => p.cmd("SPOP").arg(format!("t{k}")),
            _ => p.cmd("PERSIST").arg(format!("s{k}")),
        };
        let _: redis::RedisResult<redis::Value> = p.query(c);
    }
}

/// A raw connection to `p` subscribed to `channel` (the subscription is confirmed).
pub fn subscribe(p: &Proc, channel: &str) -> super::Raw {
    let mut s = super::Raw::connect(p.port);
    let r = s.cmd(&["SUBSCRIBE", channel]);
    assert_eq!(
        r,
        super::Resp::Array(vec![
            super::Resp::bulk("subscribe"),
            super::Resp::bulk(channel),
            super::Resp::Int(1)
        ])
    );
    s
}

/// Asserts the next message pushed to `sub` is `payload` on `channel`.
pub fn expect_message(sub: &mut super::Raw, channel: &str, payload: &str) {
    assert_eq!(
        sub.read(),
        super::Resp::bulks(&["message", channel, payload])
    );
}

//! `maxmemory` through the real binary (whose counting allocator makes `used_memory` live):
//! eviction keeps the dataset bounded while writes keep succeeding, each policy picks the
//! right victims, and `noeviction` refuses writes with Redis's OOM error.

mod common;
use common::compare::{dbsize, q};
use common::Proc;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Writes `n` keys `prefix:i` with 1 KiB values (optionally with a TTL), in pipelined
/// batches; every write must succeed.
fn fill(c: &mut redis::Connection, prefix: &str, n: usize, ex: Option<u64>) {
    let value = vec![b'x'; 1024];
    for batch in 0..n.div_ceil(100) {
        let mut p = redis::pipe();
        for i in batch * 100..((batch + 1) * 100).min(n) {
            let cmd = p.cmd("SET").arg(format!("{prefix}:{i}")).arg(&value[..]);
            if let Some(s) = ex {
                cmd.arg("EX").arg(s);
            }
            cmd.ignore();
        }
        let r: redis::RedisResult<()> = p.query(c);
        if let Err(e) = r {
            panic!("write batch {batch} of {prefix} failed: {e}");
        }
    }
}

#[test]
fn allkeys_lru_keeps_the_dataset_bounded() {
    let node = Proc::node(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = node.conn();
    fill(&mut c, "k", 20_000, None);
    let n = dbsize(&mut c);
    // 20 MB written into 2 MB: at most ~2000 1 KiB values can remain.
    assert!(n > 100 && n < 2000, "dbsize {n}");
    // The most recent writes survive; the oldest are gone.
    let recent: Option<Vec<u8>> = q(&mut c, &["GET", "k:19999"]);
    assert!(recent.is_some());
    let old: i64 = q(&mut c, &["EXISTS", "k:0", "k:1", "k:2", "k:3", "k:4"]);
    assert!(old < 5);
}

#[test]
fn allkeys_random_and_volatile_random_evict() {
    let node = Proc::node(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-random"]);
    let mut c = node.conn();
    fill(&mut c, "k", 10_000, None);
    let n = dbsize(&mut c);
    assert!(n > 100 && n < 2000, "dbsize {n}");

    let node = Proc::node(&[
        "--maxmemory",
        "2mb",
        "--maxmemory-policy",
        "volatile-random",
    ]);
    let mut c = node.conn();
    fill(&mut c, "keep", 200, None);
    fill(&mut c, "v", 10_000, Some(3600));
    let n = dbsize(&mut c);
    assert!(n > 200 && n < 2200, "dbsize {n}");
    let kept: i64 = q(&mut c, &["EXISTS", "keep:0", "keep:99", "keep:199"]);
    assert_eq!(kept, 3, "volatile-random evicted a key without TTL");
}

#[test]
fn volatile_lru_spares_persistent_keys_and_then_refuses() {
    let node = Proc::node(&["--maxmemory", "2mb", "--maxmemory-policy", "volatile-lru"]);
    let mut c = node.conn();
    fill(&mut c, "keep", 300, None);
    fill(&mut c, "v", 10_000, Some(3600));
    for i in 0..300 {
        assert_eq!(
            q::<i64>(&mut c, &["EXISTS", &format!("keep:{i}")]),
            1,
            "keep:{i}"
        );
    }
    assert!(dbsize(&mut c) < 2300);
    // Without volatile keys left, nothing is evictable: OOM.
    let mut refused = None;
    let value = vec![b'y'; 1024];
    for i in 0..10_000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("p:{i}"))
            .arg(&value[..])
            .query(&mut c);
        if let Err(e) = r {
            refused = Some(format!(
                "{} {}",
                e.code().unwrap_or("?"),
                e.detail().unwrap_or("")
            ));
            break;
        }
    }
    assert_eq!(refused.as_deref(), Some(OOM));
    for i in 0..300 {
        assert_eq!(
            q::<i64>(&mut c, &["EXISTS", &format!("keep:{i}")]),
            1,
            "keep:{i}"
        );
    }
}

#[test]
fn volatile_ttl_evicts_the_nearest_deadlines_first() {
    let node = Proc::node(&["--maxmemory", "2mb", "--maxmemory-policy", "volatile-ttl"]);
    let mut c = node.conn();
    fill(&mut c, "long", 300, Some(100_000));
    // Short-lived keys written afterwards go first, though they are the most recent.
    for round in 0..30u64 {
        fill(&mut c, &format!("short{round}"), 300, Some(1000 + round));
    }
    let long_left: i64 = (0..300)
        .map(|i| q::<i64>(&mut c, &["EXISTS", &format!("long:{i}")]))
        .sum();
    assert!(long_left >= 250, "only {long_left} long-TTL keys left");
}

#[test]
fn allkeys_lfu_keeps_frequently_used_keys() {
    let node = Proc::node(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lfu"]);
    let mut c = node.conn();
    fill(&mut c, "hot", 50, None);
    for _ in 0..30 {
        let mut p = redis::pipe();
        for i in 0..50 {
            p.cmd("GET").arg(format!("hot:{i}")).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    fill(&mut c, "cold", 10_000, None);
    let hot_left: i64 = (0..50)
        .map(|i| q::<i64>(&mut c, &["EXISTS", &format!("hot:{i}")]))
        .sum();
    assert!(hot_left >= 45, "only {hot_left} hot keys survived");
    assert!(dbsize(&mut c) < 2000);
}

#[test]
fn noeviction_refuses_writes_but_serves_reads_and_deletes() {
    let node = Proc::node(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let mut c = node.conn();
    let value = vec![b'z'; 1024];
    let mut written = 0;
    let mut refused = None;
    for i in 0..10_000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(&value[..])
            .query(&mut c);
        match r {
            Ok(()) => written += 1,
            Err(e) => {
                refused = Some(format!(
                    "{} {}",
                    e.code().unwrap_or("?"),
                    e.detail().unwrap_or("")
                ));
                break;
            }
        }
    }
    assert_eq!(refused.as_deref(), Some(OOM), "after {written} writes");
    assert!(written > 100 && written < 2000, "{written}");
    assert_eq!(dbsize(&mut c), written);
    // Reads and deletes still work; non-growing writes without DENYOOM too.
    let v: Vec<u8> = q(&mut c, &["GET", "k:0"]);
    assert_eq!(v, value);
    assert_eq!(q::<i64>(&mut c, &["DEL", "k:0"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k:1", "100"]), 1);
    // Freeing memory makes writes succeed again.
    let _: () = q(&mut c, &["FLUSHALL"]);
    let _: () = q(&mut c, &["SET", "after", "flush"]);
    assert_eq!(q::<String>(&mut c, &["GET", "after"]), "flush");
}

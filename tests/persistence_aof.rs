//! The append-only file end to end: real `tandem node` processes (and redis-server 7.0 for
//! interop) in temp dirs, restarted on the same directory, killed with SIGKILL.

mod common;

use common::{eventually, free_port, require_tool, Proc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Starts `tandem node` on `dir` (kept across restarts) with a TOML config and flags.
fn node_in(dir: &Path, config: &str, extra: &[&str]) -> Proc {
    let port = free_port();
    let cfg = dir.join("node.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = next_log(dir, "node");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.arg("node")
        .arg("--config")
        .arg(&cfg)
        .arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .args(extra);
    spawn(cmd, port, log)
}

/// Starts redis-server 7.0 on `dir`.
fn redis_in(dir: &Path, extra: &[&str]) -> Proc {
    require_tool("redis-server");
    let port = free_port();
    let log = next_log(dir, "redis");
    let mut cmd = Command::new("redis-server");
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--save")
        .arg("")
        .args(extra);
    spawn(cmd, port, log)
}

fn next_log(dir: &Path, what: &str) -> PathBuf {
    (0..)
        .map(|i| dir.join(format!("{what}-{i}.log")))
        .find(|p| !p.exists())
        .unwrap()
}

/// The data directory belongs to the test; the harness's own temp dir is only a placeholder.
fn spawn(cmd: Command, port: u16, log: PathBuf) -> Proc {
    Proc::spawn(cmd, port, tempfile::tempdir().unwrap(), log)
}

/// Starts `tandem node` on `dir` expecting it to fail: returns its exit status and log.
fn node_fails(dir: &Path, config: &str) -> (std::process::ExitStatus, String) {
    let cfg = dir.join("node.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("node")
        .arg("--config")
        .arg(&cfg)
        .arg("--port")
        .arg(free_port().to_string())
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, log)
}

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    common::compare::q(c, args)
}

fn info_field(c: &mut redis::Connection, field: &str) -> String {
    let info: String = q(c, &["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
        .trim()
        .to_string()
}

fn wait_rewrite_done(c: &mut redis::Connection, rewrites: u64) {
    assert!(
        eventually(WAIT, || {
            info_field(c, "aof_rewrite_in_progress") == "0"
                && info_field(c, "aof_rewrites").parse::<u64>().unwrap() >= rewrites
        }),
        "rewrite did not finish"
    );
    assert_eq!(info_field(c, "aof_last_bgrewrite_status"), "ok");
}

/// Every key of every database: (db, key) -> (type, contents, absolute expiry in ms).
type Dump = BTreeMap<(u8, Vec<u8>), (String, String, i64)>;

fn dump(c: &mut redis::Connection) -> Dump {
    let mut out = Dump::new();
    for db in 0..16u8 {
        let _: () = q(c, &["SELECT", &db.to_string()]);
        let keys: Vec<Vec<u8>> = q(c, &["KEYS", "*"]);
        for k in keys {
            let ty: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
            let contents = match ty.as_str() {
                "string" => {
                    let v: Vec<u8> = redis::cmd("GET").arg(&k).query(c).unwrap();
                    format!("{v:?}")
                }
                "list" => {
                    let v: Vec<Vec<u8>> = redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query(c)
                        .unwrap();
                    format!("{v:?}")
                }
                "hash" => {
                    let mut v: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&k).query(c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "set" => {
                    let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "zset" => {
                    let v: Vec<(Vec<u8>, String)> = redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query(c)
                        .unwrap();
                    format!("{v:?}")
                }
                other => panic!("unexpected type {other}"),
            };
            let exp: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(c).unwrap();
            out.insert((db, k), (ty, contents, exp));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    out
}

/// Writes every type, small and large (compact and plain encodings in Redis), in two
/// databases, with expiries, transactions and relative commands.
fn write_every_type(c: &mut redis::Connection, tag: &str) {
    let far = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000)
        .to_string();
    for db in ["0", "7"] {
        let _: () = q(c, &["SELECT", db]);
        let k = |s: &str| format!("{tag}:{s}");
        let _: () = q(c, &["SET", &k("str"), "hello"]);
        let _: () = q(c, &["SET", &k("int"), "12345"]);
        let _: i64 = q(c, &["INCRBY", &k("int"), "10"]);
        let _: String = q(c, &["INCRBYFLOAT", &k("float"), "1.5"]);
        let _: () = q(c, &["SET", &k("ex"), "v", "EX", "1000"]);
        let _: () = q(c, &["SET", &k("pxat"), "v", "PXAT", &far]);
        let _: i64 = q(c, &["APPEND", &k("str"), " world"]);
        let _: i64 = q(c, &["RPUSH", &k("list"), "a", "b", "c"]);
        let _: i64 = q(c, &["LPUSH", &k("list"), "z"]);
        let big: Vec<String> = (0..300)
            .map(|i| format!("item-{i}-{}", "x".repeat(i % 90)))
            .collect();
        let mut args = vec!["RPUSH".to_string(), k("biglist")];
        args.extend(big.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _: i64 = q(c, &args);
        let _: i64 = q(c, &["HSET", &k("hash"), "f1", "v1", "f2", "v2"]);
        let _: i64 = q(c, &["HINCRBY", &k("hash"), "n", "7"]);
        let mut args = vec!["HSET".to_string(), k("bighash")];
        for i in 0..600 {
            args.push(format!("field{i}"));
            args.push(format!("value-{i}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _: i64 = q(c, &args);
        let _: i64 = q(c, &["SADD", &k("intset"), "1", "2", "3", "-7"]);
        let _: i64 = q(c, &["SADD", &k("set"), "a", "b", "c"]);
        let _: i64 = q(c, &["SREM", &k("set"), "b"]);
        let mut args = vec!["SADD".to_string(), k("bigset")];
        args.extend((0..700).map(|i| format!("member-{i}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _: i64 = q(c, &args);
        let _: i64 = q(c, &["ZADD", &k("zset"), "1", "a", "2.5", "b", "-3", "c"]);
        let _: String = q(c, &["ZINCRBY", &k("zset"), "0.25", "a"]);
        let mut args = vec!["ZADD".to_string(), k("bigzset")];
        for i in 0..300 {
            args.push(format!("{}", i as f64 / 3.0));
            args.push(format!("m{i}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _: i64 = q(c, &args);
        let _: i64 = q(c, &["EXPIRE", &k("hash"), "5000"]);
        let _: i64 = q(c, &["PEXPIRE", &k("zset"), "900000"]);
        let _: () = q(c, &["SET", &k("gone"), "x"]);
        let _: i64 = q(c, &["DEL", &k("gone")]);
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(k("tx1"))
            .arg("1")
            .ignore()
            .cmd("LPUSH")
            .arg(k("tx2"))
            .arg("a")
            .ignore()
            .query(c)
            .unwrap();
    }
    let _: () = q(c, &["SELECT", "0"]);
}

fn aof_dir(dir: &Path) -> PathBuf {
    dir.join("appendonlydir")
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(aof_dir(dir).join("appendonly.aof.manifest")).unwrap()
}

/// The file names listed in the manifest with type `t`.
fn files_of(dir: &Path, t: char) -> Vec<String> {
    manifest(dir)
        .lines()
        .filter(|l| l.ends_with(&format!("type {t}")))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect()
}

fn last_incr(dir: &Path) -> PathBuf {
    aof_dir(dir).join(files_of(dir, 'i').last().expect("an incr file"))
}

const AOF: &str = "appendonly = true\n";

#[test]
fn every_type_survives_kill_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    write_every_type(&mut c, "a");
    let before = dump(&mut c);
    assert!(before.len() > 30, "{}", before.len());
    assert!(before.values().any(|v| v.2 > 0), "no expiry written");
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    // Replies wait for the write (appendfsync everysec): SIGKILL loses nothing.
    n.kill();
    assert_eq!(files_of(dir, 'b').len(), 1);
    assert_eq!(files_of(dir, 'i').len(), 1);
    let mut n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    assert_eq!(dump(&mut c), before);
    // Once more after writing on top of the reloaded data, with a clean SHUTDOWN.
    write_every_type(&mut c, "b");
    let before = dump(&mut c);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(eventually(WAIT, || !n.alive()));
    let n = node_in(dir, AOF, &[]);
    assert_eq!(dump(&mut n.conn()), before);
}

#[test]
fn acknowledged_writes_survive_kill_9_with_appendfsync_always() {
    acknowledged_writes_survive_kill_9("always");
}

#[test]
fn acknowledged_writes_survive_kill_9_with_appendfsync_everysec() {
    // The process dies, not the machine: what was written before the reply is in the file.
    acknowledged_writes_survive_kill_9("everysec");
}

fn acknowledged_writes_survive_kill_9(policy: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = &format!("appendonly = true\nappendfsync = \"{policy}\"\n");
    let mut n = node_in(dir, cfg, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let url = n.url();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (stop, acked, url) = (stop.clone(), acked.clone(), url.clone());
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut mine = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("t{t}:k{i}");
                    let r: redis::RedisResult<()> = if i % 3 == 0 {
                        redis::cmd("RPUSH")
                            .arg(format!("t{t}:list"))
                            .arg(&key)
                            .query(&mut c)
                            .map(|_: i64| ())
                    } else {
                        redis::cmd("SET").arg(&key).arg(i).query(&mut c)
                    };
                    match r {
                        Ok(()) => mine.push(key),
                        Err(_) => break, // the server died: this write was never acknowledged
                    }
                }
                acked.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    n.kill();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "too few writes: {}", acked.len());
    let n = node_in(dir, cfg, &[]);
    let mut c = n.conn();
    let mut missing = Vec::new();
    let lists: Vec<Vec<String>> = (0..4)
        .map(|t| q(&mut c, &["LRANGE", &format!("t{t}:list"), "0", "-1"]))
        .collect();
    for key in &acked {
        let i: u64 = key.rsplit('k').next().unwrap().parse().unwrap();
        let t: usize = key[1..2].parse().unwrap();
        let there = if i.is_multiple_of(3) {
            lists[t].contains(key)
        } else {
            q::<Option<String>>(&mut c, &["GET", key]).is_some()
        };
        if !there {
            missing.push(key.clone());
        }
    }
    eprintln!(
        "appendfsync {policy} + kill -9: {} acknowledged writes, {} missing after restart",
        acked.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost acknowledged writes: {missing:?}");
}

#[test]
fn a_truncated_last_command_is_cut_off_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    for i in 0..20 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "value"]);
    }
    n.kill();
    let incr = last_incr(dir);
    let full = std::fs::read(&incr).unwrap();
    // Chop the last command in half (as a crash mid-write would).
    let cut = full.len() - 12;
    std::fs::write(&incr, &full[..cut]).unwrap();
    let last_cmd = b"*3\r\n$3\r\nSET\r\n$3\r\nk19\r\n$5\r\nvalue\r\n";
    assert!(full.ends_with(last_cmd));
    let good = full.len() - last_cmd.len();

    // With aof-load-truncated no, start-up refuses and leaves the file alone.
    let (status, log) = node_fails(dir, "appendonly = true\naof-load-truncated = false\n");
    assert!(!status.success());
    assert!(log.contains("appendonly.aof.1.incr.aof"), "{log}");
    assert!(log.contains(&format!("byte offset {good}")), "{log}");
    assert_eq!(std::fs::read(&incr).unwrap(), &full[..cut]);

    let n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    let log = std::fs::read_to_string(&n.log).unwrap();
    assert!(log.contains("Truncating the AOF"), "{log}");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good as u64);
    assert_eq!(common::compare::dbsize(&mut c), 19);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k19"]), None);
    // The AOF goes on from there and stays loadable.
    let _: () = q(&mut c, &["SET", "after", "1"]);
    drop(n);
    let n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    assert_eq!(common::compare::dbsize(&mut c), 20);
    assert_eq!(q::<String>(&mut c, &["GET", "after"]), "1");
}

#[test]
fn corruption_in_the_middle_stops_start_up_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    for i in 0..10 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "value"]);
    }
    n.kill();
    let incr = last_incr(dir);
    let mut bytes = std::fs::read(&incr).unwrap();
    // Overwrite the '*' of a command in the middle.
    let starts: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"*3\r\n")
        .map(|(i, _)| i)
        .collect();
    let at = starts[5];
    bytes[at] = b'!';
    std::fs::write(&incr, &bytes).unwrap();
    let snapshot = |d: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(aof_dir(d))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let before = snapshot(dir);
    let (status, log) = node_fails(dir, AOF);
    assert!(!status.success(), "{log}");
    assert!(log.contains("appendonly.aof.1.incr.aof"), "{log}");
    assert!(log.contains(&format!("byte offset {at}")), "{log}");
    assert_eq!(
        snapshot(dir),
        before,
        "files changed by the failed start-up"
    );
    // The same with the corruption in the base's RDB.
    let base = aof_dir(dir).join(&files_of(dir, 'b')[0]);
    let mut b = std::fs::read(&base).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff; // the checksum
    std::fs::write(&base, &b).unwrap();
    let before = snapshot(dir);
    let (status, log) = node_fails(dir, AOF);
    assert!(!status.success());
    assert!(log.contains("appendonly.aof.1.base.rdb"), "{log}");
    assert_eq!(snapshot(dir), before);
}

#[test]
fn bgrewriteaof_under_a_write_load_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    write_every_type(&mut c, "pre");
    let stop = Arc::new(AtomicBool::new(false));
    let url = n.url();
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (stop, url) = (stop.clone(), url.clone());
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _: () = redis::cmd("SET")
                        .arg(format!("w{t}:{i}"))
                        .arg(i)
                        .query(&mut c)
                        .unwrap();
                    let _: i64 = redis::cmd("INCR")
                        .arg(format!("w{t}:count"))
                        .query(&mut c)
                        .unwrap();
                    i += 1;
                }
                i
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        q::<String>(&mut c, &["BGREWRITEAOF"]),
        "Background append only file rewriting started"
    );
    wait_rewrite_done(&mut c, 1);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for (t, n) in counts.iter().enumerate() {
        assert_eq!(q::<u64>(&mut c, &["GET", &format!("w{t}:count")]), *n);
    }
    let before = dump(&mut c);
    // The old files are gone, the manifest names the new base and one incr file.
    assert_eq!(files_of(dir, 'b'), vec!["appendonly.aof.2.base.rdb"]);
    assert_eq!(files_of(dir, 'i'), vec!["appendonly.aof.2.incr.aof"]);
    assert!(files_of(dir, 'h').is_empty());
    let names: Vec<String> = std::fs::read_dir(aof_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    n.kill();
    let n = node_in(dir, AOF, &[]);
    let after = dump(&mut n.conn());
    assert_eq!(after.len(), before.len());
    assert!(after == before, "contents differ after rewrite + restart");
    eprintln!(
        "rewrite under load: {} writes per client",
        counts.iter().sum::<u64>()
    );
}

#[test]
fn automatic_rewrite_triggers_past_the_thresholds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = "appendonly = true\nauto-aof-rewrite-percentage = 100\nauto-aof-rewrite-min-size = \"64kb\"\n";
    let n = node_in(dir, cfg, &[]);
    let mut c = n.conn();
    assert_eq!(info_field(&mut c, "aof_rewrites"), "0");
    let value = "v".repeat(1000);
    // Below the minimum size: no rewrite.
    for i in 0..30 {
        let _: () = q(&mut c, &["SET", &format!("k{}", i % 10), &value]);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(info_field(&mut c, "aof_rewrites"), "0");
    // Past it (and past 100% growth over the base).
    for i in 0..100 {
        let _: () = q(&mut c, &["SET", &format!("k{}", i % 10), &value]);
    }
    wait_rewrite_done(&mut c, 1);
    // 130 writes of ~1 KB went in; a rewrite (possibly already while writing, depending on
    // timing) must have shrunk the file below that, and left exactly one, newer, base.
    let mut size = 0u64;
    let shrunk = eventually(WAIT, || {
        size = info_field(&mut c, "aof_current_size").parse().unwrap();
        size < 120 * 1024
    });
    assert!(shrunk, "aof_current_size stayed at {size}");
    let bases = files_of(dir, 'b');
    assert_eq!(bases.len(), 1, "{bases:?}");
    assert_ne!(bases[0], "appendonly.aof.1.base.rdb");
    let before = dump(&mut c);
    drop(n);
    let n = node_in(dir, cfg, &[]);
    assert_eq!(dump(&mut n.conn()), before);
}

#[test]
fn config_set_appendonly_turns_the_aof_on_and_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = node_in(dir, "", &[]);
    let mut c = n.conn();
    write_every_type(&mut c, "x");
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    let _: () = q(&mut c, &["SET", "after-enable", "1"]);
    wait_rewrite_done(&mut c, 1);
    let _: () = q(&mut c, &["SET", "after-rewrite", "1"]);
    assert_eq!(files_of(dir, 'b'), vec!["appendonly.aof.1.base.rdb"]);
    assert_eq!(files_of(dir, 'i'), vec!["appendonly.aof.1.incr.aof"]);
    let before = dump(&mut c);
    // Off: nothing more is appended.
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    let incr = last_incr(dir);
    let len = std::fs::metadata(&incr).unwrap().len();
    let _: () = q(&mut c, &["SET", "while-off", "1"]);
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), len);
    drop(n);
    let n = node_in(dir, AOF, &[]);
    assert_eq!(dump(&mut n.conn()), before);
}

#[test]
fn info_reports_the_aof_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node_in(tmp.path(), AOF, &[]);
    let mut c = n.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    for f in [
        "aof_enabled:1",
        "aof_rewrite_in_progress:0",
        "aof_rewrite_scheduled:0",
        "aof_last_rewrite_time_sec:-1",
        "aof_current_rewrite_time_sec:-1",
        "aof_last_bgrewrite_status:ok",
        "aof_rewrites:0",
        "aof_last_write_status:ok",
        "aof_last_cow_size:0",
        "module_fork_in_progress:0",
        "module_fork_last_cow_size:0",
        "aof_pending_rewrite:0",
        "aof_buffer_length:0",
        "aof_pending_bio_fsync:",
        "aof_delayed_fsync:0",
    ] {
        let info: String = q(&mut c, &["INFO", "persistence"]);
        assert!(info.contains(f), "{f} missing:\n{info}");
    }
    let base: u64 = info_field(&mut c, "aof_base_size").parse().unwrap();
    let cur: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
    assert!(base > 0 && cur > base, "{base} {cur}");
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c, 1);
    assert_eq!(info_field(&mut c, "aof_rewrites"), "1");
    assert_ne!(info_field(&mut c, "aof_last_rewrite_time_sec"), "-1");
}

#[test]
fn an_old_single_appendonly_aof_is_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("appendonly.aof"),
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$3\r\nyes\r\n",
    )
    .unwrap();
    let n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "old"]), "yes");
    assert!(!dir.join("appendonly.aof").exists());
    assert_eq!(files_of(dir, 'b'), vec!["appendonly.aof"]);
    assert_eq!(files_of(dir, 'i'), vec!["appendonly.aof.1.incr.aof"]);
}

#[test]
fn redis_server_loads_tandem_aof_and_redis_check_aof_accepts_it() {
    let check = require_tool("redis-check-aof");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = node_in(dir, AOF, &[]);
    let mut c = n.conn();
    write_every_type(&mut c, "base");
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c, 1);
    write_every_type(&mut c, "incr");
    let _: i64 = q(&mut c, &["DEL", "base:str"]);
    let before = dump(&mut c);
    drop(n);
    let out = Command::new(&check)
        .arg(aof_dir(dir).join("appendonly.aof.manifest"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("All AOF files and manifest are valid"),
        "{text}"
    );

    let rtmp = tempfile::tempdir().unwrap();
    copy_dir(&aof_dir(dir), &aof_dir(rtmp.path()));
    let r = redis_in(rtmp.path(), &["--appendonly", "yes"]);
    assert_eq!(dump(&mut r.conn()), before);
}

#[test]
fn tandem_loads_a_redis_server_aof() {
    let rtmp = tempfile::tempdir().unwrap();
    let r = redis_in(rtmp.path(), &["--appendonly", "yes"]);
    let mut c = r.conn();
    write_every_type(&mut c, "base");
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c, 1);
    write_every_type(&mut c, "incr");
    let before = dump(&mut c);
    drop(r);
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&aof_dir(rtmp.path()), &aof_dir(tmp.path()));
    let n = node_in(tmp.path(), AOF, &[]);
    assert_eq!(dump(&mut n.conn()), before);
    // Redis without an RDB preamble (commands in the base) loads too.
    let rtmp = tempfile::tempdir().unwrap();
    let r = redis_in(
        rtmp.path(),
        &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"],
    );
    let mut c = r.conn();
    write_every_type(&mut c, "p");
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c, 1);
    let before = dump(&mut c);
    drop(r);
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&aof_dir(rtmp.path()), &aof_dir(tmp.path()));
    assert!(files_of(tmp.path(), 'b')[0].ends_with(".base.aof"));
    let n = node_in(tmp.path(), AOF, &[]);
    assert_eq!(dump(&mut n.conn()), before);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn debug_loadaof_reloads_the_dataset_from_the_aof() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = node_in(dir, "", &[]);
    let mut c = n.conn();
    let _: () = q(&mut c, &["SET", "before", "1"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite_done(&mut c, 1);
    write_every_type(&mut c, "d");
    let _: () = q(&mut c, &["SET", "foo", "bar", "EX", "100"]);
    let _: () = q(&mut c, &["SET", "foo", "bar2", "KEEPTTL"]);
    let before = dump(&mut c);
    let incr = last_incr(dir);
    let len = std::fs::metadata(&incr).unwrap().len();
    assert_eq!(q::<String>(&mut c, &["DEBUG", "LOADAOF"]), "OK");
    assert_eq!(dump(&mut c), before);
    let ttl: i64 = q(&mut c, &["TTL", "foo"]);
    assert!(ttl > 90 && ttl <= 100, "{ttl}");
    // Reloading appends nothing.
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), len);
}

#[test]
fn an_old_style_aof_with_an_rdb_preamble_and_a_tail_loads() {
    let src = tempfile::tempdir().unwrap();
    let n = node_in(src.path(), "", &[]);
    let mut c = n.conn();
    let _: () = q(&mut c, &["SET", "from-rdb", "1"]);
    let _: i64 = q(&mut c, &["RPUSH", "list", "a", "b"]);
    let _: () = q(&mut c, &["SAVE"]);
    drop(n);
    let mut aof = std::fs::read(src.path().join("dump.rdb")).unwrap();
    aof.extend_from_slice(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
    aof.extend_from_slice(b"*3\r\n$5\r\nRPUSH\r\n$4\r\nlist\r\n$1\r\nc\r\n");
    aof.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$8\r\nfrom-aof\r\n$1\r\n2\r\n");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("appendonly.aof"), &aof).unwrap();
    let n = node_in(tmp.path(), AOF, &[]);
    let mut c = n.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "from-rdb"]), "1");
    assert_eq!(q::<String>(&mut c, &["GET", "from-aof"]), "2");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "list", "0", "-1"]),
        vec!["a", "b", "c"]
    );
}

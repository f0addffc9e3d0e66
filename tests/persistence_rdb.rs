//! RDB snapshots end to end, against the real binary: every type (compact and plain
//! encodings) and expiries across 16 databases survive a restart; Tandem's dump passes
//! redis-check-rdb and loads into redis-server 7.0, and redis-server's dump loads into Tandem,
//! with equal contents; corrupt files stop start-up with file and offset named and are left
//! untouched; BGSAVE is point-in-time and keeps serving; kill -9 mid-save keeps the old dump;
//! save points, SHUTDOWN, DEBUG RELOAD and INFO persistence behave as in Redis.

mod common;

use common::{eventually, free_port, require_tool, Proc};
use redis::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (db, key) -> (type, contents, has expiry).
type Dump = BTreeMap<(i64, Vec<u8>), (String, Vec<Vec<u8>>, bool)>;

fn q<T: redis::FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every key of every database with its full contents, in a comparable form.
fn dump(c: &mut Connection) -> Dump {
    let mut out = Dump::new();
    for db in 0..16i64 {
        let _: () = q(c, &["SELECT", &db.to_string()]);
        let keys: Vec<Vec<u8>> = q(c, &["KEYS", "*"]);
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
            let mut items: Vec<Vec<u8>> = match t.as_str() {
                "string" => vec![redis::cmd("GET").arg(&k).query(c).unwrap()],
                "list" => redis::cmd("LRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query(c)
                    .unwrap(),
                "set" => redis::cmd("SMEMBERS").arg(&k).query(c).unwrap(),
                "hash" => {
                    let m: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&k).query(c).unwrap();
                    m.into_iter()
                        .map(|(f, v)| [f, b"\0=".to_vec(), v].concat())
                        .collect()
                }
                "zset" => redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(c)
                    .unwrap(),
                other => panic!("unexpected type {other}"),
            };
            if t == "set" || t == "hash" {
                items.sort();
            }
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            out.insert((db, k), (t, items, pttl > 0));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    out
}

/// Writes every type, small and large (so compact and plain encodings), with expiries, over
/// all 16 databases.
fn fill(c: &mut Connection) {
    let mut p = redis::pipe();
    for db in 0..16 {
        p.cmd("SELECT").arg(db).ignore();
        p.cmd("SET").arg(format!("db:{db}")).arg(db).ignore();
    }
    p.cmd("SELECT").arg(0).ignore();
    // Strings: text, integers (8/16/32/64-bit), long, binary, empty.
    p.cmd("SET").arg("s:text").arg("hello world").ignore();
    for (i, v) in [
        "7",
        "-300",
        "70000",
        "-2147483648",
        "9007199254740993",
        "0123",
        "1e5",
    ]
    .iter()
    .enumerate()
    {
        p.cmd("SET").arg(format!("s:int{i}")).arg(*v).ignore();
    }
    p.cmd("SET").arg("s:long").arg("x".repeat(20_000)).ignore();
    p.cmd("SET").arg("s:bin").arg(&b"a\0b\xff\r\n"[..]).ignore();
    p.cmd("SET").arg("s:empty").arg("").ignore();
    p.cmd("SET")
        .arg("s:ttl")
        .arg("v")
        .arg("EX")
        .arg(100_000)
        .ignore();
    // Lists.
    p.cmd("RPUSH")
        .arg("l:small")
        .arg(&["a", "1", "-5", "", "70000", "4294967296"])
        .ignore();
    let big: Vec<String> = (0..2000).map(|i| format!("item-{i}")).collect();
    p.cmd("RPUSH").arg("l:big").arg(&big).ignore();
    p.cmd("RPUSH").arg("l:big").arg("y".repeat(10_000)).ignore();
    p.cmd("RPUSH").arg("l:ttl").arg("a").ignore();
    p.cmd("PEXPIRE").arg("l:ttl").arg(90_000_000).ignore();
    // Sets.
    p.cmd("SADD")
        .arg("set:int")
        .arg(&["1", "2", "-3", "100000", "-9999999999"])
        .ignore();
    p.cmd("SADD").arg("set:str").arg(&["a", "b", "c"]).ignore();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    p.cmd("SADD").arg("set:big").arg(&members).ignore();
    let nums: Vec<String> = (0..1000).map(|i| (i * 7).to_string()).collect();
    p.cmd("SADD").arg("set:bigint").arg(&nums).ignore();
    // Hashes.
    p.cmd("HSET")
        .arg("h:small")
        .arg(&["f", "v", "n", "12", "neg", "-4"])
        .ignore();
    for i in 0..300 {
        p.cmd("HSET")
            .arg("h:big")
            .arg(format!("f{i}"))
            .arg(i.to_string())
            .ignore();
    }
    p.cmd("HSET")
        .arg("h:longval")
        .arg("f")
        .arg("z".repeat(200))
        .ignore();
    p.cmd("HSET").arg("h:ttl").arg("f").arg("v").ignore();
    p.cmd("EXPIRE").arg("h:ttl").arg(80_000).ignore();
    // Sorted sets.
    p.cmd("ZADD")
        .arg("z:small")
        .arg(&[
            "1", "a", "2.5", "b", "-3", "c", "inf", "top", "-inf", "bottom", "0.1", "tenth",
        ])
        .ignore();
    for i in 0..500 {
        p.cmd("ZADD")
            .arg("z:big")
            .arg(i as f64 / 7.0)
            .arg(format!("m{i}"))
            .ignore();
    }
    p.cmd("ZADD")
        .arg("z:longmember")
        .arg(1)
        .arg("w".repeat(100))
        .ignore();
    p.cmd("ZADD").arg("z:ttl").arg(1).arg("a").ignore();
    p.cmd("EXPIRE").arg("z:ttl").arg(70_000).ignore();
    // More in other databases.
    p.cmd("SELECT").arg(5).ignore();
    p.cmd("RPUSH").arg("l:db5").arg(&["x", "y"]).ignore();
    p.cmd("HSET").arg("h:db5").arg("a").arg("b").ignore();
    p.cmd("SELECT").arg(15).ignore();
    p.cmd("ZADD").arg("z:db15").arg(3).arg("q").ignore();
    p.cmd("SET")
        .arg("s:db15ttl")
        .arg("v")
        .arg("PX")
        .arg(50_000_000)
        .ignore();
    p.cmd("SELECT").arg(0).ignore();
    let _: () = p.query(c).expect("fill");
}

fn info_field(c: &mut Connection, field: &str) -> String {
    let info: String = q(c, &["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .to_string()
}

fn wait_bgsave_done(c: &mut Connection) {
    assert!(
        eventually(Duration::from_secs(60), || info_field(
            c,
            "rdb_bgsave_in_progress"
        ) == "0"),
        "BGSAVE did not finish"
    );
}

/// Starts `tandem node` in `dir` expecting it to fail at start-up; returns its stderr.
fn node_start_fails(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "node",
            "--port",
            &free_port().to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "start-up should fail");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("node did not stop on a bad RDB");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

#[test]
fn every_type_survives_restart() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    fill(&mut c);
    let before = dump(&mut c);
    assert!(before.len() > 30);
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    let dir = node.take_dir();
    assert!(dir.path().join("dump.rdb").exists());
    let node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert_eq!(dump(&mut c), before);
    assert_eq!(
        info_field(&mut c, "rdb_last_load_keys_loaded"),
        before.len().to_string()
    );
    // Expiry times survive (not just their presence).
    let ttl: i64 = q(&mut c, &["TTL", "s:ttl"]);
    assert!((99_000..=100_000).contains(&ttl), "{ttl}");
}

#[test]
fn tandem_dump_passes_redis_check_rdb_and_loads_into_redis() {
    let check = require_tool("redis-check-rdb");
    let node = Proc::node(&[]);
    let mut c = node.conn();
    fill(&mut c);
    let want = dump(&mut c);
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    let file = node.path().join("dump.rdb");
    let out = Command::new(check)
        .arg(&file)
        .output()
        .expect("redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RDB looks OK"), "{text}");
    assert!(text.contains("Checksum OK"), "{text}");
    let rdir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, rdir.path().join("dump.rdb")).unwrap();
    let redis = Proc::redis_server_in(rdir, &[]);
    let mut r = redis.conn();
    assert_eq!(dump(&mut r), want);
    // Redis chose its compact encodings for the small values it loaded.
    assert_eq!(
        q::<String>(&mut r, &["OBJECT", "ENCODING", "set:int"]),
        "intset"
    );
    assert_eq!(
        q::<String>(&mut r, &["OBJECT", "ENCODING", "h:small"]),
        "listpack"
    );
    assert_eq!(
        q::<String>(&mut r, &["OBJECT", "ENCODING", "z:big"]),
        "skiplist"
    );
}

#[test]
fn redis_dump_loads_into_tandem() {
    let redis = Proc::redis_server(&["--enable-debug-command", "yes"]);
    let mut r = redis.conn();
    fill(&mut r);
    let _: String = q(&mut r, &["DEBUG", "POPULATE", "3000", "pop", "20"]);
    // Compressible long values: redis-server writes them LZF-compressed.
    let _: () = q(&mut r, &["SET", "s:lzf", &"abcdefgh".repeat(1000)]);
    let _: () = q(
        &mut r,
        &["RPUSH", "l:lzf", &"q".repeat(5000), &"r".repeat(5000)],
    );
    let want = dump(&mut r);
    assert_eq!(q::<String>(&mut r, &["SAVE"]), "OK");
    let ndir = tempfile::tempdir().unwrap();
    std::fs::copy(redis.path().join("dump.rdb"), ndir.path().join("dump.rdb")).unwrap();
    let node = Proc::node_in(ndir, &[]);
    let mut c = node.conn();
    assert_eq!(dump(&mut c), want);
}

#[test]
fn corrupt_rdb_stops_startup_and_is_left_untouched() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    fill(&mut c);
    let _: () = q(&mut c, &["SET", "marker", "payload-that-we-will-corrupt"]);
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    let dir = node.take_dir();
    let file = dir.path().join("dump.rdb");
    let good = std::fs::read(&file).unwrap();

    // Truncated.
    let cut = &good[..good.len() / 2];
    std::fs::write(&file, cut).unwrap();
    let err = node_start_fails(dir.path());
    assert!(err.contains("dump.rdb"), "{err}");
    assert!(err.contains("offset"), "{err}");
    assert!(err.contains("end of file"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), cut);

    // A flipped byte inside a value: only the checksum can tell.
    let mut bad = good.clone();
    let at = good
        .windows(7)
        .position(|w| w == b"payload")
        .expect("marker in file");
    bad[at] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let err = node_start_fails(dir.path());
    assert!(err.contains("dump.rdb"), "{err}");
    assert!(err.contains("checksum"), "{err}");
    assert!(err.contains(&format!("offset {}", good.len() - 8)), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), bad);

    // A length far beyond the file: caught without allocating it.
    let mut bad = b"REDIS0010".to_vec();
    bad.extend_from_slice(&[0x00, 0x01, b'k', 0x80, 0xff, 0xff, 0xff, 0xf0, b'a', b'b']);
    std::fs::write(&file, &bad).unwrap();
    let err = node_start_fails(dir.path());
    assert!(err.contains("dump.rdb"), "{err}");
    assert!(err.contains(&format!("offset {}", bad.len())), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), bad);

    // A stream key (a type Tandem lacks) is refused by name.
    let mut bad = b"REDIS0010".to_vec();
    bad.extend_from_slice(&[15, 0x03, b's', b't', b'r']);
    std::fs::write(&file, &bad).unwrap();
    let err = node_start_fails(dir.path());
    assert!(err.contains("'str' is a stream"), "{err}");

    // The good file still loads.
    std::fs::write(&file, &good).unwrap();
    let node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert_eq!(
        q::<String>(&mut c, &["GET", "marker"]),
        "payload-that-we-will-corrupt"
    );
}

#[test]
fn bgsave_is_point_in_time_and_keeps_serving() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..20_000 {
        p.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    // About 2 s of writing.
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "100"]);
    assert_eq!(
        q::<String>(&mut c, &["BGSAVE"]),
        "Background saving started"
    );
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    let e = q_err(&mut c, &["BGSAVE"]);
    assert_eq!(e, "ERR Background save already in progress");
    let e = q_err(&mut c, &["SAVE"]);
    assert_eq!(e, "ERR Background save already in progress");
    // Clients are served meanwhile, promptly.
    let mut worst = Duration::ZERO;
    for i in 0..200 {
        let t = Instant::now();
        let _: () = q(&mut c, &["SET", &format!("key:{i}"), "changed"]);
        let v: String = q(&mut c, &["GET", &format!("key:{i}")]);
        assert_eq!(v, "changed");
        worst = worst.max(t.elapsed());
    }
    let _: () = q(&mut c, &["SET", "after", "1"]);
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    wait_bgsave_done(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    // 201 changes happened after the snapshot.
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "201");
    let dir = node.take_dir();
    let node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 20_000);
    assert_eq!(q::<String>(&mut c, &["GET", "key:5"]), "5");
    assert!(!q::<bool>(&mut c, &["EXISTS", "after"]));
}

fn q_err(c: &mut Connection, args: &[&str]) -> String {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    match k.query::<redis::Value>(c) {
        Err(e) => {
            let code = e.code().unwrap_or("");
            let detail = e.detail().unwrap_or("");
            format!("{code} {detail}").trim().to_string()
        }
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
    }
}

#[test]
fn kill_during_save_keeps_the_old_dump() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut p = redis::pipe();
    for i in 0..5_000 {
        p.cmd("SET").arg(format!("k{i}")).arg("v1").ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    let v1 = std::fs::read(node.path().join("dump.rdb")).unwrap();
    let _: () = q(&mut c, &["SET", "k1", "v2"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "2000"]);
    assert_eq!(
        q::<String>(&mut c, &["BGSAVE"]),
        "Background saving started"
    );
    std::thread::sleep(Duration::from_millis(300));
    let temps: Vec<_> = std::fs::read_dir(node.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert_eq!(temps.len(), 1, "a temp file is being written");
    let dir = node.take_dir();
    assert_eq!(std::fs::read(dir.path().join("dump.rdb")).unwrap(), v1);
    let node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 5_000);
    assert_eq!(q::<String>(&mut c, &["GET", "k1"]), "v1");
}

#[test]
fn save_points_trigger_a_background_save() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let got: Vec<String> = q(&mut c, &["CONFIG", "GET", "save"]);
    assert_eq!(got, vec!["save".to_string(), String::new()]);
    let _: () = q(&mut c, &["CONFIG", "SET", "save", "1 1 300 10"]);
    let got: Vec<String> = q(&mut c, &["CONFIG", "GET", "save"]);
    assert_eq!(got[1], "1 1 300 10");
    let before: i64 = q(&mut c, &["LASTSAVE"]);
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let file = node.path().join("dump.rdb");
    assert!(
        eventually(Duration::from_secs(10), || file.exists()
            && info_field(&mut c, "rdb_changes_since_last_save") == "0"),
        "no save after the save point"
    );
    let after: i64 = q(&mut c, &["LASTSAVE"]);
    assert!(after > before, "{before} {after}");
    assert_eq!(info_field(&mut c, "rdb_saves"), "1");
    // "" disables them again.
    let _: () = q(&mut c, &["CONFIG", "SET", "save", ""]);
    let _: () = q(&mut c, &["SET", "b", "1"]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(info_field(&mut c, "rdb_saves"), "1");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "1");
    let e = q_err(&mut c, &["CONFIG", "SET", "save", "1 2 3"]);
    assert!(e.contains("Invalid save parameters"), "{e}");
}

#[test]
fn shutdown_saves_as_asked() {
    // With save points, SHUTDOWN saves.
    let mut node = Proc::node(&["--save", "900 1"]);
    let mut c = node.conn();
    let _: () = q(&mut c, &["SET", "kept", "1"]);
    let _ = redis::cmd("SHUTDOWN").query::<redis::Value>(&mut c);
    assert!(eventually(Duration::from_secs(10), || !node.alive()));
    let dir = node.take_dir();
    let mut node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "kept"]), "1");
    // Without save points, SHUTDOWN does not save; SHUTDOWN SAVE does.
    let _: () = q(&mut c, &["SET", "lost", "1"]);
    let _ = redis::cmd("SHUTDOWN").query::<redis::Value>(&mut c);
    assert!(eventually(Duration::from_secs(10), || !node.alive()));
    let dir = node.take_dir();
    let mut node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert!(!q::<bool>(&mut c, &["EXISTS", "lost"]));
    let _: () = q(&mut c, &["SET", "saved", "1"]);
    let e = q_err(&mut c, &["SHUTDOWN", "SAVE", "NOSAVE"]);
    assert_eq!(e, "ERR syntax error");
    let e = q_err(&mut c, &["SHUTDOWN", "ABORT"]);
    assert_eq!(e, "ERR No shutdown in progress.");
    let _ = redis::cmd("SHUTDOWN")
        .arg("SAVE")
        .query::<redis::Value>(&mut c);
    assert!(eventually(Duration::from_secs(10), || !node.alive()));
    let dir = node.take_dir();
    // SHUTDOWN NOSAVE with save points set: nothing saved.
    let mut node = Proc::node_in(dir, &["--save", "900 1"]);
    let mut c = node.conn();
    assert!(q::<bool>(&mut c, &["EXISTS", "saved"]));
    let _: () = q(&mut c, &["SET", "nosave", "1"]);
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query::<redis::Value>(&mut c);
    assert!(eventually(Duration::from_secs(10), || !node.alive()));
    let dir = node.take_dir();
    let node = Proc::node_in(dir, &[]);
    let mut c = node.conn();
    assert!(!q::<bool>(&mut c, &["EXISTS", "nosave"]));
}

#[test]
fn debug_reload_and_bgsave_forms() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    fill(&mut c);
    let before = dump(&mut c);
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD"]), "OK");
    assert_eq!(dump(&mut c), before);
    let _: () = q(&mut c, &["SET", "s:text", "changed"]);
    let _: () = q(&mut c, &["SET", "new", "1"]);
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]), "OK");
    assert_eq!(dump(&mut c), before);
    let _: () = q(&mut c, &["SET", "new", "1"]);
    assert_eq!(
        q::<String>(&mut c, &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"]),
        "OK"
    );
    assert!(q::<bool>(&mut c, &["EXISTS", "new"]));
    let e = q_err(&mut c, &["DEBUG", "RELOAD", "BOGUS"]);
    assert_eq!(
        e,
        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    );
    // BGSAVE forms.
    assert_eq!(q_err(&mut c, &["BGSAVE", "NOW"]), "ERR syntax error");
    let r: Vec<String> = redis::pipe()
        .cmd("MULTI")
        .ignore()
        .cmd("BGSAVE")
        .ignore()
        .cmd("EXEC")
        .query::<Vec<Vec<String>>>(&mut c)
        .unwrap()
        .remove(0);
    assert_eq!(r, vec!["Background saving scheduled".to_string()]);
    assert!(eventually(Duration::from_secs(10), || info_field(
        &mut c,
        "rdb_saves"
    ) == "2"));
    wait_bgsave_done(&mut c);
    assert_eq!(
        q::<String>(&mut c, &["BGSAVE", "SCHEDULE"]),
        "Background saving started"
    );
    wait_bgsave_done(&mut c);
}

#[test]
fn info_persistence_matches_redis_fields() {
    let names = |c: &mut Connection| -> Vec<String> {
        let info: String = q(c, &["INFO", "persistence"]);
        info.lines()
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
            .collect()
    };
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    let mut c = node.conn();
    let mut r = redis.conn();
    assert_eq!(names(&mut c), names(&mut r));
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    for i in 0..5 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "5");
    assert_eq!(info_field(&mut c, "rdb_saves"), "0");
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut c, "rdb_saves"), "1");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let lastsave: i64 = q(&mut c, &["LASTSAVE"]);
    assert_eq!(
        info_field(&mut c, "rdb_last_save_time"),
        lastsave.to_string()
    );
}

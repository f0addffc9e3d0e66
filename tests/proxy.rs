//! `tandem proxy` with real processes: redis-server (or `tandem node`) masters and replicas,
//! Redis Sentinel, and clients (redis-rs, redis-cli, redis-py, redis-benchmark) talking to
//! the proxy. Where a request went is checked on each node with INFO commandstats.
//!
//! Every scenario takes the backend kind as a parameter: redis-server with Redis Sentinel,
//! and `tandem node` with `tandem sentinel`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Redis,
    Tandem,
}

fn master(kind: Backend) -> Proc {
    match kind {
        Backend::Redis => Proc::redis_server(&[]),
        Backend::Tandem => Proc::node(&[]),
    }
}

fn replica(kind: Backend, master_port: u16) -> Proc {
    let p = master_port.to_string();
    match kind {
        Backend::Redis => Proc::redis_server(&["--replicaof", "127.0.0.1", &p]),
        Backend::Tandem => Proc::node(&["--replicaof", "127.0.0.1", &p]),
    }
}

/// Calls of `cmd` on the node at `port`, from INFO commandstats.
fn calls(port: u16, cmd: &str) -> u64 {
    let mut r = Raw::connect(port);
    let text = r.cmd(&["INFO", "commandstats"]).text();
    let key = format!("cmdstat_{cmd}:calls=");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn info_field(port: u16, section: &str, field: &str) -> String {
    let mut r = Raw::connect(port);
    let text = r.cmd(&["INFO", section]).text();
    let key = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Waits until the replica at `port` is attached and synced.
fn wait_synced(port: u16) {
    assert!(
        eventually(Duration::from_secs(20), || info_field(
            port,
            "replication",
            "master_link_status"
        ) == "up"),
        "replica on {port} never synced"
    );
}

/// A config file in its own temp dir (kept alive by the returned guard).
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("proxy.toml");
    std::fs::write(&p, text).expect("write config");
    (d, p)
}

/// Polls the proxy until reads land on a replica (the first lag polls are in).
fn wait_replicas_serving(proxy: &Proc, replicas: &[u16]) {
    let before: u64 = replicas.iter().map(|p| calls(*p, "exists")).sum();
    let ok = eventually(Duration::from_secs(10), || {
        let mut c = proxy.conn();
        let _: i64 = redis::cmd("EXISTS").arg("probe").query(&mut c).unwrap_or(0);
        replicas.iter().map(|p| calls(*p, "exists")).sum::<u64>() > before
    });
    assert!(
        ok,
        "reads never reached a replica; proxy log:\n{}",
        proxy.log_text()
    );
}

fn metrics_text(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn sighup(p: &Proc) {
    let pid = p.pid().expect("pid");
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

// ------------------------------------------------------------------------------------------

fn reads_on_replicas_writes_on_master(kind: Backend) {
    let m = master(kind);
    let r1 = replica(kind, m.port);
    let r2 = replica(kind, m.port);
    wait_synced(r1.port);
    wait_synced(r2.port);
    let proxy = Proc::proxy(&[
        "--master",
        &m.addr(),
        "--replica",
        &r1.addr(),
        "--replica",
        &r2.addr(),
    ]);
    wait_replicas_serving(&proxy, &[r1.port, r2.port]);
    let mut w = proxy.conn();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut w)
            .unwrap();
    }
    // Another client (no read-your-writes constraint) reads once the replicas have it.
    assert!(eventually(Duration::from_secs(5), || {
        let mut c = r1.conn();
        let a: Option<i64> = redis::cmd("GET").arg("k49").query(&mut c).unwrap();
        let mut c = r2.conn();
        let b: Option<i64> = redis::cmd("GET").arg("k49").query(&mut c).unwrap();
        a == Some(49) && b == Some(49)
    }));
    let master_gets = calls(m.port, "get");
    let replica_gets = calls(r1.port, "get") + calls(r2.port, "get");
    let mut rd = proxy.conn();
    for i in 0..50 {
        let v: i64 = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut rd)
            .unwrap();
        assert_eq!(v, i);
    }
    assert_eq!(calls(m.port, "set"), 50, "writes go to the master");
    assert_eq!(
        calls(m.port, "get"),
        master_gets,
        "no read went to the master"
    );
    let served = calls(r1.port, "get") + calls(r2.port, "get") - replica_gets;
    assert_eq!(served, 50, "every read went to a replica");
    assert!(
        calls(r1.port, "get") > 0 && calls(r2.port, "get") > 0,
        "both replicas serve reads"
    );

    // RESP3 through the proxy: HGETALL is a map.
    let mut raw = Raw::connect(proxy.port);
    assert!(matches!(raw.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(raw.cmd(&["HSET", "h", "f", "v"]), Resp::Int(1));
    assert_eq!(
        raw.cmd(&["HGETALL", "h"]),
        Resp::Map(vec![(Resp::bulk("f"), Resp::bulk("v"))])
    );
    // Pipelined requests come back in order, whichever node answers.
    let mut pipe = Vec::new();
    for i in 0..20 {
        pipe.extend(encode_cmd(&["SET", &format!("p{i}"), &i.to_string()]));
        pipe.extend(encode_cmd(&["GET", &format!("p{i}")]));
        pipe.extend(encode_cmd(&["GET", &format!("k{i}")]));
    }
    let mut raw = Raw::connect(proxy.port);
    raw.send(&pipe);
    for i in 0..20 {
        assert_eq!(raw.read(), Resp::Simple("OK".into()));
        assert_eq!(
            raw.read(),
            Resp::bulk(&i.to_string()),
            "read-your-writes in a pipeline"
        );
        assert_eq!(raw.read(), Resp::bulk(&i.to_string()));
    }
}

#[test]
fn reads_on_replicas_writes_on_master_redis() {
    reads_on_replicas_writes_on_master(Backend::Redis);
}

#[test]
fn reads_on_replicas_writes_on_master_tandem() {
    reads_on_replicas_writes_on_master(Backend::Tandem);
}

fn lagging_replica_stops_getting_reads(kind: Backend) {
    let m = master(kind);
    let fast = replica(kind, m.port);
    let relay = Relay::start(m.port);
    let slow = replica(kind, relay.port);
    wait_synced(fast.port);
    wait_synced(slow.port);
    let proxy = Proc::proxy(&[
        "--master",
        &m.addr(),
        "--replica",
        &fast.addr(),
        "--replica",
        &slow.addr(),
        "--max-lag-ms",
        "300",
    ]);
    wait_replicas_serving(&proxy, &[fast.port, slow.port]);
    let mut direct = m.conn();
    let mut rd = proxy.conn();
    let read_some = |rd: &mut redis::Connection| {
        for i in 0..40 {
            let _: Option<String> = redis::cmd("GET").arg(format!("x{i}")).query(rd).unwrap();
        }
    };
    // Both replicas fresh: both get reads.
    assert!(eventually(Duration::from_secs(5), || {
        let before = calls(slow.port, "get");
        read_some(&mut rd);
        calls(slow.port, "get") > before
    }));
    // Hold the slow replica's link while writes continue: its lag grows past 300 ms.
    relay.hold_back(true);
    let writer_stop = Arc::new(AtomicBool::new(false));
    let ws = writer_stop.clone();
    let mport = m.port;
    let writer = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{mport}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let mut i = 0u64;
        while !ws.load(Ordering::SeqCst) {
            let _: () = redis::cmd("SET").arg("tick").arg(i).query(&mut c).unwrap();
            i += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    std::thread::sleep(Duration::from_millis(800));
    let before_slow = calls(slow.port, "get");
    let before_fast = calls(fast.port, "get");
    for _ in 0..5 {
        read_some(&mut rd);
    }
    assert_eq!(
        calls(slow.port, "get"),
        before_slow,
        "a replica over max-lag-ms must not get reads"
    );
    assert_eq!(
        calls(fast.port, "get") - before_fast,
        200,
        "the fresh replica serves them all"
    );
    // Released, it catches up and gets reads again.
    relay.hold_back(false);
    assert!(
        eventually(Duration::from_secs(10), || {
            let before = calls(slow.port, "get");
            read_some(&mut rd);
            calls(slow.port, "get") > before
        }),
        "the caught-up replica never got reads again"
    );
    writer_stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let _: () = redis::cmd("SET")
        .arg("done")
        .arg(1)
        .query(&mut direct)
        .unwrap();
}

#[test]
fn lagging_replica_stops_getting_reads_redis() {
    lagging_replica_stops_getting_reads(Backend::Redis);
}

#[test]
fn lagging_replica_stops_getting_reads_tandem() {
    lagging_replica_stops_getting_reads(Backend::Tandem);
}

fn read_your_writes_under_load(kind: Backend) {
    let m = master(kind);
    let relay1 = Relay::start(m.port);
    let relay2 = Relay::start(m.port);
    let r1 = replica(kind, relay1.port);
    let r2 = replica(kind, relay2.port);
    wait_synced(r1.port);
    wait_synced(r2.port);
    // Slow replication links: every chunk arrives 40 ms late. The lag limit is generous so
    // the replicas stay "fit": only read-your-writes protects these clients.
    relay1.delay_back(40);
    relay2.delay_back(40);
    let proxy = Proc::proxy(&[
        "--master",
        &m.addr(),
        "--replica",
        &r1.addr(),
        "--replica",
        &r2.addr(),
        "--max-lag-ms",
        "60000",
    ]);
    wait_replicas_serving(&proxy, &[r1.port, r2.port]);
    let replica_gets_before = calls(r1.port, "get") + calls(r2.port, "get");
    let url = proxy.url();
    let stale = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (url, stale, reads) = (url.clone(), stale.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let key = |i: u64| format!("ryw:{t}:{}", i % 50);
                let mut last = vec![None::<u64>; 50];
                let deadline = Instant::now() + Duration::from_secs(4);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    // A burst of writes, then reads of everything this client wrote.
                    for _ in 0..5 {
                        let _: () = redis::cmd("SET").arg(key(i)).arg(i).query(&mut c).unwrap();
                        last[(i % 50) as usize] = Some(i);
                        i += 1;
                    }
                    let until = Instant::now() + Duration::from_millis(600);
                    let mut j = 0u64;
                    while Instant::now() < until {
                        let k = (j * 7 + t) % 50;
                        j += 1;
                        let got: Option<u64> = redis::cmd("GET").arg(key(k)).query(&mut c).unwrap();
                        reads.fetch_add(1, Ordering::Relaxed);
                        if got != last[k as usize] {
                            stale.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "stale read of {}: got {got:?}, wrote {:?}",
                                key(k),
                                last[k as usize]
                            );
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total = reads.load(Ordering::Relaxed);
    let on_replicas = calls(r1.port, "get") + calls(r2.port, "get") - replica_gets_before;
    eprintln!(
        "read-your-writes: {total} reads, {on_replicas} served by replicas, {} stale",
        stale.load(Ordering::Relaxed)
    );
    assert_eq!(
        stale.load(Ordering::Relaxed),
        0,
        "a client read data older than its own write"
    );
    assert!(
        on_replicas > total / 10,
        "replicas served too few reads ({on_replicas} of {total}) for the test to mean anything"
    );
}

#[test]
fn read_your_writes_under_load_redis() {
    read_your_writes_under_load(Backend::Redis);
}

#[test]
fn read_your_writes_under_load_tandem() {
    read_your_writes_under_load(Backend::Tandem);
}

fn sentinel_conf() -> [&'static str; 3] {
    [
        "sentinel down-after-milliseconds mymaster 1000",
        "sentinel failover-timeout mymaster 4000",
        "sentinel parallel-syncs mymaster 2",
    ]
}

/// A sentinel of `kind` monitoring `mymaster` at `master` (quorum 2), with its state dir.
fn sentinel(kind: Backend, master: u16) -> (Proc, Option<tempfile::TempDir>) {
    match kind {
        Backend::Redis => (
            Proc::redis_sentinel("mymaster", master, 2, &sentinel_conf()),
            None,
        ),
        Backend::Tandem => {
            let state = tempfile::tempdir().expect("tempdir");
            let m = master.to_string();
            let p = Proc::sentinel(
                free_port(),
                state.path(),
                &[
                    "--monitor",
                    "mymaster",
                    "127.0.0.1",
                    &m,
                    "2",
                    "--down-after-ms",
                    "1000",
                    "--failover-timeout-ms",
                    "4000",
                ],
            );
            (p, Some(state))
        }
    }
}

fn sentinel_master(s: &Proc) -> Option<u16> {
    let mut r = Raw::connect(s.port);
    match r.cmd(&["SENTINEL", "get-master-addr-by-name", "mymaster"]) {
        Resp::Array(v) if v.len() == 2 => v[1].text().parse().ok(),
        _ => None,
    }
}

fn failover_followed_under_load(kind: Backend, concern: &str) {
    let mut m = master(kind);
    let r1 = replica(kind, m.port);
    let r2 = replica(kind, m.port);
    wait_synced(r1.port);
    wait_synced(r2.port);
    let (sentinels, _state): (Vec<Proc>, Vec<_>) = (0..3).map(|_| sentinel(kind, m.port)).unzip();
    let list = sentinels
        .iter()
        .map(|s| s.addr())
        .collect::<Vec<_>>()
        .join(",");
    let mport = free_port().to_string();
    let metrics_addr = format!("127.0.0.1:{mport}");
    let proxy = Proc::proxy(&[
        "--sentinels",
        &list,
        "--master-name",
        "mymaster",
        "--metrics",
        &metrics_addr,
        "--write-concern",
        concern,
    ]);
    // Sentinels see the replicas; the proxy reaches the master.
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut c = proxy.conn();
            redis::cmd("SET")
                .arg("ready")
                .arg(1)
                .query::<()>(&mut c)
                .is_ok()
        }),
        "proxy never reached the master:\n{}",
        proxy.log_text()
    );
    let old_port = m.port;
    let url = proxy.url();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let writer = std::thread::spawn(move || {
        // One connection for the whole test: the proxy must never make it reconnect.
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut acked = Vec::new();
        let mut errors = Vec::new();
        let mut i = 0u64;
        while !s2.load(Ordering::SeqCst) {
            match redis::cmd("SET")
                .arg(format!("w{i}"))
                .arg(i)
                .query::<()>(&mut c)
            {
                Ok(()) => acked.push(i),
                Err(e) => {
                    assert!(
                        !e.is_io_error() && !e.is_connection_dropped(),
                        "the client connection broke: {e}"
                    );
                    errors.push(e.to_string());
                }
            }
            i += 1;
        }
        (acked, errors, i)
    });
    std::thread::sleep(Duration::from_millis(1500));
    m.kill();
    let killed = Instant::now();
    // Wait for the sentinels to promote a replica, then for writes to flow again.
    let new_port = (0..600)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            sentinel_master(&sentinels[0]).filter(|p| *p != old_port)
        })
        .expect("sentinels never promoted a replica");
    let promoted_after = killed.elapsed();
    // A restarted old master (empty, role:master) must never get writes.
    let sets_before = calls(new_port, "set");
    assert!(eventually(Duration::from_secs(15), || calls(
        new_port, "set"
    ) > sets_before + 50));
    let restarted = Proc::redis_server_on(old_port, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let (acked, errors, sent) = writer.join().unwrap();
    assert_eq!(
        calls(restarted.port, "set"),
        0,
        "the old master got writes after it came back"
    );
    // Every acknowledged write must be on the new master.
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{new_port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut lost = Vec::new();
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("w{i}")).collect();
        let vals: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut c).unwrap();
        for (i, v) in chunk.iter().zip(vals) {
            if v != Some(*i) {
                lost.push(*i);
            }
        }
    }
    eprintln!(
        "failover ({concern}): promoted after {promoted_after:?}; {sent} writes sent, {} acknowledged, {} errors, {} acknowledged writes lost {:?}; first errors: {:?}",
        acked.len(),
        errors.len(),
        lost.len(),
        &lost[..lost.len().min(10)],
        &errors[..errors.len().min(3)]
    );
    let metrics = metrics_text(mport.parse().unwrap());
    assert!(
        metrics.contains("tandem_proxy_failovers_total 1"),
        "{metrics}"
    );
    if concern == "replicated" {
        assert!(
            lost.is_empty(),
            "write concern replicated lost acknowledged writes"
        );
    } else {
        assert!(
            lost.len() <= 5,
            "too many acknowledged writes lost: {}",
            lost.len()
        );
    }
    // Errors are the proxy's own (fate unknown, or no master in time), never a broken link.
    assert!(errors.iter().all(|e| e.contains("proxy:")), "{errors:?}");
}

#[test]
fn failover_followed_under_load_redis() {
    failover_followed_under_load(Backend::Redis, "master");
}

#[test]
fn failover_replicated_write_concern_loses_nothing_redis() {
    failover_followed_under_load(Backend::Redis, "replicated");
}

#[test]
fn failover_followed_under_load_tandem() {
    failover_followed_under_load(Backend::Tandem, "master");
}

fn sighup_switches_read_policy(kind: Backend) {
    let m = master(kind);
    let r = replica(kind, m.port);
    wait_synced(r.port);
    let base = format!("master = \"{}\"\nreplicas = [\"{}\"]\n", m.addr(), r.addr());
    let (_d, path) = config_file(&format!("{base}read-policy = \"lag-aware\"\n"));
    let proxy = Proc::proxy(&["--config", path.to_str().unwrap()]);
    wait_replicas_serving(&proxy, &[r.port]);
    let mut c = proxy.conn();
    let reads = |c: &mut redis::Connection| {
        for _ in 0..20 {
            let _: Option<String> = redis::cmd("GET").arg("x").query(c).unwrap();
        }
    };
    let before = calls(r.port, "get");
    reads(&mut c);
    assert_eq!(calls(r.port, "get") - before, 20);
    std::fs::write(&path, format!("{base}read-policy = \"master\"\n")).unwrap();
    sighup(&proxy);
    assert!(
        eventually(Duration::from_secs(5), || {
            let (rb, mb) = (calls(r.port, "get"), calls(m.port, "get"));
            reads(&mut c);
            calls(r.port, "get") == rb && calls(m.port, "get") == mb + 20
        }),
        "read policy did not switch to master; log:\n{}",
        proxy.log_text()
    );
    // A bad file is refused and the policy in force stays.
    std::fs::write(&path, "read-policy = \"sideways\"\n").unwrap();
    sighup(&proxy);
    assert!(eventually(Duration::from_secs(5), || proxy
        .log_text()
        .contains("config reload failed")));
    let (rb, mb) = (calls(r.port, "get"), calls(m.port, "get"));
    reads(&mut c);
    assert_eq!((calls(r.port, "get"), calls(m.port, "get")), (rb, mb + 20));
    // The same client connection lived through both reloads.
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn sighup_switches_read_policy_redis() {
    sighup_switches_read_policy(Backend::Redis);
}

#[test]
fn sighup_switches_read_policy_tandem() {
    sighup_switches_read_policy(Backend::Tandem);
}

#[test]
fn metrics_expose_the_series() {
    let m = master(Backend::Redis);
    let r = replica(Backend::Redis, m.port);
    wait_synced(r.port);
    let mport = free_port();
    let maddr = format!("127.0.0.1:{mport}");
    let proxy = Proc::proxy(&[
        "--master",
        &m.addr(),
        "--replica",
        &r.addr(),
        "--metrics",
        &maddr,
    ]);
    wait_replicas_serving(&proxy, &[r.port]);
    let mut c = proxy.conn();
    let _: () = redis::cmd("SET").arg("a").arg(1).query(&mut c).unwrap();
    let _: i64 = redis::cmd("GET").arg("a").query(&mut c).unwrap();
    let _ = redis::cmd("CONFIG")
        .arg("SET")
        .arg("x")
        .arg("y")
        .query::<()>(&mut c);
    // Workers publish their counts once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let text = metrics_text(mport);
    for series in [
        "tandem_proxy_commands_total{command=\"set\",route=\"master\"} 1",
        "tandem_proxy_commands_total{command=\"get\",route=\"ryw_fallback\"} 1",
        "tandem_proxy_commands_total{command=\"exists\",route=\"replica\"}",
        "tandem_proxy_command_duration_seconds_bucket{route=\"master\"",
        "tandem_proxy_backend_up{backend=\"",
        "tandem_proxy_backend_lag_ms{backend=\"",
        "tandem_proxy_backend_lag_bytes{backend=\"",
        "tandem_proxy_backend_inflight{backend=\"",
        "tandem_proxy_read_your_writes_fallbacks_total 1",
        "tandem_proxy_failovers_total 0",
        "tandem_proxy_queued_writes 0",
        "tandem_proxy_client_connections ",
        "tandem_proxy_errors_total{kind=\"admin_refused\"} 1",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
}

/// `redis-cli ARGS...` through the proxy.
fn redis_cli(port: u16, args: &[&str]) -> String {
    run_redis_cli(port, args, "")
}

/// Runs redis-cli with `script` on its standard input: the commands go over one connection.
fn redis_cli_stdin(port: u16, script: &str) -> String {
    run_redis_cli(port, &[], script)
}

/// redis-cli on `port` with `args` and `stdin` as its input; its trimmed output, once it
/// exited successfully.
fn run_redis_cli(port: u16, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(require_tool("redis-cli"))
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("redis-cli stdin");
    let out = child.wait_with_output().expect("redis-cli");
    assert!(
        out.status.success(),
        "redis-cli {args:?} <<< {stdin:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn real_clients_work_through_the_proxy() {
    let m = master(Backend::Redis);
    let r = replica(Backend::Redis, m.port);
    wait_synced(r.port);
    let proxy = Proc::proxy(&["--master", &m.addr(), "--replica", &r.addr()]);
    // redis-cli: arguments, RESP3, admin refusal. A write then a read on one connection (read
    // your writes; a read on a new connection may go to a replica that has not the write yet).
    assert_eq!(redis_cli(proxy.port, &["SET", "cli", "v"]), "OK");
    assert_eq!(
        redis_cli_stdin(proxy.port, "SET cli2 w\nGET cli2\n"),
        "OK\nw"
    );
    assert!(eventually(Duration::from_secs(5), || {
        redis_cli(proxy.port, &["GET", "cli"]) == "v"
    }));
    assert_eq!(redis_cli(proxy.port, &["-3", "HSET", "h3", "f", "v"]), "1");
    assert!(eventually(Duration::from_secs(5), || {
        redis_cli(proxy.port, &["-3", "HGETALL", "h3"]).contains('f')
    }));
    assert!(redis_cli(proxy.port, &["SHUTDOWN"]).contains("administrative command"));
    // redis-benchmark, without and with pipelining.
    for p in ["1", "16"] {
        let out = Command::new(require_tool("redis-benchmark"))
            .args([
                "-p",
                &proxy.port.to_string(),
                "-c",
                "10",
                "-n",
                "5000",
                "-t",
                "set,get",
                "-P",
                p,
                "-q",
            ])
            .output()
            .expect("redis-benchmark");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("SET") && text.contains("GET"),
            "redis-benchmark -P {p}: {text}"
        );
    }
    // redis-py: the project's smoke script (RESP2 and RESP3, pipelines, transactions,
    // pub/sub, blocking pops) through the proxy.
    let python = require_tool("python3");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/smoke.py");
    let out = Command::new(python)
        .arg(script)
        .arg(proxy.port.to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "redis-py through the proxy failed:\n{}\n{}\nproxy log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        proxy.log_text()
    );
}

#[test]
fn transactions_blocking_select_and_auth() {
    let m = master(Backend::Redis);
    let proxy = Proc::proxy(&["--master", &m.addr(), "--password", "pw"]);
    let mut a = Raw::connect(proxy.port);
    assert_eq!(
        a.cmd(&["GET", "k"]).err_text(),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        a.cmd(&["AUTH", "bad"]).err_text(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(a.cmd(&["AUTH", "pw"]), Resp::Simple("OK".into()));
    // MULTI/EXEC on one pinned connection.
    assert_eq!(a.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(a.cmd(&["SET", "t", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(a.cmd(&["INCR", "t"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        a.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("OK".into()), Resp::Int(2)])
    );
    assert_eq!(a.cmd(&["EXEC"]).err_text(), "ERR EXEC without MULTI");
    // An admin command inside MULTI aborts the transaction.
    assert_eq!(a.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert!(a
        .cmd(&["CONFIG", "SET", "x", "y"])
        .err_text()
        .contains("administrative"));
    assert_eq!(
        a.cmd(&["EXEC"]).err_text(),
        "EXECABORT Transaction discarded because of previous errors."
    );
    // WATCH: a conflicting write from another client makes EXEC return nil.
    let mut b = Raw::connect(proxy.port);
    assert_eq!(b.cmd(&["AUTH", "default", "pw"]), Resp::Simple("OK".into()));
    assert_eq!(a.cmd(&["WATCH", "t"]), Resp::Simple("OK".into()));
    assert_eq!(b.cmd(&["SET", "t", "9"]), Resp::Simple("OK".into()));
    assert_eq!(a.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(a.cmd(&["INCR", "t"]), Resp::Simple("QUEUED".into()));
    assert_eq!(a.cmd(&["EXEC"]), Resp::NullArray);
    // BLPOP waits on a dedicated connection while other clients keep working.
    a.send_cmd(&["BLPOP", "q", "5"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.cmd(&["GET", "t"]), Resp::bulk("9"));
    assert_eq!(b.cmd(&["RPUSH", "q", "x"]), Resp::Int(1));
    assert_eq!(a.read(), Resp::bulks(&["q", "x"]));
    // SELECT: per-database routing; bad indexes are refused by the master.
    assert_eq!(a.cmd(&["SELECT", "3"]), Resp::Simple("OK".into()));
    assert_eq!(a.cmd(&["SET", "db3", "yes"]), Resp::Simple("OK".into()));
    assert_eq!(b.cmd(&["GET", "db3"]), Resp::NullBulk);
    assert_eq!(a.cmd(&["GET", "db3"]), Resp::bulk("yes"));
    assert_eq!(
        a.cmd(&["SELECT", "999"]).err_text(),
        "ERR DB index is out of range"
    );
    assert_eq!(a.cmd(&["GET", "db3"]), Resp::bulk("yes"));
    // Admin commands are refused with a clear error.
    for cmd in [
        &["REPLICAOF", "NO", "ONE"][..],
        &["DEBUG", "SLEEP", "0"],
        &["MONITOR"],
    ] {
        assert!(a
            .cmd(cmd)
            .err_text()
            .contains("not allowed through the proxy"));
    }
    // WAIT is answered from replication offsets (no replicas here).
    assert_eq!(a.cmd(&["WAIT", "0", "100"]), Resp::Int(0));
    assert_eq!(a.cmd(&["QUIT"]), Resp::Simple("OK".into()));
    assert!(a.closed_within(Duration::from_secs(2)));
}

#[test]
fn malformed_resp_closes_only_that_client() {
    let m = master(Backend::Redis);
    let proxy = Proc::proxy(&["--master", &m.addr()]);
    let mut good = Raw::connect(proxy.port);
    assert_eq!(good.cmd(&["SET", "a", "1"]), Resp::Simple("OK".into()));
    let mut bad = Raw::connect(proxy.port);
    bad.send(b"*1\r\n$x\r\n");
    assert!(bad.read().err_text().starts_with("ERR Protocol error"));
    assert!(bad.closed_within(Duration::from_secs(2)));
    let mut bad2 = Raw::connect(proxy.port);
    bad2.send(b"*2\r\n$3\r\nGET\r\n:5\r\n");
    assert!(bad2.read().err_text().starts_with("ERR Protocol error"));
    assert!(bad2.closed_within(Duration::from_secs(2)));
    assert_eq!(good.cmd(&["GET", "a"]), Resp::bulk("1"));
    assert_alive(proxy.port);
}

#[test]
fn backend_death_mid_pipeline_fails_only_its_requests() {
    let mut m = Proc::redis_server(&["--enable-debug-command", "yes"]);
    let r = replica(Backend::Redis, m.port);
    wait_synced(r.port);
    let (_d, path) = config_file(&format!(
        "master = \"{}\"\nreplicas = [\"{}\"]\nfailover-queue-timeout-ms = 300\n",
        m.addr(),
        r.addr()
    ));
    let proxy = Proc::proxy(&["--config", path.to_str().unwrap()]);
    let mut c = Raw::connect(proxy.port);
    assert_eq!(c.cmd(&["SET", "a", "1"]), Resp::Simple("OK".into()));
    assert!(eventually(Duration::from_secs(5), || {
        let mut x = r.conn();
        redis::cmd("GET")
            .arg("a")
            .query::<Option<String>>(&mut x)
            .unwrap()
            .is_some()
    }));
    wait_replicas_serving(&proxy, &[r.port]);
    // The master is stuck in DEBUG SLEEP; a pipeline mixes replica reads and master writes.
    let mut direct = Raw::connect(m.port);
    direct.send_cmd(&["DEBUG", "SLEEP", "3"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut reader = Raw::connect(proxy.port);
    let mut pipe = encode_cmd(&["GET", "a"]);
    pipe.extend(encode_cmd(&["SET", "b", "2"]));
    reader.send(&pipe);
    assert_eq!(
        reader.read(),
        Resp::bulk("1"),
        "the replica read is answered"
    );
    std::thread::sleep(Duration::from_millis(200));
    m.kill();
    let e = reader.read();
    assert!(
        e.err_text().contains("lost the connection to backend")
            && e.err_text().contains("may or may not have been applied"),
        "{e:?}"
    );
    // Only those requests failed: reads still work, the client and the proxy are alive.
    let mut other = Raw::connect(proxy.port);
    assert_eq!(other.cmd(&["GET", "a"]), Resp::bulk("1"));
    assert_eq!(reader.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // No master: a clear error after the (short) failover queue timeout.
    let e = reader.cmd(&["SET", "c", "3"]);
    assert!(
        e.err_text().starts_with("ERR proxy: no master available"),
        "{e:?}"
    );
}

#[test]
fn no_master_known_is_a_clear_error() {
    let dead = free_port();
    let sentinel_port = free_port();
    let (_d, path) = config_file(&format!(
        "sentinels = [\"127.0.0.1:{sentinel_port}\"]\nmaster-name = \"nope\"\nfailover-queue-timeout-ms = 200\n"
    ));
    let _ = dead;
    let proxy = Proc::proxy(&["--config", path.to_str().unwrap()]);
    let mut c = Raw::connect(proxy.port);
    let e = c.cmd(&["SET", "a", "1"]);
    assert!(
        e.err_text().starts_with("ERR proxy: no master available"),
        "{e:?}"
    );
    let e = c.cmd(&["GET", "a"]);
    assert!(
        e.err_text().starts_with("ERR proxy: no master available"),
        "{e:?}"
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn slow_subscriber_is_disconnected_and_memory_stays_bounded() {
    let m = master(Backend::Redis);
    let (_d, path) = config_file(&format!(
        "master = \"{}\"\nclient-output-buffer-limit = \"1mb\"\n",
        m.addr()
    ));
    let proxy = Proc::proxy(&["--config", path.to_str().unwrap()]);
    let mut sub = Raw::connect(proxy.port);
    sub.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "ch"]),
        Resp::bulks(&["subscribe", "ch"]).with_int_last(1)
    );
    // A well-behaved subscriber on the same channel keeps up.
    let mut fast = Raw::connect(proxy.port);
    assert!(matches!(fast.cmd(&["SUBSCRIBE", "ch"]), Resp::Array(_)));
    let mut publisher = Raw::connect(proxy.port);
    let payload = "x".repeat(16 * 1024);
    let start_rss = rss_kb(proxy.pid().unwrap());
    let mut fast_got = 0;
    for _ in 0..1500 {
        let _ = publisher.cmd(&["PUBLISH", "ch", &payload]);
        // The fast subscriber reads each message.
        if let Resp::Array(_) = fast.read() {
            fast_got += 1;
        }
    }
    let end_rss = rss_kb(proxy.pid().unwrap());
    assert_eq!(fast_got, 1500);
    // 24 MB were published; the slow subscriber was cut off at about 1 MB.
    assert!(
        sub.closed_within(Duration::from_secs(10)),
        "slow subscriber was not disconnected"
    );
    assert!(
        end_rss < start_rss + 16 * 1024,
        "proxy memory grew from {start_rss} kB to {end_rss} kB"
    );
    assert!(proxy.log_text().contains("output buffer limit"));
    assert_alive(proxy.port);
}

trait WithInt {
    fn with_int_last(self, n: i64) -> Resp;
}

impl WithInt for Resp {
    fn with_int_last(self, n: i64) -> Resp {
        match self {
            Resp::Array(mut v) => {
                v.push(Resp::Int(n));
                Resp::Array(v)
            }
            other => other,
        }
    }
}

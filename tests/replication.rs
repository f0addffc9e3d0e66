//! Replication between tandem nodes, with real processes: convergence of a master, two
//! replicas and a cascaded replica under a mixed write load; partial resynchronization after
//! a link cut (through a test-side relay) and after a promotion (PSYNC2); WAIT and
//! min-replicas-to-write; read-only replicas, stale data, expiry; faults on the link.

mod common;

use common::repl::{assert_converge, dump, info_field, info_u64, wait_link_up, write_load};
use common::{eventually, Proc, Raw, Relay, Resp};
use std::io::{Read, Write};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    common::compare::q(c, args)
}

fn replica_of(m: &Proc) -> Proc {
    let r = Proc::node(&["--replicaof", "127.0.0.1", &m.port.to_string()]);
    wait_link_up(&r);
    r
}

#[test]
fn master_two_replicas_and_a_cascaded_replica_converge() {
    let m = Proc::node(&[]);
    // Data before the replicas attach travels in the full-sync payload (disk-style for one
    // replica, diskless for the others).
    write_load(&mut m.conn(), 9, 800);
    let _: () = q(
        &mut m.conn(),
        &["CONFIG", "SET", "repl-diskless-sync", "no"],
    );
    let r1 = replica_of(&m);
    let _: () = q(
        &mut m.conn(),
        &["CONFIG", "SET", "repl-diskless-sync", "yes"],
    );
    // The other replicas (one cascaded) attach while writes flow.
    let mut c = m.conn();
    let mut c2 = m.conn();
    let mut c3 = m.conn();
    let t = std::thread::spawn(move || write_load(&mut c2, 2, 3000));
    let t2 = std::thread::spawn(move || write_load(&mut c3, 1, 3000));
    std::thread::sleep(Duration::from_millis(100));
    let r2 = replica_of(&m);
    let r3 = replica_of(&r1);
    t.join().unwrap();
    t2.join().unwrap();
    for r in [&r1, &r2, &r3] {
        assert_converge(&m, r, 2);
    }
    assert!(!dump(&m, 2).is_empty());
    // Every node of the tree is in the top master's history, at its offset.
    let id = info_field(&mut c, "replication", "master_replid");
    let off = info_u64(&mut c, "replication", "master_repl_offset");
    for r in [&r1, &r2, &r3] {
        let mut rc = r.conn();
        assert_eq!(info_field(&mut rc, "replication", "master_replid"), id);
        assert!(eventually(T, || info_u64(
            &mut rc,
            "replication",
            "slave_repl_offset"
        ) >= off));
    }
    assert_eq!(info_u64(&mut c, "replication", "connected_slaves"), 2);
    let mut c1 = r1.conn();
    assert_eq!(info_u64(&mut c1, "replication", "connected_slaves"), 1);
}

#[test]
fn link_cut_resumes_with_partial_resync() {
    let m = Proc::node(&[]);
    let relay = Relay::start(m.port);
    let r = Proc::node(&["--replicaof", "127.0.0.1", &relay.port.to_string()]);
    wait_link_up(&r);
    let mut c = m.conn();
    write_load(&mut c, 3, 300);
    assert_converge(&m, &r, 2);
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 1);
    for round in 0..3 {
        relay.cut();
        write_load(&mut c, 10 + round, 200);
        wait_link_up(&r);
        assert_converge(&m, &r, 2);
    }
    assert!(info_u64(&mut c, "stats", "sync_partial_ok") >= 3);
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 1);
    // A stalled link resumes too.
    relay.stall(true);
    write_load(&mut c, 20, 100);
    std::thread::sleep(Duration::from_millis(300));
    relay.stall(false);
    assert_converge(&m, &r, 2);
}

#[test]
fn promoted_replica_serves_former_siblings_by_partial_resync() {
    let mut m = Proc::node(&[]);
    let r1 = replica_of(&m);
    let r2 = replica_of(&m);
    let mut c = m.conn();
    write_load(&mut c, 4, 500);
    assert_converge(&m, &r1, 2);
    assert_converge(&m, &r2, 2);
    let old_id = info_field(&mut c, "replication", "master_replid");
    m.kill();
    let mut c1 = r1.conn();
    let _: () = q(&mut c1, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut c1, "replication", "role"), "master");
    assert_eq!(info_field(&mut c1, "replication", "master_replid2"), old_id);
    assert_ne!(info_field(&mut c1, "replication", "master_replid"), old_id);
    let off = info_u64(&mut c1, "replication", "master_repl_offset");
    assert_eq!(
        info_u64(&mut c1, "replication", "second_repl_offset"),
        off + 1
    );
    let mut c2 = r2.conn();
    let _: () = q(&mut c2, &["REPLICAOF", "127.0.0.1", &r1.port.to_string()]);
    wait_link_up(&r2);
    assert_eq!(info_u64(&mut c1, "stats", "sync_partial_ok"), 1);
    assert_eq!(info_u64(&mut c1, "stats", "sync_full"), 0);
    write_load(&mut c1, 5, 300);
    assert_converge(&r1, &r2, 2);
    assert_eq!(
        info_field(&mut c2, "replication", "master_replid"),
        info_field(&mut c1, "replication", "master_replid")
    );
}

#[test]
fn wait_and_min_replicas_to_write() {
    let m = Proc::node(&[]);
    let relay = Relay::start(m.port);
    let _r = Proc::node(&["--replicaof", "127.0.0.1", &relay.port.to_string()]);
    let mut c = m.conn();
    assert!(eventually(T, || info_field(
        &mut c,
        "replication",
        "slave0"
    )
    .contains("state=online")));
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let n: i64 = q(&mut c, &["WAIT", "1", "5000"]);
    assert_eq!(n, 1);
    let t0 = std::time::Instant::now();
    let n: i64 = q(&mut c, &["WAIT", "2", "300"]);
    assert_eq!(n, 1);
    assert!(t0.elapsed() >= Duration::from_millis(290));
    // Errors as Redis.
    let e = redis::cmd("WAIT")
        .arg("x")
        .arg(0)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert_eq!(e.detail(), Some("value is not an integer or out of range"));
    let e = redis::cmd("WAIT")
        .arg(1)
        .arg(-1)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert_eq!(e.detail(), Some("timeout is negative"));
    // A stalled replica does not acknowledge: WAIT times out with 0.
    relay.stall(true);
    let _: () = q(&mut c, &["SET", "k", "v2"]);
    let n: i64 = q(&mut c, &["WAIT", "1", "300"]);
    assert_eq!(n, 0);
    relay.stall(false);
    let n: i64 = q(&mut c, &["WAIT", "1", "5000"]);
    assert_eq!(n, 1);
    // WAIT inside MULTI does not block.
    let r: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("k")
        .arg("v3")
        .cmd("WAIT")
        .arg(5)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(r[1], redis::Value::Int(0));
    // min-replicas-to-write.
    let _: () = q(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    assert!(eventually(T, || info_field(
        &mut c,
        "replication",
        "min_slaves_good_slaves"
    ) == "1"));
    let e = redis::cmd("SET")
        .arg("a")
        .arg("b")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("NOREPLICAS"));
    assert_eq!(e.detail(), Some("Not enough good replicas to write."));
    let got: Option<String> = q(&mut c, &["GET", "k"]);
    assert_eq!(got.as_deref(), Some("v3"));
    let _: () = q(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "min-replicas-max-lag", "2"]);
    assert!(eventually(T, || redis::cmd("SET")
        .arg("a")
        .arg("b")
        .query::<()>(&mut c)
        .is_ok()));
    // The replica stops acknowledging: after max-lag the master refuses writes.
    relay.stall(true);
    assert!(eventually(T, || {
        matches!(redis::cmd("SET").arg("a").arg("c").query::<()>(&mut c), Err(e) if e.code() == Some("NOREPLICAS"))
    }));
    relay.stall(false);
    assert!(eventually(T, || redis::cmd("SET")
        .arg("a")
        .arg("d")
        .query::<()>(&mut c)
        .is_ok()));
}

#[test]
fn replica_is_read_only_reports_role_and_info() {
    let mut m = Proc::node(&[]);
    let r = replica_of(&m);
    let mut c = m.conn();
    let mut rc = r.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert!(eventually(T, || q::<Option<String>>(
        &mut rc,
        &["GET", "k"]
    )
    .is_some()));
    let e = redis::cmd("SET")
        .arg("k")
        .arg("x")
        .query::<()>(&mut rc)
        .unwrap_err();
    assert_eq!(e.code(), Some("READONLY"));
    assert_eq!(
        e.detail(),
        Some("You can't write against a read only replica.")
    );
    // In MULTI the write is refused at queue time and EXEC aborts.
    let mut raw = Raw::connect(r.port);
    assert_eq!(raw.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert!(raw
        .cmd(&["SET", "k", "y"])
        .err_text()
        .starts_with("READONLY"));
    assert!(raw.cmd(&["EXEC"]).err_text().starts_with("EXECABORT"));
    // WAIT on a replica.
    assert!(raw
        .cmd(&["WAIT", "1", "0"])
        .err_text()
        .starts_with("ERR WAIT cannot be used with replica instances."));
    // ROLE on both sides.
    let role = raw.cmd(&["ROLE"]);
    let Resp::Array(v) = role else {
        panic!("ROLE: {role:?}")
    };
    assert_eq!(v[0], Resp::bulk("slave"));
    assert_eq!(v[1], Resp::bulk("127.0.0.1"));
    assert_eq!(v[2], Resp::Int(m.port as i64));
    assert_eq!(v[3], Resp::bulk("connected"));
    assert!(matches!(v[4], Resp::Int(n) if n > 0));
    let mut mraw = Raw::connect(m.port);
    assert!(eventually(T, || {
        let Resp::Array(v) = mraw.cmd(&["ROLE"]) else {
            return false;
        };
        v[0] == Resp::bulk("master")
            && matches!(v[1], Resp::Int(_))
            && matches!(&v[2], Resp::Array(l) if l.len() == 1
                && matches!(&l[0], Resp::Array(e) if e[0] == Resp::bulk("127.0.0.1")
                    && e[1] == Resp::bulk(&r.port.to_string())
                    && matches!(&e[2], Resp::Bulk(_))))
    }));
    // INFO replication field order on a replica.
    let info: String = q(&mut rc, &["INFO", "replication"]);
    let keys: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(
        keys,
        [
            "# Replication",
            "role",
            "master_host",
            "master_port",
            "master_link_status",
            "master_last_io_seconds_ago",
            "master_sync_in_progress",
            "slave_read_repl_offset",
            "slave_repl_offset",
            "slave_priority",
            "slave_read_only",
            "replica_announced",
            "connected_slaves",
            "master_failover_state",
            "master_replid",
            "master_replid2",
            "master_repl_offset",
            "second_repl_offset",
            "repl_backlog_active",
            "repl_backlog_size",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen"
        ]
    );
    assert!(info.contains("\r\nslave_read_only:1\r\n"));
    let minfo: String = q(&mut c, &["INFO", "replication"]);
    assert!(
        minfo.contains(&format!(
            "slave0:ip=127.0.0.1,port={},state=online,offset=",
            r.port
        )),
        "{minfo}"
    );
    // Serve stale data: yes by default, MASTERDOWN when set to no and the link is down.
    m.kill();
    assert!(eventually(T, || info_field(
        &mut rc,
        "replication",
        "master_link_status"
    ) == "down"));
    let got: Option<String> = q(&mut rc, &["GET", "k"]);
    assert_eq!(got.as_deref(), Some("v"));
    assert!(
        info_field(&mut rc, "replication", "master_link_down_since_seconds")
            .parse::<i64>()
            .unwrap()
            >= 0
    );
    let _: () = q(
        &mut rc,
        &["CONFIG", "SET", "replica-serve-stale-data", "no"],
    );
    let e = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut rc)
        .unwrap_err();
    assert_eq!(e.code(), Some("MASTERDOWN"));
    let _: String = q(&mut rc, &["INFO"]);
    // REPLICAOF errors and replies.
    let e = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg("99999")
        .query::<()>(&mut rc)
        .unwrap_err();
    assert_eq!(e.detail(), Some("Invalid master port"));
    let same = raw.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]);
    assert_eq!(
        same,
        Resp::Simple("OK Already connected to specified master".into())
    );
    assert_eq!(
        raw.cmd(&["REPLICAOF", "NO", "ONE"]),
        Resp::Simple("OK".into())
    );
    let _: () = q(&mut rc, &["SET", "k", "w"]);
}

#[test]
fn replicas_do_not_expire_keys_themselves() {
    let m = Proc::node(&[]);
    let r = replica_of(&m);
    let mut c = m.conn();
    let mut rc = r.conn();
    let _: () = q(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: () = q(&mut c, &["SET", "k", "v", "PX", "300"]);
    assert!(eventually(T, || q::<i64>(&mut rc, &["DBSIZE"]) == 1));
    std::thread::sleep(Duration::from_millis(400));
    // Logically expired on the replica: reads miss, but the key stays until the master's DEL.
    let got: Option<String> = q(&mut rc, &["GET", "k"]);
    assert_eq!(got, None);
    assert_eq!(q::<i64>(&mut rc, &["DBSIZE"]), 1);
    let got: Option<String> = q(&mut c, &["GET", "k"]);
    assert_eq!(got, None);
    assert!(eventually(T, || q::<i64>(&mut rc, &["DBSIZE"]) == 0));
}

#[test]
fn replconf_and_psync_errors() {
    let m = Proc::node(&[]);
    let mut raw = Raw::connect(m.port);
    assert!(raw
        .cmd(&["REPLCONF", "listening-port"])
        .err_text()
        .starts_with("ERR syntax error"));
    assert_eq!(
        raw.cmd(&["REPLCONF", "foo", "bar"]).err_text(),
        "ERR Unrecognized REPLCONF option: foo"
    );
    assert_eq!(
        raw.cmd(&["REPLCONF", "listening-port", "x"]).err_text(),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        raw.cmd(&[
            "REPLCONF",
            "listening-port",
            "1234",
            "capa",
            "eof",
            "capa",
            "whatever"
        ]),
        Resp::Simple("OK".into())
    );
    // ACK from a normal client replies nothing: the next reply is PING's.
    raw.send_cmd(&["REPLCONF", "ACK", "10"]);
    assert_eq!(raw.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(
        raw.cmd(&["PSYNC", "?", "x"]).err_text(),
        "ERR value is not an integer or out of range"
    );
    // A replica of a replica whose link is down gets NOMASTERLINK.
    let dead = common::free_port();
    let r = Proc::node(&["--replicaof", "127.0.0.1", &dead.to_string()]);
    let mut rr = Raw::connect(r.port);
    assert_eq!(
        rr.cmd(&["PSYNC", "?", "-1"]).err_text(),
        "NOMASTERLINK Can't SYNC while not connected with my master"
    );
    let mut rc = r.conn();
    assert_eq!(
        info_field(&mut rc, "replication", "master_link_status"),
        "down"
    );
    assert_eq!(
        info_field(&mut rc, "replication", "master_link_down_since_seconds"),
        "-1"
    );
}

/// A raw replica: handshake by hand, then garbage; the master drops it and stays healthy.
#[test]
fn master_survives_garbage_from_a_replica() {
    let m = Proc::node(&[]);
    let mut raw = Raw::connect(m.port);
    assert_eq!(
        raw.cmd(&["REPLCONF", "capa", "psync2"]),
        Resp::Simple("OK".into())
    );
    raw.send_cmd(&["PSYNC", "?", "-1"]);
    let l = raw.read();
    assert!(
        matches!(&l, Resp::Simple(s) if s.starts_with("FULLRESYNC ")),
        "{l:?}"
    );
    raw.send(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$-9\r\n\x00\xff garbage");
    assert!(raw.closed_within(Duration::from_secs(5)));
    common::assert_alive(m.port);
    let mut c = m.conn();
    let _: () = q(&mut c, &["SET", "a", "b"]);
    assert!(eventually(T, || info_u64(
        &mut c,
        "replication",
        "connected_slaves"
    ) == 0));
}

/// A fake master: answers the handshake, then misbehaves. The replica keeps its data,
/// keeps serving reads, logs, and retries.
fn fake_master(behaviour: &'static [u8]) -> (u16, std::thread::JoinHandle<usize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut served = 0;
        l.set_nonblocking(false).unwrap();
        while served < 2 {
            let Ok((mut s, _)) = l.accept() else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            // Wait for the PSYNC, answering every command with +OK.
            while !String::from_utf8_lossy(&got).contains("PSYNC") {
                let Ok(n) = s.read(&mut buf) else { break };
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let cmds = String::from_utf8_lossy(&buf[..n]).matches('*').count();
                for _ in 0..cmds {
                    if !String::from_utf8_lossy(&got).contains("PSYNC") {
                        let _ = s.write_all(b"+OK\r\n");
                    }
                }
            }
            let _ = s.write_all(behaviour);
            std::thread::sleep(Duration::from_millis(100));
            served += 1;
        }
        served
    });
    (port, h)
}

#[test]
fn replica_survives_a_master_dying_mid_payload_and_garbage() {
    let n = Proc::node(&[]);
    let mut c = n.conn();
    let _: () = q(&mut c, &["SET", "keep", "me"]);
    for behaviour in [
        &b"+FULLRESYNC 0123456789012345678901234567890123456789 100\r\n$5000\r\nREDIS0010\xfa"[..],
        &b"+FULLRESYNC 0123456789012345678901234567890123456789 100\r\n$EOF:0123456789012345678901234567890123456789\r\nREDIS00"[..],
        &b"+FULLRESYNC 0123456789012345678901234567890123456789 100\r\n$20\r\nnot an rdb at all!!!"[..],
        &b"\x00\x01garbage\r\n"[..],
        // Offsets no Redis stream reaches, each with a valid empty RDB: refused (an early
        // build took them and overflowed its offset sums on the next command).
        &b"+FULLRESYNC 0123456789012345678901234567890123456789 18446744073709551615\r\n$18\r\nREDIS0011\xff\0\0\0\0\0\0\0\0"[..],
        &b"+FULLRESYNC 0123456789012345678901234567890123456789 9223372036854775807\r\n$18\r\nREDIS0011\xff\0\0\0\0\0\0\0\0"[..],
    ] {
        let (port, h) = fake_master(behaviour);
        let _: () = q(&mut c, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
        assert_eq!(h.join().unwrap(), 2, "the replica retried");
        // Reads go on, with the old data intact.
        let got: Option<String> = q(&mut c, &["GET", "keep"]);
        assert_eq!(got.as_deref(), Some("me"));
        assert_eq!(info_field(&mut c, "replication", "master_link_status"), "down");
    }
    let log = std::fs::read_to_string(&n.log).unwrap();
    assert!(log.contains("replication link dropped"), "{log}");
}

#[test]
fn restarted_replica_resumes_with_partial_resync() {
    let m = Proc::node(&[]);
    let mport = m.port.to_string();
    let mut c = m.conn();
    write_load(&mut c, 30, 400);
    let r = replica_of(&m);
    write_load(&mut c, 31, 400);
    assert_converge(&m, &r, 2);
    // SHUTDOWN SAVE writes the RDB with the master's replid and the replica's offset.
    let mut rc = r.conn();
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut rc);
    let dir = r.take_dir();
    write_load(&mut c, 32, 300);
    let r2 = Proc::node_in(dir, &["--replicaof", "127.0.0.1", &mport]);
    wait_link_up(&r2);
    assert_converge(&m, &r2, 2);
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 1);
    assert_eq!(info_u64(&mut c, "stats", "sync_partial_ok"), 1);
    // A replica started without history asks for a full sync (`PSYNC ? -1`), which is not
    // counted as a failed partial resync.
    let _r3 = replica_of(&m);
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 2);
    assert_eq!(info_u64(&mut c, "stats", "sync_partial_err"), 0);
}

/// Sentinel reconfigures nodes with `MULTI; SLAVEOF ...; CONFIG REWRITE; CLIENT KILL ...;
/// EXEC`: REPLICAOF inside a transaction works as in Redis 7.0.
#[test]
fn replicaof_inside_multi() {
    let master = Proc::node(&[]);
    let node = Proc::node(&[]);
    let mut m = Raw::connect(master.port);
    assert_eq!(m.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    let mut c = Raw::connect(node.port);
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["SLAVEOF", "127.0.0.1", &master.port.to_string()]),
        Resp::Simple("QUEUED".into())
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("OK".into()), Resp::Simple("PONG".into())])
    );
    assert!(eventually(Duration::from_secs(20), || c.cmd(&["GET", "k"])
        == Resp::bulk("v")));
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["REPLICAOF", "NO", "ONE"]),
        Resp::Simple("QUEUED".into())
    );
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("OK".into())])
    );
    assert_eq!(c.cmd(&["SET", "k", "w"]), Resp::Simple("OK".into()));
}

/// Redis 7.0 propagates PUBLISH to replicas (never to the AOF): subscribers on a replica and
/// on a replica of that replica get the master's messages, also from inside a transaction;
/// a replica's own PUBLISH stays local.
#[test]
fn publish_reaches_subscribers_on_replicas() {
    use common::repl::{expect_message, subscribe};
    let m = Proc::node(&["--appendonly", "yes"]);
    let r1 = replica_of(&m);
    let r2 = replica_of(&r1);
    let mut s1 = subscribe(&r1, "news");
    let mut s2 = subscribe(&r2, "news");
    let mut c = m.conn();
    // The reply counts the master's own receivers only.
    let n: i64 = q(&mut c, &["PUBLISH", "news", "hello"]);
    assert_eq!(n, 0);
    expect_message(&mut s1, "news", "hello");
    expect_message(&mut s2, "news", "hello");
    let r: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("SELECT")
        .arg(3)
        .cmd("SET")
        .arg("tx-key")
        .arg("v")
        .cmd("PUBLISH")
        .arg("news")
        .arg("in-tx")
        .query(&mut c)
        .unwrap();
    assert_eq!(r[2], redis::Value::Int(0));
    expect_message(&mut s1, "news", "in-tx");
    expect_message(&mut s2, "news", "in-tx");
    let mut rc2 = r2.conn();
    let _: () = q(&mut rc2, &["SELECT", "3"]);
    let got: Option<String> = q(&mut rc2, &["GET", "tx-key"]);
    assert_eq!(got.as_deref(), Some("v"));
    // A replica's PUBLISH is delivered there only.
    let mut rc1 = r1.conn();
    let n: i64 = q(&mut rc1, &["PUBLISH", "news", "local"]);
    assert_eq!(n, 1);
    expect_message(&mut s1, "news", "local");
    let _: i64 = q(&mut c, &["PUBLISH", "news", "after"]);
    expect_message(&mut s1, "news", "after");
    expect_message(&mut s2, "news", "after");
    // Offsets still agree down the chain (PUBLISH counts in the stream).
    let off = info_u64(&mut c, "replication", "master_repl_offset");
    let mut rc2b = r2.conn();
    assert!(eventually(T, || info_u64(
        &mut rc2b,
        "replication",
        "slave_repl_offset"
    ) == off));
    // The master's AOF has the write but no PUBLISH.
    let aof_text = || {
        let mut all = String::new();
        for e in std::fs::read_dir(m.path().join("appendonlydir")).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
        all
    };
    assert!(eventually(T, || aof_text().contains("tx-key")));
    assert!(!aof_text().to_ascii_uppercase().contains("PUBLISH"));
}

/// A replica by hand over raw TCP: bytes as they come, keepalive newlines counted.
struct RawReplica {
    s: std::net::TcpStream,
    buf: Vec<u8>,
    newlines: usize,
}

impl RawReplica {
    /// Connects and sends `REPLCONF capa eof capa psync2` (if `eof`), reading its `+OK`.
    fn connect(port: u16, eof: bool) -> RawReplica {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut r = RawReplica {
            s,
            buf: Vec::new(),
            newlines: 0,
        };
        if eof {
            r.send(&["REPLCONF", "capa", "eof", "capa", "psync2"]);
            assert_eq!(r.line(), "+OK");
        }
        r
    }

    fn send(&mut self, args: &[&str]) {
        self.s.write_all(&common::encode_cmd(args)).unwrap();
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.s.read(&mut chunk).expect("read from master");
        assert!(n > 0, "master closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next non-empty line (without CRLF), counting the bare `\n` keepalives before it.
    fn line(&mut self) -> String {
        loop {
            while self.buf.first() == Some(&b'\n') {
                self.buf.remove(0);
                self.newlines += 1;
            }
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return l;
            }
            self.fill();
        }
    }

    /// The RDB payload (`$len` or `$EOF:<mark>` framing).
    fn payload(&mut self) -> Vec<u8> {
        let head = self.line();
        if let Some(mark) = head.strip_prefix("$EOF:") {
            let mark = mark.as_bytes().to_vec();
            assert_eq!(mark.len(), 40);
            loop {
                if let Some(i) = self.buf.windows(40).position(|w| w == mark) {
                    let rdb = self.buf[..i].to_vec();
                    self.buf.drain(..i + 40);
                    return rdb;
                }
                self.fill();
            }
        }
        let len: usize = head
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad payload header {head:?}"));
        while self.buf.len() < len {
            self.fill();
        }
        self.buf.drain(..len).collect()
    }

    /// Reads the stream until it contains `needle`.
    fn stream_contains(&mut self, needle: &str) {
        while !String::from_utf8_lossy(&self.buf).contains(needle) {
            self.fill();
        }
    }
}

/// `repl-diskless-sync-delay`: replicas asking for a full sync wait (with keepalive
/// newlines), and every replica that arrived during the delay gets the same snapshot from
/// one transfer.
#[test]
fn diskless_sync_delay_serves_waiting_replicas_with_one_transfer() {
    let m = Proc::node(&["--repl-diskless-sync-delay", "2"]);
    let mut c = m.conn();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "repl-diskless-sync-delay"]),
        ["repl-diskless-sync-delay", "2"]
    );
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let t0 = std::time::Instant::now();
    let mut a = RawReplica::connect(m.port, true);
    a.send(&["PSYNC", "?", "-1"]);
    assert!(eventually(T, || info_field(
        &mut c,
        "replication",
        "slave0"
    )
    .contains("state=wait_bgsave")));
    // A write between the two arrivals: one snapshot serves both, so it holds `b`.
    let _: () = q(&mut c, &["SET", "b", "2"]);
    let off = info_u64(&mut c, "replication", "master_repl_offset");
    let mut b = RawReplica::connect(m.port, true);
    b.send(&["PSYNC", "?", "-1"]);
    let la = a.line();
    let lb = b.line();
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    assert!(la.starts_with("+FULLRESYNC "), "{la}");
    assert_eq!(la, lb);
    let at: u64 = la.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(at >= off, "snapshot at {at}, write at {off}");
    assert!(a.newlines >= 1, "no keepalive while waiting");
    let (pa, pb) = (a.payload(), b.payload());
    assert!(pa.starts_with(b"REDIS"));
    assert_eq!(pa, pb);
    assert!(m.log_text().contains("replicas=2"), "{}", m.log_text());
    // The stream starts after each replica's first ACK.
    for r in [&mut a, &mut b] {
        r.send(&["REPLCONF", "ACK", &at.to_string()]);
    }
    let _: () = q(&mut c, &["SET", "after", "sync"]);
    a.stream_contains("after");
    b.stream_contains("after");
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 2);
}

/// `repl-diskless-sync-max-replicas`: the transfer starts as soon as that many replicas
/// wait, before the delay.
#[test]
fn diskless_sync_max_replicas_starts_before_the_delay() {
    let m = Proc::node(&["--repl-diskless-sync-delay", "60"]);
    let mut c = m.conn();
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "repl-diskless-sync-max-replicas", "2"],
    );
    write_load(&mut c, 40, 300);
    let mport = m.port.to_string();
    let r1 = Proc::node(&["--replicaof", "127.0.0.1", &mport]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut rc1 = r1.conn();
    assert_eq!(
        info_field(&mut rc1, "replication", "master_link_status"),
        "down"
    );
    assert!(info_field(&mut c, "replication", "slave0").contains("state=wait_bgsave"));
    let t0 = std::time::Instant::now();
    let r2 = Proc::node(&["--replicaof", "127.0.0.1", &mport]);
    wait_link_up(&r1);
    wait_link_up(&r2);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_converge(&m, &r1, 2);
    assert_converge(&m, &r2, 2);
    // CONFIG SET applies to a replica already waiting.
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "repl-diskless-sync-max-replicas", "0"],
    );
    let r3 = Proc::node(&["--replicaof", "127.0.0.1", &mport]);
    std::thread::sleep(Duration::from_millis(500));
    let _: () = q(&mut c, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    wait_link_up(&r3);
    assert_converge(&m, &r3, 2);
}

/// `repl-backlog-ttl`: a master without replicas frees its backlog after that many
/// seconds, under a new replication id; a replica attaching later gets a new backlog.
#[test]
fn backlog_is_freed_after_repl_backlog_ttl() {
    let m = Proc::node(&[]);
    let mut c = m.conn();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "repl-backlog-ttl"]),
        ["repl-backlog-ttl", "3600"]
    );
    let _: () = q(&mut c, &["CONFIG", "SET", "repl-backlog-ttl", "1"]);
    let mut r = replica_of(&m);
    write_load(&mut c, 50, 100);
    // Not while a replica is attached.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(info_u64(&mut c, "replication", "repl_backlog_active"), 1);
    let id = info_field(&mut c, "replication", "master_replid");
    r.kill();
    assert!(eventually(T, || info_u64(
        &mut c,
        "replication",
        "repl_backlog_active"
    ) == 0));
    let off = info_u64(&mut c, "replication", "master_repl_offset");
    assert!(off > 0);
    assert_ne!(info_field(&mut c, "replication", "master_replid"), id);
    assert_eq!(
        info_field(&mut c, "replication", "master_replid2"),
        "0000000000000000000000000000000000000000"
    );
    assert_eq!(
        info_field(&mut c, "replication", "second_repl_offset"),
        "-1"
    );
    assert_eq!(info_u64(&mut c, "replication", "repl_backlog_histlen"), 0);
    // Writes without a backlog do not move the offset, as in Redis.
    let _: () = q(&mut c, &["SET", "x", "y"]);
    assert_eq!(info_u64(&mut c, "replication", "master_repl_offset"), off);
    let r2 = replica_of(&m);
    assert_eq!(info_u64(&mut c, "replication", "repl_backlog_active"), 1);
    assert_converge(&m, &r2, 2);
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-backlog-ttl")
        .arg("-1")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string().contains("argument must be between 0 and"),
        "{e}"
    );
}

/// The old SYNC: a full sync without the `+FULLRESYNC` line, then the stream, and no ACK
/// expected (the replica is not timed out); redis-cli --replica works against tandem.
#[test]
fn sync_command_gets_a_payload_without_fullresync() {
    let m = Proc::node(&[]);
    let mut c = m.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "repl-diskless-sync", "no"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "repl-timeout", "1"]);
    let mut r = RawReplica::connect(m.port, false);
    r.send(&["SYNC"]);
    let rdb = r.payload();
    assert!(
        rdb.starts_with(b"REDIS0010"),
        "{:?}",
        &rdb[..16.min(rdb.len())]
    );
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 1);
    std::thread::sleep(Duration::from_millis(3500));
    let _: () = q(&mut c, &["SET", "streamed", "1"]);
    r.stream_contains("streamed");
    assert!(info_field(&mut c, "replication", "slave0").contains("state=online"));

    // redis-cli --replica: REPLCONF capa eof, rdb-filter-only "", SYNC; diskless.
    let _: () = q(&mut c, &["CONFIG", "SET", "repl-diskless-sync", "yes"]);
    let mut cli = std::process::Command::new(common::require_tool("redis-cli"))
        .args(["-p", &m.port.to_string(), "--replica"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = cli.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = std::time::Instant::now() + T;
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        let _: () = q(&mut c, &["SET", "cli-key", "cli-value"]);
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
            seen.push(l.clone());
            if l.contains("\"cli-key\",\"cli-value\"") {
                break;
            }
        }
    }
    let _ = cli.kill();
    let _ = cli.wait();
    assert!(
        seen.iter().any(|l| l.contains("\"cli-key\",\"cli-value\"")),
        "{seen:?}"
    );
    // Filters other than "functions" are refused, as in Redis.
    let mut raw = Raw::connect(m.port);
    assert_eq!(
        raw.cmd(&["REPLCONF", "rdb-filter-only", "keys"]).err_text(),
        "ERR Unsupported rdb-filter-only option: keys"
    );
    assert_eq!(
        raw.cmd(&["REPLCONF", "rdb-filter-only", ""]),
        Resp::Simple("OK".into())
    );
    assert_eq!(
        raw.cmd(&["SYNC"]).err_text(),
        "ERR Filtered replica requires EOF capability"
    );
}

/// A master that refuses PSYNC gets the old SYNC: the replica loads the payload that comes
/// without `+FULLRESYNC` and applies the stream, sending no ACKs.
#[test]
fn replica_falls_back_to_sync_when_psync_is_refused() {
    // An RDB holding k=v, from a tandem node.
    let src = Proc::node(&[]);
    let mut sc = src.conn();
    let _: () = q(&mut sc, &["SET", "k", "v"]);
    let _: () = q(&mut sc, &["SAVE"]);
    let rdb = std::fs::read(src.path().join("dump.rdb")).unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered = 0;
        let mut refused = false;
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return (got, false);
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            // +PONG / +OK for the handshake.
            let cmds = text.matches('*').count();
            while answered < cmds && !text.contains("PSYNC") {
                s.write_all(b"+OK\r\n").unwrap();
                answered += 1;
            }
            if text.contains("PSYNC") && !refused {
                s.write_all(b"-ERR unknown command 'PSYNC'\r\n").unwrap();
                refused = true;
            }
            if refused && text.contains("SYNC\r\n") && text.matches("SYNC").count() >= 2 {
                break;
            }
        }
        s.write_all(format!("${}\r\n", rdb.len()).as_bytes())
            .unwrap();
        s.write_all(&rdb).unwrap();
        s.write_all(&common::encode_cmd(&["SELECT", "0"])).unwrap();
        s.write_all(&common::encode_cmd(&["SET", "streamed", "yes"]))
            .unwrap();
        // Whatever the replica sends now (it must send no ACK).
        std::thread::sleep(Duration::from_millis(2500));
        s.set_nonblocking(true).unwrap();
        let mut after = Vec::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            after.extend_from_slice(&buf[..n]);
        }
        (after, true)
    });
    let r = Proc::node(&["--replicaof", "127.0.0.1", &port.to_string()]);
    let mut rc = r.conn();
    assert!(eventually(T, || q::<Option<String>>(
        &mut rc,
        &["GET", "streamed"]
    )
    .as_deref()
        == Some("yes")));
    let got: Option<String> = q(&mut rc, &["GET", "k"]);
    assert_eq!(got.as_deref(), Some("v"));
    assert_eq!(
        info_field(&mut rc, "replication", "master_link_status"),
        "up"
    );
    let (after, synced) = h.join().unwrap();
    assert!(synced, "the replica never sent SYNC");
    assert!(
        !String::from_utf8_lossy(&after).contains("ACK"),
        "{:?}",
        String::from_utf8_lossy(&after)
    );
    assert!(r.log_text().contains("falling back to SYNC"));
}

fn err_of(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let e = cmd.query::<redis::Value>(c).unwrap_err();
    format!(
        "{} {}",
        e.code().unwrap_or("?"),
        e.detail().unwrap_or_default()
    )
}

/// FAILOVER's argument rules and error texts, as Redis 6.2+.
#[test]
fn failover_errors() {
    let lone = Proc::node(&[]);
    let mut lc = lone.conn();
    assert_eq!(
        err_of(&mut lc, &["FAILOVER"]),
        "ERR FAILOVER requires connected replicas."
    );
    let m = Proc::node(&[]);
    let r = replica_of(&m);
    let mut c = m.conn();
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "ABORT"]),
        "ERR No failover in progress."
    );
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "TIMEOUT", "0"]),
        "ERR FAILOVER timeout must be greater than 0"
    );
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "TIMEOUT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"]),
        "ERR syntax error"
    );
    assert_eq!(err_of(&mut c, &["FAILOVER", "BOGUS"]), "ERR syntax error");
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "ABORT", "TIMEOUT", "5"]),
        "ERR syntax error"
    );
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "TO", "127.0.0.1", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "FORCE", "TO", "127.0.0.1", "1"]),
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(
        err_of(&mut c, &["FAILOVER", "TO", "127.0.0.1", "1"]),
        "ERR FAILOVER target HOST and PORT is not a replica."
    );
    let mut rc = r.conn();
    assert_eq!(
        err_of(&mut rc, &["FAILOVER"]),
        "ERR FAILOVER is not valid when server is a replica."
    );
    // PSYNC ... FAILOVER is for replicas, with the master's replid.
    let mut raw = Raw::connect(m.port);
    assert_eq!(
        raw.cmd(&["PSYNC", "?", "-1", "FAILOVER"]).err_text(),
        "ERR PSYNC FAILOVER can't be sent to a master."
    );
    let mut rr = Raw::connect(r.port);
    assert_eq!(
        rr.cmd(&[
            "PSYNC",
            "0123456789012345678901234567890123456789",
            "1",
            "FAILOVER"
        ])
        .err_text(),
        "ERR PSYNC FAILOVER replid must match my replid."
    );
    assert_eq!(info_field(&mut rc, "replication", "role"), "slave");
    assert_eq!(
        info_field(&mut c, "replication", "master_failover_state"),
        "no-failover"
    );
}

/// FAILOVER TO a replica: writes pause, the replica catches up and becomes the master
/// continuing the same history (the old master resumes with a partial resync); the paused
/// write then gets -READONLY.
#[test]
fn failover_hands_the_master_role_to_a_caught_up_replica() {
    let m = Proc::node(&[]);
    let r1 = replica_of(&m);
    let r2 = replica_of(&m);
    let mut c = m.conn();
    write_load(&mut c, 60, 500);
    assert_converge(&m, &r1, 2);
    let _: () = q(
        &mut c,
        &["FAILOVER", "TO", "127.0.0.1", &r1.port.to_string()],
    );
    let mut rc1 = r1.conn();
    assert!(eventually(T, || info_field(
        &mut rc1,
        "replication",
        "role"
    ) == "master"));
    let mut c2 = m.conn();
    assert!(eventually(T, || info_field(
        &mut c2,
        "replication",
        "master_port"
    ) == r1.port.to_string()
        && info_field(&mut c2, "replication", "master_link_status")
            == "up"));
    assert_eq!(
        info_field(&mut c2, "replication", "master_failover_state"),
        "no-failover"
    );
    // The old master continued r1's history: partial resync, no full sync.
    assert_eq!(info_u64(&mut rc1, "stats", "sync_partial_ok"), 1);
    assert_eq!(info_u64(&mut rc1, "stats", "sync_full"), 0);
    let e = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut c2)
        .unwrap_err();
    assert_eq!(e.code(), Some("READONLY"));
    write_load(&mut rc1, 61, 300);
    assert_converge(&r1, &m, 2);
    // r2 stays a replica of the old master, so it follows through it.
    assert_converge(&r1, &r2, 2);
    // And back, to any caught-up replica (the old master is r1's only one).
    let _: () = q(&mut rc1, &["FAILOVER", "TIMEOUT", "10000"]);
    assert!(eventually(T, || info_field(&mut c2, "replication", "role") == "master"));
    assert!(eventually(T, || info_field(
        &mut rc1,
        "replication",
        "master_link_status"
    ) == "up"));
    assert_eq!(
        info_field(&mut rc1, "replication", "master_port"),
        m.port.to_string()
    );
    write_load(&mut c2, 62, 300);
    assert_converge(&m, &r1, 2);
    assert_converge(&m, &r2, 2);
    assert_eq!(info_u64(&mut c2, "stats", "sync_full"), 2);
}

/// While waiting for a replica that cannot catch up: writes wait, SYNC and REPLICAOF are
/// refused; the timeout aborts (writes resume on the master); FAILOVER ABORT too; FORCE
/// fails over when the timeout passes anyway.
#[test]
fn failover_waits_aborts_and_forces() {
    let m = Proc::node(&[]);
    let relay = Relay::start(m.port);
    let r = Proc::node(&["--replicaof", "127.0.0.1", &relay.port.to_string()]);
    wait_link_up(&r);
    let mut c = m.conn();
    let _: () = q(&mut c, &["SET", "before", "1"]);
    assert_converge(&m, &r, 1);
    relay.stall(true);
    let _: () = q(&mut c, &["SET", "unacked", "1"]);
    let rport = r.port.to_string();
    let _: () = q(
        &mut c,
        &["FAILOVER", "TO", "127.0.0.1", &rport, "TIMEOUT", "1500"],
    );
    assert_eq!(
        info_field(&mut c, "replication", "master_failover_state"),
        "waiting-for-sync"
    );
    let t0 = std::time::Instant::now();
    let url = m.url();
    let writer = std::thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let r: redis::RedisResult<()> = redis::cmd("SET").arg("paused").arg("1").query(&mut w);
        (r, t0.elapsed())
    });
    // Reads go on.
    let got: Option<String> = q(&mut c, &["GET", "before"]);
    assert_eq!(got.as_deref(), Some("1"));
    assert_eq!(
        err_of(&mut c, &["FAILOVER"]),
        "ERR FAILOVER already in progress."
    );
    assert_eq!(
        err_of(&mut c, &["REPLICAOF", "NO", "ONE"]),
        "ERR REPLICAOF not allowed while failing over."
    );
    let mut raw = Raw::connect(m.port);
    assert_eq!(
        raw.cmd(&["PSYNC", "?", "-1"]).err_text(),
        "NOMASTERLINK Can't SYNC while failing over"
    );
    let (res, waited) = writer.join().unwrap();
    assert!(res.is_ok(), "{res:?}");
    assert!(waited >= Duration::from_millis(1300), "{waited:?}");
    assert_eq!(
        info_field(&mut c, "replication", "master_failover_state"),
        "no-failover"
    );
    assert_eq!(info_field(&mut c, "replication", "role"), "master");
    assert!(m
        .log_text()
        .contains("Replica never caught up before timeout"));
    // ABORT resumes the paused writes.
    let _: () = q(&mut c, &["FAILOVER", "TO", "127.0.0.1", &rport]);
    let url = m.url();
    let writer = std::thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("SET")
            .arg("paused2")
            .arg("1")
            .query::<()>(&mut w)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!writer.is_finished());
    let _: () = q(&mut c, &["FAILOVER", "ABORT"]);
    assert!(writer.join().unwrap().is_ok());
    assert_eq!(info_field(&mut c, "replication", "role"), "master");
    // FORCE: after the timeout, fail over to the lagging replica anyway.
    let _: () = q(
        &mut c,
        &[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &rport,
            "FORCE",
            "TIMEOUT",
            "500",
        ],
    );
    let url = m.url();
    let writer = std::thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("SET")
            .arg("paused3")
            .arg("1")
            .query::<()>(&mut w)
    });
    let mut rc = r.conn();
    assert!(eventually(T, || info_field(&mut rc, "replication", "role") == "master"));
    let e = writer.join().unwrap().unwrap_err();
    assert_eq!(e.code(), Some("READONLY"));
    assert!(eventually(T, || info_field(
        &mut c,
        "replication",
        "master_link_status"
    ) == "up"));
    assert_eq!(info_field(&mut c, "replication", "role"), "slave");
    relay.stall(false);
    assert_converge(&r, &m, 1);
}

/// Lazy expiry on the master propagates each expired key as its own `DEL`, never inside a
/// `MULTI` (Redis 7.0), and SCAN deletes the expired keys it walks over (and propagates them).
#[test]
fn lazy_expiry_dels_are_propagated_unwrapped_and_scan_deletes_expired_keys() {
    let m = Proc::node(&["--repl-diskless-sync-delay", "0"]);
    let mut c = m.conn();
    // No active expiry: only lookups may find the keys expired.
    let _: () = q(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let mut r = RawReplica::connect(m.port, true);
    r.send(&["PSYNC", "?", "-1"]);
    assert!(r.line().starts_with("+FULLRESYNC "));
    let _ = r.payload();
    r.send(&["REPLCONF", "ACK", "0"]);
    for k in ["foo1", "foo2", "foo3"] {
        let _: () = q(&mut c, &["SET", k, "v", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    // RANDOMKEY meets the expired keys and deletes them all in one command.
    let _: Option<String> = q(&mut c, &["RANDOMKEY"]);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
    let _: () = q(&mut c, &["SET", "marker", "1"]);
    r.stream_contains("marker");
    let text = String::from_utf8_lossy(&r.buf).to_ascii_lowercase();
    for k in ["foo1", "foo2", "foo3"] {
        assert!(
            text.contains(&format!("$3\r\ndel\r\n$4\r\n{k}\r\n")),
            "no DEL of {k}: {text:?}"
        );
    }
    assert!(
        !text.contains("multi"),
        "lazy expiry wrapped in MULTI: {text:?}"
    );
    // SCAN deletes the expired keys it walks over, and propagates each DEL.
    for k in ["scan1", "scan2", "scan3"] {
        let _: () = q(&mut c, &["SET", k, "v", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        q::<i64>(&mut c, &["DBSIZE"]),
        4,
        "expired keys still count before SCAN"
    );
    let (_, keys): (String, Vec<String>) = q(&mut c, &["SCAN", "0", "COUNT", "1000"]);
    assert_eq!(keys, ["marker"]);
    assert_eq!(
        q::<i64>(&mut c, &["DBSIZE"]),
        1,
        "expired keys left after SCAN"
    );
    let _: () = q(&mut c, &["SET", "marker2", "1"]);
    r.stream_contains("marker2");
    let text = String::from_utf8_lossy(&r.buf).to_ascii_lowercase();
    for k in ["scan1", "scan2", "scan3"] {
        assert!(
            text.contains(&format!("$3\r\ndel\r\n$5\r\n{k}\r\n")),
            "no DEL of {k}: {text:?}"
        );
    }
    assert!(!text.contains("multi"), "{text:?}");
}

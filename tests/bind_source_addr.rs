//! `bind-source-addr` (Redis 7.0): the source address of outgoing connections. A replica's
//! link to its master and every sentinel link must come from it, as the master sees them
//! (`INFO replication` ip=, `CLIENT LIST` addr=). The replica case runs on a Tandem node and,
//! side by side, on Debian's redis-server 7.0.

mod common;

use common::*;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn info_replication(p: &Proc) -> String {
    redis::cmd("INFO")
        .arg("replication")
        .query(&mut p.conn())
        .unwrap_or_default()
}

fn client_list(p: &Proc) -> String {
    redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut p.conn())
        .unwrap_or_default()
}

/// The master's replica line names `ip` once the link is up.
fn replica_seen_from(master: &Proc, ip: &str) -> bool {
    eventually(DEADLINE, || {
        let info = info_replication(master);
        info.lines()
            .any(|l| l.starts_with("slave0:") && l.contains(&format!("ip={ip},")))
            && info.contains("connected_slaves:1")
    })
}

fn replica_follows_from_source(redis: bool) {
    let master = if redis {
        // Redis's protected mode counts only 127.0.0.1 and ::1 as loopback: it would deny
        // the replica coming from 127.0.0.2.
        Proc::redis_server(&["--protected-mode", "no"])
    } else {
        Proc::node(&[])
    };
    let mport = master.port.to_string();
    let args = [
        "--replicaof",
        "127.0.0.1",
        mport.as_str(),
        "--bind-source-addr",
        "127.0.0.2",
    ];
    let replica = if redis {
        Proc::redis_server(&args)
    } else {
        Proc::node(&args)
    };
    assert!(
        replica_seen_from(&master, "127.0.0.2"),
        "the master does not see its replica from 127.0.0.2: {}",
        info_replication(&master)
    );
    // The replication client itself (flags=S) connected from that address.
    let list = client_list(&master);
    assert!(
        list.lines()
            .any(|l| l.contains(" flags=S ") && l.contains(" addr=127.0.0.2:")),
        "{list}"
    );
    let mut c = replica.conn();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("bind-source-addr")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, ["bind-source-addr", "127.0.0.2"]);

    // CONFIG SET applies to the next link: drop it and the replica reconnects from 127.0.0.3.
    let ok: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg("bind-source-addr")
        .arg("127.0.0.3")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut master.conn())
        .unwrap();
    assert!(
        replica_seen_from(&master, "127.0.0.3"),
        "after CONFIG SET the replica does not reconnect from 127.0.0.3: {}",
        info_replication(&master)
    );
    // The data flows over the new link.
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut master.conn())
        .unwrap();
    assert!(eventually(DEADLINE, || {
        redis::cmd("GET")
            .arg("k")
            .query::<Option<String>>(&mut c)
            .ok()
            .flatten()
            .as_deref()
            == Some("v")
    }));
}

#[test]
fn tandem_replica_connects_from_bind_source_addr() {
    replica_follows_from_source(false);
}

#[test]
fn redis_replica_connects_from_bind_source_addr() {
    replica_follows_from_source(true);
}

#[test]
fn tandem_node_rejects_a_bind_source_addr_that_is_not_an_ip() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["node", "--port", "0", "--bind-source-addr", "not-an-ip"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind-source-addr"), "{err}");
}

#[test]
fn sentinel_links_come_from_bind_source_addr() {
    let master = Proc::node(&[]);
    let state = tempfile::tempdir().unwrap();
    let mport = master.port.to_string();
    let _sentinel = Proc::sentinel(
        free_port(),
        state.path(),
        &[
            "--monitor",
            "m",
            "127.0.0.1",
            mport.as_str(),
            "1",
            "--bind-source-addr",
            "127.0.0.2",
        ],
    );
    // The sentinel's command and pub/sub links name themselves sentinel-<id>-cmd/pubsub.
    let mut last = String::new();
    let seen = eventually(DEADLINE, || {
        last = client_list(&master);
        let links: Vec<&str> = last
            .lines()
            .filter(|l| l.contains(" name=sentinel-"))
            .collect();
        links.len() >= 2 && links.iter().all(|l| l.contains(" addr=127.0.0.2:"))
    });
    assert!(seen, "sentinel links not from 127.0.0.2: {last}");
}

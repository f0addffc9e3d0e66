//! Replication interop with Debian's redis-server 7: redis-server as a replica of a tandem
//! master, and a tandem replica of a redis-server master, each through a full sync (with
//! data), live propagation of a mixed write load, and a partial resync after a link cut by
//! a test-side relay, with equal keyspaces at the end.

mod common;

use common::repl::{assert_converge, info_field, info_u64, wait_link_up, write_load};
use common::{eventually, Proc, Relay};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn redis_server_replicates_from_a_tandem_master() {
    for diskless in ["yes", "no"] {
        let m = Proc::node(&[]);
        let mut c = m.conn();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("repl-diskless-sync")
            .arg(diskless)
            .query(&mut c)
            .unwrap();
        // WAIT counts the redis replica's ACKs.
        let _linked = sync_cut_and_resync(&m, 1, |port| {
            Proc::redis_server(&["--replicaof", "127.0.0.1", &port.to_string()])
        });
    }
}

/// The interop run shared by both directions: a mixed write load (seeds `seed`..`seed + 2`)
/// on master `m`, a replica started by `replica` behind a test-side relay (given the relay's
/// port) through a full sync, live propagation, a link cut and a partial resync, equal
/// keyspaces after each step; the replica ends at the master's replid and offset and WAIT
/// on the master counts its ACK. Returns the replica and its relay (still linked).
fn sync_cut_and_resync(m: &Proc, seed: u64, replica: impl FnOnce(u16) -> Proc) -> (Proc, Relay) {
    let mut c = m.conn();
    write_load(&mut c, seed, 600);
    let relay = Relay::start(m.port);
    let r = replica(relay.port);
    wait_link_up(&r);
    assert_converge(m, &r, 2);
    write_load(&mut c, seed + 1, 600);
    assert_converge(m, &r, 2);
    relay.cut();
    write_load(&mut c, seed + 2, 300);
    wait_link_up(&r);
    assert_converge(m, &r, 2);
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 1);
    assert!(info_u64(&mut c, "stats", "sync_partial_ok") >= 1);
    let mut rc = r.conn();
    assert_eq!(
        info_field(&mut rc, "replication", "master_replid"),
        info_field(&mut c, "replication", "master_replid")
    );
    let off = info_u64(&mut c, "replication", "master_repl_offset");
    assert!(eventually(T, || info_u64(
        &mut rc,
        "replication",
        "slave_repl_offset"
    ) >= off));
    let _: () = redis::cmd("SET").arg("w").arg("1").query(&mut c).unwrap();
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    assert_eq!(n, 1);
    (r, relay)
}

#[test]
fn tandem_replicates_from_a_redis_master() {
    let m = Proc::redis_server(&["--repl-diskless-sync-delay", "0"]);
    let mut c = m.conn();
    // The redis master sees our ACKs (WAIT).
    let _linked = sync_cut_and_resync(&m, 4, |port| {
        Proc::node(&["--replicaof", "127.0.0.1", &port.to_string()])
    });
    // Disk-style payload from redis too.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync")
        .arg("no")
        .query(&mut c)
        .unwrap();
    let r2 = Proc::node(&["--replicaof", "127.0.0.1", &m.port.to_string()]);
    wait_link_up(&r2);
    assert_converge(&m, &r2, 2);
}

/// PUBLISH on a master reaches subscribers on its replica, both ways between tandem and
/// redis-server (Redis 7.0 propagates PUBLISH to replicas).
#[test]
fn publish_crosses_between_tandem_and_redis() {
    use common::repl::{expect_message, subscribe};
    let m = Proc::node(&[]);
    let r = Proc::redis_server(&["--replicaof", "127.0.0.1", &m.port.to_string()]);
    wait_link_up(&r);
    let mut s = subscribe(&r, "ch");
    let n: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("from-tandem")
        .query(&mut m.conn())
        .unwrap();
    assert_eq!(n, 0);
    expect_message(&mut s, "ch", "from-tandem");

    let m2 = Proc::redis_server(&["--repl-diskless-sync-delay", "0"]);
    let r2 = Proc::node(&["--replicaof", "127.0.0.1", &m2.port.to_string()]);
    wait_link_up(&r2);
    let mut s2 = subscribe(&r2, "ch");
    let mut c2 = m2.conn();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("from-redis")
        .query(&mut c2)
        .unwrap();
    expect_message(&mut s2, "ch", "from-redis");
    // The tandem replica stays in step with the redis master's offset.
    let off = info_u64(&mut c2, "replication", "master_repl_offset");
    let mut rc2 = r2.conn();
    assert!(eventually(T, || info_u64(
        &mut rc2,
        "replication",
        "slave_repl_offset"
    ) >= off));
}

/// A tandem master with `repl-diskless-sync-delay` serves two redis-server replicas that
/// arrive during the delay with one transfer (they wait through the keepalive newlines).
#[test]
fn redis_replicas_share_one_delayed_diskless_transfer() {
    let m = Proc::node(&["--repl-diskless-sync-delay", "2"]);
    let mut c = m.conn();
    write_load(&mut c, 7, 400);
    let mport = m.port.to_string();
    let t0 = std::time::Instant::now();
    let r1 = Proc::redis_server(&["--replicaof", "127.0.0.1", &mport]);
    let r2 = Proc::redis_server(&["--replicaof", "127.0.0.1", &mport]);
    wait_link_up(&r1);
    wait_link_up(&r2);
    assert!(t0.elapsed() >= Duration::from_millis(1900));
    assert!(m.log_text().contains("replicas=2"), "{}", m.log_text());
    assert_converge(&m, &r1, 2);
    assert_converge(&m, &r2, 2);
    assert_eq!(info_u64(&mut c, "stats", "sync_full"), 2);
}

/// FAILOVER between tandem and redis-server, both ways: the master hands its role to the
/// replica, which continues the same history (partial resync of the old master).
#[test]
fn failover_between_tandem_and_redis() {
    for tandem_master in [true, false] {
        let m = if tandem_master {
            Proc::node(&[])
        } else {
            Proc::redis_server(&["--repl-diskless-sync-delay", "0"])
        };
        let mport = m.port.to_string();
        let r = if tandem_master {
            Proc::redis_server(&["--replicaof", "127.0.0.1", &mport])
        } else {
            Proc::node(&["--replicaof", "127.0.0.1", &mport])
        };
        wait_link_up(&r);
        let mut c = m.conn();
        write_load(&mut c, 8, 400);
        assert_converge(&m, &r, 2);
        let _: () = redis::cmd("FAILOVER")
            .arg("TO")
            .arg("127.0.0.1")
            .arg(r.port)
            .query(&mut c)
            .unwrap();
        let mut rc = r.conn();
        assert!(
            eventually(T, || info_field(&mut rc, "replication", "role") == "master"),
            "tandem master: {tandem_master}"
        );
        assert!(eventually(T, || info_field(
            &mut c,
            "replication",
            "master_link_status"
        ) == "up"));
        assert_eq!(info_field(&mut c, "replication", "role"), "slave");
        assert_eq!(
            info_field(&mut c, "replication", "master_failover_state"),
            "no-failover"
        );
        assert_eq!(info_u64(&mut rc, "stats", "sync_partial_ok"), 1);
        assert_eq!(info_u64(&mut rc, "stats", "sync_full"), 0);
        write_load(&mut rc, 9, 300);
        assert_converge(&r, &m, 2);
    }
}

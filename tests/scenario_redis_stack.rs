//! The `failover` fault scenario on the Redis stack (`--stack redis`), CI short form: each run
//! starts 3 redis-server (one master, two replicas), 3 redis-sentinel and twemproxy, whose
//! YAML the Sentinels' client-reconfig-script rewrites with the new master before restarting
//! it. Writes go through twemproxy at 500/s; the master is kill -9'd after 1 s (down-after
//! 500 ms). Checks the report is sane: writes acknowledged before the kill, writes resumed
//! through the restarted twemproxy, another master afterwards, and the count of lost
//! acknowledged writes reported (Redis has no mode that promises none, so it is not asserted).

mod common;

#[test]
fn failover_on_redis_sentinel_and_twemproxy() {
    let v = common::bench_scenario(
        "--scenario failover --stack redis --runs 1 --rate 500 --clients 4 --kill-after 1s \
         --settle 1s --down-after-ms 500 --failover-timeout-ms 3000",
        "\n(needs redis-server and nutcracker: apt-get install -y redis-server nutcracker)",
    );
    assert_eq!(v["scenario"], "failover");
    assert_eq!(v["stack"], "redis", "{v}");
    assert_eq!(v["write_concern"], "master", "{v}");
    let run = &v["runs"][0];
    let acked = run["acked"].as_u64().expect("acked");
    let after = run["acked_after_kill"].as_u64().expect("acked_after_kill");
    // About 1 s of writes at 500/s before the kill: the load really ran.
    assert!(
        acked - after > 200,
        "too few writes acknowledged before the kill: {v}"
    );
    // Writes resumed: twemproxy was restarted in front of the new master.
    assert!(after > 0, "writes never resumed through twemproxy: {v}");
    let window = run["window_ms"].as_f64().expect("window measured");
    assert!(window > 0.0, "{v}");
    assert_ne!(run["old_master"], run["new_master"], "{v}");
    let lost = run["lost"].as_u64().expect("lost reported");
    assert!(lost <= acked, "{v}");
    assert_eq!(v["median"]["lost"].as_f64(), Some(lost as f64), "{v}");
}

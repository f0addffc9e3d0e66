//! The `partition` fault scenario in its CI short form: `tandem bench --scenario partition`
//! starts its own deployment (3 nodes behind relays, 3 sentinels, the proxy), writes through
//! the proxy at 500/s, cuts the master off from the sentinels and the replicas after 1 s
//! (down-after 500 ms) until a failover has happened, heals the cut and checks every
//! acknowledged write on the new master. With `write_concern = replicated` it fails when any
//! acknowledged write is lost, when the old master did not rejoin as a replica, or when writes
//! did not go on; with `master` it checks that the report is consistent (the writes the old
//! master acknowledged during the cut are the only ones that can vanish).

mod common;

fn run_scenario(write_concern: &str) -> serde_json::Value {
    common::bench_scenario(
        &format!(
            "--scenario partition --runs 1 --rate 500 --clients 4 --kill-after 1s --settle 1s \
             --down-after-ms 500 --write-concern {write_concern}"
        ),
        "",
    )
}

fn count(run: &serde_json::Value, name: &str) -> u64 {
    run[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} missing: {run}"))
}

/// What both modes must show: the cut happened, a failover, a rejoin, writes went on.
fn check_common(v: &serde_json::Value) -> &serde_json::Value {
    assert_eq!(v["scenario"], "partition");
    let run = &v["runs"][0];
    // About 1 s of writes before the cut at 500/s: the load really ran.
    assert!(
        count(run, "acked") > 200,
        "too few writes acknowledged: {v}"
    );
    assert!(
        count(run, "connections_cut") > 0,
        "the cut closed no connection: {v}"
    );
    assert_ne!(run["old_master"], run["new_master"], "no failover: {v}");
    assert_eq!(run["rejoined"], true, "the old master did not rejoin: {v}");
    assert!(run["rejoin_ms"].as_f64().is_some(), "{v}");
    assert!(
        count(run, "acked_after_heal") > 0,
        "writes did not go on after the heal: {v}"
    );
    assert!(
        run["window_ms"].as_f64().is_some(),
        "writes never resumed: {v}"
    );
    // Only writes the old master acknowledged during the cut can vanish.
    assert!(count(run, "lost_of_old_master_acks") <= count(run, "acked_by_old_master_in_cut"));
    assert!(count(run, "lost_of_old_master_acks") <= count(run, "lost"));
    run
}

#[test]
fn partition_loses_no_acknowledged_write_with_replicated_write_concern() {
    let v = run_scenario("replicated");
    assert_eq!(v["write_concern"], "replicated");
    let run = check_common(&v);
    assert_eq!(
        count(run, "lost"),
        0,
        "acknowledged writes lost in replicated mode: {v}"
    );
    assert_eq!(v["median"]["lost"].as_f64(), Some(0.0));
}

#[test]
fn partition_report_is_consistent_with_master_write_concern() {
    let v = run_scenario("master");
    assert_eq!(v["write_concern"], "master");
    let run = check_common(&v);
    // Besides the old master's acknowledgements during the cut, only writes acknowledged
    // just before it (still on their way to the replicas when the links dropped) can vanish:
    // a handful at 500/s, never a lot.
    let outside = count(run, "lost") - count(run, "lost_of_old_master_acks");
    assert!(outside <= 50, "{outside} writes lost outside the cut: {v}");
}

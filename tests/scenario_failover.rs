//! The `failover` fault scenario in its CI short form: `tandem bench --scenario failover`
//! starts its own deployment (`tandem up`: 3 nodes, 3 sentinels, the proxy with
//! `write_concern = replicated`), writes through the proxy at 500/s, kill -9s the master after
//! 1 s (down-after 500 ms) and checks every acknowledged write on the new master. Fails when
//! any acknowledged write is lost, when the window was not measured, or writes never resumed.

mod common;

fn run_scenario(write_concern: &str) -> serde_json::Value {
    common::bench_scenario(
        &format!(
            "--scenario failover --runs 1 --rate 500 --clients 4 --kill-after 1s --settle 1s \
             --down-after-ms 500 --write-concern {write_concern}"
        ),
        "",
    )
}

#[test]
fn failover_loses_no_acknowledged_write_with_replicated_write_concern() {
    let v = run_scenario("replicated");
    assert_eq!(v["scenario"], "failover");
    assert_eq!(v["write_concern"], "replicated");
    let run = &v["runs"][0];
    let acked = run["acked"].as_u64().expect("acked");
    let lost = run["lost"].as_u64().expect("lost");
    assert_eq!(lost, 0, "acknowledged writes lost in replicated mode: {v}");
    // About 1 s of writes before the kill at 500/s: the load really ran.
    assert!(acked > 200, "too few writes acknowledged: {v}");
    let window = run["window_ms"]
        .as_f64()
        .expect("window measured (writes resumed)");
    assert!(window > 0.0, "{v}");
    assert!(
        run["acked_after_kill"].as_u64().expect("acked_after_kill") > 0,
        "writes never resumed: {v}"
    );
    assert_ne!(run["old_master"], run["new_master"], "{v}");
    // The summary agrees with the single run.
    assert_eq!(v["median"]["lost"].as_f64(), Some(0.0));
    assert_eq!(v["worst"]["window_ms"].as_f64(), Some(window));
}

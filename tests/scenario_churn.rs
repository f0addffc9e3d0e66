//! The `replica-churn` and `proxy-restart` fault scenarios in their CI short forms: each starts
//! its own deployment (`tandem up`) and runs for a few seconds.
//! - replica-churn: 2 kill -9/restart cycles of the replicas under reads through the proxy;
//!   fails when a read failed or returned data older than the client's own last write.
//! - proxy-restart: 2 kill -9/restart cycles of the proxy under writes; fails when an
//!   acknowledged write is lost, a read-back was stale, or clients did not continue.

mod common;

fn run_scenario(name: &str, extra: &str) -> serde_json::Value {
    common::bench_scenario(
        &format!(
            "--scenario {name} --runs 1 --cycles 2 --kill-after 700ms --settle 500ms \
             --down-after-ms 1000 {extra}"
        ),
        "",
    )
}

#[test]
fn replica_churn_reads_never_fail_nor_go_stale() {
    let v = run_scenario("replica-churn", "--rate 1000 --clients 8");
    assert_eq!(v["scenario"], "replica-churn");
    let run = &v["runs"][0];
    assert_eq!(run["restarts"].as_u64(), Some(2), "{v}");
    // About 1.9 s at 1000 ops/s, 90% reads: the load really ran.
    assert!(
        run["reads"].as_u64().expect("reads") > 500,
        "too few reads: {v}"
    );
    assert!(
        run["writes"].as_u64().expect("writes") > 50,
        "too few writes: {v}"
    );
    assert_eq!(run["reads_failed"].as_u64(), Some(0), "reads failed: {v}");
    assert_eq!(run["stale_reads"].as_u64(), Some(0), "stale reads: {v}");
    assert!(run["max_lag_bytes"].as_u64().is_some(), "{v}");
    assert_eq!(v["worst"]["stale_reads"].as_f64(), Some(0.0));
}

#[test]
fn proxy_restart_clients_continue_and_lose_no_acknowledged_write() {
    let v = run_scenario("proxy-restart", "--rate 400 --clients 4");
    assert_eq!(v["scenario"], "proxy-restart");
    let run = &v["runs"][0];
    assert_eq!(run["restarts"].as_u64(), Some(2), "{v}");
    assert!(
        run["acked"].as_u64().expect("acked") > 300,
        "too few writes: {v}"
    );
    assert_eq!(
        run["lost"].as_u64(),
        Some(0),
        "acknowledged writes lost: {v}"
    );
    assert_eq!(
        run["stale_reads"].as_u64(),
        Some(0),
        "stale read-backs: {v}"
    );
    let cont = run["continue_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("clients never continued: {v}"));
    assert!(cont > 0.0 && cont < 10_000.0, "{v}");
    assert!(v["errors"].is_object(), "{v}");
}

//! The `failover` fault scenario in its CI short form: `tandem bench --scenario failover`
//! starts its own deployment (`tandem up`: 3 nodes, 3 sentinels, the proxy with
//! `write_concern = replicated`), writes through the proxy at 500/s, kill -9s the master after
//! 1 s (down-after 500 ms) and checks every acknowledged write on the new master. Fails when
//! any acknowledged write is lost, when the window was not measured, or writes never resumed.

use std::process::Command;

fn run_scenario(write_concern: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["bench", "--scenario", "failover", "--json", "--runs", "1"])
        .args(["--rate", "500", "--clients", "4"])
        .args([
            "--kill-after",
            "1s",
            "--settle",
            "1s",
            "--down-after-ms",
            "500",
        ])
        .args(["--write-concern", write_concern])
        .output()
        .expect("cannot run tandem bench");
    assert!(
        out.status.success(),
        "tandem bench --scenario failover failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
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

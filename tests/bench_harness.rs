//! `tandem bench` itself, run as the real binary against a real redis-server and a real
//! `tandem node`: exact request counts (checked in the server's INFO commandstats), the read
//! ratio, sane percentiles, the open loop seeing a stall the closed loop hides, JSON output,
//! errors by kind, reconnection, several targets, and `--hdr-out`.

mod common;
use common::compare::{dbsize, on_both, q};
use common::{eventually, Proc};

use serde_json::Value;
use std::collections::HashMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs `tandem bench ARGS` (split at whitespace) to completion.
fn bench(args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("bench")
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run tandem bench")
}

/// Starts `tandem bench ARGS` in the background, output piped.
fn spawn_bench(args: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("bench")
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start tandem bench")
}

/// Runs `tandem bench ARGS --json`, checks it succeeded, and parses its output.
fn bench_json(args: &str) -> Value {
    let out = bench(&format!("{args} --json"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tandem bench {args} failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    // Not a terminal: no progress line, nothing on stderr.
    assert_eq!(stderr, "", "stderr should be silent when not a terminal");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("invalid JSON ({e}): {stdout}"))
}

/// The first target's report.
fn first(doc: &Value) -> &Value {
    &doc["targets"][0]
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// `calls` per command from INFO commandstats (lowercase names).
fn calls(p: &Proc) -> HashMap<String, u64> {
    let info: String = q(&mut p.conn(), &["INFO", "commandstats"]);
    info.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cmdstat_")?;
            let (name, fields) = rest.split_once(':')?;
            let calls = fields
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

fn calls_of(p: &Proc, cmd: &str) -> u64 {
    calls(p).get(cmd).copied().unwrap_or(0)
}

/// p50 <= p90 <= p99 <= p99.9 <= max, all above zero.
fn assert_sane_latency(what: &str, l: &Value) {
    let p = ["p50", "p90", "p99", "p999", "max"].map(|k| f(&l[k]));
    assert!(p[0] > 0.0, "{what}: p50 must be > 0: {l}");
    for w in p.windows(2) {
        assert!(w[0] <= w[1], "{what}: percentiles out of order: {l}");
    }
    assert!(
        f(&l["mean"]) > 0.0 && f(&l["mean"]) <= p[4],
        "{what}: mean: {l}"
    );
}

#[test]
fn request_count_is_exact() {
    on_both(|name, p| {
        let addr = p.addr();
        // 1001 is not a multiple of clients * pipeline: the last batches are partial.
        let doc = bench_json(&format!(
            "--target {addr} --workload set --requests 1001 --clients 7 --pipeline 3"
        ));
        let r = first(&doc);
        assert_eq!(calls_of(p, "set"), 1001, "{name}: SET calls");
        assert_eq!(u(&r["total"]["requests"]), 1001, "{name}");
        assert_eq!(u(&r["total"]["replies"]), 1001, "{name}");
        assert_eq!(u(&r["total"]["errors"]), 0, "{name}");
        assert_eq!(u(&r["commands"]["SET"]["requests"]), 1001, "{name}");
        // Open loop with a request limit is exact too.
        let doc = bench_json(&format!(
            "--target {addr} --workload incr --requests 500 --clients 3 --rate 2000 --keys 1"
        ));
        assert_eq!(u(&first(&doc)["total"]["replies"]), 500, "{name}");
        assert_eq!(calls_of(p, "incr"), 500, "{name}: INCR calls");
        let n: i64 = q(&mut p.conn(), &["GET", "counter:000000000000"]);
        assert_eq!(n, 500, "{name}: the counter saw every INCR once");
    });
}

#[test]
fn read_ratio_is_roughly_honoured() {
    on_both(|name, p| {
        let doc = bench_json(&format!(
            "--target {} --workload getset --read-ratio 0.8 --requests 4000 --clients 4 \
             --pipeline 8",
            p.addr()
        ));
        let (gets, sets) = (calls_of(p, "get"), calls_of(p, "set"));
        assert_eq!(gets + sets, 4000, "{name}");
        let share = gets as f64 / 4000.0;
        assert!((0.75..=0.85).contains(&share), "{name}: GET share {share}");
        let r = first(&doc);
        assert_eq!(u(&r["commands"]["GET"]["requests"]), gets, "{name}");
        assert_eq!(u(&r["commands"]["SET"]["requests"]), sets, "{name}");
        assert_eq!(f(&r["read_ratio"]), 0.8);
    });
}

#[test]
fn percentiles_and_json_fields_are_sane() {
    let redis = Proc::redis_server(&[]);
    let doc = bench_json(&format!(
        "--target {} --workload mixed --duration 1s --clients 8 --pipeline 4 --seed 42 \
         --distribution zipf --value-size 100",
        redis.addr()
    ));
    let r = first(&doc);
    assert_eq!(r["target"], redis.addr());
    assert_eq!(r["workload"], "mixed");
    assert_eq!(r["mode"], "closed");
    assert_eq!(u(&r["clients"]), 8);
    assert_eq!(u(&r["pipeline"]), 4);
    assert!(r["rate"].is_null());
    assert_eq!(r["distribution"], "zipf");
    assert_eq!(u(&r["value_size"]), 100);
    assert_eq!(u(&r["seed"]), 42);
    assert_eq!(f(&r["duration_s"]), 1.0);
    let elapsed = f(&r["elapsed_s"]);
    assert!((0.9..10.0).contains(&elapsed), "elapsed {elapsed}");
    assert!(f(&r["total"]["ops_per_sec"]) > 0.0);
    assert_sane_latency("all", &r["total"]["latency_ms"]);
    let commands = r["commands"].as_object().expect("commands map");
    for name in ["GET", "SET", "INCR", "LPUSH", "RPOP", "HSET", "HGET"] {
        let c = &commands[name];
        assert!(u(&c["replies"]) > 0, "{name} never sent");
        assert_sane_latency(name, &c["latency_ms"]);
        assert_eq!(
            calls_of(&redis, &name.to_lowercase()),
            u(&c["requests"]),
            "{name}"
        );
    }
    let sum: u64 = commands.values().map(|c| u(&c["requests"])).sum();
    assert_eq!(sum, u(&r["total"]["requests"]));
    assert_eq!(u(&r["total"]["errors"]), 0);
    assert!(r["errors_by_kind"]
        .as_object()
        .expect("errors map")
        .is_empty());
}

#[test]
fn open_loop_sees_a_stall_the_closed_loop_hides() {
    let redis = Proc::redis_server(&["--enable-debug-command", "yes"]);
    let addr = redis.addr();
    // Runs the load in the background, stalls the server for 1 s with DEBUG SLEEP once the
    // load is under way, and returns the report.
    let stalled_run = |extra: &str| -> Value {
        let before = calls_of(&redis, "get");
        let child = spawn_bench(&format!(
            "--target {addr} --workload get --clients 4 --duration 3s --json {extra}"
        ));
        assert!(
            eventually(Duration::from_secs(10), || calls_of(&redis, "get")
                > before + 500),
            "the load never started"
        );
        let ok: String = q(&mut redis.conn(), &["DEBUG", "SLEEP", "1"]);
        assert_eq!(ok, "OK");
        let out = child.wait_with_output().expect("bench output");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };

    let open = stalled_run("--rate 2000");
    let l = &first(&open)["total"]["latency_ms"];
    assert_eq!(first(&open)["mode"], "open");
    // About a third of the requests were due during the stall, waiting up to 1 s each.
    assert!(
        f(&l["p99"]) >= 800.0,
        "open loop p99 should show the stall: {l}"
    );
    assert!(
        f(&l["max"]) >= 900.0,
        "open loop max should show the stall: {l}"
    );

    let closed = stalled_run("");
    let l = &first(&closed)["total"]["latency_ms"];
    // Only the 4 requests in flight saw the stall: it shows in the max, not the percentiles.
    assert!(f(&l["max"]) >= 900.0, "closed loop max: {l}");
    assert!(f(&l["p90"]) < 300.0, "closed loop p90 hides the stall: {l}");
}

#[test]
fn errors_are_counted_by_kind() {
    on_both(|name, p| {
        // LPUSH on a key that holds a string: every reply is WRONGTYPE.
        let _: () = q(&mut p.conn(), &["SET", "list:000000000000", "string"]);
        let doc = bench_json(&format!(
            "--target {} --workload lpush --keys 1 --requests 200 --clients 2",
            p.addr()
        ));
        let r = first(&doc);
        assert_eq!(u(&r["errors_by_kind"]["WRONGTYPE"]), 200, "{name}: {r}");
        assert_eq!(u(&r["total"]["errors"]), 200, "{name}");
        assert_eq!(u(&r["total"]["replies"]), 200, "{name}");
    });
}

#[test]
fn password_errors_are_counted_or_fail_the_run() {
    on_both_with_password(|name, p| {
        let addr = p.addr();
        // No password: every command is refused with NOAUTH.
        let doc = bench_json(&format!("--target {addr} --requests 100 --clients 2"));
        assert_eq!(u(&first(&doc)["errors_by_kind"]["NOAUTH"]), 100, "{name}");
        // The right password: no errors.
        let doc = bench_json(&format!(
            "--target {addr} --requests 100 --clients 2 --password s3cret"
        ));
        assert_eq!(u(&first(&doc)["total"]["errors"]), 0, "{name}");
        // A wrong password: the run fails, saying why.
        let out = bench(&format!(
            "--target {addr} --requests 100 --clients 2 --password wrong"
        ));
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refused AUTH") && err.contains("WRONGPASS"),
            "{name}: {err}"
        );
    });
}

fn on_both_with_password(f: impl Fn(&str, &Proc)) {
    common::compare::on_both_with(&["--requirepass", "s3cret"], f)
}

#[test]
fn unreachable_target_and_bad_flags_fail_clearly() {
    let port = common::free_port();
    let out = bench(&format!("--target 127.0.0.1:{port} --requests 10"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1"), "{err}");
    let out = bench("--read-ratio 2");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--read-ratio"));
}

#[test]
fn connections_killed_mid_run_are_reopened() {
    let redis = Proc::redis_server(&[]);
    let addr = redis.addr();
    let child = spawn_bench(&format!(
        "--target {addr} --workload set --clients 4 --duration 2s --json"
    ));
    assert!(eventually(Duration::from_secs(10), || calls_of(
        &redis, "set"
    ) > 200));
    let killed: i64 = q(&mut redis.conn(), &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed >= 4, "killed {killed}");
    let after_kill = calls_of(&redis, "set");
    let out = child.wait_with_output().expect("bench output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let r = first(&doc);
    // The load went on after the kill, on new connections.
    assert!(calls_of(&redis, "set") > after_kill + 100);
    // A SET the server ran just before the kill may have lost its reply: it is counted as
    // lost, never as answered.
    let server_calls = calls_of(&redis, "set");
    assert!(u(&r["commands"]["SET"]["replies"]) <= server_calls);
    assert!(u(&r["commands"]["SET"]["requests"]) >= server_calls);
    let info: String = q(&mut redis.conn(), &["INFO", "stats"]);
    let conns: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_connections_received");
    assert!(conns >= 8, "the 4 connections were reopened: {conns}");
    // Requests in flight at the kill, if any, count as lost, under a kind.
    let kinds = r["errors_by_kind"].as_object().expect("errors map");
    for kind in kinds.keys() {
        assert!(
            ["closed", "io"].contains(&kind.as_str()),
            "unexpected kind {kind}"
        );
    }
}

#[test]
fn several_targets_side_by_side_and_hdr_out() {
    let redis = Proc::redis_server(&[]);
    let node = Proc::node(&[]);
    let hdr = node.path().join("latency.hlog");
    let args = format!(
        "--target {} --target {} --requests 2000 --clients 4 --hdr-out {}",
        redis.addr(),
        node.addr(),
        hdr.display()
    );
    // Tables: one per target, then the comparison.
    let out = bench(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("== {}", redis.addr())), "{text}");
    assert!(text.contains(&format!("== {}", node.addr())), "{text}");
    assert!(text.contains("ratios are to the first target"), "{text}");
    let ops_line = text
        .lines()
        .find(|l| l.starts_with("ops/s"))
        .expect("ops/s row");
    assert!(ops_line.contains('x'), "ratio in {ops_line}");
    // The histograms file: V2-encoded histograms tagged target/command, counts matching.
    let doc = bench_json(&args);
    let logged = tandem_bench::histogram::read_hdr_log(&std::fs::read(&hdr).expect("hdr file"))
        .expect("valid interval log");
    assert_eq!(doc["targets"].as_array().map(|a| a.len()), Some(2));
    for t in doc["targets"].as_array().expect("targets") {
        let target = t["target"].as_str().expect("target");
        for (cmd, c) in t["commands"].as_object().expect("commands") {
            let tag = format!("{target}/{cmd}");
            let (_, h) = logged
                .iter()
                .find(|(t, _)| *t == tag)
                .unwrap_or_else(|| panic!("no histogram tagged {tag}"));
            assert_eq!(h.len(), u(&c["replies"]), "{tag}");
            let p99_ms = h.value_at_quantile(0.99) as f64 / 1000.0;
            assert!((p99_ms - f(&c["latency_ms"]["p99"])).abs() < 0.01, "{tag}");
        }
        let (_, all) = logged
            .iter()
            .find(|(t, _)| *t == format!("{target}/all"))
            .expect("all histogram");
        assert_eq!(all.len(), 2000);
    }
}

#[test]
fn resp3_and_key_distributions() {
    on_both(|name, p| {
        let doc = bench_json(&format!(
            "--target {} --resp3 --workload mixed --requests 500 --clients 2 --pipeline 5",
            p.addr()
        ));
        assert_eq!(u(&first(&doc)["total"]["errors"]), 0, "{name}: {doc}");
        assert_eq!(u(&first(&doc)["total"]["replies"]), 500, "{name}");
    });
    // Zipf concentrates on few keys; uniform spreads over most of them.
    let redis = Proc::redis_server(&[]);
    let mut c = redis.conn();
    let distinct = |dist: &str, c: &mut redis::Connection| {
        let _: () = q(c, &["FLUSHALL"]);
        bench_json(&format!(
            "--target {} --workload set --keys 1000 --requests 3000 --clients 2 \
             --distribution {dist} --zipf-exponent 1.2",
            redis.addr()
        ));
        dbsize(c)
    };
    let uniform = distinct("uniform", &mut c);
    let zipf = distinct("zipf", &mut c);
    assert!(uniform > 900, "uniform: {uniform} distinct keys");
    assert!(zipf * 3 < uniform * 2, "zipf {zipf} vs uniform {uniform}");
}

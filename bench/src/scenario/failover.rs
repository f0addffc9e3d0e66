//! The `failover` scenario: writes with unique keys through the proxy at a fixed rate from a
//! few clients, records every acknowledged key, kill -9s the master (pid from its
//! `INFO server` `process_id`), keeps writing until writes succeed again and a settle period
//! has passed, then checks every acknowledged key on the new master (found via the sentinels).
//! Reports per run: the unavailability window (the longest silence between acknowledgements
//! that ends after the kill: last ack before the outage to the first after), writes acknowledged and failed, acknowledged writes missing on the new master, and
//! stale reads (a client's read-back of its own last acknowledged write that found nothing).
//! Without `--sentinel` every run starts its own deployment of `--stack` (`tandem up`, or
//! redis-server + redis-sentinel + twemproxy) in its own process group on free ports in a temp
//! dir, and kills the whole group after.

use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::writer::{acked_keys, window_ms, Writers};
use super::{
    count_missing, info_field, master_addr, summary, wait_ready, DeployOptions, Deployment,
};
#[cfg(test)]
use super::{field, median};
use crate::BenchArgs;
#[cfg(test)]
use tandem_protocol::Reply;

/// Prefix of the scenario's keys.
const PREFIX: &str = "failover";

/// Flags of one scenario invocation, checked.
#[derive(Debug, Clone)]
pub struct Options {
    pub proxy: Option<String>,
    pub sentinels: Vec<String>,
    pub clients: usize,
    pub rate: f64,
    pub runs: usize,
    pub kill_after: Duration,
    pub settle: Duration,
    pub deploy: DeployOptions,
}

impl Options {
    pub fn from_args(a: &BenchArgs) -> Result<Options> {
        let rate = super::rate(a, 1000.0, "writes")?;
        if a.runs == 0 {
            bail!("--runs: must be at least 1");
        }
        if a.clients == 0 {
            bail!("--clients: must be at least 1");
        }
        let deploy = DeployOptions::from_args(a)?;
        let external = !a.sentinels.is_empty();
        Ok(Options {
            proxy: external.then(|| a.targets[0].clone()),
            sentinels: a.sentinels.clone(),
            // Defaults to 50 for plain loads; a failover needs only a few writers.
            clients: a.clients.min(64),
            rate,
            runs: a.runs,
            kill_after: a.kill_after,
            settle: a.settle,
            deploy,
        })
    }
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The longest gap between acknowledgements that ends after the kill (last ack before the
    /// outage to the first after), in ms; None when writes never resumed.
    pub window_ms: Option<f64>,
    pub acked: u64,
    /// Acknowledged writes sent after the kill.
    pub acked_after_kill: u64,
    pub failed: u64,
    /// Acknowledged writes missing on the new master.
    pub lost: u64,
    pub reads: u64,
    pub stale_reads: u64,
    pub old_master: String,
    pub new_master: String,
}

pub fn main(args: &BenchArgs) -> ExitCode {
    let opts = match Options::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tandem bench: {e}");
            return ExitCode::from(2);
        }
    };
    let results = match super::run_all(
        args,
        "failover",
        opts.runs,
        |i| run_once(&opts, i),
        |r: &RunResult| {
            format!(
                "window {} ms, acked {}, lost {}, stale reads {}",
                r.window_ms.map(|w| format!("{w:.0}")).unwrap_or("-".into()),
                r.acked,
                r.lost,
                r.stale_reads
            )
        },
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if args.json {
        println!("{}", json(&opts, &results));
    } else {
        print!("{}", table(&opts, &results));
    }
    ExitCode::SUCCESS
}

async fn run_once(o: &Options, run: usize) -> Result<RunResult> {
    let dep = match &o.proxy {
        Some(p) => {
            let d = Deployment::external(p, &o.sentinels);
            wait_ready(&d).await?;
            d
        }
        None => Deployment::start(&o.deploy).await?,
    };
    let old_master = master_addr(&dep.sentinels).await?;
    let pid: i32 = info_field(&old_master, "server", "process_id")
        .await?
        .parse()
        .context("process_id is not a number")?;

    let writers = Writers::start(&dep.proxy, PREFIX, run, o.clients, o.rate);
    tokio::time::sleep(o.kill_after).await;
    let killed_at = writers.mark_fault();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("cannot kill the master (pid {pid})"))?;
    tracing::info!(pid, %old_master, "killed the master");
    // Writes must resume within the failover timeout (plus detection and slack).
    let resume_deadline = killed_at
        + Duration::from_millis(o.deploy.down_after_ms + o.deploy.failover_timeout_ms)
        + Duration::from_secs(10);
    writers.wait_resumed(resume_deadline).await;
    tokio::time::sleep(o.settle).await;
    let acked_after_kill = writers.acked_after_fault();
    let logs = writers.stop().await?;

    // The failover has settled when the sentinels name another master.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_master = loop {
        match master_addr(&dep.sentinels).await {
            Ok(m) if m != old_master => break m,
            _ if Instant::now() > deadline => {
                bail!("the sentinels still name {old_master} as master 30 s after the kill")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let keys: Vec<String> = acked_keys(PREFIX, run, &logs).map(|(k, _)| k).collect();
    let lost = count_missing(&new_master, &keys).await?;
    let window_ms = window_ms(&logs, killed_at);
    dep.check_no_panics()?;
    Ok(RunResult {
        window_ms,
        acked: keys.len() as u64,
        acked_after_kill,
        failed: logs.iter().map(|l| l.failed.len() as u64).sum(),
        lost,
        reads: logs.iter().map(|l| l.reads).sum(),
        stale_reads: logs.iter().map(|l| l.stale).sum(),
        old_master,
        new_master,
    })
}

/// (name, value per run, whether a larger value is worse).
fn metrics(results: &[RunResult]) -> Vec<(&'static str, Vec<f64>, bool)> {
    let col = |f: fn(&RunResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    vec![
        (
            "unavailability window (ms)",
            col(|r| r.window_ms.unwrap_or(f64::INFINITY)),
            true,
        ),
        ("writes acknowledged", col(|r| r.acked as f64), false),
        (
            "  of them sent after the kill",
            col(|r| r.acked_after_kill as f64),
            false,
        ),
        ("writes failed", col(|r| r.failed as f64), true),
        ("acknowledged writes lost", col(|r| r.lost as f64), true),
        ("read-backs", col(|r| r.reads as f64), false),
        ("stale reads", col(|r| r.stale_reads as f64), true),
    ]
}

/// The result table: median and worst over the runs.
pub fn table(o: &Options, results: &[RunResult]) -> String {
    let mut t = format!(
        "\nscenario failover, stack {} ({}): {} run(s), {} writes/s from {} clients, write concern {}, kill -9 after {:?}, down-after {} ms\n\n",
        o.deploy.stack.name(),
        o.deploy.stack.describe(),
        results.len(),
        o.rate,
        o.clients,
        o.deploy.write_concern,
        o.kill_after,
        o.deploy.down_after_ms
    );
    t.push_str(&format!("  {:<28} {:>12} {:>12}\n", "", "median", "worst"));
    for (name, v, larger_worse) in metrics(results) {
        let (m, w) = summary(&v, larger_worse);
        let f = |x: f64| {
            if x.is_infinite() {
                "never".to_string()
            } else if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        };
        t.push_str(&format!("  {:<28} {:>12} {:>12}\n", name, f(m), f(w)));
    }
    t
}

/// The runs, medians and worsts as JSON.
pub fn json(o: &Options, results: &[RunResult]) -> String {
    let mut median = serde_json::Map::new();
    let mut worst = serde_json::Map::new();
    let keys = [
        "window_ms",
        "acked",
        "acked_after_kill",
        "failed",
        "lost",
        "reads",
        "stale_reads",
    ];
    for (k, (_, v, larger_worse)) in keys.iter().zip(metrics(results)) {
        let (m, w) = summary(&v, larger_worse);
        let num = |x: f64| {
            serde_json::Number::from_f64(x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null)
        };
        median.insert(k.to_string(), num(m));
        worst.insert(k.to_string(), num(w));
    }
    serde_json::json!({
        "scenario": "failover",
        "stack": o.deploy.stack,
        "rate": o.rate,
        "clients": o.clients,
        "write_concern": o.deploy.write_concern,
        "kill_after_ms": o.kill_after.as_millis() as u64,
        "down_after_ms": o.deploy.down_after_ms,
        "failover_timeout_ms": o.deploy.failover_timeout_ms,
        "runs": results,
        "median": median,
        "worst": worst,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_worst() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(summary(&[5.0, 1.0, 9.0], true), (5.0, 9.0));
        assert_eq!(summary(&[5.0, 1.0, 9.0], false), (5.0, 1.0));
    }

    #[test]
    fn sentinel_fields_in_both_shapes() {
        let arr = Reply::Array(vec![Reply::bulk_str("num-slaves"), Reply::bulk_str("2")]);
        assert_eq!(field(&arr, "num-slaves").as_deref(), Some("2"));
        let map = Reply::Map(vec![(Reply::bulk_str("quorum"), Reply::bulk_str("2"))]);
        assert_eq!(field(&map, "quorum").as_deref(), Some("2"));
        assert_eq!(field(&map, "nope"), None);
    }
}

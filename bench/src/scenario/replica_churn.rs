//! The `replica-churn` scenario: a read-heavy load through the proxy (each client writes its
//! own few keys with increasing values, one write in ten operations, and reads them back; the
//! proxy's read-your-writes is on by default) while the replicas are kill -9'd (pid from
//! `INFO server` `process_id`) and restarted with the same port and directory, one per cycle,
//! `--cycles` times. Reports per run: reads done, reads failed (error or no reply: must be 0),
//! stale reads (a value older than the client's own last acknowledged write of that key:
//! must be 0), writes done and failed, and the largest replication lag the master reported
//! (bytes behind its offset and seconds since the last ACK) while it ran.
//! It always starts its own deployment of `--stack` and restarts replicas through
//! [`super::Deployment::restart_replica`]; the restarted replicas join its process group so
//! they die with it. Twemproxy (`--stack redis`) reads from the master only.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_protocol::client::Client;
use tandem_protocol::Reply;

use super::{
    call, master_addr, render_table, reply_error_kind, request, summary_json, text, Deployment,
    Metric,
};
use crate::BenchArgs;

/// Keys each client writes and reads.
const KEYS_PER_CLIENT: u64 = 8;
/// One operation in this many is a write.
const WRITE_EVERY: u64 = 10;

/// Flags of one invocation, checked.
pub type Options = super::CycleOptions;

/// Checks the flags of one invocation.
pub fn options(a: &BenchArgs) -> Result<Options> {
    super::CycleOptions::new(
        a,
        2000.0,
        "operations",
        "replica-churn restarts replicas itself",
        false,
    )
}

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunResult {
    pub reads: u64,
    pub reads_failed: u64,
    pub stale_reads: u64,
    pub writes: u64,
    pub writes_failed: u64,
    /// Replica restarts done.
    pub restarts: u64,
    /// Longest time from a kill to the restarted replica's link being up again, ms.
    pub relink_ms: f64,
    /// Largest `master_repl_offset - slave offset` the master reported.
    pub max_lag_bytes: u64,
    /// Largest `lag` (seconds since the replica's last ACK) the master reported.
    pub max_lag_s: u64,
    /// Failed operations by kind.
    pub errors: BTreeMap<String, u64>,
}

pub fn main(args: &BenchArgs) -> ExitCode {
    let opts = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tandem bench: {e}");
            return ExitCode::from(2);
        }
    };
    let results = match super::run_all(
        args,
        "replica-churn",
        opts.runs,
        |i| run_once(&opts, i),
        |r: &RunResult| {
            format!(
                "reads {}, failed {}, stale {}, max lag {} B / {} s",
                r.reads, r.reads_failed, r.stale_reads, r.max_lag_bytes, r.max_lag_s
            )
        },
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let metrics = metrics(&results);
    if args.json {
        let (median, worst) = summary_json(&KEYS, &metrics);
        println!(
            "{}",
            serde_json::json!({
                "scenario": "replica-churn",
                "stack": opts.deploy.stack,
                "rate": opts.rate,
                "clients": opts.clients,
                "cycles": opts.cycles,
                "runs": results,
                "median": median,
                "worst": worst,
            })
        );
    } else {
        let title = format!(
            "scenario replica-churn, stack {} ({}): {} run(s), {} ops/s ({}% reads) from {} clients, {} replica kill -9/restart cycle(s) every {:?}",
            opts.deploy.stack.name(),
            opts.deploy.stack.describe(),
            results.len(),
            opts.rate,
            100 - 100 / WRITE_EVERY,
            opts.clients,
            opts.cycles,
            opts.kill_after
        );
        print!("{}", render_table(&title, &metrics));
    }
    ExitCode::SUCCESS
}

const KEYS: [&str; 9] = [
    "reads",
    "reads_failed",
    "stale_reads",
    "writes",
    "writes_failed",
    "restarts",
    "relink_ms",
    "max_lag_bytes",
    "max_lag_s",
];

fn metrics(results: &[RunResult]) -> Vec<Metric> {
    let col = |f: fn(&RunResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    vec![
        ("reads done", col(|r| r.reads as f64), false),
        ("reads failed", col(|r| r.reads_failed as f64), true),
        ("stale reads", col(|r| r.stale_reads as f64), true),
        ("writes done", col(|r| r.writes as f64), false),
        ("writes failed", col(|r| r.writes_failed as f64), true),
        ("replica restarts", col(|r| r.restarts as f64), false),
        ("kill to relinked (ms)", col(|r| r.relink_ms), true),
        (
            "max lag observed (bytes)",
            col(|r| r.max_lag_bytes as f64),
            true,
        ),
        ("max lag observed (s)", col(|r| r.max_lag_s as f64), true),
    ]
}

#[derive(Default)]
struct ClientLog {
    reads: u64,
    reads_failed: u64,
    stale: u64,
    writes: u64,
    writes_failed: u64,
    errors: BTreeMap<String, u64>,
}

/// One client: an operation every `interval` (open loop); writes go round its keys with an
/// increasing value, reads pick one of its written keys and compare with the last ack.
async fn client(
    proxy: String,
    run: usize,
    id: usize,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut conn: Option<Client> = None;
    // last[k]: the value of the client's last acknowledged write of key k (0: none yet).
    let mut last = [0u64; KEYS_PER_CLIENT as usize];
    let mut next = tokio::time::Instant::now() + interval.mul_f64(id as f64 / 8.0);
    let mut op = 0u64;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += interval;
        let write = op.is_multiple_of(WRITE_EVERY) || last.iter().all(|v| *v == 0);
        op += 1;
        let k = (op.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % KEYS_PER_CLIENT;
        let key = format!("churn:{run}:{id}:{k}");
        if write {
            seq += 1;
            let v = seq.to_string();
            match request(&mut conn, &proxy, &["SET", &key, &v]).await {
                Ok(Reply::Ok) => {
                    log.writes += 1;
                    last[k as usize] = seq;
                }
                Ok(r) => {
                    log.writes_failed += 1;
                    *log.errors
                        .entry(format!("SET {}", reply_error_kind(&r)))
                        .or_default() += 1;
                }
                Err(kind) => {
                    log.writes_failed += 1;
                    *log.errors.entry(format!("SET {kind}")).or_default() += 1;
                }
            }
            continue;
        }
        let want = last[k as usize];
        let got = match request(&mut conn, &proxy, &["GET", &key]).await {
            Ok(Reply::Nil) => Some(0),
            Ok(Reply::Bulk(b)) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse::<u64>().ok()),
            Ok(r) => {
                *log.errors
                    .entry(format!("GET {}", reply_error_kind(&r)))
                    .or_default() += 1;
                log.reads_failed += 1;
                continue;
            }
            Err(kind) => {
                *log.errors.entry(format!("GET {kind}")).or_default() += 1;
                log.reads_failed += 1;
                continue;
            }
        };
        log.reads += 1;
        // Older than the client's own last acknowledged write (or garbage): stale.
        if got.is_none_or(|g| g < want) {
            log.stale += 1;
        }
    }
    log
}

/// Polls the master's `INFO replication` and keeps the largest lag seen.
async fn lag_monitor(
    master: String,
    stop: Arc<AtomicBool>,
    max_bytes: Arc<AtomicU64>,
    max_s: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(r) = call(&master, &["INFO", "replication"]).await {
            if let Some(body) = text(&r) {
                let (bytes, secs) = lag_of(&body);
                max_bytes.fetch_max(bytes, Ordering::Relaxed);
                max_s.fetch_max(secs, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The largest lag of the online replicas in a master's `INFO replication`: (bytes behind
/// `master_repl_offset`, seconds since the last ACK).
fn lag_of(info: &str) -> (u64, u64) {
    let offset = info
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (mut bytes, mut secs) = (0, 0);
    for l in info
        .lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
    {
        let get = |name: &str| {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(o) = get("offset") {
            bytes = bytes.max(offset.saturating_sub(o));
        }
        if let Some(s) = get("lag") {
            secs = secs.max(s);
        }
    }
    (bytes, secs)
}

async fn run_once(o: &Options, run: usize) -> Result<RunResult> {
    let mut dep = Deployment::start(&o.deploy).await?;
    let master = master_addr(&dep.sentinels).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let max_bytes = Arc::new(AtomicU64::new(0));
    let max_s = Arc::new(AtomicU64::new(0));
    let monitor = tokio::spawn(lag_monitor(
        master.clone(),
        stop.clone(),
        max_bytes.clone(),
        max_s.clone(),
    ));
    let interval = Duration::from_secs_f64(o.clients as f64 / o.rate);
    let clients: Vec<_> = (0..o.clients)
        .map(|id| tokio::spawn(client(dep.proxy.clone(), run, id, interval, stop.clone())))
        .collect();
    let mut relink_ms = 0f64;
    let mut outcome = Ok(());
    for cycle in 0..o.cycles {
        tokio::time::sleep(o.kill_after).await;
        // Nodes 1 and 2 are the replicas, in turn.
        let i = 1 + cycle % 2;
        let t = Instant::now();
        match dep.restart_replica(i, &master).await {
            Ok(()) => relink_ms = relink_ms.max(t.elapsed().as_secs_f64() * 1000.0),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    tokio::time::sleep(o.settle).await;
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for c in clients {
        logs.push(c.await.context("a client task failed")?);
    }
    let _ = monitor.await;
    let panics = dep.check_no_panics();
    drop(dep);
    outcome?;
    panics?;
    let mut errors = BTreeMap::new();
    for l in &logs {
        for (k, v) in &l.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    Ok(RunResult {
        reads: logs.iter().map(|l| l.reads).sum(),
        reads_failed: logs.iter().map(|l| l.reads_failed).sum(),
        stale_reads: logs.iter().map(|l| l.stale).sum(),
        writes: logs.iter().map(|l| l.writes).sum(),
        writes_failed: logs.iter().map(|l| l.writes_failed).sum(),
        restarts: o.cycles as u64,
        relink_ms,
        max_lag_bytes: max_bytes.load(Ordering::Relaxed),
        max_lag_s: max_s.load(Ordering::Relaxed),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_of_online_replicas_only() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7002,state=online,offset=900,lag=1\r\n\
            slave1:ip=127.0.0.1,port=7003,state=wait_bgsave,offset=0,lag=7\r\n\
            master_repl_offset:1000\r\n";
        assert_eq!(lag_of(info), (100, 1));
        assert_eq!(lag_of("role:master\r\nmaster_repl_offset:5\r\n"), (0, 0));
    }
}

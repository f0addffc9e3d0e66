//! The `proxy-restart` scenario: clients write unique keys through a proxy at a fixed rate and
//! read each acknowledged write back; the proxy is kill -9'd and started again on the same
//! port with the same flags, `--cycles` times. Clients reconnect on their own and continue.
//! Reports per run: the time until clients continued (kill to the moment every client had an
//! acknowledged write sent after the kill; worst over the cycles), writes acknowledged,
//! acknowledged writes lost (missing on the master afterwards: must be 0), stale read-backs,
//! and errors seen by kind.
//! It starts its own deployment of `--stack` with a restartable proxy (Tandem: a `tandem proxy`
//! of its own beside `tandem up`'s; Redis: twemproxy, restarted with its YAML), and restarts
//! it through [`super::Deployment::restart_proxy`].

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_protocol::client::Client;
use tandem_protocol::Reply;

use super::{
    count_missing, master_addr, render_table, reply_error_kind, request, summary_json, Deployment,
    Metric,
};
use crate::BenchArgs;

/// Flags of one invocation, checked.
pub type Options = super::CycleOptions;

/// Checks the flags of one invocation.
pub fn options(a: &BenchArgs) -> Result<Options> {
    super::CycleOptions::new(
        a,
        1000.0,
        "writes",
        "proxy-restart restarts the proxy itself",
        true,
    )
}

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunResult {
    /// Worst over the cycles of: kill to every client having an acknowledged write sent after
    /// the kill, in ms; None when some client never continued.
    pub continue_ms: Option<f64>,
    pub acked: u64,
    pub failed: u64,
    /// Acknowledged writes missing on the master afterwards.
    pub lost: u64,
    pub reads: u64,
    pub stale_reads: u64,
    pub restarts: u64,
    /// Failed requests by kind.
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
        "proxy-restart",
        opts.runs,
        |i| run_once(&opts, i),
        |r: &RunResult| {
            format!(
                "continued after {} ms, acked {}, lost {}, errors {:?}",
                r.continue_ms
                    .map(|w| format!("{w:.0}"))
                    .unwrap_or("-".into()),
                r.acked,
                r.lost,
                r.errors
            )
        },
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let metrics = metrics(&results);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for r in &results {
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    if args.json {
        let (median, worst) = summary_json(&KEYS, &metrics);
        println!(
            "{}",
            serde_json::json!({
                "scenario": "proxy-restart",
                "stack": opts.deploy.stack,
                "rate": opts.rate,
                "clients": opts.clients,
                "cycles": opts.cycles,
                "write_concern": opts.deploy.write_concern,
                "runs": results,
                "median": median,
                "worst": worst,
                "errors": errors,
            })
        );
    } else {
        let title = format!(
            "scenario proxy-restart, stack {} ({}): {} run(s), {} writes/s from {} clients, write concern {}, {} proxy kill -9/restart cycle(s) every {:?}",
            opts.deploy.stack.name(),
            opts.deploy.stack.describe(),
            results.len(),
            opts.rate,
            opts.clients,
            opts.deploy.write_concern,
            opts.cycles,
            opts.kill_after
        );
        let mut t = render_table(&title, &metrics);
        t.push_str("\n  errors by kind (all runs):\n");
        if errors.is_empty() {
            t.push_str("    none\n");
        }
        for (k, v) in &errors {
            t.push_str(&format!("    {k:<40} {v:>8}\n"));
        }
        print!("{t}");
    }
    ExitCode::SUCCESS
}

const KEYS: [&str; 7] = [
    "continue_ms",
    "acked",
    "failed",
    "lost",
    "reads",
    "stale_reads",
    "restarts",
];

fn metrics(results: &[RunResult]) -> Vec<Metric> {
    let col = |f: fn(&RunResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    vec![
        (
            "time until clients continued (ms)",
            col(|r| r.continue_ms.unwrap_or(f64::INFINITY)),
            true,
        ),
        ("writes acknowledged", col(|r| r.acked as f64), false),
        ("writes failed", col(|r| r.failed as f64), true),
        ("acknowledged writes lost", col(|r| r.lost as f64), true),
        ("read-backs", col(|r| r.reads as f64), false),
        ("stale reads", col(|r| r.stale_reads as f64), true),
        ("proxy restarts", col(|r| r.restarts as f64), false),
    ]
}

#[derive(Default)]
struct WriterLog {
    /// (sequence number, send time, ack time) of every acknowledged write.
    acked: Vec<(u64, Instant, Instant)>,
    failed: u64,
    reads: u64,
    stale: u64,
    errors: BTreeMap<String, u64>,
}

fn key(run: usize, client: usize, seq: u64) -> String {
    format!("proxy-restart:{run}:{client}:{seq}")
}

/// One writer: a write every `interval` (open loop), each acknowledged write read back.
async fn writer(
    proxy: String,
    run: usize,
    id: usize,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> WriterLog {
    let mut log = WriterLog::default();
    let mut conn: Option<Client> = None;
    let mut next = tokio::time::Instant::now() + interval.mul_f64(id as f64 / 8.0);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += interval;
        seq += 1;
        let k = key(run, id, seq);
        let v = seq.to_string();
        let sent = Instant::now();
        match request(&mut conn, &proxy, &["SET", &k, &v]).await {
            Ok(Reply::Ok) => log.acked.push((seq, sent, Instant::now())),
            Ok(r) => {
                log.failed += 1;
                *log.errors
                    .entry(format!("SET {}", reply_error_kind(&r)))
                    .or_default() += 1;
                continue;
            }
            Err(kind) => {
                log.failed += 1;
                *log.errors.entry(format!("SET {kind}")).or_default() += 1;
                continue;
            }
        }
        match request(&mut conn, &proxy, &["GET", &k]).await {
            Ok(r) => match super::writer::read_back_stale(&r, v.as_bytes()) {
                Some(stale) => {
                    log.reads += 1;
                    log.stale += u64::from(stale);
                }
                None => {
                    *log.errors
                        .entry(format!("GET {}", reply_error_kind(&r)))
                        .or_default() += 1
                }
            },
            Err(kind) => *log.errors.entry(format!("GET {kind}")).or_default() += 1,
        }
    }
    log
}

async fn run_once(o: &Options, run: usize) -> Result<RunResult> {
    let mut dep = Deployment::start(&o.deploy).await?;
    let addr = dep.proxy.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let interval = Duration::from_secs_f64(o.clients as f64 / o.rate);
    let writers: Vec<_> = (0..o.clients)
        .map(|id| tokio::spawn(writer(addr.clone(), run, id, interval, stop.clone())))
        .collect();
    let mut kills = Vec::new();
    let mut outcome = Ok(());
    for _ in 0..o.cycles {
        tokio::time::sleep(o.kill_after).await;
        match dep.restart_proxy().await {
            Ok(killed_at) => kills.push(killed_at),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    tokio::time::sleep(o.settle).await;
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for w in writers {
        logs.push(w.await.context("a writer task failed")?);
    }
    let result = async {
        outcome?;
        let keys: Vec<String> = logs
            .iter()
            .enumerate()
            .flat_map(|(id, l)| l.acked.iter().map(move |a| key(run, id, a.0)))
            .collect();
        let master = master_addr(&dep.sentinels).await?;
        let lost = count_missing(&master, &keys).await?;
        // Per kill: the latest, over the clients, of the first ack of a write sent after it.
        let mut continue_ms = Some(0f64);
        for k in &kills {
            for l in &logs {
                let first = l
                    .acked
                    .iter()
                    .find(|a| a.1 > *k)
                    .map(|a| a.2.duration_since(*k));
                continue_ms = match (continue_ms, first) {
                    (Some(c), Some(d)) => Some(c.max(d.as_secs_f64() * 1000.0)),
                    _ => None,
                };
            }
        }
        let mut errors = BTreeMap::new();
        for l in &logs {
            for (k, v) in &l.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
        }
        dep.check_no_panics()?;
        Ok(RunResult {
            continue_ms,
            acked: keys.len() as u64,
            failed: logs.iter().map(|l| l.failed).sum(),
            lost,
            reads: logs.iter().map(|l| l.reads).sum(),
            stale_reads: logs.iter().map(|l| l.stale).sum(),
            restarts: kills.len() as u64,
            errors,
        })
    }
    .await;
    drop(dep);
    result
}

//! The `partition` scenario: cuts the master off from the sentinels and the replicas (but not
//! from the proxy and the clients) for longer than down-after, lets a failover happen, heals
//! the cut, and counts the writes the old master acknowledged during the cut that vanished.
//!
//! How the cut works: every node sits behind a [`Relay`] and announces the relay's address
//! (`replica-announce-ip`/`-port`), replicas follow the master's relay and the sentinels
//! monitor it, so every connection to a node goes through its relay. The sentinels and the
//! nodes' replication links connect from [`SERVER_SIDE`] (`bind-source-addr 127.0.0.2`), the
//! proxy and the writers from 127.0.0.1. Cutting [`SERVER_SIDE`] at the master's relay
//! isolates the master from the sentinels and the replicas while the proxy keeps writing to
//! it until the sentinels' new master reaches the proxy: the old master acknowledges those
//! writes, and they vanish when it rejoins as a replica (Redis loses them the same way)
//! unless the proxy's `write_concern = "replicated"` refuses them.
//!
//! Per run: writers through the proxy (see [`super::writer`]); after `--kill-after` the cut;
//! it lasts `--cut-for`, or until the sentinels name a new master plus [`CUT_MARGIN`]; just
//! before the heal the old master's keys are listed (what it took during the cut); after the
//! heal the old master must report `role:slave` of the new master with
//! `master_link_status:up`; after `--settle` every acknowledged key is checked on the new
//! master. The deployment (3 nodes, 3 sentinels, the proxy, this same binary) runs in one
//! process group in a temp dir and is killed with the group after the run.

use anyhow::{bail, Result};
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tandem_protocol::Reply;

pub use super::deploy::SERVER_SIDE;
use super::failover::Options as BaseOptions;
use super::writer::{acked_keys, window_ms, Ack, Failure, WriterLog, Writers};
use super::{
    call, count_missing, master_addr, render_table, summary_json, text, Deployment, Metric,
};
use crate::BenchArgs;

/// Prefix of the scenario's keys.
const PREFIX: &str = "partition";
/// How long the cut lasts after the sentinels name a new master (for the proxy to follow).
const CUT_MARGIN: Duration = Duration::from_secs(1);
/// Longest wait for the old master to report itself a linked replica after the heal.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of one scenario invocation, checked.
#[derive(Debug, Clone)]
pub struct Options {
    pub base: BaseOptions,
    pub cut_for: Option<Duration>,
}

impl Options {
    pub fn from_args(a: &BenchArgs) -> Result<Options> {
        if !a.sentinels.is_empty() {
            bail!(
                "--sentinel: the partition scenario starts its own deployment (its nodes sit behind relays)"
            );
        }
        if a.cut_for.is_some_and(|d| d.is_zero()) {
            bail!("--cut-for: must be longer than 0");
        }
        let mut base = BaseOptions::from_args(a)?;
        base.deploy.relays = true;
        Ok(Options {
            base,
            cut_for: a.cut_for,
        })
    }
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The longest gap between acknowledgements that ends after the cut, in ms; None when no
    /// write sent after the cut was acknowledged.
    pub window_ms: Option<f64>,
    pub cut_ms: f64,
    /// Connections the relay closed when the cut began.
    pub connections_cut: usize,
    pub acked: u64,
    /// Writes acknowledged after the cut began that the old master held just before the heal
    /// (the old master acknowledged them during the cut).
    pub acked_by_old_master_in_cut: u64,
    /// Of those, how many are missing on the new master after the old one rejoined.
    pub lost_of_old_master_acks: u64,
    /// Acknowledged writes missing on the new master (all of them, not only the cut's).
    pub lost: u64,
    /// Writes sent during the cut that got an error reply (the safe mode refusing them).
    pub refused_in_cut: u64,
    /// Writes sent during the cut that got no reply (timeout, connection closed).
    pub no_reply_in_cut: u64,
    pub failed: u64,
    /// Acknowledged writes sent after the heal (writes go on).
    pub acked_after_heal: u64,
    /// Whether the old master reported `role:slave` of the new master, link up, in time.
    pub rejoined: bool,
    /// From the heal to that report, in ms.
    pub rejoin_ms: Option<f64>,
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
        "partition",
        opts.base.runs,
        |i| run_once(&opts, i),
        |r: &RunResult| {
            format!(
                "cut {:.0} ms, window {} ms, acked {}, acked by the old master in the cut {}, of them lost {}, lost {}, refused in the cut {}, rejoined {}",
                r.cut_ms,
                r.window_ms.map(|w| format!("{w:.0}")).unwrap_or("-".into()),
                r.acked,
                r.acked_by_old_master_in_cut,
                r.lost_of_old_master_acks,
                r.lost,
                r.refused_in_cut,
                if r.rejoined { "yes" } else { "no" },
            )
        },
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let metrics = metrics(&results);
    let b = &opts.base;
    if args.json {
        let (median, worst) = summary_json(&KEYS, &metrics);
        println!(
            "{}",
            serde_json::json!({
                "scenario": "partition",
                "stack": b.deploy.stack,
                "rate": b.rate,
                "clients": b.clients,
                "write_concern": b.deploy.write_concern,
                "kill_after_ms": b.kill_after.as_millis() as u64,
                "cut_for_ms": opts.cut_for.map(|d| d.as_millis() as u64),
                "down_after_ms": b.deploy.down_after_ms,
                "runs": results,
                "median": median,
                "worst": worst,
            })
        );
    } else {
        let title = format!(
            "scenario partition, stack {} ({}): {} run(s), {} writes/s from {} clients, write concern {}, master cut off from sentinels and replicas after {:?} for {}, down-after {} ms",
            b.deploy.stack.name(),
            b.deploy.stack.describe(),
            results.len(),
            b.rate,
            b.clients,
            b.deploy.write_concern,
            b.kill_after,
            opts.cut_for
                .map(|d| format!("{d:?}"))
                .unwrap_or_else(|| format!("failover + {CUT_MARGIN:?}")),
            b.deploy.down_after_ms
        );
        print!("{}", render_table(&title, &metrics));
    }
    ExitCode::SUCCESS
}

const KEYS: [&str; 12] = [
    "window_ms",
    "cut_ms",
    "acked",
    "acked_by_old_master_in_cut",
    "lost_of_old_master_acks",
    "lost",
    "refused_in_cut",
    "no_reply_in_cut",
    "acked_after_heal",
    "rejoined",
    "rejoin_ms",
    "stale_reads",
];

fn metrics(results: &[RunResult]) -> Vec<Metric> {
    let col = |f: fn(&RunResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    vec![
        (
            "unavailability window (ms)",
            col(|r| r.window_ms.unwrap_or(f64::INFINITY)),
            true,
        ),
        ("cut length (ms)", col(|r| r.cut_ms), true),
        ("writes acknowledged", col(|r| r.acked as f64), false),
        (
            "acked by the old master in cut",
            col(|r| r.acked_by_old_master_in_cut as f64),
            true,
        ),
        (
            "  of them lost",
            col(|r| r.lost_of_old_master_acks as f64),
            true,
        ),
        ("acknowledged writes lost", col(|r| r.lost as f64), true),
        (
            "writes refused in the cut",
            col(|r| r.refused_in_cut as f64),
            true,
        ),
        (
            "writes unanswered in the cut",
            col(|r| r.no_reply_in_cut as f64),
            true,
        ),
        (
            "acked after the heal",
            col(|r| r.acked_after_heal as f64),
            false,
        ),
        (
            "old master rejoined (1 = yes)",
            col(|r| if r.rejoined { 1.0 } else { 0.0 }),
            false,
        ),
        (
            "rejoin after the heal (ms)",
            col(|r| r.rejoin_ms.unwrap_or(f64::INFINITY)),
            true,
        ),
        ("stale reads", col(|r| r.stale_reads as f64), true),
    ]
}

// ---------------------------------------------------------------------------------------------
// One run.

async fn run_once(opts: &Options, run: usize) -> Result<RunResult> {
    let o = &opts.base;
    let dep = Deployment::start(&o.deploy).await?;
    let old_master = master_addr(&dep.sentinels).await?;
    let old = dep.node_behind(&old_master)?;
    let old_node = dep.nodes[old].clone();

    let writers = Writers::start(&dep.proxy, PREFIX, run, o.clients, o.rate);
    tokio::time::sleep(o.kill_after).await;
    let cut_at = writers.mark_fault();
    let connections_cut = dep.relays[old].cut(SERVER_SIDE);
    tracing::info!(%old_master, connections_cut, "cut the master off from sentinels and replicas");

    let new_master = match opts.cut_for {
        Some(d) => {
            tokio::time::sleep_until((cut_at + d).into()).await;
            master_addr(&dep.sentinels).await?
        }
        None => {
            let deadline = cut_at
                + Duration::from_millis(o.deploy.down_after_ms + o.deploy.failover_timeout_ms)
                + Duration::from_secs(10);
            let m = loop {
                match master_addr(&dep.sentinels).await {
                    Ok(m) if m != old_master => break m,
                    _ if Instant::now() > deadline => break old_master.clone(),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            tokio::time::sleep(CUT_MARGIN).await;
            m
        }
    };
    // What the old master took during the cut: its keys just before the heal (after it the
    // old master resynchronises from the new one).
    let old_keys = keys_on(&old_node, &format!("{PREFIX}:{run}:*")).await?;
    let healed_at = Instant::now();
    dep.relays[old].heal();
    let cut_ms = healed_at.duration_since(cut_at).as_secs_f64() * 1000.0;
    if new_master == old_master {
        writers.stop().await?;
        bail!(
            "the sentinels named no new master during the {cut_ms:.0} ms cut (make --cut-for longer than down-after plus the election)"
        );
    }
    tracing::info!(%new_master, "healed the cut");

    let rejoin = wait_rejoined(&old_node, &new_master, REJOIN_TIMEOUT).await;
    let rejoin_ms = rejoin.map(|at| at.duration_since(healed_at).as_secs_f64() * 1000.0);
    tokio::time::sleep(o.settle).await;
    let logs = writers.stop().await?;

    // Count on the master the sentinels name now (normally still the new one).
    let final_master = master_addr(&dep.sentinels).await?;
    let acked: Vec<(String, Ack)> = acked_keys(PREFIX, run, &logs).collect();
    let keys: Vec<String> = acked.iter().map(|(k, _)| k.clone()).collect();
    let lost = count_missing(&final_master, &keys).await?;
    let in_cut = acked_by_old_master(&acked, &old_keys, cut_at);
    let lost_of_old_master_acks = count_missing(&final_master, &in_cut).await?;
    let (refused_in_cut, no_reply_in_cut) = failures_between(&logs, cut_at, healed_at);
    dep.check_no_panics()?;
    Ok(RunResult {
        window_ms: window_ms(&logs, cut_at),
        cut_ms,
        connections_cut,
        acked: keys.len() as u64,
        acked_by_old_master_in_cut: in_cut.len() as u64,
        lost_of_old_master_acks,
        lost,
        refused_in_cut,
        no_reply_in_cut,
        failed: logs.iter().map(|l| l.failed.len() as u64).sum(),
        acked_after_heal: acked.iter().filter(|(_, a)| a.sent > healed_at).count() as u64,
        rejoined: rejoin.is_some(),
        rejoin_ms,
        reads: logs.iter().map(|l| l.reads).sum(),
        stale_reads: logs.iter().map(|l| l.stale).sum(),
        old_master,
        new_master: final_master,
    })
}

/// The keys acknowledged after `cut_at` that the old master held before the heal: the
/// writes the old master acknowledged during the cut.
fn acked_by_old_master(
    acked: &[(String, Ack)],
    old_keys: &HashSet<String>,
    cut_at: Instant,
) -> Vec<String> {
    acked
        .iter()
        .filter(|(k, a)| a.at > cut_at && old_keys.contains(k))
        .map(|(k, _)| k.clone())
        .collect()
}

/// (refused, unanswered) writes sent in `[from, to)`.
fn failures_between(logs: &[WriterLog], from: Instant, to: Instant) -> (u64, u64) {
    let mut counts = (0, 0);
    for (sent, kind) in logs.iter().flat_map(|l| &l.failed) {
        if *sent >= from && *sent < to {
            match kind {
                Failure::Refused => counts.0 += 1,
                Failure::NoReply => counts.1 += 1,
            }
        }
    }
    counts
}

/// `KEYS pattern` on `addr`.
async fn keys_on(addr: &str, pattern: &str) -> Result<HashSet<String>> {
    match call(addr, &["KEYS", pattern]).await? {
        Reply::Array(items) => Ok(items.iter().filter_map(text).collect()),
        r => bail!("KEYS on {addr} replied {r:?}"),
    }
}

/// Polls `node` until it reports itself a replica of `master` with the link up; the time it
/// first did, or None after `timeout`.
async fn wait_rejoined(node: &str, master: &str, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = call(node, &["INFO", "replication"]).await {
            if text(&r).is_some_and(|info| is_linked_replica_of(&info, master)) {
                return Some(Instant::now());
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether an `INFO replication` body says `role:slave` of `master` (`host:port`) with
/// `master_link_status:up`.
fn is_linked_replica_of(info: &str, master: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    field("role") == Some("slave")
        && field("master_link_status") == Some("up")
        && match (field("master_host"), field("master_port")) {
            (Some(h), Some(p)) => format!("{h}:{p}") == master,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_by_the_old_master_are_the_cut_acks_it_held() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let ack = |seq, sent, at| Ack {
            seq,
            sent: ms(sent),
            at: ms(at),
        };
        let acked = vec![
            ("p:0:0:1".to_string(), ack(1, 0, 5)),     // before the cut
            ("p:0:0:2".to_string(), ack(2, 95, 105)),  // in flight at the cut, old master
            ("p:0:0:3".to_string(), ack(3, 200, 210)), // old master during the cut
            ("p:0:0:4".to_string(), ack(4, 900, 990)), // new master (not on the old one)
        ];
        let old_keys: HashSet<String> = ["p:0:0:1", "p:0:0:2", "p:0:0:3", "p:0:0:9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            acked_by_old_master(&acked, &old_keys, ms(100)),
            ["p:0:0:2", "p:0:0:3"]
        );
    }

    #[test]
    fn failures_are_split_by_kind_within_the_cut() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let logs = vec![WriterLog {
            failed: vec![
                (ms(50), Failure::NoReply),
                (ms(100), Failure::Refused),
                (ms(150), Failure::Refused),
                (ms(160), Failure::NoReply),
                (ms(300), Failure::Refused),
            ],
            ..Default::default()
        }];
        assert_eq!(failures_between(&logs, ms(100), ms(300)), (2, 1));
    }

    #[test]
    fn linked_replica_of_the_new_master() {
        let info = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:4001\r\nmaster_link_status:up\r\n";
        assert!(is_linked_replica_of(info, "127.0.0.1:4001"));
        assert!(!is_linked_replica_of(info, "127.0.0.1:4002"));
        assert!(!is_linked_replica_of(
            &info.replace("link_status:up", "link_status:down"),
            "127.0.0.1:4001"
        ));
        assert!(!is_linked_replica_of(
            "role:master\r\nconnected_slaves:2\r\n",
            "127.0.0.1:4001"
        ));
    }
}

//! Fault scenarios of `tandem bench --scenario NAME`: each injects one failure into a live
//! deployment under load and prints one result table (median and worst over `--runs`).
//! - [`failover`]: kill -9 the master under writes; measure the unavailability window and
//!   count acknowledged writes lost and stale reads.
//! - [`replica_churn`]: kill -9 and restart the replicas in a loop under a read-heavy load;
//!   count failed and stale reads and the largest replication lag seen.
//! - [`proxy_restart`]: kill -9 and restart the proxy under writes and reads; measure the
//!   time until clients continue and count acknowledged writes lost and errors by kind.
//! - [`partition`]: cut the master off from the sentinels and the replicas (nodes behind
//!   [`relay`]s) under writes, heal after the failover; count the writes the old master
//!   acknowledged during the cut that vanished, and check it rejoins as a replica.
//! - [`writer`]: the writers the failover and partition scenarios share.
//!
//! Every scenario runs against a [`Deployment`] ([`deploy`]): its own, started per run, of
//! either stack (`--stack tandem`: `tandem up`; `--stack redis`: redis-server, redis-sentinel
//! and twemproxy, see [`redis_stack`]), or an external one (`--sentinel`). The rest of the
//! shared part lives here: one-shot calls, readiness polling and the result table.

pub mod deploy;
pub mod failover;
pub mod partition;
pub mod proxy_restart;
pub mod redis_stack;
pub mod relay;
pub mod replica_churn;
pub mod writer;

pub use deploy::{wait_ready, DeployOptions, Deployment, Stack};

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tandem_protocol::client::Client;
use tandem_protocol::Reply;

/// The scenarios `--scenario` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// kill -9 the master under writes through the proxy.
    Failover,
    /// kill -9 and restart the replicas in a loop under reads through the proxy.
    ReplicaChurn,
    /// kill -9 and restart the proxy under writes and reads.
    ProxyRestart,
    /// Cut the master off from the sentinels and replicas (not from the proxy), then heal.
    Partition,
}

/// Runs `scenario` with `args`; exit 0 when it ran (whatever it measured), 1 when it could
/// not run, 2 for invalid flags.
pub fn run(scenario: Scenario, args: &crate::BenchArgs) -> std::process::ExitCode {
    match scenario {
        Scenario::Failover => failover::main(args),
        Scenario::ReplicaChurn => replica_churn::main(args),
        Scenario::ProxyRestart => proxy_restart::main(args),
        Scenario::Partition => partition::main(args),
    }
}

/// `--rate`, or `default`: a positive number of `unit` per second.
pub fn rate(a: &crate::BenchArgs, default: f64, unit: &str) -> Result<f64> {
    let rate = a.rate.unwrap_or(default);
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate: must be a positive number of {unit} per second");
    }
    Ok(rate)
}

/// Flags of a scenario that kills and restarts part of its own deployment in cycles under
/// load (`proxy-restart`, `replica-churn`), checked.
#[derive(Debug, Clone)]
pub struct CycleOptions {
    pub clients: usize,
    pub rate: f64,
    pub runs: usize,
    pub cycles: usize,
    pub kill_after: Duration,
    pub settle: Duration,
    pub deploy: DeployOptions,
}

impl CycleOptions {
    /// `unit`: what `--rate` counts; `restarts`: why the scenario refuses `--sentinel`
    /// ("proxy-restart restarts the proxy itself"); `restartable_proxy`: see [`DeployOptions`].
    pub fn new(
        a: &crate::BenchArgs,
        default_rate: f64,
        unit: &str,
        restarts: &str,
        restartable_proxy: bool,
    ) -> Result<CycleOptions> {
        let rate = rate(a, default_rate, unit)?;
        if a.runs == 0 || a.cycles == 0 || a.clients == 0 {
            bail!("--runs, --cycles and --clients must be at least 1");
        }
        if !a.sentinels.is_empty() {
            bail!("--sentinel: {restarts}, so it needs its own deployment (drop --sentinel)");
        }
        Ok(CycleOptions {
            clients: a.clients.min(64),
            rate,
            runs: a.runs,
            cycles: a.cycles,
            kill_after: a.kill_after,
            settle: a.settle,
            deploy: DeployOptions {
                restartable_proxy,
                ..DeployOptions::from_args(a)?
            },
        })
    }
}

/// Runs a scenario `runs` times on one runtime, printing `line` of each result on stderr
/// (unless `--json`). The results, or exit code 1 after the first run that failed.
pub fn run_all<R, Fut>(
    args: &crate::BenchArgs,
    name: &str,
    runs: usize,
    run_once: impl Fn(usize) -> Fut,
    line: impl Fn(&R) -> String,
) -> std::result::Result<Vec<R>, std::process::ExitCode>
where
    Fut: std::future::Future<Output = Result<R>>,
{
    let rt = crate::run::runtime(args)?;
    let mut results = Vec::with_capacity(runs);
    for i in 0..runs {
        match rt.block_on(run_once(i)) {
            Ok(r) => {
                if !args.json {
                    eprintln!("run {}: {}", i + 1, line(&r));
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("tandem bench: {name} run {} failed: {e:#}", i + 1);
                return Err(std::process::ExitCode::from(1));
            }
        }
    }
    Ok(results)
}

/// Spawns `tandem ARGS` (this same binary) with output appended to `log`, in process group
/// `pgid` (or its own group when None).
pub fn spawn_tandem(
    args: &[String],
    log: &std::path::Path,
    pgid: Option<i32>,
) -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the tandem executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    std::process::Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(pgid.unwrap_or(0))
        .spawn()
        .with_context(|| format!("cannot start tandem {args:?}"))
}

/// kill -9 `pid`.
pub fn kill9(pid: i32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("cannot kill pid {pid}"))
}

/// Polls until `addr` answers PING (deadline `timeout`).
pub async fn wait_ping(addr: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = call(addr, &["PING"]).await {
            if !r.is_error() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{addr} did not answer PING within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One table row: (name, value per run, whether a larger value is worse).
pub type Metric = (&'static str, Vec<f64>, bool);

/// The result table: `title`, then median and worst of each metric over the runs.
pub fn render_table(title: &str, metrics: &[Metric]) -> String {
    let mut t = format!("\n{title}\n\n");
    t.push_str(&format!("  {:<32} {:>12} {:>12}\n", "", "median", "worst"));
    for (name, v, larger_worse) in metrics {
        let (m, w) = summary(v, *larger_worse);
        let f = |x: f64| {
            if x.is_infinite() {
                "never".to_string()
            } else if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        };
        t.push_str(&format!("  {:<32} {:>12} {:>12}\n", name, f(m), f(w)));
    }
    t
}

/// The medians and worsts of `metrics` as JSON maps under `keys` (same order).
pub fn summary_json(keys: &[&str], metrics: &[Metric]) -> (serde_json::Value, serde_json::Value) {
    let mut median = serde_json::Map::new();
    let mut worst = serde_json::Map::new();
    let num = |x: f64| {
        serde_json::Number::from_f64(x)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    };
    for (k, (_, v, larger_worse)) in keys.iter().zip(metrics) {
        let (m, w) = summary(v, *larger_worse);
        median.insert(k.to_string(), num(m));
        worst.insert(k.to_string(), num(w));
    }
    (median.into(), worst.into())
}

/// The master name `tandem up` monitors.
pub const MASTER_NAME: &str = "tandem";
/// Per-command timeout of the writers (a timed-out write counts as failed, not acknowledged).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a fresh deployment may take to be ready (replicas linked, sentinels met).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The loopback addresses of `n` consecutive ports from `first` (a block from [`free_block`]).
pub fn loopback_block(first: u16, n: u16) -> Vec<String> {
    (0..n).map(|i| format!("127.0.0.1:{}", first + i)).collect()
}

/// A free loopback port `p` such that `p..p+n` are all free (checked by binding them).
pub fn free_block(n: u16) -> Result<u16> {
    for _ in 0..100 {
        let base = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if base.checked_add(n).is_none() {
            continue;
        }
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == n as usize {
            return Ok(base);
        }
    }
    bail!("no block of {n} free loopback ports")
}

pub async fn call(addr: &str, args: &[&str]) -> Result<Reply> {
    let mut c = Client::connect(addr, CONNECT_TIMEOUT).await?;
    c.queue(args);
    c.flush().await?;
    Ok(c.read_reply_timeout(CALL_TIMEOUT).await?)
}

pub fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) | Reply::Verbatim(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Status(s) => Some(s.to_string()),
        Reply::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A field of a `SENTINEL MASTER` reply (flat array in RESP2, map in RESP3).
pub fn field(r: &Reply, name: &str) -> Option<String> {
    match r {
        Reply::Array(items) => items
            .chunks(2)
            .find(|kv| kv.len() == 2 && text(&kv[0]).as_deref() == Some(name))
            .and_then(|kv| text(&kv[1])),
        Reply::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(name))
            .and_then(|(_, v)| text(v)),
        _ => None,
    }
}

/// The master's address according to the first sentinel that answers.
pub async fn master_addr(sentinels: &[String]) -> Result<String> {
    for s in sentinels {
        if let Ok(Reply::Array(a)) =
            call(s, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).await
        {
            if let (Some(h), Some(p)) = (a.first().and_then(text), a.get(1).and_then(text)) {
                return Ok(format!("{h}:{p}"));
            }
        }
    }
    bail!("no sentinel of {sentinels:?} knows master {MASTER_NAME}")
}

/// An `INFO` field (`name:value` line).
pub async fn info_field(addr: &str, section: &str, name: &str) -> Result<String> {
    let r = call(addr, &["INFO", section]).await?;
    let body = text(&r).ok_or_else(|| anyhow!("INFO on {addr} replied {r:?}"))?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| anyhow!("INFO {section} on {addr} has no {name}"))
}

/// Median (upper middle for an even count) of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn summary(v: &[f64], larger_worse: bool) -> (f64, f64) {
    let worst = if larger_worse {
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    } else {
        v.iter().copied().fold(f64::INFINITY, f64::min)
    };
    (median(v.to_vec()), worst)
}

/// Keys checked per pipelined EXISTS batch.
const CHECK_BATCH: usize = 1000;

/// Pipelined EXISTS of every key on `addr`; returns how many are missing.
pub async fn count_missing(addr: &str, keys: &[String]) -> Result<u64> {
    let mut c = Client::connect(addr, CONNECT_TIMEOUT).await?;
    let mut missing = 0;
    for batch in keys.chunks(CHECK_BATCH) {
        for k in batch {
            c.queue(&["EXISTS", k.as_str()]);
        }
        c.flush().await?;
        for k in batch {
            match c.read_reply_timeout(Duration::from_secs(10)).await? {
                Reply::Int(1) => {}
                Reply::Int(0) => missing += 1,
                r => bail!("EXISTS {k} on {addr} replied {r:?}"),
            }
        }
    }
    Ok(missing)
}

/// A short name for what went wrong with a request (for "errors by kind").
pub fn error_kind(e: &tandem_protocol::client::ClientError) -> String {
    use tandem_protocol::client::ClientError as E;
    match e {
        E::Io { source, .. } => format!("io: {:?}", source.kind()),
        E::Protocol { .. } => "protocol error".into(),
        E::Closed { .. } => "connection closed".into(),
        E::Timeout { .. } => "timeout".into(),
    }
}

/// An error reply's text (first 80 characters) as its kind.
pub fn reply_error_kind(r: &Reply) -> String {
    match r {
        Reply::Error(e) => format!("-{}", e.chars().take(80).collect::<String>()),
        other => format!("unexpected reply {other:?}"),
    }
}

/// Sends one command on `conn` (connecting to `addr` first when None) and reads its reply;
/// on a connection error the connection is dropped (the next request reconnects) and the
/// error's kind returned.
pub async fn request(
    conn: &mut Option<Client>,
    addr: &str,
    args: &[&str],
) -> std::result::Result<Reply, String> {
    let c = match conn.as_mut() {
        Some(c) => c,
        None => match Client::connect(addr, CONNECT_TIMEOUT).await {
            Ok(c) => conn.insert(c),
            Err(e) => return Err(format!("connect: {}", error_kind(&e))),
        },
    };
    c.queue(args);
    let reply = match c.flush().await {
        Ok(()) => c.read_reply_timeout(CALL_TIMEOUT).await,
        Err(e) => Err(e),
    };
    reply.map_err(|e| {
        *conn = None;
        error_kind(&e)
    })
}

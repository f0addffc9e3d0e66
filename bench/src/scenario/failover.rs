//! The `failover` scenario: writes with unique keys through the proxy at a fixed rate from a
//! few clients, records every acknowledged key, kill -9s the master (pid from its
//! `INFO server` `process_id`), keeps writing until writes succeed again and a settle period
//! has passed, then checks every acknowledged key on the new master (found via the sentinels).
//! Reports per run: the unavailability window (the longest silence between acknowledgements
//! that ends after the kill: last ack before the outage to the first after), writes acknowledged and failed, acknowledged writes missing on the new master, and
//! stale reads (a client's read-back of its own last acknowledged write that found nothing).
//! Without `--sentinel` every run starts its own deployment (`tandem up`, this same binary,
//! in its own process group on free ports in a temp dir) and kills the whole group after.

use anyhow::{anyhow, bail, Context, Result};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tandem_protocol::client::Client;
use tandem_protocol::Reply;

use crate::BenchArgs;

/// The master name `tandem up` monitors.
pub const MASTER_NAME: &str = "tandem";
/// Per-command timeout of the writers (a timed-out write counts as failed, not acknowledged).
const CALL_TIMEOUT: Duration = Duration::from_millis(1000);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a fresh deployment may take to be ready (replicas linked, sentinels met).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Keys checked per pipelined EXISTS batch.
const CHECK_BATCH: usize = 1000;

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
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    pub write_concern: String,
}

impl Options {
    pub fn from_args(a: &BenchArgs) -> Result<Options> {
        let rate = a.rate.unwrap_or(1000.0);
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate: must be a positive number of writes per second");
        }
        if a.runs == 0 {
            bail!("--runs: must be at least 1");
        }
        if a.clients == 0 {
            bail!("--clients: must be at least 1");
        }
        if !matches!(a.write_concern.as_str(), "master" | "replicated") {
            bail!("--write-concern: must be master or replicated");
        }
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
            down_after_ms: a.down_after_ms,
            failover_timeout_ms: a.failover_timeout_ms,
            write_concern: a.write_concern.clone(),
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut results = Vec::new();
    for i in 0..opts.runs {
        match rt.block_on(run_once(&opts, i)) {
            Ok(r) => {
                if !args.json {
                    eprintln!(
                        "run {}: window {} ms, acked {}, lost {}, stale reads {}",
                        i + 1,
                        r.window_ms.map(|w| format!("{w:.0}")).unwrap_or("-".into()),
                        r.acked,
                        r.lost,
                        r.stale_reads
                    );
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("tandem bench: failover run {} failed: {e:#}", i + 1);
                return ExitCode::from(1);
            }
        }
    }
    if args.json {
        println!("{}", json(&opts, &results));
    } else {
        print!("{}", table(&opts, &results));
    }
    ExitCode::SUCCESS
}

/// A deployment under test; an own one (started here) is killed with its process group on drop.
struct Deployment {
    proxy: String,
    sentinels: Vec<String>,
    child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// A free loopback port `p` such that `p..p+n` are all free (checked by binding them).
fn free_block(n: u16) -> Result<u16> {
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

fn start_deployment(o: &Options) -> Result<Deployment> {
    let exe = std::env::current_exe().context("cannot find the tandem executable")?;
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let node_port = free_block(3)?;
    let sentinel_port = free_block(3)?;
    let proxy_port = free_block(1)?;
    let metrics_port = free_block(1)?;
    let log = std::fs::File::create(dir.path().join("up.log"))?;
    let child = std::process::Command::new(exe)
        .arg("up")
        .arg("--dir")
        .arg(dir.path().join("data"))
        .args(["--node-port", &node_port.to_string()])
        .args(["--sentinel-port", &sentinel_port.to_string()])
        .args(["--proxy-port", &proxy_port.to_string()])
        .args(["--metrics-port", &metrics_port.to_string()])
        .args(["--down-after-ms", &o.down_after_ms.to_string()])
        .args(["--failover-timeout-ms", &o.failover_timeout_ms.to_string()])
        .args(["--write-concern", &o.write_concern])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start tandem up")?;
    Ok(Deployment {
        proxy: format!("127.0.0.1:{proxy_port}"),
        sentinels: (0..3)
            .map(|i| format!("127.0.0.1:{}", sentinel_port + i))
            .collect(),
        child: Some(child),
        _dir: Some(dir),
    })
}

async fn call(addr: &str, args: &[&str]) -> Result<Reply> {
    let mut c = Client::connect(addr, CONNECT_TIMEOUT).await?;
    c.queue(args);
    c.flush().await?;
    Ok(c.read_reply_timeout(CALL_TIMEOUT).await?)
}

fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) | Reply::Verbatim(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Status(s) => Some(s.to_string()),
        Reply::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A field of a `SENTINEL MASTER` reply (flat array in RESP2, map in RESP3).
fn field(r: &Reply, name: &str) -> Option<String> {
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
async fn master_addr(sentinels: &[String]) -> Result<String> {
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
async fn info_field(addr: &str, section: &str, name: &str) -> Result<String> {
    let r = call(addr, &["INFO", section]).await?;
    let body = text(&r).ok_or_else(|| anyhow!("INFO on {addr} replied {r:?}"))?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| anyhow!("INFO {section} on {addr} has no {name}"))
}

/// Waits until the sentinels know each other and both replicas, the master has both replicas
/// online, and a write through the proxy is acknowledged.
async fn wait_ready(d: &Deployment) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last;
    loop {
        let ready: Result<()> = async {
            // An own deployment has 3 sentinels and 2 replicas; an external one needs at
            // least another sentinel and a replica to fail over to.
            let (sentinels, replicas) = if d.child.is_some() { (2, 2) } else { (1, 1) };
            for s in &d.sentinels {
                let m = call(s, &["SENTINEL", "MASTER", MASTER_NAME]).await?;
                let num = |f: &str| field(&m, f).and_then(|v| v.parse::<u64>().ok());
                let (others, slaves) = (num("num-other-sentinels"), num("num-slaves"));
                if others < Some(sentinels) || slaves < Some(replicas) {
                    bail!("sentinel {s}: {others:?} other sentinels, {slaves:?} replicas");
                }
            }
            let master = master_addr(&d.sentinels).await?;
            let n = info_field(&master, "replication", "connected_slaves").await?;
            if n.parse::<u64>().ok() < Some(replicas) {
                bail!("master {master} has {n} replicas");
            }
            match call(&d.proxy, &["SET", "failover:probe", "1"]).await? {
                Reply::Ok => Ok(()),
                r => bail!("proxy answered SET with {r:?}"),
            }
        }
        .await;
        match ready {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("deployment not ready within {READY_TIMEOUT:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one writer saw.
#[derive(Default)]
struct WriterLog {
    /// (sequence number, ack time) of every acknowledged write.
    acked: Vec<(u64, Instant)>,
    failed: u64,
    reads: u64,
    stale: u64,
}

struct Shared {
    stop: AtomicBool,
    killed_at: OnceLock<Instant>,
    acked_after_kill: AtomicU64,
}

fn key(run: usize, client: usize, seq: u64) -> String {
    format!("failover:{run}:{client}:{seq}")
}

/// One writer: a write every `interval` (open loop: a late schedule is caught up, never
/// stretched), each acknowledged write read back once through the proxy.
async fn writer(
    proxy: String,
    run: usize,
    id: usize,
    interval: Duration,
    shared: Arc<Shared>,
) -> WriterLog {
    let mut log = WriterLog::default();
    let mut conn: Option<Client> = None;
    let mut next = tokio::time::Instant::now() + interval.mul_f64(id as f64 / 8.0);
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += interval;
        seq += 1;
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Client::connect(&proxy, CONNECT_TIMEOUT).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    log.failed += 1;
                    continue;
                }
            },
        };
        let k = key(run, id, seq);
        let v = seq.to_string();
        let sent = Instant::now();
        c.queue(&["SET", k.as_str(), v.as_str()]);
        let reply = match c.flush().await {
            Ok(()) => c.read_reply_timeout(CALL_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(Reply::Ok) => {
                let now = Instant::now();
                log.acked.push((seq, now));
                // Writes have resumed once a write sent after the kill is acknowledged.
                if shared.killed_at.get().is_some_and(|t| sent > *t) {
                    shared.acked_after_kill.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {
                log.failed += 1;
                continue;
            }
            Err(_) => {
                log.failed += 1;
                conn = None;
                continue;
            }
        }
        // Read back the write just acknowledged: nothing there is a stale read.
        c.queue(&["GET", k.as_str()]);
        let reply = match c.flush().await {
            Ok(()) => c.read_reply_timeout(CALL_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(Reply::Bulk(b)) => {
                log.reads += 1;
                if b.as_ref() != v.as_bytes() {
                    log.stale += 1;
                }
            }
            Ok(Reply::Nil) => {
                log.reads += 1;
                log.stale += 1;
            }
            Ok(_) => {}
            Err(_) => conn = None,
        }
    }
    log
}

/// Pipelined EXISTS of every key on `addr`; returns how many are missing.
async fn count_missing(addr: &str, keys: &[String]) -> Result<u64> {
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

async fn run_once(o: &Options, run: usize) -> Result<RunResult> {
    let dep = match &o.proxy {
        Some(p) => Deployment {
            proxy: p.clone(),
            sentinels: o.sentinels.clone(),
            child: None,
            _dir: None,
        },
        None => start_deployment(o)?,
    };
    wait_ready(&dep).await?;
    let old_master = master_addr(&dep.sentinels).await?;
    let pid: i32 = info_field(&old_master, "server", "process_id")
        .await?
        .parse()
        .context("process_id is not a number")?;

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        killed_at: OnceLock::new(),
        acked_after_kill: AtomicU64::new(0),
    });
    let interval = Duration::from_secs_f64(o.clients as f64 / o.rate);
    let writers: Vec<_> = (0..o.clients)
        .map(|id| tokio::spawn(writer(dep.proxy.clone(), run, id, interval, shared.clone())))
        .collect();
    tokio::time::sleep(o.kill_after).await;
    let killed_at = Instant::now();
    let _ = shared.killed_at.set(killed_at);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("cannot kill the master (pid {pid})"))?;
    tracing::info!(pid, %old_master, "killed the master");
    // Writes must resume within the failover timeout (plus detection and slack).
    let resume_deadline = killed_at
        + Duration::from_millis(o.down_after_ms + o.failover_timeout_ms)
        + Duration::from_secs(10);
    while shared.acked_after_kill.load(Ordering::Relaxed) == 0 && Instant::now() < resume_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(o.settle).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for w in writers {
        logs.push(w.await.context("a writer task failed")?);
    }

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
    let keys: Vec<String> = logs
        .iter()
        .enumerate()
        .flat_map(|(id, l)| l.acked.iter().map(move |(seq, _)| key(run, id, *seq)))
        .collect();
    let lost = count_missing(&new_master, &keys).await?;

    // The outage is the longest silence between two acknowledgements that ends after the
    // kill: replies already on the wire when the master died do not end it early.
    let mut acks: Vec<Instant> = logs
        .iter()
        .flat_map(|l| l.acked.iter().map(|a| a.1))
        .collect();
    acks.sort();
    let window_ms = acks
        .windows(2)
        .filter(|w| w[1] > killed_at)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .max_by(|a, b| a.total_cmp(b))
        .filter(|_| shared.acked_after_kill.load(Ordering::Relaxed) > 0);
    Ok(RunResult {
        window_ms,
        acked: keys.len() as u64,
        acked_after_kill: shared.acked_after_kill.load(Ordering::Relaxed),
        failed: logs.iter().map(|l| l.failed).sum(),
        lost,
        reads: logs.iter().map(|l| l.reads).sum(),
        stale_reads: logs.iter().map(|l| l.stale).sum(),
        old_master,
        new_master,
    })
}

/// Median (upper middle for an even count) of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
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

fn summary(v: &[f64], larger_worse: bool) -> (f64, f64) {
    let worst = if larger_worse {
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    } else {
        v.iter().copied().fold(f64::INFINITY, f64::min)
    };
    (median(v.to_vec()), worst)
}

/// The result table: median and worst over the runs.
pub fn table(o: &Options, results: &[RunResult]) -> String {
    let mut t = format!(
        "\nscenario failover: {} run(s), {} writes/s from {} clients, write concern {}, kill -9 after {:?}, down-after {} ms\n\n",
        results.len(),
        o.rate,
        o.clients,
        o.write_concern,
        o.kill_after,
        o.down_after_ms
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
        "rate": o.rate,
        "clients": o.clients,
        "write_concern": o.write_concern,
        "kill_after_ms": o.kill_after.as_millis() as u64,
        "down_after_ms": o.down_after_ms,
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

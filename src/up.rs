//! `tandem up`: a complete local deployment in one command: 3 nodes (1 master, 2 replicas),
//! 3 sentinels and the proxy, all on loopback, each a child process of this same binary.
//! It prints the endpoints (proxy first), streams every child's log lines prefixed with its
//! name, and on Ctrl-C (or SIGTERM) stops every child (SIGTERM, then SIGKILL after a grace
//! period) before exiting. A child that dies is reported and left dead (so a failover can
//! be watched); the others keep running.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// Name of the monitored master in the sentinels and the proxy.
pub const MASTER_NAME: &str = "tandem";
/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long each child gets to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Directory holding every component's data and state (created if missing).
    #[arg(long, default_value = "tandem-data")]
    pub dir: PathBuf,
    /// The proxy's port (the one endpoint applications use).
    #[arg(long, default_value_t = 6400)]
    pub proxy_port: u16,
    /// First node port; the nodes use this and the next two.
    #[arg(long, default_value_t = 7001)]
    pub node_port: u16,
    /// First sentinel port; the sentinels use this and the next two.
    #[arg(long, default_value_t = 27001)]
    pub sentinel_port: u16,
    /// The proxy's Prometheus metrics port.
    #[arg(long, default_value_t = 9400)]
    pub metrics_port: u16,
    /// Sentinels' down-after-milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub down_after_ms: u64,
    /// Sentinels' failover-timeout (milliseconds). A failed election (split vote) gives up
    /// after min(10 s, this) and is retried two of these after the attempt (plus up to 1 s),
    /// as in Redis, so it stays short.
    #[arg(long, default_value_t = 6000)]
    pub failover_timeout_ms: u64,
    /// The proxy's write concern (`master` or `replicated`), forwarded to `tandem proxy`.
    #[arg(long)]
    pub write_concern: Option<String>,
}

/// One process of the deployment.
struct Member {
    name: String,
    role: &'static str,
    port: u16,
    child: Child,
}

/// The processes to start, in order, as (name, role, port, arguments).
pub fn plan(a: &UpArgs) -> Vec<(String, &'static str, u16, Vec<String>)> {
    let host = "127.0.0.1";
    let dir = |name: &str| a.dir.join(name).display().to_string();
    let mut out = Vec::new();
    for i in 0..3u16 {
        let name = format!("node-{}", i + 1);
        let port = a.node_port + i;
        let mut args = vec![
            "node".into(),
            "--bind".into(),
            host.into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir(&name),
            // A local deployment syncs replicas at once (Redis waits 5 s for more replicas).
            "--repl-diskless-sync-delay".into(),
            "0".into(),
        ];
        if i > 0 {
            args.extend(["--replicaof".into(), host.into(), a.node_port.to_string()]);
        }
        out.push((name, if i == 0 { "master" } else { "replica" }, port, args));
    }
    for i in 0..3u16 {
        let name = format!("sentinel-{}", i + 1);
        let port = a.sentinel_port + i;
        let args = vec![
            "sentinel".into(),
            "--bind".into(),
            host.into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir(&name),
            "--monitor".into(),
            MASTER_NAME.into(),
            host.into(),
            a.node_port.to_string(),
            "2".into(),
            "--down-after-ms".into(),
            a.down_after_ms.to_string(),
            "--failover-timeout-ms".into(),
            a.failover_timeout_ms.to_string(),
        ];
        out.push((name, "sentinel", port, args));
    }
    let sentinels = (0..3u16)
        .map(|i| format!("{host}:{}", a.sentinel_port + i))
        .collect::<Vec<_>>()
        .join(",");
    let mut proxy_args: Vec<String> = vec![
        "proxy".into(),
        "--listen".into(),
        format!("{host}:{}", a.proxy_port),
        "--sentinels".into(),
        sentinels,
        "--master-name".into(),
        MASTER_NAME.into(),
        "--metrics".into(),
        format!("{host}:{}", a.metrics_port),
    ];
    if let Some(wc) = &a.write_concern {
        proxy_args.extend(["--write-concern".into(), wc.clone()]);
    }
    out.push(("proxy".into(), "proxy", a.proxy_port, proxy_args));
    out
}

pub fn run(args: UpArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem up: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(up(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem up: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn up(args: UpArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the tandem executable")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut members: Vec<Member> = Vec::new();
    let started = start_all(&exe, &args, &mut members).await;
    if let Err(e) = started {
        stop_all(&mut members).await;
        return Err(e);
    }
    print_table(&args, &members);
    let outcome = supervise(&mut members).await;
    stop_all(&mut members).await;
    outcome
}

async fn start_all(exe: &Path, args: &UpArgs, members: &mut Vec<Member>) -> Result<()> {
    for (name, role, port, argv) in plan(args) {
        std::fs::create_dir_all(args.dir.join(&name)).ok();
        let mut child = Command::new(exe)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(relay_lines(name.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(relay_lines(name.clone(), err));
        }
        let member = Member {
            name: name.clone(),
            role,
            port,
            child,
        };
        members.push(member);
        wait_ready(&name, port, members.last_mut().map(|m| &mut m.child)).await?;
    }
    Ok(())
}

/// Polls until `port` answers PING, failing if the child exits or the timeout passes.
async fn wait_ready(name: &str, port: u16, child: Option<&mut Child>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let mut child = child;
    loop {
        if let Some(c) = child.as_deref_mut() {
            if let Some(status) = c.try_wait()? {
                bail!("{name} exited during start-up ({status}); see its log lines above");
            }
        }
        let addr = format!("127.0.0.1:{port}");
        if let Ok(mut c) =
            tandem_protocol::client::Client::connect(&addr, Duration::from_millis(300)).await
        {
            if let Ok(r) = c.call(&["PING"]).await {
                if !r.is_error()
                    || matches!(&r, tandem_protocol::Reply::Error(e) if e.starts_with("NOAUTH"))
                {
                    return Ok(());
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{name} did not answer PING on {addr} within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_table(args: &UpArgs, members: &[Member]) {
    let mut t = String::new();
    t.push_str("\ntandem up: deployment ready\n\n");
    t.push_str(&format!("  {:<12} {:<10} {}\n", "NAME", "ROLE", "ENDPOINT"));
    // The proxy first: it is what applications use.
    let order = members
        .iter()
        .filter(|m| m.role == "proxy")
        .chain(members.iter().filter(|m| m.role != "proxy"));
    for m in order {
        t.push_str(&format!(
            "  {:<12} {:<10} 127.0.0.1:{}\n",
            m.name, m.role, m.port
        ));
    }
    t.push_str(&format!(
        "\n  metrics      http://127.0.0.1:{}/metrics\n  data         {}\n  connect      redis-cli -p {}\n\nCtrl-C stops everything.\n",
        args.metrics_port,
        args.dir.display(),
        args.proxy_port
    ));
    println!("{t}");
}

/// Forwards a child's output line by line, prefixed with its name.
async fn relay_lines(name: String, out: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("[{name:<10}] {line}");
    }
}

/// Runs until Ctrl-C or SIGTERM; reports children that exit on their own.
async fn supervise(members: &mut [Member]) -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut reported = vec![false; members.len()];
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for (i, m) in members.iter_mut().enumerate() {
                    if reported[i] {
                        continue;
                    }
                    if let Ok(Some(status)) = m.child.try_wait() {
                        reported[i] = true;
                        println!("tandem up: {} ({}, port {}) exited: {status}", m.name, m.role, m.port);
                    }
                }
            }
        }
    }
    println!("tandem up: stopping");
    Ok(())
}

/// SIGTERM to every child (proxy first, nodes last), then SIGKILL after the grace period.
async fn stop_all(members: &mut [Member]) {
    for m in members.iter().rev() {
        if let Some(pid) = m.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    for m in members.iter_mut().rev() {
        match tokio::time::timeout(STOP_GRACE, m.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                println!("tandem up: {} did not stop in time; killing it", m.name);
                let _ = m.child.kill().await;
            }
        }
    }
    println!("tandem up: all stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_has_three_nodes_three_sentinels_and_a_proxy() {
        let a = UpArgs {
            dir: "d".into(),
            proxy_port: 1000,
            node_port: 2000,
            sentinel_port: 3000,
            metrics_port: 4000,
            down_after_ms: 1000,
            failover_timeout_ms: 5000,
            write_concern: None,
        };
        let p = plan(&a);
        assert_eq!(p.len(), 7);
        let roles: Vec<_> = p.iter().map(|(_, r, _, _)| *r).collect();
        assert_eq!(
            roles,
            ["master", "replica", "replica", "sentinel", "sentinel", "sentinel", "proxy"]
        );
        // Replicas follow the master; sentinels monitor it with quorum 2.
        assert!(p[1]
            .3
            .windows(3)
            .any(|w| w == ["--replicaof", "127.0.0.1", "2000"]));
        assert!(p[3]
            .3
            .windows(5)
            .any(|w| w == ["--monitor", MASTER_NAME, "127.0.0.1", "2000", "2"]));
        assert!(p[6]
            .3
            .contains(&"127.0.0.1:3000,127.0.0.1:3001,127.0.0.1:3002".to_string()));
    }
}

//! The deployment a fault scenario runs against, one type whichever stack it is: Tandem
//! (`tandem up`: 3 nodes, 3 sentinels, the proxy) or the equivalent Redis set-up (3
//! redis-server, 3 redis-sentinel, twemproxy; see [`super::redis_stack`]), each started on
//! free loopback ports in a temp dir, in one process group that is killed on drop; or an
//! external deployment (`--sentinel`). What a scenario does to a deployment (restart a replica,
//! restart the proxy) is a method here, implemented per stack, so scenarios never branch on
//! the stack.

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tandem_protocol::Reply;

use super::relay::Relay;
use super::{
    call, field, free_block, info_field, kill9, loopback_block, master_addr, redis_stack,
    spawn_tandem, text, wait_ping, MASTER_NAME, READY_TIMEOUT,
};

/// How long a restarted replica may take to be linked to its master again.
pub const RELINK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a restarted proxy may take to answer PING.
pub const PROXY_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long each process of a deployment behind relays may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Source address of the sentinels' links and the nodes' replication links in a deployment
/// behind relays (`bind-source-addr`); the proxy and the clients connect from 127.0.0.1.
pub const SERVER_SIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Which software a scenario's own deployment runs (`--stack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    /// `tandem up`: 3 tandem nodes, 3 tandem sentinels, tandem proxy.
    Tandem,
    /// 3 redis-server 7 (one master, two `replicaof`), 3 redis-sentinel, and twemproxy
    /// (nutcracker) pointed at the master by a Sentinel client-reconfig-script.
    Redis,
}

impl Stack {
    /// The stack's name as `--stack` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Tandem => "tandem",
            Stack::Redis => "redis",
        }
    }

    /// What the stack is made of, for table titles.
    pub fn describe(self) -> &'static str {
        match self {
            Stack::Tandem => "tandem node + tandem sentinel + tandem proxy",
            Stack::Redis => "redis-server + redis-sentinel + twemproxy",
        }
    }
}

/// How an own deployment is configured.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub stack: Stack,
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    /// The Tandem proxy's write concern; twemproxy only has `master`.
    pub write_concern: String,
    /// The scenario restarts the proxy under load: Tandem then runs a `tandem proxy` of its
    /// own beside `tandem up`'s (whose proxy `up` would not restart); twemproxy always can be.
    pub restartable_proxy: bool,
    /// Every node sits behind a [`Relay`] and announces the relay's address
    /// (`replica-announce-ip`/`-port`): replicas follow the master's relay, the sentinels
    /// monitor it and the proxy reaches the master through it. The sentinels and the
    /// replication links connect from [`SERVER_SIDE`] (`bind-source-addr`), the proxy and the
    /// clients from 127.0.0.1, so a relay can cut a node off from the one and not the other.
    pub relays: bool,
}

impl DeployOptions {
    /// The deployment flags of `a`, checked.
    pub fn from_args(a: &crate::BenchArgs) -> Result<DeployOptions> {
        if !matches!(a.write_concern.as_str(), "master" | "replicated") {
            bail!("--write-concern: must be master or replicated");
        }
        if a.stack == Stack::Redis && a.write_concern != "master" {
            bail!("--write-concern {}: twemproxy has no write concern (it acknowledges what the master acknowledged); use master with --stack redis", a.write_concern);
        }
        if a.stack != Stack::Tandem && !a.sentinels.is_empty() {
            bail!("--stack: chooses what a scenario starts; with --sentinel it runs against an existing deployment (drop one of them)");
        }
        Ok(DeployOptions {
            stack: a.stack,
            down_after_ms: a.down_after_ms,
            failover_timeout_ms: a.failover_timeout_ms,
            write_concern: a.write_concern.clone(),
            restartable_proxy: false,
            relays: false,
        })
    }
}

/// The proxy under load, and how to start it again.
pub(super) enum ProxyProc {
    /// The proxy of an external deployment or of `tandem up`: not restarted here.
    Fixed,
    /// A `tandem proxy` of the scenario's own: its arguments and process.
    Tandem { argv: Vec<String>, child: Child },
    /// twemproxy: the script `nutcracker.sh` in the deployment dir starts it (again) and
    /// records its pid in `nutcracker.pid` (the Sentinel client-reconfig-script uses it too).
    Twemproxy,
}

/// The processes of an own deployment.
pub(super) struct Own {
    pub dir: tempfile::TempDir,
    /// The process group every process of the deployment is in.
    pub pgid: i32,
    /// Processes started directly by this process, reaped on drop.
    pub children: Vec<Child>,
    pub proxy: ProxyProc,
}

/// A deployment under test; an own one (started here) is killed with its process group on
/// drop.
pub struct Deployment {
    pub stack: Stack,
    /// The one endpoint clients use.
    pub proxy: String,
    pub sentinels: Vec<String>,
    /// The nodes of an own deployment (their own addresses, not their relays'), the first
    /// master first; empty for an external one.
    pub nodes: Vec<String>,
    /// With [`DeployOptions::relays`]: `relays[i]` forwards to `nodes[i]`.
    pub relays: Vec<Relay>,
    pub(super) own: Option<Own>,
}

impl Deployment {
    /// An existing deployment: the proxy and its sentinels.
    pub fn external(proxy: &str, sentinels: &[String]) -> Deployment {
        Deployment {
            stack: Stack::Tandem,
            proxy: proxy.to_string(),
            sentinels: sentinels.to_vec(),
            nodes: Vec::new(),
            relays: Vec::new(),
            own: None,
        }
    }

    /// An own deployment whose processes a scenario started itself (all in process group
    /// `pgid`, killed on drop; `children` are reaped then); its proxy is not restartable.
    pub fn assembled(
        stack: Stack,
        proxy: String,
        sentinels: Vec<String>,
        nodes: Vec<String>,
        dir: tempfile::TempDir,
        pgid: i32,
        children: Vec<Child>,
    ) -> Deployment {
        Deployment {
            stack,
            proxy,
            sentinels,
            nodes,
            relays: Vec::new(),
            own: Some(Own {
                dir,
                pgid,
                children,
                proxy: ProxyProc::Fixed,
            }),
        }
    }

    /// The index of the node at `addr`: its own address or its relay's.
    pub fn node_behind(&self, addr: &str) -> Result<usize> {
        self.nodes
            .iter()
            .position(|n| n == addr)
            .or_else(|| self.relays.iter().position(|r| r.addr.to_string() == addr))
            .ok_or_else(|| anyhow!("{addr} is not a node of this deployment"))
    }

    /// Starts an own deployment of `o.stack` on free loopback ports in a temp dir and waits
    /// until it is ready (see [`wait_ready`]).
    pub async fn start(o: &DeployOptions) -> Result<Deployment> {
        let mut d = match (o.stack, o.relays) {
            (Stack::Tandem, false) => start_tandem(o)?,
            (Stack::Tandem, true) => start_tandem_behind_relays(o).await?,
            (Stack::Redis, _) => redis_stack::start(o).await?,
        };
        wait_ready(&d).await?;
        if o.restartable_proxy && o.stack == Stack::Tandem {
            d.own_tandem_proxy(&o.write_concern).await?;
        }
        Ok(d)
    }

    /// Whether this deployment was started here.
    pub fn is_own(&self) -> bool {
        self.own.is_some()
    }

    /// The process group of an own deployment (processes started by the scenario join it,
    /// so dropping the deployment kills them too).
    pub fn pgid(&self) -> Option<i32> {
        self.own.as_ref().map(|o| o.pgid)
    }

    /// The temp dir of an own deployment (configs, data, logs).
    pub fn dir(&self) -> Option<&Path> {
        self.own.as_ref().map(|o| o.dir.path())
    }

    /// Fails, naming the log and quoting it, if a process of an own deployment panicked: a
    /// scenario's counts mean nothing when a component crashed under it (a panicking thread
    /// closes its clients, which then look like a failover's refusals).
    pub fn check_no_panics(&self) -> Result<()> {
        match self.dir().map(panic_in_logs).transpose()?.flatten() {
            Some((log, excerpt)) => bail!("a process panicked ({}): {excerpt}", log.display()),
            None => Ok(()),
        }
    }

    fn own_dir(&self) -> Result<PathBuf> {
        self.dir()
            .map(Path::to_path_buf)
            .context("an external deployment is not restarted by the scenario")
    }

    /// kill -9s node `i` (pid from its `INFO server`) and starts it again with the same port,
    /// data directory and configuration, as a replica of `master`; returns once its link to
    /// the master is up.
    pub async fn restart_replica(&mut self, i: usize, master: &str) -> Result<()> {
        let addr = self
            .nodes
            .get(i)
            .cloned()
            .with_context(|| format!("no node {i} in this deployment"))?;
        let pid: i32 = info_field(&addr, "server", "process_id")
            .await?
            .parse()
            .context("process_id is not a number")?;
        kill9(pid)?;
        tracing::info!(pid, %addr, "killed a replica");
        let dir = self.own_dir()?;
        let (mhost, mport) = master
            .rsplit_once(':')
            .context("master address has no port")?;
        let port = addr.rsplit_once(':').map(|p| p.1).unwrap_or_default();
        let name = format!("node-{}", i + 1);
        let log = dir.join(format!("{name}.restarts.log"));
        let pgid = self.pgid();
        let spawn = || -> Result<Child> {
            match self.stack {
                Stack::Tandem => {
                    let data = dir.join("data").join(&name).display().to_string();
                    let argv: Vec<String> = [
                        "node",
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        port,
                        "--dir",
                        &data,
                        "--replicaof",
                        mhost,
                        mport,
                        "--repl-diskless-sync-delay",
                        "0",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    spawn_tandem(&argv, &log, pgid)
                }
                Stack::Redis => redis_stack::spawn_node(&dir, i, Some((mhost, mport)), &log, pgid),
            }
        };
        let deadline = Instant::now() + RELINK_TIMEOUT;
        let mut child = spawn()?;
        let linked = loop {
            // The killed process may still hold the port for a moment: start again if the
            // new one gave up.
            if child.try_wait()?.is_some() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                child = spawn()?;
            }
            if let Ok(s) = info_field(&addr, "replication", "master_link_status").await {
                if s == "up" {
                    break true;
                }
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if let Some(own) = &mut self.own {
            own.children.push(child);
        }
        if !linked {
            bail!("replica {addr} not linked to {master} within {RELINK_TIMEOUT:?} after restart");
        }
        Ok(())
    }

    /// kill -9s the proxy under load and starts it again on the same port with the same
    /// configuration; returns the moment of the kill once the new one answers PING.
    pub async fn restart_proxy(&mut self) -> Result<Instant> {
        let dir = self.own_dir()?;
        let pgid = self.pgid();
        let addr = self.proxy.clone();
        let own = self.own.as_mut().context("no own deployment")?;
        match &mut own.proxy {
            ProxyProc::Fixed => bail!(
                "this deployment's proxy is not restartable (start it with restartable_proxy)"
            ),
            ProxyProc::Tandem { argv, child } => {
                let killed_at = Instant::now();
                kill9(child.id() as i32)?;
                let _ = child.wait();
                tracing::info!(%addr, "killed the proxy");
                let log = dir.join("proxy-under-test.log");
                *child = start_tandem_proxy(argv, &addr, &log, pgid).await?;
                Ok(killed_at)
            }
            ProxyProc::Twemproxy => {
                let pid = redis_stack::twemproxy_pid(&dir)?;
                let killed_at = Instant::now();
                kill9(pid)?;
                tracing::info!(pid, %addr, "killed twemproxy");
                redis_stack::run_nutcracker_script(&dir, pgid, None).await?;
                wait_ping(&addr, PROXY_START_TIMEOUT)
                    .await
                    .with_context(|| redis_stack::log_tail(&dir.join("nutcracker.log")))?;
                Ok(killed_at)
            }
        }
    }

    /// Starts a `tandem proxy` of the scenario's own (the one under load, which
    /// [`Deployment::restart_proxy`] restarts) and waits until a write through it is
    /// acknowledged.
    async fn own_tandem_proxy(&mut self, write_concern: &str) -> Result<()> {
        let dir = self.own_dir()?;
        let pgid = self.pgid();
        let port = free_block(1)?;
        let metrics_port = free_block(1)?;
        let addr = format!("127.0.0.1:{port}");
        let argv: Vec<String> = vec![
            "proxy".into(),
            "--listen".into(),
            addr.clone(),
            "--sentinels".into(),
            self.sentinels.join(","),
            "--master-name".into(),
            MASTER_NAME.into(),
            "--metrics".into(),
            format!("127.0.0.1:{metrics_port}"),
            "--write-concern".into(),
            write_concern.into(),
        ];
        let log = dir.join("proxy-under-test.log");
        let child = start_tandem_proxy(&argv, &addr, &log, pgid).await?;
        if let Some(own) = &mut self.own {
            own.proxy = ProxyProc::Tandem { argv, child };
        }
        self.proxy = addr.clone();
        // The proxy has found the master when a write through it is acknowledged.
        let deadline = Instant::now() + PROXY_START_TIMEOUT;
        while !matches!(
            call(&addr, &["SET", "scenario:probe", "1"]).await,
            Ok(Reply::Ok)
        ) {
            if Instant::now() > deadline {
                bail!("the proxy on {addr} acknowledged no write within {PROXY_START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(own) = &mut self.own {
            let pgid = nix::unistd::Pid::from_raw(own.pgid);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            if let ProxyProc::Tandem { child, .. } = &mut own.proxy {
                let _ = child.wait();
            }
            for c in &mut own.children {
                let _ = c.wait();
            }
        }
    }
}

/// The Rust panic a process's log shows, if any: its first `lines` lines (from the
/// `panicked at` line on) joined by ` | `.
pub fn panic_excerpt(log: &str, lines: usize) -> Option<String> {
    let at = log.find("panicked at")?;
    let line_start = log[..at].rfind('\n').map_or(0, |n| n + 1);
    Some(
        log[line_start..]
            .lines()
            .take(lines)
            .collect::<Vec<_>>()
            .join(" | "),
    )
}

/// The first `*.log` under `dir` (recursively) that shows a Rust panic, with the panic's
/// first three lines ([`panic_excerpt`]).
fn panic_in_logs(dir: &Path) -> Result<Option<(PathBuf, String)>> {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if let Some(excerpt) = panic_excerpt(&text, 3) {
                    return Ok(Some((path, excerpt)));
                }
            }
        }
    }
    Ok(None)
}

/// Starts `tandem up` (this same binary) on free ports in a temp dir, in its own process
/// group (the group of the whole deployment).
fn start_tandem(o: &DeployOptions) -> Result<Deployment> {
    let exe = std::env::current_exe().context("cannot find the tandem executable")?;
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let node_port = free_block(3)?;
    let sentinel_port = free_block(3)?;
    let proxy_port = free_block(1)?;
    let metrics_port = free_block(1)?;
    let log = std::fs::File::create(dir.path().join("up.log"))?;
    let child = Command::new(exe)
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
        stack: Stack::Tandem,
        proxy: format!("127.0.0.1:{proxy_port}"),
        sentinels: loopback_block(sentinel_port, 3),
        nodes: loopback_block(node_port, 3),
        relays: Vec::new(),
        own: Some(Own {
            pgid: child.id() as i32,
            dir,
            children: vec![child],
            proxy: ProxyProc::Fixed,
        }),
    })
}

/// Starts the Tandem deployment behind relays ([`DeployOptions::relays`]): 3 `tandem node`
/// (config files announcing their relays), 3 `tandem sentinel` and `tandem proxy` (this same
/// binary), in one process group led by the first node, in a temp dir.
async fn start_tandem_behind_relays(o: &DeployOptions) -> Result<Deployment> {
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let node_port = free_block(3)?;
    let sentinel_port = free_block(3)?;
    let proxy_port = free_block(1)?;
    let mut relays = Vec::new();
    for i in 0..3 {
        relays.push(Relay::start(SocketAddr::from(([127, 0, 0, 1], node_port + i))).await?);
    }
    let master_relay = relays[0].addr.port();
    let mut children: Vec<Child> = Vec::new();
    let mut started: Vec<(String, String, PathBuf)> = Vec::new();
    let mut spawn = |argv: &[String], log: &Path| -> Result<()> {
        let pgid = children.first().map(|c| c.id() as i32);
        children.push(spawn_tandem(argv, log, pgid)?);
        Ok(())
    };
    for i in 0..3u16 {
        let name = format!("node-{}", i + 1);
        let ndir = dir.path().join(&name);
        std::fs::create_dir_all(&ndir)?;
        let conf = ndir.join("node.toml");
        let port = node_port + i;
        let relay = relays[i as usize].addr.port();
        std::fs::write(
            &conf,
            tandem_node_config(port, &ndir, relay, (i > 0).then_some(master_relay)),
        )?;
        let argv = vec!["node".into(), "--config".into(), conf.display().to_string()];
        let log = ndir.join("node.log");
        spawn(&argv, &log)?;
        started.push((name, format!("127.0.0.1:{port}"), log));
    }
    let sentinels: Vec<String> = loopback_block(sentinel_port, 3);
    for (i, addr) in sentinels.iter().enumerate() {
        let name = format!("sentinel-{}", i + 1);
        let sdir = dir.path().join(&name);
        std::fs::create_dir_all(&sdir)?;
        let argv: Vec<String> = vec![
            "sentinel".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            (sentinel_port + i as u16).to_string(),
            "--dir".into(),
            sdir.display().to_string(),
            "--monitor".into(),
            MASTER_NAME.into(),
            "127.0.0.1".into(),
            master_relay.to_string(),
            "2".into(),
            "--down-after-ms".into(),
            o.down_after_ms.to_string(),
            "--failover-timeout-ms".into(),
            o.failover_timeout_ms.to_string(),
            "--bind-source-addr".into(),
            SERVER_SIDE.to_string(),
        ];
        let log = sdir.join("sentinel.log");
        spawn(&argv, &log)?;
        started.push((name, addr.clone(), log));
    }
    let proxy = format!("127.0.0.1:{proxy_port}");
    let argv: Vec<String> = vec![
        "proxy".into(),
        "--listen".into(),
        proxy.clone(),
        "--sentinels".into(),
        sentinels.join(","),
        "--master-name".into(),
        MASTER_NAME.into(),
        "--metrics".into(),
        String::new(),
        "--write-concern".into(),
        o.write_concern.clone(),
    ];
    let log = dir.path().join("proxy.log");
    spawn(&argv, &log)?;
    started.push(("proxy".into(), proxy.clone(), log));
    let pgid = children.first().map(|c| c.id() as i32).unwrap_or(0);
    let mut d = Deployment::assembled(
        Stack::Tandem,
        proxy,
        sentinels,
        loopback_block(node_port, 3),
        dir,
        pgid,
        children,
    );
    d.relays = relays;
    for (name, addr, log) in &started {
        wait_ping(addr, START_TIMEOUT)
            .await
            .with_context(|| format!("{name} did not start; {}", redis_stack::log_tail(log)))?;
    }
    Ok(d)
}

/// A `tandem node` configuration file behind a relay: it announces its relay, follows
/// `master` (a relay's port) and makes its replication link from [`SERVER_SIDE`].
pub fn tandem_node_config(port: u16, dir: &Path, relay: u16, master: Option<u16>) -> String {
    let mut c = format!(
        "bind = \"127.0.0.1\"\nport = {port}\ndir = {:?}\nbind-source-addr = \"{SERVER_SIDE}\"\nreplica-announce-ip = \"127.0.0.1\"\nreplica-announce-port = {relay}\nrepl-diskless-sync-delay = 0\n",
        dir.display().to_string()
    );
    if let Some(m) = master {
        c.push_str(&format!("replicaof = \"127.0.0.1 {m}\"\n"));
    }
    c
}

/// Starts `tandem proxy` with `argv` and waits until it answers on `addr`; a start that
/// fails (the killed one may still hold the port for a moment) is retried.
async fn start_tandem_proxy(
    argv: &[String],
    addr: &str,
    log: &Path,
    pgid: Option<i32>,
) -> Result<Child> {
    let deadline = Instant::now() + PROXY_START_TIMEOUT;
    let mut child = spawn_tandem(argv, log, pgid)?;
    loop {
        if child.try_wait()?.is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            child = spawn_tandem(argv, log, pgid)?;
        }
        if wait_ping(addr, Duration::from_millis(100)).await.is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the proxy on {addr} did not answer PING within {PROXY_START_TIMEOUT:?}");
        }
    }
}

/// Waits until the sentinels know each other and both replicas, the master has both replicas
/// online, and a write through the proxy is acknowledged.
pub async fn wait_ready(d: &Deployment) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last;
    loop {
        let ready: Result<()> = async {
            // An own deployment has 3 sentinels and 2 replicas; an external one needs at
            // least another sentinel and a replica to fail over to.
            let (sentinels, replicas) = if d.is_own() { (2, 2) } else { (1, 1) };
            for s in &d.sentinels {
                let m = call(s, &["SENTINEL", "MASTER", MASTER_NAME]).await?;
                let num = |f: &str| field(&m, f).and_then(|v| v.parse::<u64>().ok());
                let (others, slaves) = (num("num-other-sentinels"), num("num-slaves"));
                if others < Some(sentinels) || slaves < Some(replicas) {
                    bail!("sentinel {s}: {others:?} other sentinels, {slaves:?} replicas");
                }
            }
            // Online, not just connected: redis-server's replicas wait for the diskless
            // sync (repl-diskless-sync-delay, 5 s) before they hold the data.
            let master = master_addr(&d.sentinels).await?;
            let r = call(&master, &["INFO", "replication"]).await?;
            let online = text(&r).map(|b| online_replicas(&b)).unwrap_or(0);
            if online < replicas {
                bail!("master {master} has {online} replicas online");
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

/// How many replicas a master's `INFO replication` lists as `state=online`.
fn online_replicas(info: &str) -> u64 {
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy_options(flags: &[&str]) -> Result<DeployOptions> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: crate::BenchArgs,
        }
        let mut argv = vec!["bench"];
        argv.extend_from_slice(flags);
        DeployOptions::from_args(&Cli::try_parse_from(argv)?.args)
    }

    #[test]
    fn stack_flag_and_what_twemproxy_cannot_do() {
        assert_eq!(deploy_options(&[]).unwrap().stack, Stack::Tandem);
        let o = deploy_options(&["--stack", "redis", "--down-after-ms", "700"]).unwrap();
        assert_eq!((o.stack, o.down_after_ms), (Stack::Redis, 700));
        assert_eq!(serde_json::json!(o.stack), "redis");
        for (flags, needle) in [
            (
                &["--stack", "redis", "--write-concern", "replicated"][..],
                "twemproxy has no write concern",
            ),
            (&["--stack", "redis", "--sentinel", "h:1"], "--stack"),
            (&["--write-concern", "all"], "--write-concern"),
        ] {
            let e = deploy_options(flags).unwrap_err().to_string();
            assert!(e.contains(needle), "{flags:?}: {e}");
        }
    }

    #[test]
    fn tandem_node_config_announces_the_relay_and_binds_the_server_side() {
        let text = tandem_node_config(7001, std::path::Path::new("/d"), 9001, Some(9000));
        let c: tandem_config::NodeConfig =
            tandem_config::parse(&text, std::path::Path::new("node.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.bind_source_addr.as_deref(), Some("127.0.0.2"));
        assert_eq!(c.replica_announce_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.replica_announce_port, Some(9001));
        let r = c.replicaof.unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 9000));
        assert_eq!(c.dir, std::path::PathBuf::from("/d"));
    }

    #[test]
    fn panics_are_found_in_any_log_below_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("up.log"), "INFO started\n").unwrap();
        std::fs::create_dir(dir.path().join("node-1")).unwrap();
        std::fs::write(dir.path().join("node-1/data.rdb"), "panicked at nowhere").unwrap();
        assert!(panic_in_logs(dir.path()).unwrap().is_none());
        let log = dir.path().join("node-1/node.log");
        std::fs::write(
            &log,
            "INFO ready\nthread 'io-0' panicked at node/src/session.rs:275:28:\nattempt to subtract with overflow\nstack backtrace:\nmore\n",
        )
        .unwrap();
        let (at, excerpt) = panic_in_logs(dir.path()).unwrap().expect("found");
        assert_eq!(at, log);
        assert_eq!(
            excerpt,
            "thread 'io-0' panicked at node/src/session.rs:275:28: | attempt to subtract with overflow | stack backtrace:"
        );
    }

    #[test]
    fn only_online_replicas_count() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7002,state=online,offset=900,lag=1\r\n\
            slave1:ip=127.0.0.1,port=7003,state=wait_bgsave,offset=0,lag=7\r\n";
        assert_eq!(online_replicas(info), 1);
        assert_eq!(online_replicas("role:master\r\n"), 0);
    }
}

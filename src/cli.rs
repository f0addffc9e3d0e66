//! Command-line interface: clap definitions for every subcommand, the config file + flags
//! merge (flags win), and the runtime that starts the chosen component.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tandem_config::{
    MaxmemoryPolicy, MemSize, MonitorConfig, NodeConfig, ProxyConfig, ReadPolicy, ReplicaOf,
    SentinelConfig, WriteConcern,
};

#[derive(Parser, Debug)]
#[command(
    name = "tandem",
    version,
    about = "Redis-compatible high-availability stack"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Redis-compatible data node.
    Node(Box<NodeArgs>),
    /// Run a sentinel (failure detection and automatic failover).
    Sentinel(Box<SentinelArgs>),
    /// Run the proxy (one endpoint for applications).
    Proxy(Box<ProxyArgs>),
    /// Load-test RESP endpoints (closed or open loop, hdrhistogram latencies).
    Bench(Box<tandem_bench::BenchArgs>),
    /// Start a complete local deployment (3 nodes, 3 sentinels, proxy).
    Up(crate::up::UpArgs),
}

/// `tandem node`: flags mirror redis-server's.
#[derive(Args, Debug, Default)]
pub struct NodeArgs {
    /// TOML configuration file; flags given here override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub bind: Option<String>,
    /// Source address of outgoing connections (the replication link to the master).
    #[arg(long = "bind-source-addr")]
    pub bind_source_addr: Option<String>,
    #[arg(long)]
    pub requirepass: Option<String>,
    #[arg(long)]
    pub masterauth: Option<String>,
    #[arg(long)]
    pub masteruser: Option<String>,
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub dbfilename: Option<String>,
    /// Start as a replica of HOST PORT.
    #[arg(long, num_args = 2, value_names = ["HOST", "PORT"])]
    pub replicaof: Option<Vec<String>>,
    /// Seconds a diskless full sync waits for more replicas (Redis's default 5).
    #[arg(long = "repl-diskless-sync-delay")]
    pub repl_diskless_sync_delay: Option<u64>,
    /// Connection threads (0: half the cores, at least one).
    #[arg(long = "io-threads")]
    pub io_threads: Option<usize>,
    #[arg(long)]
    pub maxmemory: Option<String>,
    #[arg(long = "maxmemory-policy")]
    pub maxmemory_policy: Option<String>,
    #[arg(long)]
    pub databases: Option<usize>,
    #[arg(long)]
    pub save: Option<String>,
    #[arg(long)]
    pub appendonly: Option<String>,
    #[arg(long)]
    pub loglevel: Option<String>,
    #[arg(long)]
    pub logfile: Option<String>,
}

impl NodeArgs {
    /// The file's configuration (or defaults) with the flags applied on top.
    pub fn resolve(&self) -> Result<NodeConfig, String> {
        let mut c: NodeConfig =
            tandem_config::load_or_default(self.config.as_deref()).map_err(|e| e.to_string())?;
        if let Some(v) = self.port {
            c.port = v;
        }
        if let Some(v) = &self.bind {
            c.bind = v.clone();
        }
        if let Some(v) = &self.bind_source_addr {
            c.bind_source_addr = Some(v.clone());
        }
        if let Some(v) = &self.requirepass {
            c.requirepass = Some(v.clone());
        }
        if let Some(v) = &self.masterauth {
            c.masterauth = Some(v.clone());
        }
        if let Some(v) = &self.masteruser {
            c.masteruser = Some(v.clone());
        }
        if let Some(v) = &self.dir {
            c.dir = v.clone();
        }
        if let Some(v) = &self.dbfilename {
            c.dbfilename = v.clone();
        }
        if let Some(v) = &self.replicaof {
            let port = v[1]
                .parse()
                .map_err(|_| format!("--replicaof: invalid port {:?}", v[1]))?;
            c.replicaof = Some(ReplicaOf {
                host: v[0].clone(),
                port,
            });
        }
        if let Some(v) = self.repl_diskless_sync_delay {
            c.repl_diskless_sync_delay = v;
        }
        if let Some(v) = self.io_threads {
            c.io_threads = v;
        }
        if let Some(v) = &self.maxmemory {
            c.maxmemory =
                MemSize::parse(v).ok_or_else(|| format!("--maxmemory: invalid size {v:?}"))?;
        }
        if let Some(v) = &self.maxmemory_policy {
            c.maxmemory_policy = MaxmemoryPolicy::parse(v)
                .ok_or_else(|| format!("--maxmemory-policy: unknown policy {v:?}"))?;
        }
        if let Some(v) = self.databases {
            c.databases = v;
        }
        if let Some(v) = &self.save {
            c.save = v.clone();
        }
        if let Some(v) = &self.appendonly {
            c.appendonly = parse_yes_no(v)
                .ok_or_else(|| format!("--appendonly: expected yes or no, got {v:?}"))?;
        }
        if let Some(v) = &self.loglevel {
            c.loglevel = v.clone();
        }
        if let Some(v) = &self.logfile {
            c.logfile = v.clone();
        }
        c.validate()?;
        Ok(c)
    }
}

/// `tandem sentinel`: flags mirror redis-sentinel's configuration directives.
#[derive(Args, Debug, Default)]
pub struct SentinelArgs {
    /// TOML configuration file; flags given here override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub bind: Option<String>,
    /// Directory of the state file.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long = "state-file")]
    pub state_file: Option<String>,
    #[arg(long = "announce-ip")]
    pub announce_ip: Option<String>,
    #[arg(long = "announce-port")]
    pub announce_port: Option<u16>,
    /// Source address of every outgoing connection (to masters, replicas and sentinels).
    #[arg(long = "bind-source-addr")]
    pub bind_source_addr: Option<String>,
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Monitor a master: NAME HOST PORT QUORUM (repeatable).
    #[arg(long, num_args = 4, value_names = ["NAME", "HOST", "PORT", "QUORUM"], action = clap::ArgAction::Append)]
    pub monitor: Vec<String>,
    /// down-after-milliseconds of every monitored master.
    #[arg(long = "down-after-ms")]
    pub down_after_ms: Option<u64>,
    /// failover-timeout (ms) of every monitored master.
    #[arg(long = "failover-timeout-ms")]
    pub failover_timeout_ms: Option<u64>,
    #[arg(long = "parallel-syncs")]
    pub parallel_syncs: Option<u32>,
    /// Password of the monitored masters and replicas.
    #[arg(long = "auth-pass")]
    pub auth_pass: Option<String>,
    #[arg(long)]
    pub loglevel: Option<String>,
}

impl SentinelArgs {
    /// The file's configuration (or defaults) with the flags applied on top.
    pub fn resolve(&self) -> Result<SentinelConfig, String> {
        let mut c: SentinelConfig =
            tandem_config::load_or_default(self.config.as_deref()).map_err(|e| e.to_string())?;
        if let Some(v) = self.port {
            c.port = v;
        }
        if let Some(v) = &self.bind {
            c.bind = v.clone();
        }
        if let Some(v) = &self.dir {
            c.dir = v.clone();
        }
        if let Some(v) = &self.state_file {
            c.state_file = v.clone();
        }
        if let Some(v) = &self.announce_ip {
            c.announce_ip = Some(v.clone());
        }
        if let Some(v) = self.announce_port {
            c.announce_port = Some(v);
        }
        if let Some(v) = &self.bind_source_addr {
            c.bind_source_addr = Some(v.clone());
        }
        if let Some(v) = &self.requirepass {
            c.requirepass = Some(v.clone());
        }
        for m in self.monitor.chunks(4) {
            let [name, host, port, quorum] = m else {
                return Err("--monitor takes NAME HOST PORT QUORUM".into());
            };
            let port = port
                .parse()
                .map_err(|_| format!("--monitor {name}: invalid port {port:?}"))?;
            let quorum = quorum.parse().ok().filter(|q| *q > 0).ok_or_else(|| {
                format!("--monitor {name}: quorum must be 1 or greater, got {quorum:?}")
            })?;
            c.monitors.retain(|x| x.name != *name);
            c.monitors.push(MonitorConfig {
                name: name.clone(),
                host: host.clone(),
                port,
                quorum,
                down_after_ms: 30_000,
                failover_timeout_ms: 180_000,
                parallel_syncs: 1,
                auth_pass: None,
                auth_user: None,
            });
        }
        for m in &mut c.monitors {
            if let Some(v) = self.down_after_ms {
                m.down_after_ms = v;
            }
            if let Some(v) = self.failover_timeout_ms {
                m.failover_timeout_ms = v;
            }
            if let Some(v) = self.parallel_syncs {
                m.parallel_syncs = v;
            }
            if let Some(v) = &self.auth_pass {
                m.auth_pass = Some(v.clone());
            }
        }
        Ok(c)
    }
}

/// `tandem proxy`: flags override the config file (and are re-applied on SIGHUP reloads).
#[derive(Args, Debug, Default, Clone)]
pub struct ProxyArgs {
    /// TOML configuration file (reloaded on SIGHUP).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address clients connect to (host:port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Sentinels to follow, comma-separated host:port list.
    #[arg(long, value_delimiter = ',')]
    pub sentinels: Option<Vec<String>>,
    /// Name of the master the sentinels monitor.
    #[arg(long = "master-name")]
    pub master_name: Option<String>,
    /// Static master (no sentinels).
    #[arg(long)]
    pub master: Option<String>,
    /// Static replica (repeatable).
    #[arg(long = "replica")]
    pub replicas: Vec<String>,
    /// master | replicas | lag-aware.
    #[arg(long = "read-policy")]
    pub read_policy: Option<String>,
    #[arg(long = "max-lag-ms")]
    pub max_lag_ms: Option<u64>,
    /// Prometheus endpoint address (ip:port); empty disables it.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Password clients must send.
    #[arg(long)]
    pub password: Option<String>,
    /// Password sent to the nodes.
    #[arg(long = "backend-password")]
    pub backend_password: Option<String>,
    /// master | replicated.
    #[arg(long = "write-concern")]
    pub write_concern: Option<String>,
    /// Worker threads (0: half the cores, at least one).
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long)]
    pub loglevel: Option<String>,
}

impl ProxyArgs {
    /// The file's configuration (or defaults) with the flags applied on top.
    pub fn resolve(&self) -> Result<ProxyConfig, String> {
        let mut c: ProxyConfig =
            tandem_config::load_or_default(self.config.as_deref()).map_err(|e| e.to_string())?;
        if let Some(v) = &self.listen {
            c.listen = v.clone();
        }
        if let Some(v) = &self.sentinels {
            c.sentinels = v.iter().filter(|s| !s.is_empty()).cloned().collect();
            c.master = None;
        }
        if let Some(v) = &self.master_name {
            c.master_name = v.clone();
        }
        if let Some(v) = &self.master {
            c.master = Some(v.clone());
            c.sentinels.clear();
        }
        if !self.replicas.is_empty() {
            c.replicas = self.replicas.clone();
        }
        if let Some(v) = &self.read_policy {
            c.read_policy = match v.as_str() {
                "master" => ReadPolicy::Master,
                "replicas" => ReadPolicy::Replicas,
                "lag-aware" => ReadPolicy::LagAware,
                _ => {
                    return Err(format!(
                        "--read-policy: expected master, replicas or lag-aware, got {v:?}"
                    ))
                }
            };
        }
        if let Some(v) = self.max_lag_ms {
            c.max_lag_ms = v;
        }
        if let Some(v) = &self.metrics {
            c.metrics = v.clone();
        }
        if let Some(v) = &self.password {
            c.password = Some(v.clone());
        }
        if let Some(v) = &self.backend_password {
            c.backend_password = Some(v.clone());
        }
        if let Some(v) = &self.write_concern {
            c.write_concern = match v.as_str() {
                "master" => WriteConcern::Master,
                "replicated" => WriteConcern::Replicated,
                _ => {
                    return Err(format!(
                        "--write-concern: expected master or replicated, got {v:?}"
                    ))
                }
            };
        }
        if let Some(v) = self.threads {
            c.threads = v;
        }
        tandem_proxy::validate(&c)?;
        Ok(c)
    }
}

fn run_proxy(args: ProxyArgs) -> ExitCode {
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tandem proxy: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(args.loglevel.as_deref().unwrap_or("notice"));
    let reload: Option<tandem_proxy::Reloader> = args.config.is_some().then(|| {
        let a = args.clone();
        Box::new(move || a.resolve()) as tandem_proxy::Reloader
    });
    match tandem_proxy::run(config, reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem proxy: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse_yes_no(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn init_logging(level: &str) {
    let filter = match level {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Node(args) => run_node(*args),
        Command::Sentinel(args) => run_sentinel(*args),
        Command::Proxy(args) => run_proxy(*args),
        Command::Bench(args) => tandem_bench::main(*args),
        Command::Up(args) => crate::up::run(args),
    }
}

fn run_sentinel(args: SentinelArgs) -> ExitCode {
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tandem sentinel: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(args.loglevel.as_deref().unwrap_or("notice"));
    let Some(rt) = runtime("sentinel") else {
        return ExitCode::from(1);
    };
    let result = rt.block_on(async move {
        let addr = format!("{}:{}", config.bind, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "tandem sentinel ready to accept connections");
        tandem_sentinel::run(config, listener, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem sentinel: {e}");
            ExitCode::from(1)
        }
    }
}

/// The runtime of the node and the sentinel: one worker for accepting and periodic work
/// (the node's connections run on threads of their own). `None` after reporting the error.
fn runtime(what: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("tandem {what}: cannot start the runtime: {e}");
            None
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; }, None => std::future::pending::<()>().await } } => {},
    }
    tracing::info!("received a shutdown signal");
}

fn run_node(args: NodeArgs) -> ExitCode {
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tandem node: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(&config.loglevel);
    let Some(rt) = runtime("node") else {
        return ExitCode::from(1);
    };
    let result = rt.block_on(async move {
        let addr = format!("{}:{}", config.bind, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "tandem node ready to accept connections");
        let srv = tandem_node::Server::new(config);
        if let Some(path) = &args.config {
            srv.admin.set_config_file(path);
        }
        tandem_node::persistence::load_at_startup(&srv)?;
        tandem_node::run(srv, listener, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => {
            tracing::info!("tandem node is now ready to exit, bye bye");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tandem node: {e}");
            ExitCode::from(1)
        }
    }
}

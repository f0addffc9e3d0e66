//! `tandem proxy`: one endpoint for applications. Writes go to the current master, reads to
//! replicas that are fresh enough, every client reads its own writes, and the proxy follows
//! failovers announced by the sentinels without dropping client connections.
//!
//! Layout:
//! - [`listener`]: binds the client port, starts single-threaded workers (half the cores) and hands
//!   each accepted client to a worker; the control thread runs topology, metrics and SIGHUP.
//! - [`session`]: one client connection: request decoding, in-order replies, pinned
//!   connections (MULTI/WATCH, blocking commands, pub/sub), read-your-writes bookkeeping.
//! - [`router`]: pure routing decisions (command class, replica choice, read-your-writes).
//! - [`pool`]: multiplexed, pipelined backend connections shared by a worker's clients.
//! - [`topology`]: follows the sentinels (or a static list), confirms masters with ROLE and
//!   publishes an atomically swapped snapshot; config reloads go through the same path.
//! - [`lag`]: INFO replication polling of every node and lag measurement.
//! - [`metrics`]: the Prometheus `/metrics` endpoint and cached metric handles.
//!
//! Replies are relayed as the bytes the backend sent: their boundaries come from
//! [`tandem_protocol::scan`].

pub mod lag;
pub mod listener;
pub mod metrics;
pub mod pool;
pub mod router;
pub mod session;
pub mod topology;

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;
use tandem_config::ProxyConfig;

pub use listener::run;
pub use topology::Snapshot;

/// How often every node's `INFO replication` is polled (lag and read-your-writes resolution).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Produces a fresh configuration when SIGHUP arrives (file re-read, flags re-applied).
pub type Reloader = Box<dyn Fn() -> Result<ProxyConfig, String> + Send + Sync>;

/// State shared by the control thread and every worker.
pub struct Shared {
    /// The configuration in force; swapped whole on SIGHUP.
    pub config: Arc<ArcSwap<ProxyConfig>>,
    /// Bumped on every config change that affects backend connections (pools are rebuilt).
    pub config_gen: AtomicU64,
    /// The routing snapshot: master, replicas and their health.
    pub topo: Arc<ArcSwap<Snapshot>>,
    /// Publishes a new value on every snapshot (queued writes wait on it).
    pub topo_changed: tokio::sync::watch::Sender<u64>,
    /// Counter of INFO polls sent: a poll's number is taken just before it is sent.
    pub poll_sent: AtomicU64,
    /// Requests waiting for a master (bounded by `failover_queue_max`).
    pub queued: AtomicUsize,
}

impl Shared {
    pub fn new(config: ProxyConfig) -> Arc<Shared> {
        let (tx, _rx) = tokio::sync::watch::channel(0);
        Arc::new(Shared {
            config: Arc::new(ArcSwap::from_pointee(config)),
            config_gen: AtomicU64::new(1),
            topo: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            topo_changed: tx,
            poll_sent: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        })
    }
}

/// Checks a configuration before it is used (at start and on reload).
pub fn validate(c: &ProxyConfig) -> Result<(), String> {
    let has_sentinels = !c.sentinels.is_empty();
    if has_sentinels && c.master.is_some() {
        return Err("give either sentinels (with master-name) or a static master, not both".into());
    }
    if !has_sentinels && c.master.is_none() {
        return Err("no backend: give sentinels and master-name, or a static master".into());
    }
    if has_sentinels && c.master_name.is_empty() {
        return Err("master-name is empty".into());
    }
    for a in c
        .sentinels
        .iter()
        .chain(c.master.iter())
        .chain(c.replicas.iter())
    {
        parse_addr(a)?;
    }
    if c.pool_size == 0 || c.pool_size > 1024 {
        return Err(format!("pool-size must be 1..=1024, got {}", c.pool_size));
    }
    if c.listen.is_empty() {
        return Err("listen is empty".into());
    }
    Ok(())
}

/// Splits `host:port` (or `[v6]:port`).
pub fn parse_addr(a: &str) -> Result<(String, u16), String> {
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| format!("address {a:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("address {a:?} has an invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("address {a:?} has no host"));
    }
    Ok((host.to_string(), port))
}

//! `tandem sentinel`: watches masters and their replicas, agrees with its peers that a
//! master is down, elects one of them to lead, promotes the best replica and repoints
//! everything, as Redis Sentinel does (same commands, replies, events and hello messages),
//! with shorter timers and its state kept in an atomically replaced file.
//!
//! Layout:
//! - [`instance`]: the state (masters, replicas, peer sentinels, links), timers, SDOWN/ODOWN,
//!   and parsers for INFO and hello messages.
//! - [`election`]: vote granting and leader counting (majority of all known AND quorum).
//! - [`failover`]: when to start, replica selection, one function per failover state.
//! - [`monitor`]: links to instances (PING, INFO, hello, asks, reconfiguration), the main
//!   loop, and how replies change the state.
//! - [`api`]: the sentinel's own port: SENTINEL commands, INFO, ROLE, pub/sub events.
//! - [`persist`]: the state file.
//!
//! Decisions are plain functions of (state, input, now) that leave events and jobs in an
//! outbox; [`Shared::with`] applies them under the lock and then carries them out.

pub mod api;
pub mod election;
pub mod failover;
pub mod instance;
pub mod monitor;
pub mod persist;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_config::SentinelConfig;
use tandem_protocol::types::{random_hex_id, NodeAddr};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use instance::{Action, Core, Master, Sentinel, Settings};
use persist::{PersistError, StateFile};

/// Events kept for slow pub/sub subscribers before they start missing some.
const EVENT_BUFFER: usize = 4096;

/// One event as published on the sentinel's pub/sub: the channel is the event name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub channel: &'static str,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SentinelError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The state and the machinery around it, shared by the main loop, the links and the API.
pub struct Shared {
    pub state: parking_lot::Mutex<Sentinel>,
    pub links: parking_lot::Mutex<monitor::Links>,
    pub events: broadcast::Sender<Arc<Event>>,
    pub state_path: PathBuf,
    persist_lock: parking_lot::Mutex<()>,
    /// Password of our own port, also used to talk to peer sentinels.
    pub requirepass: Option<String>,
    pub started: Instant,
    pub port: u16,
    /// `bind-source-addr`: the source address of every outgoing link.
    pub bind_source_addr: Option<std::net::IpAddr>,
    pub next_client_id: AtomicU64,
    pub connections: AtomicU64,
    pub commands: AtomicU64,
}

impl Shared {
    /// Runs `f` on the state under the lock, then carries out what it left in the outbox
    /// (events, link jobs) and saves the state file if it changed.
    pub fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut Sentinel) -> R) -> R {
        let (r, out, dirty) = {
            let mut s = self.state.lock();
            let r = f(&mut s);
            let out = std::mem::take(&mut s.core.out);
            let dirty = std::mem::take(&mut s.core.dirty);
            (r, out, dirty)
        };
        if dirty {
            self.persist();
        }
        self.dispatch(out);
        r
    }

    fn dispatch(self: &Arc<Self>, out: Vec<Action>) {
        if out.is_empty() {
            return;
        }
        let mut crash = None;
        let mut links = self.links.lock();
        for a in out {
            match a {
                Action::Event { name, text } => {
                    tracing::warn!("{name} {text}");
                    let _ = self.events.send(Arc::new(Event {
                        channel: name,
                        text,
                    }));
                }
                Action::Job { target, job } => links.send(self, target, job),
                Action::Crash(why) => crash = Some(why),
            }
        }
        drop(links);
        if let Some(why) = crash {
            tracing::warn!("Failure simulation ({why}): this sentinel crashes now");
            std::process::exit(99);
        }
    }

    /// Writes the state file now (errors are logged: the sentinel keeps running).
    pub fn persist(&self) {
        let _w = self.persist_lock.lock();
        let snapshot = StateFile::of(&self.state.lock());
        if let Err(e) = persist::save(&self.state_path, &snapshot) {
            tracing::error!("{e}");
        }
    }
}

fn settings_of(m: &tandem_config::MonitorConfig) -> Settings {
    Settings {
        quorum: m.quorum,
        down_after: Duration::from_millis(m.down_after_ms),
        failover_timeout: Duration::from_millis(m.failover_timeout_ms),
        parallel_syncs: m.parallel_syncs,
        auth_pass: m.auth_pass.clone(),
        auth_user: m.auth_user.clone(),
    }
}

/// The address we announce: announce-ip/port, else the bind address (loopback when bound
/// to every interface) and our port.
fn announce_addr(cfg: &SentinelConfig) -> NodeAddr {
    let host = match &cfg.announce_ip {
        Some(ip) => ip.clone(),
        None if cfg.bind == "0.0.0.0" || cfg.bind == "::" || cfg.bind.is_empty() => {
            "127.0.0.1".to_string()
        }
        None => cfg.bind.clone(),
    };
    NodeAddr::new(host, cfg.announce_port.unwrap_or(cfg.port))
}

/// Builds the starting state: the state file if there is one (it knows the current
/// masters), plus every configured master it does not know yet.
pub fn initial_state(cfg: &SentinelConfig, now: Instant) -> Result<Sentinel, SentinelError> {
    let path = cfg.dir.join(&cfg.state_file);
    let saved = persist::load(&path)?;
    let myid = saved
        .as_ref()
        .map(|s| s.myid.clone())
        .unwrap_or_else(random_hex_id);
    let mut core = Core::new(myid, announce_addr(cfg));
    let mut masters = BTreeMap::new();
    if let Some(s) = &saved {
        core.current_epoch = s.current_epoch;
        for m in &s.masters {
            masters.insert(m.name.clone(), m.to_master(now));
        }
    }
    for mc in &cfg.monitors {
        if mc.quorum == 0 {
            return Err(SentinelError::Config(format!(
                "monitor {}: quorum must be 1 or greater",
                mc.name
            )));
        }
        if !masters.contains_key(&mc.name) {
            let m = Master::new(
                mc.name.clone(),
                NodeAddr::new(mc.host.clone(), mc.port),
                settings_of(mc),
                now,
            );
            core.event("+monitor", format!("{} quorum {}", m.desc(), mc.quorum));
            masters.insert(mc.name.clone(), m);
        }
    }
    core.dirty = true;
    Ok(Sentinel { core, masters })
}

/// Runs a sentinel on `listener` until `shutdown` completes.
pub async fn run(
    cfg: SentinelConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SentinelError> {
    let bind_source_addr = match cfg.bind_source_addr.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(a.parse().map_err(|_| {
            SentinelError::Config(format!("bind-source-addr: not an IP address: {a:?}"))
        })?),
    };
    let state = initial_state(&cfg, Instant::now())?;
    tracing::info!(
        "Sentinel ID is {}, monitoring {} master(s)",
        state.core.myid,
        state.masters.len()
    );
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(cfg.port);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let shared = Arc::new(Shared {
        state: parking_lot::Mutex::new(state),
        links: parking_lot::Mutex::new(monitor::Links::default()),
        events,
        state_path: cfg.dir.join(&cfg.state_file),
        persist_lock: parking_lot::Mutex::new(()),
        requirepass: cfg.requirepass.clone(),
        started: Instant::now(),
        port,
        bind_source_addr,
        next_client_id: AtomicU64::new(1),
        connections: AtomicU64::new(0),
        commands: AtomicU64::new(0),
    });
    // Saves the file (the id must survive a restart) and logs the start events.
    shared.with(|_| {});
    let timer = tokio::spawn(monitor::run_timer(shared.clone()));
    let r = api::serve(shared.clone(), listener, shutdown).await;
    timer.abort();
    shared.persist();
    r.map_err(SentinelError::from)
}

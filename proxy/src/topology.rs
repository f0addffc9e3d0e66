//! Who the master is and which replicas may serve reads, published as one immutable
//! [`Snapshot`] swapped atomically (arc-swap) so requests never lock.
//!
//! With sentinels, the proxy subscribes to `+switch-master` on every sentinel and also asks
//! them (`SENTINEL get-master-addr-by-name`, `SENTINEL master`, `SENTINEL replicas`) at start,
//! every second, and every 100 ms while the master is in doubt. Decisions:
//! 1. the candidate master is the address reported with the highest config-epoch (ties: the
//!    address most sentinels report);
//! 2. a candidate becomes the master only after `ROLE` on it answers `master`;
//! 3. a master that stops answering, or reports `role:slave`, stops receiving requests at
//!    once (they queue, bounded) until a master is confirmed again;
//! 4. a master that was replaced never comes back unless the sentinels name it again with a
//!    newer epoch and it confirms with ROLE.
//!
//! Without sentinels the master and replicas are the configured ones. Config reloads (SIGHUP)
//! take effect through the same loop.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_protocol::client::Client;
use tandem_protocol::Reply;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::lag::{self, NodeStatus, OffsetHistory, Statuses};
use crate::router::ReplicaHealth;
use crate::Shared;

/// How often the sentinels are asked when all is well.
pub const SENTINEL_POLL: Duration = Duration::from_secs(1);
/// How often they are asked while the master is in doubt.
pub const SENTINEL_POLL_FAST: Duration = Duration::from_millis(100);
/// Longest wait for a sentinel's or a candidate's answer.
pub const ASK_TIMEOUT: Duration = Duration::from_millis(500);
/// Consecutive failed polls after which the master counts as down.
pub const MASTER_DOWN_AFTER_FAILS: u32 = 2;
/// Pause before re-subscribing to a sentinel that closed or refused.
pub const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(200);

/// The master's state as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MasterState {
    /// Confirmed and answering: requests go to it.
    Up,
    /// No master known (sentinels unreachable or the name unknown).
    #[default]
    Unknown,
    /// The master stopped answering; requests wait for it or a new one.
    Down,
    /// A failover is under way (`+switch-master`, or the master reports `role:slave`).
    Switching,
}

/// The routing view, replaced as a whole.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Bumped each time the master changes.
    pub epoch: u64,
    pub master: Option<Arc<str>>,
    pub master_state: MasterState,
    /// Why there is no usable master (for error replies).
    pub master_problem: String,
    pub replica_addrs: Vec<Arc<str>>,
    pub replicas: Vec<ReplicaHealth>,
    /// Number of the latest completed master poll and the offset it saw.
    pub poll_seq: u64,
    pub master_offset: i64,
}

impl Snapshot {
    /// The master requests may be sent to now.
    pub fn usable_master(&self) -> Option<&Arc<str>> {
        match self.master_state {
            MasterState::Up => self.master.as_ref(),
            _ => None,
        }
    }
}

/// Inputs of the topology loop besides its own timers.
#[derive(Debug)]
pub enum Event {
    /// A sentinel published `+switch-master` for our master name.
    SwitchMaster { new: String },
    /// The answers of one round of sentinel questions.
    SentinelView(SentinelView),
    /// ROLE on a candidate answered.
    Confirmed {
        addr: String,
        epoch: u64,
        is_master: bool,
    },
    /// The configuration was replaced (SIGHUP).
    Reloaded,
}

/// What the sentinels said in one round.
#[derive(Debug, Default)]
pub struct SentinelView {
    /// (master address, config-epoch) from each sentinel that answered.
    pub answers: Vec<(String, u64)>,
    /// Replicas the best-informed sentinel lists (not s_down/o_down/disconnected).
    pub replicas: Vec<String>,
    pub errors: Vec<String>,
    /// When the questions were sent.
    pub asked_at: Option<Instant>,
}

/// Picks the candidate master: highest config-epoch, then most reports (pure).
pub fn pick_candidate(answers: &[(String, u64)]) -> Option<(String, u64)> {
    let best_epoch = answers.iter().map(|(_, e)| *e).max()?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (a, e) in answers {
        if *e == best_epoch {
            *counts.entry(a).or_default() += 1;
        }
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.first().map(|(a, _)| (a.to_string(), best_epoch))
}

struct Manager {
    shared: Arc<Shared>,
    statuses: Statuses,
    poll_done: Arc<Notify>,
    pollers: HashMap<String, JoinHandle<()>>,
    subscribers: Vec<JoinHandle<()>>,
    subscribed_to: Vec<String>,
    events_tx: mpsc::UnboundedSender<Event>,
    master: Option<String>,
    master_epoch: u64,
    /// Config-epoch of the confirmed master (sentinel mode).
    config_epoch: u64,
    switching: bool,
    switch_at: Option<Instant>,
    sentinel_replicas: Vec<String>,
    history: OffsetHistory,
    history_seq: u64,
    last_ask: Option<Instant>,
    asking: bool,
    confirming: Option<String>,
    last_problem: String,
    static_mode: Option<(String, Vec<String>)>,
    sentinels_key: Vec<String>,
}

/// Runs the topology loop forever (on the control runtime).
pub async fn run(
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<Event>,
    events_tx: mpsc::UnboundedSender<Event>,
) {
    let mut m = Manager {
        shared,
        statuses: Default::default(),
        poll_done: Arc::new(Notify::new()),
        pollers: HashMap::new(),
        subscribers: Vec::new(),
        subscribed_to: Vec::new(),
        events_tx,
        master: None,
        master_epoch: 0,
        config_epoch: 0,
        switching: false,
        switch_at: None,
        sentinel_replicas: Vec::new(),
        history: OffsetHistory::default(),
        history_seq: 0,
        last_ask: None,
        asking: false,
        confirming: None,
        last_problem: String::new(),
        static_mode: None,
        sentinels_key: Vec::new(),
    };
    m.apply_config();
    let mut tick = tokio::time::interval(crate::POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = m.poll_done.notified() => {}
            ev = events.recv() => match ev {
                Some(ev) => m.handle(ev),
                None => return,
            },
        }
        m.maybe_ask_sentinels();
        m.sync_pollers();
        m.publish();
    }
}

impl Manager {
    /// (Re)reads the topology source from the configuration in force.
    fn apply_config(&mut self) {
        let cfg = self.shared.config.load_full();
        if cfg.sentinels.is_empty() {
            let master = cfg.master.clone().unwrap_or_default();
            let key = Some((master.clone(), cfg.replicas.clone()));
            if self.static_mode != key {
                if self.master.as_deref() != Some(master.as_str()) {
                    if self.master.is_some() {
                        tracing::info!(old = ?self.master, new = %master, "static master changed by reload");
                    }
                    self.set_master(Some(master), 0);
                }
                self.static_mode = key;
            }
            self.stop_subscribers();
            self.sentinels_key.clear();
        } else {
            self.static_mode = None;
            let key: Vec<String> = cfg
                .sentinels
                .iter()
                .cloned()
                .chain(std::iter::once(cfg.master_name.clone()))
                .collect();
            if key != self.sentinels_key {
                self.sentinels_key = key;
                self.stop_subscribers();
                for s in &cfg.sentinels {
                    let tx = self.events_tx.clone();
                    let shared = self.shared.clone();
                    self.subscribers
                        .push(tokio::spawn(subscribe(s.clone(), shared, tx)));
                    self.subscribed_to.push(s.clone());
                }
                self.last_ask = None;
            }
        }
    }

    fn stop_subscribers(&mut self) {
        for h in self.subscribers.drain(..) {
            h.abort();
        }
        self.subscribed_to.clear();
    }

    fn set_master(&mut self, addr: Option<String>, config_epoch: u64) {
        let had = self.master.is_some();
        self.master = addr;
        self.config_epoch = config_epoch;
        self.master_epoch += 1;
        self.switching = false;
        self.history = OffsetHistory::default();
        self.history_seq = 0;
        if had {
            metrics::counter!("tandem_proxy_failovers_total").increment(1);
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Reloaded => self.apply_config(),
            Event::SwitchMaster { new } => {
                if self.static_mode.is_some() {
                    return;
                }
                if self.master.as_deref() != Some(new.as_str()) {
                    tracing::info!(new = %new, old = ?self.master, "+switch-master received: holding requests until the new master confirms");
                    self.switching = true;
                    self.switch_at = Some(Instant::now());
                    self.last_ask = None;
                }
            }
            Event::SentinelView(view) => {
                self.asking = false;
                if self.static_mode.is_some() {
                    return;
                }
                for e in &view.errors {
                    tracing::debug!(reason = %e, "sentinel question failed");
                }
                self.sentinel_replicas = view.replicas;
                match pick_candidate(&view.answers) {
                    None => {
                        if self.master.is_none() {
                            self.last_problem = if view.errors.is_empty() {
                                "the sentinels know no master by that name".into()
                            } else {
                                format!("no sentinel answered ({})", view.errors.join("; "))
                            };
                        }
                    }
                    Some((addr, epoch)) => {
                        let same = self.master.as_deref() == Some(addr.as_str());
                        if same {
                            self.config_epoch = self.config_epoch.max(epoch);
                            // Only a view asked after the switch event may end it.
                            if self
                                .switch_at
                                .is_none_or(|t| view.asked_at.is_some_and(|a| a > t))
                            {
                                self.switching = false;
                            }
                        } else if epoch < self.config_epoch {
                            tracing::debug!(candidate = %addr, epoch, "ignoring a sentinel view older than ours");
                        } else if self.confirming.is_none() {
                            self.confirming = Some(addr.clone());
                            let tx = self.events_tx.clone();
                            let shared = self.shared.clone();
                            tokio::spawn(async move {
                                let is_master = confirm_master(&addr, &shared).await;
                                let _ = tx.send(Event::Confirmed {
                                    addr,
                                    epoch,
                                    is_master,
                                });
                            });
                        }
                    }
                }
            }
            Event::Confirmed {
                addr,
                epoch,
                is_master,
            } => {
                self.confirming = None;
                if !is_master {
                    tracing::warn!(candidate = %addr, "sentinels name a master that does not confirm with ROLE yet; waiting");
                    self.last_problem =
                        format!("candidate master {addr} does not report role master yet");
                    return;
                }
                if self.master.as_deref() == Some(addr.as_str()) {
                    self.switching = false;
                    return;
                }
                tracing::info!(old = ?self.master, new = %addr, config_epoch = epoch, "following the master: confirmed with ROLE");
                self.set_master(Some(addr), epoch);
            }
        }
    }

    fn master_in_doubt(&self) -> bool {
        if self.master.is_none() || self.switching {
            return true;
        }
        let st = self.statuses.lock();
        match self.master.as_ref().and_then(|m| st.get(m)) {
            Some(s) => {
                s.fails >= MASTER_DOWN_AFTER_FAILS
                    || s.info
                        .as_ref()
                        .is_some_and(|i| i.role != tandem_protocol::types::Role::Master)
            }
            None => false,
        }
    }

    fn maybe_ask_sentinels(&mut self) {
        if self.static_mode.is_some() || self.asking {
            return;
        }
        let period = if self.master_in_doubt() {
            SENTINEL_POLL_FAST
        } else {
            SENTINEL_POLL
        };
        if self.last_ask.is_some_and(|t| t.elapsed() < period) {
            return;
        }
        self.last_ask = Some(Instant::now());
        self.asking = true;
        let cfg = self.shared.config.load_full();
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            let view = ask_sentinels(
                &cfg.sentinels,
                &cfg.master_name,
                cfg.sentinel_password.as_deref(),
            )
            .await;
            let _ = tx.send(Event::SentinelView(view));
        });
    }

    /// The nodes to poll: the master and every known replica.
    fn wanted_nodes(&self) -> Vec<String> {
        let st = self.statuses.lock();
        self.wanted_nodes_locked(&st)
    }

    fn sync_pollers(&mut self) {
        let wanted = self.wanted_nodes();
        let wanted_set: HashSet<&String> = wanted.iter().collect();
        let gone: Vec<String> = self
            .pollers
            .keys()
            .filter(|k| !wanted_set.contains(k))
            .cloned()
            .collect();
        for g in gone {
            if let Some(h) = self.pollers.remove(&g) {
                h.abort();
            }
            self.statuses.lock().remove(&g);
            tracing::info!(backend = %g, "node left the topology: no longer polled");
        }
        for w in wanted {
            if !self.pollers.contains_key(&w) {
                let h = tokio::spawn(lag::poll_node(
                    w.clone(),
                    self.shared.clone(),
                    self.statuses.clone(),
                    self.poll_done.clone(),
                ));
                self.pollers.insert(w, h);
            }
        }
    }

    fn publish(&mut self) {
        let now = Instant::now();
        let cfg = self.shared.config.load();
        let st = self.statuses.lock();
        let master_status: Option<&NodeStatus> = self.master.as_ref().and_then(|m| st.get(m));
        if let Some(ms) = master_status {
            if ms.seq > self.history_seq {
                if let (Some(info), Some(t)) = (&ms.info, ms.last_ok) {
                    self.history_seq = ms.seq;
                    if info.role == tandem_protocol::types::Role::Master {
                        self.history.push(t, info.master_repl_offset);
                    }
                }
            }
        }
        let (state, problem) = match (&self.master, master_status) {
            (None, _) => (
                MasterState::Unknown,
                if self.last_problem.is_empty() {
                    "no master known yet".to_string()
                } else {
                    self.last_problem.clone()
                },
            ),
            (Some(m), _) if self.switching => (
                MasterState::Switching,
                format!("failover in progress (old master {m})"),
            ),
            (Some(m), Some(s)) if s.fails >= MASTER_DOWN_AFTER_FAILS => (
                MasterState::Down,
                format!(
                    "master {m} is not answering ({})",
                    s.error.as_deref().unwrap_or("no reply")
                ),
            ),
            (Some(m), Some(s))
                if s.info
                    .as_ref()
                    .is_some_and(|i| i.role != tandem_protocol::types::Role::Master) =>
            {
                (
                    MasterState::Switching,
                    format!("master {m} now reports role:slave"),
                )
            }
            _ => (MasterState::Up, String::new()),
        };
        let replica_addrs: Vec<String> = self
            .wanted_nodes_locked(&st)
            .into_iter()
            .filter(|a| Some(a) != self.master.as_ref())
            .collect();
        let replicas: Vec<ReplicaHealth> = replica_addrs
            .iter()
            .map(|a| {
                lag::replica_health(
                    a,
                    st.get(a),
                    self.master.as_deref(),
                    master_status,
                    &self.history,
                    now,
                )
            })
            .collect();
        let poll_seq = if state == MasterState::Up {
            self.history_seq
        } else {
            0
        };
        let master_offset = self.history.latest().unwrap_or(0);
        drop(st);
        // Metrics: per-backend health and lag.
        if let Some(m) = &self.master {
            metrics::gauge!("tandem_proxy_backend_up", "backend" => m.clone(), "role" => "master")
                .set(if state == MasterState::Up { 1.0 } else { 0.0 });
        }
        for (a, h) in replica_addrs.iter().zip(&replicas) {
            metrics::gauge!("tandem_proxy_backend_up", "backend" => a.clone(), "role" => "replica")
                .set(if h.reachable { 1.0 } else { 0.0 });
            if let Some(l) = h.lag_ms {
                metrics::gauge!("tandem_proxy_backend_lag_ms", "backend" => a.clone())
                    .set(l as f64);
            }
            if let Some(b) = h.lag_bytes {
                metrics::gauge!("tandem_proxy_backend_lag_bytes", "backend" => a.clone())
                    .set(b as f64);
            }
        }
        metrics::gauge!("tandem_proxy_queued_writes")
            .set(self.shared.queued.load(Ordering::Relaxed) as f64);
        let _ = cfg;
        let snap = Snapshot {
            epoch: self.master_epoch,
            master: self.master.as_deref().map(Arc::from),
            master_state: state,
            master_problem: problem,
            replica_addrs: replica_addrs.into_iter().map(Arc::from).collect(),
            replicas,
            poll_seq,
            master_offset,
        };
        self.shared.topo.store(Arc::new(snap));
        self.shared.topo_changed.send_modify(|v| *v += 1);
    }

    fn wanted_nodes_locked(&self, st: &HashMap<String, NodeStatus>) -> Vec<String> {
        // Same as wanted_nodes, with the status table already locked.
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut add = |a: String, out: &mut Vec<String>| {
            if !a.is_empty() && seen.insert(a.clone()) {
                out.push(a);
            }
        };
        if let Some(m) = &self.master {
            add(m.clone(), &mut out);
        }
        match &self.static_mode {
            Some((_, replicas)) => {
                for r in replicas {
                    add(r.clone(), &mut out);
                }
            }
            None => {
                for r in &self.sentinel_replicas {
                    add(r.clone(), &mut out);
                }
                if let Some(info) = self
                    .master
                    .as_ref()
                    .and_then(|m| st.get(m))
                    .and_then(|s| s.info.as_ref())
                {
                    for s in &info.slaves {
                        let a = if s.ip.contains(':') {
                            format!("[{}]:{}", s.ip, s.port)
                        } else {
                            format!("{}:{}", s.ip, s.port)
                        };
                        add(a, &mut out);
                    }
                }
            }
        }
        out
    }
}

/// Asks ROLE on `addr`: true only for an answer whose first element is `master`.
async fn confirm_master(addr: &str, shared: &Shared) -> bool {
    let cfg = shared.config.load_full();
    let Ok(mut c) = Client::connect(addr, ASK_TIMEOUT).await else {
        return false;
    };
    if let Some(pw) = cfg.backend_password.as_deref().filter(|p| !p.is_empty()) {
        c.queue(&["AUTH", pw]);
        if c.flush().await.is_err() || c.read_reply_timeout(ASK_TIMEOUT).await.is_err() {
            return false;
        }
    }
    c.queue(&["ROLE"]);
    if c.flush().await.is_err() {
        return false;
    }
    match c.read_reply_timeout(ASK_TIMEOUT).await {
        Ok(Reply::Array(items)) => {
            matches!(items.first(), Some(Reply::Bulk(b)) if &b[..] == b"master")
        }
        _ => false,
    }
}

/// One round of questions to every sentinel, concurrently.
pub async fn ask_sentinels(
    sentinels: &[String],
    name: &str,
    password: Option<&str>,
) -> SentinelView {
    let asked_at = Instant::now();
    let futs = sentinels
        .iter()
        .map(|s| ask_one(s.clone(), name.to_string(), password.map(str::to_string)));
    let results = futures_join_all(futs).await;
    let mut view = SentinelView {
        asked_at: Some(asked_at),
        ..Default::default()
    };
    let mut best_replicas: Option<(u64, Vec<String>)> = None;
    for (s, r) in sentinels.iter().zip(results) {
        match r {
            Ok(Some((addr, epoch, replicas))) => {
                view.answers.push((addr, epoch));
                if best_replicas.as_ref().is_none_or(|(e, _)| epoch > *e) {
                    best_replicas = Some((epoch, replicas));
                }
            }
            Ok(None) => {}
            Err(e) => view.errors.push(format!("{s}: {e}")),
        }
    }
    view.replicas = best_replicas.map(|(_, r)| r).unwrap_or_default();
    view
}

async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(_) => std::future::pending::<()>().await,
        }
    }
    out
}

type Answer = Option<(String, u64, Vec<String>)>;

async fn ask_one(
    sentinel: String,
    name: String,
    password: Option<String>,
) -> Result<Answer, String> {
    let fut = async {
        let mut c = Client::connect(&sentinel, ASK_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(pw) = password.as_deref().filter(|p| !p.is_empty()) {
            c.queue(&["AUTH", pw]);
        }
        c.queue(&["SENTINEL", "get-master-addr-by-name", &name]);
        c.queue(&["SENTINEL", "master", &name]);
        c.queue(&["SENTINEL", "replicas", &name]);
        c.flush().await.map_err(|e| e.to_string())?;
        if password.as_deref().is_some_and(|p| !p.is_empty()) {
            if let Reply::Error(e) = c.read_reply().await.map_err(|e| e.to_string())? {
                return Err(format!("AUTH: {e}"));
            }
        }
        let addr = c.read_reply().await.map_err(|e| e.to_string())?;
        let master = c.read_reply().await.map_err(|e| e.to_string())?;
        let replicas = c.read_reply().await.map_err(|e| e.to_string())?;
        let addr = match addr {
            Reply::Array(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Reply::Bulk(h), Reply::Bulk(p)) => {
                    let h = String::from_utf8_lossy(h);
                    let p = String::from_utf8_lossy(p);
                    if h.contains(':') {
                        format!("[{h}]:{p}")
                    } else {
                        format!("{h}:{p}")
                    }
                }
                _ => return Err("malformed get-master-addr-by-name reply".into()),
            },
            Reply::Nil | Reply::NilArray => return Ok(None),
            Reply::Error(e) => return Err(e.to_string()),
            other => {
                return Err(format!(
                    "unexpected get-master-addr-by-name reply {other:?}"
                ))
            }
        };
        let fields = fields_of(&master);
        let epoch = fields
            .get("config-epoch")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut reps = Vec::new();
        if let Reply::Array(list) = replicas {
            for r in &list {
                let f = fields_of(r);
                let flags = f.get("flags").cloned().unwrap_or_default();
                if flags
                    .split(',')
                    .any(|x| x == "s_down" || x == "o_down" || x == "disconnected")
                {
                    continue;
                }
                if let (Some(ip), Some(port)) = (f.get("ip"), f.get("port")) {
                    reps.push(format!("{ip}:{port}"));
                }
            }
        }
        Ok(Some((addr, epoch, reps)))
    };
    match tokio::time::timeout(ASK_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err("timed out".into()),
    }
}

/// A flat field/value array (or RESP3 map) of bulk strings as a map.
fn fields_of(r: &Reply) -> HashMap<String, String> {
    let text = |r: &Reply| match r {
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Status(s) => s.to_string(),
        Reply::Int(i) => i.to_string(),
        _ => String::new(),
    };
    let mut out = HashMap::new();
    match r {
        Reply::Array(items) => {
            for pair in items.chunks(2) {
                if let [k, v] = pair {
                    out.insert(text(k), text(v));
                }
            }
        }
        Reply::Map(pairs) => {
            for (k, v) in pairs {
                out.insert(text(k), text(v));
            }
        }
        _ => {}
    }
    out
}

/// Follows `+switch-master` on one sentinel, reconnecting forever.
async fn subscribe(sentinel: String, shared: Arc<Shared>, tx: mpsc::UnboundedSender<Event>) {
    loop {
        let cfg = shared.config.load_full();
        let r: Result<(), String> = async {
            let mut c = Client::connect(&sentinel, ASK_TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(pw) = cfg.sentinel_password.as_deref().filter(|p| !p.is_empty()) {
                if let Reply::Error(e) = c.call(&["AUTH", pw]).await.map_err(|e| e.to_string())? {
                    return Err(format!("AUTH: {e}"));
                }
            }
            c.call(&["SUBSCRIBE", "+switch-master"])
                .await
                .map_err(|e| e.to_string())?;
            tracing::debug!(sentinel = %sentinel, "subscribed to +switch-master");
            loop {
                let msg = c.read_reply().await.map_err(|e| e.to_string())?;
                let items = match msg {
                    Reply::Array(i) | Reply::Push(i) => i,
                    _ => continue,
                };
                // ["message", "+switch-master", "<name> <oldip> <oldport> <newip> <newport>"]
                if let Some(Reply::Bulk(payload)) = items.get(2) {
                    let text = String::from_utf8_lossy(payload);
                    let parts: Vec<&str> = text.split(' ').collect();
                    if parts.len() == 5 && parts[0] == cfg.master_name {
                        let new = format!("{}:{}", parts[3], parts[4]);
                        tracing::info!(sentinel = %sentinel, event = %text, "+switch-master");
                        let _ = tx.send(Event::SwitchMaster { new });
                    }
                }
            }
        }
        .await;
        if let Err(e) = r {
            tracing::debug!(sentinel = %sentinel, reason = %e, "sentinel subscription lost; retrying");
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_is_highest_epoch_then_majority() {
        let a = |s: &str, e| (s.to_string(), e);
        assert_eq!(pick_candidate(&[]), None);
        assert_eq!(
            pick_candidate(&[a("m1:1", 1), a("m2:2", 2), a("m1:1", 1)]),
            Some(("m2:2".into(), 2))
        );
        assert_eq!(
            pick_candidate(&[a("m1:1", 3), a("m2:2", 3), a("m2:2", 3)]),
            Some(("m2:2".into(), 3))
        );
    }
}

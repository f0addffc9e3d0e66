//! Talking to instances: one command link per monitored instance (PING, INFO, hello
//! PUBLISH, is-master-down-by-addr, the reconfiguration transaction), one pub/sub link per
//! data node (hello messages), the main loop, and how replies change the state.
//! Guarantee: the state lock is never held across an await; a dead or hung instance only
//! ever costs its own link a timeout.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_protocol::client::{Client, ClientError};
use tandem_protocol::types::{NodeAddr, Role};
use tandem_protocol::Reply;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::failover::FailoverState;
use crate::instance::{
    Core, Hello, Info, Job, Kind, Link, Master, Peer, Reconf, Sentinel, Target, CONNECT_TIMEOUT,
    CONVERT_WAIT, HELLO_CHANNEL, INFO_PERIOD, TICK,
};
use crate::Shared;

/// Longest wait for one reply on a command link before the link is dropped.
pub const JOB_TIMEOUT: Duration = Duration::from_millis(1000);
/// Pause before a pub/sub link reconnects.
pub const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// How replies change the state (pure: no I/O).

fn valid_ping_reply(r: &Reply) -> bool {
    match r {
        Reply::Status(s) => s.eq_ignore_ascii_case("PONG"),
        Reply::Error(e) => e.starts_with("LOADING") || e.starts_with("MASTERDOWN"),
        _ => false,
    }
}

/// `runid` of a reply as text.
fn reply_text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) | Reply::Verbatim(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Status(s) => Some(s.to_string()),
        _ => None,
    }
}

impl Sentinel {
    /// The link state of the instance a target names.
    pub fn link_mut(&mut self, t: &Target) -> Option<&mut Link> {
        let m = self.masters.get_mut(&t.master)?;
        match t.kind {
            Kind::Master => (m.addr == t.addr).then_some(&mut m.link),
            Kind::Replica => m.replicas.get_mut(&t.addr).map(|r| &mut r.link),
            Kind::Sentinel => m
                .sentinels
                .values_mut()
                .find(|p| p.addr == t.addr)
                .map(|p| &mut p.link),
        }
    }

    pub fn set_connected(&mut self, t: &Target, connected: bool) {
        if let Some(l) = self.link_mut(t) {
            l.connected = connected;
        }
    }

    /// A job finished: `reply` is `None` if it failed (no connection, timeout).
    pub fn job_done(&mut self, t: &Target, job: &Job, reply: Option<&Reply>, now: Instant) {
        // A link survives configuration switches that recreate the instance's state.
        if reply.is_some() {
            self.set_connected(t, true);
        }
        match job {
            Job::Ping => {
                if let Some(l) = self.link_mut(t) {
                    l.ping_pending = false;
                    if let Some(r) = reply {
                        l.last_pong = now;
                        if valid_ping_reply(r) {
                            l.last_avail = now;
                        }
                    }
                }
            }
            Job::Info => {
                if let Some(l) = self.link_mut(t) {
                    l.info_pending = false;
                }
                if let Some(text) = reply.and_then(reply_text) {
                    self.on_info(t, &text, now);
                }
            }
            Job::Hello(_) => {
                if let Some(l) = self.link_mut(t) {
                    l.hello_pending = false;
                }
            }
            Job::Ask { .. } => {
                self.on_ask_reply(t, reply, now);
                // A vote or a "down" answer may complete ODOWN or an election: act now
                // rather than at the next tick.
                if reply.is_some() {
                    self.tick(now);
                }
            }
            Job::SlaveOf(_) => {}
        }
    }

    /// Applies an INFO reply (sentinelRefreshInstanceInfo): discovery of replicas, role
    /// changes, promotion during a failover, reconfiguration progress, and turning
    /// misconfigured instances back into replicas of the configured master.
    pub fn on_info(&mut self, t: &Target, text: &str, now: Instant) {
        let Some(m) = self.masters.get_mut(&t.master) else {
            return;
        };
        let core = &mut self.core;
        let info = Info::parse(text);
        match t.kind {
            Kind::Sentinel => {}
            Kind::Master => {
                if m.addr != t.addr {
                    return;
                }
                m.info_refresh = Some(now);
                if info.run_id.is_some() && info.run_id != m.runid {
                    if m.runid.is_some() {
                        core.event("+reboot", m.desc());
                    }
                    m.runid = info.run_id.clone();
                }
                if let Some(role) = info.role {
                    if role != m.role_reported {
                        m.role_reported = role;
                        m.role_reported_time = now;
                        let name = if role == Role::Master {
                            "+role-change"
                        } else {
                            "-role-change"
                        };
                        core.event(
                            name,
                            format!("{} new reported role is {}", m.desc(), role.as_redis_str()),
                        );
                    }
                    if role == Role::Master {
                        for a in info.replicas {
                            m.add_replica(core, a, now);
                        }
                    }
                }
            }
            Kind::Replica => on_replica_info(core, m, &t.addr, info, now),
        }
    }

    fn on_ask_reply(&mut self, t: &Target, reply: Option<&Reply>, now: Instant) {
        let Some(m) = self.masters.get_mut(&t.master) else {
            return;
        };
        let Some(p) = m.sentinels.values_mut().find(|p| p.addr == t.addr) else {
            return;
        };
        p.ask_pending = false;
        let Some(Reply::Array(items)) = reply else {
            return;
        };
        if let [Reply::Int(down), leader, Reply::Int(epoch)] = items.as_slice() {
            p.master_down = *down == 1;
            p.last_master_down_reply = Some(now);
            if let Some(l) = reply_text(leader).filter(|l| l != "*") {
                if p.leader.as_deref() != Some(l.as_str()) || p.leader_epoch != *epoch as u64 {
                    tracing::info!("{} voted for {} {}", p.runid, l, epoch);
                }
                p.leader = Some(l);
                p.leader_epoch = (*epoch).max(0) as u64;
            }
        }
    }

    /// Applies a hello message (sentinelProcessHelloMessage): learns peers, raises the
    /// epoch, and adopts a newer configuration of the master (`+switch-master`).
    pub fn on_hello(&mut self, payload: &[u8], now: Instant) {
        let Some(h) = Hello::parse(payload) else {
            return;
        };
        if h.runid == self.core.myid {
            return;
        }
        let Some(m) = self.masters.get_mut(&h.master_name) else {
            return;
        };
        let core = &mut self.core;
        let addr = NodeAddr::new(h.ip.clone(), h.port);
        match m.sentinels.get_mut(&h.runid) {
            Some(p) if p.addr != addr => {
                let old = std::mem::replace(&mut p.addr, addr.clone());
                p.link = Link::new(now);
                core.dirty = true;
                core.event(
                    "+sentinel-address-switch",
                    format!(
                        "{} ip {} port {} for {}",
                        m.desc(),
                        addr.host,
                        addr.port,
                        h.runid
                    ),
                );
                tracing::info!(from = %old, to = %addr, "sentinel {} changed address", h.runid);
            }
            Some(_) => {}
            None => {
                let dups: Vec<String> = m
                    .sentinels
                    .values()
                    .filter(|p| p.addr == addr)
                    .map(|p| p.runid.clone())
                    .collect();
                for d in dups {
                    core.event(
                        "-dup-sentinel",
                        format!(
                            "{} #duplicate of {}:{} or {}",
                            m.desc(),
                            addr.host,
                            addr.port,
                            h.runid
                        ),
                    );
                    m.sentinels.remove(&d);
                }
                core.event("+sentinel", m.sentinel_desc(&h.runid, &addr));
                m.sentinels.insert(
                    h.runid.clone(),
                    Peer::new(h.runid.clone(), addr.clone(), now),
                );
                core.dirty = true;
            }
        }
        core.observe_epoch(h.current_epoch);
        if m.config_epoch < h.master_config_epoch {
            m.config_epoch = h.master_config_epoch;
            core.dirty = true;
            if m.addr != h.master {
                core.event("+config-update-from", m.sentinel_desc(&h.runid, &addr));
                m.change_address(core, h.master.clone(), now);
            }
        }
        if let Some(p) = m.sentinels.get_mut(&h.runid) {
            p.last_hello = Some(now);
        }
    }
}

/// Whether the configured master is healthy enough to turn other instances into its
/// replicas (sentinelMasterLooksSane).
fn master_looks_sane(m: &Master, now: Instant) -> bool {
    m.sdown_since.is_none()
        && m.link.connected
        && m.role_reported == Role::Master
        && m.info_refresh
            .is_some_and(|t| now.saturating_duration_since(t) < 2 * INFO_PERIOD)
}

fn on_replica_info(core: &mut Core, m: &mut Master, addr: &NodeAddr, info: Info, now: Instant) {
    let sane = master_looks_sane(m, now);
    let master_addr = m.addr.clone();
    let promoted_addr = m.promoted_addr().cloned();
    let state = m.failover;
    let desc = m.replica_desc(addr);
    let Some(r) = m.replicas.get_mut(addr) else {
        return;
    };
    r.info_refresh = Some(now);
    if info.run_id.is_some() {
        r.runid = info.run_id.clone();
    }
    r.master_link_down_ms = info
        .master_link_down_since_seconds
        .map(|s| s.saturating_mul(1000))
        .unwrap_or(0);
    if info.role == Some(Role::Replica) {
        if info.master_host != r.master_host || info.master_port.unwrap_or(0) != r.master_port {
            r.slave_conf_change_time = now;
        }
        r.master_host = info.master_host.clone();
        r.master_port = info.master_port.unwrap_or(0);
        r.master_link_up = info.master_link_up;
    }
    if let Some(p) = info.priority {
        r.priority = p;
    }
    if let Some(o) = info.repl_offset {
        r.repl_offset = o;
    }
    if let Some(a) = info.replica_announced {
        r.replica_announced = a;
    }
    let Some(role) = info.role else {
        return;
    };
    if role != r.role_reported {
        r.role_reported = role;
        r.role_reported_time = now;
        if role == Role::Replica {
            r.slave_conf_change_time = now;
        }
        let name = if role == Role::Replica {
            "+role-change"
        } else {
            "-role-change"
        };
        core.event(
            name,
            format!("{desc} new reported role is {}", role.as_redis_str()),
        );
    }
    match role {
        Role::Master => {
            if r.promoted && state == FailoverState::WaitPromotion {
                m.on_promoted(core, now);
            } else if !r.promoted
                && state == FailoverState::None
                && sane
                && r.sdown_since.is_none()
                && now.saturating_duration_since(r.role_reported_time) > CONVERT_WAIT
                && now.saturating_duration_since(r.slave_conf_change_time) > CONVERT_WAIT
            {
                r.slave_conf_change_time = now;
                core.job(
                    &m.name,
                    Kind::Replica,
                    addr,
                    Job::SlaveOf(Some(master_addr)),
                );
                core.event("+convert-to-slave", desc);
            }
        }
        Role::Replica => {
            if state == FailoverState::ReconfSlaves {
                if let Some(p) = promoted_addr {
                    if matches!(r.reconf, Reconf::Sent(_)) && r.follows(&p) {
                        r.reconf = Reconf::InProgress;
                        core.event("+slave-reconf-inprog", desc.clone());
                    }
                    if r.reconf == Reconf::InProgress && r.master_link_up {
                        r.reconf = Reconf::Done;
                        core.event("+slave-reconf-done", desc.clone());
                    }
                }
            }
            if state == FailoverState::None
                && !r.follows(&master_addr)
                && sane
                && r.sdown_since.is_none()
                && now.saturating_duration_since(r.slave_conf_change_time)
                    > m.settings.failover_timeout
            {
                r.slave_conf_change_time = now;
                core.job(
                    &m.name,
                    Kind::Replica,
                    addr,
                    Job::SlaveOf(Some(master_addr)),
                );
                core.event("+fix-slave-config", desc);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Links (I/O).

/// The tasks serving one instance: its command link and, for data nodes, its hello
/// subscription. Dropping the handle stops both.
pub struct LinkHandle {
    tx: mpsc::UnboundedSender<Job>,
    cmd: JoinHandle<()>,
    hello: Option<JoinHandle<()>>,
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        self.cmd.abort();
        if let Some(h) = &self.hello {
            h.abort();
        }
    }
}

/// Every link, by target.
#[derive(Default)]
pub struct Links {
    map: HashMap<Target, LinkHandle>,
}

impl Links {
    pub fn send(&mut self, shared: &Arc<Shared>, target: Target, job: Job) {
        let h = self
            .map
            .entry(target.clone())
            .or_insert_with(|| spawn_link(shared.clone(), target));
        let _ = h.tx.send(job);
    }

    /// Starts links for `wanted` targets and stops the others.
    pub fn reconcile(&mut self, shared: &Arc<Shared>, wanted: BTreeSet<Target>) {
        self.map.retain(|t, _| wanted.contains(t));
        for t in wanted {
            self.map
                .entry(t.clone())
                .or_insert_with(|| spawn_link(shared.clone(), t));
        }
    }
}

fn spawn_link(shared: Arc<Shared>, target: Target) -> LinkHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let hello = (target.kind != Kind::Sentinel)
        .then(|| tokio::spawn(hello_link(shared.clone(), target.clone())));
    let cmd = tokio::spawn(cmd_link(shared, target, rx));
    LinkHandle { tx, cmd, hello }
}

/// Credentials for a target: the master's auth-pass/auth-user for data nodes, our own
/// requirepass for peer sentinels.
fn credentials(shared: &Shared, t: &Target) -> (Option<String>, Option<String>) {
    if t.kind == Kind::Sentinel {
        return (None, shared.requirepass.clone());
    }
    let s = shared.state.lock();
    match s.masters.get(&t.master) {
        Some(m) => (m.settings.auth_user.clone(), m.settings.auth_pass.clone()),
        None => (None, None),
    }
}

async fn connect(shared: &Shared, t: &Target, link_kind: &str) -> Result<Client, ClientError> {
    let mut c = Client::connect_from(
        &t.addr.to_string(),
        shared.bind_source_addr,
        CONNECT_TIMEOUT,
    )
    .await?;
    let (user, pass) = credentials(shared, t);
    if let Some(pass) = pass {
        match user {
            Some(u) => c.queue(&["AUTH", u.as_str(), pass.as_str()]),
            None => c.queue(&["AUTH", pass.as_str()]),
        }
        c.flush().await?;
        c.read_reply_timeout(JOB_TIMEOUT).await?;
    }
    if t.kind != Kind::Sentinel {
        let myid = shared.state.lock().core.myid.clone();
        let name = format!("sentinel-{}-{}", &myid[..8.min(myid.len())], link_kind);
        c.queue(&["CLIENT", "SETNAME", name.as_str()]);
        c.flush().await?;
        c.read_reply_timeout(JOB_TIMEOUT).await?;
    }
    Ok(c)
}

/// Runs one job on a connected client and returns its (last meaningful) reply.
async fn run_job(c: &mut Client, job: &Job) -> Result<Reply, ClientError> {
    match job {
        Job::Ping => {
            c.queue(&["PING"]);
        }
        Job::Info => {
            c.queue(&["INFO"]);
        }
        Job::Hello(payload) => {
            c.queue(&["PUBLISH", HELLO_CHANNEL, payload.as_str()]);
        }
        Job::Ask {
            master_addr,
            epoch,
            runid,
        } => {
            let port = master_addr.port.to_string();
            let epoch = epoch.to_string();
            c.queue(&[
                "SENTINEL",
                "is-master-down-by-addr",
                master_addr.host.as_str(),
                port.as_str(),
                epoch.as_str(),
                runid.as_str(),
            ]);
        }
        Job::SlaveOf(to) => {
            c.queue(&["MULTI"]);
            match to {
                Some(a) => c.queue(&["SLAVEOF", a.host.as_str(), a.port.to_string().as_str()]),
                None => c.queue(&["SLAVEOF", "NO", "ONE"]),
            }
            c.queue(&["CONFIG", "REWRITE"]);
            c.queue(&["CLIENT", "KILL", "TYPE", "normal"]);
            c.queue(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            c.queue(&["EXEC"]);
            c.flush().await?;
            let mut replies = Vec::with_capacity(6);
            for _ in 0..6 {
                replies.push(c.read_reply_timeout(JOB_TIMEOUT).await?);
            }
            // A server that refuses SLAVEOF inside MULTI (EXECABORT, or an error in EXEC's
            // place for it) gets the same commands without the transaction.
            let refused = replies[1].is_error()
                || match &replies[5] {
                    Reply::Array(items) => items.first().is_none_or(Reply::is_error),
                    other => other.is_error(),
                };
            if !refused {
                return Ok(replies.pop().unwrap_or(Reply::Nil));
            }
            tracing::info!(target = %c.peer(), "SLAVEOF refused inside MULTI: sending it alone");
            match to {
                Some(a) => c.queue(&["SLAVEOF", a.host.as_str(), a.port.to_string().as_str()]),
                None => c.queue(&["SLAVEOF", "NO", "ONE"]),
            }
            c.queue(&["CONFIG", "REWRITE"]);
            c.queue(&["CLIENT", "KILL", "TYPE", "normal"]);
            c.queue(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            c.flush().await?;
            let first = c.read_reply_timeout(JOB_TIMEOUT).await?;
            for _ in 0..3 {
                c.read_reply_timeout(JOB_TIMEOUT).await?;
            }
            return Ok(first);
        }
    }
    c.flush().await?;
    c.read_reply_timeout(JOB_TIMEOUT).await
}

async fn cmd_link(shared: Arc<Shared>, target: Target, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut client: Option<Client> = None;
    while let Some(job) = rx.recv().await {
        if client.is_none() {
            match connect(&shared, &target, "cmd").await {
                Ok(c) => {
                    client = Some(c);
                    shared.with(|s| s.set_connected(&target, true));
                }
                Err(e) => {
                    tracing::debug!(target = %target.addr, "link: {e}");
                    shared.with(|s| {
                        s.set_connected(&target, false);
                        s.job_done(&target, &job, None, Instant::now());
                    });
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let result = run_job(c, &job).await;
        // A reconfiguration is judged from INFO: ask at once rather than at the next period.
        let follow_up = match (&result, &job) {
            (Ok(_), Job::SlaveOf(_)) => {
                c.queue(&["INFO"]);
                match c.flush().await {
                    Ok(()) => c.read_reply_timeout(JOB_TIMEOUT).await.ok(),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let now = Instant::now();
        match result {
            Ok(reply) => shared.with(|s| {
                s.job_done(&target, &job, Some(&reply), now);
                if let Some(info) = follow_up.as_ref().and_then(reply_text) {
                    s.on_info(&target, &info, now);
                }
            }),
            Err(e) => {
                tracing::debug!(target = %target.addr, "link: {e}");
                client = None;
                shared.with(|s| {
                    s.set_connected(&target, false);
                    s.job_done(&target, &job, None, now);
                });
            }
        }
    }
}

/// Subscribes to the hello channel of a data node and feeds what arrives to the state.
async fn hello_link(shared: Arc<Shared>, target: Target) {
    loop {
        if let Ok(mut c) = connect(&shared, &target, "pubsub").await {
            c.queue(&["SUBSCRIBE", HELLO_CHANNEL]);
            if c.flush().await.is_ok() {
                while let Ok(reply) = c.read_reply().await {
                    let items = match reply {
                        Reply::Array(items) | Reply::Push(items) => items,
                        _ => continue,
                    };
                    if let [kind, _, Reply::Bulk(payload)] = items.as_slice() {
                        if reply_text(kind).as_deref() == Some("message") {
                            shared.with(|s| s.on_hello(payload, Instant::now()));
                        }
                    }
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// The links every monitored instance needs.
pub fn wanted_links(s: &Sentinel) -> BTreeSet<Target> {
    let mut out = BTreeSet::new();
    for m in s.masters.values() {
        let t = |kind, addr: &NodeAddr| Target {
            master: m.name.clone(),
            kind,
            addr: addr.clone(),
        };
        out.insert(t(Kind::Master, &m.addr));
        for a in m.replicas.keys() {
            out.insert(t(Kind::Replica, a));
        }
        for p in m.sentinels.values() {
            out.insert(t(Kind::Sentinel, &p.addr));
        }
    }
    out
}

/// The main loop: every [`TICK`], a monitoring half then an acting half over every master,
/// and the links follow the set of known instances.
pub async fn run_timer(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let wanted = shared.with(|s| {
            s.tick(Instant::now());
            wanted_links(s)
        });
        shared.links.lock().reconcile(&shared, wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Settings;

    fn sentinel(now: Instant) -> Sentinel {
        let mut core = Core::new("m".repeat(40), NodeAddr::new("127.0.0.1", 26379));
        core.current_epoch = 1;
        let settings = Settings {
            quorum: 2,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_secs(3),
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
        };
        let m = Master::new("mm".into(), NodeAddr::new("127.0.0.1", 7001), settings, now);
        let mut masters = std::collections::BTreeMap::new();
        masters.insert("mm".to_string(), m);
        Sentinel { core, masters }
    }

    fn target(kind: Kind, port: u16) -> Target {
        Target {
            master: "mm".into(),
            kind,
            addr: NodeAddr::new("127.0.0.1", port),
        }
    }

    #[test]
    fn master_info_discovers_replicas() {
        let now = Instant::now();
        let mut s = sentinel(now);
        s.on_info(
            &target(Kind::Master, 7001),
            "role:master\r\nslave0:ip=127.0.0.1,port=7002,state=online,offset=0,lag=0\r\n",
            now,
        );
        let m = &s.masters["mm"];
        assert!(m.replicas.contains_key(&NodeAddr::new("127.0.0.1", 7002)));
        assert!(s.core.dirty);
    }

    #[test]
    fn hello_adds_peer_raises_epoch_and_switches_master() {
        let now = Instant::now();
        let mut s = sentinel(now);
        let peer = "p".repeat(40);
        let h = format!("127.0.0.1,26380,{peer},5,mm,127.0.0.1,7002,4");
        s.on_hello(h.as_bytes(), now);
        assert_eq!(s.core.current_epoch, 5);
        let m = &s.masters["mm"];
        assert_eq!(m.addr, NodeAddr::new("127.0.0.1", 7002));
        assert_eq!(m.config_epoch, 4);
        assert!(m.sentinels.contains_key(&peer));
        assert!(m.replicas.contains_key(&NodeAddr::new("127.0.0.1", 7001)));
        // An older configuration does not switch back.
        let h = format!("127.0.0.1,26380,{peer},5,mm,127.0.0.1,7001,3");
        s.on_hello(h.as_bytes(), now);
        assert_eq!(s.masters["mm"].addr, NodeAddr::new("127.0.0.1", 7002));
        // Our own hellos are ignored.
        let me = s.core.myid.clone();
        let h = format!("127.0.0.1,26379,{me},9,mm,127.0.0.1,7009,9");
        s.on_hello(h.as_bytes(), now);
        assert_eq!(s.core.current_epoch, 5);
    }

    #[test]
    fn ask_reply_records_down_and_vote() {
        let now = Instant::now();
        let mut s = sentinel(now);
        let peer = "p".repeat(40);
        s.on_hello(
            format!("127.0.0.1,26380,{peer},1,mm,127.0.0.1,7001,0").as_bytes(),
            now,
        );
        let t = target(Kind::Sentinel, 26380);
        let reply = Reply::Array(vec![
            Reply::Int(1),
            Reply::Bulk("m".repeat(40).into()),
            Reply::Int(1),
        ]);
        s.job_done(
            &t,
            &Job::Ask {
                master_addr: NodeAddr::new("127.0.0.1", 7001),
                epoch: 1,
                runid: "*".into(),
            },
            Some(&reply),
            now,
        );
        let p = &s.masters["mm"].sentinels[&peer];
        assert!(p.master_down);
        assert_eq!(p.leader.as_deref(), Some("m".repeat(40).as_str()));
        assert_eq!(p.leader_epoch, 1);
    }

    #[test]
    fn ping_replies_that_count() {
        assert!(valid_ping_reply(&Reply::Status("PONG".into())));
        assert!(valid_ping_reply(&Reply::Error("LOADING x".into())));
        assert!(valid_ping_reply(&Reply::Error("MASTERDOWN x".into())));
        assert!(!valid_ping_reply(&Reply::Error("NOAUTH x".into())));
    }
}

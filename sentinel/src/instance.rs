//! The sentinel's view of the world: each monitored master with its replicas and peer
//! sentinels, their link state and flags, the subjective/objective down decisions, and the
//! parsers of what instances tell us (INFO, hello messages).
//! Guarantee: nothing here does I/O; decisions take `now` and leave their effects (events,
//! jobs for the links, "state changed") in the [`Core`] outbox.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tandem_protocol::types::{Epoch, NodeAddr, Role};

use crate::failover::FailoverState;

// ---------------------------------------------------------------------------------------------
// Timers. Redis's are in comments; ours are shorter where that only costs a few packets.

/// Period of the main loop (Redis: 100 ms, with a randomised hz).
pub const TICK: Duration = Duration::from_millis(25);
/// Longest PING period; the period is min(down-after, this) (Redis: 1 s).
pub const PING_PERIOD_MAX: Duration = Duration::from_millis(100);
/// INFO period in steady state (Redis: 10 s).
pub const INFO_PERIOD: Duration = Duration::from_millis(1000);
/// INFO period for replicas while their master is down or failing over, and for replicas
/// whose link to the master is down (Redis: 1 s).
pub const INFO_PERIOD_FAST: Duration = Duration::from_millis(100);
/// Hello period on every instance (Redis: 2 s).
pub const HELLO_PERIOD: Duration = Duration::from_millis(1000);
/// How often peers are asked about a master we see down, and for their vote while our
/// failover waits for votes (Redis: 1 s since the peer's last answer).
pub const ASK_PERIOD: Duration = Duration::from_millis(50);
/// A peer's "master is down" answer older than this is forgotten (Redis: 5 x ask period).
pub const MASTER_DOWN_VALIDITY: Duration = Duration::from_millis(1000);
/// Tandem's own addition, not in Redis: after ODOWN a sentinel waits its rank (position of
/// its run id among the live sentinels) times this before its first attempt, so the
/// first-ranked one usually asks for votes before the others start. It only orders
/// sentinels whose ODOWN times and vote requests are closer than this; the random
/// [`MAX_DESYNC`] is what keeps retries after a split vote apart.
pub const RANK_DELAY_STEP: Duration = Duration::from_millis(50);
/// Upper bound (exclusive) of the random delay added to the time of our last failover
/// attempt or vote for another sentinel, so that sentinels whose election failed do not
/// all retry at once (Redis: SENTINEL_MAX_DESYNC, 1000 ms).
pub const MAX_DESYNC: Duration = Duration::from_millis(1000);
/// Longest wait for enough votes; the effective timeout is min(this, failover-timeout),
/// counted from the desynchronised start of the attempt (Redis: SENTINEL_ELECTION_TIMEOUT).
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// A replica told to follow the promoted one is considered done after this (Redis: 10 s).
pub const RECONF_TIMEOUT: Duration = Duration::from_secs(10);
/// A replica reporting role:master is turned back into a replica only after reporting it
/// this long, so a newer configuration can arrive first (Redis: 4 x hello period = 8 s).
pub const CONVERT_WAIT: Duration = Duration::from_millis(2000);
/// Replica selection: a replica not heard from for this long is not a candidate (Redis: 5 s).
pub const REPLICA_LAST_SEEN_MAX: Duration = Duration::from_secs(2);
/// Replica selection: INFO must be this fresh while the master is down (Redis: 5 s).
pub const INFO_VALIDITY_DOWN: Duration = Duration::from_millis(1500);
/// Replica selection: INFO must be this fresh when the master is up (forced failover).
pub const INFO_VALIDITY_UP: Duration = Duration::from_millis(3000);
/// Connect timeout of every link.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The pub/sub channel hello messages travel on.
pub const HELLO_CHANNEL: &str = "__sentinel__:hello";

// ---------------------------------------------------------------------------------------------
// Outbox: what decisions want done.

/// Kind of a monitored instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Master,
    Replica,
    Sentinel,
}

/// Which link a job goes to: the instance `addr` of kind `kind` under master `master`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub master: String,
    pub kind: Kind,
    pub addr: NodeAddr,
}

/// Work for a link.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Ping,
    Info,
    /// `PUBLISH __sentinel__:hello <payload>`.
    Hello(String),
    /// `SENTINEL is-master-down-by-addr <ip> <port> <epoch> <runid|*>`.
    Ask {
        master_addr: NodeAddr,
        epoch: Epoch,
        runid: String,
    },
    /// The reconfiguration transaction: `SLAVEOF host port` (or `NO ONE` for `None`).
    SlaveOf(Option<NodeAddr>),
}

/// Effects of a decision, carried out by the driver after the state lock is released.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Event {
        name: &'static str,
        text: String,
    },
    Job {
        target: Target,
        job: Job,
    },
    /// SENTINEL SIMULATE-FAILURE asked us to crash at this point.
    Crash(&'static str),
}

/// Failure simulation flags (SENTINEL SIMULATE-FAILURE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimFailure {
    pub crash_after_election: bool,
    pub crash_after_promotion: bool,
}

/// The sentinel-wide part of the state plus the outbox.
#[derive(Debug)]
pub struct Core {
    pub myid: String,
    pub current_epoch: Epoch,
    /// The address we announce in hello messages.
    pub announce: NodeAddr,
    pub out: Vec<Action>,
    /// Set by every change that must reach the state file.
    pub dirty: bool,
    pub simfailure: SimFailure,
    /// Source of the failover desync ([`MAX_DESYNC`]); tests seed it.
    pub rng: fastrand::Rng,
}

impl Core {
    pub fn new(myid: String, announce: NodeAddr) -> Core {
        Core {
            myid,
            current_epoch: 0,
            announce,
            out: Vec::new(),
            dirty: false,
            simfailure: SimFailure::default(),
            rng: fastrand::Rng::new(),
        }
    }

    /// A random delay in [0, [`MAX_DESYNC`]) (Redis: `rand() % SENTINEL_MAX_DESYNC`).
    pub fn desync(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(0..MAX_DESYNC.as_millis() as u64))
    }

    pub fn event(&mut self, name: &'static str, text: String) {
        self.out.push(Action::Event { name, text });
    }

    pub fn job(&mut self, master: &str, kind: Kind, addr: &NodeAddr, job: Job) {
        self.out.push(Action::Job {
            target: Target {
                master: master.to_string(),
                kind,
                addr: addr.clone(),
            },
            job,
        });
    }

    /// Raises the current epoch to `epoch` if it is greater (`+new-epoch`).
    pub fn observe_epoch(&mut self, epoch: Epoch) {
        if epoch > self.current_epoch {
            self.current_epoch = epoch;
            self.dirty = true;
            self.event("+new-epoch", epoch.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instances.

/// State of the command link to an instance and of its periodic commands.
#[derive(Debug, Clone)]
pub struct Link {
    pub connected: bool,
    /// Last valid PING reply (+PONG, -LOADING, -MASTERDOWN), or the link's creation.
    pub last_avail: Instant,
    /// Last PING reply of any kind.
    pub last_pong: Instant,
    pub last_ping_sent: Option<Instant>,
    pub ping_pending: bool,
    pub last_info_sent: Option<Instant>,
    pub info_pending: bool,
    pub last_hello_sent: Option<Instant>,
    pub hello_pending: bool,
}

impl Link {
    pub fn new(now: Instant) -> Link {
        Link {
            connected: false,
            last_avail: now,
            last_pong: now,
            last_ping_sent: None,
            ping_pending: false,
            last_info_sent: None,
            info_pending: false,
            last_hello_sent: None,
            hello_pending: false,
        }
    }

    fn due(last: Option<Instant>, period: Duration, now: Instant) -> bool {
        last.is_none_or(|t| now.saturating_duration_since(t) >= period)
    }
}

/// A replica's reconfiguration progress during a failover (Redis's SRI_RECONF_* flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconf {
    None,
    Sent(Instant),
    InProgress,
    Done,
}

/// A replica of a monitored master.
#[derive(Debug, Clone)]
pub struct Replica {
    pub addr: NodeAddr,
    pub runid: Option<String>,
    pub link: Link,
    pub sdown_since: Option<Instant>,
    pub info_refresh: Option<Instant>,
    pub role_reported: Role,
    pub role_reported_time: Instant,
    /// Last time its configuration (role slave, or its master) changed.
    pub slave_conf_change_time: Instant,
    /// `master_link_down_since_seconds` x 1000 (0 while the link is up).
    pub master_link_down_ms: i64,
    pub master_host: Option<String>,
    pub master_port: u16,
    pub master_link_up: bool,
    pub priority: i64,
    pub repl_offset: i64,
    pub replica_announced: bool,
    pub reconf: Reconf,
    /// The replica chosen for promotion in the running failover.
    pub promoted: bool,
}

impl Replica {
    pub fn new(addr: NodeAddr, now: Instant) -> Replica {
        Replica {
            addr,
            runid: None,
            link: Link::new(now),
            sdown_since: None,
            info_refresh: None,
            role_reported: Role::Replica,
            role_reported_time: now,
            slave_conf_change_time: now,
            master_link_down_ms: 0,
            master_host: None,
            master_port: 0,
            master_link_up: false,
            priority: 100,
            repl_offset: 0,
            replica_announced: true,
            reconf: Reconf::None,
            promoted: false,
        }
    }

    /// Whether this replica replicates from `addr` according to its last INFO.
    pub fn follows(&self, addr: &NodeAddr) -> bool {
        self.master_port == addr.port && self.master_host.as_deref() == Some(addr.host.as_str())
    }
}

/// Another sentinel monitoring the same master (learnt from hello messages).
#[derive(Debug, Clone)]
pub struct Peer {
    pub runid: String,
    pub addr: NodeAddr,
    pub link: Link,
    pub sdown_since: Option<Instant>,
    pub last_hello: Option<Instant>,
    /// Its last answer to is-master-down-by-addr said the master is down.
    pub master_down: bool,
    pub last_master_down_reply: Option<Instant>,
    pub ask_pending: bool,
    /// Whom it voted for, and in which epoch.
    pub leader: Option<String>,
    pub leader_epoch: Epoch,
}

impl Peer {
    pub fn new(runid: String, addr: NodeAddr, now: Instant) -> Peer {
        Peer {
            runid,
            addr,
            link: Link::new(now),
            sdown_since: None,
            last_hello: None,
            master_down: false,
            last_master_down_reply: None,
            ask_pending: false,
            leader: None,
            leader_epoch: 0,
        }
    }
}

/// Per-master settings (`sentinel monitor` + `sentinel set`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub quorum: u32,
    pub down_after: Duration,
    pub failover_timeout: Duration,
    pub parallel_syncs: u32,
    pub auth_pass: Option<String>,
    pub auth_user: Option<String>,
}

impl Settings {
    /// PING period: min(down-after, [`PING_PERIOD_MAX`]).
    pub fn ping_period(&self) -> Duration {
        self.down_after.min(PING_PERIOD_MAX)
    }
}

/// A monitored master and everything known around it.
#[derive(Debug, Clone)]
pub struct Master {
    pub name: String,
    pub addr: NodeAddr,
    pub settings: Settings,
    pub runid: Option<String>,
    pub link: Link,
    pub sdown_since: Option<Instant>,
    pub odown_since: Option<Instant>,
    pub info_refresh: Option<Instant>,
    pub role_reported: Role,
    pub role_reported_time: Instant,
    pub config_epoch: Epoch,
    /// Our vote for this master's failover leader, and its epoch.
    pub leader: Option<String>,
    pub leader_epoch: Epoch,
    pub failover: FailoverState,
    pub failover_epoch: Epoch,
    /// When our last failover attempt started, or when we last voted for another sentinel,
    /// plus a random desync of up to [`MAX_DESYNC`], so it may lie ahead of now (Redis's
    /// failover_start_time). The election timeout counts from it and no attempt of ours
    /// starts before it is two failover-timeouts old. None: we may start at once.
    pub failover_start: Option<Instant>,
    /// The `failover_start` whose retry delay was last logged (logged once per value).
    pub failover_delay_logged: Option<Instant>,
    pub failover_state_change: Instant,
    pub force_failover: bool,
    pub last_ask: Option<Instant>,
    pub replicas: BTreeMap<NodeAddr, Replica>,
    pub sentinels: BTreeMap<String, Peer>,
    pub created: Instant,
}

impl Master {
    pub fn new(name: String, addr: NodeAddr, settings: Settings, now: Instant) -> Master {
        Master {
            name,
            addr,
            settings,
            runid: None,
            link: Link::new(now),
            sdown_since: None,
            odown_since: None,
            info_refresh: None,
            role_reported: Role::Master,
            role_reported_time: now,
            config_epoch: 0,
            leader: None,
            leader_epoch: 0,
            failover: FailoverState::None,
            failover_epoch: 0,
            failover_start: None,
            failover_delay_logged: None,
            failover_state_change: now,
            force_failover: false,
            last_ask: None,
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
            created: now,
        }
    }

    pub fn in_failover(&self) -> bool {
        self.failover != FailoverState::None
    }

    /// `master <name> <ip> <port>` (Redis's `%@` for a master).
    pub fn desc(&self) -> String {
        format!("master {} {} {}", self.name, self.addr.host, self.addr.port)
    }

    /// `@ <master> <ip> <port>`, the tail of a replica's or sentinel's `%@`.
    fn at(&self) -> String {
        format!("@ {} {} {}", self.name, self.addr.host, self.addr.port)
    }

    pub fn replica_desc(&self, addr: &NodeAddr) -> String {
        format!("slave {} {} {} {}", addr, addr.host, addr.port, self.at())
    }

    pub fn sentinel_desc(&self, runid: &str, addr: &NodeAddr) -> String {
        format!(
            "sentinel {} {} {} {}",
            runid,
            addr.host,
            addr.port,
            self.at()
        )
    }

    /// The address clients should use: the promoted replica once it answers as master
    /// during a failover, the configured master otherwise (sentinelGetCurrentMasterAddress).
    pub fn current_addr(&self) -> &NodeAddr {
        if matches!(
            self.failover,
            FailoverState::ReconfSlaves | FailoverState::UpdateConfig
        ) {
            if let Some(p) = self.promoted_addr() {
                return p;
            }
        }
        &self.addr
    }

    pub fn promoted_addr(&self) -> Option<&NodeAddr> {
        self.replicas.values().find(|r| r.promoted).map(|r| &r.addr)
    }

    /// Adds a replica if unknown (`+slave`); true if it was new.
    pub fn add_replica(&mut self, core: &mut Core, addr: NodeAddr, now: Instant) -> bool {
        if addr == self.addr || self.replicas.contains_key(&addr) {
            return false;
        }
        core.event("+slave", self.replica_desc(&addr));
        self.replicas.insert(addr.clone(), Replica::new(addr, now));
        core.dirty = true;
        true
    }

    /// Number of sentinels that vote: every peer ever seen plus ourselves.
    pub fn voters(&self) -> usize {
        self.sentinels.len() + 1
    }

    /// Forgets replicas, peers, flags and any failover, keeping name and settings
    /// (SENTINEL RESET).
    pub fn reset(&mut self, core: &mut Core, now: Instant) {
        core.event("+reset-master", self.desc());
        let fresh = Master::new(
            self.name.clone(),
            self.addr.clone(),
            self.settings.clone(),
            now,
        );
        let config_epoch = self.config_epoch;
        let (leader, leader_epoch) = (self.leader.take(), self.leader_epoch);
        *self = fresh;
        self.config_epoch = config_epoch;
        self.leader = leader;
        self.leader_epoch = leader_epoch;
        core.dirty = true;
    }

    /// Points this master name at `new` (sentinelResetMasterAndChangeAddress): the old
    /// master and the other replicas become replicas of the new one; peers are kept. As in
    /// Redis the failover start time is forgotten: the new master can be failed over at once.
    pub fn change_address(&mut self, core: &mut Core, new: NodeAddr, now: Instant) {
        let old = self.addr.clone();
        let mut replicas: Vec<NodeAddr> = self
            .replicas
            .keys()
            .filter(|a| **a != new)
            .cloned()
            .collect();
        if old != new && !replicas.contains(&old) {
            replicas.push(old.clone());
        }
        core.event(
            "+switch-master",
            format!(
                "{} {} {} {} {}",
                self.name, old.host, old.port, new.host, new.port
            ),
        );
        let mut fresh = Master::new(self.name.clone(), new, self.settings.clone(), now);
        fresh.config_epoch = self.config_epoch;
        fresh.leader = self.leader.take();
        fresh.leader_epoch = self.leader_epoch;
        // Peers keep their identity; their link state starts over with the new master.
        fresh.sentinels = std::mem::take(&mut self.sentinels);
        for p in fresh.sentinels.values_mut() {
            p.master_down = false;
            p.last_master_down_reply = None;
            p.leader = None;
        }
        *self = fresh;
        for a in replicas {
            self.add_replica(core, a, now);
        }
        core.dirty = true;
    }
}

/// Everything a sentinel knows: its own identity and epoch, and the masters it monitors.
#[derive(Debug)]
pub struct Sentinel {
    pub core: Core,
    pub masters: BTreeMap<String, Master>,
}

impl Sentinel {
    /// Runs one tick over every master: monitoring half, then acting half.
    pub fn tick(&mut self, now: Instant) {
        for m in self.masters.values_mut() {
            m.monitor(&mut self.core, now);
            m.act(&mut self.core, now);
        }
    }

    /// The master monitored at `addr`, if any (is-master-down-by-addr looks up by address).
    pub fn master_by_addr(&mut self, addr: &NodeAddr) -> Option<&mut Master> {
        self.masters.values_mut().find(|m| &m.addr == addr)
    }
}

// ---------------------------------------------------------------------------------------------
// SDOWN / ODOWN.

/// Whether an instance is subjectively down: no valid PING reply for more than
/// down-after, or (masters only) reporting role:slave for longer than down-after plus two
/// INFO periods (`wrong_role_since`).
pub fn is_sdown(
    last_avail: Instant,
    wrong_role_since: Option<Instant>,
    down_after: Duration,
    now: Instant,
) -> bool {
    let silent = now.saturating_duration_since(last_avail) > down_after;
    let wrong_role = wrong_role_since
        .is_some_and(|t| now.saturating_duration_since(t) > down_after + 2 * INFO_PERIOD);
    silent || wrong_role
}

/// Number of sentinels (ourselves included) that consider the master down, when we do.
pub fn odown_votes(sdown: bool, peers_saying_down: usize) -> usize {
    if sdown {
        1 + peers_saying_down
    } else {
        0
    }
}

/// Flips a subjective-down flag, with `+sdown` / `-sdown`.
pub fn set_sdown(
    core: &mut Core,
    flag: &mut Option<Instant>,
    down: bool,
    desc: impl FnOnce() -> String,
    now: Instant,
) {
    match (flag.is_some(), down) {
        (false, true) => {
            *flag = Some(now);
            core.event("+sdown", desc());
        }
        (true, false) => {
            *flag = None;
            core.event("-sdown", desc());
        }
        _ => {}
    }
}

impl Master {
    /// The monitoring half of a tick for this master: periodic commands for every instance,
    /// SDOWN of every instance, ODOWN of the master, and asking peers while it is down.
    pub fn monitor(&mut self, core: &mut Core, now: Instant) {
        let ping = self.settings.ping_period();
        let down_after = self.settings.down_after;
        let fast = self.sdown_since.is_some() || self.in_failover();
        let name = self.name.clone();

        // Periodic commands.
        schedule(
            core,
            &name,
            Kind::Master,
            &self.addr,
            &mut self.link,
            ping,
            INFO_PERIOD,
            now,
        );
        let hello = self.hello_payload(core);
        let replica_addrs: Vec<NodeAddr> = self.replicas.keys().cloned().collect();
        for a in &replica_addrs {
            let Some(r) = self.replicas.get_mut(a) else {
                continue;
            };
            let info = if fast || !r.master_link_up {
                INFO_PERIOD_FAST
            } else {
                INFO_PERIOD
            };
            schedule(core, &name, Kind::Replica, a, &mut r.link, ping, info, now);
        }
        self.schedule_hellos(core, &hello, false, now);
        for p in self.sentinels.values_mut() {
            schedule_ping(core, &name, Kind::Sentinel, &p.addr, &mut p.link, ping, now);
        }

        // SDOWN of every instance.
        let wrong_role = (self.role_reported == Role::Replica).then_some(self.role_reported_time);
        let down = is_sdown(self.link.last_avail, wrong_role, down_after, now);
        let desc = self.desc();
        set_sdown(core, &mut self.sdown_since, down, || desc, now);
        for a in &replica_addrs {
            let d = self.replica_desc(a);
            if let Some(r) = self.replicas.get_mut(a) {
                let down = is_sdown(r.link.last_avail, None, down_after, now);
                set_sdown(core, &mut r.sdown_since, down, || d, now);
            }
        }
        let peers: Vec<(String, NodeAddr)> = self
            .sentinels
            .values()
            .map(|p| (p.runid.clone(), p.addr.clone()))
            .collect();
        for (id, addr) in &peers {
            let d = self.sentinel_desc(id, addr);
            if let Some(p) = self.sentinels.get_mut(id) {
                let down = is_sdown(p.link.last_avail, None, down_after, now);
                set_sdown(core, &mut p.sdown_since, down, || d, now);
            }
        }

        // Forget stale answers, then ODOWN.
        for p in self.sentinels.values_mut() {
            if p.last_master_down_reply
                .is_some_and(|t| now.saturating_duration_since(t) > MASTER_DOWN_VALIDITY)
            {
                p.master_down = false;
                p.leader = None;
                p.last_master_down_reply = None;
            }
        }
        let votes = odown_votes(
            self.sdown_since.is_some(),
            self.sentinels.values().filter(|p| p.master_down).count(),
        );
        let odown = votes >= self.settings.quorum.max(1) as usize;
        match (self.odown_since.is_some(), odown) {
            (false, true) => {
                self.odown_since = Some(now);
                core.event(
                    "+odown",
                    format!("{} #quorum {}/{}", self.desc(), votes, self.settings.quorum),
                );
            }
            (true, false) => {
                self.odown_since = None;
                core.event("-odown", self.desc());
            }
            _ => {}
        }
    }

    /// Asks every connected peer whether the master is down (and for its vote while we run
    /// a failover), at most once per [`ASK_PERIOD`] unless `forced`.
    pub fn ask_peers(&mut self, core: &mut Core, forced: bool, now: Instant) {
        if self.sdown_since.is_none() && !self.in_failover() {
            return;
        }
        if !forced
            && self
                .last_ask
                .is_some_and(|t| now.saturating_duration_since(t) < ASK_PERIOD)
        {
            return;
        }
        self.last_ask = Some(now);
        let runid = if self.in_failover() {
            core.myid.clone()
        } else {
            "*".to_string()
        };
        let epoch = core.current_epoch;
        for p in self.sentinels.values_mut() {
            if (p.ask_pending && !forced) || p.sdown_since.is_some() {
                continue;
            }
            p.ask_pending = true;
            core.out.push(Action::Job {
                target: Target {
                    master: self.name.clone(),
                    kind: Kind::Sentinel,
                    addr: p.addr.clone(),
                },
                job: Job::Ask {
                    master_addr: self.addr.clone(),
                    epoch,
                    runid: runid.clone(),
                },
            });
        }
    }

    /// Our hello for this master: `ip,port,runid,current_epoch,name,master_ip,master_port,config_epoch`.
    pub fn hello_payload(&self, core: &Core) -> String {
        Hello {
            ip: core.announce.host.clone(),
            port: core.announce.port,
            runid: core.myid.clone(),
            current_epoch: core.current_epoch,
            master_name: self.name.clone(),
            master: self.current_addr().clone(),
            master_config_epoch: self.config_epoch,
        }
        .to_string()
    }

    /// Publishes our hello on the master, its replicas and its peers when due (or now, if
    /// `forced`).
    pub fn schedule_hellos(&mut self, core: &mut Core, payload: &str, forced: bool, now: Instant) {
        let name = self.name.clone();
        let send = |core: &mut Core, kind: Kind, addr: &NodeAddr, link: &mut Link| {
            if !forced
                && (link.hello_pending || !Link::due(link.last_hello_sent, HELLO_PERIOD, now))
            {
                return;
            }
            link.hello_pending = true;
            link.last_hello_sent = Some(now);
            core.job(&name, kind, addr, Job::Hello(payload.to_string()));
        };
        if self.sdown_since.is_none() {
            send(core, Kind::Master, &self.addr.clone(), &mut self.link);
        }
        for r in self.replicas.values_mut() {
            if r.sdown_since.is_none() {
                send(core, Kind::Replica, &r.addr.clone(), &mut r.link);
            }
        }
        for p in self.sentinels.values_mut() {
            if p.sdown_since.is_none() {
                send(core, Kind::Sentinel, &p.addr.clone(), &mut p.link);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn schedule(
    core: &mut Core,
    master: &str,
    kind: Kind,
    addr: &NodeAddr,
    link: &mut Link,
    ping: Duration,
    info: Duration,
    now: Instant,
) {
    schedule_ping(core, master, kind, addr, link, ping, now);
    if !link.info_pending && Link::due(link.last_info_sent, info, now) {
        link.info_pending = true;
        link.last_info_sent = Some(now);
        core.job(master, kind, addr, Job::Info);
    }
}

fn schedule_ping(
    core: &mut Core,
    master: &str,
    kind: Kind,
    addr: &NodeAddr,
    link: &mut Link,
    ping: Duration,
    now: Instant,
) {
    if !link.ping_pending && Link::due(link.last_ping_sent, ping, now) {
        link.ping_pending = true;
        link.last_ping_sent = Some(now);
        core.job(master, kind, addr, Job::Ping);
    }
}

// ---------------------------------------------------------------------------------------------
// Hello messages.

/// A hello message: `<ip>,<port>,<runid>,<current_epoch>,<master_name>,<master_ip>,<master_port>,<master_config_epoch>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub ip: String,
    pub port: u16,
    pub runid: String,
    pub current_epoch: Epoch,
    pub master_name: String,
    pub master: NodeAddr,
    pub master_config_epoch: Epoch,
}

impl Hello {
    /// Parses a hello payload; `None` unless it has exactly 8 well-formed fields.
    pub fn parse(payload: &[u8]) -> Option<Hello> {
        let text = std::str::from_utf8(payload).ok()?;
        let f: Vec<&str> = text.split(',').collect();
        if f.len() != 8 || f[2].len() != 40 {
            return None;
        }
        Some(Hello {
            ip: f[0].to_string(),
            port: f[1].parse().ok()?,
            runid: f[2].to_string(),
            current_epoch: f[3].parse().ok()?,
            master_name: f[4].to_string(),
            master: NodeAddr::new(f[5], f[6].parse().ok()?),
            master_config_epoch: f[7].parse().ok()?,
        })
    }
}

impl std::fmt::Display for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{},{},{},{},{},{},{}",
            self.ip,
            self.port,
            self.runid,
            self.current_epoch,
            self.master_name,
            self.master.host,
            self.master.port,
            self.master_config_epoch
        )
    }
}

// ---------------------------------------------------------------------------------------------
// INFO replies.

/// The fields of an INFO reply the sentinel uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    pub run_id: Option<String>,
    pub role: Option<Role>,
    /// `slaveN:` lines of a master (ip, port).
    pub replicas: Vec<NodeAddr>,
    pub master_host: Option<String>,
    pub master_port: Option<u16>,
    pub master_link_up: bool,
    pub master_link_down_since_seconds: Option<i64>,
    pub priority: Option<i64>,
    pub repl_offset: Option<i64>,
    pub replica_announced: Option<bool>,
}

impl Info {
    pub fn parse(text: &str) -> Info {
        let mut info = Info::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            match k {
                "run_id" if v.len() == 40 => info.run_id = Some(v.to_string()),
                "role" => {
                    info.role = match v {
                        "master" => Some(Role::Master),
                        "slave" => Some(Role::Replica),
                        _ => None,
                    }
                }
                "master_host" => info.master_host = Some(v.to_string()),
                "master_port" => info.master_port = v.parse().ok(),
                "master_link_status" => info.master_link_up = v == "up",
                "master_link_down_since_seconds" => {
                    info.master_link_down_since_seconds = v.parse().ok()
                }
                "slave_priority" | "replica_priority" => info.priority = v.parse().ok(),
                "slave_repl_offset" => info.repl_offset = v.parse().ok(),
                "replica_announced" => info.replica_announced = Some(v == "1"),
                _ if k.starts_with("slave") && k[5..].bytes().all(|b| b.is_ascii_digit()) => {
                    if let Some(a) = parse_slave_line(v) {
                        info.replicas.push(a);
                    }
                }
                _ => {}
            }
        }
        info
    }
}

/// `ip=...,port=...,state=...` (or the old `<ip>,<port>,<state>` form).
fn parse_slave_line(v: &str) -> Option<NodeAddr> {
    if v.contains('=') {
        let mut ip = None;
        let mut port = None;
        for kv in v.split(',') {
            match kv.split_once('=') {
                Some(("ip", x)) => ip = Some(x),
                Some(("port", x)) => port = x.parse().ok(),
                _ => {}
            }
        }
        Some(NodeAddr::new(ip?, port?))
    } else {
        let mut it = v.split(',');
        let ip = it.next()?;
        let port = it.next()?.parse().ok()?;
        Some(NodeAddr::new(ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdown_after_down_after_without_valid_reply() {
        let t0 = Instant::now();
        let d = Duration::from_millis(1000);
        assert!(!is_sdown(t0, None, d, t0 + Duration::from_millis(1000)));
        assert!(is_sdown(t0, None, d, t0 + Duration::from_millis(1001)));
        // A master reporting role:slave for too long is down even if it answers PING.
        let now = t0 + Duration::from_millis(500);
        assert!(!is_sdown(now, Some(t0), d, now));
        let later = t0 + d + 2 * INFO_PERIOD + Duration::from_millis(1);
        assert!(is_sdown(later, Some(t0), d, later));
    }

    #[test]
    fn odown_counts_self_and_peers_only_when_self_sees_down() {
        assert_eq!(odown_votes(false, 2), 0);
        assert_eq!(odown_votes(true, 0), 1);
        assert_eq!(odown_votes(true, 2), 3);
    }

    #[test]
    fn monitor_raises_and_clears_sdown_and_odown() {
        let t0 = Instant::now();
        let mut core = Core::new("a".repeat(40), NodeAddr::new("127.0.0.1", 26379));
        let settings = Settings {
            quorum: 2,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_secs(5),
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
        };
        let mut m = Master::new(
            "mymaster".into(),
            NodeAddr::new("127.0.0.1", 6379),
            settings,
            t0,
        );
        let peer = "b".repeat(40);
        m.sentinels.insert(
            peer.clone(),
            Peer::new(peer.clone(), NodeAddr::new("127.0.0.1", 26380), t0),
        );
        let t1 = t0 + Duration::from_millis(1100);
        m.sentinels.get_mut(&peer).unwrap().link.last_avail = t1;
        m.monitor(&mut core, t1);
        assert!(m.sdown_since.is_some());
        assert!(m.odown_since.is_none());
        assert!(core.out.contains(&Action::Event {
            name: "+sdown",
            text: "master mymaster 127.0.0.1 6379".into()
        }));
        // The peer agrees: ODOWN with quorum 2/2.
        let p = m.sentinels.get_mut(&peer).unwrap();
        p.master_down = true;
        p.last_master_down_reply = Some(t1);
        m.monitor(&mut core, t1);
        assert!(m.odown_since.is_some());
        assert!(core.out.contains(&Action::Event {
            name: "+odown",
            text: "master mymaster 127.0.0.1 6379 #quorum 2/2".into()
        }));
        // The master answers again.
        let t2 = t1 + Duration::from_millis(10);
        m.link.last_avail = t2;
        m.monitor(&mut core, t2);
        assert!(m.sdown_since.is_none() && m.odown_since.is_none());
        assert!(core
            .out
            .iter()
            .any(|a| matches!(a, Action::Event { name: "-odown", .. })));
    }

    #[test]
    fn hello_round_trip_and_rejects() {
        let h = Hello {
            ip: "127.0.0.1".into(),
            port: 26379,
            runid: "c".repeat(40),
            current_epoch: 3,
            master_name: "mymaster".into(),
            master: NodeAddr::new("10.0.0.1", 6380),
            master_config_epoch: 2,
        };
        let s = h.to_string();
        assert_eq!(
            s,
            format!(
                "127.0.0.1,26379,{},3,mymaster,10.0.0.1,6380,2",
                "c".repeat(40)
            )
        );
        assert_eq!(Hello::parse(s.as_bytes()), Some(h));
        assert_eq!(Hello::parse(b"1,2,3"), None);
        assert_eq!(Hello::parse(b"a,x,b,c,d,e,f,g"), None);
    }

    #[test]
    fn parses_info_of_master_and_replica() {
        let master = "# Server\r\nrun_id:0123456789012345678901234567890123456789\r\n# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=7002,state=online,offset=10,lag=0\r\nslave1:127.0.0.1,7003,online\r\nmaster_replid:x\r\n";
        let i = Info::parse(master);
        assert_eq!(i.role, Some(Role::Master));
        assert_eq!(
            i.replicas,
            vec![
                NodeAddr::new("127.0.0.1", 7002),
                NodeAddr::new("127.0.0.1", 7003)
            ]
        );
        assert!(i.run_id.is_some());
        let replica = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7001\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:3\r\nslave_repl_offset:42\r\nslave_priority:0\r\nreplica_announced:1\r\n";
        let i = Info::parse(replica);
        assert_eq!(i.role, Some(Role::Replica));
        assert_eq!(i.master_port, Some(7001));
        assert!(!i.master_link_up);
        assert_eq!(i.master_link_down_since_seconds, Some(3));
        assert_eq!((i.repl_offset, i.priority), (Some(42), Some(0)));
        assert_eq!(i.replica_announced, Some(true));
    }
}

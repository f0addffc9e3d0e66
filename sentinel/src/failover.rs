//! The failover state machine: when to start one, choosing the replica to promote, and one
//! function per state, each either advancing (stamping the time) or aborting on its own
//! timeout. Guarantee: no abort after the promotion; every transition emits Redis's event.

use std::cmp::Ordering;
use std::time::{Duration, Instant};
use tandem_protocol::types::NodeAddr;

use crate::election::{election_deadline, retry_at};
use crate::instance::{
    Action, Core, Job, Kind, Master, Reconf, Replica, INFO_VALIDITY_DOWN, INFO_VALIDITY_UP,
    RANK_DELAY_STEP, RECONF_TIMEOUT, REPLICA_LAST_SEEN_MAX,
};

/// Where a master's failover stands (Redis's SENTINEL_FAILOVER_STATE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailoverState {
    None,
    /// Waiting to be elected leader of the failover epoch.
    WaitStart,
    SelectSlave,
    SendSlaveofNoOne,
    /// SLAVEOF NO ONE sent; waiting for INFO to say role:master.
    WaitPromotion,
    /// The promoted replica is master; repointing the other replicas.
    ReconfSlaves,
    /// Done: switch the configuration to the promoted replica.
    UpdateConfig,
}

impl FailoverState {
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoOne => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// How long a sentinel waits after ODOWN before its first failover attempt: its rank among
/// the live sentinels (sorted run ids) times [`RANK_DELAY_STEP`], so that usually the first
/// one asks for votes before the others try (a Tandem addition; Redis starts at once).
pub fn start_delay<'a>(myid: &str, live_peers: impl IntoIterator<Item = &'a str>) -> Duration {
    let rank = live_peers.into_iter().filter(|p| *p < myid).count();
    RANK_DELAY_STEP * rank as u32
}

/// Orders run ids as Redis does: case-insensitively, unknown ones last.
fn cmp_runid(a: &Option<String>, b: &Option<String>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The replica to promote (sentinelSelectSlave). Candidates are replicas that are:
/// 1. not subjectively down, and connected;
/// 2. heard from within [`REPLICA_LAST_SEEN_MAX`];
/// 3. not of priority 0;
/// 4. described by a fresh INFO ([`INFO_VALIDITY_DOWN`] while the master is down,
///    [`INFO_VALIDITY_UP`] otherwise);
/// 5. not disconnected from the master for longer than the master has been down plus
///    10 x down-after.
///
/// Then: lowest priority, largest replication offset, smallest run id.
pub fn select_replica(m: &Master, now: Instant) -> Option<NodeAddr> {
    let down_for = m
        .sdown_since
        .map(|t| now.saturating_duration_since(t))
        .unwrap_or_default();
    let max_link_down = (down_for + 10 * m.settings.down_after).as_millis() as i64;
    let info_validity = if m.sdown_since.is_some() {
        INFO_VALIDITY_DOWN
    } else {
        INFO_VALIDITY_UP
    };
    let age = |t: Instant| now.saturating_duration_since(t);
    let mut candidates: Vec<&Replica> = m
        .replicas
        .values()
        .filter(|r| r.sdown_since.is_none() && r.link.connected)
        .filter(|r| age(r.link.last_avail) <= REPLICA_LAST_SEEN_MAX)
        .filter(|r| r.priority != 0)
        .filter(|r| r.info_refresh.is_some_and(|t| age(t) <= info_validity))
        .filter(|r| r.master_link_down_ms <= max_link_down)
        .collect();
    candidates.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.repl_offset.cmp(&a.repl_offset))
            .then_with(|| cmp_runid(&a.runid, &b.runid))
    });
    candidates.first().map(|r| r.addr.clone())
}

impl Master {
    /// The acting half of a tick: start a failover if one is needed, run the state
    /// machine, and ask peers about the master (forced right after a start).
    pub fn act(&mut self, core: &mut Core, now: Instant) {
        let mut started = false;
        if self.should_start_failover(core, now) {
            self.start_failover(core, now);
            started = true;
        } else if self.odown_since.is_some() && !self.in_failover() {
            self.log_failover_delay(now);
        }
        self.failover_step(core, now);
        self.ask_peers(core, started, now);
    }

    /// Conditions to start a failover (sentinelStartFailoverIfNeeded):
    /// 1. the master is objectively down;
    /// 2. no failover is running;
    /// 3. our last attempt, or our last vote for another sentinel, is two failover-timeouts
    ///    old, counted from its desynchronised start (see [`Master::failover_delayed`]);
    /// 4. our rank delay since ODOWN has passed (see [`start_delay`]).
    pub fn should_start_failover(&self, core: &Core, now: Instant) -> bool {
        let Some(odown_since) = self.odown_since else {
            return false;
        };
        if self.in_failover() {
            return false;
        }
        if self.failover_delayed(now) {
            return false;
        }
        let live = self
            .sentinels
            .values()
            .filter(|p| p.sdown_since.is_none())
            .map(|p| p.runid.as_str());
        now >= odown_since + start_delay(&core.myid, live)
    }

    /// Whether our last failover attempt, or our last vote for another sentinel, still holds
    /// back a new attempt at `now`: for two failover-timeouts after its desynchronised start
    /// (see [`retry_at`]).
    pub fn failover_delayed(&self, now: Instant) -> bool {
        self.failover_start.is_some_and(|start| {
            retry_at(start, self.settings.failover_timeout).is_none_or(|t| now < t)
        })
    }

    /// Logs once per stamped start why a failover of an ODOWN master does not start yet
    /// (Redis: "Next failover delay: I will not start a failover before ...").
    fn log_failover_delay(&mut self, now: Instant) {
        let Some(start) = self.failover_start else {
            return;
        };
        if !self.failover_delayed(now) || self.failover_delay_logged == Some(start) {
            return;
        }
        self.failover_delay_logged = Some(start);
        let wait = retry_at(start, self.settings.failover_timeout)
            .map(|t| format!("for {} ms", t.saturating_duration_since(now).as_millis()))
            .unwrap_or_else(|| "again".into());
        tracing::warn!(
            "Next failover delay: I will not start a failover of '{}' {wait}",
            self.name
        );
    }

    /// Starts a failover in a new epoch (`+new-epoch`, `+try-failover`). The start time gets
    /// a random desync of up to [`crate::instance::MAX_DESYNC`], as in Redis, so sentinels
    /// whose election fails time out and retry at different times.
    pub fn start_failover(&mut self, core: &mut Core, now: Instant) {
        // Wrapping, as Redis's `++` on its uint64 epoch: a peer may have announced any epoch.
        core.current_epoch = core.current_epoch.wrapping_add(1);
        core.dirty = true;
        self.failover_epoch = core.current_epoch;
        core.event("+new-epoch", core.current_epoch.to_string());
        core.event("+try-failover", self.desc());
        self.failover = FailoverState::WaitStart;
        self.failover_start = Some(now.checked_add(core.desync()).unwrap_or(now));
        self.failover_state_change = now;
    }

    fn set_state(&mut self, s: FailoverState, now: Instant) {
        self.failover = s;
        self.failover_state_change = now;
    }

    fn state_age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.failover_state_change)
    }

    /// Abandons a failover that has not promoted anyone yet (sentinelAbortFailover).
    pub fn abort_failover(&mut self, core: &mut Core, event: &'static str, now: Instant) {
        core.event(event, self.desc());
        self.set_state(FailoverState::None, now);
        self.force_failover = false;
        for r in self.replicas.values_mut() {
            r.promoted = false;
            r.reconf = Reconf::None;
        }
    }

    /// Runs the function of the current failover state.
    pub fn failover_step(&mut self, core: &mut Core, now: Instant) {
        match self.failover {
            FailoverState::None => {}
            FailoverState::WaitStart => self.failover_wait_start(core, now),
            FailoverState::SelectSlave => self.failover_select_slave(core, now),
            FailoverState::SendSlaveofNoOne => self.failover_send_slaveof_noone(core, now),
            FailoverState::WaitPromotion => self.failover_wait_promotion(core, now),
            FailoverState::ReconfSlaves => self.failover_reconf_slaves(core, now),
            FailoverState::UpdateConfig => self.failover_switch_to_promoted(core, now),
        }
    }

    fn failover_wait_start(&mut self, core: &mut Core, now: Instant) {
        let leader = self.get_leader(core, self.failover_epoch, now);
        let elected = leader.as_deref() == Some(core.myid.as_str());
        if !elected && !self.force_failover {
            let started = self.failover_start.unwrap_or(self.failover_state_change);
            if election_deadline(started, self.settings.failover_timeout).is_some_and(|d| now > d) {
                self.abort_failover(core, "-failover-abort-not-elected", now);
            }
            return;
        }
        core.event("+elected-leader", self.desc());
        if core.simfailure.crash_after_election {
            core.out.push(Action::Crash("crash-after-election"));
        }
        self.set_state(FailoverState::SelectSlave, now);
        core.event("+failover-state-select-slave", self.desc());
        self.failover_select_slave(core, now);
    }

    fn failover_select_slave(&mut self, core: &mut Core, now: Instant) {
        let Some(addr) = select_replica(self, now) else {
            self.abort_failover(core, "-failover-abort-no-good-slave", now);
            return;
        };
        core.event("+selected-slave", self.replica_desc(&addr));
        if let Some(r) = self.replicas.get_mut(&addr) {
            r.promoted = true;
        }
        self.set_state(FailoverState::SendSlaveofNoOne, now);
        core.event(
            "+failover-state-send-slaveof-noone",
            self.replica_desc(&addr),
        );
        self.failover_send_slaveof_noone(core, now);
    }

    fn failover_send_slaveof_noone(&mut self, core: &mut Core, now: Instant) {
        let Some(r) = self.replicas.values().find(|r| r.promoted) else {
            self.abort_failover(core, "-failover-abort-no-good-slave", now);
            return;
        };
        if !r.link.connected {
            if self.state_age(now) > self.settings.failover_timeout {
                self.abort_failover(core, "-failover-abort-slave-timeout", now);
            }
            return;
        }
        let addr = r.addr.clone();
        core.job(&self.name, Kind::Replica, &addr, Job::SlaveOf(None));
        core.event("+failover-state-wait-promotion", self.replica_desc(&addr));
        self.set_state(FailoverState::WaitPromotion, now);
    }

    fn failover_wait_promotion(&mut self, core: &mut Core, now: Instant) {
        if self.state_age(now) > self.settings.failover_timeout {
            self.abort_failover(core, "-failover-abort-slave-timeout", now);
        }
    }

    /// The promoted replica's INFO says role:master: its configuration wins from now on.
    pub fn on_promoted(&mut self, core: &mut Core, now: Instant) {
        let Some(addr) = self.promoted_addr().cloned() else {
            return;
        };
        self.config_epoch = self.failover_epoch;
        core.dirty = true;
        core.event("+promoted-slave", self.replica_desc(&addr));
        if core.simfailure.crash_after_promotion {
            core.out.push(Action::Crash("crash-after-promotion"));
        }
        self.set_state(FailoverState::ReconfSlaves, now);
        core.event("+failover-state-reconf-slaves", self.desc());
        // Tell everyone now rather than at the next hello period.
        let hello = self.hello_payload(core);
        self.schedule_hellos(core, &hello, true, now);
        self.failover_reconf_slaves(core, now);
    }

    /// Points up to parallel-syncs replicas at a time at the promoted one
    /// (sentinelFailoverReconfNextSlave), then checks for the end.
    fn failover_reconf_slaves(&mut self, core: &mut Core, now: Instant) {
        let Some(promoted) = self.promoted_addr().cloned() else {
            return;
        };
        let mut in_progress = self
            .replicas
            .values()
            .filter(|r| matches!(r.reconf, Reconf::Sent(_) | Reconf::InProgress))
            .count();
        let addrs: Vec<NodeAddr> = self.replicas.keys().cloned().collect();
        for a in addrs {
            if in_progress >= self.settings.parallel_syncs.max(1) as usize {
                break;
            }
            let desc = self.replica_desc(&a);
            let Some(r) = self.replicas.get_mut(&a) else {
                continue;
            };
            if r.promoted || r.reconf == Reconf::Done {
                continue;
            }
            if let Reconf::Sent(t) = r.reconf {
                if now.saturating_duration_since(t) > RECONF_TIMEOUT {
                    r.reconf = Reconf::Done;
                    core.event("-slave-reconf-sent-timeout", desc);
                }
                continue;
            }
            if r.reconf == Reconf::InProgress || !r.link.connected || r.sdown_since.is_some() {
                continue;
            }
            r.reconf = Reconf::Sent(now);
            core.job(
                &self.name,
                Kind::Replica,
                &a,
                Job::SlaveOf(Some(promoted.clone())),
            );
            core.event("+slave-reconf-sent", desc);
            in_progress += 1;
        }
        self.failover_detect_end(core, now);
    }

    /// The failover ends when every reachable replica follows the promoted one, or on
    /// failover-timeout (then the rest are told once more, `+slave-reconf-sent-be`).
    fn failover_detect_end(&mut self, core: &mut Core, now: Instant) {
        let Some(promoted) = self.replicas.values().find(|r| r.promoted) else {
            return;
        };
        if promoted.sdown_since.is_some() {
            return;
        }
        let promoted = promoted.addr.clone();
        let mut pending = self
            .replicas
            .values()
            .filter(|r| !r.promoted && r.reconf != Reconf::Done && r.sdown_since.is_none())
            .count();
        let timeout = self.state_age(now) > self.settings.failover_timeout;
        if timeout && pending > 0 {
            pending = 0;
            core.event("+failover-end-for-timeout", self.desc());
            let name = self.name.clone();
            let late: Vec<NodeAddr> = self
                .replicas
                .values()
                .filter(|r| !r.promoted && r.reconf == Reconf::None)
                .map(|r| r.addr.clone())
                .collect();
            for a in late {
                core.job(
                    &name,
                    Kind::Replica,
                    &a,
                    Job::SlaveOf(Some(promoted.clone())),
                );
                core.event("+slave-reconf-sent-be", self.replica_desc(&a));
            }
        }
        if pending == 0 {
            core.event("+failover-end", self.desc());
            self.set_state(FailoverState::UpdateConfig, now);
            self.failover_switch_to_promoted(core, now);
        }
    }

    /// Switches the configuration to the promoted replica (`+switch-master`). An old
    /// master that still answers (forced failover) is turned into a replica right away.
    fn failover_switch_to_promoted(&mut self, core: &mut Core, now: Instant) {
        let Some(new) = self.promoted_addr().cloned() else {
            self.set_state(FailoverState::None, now);
            return;
        };
        let old = self.addr.clone();
        let old_up = self.sdown_since.is_none() && self.link.connected;
        self.change_address(core, new.clone(), now);
        if old_up {
            core.job(&self.name, Kind::Replica, &old, Job::SlaveOf(Some(new)));
            core.event("+convert-to-slave", self.replica_desc(&old));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{Peer, Settings, ELECTION_TIMEOUT, MAX_DESYNC};
    use tandem_protocol::types::Role;

    fn setup(now: Instant) -> (Core, Master) {
        let core = Core::new("m".repeat(40), NodeAddr::new("127.0.0.1", 26379));
        let settings = Settings {
            quorum: 2,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_secs(3),
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
        };
        let mut m = Master::new("mm".into(), NodeAddr::new("127.0.0.1", 7001), settings, now);
        for port in [7002, 7003] {
            let mut r = Replica::new(NodeAddr::new("127.0.0.1", port), now);
            r.link.connected = true;
            r.info_refresh = Some(now);
            r.runid = Some(format!("{port}"));
            r.master_link_up = true;
            m.replicas.insert(r.addr.clone(), r);
        }
        for (id, port) in [("a".repeat(40), 26380), ("z".repeat(40), 26381)] {
            let mut p = Peer::new(id.clone(), NodeAddr::new("127.0.0.1", port), now);
            p.link.connected = true;
            m.sentinels.insert(id, p);
        }
        (core, m)
    }

    fn events(core: &Core) -> Vec<&'static str> {
        core.out
            .iter()
            .filter_map(|a| match a {
                Action::Event { name, .. } => Some(*name),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn replica_selection_conditions_then_order() {
        let now = Instant::now();
        let (_, mut m) = setup(now);
        let a2 = NodeAddr::new("127.0.0.1", 7002);
        let a3 = NodeAddr::new("127.0.0.1", 7003);
        // Equal priority and offset: smaller run id.
        assert_eq!(select_replica(&m, now), Some(a2.clone()));
        // Larger offset wins.
        m.replicas.get_mut(&a3).unwrap().repl_offset = 10;
        assert_eq!(select_replica(&m, now), Some(a3.clone()));
        // Lower priority wins over offset.
        m.replicas.get_mut(&a2).unwrap().priority = 50;
        assert_eq!(select_replica(&m, now), Some(a2.clone()));
        // Priority 0 is never chosen.
        m.replicas.get_mut(&a2).unwrap().priority = 0;
        assert_eq!(select_replica(&m, now), Some(a3.clone()));
        // Disconnected, down, stale INFO or a long-dead master link: no candidate.
        m.replicas.get_mut(&a3).unwrap().link.connected = false;
        assert_eq!(select_replica(&m, now), None);
        m.replicas.get_mut(&a3).unwrap().link.connected = true;
        m.replicas.get_mut(&a3).unwrap().sdown_since = Some(now);
        assert_eq!(select_replica(&m, now), None);
        m.replicas.get_mut(&a3).unwrap().sdown_since = None;
        m.replicas.get_mut(&a3).unwrap().info_refresh = None;
        assert_eq!(select_replica(&m, now), None);
        m.replicas.get_mut(&a3).unwrap().info_refresh = Some(now);
        m.replicas.get_mut(&a3).unwrap().master_link_down_ms = 11_000;
        assert_eq!(select_replica(&m, now), None);
    }

    #[test]
    fn a_failover_after_the_largest_epoch_wraps_as_in_redis() {
        let t0 = Instant::now();
        let (mut core, mut m) = setup(t0);
        // A hello from a peer can announce any epoch; the next failover must not panic.
        core.observe_epoch(u64::MAX);
        m.start_failover(&mut core, t0);
        assert_eq!(core.current_epoch, 0);
        assert_eq!(m.failover_epoch, 0);
        assert_eq!(m.failover, FailoverState::WaitStart);
    }

    #[test]
    fn rank_delay_orders_sentinels() {
        assert_eq!(start_delay("b", ["a", "c"]), RANK_DELAY_STEP);
        assert_eq!(start_delay("a", ["b", "c"]), Duration::ZERO);
        assert_eq!(start_delay("c", ["a", "b"]), RANK_DELAY_STEP * 2);
    }

    #[test]
    fn full_failover_path() {
        let t0 = Instant::now();
        let (mut core, mut m) = setup(t0);
        // Not ODOWN: nothing starts.
        m.act(&mut core, t0);
        assert_eq!(m.failover, FailoverState::None);
        // ODOWN; we rank second ("a..." < "m..." < "z..."): wait one step.
        m.sdown_since = Some(t0);
        m.odown_since = Some(t0);
        m.act(&mut core, t0);
        assert_eq!(m.failover, FailoverState::None);
        let t1 = t0 + RANK_DELAY_STEP;
        m.act(&mut core, t1);
        assert_eq!(m.failover, FailoverState::WaitStart);
        assert_eq!(core.current_epoch, 1);
        assert!(core.out.iter().any(|a| matches!(a,
            Action::Job { job: Job::Ask { epoch: 1, runid, .. }, .. } if *runid == core.myid)));
        // A peer votes for us: elected, replica chosen, SLAVEOF NO ONE sent.
        core.out.clear();
        let me = core.myid.clone();
        let p = m.sentinels.values_mut().next().unwrap();
        p.leader = Some(me);
        p.leader_epoch = 1;
        m.act(&mut core, t1);
        assert_eq!(m.failover, FailoverState::WaitPromotion);
        assert_eq!(
            events(&core),
            [
                "+elected-leader",
                "+failover-state-select-slave",
                "+selected-slave",
                "+failover-state-send-slaveof-noone",
                "+failover-state-wait-promotion"
            ]
        );
        let a2 = NodeAddr::new("127.0.0.1", 7002);
        assert!(core.out.iter().any(|a| matches!(a,
            Action::Job { target, job: Job::SlaveOf(None) } if target.addr == a2)));
        // Promotion seen: reconfigure the other replica.
        core.out.clear();
        m.on_promoted(&mut core, t1);
        assert_eq!(m.config_epoch, 1);
        assert_eq!(m.failover, FailoverState::ReconfSlaves);
        assert_eq!(m.current_addr(), &a2);
        let a3 = NodeAddr::new("127.0.0.1", 7003);
        assert!(
            core.out.iter().any(|a| matches!(a,
            Action::Job { target, job: Job::SlaveOf(Some(to)) } if target.addr == a3 && *to == a2))
        );
        assert!(core.out.iter().any(|a| matches!(a,
            Action::Job { target, job: Job::Hello(_) } if target.kind == Kind::Sentinel)));
        // The replica follows: failover ends, configuration switches.
        core.out.clear();
        m.replicas.get_mut(&a3).unwrap().reconf = Reconf::Done;
        m.act(&mut core, t1);
        assert_eq!(events(&core)[..2], ["+failover-end", "+switch-master"]);
        assert_eq!(m.addr, a2);
        assert_eq!(m.failover, FailoverState::None);
        assert!(m.replicas.contains_key(&NodeAddr::new("127.0.0.1", 7001)));
        assert!(m.replicas.contains_key(&a3));
        assert_eq!(m.replicas[&a3].role_reported, Role::Replica);
    }

    #[test]
    fn not_elected_aborts_after_election_timeout_and_retries_after_twice_failover_timeout() {
        let t0 = Instant::now();
        let (mut core, mut m) = setup(t0);
        m.sdown_since = Some(t0);
        m.odown_since = Some(t0 - Duration::from_secs(1));
        m.act(&mut core, t0);
        assert_eq!(m.failover, FailoverState::WaitStart);
        // The attempt's start carries a desync of up to MAX_DESYNC.
        let start = m.failover_start.unwrap();
        assert!(start >= t0 && start < t0 + MAX_DESYNC);
        // Election timeout: min(10 s, failover-timeout 3 s) after the desynchronised start.
        m.act(&mut core, start + Duration::from_secs(3));
        assert_eq!(m.failover, FailoverState::WaitStart);
        m.act(&mut core, start + Duration::from_millis(3001));
        assert_eq!(m.failover, FailoverState::None);
        assert!(events(&core).contains(&"-failover-abort-not-elected"));
        // No new attempt before two failover-timeouts have passed since that start.
        assert!(!m.should_start_failover(&core, start + Duration::from_millis(5999)));
        assert!(m.should_start_failover(&core, start + Duration::from_secs(6)));
        core.out.clear();
        m.act(&mut core, start + Duration::from_secs(6));
        assert_eq!(m.failover, FailoverState::WaitStart);
        assert_eq!(m.failover_epoch, 2);
        assert_eq!(events(&core)[..2], ["+new-epoch", "+try-failover"]);
    }

    #[test]
    fn election_timeout_is_capped_at_ten_seconds() {
        let t0 = Instant::now();
        let (mut core, mut m) = setup(t0);
        m.settings.failover_timeout = Duration::from_secs(180);
        m.start_failover(&mut core, t0);
        let start = m.failover_start.unwrap();
        m.act(&mut core, start + ELECTION_TIMEOUT);
        assert_eq!(m.failover, FailoverState::WaitStart);
        m.act(
            &mut core,
            start + ELECTION_TIMEOUT + Duration::from_millis(1),
        );
        assert_eq!(m.failover, FailoverState::None);
        // Redis's default failover-timeout: the retry comes 6 minutes after the attempt.
        m.odown_since = Some(t0);
        assert!(!m.should_start_failover(&core, start + Duration::from_secs(359)));
        assert!(m.should_start_failover(&core, start + Duration::from_secs(360)));
    }

    #[test]
    fn switch_master_forgets_the_retry_delay() {
        let t0 = Instant::now();
        let (mut core, mut m) = setup(t0);
        m.vote(&mut core, 1, &"a".repeat(40), t0);
        assert!(m.failover_delayed(t0 + Duration::from_secs(5)));
        m.change_address(&mut core, NodeAddr::new("127.0.0.1", 7002), t0);
        assert!(!m.failover_delayed(t0));
        assert_eq!(m.leader_epoch, 1, "the vote of epoch 1 is kept");
    }

    #[test]
    fn no_good_replica_aborts_and_promotion_timeout_aborts() {
        let t0 = Instant::now();
        let (mut core, mut m) = setup(t0);
        for r in m.replicas.values_mut() {
            r.priority = 0;
        }
        m.start_failover(&mut core, t0);
        m.force_failover = true;
        m.act(&mut core, t0);
        assert_eq!(m.failover, FailoverState::None);
        assert!(events(&core).contains(&"-failover-abort-no-good-slave"));

        let (mut core, mut m) = setup(t0);
        m.start_failover(&mut core, t0);
        m.force_failover = true;
        m.act(&mut core, t0);
        assert_eq!(m.failover, FailoverState::WaitPromotion);
        m.act(&mut core, t0 + Duration::from_secs(4));
        assert_eq!(m.failover, FailoverState::None);
        assert!(events(&core).contains(&"-failover-abort-slave-timeout"));
        assert!(m.replicas.values().all(|r| !r.promoted));
    }
}

//! Leader election with epochs, as Redis Sentinel does it: one vote per epoch, first come
//! first served, and a leader needs a majority of every sentinel ever seen AND the quorum.
//! Guarantee: in one epoch at most one sentinel can collect a majority, so a sentinel in a
//! minority partition never leads a failover.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tandem_protocol::types::Epoch;

use crate::instance::{Core, Master, ELECTION_TIMEOUT};

/// When a failover attempt stamped `failover_start` (desync included) stops waiting for
/// votes: min([`ELECTION_TIMEOUT`], failover-timeout) later (sentinelFailoverWaitStart).
/// None: never (a failover-timeout too large to add).
pub fn election_deadline(failover_start: Instant, failover_timeout: Duration) -> Option<Instant> {
    failover_start.checked_add(failover_timeout.min(ELECTION_TIMEOUT))
}

/// When a sentinel whose last failover attempt, or last vote for another sentinel, is
/// stamped `failover_start` may start a failover of the same master again: two
/// failover-timeouts later (sentinelStartFailoverIfNeeded). None: never.
pub fn retry_at(failover_start: Instant, failover_timeout: Duration) -> Option<Instant> {
    failover_timeout
        .checked_mul(2)
        .and_then(|d| failover_start.checked_add(d))
}

/// Whether a voter that last voted in `leader_epoch` and whose current epoch is
/// `current_epoch` may vote in `req_epoch` (sentinelVoteLeader).
pub fn may_grant(leader_epoch: Epoch, current_epoch: Epoch, req_epoch: Epoch) -> bool {
    leader_epoch < req_epoch && current_epoch <= req_epoch
}

/// Whether `votes` elect a leader: at least a majority of `voters` (every sentinel ever
/// seen, ourselves included) and at least `quorum`.
pub fn is_elected(votes: usize, voters: usize, quorum: u32) -> bool {
    votes > voters / 2 && votes >= quorum as usize
}

/// Counts votes per candidate; returns the candidate with the most votes (ties go to the
/// smaller run id, so every counter agrees) and its count.
pub fn most_voted<'a>(votes: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in votes {
        *counts.entry(v).or_default() += 1;
    }
    let mut best: Option<(&str, usize)> = None;
    for (k, n) in counts {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((k, n));
        }
    }
    best
}

impl Master {
    /// Handles a vote request for `req_runid` in `req_epoch` (raising our epoch first) and
    /// returns our vote for this master: (leader, leader epoch). Voting for someone else
    /// stamps our failover start with a random desync, which holds back our own attempts
    /// for two failover-timeouts (see [`retry_at`]).
    pub fn vote(
        &mut self,
        core: &mut Core,
        req_epoch: Epoch,
        req_runid: &str,
        now: Instant,
    ) -> (Option<String>, Epoch) {
        core.observe_epoch(req_epoch);
        if may_grant(self.leader_epoch, core.current_epoch, req_epoch) {
            self.leader = Some(req_runid.to_string());
            self.leader_epoch = core.current_epoch;
            core.dirty = true;
            core.event(
                "+vote-for-leader",
                format!("{} {}", req_runid, self.leader_epoch),
            );
            if !req_runid.eq_ignore_ascii_case(&core.myid) {
                self.failover_start = now.checked_add(core.desync());
            }
        }
        (self.leader.clone(), self.leader_epoch)
    }

    /// The leader of `epoch` if one has enough votes (sentinelGetLeader). Casts our own
    /// vote on the way: for the most voted peer choice, or for ourselves.
    pub fn get_leader(&mut self, core: &mut Core, epoch: Epoch, now: Instant) -> Option<String> {
        let peer_votes: Vec<String> = self
            .sentinels
            .values()
            .filter(|p| p.leader_epoch == epoch)
            .filter_map(|p| p.leader.clone())
            .collect();
        let winner = most_voted(peer_votes.iter().map(String::as_str)).map(|(w, _)| w.to_string());
        let candidate = winner.clone().unwrap_or_else(|| core.myid.clone());
        let (my_vote, my_epoch) = self.vote(core, epoch, &candidate, now);
        let mut all: Vec<&str> = peer_votes.iter().map(String::as_str).collect();
        if my_epoch == epoch {
            if let Some(v) = my_vote.as_deref() {
                all.push(v);
            }
        }
        let (leader, votes) = most_voted(all)?;
        is_elected(votes, self.voters(), self.settings.quorum).then(|| leader.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{Peer, Settings, MAX_DESYNC};
    use tandem_protocol::types::NodeAddr;

    #[test]
    fn one_vote_per_epoch() {
        assert!(may_grant(0, 0, 1));
        assert!(may_grant(0, 1, 1));
        assert!(!may_grant(1, 1, 1), "already voted in epoch 1");
        assert!(!may_grant(0, 2, 1), "request from an older epoch");
        assert!(may_grant(1, 1, 2));
    }

    #[test]
    fn majority_of_all_known_and_quorum() {
        assert!(is_elected(2, 3, 2));
        assert!(!is_elected(1, 3, 1), "quorum 1 but no majority of 3");
        assert!(!is_elected(2, 5, 2), "2 of 5 is no majority");
        assert!(is_elected(3, 5, 2));
        assert!(!is_elected(3, 5, 4), "majority but below quorum");
    }

    #[test]
    fn most_voted_breaks_ties_by_smaller_runid() {
        assert_eq!(most_voted(["b", "a", "b"]), Some(("b", 2)));
        assert_eq!(most_voted(["b", "a"]), Some(("a", 1)));
        assert_eq!(most_voted(Vec::<&str>::new()), None);
    }

    fn master(peers: &[&str]) -> Master {
        let t0 = Instant::now();
        let settings = Settings {
            quorum: 2,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_secs(3),
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
        };
        let mut m = Master::new("m".into(), NodeAddr::new("127.0.0.1", 6379), settings, t0);
        for (i, p) in peers.iter().enumerate() {
            m.sentinels.insert(
                p.to_string(),
                Peer::new(
                    p.to_string(),
                    NodeAddr::new("127.0.0.1", 26380 + i as u16),
                    t0,
                ),
            );
        }
        m
    }

    #[test]
    fn vote_is_first_come_and_delays_own_attempt() {
        let now = Instant::now();
        let mut core = Core::new("me".into(), NodeAddr::new("127.0.0.1", 26379));
        let mut m = master(&["p1", "p2"]);
        assert_eq!(m.vote(&mut core, 1, "p1", now), (Some("p1".into()), 1));
        assert_eq!(core.current_epoch, 1);
        let stamped = m
            .failover_start
            .expect("a vote for a peer stamps the failover start");
        assert!(stamped >= now && stamped < now + MAX_DESYNC);
        // p2 asks in the same epoch: still p1.
        assert_eq!(m.vote(&mut core, 1, "p2", now), (Some("p1".into()), 1));
        // A later epoch gets a new vote.
        assert_eq!(m.vote(&mut core, 2, "p2", now), (Some("p2".into()), 2));
    }

    #[test]
    fn leader_needs_majority_of_known_sentinels() {
        let now = Instant::now();
        let mut core = Core::new("me".into(), NodeAddr::new("127.0.0.1", 26379));
        core.current_epoch = 1;
        let mut m = master(&["p1", "p2"]);
        // Nobody answered yet: only our own vote, 1 of 3.
        assert_eq!(m.get_leader(&mut core, 1, now), None);
        // p1 votes for us: 2 of 3 and quorum 2.
        let p1 = m.sentinels.get_mut("p1").unwrap();
        p1.leader = Some("me".into());
        p1.leader_epoch = 1;
        assert_eq!(m.get_leader(&mut core, 1, now), Some("me".into()));
        // Votes of an older epoch do not count in a newer one.
        core.current_epoch = 2;
        assert_eq!(m.get_leader(&mut core, 2, now), None);
    }

    #[test]
    fn election_timing() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(election_deadline(t0, s(3)), Some(t0 + s(3)));
        assert_eq!(election_deadline(t0, s(180)), Some(t0 + ELECTION_TIMEOUT));
        assert_eq!(retry_at(t0, s(3)), Some(t0 + s(6)));
        assert_eq!(retry_at(t0, s(180)), Some(t0 + s(360)));
        assert_eq!(retry_at(t0, Duration::MAX), None);
        assert_eq!(
            election_deadline(t0, Duration::MAX),
            Some(t0 + ELECTION_TIMEOUT)
        );
    }

    #[test]
    fn voting_for_a_peer_holds_back_our_attempts_for_twice_failover_timeout() {
        let t0 = Instant::now();
        let mut core = Core::new("me".into(), NodeAddr::new("127.0.0.1", 26379));
        let mut m = master(&["p1", "p2"]);
        m.odown_since = Some(t0);
        m.vote(&mut core, 1, "p1", t0);
        let start = m.failover_start.unwrap();
        assert!(!m.should_start_failover(&core, start + Duration::from_millis(5999)));
        assert!(m.should_start_failover(&core, start + Duration::from_secs(6)));
        // A vote for ourselves stamps nothing (sentinelVoteLeader compares case-insensitively).
        let mut m = master(&["p1", "p2"]);
        m.vote(&mut core, 2, "ME", t0);
        assert_eq!(m.failover_start, None);
    }

    /// Three sentinels exchanging vote requests over links of a fixed latency, ticking
    /// every [`TICK`] at different phases; each sees the master objectively down at its own
    /// time. Runs until one is elected and returns what happened.
    mod sim {
        use super::*;
        use crate::instance::{Action, Job, TICK};

        pub const IDS: [char; 3] = ['a', 'b', 'c'];
        /// How late a decision can come after its time: one tick.
        pub const TICK_SLACK: Duration = TICK;

        enum Msg {
            Ask {
                from: usize,
                to: usize,
                epoch: Epoch,
                runid: String,
            },
            Reply {
                from: usize,
                to: usize,
                leader: Option<String>,
                epoch: Epoch,
            },
        }

        /// (time since start, sentinel, event, failover epoch, event text)
        pub type Log = Vec<(Duration, usize, &'static str, Epoch, String)>;

        pub struct Sim {
            pub nodes: Vec<(Core, Master)>,
            pub t0: Instant,
        }

        pub fn id(i: usize) -> String {
            IDS[i].to_string().repeat(40)
        }

        fn port(i: usize) -> u16 {
            26379 + i as u16
        }

        impl Sim {
            pub fn new(seeds: [u64; 3], failover_timeout: Duration) -> Sim {
                let t0 = Instant::now();
                let mut nodes = Vec::new();
                for (i, seed) in seeds.into_iter().enumerate() {
                    let mut core = Core::new(id(i), NodeAddr::new("127.0.0.1", port(i)));
                    core.rng = fastrand::Rng::with_seed(seed);
                    let settings = Settings {
                        quorum: 2,
                        down_after: Duration::from_millis(1000),
                        failover_timeout,
                        parallel_syncs: 1,
                        auth_pass: None,
                        auth_user: None,
                    };
                    let mut m =
                        Master::new("m".into(), NodeAddr::new("127.0.0.1", 6379), settings, t0);
                    for j in (0..3).filter(|j| *j != i) {
                        let addr = NodeAddr::new("127.0.0.1", port(j));
                        m.sentinels.insert(id(j), Peer::new(id(j), addr, t0));
                    }
                    nodes.push((core, m));
                }
                Sim { nodes, t0 }
            }

            /// Runs until a sentinel is elected or `limit` passes. Sentinel `i` sees the
            /// master objectively down from `odown_at[i]` and ticks at `phase[i]` + k x TICK.
            pub fn run(
                &mut self,
                odown_at: [Duration; 3],
                phase: [Duration; 3],
                latency: Duration,
                limit: Duration,
            ) -> Log {
                let mut log = Log::new();
                let mut wire: Vec<(Instant, Msg)> = Vec::new();
                let step = Duration::from_millis(1);
                let mut elapsed = Duration::ZERO;
                while elapsed <= limit {
                    let now = self.t0 + elapsed;
                    let (due, later): (Vec<_>, Vec<_>) =
                        wire.drain(..).partition(|(at, _)| *at <= now);
                    wire = later;
                    for (_, msg) in due {
                        match msg {
                            Msg::Ask {
                                from,
                                to,
                                epoch,
                                runid,
                            } => {
                                let (core, m) = &mut self.nodes[to];
                                let (leader, epoch) = if runid == "*" {
                                    (None, 0)
                                } else {
                                    m.vote(core, epoch, &runid, now)
                                };
                                let reply = Msg::Reply {
                                    from: to,
                                    to: from,
                                    leader,
                                    epoch,
                                };
                                wire.push((now + latency, reply));
                            }
                            Msg::Reply {
                                from,
                                to,
                                leader,
                                epoch,
                            } => {
                                let p = self.nodes[to].1.sentinels.get_mut(&id(from)).unwrap();
                                p.ask_pending = false;
                                p.master_down = true;
                                p.last_master_down_reply = Some(now);
                                if leader.is_some() {
                                    p.leader = leader;
                                    p.leader_epoch = epoch;
                                }
                            }
                        }
                    }
                    for i in 0..3 {
                        let since = elapsed.saturating_sub(phase[i]);
                        if elapsed < phase[i] || !since.as_millis().is_multiple_of(TICK.as_millis())
                        {
                            continue;
                        }
                        let (core, m) = &mut self.nodes[i];
                        if elapsed >= odown_at[i] && m.odown_since.is_none() {
                            m.sdown_since = Some(now);
                            m.odown_since = Some(now);
                        }
                        m.act(core, now);
                        for a in core.out.drain(..) {
                            match a {
                                Action::Job {
                                    target,
                                    job: Job::Ask { epoch, runid, .. },
                                } => {
                                    let to = (target.addr.port - port(0)) as usize;
                                    let ask = Msg::Ask {
                                        from: i,
                                        to,
                                        epoch,
                                        runid,
                                    };
                                    wire.push((now + latency, ask));
                                }
                                Action::Event { name, text } => {
                                    log.push((elapsed, i, name, m.failover_epoch, text))
                                }
                                _ => {}
                            }
                        }
                        if log.iter().any(|e| e.2 == "+elected-leader") {
                            return log;
                        }
                    }
                    elapsed += step;
                }
                log
            }
        }

        pub fn events(log: &Log, name: &str) -> Vec<(Duration, usize, Epoch)> {
            log.iter()
                .filter(|e| e.2 == name)
                .map(|e| (e.0, e.1, e.3))
                .collect()
        }
    }

    #[test]
    fn prompt_vote_requests_elect_the_first_sentinel_to_ask() {
        let ms = Duration::from_millis;
        let mut sim = sim::Sim::new([1, 2, 3], Duration::from_secs(3));
        // ODOWN seen up to 120 ms apart, requests arriving in 2 ms.
        let log = sim.run(
            [ms(120), ms(0), ms(60)],
            [ms(0), ms(7), ms(19)],
            ms(2),
            Duration::from_secs(2),
        );
        let tries = sim::events(&log, "+try-failover");
        assert_eq!(tries.len(), 1, "one attempt: {log:?}");
        // Elected at the first tick after the votes came back.
        let elected = sim::events(&log, "+elected-leader");
        assert_eq!(elected.len(), 1, "{log:?}");
        assert_eq!((elected[0].1, elected[0].2), (tries[0].1, 1));
        assert!(
            elected[0].0 <= tries[0].0 + ms(4) + sim::TICK_SLACK,
            "{log:?}"
        );
        assert!(sim::events(&log, "-failover-abort-not-elected").is_empty());
    }

    /// What the 11.7 s failover of the partition scenario was: the three sentinels started
    /// an attempt in epoch 1 before any vote request reached them (requests took up to
    /// 150 ms on the loaded host, the rank delay spaces attempts by 50 ms), so each voted
    /// for itself and nobody could win epoch 1. They give up after min(10 s,
    /// failover-timeout) and, as in Redis, retry two failover-timeouts after their
    /// attempt's desynchronised start, so the retries come apart and the first one wins.
    #[test]
    fn split_vote_is_retried_after_twice_failover_timeout_desynchronised() {
        let ms = Duration::from_millis;
        let ft = Duration::from_secs(3);
        let latency = ms(150);
        let mut sim = sim::Sim::new([1, 2, 3], ft);
        // Ranks a < b < c: with these ODOWN times all three start 100 ms in.
        let log = sim.run(
            [ms(100), ms(50), ms(0)],
            [ms(0), ms(0), ms(0)],
            latency,
            Duration::from_secs(20),
        );
        let tries = sim::events(&log, "+try-failover");
        assert_eq!(
            tries[..3],
            [(ms(100), 0, 1), (ms(100), 1, 1), (ms(100), 2, 1)],
            "{log:?}"
        );
        // Each voted for itself in epoch 1.
        for i in 0..3 {
            let first_vote = log.iter().find(|e| e.1 == i && e.2 == "+vote-for-leader");
            assert_eq!(first_vote.unwrap().4, format!("{} 1", sim::id(i)));
        }
        let aborts = sim::events(&log, "-failover-abort-not-elected");
        assert_eq!(aborts.len(), 3, "{log:?}");
        for (at, who, epoch) in &aborts {
            assert_eq!(*epoch, 1);
            // The election timeout counts from the desynchronised start (< 100 ms + 1 s).
            assert!(
                *at > ms(100) + ft && *at <= ms(100) + ft + ms(1000) + sim::TICK_SLACK,
                "{who}: {at:?}"
            );
        }
        let elected = sim::events(&log, "+elected-leader");
        assert_eq!(elected.len(), 1, "{log:?}");
        let (at, who, epoch) = elected[0];
        assert_eq!(epoch, 2);
        let retry = sim::events(&log, "+try-failover")
            .into_iter()
            .find(|t| t.2 == 2)
            .unwrap();
        assert_eq!(retry.1, who, "the first to retry wins");
        // The retry comes two failover-timeouts after the attempt, plus its desync.
        assert!(
            retry.0 >= ms(100) + 2 * ft && retry.0 < ms(100) + 2 * ft + ms(1000) + sim::TICK_SLACK
        );
        assert!(at <= retry.0 + 2 * latency + sim::TICK_SLACK, "{log:?}");
    }

    /// Whatever the desync draws, split votes end: over many seeds every run elects exactly
    /// one leader, most at the first retry, each retry two failover-timeouts after the
    /// previous attempt.
    #[test]
    fn split_votes_end_whatever_the_desync() {
        let ms = Duration::from_millis;
        let ft = Duration::from_secs(3);
        let mut first_retry = 0;
        for seed in 0..40u64 {
            let mut sim = sim::Sim::new([3 * seed, 3 * seed + 1, 3 * seed + 2], ft);
            let log = sim.run(
                [ms(100), ms(50), ms(0)],
                [ms(0), ms(9), ms(17)],
                ms(150),
                Duration::from_secs(60),
            );
            let elected = sim::events(&log, "+elected-leader");
            assert_eq!(elected.len(), 1, "seed {seed}: {log:?}");
            let epoch = elected[0].2;
            assert!(epoch >= 2, "seed {seed}: epoch 1 was split");
            if epoch == 2 {
                first_retry += 1;
            }
            // Attempt k + 1 of a sentinel starts 2 x failover-timeout after attempt k
            // (desync included, up to a second and a tick later).
            for i in 0..3 {
                let tries: Vec<Duration> = sim::events(&log, "+try-failover")
                    .into_iter()
                    .filter(|t| t.1 == i)
                    .map(|t| t.0)
                    .collect();
                for w in tries.windows(2) {
                    let gap = w[1] - w[0];
                    assert!(
                        gap >= 2 * ft && gap < 2 * ft + MAX_DESYNC + sim::TICK_SLACK,
                        "seed {seed}, sentinel {i}: {gap:?}"
                    );
                }
            }
        }
        assert!(
            first_retry >= 30,
            "{first_retry} of 40 elected at the first retry"
        );
    }
}

//! Leader election with epochs, as Redis Sentinel does it: one vote per epoch, first come
//! first served, and a leader needs a majority of every sentinel ever seen AND the quorum.
//! Guarantee: in one epoch at most one sentinel can collect a majority, so a sentinel in a
//! minority partition never leads a failover.

use std::collections::BTreeMap;
use std::time::Instant;
use tandem_protocol::types::Epoch;

use crate::instance::{Core, Master};

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
    /// holds back our own failover attempts for a failover-timeout.
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
            if req_runid != core.myid {
                self.next_failover_allowed = Some(now + self.settings.failover_timeout);
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
    use crate::instance::{Peer, Settings};
    use std::time::Duration;
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
        assert!(m.next_failover_allowed.is_some());
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
}

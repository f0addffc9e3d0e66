//! Routing decisions, as pure functions: a request's class comes from the shared command
//! table (writes and unknown commands go to the master), and a read's target comes from the
//! read policy, the client's read-your-writes requirement and the replicas' health and lag in
//! the current topology snapshot. Guarantee: a read is never sent to a replica that is unfit
//! under the policy or whose applied offset is below the client's read-your-writes offset.

use tandem_config::ReadPolicy;
use tandem_protocol::command::{self, Flags};
use tandem_protocol::frame::Request;

/// What kind of request this is, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A read-only command: may go to a replica.
    Read,
    /// A command that must run on the master without changing data (INFO, SCAN cursors,
    /// CONFIG GET, ...).
    MasterRead,
    /// A write, or a command the table does not know: the master.
    Write,
    /// A command that may block (BLPOP, XREAD BLOCK, ...): a dedicated master connection.
    Blocking,
    /// A command with no meaning through the proxy (REPLICAOF, SHUTDOWN, DEBUG, ...).
    Admin,
    /// Connection state, answered or tracked by the proxy itself.
    Session(SessionCmd),
}

/// Commands that act on the client's connection rather than on data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCmd {
    Ping,
    Echo,
    Quit,
    Auth,
    Hello,
    Select,
    Client,
    Reset,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Subscribe,
    Wait,
}

/// Read-only commands missing from the shared table (the node does not implement them yet)
/// that are safe on a replica.
const EXTRA_READS: &[&str] = &[
    "getbit",
    "bitcount",
    "bitpos",
    "bitfield_ro",
    "xrange",
    "xrevrange",
    "xlen",
    "xinfo",
    "xpending",
    "geopos",
    "geodist",
    "geohash",
    "georadius_ro",
    "georadiusbymember_ro",
    "geosearch",
    "lcs",
    "sort_ro",
    "eval_ro",
    "evalsha_ro",
    "fcall_ro",
    "pfcount",
    "dump",
];

/// Blocking commands missing from the shared table.
const EXTRA_BLOCKING: &[&str] = &["bzpopmin", "bzpopmax", "blmpop", "bzmpop", "waitaof"];

/// Administrative commands missing from the shared table.
const EXTRA_ADMIN: &[&str] = &["acl", "module", "failover", "cluster", "lolwut"];

fn is_one_of(name: &[u8], list: &[&str]) -> bool {
    list.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

fn sub_is(args: &Request<'_>, i: usize, names: &[&str]) -> bool {
    args.get(i).is_some_and(|a| is_one_of(a, names))
}

/// Classifies a request (`args[0]` is the command name).
pub fn classify(args: &Request<'_>) -> Class {
    classify_spec(args, args.get(0).and_then(command::lookup))
}

/// Classifies a request whose table entry (if any) was already looked up.
pub fn classify_spec(args: &Request<'_>, spec: Option<&'static command::CommandSpec>) -> Class {
    use tandem_protocol::Cmd;
    let Some(name) = args.get(0) else {
        return Class::Write;
    };
    let Some(spec) = spec else {
        if is_one_of(name, EXTRA_READS) {
            return Class::Read;
        }
        if is_one_of(name, EXTRA_BLOCKING) {
            return Class::Blocking;
        }
        if is_one_of(name, EXTRA_ADMIN) {
            return Class::Admin;
        }
        if name.eq_ignore_ascii_case(b"xread") || name.eq_ignore_ascii_case(b"xreadgroup") {
            let blocks = args
                .iter()
                .skip(1)
                .any(|a| a.eq_ignore_ascii_case(b"block"));
            return match (blocks, name.eq_ignore_ascii_case(b"xread")) {
                (true, _) => Class::Blocking,
                (false, true) => Class::Read,
                (false, false) => Class::Write,
            };
        }
        return Class::Write;
    };
    match spec.cmd {
        Cmd::Ping => Class::Session(SessionCmd::Ping),
        Cmd::Echo => Class::Session(SessionCmd::Echo),
        Cmd::Quit => Class::Session(SessionCmd::Quit),
        Cmd::Auth => Class::Session(SessionCmd::Auth),
        Cmd::Hello => Class::Session(SessionCmd::Hello),
        Cmd::Select => Class::Session(SessionCmd::Select),
        Cmd::Client => Class::Session(SessionCmd::Client),
        Cmd::Reset => Class::Session(SessionCmd::Reset),
        Cmd::Multi => Class::Session(SessionCmd::Multi),
        Cmd::Exec => Class::Session(SessionCmd::Exec),
        Cmd::Discard => Class::Session(SessionCmd::Discard),
        Cmd::Watch => Class::Session(SessionCmd::Watch),
        Cmd::Unwatch => Class::Session(SessionCmd::Unwatch),
        Cmd::Subscribe | Cmd::PSubscribe => Class::Session(SessionCmd::Subscribe),
        Cmd::Wait => Class::Session(SessionCmd::Wait),
        // Outside a subscription these only produce replies; the master answers them.
        Cmd::Unsubscribe | Cmd::PUnsubscribe => Class::MasterRead,
        // SCAN cursors are positions in one node's hash table: keep them on the master.
        Cmd::Scan | Cmd::HScan | Cmd::SScan | Cmd::ZScan => Class::MasterRead,
        Cmd::Info | Cmd::Role | Cmd::Command | Cmd::Time | Cmd::LastSave | Cmd::PubSub => {
            Class::MasterRead
        }
        Cmd::Config => {
            if sub_is(args, 1, &["get", "help"]) {
                Class::MasterRead
            } else {
                Class::Admin
            }
        }
        Cmd::Slowlog | Cmd::Latency => {
            if sub_is(args, 1, &["reset"]) {
                Class::Admin
            } else {
                Class::MasterRead
            }
        }
        Cmd::Memory => {
            if sub_is(args, 1, &["usage"]) {
                Class::Read
            } else {
                Class::MasterRead
            }
        }
        _ if spec.has(Flags::BLOCKING) => Class::Blocking,
        _ if spec.has(Flags::ADMIN) => Class::Admin,
        _ if spec.has(Flags::READONLY) => Class::Read,
        _ => Class::Write,
    }
}

/// The limits a replica must meet to serve reads under the lag-aware policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagLimits {
    pub max_lag_ms: u64,
    pub max_lag_bytes: Option<u64>,
}

/// What the proxy currently knows about one replica (from the topology snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaHealth {
    /// Answered the proxy's last INFO polls and reports `role:slave`.
    pub reachable: bool,
    /// `master_link_status:up` and listed as online by the current master.
    pub link_up: bool,
    /// Replication offset the replica has applied (the most recent of its own
    /// `slave_repl_offset` and the master's `slaveN:offset=`).
    pub offset: i64,
    /// How long ago the master first had data the replica still lacks (0 when caught up).
    pub lag_ms: Option<u64>,
    /// Bytes the replica is behind the master.
    pub lag_bytes: Option<u64>,
}

/// Whether a replica may serve reads under `policy` (read-your-writes aside).
pub fn replica_fit(policy: ReadPolicy, limits: LagLimits, r: &ReplicaHealth) -> bool {
    match policy {
        ReadPolicy::Master => false,
        // Availability first: any reachable replica.
        ReadPolicy::Replicas => r.reachable,
        // Freshness first: up, attached (or holding everything the master was last seen
        // with, e.g. while the master is down), and within the lag limits.
        ReadPolicy::LagAware => {
            r.reachable
                && (r.link_up || r.lag_bytes == Some(0))
                && r.lag_ms.is_some_and(|l| l <= limits.max_lag_ms)
                && limits
                    .max_lag_bytes
                    .is_none_or(|max| r.lag_bytes.is_some_and(|b| b <= max))
        }
    }
}

/// A client's read-your-writes requirement at the time of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ryw {
    /// No write to account for (or read-your-writes is off).
    Free,
    /// A write is in flight or its master offset is not known yet: only the master is safe.
    MasterOnly,
    /// Replicas must have applied at least this master offset.
    MinOffset(i64),
}

/// Where a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTarget {
    Master,
    /// Index into the snapshot's replica list.
    Replica(usize),
}

/// Why a read went where it went (the `route` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// The policy sends it to the master.
    Master,
    Replica,
    /// The policy wanted a replica but none was fit.
    Fallback,
    /// A replica was fit, but none had the client's last write yet (read-your-writes).
    RywFallback,
}

impl RouteKind {
    pub fn label(self) -> &'static str {
        match self {
            RouteKind::Master => "master",
            RouteKind::Replica => "replica",
            RouteKind::Fallback => "fallback",
            RouteKind::RywFallback => "ryw_fallback",
        }
    }
}

/// Chooses the target of a read:
/// 1. the `master` policy sends everything to the master;
/// 2. candidates are the replicas fit under the policy;
/// 3. read-your-writes then keeps only those whose offset has reached the client's write
///    (none while the write's offset is unknown);
/// 4. among the rest, the one with the fewest requests in flight wins (ties rotate by
///    `tiebreak`); with none left, the master.
pub fn route_read(
    policy: ReadPolicy,
    limits: LagLimits,
    ryw: Ryw,
    replicas: &[ReplicaHealth],
    inflight: impl Fn(usize) -> usize,
    tiebreak: usize,
) -> (ReadTarget, RouteKind) {
    if policy == ReadPolicy::Master {
        return (ReadTarget::Master, RouteKind::Master);
    }
    let n = replicas.len();
    let mut any_fit = false;
    let mut best: Option<(usize, usize)> = None;
    for k in 0..n {
        let i = (k + tiebreak) % n;
        let r = &replicas[i];
        if !replica_fit(policy, limits, r) {
            continue;
        }
        any_fit = true;
        let fresh = match ryw {
            Ryw::Free => true,
            Ryw::MasterOnly => false,
            Ryw::MinOffset(o) => r.offset >= o,
        };
        if !fresh {
            continue;
        }
        let load = inflight(i);
        if best.is_none_or(|(_, l)| load < l) {
            best = Some((i, load));
        }
    }
    match best {
        Some((i, _)) => (ReadTarget::Replica(i), RouteKind::Replica),
        None if any_fit => (ReadTarget::Master, RouteKind::RywFallback),
        None => (ReadTarget::Master, RouteKind::Fallback),
    }
}

/// Read-your-writes bookkeeping of one client, advanced by [`RywState::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RywState {
    /// Writes sent and not answered yet.
    pub writes_in_flight: u32,
    /// The first master INFO poll sent after the last write's reply arrived (0: none
    /// pending). Its `master_repl_offset` is at least that write's offset.
    pub await_poll: u64,
    /// Offset replicas must have reached for this client's reads.
    pub min_offset: i64,
}

impl RywState {
    /// A write is being sent.
    pub fn write_sent(&mut self) {
        self.writes_in_flight = self.writes_in_flight.saturating_add(1);
    }

    /// A write's reply (or its failure, whose effect is unknown) arrived while the master
    /// poll counter stood at `poll_sent_seq`: the next poll sent is the one to wait for.
    pub fn write_done(&mut self, poll_sent_seq: u64) {
        self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
        self.await_poll = poll_sent_seq + 1;
    }

    /// The requirement for a read now, given the latest completed master poll (`poll_seq`,
    /// the counter value when it was sent, and the offset it observed).
    pub fn resolve(&mut self, enabled: bool, poll_seq: u64, master_offset: i64) -> Ryw {
        if !enabled {
            return Ryw::Free;
        }
        if self.writes_in_flight > 0 {
            return Ryw::MasterOnly;
        }
        if self.await_poll != 0 {
            if poll_seq < self.await_poll {
                return Ryw::MasterOnly;
            }
            self.min_offset = self.min_offset.max(master_offset);
            self.await_poll = 0;
        }
        if self.min_offset > 0 {
            Ryw::MinOffset(self.min_offset)
        } else {
            Ryw::Free
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Request<'static> {
        Request::from_args(&s.split(' ').collect::<Vec<_>>())
    }

    const LIMITS: LagLimits = LagLimits {
        max_lag_ms: 500,
        max_lag_bytes: None,
    };

    fn healthy(offset: i64, lag_ms: u64) -> ReplicaHealth {
        ReplicaHealth {
            reachable: true,
            link_up: true,
            offset,
            lag_ms: Some(lag_ms),
            lag_bytes: Some(0),
        }
    }

    #[test]
    fn classes_come_from_the_command_table() {
        assert_eq!(classify(&args("GET k")), Class::Read);
        assert_eq!(classify(&args("set k v")), Class::Write);
        assert_eq!(classify(&args("EVAL x 0")), Class::Write);
        assert_eq!(classify(&args("nosuchcommand")), Class::Write);
        assert_eq!(classify(&args("BLPOP k 0")), Class::Blocking);
        assert_eq!(classify(&args("bzpopmin k 0")), Class::Blocking);
        assert_eq!(
            classify(&args("XREAD BLOCK 0 STREAMS s $")),
            Class::Blocking
        );
        assert_eq!(classify(&args("XREAD STREAMS s 0")), Class::Read);
        assert_eq!(classify(&args("replicaof no one")), Class::Admin);
        assert_eq!(classify(&args("CONFIG SET x y")), Class::Admin);
        assert_eq!(classify(&args("config get save")), Class::MasterRead);
        assert_eq!(classify(&args("SHUTDOWN")), Class::Admin);
        assert_eq!(classify(&args("DEBUG sleep 1")), Class::Admin);
        assert_eq!(classify(&args("MONITOR")), Class::Admin);
        assert_eq!(classify(&args("SCAN 0")), Class::MasterRead);
        assert_eq!(classify(&args("multi")), Class::Session(SessionCmd::Multi));
        assert_eq!(
            classify(&args("PSUBSCRIBE a*")),
            Class::Session(SessionCmd::Subscribe)
        );
    }

    #[test]
    fn master_policy_sends_everything_to_the_master() {
        let r = [healthy(10, 0)];
        assert_eq!(
            route_read(ReadPolicy::Master, LIMITS, Ryw::Free, &r, |_| 0, 0),
            (ReadTarget::Master, RouteKind::Master)
        );
    }

    #[test]
    fn lag_aware_skips_lagging_and_down_replicas() {
        let mut down = healthy(10, 0);
        down.link_up = false;
        down.lag_bytes = Some(10);
        // A replica whose link is down but that has all the master had is still fresh.
        let mut orphan = healthy(10, 0);
        orphan.link_up = false;
        assert!(replica_fit(ReadPolicy::LagAware, LIMITS, &orphan));
        let r = [healthy(10, 900), down, healthy(10, 20)];
        assert_eq!(
            route_read(ReadPolicy::LagAware, LIMITS, Ryw::Free, &r, |_| 0, 0),
            (ReadTarget::Replica(2), RouteKind::Replica)
        );
        // Under `replicas`, availability wins: the lagging one is fine.
        let (t, _) = route_read(ReadPolicy::Replicas, LIMITS, Ryw::Free, &r[..1], |_| 0, 0);
        assert_eq!(t, ReadTarget::Replica(0));
        // None fit: the master.
        assert_eq!(
            route_read(ReadPolicy::LagAware, LIMITS, Ryw::Free, &r[..2], |_| 0, 0),
            (ReadTarget::Master, RouteKind::Fallback)
        );
        let mut bytes = LIMITS;
        bytes.max_lag_bytes = Some(100);
        let mut far = healthy(10, 0);
        far.lag_bytes = Some(1000);
        assert!(!replica_fit(ReadPolicy::LagAware, bytes, &far));
    }

    #[test]
    fn fewest_in_flight_wins() {
        let r = [healthy(10, 0), healthy(10, 0), healthy(10, 0)];
        let load = [5, 1, 3];
        assert_eq!(
            route_read(ReadPolicy::LagAware, LIMITS, Ryw::Free, &r, |i| load[i], 0).0,
            ReadTarget::Replica(1)
        );
    }

    #[test]
    fn read_your_writes_needs_the_offset() {
        let r = [healthy(100, 0), healthy(200, 0)];
        assert_eq!(
            route_read(
                ReadPolicy::LagAware,
                LIMITS,
                Ryw::MinOffset(150),
                &r,
                |_| 0,
                0
            )
            .0,
            ReadTarget::Replica(1)
        );
        assert_eq!(
            route_read(
                ReadPolicy::LagAware,
                LIMITS,
                Ryw::MinOffset(250),
                &r,
                |_| 0,
                0
            ),
            (ReadTarget::Master, RouteKind::RywFallback)
        );
        assert_eq!(
            route_read(ReadPolicy::Replicas, LIMITS, Ryw::MasterOnly, &r, |_| 0, 0),
            (ReadTarget::Master, RouteKind::RywFallback)
        );
    }

    #[test]
    fn ryw_state_waits_for_a_poll_sent_after_the_reply() {
        let mut s = RywState::default();
        assert_eq!(s.resolve(true, 5, 1000), Ryw::Free);
        s.write_sent();
        assert_eq!(s.resolve(true, 5, 1000), Ryw::MasterOnly);
        // The reply arrives while poll 7 was the last one sent.
        s.write_done(7);
        assert_eq!(s.resolve(true, 7, 1100), Ryw::MasterOnly);
        assert_eq!(s.resolve(true, 8, 1200), Ryw::MinOffset(1200));
        // Later polls do not raise the requirement.
        assert_eq!(s.resolve(true, 9, 1300), Ryw::MinOffset(1200));
        assert_eq!(s.resolve(false, 9, 1300), Ryw::Free);
    }
}

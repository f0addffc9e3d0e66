//! Replication as Redis does it on the wire: the backlog of the stream ([`backlog`]), the
//! master side serving replicas ([`master`]), the replica's link to its master ([`replica`]),
//! the full-sync payload ([`payload`]) and what INFO / ROLE report ([`report`]).
//!
//! [`Replication`] is the shared state: the replication ids (PSYNC2's `replid`/`replid2`),
//! the registry of attached replicas, the replica link, and the counters. Guarantee: the
//! ids and `master_repl_offset` change together under the feed's lock, so a PSYNC is
//! judged against a consistent (id, offset, backlog) triple.

pub mod backlog;
pub mod failover;
pub mod master;
pub mod payload;
pub mod replica;
pub mod report;
pub mod transfer;

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tandem_protocol::command::{Cmd, CommandSpec, Flags};
use tandem_protocol::types::random_hex_id;
use tandem_protocol::Reply;
use tokio::sync::watch;

use crate::server::Server;

/// `master_replid2` when there is no previous history.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// The largest replication offset taken from a peer or a file (2^62; Redis's offsets are
/// signed 64-bit). Real streams never get near it, and below it every offset sum and the
/// signed forms INFO and ROLE print cannot overflow, whatever a broken master sends.
pub const MAX_OFFSET: u64 = 1 << 62;

/// How often the replication cron runs (Redis's replicationCron: once a second).
pub const CRON_PERIOD: Duration = Duration::from_secs(1);

pub const ERR_READONLY: &str = "READONLY You can't write against a read only replica.";
pub const ERR_MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
pub const ERR_NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
pub const ERR_WAIT_REPLICA: &str = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";

/// WAIT's timeout in milliseconds (0: forever), with Redis's errors.
pub fn parse_wait_timeout(arg: &[u8]) -> Result<u64, Reply> {
    match tandem_protocol::number::parse_i64(arg) {
        Some(t) if t >= 0 => Ok(t as u64),
        Some(_) => Err(Reply::error("ERR timeout is negative")),
        None => Err(Reply::error(
            "ERR timeout is not an integer or out of range",
        )),
    }
}

/// PSYNC2's ids: the current history and the one it continues.
#[derive(Debug, Clone)]
pub struct ReplIds {
    /// `master_replid`.
    pub replid: String,
    /// `master_replid2`: the id of the history we continued from (after a promotion).
    pub replid2: String,
    /// `second_repl_offset`: up to which offset `replid2` is valid (-1: none).
    pub second_offset: i64,
}

/// Shared replication state, kept in [`Server::repl`].
pub struct Replication {
    ids: Mutex<ReplIds>,
    /// Replicas attached to this node (master side).
    pub replicas: master::Registry,
    /// The link to our master (replica side).
    pub link: replica::Link,
    /// Replicas waiting for a diskless transfer.
    pub transfers: transfer::Pending,
    /// The coordinated failover (FAILOVER).
    pub failover: failover::Failover,
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// Unix seconds since when no replica is attached (for `repl-backlog-ttl`).
    pub no_replicas_since: AtomicU64,
    /// `min_slaves_good_slaves`, refreshed by the cron and on ACKs.
    pub good_replicas: AtomicU64,
    /// True when the per-command checks (READONLY, MASTERDOWN, NOREPLICAS) may apply, so
    /// sessions skip them with one load otherwise.
    guards: AtomicBool,
    /// Bumped on every REPLCONF ACK (wakes WAIT).
    pub acks: watch::Sender<u64>,
    /// Stream offset just past the last `REPLCONF GETACK *` that WAIT appended: a WAIT whose
    /// write lies before it needs no GETACK of its own (Redis sends one per event-loop turn
    /// for all waiting clients).
    pub getack_at: std::sync::atomic::AtomicU64,
    /// Bumped to make every replica sender drop its link (promotion, new history).
    pub drop_replicas: watch::Sender<u64>,
    /// The runtime replication tasks run on (the node's main runtime).
    runtime: OnceLock<tokio::runtime::Handle>,
    /// (replid, offset, stream db) at the last snapshot freeze, for the RDB's aux fields.
    save_point: Mutex<(String, i64, i64)>,
}

impl Default for Replication {
    fn default() -> Self {
        Self::new()
    }
}

impl Replication {
    pub fn new() -> Replication {
        Replication {
            ids: Mutex::new(ReplIds {
                replid: random_hex_id(),
                replid2: NO_REPLID.to_string(),
                second_offset: -1,
            }),
            replicas: master::Registry::default(),
            link: replica::Link::default(),
            transfers: transfer::Pending::default(),
            failover: failover::Failover::default(),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            no_replicas_since: AtomicU64::new(master::unix_secs()),
            good_replicas: AtomicU64::new(0),
            guards: AtomicBool::new(false),
            acks: watch::channel(0).0,
            getack_at: std::sync::atomic::AtomicU64::new(0),
            drop_replicas: watch::channel(0).0,
            runtime: OnceLock::new(),
            save_point: Mutex::new((NO_REPLID.to_string(), 0, 0)),
        }
    }

    pub fn ids(&self) -> ReplIds {
        self.ids.lock().clone()
    }

    pub fn replid(&self) -> String {
        self.ids.lock().replid.clone()
    }

    /// Runs `f` on the ids (callers that must change them together with the feed state
    /// call this inside `feed.with_state`).
    pub fn with_ids<R>(&self, f: impl FnOnce(&mut ReplIds) -> R) -> R {
        f(&mut self.ids.lock())
    }

    /// A new random replid (DEBUG CHANGE-REPL-ID, first replica attaching).
    pub fn change_replid(&self) {
        self.ids.lock().replid = random_hex_id();
    }

    /// Makes every attached replica drop its link (they reconnect and PSYNC).
    pub fn disconnect_replicas(&self) {
        self.drop_replicas.send_modify(|g| *g += 1);
    }

    /// `repl-id`, `repl-offset`, `repl-stream-db` for an RDB save (see [`record_save_point`]).
    pub fn save_point(&self) -> (String, i64, i64) {
        self.save_point.lock().clone()
    }

    /// Spawns a replication task on the node's main runtime.
    pub fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(
        &self,
        f: F,
    ) -> tokio::task::JoinHandle<()> {
        match self.runtime.get() {
            Some(h) => h.spawn(f),
            None => tokio::spawn(f),
        }
    }

    /// Recomputes whether sessions must run the replication checks.
    pub fn refresh_guards(&self, srv: &Server) {
        let cfg = srv.config.load();
        let on = srv.is_replica()
            || (cfg.min_replicas_to_write > 0 && cfg.min_replicas_max_lag > 0)
            || self.failover.active()
            || srv.pause.active();
        self.guards.store(on, Ordering::Relaxed);
    }

    /// Whether a session must call [`check_command`] and [`failover::pauses`] (one relaxed
    /// load).
    #[inline]
    pub fn guards_on(&self) -> bool {
        self.guards.load(Ordering::Relaxed)
    }
}

/// Starts replication's background work: the cron, and the link when the configuration
/// says `replicaof`. Called once by [`crate::server::run`] on the main runtime.
pub fn start(srv: &Arc<Server>) {
    let _ = srv.repl.runtime.set(tokio::runtime::Handle::current());
    srv.repl.refresh_guards(srv);
    if let Some(r) = srv.config.load().replicaof.clone() {
        // Started as a replica: PSYNC continues only a history restored from the RDB.
        srv.set_role(tandem_protocol::types::Role::Replica);
        replica::set_master(srv, r.host, r.port);
    }
    let s = srv.clone();
    srv.repl.spawn(async move {
        let mut stop = s.shutdown_signal();
        let mut tick = tokio::time::interval(CRON_PERIOD);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    master::cron(&s);
                    transfer::maybe_start(&s);
                }
                _ = stop.changed() => break,
            }
        }
    });
}

/// Records the replication point of a snapshot being frozen (called with every shard
/// locked, so the offset matches the data: writes and the replica's relay append under
/// their keys' locks).
pub fn record_save_point(srv: &Server) {
    let (offset, db) = srv
        .feed
        .with_state(|st| (st.offset as i64, st.last_db.unwrap_or(0) as i64));
    *srv.repl.save_point.lock() = (srv.repl.replid(), offset, db);
}

/// At start-up, an RDB written by a replica carries its master's history: a node that
/// starts as a replica takes that replid and offset, so its first PSYNC can continue
/// (partial resync) instead of a full sync, as Redis does.
pub fn restore_from_rdb(srv: &Server, aux: &crate::persistence::rdb::LoadedAux) {
    let cfg = srv.config.load();
    let (Some(id), Some(off), Some(db)) = (&aux.repl_id, aux.repl_offset, aux.repl_stream_db)
    else {
        return;
    };
    if cfg.replicaof.is_none() || off < 0 || off as u64 > MAX_OFFSET || db < 0 || id.len() != 40 {
        return;
    }
    let size = cfg.repl_backlog_size.0 as usize;
    srv.feed.with_state(|st| {
        st.offset = off as u64;
        st.backlog = Some(backlog::Backlog::new(size, off as u64));
        st.last_db = Some(db as usize);
        srv.repl.with_ids(|ids| ids.replid = id.clone());
    });
    srv.repl.link.restore(off as u64, db as usize);
    tracing::info!(replid = %id, offset = off, "replication history restored from the RDB file");
}

/// The checks Redis's processCommand makes for replication before running a command:
/// NOREPLICAS (min-replicas-to-write), READONLY (read-only replica), MASTERDOWN (stale data
/// refused while the link is down). `queued` are the commands of an EXEC. Only called when
/// [`Replication::guards_on`].
pub fn check_command(
    srv: &Server,
    spec: &CommandSpec,
    queued: Option<&mut dyn Iterator<Item = &'static CommandSpec>>,
) -> Option<Reply> {
    let (is_write, denies_stale) = match (spec.cmd, queued) {
        (Cmd::Exec, Some(q)) => {
            let mut w = false;
            let mut deny = false;
            for s in q {
                w |= s.is_write();
                deny |= !s.has(Flags::STALE);
            }
            (w, deny)
        }
        _ => (spec.is_write(), !spec.has(Flags::STALE)),
    };
    let cfg = srv.config.load();
    if srv.is_replica() {
        if is_write && cfg.replica_read_only {
            return Some(Reply::error(ERR_READONLY));
        }
        if denies_stale && !cfg.replica_serve_stale_data && !srv.repl.link.is_up() {
            return Some(Reply::error(ERR_MASTERDOWN));
        }
    } else if is_write
        && cfg.min_replicas_to_write > 0
        && cfg.min_replicas_max_lag > 0
        && srv.repl.good_replicas.load(Ordering::Relaxed) < cfg.min_replicas_to_write as u64
    {
        return Some(Reply::error(ERR_NOREPLICAS));
    }
    None
}

/// Encodes a command as the stream does (RESP multibulk).
pub(crate) fn encode(args: &[&[u8]]) -> Bytes {
    let mut out = bytes::BytesMut::new();
    tandem_protocol::frame::encode_command(args, &mut out);
    out.freeze()
}

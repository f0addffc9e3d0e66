//! Coordinated failover, Redis 6.2's `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]`:
//! the master pauses writes, waits until a replica acknowledged its whole stream, becomes a
//! replica of it and sends it `PSYNC <replid> <offset> FAILOVER`, which makes that replica
//! the master continuing the same history (so the old master resumes with a partial resync).
//!
//! Guarantee: while a failover runs (`waiting-for-sync`, `failover-in-progress`) commands that
//! would replicate (writes, PUBLISH) wait instead of running, so no acknowledged write can be
//! missing from the new master; they run once the failover ends (on a replica: -READONLY)
//! or is aborted. The states and error texts are Redis's (src/replication.c).

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_protocol::command::{Cmd, CommandSpec};
use tandem_protocol::Reply;
use tokio::sync::watch;

use super::master::ReplicaState;
use crate::clients::ClientInfo;
use crate::cmd::args;
use crate::server::Server;

/// How often the waiting master checks its replicas' ACKs (Redis checks in beforeSleep and
/// runs its replication cron every 100 ms during a failover).
const CHECK_PERIOD: Duration = Duration::from_millis(100);

/// `master_failover_state`, Redis's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FailoverState {
    /// `no-failover`.
    NoFailover = 0,
    /// `waiting-for-sync`: writes paused, waiting for a replica to acknowledge everything.
    WaitForSync = 1,
    /// `failover-in-progress`: replica of the target, sending it `PSYNC ... FAILOVER`.
    InProgress = 2,
}

impl FailoverState {
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverState::NoFailover => "no-failover",
            FailoverState::WaitForSync => "waiting-for-sync",
            FailoverState::InProgress => "failover-in-progress",
        }
    }
}

/// What FAILOVER asked for.
#[derive(Debug, Default, Clone)]
struct Plan {
    /// The designated replica (or the first caught-up one, once found).
    target: Option<(String, u16)>,
    force: bool,
    /// When the wait for a caught-up replica ends (TIMEOUT).
    deadline: Option<Instant>,
}

/// The failover's state, kept in [`super::Replication`].
pub struct Failover {
    state: AtomicU8,
    plan: Mutex<Plan>,
    /// True while writes are paused (Redis's PAUSE_DURING_FAILOVER).
    paused: watch::Sender<bool>,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            state: AtomicU8::new(FailoverState::NoFailover as u8),
            plan: Mutex::new(Plan::default()),
            paused: watch::channel(false).0,
        }
    }
}

impl Failover {
    pub fn state(&self) -> FailoverState {
        match self.state.load(Ordering::Acquire) {
            1 => FailoverState::WaitForSync,
            2 => FailoverState::InProgress,
            _ => FailoverState::NoFailover,
        }
    }

    fn set_state(&self, s: FailoverState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// True while a failover runs.
    #[inline]
    pub fn active(&self) -> bool {
        self.state() != FailoverState::NoFailover
    }
}

/// True if `spec` (for EXEC: any of `queued`) must wait for the failover's pause to end:
/// Redis pauses commands that may replicate (writes, PUBLISH). Only called when the
/// replication guards are on.
pub fn pauses(
    srv: &Server,
    spec: &CommandSpec,
    queued: Option<&mut dyn Iterator<Item = &'static CommandSpec>>,
) -> bool {
    if !*srv.repl.failover.paused.borrow() {
        return false;
    }
    let replicates = |s: &CommandSpec| s.is_write() || s.cmd == Cmd::Publish;
    match (spec.cmd, queued) {
        (Cmd::Exec, Some(q)) => {
            for s in q {
                if replicates(s) {
                    return true;
                }
            }
            false
        }
        _ => replicates(spec),
    }
}

/// Waits until writes are no longer paused (or the client is killed, or shutdown).
pub async fn wait_unpaused(srv: &Server, client: &ClientInfo) {
    let mut rx = srv.repl.failover.paused.subscribe();
    let mut stop = srv.shutdown_signal();
    loop {
        if !*rx.borrow_and_update() {
            return;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = client.killed() => return,
            _ = stop.changed() => return,
        }
    }
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (Redis's failoverCommand).
pub fn command(srv: &Arc<Server>, args: &[Bytes]) -> Reply {
    let fo = &srv.repl.failover;
    if args.len() == 2 && args::is(&args[1], "abort") {
        if !fo.active() {
            return Reply::error("ERR No failover in progress.");
        }
        abort(srv, "Failover manually aborted");
        return Reply::Ok;
    }
    let mut timeout_ms: i64 = 0;
    let mut force = false;
    let mut target: Option<(String, i64)> = None;
    let mut j = 1;
    while j < args.len() {
        if args::is(&args[j], "timeout") && j + 1 < args.len() && timeout_ms == 0 {
            timeout_ms = match args::int(&args[j + 1]) {
                Ok(t) => t,
                Err(e) => return e,
            };
            if timeout_ms <= 0 {
                return Reply::error("ERR FAILOVER timeout must be greater than 0");
            }
            j += 2;
        } else if args::is(&args[j], "to") && j + 2 < args.len() && target.is_none() {
            let port = match args::int(&args[j + 2]) {
                Ok(p) => p,
                Err(e) => return e,
            };
            target = Some((String::from_utf8_lossy(&args[j + 1]).into_owned(), port));
            j += 3;
        } else if args::is(&args[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return args::syntax_error();
        }
    }
    if fo.active() {
        return Reply::error("ERR FAILOVER already in progress.");
    }
    if srv.is_replica() {
        return Reply::error("ERR FAILOVER is not valid when server is a replica.");
    }
    if srv.repl.replicas.count() == 0 {
        return Reply::error("ERR FAILOVER requires connected replicas.");
    }
    if force && (timeout_ms == 0 || target.is_none()) {
        return Reply::error(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    let mut plan = Plan {
        force,
        deadline: (timeout_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(timeout_ms as u64)),
        target: None,
    };
    if let Some((host, port)) = target {
        let found = srv
            .repl
            .replicas
            .all()
            .into_iter()
            .find(|r| r.ip.eq_ignore_ascii_case(&host) && r.port as i64 == port);
        let Some(r) = found else {
            return Reply::error("ERR FAILOVER target HOST and PORT is not a replica.");
        };
        if r.state() != ReplicaState::Online {
            return Reply::error("ERR FAILOVER target replica is not online.");
        }
        tracing::info!(target = %format!("{host}:{port}"), "FAILOVER requested");
        plan.target = Some((r.ip.clone(), r.port));
    } else {
        tracing::info!("FAILOVER requested to any replica");
    }
    *fo.plan.lock() = plan;
    fo.set_state(FailoverState::WaitForSync);
    fo.paused.send_replace(true);
    srv.repl.refresh_guards(srv);
    let s = srv.clone();
    srv.repl.spawn(async move { wait_for_sync(s).await });
    Reply::Ok
}

/// `waiting-for-sync`: until a replica (the target, if one was named) acknowledged
/// `master_repl_offset`, or the timeout (then FORCE fails over anyway, else it aborts).
async fn wait_for_sync(srv: Arc<Server>) {
    let fo = &srv.repl.failover;
    let mut acks = srv.repl.acks.subscribe();
    let mut tick = tokio::time::interval(CHECK_PERIOD);
    let mut stop = srv.shutdown_signal();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = acks.changed() => {}
            _ = stop.changed() => return,
        }
        if fo.state() != FailoverState::WaitForSync {
            return;
        }
        let plan = fo.plan.lock().clone();
        if plan.deadline.is_some_and(|d| Instant::now() >= d) {
            match (plan.force, plan.target) {
                (true, Some((host, port))) => {
                    tracing::info!(target = %format!("{host}:{port}"), "FAILOVER time out exceeded, failing over");
                    start_psync(&srv, host, port);
                }
                _ => abort(&srv, "Replica never caught up before timeout"),
            }
            return;
        }
        let offset = srv.feed.offset();
        let caught_up = srv.repl.replicas.all().into_iter().find(|r| {
            r.ack_off.load(Ordering::Relaxed) == offset
                && plan
                    .target
                    .as_ref()
                    .is_none_or(|(h, p)| r.ip.eq_ignore_ascii_case(h) && r.port == *p)
        });
        if let Some(r) = caught_up {
            tracing::info!(target = %format!("{}:{}", r.ip, r.port), offset, "failover target is synced, failing over");
            start_psync(&srv, r.ip.clone(), r.port);
            return;
        }
    }
}

/// `failover-in-progress`: become a replica of the target; the link sends
/// `PSYNC ... FAILOVER` (see [`psync_suffix`]) and reports the answer with [`psync_done`].
fn start_psync(srv: &Arc<Server>, host: String, port: u16) {
    let fo = &srv.repl.failover;
    fo.plan.lock().target = Some((host.clone(), port));
    fo.set_state(FailoverState::InProgress);
    super::replica::set_master(srv, host, port);
}

/// Whether the replica link must add `FAILOVER` to its PSYNC.
pub fn psync_suffix(srv: &Server) -> bool {
    srv.repl.failover.state() == FailoverState::InProgress
}

/// The target answered our `PSYNC ... FAILOVER`: accepted (`+CONTINUE`/`+FULLRESYNC`) ends
/// the failover; anything else aborts it, making this node a master again.
pub fn psync_done(srv: &Arc<Server>, accepted: bool) {
    if srv.repl.failover.state() != FailoverState::InProgress {
        return;
    }
    if accepted {
        tracing::info!("FAILOVER completed: now a replica of the new master");
        clear(srv);
    } else {
        abort(srv, "Failover target rejected psync request");
    }
}

/// Redis's abortFailover: back to master if we already turned into a replica, then clear.
pub fn abort(srv: &Arc<Server>, reason: &str) {
    let fo = &srv.repl.failover;
    if !fo.active() {
        return;
    }
    match fo.plan.lock().target.clone() {
        Some((h, p)) => tracing::info!(target = %format!("{h}:{p}"), reason, "FAILOVER aborted"),
        None => tracing::info!(reason, "FAILOVER to any replica aborted"),
    }
    if fo.state() == FailoverState::InProgress {
        // Clear first: unset_master must not see a failover in progress.
        fo.set_state(FailoverState::NoFailover);
        super::replica::unset_master(srv);
    }
    clear(srv);
}

/// Redis's clearFailoverState: no failover, writes resume.
fn clear(srv: &Server) {
    let fo = &srv.repl.failover;
    *fo.plan.lock() = Plan::default();
    fo.set_state(FailoverState::NoFailover);
    fo.paused.send_replace(false);
    srv.repl.refresh_guards(srv);
}

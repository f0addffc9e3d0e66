//! CLIENT PAUSE / UNPAUSE (Redis's `pauseClients` for the client command): until the pause
//! ends, the commands of normal clients wait before running: every command (`ALL`) or only
//! those that may replicate (`WRITE`: writes and PUBLISH; for EXEC, its queued commands).
//! Replicas are never paused, and the replica link to a master does not go through sessions.
//! While a pause is in effect keys are not expired (they read as missing but stay until it
//! ends), as in Redis. Sessions only look here when the replication guards are on
//! ([`crate::replication::Replication::guards_on`]), which a pause turns on: no extra cost
//! per command when nothing is paused.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tandem_protocol::command::{Cmd, CommandSpec};
use tokio::sync::watch;

use crate::clients::ClientInfo;
use crate::server::Server;

/// What a pause holds back (ordered: `All` is the stronger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// Commands that may replicate (CLIENT PAUSE ... WRITE).
    Write,
    /// Every command (CLIENT PAUSE ... ALL, the default).
    All,
}

/// The pause in effect: what it holds back and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pause {
    kind: PauseKind,
    end: Instant,
}

/// The server's CLIENT PAUSE state.
pub struct ClientPause {
    /// `Some` while a pause is in effect; waiters watch it.
    state: watch::Sender<Option<Pause>>,
    /// Mirrors `state.is_some()` for the guards and the expiry checks (one load).
    active: AtomicBool,
    /// Serialises pause/unpause/expiry so the watch and the flag agree.
    lock: Mutex<()>,
}

impl Default for ClientPause {
    fn default() -> Self {
        ClientPause {
            state: watch::channel(None).0,
            active: AtomicBool::new(false),
            lock: Mutex::new(()),
        }
    }
}

/// Whether a command may replicate (Redis's `CMD_WRITE | CMD_MAY_REPLICATE`).
fn may_replicate(s: &CommandSpec) -> bool {
    s.is_write() || s.cmd == Cmd::Publish
}

impl ClientPause {
    /// True while a pause is in effect (until its end is noticed).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// CLIENT PAUSE: a pause already in effect keeps the stronger kind and the later end.
    pub fn pause(&self, srv: &Server, kind: PauseKind, end: Instant) {
        {
            let _g = self.lock.lock();
            let next = match *self.state.borrow() {
                Some(p) => Pause {
                    kind: p.kind.max(kind),
                    end: p.end.max(end),
                },
                None => Pause { kind, end },
            };
            self.state.send_replace(Some(next));
            self.active.store(true, Ordering::Relaxed);
        }
        tracing::info!(?kind, "clients paused (CLIENT PAUSE)");
        srv.repl.refresh_guards(srv);
    }

    /// CLIENT UNPAUSE, or the end of the pause: waiting commands run.
    pub fn unpause(&self, srv: &Server) {
        {
            let _g = self.lock.lock();
            if self.state.borrow().is_none() {
                return;
            }
            self.state.send_replace(None);
            self.active.store(false, Ordering::Relaxed);
        }
        tracing::info!("clients unpaused");
        srv.repl.refresh_guards(srv);
    }

    /// Ends the pause if its time is up (the cron, and waiters whose sleep ended).
    pub fn expire_if_due(&self, srv: &Server) {
        let due = matches!(*self.state.borrow(), Some(p) if p.end <= Instant::now());
        if due {
            self.unpause(srv);
        }
    }

    /// Whether `spec` (for EXEC: any of `queued`) from `client` must wait for the pause.
    pub fn blocks(
        &self,
        client: &ClientInfo,
        spec: &CommandSpec,
        queued: Option<&mut dyn Iterator<Item = &'static CommandSpec>>,
    ) -> bool {
        let Some(p) = *self.state.borrow() else {
            return false;
        };
        if client.kind() == crate::clients::ClientKind::Replica || p.end <= Instant::now() {
            return false;
        }
        match (p.kind, spec.cmd, queued) {
            (PauseKind::All, _, _) => true,
            (PauseKind::Write, Cmd::Exec, Some(q)) => {
                let mut any = false;
                for s in q {
                    any |= may_replicate(s);
                }
                any
            }
            (PauseKind::Write, _, _) => may_replicate(spec),
        }
    }

    /// Waits until the pause no longer holds back `still_blocked` (re-checked at every
    /// change), or the client is killed, or the server shuts down. The client counts as
    /// blocked meanwhile (INFO `blocked_clients`, flag `b`), as Redis's postponed clients do.
    pub async fn wait(&self, srv: &Server, client: &ClientInfo, still_blocked: impl Fn() -> bool) {
        let mut rx = self.state.subscribe();
        let mut stop = srv.shutdown_signal();
        client.blocked.store(true, Ordering::Relaxed);
        srv.clients.blocked.fetch_add(1, Ordering::Relaxed);
        loop {
            let end = match *rx.borrow_and_update() {
                Some(p) => p.end,
                None => break,
            };
            if !still_blocked() {
                break;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(end)) => {
                    self.expire_if_due(srv);
                }
                _ = client.kill.notified() => break,
                _ = stop.changed() => break,
            }
        }
        srv.clients.blocked.fetch_sub(1, Ordering::Relaxed);
        client.blocked.store(false, Ordering::Relaxed);
    }
}

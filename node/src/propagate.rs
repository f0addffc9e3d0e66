//! The propagation stream: every change the node makes, in execution order, encoded once the
//! way Redis's replication stream is (RESP multibulk commands, `SELECT` whenever the database
//! changes, `MULTI`/`EXEC` around what must apply atomically). The replication backlog and
//! the append-only file both consume these same bytes.
//!
//! Guarantee: callers append while still holding the shard locks of the keys they changed,
//! so for any one key the stream order is the execution order. Nothing is encoded unless a
//! consumer (backlog or AOF) is attached. After appending, callers push the stream to the
//! replicas ([`crate::replication::master::Registry::push`]) before they wait or reply.

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tandem_protocol::frame::encode_command;
use tokio::sync::Notify;

use crate::replication::backlog::Backlog;

/// One command to propagate, with the database it applies to.
pub type Effect = (usize, Vec<Bytes>);

/// What the stream feeds, under one lock.
pub struct FeedState {
    /// The database the consumers last saw a `SELECT` for (`None`: send one before the next
    /// command, as after a full sync or when a new AOF file starts).
    pub last_db: Option<usize>,
    /// `master_repl_offset`: the offset of the last byte written to the stream. As in Redis
    /// it advances only while a backlog exists.
    pub offset: u64,
    /// The replication backlog, created when the first replica attaches.
    pub backlog: Option<Backlog>,
    /// Bytes not yet written to the append-only file (`Some` while AOF is on).
    pub aof: Option<BytesMut>,
    /// Bytes ever appended to `aof` (the AOF writer's offsets count in this unit).
    pub aof_tail: u64,
}

/// The stream itself: shared by every session, the cron, replication and the AOF.
pub struct Feed {
    state: Mutex<FeedState>,
    /// True while anything consumes the stream (fast check on every write).
    active: AtomicBool,
    /// True on a replica: its stream is its master's, relayed with `append_raw`; local
    /// changes (a writable replica's writes) are not appended.
    relay_only: AtomicBool,
    /// Mirror of `offset`, readable without the lock.
    offset: AtomicU64,
    /// Wakes replica senders waiting for the stream to grow ([`Feed::reached`]); see
    /// [`Feed::wake_senders`].
    grown: Notify,
    /// Mirror of `aof_tail`, readable without the lock: a session reads it right after its
    /// append to learn how far the AOF must be written (or fsynced) before it replies.
    aof_tail: AtomicU64,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            state: Mutex::new(FeedState {
                last_db: None,
                offset: 0,
                backlog: None,
                aof: None,
                aof_tail: 0,
            }),
            active: AtomicBool::new(false),
            relay_only: AtomicBool::new(false),
            offset: AtomicU64::new(0),
            grown: Notify::new(),
            aof_tail: AtomicU64::new(0),
        }
    }

    /// True when writes must be encoded (a backlog or the AOF is attached).
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// `master_repl_offset`, without taking the lock.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Acquire)
    }

    /// Bytes ever appended for the AOF, without the lock (an upper bound of the end of any
    /// write appended before this call).
    #[inline]
    pub fn aof_tail(&self) -> u64 {
        self.aof_tail.load(Ordering::Acquire)
    }

    /// Resolves once `master_repl_offset` has reached `offset` (at once if it has) and
    /// [`Feed::wake_senders`] ran after the growth: a replica sender waiting for stream
    /// bytes past what it has read. The waiter registers before it checks the offset, so no
    /// wake-up is missed.
    pub async fn reached(&self, offset: u64) {
        loop {
            let notified = self.grown.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.offset.load(Ordering::Acquire) >= offset {
                return;
            }
            notified.await;
        }
    }

    /// Wakes the replica senders waiting in [`Feed::reached`]. Appending does not: whoever
    /// appends then hands the stream to the replicas with
    /// [`crate::replication::master::Registry::push`], which calls this only for what it
    /// could not write itself. (A write that woke a sender on another thread for every
    /// command cost the master 10% of its CPU in that hand-off.)
    pub fn wake_senders(&self) {
        self.grown.notify_waiters();
    }

    /// Runs `f` on the state under the lock (attaching a backlog or the AOF, reading the
    /// backlog, forcing a SELECT), then refreshes the fast flags.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut FeedState) -> R) -> R {
        let mut st = self.state.lock();
        let r = f(&mut st);
        self.active
            .store(st.backlog.is_some() || st.aof.is_some(), Ordering::Relaxed);
        self.offset.store(st.offset, Ordering::Release);
        r
    }

    /// Appends the effects of one command (or one EXEC) in order. More than one effect is
    /// wrapped in `MULTI`/`EXEC` so a replica applies them atomically, as Redis 7.0 does.
    /// Returns `master_repl_offset` after the append.
    pub fn append<A: AsRef<[Bytes]>>(&self, effects: &[(usize, A)]) -> u64 {
        if effects.is_empty() || !self.is_active() || self.relay_only.load(Ordering::Relaxed) {
            return self.offset();
        }
        let mut out = BytesMut::with_capacity(64);
        let mut st = self.state.lock();
        let wrap = effects.len() > 1;
        // Byte ranges of replication-only commands (kept out of the AOF).
        let mut repl_only: smallvec::SmallVec<[std::ops::Range<usize>; 2]> =
            smallvec::SmallVec::new();
        let first_db = effects
            .iter()
            .find(|(_, a)| !is_repl_only(a.as_ref()))
            .map(|e| e.0);
        if wrap {
            // MULTI goes after the SELECT of the first command's database.
            if let Some(db) = first_db {
                select(&mut st.last_db, db, &mut out);
            }
            encode_command(&[&b"MULTI"[..]], &mut out);
        }
        for (db, args) in effects {
            let args = args.as_ref();
            if is_repl_only(args) {
                // No SELECT: the command applies to no database.
                let start = out.len();
                encode_command(args, &mut out);
                repl_only.push(start..out.len());
                continue;
            }
            select(&mut st.last_db, *db, &mut out);
            encode_command(args, &mut out);
        }
        if wrap {
            encode_command(&[&b"EXEC"[..]], &mut out);
        }
        let aof = match (repl_only.is_empty(), first_db) {
            (true, _) => AofPart::All,
            (false, None) => AofPart::Nothing,
            (false, Some(_)) => AofPart::Except(&repl_only),
        };
        self.write(&mut st, &out, aof)
    }

    /// Appends what one command propagated ([`collect`]): the first `expired` effects, the
    /// `DEL`s of keys it found expired, each on its own (Redis 7.0 never wraps lazy expiry
    /// in the command's `MULTI`), then the command's own effects (wrapped when several).
    pub fn append_command(&self, effects: &[Effect], expired: usize) -> u64 {
        let (dels, own) = effects.split_at(expired.min(effects.len()));
        let mut offset = self.offset();
        for d in dels {
            offset = self.append(std::slice::from_ref(d));
        }
        if !own.is_empty() {
            offset = self.append(own);
        }
        offset
    }

    /// Appends bytes that are already stream-encoded: on a replica, the master's stream
    /// relayed verbatim to sub-replicas and the AOF (the caller tracks SELECT itself, so
    /// `db` is the database the master's stream is in after these bytes).
    pub fn append_raw(&self, raw: &[u8], db_after: Option<usize>) -> u64 {
        if raw.is_empty() || !self.is_active() {
            return self.offset();
        }
        let mut st = self.state.lock();
        st.last_db = db_after;
        self.write(&mut st, raw, AofPart::All)
    }

    /// Appends a command that applies to no database (`PING`, `REPLCONF GETACK *`): no
    /// `SELECT` is emitted and the stream's database is unchanged. Replicas only: as in
    /// Redis, these never go to the AOF.
    pub fn append_meta(&self, args: &[&[u8]]) -> u64 {
        if !self.is_active() {
            return self.offset();
        }
        let mut out = BytesMut::with_capacity(32);
        encode_command(args, &mut out);
        let mut st = self.state.lock();
        self.write(&mut st, &out, AofPart::Nothing)
    }

    /// Relays already-encoded bytes of commands that apply to no database and never go to
    /// the AOF (a replica relaying its master's `PING`, `REPLCONF GETACK`, `PUBLISH`).
    pub fn append_raw_meta(&self, raw: &[u8]) -> u64 {
        if raw.is_empty() || !self.is_active() {
            return self.offset();
        }
        let mut st = self.state.lock();
        self.write(&mut st, raw, AofPart::Nothing)
    }

    /// Switches between master (local changes appended) and replica (relay only).
    pub fn set_relay_only(&self, on: bool) {
        self.relay_only.store(on, Ordering::Relaxed);
    }

    fn write(&self, st: &mut FeedState, bytes: &[u8], part: AofPart) -> u64 {
        if let Some(aof) = st.aof.as_mut() {
            let before = aof.len();
            match part {
                AofPart::All => aof.extend_from_slice(bytes),
                AofPart::Nothing => {}
                AofPart::Except(skip) => {
                    let mut at = 0;
                    for r in skip {
                        aof.extend_from_slice(&bytes[at..r.start]);
                        at = r.end;
                    }
                    aof.extend_from_slice(&bytes[at..]);
                }
            }
            st.aof_tail += (aof.len() - before) as u64;
            self.aof_tail.store(st.aof_tail, Ordering::Release);
        }
        if let Some(backlog) = st.backlog.as_mut() {
            backlog.append(bytes);
            st.offset += bytes.len() as u64;
            self.offset.store(st.offset, Ordering::Release);
        }
        st.offset
    }
}

/// Which bytes of a write also go to the AOF.
enum AofPart<'a> {
    All,
    Nothing,
    /// All but these byte ranges (replication-only commands).
    Except(&'a [std::ops::Range<usize>]),
}

/// Commands Redis propagates to replicas only, never to the AOF (its
/// `forceCommandPropagation(c, PROPAGATE_REPL)`): `PUBLISH`, so a replica's subscribers get
/// the master's messages. They apply to no database, so no `SELECT` is emitted for them.
#[inline]
pub fn is_repl_only(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|a| a.len() == 7 && a.eq_ignore_ascii_case(b"publish"))
}

/// Collects what one executed command propagates, in order: the `DEL`s of keys it found
/// expired, then its rewrites (`SET ... PXAT`, `PEXPIREAT`, ...) if it made any, else the
/// command itself when it changed something. `db` is the database it started in. Returns
/// how many of the collected effects are expired-key `DEL`s (they come first).
pub fn collect(
    ctx: &mut crate::cmd::Ctx,
    db: usize,
    args: &[Bytes],
    changed: bool,
    out: &mut Vec<Effect>,
) -> usize {
    let expired = ctx.expired_dels.len();
    for (d, key) in ctx.expired_dels.drain(..) {
        out.push((d, vec![Bytes::from_static(b"DEL"), key]));
    }
    if !ctx.propagate.is_empty() {
        out.extend(ctx.propagate.drain(..).map(|c| (db, c)));
    } else if changed {
        out.push((db, args.to_vec()));
    }
    expired
}

/// The effect of deleting an expired or evicted key (Redis propagates a `DEL`).
pub fn del(db: usize, key: &[u8]) -> Effect {
    (
        db,
        vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)],
    )
}

fn select(last_db: &mut Option<usize>, db: usize, out: &mut BytesMut) {
    if *last_db != Some(db) {
        let n = db.to_string();
        encode_command(&[&b"SELECT"[..], n.as_bytes()], out);
        *last_db = Some(db);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn inactive_feed_encodes_nothing() {
        let f = Feed::new();
        assert_eq!(f.append(&[(0, cmd(&["SET", "k", "v"]))]), 0);
        assert!(!f.is_active());
    }

    #[test]
    fn selects_databases_and_wraps_multi() {
        let f = Feed::new();
        f.with_state(|st| {
            st.backlog = Some(Backlog::new(1 << 20, st.offset));
            st.aof = Some(BytesMut::new());
        });
        f.append(&[(0, cmd(&["SET", "k", "v"]))]);
        f.append(&[(0, cmd(&["DEL", "k"]))]);
        f.append(&[(2, cmd(&["INCR", "a"])), (3, cmd(&["INCR", "b"]))]);
        let expect = concat!(
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n",
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
            "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n",
            "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n",
            "*1\r\n$5\r\nMULTI\r\n",
            "*2\r\n$4\r\nINCR\r\n$1\r\na\r\n",
            "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n",
            "*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n",
            "*1\r\n$4\r\nEXEC\r\n",
        );
        assert_eq!(f.offset(), expect.len() as u64);
        f.with_state(|st| {
            let b = st.backlog.as_ref().unwrap();
            assert_eq!(&b.read_from(1, 1 << 20).unwrap()[..], expect.as_bytes());
            assert_eq!(&st.aof.as_ref().unwrap()[..], expect.as_bytes());
        });
    }

    #[test]
    fn publish_goes_to_replicas_only() {
        let f = Feed::new();
        f.with_state(|st| {
            st.backlog = Some(Backlog::new(1 << 20, st.offset));
            st.aof = Some(BytesMut::new());
        });
        f.append(&[(2, cmd(&["PUBLISH", "ch", "m"]))]);
        f.append(&[
            (0, cmd(&["SET", "k", "v"])),
            (0, cmd(&["PUBLISH", "ch", "n"])),
        ]);
        f.append(&[
            (0, cmd(&["PUBLISH", "a", "1"])),
            (0, cmd(&["PUBLISH", "b", "2"])),
        ]);
        let publish = "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nm\r\n";
        let select = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";
        let multi = "*1\r\n$5\r\nMULTI\r\n";
        let set = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let publish_n = "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nn\r\n";
        let exec = "*1\r\n$4\r\nEXEC\r\n";
        let two = concat!(
            "*1\r\n$5\r\nMULTI\r\n",
            "*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$1\r\n1\r\n",
            "*3\r\n$7\r\nPUBLISH\r\n$1\r\nb\r\n$1\r\n2\r\n",
            "*1\r\n$4\r\nEXEC\r\n",
        );
        let repl = format!("{publish}{select}{multi}{set}{publish_n}{exec}{two}");
        let aof = format!("{select}{multi}{set}{exec}");
        assert_eq!(f.offset(), repl.len() as u64);
        assert_eq!(f.aof_tail(), aof.len() as u64);
        f.with_state(|st| {
            let b = st.backlog.as_ref().unwrap();
            assert_eq!(&b.read_from(1, 1 << 20).unwrap()[..], repl.as_bytes());
            assert_eq!(&st.aof.as_ref().unwrap()[..], aof.as_bytes());
        });
    }
}

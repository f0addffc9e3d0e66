//! The registry of connected clients, for CLIENT LIST / INFO / KILL / ID and INFO clients.
//! Each session owns an `Arc<ClientInfo>` it updates with cheap atomic stores; a kill is a
//! flag plus a wake-up the session selects on.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// A query buffer is resized only when at least this much of it is free (Redis's 4 KB).
pub const QUERY_BUF_MIN_WASTE: usize = 4 * 1024;
/// A busy client's query buffer larger than this shrinks to its recent peak when that peak
/// used less than half of it (Redis's `PROTO_RESIZE_THRESHOLD`).
pub const QUERY_BUF_RESIZE_THRESHOLD: usize = 32 * 1024;

/// What a client connection is, as CLIENT LIST's `flags=` and `CLIENT KILL TYPE` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientKind {
    Normal = 0,
    PubSub = 1,
    Replica = 2,
    Master = 3,
}

/// The shared, observable state of one connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    pub name: Mutex<Option<String>>,
    pub lib_name: Mutex<Option<String>>,
    pub lib_ver: Mutex<Option<String>>,
    pub db: AtomicUsize,
    /// Milliseconds since `created` of the last command.
    pub last_interaction_ms: AtomicU64,
    /// Index in the command table of the last command (+1; 0 = none).
    pub last_cmd: AtomicU16,
    pub kind: AtomicU8,
    pub in_multi: AtomicBool,
    pub blocked: AtomicBool,
    pub subscriptions: AtomicUsize,
    pub psubscriptions: AtomicUsize,
    pub resp: AtomicU8,
    /// Unprocessed bytes in the query buffer and its free space (CLIENT LIST `qbuf=`,
    /// `qbuf-free=`), as of the session's last read.
    pub query_buf: AtomicUsize,
    pub query_buf_free: AtomicUsize,
    /// The cron asks the session to resize its query buffer (see [`QUERY_BUF_MIN_WASTE`]).
    pub resize_query_buf: Notify,
    pub output_buf: AtomicUsize,
    pub killed: AtomicBool,
    pub kill: Notify,
    /// CLIENT NO-EVICT (flag `e`).
    pub no_evict: AtomicBool,
    /// CLIENT NO-TOUCH: the client's reads do not update keys' LRU/LFU (flag `T`).
    pub no_touch: AtomicBool,
}

impl ClientInfo {
    pub fn kind(&self) -> ClientKind {
        match self.kind.load(Ordering::Relaxed) {
            1 => ClientKind::PubSub,
            2 => ClientKind::Replica,
            3 => ClientKind::Master,
            _ => ClientKind::Normal,
        }
    }
    pub fn set_kind(&self, k: ClientKind) {
        self.kind.store(k as u8, Ordering::Relaxed);
    }
    /// Asks the session to close the connection: every task waiting in [`Self::killed`]
    /// for this client wakes.
    pub fn request_kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_waiters();
    }

    /// Resolves once the client is killed (at once if it already is). The future registers
    /// itself before it checks the flag, so a kill is never missed; a session keeps one for
    /// its whole life instead of registering again for every read.
    pub async fn killed(&self) {
        let notified = self.kill.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_killed() {
            return;
        }
        notified.await;
    }
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
    pub fn name(&self) -> String {
        self.name.lock().clone().unwrap_or_default()
    }
    /// Whether the query buffer is worth a resize check (Redis's `clientsCronResizeQueryBuffer`
    /// conditions, from the figures the session published): the session decides exactly.
    pub fn query_buf_resizable(&self) -> bool {
        let free = self.query_buf_free.load(Ordering::Relaxed);
        let size = free + self.query_buf.load(Ordering::Relaxed);
        free > QUERY_BUF_MIN_WASTE
            && (self.idle_secs() > 2 || size > QUERY_BUF_RESIZE_THRESHOLD)
            && !self.blocked.load(Ordering::Relaxed)
    }

    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }
}

/// All connected clients.
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_id: AtomicU64,
    pub blocked: AtomicUsize,
}

impl Clients {
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            db: AtomicUsize::new(0),
            last_interaction_ms: AtomicU64::new(0),
            last_cmd: AtomicU16::new(0),
            kind: AtomicU8::new(ClientKind::Normal as u8),
            in_multi: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            subscriptions: AtomicUsize::new(0),
            psubscriptions: AtomicUsize::new(0),
            resp: AtomicU8::new(2),
            query_buf: AtomicUsize::new(0),
            query_buf_free: AtomicUsize::new(0),
            resize_query_buf: Notify::new(),
            output_buf: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
        });
        self.map.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.map.lock().len()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.lock().get(&id).cloned()
    }

    /// Calls `f` on every client, in id order, under the registry's lock (keep `f` short).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<ClientInfo>)) {
        for c in self.map.lock().values() {
            f(c);
        }
    }

    /// A snapshot of every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().values().cloned().collect()
    }
}

//! Backend connections of one worker thread. A pooled connection is shared by every client
//! of the worker (multiplexed): clients append requests to its output buffer, the
//! connection's task writes them in batches and hands each reply, as the bytes the backend
//! sent, to the client that asked, in order. Dedicated connections (transactions, blocking
//! commands) are lent to one client at a time.
//!
//! Guarantees: a request is written at most once (a connection that fails answers every
//! request it holds with an error saying the outcome is unknown, and is never replayed);
//! a connection is used only after its handshake (AUTH, HELLO, SELECT) succeeded; after a
//! failed connect, new attempts wait [`RECONNECT_BACKOFF`] (no reconnect storms).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tandem_protocol::frame::encode_command;
use tandem_protocol::scan::Scanner;
use tandem_protocol::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::metrics::WorkerMetrics;
use crate::session::Inbox;
use crate::Shared;

/// Pause after a failed connect before the next attempt to the same backend.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a connection checks its oldest request against `command_timeout_ms`.
const TIMEOUT_CHECK: Duration = Duration::from_millis(100);
/// Nesting accepted in a relayed reply: the proxy never recurses into a reply, so only a
/// bound on the scanner's memory (16 bytes a level); Redis's Lua replies stop far sooner.
const RELAY_MAX_DEPTH: usize = 1 << 16;
/// Idle dedicated connections kept per backend for reuse.
const MAX_IDLE_DEDICATED: usize = 16;

/// What to do with a reply when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Relay to the client.
    Plain,
    /// Relay to the client; a write (read-your-writes bookkeeping).
    Write,
    /// A write under write concern `replicated`: hold the reply until a `WAIT 1` after it.
    WriteHeld,
    /// The `WAIT 1` a connection sends after its batch of held writes: releases all their
    /// replies, or an error to each (one WAIT per batch, not per write: WAIT blocks the
    /// shared connection while the replica confirms).
    WaitCheck,
    /// SELECT probe: relay, and record whether it succeeded.
    SelectProbe,
    /// Internal command whose reply nobody wants.
    Discard,
}

/// A request written (or about to be written) to a backend, waiting for its reply.
pub struct Pending {
    pub inbox: Rc<Inbox>,
    pub seq: u64,
    pub kind: Kind,
    /// When the request was queued (TSC clock: read per request, see `quanta`).
    pub start: quanta::Instant,
    /// Index of the route label (for the latency histogram).
    pub route: u8,
    /// A read sent to a replica keeps its request bytes: if that replica dies before
    /// replying, the read is resent to the master (safe: it changes nothing) instead of
    /// failing.
    pub resend: Option<Bytes>,
}

#[derive(Debug, Clone)]
enum ConnState {
    Idle,
    Connecting,
    Ready,
    Failed { at: Instant, reason: Rc<str> },
}

/// Identity of a pool: backend address, reply dialect and database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: Arc<str>,
    /// RESP3 (`HELLO 3` sent at connect) or RESP2.
    pub resp3: bool,
    pub db: u32,
}

impl PoolKey {
    pub fn new(addr: &Arc<str>, proto: Protocol, db: u32) -> PoolKey {
        PoolKey {
            addr: addr.clone(),
            resp3: proto == Protocol::Resp3,
            db,
        }
    }

    pub fn proto(&self) -> Protocol {
        if self.resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }
}

/// Connections by pool, looked up per request (foldhash: SipHash cost ~2% of a pipelined GET).
type PoolMap = HashMap<PoolKey, Vec<Rc<BackendConn>>, foldhash::fast::RandomState>;

/// One backend connection and its queue.
pub struct BackendConn {
    pub key: PoolKey,
    pub dedicated: bool,
    generation: u64,
    state: RefCell<ConnState>,
    out: RefCell<BytesMut>,
    inflight: RefCell<VecDeque<Pending>>,
    /// Wakes the connection task (new requests, or close).
    wake: Notify,
    /// A wake-up for new requests is already on its way (one per batch, not per request).
    wake_sent: Cell<bool>,
    /// Held writes are queued: the next batch ends with `WAIT 1 <ms>` (route label).
    wait_due: Cell<Option<(u64, u8)>>,
    /// Replies of writes that succeeded on the master, waiting for the next WAIT's answer:
    /// (client, request number, reply).
    held: RefCell<Vec<(Rc<Inbox>, u64, Bytes)>>,
    /// Wakes clients waiting for the connect to finish.
    changed: Notify,
    closing: Cell<bool>,
    /// Must not be reused (its database or state changed inside a transaction).
    pub dirty: Cell<bool>,
    worker: Rc<WorkerCtx>,
}

impl BackendConn {
    fn new(worker: &Rc<WorkerCtx>, key: PoolKey, dedicated: bool) -> Rc<BackendConn> {
        Rc::new(BackendConn {
            key,
            dedicated,
            generation: worker.generation(),
            state: RefCell::new(ConnState::Idle),
            out: RefCell::new(BytesMut::with_capacity(16 * 1024)),
            inflight: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            wake_sent: Cell::new(false),
            wait_due: Cell::new(None),
            held: RefCell::new(Vec::new()),
            changed: Notify::new(),
            closing: Cell::new(false),
            dirty: Cell::new(false),
            worker: worker.clone(),
        })
    }

    pub fn is_ready(&self) -> bool {
        matches!(*self.state.borrow(), ConnState::Ready) && !self.closing.get()
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.borrow().len()
    }

    /// Waits until the connection is usable, connecting if needed. An error names why the
    /// backend cannot be reached (recent failures are reported without a new attempt).
    pub async fn ready(self: &Rc<Self>) -> Result<(), Rc<str>> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let state = self.state.borrow().clone();
            match state {
                ConnState::Ready if !self.closing.get() => return Ok(()),
                ConnState::Ready => return Err("connection is closing".into()),
                ConnState::Connecting => notified.await,
                ConnState::Failed { at, reason } if at.elapsed() < RECONNECT_BACKOFF => {
                    return Err(reason)
                }
                ConnState::Idle | ConnState::Failed { .. } => {
                    *self.state.borrow_mut() = ConnState::Connecting;
                    tokio::task::spawn_local(run_conn(self.clone()));
                }
            }
        }
    }

    /// Appends a request (RESP bytes, relayed as the client sent them); its reply goes to
    /// `pending`. The connection must be ready.
    pub fn send(&self, wire: &[u8], pending: Pending) {
        self.out.borrow_mut().extend_from_slice(wire);
        self.inflight.borrow_mut().push_back(pending);
        if !self.wake_sent.replace(true) {
            self.wake.notify_one();
        }
    }

    /// Appends a held write (write concern `replicated`): its reply waits for the `WAIT 1`
    /// that ends this batch (`ms`: its timeout).
    pub fn send_held(&self, wire: &[u8], pending: Pending, ms: u64) {
        self.wait_due.set(Some((ms, pending.route)));
        self.send(wire, pending);
    }

    /// Stops taking requests. A pooled connection finishes what it holds; a dedicated one
    /// is closed at once (a blocked BLPOP must not outlive its client).
    pub fn close(&self) {
        self.closing.set(true);
        self.wake.notify_one();
    }

    fn fail_inflight(&self, reason: &str) {
        let pending: Vec<Pending> = self.inflight.borrow_mut().drain(..).collect();
        let held: Vec<_> = self.held.borrow_mut().drain(..).collect();
        self.out.borrow_mut().clear();
        self.wait_due.set(None);
        if pending.is_empty() && held.is_empty() {
            return;
        }
        for (inbox, seq, _) in held {
            inbox.complete(
                seq,
                format!("-ERR proxy: the write was applied on the master but the connection to {} was lost before any replica confirmed it ({reason})\r\n", self.key.addr).as_bytes(),
            );
        }
        let poll_seq = self.worker.shared.poll_sent.load(Ordering::SeqCst);
        for p in pending {
            let msg = format!(
                "-ERR proxy: lost the connection to backend {} before the reply ({reason}); the command may or may not have been applied\r\n",
                self.key.addr
            );
            match p.kind {
                Kind::Discard | Kind::WaitCheck => {}
                Kind::Write | Kind::WriteHeld => {
                    p.inbox.write_done(poll_seq);
                    p.inbox.complete(p.seq, msg.as_bytes());
                }
                Kind::Plain if p.resend.is_some() => self.resend_to_master(p, msg),
                Kind::Plain | Kind::SelectProbe => p.inbox.complete(p.seq, msg.as_bytes()),
            }
        }
        self.worker.metrics.error("backend_lost");
    }
}

impl BackendConn {
    /// A replica read whose replica died: resend it to the current master (once), or fail it
    /// with `msg` when no master is usable.
    fn resend_to_master(&self, mut p: Pending, msg: String) {
        let Some(wire) = p.resend.take() else {
            p.inbox.complete(p.seq, msg.as_bytes());
            return;
        };
        let master = self.worker.shared.topo.load().usable_master().cloned();
        let Some(master) = master.filter(|m| **m != *self.key.addr) else {
            p.inbox.complete(p.seq, msg.as_bytes());
            return;
        };
        let proto = if self.key.resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        let c = self.worker.conn(&master, proto, self.key.db, p.seq);
        tracing::debug!(replica = %self.key.addr, %master, "resending a read lost with its replica to the master");
        if c.is_ready() {
            c.send(&wire, p);
            return;
        }
        tokio::task::spawn_local(async move {
            match c.ready().await {
                Ok(()) => c.send(&wire, p),
                Err(_) => p.inbox.complete(p.seq, msg.as_bytes()),
            }
        });
    }
}

/// Connects to `addr` and runs the handshake: `HELLO 3` (RESP3), AUTH, SELECT.
pub async fn connect(
    addr: &str,
    proto: Protocol,
    db: u32,
    password: Option<&str>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let fut = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut out = BytesMut::new();
        let mut n = 0;
        let pw = password.filter(|p| !p.is_empty());
        match (proto, pw) {
            (Protocol::Resp3, Some(pw)) => {
                encode_command(&["HELLO", "3", "AUTH", "default", pw], &mut out);
                n += 1;
            }
            (Protocol::Resp3, None) => {
                encode_command(&["HELLO", "3"], &mut out);
                n += 1;
            }
            (Protocol::Resp2, Some(pw)) => {
                encode_command(&["AUTH", pw], &mut out);
                n += 1;
            }
            (Protocol::Resp2, None) => {}
        }
        if db != 0 {
            encode_command(&["SELECT", &db.to_string()], &mut out);
            n += 1;
        }
        if n == 0 {
            return Ok(stream);
        }
        stream
            .write_all(&out)
            .await
            .map_err(|e| format!("handshake write failed: {e}"))?;
        let mut buf = BytesMut::with_capacity(4096);
        let mut scanner = Scanner::with_max_depth(RELAY_MAX_DEPTH);
        let mut got = 0;
        while got < n {
            if let Some(len) = scanner.scan(&buf).map_err(|e| e.to_string())? {
                let reply = buf.split_to(len);
                if reply.first() == Some(&b'-') {
                    let text = String::from_utf8_lossy(&reply[1..]).trim_end().to_string();
                    // A password given to a node that has none is harmless.
                    if !text.contains("without any password configured") {
                        return Err(format!("handshake refused: {text}"));
                    }
                }
                got += 1;
                continue;
            }
            if buf.len() > 1 << 20 {
                return Err("handshake reply too large".into());
            }
            let r = stream
                .read_buf(&mut buf)
                .await
                .map_err(|e| format!("handshake read failed: {e}"))?;
            if r == 0 {
                return Err("closed during the handshake".into());
            }
        }
        Ok(stream)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

async fn run_conn(conn: Rc<BackendConn>) {
    let cfg = conn.worker.shared.config.load_full();
    let timeout = Duration::from_millis(cfg.connect_timeout_ms.max(1));
    let stream = match connect(
        &conn.key.addr,
        conn.key.proto(),
        conn.key.db,
        cfg.backend_password.as_deref(),
        timeout,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(backend = %conn.key.addr, reason = %e, "backend connect failed");
            conn.worker.metrics.error("backend_connect");
            *conn.state.borrow_mut() = ConnState::Failed {
                at: Instant::now(),
                reason: e.into(),
            };
            conn.changed.notify_waiters();
            return;
        }
    };
    tracing::debug!(backend = %conn.key.addr, db = conn.key.db, "backend connected");
    *conn.state.borrow_mut() = ConnState::Ready;
    conn.changed.notify_waiters();
    let cmd_timeout = Duration::from_millis(cfg.command_timeout_ms.max(1));
    drop(cfg);
    let result = io_loop(&conn, stream, cmd_timeout).await;
    let reason: Rc<str> = match result {
        Ok(()) => "closed".into(),
        Err(e) => {
            tracing::warn!(backend = %conn.key.addr, reason = %e, inflight = conn.inflight_len(), "backend connection lost");
            e.into()
        }
    };
    conn.fail_inflight(&reason);
    *conn.state.borrow_mut() = ConnState::Failed {
        at: Instant::now(),
        reason: format!("connection to {} lost: {reason}", conn.key.addr).into(),
    };
    conn.changed.notify_waiters();
}

async fn io_loop(
    conn: &Rc<BackendConn>,
    stream: TcpStream,
    cmd_timeout: Duration,
) -> Result<(), String> {
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut scanner = Scanner::with_max_depth(RELAY_MAX_DEPTH);
    let mut check = tokio::time::interval(TIMEOUT_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Write what is queued (requests queued from now on send a new wake-up), ending
        // with one WAIT for the batch's held writes.
        conn.wake_sent.set(false);
        if let Some((ms, route)) = conn.wait_due.take() {
            let ms = ms.to_string();
            encode_command(
                &[b"WAIT".as_slice(), b"1", ms.as_bytes()],
                &mut conn.out.borrow_mut(),
            );
            conn.inflight.borrow_mut().push_back(Pending {
                inbox: conn.worker.wait_inbox.clone(),
                seq: 0,
                kind: Kind::WaitCheck,
                start: quanta::Instant::now(),
                route,
                resend: None,
            });
        }
        {
            let mut out = conn.out.borrow_mut();
            while !out.is_empty() {
                match stream.try_write(&out) {
                    Ok(n) => out.advance(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("write failed: {e}")),
                }
            }
        }
        if conn.closing.get() && (conn.dedicated || conn.inflight.borrow().is_empty()) {
            return Ok(());
        }
        let want_write = !conn.out.borrow().is_empty();
        let interest = if want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        tokio::select! {
            biased;
            r = stream.ready(interest) => {
                let r = r.map_err(|e| format!("poll failed: {e}"))?;
                if r.is_readable() {
                    loop {
                        inbuf.reserve(16 * 1024);
                        let room = inbuf.capacity() - inbuf.len();
                        match tandem_protocol::io::try_read_drained(&stream, &mut inbuf) {
                            Ok(0) => {
                                deliver(conn, &mut inbuf, &mut scanner)?;
                                return Err("closed by the backend".into());
                            }
                            // A short read drained the socket: no read that would block.
                            Ok(n) if n < room => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(format!("read failed: {e}")),
                        }
                    }
                    deliver(conn, &mut inbuf, &mut scanner)?;
                }
            }
            _ = conn.wake.notified() => {
                // Let the other clients woken by the same poll queue their requests first:
                // one write then carries them all, as twemproxy writes on its event loop's
                // next turn (and the backend reads them in one go).
                tokio::task::yield_now().await;
            }
            _ = check.tick(), if !conn.dedicated => {
                let oldest = conn.inflight.borrow().front().map(|p| p.start);
                if let Some(t) = oldest {
                    if t.elapsed() > cmd_timeout {
                        conn.worker.metrics.error("backend_timeout");
                        return Err(format!("no reply within {} ms", cmd_timeout.as_millis()));
                    }
                }
            }
        }
    }
}

/// Hands every complete reply in `inbuf` to its client.
fn deliver(conn: &BackendConn, inbuf: &mut BytesMut, scanner: &mut Scanner) -> Result<(), String> {
    if inbuf.is_empty() {
        return Ok(());
    }
    let now = quanta::Instant::now();
    let poll_seq = conn.worker.shared.poll_sent.load(Ordering::SeqCst);
    // A pipelining client's replies come in runs: its task is woken once per run.
    let mut wake = WakeLater(None);
    loop {
        if inbuf.is_empty() {
            return Ok(());
        }
        let Some(len) = scanner.scan(inbuf).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let Some(p) = conn.inflight.borrow_mut().pop_front() else {
            return Err("backend sent a reply nobody asked for".into());
        };
        let reply = &inbuf[..len];
        conn.worker
            .metrics
            .latency(p.route, now.saturating_duration_since(p.start));
        match p.kind {
            Kind::Plain => {
                p.inbox.fill(p.seq, reply);
                wake.set(p.inbox);
            }
            Kind::Write => {
                p.inbox.write_done(poll_seq);
                p.inbox.fill(p.seq, reply);
                wake.set(p.inbox);
            }
            Kind::WriteHeld => {
                p.inbox.write_done(poll_seq);
                if reply.first() == Some(&b'-') {
                    p.inbox.complete(p.seq, reply);
                } else {
                    let reply = Bytes::copy_from_slice(reply);
                    conn.held.borrow_mut().push((p.inbox.clone(), p.seq, reply));
                }
            }
            Kind::WaitCheck => {
                let acked = reply.first() == Some(&b':')
                    && reply.get(1).is_some_and(|c| (b'1'..=b'9').contains(c));
                let held: Vec<_> = conn.held.borrow_mut().drain(..).collect();
                if !acked && !held.is_empty() {
                    conn.worker.metrics.error("not_replicated");
                }
                for (inbox, seq, w) in held {
                    if acked {
                        inbox.complete(seq, &w);
                    } else {
                        inbox.complete(
                            seq,
                            b"-NOREPLICAS proxy: the write was applied on the master but no replica acknowledged it in time\r\n",
                        );
                    }
                }
            }
            Kind::SelectProbe => {
                p.inbox.select_ok.set(Some(reply.starts_with(b"+OK")));
                p.inbox.complete(p.seq, reply);
            }
            Kind::Discard => {}
        }
        inbuf.advance(len);
    }
}

/// The client to wake once `deliver` moves on to another client's reply or returns.
struct WakeLater(Option<Rc<Inbox>>);

impl WakeLater {
    fn set(&mut self, inbox: Rc<Inbox>) {
        if let Some(prev) = &self.0 {
            if Rc::ptr_eq(prev, &inbox) {
                return;
            }
            prev.notify.notify_one();
        }
        self.0 = Some(inbox);
    }
}

impl Drop for WakeLater {
    fn drop(&mut self) {
        if let Some(inbox) = self.0.take() {
            inbox.notify.notify_one();
        }
    }
}

/// Everything one worker thread shares between its clients.
pub struct WorkerCtx {
    pub shared: Arc<Shared>,
    pub metrics: WorkerMetrics,
    pools: RefCell<PoolMap>,
    idle: RefCell<PoolMap>,
    /// Owner of the connections' own WAITs (their replies go to held writes, not here).
    wait_inbox: Rc<Inbox>,
}

impl WorkerCtx {
    pub fn new(shared: Arc<Shared>) -> Rc<WorkerCtx> {
        Rc::new(WorkerCtx {
            shared,
            metrics: WorkerMetrics::default(),
            pools: RefCell::new(PoolMap::default()),
            idle: RefCell::new(PoolMap::default()),
            wait_inbox: Inbox::new(),
        })
    }

    fn generation(&self) -> u64 {
        self.shared.config_gen.load(Ordering::Relaxed)
    }

    /// The pooled connection `slot` (sticky per client) to a backend.
    pub fn conn(
        self: &Rc<Self>,
        addr: &Arc<str>,
        proto: Protocol,
        db: u32,
        slot: u64,
    ) -> Rc<BackendConn> {
        let key = PoolKey::new(addr, proto, db);
        let gen = self.generation();
        let mut pools = self.pools.borrow_mut();
        if let Some(pool) = pools.get(&key) {
            let c = &pool[(slot % pool.len() as u64) as usize];
            if c.generation == gen {
                return c.clone();
            }
        }
        // New pool, or the configuration changed: build it again; the old connections
        // finish their requests and close.
        let size = self.shared.config.load().pool_size.max(1);
        let pool: Vec<_> = (0..size)
            .map(|_| BackendConn::new(self, key.clone(), false))
            .collect();
        if let Some(old) = pools.insert(key, pool.clone()) {
            for c in old {
                c.close();
            }
        }
        pool[(slot % size as u64) as usize].clone()
    }

    /// Requests in flight from this worker to `addr` (for least-loaded replica choice).
    pub fn inflight_to(&self, addr: &Arc<str>, proto: Protocol, db: u32) -> usize {
        let key = PoolKey::new(addr, proto, db);
        self.pools
            .borrow()
            .get(&key)
            .map(|p| p.iter().map(|c| c.inflight_len()).sum())
            .unwrap_or(0)
    }

    /// A connection for one client alone (transaction, blocking command).
    pub fn take_dedicated(
        self: &Rc<Self>,
        addr: &Arc<str>,
        proto: Protocol,
        db: u32,
    ) -> Rc<BackendConn> {
        let key = PoolKey::new(addr, proto, db);
        let gen = self.generation();
        if let Some(list) = self.idle.borrow_mut().get_mut(&key) {
            while let Some(c) = list.pop() {
                if c.is_ready() && c.generation == gen && !c.dirty.get() {
                    return c;
                }
                c.close();
            }
        }
        BackendConn::new(self, key, true)
    }

    /// Returns a dedicated connection once its last reply has arrived.
    pub fn give_back(&self, c: Rc<BackendConn>) {
        if !c.is_ready()
            || c.dirty.get()
            || c.inflight_len() != 0
            || c.generation != self.generation()
        {
            c.close();
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(c.key.clone()).or_default();
        if list.len() < MAX_IDLE_DEDICATED {
            list.push(c);
        } else {
            c.close();
        }
    }

    /// Publishes this worker's counts and in-flight gauges (called once a second).
    pub fn flush_metrics(&self, worker: usize) {
        self.metrics.flush();
        let mut per_backend: HashMap<Arc<str>, usize> = HashMap::new();
        for (k, pool) in self.pools.borrow().iter() {
            *per_backend.entry(k.addr.clone()).or_default() +=
                pool.iter().map(|c| c.inflight_len()).sum::<usize>();
        }
        for (addr, n) in per_backend {
            metrics::gauge!("tandem_proxy_backend_inflight", "backend" => addr.to_string(), "worker" => worker.to_string())
                .set(n as f64);
        }
    }

    /// Drops pools of backends that left the topology (called periodically).
    pub fn prune(&self, keep: &[Arc<str>]) {
        let gone = |k: &PoolKey| !keep.contains(&k.addr);
        self.pools.borrow_mut().retain(|k, pool| {
            if gone(k) && pool.iter().all(|c| c.inflight_len() == 0) {
                for c in pool.iter() {
                    c.close();
                }
                false
            } else {
                true
            }
        });
        self.idle.borrow_mut().retain(|k, list| {
            if gone(k) {
                for c in list.iter() {
                    c.close();
                }
                false
            } else {
                true
            }
        });
    }
}

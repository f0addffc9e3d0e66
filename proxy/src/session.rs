//! One client connection. Requests are decoded with the shared bounded decoder, classified
//! from the command table and sent to backend connections; replies come back in request
//! order through the client's [`Inbox`], as the bytes the backend sent.
//!
//! Guarantees:
//! - replies are in request order, whatever backends answer first;
//! - read-your-writes: after a write, this client's reads go only to replicas whose applied
//!   offset has reached an offset the write is known to be at (see [`RywState`]), else to
//!   the master;
//! - a client's requests to the master travel on one connection at a time, so pipelined
//!   writes and reads keep their order (switching connections waits for the earlier replies);
//! - memory per client is bounded: reading stops while replies are pending or unsent, and a
//!   client whose unsent output passes `client-output-buffer-limit` is disconnected;
//! - malformed RESP gets `-ERR Protocol error` and closes this client only.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::{Buf, Bytes, BytesMut};
use tandem_config::ProxyConfig;
use tandem_protocol::command::LookupCache;
use tandem_protocol::frame::{Request, RequestDecoder, RequestLimits};
use tandem_protocol::{Protocol, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::metrics::{Route, WorkerMetrics};
use crate::pool::{BackendConn, Kind, Pending, WorkerCtx};
use crate::router::{self, Class, LagLimits, ReadTarget, RouteKind, Ryw, RywState, SessionCmd};
use crate::topology::Snapshot;

/// Most requests a client may have waiting for replies before the proxy stops reading.
const MAX_PENDING: usize = 1024;
/// Unsent output above which the proxy stops reading the client's requests.
const SOFT_OUTPUT: usize = 1 << 20;
/// How often a queued request re-checks the backend while waiting for a master.
const QUEUE_RECHECK: Duration = Duration::from_millis(50);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Where backend replies for one client land, in order.
pub struct Inbox {
    st: RefCell<InboxState>,
    /// Wakes the client task when output is ready.
    pub notify: Notify,
    ryw: Cell<RywState>,
    /// Outcome of the last SELECT probe.
    pub select_ok: Cell<Option<bool>>,
}

struct InboxState {
    /// Replies ready to be written to the client, in order.
    out: BytesMut,
    /// Sequence number of the oldest unanswered request.
    next: u64,
    /// Replies that arrived ahead of an older one (index = seq - next).
    slots: VecDeque<Option<Bytes>>,
}

impl Inbox {
    pub(crate) fn new() -> Rc<Inbox> {
        Rc::new(Inbox {
            st: RefCell::new(InboxState {
                out: BytesMut::with_capacity(16 * 1024),
                next: 0,
                slots: VecDeque::new(),
            }),
            notify: Notify::new(),
            ryw: Cell::new(RywState::default()),
            select_ok: Cell::new(None),
        })
    }

    /// Reserves the next reply position.
    pub fn alloc(&self) -> u64 {
        let mut st = self.st.borrow_mut();
        st.slots.push_back(None);
        st.next + st.slots.len() as u64 - 1
    }

    /// Requests still waiting for a reply.
    pub fn pending(&self) -> usize {
        self.st.borrow().slots.len()
    }

    pub fn out_len(&self) -> usize {
        self.st.borrow().out.len()
    }

    /// The reply to request `seq`; wakes the client.
    pub fn complete(&self, seq: u64, reply: &[u8]) {
        self.fill(seq, reply);
        self.notify.notify_one();
    }

    /// The reply to request `seq`, without waking the client: the caller wakes it once
    /// after the last of a run of replies (see `pool::deliver`).
    pub fn fill(&self, seq: u64, reply: &[u8]) {
        let mut st = self.st.borrow_mut();
        let Some(idx) = seq.checked_sub(st.next) else {
            return;
        };
        let idx = idx as usize;
        if idx >= st.slots.len() {
            return;
        }
        if idx == 0 {
            st.out.extend_from_slice(reply);
            st.slots.pop_front();
            st.next += 1;
            while let Some(Some(_)) = st.slots.front() {
                if let Some(Some(b)) = st.slots.pop_front() {
                    st.out.extend_from_slice(&b);
                }
                st.next += 1;
            }
        } else {
            st.slots[idx] = Some(Bytes::copy_from_slice(reply));
        }
    }

    /// Queues a locally produced reply in order.
    fn local(&self, reply: &Reply, proto: Protocol) {
        let seq = self.alloc();
        let mut b = BytesMut::new();
        reply.encode(proto, &mut b);
        self.complete(seq, &b);
    }

    pub fn write_sent(&self) {
        let mut r = self.ryw.get();
        r.write_sent();
        self.ryw.set(r);
    }

    pub fn write_done(&self, poll_seq: u64) {
        let mut r = self.ryw.get();
        r.write_done(poll_seq);
        self.ryw.set(r);
    }

    fn resolve_ryw(&self, enabled: bool, poll_seq: u64, master_offset: i64) -> Ryw {
        let mut r = self.ryw.get();
        let out = r.resolve(enabled, poll_seq, master_offset);
        self.ryw.set(r);
        out
    }
}

/// What [`Session::handle_now`] did with a request.
enum Now {
    Done,
    /// It needs `handle` (it may wait); a read carries the route already chosen.
    Later(Option<ReadRoute>),
}

/// Where a read goes: a replica's address, or none for the master, and why.
type ReadRoute = (RouteKind, Option<Arc<str>>);

/// What the main loop does after a request.
enum Flow {
    Continue,
    /// Switch to a raw pub/sub relay (SUBSCRIBE / PSUBSCRIBE).
    Relay(Request<'static>),
}

pub struct Session {
    id: u64,
    ctx: Rc<WorkerCtx>,
    stream: TcpStream,
    peer: String,
    inbox: Rc<Inbox>,
    inbuf: BytesMut,
    decoder: RequestDecoder,
    proto: Protocol,
    db: u32,
    authed: bool,
    name: Option<Bytes>,
    /// Master connection held for WATCH / MULTI.
    pinned: Option<Rc<BackendConn>>,
    in_multi: bool,
    multi_failed: bool,
    /// Dedicated connections to give back once their replies are in.
    releasing: Vec<Rc<BackendConn>>,
    /// The next backend request must wait for every earlier reply (connection switch).
    need_barrier: bool,
    closing: bool,
    topo_rx: tokio::sync::watch::Receiver<u64>,
    tiebreak: usize,
    /// The pooled master connection found last, reused until the topology changes, the
    /// connection fails, or the client's database or protocol changes (saves a snapshot load
    /// and a pool lookup per request).
    master_hint: Option<Rc<BackendConn>>,
    /// The configuration and routing snapshot in force, re-read only when swapped.
    config: ConfigCache,
    topo: TopoCache,
    commands: LookupCache,
    /// When the run of requests `dispatch` is handling without waiting began: their start
    /// time (one clock read per run). None while a request may wait.
    stamp: Option<quanta::Instant>,
}

type ConfigCache = arc_swap::Cache<Arc<ArcSwap<ProxyConfig>>, Arc<ProxyConfig>>;
type TopoCache = arc_swap::Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>;

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(c) = self.pinned.take() {
            c.close();
        }
        for c in self.releasing.drain(..) {
            if c.inflight_len() == 0 {
                self.ctx.give_back(c);
            } else {
                c.close();
            }
        }
        metrics::gauge!("tandem_proxy_client_connections").decrement(1.0);
    }
}

fn err(msg: impl Into<std::borrow::Cow<'static, str>>) -> Reply {
    Reply::Error(msg.into())
}

fn wrong_arity(name: &str) -> Reply {
    err(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

impl Session {
    pub fn new(ctx: Rc<WorkerCtx>, stream: TcpStream, peer: String) -> Session {
        let _ = stream.set_nodelay(true);
        let cfg = ctx.shared.config.load();
        let authed = cfg.password.as_deref().is_none_or(str::is_empty);
        let topo_rx = ctx.shared.topo_changed.subscribe();
        metrics::gauge!("tandem_proxy_client_connections").increment(1.0);
        metrics::counter!("tandem_proxy_client_connections_total").increment(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Session {
            id,
            ctx: ctx.clone(),
            stream,
            peer,
            inbox: Inbox::new(),
            inbuf: BytesMut::with_capacity(16 * 1024),
            decoder: RequestDecoder::new(RequestLimits::default()),
            proto: Protocol::Resp2,
            db: 0,
            authed,
            name: None,
            pinned: None,
            in_multi: false,
            multi_failed: false,
            releasing: Vec::new(),
            need_barrier: false,
            closing: false,
            topo_rx,
            tiebreak: id as usize,
            master_hint: None,
            config: arc_swap::Cache::new(ctx.shared.config.clone()),
            topo: arc_swap::Cache::new(ctx.shared.topo.clone()),
            commands: LookupCache::default(),
            stamp: None,
        }
    }

    fn metrics(&self) -> &WorkerMetrics {
        &self.ctx.metrics
    }

    fn reply(&self, r: Reply) {
        self.inbox.local(&r, self.proto);
    }

    /// Serves the client until it leaves, misbehaves or is too slow.
    pub async fn run(mut self) {
        tracing::debug!(peer = %self.peer, id = self.id, "client connected");
        let reason = self.serve().await;
        match &reason {
            Ok(()) => tracing::debug!(peer = %self.peer, id = self.id, "client disconnected"),
            Err(e) => {
                tracing::info!(peer = %self.peer, id = self.id, reason = %e, "client closed by the proxy")
            }
        }
    }

    async fn serve(&mut self) -> Result<(), String> {
        let limit = self.ctx.shared.config.load().client_output_buffer_limit.0 as usize;
        loop {
            self.release_idle();
            // Dispatch every complete request already buffered, within the limits. The
            // buffer is lent out meanwhile: requests are handled in place, not copied.
            let mut buf = std::mem::take(&mut self.inbuf);
            let relay = self.dispatch(&mut buf).await;
            self.inbuf = buf;
            if let Some(first) = relay {
                return self.relay(first).await;
            }
            self.flush_out()?;
            let out_len = self.inbox.out_len();
            if limit > 0 && out_len > limit {
                self.metrics().error("client_output_limit");
                return Err(format!(
                    "output buffer limit reached ({out_len} bytes unsent, limit {limit})"
                ));
            }
            if self.closing && self.inbox.pending() == 0 && out_len == 0 {
                return Ok(());
            }
            let want_read = self.can_read();
            let interest = match (want_read, out_len > 0) {
                (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
                (true, false) => Some(Interest::READABLE),
                (false, true) => Some(Interest::WRITABLE),
                (false, false) => None,
            };
            let inbox = self.inbox.clone();
            tokio::select! {
                _ = inbox.notify.notified() => {}
                r = async { match interest { Some(i) => self.stream.ready(i).await, None => std::future::pending().await } } => {
                    let r = r.map_err(|e| e.to_string())?;
                    if r.is_readable() && want_read {
                        self.inbuf.reserve(16 * 1024);
                        match tandem_protocol::io::try_read_drained(&self.stream, &mut self.inbuf) {
                            Ok(0) => return Ok(()),
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(format!("read failed: {e}")),
                        }
                    }
                }
            }
        }
    }

    /// Handles the complete requests at the start of `buf`, consuming them. Returns the
    /// request that switches this client to a pub/sub relay, if one does.
    async fn dispatch(&mut self, buf: &mut BytesMut) -> Option<Request<'static>> {
        while self.can_read() {
            match self.decoder.peek(buf) {
                Ok(Some((req, used))) => {
                    let flow = if req.is_empty() {
                        Flow::Continue
                    } else {
                        self.stamp.get_or_insert_with(quanta::Instant::now);
                        match self.handle_now(&req) {
                            Now::Done => Flow::Continue,
                            Now::Later(routed) => {
                                self.stamp = None;
                                self.handle(&req, routed).await
                            }
                        }
                    };
                    drop(req);
                    buf.advance(used);
                    if let Flow::Relay(first) = flow {
                        self.stamp = None;
                        return Some(first);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.metrics().error("client_protocol");
                    self.reply(err(format!("ERR {e}")));
                    self.closing = true;
                    tracing::info!(peer = %self.peer, reason = %e, "malformed request: closing the client");
                }
            }
        }
        self.stamp = None;
        None
    }

    fn can_read(&self) -> bool {
        !self.closing && self.inbox.pending() < MAX_PENDING && self.inbox.out_len() < SOFT_OUTPUT
    }

    /// Writes as much ready output as the socket takes without waiting.
    fn flush_out(&mut self) -> Result<(), String> {
        let mut st = self.inbox.st.borrow_mut();
        while !st.out.is_empty() {
            match self.stream.try_write(&st.out) {
                Ok(n) => st.out.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        Ok(())
    }

    fn release_idle(&mut self) {
        if self.releasing.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.releasing.len() {
            if self.releasing[i].inflight_len() == 0 {
                let c = self.releasing.swap_remove(i);
                self.ctx.give_back(c);
            } else {
                i += 1;
            }
        }
    }

    /// Waits until every earlier request has its reply, still sending output meanwhile.
    async fn barrier(&mut self) -> Result<(), String> {
        while self.inbox.pending() > 0 {
            self.flush_out()?;
            let inbox = self.inbox.clone();
            inbox.notify.notified().await;
        }
        self.need_barrier = false;
        Ok(())
    }

    /// Handles a request that needs no waiting (a plain command whose backend connection is
    /// ready) without building `handle`'s future. Otherwise it has sent nothing, and hands
    /// `handle` the route it chose for a read (a read is routed once).
    fn handle_now(&mut self, args: &Request<'_>) -> Now {
        if self.need_barrier || !self.authed || self.pinned.is_some() {
            return Now::Later(None);
        }
        let spec = self.commands.lookup(&args[0]);
        let spec_idx = spec.map(|s| s.cmd as usize);
        let (kind, route) = match router::classify_spec(args, spec) {
            Class::Write => (Kind::Write, Route::Master),
            Class::MasterRead => (Kind::Plain, Route::Master),
            Class::Read => {
                let routed = self.route_read();
                match &routed {
                    (_, Some(addr)) => {
                        let c = self.ctx.conn(addr, self.proto, self.db, self.id);
                        if c.is_ready() {
                            self.send_replica(&c, args, spec_idx);
                            return Now::Done;
                        }
                    }
                    (kind, None) => {
                        if let Some(c) = self.master_hint_ready() {
                            let route = self.master_read_route(*kind);
                            self.send_on_master(&c, args, Kind::Plain, spec_idx, route);
                            return Now::Done;
                        }
                    }
                }
                return Now::Later(Some(routed));
            }
            _ => return Now::Later(None),
        };
        let Some(c) = self.master_hint_ready() else {
            return Now::Later(None);
        };
        self.send_on_master(&c, args, kind, spec_idx, route);
        Now::Done
    }

    /// `routed`: the route `handle_now` chose, if the request is a read.
    async fn handle(&mut self, args: &Request<'_>, routed: Option<ReadRoute>) -> Flow {
        if self.need_barrier && self.barrier().await.is_err() {
            self.closing = true;
            return Flow::Continue;
        }
        let spec = self.commands.lookup(&args[0]);
        let class = router::classify_spec(args, spec);
        let spec_idx = spec.map(|s| s.cmd as usize);
        if !self.authed
            && !matches!(
                class,
                Class::Session(
                    SessionCmd::Auth | SessionCmd::Hello | SessionCmd::Quit | SessionCmd::Reset
                )
            )
        {
            self.metrics().command(spec_idx, Route::Refused);
            self.reply(err("NOAUTH Authentication required."));
            return Flow::Continue;
        }
        if self.pinned.is_some() {
            return self.handle_pinned(args, class, spec_idx).await;
        }
        match class {
            Class::Session(cmd) => return self.session_cmd(cmd, args, spec_idx).await,
            Class::Admin if !self.ctx.shared.config.load().allow_admin => {
                self.metrics().command(spec_idx, Route::Refused);
                self.metrics().error("admin_refused");
                self.reply(admin_refusal(args));
            }
            Class::Admin | Class::Write => {
                self.send_master(args, Kind::Write, spec_idx).await;
            }
            Class::MasterRead => {
                self.send_master(args, Kind::Plain, spec_idx).await;
            }
            Class::Read => self.read(args, spec_idx, routed).await,
            Class::Blocking => self.blocking(args, spec_idx).await,
        }
        Flow::Continue
    }

    /// Inside WATCH / MULTI everything goes to the pinned master connection.
    async fn handle_pinned(
        &mut self,
        args: &Request<'_>,
        class: Class,
        spec_idx: Option<usize>,
    ) -> Flow {
        let allow_admin = self.ctx.shared.config.load().allow_admin;
        match class {
            Class::Session(SessionCmd::Quit) => {
                self.reply(Reply::Ok);
                self.closing = true;
            }
            Class::Session(SessionCmd::Reset) => self.reset(),
            Class::Session(SessionCmd::Multi) if !self.in_multi => {
                self.send_pinned(args, Kind::Plain, spec_idx);
                self.in_multi = true;
                self.multi_failed = false;
            }
            Class::Session(SessionCmd::Exec) if self.in_multi => {
                if self.multi_failed {
                    let seq = self.inbox.alloc();
                    if let Some(c) = &self.pinned {
                        c.send(
                            b"*1\r\n$7\r\nDISCARD\r\n",
                            self.pending(seq, Kind::Discard, Route::Pinned),
                        );
                    }
                    self.inbox.complete(
                        seq,
                        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
                    );
                } else {
                    let concern = self.replicated_concern();
                    self.send_write_pinned(args, concern, spec_idx);
                }
                self.unpin();
            }
            Class::Session(SessionCmd::Discard) if self.in_multi => {
                self.send_pinned(args, Kind::Plain, spec_idx);
                self.unpin();
            }
            Class::Session(SessionCmd::Exec) => {
                // EXEC without MULTI also drops the WATCH on the backend.
                self.send_pinned(args, Kind::Plain, spec_idx);
                self.unpin();
            }
            Class::Session(SessionCmd::Unwatch) if !self.in_multi => {
                self.send_pinned(args, Kind::Plain, spec_idx);
                self.unpin();
            }
            Class::Session(SessionCmd::Select) if self.in_multi => {
                // Queued by the backend; the connection cannot be reused afterwards.
                if let Some(c) = &self.pinned {
                    c.dirty.set(true);
                }
                if let Some(n) = args
                    .get(1)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    self.db = n;
                }
                self.send_pinned(args, Kind::Plain, spec_idx);
            }
            Class::Session(
                SessionCmd::Auth
                | SessionCmd::Hello
                | SessionCmd::Client
                | SessionCmd::Ping
                | SessionCmd::Echo,
            ) if !self.in_multi => {
                let cmd = match class {
                    Class::Session(c) => c,
                    _ => SessionCmd::Ping,
                };
                return self.session_cmd(cmd, args, spec_idx).await;
            }
            Class::Session(SessionCmd::Subscribe) if !self.in_multi => {
                self.reply(err(
                    "ERR proxy: SUBSCRIBE is not supported while WATCH is active",
                ));
            }
            Class::Admin if !allow_admin => {
                self.metrics().command(spec_idx, Route::Refused);
                if self.in_multi {
                    self.multi_failed = true;
                }
                self.reply(admin_refusal(args));
            }
            _ => self.send_pinned(args, Kind::Plain, spec_idx),
        }
        Flow::Continue
    }

    fn replicated_concern(&mut self) -> bool {
        self.config.load().write_concern == tandem_config::WriteConcern::Replicated
    }

    fn pending(&self, seq: u64, kind: Kind, route: Route) -> Pending {
        Pending {
            inbox: self.inbox.clone(),
            seq,
            kind,
            start: self.stamp.unwrap_or_else(quanta::Instant::now),
            route: route as u8,
            resend: None,
        }
    }

    fn send_pinned(&mut self, args: &Request<'_>, kind: Kind, spec_idx: Option<usize>) {
        let Some(c) = self.pinned.clone() else { return };
        self.metrics().command(spec_idx, Route::Pinned);
        if !c.is_ready() {
            self.reply(err(format!(
                "ERR proxy: the connection to master {} holding this transaction was lost",
                c.key.addr
            )));
            if self.in_multi {
                self.multi_failed = true;
            }
            return;
        }
        let seq = self.inbox.alloc();
        c.send(args.wire(), self.pending(seq, kind, Route::Pinned));
    }

    fn send_write_pinned(&mut self, args: &Request<'_>, concern: bool, spec_idx: Option<usize>) {
        let Some(c) = self.pinned.clone() else { return };
        self.metrics().command(spec_idx, Route::Pinned);
        if !c.is_ready() {
            self.reply(err(format!(
                "ERR proxy: the connection to master {} holding this transaction was lost",
                c.key.addr
            )));
            return;
        }
        self.write_on(&c, args, concern, Route::Pinned);
    }

    /// Sends a write on `c` (held for the batch's `WAIT 1` under write concern `replicated`).
    fn write_on(&mut self, c: &Rc<BackendConn>, args: &Request<'_>, concern: bool, route: Route) {
        let seq = self.inbox.alloc();
        self.inbox.write_sent();
        if concern {
            let ms = (self.config.load().command_timeout_ms / 2).max(1);
            c.send_held(args.wire(), self.pending(seq, Kind::WriteHeld, route), ms);
        } else {
            c.send(args.wire(), self.pending(seq, Kind::Write, route));
        }
    }

    fn unpin(&mut self) {
        self.in_multi = false;
        self.multi_failed = false;
        if let Some(c) = self.pinned.take() {
            self.releasing.push(c);
        }
        self.need_barrier = true;
    }

    /// The pooled master connection found last, if it is still the one to use.
    fn master_hint_ready(&self) -> Option<Rc<BackendConn>> {
        let c = self.master_hint.as_ref()?;
        let same_client_state =
            c.key.db == self.db && c.key.resp3 == (self.proto == Protocol::Resp3);
        (same_client_state && c.is_ready() && !self.topo_rx.has_changed().unwrap_or(true))
            .then(|| c.clone())
    }

    /// A usable master connection: pooled (`dedicated == false`) or lent to this client.
    /// While no master is usable the request waits (bounded queue, failover timeout).
    async fn master_conn(&mut self, dedicated: bool) -> Result<Rc<BackendConn>, String> {
        if !dedicated {
            if let Some(c) = self.master_hint_ready() {
                return Ok(c);
            }
            self.master_hint = None;
        }
        let mut queued_at: Option<Instant> = None;
        let result = loop {
            if !dedicated {
                // Seen before the snapshot is read: a later change invalidates the hint.
                self.topo_rx.borrow_and_update();
            }
            let (problem, conn) = {
                let snap = self.ctx.shared.topo.load();
                match snap.usable_master() {
                    Some(m) => {
                        let c = if dedicated {
                            self.ctx.take_dedicated(m, self.proto, self.db)
                        } else {
                            self.ctx.conn(m, self.proto, self.db, self.id)
                        };
                        (String::new(), Some(c))
                    }
                    None => (snap.master_problem.clone(), None),
                }
            };
            let problem = match conn {
                Some(c) if c.is_ready() => break Ok(c),
                Some(c) => match c.ready().await {
                    Ok(()) => break Ok(c),
                    Err(e) => e.to_string(),
                },
                None => problem,
            };
            let cfg = self.ctx.shared.config.load();
            let timeout = Duration::from_millis(cfg.failover_queue_timeout_ms);
            let since = match queued_at {
                Some(t) => t,
                None => {
                    let n = self.ctx.shared.queued.fetch_add(1, Ordering::SeqCst);
                    if n >= cfg.failover_queue_max {
                        self.ctx.shared.queued.fetch_sub(1, Ordering::SeqCst);
                        self.metrics().error("queue_full");
                        return Err(format!(
                            "ERR proxy: no master available ({problem}) and the failover queue is full ({} requests)",
                            cfg.failover_queue_max
                        ));
                    }
                    let now = Instant::now();
                    queued_at = Some(now);
                    now
                }
            };
            let waited = since.elapsed();
            if waited >= timeout {
                break Err(format!(
                    "ERR proxy: no master available: {problem} (waited {} ms)",
                    waited.as_millis()
                ));
            }
            let left = timeout - waited;
            let _ = self.flush_out();
            let inbox = self.inbox.clone();
            tokio::select! {
                _ = self.topo_rx.changed() => {}
                _ = tokio::time::sleep(left.min(QUEUE_RECHECK)) => {}
                _ = inbox.notify.notified() => {}
            }
        };
        if queued_at.is_some() {
            self.ctx.shared.queued.fetch_sub(1, Ordering::SeqCst);
        }
        match &result {
            Ok(c) if !dedicated => self.master_hint = Some(c.clone()),
            Ok(_) => {}
            Err(_) => self.metrics().error("no_master"),
        }
        result
    }

    async fn send_master(&mut self, args: &Request<'_>, kind: Kind, spec_idx: Option<usize>) {
        self.send_master_as(args, kind, spec_idx, Route::Master)
            .await
    }

    async fn send_master_as(
        &mut self,
        args: &Request<'_>,
        kind: Kind,
        spec_idx: Option<usize>,
        route: Route,
    ) {
        match self.master_conn(false).await {
            Ok(c) => self.send_on_master(&c, args, kind, spec_idx, route),
            Err(e) => {
                self.metrics().command(spec_idx, Route::Refused);
                self.reply(err(e));
            }
        }
    }

    fn send_on_master(
        &mut self,
        c: &Rc<BackendConn>,
        args: &Request<'_>,
        kind: Kind,
        spec_idx: Option<usize>,
        route: Route,
    ) {
        self.metrics().command(spec_idx, route);
        if kind == Kind::Write {
            let concern = self.replicated_concern();
            self.write_on(c, args, concern, route);
        } else {
            let seq = self.inbox.alloc();
            c.send(args.wire(), self.pending(seq, kind, route));
        }
    }

    /// A read sent to a replica keeps its bytes, to be resent to the master if the replica
    /// fails before answering.
    fn send_replica(&mut self, c: &Rc<BackendConn>, args: &Request<'_>, spec_idx: Option<usize>) {
        self.metrics().command(spec_idx, Route::Replica);
        let seq = self.inbox.alloc();
        let mut pending = self.pending(seq, Kind::Plain, Route::Replica);
        pending.resend = Some(Bytes::copy_from_slice(args.wire()));
        c.send(args.wire(), pending);
    }

    /// Where this client's next read goes (read policy, lag, read-your-writes): a replica's
    /// address, or none for the master, with the reason.
    fn route_read(&mut self) -> ReadRoute {
        let cfg = self.config.load();
        let snap = self.topo.load();
        let ryw = self
            .inbox
            .resolve_ryw(cfg.read_your_writes, snap.poll_seq, snap.master_offset);
        let limits = LagLimits {
            max_lag_ms: cfg.max_lag_ms,
            max_lag_bytes: cfg.max_lag_bytes,
        };
        self.tiebreak = self.tiebreak.wrapping_add(1);
        let ctx = &self.ctx;
        let (proto, db) = (self.proto, self.db);
        let (target, kind) = router::route_read(
            cfg.read_policy,
            limits,
            ryw,
            &snap.replicas,
            |i| ctx.inflight_to(&snap.replica_addrs[i], proto, db),
            self.tiebreak,
        );
        match target {
            ReadTarget::Replica(i) => (kind, Some(snap.replica_addrs[i].clone())),
            ReadTarget::Master => (kind, None),
        }
    }

    /// The route label of a read the router sent to the master.
    fn master_read_route(&self, kind: RouteKind) -> Route {
        match kind {
            RouteKind::Master => Route::Master,
            RouteKind::Replica | RouteKind::Fallback => Route::Fallback,
            RouteKind::RywFallback => {
                self.metrics().ryw_fallback();
                Route::RywFallback
            }
        }
    }

    async fn read(
        &mut self,
        args: &Request<'_>,
        spec_idx: Option<usize>,
        routed: Option<ReadRoute>,
    ) {
        let (kind, addr) = match routed {
            Some(r) => r,
            None => self.route_read(),
        };
        if let Some(addr) = addr {
            let c = self.ctx.conn(&addr, self.proto, self.db, self.id);
            if c.is_ready() || c.ready().await.is_ok() {
                self.send_replica(&c, args, spec_idx);
                return;
            }
            self.send_master_as(args, Kind::Plain, spec_idx, Route::Fallback)
                .await;
            return;
        }
        let route = self.master_read_route(kind);
        self.send_master_as(args, Kind::Plain, spec_idx, route)
            .await;
    }

    async fn blocking(&mut self, args: &Request<'_>, spec_idx: Option<usize>) {
        if self.barrier().await.is_err() {
            self.closing = true;
            return;
        }
        match self.master_conn(true).await {
            Ok(c) => {
                self.metrics().command(spec_idx, Route::Pinned);
                self.write_on(&c, args, false, Route::Pinned);
                self.releasing.push(c);
                self.need_barrier = true;
            }
            Err(e) => {
                self.metrics().command(spec_idx, Route::Refused);
                self.reply(err(e));
            }
        }
    }

    async fn pin(&mut self) -> Result<Rc<BackendConn>, String> {
        self.barrier().await?;
        let c = self.master_conn(true).await?;
        self.pinned = Some(c.clone());
        Ok(c)
    }

    async fn session_cmd(
        &mut self,
        cmd: SessionCmd,
        args: &Request<'_>,
        spec_idx: Option<usize>,
    ) -> Flow {
        self.metrics().command(spec_idx, Route::Local);
        match cmd {
            SessionCmd::Ping => match args.len() {
                1 => self.reply(Reply::status("PONG")),
                2 => self.reply(Reply::Bulk(args.to_bytes(1))),
                _ => self.reply(wrong_arity("ping")),
            },
            SessionCmd::Echo => {
                if args.len() == 2 {
                    self.reply(Reply::Bulk(args.to_bytes(1)));
                } else {
                    self.reply(wrong_arity("echo"));
                }
            }
            SessionCmd::Quit => {
                self.reply(Reply::Ok);
                self.closing = true;
            }
            SessionCmd::Auth => self.auth(args),
            SessionCmd::Hello => self.hello(args),
            SessionCmd::Select => self.select(args).await,
            SessionCmd::Client => self.client_cmd(args).await,
            SessionCmd::Reset => self.reset(),
            SessionCmd::Multi => match self.pin().await {
                Ok(c) => {
                    let seq = self.inbox.alloc();
                    c.send(args.wire(), self.pending(seq, Kind::Plain, Route::Pinned));
                    self.in_multi = true;
                    self.multi_failed = false;
                }
                Err(e) => self.reply(err(e)),
            },
            SessionCmd::Watch => {
                if args.len() < 2 {
                    self.reply(wrong_arity("watch"));
                } else {
                    match self.pin().await {
                        Ok(c) => {
                            let seq = self.inbox.alloc();
                            c.send(args.wire(), self.pending(seq, Kind::Plain, Route::Pinned));
                        }
                        Err(e) => self.reply(err(e)),
                    }
                }
            }
            SessionCmd::Unwatch => self.reply(Reply::Ok),
            SessionCmd::Exec => self.reply(err("ERR EXEC without MULTI")),
            SessionCmd::Discard => self.reply(err("ERR DISCARD without MULTI")),
            SessionCmd::Subscribe => {
                if args.len() < 2 {
                    let name = String::from_utf8_lossy(&args[0]).to_lowercase();
                    self.reply(wrong_arity(&name));
                } else {
                    return Flow::Relay(args.clone().into_owned());
                }
            }
            SessionCmd::Wait => self.wait(args).await,
        }
        Flow::Continue
    }

    fn auth(&mut self, args: &Request<'_>) {
        let cfg = self.ctx.shared.config.load();
        let (user, pass) = match args.len() {
            2 => (None, &args[1]),
            3 => (Some(&args[1]), &args[2]),
            _ => {
                self.reply(err("ERR syntax error"));
                return;
            }
        };
        match cfg.password.as_deref().filter(|p| !p.is_empty()) {
            None if user.is_none() => self.reply(err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            )),
            None => {
                self.authed = true;
                self.reply(Reply::Ok);
            }
            Some(pw) => {
                let user_ok = user.is_none_or(|u| u == b"default");
                if user_ok && pass == pw.as_bytes() {
                    self.authed = true;
                    self.reply(Reply::Ok);
                } else {
                    self.metrics().error("auth");
                    tracing::info!(peer = %self.peer, "client AUTH failed");
                    self.reply(err(
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    ));
                }
            }
        }
    }

    fn hello(&mut self, args: &Request<'_>) {
        let mut proto = self.proto;
        let mut i = 1;
        if let Some(v) = args.get(1) {
            match std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(2) => proto = Protocol::Resp2,
                Some(3) => proto = Protocol::Resp3,
                Some(_) => {
                    self.reply(err("NOPROTO unsupported protocol version"));
                    return;
                }
                None => {
                    self.reply(err(
                        "ERR Protocol version is not an integer or out of range",
                    ));
                    return;
                }
            }
            i = 2;
        }
        let cfg = self.ctx.shared.config.load();
        let mut setname = None;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"AUTH") && i + 2 < args.len() {
                let pw = cfg.password.as_deref().filter(|p| !p.is_empty());
                let ok = &args[i + 1][..] == b"default"
                    && pw.is_none_or(|p| &args[i + 2][..] == p.as_bytes());
                if !ok {
                    self.metrics().error("auth");
                    self.reply(err(
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    ));
                    return;
                }
                self.authed = true;
                i += 3;
            } else if args[i].eq_ignore_ascii_case(b"SETNAME") && i + 1 < args.len() {
                setname = Some(args.to_bytes(i + 1));
                i += 2;
            } else {
                self.reply(err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                )));
                return;
            }
        }
        if !self.authed {
            self.reply(err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
            return;
        }
        if let Some(n) = setname {
            self.name = Some(n);
        }
        self.proto = proto;
        self.reply(Reply::Map(vec![
            (Reply::bulk_str("server"), Reply::bulk_str("redis")),
            (Reply::bulk_str("version"), Reply::bulk_str("7.0.15")),
            (Reply::bulk_str("proto"), Reply::Int(proto.version())),
            (Reply::bulk_str("id"), Reply::Int(self.id as i64)),
            (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
            (Reply::bulk_str("role"), Reply::bulk_str("master")),
            (Reply::bulk_str("modules"), Reply::Array(vec![])),
        ]));
    }

    /// SELECT is checked by the master (`SELECT n` then back to the current database on the
    /// same pooled connection), then this client's requests use the pools of database n.
    async fn select(&mut self, args: &Request<'_>) {
        if args.len() != 2 {
            self.reply(wrong_arity("select"));
            return;
        }
        let Some(n) = std::str::from_utf8(&args[1])
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        else {
            self.reply(err("ERR value is not an integer or out of range"));
            return;
        };
        if n < 0 || n > i32::MAX as i64 {
            self.reply(err("ERR DB index is out of range"));
            return;
        }
        if n as u32 == self.db {
            self.reply(Reply::Ok);
            return;
        }
        let c = match self.master_conn(false).await {
            Ok(c) => c,
            Err(e) => {
                self.reply(err(e));
                return;
            }
        };
        self.inbox.select_ok.set(None);
        let seq = self.inbox.alloc();
        c.send(
            args.wire(),
            self.pending(seq, Kind::SelectProbe, Route::Master),
        );
        let back = Request::from_args(&["SELECT", &self.db.to_string()]);
        c.send(back.wire(), self.pending(seq, Kind::Discard, Route::Master));
        if self.barrier().await.is_err() {
            self.closing = true;
            return;
        }
        if self.inbox.select_ok.get() == Some(true) {
            self.db = n as u32;
        }
    }

    async fn client_cmd(&mut self, args: &Request<'_>) {
        let sub = args
            .get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .unwrap_or_default();
        match sub.as_str() {
            "setname" if args.len() == 3 => {
                let n = &args[2];
                if n.iter().any(|&c| c <= b' ' || c > b'~') {
                    self.reply(err(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    ));
                } else {
                    self.name = if n.is_empty() {
                        None
                    } else {
                        Some(Bytes::copy_from_slice(n))
                    };
                    self.reply(Reply::Ok);
                }
            }
            "getname" if args.len() == 2 => self.reply(Reply::opt_bulk(self.name.clone())),
            "id" if args.len() == 2 => self.reply(Reply::Int(self.id as i64)),
            "setinfo" if args.len() == 4 => self.reply(Reply::Ok),
            "list" | "kill" | "pause" | "unpause" | "unblock" | "no-evict" | "no-touch" => {
                if self.ctx.shared.config.load().allow_admin {
                    self.send_master(args, Kind::Plain, None).await;
                } else {
                    self.reply(admin_refusal(args));
                }
            }
            "" => self.reply(wrong_arity("client")),
            _ => self.reply(err(format!(
                "ERR proxy: CLIENT {} is not supported through the proxy",
                sub.to_uppercase()
            ))),
        }
    }

    fn reset(&mut self) {
        if let Some(c) = self.pinned.take() {
            c.close();
        }
        self.in_multi = false;
        self.multi_failed = false;
        self.need_barrier = true;
        self.proto = Protocol::Resp2;
        self.db = 0;
        self.name = None;
        self.authed = self
            .ctx
            .shared
            .config
            .load()
            .password
            .as_deref()
            .is_none_or(str::is_empty);
        self.reply(Reply::status("RESET"));
    }

    /// WAIT numreplicas timeout, answered by the proxy from replication offsets: the number
    /// of replicas whose applied offset has reached this client's last write.
    async fn wait(&mut self, args: &Request<'_>) {
        if args.len() != 3 {
            self.reply(wrong_arity("wait"));
            return;
        }
        let num = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        };
        let (Some(n), Some(ms)) = (num(&args[1]), num(&args[2])) else {
            self.reply(err("ERR value is not an integer or out of range"));
            return;
        };
        if ms < 0 {
            self.reply(err("ERR timeout is negative"));
            return;
        }
        if self.barrier().await.is_err() {
            self.closing = true;
            return;
        }
        let deadline = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms as u64));
        loop {
            let count = {
                let snap = self.ctx.shared.topo.load();
                match self
                    .inbox
                    .resolve_ryw(true, snap.poll_seq, snap.master_offset)
                {
                    Ryw::MasterOnly => None,
                    Ryw::Free => Some(snap.replicas.iter().filter(|r| r.link_up).count()),
                    Ryw::MinOffset(o) => Some(
                        snap.replicas
                            .iter()
                            .filter(|r| r.link_up && r.offset >= o)
                            .count(),
                    ),
                }
            };
            if count.is_some_and(|c| c as i64 >= n) {
                self.reply(Reply::Int(count.unwrap_or(0) as i64));
                return;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.reply(Reply::Int(count.unwrap_or(0) as i64));
                return;
            }
            let sleep = match deadline {
                Some(d) => tokio::time::sleep_until(d.into()),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                _ = self.topo_rx.changed() => {}
                _ = sleep => {}
            }
        }
    }

    /// Pub/sub: a dedicated master connection relayed byte for byte in both directions. The
    /// backend's output is read eagerly; if the client does not keep up and its unsent
    /// output passes the limit, it is disconnected (memory stays bounded).
    async fn relay(&mut self, first: Request<'static>) -> Result<(), String> {
        self.barrier().await?;
        // Send everything that is ready before the relay starts.
        while self.inbox.out_len() > 0 {
            self.flush_out()?;
            if self.inbox.out_len() > 0 {
                self.stream.writable().await.map_err(|e| e.to_string())?;
            }
        }
        let c = match self.master_conn(false).await {
            Ok(c) => c,
            Err(e) => {
                let mut b = BytesMut::new();
                err(e).encode(self.proto, &mut b);
                let _ = self.stream.write_all(&b).await;
                return Err("no master for SUBSCRIBE".into());
            }
        };
        let addr = c.key.addr.clone();
        let cfg = self.ctx.shared.config.load_full();
        let backend = crate::pool::connect(
            &addr,
            self.proto,
            self.db,
            cfg.backend_password.as_deref(),
            Duration::from_millis(cfg.connect_timeout_ms.max(1)),
        )
        .await;
        let mut backend = match backend {
            Ok(b) => b,
            Err(e) => {
                let mut b = BytesMut::new();
                err(format!("ERR proxy: cannot reach master {addr}: {e}"))
                    .encode(self.proto, &mut b);
                let _ = self.stream.write_all(&b).await;
                return Err(e);
            }
        };
        self.metrics().command(
            tandem_protocol::command::lookup(&first[0]).map(|s| s.cmd as usize),
            Route::Pinned,
        );
        tracing::debug!(peer = %self.peer, backend = %addr, "client entered pub/sub: relaying");
        let limit = cfg.client_output_buffer_limit.0 as usize;
        let mut to_backend = BytesMut::new();
        to_backend.extend_from_slice(first.wire());
        to_backend.extend_from_slice(&self.inbuf.split());
        let mut out = BytesMut::with_capacity(16 * 1024);
        let mut from_client = BytesMut::with_capacity(16 * 1024);
        loop {
            if !to_backend.is_empty() {
                backend
                    .write_all(&to_backend)
                    .await
                    .map_err(|e| format!("backend write failed: {e}"))?;
                to_backend.clear();
            }
            while !out.is_empty() {
                match self.stream.try_write(&out) {
                    Ok(n) => out.advance(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("write failed: {e}")),
                }
            }
            if limit > 0 && out.len() > limit {
                self.metrics().error("client_output_limit");
                return Err(format!(
                    "slow subscriber: output buffer limit reached ({} bytes unsent, limit {limit})",
                    out.len()
                ));
            }
            let client_interest = if out.is_empty() {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            tokio::select! {
                r = self.stream.ready(client_interest) => {
                    let r = r.map_err(|e| e.to_string())?;
                    if r.is_readable() {
                        from_client.reserve(16 * 1024);
                        match self.stream.try_read_buf(&mut from_client) {
                            Ok(0) => return Ok(()),
                            Ok(_) => to_backend.extend_from_slice(&from_client.split()),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(format!("read failed: {e}")),
                        }
                    }
                }
                r = backend.read_buf(&mut out) => {
                    match r {
                        Ok(0) => {
                            // The master closed (QUIT, or it died): send what is left.
                            let _ = self.stream.write_all(&out).await;
                            return Ok(());
                        }
                        Ok(_) => {
                            if out.capacity() - out.len() < 4096 {
                                out.reserve(16 * 1024);
                            }
                        }
                        Err(e) => return Err(format!("backend read failed: {e}")),
                    }
                }
            }
        }
    }
}

fn admin_refusal(args: &Request<'_>) -> Reply {
    let mut name = String::from_utf8_lossy(&args[0]).to_uppercase();
    if let Some(sub) = args.get(1) {
        if args[0].eq_ignore_ascii_case(b"config")
            || args[0].eq_ignore_ascii_case(b"client")
            || args[0].eq_ignore_ascii_case(b"slowlog")
            || args[0].eq_ignore_ascii_case(b"latency")
        {
            name.push(' ');
            name.push_str(&String::from_utf8_lossy(sub).to_uppercase());
        }
    }
    err(format!(
        "ERR proxy: '{name}' is an administrative command and is not allowed through the proxy (set allow-admin = true in the proxy config to permit it)"
    ))
}

//! One client connection. The session reads bytes, decodes requests (pipelined), enforces
//! auth, arity and pub/sub context rules, queues MULTI transactions, and runs commands under
//! a [`Ctx`] holding exactly the shards they touch. Replies are written in request order and
//! flushed once per batch. A protocol error closes this connection only.

use bytes::{Bytes, BytesMut};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
// Command timing (commandstats, the per-batch clock) reads the TSC through quanta: a
// clock_gettime per command cost ~4% of a pipelined GET.
use quanta::Instant;
use tandem_protocol::command::{self, Cmd, CommandSpec, Flags};
use tandem_protocol::frame::{RequestDecoder, RequestLimits};
use tandem_protocol::{Protocol, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use crate::clients::{ClientInfo, ClientKind};
use crate::cmd::{self, args, Ctx};
use crate::latency::HIST_BUCKETS;
use crate::pubsub::{Message, SUBSCRIBER_QUEUE};
use crate::server::Server;

/// Flush the output buffer once it grows past this, even mid-batch.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Stream bytes a batch writes before they are pushed to the replicas mid-batch (Redis's
/// 16 KiB I/O chunk).
const PUSH_EARLY: u64 = 16 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// A MULTI block being queued.
struct Multi {
    queued: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// A command failed to queue: EXEC must abort.
    failed: bool,
}

/// What the read loop should do after a command.
#[derive(PartialEq, Eq)]
enum After {
    Continue,
    /// Flush what was written, then close (QUIT, kill).
    Close,
}

pub struct Session {
    srv: Arc<Server>,
    client: Arc<ClientInfo>,
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: RequestDecoder,
    proto: Protocol,
    db: usize,
    authenticated: bool,
    multi: Option<Multi>,
    watch_flag: Arc<AtomicBool>,
    watched: Vec<(usize, Bytes)>,
    sub_tx: mpsc::Sender<Message>,
    sub_rx: mpsc::Receiver<Message>,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    tally: Tally,
    /// Wall clock of the current batch, and the end time of the last command.
    clock: Clock,
    mark: Instant,
    /// When the session started (TSC clock): `last_interaction_ms` counts from here, which is
    /// the client's `created` to within the session's set-up.
    started: Instant,
    /// `master_repl_offset` after this client's last propagated write (what WAIT waits for).
    woff: u64,
    /// The stream's offset when this session last pushed it to the replicas.
    pushed_off: u64,
    /// What the peer said with REPLCONF (listening port, capabilities) before PSYNC.
    replconf: crate::replication::master::ReplicaConf,
    /// The AOF stream position after this client's last write: its replies wait until the
    /// AOF is written (fsynced, with `appendfsync always`) that far.
    aof_mark: u64,
    /// CLIENT REPLY state; `mute` is true while replies are dropped (OFF, or the command
    /// after SKIP). Pub/sub pushes are always sent, as in Redis.
    reply_mode: ReplyMode,
    mute: bool,
    /// Largest unprocessed query buffer since the last resize check (Redis's
    /// `querybuf_peak`).
    qpeak: usize,
}

/// CLIENT REPLY ON | OFF | SKIP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    /// CLIENT REPLY SKIP just ran: the next command's reply is dropped.
    SkipNext,
    /// This command's reply is dropped.
    Skip,
}

/// Counters of the commands run since the last fold into the server's stats; folding once
/// per batch keeps shared atomics off the per-command path.
#[derive(Default)]
struct Tally {
    commands: u64,
    hits: u64,
    misses: u64,
    dirty: u64,
    /// (command index, calls, usec, failed calls, LATENCY HISTOGRAM bucket counts)
    #[allow(clippy::type_complexity)]
    per_cmd: smallvec::SmallVec<[(u16, u64, u64, u64, [u32; HIST_BUCKETS]); 8]>,
}

impl Tally {
    fn command(&mut self, cmd: u16, usec: u64, failed: bool, hits: u64, misses: u64, dirty: u64) {
        self.commands += 1;
        self.hits += hits;
        self.misses += misses;
        self.dirty += dirty;
        let bucket = crate::latency::hist_bucket(usec);
        match self.per_cmd.iter_mut().find(|e| e.0 == cmd) {
            Some(e) => {
                e.1 += 1;
                e.2 += usec;
                e.3 += failed as u64;
                e.4[bucket] = e.4[bucket].saturating_add(1);
            }
            None => {
                let mut hist = [0; HIST_BUCKETS];
                hist[bucket] = 1;
                self.per_cmd.push((cmd, 1, usec, failed as u64, hist));
            }
        }
    }

    fn fold(&mut self, srv: &Server) {
        if self.commands == 0 {
            return;
        }
        let st = &srv.stats;
        st.total_commands_processed
            .fetch_add(self.commands, Ordering::Relaxed);
        if self.hits > 0 {
            st.keyspace_hits.fetch_add(self.hits, Ordering::Relaxed);
        }
        if self.misses > 0 {
            st.keyspace_misses.fetch_add(self.misses, Ordering::Relaxed);
        }
        if self.dirty > 0 {
            srv.dirty.fetch_add(self.dirty, Ordering::Relaxed);
        }
        for (cmd, calls, usec, failed, hist) in self.per_cmd.drain(..) {
            let c = &st.commands[cmd as usize];
            for (slot, n) in c.hist.counts.iter().zip(hist) {
                if n > 0 {
                    slot.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            c.calls.fetch_add(calls, Ordering::Relaxed);
            c.usec.fetch_add(usec, Ordering::Relaxed);
            if failed > 0 {
                c.failed_calls.fetch_add(failed, Ordering::Relaxed);
            }
        }
        // per_cmd was drained above; resetting field by field avoids rewriting its inline
        // storage every batch.
        self.commands = 0;
        self.hits = 0;
        self.misses = 0;
        self.dirty = 0;
    }
}

/// Serves one connection until it closes.
pub async fn serve(srv: Arc<Server>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let laddr = stream.local_addr().unwrap_or(peer);
    let client = srv.clients.register(peer, laddr);
    let cfg = srv.config.load();
    let limits = RequestLimits {
        max_bulk_len: cfg.proto_max_bulk_len.0,
        ..RequestLimits::default()
    };
    let authenticated = cfg.requirepass.as_deref().is_none_or(str::is_empty);
    drop(cfg);
    let (sub_tx, sub_rx) = mpsc::channel(SUBSCRIBER_QUEUE);
    let shutdown = srv.shutdown_signal();
    let mut s = Session {
        srv: srv.clone(),
        client: client.clone(),
        stream,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        decoder: RequestDecoder::new(limits),
        proto: Protocol::Resp2,
        db: 0,
        authenticated,
        multi: None,
        watch_flag: Arc::new(AtomicBool::new(false)),
        woff: 0,
        pushed_off: 0,
        replconf: Default::default(),
        aof_mark: 0,
        watched: Vec::new(),
        sub_tx,
        sub_rx,
        channels: HashSet::new(),
        patterns: HashSet::new(),
        shutdown,
        tally: Tally::default(),
        clock: Clock::new(),
        mark: Instant::now(),
        started: Instant::now(),
        reply_mode: ReplyMode::On,
        mute: false,
        qpeak: 0,
    };
    tracing::debug!(client = client.id, %peer, "client connected");
    let reason = s.run().await;
    s.tally.fold(&srv);
    s.cleanup();
    srv.clients.unregister(client.id);
    tracing::debug!(client = client.id, %peer, reason, "client disconnected");
}

impl Session {
    async fn run(&mut self) -> &'static str {
        // Kill, shutdown and buffer-resize requests are awaited by futures that live as long
        // as the session, not made once per read (each would register with its notifier and
        // deregister again: measurable on unpipelined commands).
        let client = self.client.clone();
        let killed = client.killed();
        tokio::pin!(killed);
        let mut shutdown_rx = self.shutdown.clone();
        let shutdown = shutdown_rx.changed();
        tokio::pin!(shutdown);
        // The cron's request to shrink an idle query buffer (made again after each one).
        let resize = client.resize_query_buf.notified();
        tokio::pin!(resize);
        loop {
            // Run every complete request already buffered (pipelining), in order. The bytes
            // consumed are counted per request: a blocked command (BLPOP, WAIT) reads more
            // into the buffer while it waits, so the buffer's length is no measure of them.
            let mut turn_bytes = 0;
            loop {
                if self.client.is_killed() {
                    let _ = self.flush().await;
                    return "killed";
                }
                let buffered = self.rbuf.len();
                match self.decoder.decode(&mut self.rbuf) {
                    Ok(Some(args)) => {
                        turn_bytes += buffered - self.rbuf.len();
                        if args.is_empty() {
                            continue;
                        }
                        if self.handle(args).await == After::Close {
                            let _ = self.flush().await;
                            return "closed by command";
                        }
                        if self.reply_mode != ReplyMode::On {
                            self.next_reply_mode();
                        }
                        if self.wbuf.len() >= FLUSH_THRESHOLD && self.flush().await.is_err() {
                            return "write error";
                        }
                        if self.woff >= self.pushed_off + PUSH_EARLY {
                            // A long batch of writes: the replicas start on its first part
                            // while this thread runs the rest.
                            self.push_stream();
                        }
                        if turn_bytes >= READ_CHUNK && !self.rbuf.is_empty() {
                            // A long pipeline (or a bulk load): after 16 KiB of it, the
                            // thread's other clients get their turn, as Redis serves one
                            // 16 KiB read per client per event-loop turn. Otherwise a lone
                            // command waits for the whole pipeline.
                            if self.flush().await.is_err() {
                                return "write error";
                            }
                            tokio::task::yield_now().await;
                            turn_bytes = 0;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(client = self.client.id, peer = %self.client.addr, reason = %e, "closing client: protocol error");
                        self.reply(Reply::error(format!("ERR {e}")));
                        let _ = self.flush().await;
                        return "protocol error";
                    }
                }
            }
            self.tally.fold(&self.srv);
            // The end of the batch's last command, on the TSC clock (no system call).
            self.touch(self.mark);
            // (Also with no replies, as a muted client's: the stream may have grown.)
            if self.flush().await.is_err() {
                return "write error";
            }
            let limit = self.srv.config.load().client_query_buffer_limit.0 as usize;
            if self.rbuf.len() > limit {
                tracing::warn!(client = self.client.id, peer = %self.client.addr, len = self.rbuf.len(), "closing client that reached max query buffer length");
                return "query buffer limit";
            }
            // A buffer released while idle (capacity 0) is re-grown by the next read.
            let cap = self.rbuf.capacity();
            if self.rbuf.is_empty() && cap != 0 && cap < READ_CHUNK {
                // Everything was consumed: reuse the allocation from its start.
                let _ = self.rbuf.try_reclaim(READ_CHUNK);
            }
            if cap != 0 && self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
                self.rbuf.reserve(READ_CHUNK);
            }
            self.publish_query_buf();
            let subscribed = !self.channels.is_empty() || !self.patterns.is_empty();
            tokio::select! {
                r = self.stream.read_buf(&mut self.rbuf) => match r {
                    Ok(0) => return "connection closed by client",
                    Ok(n) => {
                        self.qpeak = self.qpeak.max(self.rbuf.len());
                        self.srv.stats.total_net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        self.clock = Clock::new();
                        self.mark = self.clock.base;
                        // The client's last interaction is its last read, as in Redis.
                        self.touch(self.mark);
                    }
                    Err(_) => return "read error",
                },
                Some(m) = self.sub_rx.recv(), if subscribed => {
                    self.push_message(m);
                    while let Ok(m) = self.sub_rx.try_recv() {
                        self.push_message(m);
                        if self.wbuf.len() >= FLUSH_THRESHOLD { break; }
                    }
                }
                _ = &mut killed => {
                    let _ = self.flush().await;
                    return "killed";
                }
                _ = &mut resize => {
                    resize.set(client.resize_query_buf.notified());
                    self.resize_query_buf();
                }
                _ = &mut shutdown => return "server shutdown",
            }
        }
    }

    /// Records `at` as the client's last interaction (CLIENT LIST `idle`, `timeout`).
    fn touch(&self, at: Instant) {
        let since = at.saturating_duration_since(self.started).as_millis() as u64;
        self.client
            .last_interaction_ms
            .store(since, Ordering::Relaxed);
    }

    fn cleanup(&mut self) {
        self.unwatch_all();
        for c in std::mem::take(&mut self.channels) {
            self.srv.pubsub.unsubscribe(self.client.id, &c);
        }
        for p in std::mem::take(&mut self.patterns) {
            self.srv.pubsub.punsubscribe(self.client.id, &p);
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        // As Redis (replicas first in beforeSleep's write pass): the stream this batch wrote
        // goes to the replicas before the client reads its reply, so a replica is never
        // further behind than the client's own view (unless its socket is full).
        self.push_stream();
        if self.wbuf.is_empty() {
            return Ok(());
        }
        if self.aof_mark > self.srv.aof.acked() {
            // Group commit: one AOF write (and fsync) covers every session waiting here.
            self.srv.aof.wait_acked(self.aof_mark).await;
        }
        let n = self.wbuf.len();
        // A killed client (CLIENT KILL, slow subscriber) may never read: never wait on it.
        let r = if self.client.is_killed() {
            self.stream.try_write(&self.wbuf).map(|_| ())
        } else {
            // The usual case: the socket takes everything at once, without a wait.
            match self.stream.try_write(&self.wbuf) {
                Ok(w) if w == n => Ok(()),
                Ok(w) => self.write_rest(w).await,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.write_rest(0).await,
                Err(e) => Err(e),
            }
        };
        self.wbuf.clear();
        self.srv
            .stats
            .total_net_output_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        r
    }

    /// Sends the replicas the stream that grew since this session last did, its own writes
    /// and any a command of its caused (eviction, WAIT's GETACK); see
    /// [`crate::replication::master::Registry::push`].
    fn push_stream(&mut self) {
        let off = self.srv.feed.offset();
        if off != self.pushed_off {
            self.pushed_off = off;
            self.srv.repl.replicas.push(&self.srv);
        }
    }

    /// Writes `wbuf[from..]`, waiting for the socket, unless the client is killed meanwhile.
    async fn write_rest(&mut self, from: usize) -> std::io::Result<()> {
        tokio::select! {
            r = self.stream.write_all(&self.wbuf[from..]) => r,
            _ = self.client.killed() => Err(std::io::Error::other("client killed")),
        }
    }

    fn reply(&mut self, r: Reply) {
        if let Reply::Error(e) = &r {
            self.srv.stats.error_reply(e);
        }
        if self.mute && !matches!(r, Reply::Push(_)) {
            return;
        }
        r.encode(self.proto, &mut self.wbuf);
    }

    /// CLIENT REPLY ON | OFF | SKIP (Redis's semantics: OFF and SKIP reply nothing; SKIP
    /// while OFF changes nothing; ON clears both and replies OK).
    fn client_reply(&mut self, mode: &[u8]) {
        if args::is(mode, "on") {
            self.reply_mode = ReplyMode::On;
            self.mute = false;
            self.reply(Reply::Ok);
        } else if args::is(mode, "off") {
            self.reply_mode = ReplyMode::Off;
            self.mute = true;
        } else if args::is(mode, "skip") {
            if self.reply_mode != ReplyMode::Off {
                self.reply_mode = ReplyMode::SkipNext;
            }
        } else {
            self.reply(args::syntax_error());
        }
    }

    /// After a command while CLIENT REPLY is not ON: SKIP mutes exactly the next command.
    fn next_reply_mode(&mut self) {
        (self.reply_mode, self.mute) = match self.reply_mode {
            ReplyMode::SkipNext => (ReplyMode::Skip, true),
            ReplyMode::Skip | ReplyMode::On => (ReplyMode::On, false),
            ReplyMode::Off => (ReplyMode::Off, true),
        };
    }

    /// Makes the query buffer's size visible to CLIENT LIST (`qbuf`, `qbuf-free`).
    fn publish_query_buf(&self) {
        let len = self.rbuf.len();
        self.client.query_buf.store(len, Ordering::Relaxed);
        self.client
            .query_buf_free
            .store(self.rbuf.capacity() - len, Ordering::Relaxed);
    }

    /// Redis's `clientsCronResizeQueryBuffer`, asked for by the cron: a buffer idle for more
    /// than 2 s gives its free space back; a big buffer whose recent peak used under half
    /// of it shrinks to that peak. The peak then restarts.
    fn resize_query_buf(&mut self) {
        let len = self.rbuf.len();
        let cap = self.rbuf.capacity();
        if cap - len > crate::clients::QUERY_BUF_MIN_WASTE {
            let keep = if self.client.idle_secs() > 2 {
                // An idle client keeps no buffer at all until it sends again.
                (len == 0).then_some(0)
            } else if cap > crate::clients::QUERY_BUF_RESIZE_THRESHOLD && cap / 2 > self.qpeak {
                Some(len.max(self.qpeak))
            } else {
                None
            };
            if let Some(keep) = keep {
                let mut buf = if keep == 0 {
                    BytesMut::new()
                } else {
                    BytesMut::with_capacity(keep)
                };
                buf.extend_from_slice(&self.rbuf);
                self.rbuf = buf;
                tracing::trace!(
                    client = self.client.id,
                    from = cap,
                    to = keep,
                    "query buffer resized"
                );
            }
        }
        self.qpeak = self.rbuf.len();
        self.publish_query_buf();
    }

    fn push_message(&mut self, m: Message) {
        self.client
            .output_buf
            .fetch_sub(m.size(), Ordering::Relaxed);
        let r = match m {
            Message::Message { channel, payload } => Reply::Push(vec![
                Reply::bulk_str("message"),
                Reply::Bulk(channel),
                Reply::Bulk(payload),
            ]),
            Message::PMessage {
                pattern,
                channel,
                payload,
            } => Reply::Push(vec![
                Reply::bulk_str("pmessage"),
                Reply::Bulk(pattern),
                Reply::Bulk(channel),
                Reply::Bulk(payload),
            ]),
        };
        r.encode(self.proto, &mut self.wbuf);
    }

    // ------------------------------------------------------------------ one request

    async fn handle(&mut self, args: Vec<Bytes>) -> After {
        let Some(spec) = command::lookup(&args[0]) else {
            let msg = unknown_command(&args);
            self.queue_failed();
            self.reply(Reply::error(msg));
            return After::Continue;
        };
        self.client
            .last_cmd
            .store(spec.cmd as u16 + 1, Ordering::Relaxed);
        if !spec.arity_ok(args.len()) {
            self.queue_failed();
            self.reject(spec, args::wrong_arity(spec.name));
            return After::Continue;
        }
        if !self.authenticated && !spec.has(Flags::NO_AUTH) {
            self.queue_failed();
            self.reject(spec, Reply::error(NOAUTH));
            return After::Continue;
        }
        // RESP2 clients in subscribed mode may only (un)subscribe, ping, quit and reset.
        if self.proto == Protocol::Resp2
            && (!self.channels.is_empty() || !self.patterns.is_empty())
            && !matches!(
                spec.cmd,
                Cmd::Subscribe
                    | Cmd::Unsubscribe
                    | Cmd::PSubscribe
                    | Cmd::PUnsubscribe
                    | Cmd::Ping
                    | Cmd::Quit
                    | Cmd::Reset
            )
        {
            self.reject(
                spec,
                Reply::error(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    spec.name
                )),
            );
            return After::Continue;
        }
        // Replication's checks (FAILOVER's write pause, READONLY, MASTERDOWN, NOREPLICAS)
        // and CLIENT PAUSE: one load when off.
        if self.srv.repl.guards_on() {
            if self.srv.pause.active() && self.wait_client_pause(spec).await {
                return After::Close;
            }
            let paused = match self.multi.as_ref() {
                Some(m) if spec.cmd == Cmd::Exec => crate::replication::failover::pauses(
                    &self.srv,
                    spec,
                    Some(&mut m.queued.iter().map(|(s, _)| *s)),
                ),
                _ => crate::replication::failover::pauses(&self.srv, spec, None),
            };
            if paused {
                if self.flush().await.is_err() {
                    return After::Close;
                }
                crate::replication::failover::wait_unpaused(&self.srv, &self.client).await;
                self.mark = Instant::now();
            }
            let err = match self.multi.as_ref() {
                Some(m) if spec.cmd == Cmd::Exec => crate::replication::check_command(
                    &self.srv,
                    spec,
                    Some(&mut m.queued.iter().map(|(s, _)| *s)),
                ),
                _ => crate::replication::check_command(&self.srv, spec, None),
            };
            if let Some(err) = err {
                self.queue_failed();
                if spec.cmd == Cmd::Exec {
                    self.multi = None;
                    self.client.in_multi.store(false, Ordering::Relaxed);
                    self.unwatch_all();
                }
                self.reject(spec, err);
                return After::Continue;
            }
        }
        if self.multi.is_some()
            && !matches!(
                spec.cmd,
                Cmd::Exec | Cmd::Discard | Cmd::Multi | Cmd::Watch | Cmd::Quit | Cmd::Reset
            )
        {
            if spec.has(Flags::NO_MULTI) {
                self.queue_failed();
                self.reject(
                    spec,
                    Reply::error("ERR Command not allowed inside a transaction"),
                );
                return After::Continue;
            }
            // As Redis: a command that may grow memory is refused at queue time when over
            // maxmemory, and the transaction is then aborted at EXEC.
            if spec.has(Flags::DENYOOM) {
                if let Err(oom) = crate::db::evict::make_room(&self.srv) {
                    self.queue_failed();
                    self.reject(spec, oom);
                    return After::Continue;
                }
            }
            if let Some(m) = self.multi.as_mut() {
                m.queued.push((spec, args));
            }
            self.reply(Reply::status("QUEUED"));
            return After::Continue;
        }
        self.dispatch(spec, args).await
    }

    /// Waits while CLIENT PAUSE holds this command back. True if the client went away.
    async fn wait_client_pause(&mut self, spec: &'static CommandSpec) -> bool {
        let srv = self.srv.clone();
        let client = self.client.clone();
        if !pause_blocks(&srv, &client, spec, self.multi.as_ref()) {
            return false;
        }
        if self.flush().await.is_err() {
            return true;
        }
        let multi = &self.multi;
        srv.pause
            .wait(&srv, &client, || {
                pause_blocks(&srv, &client, spec, multi.as_ref())
            })
            .await;
        // The command's own time starts now, not before the wait.
        self.mark = Instant::now();
        client.is_killed()
    }

    /// Counts a rejected call and replies with its error.
    fn reject(&mut self, spec: &CommandSpec, r: Reply) {
        self.srv.stats.commands[spec.cmd as usize]
            .rejected_calls
            .fetch_add(1, Ordering::Relaxed);
        self.reply(r);
    }

    /// Inside MULTI, a command that fails to queue makes EXEC abort.
    fn queue_failed(&mut self) {
        if let Some(m) = self.multi.as_mut() {
            m.failed = true;
        }
    }

    async fn dispatch(&mut self, spec: &'static CommandSpec, args: Vec<Bytes>) -> After {
        match spec.cmd {
            Cmd::Multi => {
                if self.multi.is_some() {
                    self.reply(Reply::error("ERR MULTI calls can not be nested"));
                } else {
                    self.multi = Some(Multi {
                        queued: Vec::new(),
                        failed: false,
                    });
                    self.client.in_multi.store(true, Ordering::Relaxed);
                    self.reply(Reply::Ok);
                }
            }
            Cmd::Exec => self.exec(),
            Cmd::Discard => {
                if self.multi.take().is_some() {
                    self.client.in_multi.store(false, Ordering::Relaxed);
                    self.unwatch_all();
                    self.reply(Reply::Ok);
                } else {
                    self.reply(Reply::error("ERR DISCARD without MULTI"));
                }
            }
            Cmd::Watch => {
                if self.multi.is_some() {
                    self.reply(Reply::error("ERR WATCH inside MULTI is not allowed"));
                } else {
                    for key in &args[1..] {
                        if self.watched.iter().any(|(d, k)| *d == self.db && k == key) {
                            continue;
                        }
                        self.srv.keyspace.lock_key(key).watch(
                            self.db,
                            key,
                            self.watch_flag.clone(),
                        );
                        self.watched.push((self.db, key.clone()));
                    }
                    self.reply(Reply::Ok);
                }
            }
            Cmd::Unwatch => {
                self.unwatch_all();
                self.reply(Reply::Ok);
            }
            Cmd::Auth => self.auth(&args),
            Cmd::Hello => self.hello(&args),
            Cmd::Quit => {
                self.reply(Reply::Ok);
                return After::Close;
            }
            Cmd::Reset => self.reset(),
            Cmd::Subscribe | Cmd::PSubscribe => self.subscribe(spec.cmd, &args),
            Cmd::Unsubscribe | Cmd::PUnsubscribe => self.unsubscribe(spec.cmd, &args),
            Cmd::Shutdown => {
                tracing::warn!(client = self.client.id, peer = %self.client.addr, "SHUTDOWN requested by client");
                if let Err(e) = crate::persistence::shutdown_command(&self.srv, &args) {
                    self.reply(e);
                    return After::Continue;
                }
                self.srv.request_shutdown();
                return After::Close;
            }
            Cmd::ReplicaOf | Cmd::SlaveOf => {
                let r = self.replicaof(&args);
                self.reply(r);
            }
            Cmd::Failover => {
                let r = crate::replication::failover::command(&self.srv, &args);
                self.reply(r);
            }
            Cmd::ReplConf => {
                if let Some(r) =
                    crate::replication::master::replconf(&self.srv, &mut self.replconf, &args)
                {
                    self.reply(r);
                }
            }
            Cmd::PSync | Cmd::Sync => {
                // A replica sending PSYNC again is ignored, as in Redis.
                if self.client.kind() == ClientKind::Replica {
                    return After::Continue;
                }
                if self.flush().await.is_err() {
                    return After::Close;
                }
                let srv = self.srv.clone();
                let client = self.client.clone();
                match crate::replication::master::sync_command(
                    &srv,
                    &client,
                    &mut self.stream,
                    &mut self.rbuf,
                    &self.replconf,
                    &args,
                )
                .await
                {
                    crate::replication::master::Outcome::Reply(r) => self.reply(r),
                    crate::replication::master::Outcome::Closed(_) => return After::Close,
                }
            }
            Cmd::Monitor => {
                self.reply(Reply::error("ERR MONITOR is not supported by tandem"));
            }
            Cmd::BLPop | Cmd::BRPop | Cmd::BLMove | Cmd::BRPopLPush => {
                return self.blocking(spec, args).await;
            }
            Cmd::Wait => return self.wait(spec, args).await,
            Cmd::Client if args.len() == 3 && args::is(&args[1], "reply") => {
                self.client_reply(&args[2]);
            }
            Cmd::Debug if args.len() == 3 && args::is(&args[1], "sleep") => {
                match args::float(&args[2]) {
                    Ok(secs) if secs >= 0.0 => {
                        self.push_stream();
                        let start = Instant::now();
                        tokio::time::sleep(Duration::from_secs_f64(secs.min(1e6))).await;
                        self.mark = Instant::now();
                        let usec = self.mark.duration_since(start).as_micros() as u64;
                        self.tally.command(spec.cmd as u16, usec, false, 0, 0, 0);
                        if usec >= self.srv.slowlog.gate() {
                            crate::slowlog::command_ran(
                                &self.srv,
                                Some(&self.client),
                                spec,
                                &args,
                                usec,
                            );
                        }
                        self.reply(Reply::Ok);
                        return After::Continue;
                    }
                    Ok(_) | Err(_) => self.reply(Reply::error(args::ERR_NOT_FLOAT)),
                }
            }
            _ => {
                let r = self.run_command(spec, &args);
                self.reply(r);
                return After::Continue;
            }
        }
        // The commands the session runs itself (MULTI, EXEC, AUTH, SUBSCRIBE...): timed from
        // the previous command's end, for the slow log and the latency monitor, as Redis
        // times every command it calls.
        let gate = self.srv.slowlog.gate();
        if gate != u64::MAX {
            let end = Instant::now();
            let usec = end.saturating_duration_since(self.mark).as_micros() as u64;
            self.mark = end;
            if usec >= gate {
                crate::slowlog::command_ran(&self.srv, Some(&self.client), spec, &args, usec);
            }
        }
        After::Continue
    }

    /// Runs a command through [`cmd::execute`]: eviction first (with no shard locked), then
    /// the command under the locks of its keys, then the bookkeeping.
    fn run_command(&mut self, spec: &'static CommandSpec, args: &[Bytes]) -> Reply {
        if spec.has(Flags::DENYOOM) {
            if let Err(oom) = crate::db::evict::make_room(&self.srv) {
                self.srv.stats.commands[spec.cmd as usize]
                    .rejected_calls
                    .fetch_add(1, Ordering::Relaxed);
                return oom;
            }
        }
        if matches!(spec.cmd, Cmd::Info | Cmd::Latency) {
            self.tally.fold(&self.srv);
        }
        let start = self.mark;
        let now_ms = self.clock.now_ms(start);
        let srv: &Server = &self.srv;
        let mut ctx = if spec.has(Flags::KEYSPACE) {
            Ctx::all(srv, self.db, now_ms)
        } else {
            Ctx::for_keys(
                srv,
                spec.key_indices(args.len()).map(|i| &args[i][..]),
                self.db,
                now_ms,
            )
        };
        ctx.proto = self.proto;
        ctx.client = Some(&self.client);
        let reply = cmd::execute(&mut ctx, spec, args);
        let db = ctx.db;
        self.mark = finish(&mut self.tally, &ctx, spec, args, start, &reply);
        if srv.feed.is_active() {
            let changed = ctx.dirty > 0;
            // Still under the keys' locks: the stream keeps execution order.
            if ctx.expired_dels.is_empty() && ctx.propagate.is_empty() {
                // The usual write: the command itself, appended without copying its
                // arguments into an effect list first.
                if changed {
                    self.woff = srv.feed.append(&[(self.db, args)]);
                    self.aof_mark = srv.feed.aof_tail();
                }
            } else {
                let mut effects = Vec::new();
                let expired =
                    crate::propagate::collect(&mut ctx, self.db, args, changed, &mut effects);
                if !effects.is_empty() {
                    self.woff = srv.feed.append_command(&effects, expired);
                    self.aof_mark = srv.feed.aof_tail();
                }
            }
        }
        drop(ctx);
        self.set_db(db);
        reply
    }

    fn set_db(&mut self, db: usize) {
        if db != self.db {
            self.db = db;
            self.client.db.store(db, Ordering::Relaxed);
        }
    }

    // ------------------------------------------------------------------ transactions

    fn exec(&mut self) {
        let Some(multi) = self.multi.take() else {
            self.reply(Reply::error("ERR EXEC without MULTI"));
            return;
        };
        self.client.in_multi.store(false, Ordering::Relaxed);
        if multi.failed {
            self.unwatch_all();
            self.reply(Reply::error(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
            return;
        }
        if multi.queued.iter().any(|(s, _)| s.has(Flags::DENYOOM)) {
            if let Err(oom) = crate::db::evict::make_room(&self.srv) {
                self.unwatch_all();
                self.reply(Reply::error(format!(
                    "EXECABORT Transaction discarded because of: {}",
                    match &oom {
                        Reply::Error(e) => e.to_string(),
                        _ => String::new(),
                    }
                )));
                return;
            }
        }
        let srv = self.srv.clone();
        // Lock the shards of every queued key and every watched key, so the WATCH check and
        // the commands are one atomic step.
        let all = multi.queued.iter().any(|(s, _)| s.has(Flags::KEYSPACE));
        let mut ctx = if all {
            Ctx::all(&srv, self.db, crate::now_ms())
        } else {
            let keys = multi
                .queued
                .iter()
                .flat_map(|(s, a)| s.key_indices(a.len()).map(move |i| &a[i][..]))
                .chain(self.watched.iter().map(|(_, k)| &k[..]));
            Ctx::for_keys(&srv, keys, self.db, crate::now_ms())
        };
        if self.watch_flag.load(Ordering::Acquire) {
            drop(ctx);
            self.unwatch_all();
            self.reply(Reply::NilArray);
            return;
        }
        ctx.proto = self.proto;
        ctx.client = Some(&self.client);
        ctx.in_exec = true;
        let mut replies = Vec::with_capacity(multi.queued.len());
        let propagating = srv.feed.is_active();
        let mut effects = Vec::new();
        for (spec, args) in &multi.queued {
            let start = Instant::now();
            let (hits, misses, dirty) = (ctx.hits, ctx.misses, ctx.dirty);
            ctx.hits = 0;
            ctx.misses = 0;
            ctx.dirty = 0;
            let db_before = ctx.db;
            // REPLICAOF inside MULTI (Sentinel's reconfiguration transaction) runs here, as
            // in Redis; it changes the role, not the keyspace.
            let r = if matches!(spec.cmd, Cmd::ReplicaOf | Cmd::SlaveOf) {
                self.replicaof(args)
            } else {
                cmd::execute(&mut ctx, spec, args)
            };
            finish(&mut self.tally, &ctx, spec, args, start, &r);
            if propagating {
                let changed = ctx.dirty > 0;
                crate::propagate::collect(&mut ctx, db_before, args, changed, &mut effects);
            }
            ctx.hits += hits;
            ctx.misses += misses;
            ctx.dirty += dirty;
            if let Reply::Error(e) = &r {
                self.srv.stats.error_reply(e);
            }
            replies.push(r);
        }
        if !effects.is_empty() {
            // One MULTI/EXEC block in the stream, appended under the transaction's locks.
            self.woff = srv.feed.append(&effects);
            self.aof_mark = srv.feed.aof_tail();
        }
        let db = ctx.db;
        drop(ctx);
        self.set_db(db);
        self.unwatch_all();
        // Errors inside EXEC were counted above; encode without counting them again.
        if !self.mute {
            Reply::Array(replies).encode(self.proto, &mut self.wbuf);
        }
    }

    fn unwatch_all(&mut self) {
        for (db, key) in std::mem::take(&mut self.watched) {
            self.srv
                .keyspace
                .lock_key(&key)
                .unwatch(db, &key, &self.watch_flag);
        }
        self.watch_flag.store(false, Ordering::Release);
    }

    // ------------------------------------------------------------------ connection state

    fn check_password(&self, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
        let cfg = self.srv.config.load();
        let required = cfg.requirepass.as_deref().unwrap_or("");
        if let Some(u) = user {
            if u != b"default" {
                return Err(Reply::error(WRONGPASS));
            }
        }
        if required.is_empty() {
            // The default user has no password: any password works with a username,
            // the one-argument form is refused as in Redis.
            if user.is_some() {
                return Ok(());
            }
            return Err(Reply::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
        }
        if pass == required.as_bytes() {
            Ok(())
        } else {
            Err(Reply::error(WRONGPASS))
        }
    }

    fn auth(&mut self, args: &[Bytes]) {
        let r = match args.len() {
            2 => self.check_password(None, &args[1]),
            3 => self.check_password(Some(&args[1]), &args[2]),
            _ => Err(Reply::error(args::ERR_SYNTAX)),
        };
        match r {
            Ok(()) => {
                self.authenticated = true;
                self.reply(Reply::Ok);
            }
            Err(e) => {
                if matches!(&e, Reply::Error(m) if m.starts_with("WRONGPASS")) {
                    tracing::info!(client = self.client.id, peer = %self.client.addr, "AUTH failed: wrong password");
                }
                self.reply(e)
            }
        }
    }

    fn hello(&mut self, args: &[Bytes]) {
        let mut proto = self.proto;
        let mut i = 1;
        if args.len() > 1 {
            match tandem_protocol::number::parse_i64(&args[1]) {
                Some(2) => proto = Protocol::Resp2,
                Some(3) => proto = Protocol::Resp3,
                Some(_) => {
                    self.reply(Reply::error("NOPROTO unsupported protocol version"));
                    return;
                }
                None => {
                    self.reply(Reply::error(
                        "ERR Protocol version is not an integer or out of range",
                    ));
                    return;
                }
            }
            i = 2;
        }
        let mut setname = None;
        while i < args.len() {
            if args::is(&args[i], "AUTH") && i + 2 < args.len() {
                if let Err(e) = self.check_password(Some(&args[i + 1]), &args[i + 2]) {
                    self.reply(e);
                    return;
                }
                self.authenticated = true;
                i += 3;
            } else if args::is(&args[i], "SETNAME") && i + 1 < args.len() {
                setname = Some(args[i + 1].clone());
                i += 2;
            } else {
                self.reply(Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                )));
                return;
            }
        }
        if !self.authenticated {
            self.reply(Reply::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            ));
            return;
        }
        if let Some(name) = setname {
            if let Err(e) = cmd::server::validate_client_name(&name) {
                self.reply(e);
                return;
            }
            *self.client.name.lock() = Some(String::from_utf8_lossy(&name).into_owned());
        }
        self.proto = proto;
        self.client
            .resp
            .store(proto.version() as u8, Ordering::Relaxed);
        let role = self.srv.role().as_redis_str();
        self.reply(Reply::Map(vec![
            (Reply::bulk_str("server"), Reply::bulk_str("redis")),
            (
                Reply::bulk_str("version"),
                Reply::bulk_str(crate::REDIS_VERSION),
            ),
            (Reply::bulk_str("proto"), Reply::Int(proto.version())),
            (Reply::bulk_str("id"), Reply::Int(self.client.id as i64)),
            (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
            (Reply::bulk_str("role"), Reply::bulk_str(role)),
            (Reply::bulk_str("modules"), Reply::Array(vec![])),
        ]));
    }

    fn reset(&mut self) {
        self.reply_mode = ReplyMode::On;
        self.mute = false;
        self.multi = None;
        self.client.in_multi.store(false, Ordering::Relaxed);
        self.unwatch_all();
        self.cleanup();
        self.client.subscriptions.store(0, Ordering::Relaxed);
        self.client.psubscriptions.store(0, Ordering::Relaxed);
        self.client.set_kind(ClientKind::Normal);
        self.set_db(0);
        self.proto = Protocol::Resp2;
        self.client.resp.store(2, Ordering::Relaxed);
        *self.client.name.lock() = None;
        let cfg = self.srv.config.load();
        self.authenticated = cfg.requirepass.as_deref().is_none_or(str::is_empty);
        self.reply(Reply::status("RESET"));
    }

    // ------------------------------------------------------------------ pub/sub

    fn subscribe(&mut self, cmd: Cmd, args: &[Bytes]) {
        let pattern = cmd == Cmd::PSubscribe;
        for ch in &args[1..] {
            if pattern {
                if self
                    .srv
                    .pubsub
                    .psubscribe(&self.client, &self.sub_tx, ch.clone())
                {
                    self.patterns.insert(ch.clone());
                }
            } else if self
                .srv
                .pubsub
                .subscribe(&self.client, &self.sub_tx, ch.clone())
            {
                self.channels.insert(ch.clone());
            }
            let kind = if pattern { "psubscribe" } else { "subscribe" };
            let count = (self.channels.len() + self.patterns.len()) as i64;
            self.reply(Reply::Push(vec![
                Reply::bulk_str(kind),
                Reply::Bulk(ch.clone()),
                Reply::Int(count),
            ]));
        }
        self.update_sub_counts();
    }

    fn unsubscribe(&mut self, cmd: Cmd, args: &[Bytes]) {
        let pattern = cmd == Cmd::PUnsubscribe;
        let kind = if pattern {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let targets: Vec<Bytes> = if args.len() > 1 {
            args[1..].to_vec()
        } else if pattern {
            self.patterns.iter().cloned().collect()
        } else {
            self.channels.iter().cloned().collect()
        };
        if targets.is_empty() {
            let count = (self.channels.len() + self.patterns.len()) as i64;
            self.reply(Reply::Push(vec![
                Reply::bulk_str(kind),
                Reply::Nil,
                Reply::Int(count),
            ]));
            return;
        }
        for t in targets {
            if pattern {
                self.srv.pubsub.punsubscribe(self.client.id, &t);
                self.patterns.remove(&t);
            } else {
                self.srv.pubsub.unsubscribe(self.client.id, &t);
                self.channels.remove(&t);
            }
            let count = (self.channels.len() + self.patterns.len()) as i64;
            self.reply(Reply::Push(vec![
                Reply::bulk_str(kind),
                Reply::Bulk(t),
                Reply::Int(count),
            ]));
        }
        self.update_sub_counts();
    }

    fn update_sub_counts(&self) {
        self.client
            .subscriptions
            .store(self.channels.len(), Ordering::Relaxed);
        self.client
            .psubscriptions
            .store(self.patterns.len(), Ordering::Relaxed);
        let kind = if self.channels.is_empty() && self.patterns.is_empty() {
            ClientKind::Normal
        } else {
            ClientKind::PubSub
        };
        self.client.set_kind(kind);
    }

    // ------------------------------------------------------------------ blocking

    /// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH: try now; if nothing is there, wait for a push to one
    /// of the keys (or the timeout, or the client going away), then try again.
    async fn blocking(&mut self, spec: &'static CommandSpec, args: Vec<Bytes>) -> After {
        let timeout = match cmd::list::blocking_timeout(spec.cmd, &args) {
            Ok(t) => t,
            Err(e) => {
                self.reply(e);
                return After::Continue;
            }
        };
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let wait_keys = cmd::list::blocking_keys(spec.cmd, &args);
        let waker = Arc::new(Notify::new());
        let srv = self.srv.clone();
        loop {
            if spec.has(Flags::DENYOOM) {
                if let Err(oom) = crate::db::evict::make_room(&srv) {
                    self.reply(oom);
                    return After::Continue;
                }
            }
            let start = Instant::now();
            {
                let mut ctx = Ctx::for_keys(
                    &srv,
                    spec.key_indices(args.len()).map(|i| &args[i][..]),
                    self.db,
                    crate::now_ms(),
                );
                ctx.proto = self.proto;
                ctx.client = Some(&self.client);
                let served = cmd::list::try_blocking(&mut ctx, spec.cmd, &args);
                if srv.feed.is_active() {
                    let mut effects = Vec::new();
                    let expired =
                        crate::propagate::collect(&mut ctx, self.db, &args, false, &mut effects);
                    if !effects.is_empty() {
                        self.woff = srv.feed.append_command(&effects, expired);
                        self.aof_mark = srv.feed.aof_tail();
                    }
                }
                match served {
                    Ok(Some(r)) => {
                        self.mark = finish(&mut self.tally, &ctx, spec, &args, start, &r);
                        drop(ctx);
                        self.reply(r);
                        return After::Continue;
                    }
                    Err(e) => {
                        self.mark = finish(&mut self.tally, &ctx, spec, &args, start, &e);
                        drop(ctx);
                        self.reply(e);
                        return After::Continue;
                    }
                    Ok(None) => {
                        // Register while the shards are still locked: no push can slip by.
                        for k in &wait_keys {
                            ctx.shard(k).block_on(self.db, k, waker.clone());
                        }
                    }
                }
            }
            self.client.blocked.store(true, Ordering::Relaxed);
            srv.clients.blocked.fetch_add(1, Ordering::Relaxed);
            let outcome = self.wait_for_wake(waker.notified(), deadline).await;
            srv.clients.blocked.fetch_sub(1, Ordering::Relaxed);
            self.client.blocked.store(false, Ordering::Relaxed);
            for k in &wait_keys {
                srv.keyspace.lock_key(k).unblock(self.db, k, &waker);
            }
            match outcome {
                Wake::Retry => continue,
                Wake::TimedOut => {
                    self.mark = Instant::now();
                    self.tally.command(spec.cmd as u16, 0, false, 0, 0, 0);
                    self.reply(Reply::NilArray);
                    return After::Continue;
                }
                Wake::Gone => return After::Close,
            }
        }
    }

    /// Waits for `wake` to complete, the deadline, a kill, shutdown, or the peer closing.
    /// Bytes the client sends meanwhile are buffered (bounded) and run after the blocking
    /// command.
    async fn wait_for_wake(
        &mut self,
        wake: impl std::future::Future<Output = ()>,
        deadline: Option<tokio::time::Instant>,
    ) -> Wake {
        tokio::pin!(wake);
        if self.flush().await.is_err() {
            return Wake::Gone;
        }
        let limit = self.srv.config.load().client_query_buffer_limit.0 as usize;
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            self.rbuf.reserve(READ_CHUNK);
            tokio::select! {
                _ = &mut wake => return Wake::Retry,
                _ = sleep => return Wake::TimedOut,
                _ = self.client.killed() => return Wake::Gone,
                _ = self.shutdown.changed() => return Wake::Gone,
                r = self.stream.read_buf(&mut self.rbuf), if self.rbuf.len() <= limit => match r {
                    Ok(0) | Err(_) => return Wake::Gone,
                    Ok(_) => continue,
                },
            }
        }
    }

    /// REPLICAOF host port / NO ONE (Redis's replicaofCommand).
    fn replicaof(&self, args: &[Bytes]) -> Reply {
        let srv = self.srv.clone();
        if srv.repl.failover.active() {
            return Reply::error("ERR REPLICAOF not allowed while failing over.");
        }
        if args::is(&args[1], "no") && args::is(&args[2], "one") {
            if srv.is_replica() {
                crate::replication::replica::unset_master(&srv);
                tracing::info!(client = self.client.id, peer = %self.client.addr, "MASTER MODE enabled (user request)");
            }
            return Reply::Ok;
        }
        if self.client.kind() == ClientKind::Replica {
            return Reply::error("ERR Command is not valid when client is a replica.");
        }
        let port = match tandem_protocol::number::parse_i64(&args[2]) {
            Some(p) if (0..=65535).contains(&p) => p as u16,
            _ => {
                return Reply::error("ERR Invalid master port");
            }
        };
        let host = String::from_utf8_lossy(&args[1]).into_owned();
        if srv.is_replica() {
            if let Some((h, p)) = srv.repl.link.master() {
                if h.eq_ignore_ascii_case(&host) && p == port {
                    tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
                    return Reply::status("OK Already connected to specified master");
                }
            }
        }
        crate::replication::replica::set_master(&srv, host.clone(), port);
        tracing::info!(client = self.client.id, peer = %self.client.addr, master = %format!("{host}:{port}"), "REPLICAOF enabled (user request)");
        Reply::Ok
    }

    /// WAIT numreplicas timeout: the number of replicas that acknowledged this client's
    /// last write, blocking (with a `REPLCONF GETACK *` into the stream) until enough did
    /// or the timeout passed.
    async fn wait(&mut self, _spec: &'static CommandSpec, args: Vec<Bytes>) -> After {
        if self.srv.is_replica() {
            self.reply(Reply::error(crate::replication::ERR_WAIT_REPLICA));
            return After::Continue;
        }
        let n = match args::int(&args[1]) {
            Ok(n) => n,
            Err(e) => {
                self.reply(e);
                return After::Continue;
            }
        };
        let timeout = match crate::replication::parse_wait_timeout(&args[2]) {
            Ok(t) => t,
            Err(e) => {
                self.reply(e);
                return After::Continue;
            }
        };
        let srv = self.srv.clone();
        let target = self.woff;
        let acked = |srv: &Server| srv.repl.replicas.count_acked(target) as i64;
        if acked(&srv) >= n {
            self.reply(Reply::Int(acked(&srv)));
            return After::Continue;
        }
        let mut acks = srv.repl.acks.subscribe();
        // One GETACK after this client's write serves every WAIT for a write before it.
        if srv.repl.getack_at.load(Ordering::Acquire) <= target {
            let at = srv.feed.append_meta(&[b"REPLCONF", b"GETACK", b"*"]);
            srv.repl.getack_at.fetch_max(at, Ordering::AcqRel);
        }
        let deadline =
            (timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout));
        self.client.blocked.store(true, Ordering::Relaxed);
        srv.clients.blocked.fetch_add(1, Ordering::Relaxed);
        let mut acks_closed = false;
        let gone = loop {
            let changed = async {
                acks_closed = acks.changed().await.is_err();
            };
            match self.wait_for_wake(changed, deadline).await {
                Wake::Retry if !acks_closed && acked(&srv) < n => continue,
                Wake::Retry | Wake::TimedOut => break false,
                Wake::Gone => break true,
            }
        };
        srv.clients.blocked.fetch_sub(1, Ordering::Relaxed);
        self.client.blocked.store(false, Ordering::Relaxed);
        if gone {
            return After::Close;
        }
        self.mark = Instant::now();
        self.tally.command(_spec.cmd as u16, 0, false, 0, 0, 0);
        self.reply(Reply::Int(acked(&srv)));
        After::Continue
    }
}

/// Whether CLIENT PAUSE holds `spec` back (for EXEC, judged by the queued commands).
fn pause_blocks(
    srv: &Server,
    client: &ClientInfo,
    spec: &CommandSpec,
    multi: Option<&Multi>,
) -> bool {
    match multi {
        Some(m) if spec.cmd == Cmd::Exec => {
            srv.pause
                .blocks(client, spec, Some(&mut m.queued.iter().map(|(s, _)| *s)))
        }
        _ => srv.pause.blocks(client, spec, None),
    }
}

/// Stats after a command ran (kept in the session's tally, folded in per batch).
fn finish(
    tally: &mut Tally,
    ctx: &Ctx,
    spec: &CommandSpec,
    args: &[Bytes],
    start: Instant,
    reply: &Reply,
) -> Instant {
    let end = Instant::now();
    let usec = end.duration_since(start).as_micros() as u64;
    tally.command(
        spec.cmd as u16,
        usec,
        reply.is_error(),
        ctx.hits,
        ctx.misses,
        ctx.dirty,
    );
    if crate::latency::has_subcommands(spec) {
        crate::latency::record_subcommand(ctx.srv, spec, args, usec);
    }
    // The slow log and the latency monitor: one comparison unless the command was slow.
    if usec >= ctx.srv.slowlog.gate() {
        crate::slowlog::command_ran(ctx.srv, ctx.client.map(|c| &**c), spec, args, usec);
    }
    end
}

/// Unix milliseconds derived from a monotonic instant: one `SystemTime` read per batch.
struct Clock {
    base_ms: u64,
    base: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            base_ms: crate::now_ms(),
            base: Instant::now(),
        }
    }
    fn now_ms(&self, t: Instant) -> u64 {
        self.base_ms + t.saturating_duration_since(self.base).as_millis() as u64
    }
}

#[derive(PartialEq, Eq)]
enum Wake {
    Retry,
    TimedOut,
    Gone,
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' ` (Redis's exact shape).
fn unknown_command(args: &[Bytes]) -> String {
    let name: String = String::from_utf8_lossy(&args[0])
        .chars()
        .take(128)
        .collect();
    let mut msg = format!("ERR unknown command '{name}', with args beginning with: ");
    for a in &args[1..] {
        if msg.len() > 1024 {
            break;
        }
        let a: String = String::from_utf8_lossy(a).chars().take(128).collect();
        msg.push_str(&format!("'{a}' "));
    }
    msg
}

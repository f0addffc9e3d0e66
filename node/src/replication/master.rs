//! The master side of replication: REPLCONF, PSYNC/SYNC with Redis's acceptance rules, the
//! full-sync transfer (`$len` disk-style or diskless `$EOF:<mark>`), and one sender per
//! replica streaming the backlog by offset, tracking its ACKs.
//!
//! Guarantee: a replica receives the stream bytes exactly from the offset it was promised
//! (the FULLRESYNC snapshot point or its PSYNC offset), in order, or it is disconnected
//! (with a log line naming it and the reason). Buffers per replica are bounded.

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tandem_protocol::frame::{RequestDecoder, RequestLimits};
use tandem_protocol::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{backlog::Backlog, payload};
use crate::clients::{ClientInfo, ClientKind};
use crate::cmd::args;
use crate::server::Server;

/// Most stream bytes read from the backlog per write to a replica.
const STREAM_CHUNK: usize = 1 << 20;
/// A replica whose pending output exceeds this is disconnected (Redis's default
/// `client-output-buffer-limit replica 256mb`).
pub const REPLICA_BUFFER_LIMIT: usize = 256 << 20;
/// Keepalive newline period while a replica waits for its snapshot.
const PRESYNC_KEEPALIVE: Duration = Duration::from_secs(1);
/// Longest `REPLCONF ip-address` Redis accepts (NET_HOST_STR_LEN).
const MAX_IP_LEN: usize = 256;

/// A replica's state, Redis's words (INFO's `state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplicaState {
    /// Waiting for the snapshot (`wait_bgsave`).
    WaitBgsave = 0,
    /// Receiving the snapshot (`send_bulk`).
    SendBulk = 1,
    /// Receiving the stream (`online`).
    Online = 2,
}

impl ReplicaState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// What a connection told us with REPLCONF before PSYNC.
#[derive(Debug, Default, Clone)]
pub struct ReplicaConf {
    pub listening_port: u16,
    pub ip_address: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// `REPLCONF rdb-filter-only ""`: the payload carries no data (redis-cli --replica,
    /// --functions-rdb).
    pub rdb_exclude_data: bool,
}

/// One attached replica, as INFO / ROLE / WAIT see it.
pub struct ReplicaInfo {
    pub client_id: u64,
    /// `REPLCONF ip-address`, else the peer's IP.
    pub ip: String,
    pub port: u16,
    state: AtomicU8,
    /// Offset the replica acknowledged (`repl_ack_off`).
    pub ack_off: AtomicU64,
    /// Unix seconds of the last ACK (`repl_ack_time`).
    pub ack_time: AtomicU64,
    /// What the replica is still to be sent of the stream.
    out: Mutex<Outgoing>,
}

/// The part of the stream a replica has yet to receive, shared by its sender task and, while
/// the stream flows, by the sessions whose writes it carries ([`Registry::push`]).
#[derive(Default)]
struct Outgoing {
    /// Offset of the next stream byte to read from the backlog.
    next: u64,
    /// Stream bytes read from the backlog and not yet written.
    pending: BytesMut,
    /// The replica's socket (a duplicate of the sender's descriptor, non-blocking like it)
    /// while the stream flows; `None` before and after, so nothing else writes to it then.
    socket: Option<std::net::TcpStream>,
}

impl Outgoing {
    /// Moves stream bytes from the backlog into `pending` (bounded).
    fn pull(&mut self, feed: &crate::propagate::Feed) -> Result<(), &'static str> {
        if feed.offset() < self.next {
            return Ok(());
        }
        let next = self.next;
        let room = REPLICA_BUFFER_LIMIT.saturating_sub(self.pending.len());
        if room == 0 {
            return Err("output buffer limit reached");
        }
        let got = feed.with_state(|st| {
            st.backlog
                .as_ref()
                .and_then(|b| b.read_from(next, STREAM_CHUNK.min(room)))
        });
        match got {
            Some(b) => {
                self.next += b.len() as u64;
                self.pending.extend_from_slice(&b);
                Ok(())
            }
            None => Err("fell behind the replication backlog"),
        }
    }

    /// Pulls while the backlog holds more than was pulled (the full-sync phases, when the
    /// stream only accumulates here).
    fn drain(&mut self, feed: &crate::propagate::Feed) -> Result<(), &'static str> {
        while feed.offset() >= self.next {
            let before = self.next;
            self.pull(feed)?;
            if self.next == before {
                break;
            }
        }
        Ok(())
    }

    /// Writes what the backlog holds past `next` straight to the socket, without waiting.
    /// Returns the bytes written and whether stream is left for the sender task: when not
    /// streaming yet (full sync), with output already pending, after a failed pull, or when
    /// the socket did not take everything (WouldBlock, or an error the sender will meet).
    fn send_now(&mut self, feed: &crate::propagate::Feed) -> (usize, bool) {
        if self.socket.is_none() || !self.pending.is_empty() || self.pull(feed).is_err() {
            return (0, true);
        }
        let written = match self
            .socket
            .as_ref()
            .map(|s| std::io::Write::write(&mut &*s, &self.pending))
        {
            Some(Ok(n)) => n,
            _ => 0,
        };
        self.pending.advance(written);
        (
            written,
            !self.pending.is_empty() || self.next <= feed.offset(),
        )
    }
}

impl ReplicaInfo {
    pub fn state(&self) -> ReplicaState {
        match self.state.load(Ordering::Relaxed) {
            0 => ReplicaState::WaitBgsave,
            1 => ReplicaState::SendBulk,
            _ => ReplicaState::Online,
        }
    }
    fn set_state(&self, s: ReplicaState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
    /// Seconds since the last ACK (INFO's `lag=`; 0 unless online).
    pub fn lag(&self) -> u64 {
        if self.state() != ReplicaState::Online {
            return 0;
        }
        unix_secs().saturating_sub(self.ack_time.load(Ordering::Relaxed))
    }
}

/// The replicas attached to this node, in attach order.
#[derive(Default)]
pub struct Registry {
    list: Mutex<Vec<Arc<ReplicaInfo>>>,
}

impl Registry {
    pub fn all(&self) -> Vec<Arc<ReplicaInfo>> {
        self.list.lock().clone()
    }
    pub fn count(&self) -> usize {
        self.list.lock().len()
    }
    fn add(&self, r: Arc<ReplicaInfo>) {
        self.list.lock().push(r);
    }
    fn remove(&self, client_id: u64) {
        self.list.lock().retain(|r| r.client_id != client_id);
    }
    /// Writes to each streaming replica the stream it has not been sent, from the caller's
    /// thread and without waiting: a session calls this after its batch wrote to the stream
    /// and before it replies, as Redis writes to replicas first in `beforeSleep`. The replica
    /// then gets the stream without a wake-up of its sender task on another thread. Whatever
    /// the socket does not take at once, or a replica whose sender is busy, is left to the
    /// sender task, which this wakes. Every path that appends to the stream calls this
    /// (sessions before they reply or wait, the cron, a replica relaying its master).
    pub fn push(&self, srv: &Server) {
        let feed = &srv.feed;
        let mut written = 0;
        let mut left = false;
        for r in self.list.lock().iter() {
            let Some(mut out) = r.out.try_lock() else {
                // Its sender (or another session) is at it; the sender rechecks after a wake.
                left = true;
                continue;
            };
            let (n, rest) = out.send_now(feed);
            written += n;
            left |= rest;
        }
        if left {
            feed.wake_senders();
        }
        if written > 0 {
            srv.stats
                .total_net_output_bytes
                .fetch_add(written as u64, Ordering::Relaxed);
        }
    }
    /// Online replicas that acknowledged at least `offset` (WAIT).
    pub fn count_acked(&self, offset: u64) -> usize {
        self.list
            .lock()
            .iter()
            .filter(|r| {
                r.state() == ReplicaState::Online && r.ack_off.load(Ordering::Relaxed) >= offset
            })
            .count()
    }
    /// Online replicas whose last ACK is at most `max_lag` seconds old.
    fn good(&self, max_lag: u64) -> u64 {
        let now = unix_secs();
        self.list
            .lock()
            .iter()
            .filter(|r| {
                r.state() == ReplicaState::Online
                    && now.saturating_sub(r.ack_time.load(Ordering::Relaxed)) <= max_lag
            })
            .count() as u64
    }
}

pub fn unix_secs() -> u64 {
    crate::now_ms() / 1000
}

/// Recomputes `min_slaves_good_slaves` (Redis's refreshGoodSlavesCount).
pub fn refresh_good_replicas(srv: &Server) {
    let cfg = srv.config.load();
    let n = if cfg.min_replicas_to_write > 0 && cfg.min_replicas_max_lag > 0 {
        srv.repl.replicas.good(cfg.min_replicas_max_lag)
    } else {
        0
    };
    srv.repl.good_replicas.store(n, Ordering::Relaxed);
}

/// The master's part of replicationCron, once a second: PING into the stream every
/// `repl-ping-replica-period` (top masters only: a replica relays its master's), the good
/// replica count, and the session guards.
pub fn cron(srv: &Server) {
    static LOOPS: AtomicU64 = AtomicU64::new(0);
    let loops = LOOPS.fetch_add(1, Ordering::Relaxed);
    srv.repl.refresh_guards(srv);
    refresh_good_replicas(srv);
    let period = srv
        .admin
        .extra_config
        .lock()
        .get("repl-ping-replica-period")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(10)
        .max(1);
    // CONFIG SET repl-backlog-size applies to the live backlog.
    let size = srv.config.load().repl_backlog_size.0 as usize;
    srv.feed.with_state(|st| {
        if let Some(b) = st.backlog.as_mut() {
            if b.capacity() != size {
                b.resize(size);
            }
        }
    });
    // No PING during a failover: it would move the offset the replicas must catch up with.
    if loops.is_multiple_of(period)
        && !srv.is_replica()
        && !srv.repl.failover.active()
        && srv.repl.replicas.count() > 0
    {
        srv.feed.append_meta(&[b"PING"]);
        srv.repl.replicas.push(srv);
    }
    expire_backlog(srv);
}

/// `repl-backlog-ttl`: a master that has had no replica for that many seconds frees its
/// backlog, under a new replid with replid2 cleared (so no node can PSYNC into a history
/// whose offsets stopped counting). Replicas keep theirs: they may be promoted.
fn expire_backlog(srv: &Server) {
    let ttl = srv.config.load().repl_backlog_ttl;
    if ttl == 0 || srv.is_replica() || srv.repl.replicas.count() > 0 {
        return;
    }
    let idle = unix_secs().saturating_sub(srv.repl.no_replicas_since.load(Ordering::Relaxed));
    if idle <= ttl {
        return;
    }
    srv.feed.with_state(|st| {
        if st.backlog.take().is_some() {
            srv.repl.with_ids(|ids| {
                ids.replid = tandem_protocol::types::random_hex_id();
                ids.replid2 = super::NO_REPLID.to_string();
                ids.second_offset = -1;
            });
            tracing::info!(
                seconds = ttl,
                "replication backlog freed after that many seconds without connected replicas"
            );
        }
    });
}

/// REPLCONF <option> <value> ...: `Some(reply)`, or `None` for `ack`/`getack`, which reply
/// nothing. `ack` from a connection that is not a replica is ignored, as in Redis.
pub fn replconf(srv: &Server, conf: &mut ReplicaConf, args: &[Bytes]) -> Option<Reply> {
    if args.len().is_multiple_of(2) {
        return Some(Reply::error(args::ERR_SYNTAX));
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if args::is(opt, "listening-port") {
            match args::int(val) {
                Ok(p) => conf.listening_port = p.clamp(0, u16::MAX as i64) as u16,
                Err(e) => return Some(e),
            }
        } else if args::is(opt, "ip-address") {
            if val.len() >= MAX_IP_LEN {
                return Some(Reply::error(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )));
            }
            conf.ip_address = Some(String::from_utf8_lossy(val).into_owned());
        } else if args::is(opt, "capa") {
            if args::is(val, "eof") {
                conf.capa_eof = true;
            } else if args::is(val, "psync2") {
                conf.capa_psync2 = true;
            }
        } else if args::is(opt, "ack") {
            return None;
        } else if args::is(opt, "getack") {
            if srv.is_replica() {
                srv.repl.link.request_ack();
            }
            return None;
        } else if args::is(opt, "rdb-filter-only") {
            // Only the "functions" filter exists; Tandem has no functions, so any accepted
            // filter means an RDB without data.
            for f in String::from_utf8_lossy(val).split_whitespace() {
                if !f.eq_ignore_ascii_case("functions") {
                    return Some(Reply::error(format!(
                        "ERR Unsupported rdb-filter-only option: {f}"
                    )));
                }
            }
            conf.rdb_exclude_data = true;
        } else if args::is(opt, "rdb-only") {
            match args::int(val) {
                Ok(0 | 1) => {}
                Ok(_) => return Some(Reply::error("ERR value is out of range, must be positive")),
                Err(e) => return Some(e),
            }
        } else {
            return Some(Reply::error(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    Some(Reply::Ok)
}

/// What PSYNC/SYNC did to the connection.
pub enum Outcome {
    /// An error reply; the connection stays a normal client.
    Reply(Reply),
    /// The connection served as a replica link and is now closed (reason for the log).
    Closed(&'static str),
}

/// PSYNC replid offset / SYNC: serves the connection as a replica until the link ends.
/// `rbuf` holds bytes the replica already sent after the command (pipelined ACKs).
pub async fn sync_command(
    srv: &Arc<Server>,
    client: &Arc<ClientInfo>,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
    conf: &ReplicaConf,
    args: &[Bytes],
) -> Outcome {
    // PSYNC <replid> <offset> FAILOVER: our master hands its role over to us (FAILOVER).
    if args.len() > 3 && args::is(&args[0], "psync") && args::is(&args[3], "failover") {
        tracing::warn!(replid = %String::from_utf8_lossy(&args[1]), "failover request received");
        if !srv.is_replica() {
            return Outcome::Reply(Reply::error(
                "ERR PSYNC FAILOVER can't be sent to a master.",
            ));
        }
        if !args[1].eq_ignore_ascii_case(srv.repl.replid().as_bytes()) {
            return Outcome::Reply(Reply::error(
                "ERR PSYNC FAILOVER replid must match my replid.",
            ));
        }
        super::replica::unset_master(srv);
        tracing::info!(client = client.id, peer = %client.addr, "MASTER MODE enabled (failover request)");
    }
    if srv.repl.failover.active() {
        return Outcome::Reply(Reply::error("NOMASTERLINK Can't SYNC while failing over"));
    }
    if srv.is_replica() && !srv.repl.link.is_up() {
        return Outcome::Reply(Reply::error(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    if conf.rdb_exclude_data && !conf.capa_eof {
        return Outcome::Reply(Reply::error("ERR Filtered replica requires EOF capability"));
    }
    let psync = args.len() >= 3;
    let mut asked: Option<(Bytes, u64)> = None;
    if psync {
        let off = match args::int(&args[2]) {
            Ok(o) => o,
            Err(e) => return Outcome::Reply(e),
        };
        asked = Some((args[1].clone(), off.max(0) as u64));
    }
    let peer = client.addr;
    let ip = conf
        .ip_address
        .clone()
        .unwrap_or_else(|| peer.ip().to_string());
    let info = Arc::new(ReplicaInfo {
        client_id: client.id,
        ip,
        port: conf.listening_port,
        state: AtomicU8::new(ReplicaState::WaitBgsave as u8),
        ack_off: AtomicU64::new(0),
        ack_time: AtomicU64::new(unix_secs()),
        out: Mutex::new(Outgoing::default()),
    });
    client.set_kind(ClientKind::Replica);
    let mut sender = Sender {
        srv: srv.clone(),
        client: client.clone(),
        info: info.clone(),
        stream,
        rbuf,
        streaming: false,
        drop_rx: srv.repl.drop_replicas.subscribe(),
        decoder: RequestDecoder::new(RequestLimits::default()),
        pre_psync: !psync,
        exclude_data: conf.rdb_exclude_data,
    };
    let peer_name = format!("{}:{}", info.ip, info.port);
    // Partial resynchronization (masterTryPartialResynchronization).
    if let Some((id, off)) = &asked {
        match try_partial(srv, id, *off) {
            Ok(replid) => {
                srv.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
                info.set_state(ReplicaState::Online);
                srv.repl.replicas.add(info.clone());
                refresh_good_replicas(srv);
                let line = if conf.capa_psync2 {
                    format!("+CONTINUE {replid}\r\n")
                } else {
                    "+CONTINUE\r\n".to_string()
                };
                let held = srv.feed.offset().saturating_sub(off.saturating_sub(1));
                tracing::info!(replica = %peer_name, offset = off, bytes = held, "partial resynchronization request accepted");
                info.out.lock().next = *off;
                sender.streaming = true;
                let reason = match sender.stream.write_all(line.as_bytes()).await {
                    Ok(()) => sender.run().await,
                    Err(_) => "write error",
                };
                return finish(srv, &info, &peer_name, reason);
            }
            Err(why) => {
                if id.as_ref() != b"?" {
                    srv.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(replica = %peer_name, reason = why, "partial resynchronization not accepted");
                } else {
                    tracing::info!(replica = %peer_name, "full resync requested by replica");
                }
            }
        }
    }
    srv.repl.sync_full.fetch_add(1, Ordering::Relaxed);
    srv.repl.replicas.add(info.clone());
    // A filtered RDB always goes over the socket, as in Redis.
    let diskless = (srv.config.load().repl_diskless_sync || conf.rdb_exclude_data) && conf.capa_eof;
    let reason = sender.full_sync(psync, diskless, &peer_name).await;
    finish(srv, &info, &peer_name, reason)
}

fn finish(srv: &Server, info: &ReplicaInfo, peer: &str, reason: &'static str) -> Outcome {
    srv.repl.replicas.remove(info.client_id);
    if srv.repl.replicas.count() == 0 {
        srv.repl
            .no_replicas_since
            .store(unix_secs(), Ordering::Relaxed);
    }
    refresh_good_replicas(srv);
    tracing::info!(replica = %peer, reason, "connection with replica lost");
    Outcome::Closed(reason)
}

/// Redis's acceptance rule: the id is ours (or our previous one, up to the offset where we
/// switched), and the backlog holds the asked offset. Returns our replid.
fn try_partial(srv: &Server, id: &[u8], off: u64) -> Result<String, &'static str> {
    srv.feed.with_state(|st| {
        let ids = srv.repl.ids();
        let id = String::from_utf8_lossy(id);
        if id != ids.replid && (id != ids.replid2 || off as i64 > ids.second_offset) {
            return Err("replication id mismatch");
        }
        match &st.backlog {
            Some(b) if b.can_serve(off) => Ok(ids.replid),
            Some(_) => Err("requested offset out of the backlog range"),
            None => Err("no backlog"),
        }
    })
}

/// Creates the backlog if there is none, as when the first replica attaches: a new replid
/// starts a new history (replid2 cleared).
pub fn ensure_backlog(srv: &Server) {
    srv.feed.with_state(|st| {
        if st.backlog.is_none() {
            let size = srv.config.load().repl_backlog_size.0 as usize;
            srv.repl.with_ids(|ids| {
                ids.replid = tandem_protocol::types::random_hex_id();
                ids.replid2 = super::NO_REPLID.to_string();
                ids.second_offset = -1;
                tracing::info!(replid = %ids.replid, "replication backlog created, new replication id");
            });
            st.backlog = Some(Backlog::new(size, st.offset));
        }
    });
}

/// One replica's sender: the connection, what it still has to receive, and its ACKs.
struct Sender<'a> {
    srv: Arc<Server>,
    client: Arc<ClientInfo>,
    info: Arc<ReplicaInfo>,
    stream: &'a mut TcpStream,
    rbuf: &'a mut BytesMut,
    /// False until the stream may flow (diskless: until the first ACK after the payload).
    streaming: bool,
    drop_rx: tokio::sync::watch::Receiver<u64>,
    decoder: RequestDecoder,
    /// Attached with the old SYNC (Redis's CLIENT_PRE_PSYNC): no `+FULLRESYNC` line and no
    /// ACKs expected, so no ACK timeout.
    pre_psync: bool,
    /// The payload carries no data (`REPLCONF rdb-filter-only`).
    exclude_data: bool,
}

impl Sender<'_> {
    /// Writes all of `data`, giving up after `repl-timeout` (a replica that stopped reading).
    async fn write_timed(&mut self, data: &[u8]) -> Result<(), &'static str> {
        let timeout = Duration::from_secs(self.srv.config.load().repl_timeout.max(1));
        match tokio::time::timeout(timeout, self.stream.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("write error"),
            Err(_) => Err("timeout writing to the replica"),
        }
    }

    /// Offset of the next stream byte the replica is to be sent.
    fn next(&self) -> u64 {
        self.info.out.lock().next
    }

    /// Handles what the replica sent: REPLCONF ACK (the only thing a replica says).
    fn on_input(&mut self) -> Result<(), &'static str> {
        loop {
            match self.decoder.decode(self.rbuf) {
                Ok(Some(a)) => {
                    if a.len() >= 3 && args::is(&a[0], "replconf") && args::is(&a[1], "ack") {
                        if let Some(off) = tandem_protocol::number::parse_i64(&a[2]) {
                            let off = off.max(0) as u64;
                            self.info.ack_off.fetch_max(off, Ordering::Relaxed);
                            self.info.ack_time.store(unix_secs(), Ordering::Relaxed);
                            if self.info.state() == ReplicaState::Online && !self.streaming {
                                // Diskless: the first ACK after the payload starts the stream.
                                self.streaming = true;
                            }
                            self.srv.repl.acks.send_modify(|n| *n += 1);
                        }
                    }
                }
                Ok(None) => return Ok(()),
                Err(_) => return Err("protocol error from replica"),
            }
        }
    }

    /// The online loop: stream from the backlog, read ACKs, time out a silent replica. While
    /// the stream flows, sessions may write it to the socket too ([`Registry::push`]).
    async fn run(&mut self) -> &'static str {
        /// Takes the socket back from the sessions however the loop ends.
        struct Shared<'a>(&'a ReplicaInfo);
        impl Drop for Shared<'_> {
            fn drop(&mut self) {
                self.0.out.lock().socket = None;
            }
        }
        let info = self.info.clone();
        let _shared = Shared(&info);
        if let Err(e) = self.on_input() {
            return e;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut shutdown = self.srv.shutdown_signal();
        loop {
            let (writing, next) = {
                let mut out = self.info.out.lock();
                if self.streaming && out.socket.is_none() {
                    // A duplicate descriptor; failing that, the sender alone writes.
                    out.socket = self
                        .stream
                        .as_fd()
                        .try_clone_to_owned()
                        .ok()
                        .map(std::net::TcpStream::from);
                }
                if self.streaming && out.pending.is_empty() {
                    if let Err(e) = out.pull(&self.srv.feed) {
                        return e;
                    }
                }
                (self.streaming && !out.pending.is_empty(), out.next)
            };
            self.rbuf.reserve(4096);
            tokio::select! {
                r = self.stream.writable(), if writing => {
                    if r.is_err() { return "write error"; }
                    let mut out = self.info.out.lock();
                    match self.stream.try_write(&out.pending) {
                        Ok(0) => return "write error",
                        Ok(n) => {
                            out.pending.advance(n);
                            self.srv.stats.total_net_output_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return "write error",
                    }
                },
                r = self.stream.readable() => {
                    if r.is_err() { return "read error"; }
                    match self.stream.try_read_buf(self.rbuf) {
                        Ok(0) => return "connection closed by replica",
                        Ok(_) => {
                            if self.rbuf.len() > 1 << 20 {
                                return "replica sent too much";
                            }
                            if let Err(e) = self.on_input() { return e; }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return "read error",
                    }
                },
                _ = self.srv.feed.reached(next), if self.streaming && !writing => {}
                _ = tick.tick() => {
                    let timeout = self.srv.config.load().repl_timeout;
                    let last = self.info.ack_time.load(Ordering::Relaxed);
                    if !self.pre_psync && unix_secs().saturating_sub(last) > timeout {
                        return "timeout: no ACK from the replica";
                    }
                }
                _ = self.drop_rx.changed() => return "replication history changed",
                _ = self.client.killed() => return "killed",
                _ = shutdown.changed() => return "server shutdown",
            }
        }
    }

    /// FULLRESYNC: snapshot (attaching at the snapshot point), payload, then the stream.
    async fn full_sync(&mut self, psync: bool, diskless: bool, peer: &str) -> &'static str {
        ensure_backlog(&self.srv);
        let r = if diskless {
            self.full_sync_diskless(psync, peer).await
        } else {
            self.full_sync_disk(psync, peer).await
        };
        if let Err(e) = r {
            return e;
        }
        self.info.set_state(ReplicaState::Online);
        self.info.ack_time.store(unix_secs(), Ordering::Relaxed);
        refresh_good_replicas(&self.srv);
        // Disk-style: stream at once; diskless: after the replica's first ACK.
        self.streaming = !diskless;
        tracing::info!(replica = %peer, "synchronization with replica succeeded");
        self.run().await
    }

    /// `+FULLRESYNC <replid> <offset>` (not for the old SYNC), from which the stream follows.
    async fn attach_at(
        &mut self,
        psync: bool,
        replid: &str,
        offset: u64,
        peer: &str,
        diskless: bool,
    ) -> Result<(), &'static str> {
        self.info.out.lock().next = offset + 1;
        tracing::info!(replica = %peer, %replid, offset, diskless, "starting full resynchronization");
        if psync {
            let line = format!("+FULLRESYNC {replid} {offset}\r\n");
            self.write_timed(line.as_bytes()).await?;
        }
        Ok(())
    }

    /// Diskless: wait for a shared transfer (see [`super::transfer`]), sending the pre-sync
    /// keepalive newline every second and watching the replica, then relay the payload with
    /// the `$EOF:<mark>` framing.
    async fn full_sync_diskless(&mut self, psync: bool, peer: &str) -> Result<(), &'static str> {
        let srv = self.srv.clone();
        let mut rx = srv.repl.transfers.wait(self.exclude_data);
        super::transfer::maybe_start(&srv);
        let delay = Duration::from_secs(srv.config.load().repl_diskless_sync_delay);
        let due = tokio::time::sleep(delay);
        tokio::pin!(due);
        let mut due_fired = false;
        let mut tick = tokio::time::interval(PRESYNC_KEEPALIVE);
        tick.tick().await;
        let mut shutdown = srv.shutdown_signal();
        let mut transfer = loop {
            tokio::select! {
                t = &mut rx => match t {
                    Ok(t) => break t,
                    Err(_) => return Err("snapshot failed"),
                },
                _ = &mut due, if !due_fired => {
                    due_fired = true;
                    super::transfer::maybe_start(&srv);
                }
                _ = tick.tick() => self.write_timed(b"\n").await?,
                r = self.stream.readable() => {
                    if r.is_err() {
                        return Err("read error");
                    }
                    match self.stream.try_read_buf(self.rbuf) {
                        Ok(0) => return Err("connection closed by replica"),
                        Ok(_) if self.rbuf.len() > 1 << 20 => return Err("replica sent too much"),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return Err("read error"),
                    }
                }
                _ = self.drop_rx.changed() => return Err("replication history changed"),
                _ = self.client.killed() => return Err("killed"),
                _ = shutdown.changed() => return Err("server shutdown"),
            }
        };
        self.attach_at(psync, &transfer.replid, transfer.offset, peer, true)
            .await?;
        self.send_diskless(&mut transfer.chunks).await
    }

    /// Disk-style: this replica's own snapshot through a temp file (`$len` needs the size).
    async fn full_sync_disk(&mut self, psync: bool, peer: &str) -> Result<(), &'static str> {
        let srv = self.srv.clone();
        let (at_tx, at_rx) = tokio::sync::oneshot::channel::<(String, u64)>();
        let dir = srv.config.load().dir.clone();
        let tmp = dir.join(format!(
            "temp-repl-{}-{}.rdb",
            std::process::id(),
            self.client.id
        ));
        let tmp2 = tmp.clone();
        let exclude_data = self.exclude_data;
        let job = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let (mut snap, replid, offset, db) = super::transfer::freeze(&srv);
            if exclude_data {
                snap.dbs.clear();
            }
            let _ = at_tx.send((replid.clone(), offset));
            let f = std::fs::File::create(&tmp2)?;
            let mut w = std::io::BufWriter::new(f);
            let n = payload::write_rdb(&mut w, &snap, &replid, offset, db)?;
            std::io::Write::flush(&mut w)?;
            Ok(n)
        });
        let Ok((replid, offset)) = at_rx.await else {
            return Err("snapshot failed");
        };
        let r = match self.attach_at(psync, &replid, offset, peer, false).await {
            Ok(()) => self.send_disk(job, &tmp).await,
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&tmp);
        r
    }

    /// While the payload is produced or sent, keep reading the stream into `pending` so the
    /// replica does not fall behind the backlog (Redis keeps it in the replica's buffer).
    fn drain_stream(&mut self) -> Result<(), &'static str> {
        self.info.out.lock().drain(&self.srv.feed)
    }

    async fn send_diskless(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<Result<Bytes, ()>>,
    ) -> Result<(), &'static str> {
        let mark = tandem_protocol::types::random_hex_id();
        self.info.set_state(ReplicaState::SendBulk);
        let head = format!("$EOF:{mark}\r\n");
        self.write_timed(head.as_bytes()).await?;
        loop {
            tokio::select! {
                c = rx.recv() => match c {
                    Some(Ok(chunk)) => {
                        self.write_timed(&chunk).await?;
                        self.drain_stream()?;
                    }
                    Some(Err(())) => return Err("snapshot failed"),
                    None => break,
                },
                _ = self.srv.feed.reached(self.next()) => self.drain_stream()?,
            }
        }
        self.write_timed(mark.as_bytes()).await?;
        Ok(())
    }

    async fn send_disk(
        &mut self,
        mut job: tokio::task::JoinHandle<std::io::Result<u64>>,
        tmp: &std::path::Path,
    ) -> Result<(), &'static str> {
        let mut tick = tokio::time::interval(PRESYNC_KEEPALIVE);
        tick.tick().await;
        let len = loop {
            tokio::select! {
                r = &mut job => match r {
                    Ok(Ok(n)) => break n,
                    _ => return Err("snapshot failed"),
                },
                _ = tick.tick() => {
                    // Keepalive for a replica waiting on the snapshot.
                    self.write_timed(b"\n").await?;
                }
                _ = self.srv.feed.reached(self.next()) => self.drain_stream()?,
            }
        };
        self.info.set_state(ReplicaState::SendBulk);
        let mut f = tokio::fs::File::open(tmp)
            .await
            .map_err(|_| "cannot read the snapshot")?;
        self.write_timed(format!("${len}\r\n").as_bytes()).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .await
                .map_err(|_| "cannot read the snapshot")?;
            if n == 0 {
                break;
            }
            self.write_timed(&buf[..n]).await?;
            self.drain_stream()?;
        }
        Ok(())
    }
}

//! The replica side: the link to the master as a state machine ([`LinkState`], Redis's
//! words), the handshake exactly as Redis sends it, PSYNC with the cached id and offset,
//! loading a full-sync payload, and applying the master's stream through the command
//! handlers (`from_master`), relayed byte for byte to our own replicas.
//!
//! Guarantees: the dataset is replaced only once a payload has loaded completely; the
//! processed offset advances only after a whole command (a whole MULTI/EXEC) is applied,
//! and is what ACKs report; any fault on the link is logged once with the peer and the
//! reason, the link is dropped, and it is retried with backoff while reads go on.

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tandem_protocol::command::{self, Cmd, CommandSpec, Flags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::backlog::Backlog;
use super::payload;
use crate::cmd::{self, Ctx};
use crate::server::Server;
use tandem_protocol::types::Role;

/// First retry delay after a failed link; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Redis retries the master once a second; so do we at most.
const RETRY_MAX: Duration = Duration::from_secs(1);
/// How often a replica sends `REPLCONF ACK`.
const ACK_PERIOD: Duration = Duration::from_secs(1);
/// Longest reply line accepted during the handshake.
const MAX_LINE: usize = 64 * 1024;
/// Largest bulk argument accepted in the master's stream.
const MAX_BULK: usize = 512 << 20;
/// Largest argument count accepted in the master's stream.
const MAX_ARGS: usize = 1 << 20;
/// Read granularity.
const READ_CHUNK: usize = 64 * 1024;

/// The link's state, Redis's words (ROLE's fourth element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Not a replica.
    None = 0,
    /// Must connect (waiting for the next try).
    Connect = 1,
    /// TCP connect in progress.
    Connecting = 2,
    /// PING / AUTH / REPLCONF / PSYNC exchange.
    Handshake = 3,
    /// Receiving the full-sync payload.
    Sync = 4,
    /// Applying the stream.
    Connected = 5,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::None => "none",
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
    fn from_u8(v: u8) -> LinkState {
        match v {
            1 => LinkState::Connect,
            2 => LinkState::Connecting,
            3 => LinkState::Handshake,
            4 => LinkState::Sync,
            5 => LinkState::Connected,
            _ => LinkState::None,
        }
    }
}

/// The replica's view of its master.
#[derive(Default)]
pub struct Link {
    master: Mutex<Option<(String, u16)>>,
    task: Mutex<Option<JoinHandle<()>>>,
    state: AtomicU8,
    generation: AtomicU64,
    /// True when PSYNC may ask to continue our own history (Redis's cached master).
    cached: AtomicBool,
    /// Bytes of the stream read from the master (`slave_read_repl_offset`).
    read_off: AtomicU64,
    /// Bytes of the stream applied (`slave_repl_offset`, what ACK reports).
    applied_off: AtomicU64,
    /// Unix seconds of the last byte from the master (0: never).
    last_io: AtomicU64,
    /// Unix seconds the link went down (0: never was up).
    down_since: AtomicU64,
    /// Payload size (-1: EOF-marked, unknown) and bytes read so far.
    transfer_size: AtomicI64,
    transfer_read: AtomicU64,
    /// Someone asked for an ACK now (REPLCONF GETACK from a client).
    ack_now: Notify,
    /// The database the master's stream is in (kept across reconnects: a partial resync
    /// continues the stream where it was, with no SELECT).
    stream_db: std::sync::atomic::AtomicUsize,
}

impl Link {
    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Relaxed))
    }
    fn set_state(&self, s: LinkState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
    /// `master_link_status:up`.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.state() == LinkState::Connected
    }
    pub fn master(&self) -> Option<(String, u16)> {
        self.master.lock().clone()
    }
    pub fn request_ack(&self) {
        self.ack_now.notify_one();
    }
    pub fn read_offset(&self) -> u64 {
        self.read_off.load(Ordering::Relaxed)
    }
    pub fn applied_offset(&self) -> u64 {
        self.applied_off.load(Ordering::Relaxed)
    }
    /// `master_last_io_seconds_ago` (-1 when not connected).
    pub fn last_io_ago(&self) -> i64 {
        let t = self.last_io.load(Ordering::Relaxed);
        if !self.is_up() || t == 0 {
            return -1;
        }
        super::master::unix_secs().saturating_sub(t) as i64
    }
    /// `master_link_down_since_seconds` (-1: never up).
    pub fn down_since_ago(&self) -> i64 {
        match self.down_since.load(Ordering::Relaxed) {
            0 => -1,
            t => super::master::unix_secs().saturating_sub(t) as i64,
        }
    }
    /// A history restored at start-up (see [`super::restore_from_rdb`]).
    pub fn restore(&self, offset: u64, db: usize) {
        self.cached.store(true, Ordering::Relaxed);
        self.applied_off.store(offset, Ordering::Relaxed);
        self.read_off.store(offset, Ordering::Relaxed);
        self.stream_db.store(db, Ordering::Relaxed);
    }

    fn progress(&self, n: usize) {
        self.transfer_read.fetch_add(n as u64, Ordering::Relaxed);
        self.last_io
            .store(super::master::unix_secs(), Ordering::Relaxed);
    }

    /// (total, read, last io seconds ago) of the payload being received.
    pub fn transfer(&self) -> (i64, u64, i64) {
        let t = self.last_io.load(Ordering::Relaxed);
        (
            self.transfer_size.load(Ordering::Relaxed),
            self.transfer_read.load(Ordering::Relaxed),
            super::master::unix_secs().saturating_sub(t) as i64,
        )
    }
}

/// REPLICAOF host port: become (or stay) a replica of that master and start the link.
pub fn set_master(srv: &Arc<Server>, host: String, port: u16) {
    let link = &srv.repl.link;
    let was_master = !srv.is_replica();
    srv.set_role(Role::Replica);
    srv.feed.set_relay_only(true);
    srv.repl.refresh_guards(srv);
    if was_master {
        // Our own history is what we ask the new master to continue (PSYNC2).
        link.cached.store(true, Ordering::Relaxed);
        link.applied_off.store(srv.feed.offset(), Ordering::Relaxed);
        link.read_off.store(srv.feed.offset(), Ordering::Relaxed);
    }
    *link.master.lock() = Some((host.clone(), port));
    let gen = link.generation.fetch_add(1, Ordering::SeqCst) + 1;
    link.set_state(LinkState::Connect);
    let s = srv.clone();
    let handle = srv.repl.spawn(async move { run(s, gen, host, port).await });
    if let Some(old) = link.task.lock().replace(handle) {
        old.abort();
    }
}

/// REPLICAOF NO ONE: stop the link and become a master that continues this history under
/// a new replid (the old one kept as replid2 up to the current offset, PSYNC2).
pub fn unset_master(srv: &Arc<Server>) {
    let link = &srv.repl.link;
    if !srv.is_replica() {
        return;
    }
    link.generation.fetch_add(1, Ordering::SeqCst);
    if let Some(t) = link.task.lock().take() {
        t.abort();
    }
    *link.master.lock() = None;
    link.set_state(LinkState::None);
    link.cached.store(false, Ordering::Relaxed);
    srv.feed.with_state(|st| {
        srv.repl.with_ids(|ids| {
            ids.replid2 = std::mem::replace(&mut ids.replid, tandem_protocol::types::random_hex_id());
            ids.second_offset = st.offset as i64 + 1;
            tracing::info!(replid = %ids.replid, replid2 = %ids.replid2, second_offset = ids.second_offset, "replication id shifted: now a master continuing the old history");
        });
        st.last_db = None;
    });
    srv.set_role(Role::Master);
    srv.repl
        .no_replicas_since
        .store(super::master::unix_secs(), Ordering::Relaxed);
    srv.feed.set_relay_only(false);
    srv.repl.refresh_guards(srv);
    srv.repl.disconnect_replicas();
}

/// The link task: connect, sync, stream; on any failure log, wait, retry.
async fn run(srv: Arc<Server>, gen: u64, host: String, port: u16) {
    let link = &srv.repl.link;
    let peer = format!("{host}:{port}");
    let mut backoff = RETRY_MIN;
    let mut shutdown = srv.shutdown_signal();
    loop {
        if link.generation.load(Ordering::SeqCst) != gen {
            return;
        }
        tracing::info!(master = %peer, "connecting to master");
        let mut was_up = false;
        let r = tokio::select! {
            r = session(&srv, gen, &host, port, &mut was_up) => r,
            _ = shutdown.changed() => return,
        };
        if link.generation.load(Ordering::SeqCst) != gen {
            return;
        }
        if link.is_up() || was_up {
            link.down_since
                .store(super::master::unix_secs(), Ordering::Relaxed);
        }
        link.set_state(LinkState::Connect);
        if let Err(reason) = r {
            tracing::warn!(master = %peer, %reason, "replication link dropped; will retry");
        }
        if was_up {
            backoff = RETRY_MIN;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

type LinkResult = Result<(), String>;

/// A buffered connection to the master.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    timeout: Duration,
}

impl Conn {
    async fn fill(&mut self) -> Result<usize, String> {
        self.buf.reserve(READ_CHUNK);
        match tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Err("timeout reading from master".into()),
            Ok(Err(e)) => Err(format!("read error: {e}")),
            Ok(Ok(0)) => Err("connection closed by master".into()),
            Ok(Ok(n)) => Ok(n),
        }
    }

    /// One reply line without its CRLF.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l = self.buf.split_to(i + 1);
                let l = l.strip_suffix(b"\n").unwrap_or(&l);
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                return Ok(String::from_utf8_lossy(l).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err("protocol error: reply line too long".into());
            }
            self.fill().await?;
        }
    }

    /// A reply line, skipping the empty keepalive lines a master sends before the payload.
    async fn line_skip_empty(&mut self) -> Result<String, String> {
        loop {
            let l = self.line().await?;
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write error: {e}")),
            Err(_) => Err("timeout writing to master".into()),
        }
    }
}

/// One connection to the master, from TCP connect to the end of the stream.
async fn session(
    srv: &Arc<Server>,
    gen: u64,
    host: &str,
    port: u16,
    was_up: &mut bool,
) -> LinkResult {
    let link = &srv.repl.link;
    let cfg = srv.config.load_full();
    let timeout = Duration::from_secs(cfg.repl_timeout.max(1));
    link.set_state(LinkState::Connecting);
    // bind-source-addr: the address the master sees this link come from.
    let source = match cfg.bind_source_addr.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.parse() {
            Ok(ip) => Some(ip),
            Err(_) => return Err(format!("bind-source-addr is not an IP address: {a:?}")),
        },
    };
    let connect = tandem_protocol::client::connect_tcp((host, port), source);
    let stream = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
        Err(_) => return Err("timeout connecting".into()),
    };
    let _ = stream.set_nodelay(true);
    let mut c = Conn {
        stream,
        buf: BytesMut::with_capacity(READ_CHUNK),
        timeout,
    };
    link.set_state(LinkState::Handshake);
    // PING: any +reply, or an auth error (AUTH follows), is fine.
    c.send(&super::encode(&[b"PING"])).await?;
    let pong = c.line_skip_empty().await?;
    if pong.starts_with('-')
        && !(pong.starts_with("-NOAUTH")
            || pong.starts_with("-NOPERM")
            || pong.starts_with("-ERR operation not permitted"))
    {
        return Err(format!("error reply to PING from master: {pong}"));
    }
    // AUTH, REPLCONF listening-port, [ip-address], capa: pipelined, replies read in order.
    let mut out = BytesMut::new();
    let mut expect = Vec::new();
    if let Some(pass) = cfg.masterauth.as_deref().filter(|p| !p.is_empty()) {
        match cfg.masteruser.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => {
                out.extend_from_slice(&super::encode(&[b"AUTH", u.as_bytes(), pass.as_bytes()]))
            }
            None => out.extend_from_slice(&super::encode(&[b"AUTH", pass.as_bytes()])),
        }
        expect.push("AUTH");
    }
    let lport = cfg
        .replica_announce_port
        .map(|p| p as u64)
        .unwrap_or_else(|| srv.port.load(Ordering::Relaxed))
        .to_string();
    out.extend_from_slice(&super::encode(&[
        b"REPLCONF",
        b"listening-port",
        lport.as_bytes(),
    ]));
    expect.push("REPLCONF listening-port");
    if let Some(ip) = cfg.replica_announce_ip.as_deref().filter(|s| !s.is_empty()) {
        out.extend_from_slice(&super::encode(&[b"REPLCONF", b"ip-address", ip.as_bytes()]));
        expect.push("REPLCONF ip-address");
    }
    out.extend_from_slice(&super::encode(&[
        b"REPLCONF",
        b"capa",
        b"eof",
        b"capa",
        b"psync2",
    ]));
    expect.push("REPLCONF capa");
    c.send(&out).await?;
    for what in expect {
        let r = c.line_skip_empty().await?;
        if r.starts_with('-') {
            if what == "AUTH" {
                return Err(format!("unable to AUTH to master: {r}"));
            }
            tracing::info!(master = %format!("{host}:{port}"), reply = %r, "(non critical) master does not understand {what}");
        }
    }
    // PSYNC with our cached history, or `? -1`.
    let (ask_id, ask_off) = if link.cached.load(Ordering::Relaxed) {
        (srv.repl.replid(), (srv.feed.offset() + 1).to_string())
    } else {
        ("?".to_string(), "-1".to_string())
    };
    // A master handing its role over (FAILOVER) asks the target to become the master.
    let failing_over = super::failover::psync_suffix(srv);
    let mut psync: Vec<&[u8]> = vec![b"PSYNC", ask_id.as_bytes(), ask_off.as_bytes()];
    if failing_over {
        psync.push(b"FAILOVER");
    }
    if let Err(e) = c.send(&super::encode(&psync)).await {
        if failing_over {
            super::failover::abort(srv, "Write error to failover target");
        }
        return Err(e);
    }
    let reply = c.line_skip_empty().await?;
    if failing_over {
        // Any full or partial resync completes it (Redis: "nothing technically wrong with a
        // full resync"); an error aborts it and makes us a master again.
        let accepted = reply.starts_with("+CONTINUE") || reply.starts_with("+FULLRESYNC");
        super::failover::psync_done(srv, accepted);
        if !accepted {
            return Err(format!("failover target rejected PSYNC: {reply}"));
        }
    }
    let mut applier;
    // False for a master that only knows the old SYNC: it expects no ACKs.
    let mut acks = true;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
        let mut parts = rest.split_whitespace();
        let (Some(id), Some(off)) = (
            parts.next(),
            parts
                .next()
                .and_then(|o| o.parse::<u64>().ok())
                .filter(|o| *o <= super::MAX_OFFSET),
        ) else {
            return Err(format!("bad FULLRESYNC reply: {reply}"));
        };
        link.cached.store(false, Ordering::Relaxed);
        let db = full_sync(srv, gen, &mut c, id.to_string(), off).await?;
        applier = Applier::new(off, db);
        // Diskless transfers start the stream on our first ACK: send it now.
        c.send(&ack_cmd(off)).await?;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let new_id = rest.trim();
        let off = srv.feed.offset();
        srv.feed.with_state(|st| {
            if !new_id.is_empty() {
                srv.repl.with_ids(|ids| {
                    if ids.replid != new_id {
                        // PSYNC2: the master continues our history under a new id.
                        ids.replid2 = std::mem::replace(&mut ids.replid, new_id.to_string());
                        ids.second_offset = st.offset as i64 + 1;
                        tracing::info!(replid = %ids.replid, replid2 = %ids.replid2, "master replication id changed");
                        srv.repl.disconnect_replicas();
                    }
                });
            }
            if st.backlog.is_none() {
                st.backlog = Some(Backlog::new(
                    srv.config.load().repl_backlog_size.0 as usize,
                    st.offset,
                ));
            }
        });
        tracing::info!(master = %format!("{host}:{port}"), offset = off, "partial resynchronization accepted");
        applier = Applier::new(off, link.stream_db.load(Ordering::Relaxed));
    } else if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
        return Err(format!("master is not ready: {reply}"));
    } else if reply.starts_with('-') {
        // A master without PSYNC: fall back to the old SYNC, as Redis does. The payload comes
        // with no +FULLRESYNC line, so this history gets an id of its own and starts at 0.
        tracing::info!(master = %format!("{host}:{port}"), %reply, "master does not support PSYNC, falling back to SYNC");
        c.send(&super::encode(&[b"SYNC"])).await?;
        link.cached.store(false, Ordering::Relaxed);
        let replid = tandem_protocol::types::random_hex_id();
        let db = full_sync(srv, gen, &mut c, replid, 0).await?;
        applier = Applier::new(0, db);
        acks = false;
    } else {
        return Err(format!("unexpected reply to PSYNC: {reply}"));
    }
    if link.generation.load(Ordering::SeqCst) != gen {
        return Ok(());
    }
    link.cached.store(true, Ordering::Relaxed);
    link.set_state(LinkState::Connected);
    link.last_io
        .store(super::master::unix_secs(), Ordering::Relaxed);
    link.applied_off.store(applier.reploff, Ordering::Relaxed);
    *was_up = true;
    tracing::info!(master = %format!("{host}:{port}"), "MASTER <-> REPLICA sync: master link is up");
    stream_loop(srv, &mut c, &mut applier, acks).await
}

fn ack_cmd(off: u64) -> Bytes {
    super::encode(&[b"REPLCONF", b"ACK", off.to_string().as_bytes()])
}

/// Receives the payload after `+FULLRESYNC`, loads it, and installs it with the new
/// history (id, offset, fresh backlog) in one step. Returns the stream's database
/// (`repl-stream-db`).
async fn full_sync(
    srv: &Arc<Server>,
    gen: u64,
    c: &mut Conn,
    replid: String,
    offset: u64,
) -> Result<usize, String> {
    let link = &srv.repl.link;
    link.set_state(LinkState::Sync);
    let head = c.line_skip_empty().await?;
    if head.starts_with('-') {
        return Err(format!("master aborted the transfer: {head}"));
    }
    let Some(spec) = head.strip_prefix('$') else {
        return Err(format!("bad payload header from master: {head:?}"));
    };
    let mark = spec.strip_prefix("EOF:").map(|m| m.as_bytes().to_vec());
    let size = match &mark {
        Some(m) if m.len() == 40 => -1,
        Some(_) => return Err("bad EOF mark from master".into()),
        None => spec
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("bad payload length from master: {head:?}"))?,
    };
    link.transfer_size.store(size, Ordering::Relaxed);
    link.transfer_read.store(0, Ordering::Relaxed);
    // Sub-replicas must resync from the new history.
    srv.repl.disconnect_replicas();
    let dir = srv.config.load().dir.clone();
    let tmp = dir.join(format!(
        "temp-{}.{}.rdb",
        std::process::id(),
        crate::now_ms()
    ));
    let r = receive_payload(c, link, &tmp, size, mark.as_deref()).await;
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    tracing::info!(
        bytes = link.transfer_read.load(Ordering::Relaxed),
        "MASTER <-> REPLICA sync: payload received, loading"
    );
    let path = tmp.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open payload: {e}"))?;
        payload::load(f, "payload from master")
    })
    .await
    .map_err(|_| "payload loading failed".to_string())
    .and_then(|r| r);
    let _ = std::fs::remove_file(&tmp);
    let loaded = loaded.map_err(|e| format!("cannot load the payload: {e}"))?;
    if link.generation.load(Ordering::SeqCst) != gen {
        return Err("replication target changed during sync".into());
    }
    let size = srv.config.load().repl_backlog_size.0 as usize;
    let stream_db = loaded
        .aux
        .repl_stream_db
        .filter(|d| *d >= 0 && (*d as usize) < srv.keyspace.databases())
        .unwrap_or(0) as usize;
    payload::install(srv, loaded, || {
        srv.feed.with_state(|st| {
            st.offset = offset;
            st.backlog = Some(Backlog::new(size, offset));
            st.last_db = None;
            srv.repl.with_ids(|ids| {
                ids.replid = replid.clone();
                ids.replid2 = super::NO_REPLID.to_string();
                ids.second_offset = -1;
            });
        });
    })
    .map_err(|e| format!("cannot install the payload: {e}"))?;
    link.read_off.store(offset, Ordering::Relaxed);
    link.applied_off.store(offset, Ordering::Relaxed);
    tracing::info!(%replid, offset, "MASTER <-> REPLICA sync: finished with success");
    crate::persistence::aof::restart_after_sync(srv);
    Ok(stream_db)
}

async fn receive_payload(
    c: &mut Conn,
    link: &Link,
    tmp: &std::path::Path,
    size: i64,
    mark: Option<&[u8]>,
) -> LinkResult {
    let mut f = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut written: u64 = 0;
    match mark {
        None => {
            let total = size as u64;
            while written < total {
                if c.buf.is_empty() {
                    c.fill().await?;
                }
                let take = (total - written).min(c.buf.len() as u64) as usize;
                let chunk = c.buf.split_to(take);
                f.write_all(&chunk)
                    .await
                    .map_err(|e| format!("cannot write payload: {e}"))?;
                written += take as u64;
                link.progress(take);
            }
        }
        Some(mark) => {
            // Everything up to the 40-byte mark that ends the payload.
            loop {
                if let Some(i) = find(&c.buf, mark) {
                    let chunk = c.buf.split_to(i);
                    let _ = c.buf.split_to(mark.len());
                    f.write_all(&chunk)
                        .await
                        .map_err(|e| format!("cannot write payload: {e}"))?;
                    link.progress(chunk.len());
                    break;
                }
                // Keep the last 40 bytes: the mark may straddle two reads.
                if c.buf.len() > mark.len() {
                    let n = c.buf.len() - mark.len();
                    let chunk = c.buf.split_to(n);
                    f.write_all(&chunk)
                        .await
                        .map_err(|e| format!("cannot write payload: {e}"))?;
                    link.progress(n);
                }
                c.fill().await?;
            }
        }
    }
    f.flush()
        .await
        .map_err(|e| format!("cannot write payload: {e}"))?;
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Applies the stream: commands in order, ACK every second (and on GETACK; never to a master
/// reached with the old SYNC, `acks` false), timeout when the master is silent for
/// `repl-timeout`.
async fn stream_loop(srv: &Arc<Server>, c: &mut Conn, a: &mut Applier, acks: bool) -> LinkResult {
    let link = &srv.repl.link;
    let mut tick = tokio::time::interval(ACK_PERIOD);
    let mut out = BytesMut::new();
    link.read_off
        .store(a.reploff + c.buf.len() as u64, Ordering::Relaxed);
    loop {
        let before = a.reploff;
        let applied = a.apply_buffered(srv, &mut c.buf, &mut out);
        if a.reploff != before {
            // Our own replicas get the relayed stream now, from this thread (as a session
            // pushes its writes), rather than from their sender tasks.
            srv.repl.replicas.push(srv);
        }
        applied?;
        link.applied_off.store(a.reploff, Ordering::Relaxed);
        link.stream_db.store(a.db, Ordering::Relaxed);
        if !out.is_empty() {
            c.send(&out).await?;
            out.clear();
        }
        if c.buf.len() > MAX_BULK * 2 {
            return Err("master stream buffer limit reached".into());
        }
        c.buf.reserve(READ_CHUNK);
        tokio::select! {
            r = c.stream.read_buf(&mut c.buf) => match r {
                Ok(0) => return Err("connection closed by master".into()),
                Err(e) => return Err(format!("read error: {e}")),
                Ok(n) => {
                    link.read_off.fetch_add(n as u64, Ordering::Relaxed);
                    link.last_io.store(super::master::unix_secs(), Ordering::Relaxed);
                }
            },
            _ = tick.tick() => {
                if acks {
                    out.extend_from_slice(&ack_cmd(a.reploff));
                }
                let timeout = srv.config.load().repl_timeout;
                let last = link.last_io.load(Ordering::Relaxed);
                if super::master::unix_secs().saturating_sub(last) > timeout {
                    return Err("timeout: no data from master".into());
                }
            }
            _ = link.ack_now.notified() => out.extend_from_slice(&ack_cmd(a.reploff)),
        }
    }
}

/// A command of a MULTI from the master, waiting for EXEC.
type Queued = (&'static CommandSpec, Vec<Bytes>);

/// Applies the master's commands and relays them.
struct Applier {
    /// Offset of the last byte applied.
    reploff: u64,
    /// The stream's selected database.
    db: usize,
    /// A MULTI from the master: (spec, args) queued, and the raw bytes since MULTI.
    multi: Option<(Vec<Queued>, BytesMut)>,
    /// Reused per batch: the length and argument ranges of each complete command.
    parsed: Vec<(usize, Ranges)>,
    /// Reused per command: the arguments of the command being applied.
    args: Vec<Bytes>,
}

impl Applier {
    fn new(reploff: u64, db: usize) -> Applier {
        Applier {
            reploff,
            db,
            multi: None,
            parsed: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Applies every complete command in `buf`; ACKs asked by GETACK go to `out`.
    fn apply_buffered(
        &mut self,
        srv: &Server,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> LinkResult {
        // One clock reading per batch: commands from the master never expire keys here, and
        // their relative times were made absolute by the master.
        let now = crate::now_ms();
        // Every complete command first, so the batch is split off the buffer once; what
        // precedes a protocol error is still applied.
        let mut parsed = std::mem::take(&mut self.parsed);
        parsed.clear();
        let mut end = 0;
        let result = loop {
            match parse_command(&buf[end..]) {
                Ok(Some((len, ranges))) => {
                    parsed.push((len, ranges));
                    end += len;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if end > 0 {
            let batch = buf.split_to(end).freeze();
            let mut args = std::mem::take(&mut self.args);
            let mut at = 0;
            for (len, ranges) in &parsed {
                args.clear();
                args.extend(ranges.iter().map(|r| batch.slice(at + r.start..at + r.end)));
                self.apply(srv, &mut args, &batch[at..at + len], now, out);
                at += len;
            }
            args.clear();
            self.args = args;
        }
        self.parsed = parsed;
        result
    }

    /// Counts `raw` as applied and relays it to our replicas (and AOF). Commands that change
    /// data call this while still holding their keys' locks, so a snapshot taken for a
    /// sub-replica sees data and offset in step.
    fn processed(&mut self, srv: &Server, raw: &[u8]) {
        self.reploff += raw.len() as u64;
        srv.feed.append_raw(raw, Some(self.db));
    }

    /// Like [`Self::processed`] for commands that apply to no database and stay out of the
    /// AOF (`PING`, `REPLCONF`, `PUBLISH`): relayed to our replicas only.
    fn processed_meta(&mut self, srv: &Server, raw: &[u8]) {
        self.reploff += raw.len() as u64;
        srv.feed.append_raw_meta(raw);
    }

    /// Applies one command (`args`, taken when a MULTI queues it) whose stream bytes are `raw`.
    fn apply(
        &mut self,
        srv: &Server,
        args: &mut Vec<Bytes>,
        raw: &[u8],
        now: u64,
        out: &mut BytesMut,
    ) {
        if args.is_empty() {
            self.processed(srv, raw);
            return;
        }
        let Some(spec) = command::lookup(&args[0]) else {
            tracing::warn!(command = %String::from_utf8_lossy(&args[0]), "unknown command in the master's stream");
            self.processed(srv, raw);
            return;
        };
        if let Some((queue, bytes)) = self.multi.as_mut() {
            bytes.extend_from_slice(raw);
            match spec.cmd {
                Cmd::Exec => {
                    let queue: Vec<Queued> = std::mem::take(queue);
                    let bytes = std::mem::take(bytes);
                    self.multi = None;
                    self.exec(srv, &queue, &bytes, now);
                }
                Cmd::Discard => {
                    let bytes = std::mem::take(bytes);
                    self.multi = None;
                    self.processed(srv, &bytes);
                }
                _ => queue.push((spec, std::mem::take(args))),
            }
            return;
        }
        match spec.cmd {
            Cmd::ReplConf => {
                if args.len() >= 2 && cmd::args::is(&args[1], "getack") {
                    // The ACK excludes the GETACK's own bytes.
                    out.extend_from_slice(&ack_cmd(self.reploff));
                }
                self.processed_meta(srv, raw);
                return;
            }
            Cmd::Ping => {
                self.processed_meta(srv, raw);
                return;
            }
            Cmd::Multi => {
                self.multi = Some((Vec::new(), BytesMut::from(raw)));
                return;
            }
            Cmd::Select => match cmd::args::int(&args.get(1).cloned().unwrap_or_default()) {
                Ok(n) if n >= 0 && (n as usize) < srv.keyspace.databases() => self.db = n as usize,
                _ => tracing::warn!("invalid SELECT in the master's stream"),
            },
            _ => {
                self.exec(srv, &[(spec, &args[..])], raw, now);
                return;
            }
        }
        self.processed(srv, raw);
    }

    /// Runs commands atomically under the locks of all their keys, keys never expiring,
    /// and counts/relays their bytes (`raw`) before releasing the locks.
    fn exec<A: AsRef<[Bytes]>>(
        &mut self,
        srv: &Server,
        cmds: &[(&'static CommandSpec, A)],
        raw: &[u8],
        now: u64,
    ) {
        let all = cmds
            .iter()
            .any(|(s, _)| s.has(Flags::KEYSPACE) || s.cmd == Cmd::Select);
        let mut ctx = if all {
            Ctx::all(srv, self.db, now)
        } else {
            let keys = cmds.iter().flat_map(|(s, a)| {
                let a = a.as_ref();
                s.key_indices(a.len()).map(move |i| &a[i][..])
            });
            Ctx::for_keys(srv, keys, self.db, now)
        };
        ctx.from_master = true;
        for (spec, args) in cmds {
            let args = args.as_ref();
            if !spec.arity_ok(args.len()) {
                tracing::warn!(command = spec.name, "wrong arity in the master's stream");
                continue;
            }
            let r = cmd::execute(&mut ctx, spec, args);
            if let tandem_protocol::Reply::Error(e) = &r {
                tracing::warn!(command = spec.name, error = %e, "command from the master failed on this replica");
            }
        }
        ctx.expired_dels.clear();
        ctx.propagate.clear();
        if ctx.dirty > 0 {
            srv.dirty.fetch_add(ctx.dirty, Ordering::Relaxed);
        }
        let db_after = ctx.db;
        // The stream's database for the relay is the one before these commands ran.
        if cmds.len() == 1 && crate::propagate::is_repl_only(cmds[0].1.as_ref()) {
            self.processed_meta(srv, raw);
        } else {
            self.processed(srv, raw);
        }
        self.db = db_after;
        drop(ctx);
    }
}

type Ranges = smallvec::SmallVec<[std::ops::Range<usize>; 4]>;

/// Parses one RESP multibulk at the start of `buf`: its length and argument ranges, or
/// `None` if incomplete. A bare `\n` (keepalive) is an empty command.
fn parse_command(buf: &[u8]) -> Result<Option<(usize, Ranges)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'\n' {
        return Ok(Some((1, Ranges::new())));
    }
    if buf[0] != b'*' {
        return Err(format!(
            "protocol error in the master's stream: expected '*', got {:?}",
            buf[0] as char
        ));
    }
    let Some((n, mut pos)) = parse_len(buf, 1)? else {
        return Ok(None);
    };
    if n < 0 || n as usize > MAX_ARGS {
        return Err("protocol error in the master's stream: bad multibulk length".into());
    }
    let mut ranges = Ranges::new();
    for _ in 0..n {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(format!(
                "protocol error in the master's stream: expected '$', got {:?}",
                buf[pos] as char
            ));
        }
        let Some((len, p)) = parse_len(buf, pos + 1)? else {
            return Ok(None);
        };
        if len < 0 || len as usize > MAX_BULK {
            return Err("protocol error in the master's stream: bad bulk length".into());
        }
        let end = p + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err("protocol error in the master's stream: bulk not terminated".into());
        }
        ranges.push(p..end);
        pos = end + 2;
    }
    Ok(Some((pos, ranges)))
}

/// A decimal length ending in CRLF starting at `at`: (value, position after CRLF).
fn parse_len(buf: &[u8], at: usize) -> Result<Option<(i64, usize)>, String> {
    let Some(rel) = buf[at.min(buf.len())..]
        .iter()
        .take(24)
        .position(|&b| b == b'\r')
    else {
        if buf.len().saturating_sub(at) > 22 {
            return Err("protocol error in the master's stream: length too long".into());
        }
        return Ok(None);
    };
    let end = at + rel;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if buf[end + 1] != b'\n' {
        return Err("protocol error in the master's stream: bad line end".into());
    }
    let n = tandem_protocol::number::parse_i64(&buf[at..end])
        .ok_or_else(|| "protocol error in the master's stream: bad length".to_string())?;
    Ok(Some((n, end + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stream_commands() {
        let b = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$4\r\nPI";
        let (len, r) = parse_command(b).unwrap().unwrap();
        assert_eq!(len, 23);
        assert_eq!(&b[r[0].clone()], b"SELECT");
        assert_eq!(&b[r[1].clone()], b"0");
        assert!(parse_command(&b[len..]).unwrap().is_none());
        assert!(parse_command(b"+OK\r\n").is_err());
        assert!(parse_command(b"*1\r\n$-5\r\n").is_err());
        assert!(parse_command(b"*1\r\n$3\r\nabcXY").is_err());
        assert_eq!(parse_command(b"\n").unwrap().unwrap().0, 1);
    }
}

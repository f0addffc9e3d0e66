//! The sentinel's own port: SENTINEL subcommands, PING, INFO, ROLE, HELLO, AUTH, CLIENT,
//! and pub/sub where every event is published on the channel of its name.
//! Guarantee: replies, reply types and error texts are Redis Sentinel 7.0's; a vote is on
//! disk before it is answered.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_protocol::connection::Connection;
use tandem_protocol::frame::RequestLimits;
use tandem_protocol::glob;
use tandem_protocol::types::{NodeAddr, Protocol};
use tandem_protocol::Reply;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use crate::failover::select_replica;
use crate::instance::{Link, Master, Reconf, Settings, SimFailure, HELLO_CHANNEL};
use crate::{Event, Shared};

/// The Redis version the sentinel reports (HELLO, INFO).
pub const REDIS_VERSION: &str = "7.0.15";

/// Redis's defaults for a master added with SENTINEL MONITOR.
const DEFAULT_DOWN_AFTER: Duration = Duration::from_millis(30_000);
const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_millis(180_000);

/// Accepts connections until `shutdown` completes.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(handle(shared.clone(), sock, peer.to_string()));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// One client's session state.
struct Session {
    id: u64,
    name: Option<Bytes>,
    authed: bool,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    events: Option<broadcast::Receiver<Arc<Event>>>,
}

impl Session {
    fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

enum Flow {
    Continue,
    Close,
}

async fn recv_event(
    rx: &mut Option<broadcast::Receiver<Arc<Event>>>,
) -> Result<Arc<Event>, broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn handle(shared: Arc<Shared>, sock: TcpStream, peer: String) {
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let mut conn = Connection::new(sock, peer, RequestLimits::default());
    let mut sess = Session {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        name: None,
        authed: shared.requirepass.is_none(),
        channels: BTreeSet::new(),
        patterns: BTreeSet::new(),
        events: None,
    };
    loop {
        // Flushed here, so the read below never has to write and can be cancelled safely.
        if conn.flush().await.is_err() {
            break;
        }
        tokio::select! {
            req = conn.read_request() => match req {
                Ok(Some(args)) => {
                    shared.commands.fetch_add(1, Ordering::Relaxed);
                    if let Flow::Close = execute(&shared, &mut sess, &mut conn, &args) {
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            },
            ev = recv_event(&mut sess.events) => match ev {
                Ok(ev) => deliver(&sess, &mut conn, &ev),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let _ = conn.flush().await;
    shared.connections.fetch_sub(1, Ordering::Relaxed);
}

fn deliver(sess: &Session, conn: &mut Connection<TcpStream>, ev: &Event) {
    let ch = ev.channel.as_bytes();
    let proto = conn.protocol;
    let push = |items: Vec<Reply>| match proto {
        Protocol::Resp3 => Reply::Push(items),
        Protocol::Resp2 => Reply::Array(items),
    };
    if sess.channels.contains(ch) {
        let r = push(vec![
            Reply::bulk_str("message"),
            Reply::bulk_slice(ch),
            Reply::bulk_str(&ev.text),
        ]);
        conn.queue(&r);
    }
    for p in &sess.patterns {
        if glob::matches(p, ch, false) {
            let r = push(vec![
                Reply::bulk_str("pmessage"),
                Reply::bulk(p.clone()),
                Reply::bulk_slice(ch),
                Reply::bulk_str(&ev.text),
            ]);
            conn.queue(&r);
        }
    }
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn arity_error(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

fn unknown_command(args: &[Bytes]) -> Reply {
    let mut s = format!(
        "ERR unknown command '{}', with args beginning with: ",
        trunc(&args[0])
    );
    for a in &args[1..] {
        s.push_str(&format!("'{}' ", trunc(a)));
    }
    Reply::error(s)
}

fn trunc(b: &[u8]) -> String {
    let t = text(b);
    t.chars().take(128).collect()
}

/// Command arities as in Redis's sentinel command table (negative: at least).
fn command_arity(cmd: &str) -> Option<i64> {
    Some(match cmd {
        "ping" => -1,
        "sentinel" => -2,
        "subscribe" | "psubscribe" => -2,
        "unsubscribe" | "punsubscribe" => -1,
        "publish" => 3,
        "info" => -1,
        "role" => 1,
        "client" => -2,
        "shutdown" => -1,
        "auth" => -2,
        "hello" => -1,
        "command" => -1,
        "quit" => -1,
        "reset" => 1,
        _ => return None,
    })
}

fn arity_ok(arity: i64, argc: usize) -> bool {
    if arity >= 0 {
        argc as i64 == arity
    } else {
        argc as i64 >= -arity
    }
}

fn execute(
    shared: &Arc<Shared>,
    sess: &mut Session,
    conn: &mut Connection<TcpStream>,
    args: &[Bytes],
) -> Flow {
    let cmd = lower(&args[0]);
    let Some(arity) = command_arity(&cmd) else {
        conn.queue(&unknown_command(args));
        return Flow::Continue;
    };
    if !arity_ok(arity, args.len()) {
        conn.queue(&arity_error(&cmd));
        return Flow::Continue;
    }
    if !sess.authed && !matches!(cmd.as_str(), "auth" | "hello" | "quit") {
        conn.queue(&Reply::error("NOAUTH Authentication required."));
        return Flow::Continue;
    }
    if sess.subscriptions() > 0
        && conn.protocol == Protocol::Resp2
        && !matches!(
            cmd.as_str(),
            "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        conn.queue(&Reply::error(format!(
            "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )));
        return Flow::Continue;
    }
    let reply = match cmd.as_str() {
        "ping" => {
            if sess.subscriptions() > 0 && conn.protocol == Protocol::Resp2 {
                Reply::Array(vec![
                    Reply::bulk_str("pong"),
                    Reply::bulk(args.get(1).cloned().unwrap_or_default()),
                ])
            } else if args.len() > 2 {
                arity_error("ping")
            } else if let Some(m) = args.get(1) {
                Reply::bulk(m.clone())
            } else {
                Reply::status("PONG")
            }
        }
        "quit" => {
            conn.queue(&Reply::Ok);
            return Flow::Close;
        }
        "reset" => {
            unsubscribe_all(sess, conn);
            sess.name = None;
            conn.protocol = Protocol::Resp2;
            sess.authed = shared.requirepass.is_none();
            Reply::status("RESET")
        }
        "subscribe" | "psubscribe" => {
            subscribe(shared, sess, conn, &args[1..], cmd == "psubscribe");
            return Flow::Continue;
        }
        "unsubscribe" | "punsubscribe" => {
            unsubscribe(sess, conn, &args[1..], cmd == "punsubscribe");
            return Flow::Continue;
        }
        "publish" => {
            if &args[1][..] != HELLO_CHANNEL.as_bytes() {
                Reply::error("ERR Only HELLO messages are accepted by Sentinel instances.")
            } else {
                let payload = args[2].clone();
                shared.with(|s| s.on_hello(&payload, Instant::now()));
                Reply::Int(1)
            }
        }
        "info" => info(shared, &args[1..]),
        "role" => {
            let names = shared
                .state
                .lock()
                .masters
                .keys()
                .map(|n| Reply::bulk_str(n))
                .collect();
            Reply::Array(vec![Reply::bulk_str("sentinel"), Reply::Array(names)])
        }
        "client" => client(sess, &args[1..]),
        "auth" => auth(shared, sess, &args[1..]),
        "hello" => hello(shared, sess, conn, &args[1..]),
        "command" => Reply::Array(vec![]),
        "shutdown" => {
            tracing::warn!("User requested shutdown...");
            shared.persist();
            std::process::exit(0);
        }
        "sentinel" => sentinel(shared, &args[1..]),
        _ => unknown_command(args),
    };
    conn.queue(&reply);
    Flow::Continue
}

fn push_or_array(conn: &Connection<TcpStream>, items: Vec<Reply>) -> Reply {
    match conn.protocol {
        Protocol::Resp3 => Reply::Push(items),
        Protocol::Resp2 => Reply::Array(items),
    }
}

fn subscribe(
    shared: &Arc<Shared>,
    sess: &mut Session,
    conn: &mut Connection<TcpStream>,
    names: &[Bytes],
    pattern: bool,
) {
    if sess.events.is_none() {
        sess.events = Some(shared.events.subscribe());
    }
    for n in names {
        if pattern {
            sess.patterns.insert(n.clone());
        } else {
            sess.channels.insert(n.clone());
        }
        let kind = if pattern { "psubscribe" } else { "subscribe" };
        let r = push_or_array(
            conn,
            vec![
                Reply::bulk_str(kind),
                Reply::bulk(n.clone()),
                Reply::Int(sess.subscriptions() as i64),
            ],
        );
        conn.queue(&r);
    }
}

fn unsubscribe(
    sess: &mut Session,
    conn: &mut Connection<TcpStream>,
    names: &[Bytes],
    pattern: bool,
) {
    let kind = if pattern {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let targets: Vec<Bytes> = if names.is_empty() {
        let set = if pattern {
            &sess.patterns
        } else {
            &sess.channels
        };
        set.iter().cloned().collect()
    } else {
        names.to_vec()
    };
    if targets.is_empty() {
        let r = push_or_array(
            conn,
            vec![
                Reply::bulk_str(kind),
                Reply::Nil,
                Reply::Int(sess.subscriptions() as i64),
            ],
        );
        conn.queue(&r);
    }
    for n in targets {
        if pattern {
            sess.patterns.remove(&n);
        } else {
            sess.channels.remove(&n);
        }
        let r = push_or_array(
            conn,
            vec![
                Reply::bulk_str(kind),
                Reply::bulk(n),
                Reply::Int(sess.subscriptions() as i64),
            ],
        );
        conn.queue(&r);
    }
    if sess.subscriptions() == 0 {
        sess.events = None;
    }
}

fn unsubscribe_all(sess: &mut Session, conn: &mut Connection<TcpStream>) {
    if !sess.channels.is_empty() {
        unsubscribe(sess, conn, &[], false);
    }
    if !sess.patterns.is_empty() {
        unsubscribe(sess, conn, &[], true);
    }
    sess.events = None;
}

fn client(sess: &mut Session, args: &[Bytes]) -> Reply {
    let sub = lower(&args[0]);
    match (sub.as_str(), args.len()) {
        ("setname", 2) => {
            if args[1].iter().any(|&b| b <= b' ' || b > b'~') {
                return Reply::error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            sess.name = (!args[1].is_empty()).then(|| args[1].clone());
            Reply::Ok
        }
        ("getname", 1) => Reply::opt_bulk(sess.name.clone()),
        ("id", 1) => Reply::Int(sess.id as i64),
        ("setname" | "getname" | "id", _) => arity_error(&format!("client|{sub}")),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            trunc(&args[0])
        )),
    }
}

fn auth(shared: &Shared, sess: &mut Session, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        return Reply::error("ERR syntax error");
    }
    let Some(pass) = &shared.requirepass else {
        return Reply::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    };
    let user_ok = args.len() == 1 || &args[0][..] == b"default";
    if user_ok && args[args.len() - 1][..] == *pass.as_bytes() {
        sess.authed = true;
        Reply::Ok
    } else {
        Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

fn hello(
    shared: &Shared,
    sess: &mut Session,
    conn: &mut Connection<TcpStream>,
    args: &[Bytes],
) -> Reply {
    let mut proto = conn.protocol;
    let mut i = 0;
    if let Some(v) = args.first() {
        proto = match &v[..] {
            b"2" => Protocol::Resp2,
            b"3" => Protocol::Resp3,
            _ => {
                if std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .is_none()
                {
                    return Reply::error("ERR Protocol version is not an integer or out of range");
                }
                return Reply::error("NOPROTO unsupported protocol version");
            }
        };
        i = 1;
    }
    while i < args.len() {
        let opt = lower(&args[i]);
        if opt == "auth" && i + 2 < args.len() {
            let r = auth(shared, sess, &args[i + 1..i + 3]);
            if r.is_error() {
                return r;
            }
            i += 3;
        } else if opt == "setname" && i + 1 < args.len() {
            sess.name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                trunc(&args[i])
            ));
        }
    }
    if !sess.authed {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    conn.protocol = proto;
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_VERSION)),
        (Reply::bulk_str("proto"), Reply::Int(proto.version())),
        (Reply::bulk_str("id"), Reply::Int(sess.id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("sentinel")),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ])
}

fn info(shared: &Shared, args: &[Bytes]) -> Reply {
    let wanted: Vec<String> = args.iter().map(|a| lower(a)).collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let want = |s: &str| all || wanted.iter().any(|w| w == s);
    let mut out = String::new();
    let uptime = shared.started.elapsed().as_secs();
    let s = shared.state.lock();
    if want("server") {
        out.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:sentinel\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nexecutable:tandem\r\n\r\n",
            std::env::consts::OS,
            std::process::id(),
            s.core.myid,
            shared.port,
            uptime,
            uptime / 86400
        ));
    }
    if want("clients") {
        out.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\n\r\n",
            shared.connections.load(Ordering::Relaxed)
        ));
    }
    if want("stats") {
        out.push_str(&format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            shared
                .next_client_id
                .load(Ordering::Relaxed)
                .saturating_sub(1),
            shared.commands.load(Ordering::Relaxed)
        ));
    }
    if want("sentinel") {
        out.push_str(&format!(
            "# Sentinel\r\nsentinel_masters:{}\r\nsentinel_tilt:0\r\nsentinel_tilt_since_seconds:-1\r\nsentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\nsentinel_simulate_failure_flags:{}\r\n",
            s.masters.len(),
            simfailure_flags(s.core.simfailure)
        ));
        for (i, m) in s.masters.values().enumerate() {
            let status = if m.odown_since.is_some() {
                "odown"
            } else if m.sdown_since.is_some() {
                "sdown"
            } else {
                "ok"
            };
            let a = m.current_addr();
            out.push_str(&format!(
                "master{i}:name={},status={status},address={}:{},slaves={},sentinels={}\r\n",
                m.name,
                a.host,
                a.port,
                m.replicas.len(),
                m.sentinels.len() + 1
            ));
        }
        out.push_str("\r\n");
    }
    // Redis ends the last section without the blank line's second CRLF.
    if out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    // Redis Sentinel 7.0 answers INFO with a plain bulk string, in RESP3 too.
    Reply::bulk(Bytes::from(out))
}

fn simfailure_flags(f: SimFailure) -> u32 {
    (f.crash_after_election as u32) | ((f.crash_after_promotion as u32) << 1)
}

// ---------------------------------------------------------------------------------------------
// SENTINEL subcommands.

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn ago(now: Instant, t: Instant) -> String {
    ms(now.saturating_duration_since(t))
}

fn ago_or_zero(now: Instant, t: Option<Instant>) -> String {
    t.map(|t| ago(now, t)).unwrap_or_else(|| "0".into())
}

fn fields(pairs: Vec<(&'static str, String)>) -> Reply {
    Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk_str(k), Reply::bulk(Bytes::from(v))))
            .collect(),
    )
}

fn link_fields(out: &mut Vec<(&'static str, String)>) {
    out.push(("link-pending-commands", "0".into()));
    out.push(("link-refcount", "1".into()));
}

fn ping_fields(out: &mut Vec<(&'static str, String)>, link: &Link, now: Instant) {
    let sent = if link.ping_pending {
        link.last_ping_sent
    } else {
        None
    };
    out.push(("last-ping-sent", ago_or_zero(now, sent)));
    out.push(("last-ok-ping-reply", ago(now, link.last_avail)));
    out.push(("last-ping-reply", ago(now, link.last_pong)));
}

fn join_flags(flags: Vec<&str>) -> String {
    flags.join(",")
}

fn master_reply(m: &Master, now: Instant) -> Reply {
    let mut flags = vec![];
    if m.sdown_since.is_some() {
        flags.push("s_down");
    }
    if m.odown_since.is_some() {
        flags.push("o_down");
    }
    flags.push("master");
    if !m.link.connected {
        flags.push("disconnected");
    }
    if m.in_failover() {
        flags.push("failover_in_progress");
    }
    if m.force_failover {
        flags.push("force_failover");
    }
    let mut f = vec![
        ("name", m.name.clone()),
        ("ip", m.addr.host.clone()),
        ("port", m.addr.port.to_string()),
        ("runid", m.runid.clone().unwrap_or_default()),
        ("flags", join_flags(flags)),
    ];
    link_fields(&mut f);
    if m.in_failover() {
        f.push(("failover-state", m.failover.as_str().to_string()));
    }
    ping_fields(&mut f, &m.link, now);
    if let Some(t) = m.sdown_since {
        f.push(("s-down-time", ago(now, t)));
    }
    if let Some(t) = m.odown_since {
        f.push(("o-down-time", ago(now, t)));
    }
    f.push(("down-after-milliseconds", ms(m.settings.down_after)));
    f.push(("info-refresh", ago_or_zero(now, m.info_refresh)));
    f.push(("role-reported", m.role_reported.as_redis_str().into()));
    f.push(("role-reported-time", ago(now, m.role_reported_time)));
    f.push(("config-epoch", m.config_epoch.to_string()));
    f.push(("num-slaves", m.replicas.len().to_string()));
    f.push(("num-other-sentinels", m.sentinels.len().to_string()));
    f.push(("quorum", m.settings.quorum.to_string()));
    f.push(("failover-timeout", ms(m.settings.failover_timeout)));
    f.push(("parallel-syncs", m.settings.parallel_syncs.to_string()));
    fields(f)
}

fn replicas_reply(m: &Master, now: Instant) -> Reply {
    let items = m
        .replicas
        .values()
        .map(|r| {
            let mut flags = vec![];
            if r.sdown_since.is_some() {
                flags.push("s_down");
            }
            flags.push("slave");
            if !r.link.connected {
                flags.push("disconnected");
            }
            if r.promoted {
                flags.push("promoted");
            }
            match r.reconf {
                Reconf::Sent(_) => flags.push("reconf_sent"),
                Reconf::InProgress => flags.push("reconf_inprog"),
                Reconf::Done => flags.push("reconf_done"),
                Reconf::None => {}
            }
            let mut f = vec![
                ("name", r.addr.to_string()),
                ("ip", r.addr.host.clone()),
                ("port", r.addr.port.to_string()),
                ("runid", r.runid.clone().unwrap_or_default()),
                ("flags", join_flags(flags)),
            ];
            link_fields(&mut f);
            ping_fields(&mut f, &r.link, now);
            if let Some(t) = r.sdown_since {
                f.push(("s-down-time", ago(now, t)));
            }
            f.push(("down-after-milliseconds", ms(m.settings.down_after)));
            f.push(("info-refresh", ago_or_zero(now, r.info_refresh)));
            f.push(("role-reported", r.role_reported.as_redis_str().into()));
            f.push(("role-reported-time", ago(now, r.role_reported_time)));
            f.push(("master-link-down-time", r.master_link_down_ms.to_string()));
            f.push((
                "master-link-status",
                if r.master_link_up { "ok" } else { "err" }.into(),
            ));
            f.push((
                "master-host",
                r.master_host.clone().unwrap_or_else(|| "?".into()),
            ));
            f.push(("master-port", r.master_port.to_string()));
            f.push(("slave-priority", r.priority.to_string()));
            f.push(("slave-repl-offset", r.repl_offset.to_string()));
            f.push(("replica-announced", (r.replica_announced as u8).to_string()));
            fields(f)
        })
        .collect();
    Reply::Array(items)
}

fn sentinels_reply(m: &Master, now: Instant) -> Reply {
    let items = m
        .sentinels
        .values()
        .map(|p| {
            let mut flags = vec![];
            if p.sdown_since.is_some() {
                flags.push("s_down");
            }
            flags.push("sentinel");
            if !p.link.connected {
                flags.push("disconnected");
            }
            if p.master_down {
                flags.push("master_down");
            }
            let mut f = vec![
                ("name", p.runid.clone()),
                ("ip", p.addr.host.clone()),
                ("port", p.addr.port.to_string()),
                ("runid", p.runid.clone()),
                ("flags", join_flags(flags)),
            ];
            link_fields(&mut f);
            ping_fields(&mut f, &p.link, now);
            if let Some(t) = p.sdown_since {
                f.push(("s-down-time", ago(now, t)));
            }
            f.push(("down-after-milliseconds", ms(m.settings.down_after)));
            f.push(("last-hello-message", ago_or_zero(now, p.last_hello)));
            f.push((
                "voted-leader",
                p.leader.clone().unwrap_or_else(|| "?".into()),
            ));
            f.push(("voted-leader-epoch", p.leader_epoch.to_string()));
            fields(f)
        })
        .collect();
    Reply::Array(items)
}

/// SENTINEL subcommand arities (negative: at least), as in Redis's command table.
fn sentinel_arity(sub: &str) -> Option<i64> {
    Some(match sub {
        "ckquorum"
        | "get-master-addr-by-name"
        | "failover"
        | "master"
        | "remove"
        | "replicas"
        | "slaves"
        | "reset"
        | "sentinels" => 3,
        "flushconfig" | "help" | "masters" | "myid" | "pending-scripts" => 2,
        "is-master-down-by-addr" | "monitor" => 6,
        "set" => -5,
        "simulate-failure" => -3,
        _ => return None,
    })
}

const NO_SUCH_MASTER: &str = "ERR No such master with that name";

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn sentinel(shared: &Arc<Shared>, args: &[Bytes]) -> Reply {
    let sub = lower(&args[0]);
    let Some(arity) = sentinel_arity(&sub) else {
        return Reply::error(format!(
            "ERR unknown subcommand '{}'. Try SENTINEL HELP.",
            trunc(&args[0])
        ));
    };
    if !arity_ok(arity, args.len() + 1) {
        return arity_error(&format!("sentinel|{sub}"));
    }
    let now = Instant::now();
    let name = args.get(1).map(|n| text(n)).unwrap_or_default();
    match sub.as_str() {
        "myid" => Reply::bulk(Bytes::from(shared.state.lock().core.myid.clone())),
        "masters" => {
            let s = shared.state.lock();
            Reply::Array(s.masters.values().map(|m| master_reply(m, now)).collect())
        }
        "master" => match shared.state.lock().masters.get(&name) {
            Some(m) => master_reply(m, now),
            None => Reply::error(NO_SUCH_MASTER),
        },
        "replicas" | "slaves" => match shared.state.lock().masters.get(&name) {
            Some(m) => replicas_reply(m, now),
            None => Reply::error(NO_SUCH_MASTER),
        },
        "sentinels" => match shared.state.lock().masters.get(&name) {
            Some(m) => sentinels_reply(m, now),
            None => Reply::error(NO_SUCH_MASTER),
        },
        "get-master-addr-by-name" => match shared.state.lock().masters.get(&name) {
            Some(m) => {
                let a = m.current_addr();
                Reply::Array(vec![
                    Reply::bulk_str(&a.host),
                    Reply::bulk(Bytes::from(a.port.to_string())),
                ])
            }
            None => Reply::NilArray,
        },
        "is-master-down-by-addr" => is_master_down_by_addr(shared, args, now),
        "ckquorum" => {
            let s = shared.state.lock();
            let Some(m) = s.masters.get(&name) else {
                return Reply::error(NO_SUCH_MASTER);
            };
            let usable = 1 + m
                .sentinels
                .values()
                .filter(|p| p.sdown_since.is_none())
                .count();
            let voters = m.voters();
            let noquorum = usable < m.settings.quorum as usize;
            let noauth = usable < voters / 2 + 1;
            if !noquorum && !noauth {
                Reply::status(format!(
                    "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
                ))
            } else {
                let mut e = format!("NOQUORUM {usable} usable Sentinels. ");
                if noquorum {
                    e.push_str("Not enough available Sentinels to reach the specified quorum for this master");
                }
                if noauth {
                    if noquorum {
                        e.push_str(". ");
                    }
                    e.push_str("Not enough available Sentinels to reach the majority and authorize a failover");
                }
                Reply::error(e)
            }
        }
        "failover" => shared.with(|s| {
            let core = &mut s.core;
            let Some(m) = s.masters.get_mut(&name) else {
                return Reply::error(NO_SUCH_MASTER);
            };
            if m.in_failover() {
                return Reply::error("INPROG Failover already in progress");
            }
            if select_replica(m, now).is_none() {
                return Reply::error("NOGOODSLAVE No suitable replica to promote");
            }
            tracing::warn!("Executing user requested FAILOVER of '{}'", m.name);
            m.start_failover(core, now);
            m.force_failover = true;
            m.failover_step(core, now);
            Reply::Ok
        }),
        "reset" => shared.with(|s| {
            let core = &mut s.core;
            let mut n = 0;
            for m in s.masters.values_mut() {
                if glob::matches(&args[1], m.name.as_bytes(), false) {
                    m.reset(core, now);
                    n += 1;
                }
            }
            Reply::Int(n)
        }),
        "monitor" => monitor(shared, args, now),
        "remove" => shared.with(|s| match s.masters.remove(&name) {
            Some(m) => {
                s.core.event("-monitor", m.desc());
                s.core.dirty = true;
                Reply::Ok
            }
            None => Reply::error(NO_SUCH_MASTER),
        }),
        "set" => set(shared, args),
        "flushconfig" => {
            shared.persist();
            Reply::Ok
        }
        "pending-scripts" => Reply::Array(vec![]),
        "simulate-failure" => {
            // As in Redis, the flags are cleared first (so `HELP` alone clears them).
            shared.state.lock().core.simfailure = SimFailure::default();
            let mut f = SimFailure::default();
            for a in &args[1..] {
                match lower(a).as_str() {
                    "crash-after-election" => f.crash_after_election = true,
                    "crash-after-promotion" => f.crash_after_promotion = true,
                    "help" => {
                        return Reply::Array(vec![
                            Reply::bulk_str("crash-after-election"),
                            Reply::bulk_str("crash-after-promotion"),
                        ])
                    }
                    _ => return Reply::error("ERR Unknown failure simulation specified"),
                }
            }
            shared.state.lock().core.simfailure = f;
            Reply::Ok
        }
        "help" => help(),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try SENTINEL HELP.",
            trunc(&args[0])
        )),
    }
}

fn is_master_down_by_addr(shared: &Arc<Shared>, args: &[Bytes], now: Instant) -> Reply {
    let not_int = || Reply::error("ERR value is not an integer or out of range");
    let Some(port) = parse_i64(&args[2]) else {
        return not_int();
    };
    let Some(req_epoch) = parse_i64(&args[3]) else {
        return not_int();
    };
    let host = text(&args[1]);
    let runid = text(&args[4]);
    shared.with(|s| {
        let core = &mut s.core;
        let addr = match u16::try_from(port) {
            Ok(p) => NodeAddr::new(host, p),
            Err(_) => return not_int(),
        };
        let Some(m) = s.masters.values_mut().find(|m| m.addr == addr) else {
            return Reply::Array(vec![Reply::Int(0), Reply::bulk_str("*"), Reply::Int(0)]);
        };
        let down = m.sdown_since.is_some();
        let (leader, epoch) = if runid != "*" && req_epoch >= 0 {
            m.vote(core, req_epoch as u64, &runid, now)
        } else {
            (None, 0)
        };
        Reply::Array(vec![
            Reply::Int(down as i64),
            Reply::bulk_str(leader.as_deref().unwrap_or("*")),
            Reply::Int(epoch as i64),
        ])
    })
}

fn monitor(shared: &Arc<Shared>, args: &[Bytes], now: Instant) -> Reply {
    let name = text(&args[1]);
    let host = text(&args[2]);
    let Some(quorum) = parse_i64(&args[4]) else {
        return Reply::error("ERR Invalid quorum");
    };
    let Some(port) = parse_i64(&args[3]) else {
        return Reply::error("ERR Invalid port");
    };
    if quorum <= 0 {
        return Reply::error("ERR Quorum must be 1 or greater.");
    }
    if host.parse::<std::net::IpAddr>().is_err() {
        return Reply::error("ERR Invalid IP address or hostname specified");
    }
    let Ok(port) = u16::try_from(port) else {
        return Reply::error("ERR Invalid port number");
    };
    let quorum = u32::try_from(quorum).unwrap_or(u32::MAX);
    shared.with(|s| {
        if s.masters.contains_key(&name) {
            return Reply::error("ERR Duplicate master name.");
        }
        let settings = Settings {
            quorum,
            down_after: DEFAULT_DOWN_AFTER,
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
        };
        let m = Master::new(name.clone(), NodeAddr::new(host, port), settings, now);
        s.core
            .event("+monitor", format!("{} quorum {}", m.desc(), quorum));
        s.masters.insert(name, m);
        s.core.dirty = true;
        Reply::Ok
    })
}

fn set(shared: &Arc<Shared>, args: &[Bytes]) -> Reply {
    let name = text(&args[1]);
    shared.with(|s| {
        let core = &mut s.core;
        let Some(m) = s.masters.get_mut(&name) else {
            return Reply::error(NO_SUCH_MASTER);
        };
        let mut i = 2;
        while i < args.len() {
            let opt = lower(&args[i]);
            let Some(val) = args.get(i + 1) else {
                return Reply::error(format!(
                    "ERR Unknown option or number of arguments for SENTINEL SET '{}'",
                    text(&args[i])
                ));
            };
            let invalid = || {
                Reply::error(format!(
                    "ERR Invalid argument '{}' for SENTINEL SET '{}'",
                    text(val),
                    opt
                ))
            };
            let positive = parse_i64(val).filter(|v| *v > 0);
            match opt.as_str() {
                "down-after-milliseconds" => match positive {
                    Some(v) => m.settings.down_after = Duration::from_millis(v as u64),
                    None => return invalid(),
                },
                "failover-timeout" => match positive {
                    Some(v) => m.settings.failover_timeout = Duration::from_millis(v as u64),
                    None => return invalid(),
                },
                "parallel-syncs" => match positive {
                    Some(v) => m.settings.parallel_syncs = u32::try_from(v).unwrap_or(u32::MAX),
                    None => return invalid(),
                },
                "quorum" => match positive {
                    Some(v) => m.settings.quorum = u32::try_from(v).unwrap_or(u32::MAX),
                    None => return invalid(),
                },
                "auth-pass" => {
                    m.settings.auth_pass = (!val.is_empty()).then(|| text(val));
                }
                "auth-user" => {
                    m.settings.auth_user = (!val.is_empty()).then(|| text(val));
                }
                _ => {
                    return Reply::error(format!(
                        "ERR Unknown option or number of arguments for SENTINEL SET '{}'",
                        text(&args[i])
                    ))
                }
            }
            core.event("+set", format!("{} {} {}", m.desc(), opt, text(val)));
            core.dirty = true;
            i += 2;
        }
        Reply::Ok
    })
}

fn help() -> Reply {
    let lines = [
        "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CKQUORUM <master-name>",
        "    Check if the current Sentinel configuration is able to reach the quorum",
        "    needed to failover a master and the majority needed to authorize the",
        "    failover.",
        "GET-MASTER-ADDR-BY-NAME <master-name>",
        "    Return the ip and port number of the master with that name.",
        "FAILOVER <master-name>",
        "    Manually failover a master node without asking for agreement from other",
        "    Sentinels",
        "FLUSHCONFIG",
        "    Force Sentinel to rewrite its configuration on disk, including the current",
        "    Sentinel state.",
        "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
        "    Check if the master specified by ip:port is down from current Sentinel's",
        "    point of view.",
        "MASTER <master-name>",
        "    Show the state and info of the specified master.",
        "MASTERS",
        "    Show a list of monitored masters and their state.",
        "MONITOR <name> <ip> <port> <quorum>",
        "    Start monitoring a new master with the specified name, ip, port and quorum.",
        "MYID",
        "    Return the ID of the Sentinel instance.",
        "PENDING-SCRIPTS",
        "    Get pending scripts information.",
        "REMOVE <master-name>",
        "    Remove master from Sentinel's monitor list.",
        "REPLICAS <master-name>",
        "    Show a list of replicas for this master and their state.",
        "RESET <pattern>",
        "    Reset masters for specific master name matching this pattern.",
        "SENTINELS <master-name>",
        "    Show a list of Sentinel instances for this master and their state.",
        "SET <master-name> <option> <value> [<option> <value> ...]",
        "    Set configuration parameters for certain masters.",
        "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
        "    Simulate a Sentinel crash.",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::status(*l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arities_follow_redis() {
        assert!(arity_ok(-2, 2) && arity_ok(-2, 5) && !arity_ok(-2, 1));
        assert!(arity_ok(3, 3) && !arity_ok(3, 4));
        assert_eq!(sentinel_arity("masters"), Some(2));
        assert_eq!(sentinel_arity("set"), Some(-5));
        assert_eq!(sentinel_arity("nope"), None);
    }

    #[test]
    fn unknown_command_text() {
        let r = unknown_command(&[Bytes::from("FOO"), Bytes::from("bar")]);
        assert_eq!(
            r,
            Reply::error("ERR unknown command 'FOO', with args beginning with: 'bar' ")
        );
    }

    #[test]
    fn failover_state_names() {
        assert_eq!(
            crate::failover::FailoverState::WaitPromotion.as_str(),
            "wait_promotion"
        );
    }
}

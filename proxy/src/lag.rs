//! Replication health, measured by the proxy itself: every node's `INFO replication` is
//! polled every [`POLL_INTERVAL`](crate::POLL_INTERVAL) on a connection of its own, the
//! master's offsets are kept as a short history, and a replica's lag is the time since the
//! master first had data the replica still lacks. Guarantee: a poll's number is taken before
//! it is sent, so the offset it reports covers every write answered before that number.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tandem_protocol::client::Client;
use tandem_protocol::types::Role;
use tandem_protocol::Reply;
use tokio::sync::Notify;

use crate::router::ReplicaHealth;
use crate::Shared;

/// A node whose last good poll is older than this is unreachable.
pub const STALE_AFTER: Duration = Duration::from_millis(600);
/// Longest wait for one INFO reply.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(1000);
/// How much master offset history is kept for lag measurement.
pub const HISTORY: Duration = Duration::from_secs(120);

/// One `slaveN:` line of a master's INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveLine {
    pub ip: String,
    pub port: u16,
    pub online: bool,
    /// Last acknowledged offset.
    pub offset: i64,
}

/// The fields of `INFO replication` the proxy uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoRepl {
    pub role: Role,
    pub master_host: Option<String>,
    pub master_port: Option<u16>,
    pub link_up: bool,
    pub slave_repl_offset: Option<i64>,
    pub master_repl_offset: i64,
    pub slaves: Vec<SlaveLine>,
}

/// Parses the text of `INFO replication` (CRLF or LF lines, unknown fields ignored).
pub fn parse_info(text: &str) -> InfoRepl {
    let mut info = InfoRepl::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "role" => {
                info.role = if v == "slave" {
                    Role::Replica
                } else {
                    Role::Master
                }
            }
            "master_host" => info.master_host = Some(v.to_string()),
            "master_port" => info.master_port = v.parse().ok(),
            "master_link_status" => info.link_up = v == "up",
            "slave_repl_offset" => info.slave_repl_offset = v.parse().ok(),
            "master_repl_offset" => info.master_repl_offset = v.parse().unwrap_or(0),
            _ if k.starts_with("slave") && k[5..].bytes().all(|c| c.is_ascii_digit()) => {
                let mut s = SlaveLine {
                    ip: String::new(),
                    port: 0,
                    online: false,
                    offset: 0,
                };
                for kv in v.split(',') {
                    match kv.split_once('=') {
                        Some(("ip", x)) => s.ip = x.to_string(),
                        Some(("port", x)) => s.port = x.parse().unwrap_or(0),
                        Some(("state", x)) => s.online = x == "online",
                        Some(("offset", x)) => s.offset = x.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                info.slaves.push(s);
            }
            _ => {}
        }
    }
    info
}

/// What the last polls of one node said.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub last_ok: Option<Instant>,
    pub info: Option<InfoRepl>,
    /// Number of the last successful poll (see [`Shared::poll_sent`]).
    pub seq: u64,
    /// Consecutive failed polls.
    pub fails: u32,
    pub error: Option<String>,
}

impl NodeStatus {
    pub fn fresh(&self, now: Instant) -> bool {
        self.last_ok
            .is_some_and(|t| now.saturating_duration_since(t) <= STALE_AFTER)
    }
}

/// The master's offsets over time (receive time of each poll).
#[derive(Debug, Default, Clone)]
pub struct OffsetHistory {
    samples: VecDeque<(Instant, i64)>,
}

impl OffsetHistory {
    pub fn push(&mut self, at: Instant, offset: i64) {
        if self.samples.back().is_some_and(|&(_, o)| o == offset) {
            // Keep the time the master first reached this offset.
            return;
        }
        if self.samples.back().is_some_and(|&(_, o)| o > offset) {
            // Offsets went backwards (a different master history): start again.
            self.samples.clear();
        }
        self.samples.push_back((at, offset));
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| at.saturating_duration_since(t) > HISTORY)
            && self.samples.len() > 1
        {
            self.samples.pop_front();
        }
    }

    pub fn latest(&self) -> Option<i64> {
        self.samples.back().map(|&(_, o)| o)
    }

    /// Milliseconds since the master was first seen with more than `offset`; 0 when the
    /// replica has everything the master was last seen with.
    pub fn lag_ms(&self, offset: i64, now: Instant) -> Option<u64> {
        let latest = self.latest()?;
        if offset >= latest {
            return Some(0);
        }
        let first_ahead = self
            .samples
            .iter()
            .find(|&&(_, o)| o > offset)
            .map(|&(t, _)| t)?;
        Some(now.saturating_duration_since(first_ahead).as_millis() as u64)
    }
}

/// A replica's health from its own poll and the master's (pure).
pub fn replica_health(
    addr: &str,
    status: Option<&NodeStatus>,
    master_addr: Option<&str>,
    master: Option<&NodeStatus>,
    history: &OffsetHistory,
    now: Instant,
) -> ReplicaHealth {
    let mut h = ReplicaHealth::default();
    let Some(st) = status else {
        return h;
    };
    let Some(info) = st.info.as_ref() else {
        return h;
    };
    h.reachable = st.fresh(now) && info.role == Role::Replica;
    let master_info = master
        .filter(|m| m.fresh(now))
        .and_then(|m| m.info.as_ref());
    let listed = master_info.and_then(|mi| {
        mi.slaves
            .iter()
            .find(|s| s.online && addr_matches(addr, &s.ip, s.port))
    });
    let points_at_master = match (master_addr, &info.master_host, info.master_port) {
        (Some(m), Some(host), Some(port)) => addr_matches(m, host, port),
        _ => false,
    };
    h.link_up = h.reachable && info.link_up && (listed.is_some() || points_at_master);
    h.offset = info
        .slave_repl_offset
        .unwrap_or(0)
        .max(listed.map(|s| s.offset).unwrap_or(0));
    if let Some(latest) = history.latest() {
        h.lag_bytes = Some(latest.saturating_sub(h.offset).max(0) as u64);
        h.lag_ms = history.lag_ms(h.offset, now);
    }
    h
}

fn addr_matches(addr: &str, host: &str, port: u16) -> bool {
    match crate::parse_addr(addr) {
        Ok((h, p)) => p == port && (h == host || (is_loopback(&h) && is_loopback(host))),
        Err(_) => false,
    }
}

fn is_loopback(h: &str) -> bool {
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

/// Table of the latest poll result of every polled node, shared with the topology task.
pub type Statuses = Arc<Mutex<std::collections::HashMap<String, NodeStatus>>>;

/// Polls one node forever (the caller aborts the task when the node leaves the topology).
pub async fn poll_node(addr: String, shared: Arc<Shared>, statuses: Statuses, done: Arc<Notify>) {
    let mut client: Option<Client> = None;
    let mut tick = tokio::time::interval(crate::POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cfg = shared.config.load();
        if client.is_none() {
            let timeout = Duration::from_millis(cfg.connect_timeout_ms.max(1));
            match Client::connect(&addr, timeout).await {
                Ok(mut c) => {
                    if let Some(pw) = cfg.backend_password.as_deref().filter(|p| !p.is_empty()) {
                        match c.call(&["AUTH", pw]).await {
                            Ok(Reply::Error(e)) if !e.contains("without any password") => {
                                record_failure(&statuses, &addr, format!("AUTH failed: {e}"));
                                done.notify_one();
                                continue;
                            }
                            Err(e) => {
                                record_failure(&statuses, &addr, e.to_string());
                                done.notify_one();
                                continue;
                            }
                            _ => {}
                        }
                    }
                    client = Some(c);
                }
                Err(e) => {
                    record_failure(&statuses, &addr, e.to_string());
                    done.notify_one();
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        // The poll's number is taken before the request is written (see Shared::poll_sent).
        let seq = shared.poll_sent.fetch_add(1, Ordering::SeqCst) + 1;
        c.queue(&["INFO", "replication"]);
        let result = match c.flush().await {
            Ok(()) => c.read_reply_timeout(POLL_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Reply::Bulk(b)) | Ok(Reply::Verbatim(_, b)) => {
                let info = parse_info(&String::from_utf8_lossy(&b));
                let mut st = statuses.lock();
                let s = st.entry(addr.clone()).or_default();
                s.last_ok = Some(Instant::now());
                s.info = Some(info);
                s.seq = seq;
                s.fails = 0;
                s.error = None;
            }
            Ok(other) => {
                record_failure(&statuses, &addr, format!("unexpected INFO reply {other:?}"));
                client = None;
            }
            Err(e) => {
                record_failure(&statuses, &addr, e.to_string());
                client = None;
            }
        }
        done.notify_one();
    }
}

fn record_failure(statuses: &Statuses, addr: &str, error: String) {
    let mut st = statuses.lock();
    let s = st.entry(addr.to_string()).or_default();
    s.fails = s.fails.saturating_add(1);
    if s.fails == 1 || s.fails.is_multiple_of(100) {
        tracing::warn!(backend = %addr, reason = %error, fails = s.fails, "INFO poll failed");
    }
    s.error = Some(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER_INFO: &str = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=7001,state=online,offset=900,lag=0\r\n\
        slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=1\r\n\
        master_failover_state:no-failover\r\nmaster_replid:abc\r\nmaster_repl_offset:1000\r\n";
    const REPLICA_INFO: &str = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\n\
        master_port:7000\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:0\r\n\
        slave_read_repl_offset:950\r\nslave_repl_offset:950\r\nmaster_repl_offset:950\r\n";

    #[test]
    fn parses_master_and_replica_info() {
        let m = parse_info(MASTER_INFO);
        assert_eq!(m.role, Role::Master);
        assert_eq!(m.master_repl_offset, 1000);
        assert_eq!(m.slaves.len(), 2);
        assert_eq!(
            m.slaves[0],
            SlaveLine {
                ip: "127.0.0.1".into(),
                port: 7001,
                online: true,
                offset: 900
            }
        );
        assert!(!m.slaves[1].online);
        let r = parse_info(REPLICA_INFO);
        assert_eq!(r.role, Role::Replica);
        assert!(r.link_up);
        assert_eq!(r.slave_repl_offset, Some(950));
        assert_eq!(r.master_port, Some(7000));
    }

    #[test]
    fn lag_is_time_since_the_master_got_ahead() {
        let t0 = Instant::now();
        let mut h = OffsetHistory::default();
        h.push(t0, 100);
        h.push(t0 + Duration::from_millis(100), 200);
        h.push(t0 + Duration::from_millis(200), 200);
        h.push(t0 + Duration::from_millis(300), 300);
        let now = t0 + Duration::from_millis(400);
        assert_eq!(h.lag_ms(300, now), Some(0));
        assert_eq!(h.lag_ms(250, now), Some(100));
        assert_eq!(h.lag_ms(150, now), Some(300));
        assert_eq!(h.lag_ms(10, now), Some(400));
        assert_eq!(OffsetHistory::default().lag_ms(0, now), None);
    }

    #[test]
    fn replica_health_combines_both_polls() {
        let now = Instant::now();
        let mut h = OffsetHistory::default();
        h.push(now - Duration::from_millis(50), 1000);
        let master = NodeStatus {
            last_ok: Some(now),
            info: Some(parse_info(MASTER_INFO)),
            ..Default::default()
        };
        let replica = NodeStatus {
            last_ok: Some(now),
            info: Some(parse_info(REPLICA_INFO)),
            ..Default::default()
        };
        let r = replica_health(
            "127.0.0.1:7001",
            Some(&replica),
            Some("127.0.0.1:7000"),
            Some(&master),
            &h,
            now,
        );
        assert!(r.reachable && r.link_up);
        assert_eq!(r.offset, 950);
        assert_eq!(r.lag_bytes, Some(50));
        assert_eq!(r.lag_ms, Some(50));
        // A stale poll makes it unreachable.
        let old = NodeStatus {
            last_ok: Some(now - Duration::from_secs(5)),
            ..replica.clone()
        };
        let r = replica_health("127.0.0.1:7001", Some(&old), None, Some(&master), &h, now);
        assert!(!r.reachable && !r.link_up);
    }
}

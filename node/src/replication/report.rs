//! What replication reports: INFO's `# Replication` section and ROLE, in Redis 7.0's exact
//! field names, order and reply types (sentinels and proxies parse them).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use tandem_protocol::Reply;

use super::master::ReplicaState;
use super::replica::LinkState;
use crate::server::Server;

/// The `# Replication` section (CRLF lines, header included).
pub fn info(srv: &Server, out: &mut String) {
    let cfg = srv.config.load();
    let repl = &srv.repl;
    let link = &repl.link;
    out.push_str("# Replication\r\n");
    let _ = write!(out, "role:{}\r\n", srv.role().as_redis_str());
    if srv.is_replica() {
        let (host, port) = link.master().unwrap_or_default();
        let state = link.state();
        let (applied, read) = if state == LinkState::Connected {
            (link.applied_offset(), link.read_offset())
        } else if srv.feed.offset() > 0 {
            (srv.feed.offset(), srv.feed.offset())
        } else {
            (1, 1)
        };
        let _ = write!(
            out,
            "master_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\n\
             master_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\n\
             slave_read_repl_offset:{read}\r\nslave_repl_offset:{applied}\r\n",
            if link.is_up() { "up" } else { "down" },
            link.last_io_ago(),
            (state == LinkState::Sync) as u8,
        );
        if state == LinkState::Sync {
            let (total, got, io_ago) = link.transfer();
            let perc = if total > 0 {
                got as f64 / total as f64 * 100.0
            } else {
                0.0
            };
            let _ = write!(
                out,
                "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{got}\r\n\
                 master_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\n\
                 master_sync_last_io_seconds_ago:{io_ago}\r\n",
                total - got as i64
            );
        }
        if !link.is_up() {
            let _ = write!(
                out,
                "master_link_down_since_seconds:{}\r\n",
                link.down_since_ago()
            );
        }
        let _ = write!(
            out,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:1\r\n",
            cfg.replica_priority, cfg.replica_read_only as u8
        );
    }
    let replicas = repl.replicas.all();
    let _ = write!(out, "connected_slaves:{}\r\n", replicas.len());
    if cfg.min_replicas_to_write > 0 && cfg.min_replicas_max_lag > 0 {
        let _ = write!(
            out,
            "min_slaves_good_slaves:{}\r\n",
            repl.good_replicas.load(Ordering::Relaxed)
        );
    }
    for (i, r) in replicas.iter().enumerate() {
        let _ = write!(
            out,
            "slave{i}:ip={},port={},state={},offset={},lag={}\r\n",
            r.ip,
            r.port,
            r.state().as_str(),
            r.ack_off.load(Ordering::Relaxed),
            r.lag()
        );
    }
    let ids = repl.ids();
    let (active, first, histlen) = srv.feed.with_state(|st| match &st.backlog {
        Some(b) => (1, b.first_offset(), b.histlen()),
        None => (0, 0, 0),
    });
    let _ = write!(
        out,
        "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\n\
         master_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{active}\r\n\
         repl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{first}\r\n\
         repl_backlog_histlen:{histlen}\r\n",
        repl.failover.state().as_str(),
        ids.replid,
        ids.replid2,
        srv.feed.offset(),
        ids.second_offset,
        cfg.repl_backlog_size.0,
    );
}

/// ROLE.
pub fn role(srv: &Server) -> Reply {
    if srv.is_replica() {
        let link = &srv.repl.link;
        let (host, port) = link.master().unwrap_or_default();
        let off = if link.is_up() {
            link.applied_offset() as i64
        } else {
            -1
        };
        return Reply::Array(vec![
            Reply::bulk_str("slave"),
            Reply::bulk_str(&host),
            Reply::Int(port as i64),
            Reply::bulk_str(link.state().as_str()),
            Reply::Int(off),
        ]);
    }
    let replicas = srv
        .repl
        .replicas
        .all()
        .into_iter()
        .filter(|r| r.state() == ReplicaState::Online)
        .map(|r| {
            Reply::Array(vec![
                Reply::bulk_str(&r.ip),
                Reply::bulk_str(&r.port.to_string()),
                Reply::bulk_str(&r.ack_off.load(Ordering::Relaxed).to_string()),
            ])
        })
        .collect();
    Reply::Array(vec![
        Reply::bulk_str("master"),
        Reply::Int(srv.feed.offset() as i64),
        Reply::Array(replicas),
    ])
}

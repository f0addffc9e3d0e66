//! Diskless full-sync transfers shared between replicas: a replica asking for a full sync
//! waits up to `repl-diskless-sync-delay` seconds (or until `repl-diskless-sync-max-replicas`
//! replicas wait) so that one snapshot, encoded once, streams to every replica that arrived
//! meanwhile, as Redis's replicationCron / shouldStartChildReplication do.
//!
//! Guarantee: every replica of one transfer is promised the same (replid, offset) and receives
//! the same RDB bytes; a replica that goes away while waiting or receiving is dropped from the
//! transfer without stopping it for the others; a failed snapshot is reported to each of them.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::payload;
use crate::server::Server;

/// Chunks buffered per replica of a transfer (each up to 64 KiB): a slow replica slows the
/// transfer for all, as Redis's rdb pipe does, instead of buffering without bound.
const PER_REPLICA_CHUNKS: usize = 16;

/// What a waiting replica receives when its transfer starts.
pub struct Transfer {
    /// `+FULLRESYNC <replid> <offset>`: the snapshot point.
    pub replid: String,
    pub offset: u64,
    /// The RDB bytes in order; `Err` if the snapshot failed. Closed after the last chunk.
    pub chunks: mpsc::Receiver<Result<Bytes, ()>>,
}

/// A replica waiting for the next transfer (Redis's `wait_bgsave` before the fork).
struct Waiter {
    since: Instant,
    /// `REPLCONF rdb-filter-only`: an RDB without data. Only replicas with the same
    /// requirement share a transfer.
    exclude_data: bool,
    tx: oneshot::Sender<Transfer>,
}

/// The replicas waiting for a diskless transfer.
#[derive(Default)]
pub struct Pending {
    list: Mutex<Vec<Waiter>>,
}

impl Pending {
    /// Registers a replica; the receiver yields its transfer once one starts (see
    /// [`maybe_start`]).
    pub fn wait(&self, exclude_data: bool) -> oneshot::Receiver<Transfer> {
        let (tx, rx) = oneshot::channel();
        self.list.lock().push(Waiter {
            since: Instant::now(),
            exclude_data,
            tx,
        });
        rx
    }
}

/// Starts a transfer for the waiting replicas if it is time: the delay is 0, or the
/// longest-waiting replica waited `repl-diskless-sync-delay` seconds, or
/// `repl-diskless-sync-max-replicas` replicas wait. Called when a replica arrives, when its
/// delay expires, and by the cron (so CONFIG SET applies to replicas already waiting).
pub fn maybe_start(srv: &Arc<Server>) {
    let cfg = srv.config.load();
    let group = {
        let mut list = srv.repl.transfers.list.lock();
        list.retain(|w| !w.tx.is_closed());
        let Some(first) = list.first() else {
            return;
        };
        let exclude = first.exclude_data;
        let same = || list.iter().filter(|w| w.exclude_data == exclude);
        let waiting = same().count();
        let longest = same().map(|w| w.since.elapsed()).max().unwrap_or_default();
        let max = cfg.repl_diskless_sync_max_replicas as usize;
        let due = !cfg.repl_diskless_sync
            || longest >= Duration::from_secs(cfg.repl_diskless_sync_delay)
            || (max > 0 && waiting >= max);
        if !due {
            return;
        }
        let (group, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut *list)
            .into_iter()
            .partition(|w| w.exclude_data == exclude);
        *list = rest;
        group
    };
    let exclude = group.first().is_some_and(|w| w.exclude_data);
    tracing::info!(
        replicas = group.len(),
        "starting diskless transfer for the waiting replicas"
    );
    let s = srv.clone();
    srv.repl.spawn(run(s, group, exclude));
}

/// One transfer: snapshot and encode once on a blocking thread, hand every chunk to each
/// replica still there.
async fn run(srv: Arc<Server>, group: Vec<Waiter>, exclude_data: bool) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(PER_REPLICA_CHUNKS);
    let (at_tx, at_rx) = oneshot::channel::<(String, u64)>();
    let s = srv.clone();
    let job = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let (mut snap, replid, offset, db) = freeze(&s);
        if exclude_data {
            snap.dbs.clear();
        }
        let _ = at_tx.send((replid.clone(), offset));
        let mut w = payload::ChunkWriter::new(tx);
        payload::write_rdb(&mut w, &snap, &replid, offset, db)?;
        w.finish()
    });
    let Ok((replid, offset)) = at_rx.await else {
        // The waiters' channels close with `group`: each reports the failed snapshot.
        tracing::warn!("snapshot for the diskless transfer failed");
        return;
    };
    let mut outs = Vec::with_capacity(group.len());
    for w in group {
        let (ctx, crx) = mpsc::channel(PER_REPLICA_CHUNKS);
        let t = Transfer {
            replid: replid.clone(),
            offset,
            chunks: crx,
        };
        if w.tx.send(t).is_ok() {
            outs.push(ctx);
        }
    }
    while let Some(chunk) = rx.recv().await {
        let mut i = 0;
        while i < outs.len() {
            if outs[i].send(Ok(chunk.clone())).await.is_err() {
                outs.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if outs.is_empty() {
            // Every replica went away: dropping `rx` stops the encoder.
            break;
        }
    }
    drop(rx);
    let ok = matches!(job.await, Ok(Ok(_)));
    if !ok {
        for o in &outs {
            let _ = o.send(Err(())).await;
        }
    }
}

/// Takes the snapshot a full sync sends, on a blocking thread: the data plus the point of the
/// stream it matches (replid, offset) and the database the stream continues in.
pub fn freeze(srv: &Arc<Server>) -> (crate::persistence::snapshot::Snapshot, String, u64, usize) {
    let relaying = srv.is_replica();
    let mut at = None;
    let snap = payload::snapshot(srv, || {
        srv.feed.with_state(|st| {
            // A master starts this replica's stream with a SELECT (Redis's slaveseldb = -1);
            // a replica relays its master's bytes as they are, so the payload says which
            // database the stream is in.
            let db = if relaying { st.last_db.unwrap_or(0) } else { 0 };
            if !relaying {
                st.last_db = None;
            }
            at = Some((srv.repl.replid(), st.offset, db));
        });
    });
    let (replid, offset, db) = at.unwrap_or_else(|| (srv.repl.replid(), srv.feed.offset(), 0));
    (snap, replid, offset, db)
}

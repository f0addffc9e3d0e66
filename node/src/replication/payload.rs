//! The full-sync payload: on the master a point-in-time snapshot encoded as an RDB carrying
//! `repl-id` / `repl-offset`; on the replica the RDB loaded into a new dataset that then
//! replaces the old one in one step. A thin seam over [`crate::persistence`].
//!
//! Guarantee: [`install`] swaps the whole keyspace under every shard lock (and runs the
//! caller's offset update under the same locks), so clients see the old dataset or the new
//! one, never a half-loaded mix; a payload that fails to load changes nothing.

use bytes::Bytes;
use std::io::{self, Read, Write};

use crate::persistence::rdb::{self, Loaded, RdbAux};
use crate::persistence::snapshot::{self, Snapshot};
use crate::server::Server;

/// Takes a snapshot; `at_freeze` runs while every shard is locked (the stream is still).
pub fn snapshot(srv: &Server, at_freeze: impl FnOnce()) -> Snapshot {
    snapshot::take(srv, at_freeze)
}

/// Writes `snap` as an RDB carrying `repl-id` / `repl-offset` / `repl-stream-db`; returns
/// the bytes written.
pub fn write_rdb(
    out: &mut impl Write,
    snap: &Snapshot,
    replid: &str,
    offset: u64,
    stream_db: usize,
) -> io::Result<u64> {
    let aux = RdbAux {
        repl_id: Some(replid.to_string()),
        repl_offset: offset as i64,
        repl_stream_db: stream_db as i64,
        aof_base: false,
        used_mem: crate::alloc::used_memory(),
    };
    rdb::write_rdb(out, snap, &aux)
}

/// Loads an RDB payload (`source` names it in errors).
pub fn load(r: impl Read, source: &str) -> Result<Loaded, String> {
    rdb::load(io::BufReader::with_capacity(256 * 1024, r), source).map_err(|e| e.to_string())
}

/// Replaces the whole dataset with `loaded` under every shard lock; `at_install` runs
/// under those locks too (to set the replication offsets in the same step).
pub fn install(srv: &Server, loaded: Loaded, at_install: impl FnOnce()) -> Result<(), String> {
    let mut guards = srv.keyspace.lock_all();
    let mut refs: Vec<&mut crate::db::Shard> = guards.iter_mut().map(|g| &mut **g).collect();
    let stats = srv.install_dataset_locked(&mut refs, loaded)?;
    at_install();
    drop(refs);
    drop(guards);
    tracing::info!(
        keys = stats.keys_loaded,
        "MASTER <-> REPLICA sync: dataset installed"
    );
    Ok(())
}

/// A `Write` that hands the bytes to an async task in chunks (diskless transfer).
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    total: u64,
}

const CHUNK: usize = 64 * 1024;

impl ChunkWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<Bytes>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            total: 0,
        }
    }

    /// Sends what is buffered; returns the total bytes written.
    pub fn finish(mut self) -> io::Result<u64> {
        self.send()?;
        Ok(self.total)
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::other("replica link closed"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

//! Point-in-time snapshots of the keyspace without fork, and the jobs that write them (SAVE,
//! BGSAVE, save points). A snapshot clones the `Arc` of every shard's per-db map while all
//! shards are locked (microseconds); writers copy a shared map on their first change
//! ([`crate::db::Db::map_mut`]), so the snapshot stays frozen while it is serialized on its own
//! thread. Files are written as `temp-<pid>-<n>.rdb`, fsynced, renamed over `dbfilename` and
//! the directory fsynced: a crash mid-save never leaves a broken dump.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::rdb::{self, Encodings, RdbAux};
use super::State;
use crate::db::{KeyMap, Shard, NO_EXPIRE};
use crate::server::Server;

/// One database in a snapshot: its per-shard maps (shared, frozen) and counts.
pub struct DbSnapshot {
    pub shards: Vec<Arc<KeyMap>>,
    pub keys: usize,
    pub expires: usize,
}

/// A frozen copy of the whole keyspace.
pub struct Snapshot {
    /// Indexed by database number.
    pub dbs: Vec<DbSnapshot>,
    /// Thresholds for compact encodings, from the config at freeze time.
    pub encodings: Encodings,
    /// Unix ms of the freeze.
    pub taken_at_ms: u64,
    /// The server's change counter at the freeze (`rdb_changes_since_last_save` resets to
    /// what happened after it).
    pub dirty: u64,
    /// Pause per key while writing, in microseconds (`rdb-key-save-delay`, for tests).
    pub key_delay_us: u64,
}

impl Snapshot {
    /// Freezes the given shards (all of them, locked by the caller).
    pub fn from_shards<'a>(
        shards: impl IntoIterator<Item = &'a Shard>,
        ndbs: usize,
        encodings: Encodings,
        now_ms: u64,
    ) -> Snapshot {
        let mut dbs: Vec<DbSnapshot> = (0..ndbs)
            .map(|_| DbSnapshot {
                shards: Vec::with_capacity(crate::db::SHARDS),
                keys: 0,
                expires: 0,
            })
            .collect();
        for sh in shards {
            for (i, db) in sh.dbs.iter().enumerate().take(ndbs) {
                if db.map.is_empty() {
                    continue;
                }
                dbs[i].keys += db.map.len();
                dbs[i].expires += db.expires.len();
                dbs[i].shards.push(db.map.clone());
            }
        }
        Snapshot {
            dbs,
            encodings,
            taken_at_ms: now_ms,
            dirty: 0,
            key_delay_us: 0,
        }
    }

    /// A snapshot of plain maps (tools and tests): `maps[db]` are that db's parts.
    pub fn from_maps(maps: Vec<Vec<KeyMap>>, encodings: Encodings, now_ms: u64) -> Snapshot {
        let dbs = maps
            .into_iter()
            .map(|parts| {
                let keys = parts.iter().map(|m| m.len()).sum();
                let expires = parts
                    .iter()
                    .flat_map(|m| m.values())
                    .filter(|e| e.expire_at != NO_EXPIRE)
                    .count();
                DbSnapshot {
                    shards: parts.into_iter().map(Arc::new).collect(),
                    keys,
                    expires,
                }
            })
            .collect();
        Snapshot {
            dbs,
            encodings,
            taken_at_ms: now_ms,
            dirty: 0,
            key_delay_us: 0,
        }
    }

    /// Keys in all databases.
    pub fn keys(&self) -> usize {
        self.dbs.iter().map(|d| d.keys).sum()
    }
}

/// Freezes the shards a caller already holds (commands flagged KEYSPACE: SAVE, BGSAVE,
/// DEBUG RELOAD). `shards` must be every shard.
pub fn freeze(srv: &Server, shards: &[&mut Shard]) -> Snapshot {
    let cfg = srv.config.load();
    let mut snap = Snapshot::from_shards(
        shards.iter().map(|s| &**s),
        srv.keyspace.databases(),
        Encodings::from_config(&cfg),
        crate::now_ms(),
    );
    snap.dirty = srv.dirty.load(Ordering::Relaxed);
    crate::replication::record_save_point(srv);
    snap.key_delay_us = key_delay_us(srv);
    snap
}

/// Takes a snapshot: locks every shard, freezes them, calls `at_freeze` while they are still
/// locked (so the caller can read a replication offset that matches the data exactly), then
/// unlocks. Must not be called while holding a shard (it would deadlock).
pub fn take(srv: &Server, at_freeze: impl FnOnce()) -> Snapshot {
    let cfg = srv.config.load();
    let encodings = Encodings::from_config(&cfg);
    let delay = key_delay_us(srv);
    let guards = srv.keyspace.lock_all();
    let mut snap = Snapshot::from_shards(
        guards.iter().map(|g| &**g),
        srv.keyspace.databases(),
        encodings,
        crate::now_ms(),
    );
    snap.dirty = srv.dirty.load(Ordering::Relaxed);
    crate::replication::record_save_point(srv);
    at_freeze();
    drop(guards);
    snap.key_delay_us = delay;
    snap
}

fn key_delay_us(srv: &Server) -> u64 {
    srv.admin
        .extra_config
        .lock()
        .get("rdb-key-save-delay")
        .and_then(|v| v.parse::<i64>().ok())
        .map(|v| v.max(0) as u64)
        .unwrap_or(0)
}

/// The RDB file of the current config: `dir/dbfilename`.
pub fn rdb_path(srv: &Server) -> PathBuf {
    let c = srv.config.load();
    c.dir.join(&c.dbfilename)
}

/// The aux fields a save of this server carries.
pub fn aux_for(srv: &Server) -> RdbAux {
    // The replication point recorded at the last freeze (matches the data exactly).
    let (repl_id, repl_offset, repl_stream_db) = srv.repl.save_point();
    RdbAux {
        repl_id: Some(repl_id),
        repl_offset,
        repl_stream_db,
        aof_base: false,
        used_mem: crate::alloc::used_memory(),
    }
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `snap` to `path` safely: a temp file in the same directory, fsync, rename, fsync of
/// the directory. On error the temp file is removed and `path` is untouched.
pub fn write_file(snap: &Snapshot, aux: &RdbAux, path: &Path) -> io::Result<u64> {
    write_file_with(path, |w| rdb::write_rdb(w, snap, aux))
}

/// [`write_file`] consuming the snapshot, releasing each frozen map once written (BGSAVE).
pub fn write_file_owned(snap: Snapshot, aux: &RdbAux, path: &Path) -> io::Result<u64> {
    write_file_with(path, |w| rdb::write_rdb_owned(w, snap, aux))
}

fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<u64>,
) -> io::Result<u64> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        "temp-{}-{}.rdb",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let f = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let n = write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(&dir) {
            d.sync_all()?;
        }
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Takes a snapshot and saves it to `path` synchronously (the caller must hold no shard).
pub fn save_to_file(srv: &Server, path: &Path) -> io::Result<u64> {
    let snap = take(srv, || {});
    let n = write_file(&snap, &aux_for(srv), path)?;
    srv.persistence.saved(snap.dirty);
    Ok(n)
}

/// SAVE's body once the snapshot is taken: writes `dbfilename` and records the save.
pub fn save_sync(srv: &Server, snap: &Snapshot) -> io::Result<u64> {
    let st = &srv.persistence;
    st.saves.fetch_add(1, Ordering::Relaxed);
    let path = rdb_path(srv);
    match write_file(snap, &aux_for(srv), &path) {
        Ok(n) => {
            tracing::info!(path = %path.display(), bytes = n, keys = snap.keys(), "DB saved on disk");
            st.saved(snap.dirty);
            st.last_bgsave_ok
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "Write error saving DB on disk");
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
            Err(e)
        }
    }
}

/// Why a BGSAVE did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum BgsaveRefused {
    AlreadyInProgress,
    ThreadFailed,
}

/// Starts a background save of `snap` to `dbfilename` on its own thread.
pub fn start_bgsave(srv: &Server, snap: Snapshot) -> Result<(), BgsaveRefused> {
    let st: Arc<State> = srv.persistence.clone();
    if st
        .bgsave_in_progress
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(BgsaveRefused::AlreadyInProgress);
    }
    let now_s = crate::now_ms() / 1000;
    st.saves.fetch_add(1, Ordering::Relaxed);
    st.bgsave_started.store(now_s, Ordering::Relaxed);
    st.lastbgsave_try.store(now_s, Ordering::Relaxed);
    st.save_keys_total
        .store(snap.keys() as u64, Ordering::Relaxed);
    let path = rdb_path(srv);
    let aux = aux_for(srv);
    let st2 = st.clone();
    let spawned = std::thread::Builder::new()
        .name("tandem-bgsave".into())
        .spawn(move || {
            let started = Instant::now();
            let (keys, dirty) = (snap.keys(), snap.dirty);
            let r = write_file_owned(snap, &aux, &path);
            let secs = started.elapsed().as_secs() as i64;
            match &r {
                Ok(n) => {
                    tracing::info!(path = %path.display(), bytes = n, keys, secs = started.elapsed().as_secs_f64(), "Background saving terminated with success");
                    st2.saved(dirty);
                    st2.last_bgsave_ok.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "Background saving error");
                    st2.last_bgsave_ok.store(false, Ordering::Relaxed);
                }
            }
            st2.last_bgsave_time_sec.store(secs, Ordering::Relaxed);
            st2.save_keys_total.store(0, Ordering::Relaxed);
            st2.bgsave_in_progress.store(false, Ordering::Release);
        });
    match spawned {
        Ok(_) => {
            tracing::info!("Background saving started");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "Can't save in background: cannot start a thread");
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
            st.bgsave_in_progress.store(false, Ordering::Release);
            Err(BgsaveRefused::ThreadFailed)
        }
    }
}

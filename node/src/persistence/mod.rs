//! Persistence: Redis-format RDB snapshots ([`rdb`]: the file format; [`snapshot`]: freezing
//! the keyspace and the SAVE/BGSAVE jobs), the state INFO persistence reports ([`State`]), the
//! start-up load ([`load_at_startup`], the one place that chooses between AOF and RDB), save
//! points (`save 900 1 ...`, checked by [`cron`]), the save on shutdown, and installing a
//! loaded dataset atomically ([`Server::install_dataset`]).

pub mod aof;
pub mod rdb;
pub mod snapshot;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tandem_protocol::Reply;

use crate::cmd::args::{self, CmdResult};
use crate::cmd::Ctx;
use crate::db::{Shard, SHARDS};
use crate::server::Server;
use rdb::{Loaded, RdbError};

/// Seconds to wait before a save point retries after a failed BGSAVE (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
const BGSAVE_RETRY_DELAY_SECS: u64 = 5;

/// AOF status for INFO persistence; the AOF code fills it.
#[derive(Debug)]
pub struct AofInfo {
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    /// Seconds the last rewrite took, -1 if none.
    pub last_rewrite_time_sec: AtomicI64,
    /// Unix seconds the running rewrite started (meaningful while in progress).
    pub rewrite_started: AtomicU64,
    pub last_bgrewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub rewrites_consecutive_failures: AtomicU64,
    pub last_write_ok: AtomicBool,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub buffer_length: AtomicU64,
    pub pending_bio_fsync: AtomicU64,
    pub delayed_fsync: AtomicU64,
}

impl Default for AofInfo {
    fn default() -> Self {
        AofInfo {
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_time_sec: AtomicI64::new(-1),
            rewrite_started: AtomicU64::new(0),
            last_bgrewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            rewrites_consecutive_failures: AtomicU64::new(0),
            last_write_ok: AtomicBool::new(true),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            buffer_length: AtomicU64::new(0),
            pending_bio_fsync: AtomicU64::new(0),
            delayed_fsync: AtomicU64::new(0),
        }
    }
}

/// Persistence state shared by the commands, the cron and the background save thread.
#[derive(Debug)]
pub struct State {
    /// Unix seconds of the last successful save (LASTSAVE, `rdb_last_save_time`).
    pub lastsave: AtomicU64,
    /// The server's change counter at the last successful save.
    pub dirty_at_last_save: AtomicU64,
    pub bgsave_in_progress: AtomicBool,
    /// Unix seconds the running BGSAVE started.
    pub bgsave_started: AtomicU64,
    /// Unix seconds of the last BGSAVE attempt (for the retry delay).
    pub lastbgsave_try: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    /// Seconds the last BGSAVE took, -1 if none.
    pub last_bgsave_time_sec: AtomicI64,
    /// `rdb_saves`: saves started (SAVE and BGSAVE).
    pub saves: AtomicU64,
    /// BGSAVE SCHEDULE (or BGSAVE inside EXEC) waiting for its turn.
    pub bgsave_scheduled: AtomicBool,
    /// Keys in the running save (`current_save_keys_total`).
    pub save_keys_total: AtomicU64,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
    /// True while a dataset is being loaded (`loading`).
    pub loading: AtomicBool,
    /// SHUTDOWN already saved (or was told NOSAVE): no second save on exit.
    pub exit_handled: AtomicBool,
    pub aof: AofInfo,
}

impl Default for State {
    fn default() -> Self {
        State {
            lastsave: AtomicU64::new(crate::now_ms() / 1000),
            dirty_at_last_save: AtomicU64::new(0),
            bgsave_in_progress: AtomicBool::new(false),
            bgsave_started: AtomicU64::new(0),
            lastbgsave_try: AtomicU64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_time_sec: AtomicI64::new(-1),
            saves: AtomicU64::new(0),
            bgsave_scheduled: AtomicBool::new(false),
            save_keys_total: AtomicU64::new(0),
            last_load_keys_loaded: AtomicU64::new(0),
            last_load_keys_expired: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            exit_handled: AtomicBool::new(false),
            aof: AofInfo::default(),
        }
    }
}

impl State {
    /// Records a successful save of a snapshot taken at change counter `dirty`.
    pub fn saved(&self, dirty: u64) {
        self.lastsave
            .store(crate::now_ms() / 1000, Ordering::Relaxed);
        self.dirty_at_last_save.fetch_max(dirty, Ordering::Relaxed);
    }

    /// `rdb_changes_since_last_save`.
    pub fn changes_since_save(&self, srv_dirty: u64) -> u64 {
        srv_dirty.saturating_sub(self.dirty_at_last_save.load(Ordering::Relaxed))
    }
}

/// Counts of an install.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallStats {
    pub keys_loaded: u64,
    pub keys_expired: u64,
}

/// A loaded dataset distributed over shards, ready to swap in.
struct Prepared {
    /// `[shard][db]`.
    shards: Vec<Vec<crate::db::Db>>,
    stats: InstallStats,
}

impl Server {
    fn prepare_install(&self, loaded: Loaded, keep_expired: bool) -> Result<Prepared, String> {
        let ndbs = self.keyspace.databases();
        if let Some(db) = loaded.dbs.iter().find(|d| d.index >= ndbs) {
            return Err(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {ndbs} databases (it uses db {}).",
                db.index
            ));
        }
        // On a master, keys already expired are not loaded (a replica waits for the
        // master's DEL, as Redis does).
        let now = crate::now_ms();
        let drop_expired = !self.is_replica() && !keep_expired;
        let lru = self.lru_clock(now)(0);
        let mut shards: Vec<Vec<crate::db::Db>> = (0..SHARDS)
            .map(|_| (0..ndbs).map(|_| crate::db::Db::default()).collect())
            .collect();
        let mut stats = InstallStats::default();
        for db in loaded.dbs {
            let index = db.index;
            for (sidx, mut part) in db.parts.into_iter().enumerate() {
                if drop_expired && !part.expires.is_empty() {
                    let dead: Vec<_> = part
                        .expires
                        .iter()
                        .filter(|k| {
                            part.map
                                .get(k.as_slice())
                                .is_some_and(|e| e.is_expired(now))
                        })
                        .cloned()
                        .collect();
                    for k in dead {
                        part.remove(&k);
                        stats.keys_expired += 1;
                    }
                }
                if part.is_empty() {
                    continue;
                }
                for e in part.map_mut().values_mut() {
                    e.lru = lru;
                }
                stats.keys_loaded += part.len() as u64;
                let slot = &mut shards[sidx][index];
                if slot.is_empty() {
                    *slot = part;
                } else {
                    // The same db number twice in one file: merge.
                    let map = std::sync::Arc::try_unwrap(part.map).unwrap_or_else(|a| (*a).clone());
                    for (k, e) in map {
                        if slot.insert(k, e).is_some() {
                            stats.keys_loaded -= 1;
                        }
                    }
                }
            }
        }
        Ok(Prepared { shards, stats })
    }

    /// Swaps `p` into the (all) locked shards; returns the old data, to drop after unlocking.
    fn swap_in(shards: &mut [&mut Shard], p: Prepared) -> Vec<Vec<crate::db::Db>> {
        let mut old = Vec::with_capacity(shards.len());
        for (sh, new) in shards.iter_mut().zip(p.shards) {
            let ndbs = sh.dbs.len();
            for db in 0..ndbs {
                sh.signal_db(db);
            }
            old.push(std::mem::replace(&mut sh.dbs, new));
            for db in 0..ndbs {
                sh.signal_db(db);
            }
        }
        old
    }

    /// Replaces every database with `loaded`, atomically: the dataset is sharded first
    /// without any lock, then swapped in while all shards are locked. A replica calls this
    /// only once its load has finished. Errors (too many databases) change nothing.
    pub fn install_dataset(&self, loaded: Loaded) -> Result<InstallStats, String> {
        self.install_dataset_with(loaded, false)
    }

    /// [`Server::install_dataset`]; `keep_expired` keeps keys whose time has passed (an AOF
    /// base: commands after it may still touch them, as Redis loads it).
    pub fn install_dataset_with(
        &self,
        loaded: Loaded,
        keep_expired: bool,
    ) -> Result<InstallStats, String> {
        let p = self.prepare_install(loaded, keep_expired)?;
        let stats = p.stats;
        let old = {
            let mut guards = self.keyspace.lock_all();
            let mut refs: Vec<&mut Shard> = guards.iter_mut().map(|g| &mut **g).collect();
            Self::swap_in(&mut refs, p)
        };
        drop(old);
        self.record_load(stats);
        Ok(stats)
    }

    /// [`Server::install_dataset`] for a caller that already holds every shard (DEBUG RELOAD).
    pub fn install_dataset_locked(
        &self,
        shards: &mut [&mut Shard],
        loaded: Loaded,
    ) -> Result<InstallStats, String> {
        self.install_dataset_locked_with(shards, loaded, false)
    }

    /// [`Server::install_dataset_locked`]; `keep_expired` as in
    /// [`Server::install_dataset_with`] (DEBUG LOADAOF's base).
    pub fn install_dataset_locked_with(
        &self,
        shards: &mut [&mut Shard],
        loaded: Loaded,
        keep_expired: bool,
    ) -> Result<InstallStats, String> {
        let p = self.prepare_install(loaded, keep_expired)?;
        let stats = p.stats;
        drop(Self::swap_in(shards, p));
        self.record_load(stats);
        Ok(stats)
    }

    /// Adds `loaded` to the (all) locked shards without removing anything; a loaded key
    /// replaces an existing one (DEBUG RELOAD NOFLUSH MERGE).
    pub fn merge_dataset_locked(
        &self,
        shards: &mut [&mut Shard],
        loaded: Loaded,
    ) -> Result<InstallStats, String> {
        let p = self.prepare_install(loaded, false)?;
        let stats = p.stats;
        for (sh, new) in shards.iter_mut().zip(p.shards) {
            for (db, d) in new.into_iter().enumerate() {
                let Ok(map) = std::sync::Arc::try_unwrap(d.map) else {
                    continue;
                };
                for (k, e) in map {
                    sh.signal_key(db, &k);
                    sh.dbs[db].insert(k, e);
                }
            }
        }
        self.record_load(stats);
        Ok(stats)
    }

    fn record_load(&self, s: InstallStats) {
        let st = &self.persistence;
        st.last_load_keys_loaded
            .store(s.keys_loaded, Ordering::Relaxed);
        st.last_load_keys_expired
            .store(s.keys_expired, Ordering::Relaxed);
        if s.keys_expired > 0 {
            self.stats
                .expired_keys
                .fetch_add(s.keys_expired, Ordering::Relaxed);
        }
    }
}

/// Reads an RDB file into a dataset (not installed).
pub fn load_file(path: &Path) -> Result<Loaded, RdbError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| RdbError {
        source_name: name.clone(),
        offset: 0,
        kind: rdb::RdbErrorKind::Io,
        message: e.to_string(),
    })?;
    rdb::load(f, &name)
}

/// Loads and installs an RDB file; `Ok(None)` when the file does not exist.
pub fn load_rdb_file(srv: &Server, path: &Path) -> Result<Option<InstallStats>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let started = Instant::now();
    srv.persistence.loading.store(true, Ordering::Relaxed);
    let r = load_file(path).map_err(|e| e.to_string()).and_then(|l| {
        crate::replication::restore_from_rdb(srv, &l.aux);
        srv.install_dataset(l)
    });
    srv.persistence.loading.store(false, Ordering::Relaxed);
    let stats = r?;
    tracing::info!(
        path = %path.display(),
        keys = stats.keys_loaded,
        expired = stats.keys_expired,
        secs = started.elapsed().as_secs_f64(),
        "DB loaded from disk"
    );
    Ok(Some(stats))
}

/// The start-up load, before clients are accepted: the one place that chooses the source.
/// (With `appendonly yes` the AOF is the source of truth; the AOF code plugs in here.)
pub fn load_at_startup(srv: &Server) -> Result<(), String> {
    if srv.config.load().appendonly {
        aof::start_up(srv)?;
    } else {
        let path = snapshot::rdb_path(srv);
        load_rdb_file(srv, &path)?;
    }
    // At start-up the dataset counts as saved.
    srv.persistence
        .dirty_at_last_save
        .store(srv.dirty.load(Ordering::Relaxed), Ordering::Relaxed);
    Ok(())
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE] (the command holds every shard): save, then load
/// the file back in place of the dataset.
pub fn debug_reload(ctx: &mut Ctx, opts: &[Bytes]) -> CmdResult {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for o in opts {
        if args::is(o, "merge") {
            merge = true;
        } else if args::is(o, "noflush") {
            flush = false;
        } else if args::is(o, "nosave") {
            save = false;
        } else {
            return Err(Reply::error(
                "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
            ));
        }
    }
    let srv = ctx.srv;
    let mut shards = ctx.shards_mut();
    if save {
        let snap = snapshot::freeze(srv, &shards);
        if snapshot::save_sync(srv, &snap).is_err() {
            return Err(Reply::error("ERR"));
        }
    }
    let path = snapshot::rdb_path(srv);
    let loaded = match load_file(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "DEBUG RELOAD: error loading the RDB");
            return Err(Reply::error("ERR Error trying to load the RDB dump"));
        }
    };
    let r = if flush {
        srv.install_dataset_locked(&mut shards, loaded)
    } else {
        if !merge {
            tracing::warn!("DEBUG RELOAD NOFLUSH without MERGE: conflicting keys are replaced");
        }
        srv.merge_dataset_locked(&mut shards, loaded)
    };
    match r {
        Ok(_) => {
            tracing::info!("DB reloaded by DEBUG RELOAD");
            Ok(Reply::Ok)
        }
        Err(e) => {
            tracing::warn!(error = %e, "DEBUG RELOAD: error installing the RDB");
            Err(Reply::error("ERR Error trying to load the RDB dump"))
        }
    }
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: saves as asked (or when save points are
/// set), then asks the server to stop. `Err` is the reply when the server stays up.
pub fn shutdown_command(srv: &Server, args: &[Bytes]) -> Result<(), Reply> {
    let (mut nosave, mut save, mut force, mut abort) = (false, false, false, false);
    for a in &args[1..] {
        if args::is(a, "nosave") {
            nosave = true;
        } else if args::is(a, "save") {
            save = true;
        } else if args::is(a, "now") {
            // No replicas to wait for here.
        } else if args::is(a, "force") {
            force = true;
        } else if args::is(a, "abort") {
            abort = true;
        } else {
            return Err(args::syntax_error());
        }
    }
    if (abort && args.len() != 2) || (nosave && save) {
        return Err(args::syntax_error());
    }
    if abort {
        return Err(Reply::error("ERR No shutdown in progress."));
    }
    let decision = if nosave {
        Some(false)
    } else if save {
        Some(true)
    } else {
        None
    };
    if let Err(e) = save_on_shutdown(srv, decision) {
        if !force {
            tracing::warn!(error = %e, "Errors trying to shut down the server. Check the logs for more information.");
            return Err(Reply::error("ERR Errors trying to SHUTDOWN. Check logs."));
        }
        srv.persistence.exit_handled.store(true, Ordering::Release);
    }
    Ok(())
}

/// Periodic work (from the server cron): save points and scheduled BGSAVEs.
pub fn cron(srv: &Server) {
    aof::cron(srv);
    let st = &srv.persistence;
    if st.bgsave_in_progress.load(Ordering::Acquire)
        || st.aof.rewrite_in_progress.load(Ordering::Relaxed)
    {
        return;
    }
    let now = crate::now_ms() / 1000;
    let start = if st.bgsave_scheduled.swap(false, Ordering::Relaxed) {
        tracing::info!("Starting the scheduled BGSAVE");
        true
    } else {
        let cfg = srv.config.load();
        if cfg.save.is_empty() {
            return;
        }
        let points = save_points(&cfg.save);
        let changes = st.changes_since_save(srv.dirty.load(Ordering::Relaxed));
        let since = now.saturating_sub(st.lastsave.load(Ordering::Relaxed));
        let retry_ok = st.last_bgsave_ok.load(Ordering::Relaxed)
            || now.saturating_sub(st.lastbgsave_try.load(Ordering::Relaxed))
                > BGSAVE_RETRY_DELAY_SECS;
        match points
            .iter()
            .find(|(secs, ch)| changes >= *ch && since > *secs && retry_ok)
        {
            Some((secs, ch)) => {
                tracing::info!("{ch} changes in {secs} seconds. Saving...");
                true
            }
            None => false,
        }
    };
    if start {
        let snap = snapshot::take(srv, || {});
        let _ = snapshot::start_bgsave(srv, snap);
    }
}

/// The (seconds, changes) pairs of a `save` setting (validated by the config already).
pub fn save_points(s: &str) -> Vec<(u64, u64)> {
    let nums: Vec<u64> = s
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    nums.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

/// True when save points are configured (`save` is not empty).
pub fn has_save_points(srv: &Server) -> bool {
    !srv.config.load().save.trim().is_empty()
}

/// The save before exiting: SHUTDOWN [SAVE|NOSAVE] decides; otherwise (signals) save when
/// save points are set. Errors are returned so SHUTDOWN can refuse to exit.
pub fn save_on_shutdown(srv: &Server, force: Option<bool>) -> Result<(), String> {
    aof::sync_on_shutdown(srv);
    if srv.persistence.exit_handled.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let save = force.unwrap_or_else(|| has_save_points(srv));
    if !save {
        return Ok(());
    }
    tracing::info!("Saving the final RDB snapshot before exiting.");
    let snap = snapshot::take(srv, || {});
    match snapshot::save_sync(srv, &snap) {
        Ok(_) => Ok(()),
        Err(e) => {
            srv.persistence.exit_handled.store(false, Ordering::Release);
            tracing::warn!(error = %e, "Error trying to save the DB, can't exit.");
            Err(e.to_string())
        }
    }
}

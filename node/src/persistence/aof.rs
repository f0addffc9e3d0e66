//! The append-only file, in Redis 7's multi-part layout: a directory (`appenddirname`)
//! holding a manifest (`<appendfilename>.manifest`), one base file (an RDB snapshot,
//! `<appendfilename>.<n>.base.rdb`) and incr files of commands
//! (`<appendfilename>.<n>.incr.aof`). Redis 7.0 and `redis-check-aof` read it as is.
//!
//! Guarantees: every change is appended to the stream under its keys' locks
//! ([`crate::propagate`]), and a client's reply waits until its write reached the file
//! (and was fsynced, with `appendfsync always`). A rewrite freezes the keyspace and switches
//! the stream to a new incr file at the same instant, so the new base plus the incr files
//! after it hold every change exactly once; the manifest is swapped atomically and the old
//! files are deleted only after. Start-up replays base and incr files through the normal
//! command path; a truncated tail is cut off (`aof-load-truncated yes`), anything else that
//! is not a command stops start-up naming the file and offset, with nothing overwritten.
//!
//! Layout: [`manifest`] (the file list), [`loader`] (reading files), [`writer`] (the
//! thread that writes and fsyncs); this module holds the state, start-up, rewrites,
//! turning AOF on and off at run time, and the cron.

pub mod loader;
pub mod manifest;
pub mod writer;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tandem_protocol::command::{self, CommandSpec, Flags};
use tandem_protocol::Reply;

use super::{rdb, snapshot, AofInfo};
use crate::cmd::{self as cmds, Ctx};
use crate::server::Server;
use loader::{ApplyError, LoadError, Outcome};
use manifest::Manifest;
use writer::{Progress, Switch, Writer};

/// After this many consecutive failed rewrites, automatic ones are delayed (Redis's
/// `AOF_REWRITE_LIMITE_THRESHOLD`).
const REWRITE_LIMIT_THRESHOLD: u64 = 3;
/// Longest delay between automatic retries of a failing rewrite.
const REWRITE_LIMIT_MAX: Duration = Duration::from_secs(60 * 60);
/// How long a shutdown waits for the last bytes to reach the disk.
const SHUTDOWN_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Redis's `aof_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    On,
    /// Turned on at run time: writing to a temporary incr file until the first rewrite
    /// produces a base.
    WaitRewrite,
}

/// The AOF of one server (in [`Server::aof`]).
pub struct Aof {
    progress: Arc<Progress>,
    inner: Mutex<Inner>,
    /// The writer, for sessions hurrying it (no other lock on that path).
    kick: Mutex<Option<writer::Handle>>,
    srv: OnceLock<Weak<Server>>,
    /// Bumped under the feed lock whenever the AOF is turned off or on: a rewrite started
    /// under an older generation attaches and switches nothing.
    generation: AtomicU64,
}

struct Inner {
    mode: Mode,
    /// The manifest as on disk (`None`: not read yet, the AOF was never on).
    manifest: Option<Manifest>,
    writer: Option<Writer>,
    /// The running rewrite: its generation and start.
    rewrite: Option<(u64, Instant)>,
    /// When automatic rewrites may run again after repeated failures.
    retry_after: Option<Instant>,
    retry_delay: Duration,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            progress: Arc::new(Progress::new()),
            inner: Mutex::new(Inner {
                mode: Mode::Off,
                manifest: None,
                writer: None,
                rewrite: None,
                retry_after: None,
                retry_delay: Duration::ZERO,
            }),
            kick: Mutex::new(None),
            srv: OnceLock::new(),
            generation: AtomicU64::new(0),
        }
    }
}

/// What a rewrite does at its freeze point.
enum Target {
    /// AOF on: continue in this new incr file.
    Switch(File, String, Arc<writer::Shared>),
    /// AOF turning on: attach the stream (the writer already waits on the temp incr file).
    Attach,
    /// AOF off: only the base is written.
    Nothing,
}

fn info(srv: &Server) -> &AofInfo {
    &srv.persistence.aof
}

/// The AOF directory and `appendfilename`.
fn paths(srv: &Server) -> (PathBuf, String) {
    let c = srv.config.load();
    (c.dir.join(&c.appenddirname), c.appendfilename.clone())
}

fn temp_incr_name(name: &str) -> String {
    format!("temp-{name}.incr")
}

fn now_secs() -> u64 {
    crate::now_ms() / 1000
}

impl Aof {
    /// Records the server this AOF belongs to (rewrite threads need an owning handle).
    pub fn bind(&self, srv: &Arc<Server>) {
        let _ = self.srv.set(Arc::downgrade(srv));
    }

    fn server(&self) -> Option<Arc<Server>> {
        self.srv.get().and_then(Weak::upgrade)
    }

    /// The AOF stream position every reply may rely on (see [`writer::Progress::acked`]).
    #[inline]
    pub fn acked(&self) -> u64 {
        self.progress.acked.load(Ordering::Acquire)
    }

    /// Waits until the AOF covers stream position `mark` (asking the writer to write now).
    pub async fn wait_acked(&self, mark: u64) {
        self.progress
            .wait(mark, || self.hurry_writer(), || false)
            .await
    }

    /// Wakes the writer thread.
    fn kick_writer(&self) {
        if let Some(h) = self.kick.lock().as_ref() {
            h.thread.unpark();
        }
    }

    /// Gets the stream written now: inline when possible, else by the writer thread.
    fn hurry_writer(&self) {
        let h = self.kick.lock().clone();
        if let Some(h) = h {
            h.hurry();
        }
    }

    pub fn mode(&self) -> Mode {
        self.inner.lock().mode
    }

    fn set_writer(&self, inner: &mut Inner, w: Option<Writer>) {
        *self.kick.lock() = w.as_ref().map(Writer::handle);
        if let Some(old) = std::mem::replace(&mut inner.writer, w) {
            old.stop();
        }
    }

    fn bump_generation(&self, srv: &Server) -> u64 {
        srv.feed
            .with_state(|_| self.generation.fetch_add(1, Ordering::AcqRel) + 1)
    }
}

// ---------------------------------------------------------------------------- start-up

/// Start-up with `appendonly yes`: loads the AOF (upgrading an old single `appendonly.aof`
/// into the directory layout first, as Redis 7 does), then opens it for appending (creating
/// a base from the loaded dataset when there was no AOF yet).
pub fn start_up(srv: &Server) -> Result<(), String> {
    let (dir, name) = paths(srv);
    let manifest_path = dir.join(Manifest::file_name(&name));
    let mut m = if manifest_path.is_file() {
        Manifest::load(&manifest_path).map_err(|e| e.to_string())?
    } else {
        Manifest::default()
    };
    let old = srv.config.load().dir.join(&name);
    if old.is_file()
        && (!dir.is_dir()
            || m.is_empty()
            || (m.incr.is_empty()
                && m.base.as_ref().is_some_and(|b| b.name == name)
                && !dir.join(&name).exists()))
    {
        upgrade(&dir, &name, &old, &mut m)?;
    }
    srv.persistence.loading.store(true, Ordering::Relaxed);
    let r = load(srv, &dir, &m, None);
    srv.persistence.loading.store(false, Ordering::Relaxed);
    r.map_err(|e| e.to_string())?;
    open_on_start(srv, &dir, &name, m)
}

/// Moves an old-style single AOF into the directory as its base (Redis's
/// `aofUpgradePrepare`): manifest first, then the rename, so a crash in between is retried.
fn upgrade(dir: &Path, name: &str, old: &Path, m: &mut Manifest) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    *m = Manifest {
        base: Some(manifest::AofFile {
            name: name.to_string(),
            seq: 1,
            kind: manifest::FileKind::Base,
        }),
        base_seq: 1,
        ..Manifest::default()
    };
    m.persist(dir, name)
        .map_err(|e| format!("Can't write the AOF manifest in {}: {e}", dir.display()))?;
    std::fs::rename(old, dir.join(name)).map_err(|e| {
        format!(
            "Error trying to move the old AOF file {} into dir {}: {e}",
            old.display(),
            dir.display()
        )
    })?;
    tracing::info!(file = %old.display(), dir = %dir.display(), "Successfully migrated an old-style AOF file into the AOF directory");
    Ok(())
}

/// Replays the files of `m` into the keyspace: with a context per command at start-up, or
/// through `ctx` (which holds every shard) for DEBUG LOADAOF.
fn load<'s>(
    srv: &'s Server,
    dir: &Path,
    m: &Manifest,
    ctx: Option<&mut Ctx<'s>>,
) -> Result<(), LoadError> {
    if m.is_empty() {
        tracing::info!("No AOF to load: starting with an empty dataset");
        return Ok(());
    }
    let files: Vec<&manifest::AofFile> = m.base.iter().chain(&m.incr).collect();
    let mut total = 0u64;
    for f in &files {
        let p = dir.join(&f.name);
        match std::fs::metadata(&p) {
            Ok(md) => total += md.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::Missing { file: p })
            }
            Err(source) => return Err(LoadError::Io { file: p, source }),
        }
    }
    if total == 0 {
        return Ok(());
    }
    let allow_truncated = srv.config.load().aof_load_truncated;
    let started = Instant::now();
    let mut to = Replayer { srv, db: 0, ctx };
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let path = dir.join(&f.name);
        let t0 = Instant::now();
        // Each file starts in database 0 (each is replayed by a fresh AOF client in Redis).
        to.db = 0;
        let (outcome, commands) = loader::load_file(&path, &mut to)?;
        if let Outcome::Truncated { valid_up_to } = outcome {
            if !last {
                return Err(LoadError::Truncated {
                    file: path,
                    valid_up_to,
                    hint: " and it is not the last file of the AOF",
                });
            }
            if !allow_truncated {
                return Err(LoadError::Truncated {
                    file: path,
                    valid_up_to,
                    hint: "; set aof-load-truncated yes, or fix it with redis-check-aof --fix <manifest>",
                });
            }
            tracing::warn!(file = %path.display(), "!!! Warning: short read while loading the AOF file !!!");
            tracing::warn!(file = %path.display(), offset = valid_up_to, "!!! Truncating the AOF at offset {valid_up_to} !!!");
            truncate(&path, valid_up_to).map_err(|source| LoadError::Io {
                file: path.clone(),
                source,
            })?;
            tracing::warn!(file = %path.display(), "AOF loaded anyway because aof-load-truncated is enabled");
        }
        let kind = if m.base.as_ref().is_some_and(|b| b.name == f.name) {
            "base"
        } else {
            "incr"
        };
        tracing::info!(file = %f.name, commands, secs = t0.elapsed().as_secs_f64(), "DB loaded from {kind} file");
    }
    // (No key count here: DEBUG LOADAOF holds every shard.)
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        "DB loaded from append only file"
    );
    Ok(())
}

fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

/// Replays AOF files into the keyspace.
struct Replayer<'c, 's> {
    srv: &'s Server,
    /// The database the file's commands are in (`SELECT` changes it).
    db: usize,
    /// DEBUG LOADAOF: the command's context, holding every shard.
    ctx: Option<&'c mut Ctx<'s>>,
}

impl loader::Replay for Replayer<'_, '_> {
    /// An RDB base (or the RDB preamble of an old-style AOF): installed as the whole
    /// dataset, keys already expired included (commands after it may still touch them; the
    /// expiry cycle removes them after the load, as in Redis).
    fn rdb(&mut self, file: &mut File, path: &Path) -> Result<Option<u64>, String> {
        tracing::info!(file = %path.display(), "Reading RDB base file on AOF loading...");
        let loaded =
            rdb::load(&mut *file, &path.display().to_string()).map_err(|e| e.to_string())?;
        let end = loaded.end_offset;
        match self.ctx.as_mut() {
            None => self.srv.install_dataset_with(loaded, true)?,
            Some(ctx) => {
                let mut shards = ctx.shards_mut();
                self.srv
                    .install_dataset_locked_with(&mut shards, loaded, true)?
            }
        };
        Ok(Some(end))
    }

    /// Replays one command as Redis's AOF client does: through the command table, in the
    /// current database, with keys never expiring while loading.
    fn apply(&mut self, args: Vec<Bytes>) -> Result<(), ApplyError> {
        let spec = known(&args)?;
        match self.ctx.as_mut() {
            Some(ctx) => {
                let (db, from_master) = (ctx.db, ctx.from_master);
                ctx.db = self.db;
                ctx.from_master = true;
                let _ = cmds::execute(ctx, spec, &args);
                self.db = ctx.db;
                ctx.db = db;
                ctx.from_master = from_master;
            }
            None => {
                let now = crate::now_ms();
                let srv = self.srv;
                let mut ctx = if spec.has(Flags::KEYSPACE) {
                    Ctx::all(srv, self.db, now)
                } else {
                    Ctx::for_keys(
                        srv,
                        spec.key_indices(args.len()).map(|i| &args[i][..]),
                        self.db,
                        now,
                    )
                };
                ctx.from_master = true;
                let _ = cmds::execute(&mut ctx, spec, &args);
                self.db = ctx.db;
            }
        }
        Ok(())
    }

    fn known(&self, args: &[Bytes]) -> Result<(), ApplyError> {
        known(args).map(|_| ())
    }
}

fn known(args: &[Bytes]) -> Result<&'static CommandSpec, ApplyError> {
    let spec = command::lookup(&args[0])
        .ok_or_else(|| ApplyError::Unknown(String::from_utf8_lossy(&args[0]).into_owned()))?;
    if !spec.arity_ok(args.len()) {
        return Err(ApplyError::Arity(spec.name.to_string()));
    }
    Ok(spec)
}

/// DEBUG LOADAOF: writes out what is buffered, empties the dataset and loads the AOF back
/// (through `ctx`, which holds every shard). As in Redis, a failed load ends the process.
pub fn debug_loadaof(ctx: &mut Ctx) -> Result<Reply, Reply> {
    let srv = ctx.srv;
    if srv.aof.mode() != Mode::Off {
        flush_blocking(srv, false);
    }
    {
        let mut shards = ctx.shards_mut();
        srv.install_dataset_locked(&mut shards, rdb::Loaded::default())
            .map_err(Reply::error)?;
    }
    let (dir, name) = paths(srv);
    let m = match read_manifest(&dir, &name) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "DEBUG LOADAOF: can't read the AOF manifest");
            std::process::exit(1);
        }
    };
    if let Err(e) = load(srv, &dir, &m, Some(&mut *ctx)) {
        tracing::error!(error = %e, "DEBUG LOADAOF: error loading the append only file");
        std::process::exit(1);
    }
    // What the replayed commands did is already in the AOF: propagate none of it.
    ctx.dirty = 0;
    ctx.propagate.clear();
    ctx.expired_dels.clear();
    tracing::warn!("Append Only File loaded by DEBUG LOADAOF");
    Ok(Reply::Ok)
}

/// Opens the AOF for appending after the load (Redis's `aofOpenIfNeededOnServerStart`).
fn open_on_start(srv: &Server, dir: &Path, name: &str, mut m: Manifest) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    if m.is_empty() {
        let base = m.new_base(name);
        let snap = snapshot::take(srv, || {});
        snapshot::write_file(&snap, &base_aux(srv), &dir.join(&base))
            .map_err(|e| format!("Can't create the AOF base file {base}: {e}"))?;
        tracing::info!(file = %base, "Creating AOF base file on server start");
    }
    let (cur, created) = match m.incr.last() {
        Some(f) => (f.name.clone(), false),
        None => (m.new_incr(name), true),
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(&cur))
        .map_err(|e| format!("Can't open the append-only file {cur}: {e}"))?;
    m.persist(dir, name)
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    if created {
        tracing::info!(file = %cur, "Creating AOF incr file on server start");
    } else {
        tracing::info!(file = %cur, "Opening AOF incr file on server start");
    }
    let size = |n: &str| std::fs::metadata(dir.join(n)).map(|m| m.len()).unwrap_or(0);
    let base_size = m.base.as_ref().map(|b| size(&b.name)).unwrap_or(0);
    let before: u64 = base_size
        + m.incr[..m.incr.len().saturating_sub(1)]
            .iter()
            .map(|f| size(&f.name))
            .sum::<u64>();
    let aof = &srv.aof;
    let p = &aof.progress;
    p.size_before.store(before, Ordering::Relaxed);
    p.file_bytes.store(size(&cur), Ordering::Relaxed);
    info(srv).base_size.store(base_size, Ordering::Relaxed);
    let weak = aof.srv.get().cloned().unwrap_or_default();
    let w = Writer::start(weak, p.clone(), file, cur)
        .map_err(|e| format!("Can't start the AOF writer thread: {e}"))?;
    let mut inner = aof.inner.lock();
    aof.set_writer(&mut inner, Some(w));
    srv.feed.with_state(|st| {
        st.aof = Some(BytesMut::new());
        st.last_db = None;
    });
    inner.mode = Mode::On;
    inner.manifest = Some(m);
    drop(inner);
    refresh_info(srv);
    Ok(())
}

/// Aux fields of a base file (`aof-base:1`, no replication fields, as Redis writes it).
fn base_aux(srv: &Server) -> rdb::RdbAux {
    let mut aux = snapshot::aux_for(srv);
    aux.aof_base = true;
    aux.repl_id = None;
    aux
}

// ---------------------------------------------------------------------------- run time

/// CONFIG SET appendonly yes: rewrite, then attach (Redis's `startAppendOnly`).
pub fn enable(srv: &Server) -> Result<(), String> {
    let aof = &srv.aof;
    let mut inner = aof.inner.lock();
    if inner.mode != Mode::Off {
        return Ok(());
    }
    let (dir, name) = paths(srv);
    if inner.manifest.is_none() {
        inner.manifest = Some(read_manifest(&dir, &name)?);
    }
    if inner.rewrite.is_some() {
        // A rewrite started while AOF was off cannot be used: it does not feed an incr file.
        tracing::warn!("AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now.");
        aof.bump_generation(srv);
        end_rewrite(srv, &mut inner);
    }
    if !aof.progress.write_ok.swap(true, Ordering::Relaxed) {
        tracing::warn!("AOF reopen, just ignore the last error.");
    }
    inner.mode = Mode::WaitRewrite;
    if srv.persistence.bgsave_in_progress.load(Ordering::Acquire) {
        info(srv).rewrite_scheduled.store(true, Ordering::Relaxed);
        tracing::warn!("AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
        return Ok(());
    }
    if let Err(e) = start_rewrite(srv, &mut inner) {
        inner.mode = Mode::Off;
        tracing::warn!(error = %e, "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation.");
        return Err(e);
    }
    Ok(())
}

/// CONFIG SET appendonly no: everything buffered is written and fsynced, the stream is
/// detached, a running rewrite is abandoned (Redis's `stopAppendOnly`).
pub fn disable(srv: &Server) {
    let aof = &srv.aof;
    let mut inner = aof.inner.lock();
    if inner.mode == Mode::Off {
        return;
    }
    aof.bump_generation(srv);
    aof.set_writer(&mut inner, None);
    srv.feed.with_state(|st| st.aof = None);
    if inner.mode == Mode::WaitRewrite {
        let (dir, name) = paths(srv);
        let _ = std::fs::remove_file(dir.join(temp_incr_name(&name)));
    }
    if inner.rewrite.is_some() {
        end_rewrite(srv, &mut inner);
    }
    inner.mode = Mode::Off;
    info(srv).rewrite_scheduled.store(false, Ordering::Relaxed);
    tracing::info!("AOF turned off");
}

/// After a full sync replaced the dataset, a replica's AOF must start over from it: off,
/// then on again (a rewrite of the new dataset), as Redis's `restartAOFAfterSYNC`.
pub fn restart_after_sync(srv: &Server) {
    if srv.aof.mode() == Mode::Off {
        return;
    }
    disable(srv);
    if let Err(e) = enable(srv) {
        tracing::warn!(error = %e, "Failed enabling the AOF after successful master synchronization!");
    }
}

fn read_manifest(dir: &Path, name: &str) -> Result<Manifest, String> {
    let p = dir.join(Manifest::file_name(name));
    if p.is_file() {
        Manifest::load(&p).map_err(|e| e.to_string())
    } else {
        Ok(Manifest::default())
    }
}

/// Marks the running rewrite as over (its thread, if still running, discards its work).
fn end_rewrite(srv: &Server, inner: &mut Inner) {
    if let Some((_, started)) = inner.rewrite.take() {
        let st = info(srv);
        st.rewrite_in_progress.store(false, Ordering::Release);
        st.last_rewrite_time_sec
            .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    }
}

/// BGREWRITEAOF.
pub fn bgrewriteaof(srv: &Server, in_exec: bool) -> Result<Reply, Reply> {
    let mut inner = srv.aof.inner.lock();
    if inner.rewrite.is_some() {
        return Err(Reply::error(
            "ERR Background append only file rewriting already in progress",
        ));
    }
    if in_exec || srv.persistence.bgsave_in_progress.load(Ordering::Acquire) {
        info(srv).rewrite_scheduled.store(true, Ordering::Relaxed);
        info(srv)
            .rewrites_consecutive_failures
            .store(0, Ordering::Relaxed);
        return Ok(Reply::status(
            "Background append only file rewriting scheduled",
        ));
    }
    match start_rewrite(srv, &mut inner) {
        Ok(()) => Ok(Reply::status(
            "Background append only file rewriting started",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "Can't rewrite append only file in background");
            Err(Reply::error("ERR Can't execute an AOF background rewriting. Please check the server logs for more information."))
        }
    }
}

/// Starts a background rewrite (Redis's `rewriteAppendOnlyFileBackground`). With AOF on, a
/// new incr file is created and listed in the manifest first, and the stream switches to
/// it at the snapshot's freeze point.
fn start_rewrite(srv: &Server, inner: &mut Inner) -> Result<(), String> {
    let aof = &srv.aof;
    let Some(owner) = aof.server() else {
        return Err("the server is shutting down".into());
    };
    let (dir, name) = paths(srv);
    let fail = |e: String| {
        info(srv).last_bgrewrite_ok.store(false, Ordering::Relaxed);
        e
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        fail(format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        ))
    })?;
    if inner.manifest.is_none() {
        inner.manifest = Some(read_manifest(&dir, &name).map_err(fail)?);
    }
    let generation = aof.generation.load(Ordering::Acquire);
    let target = match inner.mode {
        Mode::On => {
            let mut m = inner.manifest.clone().unwrap_or_default();
            let incr = m.new_incr(&name);
            let f = open_new(&dir.join(&incr))
                .map_err(|e| fail(format!("Can't open the append-only file {incr}: {e}")))?;
            if let Err(e) = m.persist(&dir, &name) {
                let _ = std::fs::remove_file(dir.join(&incr));
                return Err(fail(format!("Can't persist the AOF manifest: {e}")));
            }
            inner.manifest = Some(m);
            tracing::info!(file = %incr, "Creating AOF incr file on background rewrite");
            let shared = match inner.writer.as_ref() {
                Some(w) => w.shared().clone(),
                None => return Err(fail("the AOF writer is not running".into())),
            };
            Target::Switch(f, incr, shared)
        }
        Mode::WaitRewrite => {
            let tmp = temp_incr_name(&name);
            let f = open_new(&dir.join(&tmp))
                .map_err(|e| fail(format!("Can't open the append-only file {tmp}: {e}")))?;
            aof.progress.size_before.store(0, Ordering::Relaxed);
            aof.progress.file_bytes.store(0, Ordering::Relaxed);
            let weak = aof.srv.get().cloned().unwrap_or_default();
            let w = Writer::start(weak, aof.progress.clone(), f, tmp)
                .map_err(|e| fail(format!("Can't start the AOF writer thread: {e}")))?;
            aof.set_writer(inner, Some(w));
            Target::Attach
        }
        Mode::Off => Target::Nothing,
    };
    let st = info(srv);
    st.rewrites.fetch_add(1, Ordering::Relaxed);
    st.rewrite_started.store(now_secs(), Ordering::Relaxed);
    st.rewrite_scheduled.store(false, Ordering::Relaxed);
    st.rewrite_in_progress.store(true, Ordering::Release);
    inner.rewrite = Some((generation, Instant::now()));
    let spawned = std::thread::Builder::new()
        .name("tandem-aof-rewrite".into())
        .spawn(move || rewrite_job(owner, generation, target));
    if let Err(e) = spawned {
        end_rewrite(srv, inner);
        return Err(fail(format!("cannot start the rewrite thread: {e}")));
    }
    tracing::info!("Background append only file rewriting started");
    Ok(())
}

fn open_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The rewrite thread: snapshot (switching the stream at the freeze), base file, manifest.
fn rewrite_job(srv: Arc<Server>, generation: u64, target: Target) {
    let aof = &srv.aof;
    let mut target = Some(target);
    let snap = snapshot::take(&srv, || {
        srv.feed.with_state(|st| {
            if aof.generation.load(Ordering::Acquire) != generation {
                return;
            }
            match target.take() {
                Some(Target::Switch(file, name, shared)) => {
                    let tail = st.aof.as_mut().map(|b| b.split()).unwrap_or_default();
                    *shared.switch.lock() = Some(Switch { tail, file, name });
                    st.last_db = None;
                }
                Some(Target::Attach) => {
                    st.aof = Some(BytesMut::new());
                    st.last_db = None;
                }
                Some(Target::Nothing) | None => {}
            }
        })
    });
    aof.kick_writer();
    let (dir, name) = paths(&srv);
    let tmp = dir.join(format!(
        "temp-rewriteaof-bg-{}-{}.aof",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_base(&snap, &base_aux(&srv), &tmp);
    let keys = snap.keys();
    drop(snap);
    let mut inner = aof.inner.lock();
    let current = inner.rewrite.is_some_and(|(g, _)| g == generation)
        && aof.generation.load(Ordering::Acquire) == generation;
    if !current {
        // AOF was turned off (or on again) meanwhile: this rewrite no longer applies.
        let _ = std::fs::remove_file(&tmp);
        tracing::info!("Background AOF rewrite abandoned");
        return;
    }
    end_rewrite(&srv, &mut inner);
    let result = written
        .map_err(|e| format!("Can't write the AOF base: {e}"))
        .and_then(|size| install_base(&srv, &mut inner, &dir, &name, &tmp, size));
    let st = info(&srv);
    match result {
        Ok(()) => {
            st.last_bgrewrite_ok.store(true, Ordering::Relaxed);
            st.rewrites_consecutive_failures.store(0, Ordering::Relaxed);
            inner.retry_after = None;
            inner.retry_delay = Duration::ZERO;
            tracing::info!(keys, "Background AOF rewrite finished successfully");
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            st.last_bgrewrite_ok.store(false, Ordering::Relaxed);
            let failures = st
                .rewrites_consecutive_failures
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            if failures >= REWRITE_LIMIT_THRESHOLD {
                inner.retry_delay = (inner.retry_delay * 2)
                    .max(Duration::from_secs(60))
                    .min(REWRITE_LIMIT_MAX);
                inner.retry_after = Some(Instant::now() + inner.retry_delay);
                tracing::warn!(
                    minutes = inner.retry_delay.as_secs() / 60,
                    "Background AOF rewrite has repeatedly failed and triggered the limit"
                );
            }
            tracing::warn!(error = %e, "Background AOF rewrite terminated with error");
            if inner.mode == Mode::WaitRewrite {
                // Try again from scratch (Redis schedules a new rewrite).
                aof.set_writer(&mut inner, None);
                srv.feed.with_state(|st| st.aof = None);
                let _ = std::fs::remove_file(dir.join(temp_incr_name(&name)));
                st.rewrite_scheduled.store(true, Ordering::Relaxed);
            }
        }
    }
    drop(inner);
    refresh_info(&srv);
}

/// Writes the base file to `tmp`: RDB, flushed and fsynced.
fn write_base(snap: &snapshot::Snapshot, aux: &rdb::RdbAux, tmp: &Path) -> std::io::Result<u64> {
    let f = File::create(tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let n = rdb::write_rdb(&mut w, snap, aux)?;
    w.flush()?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(n)
}

/// The end of a successful rewrite (Redis's `backgroundRewriteDoneHandler`): the temp
/// file becomes the new base, the incr files it contains become history, the manifest is
/// swapped atomically, then the history files are deleted.
fn install_base(
    srv: &Server,
    inner: &mut Inner,
    dir: &Path,
    name: &str,
    tmp: &Path,
    size: u64,
) -> Result<(), String> {
    let mut m = match inner.manifest.clone() {
        Some(m) => m,
        None => read_manifest(dir, name)?,
    };
    let base = m.new_base(name);
    let base_path = dir.join(&base);
    std::fs::rename(tmp, &base_path).map_err(|e| {
        format!(
            "Error trying to rename the temporary AOF base file {} into {base}: {e}",
            tmp.display()
        )
    })?;
    let mut renamed_incr = None;
    if inner.mode == Mode::WaitRewrite {
        let incr = m.new_incr(name);
        let from = dir.join(temp_incr_name(name));
        if let Err(e) = std::fs::rename(&from, dir.join(&incr)) {
            let _ = std::fs::remove_file(&base_path);
            return Err(format!(
                "Error trying to rename the temporary AOF incr file into {incr}: {e}"
            ));
        }
        renamed_incr = Some((from, incr));
    }
    // With AOF on, the last incr file is the one being written (after the freeze point).
    m.retire_incr(if inner.mode == Mode::Off { 0 } else { 1 });
    if let Err(e) = m.persist(dir, name) {
        let _ = std::fs::remove_file(&base_path);
        if let Some((from, incr)) = renamed_incr {
            let _ = std::fs::rename(dir.join(incr), from);
        }
        return Err(format!("Can't persist the AOF manifest: {e}"));
    }
    tracing::info!(file = %base, "Successfully renamed the temporary AOF base file");
    if inner.mode != Mode::Off {
        // The writer applies the new base size once it has switched files (see
        // `Progress::new_base`); the growth of later automatic rewrites is measured from it.
        srv.aof
            .progress
            .new_base
            .store(size.max(1), Ordering::Release);
        info(srv).base_size.store(size, Ordering::Relaxed);
        srv.aof.kick_writer();
    }
    if inner.mode == Mode::WaitRewrite {
        inner.mode = Mode::On;
    }
    // The history files are contained in the new base: delete them, then drop them from
    // the manifest (a failure here costs only disk space).
    for h in std::mem::take(&mut m.history) {
        tracing::info!(file = %h.name, "Removing the history file");
        let _ = std::fs::remove_file(dir.join(&h.name));
    }
    if let Err(e) = m.persist(dir, name) {
        tracing::warn!(error = %e, "Can't persist the AOF manifest after deleting history files");
    }
    inner.manifest = Some(m);
    Ok(())
}

// ---------------------------------------------------------------------------- cron, INFO

/// Periodic work: scheduled and automatic rewrites (`auto-aof-rewrite-percentage`,
/// `auto-aof-rewrite-min-size`), and INFO's figures.
pub fn cron(srv: &Server) {
    refresh_info(srv);
    let aof = &srv.aof;
    let Some(mut inner) = aof.inner.try_lock() else {
        return;
    };
    if inner.rewrite.is_some() || srv.persistence.bgsave_in_progress.load(Ordering::Acquire) {
        return;
    }
    if inner.retry_after.is_some_and(|t| Instant::now() < t) {
        return;
    }
    let st = info(srv);
    if st.rewrite_scheduled.load(Ordering::Relaxed) {
        tracing::info!("Starting the scheduled AOF rewrite");
        if let Err(e) = start_rewrite(srv, &mut inner) {
            tracing::warn!(error = %e, "Can't start the scheduled AOF rewrite");
        }
        return;
    }
    if inner.mode != Mode::On {
        return;
    }
    let cfg = srv.config.load();
    let perc = cfg.auto_aof_rewrite_percentage as u64;
    let current = aof.progress.current_size();
    if perc == 0 || current <= cfg.auto_aof_rewrite_min_size.0 {
        return;
    }
    let base = st.base_size.load(Ordering::Relaxed).max(1);
    let growth = (current.saturating_mul(100) / base).saturating_sub(100);
    if growth >= perc {
        tracing::info!("Starting automatic rewriting of AOF on {growth}% growth");
        if let Err(e) = start_rewrite(srv, &mut inner) {
            tracing::warn!(error = %e, "Can't start the automatic AOF rewrite");
        }
    }
}

/// Copies the writer's figures into INFO's fields.
pub fn refresh_info(srv: &Server) {
    let p = &srv.aof.progress;
    let st = info(srv);
    st.current_size.store(p.current_size(), Ordering::Relaxed);
    st.buffer_length
        .store(p.buffered.load(Ordering::Relaxed), Ordering::Relaxed);
    st.pending_bio_fsync.store(
        p.fsync_pending.load(Ordering::Relaxed) as u64,
        Ordering::Relaxed,
    );
    st.delayed_fsync
        .store(p.delayed_fsync.load(Ordering::Relaxed), Ordering::Relaxed);
    st.last_write_ok
        .store(p.write_ok.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Before exiting: everything appended so far is written and fsynced (the writer keeps
/// running; a refused SHUTDOWN loses nothing).
pub fn sync_on_shutdown(srv: &Server) {
    if srv.aof.inner.lock().writer.is_none() {
        return;
    }
    flush_blocking(srv, true);
    tracing::info!("Calling fsync() on the AOF file.");
}

/// Blocks until everything appended so far is written (and fsynced when `sync`), or a
/// few seconds passed. Needs no shard lock, so callers may hold them.
fn flush_blocking(srv: &Server, sync: bool) {
    let aof = &srv.aof;
    let target = srv.feed.aof_tail();
    let p = &aof.progress;
    let deadline = Instant::now() + SHUTDOWN_SYNC_WAIT;
    loop {
        let reached = if sync {
            p.synced.load(Ordering::Acquire)
        } else {
            p.written.load(Ordering::Acquire)
        };
        if reached >= target || Instant::now() >= deadline {
            return;
        }
        if sync {
            p.force_sync.store(true, Ordering::Release);
        }
        aof.kick_writer();
        std::thread::sleep(Duration::from_millis(1));
    }
}

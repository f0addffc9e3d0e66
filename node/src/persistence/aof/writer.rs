//! The AOF writer: a thread that drains the propagation stream's AOF buffer into the current
//! incr file and fsyncs it per `appendfsync`, plus a helper thread for the once-a-second
//! fsync of `everysec` (so a slow fsync never holds up writes). Offsets are counted in
//! stream bytes ([`crate::propagate::Feed::aof_tail`]); a session replies only once
//! [`Progress::acked`] covers its last write: written to the file with `everysec`/`no`,
//! written and fsynced with `always`. One write (and one fsync) serves every session
//! waiting at that moment (group commit).

use bytes::BytesMut;
use parking_lot::Mutex;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tandem_config::AppendFsync;
use tokio::sync::Notify;

use crate::server::Server;

/// How long the writer sleeps when nobody asks it to write (expired keys, `everysec`).
const TICK: Duration = Duration::from_millis(50);
/// `everysec`: the fsync period.
const FSYNC_PERIOD: Duration = Duration::from_secs(1);
/// Pause between retries after a write error.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How far the stream has reached the disk; shared by the writer and the sessions.
#[derive(Default)]
pub struct Progress {
    /// Stream bytes written to AOF files.
    pub written: AtomicU64,
    /// Stream bytes written and fsynced.
    pub synced: AtomicU64,
    /// Stream bytes a reply may depend on (`written`, or `synced` under `always`).
    pub acked: AtomicU64,
    /// Woken after every advance of `acked`.
    pub advanced: Notify,
    /// Bytes in the current incr file, and in the base and older incr files: their sum is
    /// `aof_current_size`.
    pub file_bytes: AtomicU64,
    pub size_before: AtomicU64,
    /// Size of a finished rewrite's new base (0: none pending). The writer makes it
    /// `size_before` only once it has taken that rewrite's switch, so the old incr file's
    /// bytes, which the base replaces, are never added on top of it, whichever of the two
    /// (the writer's switch, the rewrite's end) comes first.
    pub new_base: AtomicU64,
    /// Asks the writer for an fsync now, whatever the policy (shutdown).
    pub force_sync: AtomicBool,
    /// An `everysec` fsync is running (`aof_pending_bio_fsync`).
    pub fsync_pending: AtomicBool,
    /// `everysec` fsyncs that were due while the previous one still ran (`aof_delayed_fsync`).
    pub delayed_fsync: AtomicU64,
    /// False after a failed write until a write succeeds (`aof_last_write_status`).
    pub write_ok: AtomicBool,
    /// Bytes drained but not yet written (`aof_buffer_length`).
    pub buffered: AtomicU64,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            write_ok: AtomicBool::new(true),
            ..Progress::default()
        }
    }

    /// `aof_current_size`.
    pub fn current_size(&self) -> u64 {
        self.size_before.load(Ordering::Relaxed) + self.file_bytes.load(Ordering::Relaxed)
    }

    fn ack(&self, upto: u64) {
        self.acked.fetch_max(upto, Ordering::AcqRel);
        self.advanced.notify_waiters();
    }

    /// Waits until `acked >= mark` (or `give_up` says the AOF went away).
    pub async fn wait(&self, mark: u64, kick: impl Fn(), give_up: impl Fn() -> bool) {
        loop {
            let n = self.advanced.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.acked.load(Ordering::Acquire) >= mark || give_up() {
                return;
            }
            kick();
            n.await;
        }
    }
}

/// A new incr file for the writer to continue in, with the bytes that still belong to the
/// old one (set by a rewrite at its freeze point).
pub struct Switch {
    pub tail: BytesMut,
    pub file: File,
    pub name: String,
}

/// What the writer thread and its owner share.
pub struct Shared {
    stop: AtomicBool,
    /// Set under the feed lock at a rewrite's freeze point, taken under the same lock.
    pub switch: Mutex<Option<Switch>>,
}

/// A running writer.
pub struct Writer {
    shared: Arc<Shared>,
    core: Arc<Mutex<Core>>,
    thread: Option<JoinHandle<()>>,
    handle: std::thread::Thread,
}

/// What a session needs to hurry the writer: wake its thread, or write inline.
#[derive(Clone)]
pub struct Handle {
    pub thread: std::thread::Thread,
    pub core: Arc<Mutex<Core>>,
}

impl Handle {
    /// With `everysec`/`no`, a session whose reply waits does the write itself when no one
    /// else is writing (one write syscall, no thread hop), as Redis writes before replying;
    /// with `always` (fsync on the serving thread would stall its other clients) and when
    /// the file is busy, it wakes the writer thread instead.
    pub fn hurry(&self) {
        if let Some(mut core) = self.core.try_lock() {
            if core.policy() != Some(AppendFsync::Always) {
                core.cycle(false);
                return;
            }
        }
        self.thread.unpark();
    }
}

impl Writer {
    /// Starts writing the stream into `file` (opened for append), named `name` in logs.
    pub fn start(
        srv: Weak<Server>,
        progress: Arc<Progress>,
        file: File,
        name: String,
    ) -> std::io::Result<Writer> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            switch: Mutex::new(None),
        });
        let (fsync_tx, fsync_rx) = mpsc::channel::<(Arc<File>, u64)>();
        let p2 = progress.clone();
        let fsyncer = std::thread::Builder::new()
            .name("tandem-aof-fsync".into())
            .spawn(move || {
                for (f, upto) in fsync_rx {
                    match f.sync_data() {
                        Ok(()) => {
                            p2.synced.fetch_max(upto, Ordering::AcqRel);
                        }
                        Err(e) => tracing::warn!(error = %e, "Fail to fsync the AOF file"),
                    }
                    p2.fsync_pending.store(false, Ordering::Release);
                }
            })?;
        let written = progress.written.load(Ordering::Acquire);
        let core = Arc::new(Mutex::new(Core {
            srv,
            sh: shared.clone(),
            p: progress,
            cur: Current {
                file: Arc::new(file),
                name,
            },
            pending: BytesMut::new(),
            written,
            last_fsync: Instant::now(),
            last_error_log: None,
            fsync_tx: Some(fsync_tx),
            fsyncer: Some(fsyncer),
        }));
        let c2 = core.clone();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tandem-aof".into())
            .spawn(move || run(sh, c2))?;
        let handle = thread.thread().clone();
        Ok(Writer {
            shared,
            core,
            thread: Some(thread),
            handle,
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            thread: self.handle.clone(),
            core: self.core.clone(),
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Detaches the AOF from the stream, writes and fsyncs what is left, and ends the
    /// thread.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.handle.unpark();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The file being appended to.
struct Current {
    file: Arc<File>,
    name: String,
}

/// The writing side, behind one lock: the writer thread and hurried sessions take turns.
pub struct Core {
    srv: Weak<Server>,
    sh: Arc<Shared>,
    p: Arc<Progress>,
    cur: Current,
    /// Drained from the stream, not yet written (after an error).
    pending: BytesMut,
    /// Stream bytes written so far.
    written: u64,
    last_fsync: Instant,
    last_error_log: Option<Instant>,
    fsync_tx: Option<mpsc::Sender<(Arc<File>, u64)>>,
    fsyncer: Option<JoinHandle<()>>,
}

/// How a cycle ended.
#[derive(PartialEq, Eq)]
enum Cycle {
    Done,
    WriteFailed,
    /// The server is gone.
    Gone,
}

fn run(sh: Arc<Shared>, core: Arc<Mutex<Core>>) {
    loop {
        let stopping = sh.stop.load(Ordering::Acquire);
        if !stopping {
            std::thread::park_timeout(TICK);
        }
        let mut c = core.lock();
        match c.cycle(stopping) {
            Cycle::Gone => return,
            Cycle::WriteFailed if !stopping => {
                drop(c);
                std::thread::sleep(RETRY_PAUSE);
                continue;
            }
            Cycle::WriteFailed | Cycle::Done => {}
        }
        if stopping {
            c.finish();
            return;
        }
    }
}

impl Core {
    fn policy(&self) -> Option<AppendFsync> {
        self.srv.upgrade().map(|s| s.config.load().appendfsync)
    }

    /// One turn: drain the stream (and a pending switch) under the feed lock, write, fsync
    /// per policy, advance `acked`.
    fn cycle(&mut self, stopping: bool) -> Cycle {
        let Some(srv) = self.srv.upgrade() else {
            return Cycle::Gone;
        };
        let policy = srv.config.load().appendfsync;
        let sh = &self.sh;
        // Bytes before a switch belong to the old file, bytes after it to the new one.
        let (bytes, switch) = srv.feed.with_state(|st| {
            let b = match st.aof.as_mut() {
                Some(b) => b.split(),
                None => BytesMut::new(),
            };
            if stopping {
                st.aof = None;
            }
            (b, sh.switch.lock().take())
        });
        drop(srv);
        let p = self.p.clone();
        if let Some(sw) = switch {
            self.pending.extend_from_slice(&sw.tail);
            // On an error the unwritten rest stays in `pending` and goes to the new file:
            // it still precedes everything after it in the stream.
            self.write_pending();
            if let Err(e) = self.cur.file.sync_data() {
                tracing::warn!(file = %self.cur.name, error = %e, "Fail to fsync the AOF file");
            }
            p.synced.fetch_max(self.written, Ordering::AcqRel);
            tracing::info!(from = %self.cur.name, to = %sw.name, "AOF switched to a new incr file");
            self.cur = Current {
                file: Arc::new(sw.file),
                name: sw.name,
            };
            p.size_before
                .fetch_add(p.file_bytes.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        if p.new_base.load(Ordering::Acquire) != 0 && self.sh.switch.lock().is_none() {
            p.size_before
                .store(p.new_base.swap(0, Ordering::AcqRel), Ordering::Relaxed);
        }
        self.pending.extend_from_slice(&bytes);
        p.buffered
            .store(self.pending.len() as u64, Ordering::Relaxed);
        if !self.pending.is_empty() && !self.write_pending() {
            if policy == AppendFsync::Always {
                tracing::error!(file = %self.cur.name, "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                std::process::exit(1);
            }
            // Replies do not wait for a failing disk (Redis answers and reports
            // aof_last_write_status:err); the writer retries shortly.
            p.ack(self.written + self.pending.len() as u64);
            return Cycle::WriteFailed;
        }
        p.buffered.store(0, Ordering::Relaxed);
        let written = self.written;
        let forced = p.force_sync.swap(false, Ordering::AcqRel);
        match policy {
            _ if forced => {
                if let Err(e) = self.cur.file.sync_data() {
                    tracing::warn!(file = %self.cur.name, error = %e, "Fail to fsync the AOF file");
                } else {
                    p.synced.fetch_max(written, Ordering::AcqRel);
                }
                p.ack(written);
            }
            AppendFsync::Always => {
                if p.synced.load(Ordering::Acquire) < written {
                    if let Err(e) = self.cur.file.sync_data() {
                        tracing::error!(file = %self.cur.name, error = %e, "Can't persist the AOF with fsync when the AOF fsync policy is 'always'. Exiting...");
                        std::process::exit(1);
                    }
                    p.synced.fetch_max(written, Ordering::AcqRel);
                    self.last_fsync = Instant::now();
                }
                p.ack(written);
            }
            AppendFsync::EverySec | AppendFsync::No => {
                p.ack(written);
                if policy == AppendFsync::EverySec
                    && self.last_fsync.elapsed() >= FSYNC_PERIOD
                    && p.synced.load(Ordering::Acquire) < written
                {
                    self.last_fsync = Instant::now();
                    if p.fsync_pending.swap(true, Ordering::AcqRel) {
                        p.delayed_fsync.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let sent = self
                            .fsync_tx
                            .as_ref()
                            .is_some_and(|tx| tx.send((self.cur.file.clone(), written)).is_ok());
                        if !sent {
                            let _ = self.cur.file.sync_data();
                            p.synced.fetch_max(written, Ordering::AcqRel);
                            p.fsync_pending.store(false, Ordering::Release);
                        }
                    }
                }
            }
        }
        Cycle::Done
    }

    /// The last turn: fsync, release every waiter, end the fsync thread.
    fn finish(&mut self) {
        let p = &self.p;
        if let Err(e) = self.cur.file.sync_data() {
            tracing::warn!(file = %self.cur.name, error = %e, "Fail to fsync the AOF file");
        } else {
            p.synced.fetch_max(self.written, Ordering::AcqRel);
        }
        // Nobody may wait on bytes that will never be written.
        p.ack(self.written + self.pending.len() as u64);
        self.fsync_tx = None;
        if let Some(t) = self.fsyncer.take() {
            let _ = t.join();
        }
    }

    /// Writes `pending` to the current file; what was written leaves `pending`. Returns
    /// false on an error (logged at most once a second), with the rest still in `pending`.
    fn write_pending(&mut self) -> bool {
        let p = &self.p;
        while !self.pending.is_empty() {
            match (&*self.cur.file).write(&self.pending) {
                Ok(0) => {
                    self.report("write returned 0 bytes (disk full?)");
                    return false;
                }
                Ok(n) => {
                    let _ = self.pending.split_to(n);
                    self.written += n as u64;
                    p.written.store(self.written, Ordering::Release);
                    p.file_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.report(&e.to_string());
                    return false;
                }
            }
        }
        if !p.write_ok.swap(true, Ordering::Relaxed) {
            tracing::warn!(file = %self.cur.name, "AOF write error looks solved, Redis can write again.");
        }
        true
    }

    fn report(&mut self, e: &str) {
        self.p.write_ok.store(false, Ordering::Relaxed);
        if self
            .last_error_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_error_log = Some(Instant::now());
            tracing::warn!(file = %self.cur.name, error = e, "Error writing to the AOF file");
        }
    }
}

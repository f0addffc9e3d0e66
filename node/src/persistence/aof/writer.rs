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
    thread: Option<JoinHandle<()>>,
    handle: std::thread::Thread,
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
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tandem-aof".into())
            .spawn(move || run(srv, sh, progress, file, name))?;
        let handle = thread.thread().clone();
        Ok(Writer {
            shared,
            thread: Some(thread),
            handle,
        })
    }

    /// Asks for a write now.
    #[inline]
    pub fn kick(&self) {
        self.handle.unpark();
    }

    pub fn thread(&self) -> &std::thread::Thread {
        &self.handle
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

/// The file being appended to, and what of it is on disk.
struct Current {
    file: Arc<File>,
    name: String,
}

fn run(srv: Weak<Server>, sh: Arc<Shared>, p: Arc<Progress>, file: File, name: String) {
    let (fsync_tx, fsync_rx) = mpsc::channel::<(Arc<File>, u64)>();
    let p2 = p.clone();
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
        });
    if let Err(e) = &fsyncer {
        tracing::warn!(error = %e, "cannot start the AOF fsync thread; fsyncing inline");
    }
    let mut cur = Current {
        file: Arc::new(file),
        name,
    };
    let mut pending = BytesMut::new();
    let mut written = p.written.load(Ordering::Acquire);
    let mut last_fsync = Instant::now();
    let mut last_error_log: Option<Instant> = None;
    loop {
        let stopping = sh.stop.load(Ordering::Acquire);
        if !stopping && pending.is_empty() {
            std::thread::park_timeout(TICK);
        }
        let Some(srv) = srv.upgrade() else { return };
        let policy = srv.config.load().appendfsync;
        // Drain under the feed lock, together with a switch set at a freeze point: bytes
        // before the switch belong to the old file, bytes after it to the new one.
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
        if let Some(sw) = switch {
            pending.extend_from_slice(&sw.tail);
            // Everything for the old file, then fsync and close it.
            // On an error the unwritten rest stays in `pending` and goes to the new file:
            // it still precedes everything after it in the stream.
            write_all(&cur, &mut pending, &p, &mut written, &mut last_error_log);
            if let Err(e) = cur.file.sync_data() {
                tracing::warn!(file = %cur.name, error = %e, "Fail to fsync the AOF file");
            }
            p.synced.fetch_max(written, Ordering::AcqRel);
            tracing::info!(from = %cur.name, to = %sw.name, "AOF switched to a new incr file");
            cur = Current {
                file: Arc::new(sw.file),
                name: sw.name,
            };
            p.size_before
                .fetch_add(p.file_bytes.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        pending.extend_from_slice(&bytes);
        p.buffered.store(pending.len() as u64, Ordering::Relaxed);
        if !pending.is_empty() {
            let ok = write_all(&cur, &mut pending, &p, &mut written, &mut last_error_log);
            if !ok {
                if policy == AppendFsync::Always {
                    tracing::error!(file = %cur.name, "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                    std::process::exit(1);
                }
                // Replies do not wait for a failing disk (Redis answers and reports
                // aof_last_write_status:err); retry shortly.
                p.ack(written + pending.len() as u64);
                if !stopping {
                    std::thread::sleep(RETRY_PAUSE);
                    continue;
                }
            }
        }
        p.buffered.store(0, Ordering::Relaxed);
        let forced = p.force_sync.swap(false, Ordering::AcqRel);
        match policy {
            _ if forced => {
                if let Err(e) = cur.file.sync_data() {
                    tracing::warn!(file = %cur.name, error = %e, "Fail to fsync the AOF file");
                } else {
                    p.synced.fetch_max(written, Ordering::AcqRel);
                }
                p.ack(written);
            }
            AppendFsync::Always => {
                if p.synced.load(Ordering::Acquire) < written {
                    if let Err(e) = cur.file.sync_data() {
                        tracing::error!(file = %cur.name, error = %e, "Can't persist the AOF with fsync when the AOF fsync policy is 'always'. Exiting...");
                        std::process::exit(1);
                    }
                    p.synced.fetch_max(written, Ordering::AcqRel);
                    last_fsync = Instant::now();
                }
                p.ack(written);
            }
            AppendFsync::EverySec | AppendFsync::No => {
                p.ack(written);
                if policy == AppendFsync::EverySec
                    && last_fsync.elapsed() >= FSYNC_PERIOD
                    && p.synced.load(Ordering::Acquire) < written
                {
                    last_fsync = Instant::now();
                    if p.fsync_pending.swap(true, Ordering::AcqRel) {
                        p.delayed_fsync.fetch_add(1, Ordering::Relaxed);
                    } else if fsyncer.is_err()
                        || fsync_tx.send((cur.file.clone(), written)).is_err()
                    {
                        let _ = cur.file.sync_data();
                        p.synced.fetch_max(written, Ordering::AcqRel);
                        p.fsync_pending.store(false, Ordering::Release);
                    }
                }
            }
        }
        if stopping {
            if let Err(e) = cur.file.sync_data() {
                tracing::warn!(file = %cur.name, error = %e, "Fail to fsync the AOF file");
            } else {
                p.synced.fetch_max(written, Ordering::AcqRel);
            }
            // Nobody may wait on bytes that will never be written.
            p.ack(written + pending.len() as u64);
            drop(fsync_tx);
            if let Ok(t) = fsyncer {
                let _ = t.join();
            }
            return;
        }
    }
}

/// Writes `pending` to the current file; what was written leaves `pending`. Returns false
/// on an error (logged at most once a second), with the rest still in `pending`.
fn write_all(
    cur: &Current,
    pending: &mut BytesMut,
    p: &Progress,
    written: &mut u64,
    last_error_log: &mut Option<Instant>,
) -> bool {
    while !pending.is_empty() {
        match (&*cur.file).write(pending) {
            Ok(0) => {
                report(cur, "write returned 0 bytes (disk full?)", last_error_log);
                p.write_ok.store(false, Ordering::Relaxed);
                return false;
            }
            Ok(n) => {
                let _ = pending.split_to(n);
                *written += n as u64;
                p.written.store(*written, Ordering::Release);
                p.file_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                report(cur, &e.to_string(), last_error_log);
                p.write_ok.store(false, Ordering::Relaxed);
                return false;
            }
        }
    }
    if !p.write_ok.swap(true, Ordering::Relaxed) {
        tracing::warn!(file = %cur.name, "AOF write error looks solved, Redis can write again.");
    }
    true
}

fn report(cur: &Current, e: &str, last: &mut Option<Instant>) {
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        *last = Some(Instant::now());
        tracing::warn!(file = %cur.name, error = e, "Error writing to the AOF file");
    }
}

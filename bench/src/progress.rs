//! The live progress line: once a second, on stderr, ops/s over the last second, p99 so far and
//! errors so far. Only when both stdout and stderr are terminals; piped or redirected runs stay
//! silent. Connections publish into it in batches ([`Progress::publish`]), never per request.

use hdrhistogram::Histogram;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::histogram::new_histogram;

/// How often the line is printed.
pub const PRINT_EVERY: Duration = Duration::from_secs(1);

/// How often a connection hands its recent latencies over.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Whether the progress line should be shown at all.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
}

/// Counters shared by the connections of one run and the printer.
pub struct Progress {
    replies: AtomicU64,
    errors: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            replies: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
        }
    }

    /// Adds a connection's recent replies and errors, and empties `recent` into the shared
    /// latency histogram.
    pub fn publish(&self, replies: u64, errors: u64, recent: &mut Histogram<u64>) {
        self.replies.fetch_add(replies, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
        if let Ok(mut h) = self.latency.lock() {
            let _ = h.add(&*recent);
        }
        recent.reset();
    }

    /// (replies, errors, p99 in ms) so far.
    pub fn snapshot(&self) -> (u64, u64, f64) {
        let p99 = self
            .latency
            .lock()
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
            .unwrap_or(0.0);
        (
            self.replies.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            p99,
        )
    }
}

/// A connection's not-yet-published counts.
pub struct Pending {
    pub replies: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
    last: Instant,
}

impl Default for Pending {
    fn default() -> Self {
        Self::new()
    }
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            replies: 0,
            errors: 0,
            latency: new_histogram(),
            last: Instant::now(),
        }
    }

    /// Publishes into `progress` if [`PUBLISH_EVERY`] has passed (or `force`).
    pub fn maybe_publish(&mut self, progress: &Progress, now: Instant, force: bool) {
        if force || now.duration_since(self.last) >= PUBLISH_EVERY {
            progress.publish(self.replies, self.errors, &mut self.latency);
            self.replies = 0;
            self.errors = 0;
            self.last = now;
        }
    }
}

/// Prints the line every [`PRINT_EVERY`] until the task is aborted.
pub async fn print_loop(progress: Arc<Progress>, label: String) {
    let start = Instant::now();
    let mut last_replies = 0;
    let mut last = start;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PRINT_EVERY, PRINT_EVERY);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let (replies, errors, p99) = progress.snapshot();
        let secs = now.duration_since(last).as_secs_f64().max(1e-9);
        let rate = (replies - last_replies) as f64 / secs;
        last_replies = replies;
        last = now;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{label}  {:>5.0}s  {:>12} ops/s  p99 {:>9.3} ms  errors {}",
            now.duration_since(start).as_secs_f64(),
            crate::report::thousands(rate),
            p99,
            errors
        );
    }
}

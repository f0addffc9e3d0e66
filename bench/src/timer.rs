//! A sub-millisecond sleep for the open loop's send schedule. Tokio's timer rounds every
//! deadline up to the next millisecond, which would add up to ~1 ms to each open-loop latency
//! (they are measured from the intended send time). Here one thread keeps the pending
//! deadlines in a heap and sleeps precisely (futex timeout) until the earliest, then wakes the
//! tasks that are due. Waking early never happens; waking late is bounded by the OS scheduler.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Longest the timer thread sleeps without looking at the heap again.
const IDLE_PARK: Duration = Duration::from_millis(100);

struct Entry {
    due: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

struct Timer {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    thread: Thread,
}

fn timer() -> &'static Arc<Timer> {
    static TIMER: OnceLock<Arc<Timer>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Timer>>();
        let handle = std::thread::Builder::new()
            .name("bench-timer".into())
            .spawn(move || {
                if let Ok(t) = rx.recv() {
                    run(&t);
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the timer thread: {e}"));
        let t = Arc::new(Timer {
            heap: Mutex::new(BinaryHeap::new()),
            thread: handle.thread().clone(),
        });
        let _ = tx.send(Arc::clone(&t));
        t
    })
}

fn run(t: &Timer) {
    loop {
        let mut due = Vec::new();
        let next = {
            let Ok(mut heap) = t.heap.lock() else { return };
            let now = Instant::now();
            while heap.peek().is_some_and(|Reverse(e)| e.due <= now) {
                if let Some(Reverse(e)) = heap.pop() {
                    due.push(e.waker);
                }
            }
            heap.peek().map(|Reverse(e)| e.due)
        };
        for w in due {
            w.wake();
        }
        let wait = next
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(IDLE_PARK)
            .min(IDLE_PARK);
        if !wait.is_zero() {
            std::thread::park_timeout(wait);
        }
    }
}

/// Completes at `due` (not before), with sub-millisecond precision.
pub fn sleep_until(due: Instant) -> PreciseSleep {
    PreciseSleep { due }
}

pub struct PreciseSleep {
    due: Instant,
}

impl Future for PreciseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.due {
            return Poll::Ready(());
        }
        let t = timer();
        let earliest = {
            let Ok(mut heap) = t.heap.lock() else {
                return Poll::Ready(());
            };
            let earlier = heap.peek().is_none_or(|Reverse(e)| self.due < e.due);
            heap.push(Reverse(Entry {
                due: self.due,
                waker: cx.waker().clone(),
            }));
            earlier
        };
        if earliest {
            t.thread.unpark();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_on_time_and_never_early() {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..20u64 {
            let due = start + Duration::from_micros(300 * i + 200);
            tasks.push(tokio::spawn(async move {
                sleep_until(due).await;
                let now = Instant::now();
                assert!(now >= due, "woke early");
                now.duration_since(due)
            }));
        }
        for t in tasks {
            let late = t.await.unwrap();
            // Coarse bound: a busy machine may be slow to schedule, never early.
            assert!(late < Duration::from_millis(200), "{late:?}");
        }
        sleep_until(Instant::now() - Duration::from_secs(1)).await;
    }
}

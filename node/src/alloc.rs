//! A counting global allocator: wraps another allocator and keeps `used_memory` exact enough
//! for INFO and `maxmemory` without a shared atomic on every allocation (per-thread deltas are
//! folded into the global counter in 64 KiB steps).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

static USED: AtomicI64 = AtomicI64::new(0);
const FOLD: i64 = 64 * 1024;

/// A thread's allocator bookkeeping.
struct Local {
    /// Bytes allocated minus freed, not yet folded into `USED`.
    delta: Cell<i64>,
    /// Allocations since the last [`release_free_memory`] pass.
    allocs: Cell<u64>,
    /// True once a pass released this thread's free memory and the thread has stayed idle.
    released: Cell<bool>,
}

thread_local! {
    static LOCAL: Local = const {
        Local { delta: Cell::new(0), allocs: Cell::new(0), released: Cell::new(false) }
    };
}

#[inline]
fn account(delta: i64) {
    let folded = LOCAL.try_with(|l| {
        if delta > 0 {
            l.allocs.set(l.allocs.get() + 1);
        }
        let v = l.delta.get() + delta;
        if v.abs() >= FOLD {
            USED.fetch_add(v, Ordering::Relaxed);
            l.delta.set(0);
        } else {
            l.delta.set(v);
        }
    });
    if folded.is_err() {
        // Thread-local storage is gone (thread exit): count directly.
        USED.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Returns this thread's freed memory to the OS once the thread has gone idle. mimalloc
/// keeps freed pages for reuse and purges them only when the thread next allocates, so a
/// thread that went idle after a load would hold them for good (1M keys: RSS 170 MB for
/// 97 MB in use; 128 MB after this). The cron and every connection worker call this once a
/// second; it purges only when the thread made fewer than [`IDLE_ALLOCS`] allocations since
/// the previous call, once per idle spell. A busy thread reuses its free pages: purging them
/// every second under a steady write load made it fault them back in, zeroing 2 MB huge
/// pages (8% of a replica's CPU applying 50k writes/s, and a stall of its own). A pass took
/// about 2 ms when it returned ~45 MB after a load. Only the forced pass purges at once.
/// (The binary's allocator is mimalloc; if it were not, this would only tidy an unused heap.)
pub fn release_free_memory() {
    let idle = LOCAL.try_with(|l| {
        let busy = l.allocs.replace(0) >= IDLE_ALLOCS;
        if busy {
            l.released.set(false);
        }
        !busy && !l.released.replace(true)
    });
    if idle == Ok(true) {
        // SAFETY: mi_collect has no preconditions.
        unsafe { libmimalloc_sys::mi_collect(true) }
    }
}

/// Fewer allocations than this between two [`release_free_memory`] calls make a thread idle.
const IDLE_ALLOCS: u64 = 1000;

/// How often [`release_free_memory`] runs on each thread.
pub const RELEASE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes currently allocated through [`Counting`] (0 when it is not the global allocator).
pub fn used_memory() -> u64 {
    USED.load(Ordering::Relaxed).max(0) as u64
}

/// Wraps allocator `A`, counting bytes in and out.
pub struct Counting<A>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            account(layout.size() as i64);
        }
        p
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            account(layout.size() as i64);
        }
        p
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        account(-(layout.size() as i64));
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            account(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

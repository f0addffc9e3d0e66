//! Eviction under `maxmemory`: Redis's approximated LRU / LFU / random / TTL policies by
//! sampling `maxmemory-samples` keys.
//!
//! Guarantees: called with no shard locked, it locks one shard at a time; it frees (by its own
//! estimate of each evicted key's size) at least `used_memory - maxmemory` bytes, or stops after
//! a short time limit (the next write continues), or answers OOM when nothing is evictable.
//! Only one thread evicts at a time; the others go ahead while it works, as Redis lets
//! commands run while an eviction cycle is still in progress.

use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tandem_config::MaxmemoryPolicy;
use tandem_protocol::Reply;

use super::{CompactBytes, Entry, Value, SHARDS};
use crate::server::Server;

/// Redis's OOM error text.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Size of the eviction pool (Redis's `EVPOOL_SIZE`).
pub const EVPOOL_SIZE: usize = 16;
/// Longest a single call evicts before letting the command run (Redis's eviction time limit
/// at the default `maxmemory-eviction-tenacity` of 10).
pub const EVICTION_TIME_LIMIT: Duration = Duration::from_micros(500);

/// A key the pool may evict, with its eviction score (higher = better candidate).
struct Candidate {
    score: u64,
    shard: usize,
    db: usize,
    key: CompactBytes,
}

/// The eviction pool, kept across calls; its lock also makes eviction single-threaded.
static POOL: Mutex<Vec<Candidate>> = Mutex::new(Vec::new());

fn oom() -> Reply {
    Reply::error(OOM)
}

/// Frees memory until `used_memory <= maxmemory`, per the policy. `Err(OOM)` when the limit
/// cannot be met (noeviction, or nothing evictable). Must be called with no shard locked.
pub fn make_room(srv: &Server) -> Result<(), Reply> {
    let max = srv.maxmemory.load(Ordering::Relaxed);
    if max == 0 {
        return Ok(());
    }
    let used = crate::alloc::used_memory();
    if used <= max {
        return Ok(());
    }
    let policy = srv.policy();
    if policy == MaxmemoryPolicy::NoEviction {
        return Err(oom());
    }
    // Someone else is evicting right now: let this command run.
    let Some(mut pool) = POOL.try_lock() else {
        return Ok(());
    };
    let to_free = used - max;
    let samples = srv.config.load().maxmemory_samples.clamp(1, 64);
    let start = Instant::now();
    let mut freed = 0u64;
    let mut evicted = 0u64;
    let result = loop {
        if freed >= to_free {
            break Ok(());
        }
        let got = match policy {
            MaxmemoryPolicy::AllkeysRandom => evict_random(srv, false),
            MaxmemoryPolicy::VolatileRandom => evict_random(srv, true),
            _ => evict_from_pool(srv, policy, samples, &mut pool),
        };
        match got {
            Some(bytes) => {
                freed += bytes as u64;
                evicted += 1;
            }
            None => break Err(oom()),
        }
        if evicted.is_multiple_of(16) && start.elapsed() >= EVICTION_TIME_LIMIT {
            break Ok(());
        }
    };
    if evicted > 0 {
        srv.stats.evicted_keys.fetch_add(evicted, Ordering::Relaxed);
        tracing::debug!(evicted, freed, to_free, policy = %policy, "evicted keys (maxmemory)");
    }
    result
}

fn is_volatile(p: MaxmemoryPolicy) -> bool {
    matches!(
        p,
        MaxmemoryPolicy::VolatileLru
            | MaxmemoryPolicy::VolatileLfu
            | MaxmemoryPolicy::VolatileRandom
            | MaxmemoryPolicy::VolatileTtl
    )
}

/// The eviction score of an entry under `policy`: idle seconds (LRU), 255 - frequency (LFU),
/// or closeness of the deadline (TTL).
fn score(policy: MaxmemoryPolicy, e: &Entry, now_ms: u64, decay: u32) -> u64 {
    match policy {
        MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu => {
            255 - lfu_decayed_counter(e.lru, now_ms, decay).min(255) as u64
        }
        MaxmemoryPolicy::VolatileTtl => u64::MAX - e.expire_at,
        _ => (now_ms / 1000).saturating_sub(e.lru as u64),
    }
}

/// Samples up to `samples` keys per database from one shard (the first non-empty one from
/// a random start) into the pool. False when no shard has an evictable key.
fn populate(
    srv: &Server,
    policy: MaxmemoryPolicy,
    samples: usize,
    pool: &mut Vec<Candidate>,
) -> bool {
    let volatile = is_volatile(policy);
    let now = crate::now_ms();
    let decay = srv.config.load().lfu_decay_time;
    let first = fastrand::usize(..SHARDS);
    for off in 0..SHARDS {
        let idx = (first + off) % SHARDS;
        let sh = srv.keyspace.lock(idx);
        let mut any = false;
        for (db, d) in sh.dbs.iter().enumerate() {
            let n = if volatile {
                d.expires.len()
            } else {
                d.map.len()
            };
            if n == 0 {
                continue;
            }
            any = true;
            for _ in 0..samples {
                let i = fastrand::usize(..n);
                let found = if volatile {
                    d.expires
                        .get_index(i)
                        .and_then(|k| d.map.get_key_value(k.as_slice()))
                } else {
                    d.map.get_index(i)
                };
                if let Some((k, e)) = found {
                    pool_insert(pool, score(policy, e, now, decay), idx, db, k);
                }
            }
        }
        if any {
            return true;
        }
    }
    false
}

/// Inserts a candidate, keeping the pool sorted by ascending score and at most
/// [`EVPOOL_SIZE`] long (the worst candidate drops out).
fn pool_insert(pool: &mut Vec<Candidate>, score: u64, shard: usize, db: usize, key: &CompactBytes) {
    if pool
        .iter()
        .any(|c| c.shard == shard && c.db == db && c.key == *key)
    {
        return;
    }
    if pool.len() >= EVPOOL_SIZE {
        if pool.first().is_some_and(|c| c.score >= score) {
            return;
        }
        pool.remove(0);
    }
    let at = pool.partition_point(|c| c.score < score);
    pool.insert(
        at,
        Candidate {
            score,
            shard,
            db,
            key: key.clone(),
        },
    );
}

/// Evicts the best candidate (refilling the pool first). The evicted key's estimated size,
/// or `None` when nothing is evictable.
fn evict_from_pool(
    srv: &Server,
    policy: MaxmemoryPolicy,
    samples: usize,
    pool: &mut Vec<Candidate>,
) -> Option<usize> {
    let volatile = is_volatile(policy);
    // A couple of refills at most: candidates may have been deleted since they were pooled.
    for _ in 0..4 {
        if !populate(srv, policy, samples, pool) {
            pool.clear();
            return None;
        }
        while let Some(c) = pool.pop() {
            let mut sh = srv.keyspace.lock(c.shard);
            let d = &mut sh.dbs[c.db];
            let present = d
                .map
                .get(c.key.as_slice())
                .is_some_and(|e| !volatile || e.expire_at != super::NO_EXPIRE);
            if !present {
                continue;
            }
            if let Some(e) = d.remove(&c.key) {
                let size = entry_size(&c.key, &e);
                sh.signal_key(c.db, &c.key);
                srv.feed.append(&[crate::propagate::del(c.db, &c.key)]);
                drop(sh);
                drop(e);
                return Some(size);
            }
        }
    }
    None
}

/// Evicts one random key (one with a TTL for volatile-random).
fn evict_random(srv: &Server, volatile: bool) -> Option<usize> {
    let first = fastrand::usize(..SHARDS);
    for off in 0..SHARDS {
        let idx = (first + off) % SHARDS;
        let mut sh = srv.keyspace.lock(idx);
        let ndbs = sh.dbs.len();
        let db_first = fastrand::usize(..ndbs.max(1));
        for dboff in 0..ndbs {
            let db = (db_first + dboff) % ndbs;
            let d = &mut sh.dbs[db];
            let n = if volatile {
                d.expires.len()
            } else {
                d.map.len()
            };
            if n == 0 {
                continue;
            }
            let i = fastrand::usize(..n);
            let key = if volatile {
                d.expires.get_index(i).cloned()
            } else {
                d.map.get_index(i).map(|(k, _)| k.clone())
            }?;
            let e = d.remove(&key)?;
            let size = entry_size(&key, &e);
            sh.signal_key(db, &key);
            srv.feed.append(&[crate::propagate::del(db, &key)]);
            drop(sh);
            drop(e);
            return Some(size);
        }
    }
    None
}

/// Bytes a key holds on the heap beyond its inline part.
fn heap_len(b: &CompactBytes) -> usize {
    match b {
        CompactBytes::Heap(h) => h.len(),
        CompactBytes::Inline { .. } => 0,
    }
}

/// Per-key cost of the keyspace's tables (map slot, hash index, expires slot), estimated.
const KEY_OVERHEAD: usize = 96;

/// Estimated bytes freed by deleting this key: exact for strings, extrapolated from up to 64
/// elements for collections.
pub fn entry_size(key: &CompactBytes, e: &Entry) -> usize {
    fn sampled<I: Iterator<Item = usize>>(len: usize, it: I) -> usize {
        let mut n = 0;
        let mut sum = 0;
        for s in it.take(64) {
            n += 1;
            sum += s;
        }
        sum.checked_div(n).unwrap_or(0) * len
    }
    let value = match &e.value {
        Value::Str(s) => heap_len(s),
        Value::List(l) => l.len() * 24 + sampled(l.len(), l.iter().map(heap_len)),
        Value::Hash(h) => {
            h.len() * 64 + sampled(h.len(), h.iter().map(|(f, v)| heap_len(f) + heap_len(v)))
        }
        Value::Set(s) => s.len() * 40 + sampled(s.len(), s.iter().map(heap_len)),
        Value::ZSet(z) => z.len() * 96 + sampled(z.len(), z.dict.keys().map(heap_len)),
    };
    KEY_OVERHEAD + heap_len(key) + value
}

/// Initial LFU counter of a new key (Redis's LFU_INIT_VAL).
pub const LFU_INIT_VAL: u32 = 5;

/// Updates an LFU field (16-bit minutes | 8-bit log counter) on access, as Redis does:
/// decay by elapsed periods, then a probabilistic logarithmic increment.
pub fn lfu_touch(old: u32, now_ms: u64, log_factor: u32, decay_time: u32) -> u32 {
    let now_min = ((now_ms / 60_000) & 0xffff) as u32;
    if old == 0 {
        return (now_min << 8) | LFU_INIT_VAL;
    }
    let mut counter = lfu_decayed_counter(old, now_ms, decay_time);
    if counter < 255 {
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (base * log_factor as f64 + 1.0);
        if fastrand::f64() < p {
            counter += 1;
        }
    }
    (now_min << 8) | counter
}

/// The LFU counter after decay (no increment), as OBJECT FREQ and eviction see it.
pub fn lfu_decayed_counter(field: u32, now_ms: u64, decay_time: u32) -> u32 {
    let now_min = ((now_ms / 60_000) & 0xffff) as u32;
    let last = field >> 8;
    let counter = field & 0xff;
    let elapsed = if now_min >= last {
        now_min - last
    } else {
        65535 - last + now_min
    };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

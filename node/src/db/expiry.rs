//! Active expiry: a background cycle samples keys with a TTL and deletes the expired ones,
//! as Redis's `activeExpireCycle` does. Lazy expiry on access lives in `cmd::ctx`.
//!
//! Guarantee: one shard is locked at a time, for at most one sampling loop over its
//! databases, and a whole cycle stays within ~25% of a cron tick (`1000 / hz` ms), resuming
//! at the shard where the previous cycle stopped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{CompactBytes, SHARDS};
use crate::server::Server;

/// Keys sampled per database per loop (Redis's `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const KEYS_PER_LOOP: usize = 20;
/// Share of a cron tick the cycle may use, in percent (Redis's `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`).
pub const SLOW_TIME_PERC: u64 = 25;

/// Where the next cycle starts, so an interrupted cycle resumes instead of restarting.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// Runs one active expiry cycle over every shard. Returns the number of keys deleted.
pub fn cycle(srv: &Server) -> u64 {
    let hz = srv.config.load().hz.max(1) as u64;
    let budget = Duration::from_micros(1_000_000 / hz * SLOW_TIME_PERC / 100);
    let start = Instant::now();
    let first = NEXT_SHARD.load(Ordering::Relaxed) % SHARDS;
    let mut deleted = 0u64;
    let mut done = 0;
    while done < SHARDS {
        let idx = (first + done) % SHARDS;
        done += 1;
        deleted += expire_shard(srv, idx, start, budget);
        if start.elapsed() >= budget {
            break;
        }
    }
    NEXT_SHARD.store((first + done) % SHARDS, Ordering::Relaxed);
    srv.latency
        .sample_if_needed("expire-cycle", start.elapsed().as_millis() as u64);
    if deleted > 0 {
        srv.stats.expired_keys.fetch_add(deleted, Ordering::Relaxed);
        tracing::trace!(deleted, "active expiry cycle");
    }
    deleted
}

/// Samples and deletes expired keys in every database of shard `idx`, repeating while more
/// than a quarter of a sample had expired (and the time budget allows).
fn expire_shard(srv: &Server, idx: usize, start: Instant, budget: Duration) -> u64 {
    let now = crate::now_ms();
    let mut shard = srv.keyspace.lock(idx);
    let mut deleted = 0u64;
    let mut victims: Vec<CompactBytes> = Vec::with_capacity(KEYS_PER_LOOP);
    for db in 0..shard.dbs.len() {
        loop {
            let d = &mut shard.dbs[db];
            let n = d.expires.len();
            if n == 0 {
                break;
            }
            let sample = n.min(KEYS_PER_LOOP);
            victims.clear();
            for _ in 0..sample {
                let Some(k) = d.expires.get_index(fastrand::usize(..n)) else {
                    continue;
                };
                let expired = d.map.get(k.as_slice()).is_some_and(|e| e.is_expired(now));
                if expired && !victims.contains(k) {
                    victims.push(k.clone());
                }
            }
            for k in &victims {
                if shard.dbs[db].remove(k).is_some() {
                    shard.signal_key(db, k);
                    // Propagated while the shard is still locked: stream order = key order.
                    srv.feed.append(&[crate::propagate::del(db, k)]);
                    deleted += 1;
                }
            }
            // Stop when few keys of the sample had expired, or when the budget is spent.
            if victims.len() * 4 <= sample || start.elapsed() >= budget {
                break;
            }
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Entry, Value};
    use tandem_config::NodeConfig;

    #[test]
    fn cycle_removes_expired_keys_only() {
        let srv = Server::new(NodeConfig::default());
        let now = crate::now_ms();
        for i in 0..2000 {
            let key = format!("k{i}");
            let mut e = Entry::new(Value::str(b"v"));
            e.expire_at = if i % 2 == 0 { now - 1 } else { now + 3_600_000 };
            srv.keyspace.lock_key(key.as_bytes()).dbs[0]
                .insert(CompactBytes::new(key.as_bytes()), e);
        }
        let mut total = 0;
        for _ in 0..200 {
            total += cycle(&srv);
        }
        let counts = srv.keyspace.counts();
        assert_eq!(counts[0].0 as u64, 2000 - total);
        // Sampling stops once fewer than 25% of a sample expired, so most (not all) go.
        assert!(total >= 900, "only {total} expired keys removed");
        assert!(counts[0].0 >= 1000);
        assert_eq!(srv.stats.expired_keys.load(Ordering::Relaxed), total);
    }
}

//! The keyspace: `SHARDS` independently locked shards, each holding every database's keys
//! that hash to it. A command locks only the shards of its keys (in index order, so no two
//! commands can deadlock); keyspace-wide commands lock all of them. No global lock exists on
//! the hot path. Shards also keep the WATCH flags and the blocked-client wakers of their keys.

pub mod evict;
pub mod expiry;
pub mod value;
pub mod zset;

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::collections::HashMap as StdHashMap;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

use value::{BuildHasher, HashMap, HashSet};
pub use value::{CompactBytes, Entry, Value, ValueType, NO_EXPIRE};

/// Number of keyspace shards (a power of two). Also the unit of copy-on-write during a
/// snapshot: the first write to a shard after a freeze copies that shard's map, so shards
/// are kept small (1M keys: ~4K per shard, a copy well under a millisecond).
pub const SHARDS: usize = 256;

/// A database's key -> entry map within one shard.
pub type KeyMap = HashMap<CompactBytes, Entry>;

/// Seeds the shard choice. Fixed, so a loader can shard a dataset before it is installed;
/// the maps themselves keep randomly seeded hashers.
static SHARD_HASHER: foldhash::fast::FixedState =
    foldhash::fast::FixedState::with_seed(0x7461_6e64_656d_5348);

/// The shard holding `key`.
#[inline]
pub fn shard_of(key: &[u8]) -> usize {
    (SHARD_HASHER.hash_one(key) as usize) & (SHARDS - 1)
}

/// One database's keys within one shard. The map is copy-on-write: a snapshot (BGSAVE, a
/// replica's full sync) clones the `Arc` while the shard is locked, and the first write after
/// that copies this shard's map once ([`Db::map_mut`]), so the snapshot stays frozen.
#[derive(Default, Clone)]
pub struct Db {
    pub map: Arc<KeyMap>,
    /// Keys that carry an expiry, for active expiry sampling and INFO's `expires=`.
    pub expires: HashSet<CompactBytes>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// The map for writing: copies it first if a snapshot still shares it.
    #[inline]
    pub fn map_mut(&mut self) -> &mut KeyMap {
        Arc::make_mut(&mut self.map)
    }
    /// Inserts or replaces `key`, keeping the expiry index in step with `entry.expire_at`.
    pub fn insert(&mut self, key: CompactBytes, entry: Entry) -> Option<Entry> {
        if entry.expire_at != NO_EXPIRE {
            self.expires.insert(key.clone());
        } else if !self.expires.is_empty() {
            self.expires.swap_remove(key.as_slice());
        }
        let map = self.map_mut();
        reserve_for_insert(map);
        map.insert(key, entry)
    }
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map_mut().swap_remove(key)?;
        if e.expire_at != NO_EXPIRE {
            self.expires.swap_remove(key);
        }
        Some(e)
    }
    /// Sets or clears (`NO_EXPIRE`) the expiry of an existing key. False if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        let Some((_, k, e)) = self.map_mut().get_full_mut(key) else {
            return false;
        };
        let had = e.expire_at != NO_EXPIRE;
        e.expire_at = at_ms;
        if at_ms != NO_EXPIRE && !had {
            let k = k.clone();
            self.expires.insert(k);
        } else if at_ms == NO_EXPIRE && had {
            self.expires.swap_remove(key);
        }
        true
    }
    pub fn clear(&mut self) {
        self.map = Arc::default();
        self.expires = HashSet::default();
    }
}

/// Makes room for one more key, growing the entry storage by a quarter when it is full.
/// indexmap alone would grow it to the index table's capacity, which can be twice the keys
/// (1M keys in 256 shards sit just past a table doubling); a quarter keeps 1M small keys
/// near Redis's memory at the cost of a few more (shard-sized) copies while a shard grows.
#[inline]
pub fn reserve_for_insert(map: &mut KeyMap) {
    if map.len() == map.capacity() {
        map.reserve_exact((map.len() / 4).max(8));
    }
}

type WatchKey = (u32, CompactBytes);

/// One shard: every database's slice of the keys hashing here, plus WATCH and blocking state.
pub struct Shard {
    pub dbs: Vec<Db>,
    /// Flags of clients WATCHing a key: set when the key is modified.
    pub watched: StdHashMap<WatchKey, Vec<Arc<AtomicBool>>, BuildHasher>,
    /// Clients blocked (BLPOP & co.) on a key: woken when the key is modified.
    pub blocked: StdHashMap<WatchKey, Vec<Arc<Notify>>, BuildHasher>,
}

impl Shard {
    fn new(ndbs: usize) -> Shard {
        Shard {
            dbs: (0..ndbs).map(|_| Db::default()).collect(),
            watched: StdHashMap::default(),
            blocked: StdHashMap::default(),
        }
    }

    /// Marks `key` in `db` as modified for WATCH and wakes clients blocked on it.
    #[inline]
    pub fn signal_key(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() && self.blocked.is_empty() {
            return;
        }
        let wk = (db as u32, CompactBytes::new(key));
        if let Some(flags) = self.watched.remove(&wk) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
        if let Some(waiters) = self.blocked.remove(&wk) {
            for w in waiters {
                w.notify_one();
            }
        }
    }

    /// Touches every watched key that exists in `db` (FLUSHDB, FLUSHALL, SWAPDB).
    pub fn signal_db(&mut self, db: usize) {
        let keys: Vec<WatchKey> = self
            .watched
            .keys()
            .filter(|(d, k)| *d as usize == db && self.dbs[db].map.contains_key(k.as_slice()))
            .cloned()
            .collect();
        for (d, k) in keys {
            self.signal_key(d as usize, &k);
        }
        let blocked: Vec<WatchKey> = self
            .blocked
            .keys()
            .filter(|(d, _)| *d as usize == db)
            .cloned()
            .collect();
        for (d, k) in blocked {
            self.signal_key(d as usize, &k);
        }
    }

    pub fn watch(&mut self, db: usize, key: &[u8], flag: Arc<AtomicBool>) {
        self.watched
            .entry((db as u32, CompactBytes::new(key)))
            .or_default()
            .push(flag);
    }

    pub fn unwatch(&mut self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        let wk = (db as u32, CompactBytes::new(key));
        if let Some(v) = self.watched.get_mut(&wk) {
            v.retain(|f| !Arc::ptr_eq(f, flag));
            if v.is_empty() {
                self.watched.remove(&wk);
            }
        }
    }

    pub fn block_on(&mut self, db: usize, key: &[u8], waker: Arc<Notify>) {
        self.blocked
            .entry((db as u32, CompactBytes::new(key)))
            .or_default()
            .push(waker);
    }

    pub fn unblock(&mut self, db: usize, key: &[u8], waker: &Arc<Notify>) {
        let wk = (db as u32, CompactBytes::new(key));
        if let Some(v) = self.blocked.get_mut(&wk) {
            v.retain(|w| !Arc::ptr_eq(w, waker));
            if v.is_empty() {
                self.blocked.remove(&wk);
            }
        }
    }
}

/// The shards a command locked, with their indices (few, so kept inline).
pub type LockedShards<'a> = SmallVec<[(usize, MutexGuard<'a, Shard>); 4]>;

/// All shards.
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    ndbs: usize,
}

impl Keyspace {
    pub fn new(ndbs: usize) -> Keyspace {
        Keyspace {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new(ndbs))).collect(),
            ndbs,
        }
    }

    pub fn databases(&self) -> usize {
        self.ndbs
    }

    #[inline]
    pub fn shard_index(&self, key: &[u8]) -> usize {
        shard_of(key)
    }

    pub fn lock(&self, idx: usize) -> MutexGuard<'_, Shard> {
        self.shards[idx].lock()
    }

    pub fn lock_key(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.lock(self.shard_index(key))
    }

    /// Locks every shard, in index order.
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(|s| s.lock()).collect()
    }

    /// Locks the shards of `keys` (deduplicated, in index order).
    pub fn lock_keys<'a, I: IntoIterator<Item = &'a [u8]>>(&self, keys: I) -> LockedShards<'_> {
        let mut keys = keys.into_iter();
        let mut locked = LockedShards::new();
        let Some(first) = keys.next() else {
            return locked;
        };
        let first = self.shard_index(first);
        let Some(second) = keys.next() else {
            // The usual case: a one-key command.
            locked.push((first, self.lock(first)));
            return locked;
        };
        let mut idx: SmallVec<[usize; 4]> = SmallVec::new();
        idx.push(first);
        idx.push(self.shard_index(second));
        idx.extend(keys.map(|k| self.shard_index(k)));
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| (i, self.lock(i))).collect()
    }

    /// (keys, keys with expiry) per database, summed over shards, locking one at a time.
    pub fn counts(&self) -> Vec<(usize, usize)> {
        let mut out = vec![(0, 0); self.ndbs];
        for s in self.shards.iter() {
            let s = s.lock();
            for (i, db) in s.dbs.iter().enumerate() {
                out[i].0 += db.map.len();
                out[i].1 += db.expires.len();
            }
        }
        out
    }
}

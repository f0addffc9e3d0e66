//! [`Ctx`]: what a command handler works with. It holds the locked shards for the command's
//! keys, the client's current database, the command's clock, and counts the changes made.
//! Every key access goes through it, so lazy expiry, LRU/LFU clocks, WATCH flags and blocked
//! clients are handled in one place.
//!
//! Rule: code running under a `Ctx` never locks a shard itself (it would deadlock on a shard
//! the command already holds); it only uses the accessors here.

use bytes::Bytes;
use parking_lot::MutexGuard;
use std::sync::Arc;
use tandem_protocol::{Protocol, Reply};

use crate::clients::ClientInfo;
use crate::db::value::{Hash_, List, Set};
use crate::db::zset::ZSet;
use crate::db::{CompactBytes, Db, Entry, LockedShards, Shard, Value, NO_EXPIRE};
use crate::server::Server;

/// `-WRONGTYPE ...`, Redis's exact text.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

pub fn wrongtype() -> Reply {
    Reply::error(WRONGTYPE)
}

enum Locks<'a> {
    /// A few shards, with their indices.
    Some(LockedShards<'a>),
    /// Every shard, indexed by shard number.
    All(Vec<MutexGuard<'a, Shard>>),
}

/// The execution context of one command (or one EXEC).
pub struct Ctx<'a> {
    pub srv: &'a Server,
    locks: Locks<'a>,
    /// The selected database.
    pub db: usize,
    /// The command's clock (unix ms), fixed for the whole command as in Redis.
    pub now_ms: u64,
    /// Changes made (Redis's `server.dirty`).
    pub dirty: u64,
    pub proto: Protocol,
    pub client: Option<&'a Arc<ClientInfo>>,
    /// True while applying the master's replication stream: keys never expire here.
    pub from_master: bool,
    /// True inside EXEC (BGSAVE is then scheduled, as Redis does, so the transaction stays
    /// atomic in the snapshot).
    pub in_exec: bool,
    /// Keys the command hit / missed (INFO keyspace_hits / keyspace_misses).
    pub hits: u64,
    pub misses: u64,
    /// Keys deleted because they had expired.
    pub expired: u64,
    /// Commands to replicate instead of the one executed (set by rewrites such as
    /// `SET EX` -> `SET PXAT`); the replication layer reads it.
    pub propagate: Vec<Vec<Bytes>>,
    /// Keys this command deleted because they had expired (db, key): propagated as `DEL`
    /// before the command itself (see [`crate::propagate::collect`]).
    pub expired_dels: Vec<(usize, Bytes)>,
}

impl<'a> Ctx<'a> {
    /// A context over the shards of `keys`; `now_ms` is the command's clock (unix ms).
    pub fn for_keys<'k, I: IntoIterator<Item = &'k [u8]>>(
        srv: &'a Server,
        keys: I,
        db: usize,
        now_ms: u64,
    ) -> Ctx<'a> {
        Self::with_locks(srv, Locks::Some(srv.keyspace.lock_keys(keys)), db, now_ms)
    }

    /// A context over every shard (keyspace-wide commands, EXEC of such commands).
    pub fn all(srv: &'a Server, db: usize, now_ms: u64) -> Ctx<'a> {
        Self::with_locks(srv, Locks::All(srv.keyspace.lock_all()), db, now_ms)
    }

    fn with_locks(srv: &'a Server, locks: Locks<'a>, db: usize, now_ms: u64) -> Ctx<'a> {
        Ctx {
            srv,
            locks,
            db,
            now_ms,
            dirty: 0,
            proto: Protocol::Resp2,
            client: None,
            from_master: false,
            in_exec: false,
            hits: 0,
            misses: 0,
            expired: 0,
            propagate: Vec::new(),
            expired_dels: Vec::new(),
        }
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.srv.keyspace.databases()
    }

    // ------------------------------------------------------------------ shards

    /// The locked shard holding `key`. Panics if the command did not lock it, which is a bug
    /// in the command table (key positions), never a consequence of client input.
    pub fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let idx = self.srv.keyspace.shard_index(key);
        match &mut self.locks {
            Locks::All(v) => &mut v[idx],
            Locks::Some(v) => match v.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, g)) => g,
                None => panic!(
                    "shard {idx} not locked for key {:?}",
                    String::from_utf8_lossy(key)
                ),
            },
        }
    }

    /// True when every shard is locked (keyspace-wide access is allowed).
    pub fn has_all_shards(&self) -> bool {
        matches!(self.locks, Locks::All(_))
    }

    /// Every shard; only for commands flagged KEYSPACE. Panics otherwise (a table bug).
    pub fn shards_mut(&mut self) -> Vec<&mut Shard> {
        match &mut self.locks {
            Locks::All(v) => v.iter_mut().map(|g| &mut **g).collect(),
            Locks::Some(_) => panic!("keyspace-wide access without the KEYSPACE flag"),
        }
    }

    /// The raw database slice holding `key` in database `db` (no expiry handling).
    pub fn raw_db(&mut self, db: usize, key: &[u8]) -> &mut Db {
        &mut self.shard(key).dbs[db]
    }

    // ------------------------------------------------------------------ lookups

    /// The locked shard with index `idx` (see [`Ctx::shard`]).
    fn shard_at(&mut self, idx: usize) -> &mut Shard {
        match &mut self.locks {
            Locks::All(v) => &mut v[idx],
            Locks::Some(v) => match v.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, g)) => g,
                None => panic!("shard {idx} not locked"),
            },
        }
    }

    /// Finds `key` in database `db` with one hash lookup and returns (shard, index in the
    /// db's map). Applies lazy expiry: on a master an expired key is deleted (and counted);
    /// on a replica (or during a FAILOVER or CLIENT PAUSE) it is reported missing but left for the master's
    /// DEL.
    fn locate(&mut self, db: usize, key: &[u8]) -> Option<(usize, usize)> {
        let sidx = self.srv.keyspace.shard_index(key);
        let now = self.now_ms;
        let honour_ttl = !self.from_master;
        let d = &mut self.shard_at(sidx).dbs[db];
        let i = d.map.get_index_of(key)?;
        let expired = honour_ttl && d.map.get_index(i).is_some_and(|(_, e)| e.is_expired(now));
        if !expired {
            return Some((sidx, i));
        }
        // A replica leaves it for the master's DEL; so does a master while FAILOVER pauses
        // writes (Redis: the DEL would move the offset the replicas must reach).
        if self.srv.is_replica() || self.srv.repl.failover.active() || self.srv.pause.active() {
            return None;
        }
        self.shard_at(sidx).dbs[db].remove(key);
        self.expired += 1;
        self.dirty += 1;
        self.propagate_expired(db, key);
        self.shard_at(sidx).signal_key(db, key);
        None
    }

    /// The entry at a location from [`Ctx::locate`], with its LRU/LFU clock updated.
    fn entry_at(&mut self, db: usize, (sidx, i): (usize, usize)) -> Option<&mut Entry> {
        let touch = !self
            .client
            .is_some_and(|c| c.no_touch.load(std::sync::atomic::Ordering::Relaxed));
        let clock = self.srv.lru_clock(self.now_ms);
        let (_, e) = self.shard_at(sidx).dbs[db].map_mut().get_index_mut(i)?;
        if touch {
            e.lru = clock(e.lru);
        }
        Some(e)
    }

    /// Finds `key` in database `db`, applying lazy expiry (see [`Ctx::locate`]) and updating
    /// the key's LRU/LFU clock.
    pub fn lookup_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let loc = self.locate(db, key)?;
        self.entry_at(db, loc)
    }

    /// [`Ctx::lookup_in`] on the selected database.
    pub fn lookup(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup_in(self.db, key)
    }

    /// Looks a key up for a read command, counting a keyspace hit or miss.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.db;
        match self.locate(db, key) {
            Some(loc) => {
                self.hits += 1;
                self.entry_at(db, loc)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.lookup(key).is_some()
    }

    pub fn get_value(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.lookup_read(key).map(|e| &mut e.value)
    }

    /// The string at `key`: `Ok(None)` if absent, `Err(WRONGTYPE)` if another type.
    pub fn get_str(&mut self, key: &[u8]) -> Result<Option<&CompactBytes>, Reply> {
        match self.lookup_read(key) {
            None => Ok(None),
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Ok(Some(s)),
            Some(_) => Err(wrongtype()),
        }
    }

    // ------------------------------------------------------------------ writes

    /// Stores `value` at `key` in the selected db, replacing any value and clearing its TTL
    /// (SET semantics). Signals the key.
    pub fn set(&mut self, key: &[u8], value: Value) {
        self.set_with_expire(key, value, NO_EXPIRE);
    }

    /// Stores `value` with an absolute expiry (`NO_EXPIRE` for none). Signals the key.
    pub fn set_with_expire(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let db = self.db;
        self.set_in(db, key, value, expire_at);
    }

    pub fn set_in(&mut self, db: usize, key: &[u8], value: Value, expire_at: u64) {
        let clock = self.srv.lru_clock(self.now_ms);
        let mut e = Entry::new(value);
        e.expire_at = expire_at;
        e.lru = clock(0);
        self.raw_db(db, key).insert(CompactBytes::new(key), e);
        self.modified_in(db, key);
    }

    /// Inserts a whole entry (value + expiry) in `db`. Signals the key.
    pub fn insert_entry_in(&mut self, db: usize, key: &[u8], entry: Entry) {
        self.raw_db(db, key).insert(CompactBytes::new(key), entry);
        self.modified_in(db, key);
    }

    /// Removes `key` from the selected db (after lazy expiry). Signals the key if removed.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let db = self.db;
        self.remove_in(db, key)
    }

    pub fn remove_in(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        self.lookup_in(db, key)?;
        let e = self.raw_db(db, key).remove(key);
        if e.is_some() {
            self.modified_in(db, key);
        }
        e
    }

    /// Deletes `key` if it holds an empty collection (after a pop or remove).
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        let db = self.db;
        let empty = match self.raw_db(db, key).map.get(key) {
            Some(e) => !matches!(e.value, Value::Str(_)) && e.value.is_empty(),
            None => false,
        };
        if empty {
            self.raw_db(db, key).remove(key);
        }
    }

    /// The absolute expiry of `key` (ms), if it exists and has one.
    pub fn get_expire(&mut self, key: &[u8]) -> Option<u64> {
        self.lookup(key).and_then(|e| e.expire())
    }

    /// Sets (`NO_EXPIRE`: clears) the expiry of an existing key. False if absent.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        let db = self.db;
        if self.lookup_in(db, key).is_none() {
            return false;
        }
        self.raw_db(db, key).set_expire(key, at_ms)
    }

    /// Records a change to `key` in the selected db: counts it, flags WATCHers, wakes
    /// blocked clients. Call once per command per key actually changed.
    pub fn modified(&mut self, key: &[u8]) {
        let db = self.db;
        self.modified_in(db, key);
    }

    pub fn modified_in(&mut self, db: usize, key: &[u8]) {
        self.dirty += 1;
        self.shard(key).signal_key(db, key);
    }

    fn propagate_expired(&mut self, db: usize, key: &[u8]) {
        self.srv
            .stats
            .expired_keys
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.srv.feed.is_active() {
            self.expired_dels.push((db, Bytes::copy_from_slice(key)));
        }
    }
}

macro_rules! typed_access {
    ($get:ident, $get_mut:ident, $get_or_create:ident, $variant:ident, $ty:ty) => {
        impl<'a> Ctx<'a> {
            /// The value at `key` if it has this type: `Ok(None)` if absent, `Err(WRONGTYPE)`.
            pub fn $get(&mut self, key: &[u8]) -> Result<Option<&$ty>, Reply> {
                match self.lookup_read(key) {
                    None => Ok(None),
                    Some(Entry {
                        value: Value::$variant(v),
                        ..
                    }) => Ok(Some(&**v)),
                    Some(_) => Err(wrongtype()),
                }
            }

            /// Mutable access to an existing value of this type (copy-on-write if shared).
            pub fn $get_mut(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, Reply> {
                match self.lookup(key) {
                    None => Ok(None),
                    Some(Entry {
                        value: Value::$variant(v),
                        ..
                    }) => Ok(Some(Arc::make_mut(v))),
                    Some(_) => Err(wrongtype()),
                }
            }

            /// Mutable access, creating an empty value when the key is absent. The caller
            /// must call [`Ctx::modified`] and must not leave the value empty.
            pub fn $get_or_create(&mut self, key: &[u8]) -> Result<&mut $ty, Reply> {
                let db = self.db;
                match self.lookup_in(db, key) {
                    Some(Entry {
                        value: Value::$variant(_),
                        ..
                    }) => {}
                    Some(_) => return Err(wrongtype()),
                    None => {
                        let clock = self.srv.lru_clock(self.now_ms);
                        let mut e = Entry::new(Value::$variant(Arc::new(<$ty>::default())));
                        e.lru = clock(0);
                        self.raw_db(db, key).insert(CompactBytes::new(key), e);
                    }
                }
                match self.raw_db(db, key).map_mut().get_mut(key) {
                    Some(Entry {
                        value: Value::$variant(v),
                        ..
                    }) => Ok(Arc::make_mut(v)),
                    _ => Err(Reply::error("ERR internal error: value vanished")),
                }
            }
        }
    };
}

typed_access!(get_list, get_list_mut, list_or_create, List, List);
typed_access!(get_hash, get_hash_mut, hash_or_create, Hash, Hash_);
typed_access!(get_set, get_set_mut, set_or_create, Set, Set);
typed_access!(get_zset, get_zset_mut, zset_or_create, ZSet, ZSet);

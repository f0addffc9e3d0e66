//! The command table: every command Tandem knows, with Redis's arity, flags and key positions.
//! It is the one specification the node dispatches on (exhaustively, by [`Cmd`]) and the proxy
//! routes by, so the two cannot drift. Lookup is case-insensitive and allocation-free.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Command flags, named after Redis's (`write`, `readonly`, `denyoom`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u32);

impl Flags {
    pub const WRITE: Flags = Flags(1);
    pub const READONLY: Flags = Flags(1 << 1);
    pub const DENYOOM: Flags = Flags(1 << 2);
    pub const ADMIN: Flags = Flags(1 << 3);
    pub const PUBSUB: Flags = Flags(1 << 4);
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    pub const BLOCKING: Flags = Flags(1 << 6);
    pub const LOADING: Flags = Flags(1 << 7);
    pub const STALE: Flags = Flags(1 << 8);
    pub const FAST: Flags = Flags(1 << 9);
    pub const NO_AUTH: Flags = Flags(1 << 10);
    pub const MOVABLE_KEYS: Flags = Flags(1 << 11);
    /// Tandem's own: the command reads or writes the whole keyspace (KEYS, FLUSHDB, SWAPDB,
    /// commands with movable keys), so the node takes every shard for it.
    pub const KEYSPACE: Flags = Flags(1 << 12);
    /// The command changes connection state and is handled by the session, not queued in MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 13);
    pub const NONE: Flags = Flags(0);

    pub const fn union(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
    pub const fn contains(self, o: Flags) -> bool {
        self.0 & o.0 == o.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        self.union(o)
    }
}

/// Redis's command groups (as in `COMMAND DOCS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    String,
    Generic,
    List,
    Hash,
    Set,
    SortedSet,
    Pubsub,
    Transactions,
    Connection,
    Server,
    Scripting,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::String => "string",
            Group::Generic => "generic",
            Group::List => "list",
            Group::Hash => "hash",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Pubsub => "pubsub",
            Group::Transactions => "transactions",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Scripting => "scripting",
        }
    }
}

/// One command's specification.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    pub cmd: Cmd,
    /// Lower-case name, as Redis reports it.
    pub name: &'static str,
    /// Redis arity: exact argument count (name included) when positive, minimum when negative.
    pub arity: i32,
    pub first_key: i32,
    pub last_key: i32,
    pub key_step: i32,
    pub flags: Flags,
    pub group: Group,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags.contains(Flags::WRITE)
    }
    pub fn has(&self, f: Flags) -> bool {
        self.flags.contains(f)
    }
    /// Whether `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
    /// Indices of the key arguments in `args` (name at index 0), from first/last/step.
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = argc as i32;
        let (first, step) = (self.first_key, self.key_step.max(1));
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key
        };
        let last = last.min(argc - 1);
        let (first, last) = if first <= 0 { (1, 0) } else { (first, last) };
        (first..=last).step_by(step as usize).map(|i| i as usize)
    }
}

macro_rules! commands {
    ($( $variant:ident $name:literal $arity:literal $first:literal $last:literal $step:literal [$($flag:ident)|*] $group:ident ;)*) => {
        /// Every command Tandem knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Cmd { $($variant),* }

        /// The table, indexed by `Cmd as usize`.
        pub static COMMANDS: &[CommandSpec] = &[
            $(CommandSpec {
                cmd: Cmd::$variant,
                name: $name,
                arity: $arity,
                first_key: $first,
                last_key: $last,
                key_step: $step,
                flags: Flags(0 $(| Flags::$flag.0)*),
                group: Group::$group,
            }),*
        ];
    };
}

commands! {
    // ---- strings
    Get "get" 2 1 1 1 [READONLY | FAST] String;
    Set "set" -3 1 1 1 [WRITE | DENYOOM] String;
    SetNx "setnx" 3 1 1 1 [WRITE | DENYOOM | FAST] String;
    SetEx "setex" 4 1 1 1 [WRITE | DENYOOM] String;
    PSetEx "psetex" 4 1 1 1 [WRITE | DENYOOM] String;
    GetSet "getset" 3 1 1 1 [WRITE | DENYOOM | FAST] String;
    GetDel "getdel" 2 1 1 1 [WRITE | FAST] String;
    GetEx "getex" -2 1 1 1 [WRITE | FAST] String;
    MGet "mget" -2 1 -1 1 [READONLY | FAST] String;
    MSet "mset" -3 1 -1 2 [WRITE | DENYOOM] String;
    MSetNx "msetnx" -3 1 -1 2 [WRITE | DENYOOM] String;
    Incr "incr" 2 1 1 1 [WRITE | DENYOOM | FAST] String;
    Decr "decr" 2 1 1 1 [WRITE | DENYOOM | FAST] String;
    IncrBy "incrby" 3 1 1 1 [WRITE | DENYOOM | FAST] String;
    DecrBy "decrby" 3 1 1 1 [WRITE | DENYOOM | FAST] String;
    IncrByFloat "incrbyfloat" 3 1 1 1 [WRITE | DENYOOM | FAST] String;
    Append "append" 3 1 1 1 [WRITE | DENYOOM | FAST] String;
    StrLen "strlen" 2 1 1 1 [READONLY | FAST] String;
    GetRange "getrange" 4 1 1 1 [READONLY] String;
    Substr "substr" 4 1 1 1 [READONLY] String;
    SetRange "setrange" 4 1 1 1 [WRITE | DENYOOM] String;
    // ---- keys
    Del "del" -2 1 -1 1 [WRITE] Generic;
    Unlink "unlink" -2 1 -1 1 [WRITE | FAST] Generic;
    Exists "exists" -2 1 -1 1 [READONLY | FAST] Generic;
    Type "type" 2 1 1 1 [READONLY | FAST] Generic;
    Touch "touch" -2 1 -1 1 [READONLY | FAST] Generic;
    Rename "rename" 3 1 2 1 [WRITE] Generic;
    RenameNx "renamenx" 3 1 2 1 [WRITE | FAST] Generic;
    Keys "keys" 2 0 0 0 [READONLY | KEYSPACE] Generic;
    Scan "scan" -2 0 0 0 [READONLY | KEYSPACE] Generic;
    RandomKey "randomkey" 1 0 0 0 [READONLY | KEYSPACE] Generic;
    Expire "expire" -3 1 1 1 [WRITE | FAST] Generic;
    PExpire "pexpire" -3 1 1 1 [WRITE | FAST] Generic;
    ExpireAt "expireat" -3 1 1 1 [WRITE | FAST] Generic;
    PExpireAt "pexpireat" -3 1 1 1 [WRITE | FAST] Generic;
    Ttl "ttl" 2 1 1 1 [READONLY | FAST] Generic;
    PTtl "pttl" 2 1 1 1 [READONLY | FAST] Generic;
    Persist "persist" 2 1 1 1 [WRITE | FAST] Generic;
    ExpireTime "expiretime" 2 1 1 1 [READONLY | FAST] Generic;
    PExpireTime "pexpiretime" 2 1 1 1 [READONLY | FAST] Generic;
    Copy "copy" -3 1 2 1 [WRITE | DENYOOM] Generic;
    Move "move" 3 1 1 1 [WRITE | FAST] Generic;
    Object "object" -2 2 2 1 [READONLY] Generic;
    // ---- databases
    Select "select" 2 0 0 0 [LOADING | STALE | FAST] Connection;
    SwapDb "swapdb" 3 0 0 0 [WRITE | FAST | KEYSPACE] Server;
    FlushDb "flushdb" -1 0 0 0 [WRITE | KEYSPACE] Server;
    FlushAll "flushall" -1 0 0 0 [WRITE | KEYSPACE] Server;
    DbSize "dbsize" 1 0 0 0 [READONLY | FAST | KEYSPACE] Server;
    // ---- lists
    LPush "lpush" -3 1 1 1 [WRITE | DENYOOM | FAST] List;
    RPush "rpush" -3 1 1 1 [WRITE | DENYOOM | FAST] List;
    LPushX "lpushx" -3 1 1 1 [WRITE | DENYOOM | FAST] List;
    RPushX "rpushx" -3 1 1 1 [WRITE | DENYOOM | FAST] List;
    LPop "lpop" -2 1 1 1 [WRITE | FAST] List;
    RPop "rpop" -2 1 1 1 [WRITE | FAST] List;
    LRange "lrange" 4 1 1 1 [READONLY] List;
    LLen "llen" 2 1 1 1 [READONLY | FAST] List;
    LIndex "lindex" 3 1 1 1 [READONLY] List;
    LSet "lset" 4 1 1 1 [WRITE | DENYOOM] List;
    LRem "lrem" 4 1 1 1 [WRITE] List;
    LTrim "ltrim" 4 1 1 1 [WRITE] List;
    LInsert "linsert" 5 1 1 1 [WRITE | DENYOOM] List;
    LPos "lpos" -3 1 1 1 [READONLY] List;
    LMove "lmove" 5 1 2 1 [WRITE | DENYOOM] List;
    RPopLPush "rpoplpush" 3 1 2 1 [WRITE | DENYOOM] List;
    BLPop "blpop" -3 1 -2 1 [WRITE | NOSCRIPT | BLOCKING] List;
    BRPop "brpop" -3 1 -2 1 [WRITE | NOSCRIPT | BLOCKING] List;
    BLMove "blmove" 6 1 2 1 [WRITE | DENYOOM | NOSCRIPT | BLOCKING] List;
    BRPopLPush "brpoplpush" 4 1 2 1 [WRITE | DENYOOM | NOSCRIPT | BLOCKING] List;
    // ---- hashes
    HSet "hset" -4 1 1 1 [WRITE | DENYOOM | FAST] Hash;
    HMSet "hmset" -4 1 1 1 [WRITE | DENYOOM | FAST] Hash;
    HSetNx "hsetnx" 4 1 1 1 [WRITE | DENYOOM | FAST] Hash;
    HGet "hget" 3 1 1 1 [READONLY | FAST] Hash;
    HMGet "hmget" -3 1 1 1 [READONLY | FAST] Hash;
    HGetAll "hgetall" 2 1 1 1 [READONLY] Hash;
    HDel "hdel" -3 1 1 1 [WRITE | FAST] Hash;
    HExists "hexists" 3 1 1 1 [READONLY | FAST] Hash;
    HIncrBy "hincrby" 4 1 1 1 [WRITE | DENYOOM | FAST] Hash;
    HIncrByFloat "hincrbyfloat" 4 1 1 1 [WRITE | DENYOOM | FAST] Hash;
    HKeys "hkeys" 2 1 1 1 [READONLY] Hash;
    HVals "hvals" 2 1 1 1 [READONLY] Hash;
    HLen "hlen" 2 1 1 1 [READONLY | FAST] Hash;
    HStrLen "hstrlen" 3 1 1 1 [READONLY | FAST] Hash;
    HRandField "hrandfield" -2 1 1 1 [READONLY] Hash;
    HScan "hscan" -3 1 1 1 [READONLY] Hash;
    // ---- sets
    SAdd "sadd" -3 1 1 1 [WRITE | DENYOOM | FAST] Set;
    SRem "srem" -3 1 1 1 [WRITE | FAST] Set;
    SMembers "smembers" 2 1 1 1 [READONLY] Set;
    SIsMember "sismember" 3 1 1 1 [READONLY | FAST] Set;
    SMIsMember "smismember" -3 1 1 1 [READONLY | FAST] Set;
    SCard "scard" 2 1 1 1 [READONLY | FAST] Set;
    SPop "spop" -2 1 1 1 [WRITE | FAST] Set;
    SRandMember "srandmember" -2 1 1 1 [READONLY] Set;
    SInter "sinter" -2 1 -1 1 [READONLY] Set;
    SInterCard "sintercard" -3 0 0 0 [READONLY | MOVABLE_KEYS | KEYSPACE] Set;
    SUnion "sunion" -2 1 -1 1 [READONLY] Set;
    SDiff "sdiff" -2 1 -1 1 [READONLY] Set;
    SInterStore "sinterstore" -3 1 -1 1 [WRITE | DENYOOM] Set;
    SUnionStore "sunionstore" -3 1 -1 1 [WRITE | DENYOOM] Set;
    SDiffStore "sdiffstore" -3 1 -1 1 [WRITE | DENYOOM] Set;
    SMove "smove" 4 1 2 1 [WRITE | FAST] Set;
    SScan "sscan" -3 1 1 1 [READONLY] Set;
    // ---- sorted sets
    ZAdd "zadd" -4 1 1 1 [WRITE | DENYOOM | FAST] SortedSet;
    ZRem "zrem" -3 1 1 1 [WRITE | FAST] SortedSet;
    ZScore "zscore" 3 1 1 1 [READONLY | FAST] SortedSet;
    ZMScore "zmscore" -3 1 1 1 [READONLY | FAST] SortedSet;
    ZIncrBy "zincrby" 4 1 1 1 [WRITE | DENYOOM | FAST] SortedSet;
    ZCard "zcard" 2 1 1 1 [READONLY | FAST] SortedSet;
    ZCount "zcount" 4 1 1 1 [READONLY | FAST] SortedSet;
    ZLexCount "zlexcount" 4 1 1 1 [READONLY | FAST] SortedSet;
    ZRank "zrank" 3 1 1 1 [READONLY | FAST] SortedSet;
    ZRevRank "zrevrank" 3 1 1 1 [READONLY | FAST] SortedSet;
    ZRange "zrange" -4 1 1 1 [READONLY] SortedSet;
    ZRangeStore "zrangestore" -5 1 2 1 [WRITE | DENYOOM] SortedSet;
    ZRangeByScore "zrangebyscore" -4 1 1 1 [READONLY] SortedSet;
    ZRevRange "zrevrange" -4 1 1 1 [READONLY] SortedSet;
    ZRevRangeByScore "zrevrangebyscore" -4 1 1 1 [READONLY] SortedSet;
    ZRangeByLex "zrangebylex" -4 1 1 1 [READONLY] SortedSet;
    ZRevRangeByLex "zrevrangebylex" -4 1 1 1 [READONLY] SortedSet;
    ZPopMin "zpopmin" -2 1 1 1 [WRITE | FAST] SortedSet;
    ZPopMax "zpopmax" -2 1 1 1 [WRITE | FAST] SortedSet;
    ZRemRangeByRank "zremrangebyrank" 4 1 1 1 [WRITE] SortedSet;
    ZRemRangeByScore "zremrangebyscore" 4 1 1 1 [WRITE] SortedSet;
    ZRemRangeByLex "zremrangebylex" 4 1 1 1 [WRITE] SortedSet;
    ZRandMember "zrandmember" -2 1 1 1 [READONLY] SortedSet;
    ZScan "zscan" -3 1 1 1 [READONLY] SortedSet;
    ZUnionStore "zunionstore" -4 1 1 1 [WRITE | DENYOOM | MOVABLE_KEYS | KEYSPACE] SortedSet;
    ZInterStore "zinterstore" -4 1 1 1 [WRITE | DENYOOM | MOVABLE_KEYS | KEYSPACE] SortedSet;
    ZDiffStore "zdiffstore" -4 1 1 1 [WRITE | DENYOOM | MOVABLE_KEYS | KEYSPACE] SortedSet;
    ZUnion "zunion" -3 0 0 0 [READONLY | MOVABLE_KEYS | KEYSPACE] SortedSet;
    ZInter "zinter" -3 0 0 0 [READONLY | MOVABLE_KEYS | KEYSPACE] SortedSet;
    ZDiff "zdiff" -3 0 0 0 [READONLY | MOVABLE_KEYS | KEYSPACE] SortedSet;
    // ---- pub/sub
    Subscribe "subscribe" -2 0 0 0 [PUBSUB | NOSCRIPT | LOADING | STALE | NO_MULTI] Pubsub;
    Unsubscribe "unsubscribe" -1 0 0 0 [PUBSUB | NOSCRIPT | LOADING | STALE | NO_MULTI] Pubsub;
    PSubscribe "psubscribe" -2 0 0 0 [PUBSUB | NOSCRIPT | LOADING | STALE | NO_MULTI] Pubsub;
    PUnsubscribe "punsubscribe" -1 0 0 0 [PUBSUB | NOSCRIPT | LOADING | STALE | NO_MULTI] Pubsub;
    Publish "publish" 3 0 0 0 [PUBSUB | LOADING | STALE | FAST] Pubsub;
    PubSub "pubsub" -2 0 0 0 [PUBSUB | LOADING | STALE] Pubsub;
    // ---- transactions
    Multi "multi" 1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_MULTI] Transactions;
    Exec "exec" 1 0 0 0 [NOSCRIPT | LOADING | STALE | NO_MULTI] Transactions;
    Discard "discard" 1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_MULTI] Transactions;
    Watch "watch" -2 1 -1 1 [NOSCRIPT | LOADING | STALE | FAST | NO_MULTI] Transactions;
    Unwatch "unwatch" 1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_MULTI] Transactions;
    // ---- connection
    Ping "ping" -1 0 0 0 [FAST | STALE] Connection;
    Echo "echo" 2 0 0 0 [FAST] Connection;
    Auth "auth" -2 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | NO_MULTI] Connection;
    Hello "hello" -1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | NO_MULTI] Connection;
    Quit "quit" -1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | NO_MULTI] Connection;
    Reset "reset" 1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | NO_MULTI] Connection;
    Client "client" -2 0 0 0 [NOSCRIPT | LOADING | STALE] Connection;
    // ---- server
    Info "info" -1 0 0 0 [LOADING | STALE | KEYSPACE] Server;
    Role "role" 1 0 0 0 [NOSCRIPT | LOADING | STALE | FAST] Server;
    Config "config" -2 0 0 0 [ADMIN | NOSCRIPT | LOADING | STALE] Server;
    Command "command" -1 0 0 0 [LOADING | STALE] Server;
    Time "time" 1 0 0 0 [LOADING | STALE | FAST] Server;
    LastSave "lastsave" 1 0 0 0 [LOADING | STALE | FAST] Server;
    Debug "debug" -2 0 0 0 [ADMIN | NOSCRIPT | LOADING | STALE | KEYSPACE] Server;
    Shutdown "shutdown" -1 0 0 0 [ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI] Server;
    Wait "wait" 3 0 0 0 [NOSCRIPT] Server;
    Save "save" 1 0 0 0 [ADMIN | NOSCRIPT | KEYSPACE] Server;
    BgSave "bgsave" -1 0 0 0 [ADMIN | NOSCRIPT | KEYSPACE] Server;
    BgRewriteAof "bgrewriteaof" 1 0 0 0 [ADMIN | NOSCRIPT] Server;
    ReplicaOf "replicaof" 3 0 0 0 [ADMIN | NOSCRIPT | STALE] Server;
    SlaveOf "slaveof" 3 0 0 0 [ADMIN | NOSCRIPT | STALE] Server;
    ReplConf "replconf" -1 0 0 0 [ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI] Server;
    PSync "psync" -3 0 0 0 [ADMIN | NOSCRIPT | NO_MULTI] Server;
    Sync "sync" 1 0 0 0 [ADMIN | NOSCRIPT | NO_MULTI] Server;
    Failover "failover" -1 0 0 0 [ADMIN | NOSCRIPT | STALE] Server;
    Monitor "monitor" 1 0 0 0 [ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI] Server;
    Memory "memory" -2 0 0 0 [READONLY | KEYSPACE] Server;
    Slowlog "slowlog" -2 0 0 0 [ADMIN | LOADING | STALE] Server;
    Latency "latency" -2 0 0 0 [ADMIN | NOSCRIPT | LOADING | STALE] Server;
    Function "function" -2 0 0 0 [NOSCRIPT] Scripting;
}

impl Cmd {
    pub fn spec(self) -> &'static CommandSpec {
        &COMMANDS[self as usize]
    }
}

/// Looks a command up by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    type Index = HashMap<&'static [u8], Cmd, foldhash::fast::FixedState>;
    static INDEX: OnceLock<Index> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| (c.name.as_bytes(), c.cmd))
            .collect()
    });
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index.get(&*lower).map(|c| c.spec())
}

/// [`lookup`] with a memory of the last name looked up: a connection that repeats a command
/// (a pipeline of GETs) compares the name's bytes instead of lowercasing and hashing it.
#[derive(Default)]
pub struct LookupCache {
    name: [u8; 16],
    len: usize,
    spec: Option<&'static CommandSpec>,
}

impl LookupCache {
    pub fn lookup(&mut self, name: &[u8]) -> Option<&'static CommandSpec> {
        if name.len() == self.len && self.len > 0 && name == &self.name[..self.len] {
            return self.spec;
        }
        let spec = lookup(name);
        if name.len() <= self.name.len() {
            self.name[..name.len()].copy_from_slice(name);
            self.len = name.len();
            self.spec = spec;
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_cache_agrees_with_lookup() {
        let mut cache = LookupCache::default();
        for name in [
            &b"get"[..],
            b"get",
            b"GET",
            b"set",
            b"nope",
            b"nope",
            b"",
            b"averyveryverylongcommandname",
            b"get",
        ] {
            assert_eq!(
                cache.lookup(name).map(|s| s.cmd as usize),
                lookup(name).map(|s| s.cmd as usize),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn table_is_consistent() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.cmd as usize, i, "{} out of order", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(!(c.is_write() && c.has(Flags::READONLY)), "{}", c.name);
        }
        assert_eq!(lookup(b"GeT").unwrap().cmd, Cmd::Get);
        assert!(lookup(b"nope").is_none());
    }

    #[test]
    fn key_positions() {
        let mset = Cmd::MSet.spec();
        assert_eq!(mset.key_indices(5).collect::<Vec<_>>(), vec![1, 3]);
        let blpop = Cmd::BLPop.spec();
        assert_eq!(blpop.key_indices(4).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(Cmd::Ping.spec().key_indices(1).count(), 0);
    }
}

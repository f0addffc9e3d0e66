//! Generic key commands (DEL, EXISTS, TYPE, RENAME, KEYS, SCAN, RANDOMKEY, the EXPIRE family,
//! TTL, COPY, MOVE, OBJECT) and the database commands (SWAPDB, FLUSHDB, FLUSHALL, DBSIZE),
//! with Redis 7.0's replies and error texts. Keys whose deadline has passed are never
//! returned: lookups apply lazy expiry and keyspace walks skip them.

use bytes::Bytes;
use tandem_config::{MaxmemoryPolicy, NodeConfig};
use tandem_protocol::{glob, number, Reply};

use super::args::{self, CmdResult};
use super::string::{already_expired, invalid_expire};
use super::Ctx;
use crate::db::evict::lfu_decayed_counter;
use crate::db::{Db, Entry, Value, ValueType, NO_EXPIRE, SHARDS};

const ERR_SAME_OBJECT: &str = "ERR source and destination objects are the same";
const ERR_DB_RANGE: &str = "ERR DB index is out of range";

/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`: longer strings are `raw`.
pub const OBJ_ENCODING_EMBSTR_SIZE_LIMIT: usize = 44;
/// Redis shares the integers `0..OBJ_SHARED_INTEGERS`; their refcount reads as `INT_MAX`.
pub const OBJ_SHARED_INTEGERS: i64 = 10000;
const OBJ_SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// SCAN cursor layout: `shard << SCAN_SHARD_SHIFT | position in the shard`.
const SCAN_SHARD_SHIFT: u32 = 40;
const SCAN_POS_MASK: u64 = (1 << SCAN_SHARD_SHIFT) - 1;

fn bulk(s: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s))
}

/// Looks `key` up in `db` without touching its LRU/LFU clock (Redis's `LOOKUP_NOTOUCH`),
/// still applying lazy expiry.
fn peek<'c>(ctx: &'c mut Ctx, db: usize, key: &[u8]) -> Option<&'c mut Entry> {
    let now = ctx.now_ms;
    let from_master = ctx.from_master;
    let expired = match ctx.raw_db(db, key).map.get(key) {
        None => return None,
        Some(e) => !from_master && e.is_expired(now),
    };
    if expired {
        ctx.lookup_in(db, key);
        return None;
    }
    ctx.raw_db(db, key).map_mut().get_mut(key)
}

/// [`peek`] in the selected db, counting a keyspace hit or miss.
fn peek_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Entry> {
    let db = ctx.db;
    if peek(ctx, db, key).is_some() {
        ctx.hits += 1;
        peek(ctx, db, key)
    } else {
        ctx.misses += 1;
        None
    }
}

/// A database index argument: `invalid` for non-integers, `ERR DB index is out of range`
/// for numbers outside `0..databases`.
fn db_index(ctx: &Ctx, arg: &[u8], invalid: &'static str) -> Result<usize, Reply> {
    let n = number::parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| Reply::error(invalid))?;
    if n < 0 || n as usize >= ctx.databases() {
        return Err(Reply::error(ERR_DB_RANGE));
    }
    Ok(n as usize)
}

// ---------------------------------------------------------------------- DEL / EXISTS / TYPE

pub fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if ctx.remove(key).is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn unlink(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    del(ctx, args)
}

pub fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if peek_read(ctx, key).is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if ctx.lookup_read(key).is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn type_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::status(match peek_read(ctx, &args[1]) {
        Some(e) => e.value.value_type().as_str(),
        None => "none",
    }))
}

// ---------------------------------------------------------------------- RENAME

fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&args[1][..], &args[2][..]);
    if ctx.lookup(src).is_none() {
        return Err(Reply::error(args::ERR_NO_SUCH_KEY));
    }
    let done = if nx { Reply::Int(1) } else { Reply::Ok };
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    let db = ctx.db;
    if ctx.lookup(dst).is_some() {
        if nx {
            return Ok(Reply::Int(0));
        }
        ctx.raw_db(db, dst).remove(dst);
    }
    let Some(entry) = ctx.raw_db(db, src).remove(src) else {
        return Err(Reply::error(args::ERR_NO_SUCH_KEY));
    };
    ctx.modified(src);
    ctx.insert_entry_in(db, dst, entry);
    Ok(done)
}

pub fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}

pub fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

// ---------------------------------------------------------------------- keyspace walks

pub fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pat = &args[1][..];
    let all = pat == b"*";
    let (db, now) = (ctx.db, ctx.now_ms);
    let mut out = Vec::new();
    for sh in ctx.shards_mut() {
        for (k, e) in sh.dbs[db].map.iter() {
            if !e.is_expired(now) && (all || glob::matches(pat, k, false)) {
                out.push(bulk(k));
            }
        }
    }
    Ok(Reply::Array(out))
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// The cursor is `shard << 40 | pos`. Inside a shard the keys (an insertion-ordered map whose
/// deletes move the last key into the hole) are walked from the end towards index 0: `pos 0`
/// starts at the last index, `pos c > 0` means the next index is `c - 1`. A delete only ever
/// moves an already-visited key, so every key present for the whole iteration is returned.
pub fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // strtoul semantics: a negative number wraps around (and then ends the iteration).
    let cursor = number::parse_u64(&args[1])
        .or_else(|| number::parse_i64(&args[1]).map(|n| n as u64))
        .ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut typ: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args::is(&args[i], "COUNT") && has_value {
            count = args::int(&args[i + 1])?;
            if count < 1 {
                return Err(args::syntax_error());
            }
        } else if args::is(&args[i], "MATCH") && has_value {
            pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else if args::is(&args[i], "TYPE") && has_value {
            typ = Some(&args[i + 1][..]);
        } else {
            return Err(args::syntax_error());
        }
        i += 2;
    }
    // An unknown type name matches nothing, as in Redis 7.0.
    let typ = typ.map(ValueType::parse);
    let (db, now) = (ctx.db, ctx.now_ms);
    let mut shard = (cursor >> SCAN_SHARD_SHIFT) as usize;
    let mut pos = cursor & SCAN_POS_MASK;
    let mut visited = 0i64;
    let mut out = Vec::new();
    // Expired keys met on the way are deleted after the walk (as Redis 7.0's SCAN does).
    let mut expired: Vec<Vec<u8>> = Vec::new();
    let shards = ctx.shards_mut();
    while shard < SHARDS && visited < count {
        let map = &shards[shard].dbs[db].map;
        let len = map.len() as u64;
        let mut next = if pos == 0 { len } else { pos.min(len) };
        while next > 0 && visited < count {
            let idx = next - 1;
            next = idx;
            visited += 1;
            let Some((k, e)) = map.get_index(idx as usize) else {
                continue;
            };
            if e.is_expired(now) {
                expired.push(k.as_slice().to_vec());
                continue;
            }
            if let Some(t) = typ {
                if t != Some(e.value.value_type()) {
                    continue;
                }
            }
            if let Some(p) = pattern {
                if !glob::matches(p, k, false) {
                    continue;
                }
            }
            out.push(bulk(k));
        }
        if next == 0 {
            shard += 1;
            pos = 0;
        } else {
            pos = next;
        }
    }
    for k in expired {
        // Deletes it on a master (and propagates the DEL); a replica only skips it.
        ctx.lookup_in(db, &k);
    }
    let next_cursor = if shard >= SHARDS {
        0
    } else {
        ((shard as u64) << SCAN_SHARD_SHIFT) | pos
    };
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next_cursor.to_string())),
        Reply::Array(out),
    ]))
}

pub fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db, ctx.now_ms);
    // On a master every expired key drawn is deleted, so this ends. A replica cannot delete
    // them: after a few tries it returns a (logically expired) name, as Redis does.
    let replica_like = ctx.from_master || ctx.srv.is_replica();
    let mut tries_left = 100;
    loop {
        let expired_key = {
            let shards = ctx.shards_mut();
            let total: usize = shards.iter().map(|s| s.dbs[db].map.len()).sum();
            if total == 0 {
                return Ok(Reply::Nil);
            }
            let mut r = fastrand::usize(..total);
            let mut found = None;
            for s in &shards {
                let map = &s.dbs[db].map;
                if r < map.len() {
                    found = map.get_index(r);
                    break;
                }
                r -= map.len();
            }
            let Some((k, e)) = found else {
                return Ok(Reply::Nil);
            };
            if !e.is_expired(now) {
                return Ok(bulk(k));
            }
            if replica_like {
                tries_left -= 1;
                if tries_left == 0 {
                    return Ok(bulk(k));
                }
            }
            k.clone()
        };
        // Deletes it (on a master) and counts it as expired.
        ctx.lookup_in(db, &expired_key);
    }
}

// ---------------------------------------------------------------------- expiry

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX | XX | GT | LT]
fn expire_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    basetime: i64,
    seconds: bool,
    name: &str,
) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if args::is(opt, "NX") {
            nx = true;
        } else if args::is(opt, "XX") {
            xx = true;
        } else if args::is(opt, "GT") {
            gt = true;
        } else if args::is(opt, "LT") {
            lt = true;
        } else {
            return Err(Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let mut when = args::int(&args[2])?;
    if seconds {
        when = when.checked_mul(1000).ok_or_else(|| invalid_expire(name))?;
    }
    let when = when
        .checked_add(basetime)
        .ok_or_else(|| invalid_expire(name))?;
    let key = &args[1][..];
    if ctx.lookup(key).is_none() {
        return Ok(Reply::Int(0));
    }
    if nx || xx || gt || lt {
        let cur = ctx.get_expire(key).map(|c| c as i64);
        let refused = (nx && cur.is_some())
            || (xx && cur.is_none())
            || (gt && cur.is_none_or(|c| when <= c))
            || (lt && cur.is_some_and(|c| when >= c));
        if refused {
            return Ok(Reply::Int(0));
        }
    }
    if already_expired(ctx, when.max(0) as u64) {
        ctx.remove(key);
        ctx.propagate
            .push(vec![Bytes::from_static(b"DEL"), args[1].clone()]);
        return Ok(Reply::Int(1));
    }
    // On a replica a past time is stored as is (the master sends the DEL).
    let at = when.max(1) as u64;
    ctx.set_expire(key, at);
    ctx.modified(key);
    ctx.propagate.push(vec![
        Bytes::from_static(b"PEXPIREAT"),
        args[1].clone(),
        Bytes::from(at.to_string()),
    ]);
    Ok(Reply::Int(1))
}

pub fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, true, "expire")
}

pub fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, false, "pexpire")
}

pub fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, true, "expireat")
}

pub fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, false, "pexpireat")
}

/// TTL / PTTL: -2 for a missing key, -1 without expiry, else the time left.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], ms: bool) -> CmdResult {
    let now = ctx.now_ms;
    let Some(e) = peek_read(ctx, key) else {
        return Ok(Reply::Int(-2));
    };
    Ok(Reply::Int(match e.expire() {
        None => -1,
        Some(at) => {
            let left = at.saturating_sub(now) as i64;
            if ms {
                left
            } else {
                (left + 500) / 1000
            }
        }
    }))
}

pub fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false)
}

pub fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true)
}

fn expiretime_generic(ctx: &mut Ctx, key: &[u8], ms: bool) -> CmdResult {
    let Some(e) = peek_read(ctx, key) else {
        return Ok(Reply::Int(-2));
    };
    Ok(Reply::Int(match e.expire() {
        None => -1,
        Some(at) if ms => at as i64,
        Some(at) => (at / 1000) as i64,
    }))
}

pub fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expiretime_generic(ctx, &args[1], false)
}

pub fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expiretime_generic(ctx, &args[1], true)
}

pub fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    if ctx.get_expire(key).is_none() {
        return Ok(Reply::Int(0));
    }
    ctx.set_expire(key, NO_EXPIRE);
    ctx.modified(key);
    Ok(Reply::Int(1))
}

// ---------------------------------------------------------------------- COPY / MOVE

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (&args[1][..], &args[2][..]);
    let mut dst_db = ctx.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if args::is(&args[i], "REPLACE") {
            replace = true;
        } else if args::is(&args[i], "DB") && i + 1 < args.len() {
            dst_db = db_index(ctx, &args[i + 1], args::ERR_NOT_INTEGER)?;
            i += 1;
        } else {
            return Err(args::syntax_error());
        }
        i += 1;
    }
    if dst_db == ctx.db && src == dst {
        return Err(Reply::error(ERR_SAME_OBJECT));
    }
    let Some(e) = ctx.lookup_read(src) else {
        return Ok(Reply::Int(0));
    };
    let mut entry = e.clone();
    if ctx.lookup_in(dst_db, dst).is_some() {
        if !replace {
            return Ok(Reply::Int(0));
        }
        ctx.raw_db(dst_db, dst).remove(dst);
    }
    entry.lru = (ctx.srv.lru_clock(ctx.now_ms))(0);
    ctx.insert_entry_in(dst_db, dst, entry);
    Ok(Reply::Int(1))
}

pub fn move_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let dst_db = db_index(ctx, &args[2], args::ERR_NOT_INTEGER)?;
    let db = ctx.db;
    if dst_db == db {
        return Err(Reply::error(ERR_SAME_OBJECT));
    }
    if ctx.lookup(key).is_none() || ctx.lookup_in(dst_db, key).is_some() {
        return Ok(Reply::Int(0));
    }
    let Some(entry) = ctx.raw_db(db, key).remove(key) else {
        return Ok(Reply::Int(0));
    };
    ctx.modified(key);
    ctx.insert_entry_in(dst_db, key, entry);
    Ok(Reply::Int(1))
}

// ---------------------------------------------------------------------- OBJECT

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

fn is_lfu(p: MaxmemoryPolicy) -> bool {
    matches!(
        p,
        MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu
    )
}

fn is_int_str(s: &[u8]) -> bool {
    s.len() <= 20 && number::parse_i64(s).is_some()
}

/// The encoding Redis 7.0 would report for `v` (OBJECT ENCODING), from the value's shape and
/// the configured conversion thresholds (`hash-max-listpack-entries` & co.).
pub fn encoding_of(v: &Value, cfg: &NodeConfig) -> &'static str {
    let fits = |len: usize, max: u64| len as u64 <= max;
    match v {
        Value::Str(s) => {
            if is_int_str(s) {
                "int"
            } else if s.len() <= OBJ_ENCODING_EMBSTR_SIZE_LIMIT {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::List(_) => "quicklist",
        Value::Hash(h) => {
            let max = cfg.hash_max_listpack_value;
            if fits(h.len(), cfg.hash_max_listpack_entries)
                && h.iter()
                    .all(|(f, v)| fits(f.len(), max) && fits(v.len(), max))
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            if !s.is_hashtable()
                && fits(s.len(), cfg.set_max_intset_entries)
                && s.iter().all(|m| is_int_str(m))
            {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if fits(z.len(), cfg.zset_max_listpack_entries)
                && z.dict
                    .keys()
                    .all(|m| fits(m.len(), cfg.zset_max_listpack_value))
            {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}

pub fn object(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args::lower(&args[1]);
    let known = matches!(
        sub.as_str(),
        "help" | "encoding" | "freq" | "idletime" | "refcount"
    );
    if !known {
        return Err(args::unknown_subcommand("object", &args[1]));
    }
    if sub == "help" {
        if args.len() != 2 {
            return Err(args::wrong_arity("object|help"));
        }
        return Ok(Reply::Array(
            OBJECT_HELP.iter().map(|l| Reply::status(*l)).collect(),
        ));
    }
    if args.len() != 3 {
        return Err(args::wrong_arity(&format!("object|{sub}")));
    }
    let policy = ctx.srv.policy();
    let maxmemory = ctx.srv.maxmemory.load(std::sync::atomic::Ordering::Relaxed);
    let now = ctx.now_ms;
    let cfg = ctx.srv.config.load_full();
    let db = ctx.db;
    let Some(e) = peek(ctx, db, &args[2]) else {
        return Ok(Reply::Nil);
    };
    match sub.as_str() {
        "encoding" => Ok(Reply::bulk_str(encoding_of(&e.value, &cfg))),
        "refcount" => {
            let shared_ints = maxmemory == 0
                || !matches!(
                    policy,
                    MaxmemoryPolicy::AllkeysLru
                        | MaxmemoryPolicy::VolatileLru
                        | MaxmemoryPolicy::AllkeysLfu
                        | MaxmemoryPolicy::VolatileLfu
                );
            let shared = match &e.value {
                Value::Str(s) if shared_ints && is_int_str(s) => {
                    number::parse_i64(s).is_some_and(|n| (0..OBJ_SHARED_INTEGERS).contains(&n))
                }
                _ => false,
            };
            Ok(Reply::Int(if shared { OBJ_SHARED_REFCOUNT } else { 1 }))
        }
        "idletime" => {
            if is_lfu(policy) {
                return Err(Reply::error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            let now_s = now / 1000;
            Ok(Reply::Int(now_s.saturating_sub(e.lru as u64) as i64))
        }
        _ => {
            if !is_lfu(policy) {
                return Err(Reply::error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            Ok(Reply::Int(
                lfu_decayed_counter(e.lru, now, cfg.lfu_decay_time) as i64,
            ))
        }
    }
}

// ---------------------------------------------------------------------- databases

pub fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = db_index(ctx, &args[1], "ERR invalid first DB index")?;
    let b = db_index(ctx, &args[2], "ERR invalid second DB index")?;
    if a != b {
        for sh in ctx.shards_mut() {
            // Watched keys that exist before or after the swap are touched.
            sh.signal_db(a);
            sh.signal_db(b);
            sh.dbs.swap(a, b);
            sh.signal_db(a);
            sh.signal_db(b);
        }
    }
    ctx.dirty += 1;
    Ok(Reply::Ok)
}

/// FLUSHDB / FLUSHALL's optional `ASYNC | SYNC`: true for ASYNC.
fn flush_async(args: &[Bytes]) -> Result<bool, Reply> {
    match args.len() {
        1 => Ok(false),
        2 if args::is(&args[1], "SYNC") => Ok(false),
        2 if args::is(&args[1], "ASYNC") => Ok(true),
        _ => Err(args::syntax_error()),
    }
}

/// Empties database `db` (all of them for `None`) in every shard. With `lazy`, the old
/// contents are freed on a background thread (Redis's lazyfree).
fn flush(ctx: &mut Ctx, db: Option<usize>, lazy: bool) -> u64 {
    let mut removed = 0u64;
    let mut garbage: Vec<Db> = Vec::new();
    for sh in ctx.shards_mut() {
        let range = match db {
            Some(d) => d..d + 1,
            None => 0..sh.dbs.len(),
        };
        for d in range {
            if sh.dbs[d].is_empty() {
                continue;
            }
            sh.signal_db(d);
            removed += sh.dbs[d].len() as u64;
            let old = std::mem::take(&mut sh.dbs[d]);
            if lazy {
                garbage.push(old);
            }
        }
    }
    if !garbage.is_empty() {
        let spawned = std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || drop(garbage));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the lazyfree thread; freeing inline");
        }
    }
    removed
}

pub fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazy = flush_async(args)?;
    let db = ctx.db;
    ctx.dirty += flush(ctx, Some(db), lazy);
    Ok(Reply::Ok)
}

pub fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazy = flush_async(args)?;
    ctx.dirty += flush(ctx, None, lazy) + 1;
    Ok(Reply::Ok)
}

pub fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let db = ctx.db;
    let n: usize = ctx.shards_mut().iter().map(|s| s.dbs[db].len()).sum();
    Ok(Reply::Int(n as i64))
}

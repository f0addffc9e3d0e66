//! Set commands (SADD ... SSCAN) with Redis 7.0's replies, reply types and error texts.
//! Also the cursor helpers SSCAN, ZSCAN share: collections are `indexmap`s that delete with
//! `swap_remove`, so a scan walks indices from the end towards 0, which returns every element
//! present for the whole scan at least once, as Redis guarantees.

use bytes::Bytes;
use std::sync::Arc;
use tandem_protocol::{glob, Reply};

use super::args::{self, is, syntax_error};
use super::ctx::wrongtype;
use super::{CmdResult, Ctx};
use crate::db::value::Set;
use crate::db::{CompactBytes, Entry, Value};

/// Most elements a random-member reply with repetitions (negative count) may hold; Redis would
/// try to stream any count, which no client can use. Beyond it: `ERR value is out of range`.
pub(crate) const MAX_RANDOM_REPLY: u64 = 1 << 22;

/// Collections up to this size are returned by one SSCAN/ZSCAN call with cursor 0, like
/// Redis's compact encodings.
pub(crate) const SCAN_ALL_AT_ONCE: usize = 128;

fn bulk(m: &CompactBytes) -> Reply {
    Reply::Bulk(m.to_bytes())
}

/// A set as a RESP3 set reply (an array in RESP2).
fn set_reply<'a>(members: impl Iterator<Item = &'a CompactBytes>) -> Reply {
    Reply::Set(members.map(bulk).collect())
}

fn empty_set() -> Reply {
    Reply::Set(Vec::new())
}

/// The set at `key` as a shared handle (cheap `Arc` clone): `Ok(None)` if absent.
fn load_set(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<Set>>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(Some(s.clone())),
        Some(_) => Err(wrongtype()),
    }
}

/// Every key's set, type-checked in order (a missing key is an empty set).
fn load_sets(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<Arc<Set>>>, Reply> {
    keys.iter().map(|k| load_set(ctx, k)).collect()
}

pub fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let srv = ctx.srv;
    let set = ctx.set_or_create(key)?;
    let mut added = 0;
    for m in &args[2..] {
        if !set.contains(&m[..]) {
            set.insert(CompactBytes::new(m));
            added += 1;
        }
    }
    if !set.is_hashtable() {
        let max = srv.config.load().set_max_intset_entries;
        set.note_added(args[2..].iter().map(|m| &m[..]), max);
    }
    if added > 0 {
        ctx.modified(key);
    }
    Ok(Reply::Int(added))
}

pub fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(set) = ctx.get_set_mut(key)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for m in &args[2..] {
        if set.swap_remove(&m[..]) {
            removed += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.remove_if_empty(key);
        ctx.modified(key);
    }
    Ok(Reply::Int(removed))
}

pub fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(match ctx.get_set(&args[1])? {
        None => empty_set(),
        Some(s) => set_reply(s.iter()),
    })
}

pub fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = ctx
        .get_set(&args[1])?
        .is_some_and(|s| s.contains(&args[2][..]));
    Ok(Reply::Int(found as i64))
}

pub fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let set = ctx.get_set(&args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| Reply::Int(set.is_some_and(|s| s.contains(&m[..])) as i64))
            .collect(),
    ))
}

pub fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = ctx.get_set(&args[1])?.map_or(0, |s| s.len());
    Ok(Reply::Int(n as i64))
}

pub fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() > 3 {
        return Err(syntax_error());
    }
    if args.len() == 2 {
        let Some(set) = ctx.get_set_mut(key)? else {
            return Ok(Reply::Nil);
        };
        let idx = fastrand::usize(..set.len().max(1));
        let Some(m) = set.swap_remove_index(idx) else {
            return Ok(Reply::Nil);
        };
        let m = m.to_bytes();
        ctx.remove_if_empty(key);
        ctx.modified(key);
        // Replicas must remove the same member: propagated as SREM (as Redis does).
        ctx.propagate
            .push(vec![Bytes::from_static(b"SREM"), key.clone(), m.clone()]);
        return Ok(Reply::Bulk(m));
    }
    let count = match args::int(&args[2]) {
        Ok(n) if n >= 0 => n as u64,
        _ => return Err(Reply::error("ERR value is out of range, must be positive")),
    };
    let Some(set) = ctx.get_set_mut(key)? else {
        return Ok(empty_set());
    };
    if count == 0 {
        return Ok(empty_set());
    }
    // Propagated as DEL when the whole set goes, else as SREM of the popped members.
    let (reply, effect) = if count >= set.len() as u64 {
        let all = std::mem::take(set);
        (
            set_reply(all.iter()),
            vec![Bytes::from_static(b"DEL"), key.clone()],
        )
    } else {
        let mut out = Vec::with_capacity(count as usize);
        let mut srem = vec![Bytes::from_static(b"SREM"), key.clone()];
        for _ in 0..count {
            let idx = fastrand::usize(..set.len());
            if let Some(m) = set.swap_remove_index(idx) {
                let m = m.to_bytes();
                srem.push(m.clone());
                out.push(Reply::Bulk(m));
            }
        }
        (Reply::Set(out), srem)
    };
    ctx.propagate.push(effect);
    ctx.remove_if_empty(key);
    ctx.modified(key);
    Ok(reply)
}

/// Parses the count of SRANDMEMBER / ZRANDMEMBER / HRANDFIELD style commands: the range is
/// `-LONG_MAX..=LONG_MAX` as in Redis.
pub(crate) fn random_count(arg: &[u8]) -> Result<i64, Reply> {
    let n = args::int(arg)?;
    if n == i64::MIN {
        return Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

/// `count` distinct random indices below `len` (`count < len`), in random order.
pub(crate) fn distinct_random_indices(len: usize, count: usize) -> Vec<usize> {
    if count.saturating_mul(3) > len {
        // Partial Fisher-Yates over all indices.
        let mut idx: Vec<usize> = (0..len).collect();
        for i in 0..count {
            let j = fastrand::usize(i..len);
            idx.swap(i, j);
        }
        idx.truncate(count);
        idx
    } else {
        let mut seen = crate::db::value::HashSet::default();
        while seen.len() < count {
            seen.insert(fastrand::usize(..len));
        }
        seen.into_iter().collect()
    }
}

pub fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() > 3 {
        return Err(syntax_error());
    }
    if args.len() == 2 {
        return Ok(match ctx.get_set(key)? {
            Some(s) if !s.is_empty() => s
                .get_index(fastrand::usize(..s.len()))
                .map_or(Reply::Nil, bulk),
            _ => Reply::Nil,
        });
    }
    let n = random_count(&args[2])?;
    let Some(set) = ctx.get_set(key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if n == 0 || set.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let len = set.len();
    if n < 0 {
        let count = n.unsigned_abs();
        if count > MAX_RANDOM_REPLY {
            return Err(Reply::error("ERR value is out of range"));
        }
        let out = (0..count)
            .filter_map(|_| set.get_index(fastrand::usize(..len)).map(bulk))
            .collect();
        return Ok(Reply::Array(out));
    }
    let count = n as u64;
    if count >= len as u64 {
        return Ok(Reply::Array(set.iter().map(bulk).collect()));
    }
    let out = distinct_random_indices(len, count as usize)
        .into_iter()
        .filter_map(|i| set.get_index(i).map(bulk))
        .collect();
    Ok(Reply::Array(out))
}

/// The intersection of `sets` (`None` = missing key = empty), stopping at `limit` members
/// when it is non-zero.
fn intersect(sets: &[Option<Arc<Set>>], limit: usize) -> Set {
    let mut out = Set::default();
    let mut present: Vec<&Set> = Vec::with_capacity(sets.len());
    for s in sets {
        match s {
            None => return out,
            Some(s) => present.push(s),
        }
    }
    present.sort_by_key(|s| s.len());
    let Some((first, rest)) = present.split_first() else {
        return out;
    };
    for m in first.iter() {
        if rest.iter().all(|s| s.contains(m.as_slice())) {
            out.insert(m.clone());
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

fn union(sets: &[Option<Arc<Set>>]) -> Set {
    let mut out = Set::default();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            if !out.contains(m.as_slice()) {
                out.insert(m.clone());
            }
        }
    }
    out
}

fn difference(sets: &[Option<Arc<Set>>]) -> Set {
    let mut out = Set::default();
    let Some((Some(first), rest)) = sets.split_first() else {
        return out;
    };
    for m in first.iter() {
        if !rest.iter().flatten().any(|s| s.contains(m.as_slice())) {
            out.insert(m.clone());
        }
    }
    out
}

#[derive(Clone, Copy)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

fn compute(ctx: &mut Ctx, keys: &[Bytes], op: SetOp) -> Result<Set, Reply> {
    let sets = load_sets(ctx, keys)?;
    Ok(match op {
        SetOp::Inter => intersect(&sets, 0),
        SetOp::Union => union(&sets),
        SetOp::Diff => difference(&sets),
    })
}

/// Stores `result` at `dest` (replacing any value and TTL), or deletes `dest` when it is empty.
fn store_set(ctx: &mut Ctx, dest: &[u8], mut result: Set) -> Reply {
    let n = result.len();
    if n == 0 {
        ctx.remove(dest);
    } else {
        // Redis builds the result as an intset and converts it as it grows.
        result.note_created(ctx.srv.config.load().set_max_intset_entries);
        ctx.set(dest, Value::Set(Arc::new(result)));
    }
    Reply::Int(n as i64)
}

pub fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = compute(ctx, &args[1..], SetOp::Inter)?;
    Ok(set_reply(r.iter()))
}

pub fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = compute(ctx, &args[1..], SetOp::Union)?;
    Ok(set_reply(r.iter()))
}

pub fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = compute(ctx, &args[1..], SetOp::Diff)?;
    Ok(set_reply(r.iter()))
}

pub fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = compute(ctx, &args[2..], SetOp::Inter)?;
    Ok(store_set(ctx, &args[1], r))
}

pub fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = compute(ctx, &args[2..], SetOp::Union)?;
    Ok(store_set(ctx, &args[1], r))
}

pub fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = compute(ctx, &args[2..], SetOp::Diff)?;
    Ok(store_set(ctx, &args[1], r))
}

pub fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = match args::int(&args[1]) {
        Ok(n) if n > 0 => n as u64,
        _ => return Err(Reply::error("ERR numkeys should be greater than 0")),
    };
    if n > (args.len() - 2) as u64 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let n = n as usize;
    let keys = &args[2..2 + n];
    let mut limit = 0usize;
    let mut i = 2 + n;
    while i < args.len() {
        if is(&args[i], "LIMIT") && i + 1 < args.len() {
            limit = match args::int(&args[i + 1]) {
                Ok(l) if l >= 0 => usize::try_from(l).unwrap_or(usize::MAX),
                _ => return Err(Reply::error("ERR LIMIT can't be negative")),
            };
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let sets = load_sets(ctx, keys)?;
    Ok(Reply::Int(intersect(&sets, limit).len() as i64))
}

pub fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let src_type = ctx.lookup(src).map(|e| e.value.value_type());
    let dst_type = ctx.lookup(dst).map(|e| e.value.value_type());
    let Some(src_type) = src_type else {
        return Ok(Reply::Int(0));
    };
    use crate::db::ValueType;
    if src_type != ValueType::Set || dst_type.is_some_and(|t| t != ValueType::Set) {
        return Err(wrongtype());
    }
    if src == dst {
        let found = ctx.get_set(src)?.is_some_and(|s| s.contains(&member[..]));
        return Ok(Reply::Int(found as i64));
    }
    let removed = ctx
        .get_set_mut(src)?
        .is_some_and(|s| s.swap_remove(&member[..]));
    if !removed {
        return Ok(Reply::Int(0));
    }
    ctx.remove_if_empty(src);
    ctx.modified(src);
    let srv = ctx.srv;
    let d = ctx.set_or_create(dst)?;
    if !d.contains(&member[..]) {
        d.insert(CompactBytes::new(member));
    }
    if !d.is_hashtable() {
        d.note_added([&member[..]], srv.config.load().set_max_intset_entries);
    }
    ctx.modified(dst);
    Ok(Reply::Int(1))
}

/// Parses a SCAN cursor like Redis's `strtoul` check: decimal, optional sign (a negative
/// value wraps), no leading space; `ERR invalid cursor` otherwise.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::error("ERR invalid cursor");
    let (neg, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, arg),
    };
    if arg.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// SSCAN / ZSCAN / HSCAN options: `MATCH pattern`, `COUNT n` (n >= 1).
pub(crate) struct ScanOpts<'a> {
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
}

impl<'a> ScanOpts<'a> {
    pub fn parse(opts: &'a [Bytes]) -> Result<ScanOpts<'a>, Reply> {
        let mut o = ScanOpts {
            pattern: None,
            count: 10,
        };
        let mut i = 0;
        while i < opts.len() {
            let more = i + 1 < opts.len();
            if is(&opts[i], "COUNT") && more {
                let n = args::int(&opts[i + 1])?;
                if n < 1 {
                    return Err(syntax_error());
                }
                o.count = usize::try_from(n).unwrap_or(usize::MAX);
                i += 2;
            } else if is(&opts[i], "MATCH") && more {
                let p = &opts[i + 1][..];
                o.pattern = (p != b"*").then_some(p);
                i += 2;
            } else {
                return Err(syntax_error());
            }
        }
        Ok(o)
    }

    pub fn matches(&self, member: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob::matches(p, member, false))
    }
}

/// One step of a scan over an indexed collection of `len` elements: the indices to visit
/// and the cursor to return. Cursor 0 starts at `len - 1` and indices go down; a cursor
/// `c > 0` continues at index `c - 1`; 0 is returned once index 0 was visited. Collections of
/// at most [`SCAN_ALL_AT_ONCE`] elements are visited whole, in order, like Redis's compact
/// encodings.
pub(crate) fn scan_step(
    len: usize,
    cursor: u64,
    count: usize,
) -> (Box<dyn Iterator<Item = usize>>, u64) {
    if len <= SCAN_ALL_AT_ONCE {
        return (Box::new(0..len), 0);
    }
    let start = if cursor == 0 {
        len - 1
    } else {
        usize::try_from(cursor - 1)
            .unwrap_or(usize::MAX)
            .min(len - 1)
    };
    let low = (start + 1).saturating_sub(count.max(1));
    (Box::new((low..start + 1).rev()), low as u64)
}

pub fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let Some(set) = ctx.get_set(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = ScanOpts::parse(&args[3..])?;
    let (indices, next) = scan_step(set.len(), cursor, opts.count);
    let items = indices
        .filter_map(|i| set.get_index(i))
        .filter(|m| opts.matches(m))
        .map(bulk)
        .collect();
    Ok(scan_reply(next, items))
}

/// `[cursor, [elements...]]`.
pub(crate) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(items),
    ])
}

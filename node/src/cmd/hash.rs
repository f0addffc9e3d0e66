//! Hash commands (HSET ... HSCAN) with Redis 7.0's replies, reply types (HGETALL is a RESP3
//! map) and error texts. Hashes are insertion-ordered `IndexMap`s; a hash within the
//! `hash-max-listpack-*` limits behaves like Redis's listpack (deletes keep the order, HSCAN
//! returns it whole). An emptied hash is deleted; every change is reported once through
//! [`Ctx::modified`].
//!
//! HSCAN guarantee: a field present for the whole scan is returned at least once. The cursor
//! walks indices from the end towards 0 (see [`scan_step`]); deletes only move elements from
//! higher to lower-or-equal indices, never from the unvisited part into the visited part.

use bytes::Bytes;
use tandem_protocol::number;
use tandem_protocol::{Protocol, Reply};

use super::args::{self, is, syntax_error};
use super::{CmdResult, Ctx};
use crate::db::value::Hash_;
use crate::db::CompactBytes;
use crate::server::Server;

/// Largest HRANDFIELD reply we build (a negative count asks for repeats without bound).
const MAX_RANDOM_REPLY: u64 = 1 << 24;

fn bulk(v: &CompactBytes) -> Reply {
    Reply::Bulk(v.to_bytes())
}

fn int_reply(n: usize) -> Reply {
    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Whether Redis would keep this hash as a listpack (the `hash-max-listpack-*` limits), the
/// same rule OBJECT ENCODING reports.
fn is_listpack(srv: &Server, h: &Hash_) -> bool {
    let cfg = srv.config.load();
    let max_value = usize::try_from(cfg.hash_max_listpack_value).unwrap_or(usize::MAX);
    u64::try_from(h.len()).unwrap_or(u64::MAX) <= cfg.hash_max_listpack_entries
        && h.iter()
            .all(|(f, v)| f.len() <= max_value && v.len() <= max_value)
}

/// Removes a field the way the encoding would: order-preserving for a listpack.
fn remove_field(h: &mut Hash_, field: &[u8], listpack: bool) -> bool {
    if listpack {
        h.shift_remove(field).is_some()
    } else {
        h.swap_remove(field).is_some()
    }
}

// ---------------------------------------------------------------------------- writes

/// Sets field/value pairs from `args[2..]`; returns how many fields were new.
fn set_pairs(ctx: &mut Ctx, args: &[Bytes]) -> Result<usize, Reply> {
    if args.len() & 1 == 1 {
        return Err(args::wrong_arity(&args::lower(&args[0])));
    }
    let key = &args[1];
    let h = ctx.hash_or_create(key)?;
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        let value = CompactBytes::new(&pair[1]);
        match h.get_mut(&pair[0][..]) {
            Some(v) => *v = value,
            None => {
                h.insert(CompactBytes::new(&pair[0]), value);
                created += 1;
            }
        }
    }
    ctx.modified(key);
    Ok(created)
}

pub fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(int_reply(set_pairs(ctx, args)?))
}

pub fn hmset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_pairs(ctx, args)?;
    Ok(Reply::Ok)
}

pub fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let h = ctx.hash_or_create(key)?;
    if h.contains_key(&args[2][..]) {
        return Ok(Reply::Int(0));
    }
    h.insert(CompactBytes::new(&args[2]), CompactBytes::new(&args[3]));
    ctx.modified(key);
    Ok(Reply::Int(1))
}

pub fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let srv = ctx.srv;
    let Some(h) = ctx.get_hash_mut(key)? else {
        return Ok(Reply::Int(0));
    };
    let listpack = is_listpack(srv, h);
    let mut deleted = 0;
    for f in &args[2..] {
        if remove_field(h, f, listpack) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.remove_if_empty(key);
        ctx.modified(key);
    }
    Ok(int_reply(deleted))
}

pub fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = args::int(&args[3])?;
    let key = &args[1];
    let h = ctx.hash_or_create(key)?;
    let field = &args[2][..];
    let current = match h.get(field) {
        Some(v) => {
            number::parse_i64(v).ok_or_else(|| Reply::error("ERR hash value is not an integer"))?
        }
        None => 0,
    };
    let new = current
        .checked_add(incr)
        .ok_or_else(|| Reply::error(args::ERR_OVERFLOW))?;
    let text = new.to_string();
    match h.get_mut(field) {
        Some(v) => *v = CompactBytes::new(text.as_bytes()),
        None => {
            h.insert(CompactBytes::new(field), CompactBytes::new(text.as_bytes()));
        }
    }
    ctx.modified(key);
    Ok(Reply::Int(new))
}

/// HINCRBYFLOAT: replies with the new value as a bulk string and is propagated as HSET with
/// the exact result, as Redis does (so replicas never redo float arithmetic).
pub fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = args::float(&args[3])?;
    if !incr.is_finite() {
        return Err(Reply::error("ERR value is NaN or Infinity"));
    }
    let key = &args[1];
    let h = ctx.hash_or_create(key)?;
    let field = &args[2][..];
    let current = match h.get(field) {
        Some(v) => {
            number::parse_f64(v).ok_or_else(|| Reply::error("ERR hash value is not a float"))?
        }
        None => 0.0,
    };
    let new = current + incr;
    if !new.is_finite() {
        // Only reachable when the field exists (0 + finite is finite): nothing to clean up.
        return Err(Reply::error("ERR increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(number::format_f64_plain(new));
    match h.get_mut(field) {
        Some(v) => *v = CompactBytes::new(&text),
        None => {
            h.insert(CompactBytes::new(field), CompactBytes::new(&text));
        }
    }
    ctx.modified(key);
    ctx.propagate.push(vec![
        Bytes::from_static(b"HSET"),
        key.clone(),
        args[2].clone(),
        text.clone(),
    ]);
    Ok(Reply::Bulk(text))
}

// ---------------------------------------------------------------------------- reads

pub fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(
        match ctx.get_hash(&args[1])?.and_then(|h| h.get(&args[2][..])) {
            Some(v) => bulk(v),
            None => Reply::Nil,
        },
    )
}

pub fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let h = ctx.get_hash(&args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|f| match h.and_then(|h| h.get(&f[..])) {
                Some(v) => bulk(v),
                None => Reply::Nil,
            })
            .collect(),
    ))
}

pub fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(h) = ctx.get_hash(&args[1])? else {
        return Ok(Reply::Map(Vec::new()));
    };
    Ok(Reply::Map(
        h.iter().map(|(k, v)| (bulk(k), bulk(v))).collect(),
    ))
}

pub fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = ctx
        .get_hash(&args[1])?
        .is_some_and(|h| h.contains_key(&args[2][..]));
    Ok(Reply::Int(i64::from(found)))
}

pub fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(h) = ctx.get_hash(&args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(Reply::Array(h.keys().map(bulk).collect()))
}

pub fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(h) = ctx.get_hash(&args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(Reply::Array(h.values().map(bulk).collect()))
}

pub fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(int_reply(ctx.get_hash(&args[1])?.map_or(0, |h| h.len())))
}

pub fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(int_reply(
        ctx.get_hash(&args[1])?
            .and_then(|h| h.get(&args[2][..]))
            .map_or(0, |v| v.len()),
    ))
}

/// HRANDFIELD key [count [WITHVALUES]].
pub fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() < 3 {
        let Some(h) = ctx.get_hash(&args[1])? else {
            return Ok(Reply::Nil);
        };
        return Ok(match h.get_index(fastrand::usize(..h.len().max(1))) {
            Some((k, _)) => bulk(k),
            None => Reply::Nil,
        });
    }
    let count = args::int(&args[2])?;
    if count == i64::MIN {
        return Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        ));
    }
    let with_values = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "withvalues") => true,
        Some(_) => return Err(syntax_error()),
    };
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let proto = ctx.proto;
    let Some(h) = ctx.get_hash(&args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let size = h.len();
    let picks: Vec<usize> = if count < 0 {
        // Repeats allowed: |count| independent picks.
        let n = count.unsigned_abs();
        if n > MAX_RANDOM_REPLY {
            return Err(Reply::error(
                "ERR value is out of range (HRANDFIELD count too large for tandem)",
            ));
        }
        (0..n).map(|_| fastrand::usize(..size)).collect()
    } else if count as u64 >= size as u64 {
        (0..size).collect()
    } else {
        distinct_sample(size, count as usize)
    };
    let pairs_as_arrays = with_values && proto == Protocol::Resp3;
    let mut out = Vec::with_capacity(picks.len() * if with_values { 2 } else { 1 });
    for i in picks {
        let Some((k, v)) = h.get_index(i) else {
            continue;
        };
        if pairs_as_arrays {
            out.push(Reply::Array(vec![bulk(k), bulk(v)]));
        } else {
            out.push(bulk(k));
            if with_values {
                out.push(bulk(v));
            }
        }
    }
    Ok(Reply::Array(out))
}

/// `n` distinct indices out of `0..size` (`n < size`) in random order, in O(n) memory when
/// `n` is small against `size`.
fn distinct_sample(size: usize, n: usize) -> Vec<usize> {
    if n.saturating_mul(3) > size {
        let mut all: Vec<usize> = (0..size).collect();
        for i in 0..n {
            let j = fastrand::usize(i..size);
            all.swap(i, j);
        }
        all.truncate(n);
        all
    } else {
        let mut seen = std::collections::HashSet::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let i = fastrand::usize(..size);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------- scan

/// Parses a SCAN cursor like Redis's `strtoul`: optional sign, decimal digits, nothing else
/// (a negative value wraps as in C). Error: `ERR invalid cursor`.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::error("ERR invalid cursor");
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() && !arg.is_empty() {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(invalid());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// One step of the index cursor over a collection of `len` elements: the indices to visit
/// (from high to low) and the cursor to return. Cursor 0 starts at `len - 1`; a cursor `c > 0`
/// continues at `c - 1`; 0 is returned once index 0 has been visited.
pub fn scan_step(len: usize, cursor: u64, count: usize) -> (std::ops::Range<usize>, u64) {
    if len == 0 {
        return (0..0, 0);
    }
    let top = if cursor == 0 {
        len - 1
    } else {
        usize::try_from(cursor - 1)
            .unwrap_or(usize::MAX)
            .min(len - 1)
    };
    let low = top.saturating_sub(count.max(1) - 1);
    (low..top + 1, low as u64)
}

/// HSCAN key cursor [MATCH pattern] [COUNT count].
pub fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let empty = || {
        Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"0")),
            Reply::Array(Vec::new()),
        ])
    };
    let srv = ctx.srv;
    let Some(h) = ctx.get_hash(&args[1])? else {
        return Ok(empty());
    };
    let listpack = is_listpack(srv, h);
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if is(&args[i], "count") && has_value {
            count = args::int(&args[i + 1])?;
            if count < 1 {
                return Err(syntax_error());
            }
        } else if is(&args[i], "match") && has_value {
            let p = &args[i + 1][..];
            pattern = if p == b"*" { None } else { Some(p) };
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let keep = |k: &CompactBytes| match pattern {
        Some(p) => tandem_protocol::glob::matches(p, k, false),
        None => true,
    };
    let mut out = Vec::new();
    let next = if listpack {
        for (k, v) in h.iter().filter(|(k, _)| keep(k)) {
            out.push(bulk(k));
            out.push(bulk(v));
        }
        0
    } else {
        let (range, next) = scan_step(
            h.len(),
            cursor,
            usize::try_from(count).unwrap_or(usize::MAX),
        );
        for idx in range.rev() {
            if let Some((k, v)) = h.get_index(idx) {
                if keep(k) {
                    out.push(bulk(k));
                    out.push(bulk(v));
                }
            }
        }
        next
    };
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(out),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b"0").unwrap(), 0);
        assert_eq!(parse_cursor(b"").unwrap(), 0);
        assert_eq!(parse_cursor(b"123").unwrap(), 123);
        assert_eq!(parse_cursor(b"+7").unwrap(), 7);
        assert_eq!(parse_cursor(b"-1").unwrap(), u64::MAX);
        assert!(parse_cursor(b"x").is_err());
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"1 ").is_err());
        assert!(parse_cursor(b"-").is_err());
        assert!(parse_cursor(b"99999999999999999999999").is_err());
    }

    #[test]
    fn scan_step_walks_down_to_zero() {
        assert_eq!(scan_step(10, 0, 4), (6..10, 6));
        assert_eq!(scan_step(10, 6, 4), (2..6, 2));
        assert_eq!(scan_step(10, 2, 4), (0..2, 0));
        // A cursor past the end (the collection shrank) is clamped.
        assert_eq!(scan_step(3, 100, 2), (1..3, 1));
        assert_eq!(scan_step(0, 5, 2), (0..0, 0));
        assert_eq!(scan_step(5, u64::MAX, usize::MAX), (0..5, 0));
    }

    /// Every element present for the whole scan is returned even with swap_remove deletes
    /// and inserts happening between steps.
    #[test]
    fn scan_survives_deletes_and_inserts() {
        let mut h: Hash_ = Hash_::default();
        for i in 0..1000 {
            h.insert(CompactBytes::new(format!("f{i}").as_bytes()), "v".into());
        }
        let stable: Vec<CompactBytes> = (0..1000)
            .filter(|i| i % 3 != 0)
            .map(|i| CompactBytes::new(format!("f{i}").as_bytes()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0u64;
        let mut round = 0;
        loop {
            let (range, next) = scan_step(h.len(), cursor, 17);
            for idx in range.rev() {
                seen.insert(h.get_index(idx).unwrap().0.clone());
            }
            // Mutate: delete some of the multiples of 3, add new fields.
            for k in 0..5 {
                let victim = format!("f{}", (round * 15 + k * 3) % 1000);
                h.swap_remove(victim.as_bytes());
                h.insert(
                    CompactBytes::new(format!("new{round}-{k}").as_bytes()),
                    "v".into(),
                );
            }
            round += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for k in &stable {
            assert!(seen.contains(k), "missed {k:?}");
        }
    }
}

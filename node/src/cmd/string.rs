//! String commands (GET, SET and its variants, counters, ranges), with Redis 7.0's replies and
//! error texts. A string is stored as one [`CompactBytes`]; GET/SET are the hottest path of the
//! server and allocate nothing beyond the stored value and the reply's bytes.

use bytes::Bytes;
use std::io::Write as _;
use tandem_protocol::{number, Reply};

use super::args::{self, CmdResult};
use super::ctx::wrongtype;
use super::Ctx;
use crate::db::{CompactBytes, Entry, Value, NO_EXPIRE};

/// Redis's `proto-max-bulk-len` error, for strings that would grow past it.
const ERR_STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// `ERR invalid expire time in '<cmd>' command`.
pub fn invalid_expire(cmd: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{cmd}' command"))
}

/// The four ways an expiry can be given to SET / GETEX.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Parsed SET / GETEX options (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct StrOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a Bytes)>,
}

/// Parses the options after the key (GETEX) or value (SET). `is_set` selects which options
/// are allowed; anything else, or a conflicting combination, is a syntax error.
fn parse_str_opts(opts: &[Bytes], is_set: bool) -> Result<StrOpts<'_>, Reply> {
    let mut o = StrOpts::default();
    let mut i = 0;
    while i < opts.len() {
        let a = &opts[i][..];
        let next = opts.get(i + 1);
        let has_expire = o.expire.is_some();
        if is_set && args::is(a, "NX") && !o.xx {
            o.nx = true;
        } else if is_set && args::is(a, "XX") && !o.nx {
            o.xx = true;
        } else if is_set && args::is(a, "GET") {
            o.get = true;
        } else if is_set && args::is(a, "KEEPTTL") && !has_expire {
            o.keepttl = true;
        } else if !is_set && args::is(a, "PERSIST") && !has_expire {
            o.persist = true;
        } else if let (Some(kind), Some(n)) = (expire_kind(a), next) {
            if has_expire || o.keepttl || o.persist {
                return Err(args::syntax_error());
            }
            o.expire = Some((kind, n));
            i += 1;
        } else {
            return Err(args::syntax_error());
        }
        i += 1;
    }
    Ok(o)
}

fn expire_kind(a: &[u8]) -> Option<ExpireKind> {
    if args::is(a, "EX") {
        Some(ExpireKind::Ex)
    } else if args::is(a, "PX") {
        Some(ExpireKind::Px)
    } else if args::is(a, "EXAT") {
        Some(ExpireKind::ExAt)
    } else if args::is(a, "PXAT") {
        Some(ExpireKind::PxAt)
    } else {
        None
    }
}

/// The absolute expiry (unix ms) an EX/PX/EXAT/PXAT argument means, as Redis's
/// `getExpireMillisecondsOrReply`: the number must be > 0 and must not overflow.
fn expire_at_ms(now_ms: u64, kind: ExpireKind, arg: &[u8], cmd: &str) -> Result<u64, Reply> {
    let v = args::int(arg)?;
    if v <= 0 {
        return Err(invalid_expire(cmd));
    }
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::ExAt => {
            v.checked_mul(1000).ok_or_else(|| invalid_expire(cmd))?
        }
        ExpireKind::Px | ExpireKind::PxAt => v,
    };
    let at = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms
            .checked_add(now_ms as i64)
            .ok_or_else(|| invalid_expire(cmd))?,
        ExpireKind::ExAt | ExpireKind::PxAt => ms,
    };
    Ok(at as u64)
}

/// True when an absolute expiry is already past and the key must be deleted instead of
/// stored (never on a replica or while applying the master's stream).
pub fn already_expired(ctx: &Ctx, at_ms: u64) -> bool {
    at_ms <= ctx.now_ms && !ctx.from_master && !ctx.srv.is_replica()
}

#[inline]
fn str_value(b: &[u8]) -> Value {
    Value::Str(CompactBytes::new(b))
}

/// An integer as a stored string (no heap allocation: at most 20 bytes, inline).
fn int_value(v: i64) -> Value {
    let mut buf = [0u8; 24];
    let mut w = &mut buf[..];
    let _ = write!(w, "{v}");
    let n = 24 - w.len();
    str_value(&buf[..n])
}

fn bulk(s: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s))
}

fn max_string_len(ctx: &Ctx) -> u64 {
    ctx.srv.config.load().proto_max_bulk_len.0
}

// ---------------------------------------------------------------------- GET / SET

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match ctx.get_str(&args[1])? {
        Some(s) => Ok(bulk(s)),
        None => Ok(Reply::Nil),
    }
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
pub fn set_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    if args.len() == 3 {
        ctx.set(key, str_value(&args[2]));
        return Ok(Reply::Ok);
    }
    let o = parse_str_opts(&args[3..], true)?;
    let expire = match o.expire {
        Some((kind, a)) => Some((kind, expire_at_ms(ctx.now_ms, kind, a, "set")?)),
        None => None,
    };
    let old = if o.get {
        ctx.get_str(key)?.map(|s| Bytes::copy_from_slice(s))
    } else {
        None
    };
    if o.nx || o.xx {
        let found = if o.get {
            old.is_some()
        } else {
            ctx.exists(key)
        };
        if (o.nx && found) || (o.xx && !found) {
            return Ok(if o.get {
                Reply::opt_bulk(old)
            } else {
                Reply::Nil
            });
        }
    }
    let at = if o.keepttl {
        ctx.get_expire(key).unwrap_or(NO_EXPIRE)
    } else {
        expire.map_or(NO_EXPIRE, |(_, at)| at)
    };
    let stored = store_string(ctx, key, &args[2], at);
    if let Some((kind, at)) = expire {
        if stored && kind != ExpireKind::PxAt {
            ctx.propagate.push(vec![
                Bytes::from_static(b"SET"),
                args[1].clone(),
                args[2].clone(),
                Bytes::from_static(b"PXAT"),
                Bytes::from(at.to_string()),
            ]);
        }
    }
    Ok(if o.get {
        Reply::opt_bulk(old)
    } else {
        Reply::Ok
    })
}

/// Stores a string with an absolute expiry; an expiry already in the past deletes the key
/// instead (Redis would store it and expire it on the next access).
/// Returns false when the key was deleted.
fn store_string(ctx: &mut Ctx, key: &[u8], val: &[u8], at: u64) -> bool {
    if at != NO_EXPIRE && already_expired(ctx, at) {
        if ctx.remove(key).is_none() {
            ctx.modified(key);
        }
        ctx.propagate.push(vec![
            Bytes::from_static(b"DEL"),
            Bytes::copy_from_slice(key),
        ]);
        false
    } else {
        ctx.set_with_expire(key, str_value(val), at);
        true
    }
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.exists(&args[1]) {
        return Ok(Reply::Int(0));
    }
    ctx.set(&args[1], str_value(&args[2]));
    Ok(Reply::Int(1))
}

fn setex_generic(ctx: &mut Ctx, args: &[Bytes], kind: ExpireKind, name: &str) -> CmdResult {
    let at = expire_at_ms(ctx.now_ms, kind, &args[2], name)?;
    if !store_string(ctx, &args[1], &args[3], at) {
        return Ok(Reply::Ok);
    }
    ctx.propagate.push(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        args[3].clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(at.to_string()),
    ]);
    Ok(Reply::Ok)
}

pub fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, ExpireKind::Ex, "setex")
}

pub fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, ExpireKind::Px, "psetex")
}

pub fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let old = ctx.get_str(&args[1])?.map(|s| Bytes::copy_from_slice(s));
    ctx.set(&args[1], str_value(&args[2]));
    Ok(Reply::opt_bulk(old))
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(old) = ctx.get_str(&args[1])?.map(|s| Bytes::copy_from_slice(s)) else {
        return Ok(Reply::Nil);
    };
    ctx.remove(&args[1]);
    Ok(Reply::Bulk(old))
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]
pub fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let o = parse_str_opts(&args[2..], false)?;
    let Some(val) = ctx.get_str(key)?.map(|s| Bytes::copy_from_slice(s)) else {
        return Ok(Reply::Nil);
    };
    if let Some((kind, a)) = o.expire {
        let at = expire_at_ms(ctx.now_ms, kind, a, "getex")?;
        if matches!(kind, ExpireKind::ExAt | ExpireKind::PxAt) && already_expired(ctx, at) {
            ctx.remove(key);
            ctx.propagate
                .push(vec![Bytes::from_static(b"DEL"), args[1].clone()]);
        } else {
            ctx.set_expire(key, at);
            ctx.modified(key);
            ctx.propagate.push(vec![
                Bytes::from_static(b"PEXPIREAT"),
                args[1].clone(),
                Bytes::from(at.to_string()),
            ]);
        }
    } else if o.persist && ctx.get_expire(key).is_some() {
        ctx.set_expire(key, NO_EXPIRE);
        ctx.modified(key);
        ctx.propagate
            .push(vec![Bytes::from_static(b"PERSIST"), args[1].clone()]);
    }
    Ok(Reply::Bulk(val))
}

pub fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        out.push(match ctx.lookup_read(key) {
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => bulk(s),
            _ => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(args::wrong_arity("mset"));
    }
    for kv in args[1..].chunks_exact(2) {
        ctx.set(&kv[0], str_value(&kv[1]));
    }
    Ok(Reply::Ok)
}

pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(args::wrong_arity("msetnx"));
    }
    for kv in args[1..].chunks_exact(2) {
        if ctx.exists(&kv[0]) {
            return Ok(Reply::Int(0));
        }
    }
    for kv in args[1..].chunks_exact(2) {
        ctx.set(&kv[0], str_value(&kv[1]));
    }
    Ok(Reply::Int(1))
}

// ---------------------------------------------------------------------- counters

/// Adds `delta` to the integer at `key` (0 if absent), keeping its TTL.
fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    let new = match ctx.lookup(key) {
        None => {
            ctx.set(key, int_value(delta));
            return Ok(Reply::Int(delta));
        }
        Some(e) => {
            let Value::Str(s) = &e.value else {
                return Err(wrongtype());
            };
            let cur = number::parse_i64(s).ok_or_else(|| Reply::error(args::ERR_NOT_INTEGER))?;
            let new = cur
                .checked_add(delta)
                .ok_or_else(|| Reply::error(args::ERR_OVERFLOW))?;
            e.value = int_value(new);
            new
        }
    };
    ctx.modified(key);
    Ok(Reply::Int(new))
}

pub fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let d = args::int(&args[2])?;
    incr_by(ctx, &args[1], d)
}

pub fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let d = args::int(&args[2])?;
    let d = d
        .checked_neg()
        .ok_or_else(|| Reply::error("ERR decrement would overflow"))?;
    incr_by(ctx, &args[1], d)
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let incr = args::float(&args[2])?;
    let cur = match ctx.lookup(key) {
        None => 0.0,
        Some(Entry {
            value: Value::Str(s),
            ..
        }) => args::float(s)?,
        Some(_) => return Err(wrongtype()),
    };
    let new = cur + incr;
    if !new.is_finite() {
        return Err(Reply::error("ERR increment would produce NaN or Infinity"));
    }
    let text = number::format_f64_plain(new);
    match ctx.lookup(key) {
        Some(e) => e.value = str_value(text.as_bytes()),
        None => ctx.set(key, str_value(text.as_bytes())),
    }
    ctx.modified(key);
    let text = Bytes::from(text);
    ctx.propagate.push(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        text.clone(),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Ok(Reply::Bulk(text))
}

// ---------------------------------------------------------------------- ranges

pub fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let add = &args[2][..];
    let max = if ctx.from_master {
        u64::MAX
    } else {
        max_string_len(ctx)
    };
    let len = match ctx.lookup(key) {
        None => {
            if add.len() as u64 > max {
                return Err(Reply::error(ERR_STRING_TOO_LONG));
            }
            ctx.set(key, str_value(add));
            return Ok(Reply::Int(add.len() as i64));
        }
        Some(e) => {
            let Value::Str(s) = &mut e.value else {
                return Err(wrongtype());
            };
            let total = s.len() + add.len();
            if total as u64 > max {
                return Err(Reply::error(ERR_STRING_TOO_LONG));
            }
            if !add.is_empty() {
                let mut v = take_vec(s);
                v.reserve_exact(add.len());
                v.extend_from_slice(add);
                *s = CompactBytes::from_vec(v);
            }
            total
        }
    };
    ctx.modified(key);
    Ok(Reply::Int(len as i64))
}

pub fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.get_str(&args[1])?.map_or(0, |s| s.len()) as i64
    ))
}

pub fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    let Some(s) = ctx.get_str(&args[1])? else {
        return Ok(Reply::Bulk(Bytes::new()));
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::Bulk(Bytes::new()));
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(Reply::Bulk(Bytes::new()));
    }
    Ok(bulk(&s[start as usize..=end as usize]))
}

pub fn substr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    getrange(ctx, args)
}

pub fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let offset = args::int(&args[2])?;
    let val = &args[3][..];
    if offset < 0 {
        return Err(Reply::error("ERR offset is out of range"));
    }
    let offset = offset as u64;
    let max = if ctx.from_master {
        u64::MAX
    } else {
        max_string_len(ctx)
    };
    let fits = offset
        .checked_add(val.len() as u64)
        .is_some_and(|t| t <= max);
    let n = match ctx.lookup(key) {
        None => {
            if val.is_empty() {
                return Ok(Reply::Int(0));
            }
            if !fits {
                return Err(Reply::error(ERR_STRING_TOO_LONG));
            }
            let off = offset as usize;
            let mut v = vec![0u8; off + val.len()];
            v[off..].copy_from_slice(val);
            let n = v.len();
            ctx.set(key, Value::Str(CompactBytes::from_vec(v)));
            return Ok(Reply::Int(n as i64));
        }
        Some(e) => {
            let Value::Str(s) = &mut e.value else {
                return Err(wrongtype());
            };
            if val.is_empty() {
                return Ok(Reply::Int(s.len() as i64));
            }
            if !fits {
                return Err(Reply::error(ERR_STRING_TOO_LONG));
            }
            let off = offset as usize;
            let end = off + val.len();
            if end <= s.len() {
                bytes_mut(s)[off..end].copy_from_slice(val);
            } else {
                let mut v = take_vec(s);
                v.resize(end, 0);
                v[off..end].copy_from_slice(val);
                *s = CompactBytes::from_vec(v);
            }
            s.len()
        }
    };
    ctx.modified(key);
    Ok(Reply::Int(n as i64))
}

/// The bytes of a stored string, writable in place.
fn bytes_mut(s: &mut CompactBytes) -> &mut [u8] {
    match s {
        CompactBytes::Inline { len, data } => &mut data[..*len as usize],
        CompactBytes::Heap(b) => b,
    }
}

/// Takes a stored string out as a `Vec` (no copy when it lives on the heap).
fn take_vec(s: &mut CompactBytes) -> Vec<u8> {
    match std::mem::replace(s, CompactBytes::new(b"")) {
        CompactBytes::Heap(b) => b.into_vec(),
        other => other.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_values_are_decimal() {
        for v in [0i64, -1, 42, i64::MAX, i64::MIN] {
            match int_value(v) {
                Value::Str(s) => assert_eq!(s.as_slice(), v.to_string().as_bytes()),
                _ => panic!(),
            }
        }
    }

    #[test]
    fn expire_parsing_rejects_overflow_and_non_positive() {
        assert!(expire_at_ms(1000, ExpireKind::Ex, b"0", "set").is_err());
        assert!(expire_at_ms(1000, ExpireKind::Ex, b"-5", "set").is_err());
        assert!(expire_at_ms(1000, ExpireKind::Ex, b"9223372036854775807", "set").is_err());
        assert!(expire_at_ms(1000, ExpireKind::Px, b"9223372036854775807", "set").is_err());
        assert_eq!(
            expire_at_ms(1000, ExpireKind::Ex, b"2", "set").ok(),
            Some(3000)
        );
        assert_eq!(
            expire_at_ms(1000, ExpireKind::PxAt, b"5", "set").ok(),
            Some(5)
        );
        assert_eq!(
            expire_at_ms(1000, ExpireKind::ExAt, b"5", "set").ok(),
            Some(5000)
        );
    }

    #[test]
    fn option_conflicts_are_syntax_errors() {
        let b =
            |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::from(s.to_string())).collect() };
        assert!(parse_str_opts(&b(&["NX", "XX"]), true).is_err());
        assert!(parse_str_opts(&b(&["EX", "1", "PX", "1"]), true).is_err());
        assert!(parse_str_opts(&b(&["KEEPTTL", "EX", "1"]), true).is_err());
        assert!(parse_str_opts(&b(&["EX"]), true).is_err());
        assert!(parse_str_opts(&b(&["PERSIST"]), true).is_err());
        assert!(parse_str_opts(&b(&["NX"]), false).is_err());
        assert!(parse_str_opts(&b(&["PERSIST", "EX", "1"]), false).is_err());
        assert!(parse_str_opts(&b(&["NX", "GET", "EX", "1"]), true).is_ok());
        assert!(parse_str_opts(&b(&["nx", "nx"]), true).is_ok());
    }
}

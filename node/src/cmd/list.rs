//! List commands (LPUSH ... LPOS, LMOVE, and the blocking BLPOP/BRPOP/BLMOVE/BRPOPLPUSH) with
//! Redis 7.0's replies, error texts and argument-checking order. Lists are `VecDeque`s of
//! [`CompactBytes`]; a list never stays empty in the keyspace (emptied lists are deleted) and
//! every change is reported once per key through [`Ctx::modified`], which also wakes clients
//! blocked on that key.

use bytes::Bytes;
use std::time::Duration;
use tandem_protocol::{number, Cmd, Reply};

use super::args::{self, is, syntax_error, ERR_NO_SUCH_KEY, ERR_OUT_OF_RANGE};
use super::{CmdResult, Ctx};
use crate::db::value::List;
use crate::db::CompactBytes;

/// Which end of a list an operation works on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    Left,
    Right,
}

impl End {
    /// `LEFT` / `RIGHT` (any case), otherwise `ERR syntax error`.
    fn parse(arg: &[u8]) -> Result<End, Reply> {
        if is(arg, "left") {
            Ok(End::Left)
        } else if is(arg, "right") {
            Ok(End::Right)
        } else {
            Err(syntax_error())
        }
    }

    fn word(self) -> &'static str {
        match self {
            End::Left => "LEFT",
            End::Right => "RIGHT",
        }
    }
}

fn pop_end(list: &mut List, end: End) -> Option<CompactBytes> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

fn push_end(list: &mut List, end: End, v: CompactBytes) {
    match end {
        End::Left => list.push_front(v),
        End::Right => list.push_back(v),
    }
}

fn len_reply(len: usize) -> Reply {
    Reply::Int(i64::try_from(len).unwrap_or(i64::MAX))
}

/// Converts Redis's inclusive `start`/`end` (negative = from the tail) into a clamped
/// inclusive index range, or `None` when the range is empty.
fn range_of(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// A list index (negative = from the tail) resolved against `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let i = if index < 0 {
        len_i.checked_add(index)?
    } else {
        index
    };
    if (0..len_i).contains(&i) {
        Some(i as usize)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------- push

fn push(ctx: &mut Ctx, args: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let key = &args[1];
    let list = if only_existing {
        match ctx.get_list_mut(key)? {
            Some(l) => l,
            None => return Ok(Reply::Int(0)),
        }
    } else {
        ctx.list_or_create(key)?
    };
    for v in &args[2..] {
        push_end(list, end, CompactBytes::new(v));
    }
    let len = list.len();
    ctx.modified(key);
    Ok(len_reply(len))
}

pub fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Left, false)
}

pub fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Right, false)
}

pub fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Left, true)
}

pub fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Right, true)
}

// ---------------------------------------------------------------------------- pop

/// LPOP/RPOP key [count]: without count a bulk (nil when missing); with count an array of up
/// to `count` elements (nil array when the key is missing, empty array for count 0).
fn pop(ctx: &mut Ctx, args: &[Bytes], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(args::wrong_arity(&args::lower(&args[0])));
    }
    let count = match args.get(2) {
        // Redis uses one message for both a non-number and a negative count here.
        Some(a) => match number::parse_i64(a) {
            Some(n) if n >= 0 => Some(n),
            _ => return Err(Reply::error("ERR value is out of range, must be positive")),
        },
        None => None,
    };
    let key = &args[1];
    let Some(list) = ctx.get_list_mut(key)? else {
        return Ok(if count.is_some() {
            Reply::NilArray
        } else {
            Reply::Nil
        });
    };
    let reply = match count {
        None => match pop_end(list, end) {
            Some(v) => Reply::Bulk(v.to_bytes()),
            None => Reply::Nil,
        },
        Some(0) => return Ok(Reply::Array(Vec::new())),
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(list.len());
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                if let Some(v) = pop_end(list, end) {
                    out.push(Reply::Bulk(v.to_bytes()));
                }
            }
            Reply::Array(out)
        }
    };
    ctx.remove_if_empty(key);
    ctx.modified(key);
    Ok(reply)
}

pub fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Left)
}

pub fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Right)
}

// ---------------------------------------------------------------------------- reads

pub fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    let Some(list) = ctx.get_list(&args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let Some((s, e)) = range_of(start, end, list.len()) else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(Reply::Array(
        list.range(s..=e)
            .map(|v| Reply::Bulk(v.to_bytes()))
            .collect(),
    ))
}

pub fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(len_reply(ctx.get_list(&args[1])?.map_or(0, |l| l.len())))
}

pub fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(list) = ctx.get_list(&args[1])? else {
        return Ok(Reply::Nil);
    };
    let index = args::int(&args[2])?;
    Ok(
        match resolve_index(index, list.len()).and_then(|i| list.get(i)) {
            Some(v) => Reply::Bulk(v.to_bytes()),
            None => Reply::Nil,
        },
    )
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
pub fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let has_value = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "rank") && has_value {
            rank = args::int(&args[j + 1])?;
            if rank == 0 {
                return Err(Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "count") && has_value {
            // Redis gives the same message for a non-number as for a negative value.
            count = Some(
                number::parse_i64(&args[j + 1])
                    .filter(|c| *c >= 0)
                    .ok_or_else(|| Reply::error("ERR COUNT can't be negative"))?,
            );
        } else if is(opt, "maxlen") && has_value {
            maxlen = number::parse_i64(&args[j + 1])
                .filter(|m| *m >= 0)
                .ok_or_else(|| Reply::error("ERR MAXLEN can't be negative"))?;
        } else {
            return Err(syntax_error());
        }
        j += 2;
    }
    let Some(list) = ctx.get_list(&args[1])? else {
        return Ok(match count {
            Some(_) => Reply::Array(Vec::new()),
            None => Reply::Nil,
        });
    };
    let element = &args[2][..];
    // Negative rank searches from the tail. Redis negates the rank in a signed long, so
    // i64::MIN stays negative and then matches the first hit: treat it as 1.
    let from_tail = rank < 0;
    let skip = rank.checked_abs().unwrap_or(1) - 1;
    let want = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(c) => usize::try_from(c).unwrap_or(usize::MAX),
    };
    let limit = if maxlen == 0 {
        usize::MAX
    } else {
        usize::try_from(maxlen).unwrap_or(usize::MAX)
    };
    let len = list.len();
    let mut matches: i64 = 0;
    let mut found: Vec<Reply> = Vec::new();
    for step in 0..len.min(limit) {
        let idx = if from_tail { len - 1 - step } else { step };
        if list.get(idx).map(|v| v.as_slice()) == Some(element) {
            matches += 1;
            if matches > skip {
                found.push(len_reply(idx));
                if found.len() >= want {
                    break;
                }
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::Nil),
    })
}

// ---------------------------------------------------------------------------- edits

pub fn lset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(list) = ctx.get_list_mut(key)? else {
        return Err(Reply::error(ERR_NO_SUCH_KEY));
    };
    let index = args::int(&args[2])?;
    let Some(slot) = resolve_index(index, list.len()).and_then(|i| list.get_mut(i)) else {
        return Err(Reply::error(ERR_OUT_OF_RANGE));
    };
    *slot = CompactBytes::new(&args[3]);
    ctx.modified(key);
    Ok(Reply::Ok)
}

/// LREM key count element: count > 0 removes from the head, < 0 from the tail, 0 all.
pub fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = args::int(&args[2])?;
    let key = &args[1];
    let Some(list) = ctx.get_list_mut(key)? else {
        return Ok(Reply::Int(0));
    };
    let element = &args[3][..];
    let max = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let mut removed = 0usize;
    if count >= 0 {
        let mut kept = 0usize;
        // Stable in-place compaction from the head.
        for i in 0..list.len() {
            let hit = removed < max && list[i].as_slice() == element;
            if hit {
                removed += 1;
            } else {
                list.swap(kept, i);
                kept += 1;
            }
        }
        list.truncate(kept);
    } else {
        let len = list.len();
        let mut kept = len;
        for i in (0..len).rev() {
            let hit = removed < max && list[i].as_slice() == element;
            if hit {
                removed += 1;
            } else {
                kept -= 1;
                list.swap(kept, i);
            }
        }
        list.drain(..kept);
    }
    if removed > 0 {
        ctx.remove_if_empty(key);
        ctx.modified(key);
    }
    Ok(len_reply(removed))
}

pub fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    let key = &args[1];
    let Some(list) = ctx.get_list_mut(key)? else {
        return Ok(Reply::Ok);
    };
    match range_of(start, end, list.len()) {
        Some((s, e)) => {
            list.truncate(e + 1);
            list.drain(..s);
        }
        None => list.clear(),
    }
    ctx.remove_if_empty(key);
    ctx.modified(key);
    Ok(Reply::Ok)
}

/// LINSERT key BEFORE|AFTER pivot element: new length, 0 if the key is missing, -1 if the
/// pivot is not found.
pub fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(syntax_error());
    };
    let key = &args[1];
    let Some(list) = ctx.get_list_mut(key)? else {
        return Ok(Reply::Int(0));
    };
    let pivot = &args[3][..];
    let Some(pos) = list.iter().position(|v| v.as_slice() == pivot) else {
        return Ok(Reply::Int(-1));
    };
    list.insert(pos + usize::from(after), CompactBytes::new(&args[4]));
    let len = list.len();
    ctx.modified(key);
    Ok(len_reply(len))
}

// ---------------------------------------------------------------------------- moves

/// Pops from `src` at `from` and pushes onto `dst` at `to`. `Ok(None)` when `src` is
/// missing; WRONGTYPE when either key holds another type (the destination is only checked
/// when the source has an element, as in Redis).
fn move_one(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, Reply> {
    if src == dst {
        let Some(list) = ctx.get_list_mut(src)? else {
            return Ok(None);
        };
        let Some(v) = pop_end(list, from) else {
            return Ok(None);
        };
        let out = v.to_bytes();
        push_end(list, to, v);
        ctx.modified(src);
        return Ok(Some(out));
    }
    match ctx.get_list_mut(src)? {
        Some(l) if !l.is_empty() => {}
        _ => return Ok(None),
    }
    // Type check of the destination before anything changes.
    ctx.get_list_mut(dst)?;
    let Some(v) = ctx.get_list_mut(src)?.and_then(|l| pop_end(l, from)) else {
        return Ok(None);
    };
    let out = v.to_bytes();
    ctx.remove_if_empty(src);
    ctx.modified(src);
    push_end(ctx.list_or_create(dst)?, to, v);
    ctx.modified(dst);
    Ok(Some(out))
}

pub fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    Ok(Reply::opt_bulk(move_one(
        ctx, &args[1], &args[2], from, to,
    )?))
}

pub fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::opt_bulk(move_one(
        ctx,
        &args[1],
        &args[2],
        End::Right,
        End::Left,
    )?))
}

// ---------------------------------------------------------------------------- blocking

/// Inside MULTI (and scripts) the blocking commands never block: they are tried once and
/// answer like a timeout when nothing is there.
fn blocking_once(ctx: &mut Ctx, cmd: Cmd, args: &[Bytes], empty: Reply) -> CmdResult {
    blocking_timeout(cmd, args)?;
    Ok(try_blocking(ctx, cmd, args)?.unwrap_or(empty))
}

pub fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocking_once(ctx, Cmd::BLPop, args, Reply::NilArray)
}

pub fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocking_once(ctx, Cmd::BRPop, args, Reply::NilArray)
}

pub fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocking_once(ctx, Cmd::BLMove, args, Reply::Nil)
}

pub fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    blocking_once(ctx, Cmd::BRPopLPush, args, Reply::Nil)
}

/// Timeouts longer than this are treated as "forever" (Redis would overflow its clock too).
const FOREVER_MS: f64 = 100.0 * 365.0 * 86_400_000.0;

/// Parses a blocking timeout in seconds as Redis 7.0 does: a long double, converted to
/// milliseconds rounding up; 0 (including tiny negatives that round to 0) means forever.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let secs = number::parse_f64(arg)
        .ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    // Redis converts to a signed 64-bit integer: infinities and out-of-range values become
    // LLONG_MIN there, hence "negative" (NaN cannot occur: parse_f64 rejects it).
    if !(0.0..i64::MAX as f64).contains(&ms) {
        return Err(Reply::error("ERR timeout is negative"));
    }
    if ms == 0.0 || ms > FOREVER_MS {
        return Ok(None);
    }
    Ok(Some(Duration::from_millis(ms as u64)))
}

/// The timeout argument of a blocking list command: `None` means wait forever (0).
/// Errors: `ERR timeout is not a float or out of range`, `ERR timeout is negative`. For
/// BLMOVE the LEFT/RIGHT words are checked first (`ERR syntax error`), as Redis does.
pub fn blocking_timeout(cmd: Cmd, args: &[Bytes]) -> Result<Option<Duration>, Reply> {
    let arg = match cmd {
        Cmd::BLMove => {
            End::parse(&args[3])?;
            End::parse(&args[4])?;
            &args[5]
        }
        Cmd::BRPopLPush => &args[3],
        _ => &args[args.len() - 1],
    };
    parse_timeout(arg)
}

/// The keys a blocked client waits on (BLPOP/BRPOP: all keys; BLMOVE/BRPOPLPUSH: the source).
pub fn blocking_keys(cmd: Cmd, args: &[Bytes]) -> Vec<Bytes> {
    match cmd {
        Cmd::BLMove | Cmd::BRPopLPush => vec![args[1].clone()],
        _ => args[1..args.len() - 1].to_vec(),
    }
}

/// Tries a blocking command once without blocking: `Ok(Some(reply))` when it could be served,
/// `Ok(None)` when every key is empty (the session then blocks), `Err` for an error reply.
/// A served command is propagated as its non-blocking form (LPOP, RPOP, LMOVE, RPOPLPUSH).
pub fn try_blocking(ctx: &mut Ctx, cmd: Cmd, args: &[Bytes]) -> Result<Option<Reply>, Reply> {
    match cmd {
        Cmd::BLMove | Cmd::BRPopLPush => {
            let (from, to) = if cmd == Cmd::BLMove {
                (End::parse(&args[3])?, End::parse(&args[4])?)
            } else {
                (End::Right, End::Left)
            };
            let Some(v) = move_one(ctx, &args[1], &args[2], from, to)? else {
                return Ok(None);
            };
            ctx.propagate.push(if cmd == Cmd::BLMove {
                vec![
                    Bytes::from_static(b"LMOVE"),
                    args[1].clone(),
                    args[2].clone(),
                    Bytes::from_static(from.word().as_bytes()),
                    Bytes::from_static(to.word().as_bytes()),
                ]
            } else {
                vec![
                    Bytes::from_static(b"RPOPLPUSH"),
                    args[1].clone(),
                    args[2].clone(),
                ]
            });
            Ok(Some(Reply::Bulk(v)))
        }
        _ => {
            let end = if cmd == Cmd::BRPop {
                End::Right
            } else {
                End::Left
            };
            for key in &args[1..args.len() - 1] {
                let Some(list) = ctx.get_list_mut(key)? else {
                    continue;
                };
                let Some(v) = pop_end(list, end) else {
                    continue;
                };
                ctx.remove_if_empty(key);
                ctx.modified(key);
                let name: &'static [u8] = if end == End::Left { b"LPOP" } else { b"RPOP" };
                ctx.propagate
                    .push(vec![Bytes::from_static(name), key.clone()]);
                return Ok(Some(Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Bulk(v.to_bytes()),
                ])));
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_redis_rules() {
        assert_eq!(range_of(0, -1, 5), Some((0, 4)));
        assert_eq!(range_of(-100, 100, 5), Some((0, 4)));
        assert_eq!(range_of(3, 1, 5), None);
        assert_eq!(range_of(5, 10, 5), None);
        assert_eq!(range_of(-2, -1, 5), Some((3, 4)));
        assert_eq!(range_of(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(range_of(0, -1, 0), None);
    }

    #[test]
    fn indexes_resolve_from_both_ends() {
        assert_eq!(resolve_index(0, 3), Some(0));
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(i64::MIN, 3), None);
    }

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(parse_timeout(b"-0.0001").unwrap(), None);
        assert_eq!(
            parse_timeout(b"0.0001").unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            parse_timeout(b"1.5").unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert!(parse_timeout(b"-1").is_err());
        assert!(parse_timeout(b"inf").is_err());
        assert!(parse_timeout(b"x").is_err());
        assert_eq!(parse_timeout(b"1e15").unwrap(), None);
    }
}

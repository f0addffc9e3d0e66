//! Sorted set commands (ZADD ... ZDIFF) with Redis 7.0's replies, reply types and error texts.
//! Scores are `Reply::Double`; WITHSCORES replies are flat in RESP2 and [member, score] pairs
//! in RESP3, as Redis 7 sends them. ZUNION/ZINTER/ZDIFF accept plain sets (score 1).

use bytes::Bytes;
use std::sync::Arc;
use tandem_protocol::{Protocol, Reply};

use super::args::{self, is, syntax_error};
use super::ctx::wrongtype;
use super::set::{
    distinct_random_indices, parse_cursor, random_count, scan_reply, scan_step, ScanOpts,
    MAX_RANDOM_REPLY,
};
use super::{CmdResult, Ctx};
use crate::db::value::{HashMap, Set};
use crate::db::zset::{LexRange, ScoreRange, ZSet};
use crate::db::{CompactBytes, Entry, Value};

const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";
const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";

fn bulk(m: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(m))
}

/// A (member, score) list as Redis replies it: members only, or with scores (flat in RESP2,
/// pairs in RESP3).
fn scored_reply<'a>(
    proto: Protocol,
    items: impl Iterator<Item = (&'a CompactBytes, f64)>,
    withscores: bool,
) -> Reply {
    if !withscores {
        return Reply::Array(items.map(|(m, _)| bulk(m)).collect());
    }
    match proto {
        Protocol::Resp3 => Reply::Array(
            items
                .map(|(m, s)| Reply::Array(vec![bulk(m), Reply::Double(s)]))
                .collect(),
        ),
        Protocol::Resp2 => {
            let mut out = Vec::new();
            for (m, s) in items {
                out.push(bulk(m));
                out.push(Reply::Double(s));
            }
            Reply::Array(out)
        }
    }
}

// ------------------------------------------------------------------ ZADD / ZINCRBY

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Present, score unchanged (still "processed" for INCR's reply).
    Same(f64),
    Nop,
}

/// Redis's `zsetAdd`: applies one score/member under the flags. `Err` only for a NaN result.
fn zset_add(z: &mut ZSet, score: f64, member: &[u8], f: AddFlags) -> Result<AddOutcome, Reply> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(AddOutcome::Nop);
            }
            let mut score = score;
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return Err(Reply::error(ERR_NAN));
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return Ok(AddOutcome::Nop);
            }
            if score != cur {
                z.insert(member, score);
                Ok(AddOutcome::Updated(score))
            } else {
                Ok(AddOutcome::Same(cur))
            }
        }
        None => {
            if f.xx {
                return Ok(AddOutcome::Nop);
            }
            z.insert(member, score);
            Ok(AddOutcome::Added(score))
        }
    }
}

pub fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut f = AddFlags::default();
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let a = &args[idx];
        if is(a, "NX") {
            f.nx = true;
        } else if is(a, "XX") {
            f.xx = true;
        } else if is(a, "CH") {
            ch = true;
        } else if is(a, "INCR") {
            f.incr = true;
        } else if is(a, "GT") {
            f.gt = true;
        } else if is(a, "LT") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(syntax_error());
    }
    if f.nx && f.xx {
        return Err(Reply::error(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(Reply::error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && elements > 2 {
        return Err(Reply::error(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let pairs = &args[idx..];
    let scores = pairs
        .chunks(2)
        .map(|p| args::float(&p[0]))
        .collect::<Result<Vec<f64>, Reply>>()?;
    let exists = match ctx.lookup(key) {
        None => false,
        Some(Entry {
            value: Value::ZSet(_),
            ..
        }) => true,
        Some(_) => return Err(wrongtype()),
    };
    let nothing = if f.incr { Reply::Nil } else { Reply::Int(0) };
    if !exists && f.xx {
        return Ok(nothing);
    }
    let z = ctx.zset_or_create(key)?;
    let (mut added, mut updated) = (0i64, 0i64);
    let mut last: Option<f64> = None;
    let mut error = None;
    for (pair, &score) in pairs.chunks(2).zip(&scores) {
        match zset_add(z, score, &pair[1], f) {
            Ok(AddOutcome::Added(s)) => {
                added += 1;
                last = Some(s);
            }
            Ok(AddOutcome::Updated(s)) => {
                updated += 1;
                last = Some(s);
            }
            Ok(AddOutcome::Same(s)) => last = Some(s),
            Ok(AddOutcome::Nop) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    ctx.remove_if_empty(key);
    if added + updated > 0 {
        ctx.modified(key);
    }
    if let Some(e) = error {
        return Err(e);
    }
    Ok(if f.incr {
        last.map_or(Reply::Nil, Reply::Double)
    } else if ch {
        Reply::Int(added + updated)
    } else {
        Reply::Int(added)
    })
}

pub fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let incr = args::float(&args[2])?;
    let z = ctx.zset_or_create(key)?;
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    let r = zset_add(z, incr, &args[3], f);
    ctx.remove_if_empty(key);
    match r? {
        AddOutcome::Added(s) | AddOutcome::Updated(s) => {
            ctx.modified(key);
            Ok(Reply::Double(s))
        }
        AddOutcome::Same(s) => Ok(Reply::Double(s)),
        AddOutcome::Nop => Ok(Reply::Nil),
    }
}

// ------------------------------------------------------------------ simple reads / removes

pub fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(z) = ctx.get_zset_mut(key)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for m in &args[2..] {
        if z.remove(m).is_some() {
            removed += 1;
            if z.is_empty() {
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

pub fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(ctx
        .get_zset(&args[1])?
        .and_then(|z| z.score(&args[2]))
        .map_or(Reply::Nil, Reply::Double))
}

pub fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let z = ctx.get_zset(&args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
            .collect(),
    ))
}

pub fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.get_zset(&args[1])?.map_or(0, |z| z.len()) as i64
    ))
}

pub fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3]).ok_or_else(|| Reply::error(ERR_MINMAX_FLOAT))?;
    let n = ctx.get_zset(&args[1])?.map_or(0, |z| {
        let (s, e) = z.score_ranks(&r);
        e - s
    });
    Ok(Reply::Int(n as i64))
}

pub fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3]).ok_or_else(|| Reply::error(ERR_MINMAX_LEX))?;
    let n = ctx.get_zset(&args[1])?.map_or(0, |z| {
        let (s, e) = z.lex_ranks(&r);
        e - s
    });
    Ok(Reply::Int(n as i64))
}

pub fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(ctx
        .get_zset(&args[1])?
        .and_then(|z| z.rank(&args[2]))
        .map_or(Reply::Nil, |r| Reply::Int(r as i64)))
}

pub fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(ctx
        .get_zset(&args[1])?
        .and_then(|z| z.rev_rank(&args[2]))
        .map_or(Reply::Nil, |r| Reply::Int(r as i64)))
}

// ------------------------------------------------------------------ ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// Normalizes Redis rank arguments (negative = from the end) to ascending ranks
/// `start..end` (exclusive), or `None` when the range is empty.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { start + llen } else { start };
    let mut end = if end < 0 { end + llen } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize + 1))
}

/// The selected elements of `z` in reply order.
fn select<'a>(
    z: &'a ZSet,
    spec: &RangeSpec,
    reverse: bool,
) -> Box<dyn Iterator<Item = (&'a CompactBytes, f64)> + 'a> {
    let (s, e) = match spec {
        RangeSpec::Rank(a, b) => {
            let len = z.len();
            // For REV, ranks count from the highest score.
            let (a, b) = (*a, *b);
            match rank_range(a, b, len) {
                None => return Box::new(std::iter::empty()),
                Some((s, e)) if reverse => (len - e, len - s),
                Some(r) => r,
            }
        }
        RangeSpec::Score(r, ..) => z.score_ranks(r),
        RangeSpec::Lex(r, ..) => z.lex_ranks(r),
    };
    let (offset, limit) = match spec {
        RangeSpec::Rank(..) => (0, -1),
        RangeSpec::Score(_, o, l) | RangeSpec::Lex(_, o, l) => (*o, *l),
    };
    if offset < 0 {
        return Box::new(std::iter::empty());
    }
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let take = if limit < 0 {
        usize::MAX
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    };
    if reverse {
        Box::new(z.range_rev(s, e).skip(skip).take(take))
    } else {
        Box::new(z.range(s, e).skip(skip).take(take))
    }
}

enum RangeSpec {
    Rank(i64, i64),
    /// Range, LIMIT offset, LIMIT count.
    Score(ScoreRange, i64, i64),
    Lex(LexRange, i64, i64),
}

/// Redis's `zrangeGenericCommand`: ZRANGE, ZRANGESTORE and the legacy range commands.
/// `src` is the index of the source key; `store` the destination for ZRANGESTORE.
fn zrange_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    src: usize,
    store: Option<&Bytes>,
    mut rtype: RangeType,
    mut dir: Direction,
) -> CmdResult {
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut j = src + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if store.is_none() && is(a, "WITHSCORES") {
            withscores = true;
        } else if is(a, "LIMIT") && left >= 2 {
            let o = args::int(&args[j + 1])?;
            let c = args::int(&args[j + 2])?;
            limit = Some((o, c));
            j += 2;
        } else if dir == Direction::Auto && is(a, "REV") {
            dir = Direction::Reverse;
        } else if rtype == RangeType::Auto && is(a, "BYLEX") {
            rtype = RangeType::Lex;
        } else if rtype == RangeType::Auto && is(a, "BYSCORE") {
            rtype = RangeType::Score;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    if dir == Direction::Auto {
        dir = Direction::Forward;
    }
    if rtype == RangeType::Auto {
        rtype = RangeType::Rank;
    }
    if limit.is_some() && rtype == RangeType::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rtype == RangeType::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let reverse = dir == Direction::Reverse;
    let (mut lo, mut hi) = (&args[src + 1], &args[src + 2]);
    if reverse && rtype != RangeType::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let (offset, count) = limit.unwrap_or((0, -1));
    let spec = match rtype {
        RangeType::Score => RangeSpec::Score(
            ScoreRange::parse(lo, hi).ok_or_else(|| Reply::error(ERR_MINMAX_FLOAT))?,
            offset,
            count,
        ),
        RangeType::Lex => RangeSpec::Lex(
            LexRange::parse(lo, hi).ok_or_else(|| Reply::error(ERR_MINMAX_LEX))?,
            offset,
            count,
        ),
        _ => RangeSpec::Rank(args::int(lo)?, args::int(hi)?),
    };
    let proto = ctx.proto;
    match store {
        None => Ok(match ctx.get_zset(&args[src])? {
            None => Reply::Array(Vec::new()),
            Some(z) => scored_reply(proto, select(z, &spec, reverse), withscores),
        }),
        Some(dest) => {
            let result = match load_zset(ctx, &args[src])? {
                None => ZSet::new(),
                Some(z) => {
                    let mut out = ZSet::new();
                    for (m, s) in select(&z, &spec, reverse) {
                        out.insert(m, s);
                    }
                    out
                }
            };
            Ok(store_zset(ctx, dest, result))
        }
    }
}

/// The sorted set at `key` as a shared handle (cheap `Arc` clone).
fn load_zset(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<ZSet>>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Entry {
            value: Value::ZSet(z),
            ..
        }) => Ok(Some(z.clone())),
        Some(_) => Err(wrongtype()),
    }
}

/// Stores `result` at `dest` (replacing any value and TTL) or deletes `dest` when empty;
/// replies with the new cardinality.
fn store_zset(ctx: &mut Ctx, dest: &[u8], result: ZSet) -> Reply {
    let n = result.len();
    if n == 0 {
        ctx.remove(dest);
    } else {
        ctx.set(dest, Value::ZSet(Arc::new(result)));
    }
    Reply::Int(n as i64)
}

pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Auto, Direction::Auto)
}

pub fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(
        ctx,
        args,
        2,
        Some(&args[1]),
        RangeType::Auto,
        Direction::Auto,
    )
}

pub fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Score, Direction::Forward)
}

pub fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Rank, Direction::Reverse)
}

pub fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Score, Direction::Reverse)
}

pub fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Lex, Direction::Forward)
}

pub fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Lex, Direction::Reverse)
}

// ------------------------------------------------------------------ pops and removals

fn zpop(ctx: &mut Ctx, args: &[Bytes], max: bool) -> CmdResult {
    let key = &args[1];
    if args.len() > 3 {
        return Err(syntax_error());
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match args::int(a) {
            Ok(n) if n >= 0 => Some(n as u64),
            _ => return Err(Reply::error(ERR_POSITIVE)),
        },
    };
    let proto = ctx.proto;
    let Some(z) = ctx.get_zset_mut(key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let n = count.unwrap_or(1).min(z.len() as u64) as usize;
    if n == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let len = z.len();
    let mut popped = if max {
        z.remove_range(len - n, len)
    } else {
        z.remove_range(0, n)
    };
    if max {
        popped.reverse();
    }
    ctx.remove_if_empty(key);
    ctx.modified(key);
    let items = popped.iter().map(|(m, s)| (m, *s));
    Ok(if count.is_none() {
        // A single pop is a flat [member, score] in both protocols.
        scored_reply(Protocol::Resp2, items, true)
    } else {
        scored_reply(proto, items, true)
    })
}

pub fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, true)
}

/// Removes the ascending ranks chosen by `ranks` and replies with the count.
fn zremrange(
    ctx: &mut Ctx,
    key: &[u8],
    ranks: impl FnOnce(&ZSet) -> Option<(usize, usize)>,
) -> CmdResult {
    let Some(z) = ctx.get_zset_mut(key)? else {
        return Ok(Reply::Int(0));
    };
    let Some((s, e)) = ranks(z) else {
        return Ok(Reply::Int(0));
    };
    let removed = z.remove_range(s, e).len();
    if removed > 0 {
        ctx.remove_if_empty(key);
        ctx.modified(key);
    }
    Ok(Reply::Int(removed as i64))
}

pub fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    zremrange(ctx, &args[1], |z| rank_range(start, end, z.len()))
}

pub fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3]).ok_or_else(|| Reply::error(ERR_MINMAX_FLOAT))?;
    zremrange(ctx, &args[1], |z| Some(z.score_ranks(&r)))
}

pub fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3]).ok_or_else(|| Reply::error(ERR_MINMAX_LEX))?;
    zremrange(ctx, &args[1], |z| Some(z.lex_ranks(&r)))
}

// ------------------------------------------------------------------ random and scan

pub fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() == 2 {
        return Ok(match ctx.get_zset(key)? {
            Some(z) if !z.is_empty() => z
                .dict
                .get_index(fastrand::usize(..z.len()))
                .map_or(Reply::Nil, |(m, _)| bulk(m)),
            _ => Reply::Nil,
        });
    }
    let n = random_count(&args[2])?;
    let withscores = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "WITHSCORES") => true,
        Some(_) => return Err(syntax_error()),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let proto = ctx.proto;
    let Some(z) = ctx.get_zset(key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if n == 0 || z.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let len = z.len();
    let at = |i: usize| z.dict.get_index(i).map(|(m, s)| (m, *s));
    if n < 0 {
        let count = n.unsigned_abs();
        if count > MAX_RANDOM_REPLY {
            return Err(Reply::error("ERR value is out of range"));
        }
        let picks: Vec<_> = (0..count)
            .filter_map(|_| at(fastrand::usize(..len)))
            .collect();
        return Ok(scored_reply(proto, picks.into_iter(), withscores));
    }
    if n as u64 >= len as u64 {
        return Ok(scored_reply(
            proto,
            z.dict.iter().map(|(m, s)| (m, *s)),
            withscores,
        ));
    }
    let picks: Vec<_> = distinct_random_indices(len, n as usize)
        .into_iter()
        .filter_map(at)
        .collect();
    Ok(scored_reply(proto, picks.into_iter(), withscores))
}

pub fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let Some(z) = ctx.get_zset(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = ScanOpts::parse(&args[3..])?;
    let (indices, next) = scan_step(z.len(), cursor, opts.count);
    let mut items = Vec::new();
    for (m, s) in indices.filter_map(|i| z.dict.get_index(i)) {
        if opts.matches(m) {
            items.push(bulk(m));
            items.push(Reply::Bulk(Bytes::from(
                tandem_protocol::number::format_f64(*s),
            )));
        }
    }
    Ok(scan_reply(next, items))
}

// ------------------------------------------------------------------ ZUNION / ZINTER / ZDIFF

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(acc: &mut f64, v: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *acc += v;
            // inf + -inf: Redis uses 0.
            if acc.is_nan() {
                *acc = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *acc {
                *acc = v;
            }
        }
        Aggregate::Max => {
            if v > *acc {
                *acc = v;
            }
        }
    }
}

/// An input of ZUNION & co: a sorted set, a plain set (every score 1) or a missing key.
enum Source {
    Missing,
    Z(Arc<ZSet>),
    S(Arc<Set>),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
        }
    }
    fn get(&self, m: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Z(z) => z.score(m),
            Source::S(s) => s.contains(m).then_some(1.0),
        }
    }
    fn for_each(&self, mut f: impl FnMut(&CompactBytes, f64)) {
        match self {
            Source::Missing => {}
            Source::Z(z) => z.dict.iter().for_each(|(m, s)| f(m, *s)),
            Source::S(s) => s.iter().for_each(|m| f(m, 1.0)),
        }
    }
}

fn load_source(ctx: &mut Ctx, key: &[u8]) -> Result<Source, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(Source::Missing),
        Some(Entry {
            value: Value::ZSet(z),
            ..
        }) => Ok(Source::Z(z.clone())),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(Source::S(s.clone())),
        Some(_) => Err(wrongtype()),
    }
}

/// Redis's `zunionInterDiffGenericCommand`. `nk` is the index of numkeys; `dest` the
/// destination key of the STORE variants.
fn zsetop(ctx: &mut Ctx, args: &[Bytes], nk: usize, dest: Option<&Bytes>, op: SetOp) -> CmdResult {
    let n = args::int(&args[nk])?;
    if n < 1 {
        return Err(Reply::error(format!(
            "ERR at least 1 input key is needed for '{}' command",
            args::lower(&args[0])
        )));
    }
    if n as u64 > (args.len() - nk - 1) as u64 {
        return Err(syntax_error());
    }
    let n = n as usize;
    let mut srcs: Vec<(Source, f64)> = Vec::with_capacity(n);
    for key in &args[nk + 1..nk + 1 + n] {
        srcs.push((load_source(ctx, key)?, 1.0));
    }
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut j = nk + 1 + n;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && remaining > n && is(a, "WEIGHTS") {
            for (i, src) in srcs.iter_mut().enumerate() {
                src.1 = tandem_protocol::number::parse_f64(&args[j + 1 + i])
                    .ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
            }
            j += 1 + n;
        } else if op != SetOp::Diff && remaining >= 2 && is(a, "AGGREGATE") {
            let v = &args[j + 1];
            how = if is(v, "SUM") {
                Aggregate::Sum
            } else if is(v, "MIN") {
                Aggregate::Min
            } else if is(v, "MAX") {
                Aggregate::Max
            } else {
                return Err(syntax_error());
            };
            j += 2;
        } else if dest.is_none() && is(a, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else {
            return Err(syntax_error());
        }
    }

    let weighted = |v: f64, w: f64| {
        let s = v * w;
        if s.is_nan() {
            0.0
        } else {
            s
        }
    };
    let mut acc: HashMap<CompactBytes, f64> = HashMap::default();
    match op {
        SetOp::Union => {
            // Smallest first, as Redis does (it only changes float rounding order).
            srcs.sort_by_key(|s| s.0.len());
            for (src, w) in &srcs {
                src.for_each(|m, v| {
                    let s = weighted(v, *w);
                    match acc.get_mut(m.as_slice()) {
                        Some(cur) => aggregate(cur, s, how),
                        None => {
                            acc.insert(m.clone(), s);
                        }
                    }
                });
            }
        }
        SetOp::Inter => {
            srcs.sort_by_key(|s| s.0.len());
            if let Some(((first, w0), rest)) = srcs.split_first() {
                if rest.iter().all(|(s, _)| s.len() > 0) {
                    first.for_each(|m, v| {
                        let mut score = weighted(v, *w0);
                        for (src, w) in rest {
                            match src.get(m) {
                                Some(x) => aggregate(&mut score, x * w, how),
                                None => return,
                            }
                        }
                        acc.insert(m.clone(), score);
                    });
                }
            }
        }
        SetOp::Diff => {
            if let Some(((first, _), rest)) = srcs.split_first() {
                first.for_each(|m, v| {
                    if !rest.iter().any(|(s, _)| s.get(m).is_some()) {
                        acc.insert(m.clone(), v);
                    }
                });
            }
        }
    }
    drop(srcs);
    let mut result = ZSet::new();
    for (m, s) in &acc {
        result.insert(m, *s);
    }
    drop(acc);
    match dest {
        Some(d) => Ok(store_zset(ctx, d, result)),
        None => Ok(scored_reply(ctx.proto, result.iter(), withscores)),
    }
}

pub fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, 2, Some(&args[1]), SetOp::Union)
}

pub fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, 2, Some(&args[1]), SetOp::Inter)
}

pub fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, 2, Some(&args[1]), SetOp::Diff)
}

pub fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, 1, None, SetOp::Union)
}

pub fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, 1, None, SetOp::Inter)
}

pub fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, 1, None, SetOp::Diff)
}

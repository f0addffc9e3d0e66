//! The sorted set: a member -> score dict plus an ordered index by (score, member), kept as a
//! sorted list of sorted blocks with a Fenwick tree over the block sizes. Insert, remove,
//! score update, rank, element-at-rank and range bounds by score or lex are O(log n) plus a
//! memmove inside one block (at most `MAX_BLOCK` elements); no operation scans the whole set.
//! Ordering follows Redis: by score (`-0` equals `0`), ties broken by memcmp of the members.

use std::cmp::Ordering;

use super::value::{CompactBytes, HashMap};

/// A block splits in two when it grows past this many elements.
const MAX_BLOCK: usize = 256;
/// A block smaller than this is merged with a neighbour when their sum fits in `MAX_BLOCK`.
const MIN_BLOCK: usize = MAX_BLOCK / 4;

/// One element of the ordered index.
type Item = (f64, CompactBytes);

/// Redis's score comparison: plain `<`/`>` (scores are never NaN), so `-0 == 0`.
#[inline]
fn score_cmp(a: f64, b: f64) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Orders an index item against the key (score, member).
#[inline]
fn item_cmp(item: &Item, score: f64, member: &[u8]) -> Ordering {
    score_cmp(item.0, score).then_with(|| item.1.as_slice().cmp(member))
}

/// A score interval as ZRANGEBYSCORE takes it (`(` marks an exclusive end).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub minex: bool,
    pub max: f64,
    pub maxex: bool,
}

impl ScoreRange {
    /// Parses `min` and `max` with Redis's rules (`(1.5`, `-inf`, `+inf`); `None` on error.
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }
    #[inline]
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }
    #[inline]
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }
}

fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    let (num, ex) = match b.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (b, false),
    };
    // Redis uses strtod, which reads an empty string as 0.
    if num.is_empty() {
        return Some((0.0, ex));
    }
    tandem_protocol::number::parse_f64(num).map(|v| (v, ex))
}

/// One end of a lex interval: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    /// Parses one range item with Redis's rules; `None` when it is not a valid item.
    pub fn parse(b: &[u8]) -> Option<LexBound> {
        match b.split_first() {
            Some((b'+', [])) => Some(LexBound::PosInf),
            Some((b'-', [])) => Some(LexBound::NegInf),
            Some((b'[', rest)) => Some(LexBound::Incl(rest.to_vec())),
            Some((b'(', rest)) => Some(LexBound::Excl(rest.to_vec())),
            _ => None,
        }
    }
}

/// A lex interval as ZRANGEBYLEX takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(x) => m >= x.as_slice(),
            LexBound::Excl(x) => m > x.as_slice(),
        }
    }
    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(x) => m <= x.as_slice(),
            LexBound::Excl(x) => m < x.as_slice(),
        }
    }
}

/// The ordered index: non-empty sorted blocks, globally sorted, plus a Fenwick tree (1-based)
/// holding the block lengths for rank arithmetic.
#[derive(Clone, Debug, Default)]
struct Index {
    blocks: Vec<Vec<Item>>,
    fen: Vec<usize>,
    len: usize,
}

impl Index {
    fn rebuild_fenwick(&mut self) {
        let n = self.blocks.len();
        self.fen.clear();
        self.fen.resize(n + 1, 0);
        for i in 1..=n {
            self.fen[i] += self.blocks[i - 1].len();
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                let v = self.fen[i];
                self.fen[j] += v;
            }
        }
    }

    fn fen_inc(&mut self, block: usize) {
        let n = self.blocks.len();
        let mut k = block + 1;
        while k <= n {
            self.fen[k] += 1;
            k += k & k.wrapping_neg();
        }
    }

    fn fen_dec(&mut self, block: usize) {
        let n = self.blocks.len();
        let mut k = block + 1;
        while k <= n {
            self.fen[k] -= 1;
            k += k & k.wrapping_neg();
        }
    }

    /// Number of elements in blocks `0..block`.
    fn prefix(&self, block: usize) -> usize {
        let mut k = block.min(self.blocks.len());
        let mut r = 0;
        while k > 0 {
            r += self.fen[k];
            k -= k & k.wrapping_neg();
        }
        r
    }

    /// (block, offset) of the element at `rank`, which must be `< len`.
    fn locate(&self, rank: usize) -> (usize, usize) {
        let n = self.blocks.len();
        let mut pos = 0;
        let mut rem = rank;
        let mut step = if n == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.fen[next] <= rem {
                pos = next;
                rem -= self.fen[next];
            }
            step >>= 1;
        }
        (pos, rem)
    }

    /// How many elements satisfy `pred`, which must hold for a prefix of the order.
    fn partition(&self, pred: impl Fn(&Item) -> bool) -> usize {
        let bi = self.blocks.partition_point(|b| b.last().is_none_or(&pred));
        match self.blocks.get(bi) {
            None => self.len,
            Some(b) => self.prefix(bi) + b.partition_point(&pred),
        }
    }

    /// Block and offset where (score, member) is or would be inserted.
    fn find(&self, score: f64, member: &[u8]) -> (usize, usize) {
        let bi = self.blocks.partition_point(|b| {
            b.last()
                .is_none_or(|it| item_cmp(it, score, member) == Ordering::Less)
        });
        match self.blocks.get(bi) {
            None => (bi, 0),
            Some(b) => (
                bi,
                b.partition_point(|it| item_cmp(it, score, member) == Ordering::Less),
            ),
        }
    }

    fn insert(&mut self, score: f64, member: CompactBytes) {
        if self.blocks.is_empty() {
            self.blocks.push(vec![(score, member)]);
            self.len = 1;
            self.rebuild_fenwick();
            return;
        }
        let (mut bi, mut off) = self.find(score, &member);
        if bi == self.blocks.len() {
            bi -= 1;
            off = self.blocks[bi].len();
        }
        self.blocks[bi].insert(off, (score, member));
        self.len += 1;
        if self.blocks[bi].len() > MAX_BLOCK {
            let half = self.blocks[bi].len() / 2;
            let tail = self.blocks[bi].split_off(half);
            self.blocks.insert(bi + 1, tail);
            self.rebuild_fenwick();
        } else {
            self.fen_inc(bi);
        }
    }

    /// Removes (score, member); false when it is not in the index.
    fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let (bi, off) = self.find(score, member);
        let found = self
            .blocks
            .get(bi)
            .and_then(|b| b.get(off))
            .is_some_and(|it| it.1.as_slice() == member);
        if !found {
            return false;
        }
        self.blocks[bi].remove(off);
        self.len -= 1;
        let blen = self.blocks[bi].len();
        if blen == 0 {
            self.blocks.remove(bi);
            self.rebuild_fenwick();
        } else if blen < MIN_BLOCK && self.try_merge(bi) {
            self.rebuild_fenwick();
        } else {
            self.fen_dec(bi);
        }
        true
    }

    /// Merges small block `bi` into a neighbour when they fit together. The caller rebuilds
    /// the Fenwick tree when this returns true.
    fn try_merge(&mut self, bi: usize) -> bool {
        let blen = self.blocks[bi].len();
        if bi + 1 < self.blocks.len() && blen + self.blocks[bi + 1].len() <= MAX_BLOCK {
            let next = self.blocks.remove(bi + 1);
            self.blocks[bi].extend(next);
            return true;
        }
        if bi > 0 && blen + self.blocks[bi - 1].len() <= MAX_BLOCK {
            let cur = self.blocks.remove(bi);
            self.blocks[bi - 1].extend(cur);
            return true;
        }
        false
    }

    /// Removes ranks `start..end` (clamped), returning them in ascending order.
    fn remove_range(&mut self, start: usize, end: usize) -> Vec<Item> {
        let end = end.min(self.len);
        if start >= end {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(end - start);
        let (mut bi, mut off) = self.locate(start);
        let mut remaining = end - start;
        while remaining > 0 && bi < self.blocks.len() {
            let b = &mut self.blocks[bi];
            let take = remaining.min(b.len() - off);
            out.extend(b.drain(off..off + take));
            remaining -= take;
            bi += 1;
            off = 0;
        }
        self.len -= out.len();
        self.blocks.retain(|b| !b.is_empty());
        // Merge a small block left at the cut with its neighbours.
        let mut i = 0;
        while i + 1 < self.blocks.len() {
            if (self.blocks[i].len() < MIN_BLOCK || self.blocks[i + 1].len() < MIN_BLOCK)
                && self.blocks[i].len() + self.blocks[i + 1].len() <= MAX_BLOCK
            {
                let next = self.blocks.remove(i + 1);
                self.blocks[i].extend(next);
            } else {
                i += 1;
            }
        }
        self.rebuild_fenwick();
        out
    }

    fn get(&self, rank: usize) -> Option<&Item> {
        if rank >= self.len {
            return None;
        }
        let (bi, off) = self.locate(rank);
        self.blocks.get(bi).and_then(|b| b.get(off))
    }

    /// Ascending iterator over ranks `start..end` (clamped).
    fn iter_range(&self, start: usize, end: usize) -> impl Iterator<Item = &Item> + '_ {
        let end = end.min(self.len);
        let n = end.saturating_sub(start);
        let (bi, off) = if n == 0 {
            (self.blocks.len(), 0)
        } else {
            self.locate(start)
        };
        let first: &[Item] = self.blocks.get(bi).map_or(&[], |b| &b[off.min(b.len())..]);
        let rest: &[Vec<Item>] = self.blocks.get(bi + 1..).unwrap_or(&[]);
        first
            .iter()
            .chain(rest.iter().flat_map(|b| b.iter()))
            .take(n)
    }

    /// Descending iterator over ranks `start..end` (clamped): rank `end - 1` first.
    fn iter_range_rev(&self, start: usize, end: usize) -> impl Iterator<Item = &Item> + '_ {
        let end = end.min(self.len);
        let n = end.saturating_sub(start);
        let (bi, off) = if n == 0 { (0, 0) } else { self.locate(end - 1) };
        let first: &[Item] = if n == 0 {
            &[]
        } else {
            self.blocks
                .get(bi)
                .map_or(&[], |b| &b[..(off + 1).min(b.len())])
        };
        let rest: &[Vec<Item>] = if n == 0 {
            &[]
        } else {
            self.blocks.get(..bi).unwrap_or(&[])
        };
        first
            .iter()
            .rev()
            .chain(rest.iter().rev().flat_map(|b| b.iter().rev()))
            .take(n)
    }
}

/// A Redis sorted set.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    /// member -> score. Read it freely (O(1) lookups, random access by index for
    /// ZRANDMEMBER/ZSCAN); change the set only through the methods, which keep the ordered
    /// index in step.
    pub dict: HashMap<CompactBytes, f64>,
    index: Index,
}

impl ZSet {
    pub fn new() -> ZSet {
        ZSet::default()
    }
    pub fn len(&self) -> usize {
        self.dict.len()
    }
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).copied()
    }

    /// Adds `member` or changes its score. Returns the previous score (`None`: added).
    /// A score equal to the current one (`-0` equals `0`) changes nothing; `-0` is stored
    /// as `0`, as Redis's listpack encoding does.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        let score = score + 0.0;
        match self.dict.get_full_mut(member) {
            Some((_, k, cur)) => {
                let old = *cur;
                if old != score {
                    *cur = score;
                    let k = k.clone();
                    self.index.remove(old, member);
                    self.index.insert(score, k);
                }
                Some(old)
            }
            None => {
                let m = CompactBytes::new(member);
                self.dict.insert(m.clone(), score);
                self.index.insert(score, m);
                None
            }
        }
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.dict.swap_remove(member)?;
        self.index.remove(score, member);
        Some(score)
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(
            self.index
                .partition(|it| item_cmp(it, score, member) == Ordering::Less),
        )
    }

    /// 0-based rank of `member` in descending order.
    pub fn rev_rank(&self, member: &[u8]) -> Option<usize> {
        self.rank(member).map(|r| self.len() - 1 - r)
    }

    /// The element at ascending rank `rank`.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&CompactBytes, f64)> {
        self.index.get(rank).map(|(s, m)| (m, *s))
    }

    /// Elements with ascending ranks in `start..end` (clamped), lowest first.
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = (&CompactBytes, f64)> {
        self.index.iter_range(start, end).map(|(s, m)| (m, *s))
    }

    /// Elements with ascending ranks in `start..end` (clamped), highest rank first.
    pub fn range_rev(
        &self,
        start: usize,
        end: usize,
    ) -> impl Iterator<Item = (&CompactBytes, f64)> {
        self.index.iter_range_rev(start, end).map(|(s, m)| (m, *s))
    }

    /// Every element in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (&CompactBytes, f64)> {
        self.range(0, self.len())
    }

    /// The ranks `start..end` of the elements whose score is in `r`.
    pub fn score_ranks(&self, r: &ScoreRange) -> (usize, usize) {
        let start = self.index.partition(|it| !r.gte_min(it.0));
        let end = self.index.partition(|it| r.lte_max(it.0));
        (start, end.max(start))
    }

    /// The ranks `start..end` of the elements whose member is in `r` (meaningful when all
    /// scores are equal, as in Redis).
    pub fn lex_ranks(&self, r: &LexRange) -> (usize, usize) {
        let start = self.index.partition(|it| !r.gte_min(&it.1));
        let end = self.index.partition(|it| r.lte_max(&it.1));
        (start, end.max(start))
    }

    /// Removes the ascending ranks `start..end` (clamped) and returns them, lowest first.
    pub fn remove_range(&mut self, start: usize, end: usize) -> Vec<(CompactBytes, f64)> {
        let removed = self.index.remove_range(start, end);
        let mut out = Vec::with_capacity(removed.len());
        for (s, m) in removed {
            self.dict.swap_remove(m.as_slice());
            out.push((m, s));
        }
        out
    }

    /// Checks every internal invariant (tests only).
    #[cfg(test)]
    fn check(&self) {
        let ix = &self.index;
        assert_eq!(ix.len, self.dict.len());
        assert_eq!(ix.blocks.iter().map(|b| b.len()).sum::<usize>(), ix.len);
        assert!(ix
            .blocks
            .iter()
            .all(|b| !b.is_empty() && b.len() <= MAX_BLOCK));
        let mut prev: Option<&Item> = None;
        for it in ix.blocks.iter().flatten() {
            if let Some(p) = prev {
                assert_eq!(item_cmp(p, it.0, &it.1), Ordering::Less);
            }
            assert_eq!(self.dict.get(it.1.as_slice()), Some(&it.0));
            prev = Some(it);
        }
        for i in 0..=ix.blocks.len() {
            assert_eq!(
                ix.prefix(i),
                ix.blocks[..i].iter().map(|b| b.len()).sum::<usize>()
            );
        }
    }
}

impl PartialEq for ZSet {
    fn eq(&self, o: &ZSet) -> bool {
        self.len() == o.len()
            && self
                .dict
                .iter()
                .all(|(m, s)| o.dict.get(m.as_slice()) == Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The naive model: a sorted Vec of (score, member).
    #[derive(Default)]
    struct Model {
        by_member: BTreeMap<Vec<u8>, f64>,
    }

    impl Model {
        fn sorted(&self) -> Vec<(f64, Vec<u8>)> {
            let mut v: Vec<(f64, Vec<u8>)> = self
                .by_member
                .iter()
                .map(|(m, s)| (*s, m.clone()))
                .collect();
            v.sort_by(|a, b| score_cmp(a.0, b.0).then_with(|| a.1.cmp(&b.1)));
            v
        }
    }

    fn as_vec<'a>(it: impl Iterator<Item = (&'a CompactBytes, f64)>) -> Vec<(f64, Vec<u8>)> {
        it.map(|(m, s)| (s, m.to_vec())).collect()
    }

    #[test]
    fn basic_order_and_rank() {
        let mut z = ZSet::new();
        assert_eq!(z.insert(b"b", 2.0), None);
        assert_eq!(z.insert(b"a", 2.0), None);
        assert_eq!(z.insert(b"c", 1.0), None);
        assert_eq!(z.insert(b"c", 3.0), Some(1.0));
        z.check();
        let v = as_vec(z.iter());
        assert_eq!(
            v,
            vec![
                (2.0, b"a".to_vec()),
                (2.0, b"b".to_vec()),
                (3.0, b"c".to_vec())
            ]
        );
        assert_eq!(z.rank(b"a"), Some(0));
        assert_eq!(z.rank(b"c"), Some(2));
        assert_eq!(z.rev_rank(b"c"), Some(0));
        assert_eq!(z.rank(b"zz"), None);
        assert_eq!(
            z.get_by_rank(1).map(|(m, _)| m.to_vec()),
            Some(b"b".to_vec())
        );
        assert!(z.get_by_rank(3).is_none());
        let r = ScoreRange::parse(b"(2", b"+inf").unwrap();
        assert_eq!(z.score_ranks(&r), (2, 3));
        let r = ScoreRange::parse(b"5", b"1").unwrap();
        let (s, e) = z.score_ranks(&r);
        assert_eq!(s, e);
        assert!(ScoreRange::parse(b"(x", b"1").is_none());
        assert_eq!(LexBound::parse(b"+x"), None);
        assert_eq!(LexBound::parse(b"x"), None);
        assert_eq!(z.remove(b"a"), Some(2.0));
        assert_eq!(z.remove(b"a"), None);
        z.check();
        // -0 and 0 compare equal: no change, the stored score stays.
        z.insert(b"zero", 0.0);
        assert_eq!(z.insert(b"zero", -0.0), Some(0.0));
        assert!(z.score(b"zero").unwrap().is_sign_positive());
    }

    #[test]
    fn randomized_against_model() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..4 {
            let mut z = ZSet::new();
            let mut m = Model::default();
            let universe = [50usize, 700, 3000, 6000][round];
            for step in 0..12_000 {
                let member = format!("m{}", rng.usize(0..universe)).into_bytes();
                match rng.u8(0..10) {
                    0..=4 => {
                        let score = rng.i32(-20..20) as f64 / 2.0;
                        let old = z.insert(&member, score);
                        assert_eq!(old, m.by_member.insert(member.clone(), score));
                    }
                    5..=6 => {
                        assert_eq!(z.remove(&member), m.by_member.remove(&member));
                    }
                    7 => {
                        let sorted = m.sorted();
                        let rank = sorted.iter().position(|(_, mm)| *mm == member);
                        assert_eq!(z.rank(&member), rank);
                        if !sorted.is_empty() {
                            let r = rng.usize(0..sorted.len());
                            let got = z.get_by_rank(r).map(|(mm, s)| (s, mm.to_vec()));
                            assert_eq!(got.as_ref(), sorted.get(r));
                        }
                    }
                    8 => {
                        let sorted = m.sorted();
                        let a = rng.usize(0..sorted.len() + 2);
                        let b = rng.usize(0..sorted.len() + 2);
                        let want: Vec<_> = sorted
                            .iter()
                            .skip(a)
                            .take(b.saturating_sub(a))
                            .cloned()
                            .collect();
                        assert_eq!(as_vec(z.range(a, b)), want);
                        let mut rev = want.clone();
                        rev.reverse();
                        assert_eq!(as_vec(z.range_rev(a, b)), rev);
                        let lo = rng.i32(-22..22) as f64 / 2.0;
                        let hi = rng.i32(-22..22) as f64 / 2.0;
                        let r = ScoreRange {
                            min: lo,
                            minex: rng.bool(),
                            max: hi,
                            maxex: rng.bool(),
                        };
                        let (s, e) = z.score_ranks(&r);
                        let want: Vec<_> = sorted
                            .iter()
                            .filter(|(sc, _)| r.gte_min(*sc) && r.lte_max(*sc))
                            .cloned()
                            .collect();
                        assert_eq!(as_vec(z.range(s, e)), want);
                    }
                    _ => {
                        if step % 50 == 0 {
                            let sorted = m.sorted();
                            let a = rng.usize(0..sorted.len() + 1);
                            let b = (a + rng.usize(0..300)).min(sorted.len());
                            let removed: Vec<_> = z
                                .remove_range(a, b)
                                .into_iter()
                                .map(|(mm, s)| (s, mm.to_vec()))
                                .collect();
                            assert_eq!(removed, sorted[a..b].to_vec());
                            for (_, mm) in &removed {
                                m.by_member.remove(mm);
                            }
                        }
                    }
                }
                if step % 997 == 0 {
                    z.check();
                }
            }
            z.check();
            assert_eq!(as_vec(z.iter()), m.sorted());
        }
    }

    #[test]
    fn lex_ranges() {
        let mut z = ZSet::new();
        for m in ["a", "b", "c", "d", "e"] {
            z.insert(m.as_bytes(), 0.0);
        }
        let r = LexRange::parse(b"[b", b"(d").unwrap();
        assert_eq!(z.lex_ranks(&r), (1, 3));
        let r = LexRange::parse(b"-", b"+").unwrap();
        assert_eq!(z.lex_ranks(&r), (0, 5));
        let r = LexRange::parse(b"+", b"-").unwrap();
        let (s, e) = z.lex_ranks(&r);
        assert_eq!(s, e);
        let r = LexRange::parse(b"(c", b"[c").unwrap();
        let (s, e) = z.lex_ranks(&r);
        assert_eq!(s, e);
    }

    #[test]
    fn large_set_stays_consistent() {
        let mut z = ZSet::new();
        let n = 100_000usize;
        for i in 0..n {
            // Scattered insertion order.
            let k = (i * 7919) % n;
            z.insert(format!("{k:08}").as_bytes(), k as f64);
        }
        z.check();
        assert_eq!(z.rank(b"00023456"), Some(23_456));
        assert_eq!(z.get_by_rank(99_999).map(|(_, s)| s), Some(99_999.0));
        let popped = z.remove_range(0, 10);
        assert_eq!(popped[0].1, 0.0);
        for i in (0..n).step_by(2) {
            z.remove(format!("{i:08}").as_bytes());
        }
        z.check();
        assert_eq!(z.len(), n / 2 - 5);
    }
}

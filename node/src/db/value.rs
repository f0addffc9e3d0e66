//! The values stored in the keyspace: [`CompactBytes`] (binary-safe, inline up to 22 bytes),
//! [`Value`] (one variant per Redis type) and [`Entry`] (value + expiry + LRU/LFU clock).
//! Collections sit behind `Arc` so a snapshot can share them; writers use `Arc::make_mut`.

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::zset::ZSet;

/// The hasher used by every map in the keyspace (fast, seeded per process).
pub type BuildHasher = foldhash::fast::RandomState;
pub type HashMap<K, V> = IndexMap<K, V, BuildHasher>;
pub type HashSet<K> = IndexSet<K, BuildHasher>;

const INLINE: usize = 22;

/// Bytes that live inline when short (keys, small values, collection elements), on the heap
/// otherwise. 24 bytes in size; hashes and compares like `[u8]`.
#[derive(Clone)]
pub enum CompactBytes {
    Inline { len: u8, data: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl CompactBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            CompactBytes::Inline {
                len: b.len() as u8,
                data,
            }
        } else {
            CompactBytes::Heap(b.into())
        }
    }
    pub fn from_vec(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            Self::new(&v)
        } else {
            CompactBytes::Heap(v.into_boxed_slice())
        }
    }
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, data } => &data[..*len as usize],
            CompactBytes::Heap(b) => b,
        }
    }
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A `Bytes` copy, for replies.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_slice())
    }
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl std::ops::Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}
impl AsRef<[u8]> for CompactBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}
impl Borrow<[u8]> for CompactBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}
impl PartialEq for CompactBytes {
    fn eq(&self, o: &Self) -> bool {
        self.as_slice() == o.as_slice()
    }
}
impl Eq for CompactBytes {}
impl Hash for CompactBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}
impl PartialOrd for CompactBytes {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for CompactBytes {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(o.as_slice())
    }
}
impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}
impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> Self {
        CompactBytes::new(b)
    }
}
impl From<&Bytes> for CompactBytes {
    fn from(b: &Bytes) -> Self {
        CompactBytes::new(b)
    }
}
impl From<&str> for CompactBytes {
    fn from(s: &str) -> Self {
        CompactBytes::new(s.as_bytes())
    }
}

pub type List = VecDeque<CompactBytes>;
pub type Hash_ = HashMap<CompactBytes, CompactBytes>;

/// A set: its members, and whether Redis 7.0 would hold it as a hash table for good. Redis
/// starts a set as an intset and converts it once it gets a member that is not an integer
/// or more than `set-max-intset-entries` members, never back: OBJECT ENCODING needs that
/// history, which the members alone do not tell. Derefs to the member map.
#[derive(Clone, Debug, Default)]
pub struct Set {
    members: HashSet<CompactBytes>,
    hashtable: bool,
}

/// Whether Redis can keep `m` in an intset (`string2ll` accepts it).
pub fn is_intset_member(m: &[u8]) -> bool {
    m.len() <= 20 && tandem_protocol::number::parse_i64(m).is_some()
}

impl Set {
    pub fn with_capacity_and_hasher(n: usize, h: BuildHasher) -> Set {
        Set {
            members: HashSet::with_capacity_and_hasher(n, h),
            hashtable: false,
        }
    }

    /// True once the set was converted to a hash table (see [`Set`]).
    #[inline]
    pub fn is_hashtable(&self) -> bool {
        self.hashtable
    }

    /// After adding `added` (SADD, SMOVE): converts for good if a new member is not an
    /// integer or the set outgrew `max_intset`.
    pub fn note_added<'a>(&mut self, added: impl IntoIterator<Item = &'a [u8]>, max_intset: u64) {
        if !self.hashtable {
            self.hashtable = self.members.len() as u64 > max_intset
                || added.into_iter().any(|m| !is_intset_member(m));
        }
    }

    /// For a set built whole (*STORE results, RDB load): a hash table if its members
    /// already need one, as Redis's conversion while building it would decide.
    pub fn note_created(&mut self, max_intset: u64) {
        let members = &self.members;
        self.hashtable =
            members.len() as u64 > max_intset || members.iter().any(|m| !is_intset_member(m));
    }
}

impl std::ops::Deref for Set {
    type Target = HashSet<CompactBytes>;
    fn deref(&self) -> &Self::Target {
        &self.members
    }
}

impl std::ops::DerefMut for Set {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.members
    }
}

impl FromIterator<CompactBytes> for Set {
    fn from_iter<I: IntoIterator<Item = CompactBytes>>(iter: I) -> Set {
        Set {
            members: iter.into_iter().collect(),
            hashtable: false,
        }
    }
}

impl<'a> IntoIterator for &'a Set {
    type Item = &'a CompactBytes;
    type IntoIter = indexmap::set::Iter<'a, CompactBytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

/// A stored value, one variant per Redis type.
#[derive(Clone, Debug)]
pub enum Value {
    Str(CompactBytes),
    List(Arc<List>),
    Hash(Arc<Hash_>),
    Set(Arc<Set>),
    ZSet(Arc<ZSet>),
}

/// Redis's type names, as `TYPE` and `SCAN TYPE` use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
        }
    }
    pub fn parse(s: &[u8]) -> Option<ValueType> {
        let s = std::str::from_utf8(s).ok()?.to_ascii_lowercase();
        Some(match s.as_str() {
            "string" => ValueType::String,
            "list" => ValueType::List,
            "hash" => ValueType::Hash,
            "set" => ValueType::Set,
            "zset" => ValueType::ZSet,
            _ => return None,
        })
    }
}

impl Value {
    pub fn str(b: &[u8]) -> Value {
        Value::Str(CompactBytes::new(b))
    }
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
        }
    }
    /// Element count for collections, 1 for strings (used for lazy-free style accounting).
    pub fn len(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sentinel for "no expiry" in [`Entry::expire_at`].
pub const NO_EXPIRE: u64 = 0;

/// One key's record.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute unix time in milliseconds, or [`NO_EXPIRE`].
    pub expire_at: u64,
    /// LRU clock (seconds) or LFU data (16-bit minutes | 8-bit counter), per maxmemory-policy.
    pub lru: u32,
}

impl Entry {
    pub fn new(value: Value) -> Entry {
        Entry {
            value,
            expire_at: NO_EXPIRE,
            lru: 0,
        }
    }
    pub fn expire(&self) -> Option<u64> {
        (self.expire_at != NO_EXPIRE).then_some(self.expire_at)
    }
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != NO_EXPIRE && self.expire_at <= now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_bytes_is_small_and_exact() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        let short = CompactBytes::new(b"hello");
        let long = CompactBytes::new(&[7u8; 100]);
        assert_eq!(short.as_slice(), b"hello");
        assert_eq!(long.len(), 100);
        let mut m: HashMap<CompactBytes, i32> = HashMap::default();
        m.insert(short.clone(), 1);
        assert_eq!(m.get(&b"hello"[..]), Some(&1));
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn entry_is_compact() {
        // 24-byte inline bytes + tag, expiry and clock: keeps 1M small keys near Redis's memory.
        assert!(std::mem::size_of::<super::Value>() <= 32);
        assert!(std::mem::size_of::<super::Entry>() <= 48);
    }
}

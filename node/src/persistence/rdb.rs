//! The RDB file format, version 10 as Redis 7.0 writes it: [`write_rdb`] serializes a frozen
//! [`Snapshot`] to any `io::Write`, [`load`] parses any `io::Read` into a [`Loaded`] dataset
//! (not yet installed). Pure over byte streams. The reader accepts everything redis-server 7.0
//! writes plus the older compact encodings (ziplist, zipmap, intset, quicklist v1) and LZF
//! strings; every length it reads is checked against the bytes actually present, so a corrupt
//! file yields an [`RdbError`] naming the source, byte offset and problem, never a panic or a
//! huge allocation.

use crc::{Crc, Digest, Table, CRC_64_REDIS};
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use tandem_config::NodeConfig;
use tandem_protocol::number::{format_f64, parse_i64};

use super::snapshot::Snapshot;
use crate::db::value::{Hash_, List, Set};
use crate::db::zset::ZSet;
use crate::db::{shard_of, CompactBytes, Db, Entry, Value, NO_EXPIRE, SHARDS};

/// The RDB version written (Redis 7.0).
pub const RDB_VERSION: u32 = 10;
/// The newest RDB version read (Redis 7.2 writes 11; its new types are handled or refused).
pub const RDB_VERSION_MAX_READ: u32 = 11;

// Value types (Redis's RDB_TYPE_*).
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_MODULE: u8 = 6;
const TYPE_MODULE_2: u8 = 7;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;
const TYPE_SET_LISTPACK: u8 = 20;
const TYPE_STREAM_LISTPACKS_3: u8 = 21;

// Opcodes (Redis's RDB_OPCODE_*).
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

// Length / string encodings.
const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const LEN_ENCVAL: u8 = 3;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

// Quicklist node containers.
const QUICKLIST_PLAIN: u64 = 1;
const QUICKLIST_PACKED: u64 = 2;

// Module value opcodes (the self-describing MODULE_2 / MODULE_AUX encoding).
const MODULE_OP_EOF: u64 = 0;
const MODULE_OP_SINT: u64 = 1;
const MODULE_OP_UINT: u64 = 2;
const MODULE_OP_FLOAT: u64 = 3;
const MODULE_OP_DOUBLE: u64 = 4;
const MODULE_OP_STRING: u64 = 5;

/// A listpack node of a written quicklist holds at most this many bytes (Redis's default
/// `list-max-listpack-size -2`).
const LIST_NODE_BYTES: usize = 8 * 1024;
/// Elements at least this large get a PLAIN quicklist node (Redis's packed threshold, 1 GB).
const LIST_PLAIN_THRESHOLD: usize = 1 << 30;
/// Writer buffer size: bytes are checksummed and handed to the sink in chunks this big.
const WRITE_CHUNK: usize = 64 * 1024;
/// Reader buffer size.
const READ_CHUNK: usize = 64 * 1024;
/// LZF never expands data more than this (3 bytes code at most 264 output bytes).
const LZF_MAX_RATIO: u64 = 100;

/// The CRC-64 variant Redis uses (Jones polynomial, reflected).
static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// Redis's CRC-64 of `data` (what the RDB trailer holds).
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// The thresholds that choose compact encodings on write (Redis's `*-max-listpack-*`).
#[derive(Debug, Clone, Copy)]
pub struct Encodings {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

impl Encodings {
    pub fn from_config(c: &NodeConfig) -> Encodings {
        let u = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Encodings {
            hash_max_listpack_entries: u(c.hash_max_listpack_entries),
            hash_max_listpack_value: u(c.hash_max_listpack_value),
            set_max_intset_entries: u(c.set_max_intset_entries),
            zset_max_listpack_entries: u(c.zset_max_listpack_entries),
            zset_max_listpack_value: u(c.zset_max_listpack_value),
        }
    }
}

impl Default for Encodings {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        Encodings {
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// The aux fields a writer puts in the header besides version, bits, time and memory.
#[derive(Debug, Clone, Default)]
pub struct RdbAux {
    /// `repl-id` / `repl-offset` / `repl-stream-db`: written when `repl_id` is set.
    pub repl_id: Option<String>,
    pub repl_offset: i64,
    pub repl_stream_db: i64,
    /// `aof-base`: 1 when the file is the RDB preamble of an AOF.
    pub aof_base: bool,
    /// `used-mem`.
    pub used_mem: u64,
}

/// The aux fields a reader found.
#[derive(Debug, Clone, Default)]
pub struct LoadedAux {
    pub version: u32,
    pub redis_ver: Option<String>,
    pub ctime: Option<i64>,
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    pub repl_stream_db: Option<i64>,
    pub aof_base: bool,
    /// Every aux field, in file order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One database's keys as read from the file, already split by shard
/// ([`crate::db::shard_of`]), so installing it moves maps instead of re-inserting keys.
#[derive(Default)]
pub struct LoadedDb {
    /// The database number from SELECTDB.
    pub index: usize,
    /// `parts[shard]`.
    pub parts: Vec<Db>,
}

impl LoadedDb {
    fn new(index: usize) -> LoadedDb {
        LoadedDb {
            index,
            parts: (0..SHARDS).map(|_| Db::default()).collect(),
        }
    }
    /// Keys in this database.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every key and entry (in shard order).
    pub fn iter(&self) -> impl Iterator<Item = (&CompactBytes, &Entry)> {
        self.parts.iter().flat_map(|p| p.map.iter())
    }
}

impl fmt::Debug for LoadedDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LoadedDb {{ index: {}, keys: {} }}",
            self.index,
            self.len()
        )
    }
}

/// A dataset read from an RDB stream, not yet installed in the keyspace.
#[derive(Debug, Default)]
pub struct Loaded {
    pub dbs: Vec<LoadedDb>,
    pub aux: LoadedAux,
    /// Keys read (all databases).
    pub keys: u64,
    /// Empty collections skipped (Redis skips them too).
    pub empty_keys_skipped: u64,
    /// Function libraries skipped (Tandem has no scripting).
    pub functions_skipped: u64,
    /// Module aux records skipped.
    pub module_aux_skipped: u64,
    /// Byte offset just past the RDB (after the checksum): where an AOF tail would start.
    pub end_offset: u64,
}

/// What went wrong reading an RDB stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbErrorKind {
    /// The stream could not be read.
    Io,
    /// The stream ended early.
    Truncated,
    /// The bytes are not a valid RDB (bad length, checksum, encoding...).
    Corrupt,
    /// Valid RDB, but holding something Tandem cannot store (streams, module types).
    Unsupported,
}

/// A failed load: source name, byte offset and what was wrong.
#[derive(Debug, Clone)]
pub struct RdbError {
    pub source_name: String,
    pub offset: u64,
    pub kind: RdbErrorKind,
    pub message: String,
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            RdbErrorKind::Io => "cannot read",
            RdbErrorKind::Truncated => "truncated RDB file",
            RdbErrorKind::Corrupt => "bad RDB file",
            RdbErrorKind::Unsupported => "unsupported RDB content in",
        };
        write!(
            f,
            "{what} {} at byte offset {}: {}",
            self.source_name, self.offset, self.message
        )
    }
}

impl std::error::Error for RdbError {}

// ====================================================================== writer

/// Buffered, checksumming sink.
struct Out<W: Write> {
    w: W,
    buf: Vec<u8>,
    crc: Digest<'static, u64, Table<16>>,
    written: u64,
}

impl<W: Write> Out<W> {
    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= WRITE_CHUNK {
            self.flush_buf()?;
        }
        Ok(())
    }
    fn flush_buf(&mut self) -> io::Result<()> {
        self.crc.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Appends an RDB length.
fn put_len(b: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        b.push((LEN_6BIT << 6) | n as u8);
    } else if n < 1 << 14 {
        b.push((LEN_14BIT << 6) | (n >> 8) as u8);
        b.push(n as u8);
    } else if n <= u32::MAX as u64 {
        b.push(LEN_32BIT);
        b.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        b.push(LEN_64BIT);
        b.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an RDB string, integer-encoded where Redis does (a canonical integer that fits in
/// 32 bits).
fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if let Ok(v) = i8::try_from(v) {
                b.push((LEN_ENCVAL << 6) | ENC_INT8);
                b.push(v as u8);
                return;
            } else if let Ok(v) = i16::try_from(v) {
                b.push((LEN_ENCVAL << 6) | ENC_INT16);
                b.extend_from_slice(&v.to_le_bytes());
                return;
            } else if let Ok(v) = i32::try_from(v) {
                b.push((LEN_ENCVAL << 6) | ENC_INT32);
                b.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    put_len(b, s.len() as u64);
    b.extend_from_slice(s);
}

fn put_aux(b: &mut Vec<u8>, key: &str, val: &[u8]) {
    b.push(OP_AUX);
    put_str(b, key.as_bytes());
    put_str(b, val);
}

/// Builds a listpack (Redis 7's compact list encoding) from string elements.
pub(crate) struct ListpackBuilder {
    buf: Vec<u8>,
    count: usize,
}

impl ListpackBuilder {
    pub(crate) fn new() -> ListpackBuilder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 6]);
        ListpackBuilder { buf, count: 0 }
    }

    /// Bytes so far, terminator included.
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub(crate) fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let b = &mut self.buf;
        match (s.len() <= 20).then(|| parse_i64(s)).flatten() {
            Some(v) if (0..=127).contains(&v) => b.push(v as u8),
            Some(v) if (-4096..=4095).contains(&v) => {
                let u = (v as u64) & 0x1fff;
                b.push(0xC0 | (u >> 8) as u8);
                b.push(u as u8);
            }
            Some(v) if i16::try_from(v).is_ok() => {
                b.push(0xF1);
                b.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                b.push(0xF2);
                b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Some(v) if i32::try_from(v).is_ok() => {
                b.push(0xF3);
                b.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Some(v) => {
                b.push(0xF4);
                b.extend_from_slice(&v.to_le_bytes());
            }
            None => {
                let n = s.len();
                if n < 64 {
                    b.push(0x80 | n as u8);
                } else if n < 4096 {
                    b.push(0xE0 | (n >> 8) as u8);
                    b.push(n as u8);
                } else {
                    b.push(0xF0);
                    b.extend_from_slice(&(n as u32).to_le_bytes());
                }
                b.extend_from_slice(s);
            }
        }
        let l = (b.len() - start) as u64;
        // The back-length: the entry's size, 7 bits per byte, readable from its end.
        if l <= 127 {
            b.push(l as u8);
        } else if l < 16383 {
            b.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]);
        } else if l < 2097151 {
            b.extend_from_slice(&[
                (l >> 14) as u8,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ]);
        } else if l < 268435455 {
            b.extend_from_slice(&[
                (l >> 21) as u8,
                ((l >> 14) & 127) as u8 | 128,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ]);
        } else {
            b.extend_from_slice(&[
                (l >> 28) as u8,
                ((l >> 21) & 127) as u8 | 128,
                ((l >> 14) & 127) as u8 | 128,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ]);
        }
        self.count += 1;
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = if self.count < 65535 {
            self.count as u16
        } else {
            65535
        };
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn is_int_member(m: &[u8]) -> Option<i64> {
    if m.len() <= 20 {
        parse_i64(m)
    } else {
        None
    }
}

/// Appends type byte, key and value of one key.
fn put_object(b: &mut Vec<u8>, key: &[u8], v: &Value, enc: &Encodings) {
    match v {
        Value::Str(s) => {
            b.push(TYPE_STRING);
            put_str(b, key);
            put_str(b, s);
        }
        Value::List(l) => {
            b.push(TYPE_LIST_QUICKLIST_2);
            put_str(b, key);
            put_list(b, l);
        }
        Value::Set(s) => {
            let ints: Option<Vec<i64>> = (s.len() <= enc.set_max_intset_entries)
                .then(|| s.iter().map(|m| is_int_member(m)).collect())
                .flatten();
            match ints {
                Some(mut ints) => {
                    b.push(TYPE_SET_INTSET);
                    put_str(b, key);
                    ints.sort_unstable();
                    let width = ints
                        .iter()
                        .map(|&v| {
                            if i16::try_from(v).is_ok() {
                                2
                            } else if i32::try_from(v).is_ok() {
                                4
                            } else {
                                8
                            }
                        })
                        .max()
                        .unwrap_or(2);
                    let mut blob = Vec::with_capacity(8 + ints.len() * width);
                    blob.extend_from_slice(&(width as u32).to_le_bytes());
                    blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
                    for v in ints {
                        blob.extend_from_slice(&v.to_le_bytes()[..width]);
                    }
                    put_len(b, blob.len() as u64);
                    b.extend_from_slice(&blob);
                }
                None => {
                    b.push(TYPE_SET);
                    put_str(b, key);
                    put_len(b, s.len() as u64);
                    for m in s.iter() {
                        put_str(b, m);
                    }
                }
            }
        }
        Value::Hash(h) => {
            let small = h.len() <= enc.hash_max_listpack_entries
                && h.iter().all(|(f, v)| {
                    f.len() <= enc.hash_max_listpack_value && v.len() <= enc.hash_max_listpack_value
                });
            if small {
                b.push(TYPE_HASH_LISTPACK);
                put_str(b, key);
                let mut lp = ListpackBuilder::new();
                for (f, v) in h.iter() {
                    lp.push(f);
                    lp.push(v);
                }
                put_str_raw(b, &lp.finish());
            } else {
                b.push(TYPE_HASH);
                put_str(b, key);
                put_len(b, h.len() as u64);
                for (f, v) in h.iter() {
                    put_str(b, f);
                    put_str(b, v);
                }
            }
        }
        Value::ZSet(z) => {
            let small = z.len() <= enc.zset_max_listpack_entries
                && z.dict
                    .keys()
                    .all(|m| m.len() <= enc.zset_max_listpack_value);
            if small {
                b.push(TYPE_ZSET_LISTPACK);
                put_str(b, key);
                let mut lp = ListpackBuilder::new();
                for (m, s) in z.iter() {
                    lp.push(m);
                    lp.push(format_f64(s).as_bytes());
                }
                put_str_raw(b, &lp.finish());
            } else {
                b.push(TYPE_ZSET_2);
                put_str(b, key);
                put_len(b, z.len() as u64);
                // Highest score first, as Redis writes it (loading then appends in order).
                let items: Vec<(&CompactBytes, f64)> = z.iter().collect();
                for (m, s) in items.into_iter().rev() {
                    put_str(b, m);
                    b.extend_from_slice(&s.to_le_bytes());
                }
            }
        }
    }
}

/// A length-prefixed blob, never integer-encoded (listpacks, intsets).
fn put_str_raw(b: &mut Vec<u8>, s: &[u8]) {
    put_len(b, s.len() as u64);
    b.extend_from_slice(s);
}

/// A list as QUICKLIST_2: listpack nodes of at most [`LIST_NODE_BYTES`], huge elements alone
/// in PLAIN nodes.
fn put_list(b: &mut Vec<u8>, l: &List) {
    let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut lp = ListpackBuilder::new();
    for e in l.iter() {
        if e.len() >= LIST_PLAIN_THRESHOLD {
            if lp.count > 0 {
                nodes.push((
                    QUICKLIST_PACKED,
                    std::mem::replace(&mut lp, ListpackBuilder::new()).finish(),
                ));
            }
            nodes.push((QUICKLIST_PLAIN, e.to_vec()));
            continue;
        }
        if lp.count > 0 && lp.bytes() + e.len() + 11 > LIST_NODE_BYTES {
            nodes.push((
                QUICKLIST_PACKED,
                std::mem::replace(&mut lp, ListpackBuilder::new()).finish(),
            ));
        }
        lp.push(e);
    }
    if lp.count > 0 {
        nodes.push((QUICKLIST_PACKED, lp.finish()));
    }
    put_len(b, nodes.len() as u64);
    for (container, blob) in nodes {
        put_len(b, container);
        put_str_raw(b, &blob);
    }
}

/// Writes `snap` as an RDB version 10 file to `out`; returns the bytes written. The stream
/// ends with the EOF opcode and the CRC-64 of everything before it.
pub fn write_rdb<W: Write>(out: W, snap: &Snapshot, aux: &RdbAux) -> io::Result<u64> {
    let dbs = snap.dbs.iter().enumerate().map(|(i, d)| {
        (
            i,
            d.keys,
            d.expires,
            d.shards.iter().map(|m| &**m).collect::<Vec<_>>(),
        )
    });
    write_impl(out, dbs, snap, aux)
}

/// [`write_rdb`] consuming the snapshot: each frozen map is released as soon as it is
/// written, so the live map it was shared with needs no copy from then on (BGSAVE).
pub fn write_rdb_owned<W: Write>(out: W, mut snap: Snapshot, aux: &RdbAux) -> io::Result<u64> {
    let dbs: Vec<_> = std::mem::take(&mut snap.dbs)
        .into_iter()
        .enumerate()
        .map(|(i, d)| (i, d.keys, d.expires, d.shards))
        .collect();
    write_impl(out, dbs.into_iter(), &snap, aux)
}

fn write_impl<W: Write, M: std::ops::Deref<Target = crate::db::KeyMap>>(
    out: W,
    dbs: impl Iterator<Item = (usize, usize, usize, Vec<M>)>,
    snap: &Snapshot,
    aux: &RdbAux,
) -> io::Result<u64> {
    let mut o = Out {
        w: out,
        buf: Vec::with_capacity(WRITE_CHUNK * 2),
        crc: CRC64.digest(),
        written: 0,
    };
    o.buf
        .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    put_aux(&mut o.buf, "redis-ver", crate::REDIS_VERSION.as_bytes());
    put_aux(&mut o.buf, "redis-bits", b"64");
    let ctime = (snap.taken_at_ms / 1000).to_string();
    put_aux(&mut o.buf, "ctime", ctime.as_bytes());
    put_aux(&mut o.buf, "used-mem", aux.used_mem.to_string().as_bytes());
    if let Some(id) = &aux.repl_id {
        put_aux(
            &mut o.buf,
            "repl-stream-db",
            aux.repl_stream_db.to_string().as_bytes(),
        );
        put_aux(&mut o.buf, "repl-id", id.as_bytes());
        put_aux(
            &mut o.buf,
            "repl-offset",
            aux.repl_offset.to_string().as_bytes(),
        );
    }
    put_aux(
        &mut o.buf,
        "aof-base",
        if aux.aof_base { b"1" } else { b"0" },
    );
    for (dbi, keys, expires, maps) in dbs {
        if keys == 0 {
            continue;
        }
        o.buf.push(OP_SELECTDB);
        put_len(&mut o.buf, dbi as u64);
        o.buf.push(OP_RESIZEDB);
        put_len(&mut o.buf, keys as u64);
        put_len(&mut o.buf, expires as u64);
        for map in maps {
            for (k, e) in map.iter() {
                if e.expire_at != NO_EXPIRE {
                    o.buf.push(OP_EXPIRETIME_MS);
                    o.buf.extend_from_slice(&e.expire_at.to_le_bytes());
                }
                put_object(&mut o.buf, k, &e.value, &snap.encodings);
                o.flush_if_full()?;
                if snap.key_delay_us > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(snap.key_delay_us));
                }
            }
            // `map` is released here (for an owned snapshot: the live map is unshared).
        }
    }
    o.buf.push(OP_EOF);
    o.crc.update(&o.buf);
    let crc = std::mem::replace(&mut o.crc, CRC64.digest()).finalize();
    o.w.write_all(&o.buf)?;
    o.written += o.buf.len() as u64;
    o.w.write_all(&crc.to_le_bytes())?;
    o.written += 8;
    o.w.flush()?;
    Ok(o.written)
}

// ====================================================================== reader

type Res<T> = Result<T, RdbError>;

/// Buffered, checksumming, offset-tracking source.
struct In<R: Read> {
    r: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Bytes of `buf` before this index are already in the checksum.
    crc_from: usize,
    crc: Digest<'static, u64, Table<16>>,
    name: String,
    /// A reusable buffer for strings.
    scratch: Vec<u8>,
}

impl<R: Read> In<R> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn err(&self, at: u64, kind: RdbErrorKind, message: impl Into<String>) -> RdbError {
        RdbError {
            source_name: self.name.clone(),
            offset: at,
            kind,
            message: message.into(),
        }
    }

    fn corrupt(&self, at: u64, message: impl Into<String>) -> RdbError {
        self.err(at, RdbErrorKind::Corrupt, message)
    }

    /// Refills the buffer (only when it is used up). False at end of stream.
    fn fill(&mut self) -> Res<bool> {
        debug_assert!(self.pos == self.end);
        self.crc.update(&self.buf[self.crc_from..self.end]);
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        self.crc_from = 0;
        loop {
            match self.r.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err(self.base, RdbErrorKind::Io, e.to_string())),
            }
        }
    }

    fn truncated(&self, what: &str) -> RdbError {
        self.err(
            self.offset(),
            RdbErrorKind::Truncated,
            format!("unexpected end of file reading {what}"),
        )
    }

    #[inline]
    fn byte(&mut self, what: &str) -> Res<u8> {
        if self.pos == self.end && !self.fill()? {
            return Err(self.truncated(what));
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn exact(&mut self, out: &mut [u8], what: &str) -> Res<()> {
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated(what));
            }
            let n = (out.len() - done).min(self.end - self.pos);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// Appends `n` bytes to `out`, growing it only as data actually arrives.
    fn take(&mut self, n: u64, out: &mut Vec<u8>, what: &str) -> Res<()> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated(what));
            }
            let k = (left.min((self.end - self.pos) as u64)) as usize;
            out.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            left -= k as u64;
        }
        Ok(())
    }

    fn u32_le(&mut self, what: &str) -> Res<u32> {
        let mut b = [0; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64_le(&mut self, what: &str) -> Res<u64> {
        let mut b = [0; 8];
        self.exact(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    /// An RDB length; `Err` if it is a string encoding marker.
    fn len(&mut self, what: &str) -> Res<u64> {
        let at = self.offset();
        match self.len_or_enc(what)? {
            (n, false) => Ok(n),
            (_, true) => Err(self.corrupt(
                at,
                format!("expected a length for {what}, found a string encoding"),
            )),
        }
    }

    /// (value, is_encoding): an RDB length, or the string encoding type after `11`.
    fn len_or_enc(&mut self, what: &str) -> Res<(u64, bool)> {
        let at = self.offset();
        let b = self.byte(what)?;
        match b >> 6 {
            0 => Ok(((b & 0x3f) as u64, false)),
            1 => {
                let b2 = self.byte(what)?;
                Ok(((((b & 0x3f) as u64) << 8) | b2 as u64, false))
            }
            3 => Ok(((b & 0x3f) as u64, true)),
            _ => match b {
                LEN_32BIT => {
                    let mut x = [0; 4];
                    self.exact(&mut x, what)?;
                    Ok((u32::from_be_bytes(x) as u64, false))
                }
                LEN_64BIT => {
                    let mut x = [0; 8];
                    self.exact(&mut x, what)?;
                    Ok((u64::from_be_bytes(x), false))
                }
                _ => Err(self.corrupt(at, format!("unknown length encoding 0x{b:02x} for {what}"))),
            },
        }
    }

    /// Reads an RDB string into `self.scratch` (cleared first).
    fn string(&mut self, what: &str) -> Res<()> {
        self.scratch.clear();
        let mut s = std::mem::take(&mut self.scratch);
        let r = self.string_into(&mut s, what);
        self.scratch = s;
        r
    }

    fn string_into(&mut self, out: &mut Vec<u8>, what: &str) -> Res<()> {
        let at = self.offset();
        let (n, enc) = self.len_or_enc(what)?;
        if !enc {
            return self.take(n, out, what);
        }
        let v: i64 = match n as u8 {
            ENC_INT8 => self.byte(what)? as i8 as i64,
            ENC_INT16 => {
                let mut b = [0; 2];
                self.exact(&mut b, what)?;
                i16::from_le_bytes(b) as i64
            }
            ENC_INT32 => {
                let mut b = [0; 4];
                self.exact(&mut b, what)?;
                i32::from_le_bytes(b) as i64
            }
            ENC_LZF => {
                let clen = self.len(what)?;
                let ulen = self.len(what)?;
                if clen == 0 || ulen > clen.saturating_mul(LZF_MAX_RATIO) + 64 {
                    return Err(self.corrupt(
                        at,
                        format!("invalid LZF lengths for {what} (compressed {clen}, plain {ulen})"),
                    ));
                }
                let mut c = Vec::new();
                self.take(clen, &mut c, what)?;
                let plain = lzf::decompress(&c, ulen as usize)
                    .map_err(|e| self.corrupt(at, format!("invalid LZF data for {what}: {e:?}")))?;
                if plain.len() as u64 != ulen {
                    return Err(self.corrupt(
                        at,
                        format!(
                            "LZF data of {what} decompresses to {} bytes, expected {ulen}",
                            plain.len()
                        ),
                    ));
                }
                out.extend_from_slice(&plain);
                return Ok(());
            }
            other => {
                return Err(self.corrupt(at, format!("unknown string encoding {other} for {what}")))
            }
        };
        out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }

    fn owned_string(&mut self, what: &str) -> Res<Vec<u8>> {
        let mut v = Vec::new();
        self.string_into(&mut v, what)?;
        Ok(v)
    }

    fn compact_string(&mut self, what: &str) -> Res<CompactBytes> {
        self.string(what)?;
        Ok(CompactBytes::new(&self.scratch))
    }

    /// A score in the old ZSET encoding: length byte then ASCII (253 NaN, 254 +inf, 255 -inf).
    fn string_double(&mut self, what: &str) -> Res<f64> {
        let at = self.offset();
        let n = self.byte(what)?;
        match n {
            253 => Err(self.corrupt(at, format!("NaN score in {what}"))),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let mut b = vec![0; n as usize];
                self.exact(&mut b, what)?;
                parse_score(&b).ok_or_else(|| self.corrupt(at, format!("invalid score in {what}")))
            }
        }
    }

    fn binary_double(&mut self, what: &str) -> Res<f64> {
        let at = self.offset();
        let v = f64::from_le_bytes(self.u64_le(what)?.to_le_bytes());
        if v.is_nan() {
            return Err(self.corrupt(at, format!("NaN score in {what}")));
        }
        Ok(v)
    }

    /// Skips one self-describing module value (MODULE_AUX / MODULE_2 payload).
    fn skip_module_value(&mut self, what: &str) -> Res<()> {
        loop {
            let at = self.offset();
            match self.len(what)? {
                MODULE_OP_EOF => return Ok(()),
                MODULE_OP_SINT | MODULE_OP_UINT => {
                    self.len(what)?;
                }
                MODULE_OP_FLOAT => {
                    self.u32_le(what)?;
                }
                MODULE_OP_DOUBLE => {
                    self.u64_le(what)?;
                }
                MODULE_OP_STRING => self.string(what)?,
                op => return Err(self.corrupt(at, format!("unknown module opcode {op} in {what}"))),
            }
        }
    }

    /// Updates the checksum up to the current position and returns it.
    fn checksum_here(&mut self) -> u64 {
        self.crc.update(&self.buf[self.crc_from..self.pos]);
        self.crc_from = self.pos;
        std::mem::replace(&mut self.crc, CRC64.digest()).finalize()
    }
}

/// Parses a score as Redis's `strtod` would (for the string forms).
fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// One element of a listpack or ziplist.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Item<'_> {
    fn to_compact(self) -> CompactBytes {
        match self {
            Item::Str(s) => CompactBytes::new(s),
            Item::Int(v) => CompactBytes::new(v.to_string().as_bytes()),
        }
    }
    fn score(self) -> Option<f64> {
        match self {
            Item::Str(s) => parse_score(s),
            Item::Int(v) => Some(v as f64),
        }
    }
}

fn slice(b: &[u8], at: usize, n: usize) -> Result<&[u8], String> {
    at.checked_add(n)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| format!("entry at {at} runs past the end ({} bytes)", b.len()))
}

fn int_le(b: &[u8]) -> i64 {
    let mut x = [0u8; 8];
    x[..b.len()].copy_from_slice(b);
    let v = i64::from_le_bytes(x);
    let shift = 64 - 8 * b.len() as u32;
    (v << shift) >> shift
}

/// Walks a listpack, calling `f` on each element. Errors carry the byte offset in the blob.
pub(crate) fn listpack_each(
    b: &[u8],
    mut f: impl FnMut(Item<'_>) -> Result<(), String>,
) -> Result<usize, (usize, String)> {
    if b.len() < 7 {
        return Err((0, format!("listpack of {} bytes is too short", b.len())));
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() {
        return Err((
            0,
            format!("listpack header says {total} bytes, blob has {}", b.len()),
        ));
    }
    if b[b.len() - 1] != 0xFF {
        return Err((b.len() - 1, "listpack does not end with 0xFF".into()));
    }
    let declared = u16::from_le_bytes([b[4], b[5]]) as usize;
    let body = &b[..b.len() - 1];
    let mut p = 6;
    let mut count = 0usize;
    while p < body.len() {
        let start = p;
        let e = body[p];
        let item = if e & 0x80 == 0 {
            p += 1;
            Item::Int((e & 0x7f) as i64)
        } else if e & 0xC0 == 0x80 {
            let n = (e & 0x3f) as usize;
            let s = slice(body, p + 1, n).map_err(|m| (start, m))?;
            p += 1 + n;
            Item::Str(s)
        } else if e & 0xE0 == 0xC0 {
            let x = slice(body, p + 1, 1).map_err(|m| (start, m))?;
            let u = (((e & 0x1f) as u64) << 8) | x[0] as u64;
            p += 2;
            Item::Int(if u >= 1 << 12 {
                u as i64 - (1 << 13)
            } else {
                u as i64
            })
        } else if e & 0xF0 == 0xE0 {
            let x = slice(body, p + 1, 1).map_err(|m| (start, m))?;
            let n = (((e & 0x0f) as usize) << 8) | x[0] as usize;
            let s = slice(body, p + 2, n).map_err(|m| (start, m))?;
            p += 2 + n;
            Item::Str(s)
        } else if e == 0xF0 {
            let x = slice(body, p + 1, 4).map_err(|m| (start, m))?;
            let n = u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize;
            let s = slice(body, p + 5, n).map_err(|m| (start, m))?;
            p += 5 + n;
            Item::Str(s)
        } else {
            let width = match e {
                0xF1 => 2,
                0xF2 => 3,
                0xF3 => 4,
                0xF4 => 8,
                _ => return Err((start, format!("invalid listpack entry encoding 0x{e:02x}"))),
            };
            let x = slice(body, p + 1, width).map_err(|m| (start, m))?;
            p += 1 + width;
            Item::Int(int_le(x))
        };
        p = skip_backlen(body, start, p)?;
        f(item).map_err(|m| (start, m))?;
        count += 1;
    }
    if declared != 65535 && declared != count {
        return Err((
            4,
            format!("listpack header says {declared} elements, found {count}"),
        ));
    }
    Ok(count)
}

fn skip_backlen(body: &[u8], start: usize, p: usize) -> Result<usize, (usize, String)> {
    let l = (p - start) as u64;
    let n = if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    };
    if p + n > body.len() {
        return Err((start, "listpack entry back-length runs past the end".into()));
    }
    Ok(p + n)
}

/// Walks a ziplist (the pre-7.0 compact encoding), calling `f` on each element.
pub(crate) fn ziplist_each(
    b: &[u8],
    mut f: impl FnMut(Item<'_>) -> Result<(), String>,
) -> Result<usize, (usize, String)> {
    if b.len() < 11 {
        return Err((0, format!("ziplist of {} bytes is too short", b.len())));
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() {
        return Err((
            0,
            format!("ziplist header says {total} bytes, blob has {}", b.len()),
        ));
    }
    if b[b.len() - 1] != 0xFF {
        return Err((b.len() - 1, "ziplist does not end with 0xFF".into()));
    }
    let declared = u16::from_le_bytes([b[8], b[9]]) as usize;
    let body = &b[..b.len() - 1];
    let mut p = 10;
    let mut count = 0usize;
    while p < body.len() {
        let start = p;
        // prevlen: 1 byte, or 0xFE + 4 bytes.
        p += if body[p] == 0xFE { 5 } else { 1 };
        let e = *body
            .get(p)
            .ok_or_else(|| (start, "ziplist entry header runs past the end".to_string()))?;
        let item = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                let s = slice(body, p + 1, n).map_err(|m| (start, m))?;
                p += 1 + n;
                Item::Str(s)
            }
            1 => {
                let x = slice(body, p + 1, 1).map_err(|m| (start, m))?;
                let n = (((e & 0x3f) as usize) << 8) | x[0] as usize;
                let s = slice(body, p + 2, n).map_err(|m| (start, m))?;
                p += 2 + n;
                Item::Str(s)
            }
            2 => {
                let x = slice(body, p + 1, 4).map_err(|m| (start, m))?;
                let n = u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize;
                let s = slice(body, p + 5, n).map_err(|m| (start, m))?;
                p += 5 + n;
                Item::Str(s)
            }
            _ => {
                let width = match e {
                    0xC0 => 2,
                    0xD0 => 4,
                    0xE0 => 8,
                    0xF0 => 3,
                    0xFE => 1,
                    0xF1..=0xFD => 0,
                    _ => return Err((start, format!("invalid ziplist entry encoding 0x{e:02x}"))),
                };
                if width == 0 {
                    p += 1;
                    Item::Int((e & 0x0f) as i64 - 1)
                } else {
                    let x = slice(body, p + 1, width).map_err(|m| (start, m))?;
                    p += 1 + width;
                    Item::Int(int_le(x))
                }
            }
        };
        f(item).map_err(|m| (start, m))?;
        count += 1;
    }
    if declared != 65535 && declared != count {
        return Err((
            8,
            format!("ziplist header says {declared} elements, found {count}"),
        ));
    }
    Ok(count)
}

/// Decodes an intset blob into its integers.
pub(crate) fn intset_each(
    b: &[u8],
    mut f: impl FnMut(i64) -> Result<(), String>,
) -> Result<usize, (usize, String)> {
    if b.len() < 8 {
        return Err((0, format!("intset of {} bytes is too short", b.len())));
    }
    let width = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err((0, format!("invalid intset encoding {width}")));
    }
    let n = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if (b.len() - 8) != n.saturating_mul(width) {
        return Err((
            4,
            format!(
                "intset of {n} x {width}-byte integers has {} bytes",
                b.len() - 8
            ),
        ));
    }
    for c in b[8..].chunks_exact(width) {
        f(int_le(c)).map_err(|m| (8, m))?;
    }
    Ok(n)
}

/// Walks a zipmap (the oldest hash encoding): (field, value) pairs.
pub(crate) fn zipmap_each(
    b: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), String>,
) -> Result<usize, (usize, String)> {
    let mut p = 1;
    let mut count = 0;
    let zlen = |p: &mut usize| -> Result<usize, (usize, String)> {
        let at = *p;
        let l = *b
            .get(at)
            .ok_or((at, "zipmap runs past the end".to_string()))?;
        match l {
            0..=253 => {
                *p += 1;
                Ok(l as usize)
            }
            254 => {
                let x = slice(b, at + 1, 4).map_err(|m| (at, m))?;
                *p += 5;
                Ok(u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
            }
            _ => Err((at, "unexpected zipmap end".into())),
        }
    };
    loop {
        let at = p;
        match b.get(p) {
            None => return Err((p, "zipmap does not end with 0xFF".into())),
            Some(255) => {
                if p + 1 != b.len() {
                    return Err((p, "bytes after the zipmap end".into()));
                }
                return Ok(count);
            }
            Some(_) => {}
        }
        let kl = zlen(&mut p)?;
        let k = slice(b, p, kl).map_err(|m| (at, m))?;
        p += kl;
        let vl = zlen(&mut p)?;
        let free = *b
            .get(p)
            .ok_or((p, "zipmap runs past the end".to_string()))? as usize;
        p += 1;
        let v = slice(b, p, vl).map_err(|m| (at, m))?;
        p += vl + free;
        f(k, v).map_err(|m| (at, m))?;
        count += 1;
    }
}

/// Reads an RDB stream into a dataset that is not yet installed. `source_name` (a path, or
/// "the master's payload") is used in errors.
pub fn load<R: Read>(r: R, source_name: &str) -> Result<Loaded, RdbError> {
    let mut inp = In {
        r,
        buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        pos: 0,
        end: 0,
        base: 0,
        crc_from: 0,
        crc: CRC64.digest(),
        name: source_name.to_string(),
        scratch: Vec::with_capacity(64),
    };
    let mut magic = [0u8; 9];
    inp.exact(&mut magic, "the file header")?;
    if &magic[..5] != b"REDIS" {
        return Err(inp.corrupt(0, "wrong signature (not an RDB file)"));
    }
    let version: u32 = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| inp.corrupt(5, "invalid RDB version"))?;
    if version == 0 || version > RDB_VERSION_MAX_READ {
        return Err(inp.err(
            5,
            RdbErrorKind::Unsupported,
            format!("can't handle RDB format version {version}"),
        ));
    }
    let mut out = Loaded {
        aux: LoadedAux {
            version,
            ..LoadedAux::default()
        },
        ..Loaded::default()
    };
    let mut cur: Option<usize> = None; // index into out.dbs
    let mut expire_at = NO_EXPIRE;
    loop {
        let at = inp.offset();
        let op = inp.byte("an opcode")?;
        match op {
            OP_EOF => break,
            OP_SELECTDB => {
                let id = inp.len("the SELECTDB database id")?;
                let id = usize::try_from(id)
                    .ok()
                    .filter(|&i| i < 1 << 20)
                    .ok_or_else(|| inp.corrupt(at, format!("invalid database id {id}")))?;
                cur = Some(match out.dbs.iter().position(|d| d.index == id) {
                    Some(i) => i,
                    None => {
                        out.dbs.push(LoadedDb::new(id));
                        out.dbs.len() - 1
                    }
                });
                continue;
            }
            OP_RESIZEDB => {
                let n = inp.len("the RESIZEDB size")?;
                inp.len("the RESIZEDB expires size")?;
                if let Some(i) = cur {
                    // A hint only (and maybe corrupt): reserve a bounded amount.
                    let per_part = (n.min(1 << 18) as usize) / SHARDS;
                    for p in out.dbs[i].parts.iter_mut() {
                        p.map_mut().reserve_exact(per_part);
                    }
                }
                continue;
            }
            OP_AUX => {
                let k = inp.owned_string("an aux field name")?;
                let v = inp.owned_string("an aux field value")?;
                let text = String::from_utf8_lossy(&v).into_owned();
                match &k[..] {
                    b"redis-ver" => out.aux.redis_ver = Some(text),
                    b"ctime" => out.aux.ctime = text.parse().ok(),
                    b"repl-id" => out.aux.repl_id = Some(text),
                    b"repl-offset" => out.aux.repl_offset = text.parse().ok(),
                    b"repl-stream-db" => out.aux.repl_stream_db = text.parse().ok(),
                    b"aof-base" => out.aux.aof_base = text == "1",
                    _ => {}
                }
                out.aux.fields.push((k, v));
                continue;
            }
            OP_MODULE_AUX => {
                inp.len("a module id")?;
                let when_op = inp.len("a module aux when-opcode")?;
                if when_op != MODULE_OP_UINT {
                    return Err(inp.corrupt(at, "invalid module aux when-opcode"));
                }
                inp.len("a module aux when")?;
                inp.skip_module_value("module aux data")?;
                out.module_aux_skipped += 1;
                tracing::warn!(source = %inp.name, offset = at, "skipping module aux data (Tandem has no modules)");
                continue;
            }
            OP_FUNCTION2 => {
                inp.string("a function library")?;
                out.functions_skipped += 1;
                tracing::warn!(source = %inp.name, offset = at, "skipping a function library (Tandem has no scripting)");
                continue;
            }
            OP_FUNCTION => {
                return Err(inp.err(
                    at,
                    RdbErrorKind::Unsupported,
                    "pre-release function library format (Redis 7.0 RC) is not supported",
                ));
            }
            OP_EXPIRETIME_MS => {
                let ms = inp.u64_le("an expire time")?;
                expire_at = ms.max(1);
                continue;
            }
            OP_EXPIRETIME => {
                let s = inp.u32_le("an expire time")? as u64;
                expire_at = (s * 1000).max(1);
                continue;
            }
            OP_IDLE => {
                inp.len("an LRU idle time")?;
                continue;
            }
            OP_FREQ => {
                inp.byte("an LFU frequency")?;
                continue;
            }
            _ => {}
        }
        // A key/value pair with type `op`.
        let key = inp.compact_string("a key")?;
        let value = read_value(&mut inp, op, &key, at)?;
        let e_at = std::mem::replace(&mut expire_at, NO_EXPIRE);
        let Some(value) = value else {
            out.empty_keys_skipped += 1;
            tracing::warn!(source = %inp.name, key = ?key, "skipping empty key");
            continue;
        };
        let i = match cur {
            Some(i) => i,
            None => {
                // Keys before any SELECTDB belong to db 0 (very old files).
                out.dbs.push(LoadedDb::new(0));
                cur = Some(out.dbs.len() - 1);
                out.dbs.len() - 1
            }
        };
        let part = &mut out.dbs[i].parts[shard_of(&key)];
        let entry = Entry {
            value,
            expire_at: e_at,
            lru: 0,
        };
        if let Some(old) = part.insert(key, entry) {
            let _ = old;
            return Err(inp.corrupt(at, "duplicate key in the same database"));
        }
        out.keys += 1;
    }
    if version >= 5 {
        let computed = inp.checksum_here();
        let at = inp.offset();
        let stored = inp.u64_le("the checksum")?;
        if stored != 0 && stored != computed {
            return Err(inp.corrupt(
                at,
                format!(
                    "wrong RDB checksum (file has {stored:016x}, content gives {computed:016x})"
                ),
            ));
        }
    }
    out.end_offset = inp.offset();
    Ok(out)
}

/// Reads one value of RDB type `t`. `None` for an empty collection.
fn read_value<R: Read>(inp: &mut In<R>, t: u8, key: &CompactBytes, at: u64) -> Res<Option<Value>> {
    let keyname = || String::from_utf8_lossy(key).into_owned();
    let blob_err = |inp: &In<R>, start: u64, (off, m): (usize, String)| {
        inp.corrupt(start + off as u64, format!("{m} (key '{}')", keyname()))
    };
    let dup = |inp: &In<R>, what: &str| {
        inp.corrupt(at, format!("duplicate {what} in key '{}'", keyname()))
    };
    Ok(Some(match t {
        TYPE_STRING => Value::Str(inp.compact_string("a string value")?),
        TYPE_LIST => {
            let n = inp.len("a list length")?;
            let mut l = List::with_capacity((n as usize).min(1 << 16));
            for _ in 0..n {
                l.push_back(inp.compact_string("a list element")?);
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Arc::new(l))
        }
        TYPE_SET => {
            let n = inp.len("a set size")?;
            let mut s =
                Set::with_capacity_and_hasher((n as usize).min(1 << 16), Default::default());
            for _ in 0..n {
                if !s.insert(inp.compact_string("a set member")?) {
                    return Err(dup(inp, "set member"));
                }
            }
            if s.is_empty() {
                return Ok(None);
            }
            // Non-integer members: Redis loads it as a hash table, for good.
            s.note_created(u64::MAX);
            Value::Set(Arc::new(s))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = inp.len("a sorted set size")?;
            let mut z = ZSet::new();
            for _ in 0..n {
                inp.string("a sorted set member")?;
                let m = std::mem::take(&mut inp.scratch);
                let score = if t == TYPE_ZSET {
                    inp.string_double("a sorted set score")
                } else {
                    inp.binary_double("a sorted set score")
                };
                let score = match score {
                    Ok(s) => s,
                    Err(e) => {
                        inp.scratch = m;
                        return Err(e);
                    }
                };
                let added = z.insert(&m, score).is_none();
                inp.scratch = m;
                if !added {
                    return Err(dup(inp, "sorted set member"));
                }
            }
            if z.is_empty() {
                return Ok(None);
            }
            Value::ZSet(Arc::new(z))
        }
        TYPE_HASH => {
            let n = inp.len("a hash size")?;
            let mut h =
                Hash_::with_capacity_and_hasher((n as usize).min(1 << 16), Default::default());
            for _ in 0..n {
                let f = inp.compact_string("a hash field")?;
                let v = inp.compact_string("a hash value")?;
                if h.insert(f, v).is_some() {
                    return Err(dup(inp, "hash field"));
                }
            }
            if h.is_empty() {
                return Ok(None);
            }
            Value::Hash(Arc::new(h))
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = inp.len("a quicklist node count")?;
            let mut l = List::new();
            for _ in 0..nodes {
                let container = if t == TYPE_LIST_QUICKLIST_2 {
                    let c_at = inp.offset();
                    let c = inp.len("a quicklist node container")?;
                    if c != QUICKLIST_PLAIN && c != QUICKLIST_PACKED {
                        return Err(inp.corrupt(
                            c_at,
                            format!("invalid quicklist container {c} (key '{}')", keyname()),
                        ));
                    }
                    c
                } else {
                    QUICKLIST_PACKED
                };
                let start = inp.offset();
                let blob = inp.owned_string("a quicklist node")?;
                if container == QUICKLIST_PLAIN {
                    l.push_back(CompactBytes::from_vec(blob));
                    continue;
                }
                let r = if t == TYPE_LIST_QUICKLIST_2 {
                    listpack_each(&blob, |it| {
                        l.push_back(it.to_compact());
                        Ok(())
                    })
                } else {
                    ziplist_each(&blob, |it| {
                        l.push_back(it.to_compact());
                        Ok(())
                    })
                };
                let n = r.map_err(|e| blob_err(inp, start, e))?;
                if n == 0 {
                    return Err(
                        inp.corrupt(start, format!("empty quicklist node (key '{}')", keyname()))
                    );
                }
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Arc::new(l))
        }
        TYPE_LIST_ZIPLIST => {
            let start = inp.offset();
            let blob = inp.owned_string("a ziplist")?;
            let mut l = List::new();
            ziplist_each(&blob, |it| {
                l.push_back(it.to_compact());
                Ok(())
            })
            .map_err(|e| blob_err(inp, start, e))?;
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Arc::new(l))
        }
        TYPE_SET_INTSET | TYPE_SET_LISTPACK => {
            let start = inp.offset();
            let blob = inp.owned_string("a compact set")?;
            let mut s = Set::default();
            let r = if t == TYPE_SET_INTSET {
                intset_each(&blob, |v| {
                    s.insert(CompactBytes::new(v.to_string().as_bytes()))
                        .then_some(())
                        .ok_or_else(|| "duplicate set member".to_string())
                })
            } else {
                listpack_each(&blob, |it| {
                    s.insert(it.to_compact())
                        .then_some(())
                        .ok_or_else(|| "duplicate set member".to_string())
                })
            };
            r.map_err(|e| blob_err(inp, start, e))?;
            if s.is_empty() {
                return Ok(None);
            }
            // Non-integer members: Redis loads it as a hash table, for good.
            s.note_created(u64::MAX);
            Value::Set(Arc::new(s))
        }
        TYPE_HASH_ZIPMAP | TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let start = inp.offset();
            let blob = inp.owned_string("a compact hash")?;
            let mut h = Hash_::default();
            let r = if t == TYPE_HASH_ZIPMAP {
                zipmap_each(&blob, |f, v| {
                    h.insert(CompactBytes::new(f), CompactBytes::new(v))
                        .is_none()
                        .then_some(())
                        .ok_or_else(|| "duplicate hash field".to_string())
                })
            } else {
                let mut field: Option<CompactBytes> = None;
                let mut each = |it: Item<'_>| match field.take() {
                    None => {
                        field = Some(it.to_compact());
                        Ok(())
                    }
                    Some(f) => h
                        .insert(f, it.to_compact())
                        .is_none()
                        .then_some(())
                        .ok_or_else(|| "duplicate hash field".to_string()),
                };
                let r = if t == TYPE_HASH_LISTPACK {
                    listpack_each(&blob, &mut each)
                } else {
                    ziplist_each(&blob, &mut each)
                };
                match r {
                    Ok(n) if n % 2 == 1 => {
                        Err((0, "odd number of elements in a compact hash".into()))
                    }
                    r => r,
                }
            };
            r.map_err(|e| blob_err(inp, start, e))?;
            if h.is_empty() {
                return Ok(None);
            }
            Value::Hash(Arc::new(h))
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let start = inp.offset();
            let blob = inp.owned_string("a compact sorted set")?;
            let mut z = ZSet::new();
            let mut member: Option<CompactBytes> = None;
            let mut each = |it: Item<'_>| match member.take() {
                None => {
                    member = Some(it.to_compact());
                    Ok(())
                }
                Some(m) => {
                    let s = it.score().ok_or_else(|| "invalid score".to_string())?;
                    z.insert(&m, s)
                        .is_none()
                        .then_some(())
                        .ok_or_else(|| "duplicate sorted set member".to_string())
                }
            };
            let r = if t == TYPE_ZSET_LISTPACK {
                listpack_each(&blob, &mut each)
            } else {
                ziplist_each(&blob, &mut each)
            };
            match r {
                Ok(n) if n % 2 == 1 => {
                    return Err(blob_err(
                        inp,
                        start,
                        (0, "odd number of elements in a compact sorted set".into()),
                    ))
                }
                r => r.map_err(|e| blob_err(inp, start, e))?,
            };
            if z.is_empty() {
                return Ok(None);
            }
            Value::ZSet(Arc::new(z))
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            return Err(inp.err(
                at,
                RdbErrorKind::Unsupported,
                format!(
                    "key '{}' is a stream (RDB type {t}); Tandem has no stream type",
                    keyname()
                ),
            ))
        }
        TYPE_MODULE | TYPE_MODULE_2 => {
            return Err(inp.err(
                at,
                RdbErrorKind::Unsupported,
                format!(
                    "key '{}' holds a module value (RDB type {t}); Tandem has no modules",
                    keyname()
                ),
            ))
        }
        other => {
            return Err(inp.corrupt(
                at,
                format!("unknown RDB value type {other} (key '{}')", keyname()),
            ))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::KeyMap;

    fn snap_of(dbs: Vec<Vec<(&str, Value, u64)>>) -> Snapshot {
        let maps = dbs
            .into_iter()
            .map(|keys| {
                let mut m = KeyMap::default();
                for (k, v, exp) in keys {
                    let mut e = Entry::new(v);
                    e.expire_at = exp;
                    m.insert(CompactBytes::from(k), e);
                }
                vec![m]
            })
            .collect();
        Snapshot::from_maps(maps, Encodings::default(), 1_700_000_000_000)
    }

    fn list(items: &[&str]) -> Value {
        Value::List(Arc::new(
            items.iter().map(|s| CompactBytes::from(*s)).collect(),
        ))
    }

    fn dump(s: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        let aux = RdbAux {
            repl_id: Some("a".repeat(40)),
            ..RdbAux::default()
        };
        let n = write_rdb(&mut out, s, &aux).unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    fn as_strings(v: &Value) -> Vec<String> {
        let s = |b: &CompactBytes| String::from_utf8_lossy(b).into_owned();
        let mut out: Vec<String> = match v {
            Value::Str(x) => vec![s(x)],
            Value::List(l) => return l.iter().map(s).collect(),
            Value::Set(x) => x.iter().map(s).collect(),
            Value::Hash(h) => h
                .iter()
                .map(|(f, v)| format!("{}={}", s(f), s(v)))
                .collect(),
            Value::ZSet(z) => return z.iter().map(|(m, sc)| format!("{}:{sc}", s(m))).collect(),
        };
        out.sort();
        out
    }

    #[test]
    fn crc_matches_redis() {
        // Redis's crc64 test vector.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn lengths_round_trip() {
        for n in [
            0u64,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
        ] {
            let mut b = b"REDIS0010".to_vec();
            put_len(&mut b, n);
            let mut inp = In {
                r: &b[..],
                buf: vec![0; 16].into_boxed_slice(),
                pos: 0,
                end: 0,
                base: 0,
                crc_from: 0,
                crc: CRC64.digest(),
                name: "t".into(),
                scratch: Vec::new(),
            };
            let mut m = [0; 9];
            inp.exact(&mut m, "m").unwrap();
            assert_eq!(inp.len("n").unwrap(), n);
        }
    }

    #[test]
    fn every_type_round_trips() {
        let big: Vec<String> = (0..1000).map(|i| format!("element-{i}")).collect();
        let big_refs: Vec<&str> = big.iter().map(|s| s.as_str()).collect();
        let mut small_hash = Hash_::default();
        small_hash.insert("f".into(), "v".into());
        small_hash.insert("n".into(), "12345".into());
        let mut big_hash = Hash_::default();
        for i in 0..300 {
            big_hash.insert(
                format!("f{i}").as_str().into(),
                "x".repeat(i).as_str().into(),
            );
        }
        let intset: Set = ["1", "-5", "70000", "9999999999"]
            .iter()
            .map(|s| CompactBytes::from(*s))
            .collect();
        let strset: Set = ["a", "1", "b"]
            .iter()
            .map(|s| CompactBytes::from(*s))
            .collect();
        let mut zs = ZSet::new();
        zs.insert(b"a", 1.5);
        zs.insert(b"b", -3.0);
        zs.insert(b"c", f64::INFINITY);
        let mut zbig = ZSet::new();
        for i in 0..500 {
            zbig.insert(format!("m{i}").as_bytes(), i as f64 / 3.0);
        }
        let snap = snap_of(vec![
            vec![
                ("s", Value::str(b"hello"), 0),
                ("i", Value::str(b"-123456"), 0),
                ("bigint", Value::str(b"12345678901234"), 0),
                (
                    "long",
                    Value::str("y".repeat(10_000).as_bytes()),
                    1_900_000_000_000,
                ),
                ("l", list(&["1", "two", "-70000", "3000000000", ""]), 0),
                ("lbig", list(&big_refs), 0),
                ("h", Value::Hash(Arc::new(small_hash)), 0),
                ("hbig", Value::Hash(Arc::new(big_hash)), 0),
                ("si", Value::Set(Arc::new(intset)), 0),
                ("ss", Value::Set(Arc::new(strset)), 0),
                ("z", Value::ZSet(Arc::new(zs)), 0),
                ("zbig", Value::ZSet(Arc::new(zbig)), 0),
            ],
            vec![],
            vec![("other-db", Value::str(b"x"), 0)],
        ]);
        let bytes = dump(&snap);
        let loaded = load(&bytes[..], "mem").unwrap();
        assert_eq!(loaded.keys, 13);
        assert_eq!(loaded.aux.repl_id.as_deref(), Some(&*"a".repeat(40)));
        assert_eq!(loaded.aux.redis_ver.as_deref(), Some(crate::REDIS_VERSION));
        assert_eq!(loaded.dbs.len(), 2);
        assert_eq!(loaded.dbs[1].index, 2);
        for (k, e) in snap.dbs[0].shards[0].iter() {
            let (_, got) = loaded.dbs[0]
                .iter()
                .find(|(lk, _)| *lk == k)
                .unwrap_or_else(|| panic!("missing {k:?}"));
            assert_eq!(got.expire_at, e.expire_at, "{k:?}");
            assert_eq!(got.value.value_type(), e.value.value_type(), "{k:?}");
            assert_eq!(as_strings(&got.value), as_strings(&e.value), "{k:?}");
        }
    }

    #[test]
    fn corruption_is_reported_with_offset() {
        let snap = snap_of(vec![vec![("k", Value::str(b"value"), 0)]]);
        let good = dump(&snap);
        // Truncated anywhere: a Truncated error, never a panic.
        for cut in 0..good.len() {
            let e = load(&good[..cut], "dump.rdb").unwrap_err();
            assert!(
                matches!(e.kind, RdbErrorKind::Truncated | RdbErrorKind::Corrupt),
                "{cut}: {e}"
            );
            assert!(e.to_string().contains("dump.rdb"));
        }
        // Any flipped byte: an error (checksum or structure), never a panic or a success
        // with the same checksum.
        for i in 9..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            assert!(load(&bad[..], "dump.rdb").is_err(), "flip at {i} accepted");
        }
        // A huge length is caught without allocating it.
        let mut bad = b"REDIS0010".to_vec();
        bad.push(TYPE_STRING);
        put_str(&mut bad, b"k");
        bad.push(LEN_64BIT);
        bad.extend_from_slice(&(1u64 << 60).to_be_bytes());
        let e = load(&bad[..], "x.rdb").unwrap_err();
        assert_eq!(e.kind, RdbErrorKind::Truncated);
        assert_eq!(e.offset, bad.len() as u64);
    }

    #[test]
    fn listpack_encodings_decode() {
        let vals = [
            "0",
            "127",
            "128",
            "-1",
            "4095",
            "-4096",
            "4096",
            "32767",
            "-32768",
            "8388607",
            "-8388608",
            "2147483647",
            "-2147483648",
            "9223372036854775807",
            "abc",
            "007",
        ];
        let mut lp = ListpackBuilder::new();
        let long = "z".repeat(5000);
        for v in vals {
            lp.push(v.as_bytes());
        }
        lp.push("m".repeat(100).as_bytes());
        lp.push(long.as_bytes());
        let blob = lp.finish();
        let mut got = Vec::new();
        listpack_each(&blob, |it| {
            got.push(String::from_utf8(it.to_compact().to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        let mut want: Vec<String> = vals.iter().map(|s| s.to_string()).collect();
        want.push("m".repeat(100));
        want.push(long);
        assert_eq!(got, want);
    }

    #[test]
    fn ziplist_intset_zipmap_decode() {
        // A ziplist: "a", 5 (immediate), 300 (int16), "hello".
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 0x01, b'a']);
        body.extend_from_slice(&[3, 0xF6]);
        body.extend_from_slice(&[2, 0xC0, 0x2C, 0x01]);
        body.extend_from_slice(&[4, 0x05, b'h', b'e', b'l', b'l', b'o']);
        let mut zl = Vec::new();
        let total = 10 + body.len() + 1;
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&0u32.to_le_bytes());
        zl.extend_from_slice(&4u16.to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xFF);
        let mut got = Vec::new();
        ziplist_each(&zl, |it| {
            got.push(it.to_compact().to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                b"a".to_vec(),
                b"5".to_vec(),
                b"300".to_vec(),
                b"hello".to_vec()
            ]
        );
        // An intset of 16-bit integers.
        let mut is = vec![2, 0, 0, 0, 2, 0, 0, 0];
        is.extend_from_slice(&(-7i16).to_le_bytes());
        is.extend_from_slice(&9i16.to_le_bytes());
        let mut ints = Vec::new();
        intset_each(&is, |v| {
            ints.push(v);
            Ok(())
        })
        .unwrap();
        assert_eq!(ints, vec![-7, 9]);
        // A zipmap, the example from Redis's zipmap.c.
        let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        let mut pairs = Vec::new();
        zipmap_each(zm, |k, v| {
            pairs.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1], (b"hello".to_vec(), b"world".to_vec()));
        // Bad blobs are errors, not panics.
        assert!(ziplist_each(&zl[..zl.len() - 3], |_| Ok(())).is_err());
        assert!(intset_each(&is[..9], |_| Ok(())).is_err());
        assert!(zipmap_each(&zm[..10], |_, _| Ok(())).is_err());
    }

    #[test]
    fn lzf_strings_load() {
        let plain = "abcabcabcabcabcabcabcabcabcabcabcabc".repeat(10);
        let c = lzf::compress(plain.as_bytes()).unwrap();
        let mut b = b"REDIS0010".to_vec();
        b.push(TYPE_STRING);
        put_str(&mut b, b"k");
        b.push((LEN_ENCVAL << 6) | ENC_LZF);
        put_len(&mut b, c.len() as u64);
        put_len(&mut b, plain.len() as u64);
        b.extend_from_slice(&c);
        b.push(OP_EOF);
        b.extend_from_slice(&crc64(&b).to_le_bytes());
        let l = load(&b[..], "lzf").unwrap();
        let (_, e) = l.dbs[0].iter().next().unwrap();
        match &e.value {
            Value::Str(s) => assert_eq!(s.as_slice(), plain.as_bytes()),
            v => panic!("{v:?}"),
        };
    }
}

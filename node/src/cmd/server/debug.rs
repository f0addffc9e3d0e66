//! DEBUG (runs with every shard locked) and what it shares with OBJECT / MEMORY: Redis 7.0
//! encoding names for values, a peek at a key that changes nothing, and the dataset digest
//! (SHA-1 based: XOR of per-key digests, so it does not depend on iteration order; 40 zeros
//! for an empty dataset).

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tandem_protocol::number::{format_f64, parse_i64};
use tandem_protocol::{Protocol, Reply};

use super::help_reply;
use crate::cmd::args::{self, CmdResult};
use crate::cmd::Ctx;
use crate::db::{Entry, Value};
use crate::server::Server;

// ---------------------------------------------------------------------------- SHA-1

/// Streaming SHA-1 (FIPS 180-4). Used for digests only, never for security.
#[derive(Clone)]
pub struct Sha1 {
    h: [u32; 5],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
}

impl Default for Sha1 {
    fn default() -> Self {
        Sha1 {
            h: [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0],
            buf: [0; 64],
            buf_len: 0,
            total: 0,
        }
    }
}

impl Sha1 {
    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let n = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
            self.buf_len += n;
            data = &data[n..];
            if self.buf_len == 64 {
                let block = self.buf;
                self.block(&block);
                self.buf_len = 0;
            }
        }
        while data.len() >= 64 {
            let mut block = [0u8; 64];
            block.copy_from_slice(&data[..64]);
            self.block(&block);
            data = &data[64..];
        }
        self.buf[..data.len()].copy_from_slice(data);
        self.buf_len += data.len();
    }

    pub fn finish(mut self) -> [u8; 20] {
        let bits = self.total.wrapping_mul(8);
        self.update(&[0x80]);
        while self.buf_len != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 20];
        for (i, w) in self.h.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    fn block(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = self.h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (h, v) in self.h.iter_mut().zip([a, b, c, d, e]) {
            *h = h.wrapping_add(v);
        }
    }
}

fn sha1_of(parts: &[&[u8]]) -> [u8; 20] {
    let mut s = Sha1::default();
    for p in parts {
        s.update(&(p.len() as u64).to_le_bytes());
        s.update(p);
    }
    s.finish()
}

fn xor_into(acc: &mut [u8; 20], d: &[u8; 20]) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

pub fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of a value and its expiry: ordered for lists, order-independent for hashes, sets
/// and sorted sets.
pub fn value_digest(e: &Entry) -> [u8; 20] {
    let mut out = match &e.value {
        Value::Str(s) => sha1_of(&[b"string", s]),
        Value::List(l) => {
            let mut h = Sha1::default();
            h.update(b"list");
            for x in l.iter() {
                h.update(&(x.len() as u64).to_le_bytes());
                h.update(x);
            }
            h.finish()
        }
        Value::Hash(hm) => {
            let mut acc = sha1_of(&[b"hash"]);
            for (f, v) in hm.iter() {
                xor_into(&mut acc, &sha1_of(&[f, v]));
            }
            acc
        }
        Value::Set(s) => {
            let mut acc = sha1_of(&[b"set"]);
            for m in s.iter() {
                xor_into(&mut acc, &sha1_of(&[m]));
            }
            acc
        }
        Value::ZSet(z) => {
            let mut acc = sha1_of(&[b"zset"]);
            for (m, score) in z.dict.iter() {
                xor_into(&mut acc, &sha1_of(&[m, format_f64(*score).as_bytes()]));
            }
            acc
        }
    };
    if let Some(at) = e.expire() {
        out = sha1_of(&[&out, b"!!expire!!", &at.to_le_bytes()]);
    }
    out
}

/// DEBUG DIGEST: XOR over every key of every database of sha1(db, key, value digest).
pub fn dataset_digest(ctx: &mut Ctx) -> [u8; 20] {
    let mut acc = [0u8; 20];
    if !ctx.has_all_shards() {
        return acc;
    }
    for shard in ctx.shards_mut() {
        for (dbi, db) in shard.dbs.iter().enumerate() {
            for (k, e) in db.map.iter() {
                let vd = value_digest(e);
                xor_into(&mut acc, &sha1_of(&[&(dbi as u64).to_le_bytes(), k, &vd]));
            }
        }
    }
    acc
}

// ---------------------------------------------------------------------------- encodings

/// Looks `key` up in the selected database without expiring, touching or counting it.
pub fn peek<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c Entry> {
    let (now, db) = (ctx.now_ms, ctx.db);
    let e = ctx.raw_db(db, key).map.get(key)?;
    (!e.is_expired(now)).then_some(e)
}

/// Redis 7.0's name for how a value would be encoded (`int`, `embstr`, `raw`, `quicklist`,
/// `listpack`, `hashtable`, `intset`, `skiplist`), honouring the `*-max-*` thresholds.
pub fn encoding(srv: &Server, v: &Value) -> &'static str {
    let cfg = srv.config.load();
    match v {
        Value::Str(s) => {
            if s.len() <= 20 && parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        // Redis 7.0 always encodes lists as quicklists.
        Value::List(_) => "quicklist",
        Value::Hash(h) => {
            let max_value = cfg.hash_max_listpack_value as usize;
            if h.len() as u64 <= cfg.hash_max_listpack_entries
                && h.iter()
                    .all(|(f, v)| f.len() <= max_value && v.len() <= max_value)
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            if !s.is_hashtable()
                && s.len() as u64 <= cfg.set_max_intset_entries
                && s.iter().all(|m| m.len() <= 20 && parse_i64(m).is_some())
            {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            let max_value = cfg.zset_max_listpack_value as usize;
            if z.len() as u64 <= cfg.zset_max_listpack_entries
                && z.dict.keys().all(|m| m.len() <= max_value)
            {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}

/// Bytes a string takes in an RDB file (length prefix + payload, or an integer encoding).
fn rdb_string_len(s: &[u8]) -> usize {
    if s.len() <= 11 {
        if let Some(n) = parse_i64(s) {
            return if (-128..128).contains(&n) {
                2
            } else if (-32768..32768).contains(&n) {
                3
            } else if i32::try_from(n).is_ok() {
                5
            } else {
                1 + s.len() + 1
            };
        }
    }
    let prefix = if s.len() < 64 {
        1
    } else if s.len() < 16384 {
        2
    } else {
        5
    };
    prefix + s.len()
}

/// An estimate of the RDB serialized length of a value (DEBUG OBJECT `serializedlength`).
pub fn serialized_length(v: &Value) -> usize {
    match v {
        Value::Str(s) => rdb_string_len(s),
        Value::List(l) => 1 + l.iter().map(|x| rdb_string_len(x)).sum::<usize>(),
        Value::Hash(h) => {
            1 + h
                .iter()
                .map(|(f, v)| rdb_string_len(f) + rdb_string_len(v))
                .sum::<usize>()
        }
        Value::Set(s) => 1 + s.iter().map(|m| rdb_string_len(m)).sum::<usize>(),
        Value::ZSet(z) => 1 + z.dict.keys().map(|m| rdb_string_len(m) + 8).sum::<usize>(),
    }
}

// ---------------------------------------------------------------------------- DEBUG

pub fn debug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args::lower(&args[1]);
    let argc = args.len();
    match (sub.as_str(), argc) {
        ("help", 2) => Ok(help_reply("DEBUG", HELP)),
        ("set-active-expire", 3) => {
            let on = parse_i64(&args[2]).unwrap_or(0) != 0;
            ctx.srv.active_expire.store(on, Ordering::Relaxed);
            Ok(Reply::Ok)
        }
        ("object", 3) => debug_object(ctx, &args[2]),
        ("digest", 2) => Ok(Reply::status(hex(&dataset_digest(ctx)))),
        ("digest-value", _) => {
            let mut out = Vec::with_capacity(argc - 2);
            for k in &args[2..] {
                let d = peek(ctx, k).map(value_digest).unwrap_or([0; 20]);
                out.push(Reply::status(hex(&d)));
            }
            Ok(Reply::Array(out))
        }
        ("jmap", 2) => Ok(Reply::Ok),
        ("quicklist-packed-threshold", 3) => {
            tandem_config::MemSize::parse(&String::from_utf8_lossy(&args[2]))
                .ok_or_else(|| Reply::error("ERR argument must be a memory value"))?;
            Ok(Reply::Ok)
        }
        ("listpack", 3) => match peek(ctx, &args[2]).map(|e| e.value.clone()) {
            None => Err(Reply::error(args::ERR_NO_SUCH_KEY)),
            Some(v) if encoding(ctx.srv, &v) == "listpack" => {
                Ok(Reply::status("Listpack structure printed on stdout"))
            }
            Some(_) => Err(Reply::error("ERR Not a listpack encoded object.")),
        },
        ("stringmatch-len", 2) => {
            stringmatch_fuzz();
            Ok(Reply::status("Apparently Redis did not crash: test passed"))
        }
        ("change-repl-id", 2) => {
            ctx.srv.repl.change_replid();
            Ok(Reply::Ok)
        }
        ("reload", _) => crate::persistence::debug_reload(ctx, &args[2..]),
        ("loadaof", _) => crate::persistence::aof::debug_loadaof(ctx),
        ("sleep", 3) => {
            // Outside MULTI the session sleeps without blocking; inside EXEC this blocks
            // the server for the duration, as DEBUG SLEEP does in Redis.
            let secs = args::float(&args[2])?;
            if secs > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
            }
            Ok(Reply::Ok)
        }
        ("protocol", 3) => protocol(ctx.proto, &args[2]),
        ("log", 3) => {
            tracing::warn!(message = %String::from_utf8_lossy(&args[2]), "DEBUG LOG");
            Ok(Reply::Ok)
        }
        ("error", 3) => {
            let msg = String::from_utf8_lossy(&args[2]);
            Err(match msg.strip_prefix('-') {
                Some(m) => Reply::error(m.to_string()),
                None => Reply::error(format!("ERR {msg}")),
            })
        }
        _ => Err(args::unknown_subcommand("debug", &args[1])),
    }
}

fn debug_object(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let srv = ctx.srv;
    let now_secs = ctx.now_ms / 1000;
    let Some(e) = peek(ctx, key) else {
        return Err(Reply::error(args::ERR_NO_SUCH_KEY));
    };
    let enc = encoding(srv, &e.value);
    let lru = e.lru & 0x00FF_FFFF;
    let idle = (now_secs & 0x00FF_FFFF).saturating_sub(lru as u64);
    let mut extra = String::new();
    if let Value::List(l) = &e.value {
        let cfg = srv.config.load();
        let fill = cfg.list_max_listpack_size;
        let bytes: usize = l.iter().map(|x| x.len() + 2).sum();
        let nodes = if fill < 0 {
            let node_bytes = 4096usize << (fill.unsigned_abs().clamp(1, 5) - 1);
            bytes.div_ceil(node_bytes)
        } else {
            l.len().div_ceil(fill.max(1) as usize)
        }
        .max(1);
        extra = format!(
            " ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:{fill} ql_compressed:{} ql_uncompressed_size:{bytes}",
            l.len() as f64 / nodes as f64,
            (cfg.list_compress_depth != 0) as u8,
        );
    }
    Ok(Reply::status(format!(
        "Value at:{:p} refcount:1 encoding:{enc} serializedlength:{} lru:{lru} lru_seconds_idle:{idle}{extra}",
        &e.value as *const Value,
        serialized_length(&e.value),
    )))
}

/// DEBUG PROTOCOL <type>: one reply of each RESP type, for client tests.
fn protocol(proto: Protocol, kind: &[u8]) -> CmdResult {
    let three = proto == Protocol::Resp3;
    Ok(match args::lower(kind).as_str() {
        "string" => Reply::bulk_str("Hello World"),
        "integer" => Reply::Int(12345),
        // Redis's exact test value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        "double" => Reply::Double(3.141),
        "bignum" => {
            let n = "1234567999999999999999999999999999999";
            if three {
                Reply::Raw(Bytes::from(format!("({n}\r\n")))
            } else {
                Reply::bulk_str(n)
            }
        }
        "null" => Reply::Nil,
        "array" => Reply::Array((0..3).map(Reply::Int).collect()),
        "set" => Reply::Set((0..3).map(Reply::Int).collect()),
        "map" => Reply::Map(
            (0..3)
                .map(|i| (Reply::Int(i), Reply::Bool(i == 1)))
                .collect(),
        ),
        "true" => Reply::Bool(true),
        "false" => Reply::Bool(false),
        "verbatim" => Reply::Verbatim("txt", Bytes::from_static(b"This is a verbatim\nstring")),
        "attrib" => {
            if three {
                Reply::Raw(Bytes::from_static(
                    b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
                ))
            } else {
                Reply::bulk_str("Some real reply following the attribute")
            }
        }
        _ => {
            return Err(Reply::error(
                "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|true|false|verbatim",
            ))
        }
    })
}

/// DEBUG STRINGMATCH-LEN: runs the glob matcher on random patterns and strings; passing
/// means it neither panicked nor ran away.
fn stringmatch_fuzz() {
    let alphabet = b"ab*?[]^-\\c";
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..10_000 {
        let plen = rng.usize(0..32);
        let slen = rng.usize(0..32);
        let p: Vec<u8> = (0..plen)
            .map(|_| alphabet[rng.usize(0..alphabet.len())])
            .collect();
        let s: Vec<u8> = (0..slen).map(|_| alphabet[rng.usize(0..3)]).collect();
        let _ = tandem_protocol::glob::matches(&p, &s, rng.bool());
    }
}

const HELP: &[&str] = &[
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "JMAP",
    "    Accepted for compatibility; does nothing.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, true, false,",
    "    verbatim.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Accepted for compatibility; does nothing.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-LEN",
    "    Run a fuzz tester against the stringmatchlen() function.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sha_hex(data: &[u8]) -> String {
        let mut s = Sha1::default();
        s.update(data);
        hex(&s.finish())
    }

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(sha_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let long = vec![b'a'; 1_000];
        let mut s = Sha1::default();
        for chunk in long.chunks(7) {
            s.update(chunk);
        }
        assert_eq!(hex(&s.finish()), sha_hex(&long));
        assert_eq!(
            sha_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn rdb_lengths() {
        assert_eq!(rdb_string_len(b"12"), 2);
        assert_eq!(rdb_string_len(b"1000"), 3);
        assert_eq!(rdb_string_len(b"hello"), 6);
    }

    #[test]
    fn digests_ignore_set_order() {
        use crate::db::value::Set;
        use crate::db::CompactBytes;
        use std::sync::Arc;
        let mut a = Set::default();
        a.insert(CompactBytes::new(b"x"));
        a.insert(CompactBytes::new(b"y"));
        let mut b = Set::default();
        b.insert(CompactBytes::new(b"y"));
        b.insert(CompactBytes::new(b"x"));
        let ea = Entry::new(Value::Set(Arc::new(a)));
        let eb = Entry::new(Value::Set(Arc::new(b)));
        assert_eq!(value_digest(&ea), value_digest(&eb));
        let s = Entry::new(Value::str(b"x"));
        assert_ne!(value_digest(&ea), value_digest(&s));
    }
}

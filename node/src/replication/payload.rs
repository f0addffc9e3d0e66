//! The full-sync payload: a point-in-time snapshot encoded as an RDB on the master, and on
//! the replica the RDB loaded into a new dataset that replaces the old one in one step.
//!
//! Guarantee: [`install`] swaps the whole keyspace under every shard lock, so clients see
//! the old dataset or the new one, never a half-loaded mix.
//!
//! Until the persistence module lands this only handles datasets without keys (an RDB of
//! aux fields), which is enough for the handshake, streaming and partial resyncs; a
//! non-empty snapshot or payload is refused with an error instead of losing data.

use bytes::Bytes;
use std::io::{self, Read, Write};

use crate::server::Server;

/// A point-in-time view of the dataset.
pub struct Snapshot {
    keys: usize,
}

/// A dataset loaded from a payload, not yet installed.
pub struct Loaded {
    /// `repl-id` / `repl-offset` aux fields, when present.
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
}

/// Takes a snapshot; `at_freeze` runs while every shard is locked (the stream is still).
pub fn snapshot(srv: &Server, at_freeze: impl FnOnce()) -> Snapshot {
    let shards = srv.keyspace.lock_all();
    let keys = shards
        .iter()
        .map(|s| s.dbs.iter().map(|d| d.map.len()).sum::<usize>())
        .sum();
    at_freeze();
    drop(shards);
    Snapshot { keys }
}

/// Writes `snap` as an RDB carrying `repl-id` / `repl-offset`; returns the bytes written.
pub fn write_rdb(
    out: &mut impl Write,
    snap: &Snapshot,
    replid: &str,
    offset: u64,
) -> io::Result<u64> {
    if snap.keys > 0 {
        return Err(io::Error::other(
            "full synchronization of a non-empty dataset needs the RDB module",
        ));
    }
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"REDIS0010");
    let ctime = (crate::now_ms() / 1000).to_string();
    let offset = offset.to_string();
    for (k, v) in [
        ("redis-ver", crate::REDIS_VERSION),
        ("redis-bits", "64"),
        ("ctime", ctime.as_str()),
        ("used-mem", "0"),
        ("repl-stream-db", "0"),
        ("repl-id", replid),
        ("repl-offset", offset.as_str()),
        ("aof-base", "0"),
    ] {
        buf.push(0xFA);
        put_str(&mut buf, k.as_bytes());
        put_str(&mut buf, v.as_bytes());
    }
    buf.push(0xFF);
    // A zero checksum tells loaders not to verify it.
    buf.extend_from_slice(&[0u8; 8]);
    out.write_all(&buf)?;
    Ok(buf.len() as u64)
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// Loads an RDB payload (`source` names it in errors).
pub fn load(r: impl Read, source: &str) -> Result<Loaded, String> {
    let mut r = io::BufReader::new(r);
    let err = |what: &str| format!("{source}: {what}");
    let mut magic = [0u8; 9];
    r.read_exact(&mut magic)
        .map_err(|_| err("truncated RDB header"))?;
    if &magic[..5] != b"REDIS" {
        return Err(err("not an RDB file (bad magic)"));
    }
    let mut loaded = Loaded {
        repl_id: None,
        repl_offset: None,
    };
    loop {
        let op = byte(&mut r).map_err(|_| err("unexpected end of RDB"))?;
        match op {
            0xFA => {
                let k = string(&mut r).map_err(|_| err("bad aux field"))?;
                let v = string(&mut r).map_err(|_| err("bad aux field"))?;
                match &k[..] {
                    b"repl-id" => loaded.repl_id = Some(String::from_utf8_lossy(&v).into()),
                    b"repl-offset" => {
                        loaded.repl_offset = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok())
                    }
                    _ => {}
                }
            }
            0xFE => {
                length(&mut r).map_err(|_| err("bad SELECTDB"))?;
            }
            0xFB => {
                length(&mut r).map_err(|_| err("bad RESIZEDB"))?;
                length(&mut r).map_err(|_| err("bad RESIZEDB"))?;
            }
            0xFF => return Ok(loaded),
            _ => {
                return Err(err(
                    "RDB payload with keys needs the RDB module (not in this build yet)",
                ))
            }
        }
    }
}

/// Replaces the whole dataset with `loaded` under every shard lock; `at_install` runs
/// under those locks too (to set the replication offsets in the same step).
pub fn install(srv: &Server, _loaded: Loaded, at_install: impl FnOnce()) {
    let mut shards = srv.keyspace.lock_all();
    for s in shards.iter_mut() {
        for d in 0..s.dbs.len() {
            s.dbs[d].clear();
            s.signal_db(d);
        }
    }
    at_install();
}

fn byte(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// An RDB length; `Err` on special encodings where a plain length is required.
fn length(r: &mut impl Read) -> io::Result<u64> {
    match len_or_enc(r)? {
        (n, false) => Ok(n),
        _ => Err(io::Error::other("unexpected encoded length")),
    }
}

/// (value, is_special_encoding)
fn len_or_enc(r: &mut impl Read) -> io::Result<(u64, bool)> {
    let b = byte(r)?;
    match b >> 6 {
        0 => Ok(((b & 0x3F) as u64, false)),
        1 => Ok(((((b & 0x3F) as u64) << 8) | byte(r)? as u64, false)),
        2 => match b {
            0x80 => {
                let mut x = [0u8; 4];
                r.read_exact(&mut x)?;
                Ok((u32::from_be_bytes(x) as u64, false))
            }
            0x81 => {
                let mut x = [0u8; 8];
                r.read_exact(&mut x)?;
                Ok((u64::from_be_bytes(x), false))
            }
            _ => Err(io::Error::other("bad length encoding")),
        },
        _ => Ok(((b & 0x3F) as u64, true)),
    }
}

/// An RDB string (plain, integer-encoded, or LZF-compressed).
fn string(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let (n, special) = len_or_enc(r)?;
    if !special {
        if n > 512 << 20 {
            return Err(io::Error::other("string too long"));
        }
        let mut v = vec![0u8; n as usize];
        r.read_exact(&mut v)?;
        return Ok(v);
    }
    let v: i64 = match n {
        0 => byte(r)? as i8 as i64,
        1 => {
            let mut x = [0u8; 2];
            r.read_exact(&mut x)?;
            i16::from_le_bytes(x) as i64
        }
        2 => {
            let mut x = [0u8; 4];
            r.read_exact(&mut x)?;
            i32::from_le_bytes(x) as i64
        }
        3 => {
            let clen = length(r)?;
            let len = length(r)?;
            if clen > 512 << 20 || len > 512 << 20 {
                return Err(io::Error::other("string too long"));
            }
            let mut c = vec![0u8; clen as usize];
            r.read_exact(&mut c)?;
            return lzf_decompress(&c, len as usize);
        }
        _ => return Err(io::Error::other("bad string encoding")),
    };
    Ok(v.to_string().into_bytes())
}

fn lzf_decompress(input: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let bad = || io::Error::other("bad LZF data");
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(i..i + n).ok_or_else(bad)?;
            out.extend_from_slice(lit);
            i += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(i).ok_or_else(bad)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1F) << 8) + *input.get(i).ok_or_else(bad)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back).ok_or_else(bad)?;
            for k in 0..n + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return Err(bad());
        }
    }
    Ok(out)
}

/// A `Write` that hands the bytes to an async task in chunks (diskless transfer).
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    total: u64,
}

const CHUNK: usize = 64 * 1024;

impl ChunkWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<Bytes>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            total: 0,
        }
    }

    /// Sends what is buffered; returns the total bytes written.
    pub fn finish(mut self) -> io::Result<u64> {
        self.send()?;
        Ok(self.total)
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::other("replica link closed"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_rdb_round_trips_repl_info() {
        let mut out = Vec::new();
        write_rdb(&mut out, &Snapshot { keys: 0 }, "abc", 42).unwrap();
        let l = load(&out[..], "test").unwrap();
        assert_eq!(l.repl_id.as_deref(), Some("abc"));
        assert_eq!(l.repl_offset, Some(42));
        assert!(load(&out[..5], "test").is_err());
    }
}

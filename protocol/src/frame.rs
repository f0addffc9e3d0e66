//! RESP framing. Requests are decoded by one scan that also checks Redis's limits (so a peer
//! can never make us buffer past `proto-max-bulk-len` or allocate for a giant multibulk);
//! Redis's inline form is split with `sdssplitargs` rules. A [`Request`] can also be viewed
//! in place, as the bytes the client sent, for a proxy that relays it unchanged.
//! Replies are [`Reply`] values written for RESP2 or RESP3 with Redis's exact shapes.
//!
//! The reply encoder writes bytes directly rather than building `redis-protocol` frames:
//! Redis needs shapes those frame types cannot express one-to-one (the RESP2 null array
//! `*-1`, RESP3 types downgraded for RESP2 clients) and it is the hottest path of the node.

use bytes::{BufMut, Bytes, BytesMut};
use std::borrow::Cow;

use crate::number::format_f64;
use crate::types::Protocol;

/// A reply to a client, RESP3-shaped; downgraded when written to a RESP2 connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string (`+...`).
    Status(Cow<'static, str>),
    /// An error line without the leading `-`, e.g. `ERR syntax error`.
    Error(Cow<'static, str>),
    Int(i64),
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// RESP2 `*-1`, RESP3 `_`.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 map; a flat array of key, value, ... in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Reply>),
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 boolean; integer 1/0 in RESP2.
    Bool(bool),
    /// RESP3 push (pub/sub messages); an array in RESP2.
    Push(Vec<Reply>),
    /// RESP3 verbatim string with a 3-letter format (`txt`); a bulk string in RESP2.
    Verbatim(&'static str, Bytes),
    /// Bytes already encoded in RESP, written as they are.
    Raw(Bytes),
}

impl Reply {
    pub fn error(msg: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(msg.into())
    }
    pub fn status(msg: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Status(msg.into())
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    pub fn bulk_slice(b: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b))
    }
    /// A bulk string or nil.
    pub fn opt_bulk(b: Option<Bytes>) -> Reply {
        b.map(Reply::Bulk).unwrap_or(Reply::Nil)
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
    /// An array of bulk strings.
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }

    /// Appends this reply, encoded for `proto`, to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(i) => {
                out.put_u8(b':');
                put_int(out, *i);
                out.put_slice(b"\r\n");
            }
            Reply::Bulk(b) => put_bulk(out, b),
            Reply::Nil => match proto {
                Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::NilArray => match proto {
                Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                header(out, b'*', items.len());
                for r in items {
                    r.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                header(
                    out,
                    if proto == Protocol::Resp3 { b'~' } else { b'*' },
                    items.len(),
                );
                for r in items {
                    r.encode(proto, out);
                }
            }
            Reply::Push(items) => {
                header(
                    out,
                    if proto == Protocol::Resp3 { b'>' } else { b'*' },
                    items.len(),
                );
                for r in items {
                    r.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                match proto {
                    Protocol::Resp3 => header(out, b'%', pairs.len()),
                    Protocol::Resp2 => header(out, b'*', pairs.len() * 2),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                let text = format_f64(*d);
                match proto {
                    Protocol::Resp3 => line(out, b',', text.as_bytes()),
                    Protocol::Resp2 => put_bulk(out, text.as_bytes()),
                }
            }
            Reply::Bool(b) => match proto {
                Protocol::Resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
                Protocol::Resp2 => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            },
            Reply::Verbatim(fmt, b) => match proto {
                Protocol::Resp3 => {
                    out.put_u8(b'=');
                    put_int(out, (b.len() + 4) as i64);
                    out.put_slice(b"\r\n");
                    out.put_slice(fmt.as_bytes());
                    out.put_u8(b':');
                    out.put_slice(b);
                    out.put_slice(b"\r\n");
                }
                Protocol::Resp2 => put_bulk(out, b),
            },
            Reply::Raw(b) => out.put_slice(b),
        }
    }
}

fn line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(prefix);
    // A status or error must stay on one line whatever the caller put in it.
    for &c in body {
        out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
    }
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, prefix: u8, len: usize) {
    out.put_u8(prefix);
    put_int(out, len as i64);
    out.put_slice(b"\r\n");
}

/// Writes `$len\r\n<bytes>\r\n`.
pub fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    out.reserve(b.len() + 16);
    header(out, b'$', b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// Writes an integer in decimal without allocating.
pub fn put_int(out: &mut BytesMut, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        out.put_u8(b'-');
    }
    out.put_slice(&buf[i..]);
}

/// Encodes a command (array of bulk strings), as clients and the replication stream send it.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    header(out, b'*', args.len());
    for a in args {
        put_bulk(out, a.as_ref());
    }
}

/// Redis's limits on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// `proto-max-bulk-len` (512 MB by default).
    pub max_bulk_len: u64,
    /// Largest multibulk element count accepted.
    pub max_multibulk: u64,
    /// Longest inline command / header line (Redis's PROTO_INLINE_MAX_SIZE, 64 KB).
    pub max_inline: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk: 1024 * 1024,
            max_inline: 64 * 1024,
        }
    }
}

/// A protocol violation: Redis replies `-ERR Protocol error: ...` and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

/// Splits client bytes into requests (each a list of arguments), enforcing [`RequestLimits`].
#[derive(Debug, Default)]
pub struct RequestDecoder {
    pub limits: RequestLimits,
}

impl RequestDecoder {
    pub fn new(limits: RequestLimits) -> Self {
        RequestDecoder { limits }
    }

    /// Decodes the next complete request from `buf`, consuming its bytes.
    /// `Ok(None)`: more bytes are needed. An empty request (blank inline line, `*0`) is
    /// returned as an empty vector, which callers skip.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] != b'*' {
            return self.decode_inline(buf);
        }
        // One pass over the frame: checks the header and every bulk length against the
        // limits (so a peer can never make us buffer past them) and notes where each
        // argument lies; a complete frame is then cut out once and shared by its arguments.
        // Written by hand rather than with redis-protocol's decoder: that decoder builds a
        // frame tree and still needed this scan for the limits, and requests are the node's
        // and proxy's hottest path (benches/node_vs_redis.sh).
        let mut ranges: SmallRanges = SmallRanges::new();
        match self.scan_multibulk(buf, &mut ranges)? {
            Guard::Incomplete => Ok(None),
            Guard::Empty(len) => {
                let _ = buf.split_to(len);
                Ok(Some(Vec::new()))
            }
            Guard::Complete(len) => {
                let frozen = buf.split_to(len).freeze();
                Ok(Some(
                    ranges.iter().map(|&(a, b)| frozen.slice(a..b)).collect(),
                ))
            }
        }
    }

    /// Scans a multibulk request: checks the header and every bulk length against the limits
    /// and records each argument's byte range in `ranges` (complete frames only).
    fn scan_multibulk(&self, buf: &[u8], ranges: &mut SmallRanges) -> Result<Guard, ProtocolError> {
        let Some((count, mut pos)) = read_len_line(buf, 1, self.limits.max_inline)
            .map_err(|_| ProtocolError("too big mbulk count string".into()))?
        else {
            return Ok(Guard::Incomplete);
        };
        let count = count.ok_or_else(|| ProtocolError("invalid multibulk length".into()))?;
        if count > self.limits.max_multibulk as i64 {
            return Err(ProtocolError("invalid multibulk length".into()));
        }
        if count <= 0 {
            return Ok(Guard::Empty(pos));
        }
        for _ in 0..count {
            if pos >= buf.len() {
                return Ok(Guard::Incomplete);
            }
            if buf[pos] != b'$' {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    buf[pos] as char
                )));
            }
            let Some((len, next)) = read_len_line(buf, pos + 1, self.limits.max_inline)
                .map_err(|_| ProtocolError("too big bulk count string".into()))?
            else {
                return Ok(Guard::Incomplete);
            };
            let len = match len {
                Some(l) if l >= 0 && (l as u64) <= self.limits.max_bulk_len => l as usize,
                _ => return Err(ProtocolError("invalid bulk length".into())),
            };
            pos = next + len + 2;
            if pos > buf.len() {
                return Ok(Guard::Incomplete);
            }
            if &buf[pos - 2..pos] != b"\r\n" {
                return Err(ProtocolError("invalid bulk terminator".into()));
            }
            ranges.push((next, next + len));
        }
        Ok(Guard::Complete(pos))
    }

    /// Finds the next complete request at the start of `buf` without consuming or copying
    /// it: returns the request (its arguments point into `buf`) and its length in bytes, to
    /// be consumed by the caller once done. Same limits and errors as [`Self::decode`]; an
    /// empty request (blank inline line, `*0`) has no arguments. An inline request is
    /// re-encoded as RESP, so [`Request::wire`] is always a multibulk.
    pub fn peek<'a>(&self, buf: &'a [u8]) -> Result<Option<(Request<'a>, usize)>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] != b'*' {
            let Some((args, used)) = self.inline_args(buf)? else {
                return Ok(None);
            };
            return Ok(Some((Request::from_args(&args), used)));
        }
        let mut ranges = SmallRanges::new();
        match self.scan_multibulk(buf, &mut ranges)? {
            Guard::Incomplete => Ok(None),
            Guard::Empty(len) => Ok(Some((Request::empty(), len))),
            Guard::Complete(len) => Ok(Some((
                Request {
                    wire: Cow::Borrowed(&buf[..len]),
                    args: ranges,
                },
                len,
            ))),
        }
    }

    /// Splits the inline request at the start of `buf`: its arguments and its length.
    #[allow(clippy::type_complexity)]
    fn inline_args(&self, buf: &[u8]) -> Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError> {
        let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
            if buf.len() > self.limits.max_inline {
                return Err(ProtocolError("too big inline request".into()));
            }
            return Ok(None);
        };
        if nl > self.limits.max_inline {
            return Err(ProtocolError("too big inline request".into()));
        }
        let mut text = &buf[..nl];
        if text.last() == Some(&b'\r') {
            text = &text[..text.len() - 1];
        }
        match split_args(text) {
            Some(args) => Ok(Some((args, nl + 1))),
            None => Err(ProtocolError("unbalanced quotes in request".into())),
        }
    }

    fn decode_inline(&self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some((args, used)) = self.inline_args(buf)? else {
            return Ok(None);
        };
        let _ = buf.split_to(used);
        Ok(Some(args.into_iter().map(Bytes::from).collect()))
    }
}

/// One request in RESP form: the bytes as the client sent them (a multibulk; inline requests
/// are re-encoded) and where each argument lies in them. Borrowed from the read buffer when
/// it comes from [`RequestDecoder::peek`], so relaying it costs one copy and no decoding.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    wire: Cow<'a, [u8]>,
    args: SmallRanges,
}

impl Request<'_> {
    /// A request of these arguments (encoded as a client would send them).
    pub fn from_args<A: AsRef<[u8]>>(args: &[A]) -> Request<'static> {
        // encode_command's bytes, noting where each argument lands.
        let mut out = BytesMut::new();
        header(&mut out, b'*', args.len());
        let mut ranges = SmallRanges::new();
        for a in args {
            let a = a.as_ref();
            put_bulk(&mut out, a);
            let end = out.len() - 2;
            ranges.push((end - a.len(), end));
        }
        Request {
            wire: Cow::Owned(out.into()),
            args: ranges,
        }
    }

    fn empty() -> Request<'static> {
        Request {
            wire: Cow::Borrowed(b"*0\r\n"),
            args: SmallRanges::new(),
        }
    }

    /// The request as RESP bytes (what a backend is sent).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Number of arguments (the command name included).
    pub fn len(&self) -> usize {
        self.args.len()
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Argument `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.args.get(i).map(|&(a, b)| &self.wire[a..b])
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.args.iter().map(|&(a, b)| &self.wire[a..b])
    }

    /// Argument `i` as owned bytes.
    pub fn to_bytes(&self, i: usize) -> Bytes {
        Bytes::copy_from_slice(&self[i])
    }

    /// A copy that owns its bytes.
    pub fn into_owned(self) -> Request<'static> {
        Request {
            wire: Cow::Owned(self.wire.into_owned()),
            args: self.args,
        }
    }
}

impl std::ops::Index<usize> for Request<'_> {
    type Output = [u8];

    /// Argument `i`; panics past the last one (check [`Request::len`] first).
    fn index(&self, i: usize) -> &[u8] {
        let (a, b) = self.args[i];
        &self.wire[a..b]
    }
}

/// A RESP length: optional '-', then decimal digits (no allocation, no UTF-8 pass).
fn parse_len(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(if neg { -v } else { v })
}

enum Guard {
    Incomplete,
    /// A request of no arguments, this many bytes long.
    Empty(usize),
    /// A complete request, this many bytes long.
    Complete(usize),
}

/// Argument byte ranges of one request (on the stack for the usual few arguments).
type SmallRanges = smallvec::SmallVec<[(usize, usize); 8]>;

/// Reads a `<int>\r\n` line starting at `start`. `Ok(None)`: incomplete; `Err`: the line is
/// longer than `max`; `Some((None, _))`: not a number.
#[allow(clippy::type_complexity)]
fn read_len_line(buf: &[u8], start: usize, max: usize) -> Result<Option<(Option<i64>, usize)>, ()> {
    let rest = &buf[start.min(buf.len())..];
    let Some(cr) = rest.iter().position(|&c| c == b'\r') else {
        return if rest.len() > max { Err(()) } else { Ok(None) };
    };
    if cr > max {
        return Err(());
    }
    if rest.len() < cr + 2 {
        return Ok(None);
    }
    let num = parse_len(&rest[..cr]);
    let num = if rest[cr + 1] == b'\n' { num } else { None };
    Ok(Some((num, start + cr + 2)))
}

/// Splits an inline command line into arguments with Redis's `sdssplitargs` rules:
/// spaces separate, `"..."` allows `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` allows `\'`.
/// Returns `None` on unbalanced quotes (or a closing quote not followed by a space).
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        // Redis parses the line as a C string: a NUL ends it.
        if i >= n || line[i] == 0 {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex(line[i + 2]).is_some()
                    && hex(line[i + 3]).is_some()
                {
                    cur.push(hex(line[i + 2]).unwrap_or(0) * 16 + hex(line[i + 3]).unwrap_or(0));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if is_space(c) || c == 0 => {
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// C's `isspace`, as `sdssplitargs` uses it (space, \t, \n, \v, \f, \r).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(input: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let mut b = BytesMut::from(input);
        RequestDecoder::default().decode(&mut b)
    }

    #[test]
    fn peek_views_requests_in_place() {
        let d = RequestDecoder::default();
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";
        let (r, used) = d.peek(buf).unwrap().unwrap();
        assert_eq!(used, 20);
        assert_eq!(r.wire(), &buf[..20]);
        assert_eq!(
            (r.len(), &r[0], r.get(1), r.get(2)),
            (2, &b"GET"[..], Some(&b"k"[..]), None)
        );
        let (r, used) = d.peek(&buf[20..]).unwrap().unwrap();
        assert_eq!(
            (used, r.iter().collect::<Vec<_>>()),
            (14, vec![&b"PING"[..]])
        );
        assert!(d.peek(&buf[..19]).unwrap().is_none());
        // Inline requests are re-encoded as RESP.
        let (r, used) = d.peek(b"set k 'a b'\r\nrest").unwrap().unwrap();
        assert_eq!(used, 13);
        assert_eq!(r.wire(), b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$3\r\na b\r\n");
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![&b"set"[..], b"k", b"a b"]
        );
        let (r, used) = d.peek(b"*0\r\n").unwrap().unwrap();
        assert_eq!((r.is_empty(), used), (true, 4));
        assert!(d.peek(b"*1\r\n$-5\r\n").is_err());
        let owned = Request::from_args(&["SELECT", "12"]);
        assert_eq!(owned.wire(), b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n");
        assert_eq!(&owned[1], b"12");
        assert_eq!(Request::from_args::<&str>(&[]).len(), 0);
    }

    #[test]
    fn multibulk_and_inline() {
        let r = dec(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap().unwrap();
        assert_eq!(r, vec![Bytes::from("GET"), Bytes::from("k")]);
        let r = dec(b"set k \"a b\\x41\"\r\n").unwrap().unwrap();
        assert_eq!(
            r,
            vec![Bytes::from("set"), Bytes::from("k"), Bytes::from("a bA")]
        );
        assert_eq!(dec(b"*2\r\n$3\r\nGET\r\n").unwrap(), None);
        assert_eq!(
            dec(b"\"unbalanced\r\n").unwrap_err().0,
            "unbalanced quotes in request"
        );
    }

    #[test]
    fn pipelined_requests_arriving_a_byte_at_a_time() {
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n*0\r\n";
        let d = RequestDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &c in wire.iter() {
            buf.put_u8(c);
            while let Some(args) = d.decode(&mut buf).unwrap() {
                got.push(args);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(
            got,
            vec![
                vec![Bytes::from("SET"), Bytes::from("k"), Bytes::new()],
                vec![Bytes::from("PING")],
                vec![],
            ]
        );
        // A bulk not followed by CRLF is an error, not a shifted parse.
        assert_eq!(
            dec(b"*1\r\n$1\r\nab\r\n").unwrap_err().0,
            "invalid bulk terminator"
        );
    }

    #[test]
    fn random_input_never_panics_or_loops() {
        // xorshift: deterministic garbage, biased towards RESP's own bytes.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"*$:+-\r\n0123456789 \"'\\x\0abc";
        for _ in 0..20_000 {
            let mut buf = BytesMut::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let c = if x.is_multiple_of(3) {
                    (x >> 8) as u8
                } else {
                    alphabet[(x as usize >> 8) % alphabet.len()]
                };
                buf.put_u8(c);
            }
            let d = RequestDecoder::default();
            // Each call must consume bytes, ask for more, or fail: never spin.
            for _ in 0..256 {
                let before = buf.len();
                match d.decode(&mut buf) {
                    Ok(Some(_)) if buf.len() < before => continue,
                    Ok(Some(_)) => panic!("decoded without consuming input"),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn limits_are_enforced_before_buffering() {
        assert_eq!(
            dec(b"*3000000\r\n").unwrap_err().0,
            "invalid multibulk length"
        );
        assert_eq!(
            dec(b"*1\r\n$999999999999\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        assert_eq!(dec(b"*1\r\n:5\r\n").unwrap_err().0, "expected '$', got ':'");
        assert_eq!(dec(b"*x\r\n").unwrap_err().0, "invalid multibulk length");
        assert_eq!(dec(b"*1\r\n$-1\r\n").unwrap_err().0, "invalid bulk length");
        assert_eq!(dec(b"*-10\r\n").unwrap(), Some(vec![]));
        assert!(dec(&vec![b'a'; 70 * 1024]).is_err());
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut out = BytesMut::new();
        Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]).encode(Protocol::Resp2, &mut out);
        assert_eq!(&out[..], b"*2\r\n$1\r\na\r\n:1\r\n");
        out.clear();
        Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]).encode(Protocol::Resp3, &mut out);
        assert_eq!(&out[..], b"%1\r\n$1\r\na\r\n:1\r\n");
        out.clear();
        Reply::NilArray.encode(Protocol::Resp2, &mut out);
        assert_eq!(&out[..], b"*-1\r\n");
    }
}

//! One benchmark connection: connect (with AUTH / HELLO 3), write pre-encoded commands, and
//! scan replies without decoding them. A reply is classified as success, error (keeping only
//! the error's first word, such as `WRONGTYPE`, in a fixed inline buffer) or out-of-band push,
//! so reading replies allocates nothing. Any RESP2 or RESP3 reply is framed correctly.

use bytes::{Buf, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::workload::encode_command;

/// How long connecting (and the AUTH/HELLO handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Deepest nesting of aggregate replies accepted (the workloads only get flat replies).
const MAX_DEPTH: usize = 32;

/// Bytes read per `read` call at least.
const READ_CHUNK: usize = 64 * 1024;

/// Longest error word kept (`WRONGTYPE`, `NOAUTH`, `MOVED`, ...); longer ones are cut.
const ERR_WORD_MAX: usize = 24;

/// Why a connection failed. The kind labels ([`ConnError::kind`]) are what the report counts
/// requests that got no reply under.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out connecting to {target}")]
    ConnectTimeout { target: String },
    #[error("{target} refused {command}: {reply}")]
    Handshake {
        target: String,
        command: &'static str,
        reply: String,
    },
    #[error("i/o error talking to {target}: {source}")]
    Io {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target} closed the connection")]
    Closed { target: String },
    #[error("no reply from {target} in time")]
    Timeout { target: String },
    #[error("protocol error from {target}: {reason}")]
    Protocol { target: String, reason: String },
}

impl ConnError {
    /// The label requests lost to this failure are counted under.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnError::Connect { .. } | ConnError::ConnectTimeout { .. } => "connect",
            ConnError::Handshake { .. } => "handshake",
            ConnError::Io { .. } => "io",
            ConnError::Closed { .. } => "closed",
            ConnError::Timeout { .. } => "timeout",
            ConnError::Protocol { .. } => "protocol",
        }
    }
}

/// How to open a connection.
#[derive(Clone, Debug, Default)]
pub struct ConnOptions {
    pub user: Option<String>,
    pub password: Option<String>,
    /// Switch to RESP3 with `HELLO 3` after connecting.
    pub resp3: bool,
}

/// The first word of an error reply, stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ErrWord {
    len: u8,
    bytes: [u8; ERR_WORD_MAX],
}

impl ErrWord {
    fn new(text: &[u8]) -> ErrWord {
        let word = text.split(|b| *b == b' ').next().unwrap_or(b"");
        let word = if word.is_empty() { b"ERR" } else { word };
        let len = word.len().min(ERR_WORD_MAX);
        let mut bytes = [0u8; ERR_WORD_MAX];
        bytes[..len].copy_from_slice(&word[..len]);
        ErrWord {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for ErrWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// What one complete reply was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error(ErrWord),
    /// A RESP3 push message: not the reply to any request.
    Push,
}

/// A frame that is not valid RESP.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(String);

/// Scans one reply at the start of `buf`: `Ok(None)` if it is incomplete, else its length in
/// bytes and what it was.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(usize, Outcome)>, ProtocolError> {
    let mut pos = 0;
    // RESP3 attributes (`|`) precede the reply they describe.
    while buf.get(pos) == Some(&b'|') {
        match skip(buf, pos, 0)? {
            Some(end) => pos = end,
            None => return Ok(None),
        }
    }
    let Some(&marker) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(end) = skip(buf, pos, 0)? else {
        return Ok(None);
    };
    let outcome = match marker {
        b'-' => {
            let cr = line_end(buf, pos + 1).unwrap_or(end);
            Outcome::Error(ErrWord::new(&buf[pos + 1..cr]))
        }
        b'!' => {
            // Blob error: `!<len>\r\n<text>\r\n`.
            let body = line_end(buf, pos + 1).map(|cr| cr + 2).unwrap_or(end);
            let body_end = end.saturating_sub(2).max(body);
            Outcome::Error(ErrWord::new(buf.get(body..body_end).unwrap_or(b"")))
        }
        b'>' => Outcome::Push,
        _ => Outcome::Ok,
    };
    Ok(Some((end, outcome)))
}

/// Index of the `\r` of the first `\r\n` at or after `from`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rel = buf.get(from..)?.iter().position(|&b| b == b'\n')?;
    let nl = from + rel;
    (nl > from && buf[nl - 1] == b'\r').then_some(nl - 1)
}

fn parse_len(bytes: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            ProtocolError(format!(
                "invalid length {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })
}

/// End (exclusive) of the value starting at `pos`, or `None` if it is not all in `buf` yet.
fn skip(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError(format!(
            "replies nested deeper than {MAX_DEPTH}"
        )));
    }
    let Some(&marker) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(cr) = line_end(buf, pos + 1) else {
        if buf.len() - pos > 64 * 1024 {
            return Err(ProtocolError("reply line longer than 64 KiB".into()));
        }
        return Ok(None);
    };
    let after_line = cr + 2;
    match marker {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after_line)),
        b'$' | b'=' | b'!' => {
            let len = parse_len(&buf[pos + 1..cr])?;
            if len < 0 {
                return Ok(Some(after_line));
            }
            let end = after_line
                .checked_add(len as usize)
                .and_then(|e| e.checked_add(2))
                .ok_or_else(|| ProtocolError("bulk length overflows".into()))?;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_len(&buf[pos + 1..cr])?;
            if n < 0 {
                return Ok(Some(after_line));
            }
            let items = if matches!(marker, b'%' | b'|') {
                n.saturating_mul(2)
            } else {
                n
            };
            let mut at = after_line;
            for _ in 0..items {
                match skip(buf, at, depth + 1)? {
                    Some(end) => at = end,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        other => Err(ProtocolError(format!(
            "unexpected reply type byte {:?}",
            other as char
        ))),
    }
}

/// A connected, authenticated socket and its read buffer.
pub struct Conn {
    pub stream: TcpStream,
    pub rbuf: BytesMut,
    pub target: String,
}

impl Conn {
    /// Connects to `target` (`host:port`) and runs the handshake.
    pub async fn connect(target: &str, opts: &ConnOptions) -> Result<Conn, ConnError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(target, opts))
            .await
            .unwrap_or_else(|_| {
                Err(ConnError::ConnectTimeout {
                    target: target.to_string(),
                })
            })
    }

    async fn connect_inner(target: &str, opts: &ConnOptions) -> Result<Conn, ConnError> {
        let stream = TcpStream::connect(target)
            .await
            .map_err(|source| ConnError::Connect {
                target: target.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            target: target.to_string(),
        };
        let user = opts.user.as_deref().unwrap_or("default");
        if opts.resp3 {
            let mut args = vec!["HELLO", "3"];
            if let Some(p) = &opts.password {
                args.extend(["AUTH", user, p]);
            }
            conn.handshake("HELLO 3", &args).await?;
        } else if let Some(p) = &opts.password {
            match &opts.user {
                Some(u) => conn.handshake("AUTH", &["AUTH", u, p]).await?,
                None => conn.handshake("AUTH", &["AUTH", p]).await?,
            }
        }
        Ok(conn)
    }

    async fn handshake(&mut self, what: &'static str, args: &[&str]) -> Result<(), ConnError> {
        let mut out = Vec::new();
        encode_command(args, &mut out);
        self.write_all(&out).await?;
        loop {
            if let Some((n, outcome)) = parse_reply(&self.rbuf).map_err(|e| self.protocol(e))? {
                let text = String::from_utf8_lossy(&self.rbuf[..n]).trim().to_string();
                self.rbuf.advance(n);
                return match outcome {
                    Outcome::Ok => Ok(()),
                    Outcome::Push => continue,
                    Outcome::Error(_) => Err(ConnError::Handshake {
                        target: self.target.clone(),
                        command: what,
                        reply: text.trim_start_matches('-').to_string(),
                    }),
                };
            }
            self.fill().await?;
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|source| ConnError::Io {
                target: self.target.clone(),
                source,
            })
    }

    /// Reads more bytes into the buffer (at least one, or an error).
    pub async fn fill(&mut self) -> Result<(), ConnError> {
        fill_from(&mut self.stream, &mut self.rbuf, &self.target).await
    }

    /// Takes the next complete reply off the buffer, if there is one.
    pub fn next_reply(&mut self) -> Result<Option<Outcome>, ConnError> {
        next_reply(&mut self.rbuf, &self.target)
    }

    fn protocol(&self, e: ProtocolError) -> ConnError {
        ConnError::Protocol {
            target: self.target.clone(),
            reason: e.0,
        }
    }
}

/// Reads more bytes from `stream` into `buf`.
pub async fn fill_from<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    target: &str,
) -> Result<(), ConnError> {
    buf.reserve(READ_CHUNK);
    let n = stream.read_buf(buf).await.map_err(|source| ConnError::Io {
        target: target.to_string(),
        source,
    })?;
    if n == 0 {
        return Err(ConnError::Closed {
            target: target.to_string(),
        });
    }
    Ok(())
}

/// Takes the next complete reply off `buf`, if there is one.
pub fn next_reply(buf: &mut BytesMut, target: &str) -> Result<Option<Outcome>, ConnError> {
    match parse_reply(buf) {
        Ok(Some((n, outcome))) => {
            buf.advance(n);
            Ok(Some(outcome))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(ConnError::Protocol {
            target: target.to_string(),
            reason: e.0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<(usize, Outcome)> {
        parse_reply(s.as_bytes()).unwrap()
    }

    #[test]
    fn simple_replies() {
        assert_eq!(parse("+OK\r\n"), Some((5, Outcome::Ok)));
        assert_eq!(parse(":42\r\n"), Some((5, Outcome::Ok)));
        assert_eq!(parse("$-1\r\n"), Some((5, Outcome::Ok)));
        assert_eq!(parse("$3\r\nabc\r\n"), Some((9, Outcome::Ok)));
        assert_eq!(parse("_\r\n"), Some((3, Outcome::Ok)));
        assert_eq!(parse("*-1\r\n"), Some((5, Outcome::Ok)));
    }

    #[test]
    fn errors_keep_their_first_word() {
        let (n, o) = parse("-WRONGTYPE Operation against a key\r\n").unwrap();
        assert_eq!(n, 36);
        match o {
            Outcome::Error(w) => assert_eq!(w.as_bytes(), b"WRONGTYPE"),
            other => panic!("{other:?}"),
        }
        match parse("!21\r\nSYNTAX invalid syntax\r\n").unwrap().1 {
            Outcome::Error(w) => assert_eq!(w.as_bytes(), b"SYNTAX"),
            other => panic!("{other:?}"),
        }
        match parse("-ERR\r\n+OK\r\n").unwrap().1 {
            Outcome::Error(w) => assert_eq!(w.as_bytes(), b"ERR"),
            other => panic!("{other:?}"),
        }
        match parse("-\r\n").unwrap().1 {
            Outcome::Error(w) => assert_eq!(w.as_bytes(), b"ERR"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        for s in [
            "",
            "+O",
            "+OK\r",
            "$3\r\nab",
            "$3\r\nabc\r",
            "*2\r\n$1\r\na\r\n",
            "%1\r\n+a\r\n",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn aggregates_and_resp3() {
        let s = "*2\r\n$1\r\na\r\n*1\r\n:1\r\n+next\r\n";
        assert_eq!(parse(s), Some((s.len() - 7, Outcome::Ok)));
        let s = "%2\r\n+a\r\n:1\r\n+b\r\n~1\r\n,1.5\r\n";
        assert_eq!(parse(s), Some((s.len(), Outcome::Ok)));
        let s = ">2\r\n$10\r\ninvalidate\r\n*0\r\n";
        assert_eq!(parse(s), Some((s.len(), Outcome::Push)));
        let s = "|1\r\n+key\r\n+val\r\n:5\r\n";
        assert_eq!(parse(s), Some((s.len(), Outcome::Ok)));
        let s = "=15\r\ntxt:Some string\r\n";
        assert_eq!(parse(s), Some((s.len(), Outcome::Ok)));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(parse_reply(b"hello\r\n").is_err());
        assert!(parse_reply(b"$x\r\n").is_err());
        let deep = "*1\r\n".repeat(100);
        assert!(parse_reply(deep.as_bytes()).is_err());
    }
}

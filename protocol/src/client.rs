//! The one RESP client of the project: connects to a node, sentinel or proxy, sends commands
//! (pipelined or one at a time) and decodes replies with `redis-protocol` into [`Reply`].
//! Reads are bounded: a reply larger than [`MAX_REPLY_BYTES`] is a protocol error.

use bytes::{Bytes, BytesMut};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::frame::{encode_command, Reply};
use crate::scan::Scanner;
use crate::types::Protocol;

/// Largest reply the client buffers before giving up on the peer (1 GiB).
pub const MAX_REPLY_BYTES: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o error talking to {peer}: {source}")]
    Io {
        peer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("protocol error from {peer}: {reason}")]
    Protocol { peer: String, reason: String },
    #[error("connection to {peer} closed")]
    Closed { peer: String },
    #[error("timed out talking to {peer}")]
    Timeout { peer: String },
}

/// Opens a TCP connection to `addr`, bound first to `source` (port 0) when given, so the peer
/// sees that source address (Redis's `bind-source-addr`). Addresses of the other IP family
/// than `source` are skipped; the last error is returned when none connects.
pub async fn connect_tcp(
    addr: impl tokio::net::ToSocketAddrs,
    source: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        if a.is_ipv4() != source.is_ipv4() {
            continue;
        }
        let socket = if a.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        match socket.connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no address of the same IP family as the source address {source}"),
        )
    }))
}

/// An async connection to a RESP server.
pub struct Client {
    stream: TcpStream,
    peer: String,
    buf: BytesMut,
    out: BytesMut,
    protocol: Protocol,
    /// Finds where the next reply ends before it is decoded: a partial reply is scanned
    /// once, and nesting deeper than [`crate::scan::MAX_DEPTH`] is refused before the
    /// (recursive) decoder could overflow the stack on it.
    scanner: Scanner,
}

impl Client {
    /// Connects to `addr` (`host:port`) within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Client, ClientError> {
        Client::connect_from(addr, None, timeout).await
    }

    /// Connects to `addr` (`host:port`) within `timeout`, from `source` when given (Redis's
    /// `bind-source-addr`).
    pub async fn connect_from(
        addr: &str,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let stream = tokio::time::timeout(timeout, connect_tcp(addr, source))
            .await
            .map_err(|_| ClientError::Timeout { peer: addr.into() })?
            .map_err(|source| ClientError::Io {
                peer: addr.into(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Client {
            stream,
            peer: addr.to_string(),
            buf: BytesMut::with_capacity(16 * 1024),
            out: BytesMut::with_capacity(16 * 1024),
            protocol: Protocol::Resp2,
            scanner: Scanner::default(),
        })
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Tells the decoder which dialect replies come in (after a successful `HELLO 3`).
    pub fn set_protocol(&mut self, p: Protocol) {
        self.protocol = p;
    }

    /// Sends one command and waits for its reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ClientError> {
        self.queue(args);
        self.flush().await?;
        self.read_reply().await
    }

    /// Queues a command without sending it (for pipelining); [`Client::flush`] sends.
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode_command(args, &mut self.out);
    }

    /// Queues raw bytes as they are (for tests that send malformed input).
    pub fn queue_raw(&mut self, raw: &[u8]) {
        self.out.extend_from_slice(raw);
    }

    pub async fn flush(&mut self) -> Result<(), ClientError> {
        let out = self.out.split();
        self.stream
            .write_all(&out)
            .await
            .map_err(|source| ClientError::Io {
                peer: self.peer.clone(),
                source,
            })
    }

    /// Reads the next reply (or push message).
    pub async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some(r) = self.try_decode()? {
                return Ok(r);
            }
            if self.buf.len() > MAX_REPLY_BYTES {
                return Err(ClientError::Protocol {
                    peer: self.peer.clone(),
                    reason: format!("reply larger than {MAX_REPLY_BYTES} bytes"),
                });
            }
            self.buf.reserve(16 * 1024);
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|source| ClientError::Io {
                    peer: self.peer.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(ClientError::Closed {
                    peer: self.peer.clone(),
                });
            }
        }
    }

    /// Reads the next reply, failing after `timeout`.
    pub async fn read_reply_timeout(&mut self, timeout: Duration) -> Result<Reply, ClientError> {
        match tokio::time::timeout(timeout, self.read_reply()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                peer: self.peer.clone(),
            }),
        }
    }

    /// A protocol error from this client's peer.
    fn protocol_error(&self, reason: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            peer: self.peer.clone(),
            reason: reason.to_string(),
        }
    }

    fn try_decode(&mut self) -> Result<Option<Reply>, ClientError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(len) = self
            .scanner
            .scan(&self.buf)
            .map_err(|e| self.protocol_error(e))?
        else {
            return Ok(None);
        };
        // `*-1` (RESP2 null array) is not representable in redis-protocol's frames.
        if self.buf.starts_with(b"*-1\r\n") {
            let _ = self.buf.split_to(5);
            return Ok(Some(Reply::NilArray));
        }
        // The decoder takes exactly the reply the scanner delimited.
        let mut reply = self.buf.split_to(len);
        let decoded = match self.protocol {
            Protocol::Resp2 => redis_protocol::resp2::decode::decode_bytes_mut(&mut reply)
                .map_err(|e| self.protocol_error(e))?
                .map(|(frame, _, _)| from_resp2(frame)),
            Protocol::Resp3 => {
                redis_protocol::resp3::decode::complete::decode_bytes_mut(&mut reply)
                    .map_err(|e| self.protocol_error(e))?
                    .map(|(frame, _, _)| from_resp3(frame))
            }
        };
        // A whole reply (by the scanner) that the decoder still found incomplete.
        decoded.map(Some).ok_or_else(|| {
            self.protocol_error(format_args!(
                "a {:?} reply the decoder could not read",
                self.protocol
            ))
        })
    }
}

fn from_resp2(f: redis_protocol::resp2::types::BytesFrame) -> Reply {
    use redis_protocol::resp2::types::BytesFrame as F;
    match f {
        F::SimpleString(s) => {
            if &s[..] == b"OK" {
                Reply::Ok
            } else {
                Reply::Status(String::from_utf8_lossy(&s).into_owned().into())
            }
        }
        F::Error(e) => Reply::Error(e.to_string().into()),
        F::Integer(i) => Reply::Int(i),
        F::BulkString(b) => Reply::Bulk(b),
        F::Array(items) => Reply::Array(items.into_iter().map(from_resp2).collect()),
        F::Null => Reply::Nil,
    }
}

fn from_resp3(f: redis_protocol::resp3::types::BytesFrame) -> Reply {
    use redis_protocol::resp3::types::BytesFrame as F;
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match f {
        F::BlobString { data, .. } => Reply::Bulk(data),
        F::BlobError { data, .. } => Reply::Error(text(&data).into()),
        F::SimpleString { data, .. } => {
            if &data[..] == b"OK" {
                Reply::Ok
            } else {
                Reply::Status(text(&data).into())
            }
        }
        F::SimpleError { data, .. } => Reply::Error(data.to_string().into()),
        F::Boolean { data, .. } => Reply::Bool(data),
        F::Null => Reply::Nil,
        F::Number { data, .. } => Reply::Int(data),
        F::Double { data, .. } => Reply::Double(data),
        F::BigNumber { data, .. } => Reply::Bulk(data),
        F::VerbatimString { data, .. } => Reply::Verbatim("txt", data),
        F::Array { data, .. } => Reply::Array(data.into_iter().map(from_resp3).collect()),
        F::Map { data, .. } => Reply::Map(
            data.into_iter()
                .map(|(k, v)| (from_resp3(k), from_resp3(v)))
                .collect(),
        ),
        F::Set { data, .. } => Reply::Set(data.into_iter().map(from_resp3).collect()),
        F::Push { data, .. } => Reply::Push(data.into_iter().map(from_resp3).collect()),
        F::Hello { .. } | F::ChunkedString(_) => Reply::Error("ERR unexpected frame".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A one-connection server that answers the first command with `reply`, sent in pieces.
    async fn server(reply: Vec<u8>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 256];
            let _ = s.read(&mut b).await;
            for piece in reply.chunks(7) {
                let _ = s.write_all(piece).await;
                let _ = s.flush().await;
                tokio::task::yield_now().await;
            }
            let _ = s.read(&mut b).await;
        });
        addr
    }

    async fn call(reply: &[u8]) -> Result<Reply, ClientError> {
        let addr = server(reply.to_vec()).await;
        let mut c = Client::connect(&addr, Duration::from_secs(5))
            .await
            .unwrap();
        c.call(&["PING"]).await
    }

    #[tokio::test]
    async fn replies_in_pieces_and_nested_ones_decode() {
        assert!(matches!(call(b"+OK\r\n").await, Ok(Reply::Ok)));
        assert!(matches!(call(b"*-1\r\n").await, Ok(Reply::NilArray)));
        let nested = call(b"*2\r\n*1\r\n$5\r\nhello\r\n:7\r\n").await.unwrap();
        assert_eq!(
            format!("{nested:?}").matches("hello").count(),
            1,
            "{nested:?}"
        );
    }

    #[tokio::test]
    async fn a_reply_nested_too_deep_is_a_protocol_error_naming_the_peer() {
        let mut deep = b"*1\r\n".repeat(100_000);
        deep.extend_from_slice(b":1\r\n");
        match call(&deep).await {
            Err(ClientError::Protocol { peer, reason }) => {
                assert!(peer.starts_with("127.0.0.1:"), "{peer}");
                assert!(reason.contains("nested too deep"), "{reason}");
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }
}

//! The server side of a RESP connection: reads client requests (bounded by
//! [`RequestLimits`]) and writes [`Reply`] values in the client's protocol. Used by the
//! sentinel and the proxy; the node has its own tuned loop over the same decoder.
//!
//! Guarantee: a peer can never make this buffer more than the request limits allow, and a
//! protocol violation is reported as [`ConnError::Protocol`] after the matching
//! `-ERR Protocol error: ...` reply has been written, as Redis does.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{ProtocolError, Reply, RequestDecoder, RequestLimits};
use crate::types::Protocol;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("i/o error with {peer}: {source}")]
    Io {
        peer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{peer} sent bad RESP: {source}")]
    Protocol {
        peer: String,
        #[source]
        source: ProtocolError,
    },
}

/// A client connection seen from the server side.
pub struct Connection<S> {
    stream: S,
    peer: String,
    decoder: RequestDecoder,
    inbuf: BytesMut,
    out: BytesMut,
    /// The dialect replies are encoded in (RESP3 after `HELLO 3`).
    pub protocol: Protocol,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, peer: impl Into<String>, limits: RequestLimits) -> Self {
        Connection {
            stream,
            peer: peer.into(),
            decoder: RequestDecoder::new(limits),
            inbuf: BytesMut::with_capacity(16 * 1024),
            out: BytesMut::with_capacity(16 * 1024),
            protocol: Protocol::Resp2,
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The next request (its arguments, never empty), or `None` when the peer closed the
    /// connection cleanly between requests.
    pub async fn read_request(&mut self) -> Result<Option<Vec<Bytes>>, ConnError> {
        loop {
            if let Some(req) = self.next_buffered()? {
                return Ok(Some(req));
            }
            // About to wait for the peer: send what is queued first.
            self.flush().await?;
            self.inbuf.reserve(16 * 1024);
            let n = self
                .stream
                .read_buf(&mut self.inbuf)
                .await
                .map_err(|source| self.io(source))?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// A request already in the buffer (pipelining), without reading from the socket.
    pub fn next_buffered(&mut self) -> Result<Option<Vec<Bytes>>, ConnError> {
        loop {
            match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(other) => return Ok(other),
                Err(source) => {
                    Reply::Error(format!("ERR {source}").into())
                        .encode(self.protocol, &mut self.out);
                    return Err(ConnError::Protocol {
                        peer: self.peer.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Queues a reply; it is sent by [`Connection::flush`] or before the next socket read.
    pub fn queue(&mut self, reply: &Reply) {
        reply.encode(self.protocol, &mut self.out);
    }

    /// Queues bytes that are already RESP (e.g. a reply relayed from a backend).
    pub fn queue_raw(&mut self, raw: &[u8]) {
        self.out.extend_from_slice(raw);
    }

    /// Bytes queued and not yet sent (for output-buffer limits).
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    pub async fn flush(&mut self) -> Result<(), ConnError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = self.out.split();
        self.stream
            .write_all(&out)
            .await
            .map_err(|source| self.io(source))
    }

    /// Sends `reply` now.
    pub async fn send(&mut self, reply: &Reply) -> Result<(), ConnError> {
        self.queue(reply);
        self.flush().await
    }

    /// The underlying stream (e.g. to split it for pub/sub).
    pub fn into_parts(self) -> (S, BytesMut, BytesMut) {
        (self.stream, self.inbuf, self.out)
    }

    fn io(&self, source: std::io::Error) -> ConnError {
        ConnError::Io {
            peer: self.peer.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_pipelined_requests_and_answers_in_order() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut conn = Connection::new(a, "test", RequestLimits::default());
        b.write_all(b"*1\r\n$4\r\nPING\r\nECHO hi\r\n")
            .await
            .unwrap();
        let r1 = conn.read_request().await.unwrap().unwrap();
        assert_eq!(r1, vec![Bytes::from_static(b"PING")]);
        conn.queue(&Reply::status("PONG"));
        let r2 = conn.read_request().await.unwrap().unwrap();
        assert_eq!(r2[1], Bytes::from_static(b"hi"));
        conn.send(&Reply::bulk_str("hi")).await.unwrap();
        let mut got = vec![0u8; 15];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"+PONG\r\n$2\r\nhi\r\n");
        drop(b);
        assert!(conn.read_request().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn protocol_error_is_answered_then_reported() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut conn = Connection::new(a, "test", RequestLimits::default());
        b.write_all(b"*1\r\n$x\r\n").await.unwrap();
        assert!(matches!(
            conn.read_request().await,
            Err(ConnError::Protocol { .. })
        ));
        conn.flush().await.unwrap();
        let mut got = vec![0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"-ERR ");
    }
}

//! Socket reads that know when a socket is drained. Tokio's `try_read` keeps a socket marked
//! readable after a read that returned data, so the next wait costs one more `recv` that
//! returns EAGAIN: one wasted system call per unpipelined request. A read that filled less
//! than the room it was given has drained the socket (as Redis and twemproxy assume), so
//! [`try_read_drained`] clears the readiness then, and the next wait goes straight to epoll.
//! Race-free: tokio only clears readiness that no newer event has set meanwhile.

use bytes::BytesMut;
use std::io;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Reads once into `buf`'s spare capacity (reserve room first); `Ok(0)` is end of stream and
/// `WouldBlock` means nothing was there.
pub fn try_read_drained(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let mut got = 0usize;
    let r = stream.try_io(Interest::READABLE, || {
        let spare = buf.spare_capacity_mut();
        let room = spare.len();
        let n = socket2::SockRef::from(stream).recv(spare)?;
        got = n;
        if n > 0 && n < room {
            // Drained: report "would block" so tokio clears the readiness; `got` keeps n.
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    let n = match r {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => got,
        Err(e) => return Err(e),
    };
    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn short_reads_then_waits_for_more() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        let mut buf = BytesMut::with_capacity(64);
        a.write_all(b"hello").await.unwrap();
        b.readable().await.unwrap();
        assert_eq!(try_read_drained(&b, &mut buf).unwrap(), 5);
        // Readiness was cleared: the wait completes only when more data arrives.
        let more = async {
            b.readable().await.unwrap();
            try_read_drained(&b, &mut buf).unwrap()
        };
        let write = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            a.write_all(b" world").await.unwrap();
        };
        let (n, ()) = tokio::join!(more, write);
        assert_eq!(n, 6);
        assert_eq!(&buf[..], b"hello world");
        drop(a);
        b.readable().await.unwrap();
        assert_eq!(try_read_drained(&b, &mut buf).unwrap(), 0);
    }

    #[tokio::test]
    async fn a_full_buffer_keeps_the_socket_readable() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        a.write_all(&[7u8; 100]).await.unwrap();
        let mut buf = BytesMut::with_capacity(10);
        let mut total = 0;
        while total < 100 {
            b.readable().await.unwrap();
            buf.reserve(10);
            match try_read_drained(&b, &mut buf) {
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(buf.len(), 100);
    }
}

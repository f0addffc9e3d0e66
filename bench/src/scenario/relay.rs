//! A TCP relay in front of one node, for the `partition` scenario: it forwards every
//! connection made to its own loopback port on to the node, and can cut one source address
//! off. `cut(ip)` closes every current connection whose peer is `ip` (both ends see the link
//! drop) and refuses new ones from it (accepted, then closed at once) until `heal()`.
//! Connections from other addresses are untouched. Forwarding copies through two bounded
//! buffers per connection. Dropping the relay stops it and closes every connection.

use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Buffer size of each direction of a relayed connection.
const COPY_BUFFER: usize = 16 * 1024;
/// How long the relay waits for the node to accept its side of a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What the accept loop and the connections share.
#[derive(Default)]
struct State {
    /// Source addresses cut off.
    cut: HashSet<IpAddr>,
    /// Open connections: id -> (peer address, dropping the sender ends the connection).
    conns: HashMap<u64, (IpAddr, oneshot::Sender<()>)>,
    next_id: u64,
}

/// A running relay; see the module doc.
pub struct Relay {
    /// The relay's own address (`127.0.0.1:PORT`).
    pub addr: SocketAddr,
    /// The node it forwards to.
    pub target: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("relay: cannot bind a loopback port")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let accept = tokio::spawn(accept_loop(listener, target, state.clone()));
        Ok(Relay {
            addr,
            target,
            state,
            accept,
        })
    }

    /// Cuts `source` off: closes its current connections and refuses new ones. Returns how
    /// many connections were closed.
    pub fn cut(&self, source: IpAddr) -> usize {
        let mut s = lock(&self.state);
        s.cut.insert(source);
        let ids: Vec<u64> = s
            .conns
            .iter()
            .filter(|(_, (peer, _))| *peer == source)
            .map(|(id, _)| *id)
            .collect();
        // Dropping a connection's sender ends its task, which closes both sockets.
        for id in &ids {
            s.conns.remove(id);
        }
        ids.len()
    }

    /// Lets every source address in again.
    pub fn heal(&self) {
        lock(&self.state).cut.clear();
    }

    /// Open connections (for tests and logs).
    pub fn connections(&self) -> usize {
        lock(&self.state).conns.len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        lock(&self.state).conns.clear();
    }
}

/// The state lock; a panic elsewhere while holding it leaves the state usable.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: Arc<Mutex<State>>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "relay: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut s = lock(&state);
            if s.cut.contains(&peer.ip()) {
                // Refused: dropping the stream closes it at once.
                continue;
            }
            let id = s.next_id;
            s.next_id += 1;
            s.conns.insert(id, (peer.ip(), tx));
            id
        };
        let state = state.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = forward(client, target) => {}
                // The sender was dropped: the connection was cut (or the relay stopped).
                _ = rx => {}
            }
            lock(&state).conns.remove(&id);
        });
    }
}

/// Copies both ways between `client` and a new connection to `target` until either side
/// closes.
async fn forward(mut client: TcpStream, target: SocketAddr) {
    let mut node = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        _ => return,
    };
    let _ = client.set_nodelay(true);
    let _ = node.set_nodelay(true);
    let _ =
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut node, COPY_BUFFER, COPY_BUFFER)
            .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server on a free loopback port.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn connect_from(relay: &Relay, source: &str) -> TcpStream {
        let ip: IpAddr = source.parse().unwrap();
        tandem_protocol::client::connect_tcp(relay.addr, Some(ip))
            .await
            .unwrap()
    }

    /// Sends a line and reads its echo; false when the connection is closed.
    async fn round_trip(s: &mut TcpStream) -> bool {
        if s.write_all(b"ping\n").await.is_err() {
            return false;
        }
        let mut buf = [0u8; 5];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await,
            Ok(Ok(_))
        ) && &buf == b"ping\n"
    }

    #[tokio::test]
    async fn cut_drops_and_refuses_one_source_only_until_healed() {
        let relay = Relay::start(echo().await).await.unwrap();
        let mut a = connect_from(&relay, "127.0.0.1").await;
        let mut b = connect_from(&relay, "127.0.0.2").await;
        assert!(round_trip(&mut a).await);
        assert!(round_trip(&mut b).await);

        assert_eq!(relay.cut("127.0.0.2".parse().unwrap()), 1);
        assert!(!round_trip(&mut b).await, "the cut connection still works");
        assert!(round_trip(&mut a).await, "another source was cut too");
        // New connections from the cut source are closed at once.
        let mut c = connect_from(&relay, "127.0.0.2").await;
        assert!(!round_trip(&mut c).await);
        let mut d = connect_from(&relay, "127.0.0.1").await;
        assert!(round_trip(&mut d).await);

        relay.heal();
        let mut e = connect_from(&relay, "127.0.0.2").await;
        assert!(round_trip(&mut e).await);
        assert!(round_trip(&mut a).await);
    }
}

//! Pub/Sub: who is subscribed to which channel or pattern, and message delivery. Each
//! subscriber has a bounded queue; a subscriber too slow to drain it is disconnected (Redis's
//! `client-output-buffer-limit pubsub`), so a slow reader can never grow the server's memory.

use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::clients::ClientInfo;

/// Messages queued per subscriber before it is considered too slow and disconnected.
pub const SUBSCRIBER_QUEUE: usize = 16 * 1024;
/// Bytes of messages queued per subscriber before it is disconnected (Redis's default
/// `client-output-buffer-limit pubsub 32mb`). Counted in the client's `output_buf`.
pub const SUBSCRIBER_MAX_BYTES: usize = 32 << 20;

/// A message on its way to a subscriber.
#[derive(Debug, Clone)]
pub enum Message {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
}

#[derive(Clone)]
struct Subscriber {
    tx: mpsc::Sender<Message>,
    client: Arc<ClientInfo>,
}

impl Message {
    /// Bytes this message accounts for in its subscriber's output buffer.
    pub fn size(&self) -> usize {
        match self {
            Message::Message { channel, payload } => 32 + channel.len() + payload.len(),
            Message::PMessage {
                pattern,
                channel,
                payload,
            } => 48 + pattern.len() + channel.len() + payload.len(),
        }
    }
}

impl Subscriber {
    fn deliver(&self, m: Message) -> bool {
        if self.client.is_killed() {
            return false;
        }
        let size = m.size();
        let queued = self.client.output_buf.fetch_add(size, Ordering::Relaxed) + size;
        if queued > SUBSCRIBER_MAX_BYTES {
            self.client.output_buf.fetch_sub(size, Ordering::Relaxed);
            tracing::warn!(client = self.client.id, peer = %self.client.addr, queued, "disconnecting pub/sub client: output buffer limit reached (slow subscriber)");
            self.client.request_kill();
            return false;
        }
        match self.tx.try_send(m) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.client.output_buf.fetch_sub(size, Ordering::Relaxed);
                tracing::warn!(client = self.client.id, peer = %self.client.addr, "disconnecting pub/sub client: output queue full (slow subscriber)");
                self.client.request_kill();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.client.output_buf.fetch_sub(size, Ordering::Relaxed);
                false
            }
        }
    }
}

type Subs = HashMap<Bytes, HashMap<u64, Subscriber>>;

#[derive(Default)]
pub struct PubSub {
    channels: RwLock<Subs>,
    patterns: RwLock<Subs>,
}

impl PubSub {
    /// Subscribes; false if the client was already subscribed to `channel`.
    pub fn subscribe(
        &self,
        client: &Arc<ClientInfo>,
        tx: &mpsc::Sender<Message>,
        channel: Bytes,
    ) -> bool {
        add(&self.channels, client, tx, channel)
    }
    pub fn psubscribe(
        &self,
        client: &Arc<ClientInfo>,
        tx: &mpsc::Sender<Message>,
        pattern: Bytes,
    ) -> bool {
        add(&self.patterns, client, tx, pattern)
    }
    pub fn unsubscribe(&self, client: u64, channel: &[u8]) -> bool {
        remove(&self.channels, client, channel)
    }
    pub fn punsubscribe(&self, client: u64, pattern: &[u8]) -> bool {
        remove(&self.patterns, client, pattern)
    }

    /// Delivers to channel and pattern subscribers; returns how many received it.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.read().get(channel) {
            for s in subs.values() {
                let m = Message::Message {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                if s.deliver(m) {
                    n += 1;
                }
            }
        }
        for (pattern, subs) in self.patterns.read().iter() {
            if tandem_protocol::glob::matches(pattern, channel, false) {
                for s in subs.values() {
                    let m = Message::PMessage {
                        pattern: pattern.clone(),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    };
                    if s.deliver(m) {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// Active channels (with at least one subscriber) matching `pattern` (all if `None`).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.channels
            .read()
            .keys()
            .filter(|c| pattern.is_none_or(|p| tandem_protocol::glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, |s| s.len())
    }

    /// Number of distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.patterns.read().len()
    }

    /// Total channel subscriptions, for INFO's `pubsub_channels`.
    pub fn num_channels(&self) -> usize {
        self.channels.read().len()
    }
}

fn add(
    map: &RwLock<Subs>,
    client: &Arc<ClientInfo>,
    tx: &mpsc::Sender<Message>,
    key: Bytes,
) -> bool {
    let mut m = map.write();
    let subs = m.entry(key).or_default();
    if subs.contains_key(&client.id) {
        return false;
    }
    subs.insert(
        client.id,
        Subscriber {
            tx: tx.clone(),
            client: client.clone(),
        },
    );
    true
}

fn remove(map: &RwLock<Subs>, client: u64, key: &[u8]) -> bool {
    let mut m = map.write();
    let Some(subs) = m.get_mut(key) else {
        return false;
    };
    let removed = subs.remove(&client).is_some();
    if subs.is_empty() {
        m.remove(key);
    }
    removed
}

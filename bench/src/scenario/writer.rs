//! The writers of the `failover` and `partition` scenarios: a few clients writing unique keys
//! (`PREFIX:RUN:CLIENT:SEQ`) through the proxy at a fixed total rate (open loop), each
//! acknowledged write read back once. Every acknowledgement and every failure is logged with
//! its send time, so a scenario can later check each acknowledged key and split the counts
//! at its fault's time.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tandem_protocol::client::Client;
use tandem_protocol::Reply;

use super::{CALL_TIMEOUT, CONNECT_TIMEOUT};

/// One acknowledged write.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub seq: u64,
    pub sent: Instant,
    pub at: Instant,
}

/// How a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An error reply (the proxy or the node refused the write).
    Refused,
    /// No reply: connect error, closed connection or timeout.
    NoReply,
}

/// What one writer saw.
#[derive(Debug, Default)]
pub struct WriterLog {
    pub acked: Vec<Ack>,
    /// (send time, kind) of every failed write.
    pub failed: Vec<(Instant, Failure)>,
    pub reads: u64,
    /// Read-backs of the write just acknowledged that found nothing (or another value).
    pub stale: u64,
}

struct Shared {
    stop: AtomicBool,
    fault_at: OnceLock<Instant>,
    acked_after_fault: AtomicU64,
}

/// The running writers of one scenario run.
pub struct Writers {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<WriterLog>>,
}

/// Judges the reply to a GET of a key just written with `written`, as read back after its
/// acknowledgement: `Some(true)` if it is stale (another value, or none), `Some(false)` if it
/// is the value written, `None` if the reply is not a value (an error).
pub fn read_back_stale(reply: &Reply, written: &[u8]) -> Option<bool> {
    match reply {
        Reply::Bulk(b) => Some(b.as_ref() != written),
        Reply::Nil => Some(true),
        _ => None,
    }
}

/// The key of write `seq` of `client` in `run`.
pub fn key(prefix: &str, run: usize, client: usize, seq: u64) -> String {
    format!("{prefix}:{run}:{client}:{seq}")
}

impl Writers {
    /// Starts `clients` writers on `proxy` sharing `rate` writes per second.
    pub fn start(proxy: &str, prefix: &'static str, run: usize, clients: usize, rate: f64) -> Self {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            fault_at: OnceLock::new(),
            acked_after_fault: AtomicU64::new(0),
        });
        let interval = Duration::from_secs_f64(clients as f64 / rate);
        let tasks = (0..clients)
            .map(|id| {
                tokio::spawn(writer(
                    proxy.to_string(),
                    prefix,
                    run,
                    id,
                    interval,
                    shared.clone(),
                ))
            })
            .collect();
        Writers { shared, tasks }
    }

    /// Records now as the fault's time and returns it.
    pub fn mark_fault(&self) -> Instant {
        *self.shared.fault_at.get_or_init(Instant::now)
    }

    /// Acknowledged writes sent after the fault (writes have resumed once this is > 0).
    pub fn acked_after_fault(&self) -> u64 {
        self.shared.acked_after_fault.load(Ordering::Relaxed)
    }

    /// Waits until a write sent after the fault is acknowledged, or `deadline`.
    pub async fn wait_resumed(&self, deadline: Instant) {
        while self.acked_after_fault() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers and returns their logs (index = client id).
    pub async fn stop(self) -> Result<Vec<WriterLog>> {
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            logs.push(t.await.context("a writer task failed")?);
        }
        Ok(logs)
    }
}

/// Every acknowledged key of `logs`, with its ack.
pub fn acked_keys<'a>(
    prefix: &'a str,
    run: usize,
    logs: &'a [WriterLog],
) -> impl Iterator<Item = (String, Ack)> + 'a {
    logs.iter().enumerate().flat_map(move |(id, l)| {
        l.acked
            .iter()
            .map(move |a| (key(prefix, run, id, a.seq), *a))
    })
}

/// The unavailability window: the longest silence between two acknowledgements that ends
/// after `fault_at` (replies already on the wire at the fault do not end it early), in ms;
/// None when no write sent after the fault was acknowledged.
pub fn window_ms(logs: &[WriterLog], fault_at: Instant) -> Option<f64> {
    let resumed = logs
        .iter()
        .any(|l| l.acked.iter().any(|a| a.sent > fault_at));
    let mut acks: Vec<Instant> = logs
        .iter()
        .flat_map(|l| l.acked.iter().map(|a| a.at))
        .collect();
    acks.sort();
    acks.windows(2)
        .filter(|w| w[1] > fault_at)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .max_by(|a, b| a.total_cmp(b))
        .filter(|_| resumed)
}

/// One writer: a write every `interval` (open loop: a late schedule is caught up, never
/// stretched), each acknowledged write read back once through the proxy.
async fn writer(
    proxy: String,
    prefix: &'static str,
    run: usize,
    id: usize,
    interval: Duration,
    shared: Arc<Shared>,
) -> WriterLog {
    let mut log = WriterLog::default();
    let mut conn: Option<Client> = None;
    let mut next = tokio::time::Instant::now() + interval.mul_f64(id as f64 / 8.0);
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        next += interval;
        seq += 1;
        let sent = Instant::now();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Client::connect(&proxy, CONNECT_TIMEOUT).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    log.failed.push((sent, Failure::NoReply));
                    continue;
                }
            },
        };
        let k = key(prefix, run, id, seq);
        let v = seq.to_string();
        c.queue(&["SET", k.as_str(), v.as_str()]);
        let reply = match c.flush().await {
            Ok(()) => c.read_reply_timeout(CALL_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(Reply::Ok) => {
                log.acked.push(Ack {
                    seq,
                    sent,
                    at: Instant::now(),
                });
                if shared.fault_at.get().is_some_and(|t| sent > *t) {
                    shared.acked_after_fault.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {
                log.failed.push((sent, Failure::Refused));
                continue;
            }
            Err(_) => {
                log.failed.push((sent, Failure::NoReply));
                conn = None;
                continue;
            }
        }
        // Read back the write just acknowledged: nothing there is a stale read.
        c.queue(&["GET", k.as_str()]);
        let reply = match c.flush().await {
            Ok(()) => c.read_reply_timeout(CALL_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(r) => {
                if let Some(stale) = read_back_stale(&r, v.as_bytes()) {
                    log.reads += 1;
                    log.stale += u64::from(stale);
                }
            }
            Err(_) => conn = None,
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u64, t0: Instant, sent_ms: u64, at_ms: u64) -> Ack {
        Ack {
            seq,
            sent: t0 + Duration::from_millis(sent_ms),
            at: t0 + Duration::from_millis(at_ms),
        }
    }

    #[test]
    fn window_is_the_longest_gap_ending_after_the_fault() {
        let t0 = Instant::now();
        let logs = vec![
            WriterLog {
                acked: vec![
                    ack(1, t0, 0, 10),
                    ack(2, t0, 100, 110),
                    ack(3, t0, 900, 950),
                ],
                ..Default::default()
            },
            WriterLog {
                acked: vec![ack(1, t0, 120, 130)],
                ..Default::default()
            },
        ];
        // Fault at 200 ms: the gap 130 -> 950 ends after it.
        let w = window_ms(&logs, t0 + Duration::from_millis(200)).unwrap();
        assert!((w - 820.0).abs() < 1.0, "{w}");
        // No write sent after the fault was acknowledged: no window.
        assert_eq!(window_ms(&logs, t0 + Duration::from_millis(1000)), None);
        let keys: Vec<String> = acked_keys("p", 3, &logs).map(|(k, _)| k).collect();
        assert_eq!(keys, ["p:3:0:1", "p:3:0:2", "p:3:0:3", "p:3:1:1"]);
    }
}

//! The load engine: one task per connection, in one of two modes.
//!
//! - Closed loop: each connection sends `pipeline` commands, waits for all their replies, and
//!   sends again at once. Latency is from the batch's send to each reply. With `--requests N`
//!   exactly N requests are sent in total (connections claim batches from a shared budget).
//! - Open loop (`--rate R`): request k of a connection is due at `start + phase + k/r` (r = R /
//!   clients) and is sent then, or as soon as possible if the sender is late, whatever replies
//!   are still outstanding. Latency is measured from that *intended* time, so a stalled server
//!   shows as a stall in the percentiles instead of as a pause in sending (no coordinated
//!   omission). A reader task per connection matches replies to the queue of intended times.
//!
//! A lost connection counts its unanswered requests as failed (by kind) and is reopened until
//! the run ends. After the deadline, replies still outstanding get [`DRAIN_GRACE`] to arrive.

use bytes::BytesMut;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;

use crate::conn::{fill_from, next_reply, Conn, ConnError, ConnOptions, Outcome};
use crate::histogram::{micros, Stats};
use crate::progress::{Pending, Progress};
use crate::workload::{Command, Generator, WorkloadSpec};

/// How long replies still outstanding at the end of a run may take before they count as
/// `timeout` failures.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Pause between reconnection attempts.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// Reconnection attempts in a row before a connection gives up (runs bounded by request count;
/// runs bounded by time retry until the deadline).
pub const MAX_RECONNECT_ATTEMPTS: u32 = 50;

/// Most requests an open-loop connection leaves unanswered before it waits (memory bound; the
/// wait still shows in latencies, which are measured from the intended send time).
pub const MAX_IN_FLIGHT: usize = 100_000;

/// Largest write an open-loop sender makes at once when it is behind schedule.
const MAX_WRITE: usize = 256 * 1024;

/// What ends a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// Exactly this many requests in total.
    Requests(u64),
    /// Send until this much time has passed.
    Duration(Duration),
}

/// Closed or open loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Closed {
        pipeline: usize,
    },
    /// Requests per second across all connections.
    Open {
        rate: f64,
    },
}

/// One run against one target.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub target: String,
    pub clients: usize,
    pub mode: Mode,
    pub limit: Limit,
    pub conn: ConnOptions,
    pub workload: WorkloadSpec,
}

/// What a run measured.
pub struct LoadResult {
    pub stats: Stats,
    /// From the first request to the last reply.
    pub elapsed: Duration,
}

/// State shared by the connections of one run.
struct Shared {
    spec: LoadSpec,
    start: Instant,
    deadline: Option<Instant>,
    /// Requests not yet claimed (closed loop with a request limit).
    budget: AtomicU64,
    progress: Option<Arc<Progress>>,
}

impl Shared {
    /// Claims up to `want` requests; 0 means the run is over.
    fn claim(&self, want: usize) -> usize {
        match self.spec.limit {
            Limit::Duration(_) => match self.deadline {
                Some(d) if Instant::now() >= d => 0,
                _ => want,
            },
            Limit::Requests(_) => {
                let mut got = 0;
                let _ = self
                    .budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                        got = left.min(want as u64);
                        (got > 0).then_some(left - got)
                    });
                got as usize
            }
        }
    }

    fn over(&self) -> bool {
        match self.spec.limit {
            Limit::Duration(_) => self.deadline.is_some_and(|d| Instant::now() >= d),
            Limit::Requests(_) => self.budget.load(Ordering::Relaxed) == 0,
        }
    }

    /// When replies still outstanding stop being waited for (only for timed runs).
    fn drain_deadline(&self) -> Option<Instant> {
        self.deadline.map(|d| d + DRAIN_GRACE)
    }

    /// Reopens a connection after a failure; `None` when the run is over or it gave up.
    async fn reconnect(&self, stats: &mut Stats) -> Option<Conn> {
        let mut attempts = 0;
        loop {
            if self.over() {
                return None;
            }
            match Conn::connect(&self.spec.target, &self.spec.conn).await {
                Ok(c) => return Some(c),
                Err(e) => {
                    stats.reconnect_failures += 1;
                    attempts += 1;
                    tracing::debug!(error = %e, "reconnect failed");
                    if matches!(self.spec.limit, Limit::Requests(_))
                        && attempts >= MAX_RECONNECT_ATTEMPTS
                    {
                        return None;
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        }
    }
}

/// Runs the load: opens every connection first (any failure fails the run), then drives them
/// until the limit, and merges their measurements.
pub async fn run(spec: LoadSpec, progress: Option<Arc<Progress>>) -> Result<LoadResult, ConnError> {
    let clients = spec.clients.max(1);
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..clients {
        let target = spec.target.clone();
        let opts = spec.conn.clone();
        connecting.spawn(async move { (i, Conn::connect(&target, &opts).await) });
    }
    let mut conns: Vec<Option<Conn>> = (0..clients).map(|_| None).collect();
    while let Some(joined) = connecting.join_next().await {
        if let Ok((i, c)) = joined {
            conns[i] = Some(c?);
        }
    }

    let start = Instant::now();
    let budget = match spec.limit {
        Limit::Requests(n) => n,
        Limit::Duration(_) => 0,
    };
    let deadline = match spec.limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Requests(_) => None,
    };
    let shared = Arc::new(Shared {
        spec,
        start,
        deadline,
        budget: AtomicU64::new(budget),
        progress,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let Some(conn) = conn else { continue };
        let shared = Arc::clone(&shared);
        match shared.spec.mode {
            Mode::Closed { pipeline } => tasks.spawn(closed_loop(conn, i, pipeline.max(1), shared)),
            Mode::Open { rate } => tasks.spawn(open_loop(conn, i, clients, rate, shared)),
        };
    }
    let mut stats = Stats::new();
    let mut end = start;
    while let Some(joined) = tasks.join_next().await {
        if let Ok((s, last)) = joined {
            stats.merge(&s);
            end = end.max(last);
        }
    }
    Ok(LoadResult {
        stats,
        elapsed: end.duration_since(start),
    })
}

/// Closed loop on one connection; returns its measurements and the time of its last reply.
async fn closed_loop(
    conn: Conn,
    index: usize,
    pipeline: usize,
    shared: Arc<Shared>,
) -> (Stats, Instant) {
    let mut stats = Stats::new();
    let mut pending = shared.progress.as_ref().map(|_| Pending::new());
    let mut gen = Generator::new(&shared.spec.workload, index as u64);
    let mut out = Vec::with_capacity(pipeline * 64);
    let mut sent_cmds: Vec<Command> = Vec::with_capacity(pipeline);
    let mut last_reply = shared.start;
    let mut conn = Some(conn);
    let drain = shared.drain_deadline();
    loop {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match shared.reconnect(&mut stats).await {
                Some(c) => conn.insert(c),
                None => break,
            },
        };
        let n = shared.claim(pipeline);
        if n == 0 {
            break;
        }
        out.clear();
        sent_cmds.clear();
        for _ in 0..n {
            sent_cmds.push(gen.next_into(&mut out));
        }
        let sent = Instant::now();
        let mut answered = 0;
        let result = async {
            c.write_all(&out).await?;
            let mut now = sent;
            while answered < n {
                match c.next_reply()? {
                    Some(Outcome::Push) => {}
                    Some(outcome) => {
                        let cmd = sent_cmds[answered];
                        let us = micros(now.duration_since(sent));
                        stats.record(cmd, us, &outcome);
                        if let Some(p) = pending.as_mut() {
                            p.replies += 1;
                            p.errors += matches!(outcome, Outcome::Error(_)) as u64;
                            let _ = p.latency.record(us);
                        }
                        answered += 1;
                    }
                    None => {
                        match drain {
                            Some(d) => tokio::time::timeout_at(d.into(), c.fill()).await.map_err(
                                |_| ConnError::Timeout {
                                    target: c.target.clone(),
                                },
                            )??,
                            None => c.fill().await?,
                        }
                        now = Instant::now();
                    }
                }
            }
            last_reply = now;
            Ok::<(), ConnError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection failed");
            for cmd in &sent_cmds[answered..] {
                stats.record_failed(*cmd, e.kind(), 1);
            }
            if let Some(p) = pending.as_mut() {
                p.errors += (n - answered) as u64;
            }
            conn = None;
            if matches!(e, ConnError::Timeout { .. }) {
                break;
            }
        }
        if let (Some(p), Some(progress)) = (pending.as_mut(), shared.progress.as_ref()) {
            p.maybe_publish(progress, Instant::now(), false);
        }
    }
    if let (Some(p), Some(progress)) = (pending.as_mut(), shared.progress.as_ref()) {
        p.maybe_publish(progress, Instant::now(), true);
    }
    (stats, last_reply)
}

/// Requests sent but not answered yet, oldest first: (intended send time, command).
type InFlight = Arc<Mutex<VecDeque<(Instant, Command)>>>;

/// Open loop on one connection; returns its measurements and the time of its last reply.
async fn open_loop(
    conn: Conn,
    index: usize,
    clients: usize,
    rate: f64,
    shared: Arc<Shared>,
) -> (Stats, Instant) {
    let mut stats = Stats::new();
    let mut gen = Generator::new(&shared.spec.workload, index as u64);
    let per_conn = (rate / clients as f64).max(1e-9);
    let phase = index as f64 / rate.max(1e-9);
    let due = |k: u64| shared.start + Duration::from_secs_f64(phase + k as f64 / per_conn);
    // How many requests this connection sends, when the run is bounded by count.
    let quota = match shared.spec.limit {
        Limit::Requests(n) => {
            let c = clients as u64;
            Some(n / c + u64::from((index as u64) < n % c))
        }
        Limit::Duration(_) => None,
    };
    let finished = |k: u64| match (quota, shared.deadline) {
        (Some(q), _) => k >= q,
        (None, Some(d)) => due(k) >= d,
        (None, None) => true,
    };
    let mut next: u64 = 0;
    let mut last_reply = shared.start;
    let mut conn = Some(conn);
    let mut out = Vec::with_capacity(4096);
    loop {
        if finished(next) {
            break;
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match shared.reconnect(&mut stats).await {
                Some(c) => c,
                None => break,
            },
        };
        let target = c.target.clone();
        let (rd, mut wr) = c.stream.into_split();
        let in_flight: InFlight = Arc::new(Mutex::new(VecDeque::new()));
        let (done_tx, done_rx) = watch::channel(false);
        let reader = tokio::spawn(read_side(
            rd,
            c.rbuf,
            target.clone(),
            Arc::clone(&in_flight),
            done_rx,
            Arc::clone(&shared),
        ));
        let write_result: Result<(), ConnError> = loop {
            if finished(next) {
                break Ok(());
            }
            if reader.is_finished() {
                // The reader stopped early: the connection failed; its error says why.
                break Ok(());
            }
            let at = due(next);
            if at > Instant::now() {
                crate::timer::sleep_until(at).await;
            }
            out.clear();
            let now = Instant::now();
            let mut full = false;
            if let Ok(mut q) = in_flight.lock() {
                while !finished(next) && due(next) <= now && out.len() < MAX_WRITE {
                    if q.len() >= MAX_IN_FLIGHT {
                        full = true;
                        break;
                    }
                    let cmd = gen.next_into(&mut out);
                    q.push_back((due(next), cmd));
                    next += 1;
                }
            }
            if !out.is_empty() {
                if let Err(source) = wr.write_all(&out).await {
                    break Err(ConnError::Io {
                        target: target.clone(),
                        source,
                    });
                }
            }
            if full {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = done_tx.send(true);
        let (rstats, last, read_result) = match reader.await {
            Ok(r) => r,
            Err(_) => (Stats::new(), shared.start, Ok(())),
        };
        stats.merge(&rstats);
        last_reply = last_reply.max(last);
        let failure = write_result.err().or(read_result.err());
        let lost: Vec<Command> = in_flight
            .lock()
            .map(|mut q| q.drain(..).map(|(_, c)| c).collect())
            .unwrap_or_default();
        match failure {
            Some(e) => {
                tracing::debug!(error = %e, "connection failed");
                for cmd in lost {
                    stats.record_failed(cmd, e.kind(), 1);
                }
                if matches!(e, ConnError::Timeout { .. }) {
                    break;
                }
            }
            None => break,
        }
    }
    (stats, last_reply)
}

/// The reading half of an open-loop connection: matches each reply with the oldest request in
/// flight. Ends when the sender is done and nothing is in flight, on a failure, or when the
/// drain deadline passes.
async fn read_side(
    mut rd: OwnedReadHalf,
    mut buf: BytesMut,
    target: String,
    in_flight: InFlight,
    mut done: watch::Receiver<bool>,
    shared: Arc<Shared>,
) -> (Stats, Instant, Result<(), ConnError>) {
    let mut stats = Stats::new();
    let mut pending = shared.progress.as_ref().map(|_| Pending::new());
    let mut last_reply = shared.start;
    let mut sender_done = false;
    let mut drain_deadline: Option<Instant> = None;
    let result = loop {
        // Take every complete reply in the buffer.
        let now = Instant::now();
        let mut got_any = false;
        loop {
            let outcome = match next_reply(&mut buf, &target) {
                Ok(Some(Outcome::Push)) => continue,
                Ok(Some(o)) => o,
                Ok(None) => break,
                Err(e) => return (stats, last_reply, Err(e)),
            };
            let front = in_flight.lock().ok().and_then(|mut q| q.pop_front());
            let Some((intended, cmd)) = front else {
                let e = ConnError::Protocol {
                    target: target.clone(),
                    reason: "a reply arrived with no request in flight".into(),
                };
                return (stats, last_reply, Err(e));
            };
            let us = micros(now.saturating_duration_since(intended));
            stats.record(cmd, us, &outcome);
            if let Some(p) = pending.as_mut() {
                p.replies += 1;
                p.errors += matches!(outcome, Outcome::Error(_)) as u64;
                let _ = p.latency.record(us);
            }
            got_any = true;
        }
        if got_any {
            last_reply = now;
        }
        if let (Some(p), Some(progress)) = (pending.as_mut(), shared.progress.as_ref()) {
            p.maybe_publish(progress, now, false);
        }
        let empty = in_flight.lock().map(|q| q.is_empty()).unwrap_or(true);
        if sender_done && empty {
            break Ok(());
        }
        if sender_done && drain_deadline.is_none() {
            let base = shared.deadline.unwrap_or(now).max(now);
            drain_deadline = Some(base + DRAIN_GRACE);
        }
        let timeout = drain_deadline.map(tokio::time::Instant::from_std);
        tokio::select! {
            r = fill_from(&mut rd, &mut buf, &target) => {
                if let Err(e) = r {
                    break Err(e);
                }
            }
            _ = done.changed(), if !sender_done => {
                sender_done = *done.borrow();
            }
            _ = async {
                match timeout {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                break Err(ConnError::Timeout { target: target.clone() });
            }
        }
    };
    if let (Some(p), Some(progress)) = (pending.as_mut(), shared.progress.as_ref()) {
        p.maybe_publish(progress, Instant::now(), true);
    }
    (stats, last_reply, result)
}

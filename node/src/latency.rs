//! The latency monitor (Redis's LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR): per
//! event (`command`, `fast-command`, `expire-cycle`), the last [`TS_LEN`] samples of at
//! least `latency-monitor-threshold` ms, at most one per second (the worst of that second),
//! and the worst sample ever seen. Nothing is recorded while the threshold is 0.
//!
//! Also the per-command latency histograms of LATENCY HISTOGRAM (Redis's `latency-tracking`):
//! power-of-two buckets from 1 µs to 1 s, labelled as Redis's hdr_histogram reports them.
//! Sessions count buckets in their per-batch tally; commands with subcommands (CLIENT,
//! CONFIG...) are kept per subcommand (`client|id`), as Redis does.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tandem_protocol::command::{CommandSpec, COMMANDS};
use tandem_protocol::Reply;

use crate::cmd::server::docs::SUBCOMMANDS;

use crate::cmd::args::{self, CmdResult};
use crate::server::Server;

/// Histogram buckets: bucket `k` holds durations under `1032 << k` ns, up to 1 s.
pub const HIST_BUCKETS: usize = 21;

/// The histogram bucket of a command that ran `usec` µs (Redis records `usec * 1000` ns,
/// clamped to 1 ns ..= 1 s, in an hdr_histogram iterated in log2 steps from 1024 ns).
#[inline]
pub fn hist_bucket(usec: u64) -> usize {
    let q = usec.min(1_000_000).saturating_mul(1000) / 1032;
    ((64 - q.leading_zeros()) as usize).min(HIST_BUCKETS - 1)
}

/// The label Redis gives bucket `k`: its highest equivalent value, in µs.
fn hist_label(k: usize) -> i64 {
    (((1032u64 << k) - 1) / 1000) as i64
}

/// One command's histogram (INFO-style shared counters).
#[derive(Default)]
pub struct Histogram {
    pub counts: [AtomicU64; HIST_BUCKETS],
}

impl Histogram {
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> [u64; HIST_BUCKETS] {
        std::array::from_fn(|k| self.counts[k].load(Ordering::Relaxed))
    }
}

/// `{calls: n, histogram_usec: {label: cumulative count, ...}}`, or `None` without calls.
fn cdf_reply(counts: &[u64; HIST_BUCKETS]) -> Option<Reply> {
    let calls: u64 = counts.iter().sum();
    if calls == 0 {
        return None;
    }
    let mut cumulative = 0;
    let mut buckets = Vec::new();
    for (k, n) in counts.iter().enumerate() {
        if *n > 0 {
            cumulative += n;
            buckets.push((Reply::Int(hist_label(k)), Reply::Int(cumulative as i64)));
        }
    }
    Some(Reply::Map(vec![
        (Reply::bulk_str("calls"), Reply::Int(calls as i64)),
        (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
    ]))
}

/// Whether a command is a container of subcommands (its calls are kept per subcommand).
pub fn has_subcommands(spec: &CommandSpec) -> bool {
    static TABLE: OnceLock<Vec<bool>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| SUBCOMMANDS.iter().any(|s| s.parent == c.name))
            .collect()
    });
    t.get(spec.cmd as usize).copied().unwrap_or(false)
}

/// Records a call of a container command under its subcommand (`config|resetstat`); an
/// unknown subcommand is not recorded.
#[cold]
pub fn record_subcommand(srv: &Server, spec: &CommandSpec, args: &[Bytes], usec: u64) {
    let Some(sub) = args.get(1).and_then(|a| {
        SUBCOMMANDS
            .iter()
            .find(|s| s.parent == spec.name && a.eq_ignore_ascii_case(s.name.as_bytes()))
    }) else {
        return;
    };
    let mut subs = srv.stats.sub_latency.lock();
    let counts = subs
        .entry(format!("{}|{}", spec.name, sub.name))
        .or_insert([0; HIST_BUCKETS]);
    counts[hist_bucket(usec)] += 1;
}

/// LATENCY HISTOGRAM [command ...]: every command's histogram, or the named ones (a
/// container names all its subcommands; `parent|sub` names one); unknown names are skipped.
fn histogram(srv: &Server, names: &[Bytes]) -> Reply {
    let subs = srv.stats.sub_latency.lock();
    let mut out = Vec::new();
    let command = |spec: &CommandSpec, out: &mut Vec<(Reply, Reply)>| {
        if let Some(r) = cdf_reply(&srv.stats.commands[spec.cmd as usize].hist.snapshot()) {
            out.push((Reply::bulk_str(spec.name), r));
        }
    };
    let sub_replies = |prefix: &str, out: &mut Vec<(Reply, Reply)>| {
        for (name, counts) in subs.iter() {
            if name.starts_with(prefix) {
                if let Some(r) = cdf_reply(counts) {
                    out.push((Reply::bulk_str(name), r));
                }
            }
        }
    };
    if names.is_empty() {
        for spec in COMMANDS.iter().filter(|s| !has_subcommands(s)) {
            command(spec, &mut out);
        }
        sub_replies("", &mut out);
        return Reply::Map(out);
    }
    for n in names {
        let n = args::lower(n);
        match n.split_once('|') {
            Some(_) => {
                if let Some(r) = subs.get(&n).and_then(cdf_reply) {
                    out.push((Reply::bulk_str(&n), r));
                }
            }
            None => match tandem_protocol::command::lookup(n.as_bytes()) {
                Some(spec) if has_subcommands(spec) => sub_replies(&format!("{n}|"), &mut out),
                Some(spec) => command(spec, &mut out),
                None => {}
            },
        }
    }
    Reply::Map(out)
}

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const TS_LEN: usize = 160;
/// Width of LATENCY GRAPH's rule line (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLS: usize = 80;

/// One event's history.
#[derive(Default)]
struct Series {
    /// (unix seconds, latency ms), oldest first.
    samples: VecDeque<(u64, u64)>,
    max: u64,
}

/// Every event's history and the threshold.
#[derive(Default)]
pub struct Latency {
    /// `latency-monitor-threshold` in ms (0: off).
    threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Series>>,
}

impl Latency {
    pub fn set_threshold(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Records `ms` for `event` if the monitor is on and `ms` reaches its threshold
    /// (Redis's `latencyAddSampleIfNeeded`).
    pub fn sample_if_needed(&self, event: &'static str, ms: u64) {
        let t = self.threshold_ms.load(Ordering::Relaxed);
        if t == 0 || ms < t {
            return;
        }
        self.add_sample(event, ms, crate::now_ms() / 1000);
    }

    fn add_sample(&self, event: &'static str, ms: u64, now: u64) {
        let mut events = self.events.lock();
        let s = events.entry(event).or_default();
        s.max = s.max.max(ms);
        if let Some(last) = s.samples.back_mut() {
            if last.0 == now {
                last.1 = last.1.max(ms);
                return;
            }
        }
        if s.samples.len() == TS_LEN {
            s.samples.pop_front();
        }
        s.samples.push_back((now, ms));
    }

    /// Forgets `event` (every event for `None`); returns how many were forgotten.
    fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.events.lock();
        match event {
            None => {
                let n = events.len();
                events.clear();
                n
            }
            Some(name) => {
                let found = events
                    .keys()
                    .find(|k| k.as_bytes().eq_ignore_ascii_case(name))
                    .copied();
                found.map_or(0, |k| events.remove(k).map_or(0, |_| 1))
            }
        }
    }
}

/// LATENCY LATEST | HISTORY event | RESET [event ...] | GRAPH event | DOCTOR | HISTOGRAM | HELP.
pub fn command(srv: &Server, args: &[Bytes]) -> CmdResult {
    let sub = args::lower(&args[1]);
    let lat = &srv.latency;
    match (sub.as_str(), args.len()) {
        ("latest", 2) => {
            let events = lat.events.lock();
            Ok(Reply::Array(
                events
                    .iter()
                    .filter_map(|(name, s)| {
                        let (time, ms) = *s.samples.back()?;
                        Some(Reply::Array(vec![
                            Reply::bulk_str(name),
                            Reply::Int(time as i64),
                            Reply::Int(ms as i64),
                            Reply::Int(s.max as i64),
                        ]))
                    })
                    .collect(),
            ))
        }
        ("history", 3) => {
            let events = lat.events.lock();
            let samples = find(&events, &args[2])
                .map(|s| {
                    s.samples
                        .iter()
                        .map(|&(t, ms)| {
                            Reply::Array(vec![Reply::Int(t as i64), Reply::Int(ms as i64)])
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(Reply::Array(samples))
        }
        ("reset", _) => {
            let n = if args.len() == 2 {
                lat.reset(None)
            } else {
                args[2..].iter().map(|e| lat.reset(Some(e))).sum()
            };
            Ok(Reply::Int(n as i64))
        }
        ("graph", 3) => {
            let events = lat.events.lock();
            let Some((name, s)) = events
                .iter()
                .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(&args[2]))
            else {
                return Err(Reply::error(format!(
                    "ERR No samples available for event '{}'",
                    String::from_utf8_lossy(&args[2])
                )));
            };
            Ok(Reply::Verbatim("txt", Bytes::from(graph(name, s))))
        }
        ("doctor", 2) => Ok(Reply::Verbatim("txt", Bytes::from(doctor(srv)))),
        ("histogram", _) => Ok(histogram(srv, &args[2..])),
        ("help", 2) => Ok(crate::cmd::server::help_reply("LATENCY", HELP)),
        ("latest" | "history" | "doctor" | "graph" | "help", _) => {
            Err(args::wrong_arity(&format!("latency|{sub}")))
        }
        _ => Err(args::unknown_subcommand("latency", &args[1])),
    }
}

fn find<'a>(events: &'a BTreeMap<&'static str, Series>, name: &[u8]) -> Option<&'a Series> {
    events
        .iter()
        .find(|(k, _)| k.as_bytes() == name)
        .map(|(_, s)| s)
}

/// LATENCY GRAPH: Redis's header line and rule, then one line per sample (latency and age).
fn graph(name: &str, s: &Series) -> String {
    let now = crate::now_ms() / 1000;
    let high = s.samples.iter().map(|x| x.1).max().unwrap_or(0);
    let low = s.samples.iter().map(|x| x.1).min().unwrap_or(0);
    let mut out = format!(
        "{name} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
        s.max,
        "-".repeat(GRAPH_COLS)
    );
    for &(t, ms) in &s.samples {
        let ago = now.saturating_sub(t);
        let label = match ago {
            0..60 => format!("{ago}s"),
            60..3600 => format!("{}m", ago / 60),
            3600..86400 => format!("{}h", ago / 3600),
            _ => format!("{}d", ago / 86400),
        };
        let _ = writeln!(out, "{ms:>6} ms  {label} ago");
    }
    out
}

/// LATENCY DOCTOR: Redis's opening lines and one summary line per event (without Redis's
/// advice section).
fn doctor(srv: &Server) -> String {
    let events = srv.latency.events.lock();
    if events.is_empty() {
        if srv.latency.threshold_ms.load(Ordering::Relaxed) == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n".into();
    }
    let mut out = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    for (i, (name, s)) in events.iter().enumerate() {
        let n = s.samples.len().max(1) as u64;
        let avg = s.samples.iter().map(|x| x.1).sum::<u64>() / n;
        let mad = s.samples.iter().map(|x| x.1.abs_diff(avg)).sum::<u64>() / n;
        let period = match (s.samples.front(), s.samples.back()) {
            (Some(a), Some(b)) => b.0.saturating_sub(a.0) as f64 / n as f64,
            _ => 0.0,
        };
        let _ = writeln!(
            out,
            "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {mad}ms, period {period:.2} sec). Worst all time event {}ms.",
            i + 1,
            s.samples.len(),
            s.max
        );
    }
    out.push_str("\nI have no advice for you, Dave: Tandem's doctor only reports the events.\n");
    out
}

const HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_match_redis_labels() {
        assert_eq!(hist_bucket(0), 0);
        assert_eq!(hist_bucket(1), 0);
        assert_eq!(hist_bucket(2), 1);
        assert_eq!(hist_bucket(3), 2);
        assert_eq!(hist_bucket(33), 5);
        assert_eq!(hist_bucket(34), 6);
        assert_eq!(hist_bucket(u64::MAX), HIST_BUCKETS - 1);
        let labels: Vec<i64> = (0..8).map(hist_label).collect();
        assert_eq!(labels, [1, 2, 4, 8, 16, 33, 66, 132]);
        for usec in [0u64, 1, 5, 100, 999_999] {
            assert!(usec <= hist_label(hist_bucket(usec)) as u64);
        }
    }

    #[test]
    fn one_sample_per_second_keeps_the_worst() {
        let l = Latency::default();
        l.add_sample("command", 300, 10);
        l.add_sample("command", 500, 10);
        l.add_sample("command", 400, 10);
        l.add_sample("command", 250, 11);
        let ev = l.events.lock();
        let s = &ev["command"];
        assert_eq!(s.samples, [(10, 500), (11, 250)]);
        assert_eq!(s.max, 500);
    }

    #[test]
    fn history_is_bounded() {
        let l = Latency::default();
        for t in 0..(TS_LEN as u64 + 5) {
            l.add_sample("expire-cycle", t + 1, t);
        }
        let ev = l.events.lock();
        assert_eq!(ev["expire-cycle"].samples.len(), TS_LEN);
        assert_eq!(ev["expire-cycle"].samples.front(), Some(&(5, 6)));
    }

    #[test]
    fn threshold_zero_records_nothing() {
        let l = Latency::default();
        l.sample_if_needed("command", 1000);
        assert!(l.events.lock().is_empty());
        l.set_threshold(100);
        l.sample_if_needed("command", 99);
        assert!(l.events.lock().is_empty());
        l.sample_if_needed("command", 100);
        assert_eq!(l.reset(Some(b"COMMAND")), 1);
        assert_eq!(l.reset(None), 0);
    }
}

//! Measurements of one run: an hdrhistogram of reply latencies per command (microseconds, 3
//! significant digits, growing as needed so no sample is ever dropped or clamped), reply and
//! failure counts, and errors by kind. Each connection fills its own [`Stats`]; they are merged
//! at the end, so recording never takes a lock.

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::conn::{ErrWord, Outcome};
use crate::workload::Command;

/// Significant digits kept by every histogram.
pub const SIGFIG: u8 = 3;

/// A new empty latency histogram (microseconds, auto-resizing).
pub fn new_histogram() -> Histogram<u64> {
    // `new` only fails for sigfig > 5.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("sigfig {SIGFIG} is valid"))
}

/// Latency of one reply in whole microseconds, at least 1 (hdrhistogram's lowest value).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Per-command measurements of one connection or of a whole run.
#[derive(Clone)]
pub struct Stats {
    /// Latency of every reply (errors included), per command.
    pub latency: Vec<Histogram<u64>>,
    /// Replies received, per command (error replies included).
    pub replies: [u64; Command::COUNT],
    /// Error replies, per command.
    pub error_replies: [u64; Command::COUNT],
    /// Requests sent that never got a reply (connection lost, timeout), per command.
    pub failed: [u64; Command::COUNT],
    /// Error replies by their first word (`WRONGTYPE`) and failures by kind (`closed`).
    errors: Vec<(ErrWord, u64)>,
    failures: BTreeMap<&'static str, u64>,
    /// Connection attempts that failed while reconnecting.
    pub reconnect_failures: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            latency: (0..Command::COUNT).map(|_| new_histogram()).collect(),
            replies: [0; Command::COUNT],
            error_replies: [0; Command::COUNT],
            failed: [0; Command::COUNT],
            errors: Vec::new(),
            failures: BTreeMap::new(),
            reconnect_failures: 0,
        }
    }

    /// Records one reply to `cmd` that took `latency_us`.
    #[inline]
    pub fn record(&mut self, cmd: Command, latency_us: u64, outcome: &Outcome) {
        let i = cmd.index();
        self.replies[i] += 1;
        // Auto-resizing histograms accept every value.
        let _ = self.latency[i].record(latency_us.max(1));
        if let Outcome::Error(word) = outcome {
            self.error_replies[i] += 1;
            match self.errors.iter_mut().find(|(w, _)| w == word) {
                Some((_, n)) => *n += 1,
                None => self.errors.push((*word, 1)),
            }
        }
    }

    /// Records `n` requests to `cmd` that got no reply, because of `kind`.
    pub fn record_failed(&mut self, cmd: Command, kind: &'static str, n: u64) {
        self.failed[cmd.index()] += n;
        *self.failures.entry(kind).or_insert(0) += n;
    }

    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            // Auto-resizing: adding cannot go out of range.
            let _ = mine.add(theirs);
        }
        for i in 0..Command::COUNT {
            self.replies[i] += other.replies[i];
            self.error_replies[i] += other.error_replies[i];
            self.failed[i] += other.failed[i];
        }
        for (word, n) in &other.errors {
            match self.errors.iter_mut().find(|(w, _)| w == word) {
                Some((_, m)) => *m += n,
                None => self.errors.push((*word, *n)),
            }
        }
        for (kind, n) in &other.failures {
            *self.failures.entry(kind).or_insert(0) += n;
        }
        self.reconnect_failures += other.reconnect_failures;
    }

    /// Requests sent: replies plus failures.
    pub fn requests(&self) -> u64 {
        self.replies.iter().sum::<u64>() + self.failed.iter().sum::<u64>()
    }

    pub fn total_replies(&self) -> u64 {
        self.replies.iter().sum()
    }

    /// Error replies plus requests without a reply.
    pub fn total_errors(&self) -> u64 {
        self.error_replies.iter().sum::<u64>() + self.failed.iter().sum::<u64>()
    }

    /// Errors by kind: error replies under their first word, lost requests under the failure
    /// kind (`closed`, `io`, `timeout`, ...).
    pub fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (w, n) in &self.errors {
            *out.entry(String::from_utf8_lossy(w.as_bytes()).into_owned())
                .or_insert(0) += n;
        }
        for (k, n) in &self.failures {
            *out.entry(k.to_string()).or_insert(0) += n;
        }
        out
    }

    /// Commands that were sent at least once, in table order.
    pub fn commands(&self) -> impl Iterator<Item = Command> + '_ {
        Command::ALL
            .into_iter()
            .filter(|c| self.replies[c.index()] + self.failed[c.index()] > 0)
    }

    /// Latencies of all commands together.
    pub fn all_latency(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for h in &self.latency {
            let _ = all.add(h);
        }
        all
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    /// Summary of a microsecond histogram (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Errors writing `--hdr-out`.
#[derive(Debug, thiserror::Error)]
pub enum HdrOutError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize histogram {tag}: {reason}")]
    Serialize { tag: String, reason: String },
}

/// One histogram to save: tag (`<target>/<COMMAND>`), interval and values.
pub struct Tagged<'a> {
    pub tag: String,
    pub start: Duration,
    pub length: Duration,
    pub histogram: &'a Histogram<u64>,
}

/// Writes histograms as an HdrHistogram interval log: one line per histogram, each encoded in
/// hdrhistogram's V2 format (DEFLATE-compressed, base64), tagged. Values are microseconds; the
/// log's max column is in milliseconds. Readable by HdrHistogram's log tools
/// (`HistogramLogProcessor`, HistogramLogAnalyzer) and by [`read_hdr_log`].
/// `base_time` is the wall-clock time the `start` offsets count from.
pub fn write_hdr_log(
    path: &Path,
    base_time: std::time::SystemTime,
    histograms: &[Tagged<'_>],
) -> Result<(), HdrOutError> {
    let io = |source| HdrOutError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("tandem bench latency histograms; values in microseconds")
            .with_base_time(base_time)
            .with_start_time(base_time)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut buf, &mut serializer)
            .map_err(io)?;
        for h in histograms {
            let clean: String = h
                .tag
                .chars()
                .map(|c| {
                    if matches!(c, ',' | ' ' | '\r' | '\n') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            log.write_histogram(h.histogram, h.start, h.length, Tag::new(&clean))
                .map_err(|e| HdrOutError::Serialize {
                    tag: clean.clone(),
                    reason: e.to_string(),
                })?;
        }
    }
    std::fs::write(path, buf).map_err(io)
}

/// Reads back an interval log written by [`write_hdr_log`]: (tag, histogram) pairs.
pub fn read_hdr_log(bytes: &[u8]) -> Result<Vec<(String, Histogram<u64>)>, String> {
    use base64::Engine as _;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| format!("{e:?}"))? {
            LogEntry::Interval(ilh) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(ilh.encoded_histogram())
                    .map_err(|e| format!("invalid base64 in the log: {e}"))?;
                let h: Histogram<u64> = de
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| format!("{e:?}"))?;
                out.push((
                    ilh.tag()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    h,
                ));
            }
            LogEntry::StartTime(_) | LogEntry::BaseTime(_) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(word: &str) -> Outcome {
        match crate::conn::parse_reply(format!("-{word} x\r\n").as_bytes()) {
            Ok(Some((_, o))) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counts_and_merges() {
        let mut a = Stats::new();
        a.record(Command::Get, 100, &Outcome::Ok);
        a.record(Command::Get, 300, &err("WRONGTYPE"));
        a.record_failed(Command::Set, "closed", 2);
        let mut b = Stats::new();
        b.record(Command::Set, 200, &err("WRONGTYPE"));
        b.record(Command::Set, 0, &err("NOAUTH"));
        a.merge(&b);
        assert_eq!(a.requests(), 6);
        assert_eq!(a.total_replies(), 4);
        assert_eq!(a.total_errors(), 5);
        let kinds = a.errors_by_kind();
        assert_eq!(kinds["WRONGTYPE"], 2);
        assert_eq!(kinds["NOAUTH"], 1);
        assert_eq!(kinds["closed"], 2);
        assert_eq!(
            a.commands().collect::<Vec<_>>(),
            [Command::Get, Command::Set]
        );
        let all = a.all_latency();
        assert_eq!(all.len(), 4);
        assert_eq!(all.min(), 1);
    }

    #[test]
    fn summary_in_milliseconds() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        h.record(2_000_000).unwrap();
        let s = LatencySummary::of(&h);
        assert!((s.p50 - 0.5).abs() < 0.01, "{s:?}");
        assert!((s.p99 - 0.99).abs() < 0.01, "{s:?}");
        assert!((s.max - 2000.0).abs() < 2.0, "{s:?}");
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn hdr_log_round_trips() {
        let mut h = new_histogram();
        for us in [5, 50, 500, 5000, 5_000_000] {
            h.record(us).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("tandem-bench-hdr-{}", std::process::id()));
        let path = dir.with_extension("hlog");
        write_hdr_log(
            &path,
            std::time::SystemTime::now(),
            &[Tagged {
                tag: "127.0.0.1:6379/GET".into(),
                start: Duration::ZERO,
                length: Duration::from_secs(1),
                histogram: &h,
            }],
        )
        .unwrap();
        let back = read_hdr_log(&std::fs::read(&path).unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].0, "127.0.0.1:6379/GET");
        assert_eq!(back[0].1, h);
    }
}

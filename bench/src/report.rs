//! Results as people and machines read them: a table per target (per-command requests, ops/s,
//! p50 p90 p99 p99.9 max, errors; then errors by kind), a side-by-side table with ratios to the
//! first target when there are several, and the same figures as JSON (`--json`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::histogram::LatencySummary;
use crate::load::{Limit, LoadResult, LoadSpec, Mode};
use crate::workload::WorkloadKind;

/// Figures of one command (or of all together).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandReport {
    /// Requests sent (replies plus requests that got none).
    pub requests: u64,
    pub replies: u64,
    /// Error replies plus requests that got no reply.
    pub errors: u64,
    /// Replies per second.
    pub ops_per_sec: f64,
    pub latency_ms: LatencySummary,
}

/// Everything measured against one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetReport {
    pub target: String,
    pub workload: String,
    /// `closed` or `open`.
    pub mode: String,
    pub clients: usize,
    /// Commands per batch (closed loop only).
    pub pipeline: Option<usize>,
    /// Scheduled requests per second (open loop only).
    pub rate: Option<f64>,
    /// Share of GETs (getset only).
    pub read_ratio: Option<f64>,
    pub keys: u64,
    pub distribution: String,
    pub value_size: usize,
    pub seed: u64,
    /// The requested run length, when bounded by time.
    pub duration_s: Option<f64>,
    /// The requested request count, when bounded by count.
    pub requests_limit: Option<u64>,
    /// From the first request to the last reply.
    pub elapsed_s: f64,
    /// All commands together.
    pub total: CommandReport,
    /// Per command, by name (`GET`, `SET`, ...).
    pub commands: BTreeMap<String, CommandReport>,
    /// Errors by kind: error replies by first word (`WRONGTYPE`), lost requests by failure
    /// (`closed`, `io`, `timeout`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Failed attempts to reopen a lost connection.
    pub reconnect_failures: u64,
}

/// The `--json` document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JsonReport {
    pub targets: Vec<TargetReport>,
}

impl TargetReport {
    pub fn new(spec: &LoadSpec, result: &LoadResult) -> TargetReport {
        let stats = &result.stats;
        let secs = result.elapsed.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let command = |requests, replies, errors, h| CommandReport {
            requests,
            replies,
            errors,
            ops_per_sec: per_sec(replies),
            latency_ms: LatencySummary::of(h),
        };
        let commands = stats
            .commands()
            .map(|c| {
                let i = c.index();
                let r = command(
                    stats.replies[i] + stats.failed[i],
                    stats.replies[i],
                    stats.error_replies[i] + stats.failed[i],
                    &stats.latency[i],
                );
                (c.name().to_string(), r)
            })
            .collect();
        let all = stats.all_latency();
        let w = &spec.workload;
        TargetReport {
            target: spec.target.clone(),
            workload: w.kind.name().to_string(),
            mode: match spec.mode {
                Mode::Closed { .. } => "closed",
                Mode::Open { .. } => "open",
            }
            .to_string(),
            clients: spec.clients,
            pipeline: match spec.mode {
                Mode::Closed { pipeline } => Some(pipeline),
                Mode::Open { .. } => None,
            },
            rate: match spec.mode {
                Mode::Open { rate } => Some(rate),
                Mode::Closed { .. } => None,
            },
            read_ratio: (w.kind == WorkloadKind::Getset).then_some(w.read_ratio),
            keys: w.keys,
            distribution: format!("{:?}", w.distribution).to_lowercase(),
            value_size: w.value_size,
            seed: w.seed,
            duration_s: match spec.limit {
                Limit::Duration(d) => Some(d.as_secs_f64()),
                Limit::Requests(_) => None,
            },
            requests_limit: match spec.limit {
                Limit::Requests(n) => Some(n),
                Limit::Duration(_) => None,
            },
            elapsed_s: secs,
            total: command(
                stats.requests(),
                stats.total_replies(),
                stats.total_errors(),
                &all,
            ),
            commands,
            errors_by_kind: stats.errors_by_kind(),
            reconnect_failures: stats.reconnect_failures,
        }
    }

    /// One-line description of the run's settings.
    pub fn settings(&self) -> String {
        let mut s = format!("workload {}", self.workload);
        if let Some(r) = self.read_ratio {
            let _ = write!(s, " (read ratio {r:.2})");
        }
        let _ = write!(s, ", {} clients", self.clients);
        match (self.pipeline, self.rate) {
            (Some(p), _) => {
                let _ = write!(s, ", pipeline {p}, closed loop");
            }
            (None, Some(r)) => {
                let _ = write!(s, ", open loop at {} req/s", thousands(r));
            }
            _ => {}
        }
        let _ = write!(
            s,
            ", {} keys ({}), {}-byte values, seed {}",
            self.keys, self.distribution, self.value_size, self.seed
        );
        s
    }
}

/// `1234567.8` -> `1,234,568`.
pub fn thousands(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The table of one target.
pub fn table(r: &TargetReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {}  {}", r.target, r.settings());
    let _ = writeln!(
        s,
        "{} requests in {:.2} s, {} ops/s, {} errors",
        r.total.requests,
        r.elapsed_s,
        thousands(r.total.ops_per_sec),
        r.total.errors
    );
    let _ = writeln!(
        s,
        "{:<8} {:>11} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "command",
        "requests",
        "ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors"
    );
    let mut row = |name: &str, c: &CommandReport| {
        let l = &c.latency_ms;
        let _ = writeln!(
            s,
            "{:<8} {:>11} {:>12} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9}",
            name,
            c.requests,
            thousands(c.ops_per_sec),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            c.errors
        );
    };
    for (name, c) in &r.commands {
        row(name, c);
    }
    if r.commands.len() > 1 {
        row("all", &r.total);
    }
    if !r.errors_by_kind.is_empty() {
        let kinds: Vec<String> = r
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(s, "errors by kind: {}", kinds.join(", "));
    }
    if r.reconnect_failures > 0 {
        let _ = writeln!(s, "failed reconnection attempts: {}", r.reconnect_failures);
    }
    s
}

/// A comparison row: name, the figure, whether it is a count (no decimals).
type Metric = (&'static str, fn(&TargetReport) -> f64, bool);

/// Side-by-side figures of several targets, each with its ratio to the first.
pub fn comparison(reports: &[TargetReport]) -> String {
    let mut s = String::new();
    let Some(first) = reports.first() else {
        return s;
    };
    let width = reports
        .iter()
        .map(|r| r.target.len() + 2)
        .max()
        .unwrap_or(0)
        .max(22);
    let _ = write!(s, "{:<12}", "metric");
    for r in reports {
        let _ = write!(s, " {:>width$}", r.target);
    }
    s.push('\n');
    let metrics: [Metric; 8] = [
        ("ops/s", |r| r.total.ops_per_sec, true),
        ("p50 ms", |r| r.total.latency_ms.p50, false),
        ("p90 ms", |r| r.total.latency_ms.p90, false),
        ("p99 ms", |r| r.total.latency_ms.p99, false),
        ("p99.9 ms", |r| r.total.latency_ms.p999, false),
        ("max ms", |r| r.total.latency_ms.max, false),
        ("requests", |r| r.total.requests as f64, true),
        ("errors", |r| r.total.errors as f64, true),
    ];
    for (name, get, integer) in metrics {
        let _ = write!(s, "{name:<12}");
        let base = get(first);
        for (i, r) in reports.iter().enumerate() {
            let v = get(r);
            let mut cell = if integer {
                thousands(v)
            } else {
                format!("{v:.3}")
            };
            if i > 0 {
                if base > 0.0 {
                    let _ = write!(cell, " ({:.2}x)", v / base);
                } else {
                    cell.push_str(" (n/a)");
                }
            }
            let _ = write!(s, " {cell:>width$}");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "(ratios are to the first target, {})", first.target);
    s
}

/// The `--json` document.
pub fn json(reports: &[TargetReport]) -> String {
    let doc = JsonReport {
        targets: reports.to_vec(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}

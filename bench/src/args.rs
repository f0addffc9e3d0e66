//! `tandem bench` flags (clap) and their checks: [`BenchArgs::plan`] turns them into one
//! [`LoadSpec`] per target or says which flag is wrong and why.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

use crate::conn::ConnOptions;
use crate::load::{Limit, LoadSpec, Mode};
use crate::workload::{KeyDistribution, WorkloadKind, WorkloadSpec, MAX_KEYS};

/// Run length when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// `tandem bench`: load-test one or more RESP endpoints.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Endpoint to load (HOST:PORT). Repeat to run the same load against several targets one
    /// after another and compare them side by side (ratios to the first).
    #[arg(
        long = "target",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:6379"
    )]
    pub targets: Vec<String>,
    /// Connections (each its own task).
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Commands sent per round trip in the closed loop.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Run length (`10s`, `500ms`, `2m`); default 10s unless --requests is given.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Total requests to send (exact), instead of a duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Command mix.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Getset)]
    pub workload: WorkloadKind,
    /// Share of GETs in the getset workload (0.0 to 1.0).
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Key space: keys are `key:000000000000` to `key:<keys-1>` (12 digits, as
    /// redis-benchmark -r writes them).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// How keys are picked.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Uniform)]
    pub distribution: KeyDistribution,
    /// Exponent s of the zipf distribution.
    #[arg(long, default_value_t = 0.99)]
    pub zipf_exponent: f64,
    /// Bytes per value written (SET, LPUSH, HSET).
    #[arg(long, default_value_t = 3)]
    pub value_size: usize,
    /// Password (AUTH) for every connection.
    #[arg(long)]
    pub password: Option<String>,
    /// ACL user to AUTH as (with --password).
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// Seed of the key and command choices (same seed, same sequence).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Open loop: send this many requests per second in total, on a fixed schedule, and measure
    /// latency from each request's intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Speak RESP3 (HELLO 3) instead of RESP2.
    #[arg(long)]
    pub resp3: bool,
    /// Write the results as JSON to stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Save the latency histograms (per target and command) to this file as an HdrHistogram
    /// log (hdrhistogram V2 encoding, values in microseconds).
    #[arg(long, value_name = "FILE")]
    pub hdr_out: Option<PathBuf>,
    /// Runtime worker threads (default: the number of cores, at most 4).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run a fault scenario instead of a plain load (see `tandem bench --help`).
    #[arg(long, value_enum)]
    pub scenario: Option<crate::scenario::Scenario>,
    /// Scenario: how many times to repeat it (the table shows median and worst).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Scenario: sentinel (HOST:PORT, repeatable) of an existing deployment whose proxy is
    /// `--target`; without it the scenario starts its own deployment (of `--stack`) per run.
    #[arg(long = "sentinel", value_name = "HOST:PORT")]
    pub sentinels: Vec<String>,
    /// Scenario: time under load before the fault (before each kill for replica-churn and
    /// proxy-restart).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub kill_after: Duration,
    /// Scenario: time under load after writes succeed again.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub settle: Duration,
    /// Scenario (partition): how long the master stays cut off; default: until the sentinels
    /// name a new master, plus a margin for the proxy to follow.
    #[arg(long, value_parser = parse_duration)]
    pub cut_for: Option<Duration>,
    /// Scenario (replica-churn, proxy-restart): how many kill -9 and restart cycles per run.
    #[arg(long, default_value_t = 3)]
    pub cycles: usize,
    /// Scenario (own deployment): the sentinels' down-after-milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub down_after_ms: u64,
    /// Scenario (own deployment): the sentinels' failover-timeout in milliseconds. Short, as
    /// for a fast-failover Redis setup: a failed election (split vote) gives up after
    /// min(10 s, this) and is retried two of these after the attempt (plus up to 1 s).
    #[arg(long, default_value_t = 3000)]
    pub failover_timeout_ms: u64,
    /// Scenario (own deployment): the proxy's write concern (`master` or `replicated`).
    #[arg(long, default_value = "master")]
    pub write_concern: String,
    /// Scenario: what each run starts: `tandem` (`tandem up`) or `redis` (3 redis-server,
    /// 3 redis-sentinel and twemproxy, kept on the master by a Sentinel client-reconfig-script),
    /// with the same sentinel settings.
    #[arg(long, value_enum, default_value_t = crate::scenario::Stack::Tandem)]
    pub stack: crate::scenario::Stack,
}

/// A flag with a value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {reason}")]
pub struct ArgError {
    pub flag: &'static str,
    pub reason: String,
}

fn bad(flag: &'static str, reason: impl Into<String>) -> ArgError {
    ArgError {
        flag,
        reason: reason.into(),
    }
}

impl BenchArgs {
    /// One load per target, in the order given.
    pub fn plan(&self) -> Result<Vec<LoadSpec>, ArgError> {
        if self.clients == 0 {
            return Err(bad("clients", "must be at least 1"));
        }
        if self.pipeline == 0 {
            return Err(bad("pipeline", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(bad("read-ratio", "must be between 0 and 1"));
        }
        if self.keys == 0 || self.keys > MAX_KEYS {
            return Err(bad("keys", format!("must be between 1 and {MAX_KEYS}")));
        }
        if !(self.zipf_exponent.is_finite() && self.zipf_exponent >= 0.0) {
            return Err(bad("zipf-exponent", "must be a number >= 0"));
        }
        if self.value_size > 512 * 1024 * 1024 {
            return Err(bad("value-size", "must be at most 512 MB (Redis's limit)"));
        }
        if self.requests == Some(0) {
            return Err(bad("requests", "must be at least 1"));
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(bad("duration", "must be longer than 0"));
        }
        let mode =
            match self.rate {
                Some(r) if !(r.is_finite() && r > 0.0) => {
                    return Err(bad(
                        "rate",
                        "must be a positive number of requests per second",
                    ))
                }
                Some(_) if self.pipeline > 1 => return Err(bad(
                    "pipeline",
                    "the open loop (--rate) sends each request at its own time; drop --pipeline",
                )),
                Some(rate) => Mode::Open { rate },
                None => Mode::Closed {
                    pipeline: self.pipeline,
                },
            };
        let limit = match (self.requests, self.duration) {
            (Some(n), _) => Limit::Requests(n),
            (None, Some(d)) => Limit::Duration(d),
            (None, None) => Limit::Duration(DEFAULT_DURATION),
        };
        if self.targets.is_empty() {
            return Err(bad("target", "at least one HOST:PORT is needed"));
        }
        let workload = WorkloadSpec {
            kind: self.workload,
            read_ratio: self.read_ratio,
            keys: self.keys,
            distribution: self.distribution,
            zipf_exponent: self.zipf_exponent,
            value_size: self.value_size,
            seed: self.seed,
        };
        let conn = ConnOptions {
            user: self.user.clone(),
            password: self.password.clone(),
            resp3: self.resp3,
        };
        self.targets
            .iter()
            .map(|t| {
                check_target(t)?;
                Ok(LoadSpec {
                    target: t.clone(),
                    clients: self.clients,
                    mode,
                    limit,
                    conn: conn.clone(),
                    workload: workload.clone(),
                })
            })
            .collect()
    }

    /// Runtime worker threads to use.
    pub fn worker_threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .min(4)
            })
            .max(1)
    }
}

fn check_target(t: &str) -> Result<(), ArgError> {
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(bad("target", format!("{t:?} is not HOST:PORT")));
    };
    if host.is_empty() || port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
        return Err(bad("target", format!("{t:?} is not HOST:PORT")));
    }
    Ok(())
}

/// `10s`, `500ms`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 10s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "us" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(flags: &[&str]) -> Result<Vec<LoadSpec>, String> {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(flags);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.args.plan().map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn defaults_and_targets() {
        let plan = parse(&["--target", "127.0.0.1:1", "--target", "localhost:2"]).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[1].target, "localhost:2");
        assert_eq!(plan[0].clients, 50);
        assert_eq!(plan[0].mode, Mode::Closed { pipeline: 1 });
        assert_eq!(plan[0].limit, Limit::Duration(DEFAULT_DURATION));
        let plan = parse(&["--requests", "7", "--rate", "100"]).unwrap();
        assert_eq!(plan[0].limit, Limit::Requests(7));
        assert_eq!(plan[0].mode, Mode::Open { rate: 100.0 });
    }

    #[test]
    fn rejects_bad_values() {
        for (flags, needle) in [
            (&["--clients", "0"][..], "--clients"),
            (&["--pipeline", "0"], "--pipeline"),
            (&["--read-ratio", "1.5"], "--read-ratio"),
            (&["--keys", "0"], "--keys"),
            (&["--rate", "0"], "--rate"),
            (&["--rate", "10", "--pipeline", "4"], "--pipeline"),
            (&["--requests", "0"], "--requests"),
            (&["--target", "nohost"], "--target"),
            (&["--target", "h:99999"], "--target"),
            (
                &["--duration", "5s", "--requests", "3"],
                "cannot be used with",
            ),
            (&["--workload", "nope"], "invalid value"),
        ] {
            let e = parse(flags).unwrap_err();
            assert!(e.contains(needle), "{flags:?}: {e}");
        }
    }
}

//! Prometheus metrics: the `/metrics` endpoint (metrics-exporter-prometheus) and, per worker,
//! cached handles so counting a request is an atomic add, never a registry lookup.
//!
//! Series: `tandem_proxy_commands_total{command,route}`,
//! `tandem_proxy_command_duration_seconds{route}` (histogram),
//! `tandem_proxy_backend_up{backend,role}`, `tandem_proxy_backend_lag_ms{backend}`,
//! `tandem_proxy_backend_lag_bytes{backend}`, `tandem_proxy_backend_inflight{backend}`,
//! `tandem_proxy_read_your_writes_fallbacks_total`, `tandem_proxy_failovers_total`,
//! `tandem_proxy_queued_writes`, `tandem_proxy_client_connections`,
//! `tandem_proxy_client_connections_total`, `tandem_proxy_errors_total{kind}`,
//! `tandem_proxy_config_reloads_total{result}`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tandem_protocol::command::COMMANDS;

/// Latency histogram buckets, in seconds (50 us to 5 s).
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// The `route` label of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Route {
    Master = 0,
    Replica = 1,
    /// A read that went to the master because no replica was fit.
    Fallback = 2,
    /// A read that went to the master because of read-your-writes.
    RywFallback = 3,
    /// Answered by the proxy itself.
    Local = 4,
    /// Refused by the proxy (admin command, no master, not authenticated).
    Refused = 5,
    /// On a connection held by the client (transaction, blocking command, pub/sub).
    Pinned = 6,
}

const ROUTES: usize = 7;
const ROUTE_LABELS: [&str; ROUTES] = [
    "master",
    "replica",
    "fallback",
    "ryw_fallback",
    "local",
    "refused",
    "pinned",
];

/// Starts the HTTP exporter on `addr` (must run inside a tokio runtime).
pub fn install(addr: &str) -> Result<(), String> {
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| format!("metrics address {addr:?} is not ip:port"))?;
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(sock)
        .set_buckets_for_metric(
            Matcher::Full("tandem_proxy_command_duration_seconds".into()),
            BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| format!("cannot start the metrics endpoint on {addr}: {e}"))?;
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    describe();
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            tracing::error!(reason = ?e, "metrics endpoint stopped");
        }
    });
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("tandem_proxy_commands_total", "Commands by name and route");
    describe_histogram!(
        "tandem_proxy_command_duration_seconds",
        Unit::Seconds,
        "Time from sending a request to a backend until its reply, by route"
    );
    describe_gauge!(
        "tandem_proxy_backend_up",
        "1 when the backend answers its polls"
    );
    describe_gauge!(
        "tandem_proxy_backend_lag_ms",
        "Replica lag measured by the proxy (ms)"
    );
    describe_gauge!(
        "tandem_proxy_backend_lag_bytes",
        "Replica lag in replication bytes"
    );
    describe_gauge!(
        "tandem_proxy_backend_inflight",
        "Requests in flight to a backend"
    );
    describe_counter!(
        "tandem_proxy_read_your_writes_fallbacks_total",
        "Reads sent to the master because no fit replica had the client's last write"
    );
    describe_counter!("tandem_proxy_failovers_total", "Master changes followed");
    describe_gauge!(
        "tandem_proxy_queued_writes",
        "Requests waiting for a master"
    );
    describe_gauge!("tandem_proxy_client_connections", "Connected clients");
    describe_counter!("tandem_proxy_errors_total", "Errors by kind");
    describe_counter!(
        "tandem_proxy_config_reloads_total",
        "Config reloads by result"
    );
    // Series that must exist from the start, at zero.
    metrics::counter!("tandem_proxy_failovers_total").absolute(0);
    metrics::counter!("tandem_proxy_read_your_writes_fallbacks_total").absolute(0);
    metrics::gauge!("tandem_proxy_queued_writes").set(0.0);
    metrics::gauge!("tandem_proxy_client_connections").set(0.0);
}

/// One worker's metrics, counted locally (plain integers, no atomics on the request path)
/// and added to the exporter's series by [`WorkerMetrics::flush`] once a second. Latencies
/// are kept as counts per histogram bucket and flushed at the bucket's upper bound.
#[derive(Default)]
pub struct WorkerMetrics {
    /// Indexed by command table position (the last row is "unknown"), then route.
    commands: RefCell<Vec<[u64; ROUTES]>>,
    command_handles: RefCell<HashMap<(usize, usize), Counter>>,
    latency: RefCell<[[u64; BUCKETS.len() + 1]; ROUTES]>,
    latency_handles: RefCell<[Option<Histogram>; ROUTES]>,
    errors: RefCell<HashMap<&'static str, Counter>>,
    ryw: std::cell::Cell<u64>,
}

impl WorkerMetrics {
    /// Counts a command (`spec` is its position in the command table, None if unknown).
    pub fn command(&self, spec: Option<usize>, route: Route) {
        let mut cmds = self.commands.borrow_mut();
        if cmds.is_empty() {
            cmds.resize(COMMANDS.len() + 1, [0; ROUTES]);
        }
        let row = spec.unwrap_or(COMMANDS.len()).min(COMMANDS.len());
        cmds[row][route as usize] += 1;
    }

    pub fn latency(&self, route: u8, d: Duration) {
        let idx = (route as usize).min(ROUTES - 1);
        let secs = d.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&ub| secs <= ub)
            .unwrap_or(BUCKETS.len());
        self.latency.borrow_mut()[idx][b] += 1;
    }

    pub fn error(&self, kind: &'static str) {
        self.errors
            .borrow_mut()
            .entry(kind)
            .or_insert_with(|| metrics::counter!("tandem_proxy_errors_total", "kind" => kind))
            .increment(1);
    }

    pub fn ryw_fallback(&self) {
        self.ryw.set(self.ryw.get() + 1);
    }

    /// Adds what was counted since the last flush to the exported series.
    pub fn flush(&self) {
        let mut cmds = self.commands.borrow_mut();
        let mut handles = self.command_handles.borrow_mut();
        for (row, counts) in cmds.iter_mut().enumerate() {
            for (route, n) in counts.iter_mut().enumerate() {
                if *n == 0 {
                    continue;
                }
                handles
                    .entry((row, route))
                    .or_insert_with(|| {
                        let name = COMMANDS.get(row).map(|c| c.name).unwrap_or("unknown");
                        metrics::counter!("tandem_proxy_commands_total", "command" => name, "route" => ROUTE_LABELS[route])
                    })
                    .increment(*n);
                *n = 0;
            }
        }
        let mut lat = self.latency.borrow_mut();
        let mut lh = self.latency_handles.borrow_mut();
        for (route, buckets) in lat.iter_mut().enumerate() {
            for (b, n) in buckets.iter_mut().enumerate() {
                if *n == 0 {
                    continue;
                }
                let h = lh[route].get_or_insert_with(|| {
                    metrics::histogram!("tandem_proxy_command_duration_seconds", "route" => ROUTE_LABELS[route])
                });
                let value = BUCKETS.get(b).copied().unwrap_or(10.0);
                h.record_many(value, *n as usize);
                *n = 0;
            }
        }
        let r = self.ryw.replace(0);
        if r > 0 {
            metrics::counter!("tandem_proxy_read_your_writes_fallbacks_total").increment(r);
        }
    }
}

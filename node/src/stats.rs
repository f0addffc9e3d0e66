//! Server-wide counters for INFO (stats, commandstats, errorstats) and LATENCY HISTOGRAM.
//! Sessions add to them in batches; all counters are relaxed atomics, readable at any time.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tandem_protocol::command::COMMANDS;

/// Per-command counters (`cmdstat_<name>:calls=..,usec=..,rejected_calls=..,failed_calls=..`).
#[derive(Default)]
pub struct CmdStat {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected_calls: AtomicU64,
    pub failed_calls: AtomicU64,
    /// LATENCY HISTOGRAM buckets (not used by commands with subcommands).
    pub hist: crate::latency::Histogram,
}

#[derive(Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
    pub expired_keys: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub commands: Box<[CmdStat]>,
    /// Error counts by prefix (`errorstat_ERR:count=..`).
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// LATENCY HISTOGRAM buckets of subcommands, by full name (`client|id`).
    pub sub_latency: Mutex<BTreeMap<String, [u64; crate::latency::HIST_BUCKETS]>>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            commands: COMMANDS.iter().map(|_| CmdStat::default()).collect(),
            ..Default::default()
        }
    }

    /// Counts an error reply under its prefix (the first word).
    pub fn error_reply(&self, text: &str) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let prefix = text.split(' ').next().unwrap_or("ERR");
        let prefix = if prefix.chars().all(|c| c.is_ascii_uppercase()) {
            prefix
        } else {
            "ERR"
        };
        *self.errors.lock().entry(prefix.to_string()).or_default() += 1;
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.total_connections_received,
            &self.rejected_connections,
            &self.total_commands_processed,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
            &self.expired_keys,
            &self.evicted_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.total_error_replies,
            &self.unexpected_error_replies,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        for c in self.commands.iter() {
            c.calls.store(0, Ordering::Relaxed);
            c.usec.store(0, Ordering::Relaxed);
            c.rejected_calls.store(0, Ordering::Relaxed);
            c.failed_calls.store(0, Ordering::Relaxed);
            c.hist.reset();
        }
        self.errors.lock().clear();
        self.sub_latency.lock().clear();
    }
}

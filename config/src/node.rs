//! `tandem node` configuration. Keys are Redis's own configuration names (`maxmemory-policy`,
//! `requirepass`, ...), so `CONFIG GET` and people's redis.conf habits carry over.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

use crate::MemSize;

/// Configuration of one data node.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    /// Address to listen on.
    pub bind: String,
    pub port: u16,
    /// Source address of outgoing connections (the replication link to the master).
    pub bind_source_addr: Option<String>,
    /// Password clients must send with AUTH (the `default` user's password).
    pub requirepass: Option<String>,
    /// Password this node sends to its master when it is a replica.
    pub masterauth: Option<String>,
    pub masteruser: Option<String>,
    /// Working directory: snapshots and the append-only file live here.
    pub dir: PathBuf,
    pub dbfilename: String,
    /// `"HOST PORT"`: start as a replica of that master.
    pub replicaof: Option<ReplicaOf>,
    pub databases: usize,
    /// 0 means no limit.
    pub maxmemory: MemSize,
    pub maxmemory_policy: MaxmemoryPolicy,
    pub maxmemory_samples: usize,
    pub maxclients: usize,
    /// Close idle clients after this many seconds (0: never).
    pub timeout: u64,
    pub tcp_keepalive: u64,
    pub proto_max_bulk_len: MemSize,
    pub client_query_buffer_limit: MemSize,
    /// Background task frequency (active expiry cycles per second).
    pub hz: u32,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    /// Save points, Redis style: `"3600 1 300 100 60 10000"`; empty disables snapshots.
    pub save: String,
    pub appendonly: bool,
    pub appendfilename: String,
    pub appenddirname: String,
    pub appendfsync: AppendFsync,
    pub aof_load_truncated: bool,
    pub auto_aof_rewrite_percentage: u32,
    pub auto_aof_rewrite_min_size: MemSize,
    pub repl_backlog_size: MemSize,
    pub repl_diskless_sync: bool,
    /// Seconds a diskless full sync waits for more replicas to arrive, so one transfer
    /// serves them all (0: start at once).
    pub repl_diskless_sync_delay: u64,
    /// Connection threads (Redis's `io-threads`); 0: half the CPU cores, at least one.
    pub io_threads: usize,
    /// Start the diskless transfer before the delay once this many replicas wait (0: off).
    pub repl_diskless_sync_max_replicas: u32,
    /// A master with no replicas frees its backlog after this many seconds (0: never).
    pub repl_backlog_ttl: u64,
    pub repl_timeout: u64,
    pub replica_priority: u32,
    pub replica_read_only: bool,
    pub replica_serve_stale_data: bool,
    pub replica_announce_ip: Option<String>,
    pub replica_announce_port: Option<u16>,
    pub min_replicas_to_write: u32,
    pub min_replicas_max_lag: u64,
    /// Encoding thresholds (Redis's names). Tandem's structures do not change with them, but
    /// `OBJECT ENCODING` reports what Redis would, so tools that check encodings agree.
    pub hash_max_listpack_entries: u64,
    pub hash_max_listpack_value: u64,
    pub set_max_intset_entries: u64,
    pub zset_max_listpack_entries: u64,
    pub zset_max_listpack_value: u64,
    pub list_max_listpack_size: i64,
    pub list_compress_depth: u64,
    /// Commands running at least this many microseconds go to the slow log (-1: off).
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// Events lasting at least this many milliseconds are sampled by the latency monitor
    /// (0: off).
    pub latency_monitor_threshold: u64,
    /// `debug`, `verbose`, `notice` or `warning`.
    pub loglevel: String,
    /// Log file; empty means standard error.
    pub logfile: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            bind: "127.0.0.1".into(),
            port: 6379,
            bind_source_addr: None,
            requirepass: None,
            masterauth: None,
            masteruser: None,
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".into(),
            replicaof: None,
            databases: 16,
            maxmemory: MemSize(0),
            maxmemory_policy: MaxmemoryPolicy::NoEviction,
            maxmemory_samples: 5,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            proto_max_bulk_len: MemSize(512 << 20),
            client_query_buffer_limit: MemSize(1 << 30),
            hz: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            save: String::new(),
            appendonly: false,
            appendfilename: "appendonly.aof".into(),
            appenddirname: "appendonlydir".into(),
            appendfsync: AppendFsync::EverySec,
            aof_load_truncated: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: MemSize(64 << 20),
            repl_backlog_size: MemSize(1 << 20),
            repl_diskless_sync: true,
            repl_diskless_sync_delay: 5,
            io_threads: 0,
            repl_diskless_sync_max_replicas: 0,
            repl_backlog_ttl: 3600,
            repl_timeout: 60,
            replica_priority: 100,
            replica_read_only: true,
            replica_serve_stale_data: true,
            replica_announce_ip: None,
            replica_announce_port: None,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            loglevel: "notice".into(),
            logfile: String::new(),
        }
    }
}

impl NodeConfig {
    /// Checks values that types alone cannot (ranges, combinations). The message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.databases == 0 || self.databases > 1024 {
            return Err(format!(
                "databases: must be between 1 and 1024, got {}",
                self.databases
            ));
        }
        if self.maxmemory_samples == 0 || self.maxmemory_samples > 64 {
            return Err("maxmemory-samples: must be between 1 and 64".into());
        }
        if self.hz == 0 || self.hz > 500 {
            return Err("hz: must be between 1 and 500".into());
        }
        if let Some(a) = self.bind_source_addr.as_deref().filter(|a| !a.is_empty()) {
            a.parse::<std::net::IpAddr>()
                .map_err(|_| format!("bind-source-addr: not an IP address: {a:?}"))?;
        }
        if self.slowlog_log_slower_than < -1 {
            return Err("slowlog-log-slower-than: must be -1 or more".into());
        }
        if self.proto_max_bulk_len.0 < 1024 * 1024 {
            return Err("proto-max-bulk-len: must be at least 1mb".into());
        }
        crate::node::parse_save_points(&self.save).map(|_| ())
    }
}

/// Parses `"3600 1 300 100"` into (seconds, changes) pairs.
pub fn parse_save_points(s: &str) -> Result<Vec<(u64, u64)>, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if !parts.len().is_multiple_of(2) {
        return Err(format!(
            "save: expected pairs of <seconds> <changes>, got {s:?}"
        ));
    }
    parts
        .chunks(2)
        .map(|c| {
            let secs = c[0]
                .parse()
                .map_err(|_| format!("save: invalid seconds {:?}", c[0]))?;
            let changes = c[1]
                .parse()
                .map_err(|_| format!("save: invalid changes {:?}", c[1]))?;
            Ok((secs, changes))
        })
        .collect()
}

/// `replicaof = "HOST PORT"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOf {
    pub host: String,
    pub port: u16,
}

impl<'de> Deserialize<'de> for ReplicaOf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut parts = s.split_whitespace();
        match (
            parts.next(),
            parts.next().and_then(|p| p.parse().ok()),
            parts.next(),
        ) {
            (Some(host), Some(port), None) => Ok(ReplicaOf {
                host: host.to_string(),
                port,
            }),
            _ => Err(serde::de::Error::custom(format!(
                "expected \"HOST PORT\", got {s:?}"
            ))),
        }
    }
}

impl Serialize for ReplicaOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} {}", self.host, self.port))
    }
}

/// What to do when `maxmemory` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MaxmemoryPolicy {
    #[default]
    #[serde(rename = "noeviction")]
    NoEviction,
    AllkeysLru,
    VolatileLru,
    AllkeysRandom,
    VolatileRandom,
    VolatileTtl,
    AllkeysLfu,
    VolatileLfu,
}

impl MaxmemoryPolicy {
    pub const ALL: [MaxmemoryPolicy; 8] = [
        MaxmemoryPolicy::NoEviction,
        MaxmemoryPolicy::AllkeysLru,
        MaxmemoryPolicy::VolatileLru,
        MaxmemoryPolicy::AllkeysRandom,
        MaxmemoryPolicy::VolatileRandom,
        MaxmemoryPolicy::VolatileTtl,
        MaxmemoryPolicy::AllkeysLfu,
        MaxmemoryPolicy::VolatileLfu,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MaxmemoryPolicy::NoEviction => "noeviction",
            MaxmemoryPolicy::AllkeysLru => "allkeys-lru",
            MaxmemoryPolicy::VolatileLru => "volatile-lru",
            MaxmemoryPolicy::AllkeysRandom => "allkeys-random",
            MaxmemoryPolicy::VolatileRandom => "volatile-random",
            MaxmemoryPolicy::VolatileTtl => "volatile-ttl",
            MaxmemoryPolicy::AllkeysLfu => "allkeys-lfu",
            MaxmemoryPolicy::VolatileLfu => "volatile-lfu",
        }
    }

    pub fn parse(s: &str) -> Option<MaxmemoryPolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for MaxmemoryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AppendFsync {
    Always,
    #[default]
    EverySec,
    No,
}

impl AppendFsync {
    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
            AppendFsync::No => "no",
        }
    }
}

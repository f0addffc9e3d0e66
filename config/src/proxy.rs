//! `tandem proxy` configuration: where clients connect, how the proxy finds the master and
//! the replicas, and how it routes reads.

use serde::{Deserialize, Serialize};

use crate::MemSize;

/// Configuration of the proxy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProxyConfig {
    /// Address clients connect to.
    pub listen: String,
    /// Sentinels to follow (`host:port`); empty means a static topology.
    pub sentinels: Vec<String>,
    pub master_name: String,
    /// Static topology, for setups without sentinels.
    pub master: Option<String>,
    pub replicas: Vec<String>,
    pub read_policy: ReadPolicy,
    pub max_lag_ms: u64,
    pub max_lag_bytes: Option<u64>,
    pub read_your_writes: bool,
    pub write_concern: WriteConcern,
    /// Password clients must send to the proxy.
    pub password: Option<String>,
    /// Password the proxy sends to nodes.
    pub backend_password: Option<String>,
    /// Pooled connections per backend and worker thread, shared by its clients. One (the
    /// default, as twemproxy's `server_connections: 1`) gives the backend the largest
    /// batches: fewer system calls on both sides.
    pub pool_size: usize,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    /// How long writes wait for a new master during a failover.
    pub failover_queue_timeout_ms: u64,
    pub failover_queue_max: usize,
    /// Per-client output buffer limit; a slower client is disconnected.
    pub client_output_buffer_limit: MemSize,
    /// Address of the Prometheus `/metrics` endpoint; empty disables it.
    pub metrics: String,
    /// Allow administrative commands (CONFIG SET, REPLICAOF, SHUTDOWN, ...) through the proxy.
    pub allow_admin: bool,
    /// Password the proxy sends to the sentinels.
    pub sentinel_password: Option<String>,
    /// Worker threads serving clients; 0 means half the CPU cores (at least one).
    pub threads: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:6400".into(),
            sentinels: Vec::new(),
            master_name: "mymaster".into(),
            master: None,
            replicas: Vec::new(),
            read_policy: ReadPolicy::LagAware,
            max_lag_ms: 1000,
            max_lag_bytes: None,
            read_your_writes: true,
            write_concern: WriteConcern::Master,
            password: None,
            backend_password: None,
            pool_size: 1,
            connect_timeout_ms: 1000,
            command_timeout_ms: 5000,
            failover_queue_timeout_ms: 5000,
            failover_queue_max: 10_000,
            client_output_buffer_limit: MemSize(64 << 20),
            metrics: "127.0.0.1:9400".into(),
            allow_admin: false,
            sentinel_password: None,
            threads: 0,
        }
    }
}

/// Where reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReadPolicy {
    /// Everything to the master.
    Master,
    /// Reads to replicas, the master when none is fit.
    Replicas,
    /// Reads to replicas that are up and within the lag limits (default).
    #[default]
    LagAware,
}

/// When the proxy acknowledges a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WriteConcern {
    /// When the master has it (Redis's default behaviour).
    #[default]
    Master,
    /// Only after at least one replica has it.
    Replicated,
}

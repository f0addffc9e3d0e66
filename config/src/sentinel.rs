//! `tandem sentinel` configuration: the sentinel's own address and the masters it monitors,
//! with Redis Sentinel's names and defaults.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Configuration of one sentinel.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SentinelConfig {
    pub bind: String,
    pub port: u16,
    /// Address announced to peers in hello messages (defaults to the bind address).
    pub announce_ip: Option<String>,
    pub announce_port: Option<u16>,
    /// Source address of every outgoing connection (to masters, replicas and sentinels).
    pub bind_source_addr: Option<String>,
    /// Directory of the state file.
    pub dir: PathBuf,
    /// The sentinel's state file (epochs, current masters, known replicas and sentinels).
    pub state_file: String,
    pub requirepass: Option<String>,
    /// The masters this sentinel watches.
    #[serde(rename = "monitor")]
    pub monitors: Vec<MonitorConfig>,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        SentinelConfig {
            bind: "127.0.0.1".into(),
            port: 26379,
            announce_ip: None,
            announce_port: None,
            bind_source_addr: None,
            dir: PathBuf::from("."),
            state_file: "sentinel-state.toml".into(),
            requirepass: None,
            monitors: Vec::new(),
        }
    }
}

/// One `[[monitor]]` entry: `sentinel monitor <name> <ip> <port> <quorum>` and its settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MonitorConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub quorum: u32,
    #[serde(default = "default_down_after")]
    pub down_after_ms: u64,
    #[serde(default = "default_failover_timeout")]
    pub failover_timeout_ms: u64,
    #[serde(default = "default_parallel_syncs")]
    pub parallel_syncs: u32,
    #[serde(default)]
    pub auth_pass: Option<String>,
    #[serde(default)]
    pub auth_user: Option<String>,
}

fn default_down_after() -> u64 {
    30_000
}
fn default_failover_timeout() -> u64 {
    180_000
}
fn default_parallel_syncs() -> u32 {
    1
}

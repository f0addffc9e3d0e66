//! Typed configuration for every Tandem component, read from TOML. One struct per component
//! ([`NodeConfig`], [`SentinelConfig`], [`ProxyConfig`]) plus the [`load`] function.
//! Guarantees: unknown keys are rejected, every error names the file, the line, the key and
//! what was expected, and loading never touches data.

mod load;
mod node;
mod proxy;
mod sentinel;
mod units;

pub use load::{load, load_or_default, parse, ConfigError};
pub use node::{AppendFsync, MaxmemoryPolicy, NodeConfig, ReplicaOf};
pub use proxy::{ProxyConfig, ReadPolicy, WriteConcern};
pub use sentinel::{MonitorConfig, SentinelConfig};
pub use units::MemSize;

/// The thread count that `0` stands for in `io-threads` (node) and `threads` (proxy): half
/// the CPU cores, at least one. Both serve sockets, mostly in system calls and wake-ups, and
/// share their host with clients or other nodes (`tandem up` runs everything on one machine):
/// on 2 cores one thread served more than two, which spent their time switching
/// (benches/node_vs_redis.sh, benches/proxy_vs_twemproxy.sh).
pub fn threads_or_default(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores / 2).max(1)
}

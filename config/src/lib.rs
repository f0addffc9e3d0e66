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

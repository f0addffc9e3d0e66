//! `tandem node`: a Redis-compatible data server.
//!
//! Layout:
//! - [`server`]: shared state and the accept loop (`run(server, listener, shutdown)`).
//! - [`session`]: one client connection: decoding, auth, MULTI/EXEC, pub/sub, blocking.
//! - [`cmd`]: command handlers, one module per command group, dispatched exhaustively.
//! - [`db`]: the sharded keyspace, value types, expiry and eviction.
//! - [`persistence`]: RDB snapshots (format, SAVE/BGSAVE, save points, start-up load).
//! - [`pubsub`], [`clients`], [`stats`], [`cron`]: pub/sub registry, client registry,
//!   INFO counters and periodic work.
//! - [`propagate`]: the stream of changes, in execution order, for replication and the AOF.
//! - [`replication`]: backlog, master side and replica link.
//! - [`alloc`]: the counting allocator behind `used_memory` and `maxmemory`.
//! - [`slowlog`], [`latency`], [`pause`]: SLOWLOG, the latency monitor, CLIENT PAUSE.

pub mod alloc;
pub mod clients;
pub mod cmd;
pub mod cron;
pub mod db;
pub mod latency;
pub mod pause;
pub mod persistence;
pub mod propagate;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod session;
pub mod slowlog;
pub mod stats;

pub use server::{run, Server};

/// The version reported to clients (`redis_version`, HELLO): Tandem speaks Redis 7.0.
pub const REDIS_VERSION: &str = "7.0.15";

/// Current unix time in milliseconds.
#[inline]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

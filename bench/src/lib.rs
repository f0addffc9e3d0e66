//! `tandem bench`: a load generator for any RESP endpoint (a Tandem node or proxy,
//! redis-server, twemproxy) that measures what clients see, including stalls.
//!
//! Layout:
//! - [`args`]: the flags and their checks, turned into one [`load::LoadSpec`] per target.
//! - [`workload`]: command mixes, key choice (uniform or zipf), values, seeded per connection.
//! - [`conn`]: one connection: handshake, writes, reply scanning without decoding.
//! - [`load`]: the closed loop and the open loop (latency from the intended send time).
//! - [`timer`]: sub-millisecond sleeps for the open loop's schedule.
//! - [`histogram`]: per-command hdrhistograms, counts, errors by kind; `--hdr-out` files.
//! - [`report`]: tables, the side-by-side comparison, JSON.
//! - [`progress`]: the once-a-second line on a terminal.
//! - [`run`]: the command itself: targets one after another, then the output.
//! - [`scenario`]: fault scenarios (`--scenario failover|replica-churn|proxy-restart|partition`)
//!   against a deployment it starts: Tandem (`tandem up`) or, with `--stack redis`,
//!   redis-server + redis-sentinel + twemproxy.

pub mod args;
pub mod conn;
pub mod histogram;
pub mod load;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod timer;
pub mod workload;

pub use args::BenchArgs;
pub use run::main;

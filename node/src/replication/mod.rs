//! Replication as Redis does it on the wire: the backlog of the stream ([`backlog`]); the
//! master side (PSYNC, streaming to replicas) and the replica's link state machine come next.

pub mod backlog;

//! `tandem proxy`: one endpoint for applications, writes to the master, reads to replicas.
//! Not built yet: the proxy issue fills this crate in.

//! Server and admin commands (INFO, CLIENT, CONFIG, COMMAND, DEBUG, MEMORY, SLOWLOG,
//! LATENCY, TIME, LASTSAVE, ROLE, SAVE & co.), with Redis 7.0's reply shapes and error texts.
//! The shared state they need beyond [`Server`]'s is kept in [`Admin`].

pub mod client;
pub mod command;
pub mod config;
pub mod debug;
pub mod docs;
pub mod info;
pub mod memory;

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tandem_protocol::Reply;

use super::args::{self, CmdResult};
use super::Ctx;
use crate::persistence::snapshot;
use crate::server::Server;

pub use client::client;
pub use command::command;
pub use config::config;
pub use debug::debug;
pub use info::info;
pub use memory::memory;

/// State owned by the admin commands, kept in [`Server::admin`].
pub struct Admin {
    config_file: OnceLock<PathBuf>,
    /// Redis parameters Tandem accepts but does not model beyond storing them (encoding
    /// thresholds, lazyfree switches, slowlog settings...), by canonical name.
    pub extra_config: Mutex<BTreeMap<&'static str, String>>,
    /// `used_memory_peak`.
    pub mem_peak: AtomicU64,
    /// `used_memory_startup`.
    pub mem_startup: u64,
    /// Samples behind `instantaneous_*`.
    pub metrics: Mutex<info::Metrics>,
}

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl Admin {
    pub fn new() -> Admin {
        let used = crate::alloc::used_memory();
        Admin {
            config_file: OnceLock::new(),
            extra_config: Mutex::new(config::extra_defaults()),
            mem_peak: AtomicU64::new(used),
            mem_startup: used,
            metrics: Mutex::new(info::Metrics::default()),
        }
    }

    /// Records the configuration file the node was started with (absolute when possible).
    pub fn set_config_file(&self, path: &Path) {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let _ = self.config_file.set(abs);
    }

    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.get().map(PathBuf::as_path)
    }

    /// Current used memory, updating the peak.
    pub fn used_memory(&self) -> u64 {
        let used = crate::alloc::used_memory();
        self.mem_peak.fetch_max(used, Ordering::Relaxed);
        used
    }
}

/// Periodic work of the admin state, called by the server cron: INFO's samples and the
/// memory peak.
pub fn cron_tick(srv: &Server) {
    srv.admin.used_memory();
    srv.admin.metrics.lock().sample(srv);
}

/// A Redis-style HELP reply: a header line, the subcommand lines, then HELP itself.
pub(crate) fn help_reply(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::status(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::status(l.to_string())));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Print this help."));
    Reply::Array(out)
}

/// TIME: `[unix seconds, microseconds]` as bulk strings.
pub fn time(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::bulk_str(&now.as_secs().to_string()),
        Reply::bulk_str(&now.subsec_micros().to_string()),
    ]))
}

pub fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.srv.persistence.lastsave.load(Ordering::Relaxed) as i64,
    ))
}

/// ROLE, in Redis's shapes for a master and a replica.
pub fn role(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Ok(crate::replication::report::role(ctx.srv))
}

/// WAIT inside MULTI (the session runs the blocking form): never blocks, replies with the
/// number of replicas that acknowledged everything written so far.
pub fn wait(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.srv.is_replica() {
        return Err(Reply::error(crate::replication::ERR_WAIT_REPLICA));
    }
    args::int(&args[1])?;
    crate::replication::parse_wait_timeout(&args[2])?;
    let off = ctx.srv.feed.offset();
    Ok(Reply::Int(ctx.srv.repl.replicas.count_acked(off) as i64))
}

/// SAVE: writes `dbfilename` now, with every shard locked (the server waits, as in Redis).
pub fn save(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let srv = ctx.srv;
    if srv.persistence.bgsave_in_progress.load(Ordering::Acquire) {
        return Err(Reply::error("ERR Background save already in progress"));
    }
    let shards = ctx.shards_mut();
    let snap = snapshot::freeze(srv, &shards);
    drop(shards);
    match snapshot::save_sync(srv, &snap) {
        Ok(_) => Ok(Reply::Ok),
        Err(_) => Err(Reply::error("ERR")),
    }
}

/// BGSAVE [SCHEDULE]: freezes the keyspace (the command holds every shard) and writes it on
/// a background thread.
pub fn bgsave(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if args::is(&args[1], "schedule") => true,
        _ => return Err(args::syntax_error()),
    };
    let srv = ctx.srv;
    let st = &srv.persistence;
    if st.bgsave_in_progress.load(Ordering::Acquire) {
        return Err(Reply::error("ERR Background save already in progress"));
    }
    if st.aof.rewrite_in_progress.load(Ordering::Relaxed) || ctx.in_exec {
        if schedule || ctx.in_exec {
            st.bgsave_scheduled.store(true, Ordering::Relaxed);
            return Ok(Reply::status("Background saving scheduled"));
        }
        return Err(Reply::error(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. \
             Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    let shards = ctx.shards_mut();
    let snap = snapshot::freeze(srv, &shards);
    drop(shards);
    match snapshot::start_bgsave(srv, snap) {
        Ok(()) => Ok(Reply::status("Background saving started")),
        Err(snapshot::BgsaveRefused::AlreadyInProgress) => {
            Err(Reply::error("ERR Background save already in progress"))
        }
        Err(snapshot::BgsaveRefused::ThreadFailed) => Err(Reply::error("ERR")),
    }
}

pub fn bgrewriteaof(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    crate::persistence::aof::bgrewriteaof(ctx.srv, ctx.in_exec)
}

/// SLOWLOG (see [`crate::slowlog`]).
pub fn slowlog(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    crate::slowlog::command(ctx.srv, args)
}

/// LATENCY (see [`crate::latency`]).
pub fn latency(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    crate::latency::command(ctx.srv, args)
}

/// CLIENT SETNAME / HELLO SETNAME rule: no spaces, newlines or other special characters.
pub fn validate_client_name(name: &[u8]) -> Result<(), tandem_protocol::Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(tandem_protocol::Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// Redis's `bytesToHuman`: `123B`, `1.50K`, `2.00M`, ...
pub fn bytes_to_human(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else {
        format!("{:.2}P", d / (K * K * K * K * K))
    }
}

/// FUNCTION: Tandem has no scripting engine, so there are never any functions. FLUSH (which
/// Redis's test harness sends before every test) and LIST/STATS answer truthfully for an
/// empty library; LOAD and the rest are refused with a clear error.
pub fn function(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "flush" if args.len() <= 3 => {
            if let Some(mode) = args.get(2) {
                if !(mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync")) {
                    return Err(Reply::error(
                        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
                    ));
                }
            }
            Ok(Reply::Ok)
        }
        "list" => Ok(Reply::Array(vec![])),
        "stats" => Ok(Reply::Map(vec![
            (Reply::bulk_str("running_script"), Reply::Nil),
            (Reply::bulk_str("engines"), Reply::Map(vec![])),
        ])),
        "load" | "delete" | "dump" | "restore" | "kill" => Err(Reply::error(
            "ERR functions and scripting are not supported by tandem",
        )),
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(3 << 20), "3.00M");
        assert_eq!(bytes_to_human(1 << 30), "1.00G");
    }

    #[test]
    fn client_names() {
        assert!(validate_client_name(b"ok-name").is_ok());
        assert!(validate_client_name(b"bad name").is_err());
        assert!(validate_client_name(b"bad\nname").is_err());
    }
}

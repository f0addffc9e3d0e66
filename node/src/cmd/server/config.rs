//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP with Redis 7.0's parameter names, value
//! formats (booleans `yes`/`no`, memory in bytes) and error texts. CONFIG SET validates
//! every pair before applying any (all or nothing), then swaps the configuration in with
//! `Server::apply_config`.
//!
//! Besides the parameters [`NodeConfig`] models, a few Redis parameters that tests and
//! tools commonly set are accepted and stored (see [`EXTRAS`]): switches whose only effect
//! in Redis is on work Tandem does not do (lazy freeing, rehashing...) and settings of
//! features that are off (`notify-keyspace-events` accepts only "").

use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tandem_config::{AppendFsync, MaxmemoryPolicy, MemSize, NodeConfig};
use tandem_protocol::glob;
use tandem_protocol::Reply;

use super::command::subcommand;
use super::help_reply;
use crate::cmd::args::{self, CmdResult};
use crate::cmd::Ctx;

type Getter = fn(&NodeConfig) -> String;
type Setter = fn(&mut NodeConfig, &str) -> Result<(), String>;

/// A parameter [`NodeConfig`] models.
struct Param {
    name: &'static str,
    aliases: &'static [&'static str],
    get: Getter,
    /// `None`: immutable at run time.
    set: Option<Setter>,
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn parse_int(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = tandem_protocol::number::parse_i64(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn parse_mem(v: &str, min: u64) -> Result<MemSize, String> {
    let m = MemSize::parse(v).ok_or_else(|| "argument must be a memory value".to_string())?;
    if m.0 < min || m.0 > i64::MAX as u64 {
        return Err(format!(
            "argument must be between {min} and {} inclusive",
            i64::MAX
        ));
    }
    Ok(m)
}

fn one_of<T: Copy>(v: &str, options: &[(&str, T)]) -> Result<T, String> {
    options
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(v))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            format!(
                "argument(s) must be one of the following: {}",
                names.join(", ")
            )
        })
}

fn opt_str(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

const INT_MAX: i64 = i32::MAX as i64;

static PARAMS: &[Param] = &[
    Param {
        name: "bind",
        aliases: &[],
        get: |c| c.bind.clone(),
        set: None,
    },
    Param {
        name: "port",
        aliases: &[],
        get: |c| c.port.to_string(),
        set: None,
    },
    Param {
        name: "bind-source-addr",
        aliases: &[],
        get: |c| c.bind_source_addr.clone().unwrap_or_default(),
        set: Some(|c, v| {
            c.bind_source_addr = opt_str(v);
            Ok(())
        }),
    },
    Param {
        name: "io-threads",
        aliases: &[],
        get: |c| tandem_config::threads_or_default(c.io_threads).to_string(),
        set: None,
    },
    Param {
        name: "databases",
        aliases: &[],
        get: |c| c.databases.to_string(),
        set: None,
    },
    Param {
        name: "requirepass",
        aliases: &[],
        get: |c| c.requirepass.clone().unwrap_or_default(),
        set: Some(|c, v| {
            c.requirepass = opt_str(v);
            Ok(())
        }),
    },
    Param {
        name: "masterauth",
        aliases: &[],
        get: |c| c.masterauth.clone().unwrap_or_default(),
        set: Some(|c, v| {
            c.masterauth = opt_str(v);
            Ok(())
        }),
    },
    Param {
        name: "masteruser",
        aliases: &[],
        get: |c| c.masteruser.clone().unwrap_or_default(),
        set: Some(|c, v| {
            c.masteruser = opt_str(v);
            Ok(())
        }),
    },
    Param {
        name: "dir",
        aliases: &[],
        get: |c| {
            std::fs::canonicalize(&c.dir)
                .unwrap_or_else(|_| c.dir.clone())
                .display()
                .to_string()
        },
        set: Some(|c, v| {
            let p = PathBuf::from(v);
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => {
                    c.dir = std::fs::canonicalize(&p).unwrap_or(p);
                    Ok(())
                }
                Ok(_) => Err("Not a directory".into()),
                Err(_) => Err("No such file or directory".into()),
            }
        }),
    },
    Param {
        name: "dbfilename",
        aliases: &[],
        get: |c| c.dbfilename.clone(),
        set: Some(|c, v| {
            if v.contains('/') {
                return Err("dbfilename can't be a path, just a filename".into());
            }
            c.dbfilename = v.to_string();
            Ok(())
        }),
    },
    Param {
        name: "replicaof",
        aliases: &["slaveof"],
        get: |c| {
            c.replicaof
                .as_ref()
                .map(|r| format!("{} {}", r.host, r.port))
                .unwrap_or_default()
        },
        set: None,
    },
    Param {
        name: "maxmemory",
        aliases: &[],
        get: |c| c.maxmemory.0.to_string(),
        set: Some(|c, v| {
            c.maxmemory = parse_mem(v, 0)?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-policy",
        aliases: &[],
        get: |c| c.maxmemory_policy.as_str().to_string(),
        set: Some(|c, v| {
            let opts: Vec<(&str, MaxmemoryPolicy)> = MaxmemoryPolicy::ALL
                .iter()
                .map(|p| (p.as_str(), *p))
                .collect();
            c.maxmemory_policy = one_of(v, &opts)?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-samples",
        aliases: &[],
        get: |c| c.maxmemory_samples.to_string(),
        set: Some(|c, v| {
            c.maxmemory_samples = parse_int(v, 1, 64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "maxclients",
        aliases: &[],
        get: |c| c.maxclients.to_string(),
        set: Some(|c, v| {
            c.maxclients = parse_int(v, 1, INT_MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "timeout",
        aliases: &[],
        get: |c| c.timeout.to_string(),
        set: Some(|c, v| {
            c.timeout = parse_int(v, 0, INT_MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "tcp-keepalive",
        aliases: &[],
        get: |c| c.tcp_keepalive.to_string(),
        set: Some(|c, v| {
            c.tcp_keepalive = parse_int(v, 0, INT_MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "proto-max-bulk-len",
        aliases: &[],
        get: |c| c.proto_max_bulk_len.0.to_string(),
        set: Some(|c, v| {
            c.proto_max_bulk_len = parse_mem(v, 1024 * 1024)?;
            Ok(())
        }),
    },
    Param {
        name: "client-query-buffer-limit",
        aliases: &[],
        get: |c| c.client_query_buffer_limit.0.to_string(),
        set: Some(|c, v| {
            c.client_query_buffer_limit = parse_mem(v, 1024 * 1024)?;
            Ok(())
        }),
    },
    Param {
        name: "hz",
        aliases: &[],
        get: |c| c.hz.to_string(),
        set: Some(|c, v| {
            // Redis accepts any non-negative value and clamps it to 1..=500.
            c.hz = parse_int(v, 0, INT_MAX)?.clamp(1, 500) as u32;
            Ok(())
        }),
    },
    Param {
        name: "lfu-log-factor",
        aliases: &[],
        get: |c| c.lfu_log_factor.to_string(),
        set: Some(|c, v| {
            c.lfu_log_factor = parse_int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    },
    Param {
        name: "lfu-decay-time",
        aliases: &[],
        get: |c| c.lfu_decay_time.to_string(),
        set: Some(|c, v| {
            c.lfu_decay_time = parse_int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    },
    Param {
        name: "save",
        aliases: &[],
        get: |c| c.save.split_whitespace().collect::<Vec<_>>().join(" "),
        set: Some(|c, v| {
            let norm = v.split_whitespace().collect::<Vec<_>>().join(" ");
            let probe = NodeConfig {
                save: norm.clone(),
                ..NodeConfig::default()
            };
            if probe.validate().is_err() {
                return Err("Invalid save parameters".into());
            }
            c.save = norm;
            Ok(())
        }),
    },
    Param {
        name: "appendonly",
        aliases: &[],
        get: |c| yes_no(c.appendonly),
        set: Some(|c, v| {
            c.appendonly = parse_bool(v)?;
            Ok(())
        }),
    },
    Param {
        name: "appendfilename",
        aliases: &[],
        get: |c| c.appendfilename.clone(),
        set: None,
    },
    Param {
        name: "appenddirname",
        aliases: &[],
        get: |c| c.appenddirname.clone(),
        set: None,
    },
    Param {
        name: "appendfsync",
        aliases: &[],
        get: |c| c.appendfsync.as_str().to_string(),
        set: Some(|c, v| {
            c.appendfsync = one_of(
                v,
                &[
                    ("always", AppendFsync::Always),
                    ("everysec", AppendFsync::EverySec),
                    ("no", AppendFsync::No),
                ],
            )?;
            Ok(())
        }),
    },
    Param {
        name: "aof-load-truncated",
        aliases: &[],
        get: |c| yes_no(c.aof_load_truncated),
        set: Some(|c, v| {
            c.aof_load_truncated = parse_bool(v)?;
            Ok(())
        }),
    },
    Param {
        name: "auto-aof-rewrite-percentage",
        aliases: &[],
        get: |c| c.auto_aof_rewrite_percentage.to_string(),
        set: Some(|c, v| {
            c.auto_aof_rewrite_percentage = parse_int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    },
    Param {
        name: "auto-aof-rewrite-min-size",
        aliases: &[],
        get: |c| c.auto_aof_rewrite_min_size.0.to_string(),
        set: Some(|c, v| {
            c.auto_aof_rewrite_min_size = parse_mem(v, 0)?;
            Ok(())
        }),
    },
    Param {
        name: "repl-backlog-size",
        aliases: &[],
        get: |c| c.repl_backlog_size.0.to_string(),
        set: Some(|c, v| {
            c.repl_backlog_size = parse_mem(v, 1)?;
            Ok(())
        }),
    },
    Param {
        name: "repl-diskless-sync",
        aliases: &[],
        get: |c| yes_no(c.repl_diskless_sync),
        set: Some(|c, v| {
            c.repl_diskless_sync = parse_bool(v)?;
            Ok(())
        }),
    },
    Param {
        name: "repl-diskless-sync-delay",
        aliases: &[],
        get: |c| c.repl_diskless_sync_delay.to_string(),
        set: Some(|c, v| {
            c.repl_diskless_sync_delay = parse_int(v, 0, INT_MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "repl-diskless-sync-max-replicas",
        aliases: &[],
        get: |c| c.repl_diskless_sync_max_replicas.to_string(),
        set: Some(|c, v| {
            c.repl_diskless_sync_max_replicas = parse_int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    },
    Param {
        name: "repl-backlog-ttl",
        aliases: &[],
        get: |c| c.repl_backlog_ttl.to_string(),
        set: Some(|c, v| {
            c.repl_backlog_ttl = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "repl-timeout",
        aliases: &[],
        get: |c| c.repl_timeout.to_string(),
        set: Some(|c, v| {
            c.repl_timeout = parse_int(v, 1, INT_MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "replica-priority",
        aliases: &["slave-priority"],
        get: |c| c.replica_priority.to_string(),
        set: Some(|c, v| {
            c.replica_priority = parse_int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    },
    Param {
        name: "replica-read-only",
        aliases: &["slave-read-only"],
        get: |c| yes_no(c.replica_read_only),
        set: Some(|c, v| {
            c.replica_read_only = parse_bool(v)?;
            Ok(())
        }),
    },
    Param {
        name: "replica-serve-stale-data",
        aliases: &["slave-serve-stale-data"],
        get: |c| yes_no(c.replica_serve_stale_data),
        set: Some(|c, v| {
            c.replica_serve_stale_data = parse_bool(v)?;
            Ok(())
        }),
    },
    Param {
        name: "replica-announce-ip",
        aliases: &["slave-announce-ip"],
        get: |c| c.replica_announce_ip.clone().unwrap_or_default(),
        set: Some(|c, v| {
            c.replica_announce_ip = opt_str(v);
            Ok(())
        }),
    },
    Param {
        name: "replica-announce-port",
        aliases: &["slave-announce-port"],
        get: |c| c.replica_announce_port.unwrap_or(0).to_string(),
        set: Some(|c, v| {
            let p = parse_int(v, 0, 65535)? as u16;
            c.replica_announce_port = (p != 0).then_some(p);
            Ok(())
        }),
    },
    Param {
        name: "min-replicas-to-write",
        aliases: &["min-slaves-to-write"],
        get: |c| c.min_replicas_to_write.to_string(),
        set: Some(|c, v| {
            c.min_replicas_to_write = parse_int(v, 0, INT_MAX)? as u32;
            Ok(())
        }),
    },
    Param {
        name: "min-replicas-max-lag",
        aliases: &["min-slaves-max-lag"],
        get: |c| c.min_replicas_max_lag.to_string(),
        set: Some(|c, v| {
            c.min_replicas_max_lag = parse_int(v, 0, INT_MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "hash-max-listpack-entries",
        aliases: &["hash-max-ziplist-entries"],
        get: |c| c.hash_max_listpack_entries.to_string(),
        set: Some(|c, v| {
            c.hash_max_listpack_entries = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "hash-max-listpack-value",
        aliases: &["hash-max-ziplist-value"],
        get: |c| c.hash_max_listpack_value.to_string(),
        set: Some(|c, v| {
            c.hash_max_listpack_value = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "slowlog-log-slower-than",
        aliases: &[],
        get: |c| c.slowlog_log_slower_than.to_string(),
        set: Some(|c, v| {
            c.slowlog_log_slower_than = parse_int(v, -1, i64::MAX)?;
            Ok(())
        }),
    },
    Param {
        name: "slowlog-max-len",
        aliases: &[],
        get: |c| c.slowlog_max_len.to_string(),
        set: Some(|c, v| {
            c.slowlog_max_len = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "latency-monitor-threshold",
        aliases: &[],
        get: |c| c.latency_monitor_threshold.to_string(),
        set: Some(|c, v| {
            c.latency_monitor_threshold = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "set-max-intset-entries",
        aliases: &[],
        get: |c| c.set_max_intset_entries.to_string(),
        set: Some(|c, v| {
            c.set_max_intset_entries = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "zset-max-listpack-entries",
        aliases: &["zset-max-ziplist-entries"],
        get: |c| c.zset_max_listpack_entries.to_string(),
        set: Some(|c, v| {
            c.zset_max_listpack_entries = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "zset-max-listpack-value",
        aliases: &["zset-max-ziplist-value"],
        get: |c| c.zset_max_listpack_value.to_string(),
        set: Some(|c, v| {
            c.zset_max_listpack_value = parse_int(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "list-max-listpack-size",
        aliases: &["list-max-ziplist-size"],
        get: |c| c.list_max_listpack_size.to_string(),
        set: Some(|c, v| {
            c.list_max_listpack_size = parse_int(v, -5, INT_MAX)?;
            Ok(())
        }),
    },
    Param {
        name: "list-compress-depth",
        aliases: &[],
        get: |c| c.list_compress_depth.to_string(),
        set: Some(|c, v| {
            c.list_compress_depth = parse_int(v, 0, INT_MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "loglevel",
        aliases: &[],
        get: |c| c.loglevel.clone(),
        set: Some(|c, v| {
            c.loglevel = one_of(
                v,
                &[
                    ("debug", "debug"),
                    ("verbose", "verbose"),
                    ("notice", "notice"),
                    ("warning", "warning"),
                ],
            )?
            .to_string();
            Ok(())
        }),
    },
    Param {
        name: "logfile",
        aliases: &[],
        get: |c| c.logfile.clone(),
        set: None,
    },
];

/// How an extra (stored-only) parameter's values are checked.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int(i64, i64),
    /// Only this value is accepted (the feature is not available in another setting).
    Only(&'static str),
    Immutable,
}

/// A Redis parameter Tandem accepts and stores without modelling it in [`NodeConfig`].
struct Extra {
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
}

static EXTRAS: &[Extra] = &[
    Extra {
        name: "lazyfree-lazy-eviction",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Extra {
        name: "lazyfree-lazy-expire",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Extra {
        name: "lazyfree-lazy-server-del",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Extra {
        name: "lazyfree-lazy-user-del",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Extra {
        name: "lazyfree-lazy-user-flush",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Extra {
        name: "replica-lazy-flush",
        aliases: &["slave-lazy-flush"],
        kind: Kind::Bool,
        default: "no",
    },
    Extra {
        name: "activerehashing",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "activedefrag",
        aliases: &[],
        kind: Kind::Only("no"),
        default: "no",
    },
    Extra {
        name: "dynamic-hz",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "active-expire-effort",
        aliases: &[],
        kind: Kind::Int(1, 10),
        default: "1",
    },
    Extra {
        name: "maxmemory-eviction-tenacity",
        aliases: &[],
        kind: Kind::Int(0, 100),
        default: "10",
    },
    Extra {
        name: "latency-tracking",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "notify-keyspace-events",
        aliases: &[],
        kind: Kind::Only(""),
        default: "",
    },
    Extra {
        name: "busy-reply-threshold",
        aliases: &["lua-time-limit"],
        kind: Kind::Int(0, i64::MAX),
        default: "5000",
    },
    Extra {
        name: "protected-mode",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "stop-writes-on-bgsave-error",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "rdbcompression",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "rdbchecksum",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Extra {
        name: "rdb-key-save-delay",
        aliases: &[],
        kind: Kind::Int(i32::MIN as i64, INT_MAX),
        default: "0",
    },
    Extra {
        name: "repl-ping-replica-period",
        aliases: &["repl-ping-slave-period"],
        kind: Kind::Int(1, INT_MAX),
        default: "10",
    },
    Extra {
        name: "daemonize",
        aliases: &[],
        kind: Kind::Immutable,
        default: "no",
    },
    Extra {
        name: "cluster-enabled",
        aliases: &[],
        kind: Kind::Immutable,
        default: "no",
    },
    Extra {
        name: "maxmemory-clients",
        aliases: &[],
        kind: Kind::Only("0"),
        default: "0",
    },
];

/// The stored values of the extra parameters, at their Redis defaults.
pub fn extra_defaults() -> BTreeMap<&'static str, String> {
    EXTRAS
        .iter()
        .map(|e| (e.name, e.default.to_string()))
        .collect()
}

enum Found {
    Param(&'static Param),
    Extra(&'static Extra),
}

fn find(name: &str) -> Option<Found> {
    let eq = |n: &str| n.eq_ignore_ascii_case(name);
    if let Some(p) = PARAMS
        .iter()
        .find(|p| eq(p.name) || p.aliases.iter().any(|a| eq(a)))
    {
        return Some(Found::Param(p));
    }
    EXTRAS
        .iter()
        .find(|e| eq(e.name) || e.aliases.iter().any(|a| eq(a)))
        .map(Found::Extra)
}

fn check_extra(e: &Extra, v: &str) -> Result<String, String> {
    match e.kind {
        Kind::Bool => parse_bool(v).map(yes_no),
        Kind::Int(min, max) => parse_int(v, min, max).map(|n| n.to_string()),
        Kind::Only(only) if v.eq_ignore_ascii_case(only) => Ok(only.to_string()),
        Kind::Only(only) => Err(format!(
            "only '{only}' is supported by tandem for this parameter"
        )),
        Kind::Immutable => Err("can't set immutable config".into()),
    }
}

pub fn config(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = subcommand("config", args)?;
    match sub.name {
        "get" => get(ctx, &args[2..]),
        "set" => set(ctx, &args[2..]),
        "resetstat" => {
            ctx.srv.stats.reset();
            ctx.srv.admin.mem_peak.store(
                crate::alloc::used_memory(),
                std::sync::atomic::Ordering::Relaxed,
            );
            Ok(Reply::Ok)
        }
        "rewrite" => match ctx.srv.admin.config_file() {
            None => Err(Reply::error(
                "ERR The server is running without a config file",
            )),
            Some(_) => Err(Reply::error(
                "ERR CONFIG REWRITE of TOML config files is not supported by tandem yet",
            )),
        },
        "help" => Ok(help_reply(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ],
        )),
        _ => Err(args::unknown_subcommand("config", &args[1])),
    }
}

/// CONFIG GET pattern [pattern ...]: a map of every matching name to its value. Exact
/// names (no glob characters) are answered under the name asked (aliases included).
fn get(ctx: &mut Ctx, patterns: &[Bytes]) -> CmdResult {
    let cfg = ctx.srv.config.load();
    let extras = ctx.srv.admin.extra_config.lock().clone();
    let value = |f: &Found| match f {
        Found::Param(p) => (p.get)(&cfg),
        Found::Extra(e) => extras.get(e.name).cloned().unwrap_or_default(),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let push = |name: String, v: String, out: &mut Vec<(String, String)>| {
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, v));
        }
    };
    for pat in patterns {
        let text = String::from_utf8_lossy(pat).to_ascii_lowercase();
        if !text.contains(['*', '?', '[']) {
            if let Some(f) = find(&text) {
                let v = value(&f);
                push(text, v, &mut out);
            }
            continue;
        }
        for p in PARAMS {
            for name in std::iter::once(&p.name).chain(p.aliases) {
                if glob::matches(pat, name.as_bytes(), true) {
                    push(name.to_string(), (p.get)(&cfg), &mut out);
                }
            }
        }
        for e in EXTRAS {
            for name in std::iter::once(&e.name).chain(e.aliases) {
                if glob::matches(pat, name.as_bytes(), true) {
                    let v = extras.get(e.name).cloned().unwrap_or_default();
                    push(name.to_string(), v, &mut out);
                }
            }
        }
    }
    Ok(Reply::Map(
        out.into_iter()
            .map(|(n, v)| (Reply::bulk_str(&n), Reply::bulk_str(&v)))
            .collect(),
    ))
}

fn set_failed(name: &str, msg: &str) -> Reply {
    Reply::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {msg}"
    ))
}

/// CONFIG SET name value [name value ...]: all pairs are checked first; nothing changes
/// unless every one is valid.
fn set(ctx: &mut Ctx, pairs: &[Bytes]) -> CmdResult {
    if pairs.len() % 2 == 1 {
        return Err(args::wrong_arity("config|set"));
    }
    let mut cfg = NodeConfig::clone(&ctx.srv.config.load());
    let mut extras = ctx.srv.admin.extra_config.lock().clone();
    let mut seen: Vec<&'static str> = Vec::new();
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let Some(found) = find(&name) else {
            return Err(Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        let canonical = match &found {
            Found::Param(p) => p.name,
            Found::Extra(e) => e.name,
        };
        if seen.contains(&canonical) {
            return Err(set_failed(&name, "duplicate parameter"));
        }
        seen.push(canonical);
        match found {
            Found::Param(p) => {
                let Some(setter) = p.set else {
                    return Err(set_failed(&name, "can't set immutable config"));
                };
                setter(&mut cfg, &value).map_err(|m| set_failed(&name, &m))?;
            }
            Found::Extra(e) => {
                let v = check_extra(e, &value).map_err(|m| set_failed(&name, &m))?;
                extras.insert(e.name, v);
            }
        }
    }
    if let Err(m) = cfg.validate() {
        return Err(Reply::error(format!("ERR CONFIG SET failed - {m}")));
    }
    tracing::info!(params = ?seen, "CONFIG SET applied");
    let aof_was = ctx.srv.config.load().appendonly;
    let aof_now = cfg.appendonly;
    ctx.srv.apply_config(cfg);
    *ctx.srv.admin.extra_config.lock() = extras;
    if aof_now && !aof_was {
        if crate::persistence::aof::enable(ctx.srv).is_err() {
            let mut back = NodeConfig::clone(&ctx.srv.config.load());
            back.appendonly = false;
            ctx.srv.apply_config(back);
            return Err(set_failed(
                "appendonly",
                "Unable to turn on AOF. Check server logs.",
            ));
        }
    } else if aof_was && !aof_now {
        crate::persistence::aof::disable(ctx.srv);
    }
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers() {
        assert_eq!(parse_bool("YES"), Ok(true));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_int("5", 1, 10), Ok(5));
        assert_eq!(
            parse_int("50", 1, 10),
            Err("argument must be between 1 and 10 inclusive".into())
        );
        assert_eq!(parse_mem("1mb", 0), Ok(MemSize(1 << 20)));
        assert!(parse_mem("lots", 0).is_err());
    }

    #[test]
    fn every_name_is_found_once() {
        let mut names = Vec::new();
        for p in PARAMS {
            names.push(p.name);
            names.extend(p.aliases);
        }
        for e in EXTRAS {
            names.push(e.name);
            names.extend(e.aliases);
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate parameter names");
        for n in names {
            assert!(find(n).is_some(), "{n}");
        }
    }

    #[test]
    fn defaults_match_redis_formats() {
        let c = NodeConfig::default();
        let get = |n: &str| match find(n) {
            Some(Found::Param(p)) => (p.get)(&c),
            _ => panic!("{n}"),
        };
        assert_eq!(get("appendonly"), "no");
        assert_eq!(get("maxmemory"), "0");
        assert_eq!(get("proto-max-bulk-len"), "536870912");
        assert_eq!(get("slave-read-only"), "yes");
        assert_eq!(get("repl-diskless-sync"), "yes");
        assert_eq!(get("repl-diskless-sync-delay"), "5");
        assert_eq!(get("repl-diskless-sync-max-replicas"), "0");
        assert_eq!(get("repl-backlog-ttl"), "3600");
    }
}

//! INFO: Redis 7.0's sections, field names and order, `# Section` headers, CRLF lines and a
//! blank line between sections. Values Tandem does not track (forks, defrag, I/O threads...)
//! are reported as Redis reports them when the feature is idle.

use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tandem_protocol::command::COMMANDS;
use tandem_protocol::Reply;

use super::bytes_to_human;
use crate::cmd::args::CmdResult;
use crate::cmd::Ctx;
use crate::server::Server;

/// Every section, in Redis's order, and whether `INFO` / `INFO default` includes it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

const NSAMPLES: usize = 16;
const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// Samples of the ops and network counters, for `instantaneous_*` (Redis keeps 16 samples
/// taken every 100 ms and reports their mean).
#[derive(Default)]
pub struct Metrics {
    last: Option<(Instant, u64, u64, u64)>,
    ops: [f64; NSAMPLES],
    input: [f64; NSAMPLES],
    output: [f64; NSAMPLES],
    idx: usize,
}

impl Metrics {
    /// Takes a sample if the last one is at least 100 ms old.
    pub fn sample(&mut self, srv: &Server) {
        let now = Instant::now();
        let st = &srv.stats;
        let cur = (
            st.total_commands_processed.load(Ordering::Relaxed),
            st.total_net_input_bytes.load(Ordering::Relaxed),
            st.total_net_output_bytes.load(Ordering::Relaxed),
        );
        if let Some((t, ops, inp, out)) = self.last {
            let dt = now.duration_since(t);
            if dt < SAMPLE_PERIOD {
                return;
            }
            let secs = dt.as_secs_f64();
            let i = self.idx % NSAMPLES;
            self.ops[i] = cur.0.saturating_sub(ops) as f64 / secs;
            self.input[i] = cur.1.saturating_sub(inp) as f64 / secs;
            self.output[i] = cur.2.saturating_sub(out) as f64 / secs;
            self.idx = self.idx.wrapping_add(1);
        }
        self.last = Some((now, cur.0, cur.1, cur.2));
    }

    fn mean(v: &[f64; NSAMPLES]) -> f64 {
        v.iter().sum::<f64>() / NSAMPLES as f64
    }
    pub fn ops_per_sec(&self) -> u64 {
        Self::mean(&self.ops).round() as u64
    }
    pub fn input_kbps(&self) -> f64 {
        Self::mean(&self.input) / 1024.0
    }
    pub fn output_kbps(&self) -> f64 {
        Self::mean(&self.output) / 1024.0
    }
}

/// INFO [section ...].
pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut wanted = [false; SECTIONS.len()];
    if args.len() == 1 {
        for (i, (_, dflt)) in SECTIONS.iter().enumerate() {
            wanted[i] = *dflt;
        }
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => {
                for (i, (_, dflt)) in SECTIONS.iter().enumerate() {
                    wanted[i] |= *dflt;
                }
            }
            "all" | "everything" => wanted = [true; SECTIONS.len()],
            name => {
                if let Some(i) = SECTIONS.iter().position(|(n, _)| *n == name) {
                    wanted[i] = true;
                }
            }
        }
    }
    let mut out = String::with_capacity(4096);
    let mut n = 0;
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !wanted[i] {
            continue;
        }
        if n > 0 {
            out.push_str("\r\n");
        }
        n += 1;
        section(ctx, name, &mut out);
    }
    Ok(Reply::Verbatim("txt", Bytes::from(out)))
}

/// Appends `key:value\r\n`.
macro_rules! field {
    ($out:expr, $k:expr, $($v:tt)*) => {{
        let _ = write!($out, "{}:", $k);
        let _ = write!($out, $($v)*);
        $out.push_str("\r\n");
    }};
}

fn section(ctx: &mut Ctx, name: &str, out: &mut String) {
    match name {
        "server" => server(ctx.srv, out),
        "clients" => clients(ctx.srv, out),
        "memory" => memory(ctx, out),
        "persistence" => persistence(ctx.srv, out),
        "stats" => stats(ctx.srv, out),
        "replication" => replication(ctx.srv, out),
        "cpu" => cpu(out),
        "modules" => out.push_str("# Modules\r\n"),
        "commandstats" => commandstats(ctx.srv, out),
        "errorstats" => errorstats(ctx.srv, out),
        "latencystats" => out.push_str("# Latencystats\r\n"),
        "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => keyspace(ctx, out),
        _ => {}
    }
}

fn server(srv: &Server, out: &mut String) {
    let cfg = srv.config.load();
    let uptime = srv.uptime_secs();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let os_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = format!(
        "{} {} {}",
        if cfg!(target_os = "linux") {
            "Linux"
        } else {
            std::env::consts::OS
        },
        os_release.trim(),
        std::env::consts::ARCH
    );
    out.push_str("# Server\r\n");
    field!(out, "redis_version", "{}", crate::REDIS_VERSION);
    field!(out, "redis_git_sha1", "00000000");
    field!(out, "redis_git_dirty", "0");
    field!(out, "redis_build_id", "0");
    field!(out, "redis_mode", "standalone");
    field!(out, "os", "{os}");
    field!(out, "arch_bits", "{}", usize::BITS);
    field!(out, "monotonic_clock", "POSIX clock_gettime");
    field!(out, "multiplexing_api", "epoll");
    field!(out, "atomicvar_api", "c11-builtin");
    field!(out, "gcc_version", "0.0.0");
    field!(out, "process_id", "{}", std::process::id());
    field!(out, "process_supervised", "no");
    field!(out, "run_id", "{}", srv.run_id);
    field!(out, "tcp_port", "{}", srv.port.load(Ordering::Relaxed));
    field!(out, "server_time_usec", "{now_us}");
    field!(out, "uptime_in_seconds", "{uptime}");
    field!(out, "uptime_in_days", "{}", uptime / 86400);
    field!(out, "hz", "{}", cfg.hz);
    field!(out, "configured_hz", "{}", cfg.hz);
    field!(
        out,
        "lru_clock",
        "{}",
        (now_us / 1_000_000) & ((1 << 24) - 1)
    );
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    field!(out, "executable", "{exe}");
    let cf = srv
        .admin
        .config_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    field!(out, "config_file", "{cf}");
    field!(out, "io_threads_active", "0");
}

fn clients(srv: &Server, out: &mut String) {
    let all = srv.clients.all();
    let max_in = all
        .iter()
        .map(|c| c.query_buf.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let max_out = all
        .iter()
        .map(|c| c.output_buf.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    out.push_str("# Clients\r\n");
    field!(out, "connected_clients", "{}", all.len());
    field!(out, "cluster_connections", "0");
    field!(out, "maxclients", "{}", srv.config.load().maxclients);
    field!(out, "client_recent_max_input_buffer", "{max_in}");
    field!(out, "client_recent_max_output_buffer", "{max_out}");
    field!(
        out,
        "blocked_clients",
        "{}",
        srv.clients.blocked.load(Ordering::Relaxed)
    );
    field!(out, "tracking_clients", "0");
    field!(out, "clients_in_timeout_table", "0");
}

/// The process's resident set size in bytes (`VmRSS`), 0 when unknown.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    proc_kb(&status, "VmRSS:")
}

fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    proc_kb(&meminfo, "MemTotal:")
}

/// Reads a `Key:   123 kB` line of a /proc file, in bytes.
fn proc_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
        .unwrap_or(0)
}

/// Memory figures shared by INFO memory and MEMORY STATS.
pub struct MemFigures {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub clients_normal: u64,
    pub overhead: u64,
    pub dataset: u64,
}

impl MemFigures {
    pub fn new(srv: &Server) -> MemFigures {
        let used = srv.admin.used_memory();
        let peak = srv.admin.mem_peak.load(Ordering::Relaxed).max(used);
        let startup = srv.admin.mem_startup.min(used);
        let clients_normal: u64 = srv
            .clients
            .all()
            .iter()
            .map(|c| {
                (c.query_buf.load(Ordering::Relaxed) + c.output_buf.load(Ordering::Relaxed)) as u64
                    + 1024
            })
            .sum();
        let overhead = startup.saturating_add(clients_normal).min(used);
        MemFigures {
            used,
            peak,
            startup,
            rss: rss_bytes(),
            clients_normal,
            overhead,
            dataset: used - overhead,
        }
    }
    pub fn frag_ratio(&self) -> f64 {
        if self.used == 0 {
            0.0
        } else {
            self.rss as f64 / self.used as f64
        }
    }
    pub fn dataset_perc(&self) -> f64 {
        let net = self.used.saturating_sub(self.startup);
        if net == 0 {
            0.0
        } else {
            self.dataset as f64 * 100.0 / net as f64
        }
    }
    pub fn peak_perc(&self) -> f64 {
        if self.peak == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / self.peak as f64
        }
    }
}

fn memory(ctx: &mut Ctx, out: &mut String) {
    let srv = ctx.srv;
    let m = MemFigures::new(srv);
    let cfg = srv.config.load();
    let sysmem = total_system_memory();
    out.push_str("# Memory\r\n");
    field!(out, "used_memory", "{}", m.used);
    field!(out, "used_memory_human", "{}", bytes_to_human(m.used));
    field!(out, "used_memory_rss", "{}", m.rss);
    field!(out, "used_memory_rss_human", "{}", bytes_to_human(m.rss));
    field!(out, "used_memory_peak", "{}", m.peak);
    field!(out, "used_memory_peak_human", "{}", bytes_to_human(m.peak));
    field!(out, "used_memory_peak_perc", "{:.2}%", m.peak_perc());
    field!(out, "used_memory_overhead", "{}", m.overhead);
    field!(out, "used_memory_startup", "{}", m.startup);
    field!(out, "used_memory_dataset", "{}", m.dataset);
    field!(out, "used_memory_dataset_perc", "{:.2}%", m.dataset_perc());
    field!(out, "allocator_allocated", "{}", m.used);
    field!(out, "allocator_active", "{}", m.used);
    field!(out, "allocator_resident", "{}", m.rss);
    field!(out, "total_system_memory", "{sysmem}");
    field!(
        out,
        "total_system_memory_human",
        "{}",
        bytes_to_human(sysmem)
    );
    field!(out, "used_memory_lua", "0");
    field!(out, "used_memory_vm_eval", "0");
    field!(out, "used_memory_lua_human", "0B");
    field!(out, "used_memory_scripts_eval", "0");
    field!(out, "number_of_cached_scripts", "0");
    field!(out, "number_of_functions", "0");
    field!(out, "number_of_libraries", "0");
    field!(out, "used_memory_vm_functions", "0");
    field!(out, "used_memory_vm_total", "0");
    field!(out, "used_memory_vm_total_human", "0B");
    field!(out, "used_memory_functions", "0");
    field!(out, "used_memory_scripts", "0");
    field!(out, "used_memory_scripts_human", "0B");
    field!(out, "maxmemory", "{}", cfg.maxmemory.0);
    field!(
        out,
        "maxmemory_human",
        "{}",
        bytes_to_human(cfg.maxmemory.0)
    );
    field!(out, "maxmemory_policy", "{}", cfg.maxmemory_policy.as_str());
    field!(out, "allocator_frag_ratio", "1.00");
    field!(out, "allocator_frag_bytes", "0");
    field!(out, "allocator_rss_ratio", "{:.2}", m.frag_ratio());
    field!(
        out,
        "allocator_rss_bytes",
        "{}",
        m.rss as i64 - m.used as i64
    );
    field!(out, "rss_overhead_ratio", "1.00");
    field!(out, "rss_overhead_bytes", "0");
    field!(out, "mem_fragmentation_ratio", "{:.2}", m.frag_ratio());
    field!(
        out,
        "mem_fragmentation_bytes",
        "{}",
        m.rss as i64 - m.used as i64
    );
    field!(out, "mem_not_counted_for_evict", "0");
    field!(out, "mem_replication_backlog", "0");
    field!(out, "mem_total_replication_buffers", "0");
    field!(out, "mem_clients_slaves", "0");
    field!(out, "mem_clients_normal", "{}", m.clients_normal);
    field!(out, "mem_cluster_links", "0");
    field!(out, "mem_aof_buffer", "0");
    field!(out, "mem_allocator", "mimalloc");
    field!(out, "active_defrag_running", "0");
    field!(out, "lazyfree_pending_objects", "0");
    field!(out, "lazyfreed_objects", "0");
}

fn persistence(srv: &Server, out: &mut String) {
    crate::persistence::aof::refresh_info(srv);
    let cfg = srv.config.load();
    let st = &srv.persistence;
    let aof = &st.aof;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let ok = |b: &std::sync::atomic::AtomicBool| {
        if b.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        }
    };
    let now = crate::now_ms() / 1000;
    let bgsave = st.bgsave_in_progress.load(Ordering::Relaxed);
    let aofrw = aof.rewrite_in_progress.load(Ordering::Relaxed);
    out.push_str("# Persistence\r\n");
    field!(
        out,
        "loading",
        "{}",
        st.loading.load(Ordering::Relaxed) as u8
    );
    field!(out, "async_loading", "0");
    field!(out, "current_cow_peak", "0");
    field!(out, "current_cow_size", "0");
    field!(out, "current_cow_size_age", "0");
    field!(out, "current_fork_perc", "0.00");
    field!(out, "current_save_keys_processed", "0");
    field!(
        out,
        "current_save_keys_total",
        "{}",
        ld(&st.save_keys_total)
    );
    field!(
        out,
        "rdb_changes_since_last_save",
        "{}",
        st.changes_since_save(srv.dirty.load(Ordering::Relaxed))
    );
    field!(out, "rdb_bgsave_in_progress", "{}", bgsave as u8);
    field!(out, "rdb_last_save_time", "{}", ld(&st.lastsave));
    field!(out, "rdb_last_bgsave_status", "{}", ok(&st.last_bgsave_ok));
    field!(
        out,
        "rdb_last_bgsave_time_sec",
        "{}",
        st.last_bgsave_time_sec.load(Ordering::Relaxed)
    );
    let cur = if bgsave {
        now.saturating_sub(ld(&st.bgsave_started)) as i64
    } else {
        -1
    };
    field!(out, "rdb_current_bgsave_time_sec", "{}", cur);
    field!(out, "rdb_saves", "{}", ld(&st.saves));
    field!(out, "rdb_last_cow_size", "0");
    field!(
        out,
        "rdb_last_load_keys_expired",
        "{}",
        ld(&st.last_load_keys_expired)
    );
    field!(
        out,
        "rdb_last_load_keys_loaded",
        "{}",
        ld(&st.last_load_keys_loaded)
    );
    field!(out, "aof_enabled", "{}", cfg.appendonly as u8);
    field!(out, "aof_rewrite_in_progress", "{}", aofrw as u8);
    let scheduled = aof.rewrite_scheduled.load(Ordering::Relaxed) as u8;
    field!(out, "aof_rewrite_scheduled", "{}", scheduled);
    field!(
        out,
        "aof_last_rewrite_time_sec",
        "{}",
        aof.last_rewrite_time_sec.load(Ordering::Relaxed)
    );
    let cur = if aofrw {
        now.saturating_sub(ld(&aof.rewrite_started)) as i64
    } else {
        -1
    };
    field!(out, "aof_current_rewrite_time_sec", "{}", cur);
    field!(
        out,
        "aof_last_bgrewrite_status",
        "{}",
        ok(&aof.last_bgrewrite_ok)
    );
    field!(out, "aof_rewrites", "{}", ld(&aof.rewrites));
    field!(
        out,
        "aof_rewrites_consecutive_failures",
        "{}",
        ld(&aof.rewrites_consecutive_failures)
    );
    field!(out, "aof_last_write_status", "{}", ok(&aof.last_write_ok));
    field!(out, "aof_last_cow_size", "0");
    field!(out, "module_fork_in_progress", "0");
    field!(out, "module_fork_last_cow_size", "0");
    if cfg.appendonly {
        field!(out, "aof_current_size", "{}", ld(&aof.current_size));
        field!(out, "aof_base_size", "{}", ld(&aof.base_size));
        field!(out, "aof_pending_rewrite", "{}", scheduled);
        field!(out, "aof_buffer_length", "{}", ld(&aof.buffer_length));
        field!(
            out,
            "aof_pending_bio_fsync",
            "{}",
            ld(&aof.pending_bio_fsync)
        );
        field!(out, "aof_delayed_fsync", "{}", ld(&aof.delayed_fsync));
    }
}

fn stats(srv: &Server, out: &mut String) {
    let st = &srv.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (ops, ikbps, okbps) = {
        let m = srv.admin.metrics.lock();
        (m.ops_per_sec(), m.input_kbps(), m.output_kbps())
    };
    out.push_str("# Stats\r\n");
    field!(
        out,
        "total_connections_received",
        "{}",
        ld(&st.total_connections_received)
    );
    field!(
        out,
        "total_commands_processed",
        "{}",
        ld(&st.total_commands_processed)
    );
    field!(out, "instantaneous_ops_per_sec", "{ops}");
    field!(
        out,
        "total_net_input_bytes",
        "{}",
        ld(&st.total_net_input_bytes)
    );
    field!(
        out,
        "total_net_output_bytes",
        "{}",
        ld(&st.total_net_output_bytes)
    );
    field!(out, "total_net_repl_input_bytes", "0");
    field!(out, "total_net_repl_output_bytes", "0");
    field!(out, "instantaneous_input_kbps", "{ikbps:.2}");
    field!(out, "instantaneous_output_kbps", "{okbps:.2}");
    field!(out, "instantaneous_input_repl_kbps", "0.00");
    field!(out, "instantaneous_output_repl_kbps", "0.00");
    field!(
        out,
        "rejected_connections",
        "{}",
        ld(&st.rejected_connections)
    );
    field!(out, "sync_full", "{}", ld(&srv.repl.sync_full));
    field!(out, "sync_partial_ok", "{}", ld(&srv.repl.sync_partial_ok));
    field!(
        out,
        "sync_partial_err",
        "{}",
        ld(&srv.repl.sync_partial_err)
    );
    field!(out, "expired_keys", "{}", ld(&st.expired_keys));
    field!(out, "expired_stale_perc", "0.00");
    field!(out, "expired_time_cap_reached_count", "0");
    field!(out, "expire_cycle_cpu_milliseconds", "0");
    field!(out, "evicted_keys", "{}", ld(&st.evicted_keys));
    field!(out, "evicted_clients", "0");
    field!(out, "total_eviction_exceeded_time", "0");
    field!(out, "current_eviction_exceeded_time", "0");
    field!(out, "keyspace_hits", "{}", ld(&st.keyspace_hits));
    field!(out, "keyspace_misses", "{}", ld(&st.keyspace_misses));
    field!(out, "pubsub_channels", "{}", srv.pubsub.num_channels());
    field!(out, "pubsub_patterns", "{}", srv.pubsub.numpat());
    field!(out, "pubsubshard_channels", "0");
    field!(out, "latest_fork_usec", "0");
    field!(out, "total_forks", "0");
    field!(out, "migrate_cached_sockets", "0");
    field!(out, "slave_expires_tracked_keys", "0");
    field!(out, "active_defrag_hits", "0");
    field!(out, "active_defrag_misses", "0");
    field!(out, "active_defrag_key_hits", "0");
    field!(out, "active_defrag_key_misses", "0");
    field!(out, "total_active_defrag_time", "0");
    field!(out, "current_active_defrag_time", "0");
    field!(out, "tracking_total_keys", "0");
    field!(out, "tracking_total_items", "0");
    field!(out, "tracking_total_prefixes", "0");
    field!(
        out,
        "unexpected_error_replies",
        "{}",
        ld(&st.unexpected_error_replies)
    );
    field!(
        out,
        "total_error_replies",
        "{}",
        ld(&st.total_error_replies)
    );
    field!(out, "dump_payload_sanitizations", "0");
    field!(out, "total_reads_processed", "0");
    field!(out, "total_writes_processed", "0");
    field!(out, "io_threaded_reads_processed", "0");
    field!(out, "io_threaded_writes_processed", "0");
    field!(out, "reply_buffer_shrinks", "0");
    field!(out, "reply_buffer_expands", "0");
}

fn replication(srv: &Server, out: &mut String) {
    crate::replication::report::info(srv, out);
}

/// (user, system) CPU seconds of this process, from /proc/self/stat.
fn cpu_times() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    // utime is field 14, stime 15: indices 11 and 12 after the state field.
    (get(11), get(12))
}

fn cpu(out: &mut String) {
    let (user, sys) = cpu_times();
    out.push_str("# CPU\r\n");
    field!(out, "used_cpu_sys", "{sys:.6}");
    field!(out, "used_cpu_user", "{user:.6}");
    field!(out, "used_cpu_sys_children", "0.000000");
    field!(out, "used_cpu_user_children", "0.000000");
    field!(out, "used_cpu_sys_main_thread", "{sys:.6}");
    field!(out, "used_cpu_user_main_thread", "{user:.6}");
}

fn commandstats(srv: &Server, out: &mut String) {
    out.push_str("# Commandstats\r\n");
    for (spec, c) in COMMANDS.iter().zip(srv.stats.commands.iter()) {
        let calls = c.calls.load(Ordering::Relaxed);
        let failed = c.failed_calls.load(Ordering::Relaxed);
        let rejected = c.rejected_calls.load(Ordering::Relaxed);
        if calls == 0 && failed == 0 && rejected == 0 {
            continue;
        }
        let usec = c.usec.load(Ordering::Relaxed);
        let per = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
            spec.name
        );
    }
}

fn errorstats(srv: &Server, out: &mut String) {
    out.push_str("# Errorstats\r\n");
    for (prefix, count) in srv.stats.errors.lock().iter() {
        let _ = write!(out, "errorstat_{prefix}:count={count}\r\n");
    }
}

/// `dbN:keys=..,expires=..,avg_ttl=..` for each non-empty database. `avg_ttl` is estimated
/// from a bounded sample of the keys with an expiry, as Redis estimates it.
fn keyspace(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Keyspace\r\n");
    if !ctx.has_all_shards() {
        return;
    }
    let now = ctx.now_ms;
    let ndbs = ctx.databases();
    let mut keys = vec![0u64; ndbs];
    let mut expires = vec![0u64; ndbs];
    let mut ttl_sum = vec![0u128; ndbs];
    let mut ttl_n = vec![0u64; ndbs];
    for shard in ctx.shards_mut() {
        for (i, db) in shard.dbs.iter().enumerate().take(ndbs) {
            keys[i] += db.len() as u64;
            expires[i] += db.expires.len() as u64;
            for k in db.expires.iter().take(16) {
                if let Some(e) = db.map.get(k.as_slice()) {
                    if e.expire_at > now {
                        ttl_sum[i] += (e.expire_at - now) as u128;
                        ttl_n[i] += 1;
                    }
                }
            }
        }
    }
    for i in 0..ndbs {
        if keys[i] == 0 {
            continue;
        }
        let avg = if ttl_n[i] == 0 {
            0
        } else {
            ttl_sum[i] / ttl_n[i] as u128
        };
        let _ = write!(
            out,
            "db{i}:keys={},expires={},avg_ttl={avg}\r\n",
            keys[i], expires[i]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        assert_eq!(proc_kb("VmRSS:\t  1234 kB\n", "VmRSS:"), 1234 * 1024);
        assert_eq!(proc_kb("nothing", "VmRSS:"), 0);
    }

    #[test]
    fn metrics_average_rates() {
        let mut m = Metrics::default();
        assert_eq!(m.ops_per_sec(), 0);
        m.ops = [160.0; NSAMPLES];
        assert_eq!(m.ops_per_sec(), 160);
    }
}

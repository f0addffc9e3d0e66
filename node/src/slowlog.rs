//! The slow log (Redis's SLOWLOG): commands that ran for at least `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` entries, arguments trimmed and
//! secrets redacted as Redis does. A session pays one comparison per command (its measured
//! duration against [`SlowLog::gate`]); only commands at or over the gate take the slow path
//! ([`command_ran`]), which also feeds the latency monitor's `command` events.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tandem_config::NodeConfig;
use tandem_protocol::command::{Cmd, CommandSpec, Flags};
use tandem_protocol::Reply;

use crate::clients::ClientInfo;
use crate::cmd::args::{self, CmdResult};
use crate::server::Server;

/// Arguments kept per entry; the last kept one says how many more there were
/// (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const MAX_ARGC: usize = 32;
/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_ARG_LEN: usize = 128;
/// Entries SLOWLOG GET returns without a count.
const DEFAULT_GET: usize = 10;
/// What replaces a secret argument (Redis's `redactClientCommandArgument`).
const REDACTED: &[u8] = b"(redacted)";
/// CONFIG SET parameters whose values are redacted (Redis's `SENSITIVE_CONFIG`).
const SENSITIVE_CONFIGS: &[&str] = &["masterauth", "masteruser", "requirepass"];

/// One logged command.
pub struct Entry {
    pub id: u64,
    /// Unix time (seconds) the command was logged.
    pub time: u64,
    /// How long the command ran, in microseconds.
    pub duration: u64,
    pub args: Vec<Bytes>,
    /// `ip:port` of the client.
    pub peer: String,
    /// The client's name, or empty.
    pub name: String,
}

/// The log plus the thresholds sessions read.
pub struct SlowLog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    /// `slowlog-log-slower-than` in µs; `u64::MAX` when disabled (-1).
    threshold: AtomicU64,
    max_len: AtomicUsize,
    /// Commands running at least this many µs take the slow path: the smaller of the slow
    /// log's threshold and the latency monitor's (`u64::MAX` when both are off).
    gate: AtomicU64,
}

impl SlowLog {
    pub fn new(cfg: &NodeConfig) -> SlowLog {
        let log = SlowLog {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            threshold: AtomicU64::new(u64::MAX),
            max_len: AtomicUsize::new(0),
            gate: AtomicU64::new(u64::MAX),
        };
        log.configure(cfg);
        log
    }

    /// Applies `slowlog-log-slower-than`, `slowlog-max-len` and `latency-monitor-threshold`
    /// (CONFIG SET, start-up), trimming the log if it is now too long.
    pub fn configure(&self, cfg: &NodeConfig) {
        let threshold = u64::try_from(cfg.slowlog_log_slower_than).unwrap_or(u64::MAX);
        let max_len = usize::try_from(cfg.slowlog_max_len).unwrap_or(usize::MAX);
        let latency = match cfg.latency_monitor_threshold {
            0 => u64::MAX,
            ms => ms.saturating_mul(1000),
        };
        self.threshold.store(threshold, Ordering::Relaxed);
        self.max_len.store(max_len, Ordering::Relaxed);
        self.gate.store(threshold.min(latency), Ordering::Relaxed);
        self.entries.lock().truncate(max_len);
    }

    /// The duration (µs) from which a command must be looked at by [`command_ran`].
    #[inline]
    pub fn gate(&self) -> u64 {
        self.gate.load(Ordering::Relaxed)
    }

    /// Logs a command that ran `usec` µs if that reaches the threshold.
    pub fn push_if_needed(&self, client: Option<&ClientInfo>, args: &[Bytes], usec: u64) {
        if usec < self.threshold.load(Ordering::Relaxed) {
            return;
        }
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: crate::now_ms() / 1000,
            duration: usec,
            args: logged_args(args),
            peer: client.map(|c| c.addr.to_string()).unwrap_or_default(),
            name: client.map(|c| c.name()).unwrap_or_default(),
        };
        let max_len = self.max_len.load(Ordering::Relaxed);
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

/// The slow path after a command that ran at least [`SlowLog::gate`] µs: the slow log (EXEC
/// itself is never logged, its commands are, as Redis's `CMD_SKIP_SLOWLOG`) and the latency
/// monitor's `command` / `fast-command` event.
#[cold]
pub fn command_ran(
    srv: &Server,
    client: Option<&ClientInfo>,
    spec: &CommandSpec,
    args: &[Bytes],
    usec: u64,
) {
    let event = if spec.has(Flags::FAST) {
        "fast-command"
    } else {
        "command"
    };
    srv.latency.sample_if_needed(event, usec / 1000);
    if spec.cmd != Cmd::Exec {
        srv.slowlog.push_if_needed(client, args, usec);
    }
}

/// The arguments as the log keeps them: secrets redacted, at most [`MAX_ARGC`] (the last
/// one then saying how many more there were), each at most [`MAX_ARG_LEN`] bytes.
fn logged_args(args: &[Bytes]) -> Vec<Bytes> {
    let redact = redacted_positions(args);
    let kept = args.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (i, a) in args.iter().enumerate().take(kept) {
        if kept != args.len() && i == kept - 1 {
            out.push(Bytes::from(format!(
                "... ({} more arguments)",
                args.len() - kept + 1
            )));
        } else if redact(i) {
            out.push(Bytes::from_static(REDACTED));
        } else if a.len() > MAX_ARG_LEN {
            let mut s = a[..MAX_ARG_LEN].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            out.push(Bytes::from(s));
        } else {
            // A copy: the entry must not pin the client's whole request buffer.
            out.push(Bytes::copy_from_slice(a));
        }
    }
    out
}

/// Which arguments Redis redacts: AUTH's credentials, HELLO's AUTH pair, the values of
/// sensitive CONFIG SET parameters, ACL SETUSER's rules, MIGRATE's AUTH/AUTH2 credentials.
fn redacted_positions(args: &[Bytes]) -> impl Fn(usize) -> bool + '_ {
    let name = args::lower(&args[0]);
    let mut marks = vec![false; args.len()];
    match name.as_str() {
        "auth" => marks.iter_mut().skip(1).for_each(|m| *m = true),
        "hello" => {
            let mut i = 2;
            while i < args.len() {
                if args::is(&args[i], "auth") && i + 2 < args.len() {
                    marks[i + 1] = true;
                    marks[i + 2] = true;
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        "config" if args.len() > 3 && args::is(&args[1], "set") => {
            for i in (2..args.len().saturating_sub(1)).step_by(2) {
                let p = args::lower(&args[i]);
                if SENSITIVE_CONFIGS.contains(&p.as_str()) {
                    marks[i + 1] = true;
                }
            }
        }
        "acl" if args.len() > 2 && args::is(&args[1], "setuser") => {
            marks.iter_mut().skip(2).for_each(|m| *m = true)
        }
        "migrate" => {
            let mut i = 6;
            while i < args.len() {
                if args::is(&args[i], "auth") && i + 1 < args.len() {
                    marks[i + 1] = true;
                    i += 2;
                } else if args::is(&args[i], "auth2") && i + 2 < args.len() {
                    marks[i + 1] = true;
                    marks[i + 2] = true;
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        _ => {}
    }
    move |i| marks.get(i).copied().unwrap_or(false)
}

/// SLOWLOG GET [count] | LEN | RESET | HELP.
pub fn command(srv: &Server, args: &[Bytes]) -> CmdResult {
    let sub = args::lower(&args[1]);
    match (sub.as_str(), args.len()) {
        ("get", 2 | 3) => {
            let count = match args.get(2) {
                None => DEFAULT_GET,
                Some(a) => match tandem_protocol::number::parse_i64(a) {
                    Some(-1) => usize::MAX,
                    Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                    _ => {
                        return Err(Reply::error(
                            "ERR count should be greater than or equal to -1",
                        ))
                    }
                },
            };
            let entries = srv.slowlog.entries.lock();
            Ok(Reply::Array(
                entries
                    .iter()
                    .take(count)
                    .map(|e| {
                        Reply::Array(vec![
                            Reply::Int(e.id as i64),
                            Reply::Int(e.time as i64),
                            Reply::Int(e.duration as i64),
                            Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                            Reply::bulk_str(&e.peer),
                            Reply::bulk_str(&e.name),
                        ])
                    })
                    .collect(),
            ))
        }
        ("len", 2) => Ok(Reply::Int(srv.slowlog.len() as i64)),
        ("reset", 2) => {
            srv.slowlog.reset();
            Ok(Reply::Ok)
        }
        ("help", 2) => Ok(crate::cmd::server::help_reply("SLOWLOG", HELP)),
        ("len" | "reset" | "help", _) => Err(args::wrong_arity(&format!("slowlog|{sub}"))),
        ("get", _) => Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
        _ => Err(args::unknown_subcommand("slowlog", &args[1])),
    }
}

const HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn too_many_arguments_are_trimmed() {
        let mut a = vec!["sadd".to_string(), "set".to_string()];
        a.extend((3..=33).map(|i| i.to_string()));
        let args: Vec<Bytes> = a.into_iter().map(Bytes::from).collect();
        let out = logged_args(&args);
        assert_eq!(out.len(), MAX_ARGC);
        assert_eq!(out[30], Bytes::from("31"));
        assert_eq!(out[31], Bytes::from("... (2 more arguments)"));
    }

    #[test]
    fn long_arguments_are_trimmed() {
        let long = "A".repeat(129);
        let out = logged_args(&b(&["sadd", "set", "foo", &long]));
        assert_eq!(
            out[3],
            Bytes::from(format!("{}... (1 more bytes)", "A".repeat(128)))
        );
        assert_eq!(out[2], Bytes::from("foo"));
    }

    #[test]
    fn secrets_are_redacted() {
        let r = |v: &[&str]| logged_args(&b(v));
        assert_eq!(r(&["AUTH", "pw"])[1], Bytes::from("(redacted)"));
        assert_eq!(
            r(&["auth", "user", "pw"])[1..],
            [Bytes::from("(redacted)"), Bytes::from("(redacted)")]
        );
        let h = r(&["hello", "3", "auth", "u", "p", "setname", "x"]);
        assert_eq!(h[3], Bytes::from("(redacted)"));
        assert_eq!(h[4], Bytes::from("(redacted)"));
        assert_eq!(h[6], Bytes::from("x"));
        let c = r(&["config", "set", "masterauth", "s", "maxmemory", "1"]);
        assert_eq!(c[3], Bytes::from("(redacted)"));
        assert_eq!(c[5], Bytes::from("1"));
    }
}

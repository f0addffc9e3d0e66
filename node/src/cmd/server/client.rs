//! CLIENT: ID, SETNAME, GETNAME, LIST, INFO, KILL, SETINFO, NO-EVICT, NO-TOUCH, REPLY,
//! PAUSE/UNPAUSE, UNBLOCK, TRACKING, TRACKINGINFO, CACHING, GETREDIR, HELP. Lines of CLIENT
//! LIST / INFO use Redis 7.0's format. CLIENT REPLY changes the session's own state, so the
//! session runs it (this handler only sees it inside MULTI). Features Tandem lacks
//! (client-side caching) answer with an error naming them rather than pretending.

use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tandem_protocol::command::COMMANDS;
use tandem_protocol::Reply;

use super::command::subcommand;
use super::help_reply;
use crate::clients::{ClientInfo, ClientKind};
use crate::cmd::args::{self, CmdResult};
use crate::cmd::Ctx;
use crate::pause::PauseKind;

/// `CLIENT KILL TYPE` / `CLIENT LIST TYPE` names.
fn parse_type(name: &[u8]) -> Result<ClientKind, Reply> {
    match args::lower(name).as_str() {
        "normal" => Ok(ClientKind::Normal),
        "master" => Ok(ClientKind::Master),
        "replica" | "slave" => Ok(ClientKind::Replica),
        "pubsub" => Ok(ClientKind::PubSub),
        _ => Err(Reply::error(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(name)
        ))),
    }
}

/// RESP size of a request, standing in for the query buffer of the client running it.
fn request_size(args: &[Bytes]) -> usize {
    let digits = |n: usize| n.to_string().len();
    3 + digits(args.len())
        + args
            .iter()
            .map(|a| 1 + digits(a.len()) + 2 + a.len() + 2)
            .sum::<usize>()
}

/// One CLIENT LIST line (without the trailing newline). `current` is the request being run
/// when `c` is the calling client.
fn client_line(c: &ClientInfo, current: Option<&[Bytes]>) -> String {
    let mut flags = String::new();
    match c.kind() {
        ClientKind::Replica => flags.push('S'),
        ClientKind::Master => flags.push('M'),
        ClientKind::PubSub => flags.push('P'),
        ClientKind::Normal => {}
    }
    if c.in_multi.load(Ordering::Relaxed) {
        flags.push('x');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if c.is_killed() {
        flags.push('A');
    }
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if c.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let (qbuf, idle, cmd) = match current {
        Some(args) => {
            let mut name = args::lower(&args[0]);
            if let Some(sub) = args.get(1) {
                name = format!("{name}|{}", args::lower(sub));
            }
            (request_size(args), 0, name)
        }
        None => {
            let last = c.last_cmd.load(Ordering::Relaxed) as usize;
            let name = match last.checked_sub(1).and_then(|i| COMMANDS.get(i)) {
                Some(spec) => spec.name.to_string(),
                None => "NULL".to_string(),
            };
            (c.query_buf.load(Ordering::Relaxed), c.idle_secs(), name)
        }
    };
    let qbuf_free = c.query_buf_free.load(Ordering::Relaxed);
    let obl = c.output_buf.load(Ordering::Relaxed);
    let multi: i64 = if c.in_multi.load(Ordering::Relaxed) {
        0
    } else {
        -1
    };
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl={} oll=0 omem=0 tot-mem={} events={} cmd={} user=default redir=-1 resp={}",
        c.id,
        c.addr,
        c.laddr,
        c.name(),
        c.created.elapsed().as_secs(),
        idle,
        flags,
        c.db.load(Ordering::Relaxed),
        c.subscriptions.load(Ordering::Relaxed),
        c.psubscriptions.load(Ordering::Relaxed),
        multi,
        qbuf,
        qbuf_free,
        obl,
        qbuf + qbuf_free + obl,
        if obl > 0 { "rw" } else { "r" },
        cmd,
        c.resp.load(Ordering::Relaxed),
    );
    line
}

fn is_current(ctx: &Ctx, c: &ClientInfo) -> bool {
    ctx.client.is_some_and(|me| me.id == c.id)
}

fn list_reply(ctx: &Ctx, clients: &[Arc<ClientInfo>], args: &[Bytes]) -> Reply {
    let mut out = String::new();
    for c in clients {
        let current = is_current(ctx, c).then_some(args);
        out.push_str(&client_line(c, current));
        out.push('\n');
    }
    Reply::Verbatim("txt", Bytes::from(out))
}

fn on_off(arg: &[u8]) -> Result<bool, Reply> {
    if args::is(arg, "on") {
        Ok(true)
    } else if args::is(arg, "off") {
        Ok(false)
    } else {
        Err(args::syntax_error())
    }
}

pub fn client(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = subcommand("client", args)?;
    let me = ctx.client.cloned();
    match sub.name {
        "id" => Ok(Reply::Int(me.map_or(0, |c| c.id as i64))),
        "setname" => {
            super::validate_client_name(&args[2])?;
            if let Some(c) = me {
                *c.name.lock() = if args[2].is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&args[2]).into_owned())
                };
            }
            Ok(Reply::Ok)
        }
        "getname" => Ok(match me.and_then(|c| c.name.lock().clone()) {
            Some(n) => Reply::bulk_str(&n),
            None => Reply::Nil,
        }),
        "info" => {
            let line = me.map(|c| client_line(&c, Some(args))).unwrap_or_default();
            Ok(Reply::Verbatim("txt", Bytes::from(line + "\n")))
        }
        "list" => {
            let all = ctx.srv.clients.all();
            if args.len() == 2 {
                return Ok(list_reply(ctx, &all, args));
            }
            if args.len() == 4 && args::is(&args[2], "type") {
                let kind = parse_type(&args[3])?;
                let chosen: Vec<_> = all.into_iter().filter(|c| c.kind() == kind).collect();
                return Ok(list_reply(ctx, &chosen, args));
            }
            if args.len() > 3 && args::is(&args[2], "id") {
                let mut chosen = Vec::new();
                for a in &args[3..] {
                    let id = args::int(a)
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or_else(|| Reply::error("ERR Invalid client ID"))?;
                    if let Some(c) = ctx.srv.clients.get(id as u64) {
                        chosen.push(c);
                    }
                }
                return Ok(list_reply(ctx, &chosen, args));
            }
            Err(args::syntax_error())
        }
        "kill" => kill(ctx, args),
        "setinfo" => {
            let attr = args::lower(&args[2]);
            let slot = match (attr.as_str(), &me) {
                ("lib-name", Some(c)) => &c.lib_name,
                ("lib-ver", Some(c)) => &c.lib_ver,
                ("lib-name" | "lib-ver", None) => return Ok(Reply::Ok),
                _ => {
                    return Err(Reply::error(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&args[2])
                    )))
                }
            };
            if args[3].iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return Err(Reply::error(format!(
                    "ERR {attr} cannot contain spaces, newlines or special characters."
                )));
            }
            *slot.lock() = if args[3].is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&args[3]).into_owned())
            };
            Ok(Reply::Ok)
        }
        "no-evict" => {
            let on = on_off(&args[2])?;
            if let Some(c) = me {
                c.no_evict.store(on, Ordering::Relaxed);
            }
            Ok(Reply::Ok)
        }
        "no-touch" => {
            let on = on_off(&args[2])?;
            if let Some(c) = me {
                c.no_touch.store(on, Ordering::Relaxed);
            }
            Ok(Reply::Ok)
        }
        // Inside MULTI (the session runs it otherwise): OFF/SKIP would silence EXEC's reply.
        "reply" if args.len() == 3 => {
            if args::is(&args[2], "on") || args::is(&args[2], "off") || args::is(&args[2], "skip")
            {
                Ok(Reply::Ok)
            } else {
                Err(args::syntax_error())
            }
        }
        "pause" if args.len() <= 4 => {
            let kind = match args.get(3) {
                None => PauseKind::All,
                Some(m) if args::is(m, "write") => PauseKind::Write,
                Some(m) if args::is(m, "all") => PauseKind::All,
                Some(_) => return Err(Reply::error("ERR CLIENT PAUSE mode must be WRITE or ALL")),
            };
            let t = args::int(&args[2])
                .map_err(|_| Reply::error("ERR timeout is not an integer or out of range"))?;
            if t < 0 {
                return Err(Reply::error("ERR timeout is negative"));
            }
            let end = std::time::Instant::now()
                .checked_add(std::time::Duration::from_millis(t as u64))
                .ok_or_else(|| Reply::error("ERR timeout is out of range"))?;
            ctx.srv.pause.pause(ctx.srv, kind, end);
            Ok(Reply::Ok)
        }
        "unpause" if args.len() == 2 => {
            ctx.srv.pause.unpause(ctx.srv);
            Ok(Reply::Ok)
        }
        "reply" | "pause" | "unpause" => Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
        "unblock" => {
            let id = args::int(&args[2])?;
            if args.len() > 4
                || (args.len() == 4
                    && !args::is(&args[3], "timeout")
                    && !args::is(&args[3], "error"))
            {
                return Err(Reply::error(
                    "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                ));
            }
            let target = u64::try_from(id).ok().and_then(|id| ctx.srv.clients.get(id));
            match target {
                Some(c) if c.blocked.load(Ordering::Relaxed) => Err(Reply::error(
                    "ERR CLIENT UNBLOCK is not supported by tandem",
                )),
                _ => Ok(Reply::Int(0)),
            }
        }
        "tracking" => {
            if args::is(&args[2], "off") {
                Ok(Reply::Ok)
            } else if args::is(&args[2], "on") {
                Err(Reply::error(
                    "ERR CLIENT TRACKING (client side caching) is not supported by tandem",
                ))
            } else {
                Err(args::syntax_error())
            }
        }
        "trackinginfo" => Ok(Reply::Map(vec![
            (
                Reply::bulk_str("flags"),
                Reply::Set(vec![Reply::status("off")]),
            ),
            (Reply::bulk_str("redirect"), Reply::Int(-1)),
            (Reply::bulk_str("prefixes"), Reply::Array(vec![])),
        ])),
        "caching" => Err(Reply::error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        )),
        "getredir" => Ok(Reply::Int(-1)),
        "help" => Ok(help_reply("CLIENT", HELP)),
        _ => Err(args::unknown_subcommand("client", &args[1])),
    }
}

/// CLIENT KILL addr:port (old form: OK or an error) or CLIENT KILL <filter> <value> ...
/// (new form: the number of clients killed). The caller itself is closed after the reply.
fn kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let all = ctx.srv.clients.all();
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]);
        let Some(c) = all.iter().find(|c| c.addr.to_string() == addr) else {
            return Err(Reply::error("ERR No such client"));
        };
        tracing::info!(client = c.id, peer = %c.addr, "client killed by CLIENT KILL");
        c.request_kill();
        return Ok(Reply::Ok);
    }
    if args.len() % 2 == 1 {
        return Err(args::syntax_error());
    }
    let mut id = None;
    let mut kind = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    for pair in args[2..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if args::is(opt, "id") {
            let v = args::int(val)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| Reply::error("ERR client-id should be greater than 0"))?;
            id = Some(v as u64);
        } else if args::is(opt, "type") {
            kind = Some(parse_type(val)?);
        } else if args::is(opt, "addr") {
            addr = Some(String::from_utf8_lossy(val).into_owned());
        } else if args::is(opt, "laddr") {
            laddr = Some(String::from_utf8_lossy(val).into_owned());
        } else if args::is(opt, "user") {
            if &val[..] != b"default" {
                return Err(Reply::error(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(val)
                )));
            }
        } else if args::is(opt, "skipme") {
            skipme = if args::is(val, "yes") {
                true
            } else if args::is(val, "no") {
                false
            } else {
                return Err(args::syntax_error());
            };
        } else {
            return Err(args::syntax_error());
        }
    }
    let mut killed = 0;
    for c in &all {
        if id.is_some_and(|id| c.id != id)
            || kind.is_some_and(|k| c.kind() != k)
            || addr.as_ref().is_some_and(|a| c.addr.to_string() != *a)
            || laddr.as_ref().is_some_and(|a| c.laddr.to_string() != *a)
            || (skipme && is_current(ctx, c))
        {
            continue;
        }
        tracing::info!(client = c.id, peer = %c.addr, "client killed by CLIENT KILL");
        c.request_kill();
        killed += 1;
    }
    Ok(Reply::Int(killed))
}

const HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_size_matches_resp() {
        let args = vec![Bytes::from_static(b"client"), Bytes::from_static(b"list")];
        // *2\r\n$6\r\nclient\r\n$4\r\nlist\r\n
        assert_eq!(request_size(&args), 26);
    }
}

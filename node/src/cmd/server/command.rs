//! COMMAND (and COUNT, INFO, DOCS, LIST, GETKEYS, GETKEYSANDFLAGS, HELP), built from the
//! command table in `tandem_protocol::command` plus the docs in [`super::docs`], in
//! Redis 7.0's reply shapes. Also the subcommand lookup the container commands share, so
//! their arity errors name `parent|sub` as Redis does.

use bytes::Bytes;
use tandem_protocol::command::{self, Cmd, CommandSpec, Flags, COMMANDS};
use tandem_protocol::glob;
use tandem_protocol::Reply;

use super::docs::{Doc, Sub, DOCS, SUBCOMMANDS};
use super::help_reply;
use crate::cmd::args::{self, CmdResult};
use crate::cmd::Ctx;

/// Finds subcommand `args[1]` of `parent` and checks its arity, with Redis's errors.
pub fn subcommand(parent: &str, args: &[Bytes]) -> Result<&'static Sub, Reply> {
    let Some(sub) = args.get(1) else {
        return Err(args::wrong_arity(parent));
    };
    let Some(s) = find_sub(parent, sub) else {
        return Err(args::unknown_subcommand(parent, sub));
    };
    let argc = args.len() as i32;
    let ok = if s.arity >= 0 {
        argc == s.arity
    } else {
        argc >= -s.arity
    };
    if !ok {
        return Err(args::wrong_arity(&format!("{parent}|{}", s.name)));
    }
    Ok(s)
}

fn find_sub(parent: &str, name: &[u8]) -> Option<&'static Sub> {
    SUBCOMMANDS
        .iter()
        .find(|s| s.parent == parent && name.eq_ignore_ascii_case(s.name.as_bytes()))
}

fn subs_of(parent: &str) -> impl Iterator<Item = &'static Sub> + '_ {
    SUBCOMMANDS.iter().filter(move |s| s.parent == parent)
}

fn doc_of(spec: &CommandSpec) -> Option<&'static Doc> {
    DOCS.get(spec.cmd as usize)
        .filter(|d| d.name == spec.name)
        .or_else(|| DOCS.iter().find(|d| d.name == spec.name))
}

/// A command or a subcommand, as COMMAND INFO / DOCS address them (`get`, `client|list`).
enum Target {
    Cmd(&'static CommandSpec),
    Sub(&'static Sub),
}

fn lookup(name: &[u8]) -> Option<Target> {
    let text = String::from_utf8_lossy(name).to_ascii_lowercase();
    match text.split_once('|') {
        Some((parent, sub)) => {
            let spec = command::lookup(parent.as_bytes())?;
            find_sub(spec.name, sub.as_bytes()).map(Target::Sub)
        }
        None => command::lookup(name).map(Target::Cmd),
    }
}

/// Redis's flag words for a table entry, in Redis's order.
fn flag_words(spec: &CommandSpec) -> Vec<&'static str> {
    const ORDER: &[(Flags, &str)] = &[
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::MOVABLE_KEYS, "movablekeys"),
    ];
    ORDER
        .iter()
        .filter(|(f, _)| spec.has(*f))
        .map(|(_, w)| *w)
        .collect()
}

fn statuses(words: &str) -> Vec<Reply> {
    words
        .split_whitespace()
        .map(|w| Reply::status(w.to_string()))
        .collect()
}

/// Command tips: a set of bulk strings.
fn tips_set(tips: &str) -> Reply {
    Reply::Set(tips.split_whitespace().map(Reply::bulk_str).collect())
}

fn acl_set(acl: &str) -> Reply {
    Reply::Set(
        acl.split_whitespace()
            .map(|c| Reply::status(format!("@{c}")))
            .collect(),
    )
}

fn map(pairs: Vec<(&str, Reply)>) -> Reply {
    Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk_str(k), v))
            .collect(),
    )
}

/// How a command finds its keys when they are not a plain range.
enum Movable {
    /// `numkeys key [key ...]` starting at this index (ZUNION, SINTERCARD...).
    NumKeys(usize),
    /// A destination key at 1, then `numkeys key ...` at 2 (ZUNIONSTORE...).
    DestNumKeys,
}

fn movable(cmd: Cmd) -> Option<Movable> {
    match cmd {
        Cmd::ZUnion | Cmd::ZInter | Cmd::ZDiff | Cmd::SInterCard => Some(Movable::NumKeys(1)),
        Cmd::ZUnionStore | Cmd::ZInterStore | Cmd::ZDiffStore => Some(Movable::DestNumKeys),
        _ => None,
    }
}

/// Key-spec flags of a command's keys (Redis's RO/RW/OW + access kind), approximated from
/// the command's flags.
fn key_flags(spec: &CommandSpec) -> &'static [&'static str] {
    if spec.is_write() {
        &["RW", "update"]
    } else if spec.has(Flags::READONLY) {
        &["RO", "access"]
    } else {
        &["RO"]
    }
}

fn key_spec(flags: &[&'static str], begin: Reply, find: Reply) -> Reply {
    map(vec![
        (
            "flags",
            Reply::Set(flags.iter().map(|f| Reply::status(*f)).collect()),
        ),
        ("begin_search", begin),
        ("find_keys", find),
    ])
}

fn begin_index(i: i64) -> Reply {
    map(vec![
        ("type", Reply::bulk_str("index")),
        ("spec", map(vec![("index", Reply::Int(i))])),
    ])
}

fn find_range(lastkey: i64, step: i64) -> Reply {
    map(vec![
        ("type", Reply::bulk_str("range")),
        (
            "spec",
            map(vec![
                ("lastkey", Reply::Int(lastkey)),
                ("keystep", Reply::Int(step)),
                ("limit", Reply::Int(0)),
            ]),
        ),
    ])
}

fn find_keynum() -> Reply {
    map(vec![
        ("type", Reply::bulk_str("keynum")),
        (
            "spec",
            map(vec![
                ("keynumidx", Reply::Int(0)),
                ("firstkey", Reply::Int(1)),
                ("keystep", Reply::Int(1)),
            ]),
        ),
    ])
}

fn key_specs(spec: &CommandSpec) -> Reply {
    let flags = key_flags(spec);
    let mut out = Vec::new();
    match movable(spec.cmd) {
        Some(Movable::NumKeys(i)) => out.push(key_spec(
            &["RO", "access"],
            begin_index(i as i64),
            find_keynum(),
        )),
        Some(Movable::DestNumKeys) => {
            out.push(key_spec(
                &["OW", "update"],
                begin_index(1),
                find_range(0, 1),
            ));
            out.push(key_spec(&["RO", "access"], begin_index(2), find_keynum()));
        }
        None if spec.first_key > 0 => {
            let last = if spec.last_key < 0 {
                spec.last_key as i64
            } else {
                (spec.last_key - spec.first_key) as i64
            };
            out.push(key_spec(
                flags,
                begin_index(spec.first_key as i64),
                find_range(last, spec.key_step.max(1) as i64),
            ));
        }
        None => {}
    }
    Reply::Set(out)
}

fn sub_info(s: &Sub) -> Reply {
    Reply::Array(vec![
        Reply::bulk_str(&format!("{}|{}", s.parent, s.name)),
        Reply::Int(s.arity as i64),
        Reply::Set(statuses(s.flags)),
        Reply::Int(s.keys.0 as i64),
        Reply::Int(s.keys.1 as i64),
        Reply::Int(s.keys.2 as i64),
        acl_set(s.acl),
        tips_set(s.tips),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
    ])
}

/// One command's COMMAND INFO entry: `[name, arity, flags, first, last, step, acl
/// categories, tips, key specs, subcommands]`.
///
/// A container command (CLIENT, CONFIG, OBJECT...) reports no flags or keys of its own, as
/// in Redis: its subcommands carry them.
fn cmd_info(spec: &CommandSpec) -> Reply {
    let doc = doc_of(spec);
    let subs: Vec<Reply> = subs_of(spec.name).map(sub_info).collect();
    let (flags, keys, specs) = if subs.is_empty() {
        (
            flag_words(spec),
            (spec.first_key, spec.last_key, spec.key_step),
            key_specs(spec),
        )
    } else {
        (vec![], (0, 0, 0), Reply::Set(vec![]))
    };
    Reply::Array(vec![
        Reply::bulk_str(spec.name),
        Reply::Int(spec.arity as i64),
        Reply::Set(flags.into_iter().map(Reply::status).collect()),
        Reply::Int(keys.0 as i64),
        Reply::Int(keys.1 as i64),
        Reply::Int(keys.2 as i64),
        acl_set(doc.map_or("", |d| d.acl)),
        tips_set(doc.map_or("", |d| d.tips)),
        specs,
        Reply::Set(subs),
    ])
}

fn target_info(t: &Target) -> Reply {
    match t {
        Target::Cmd(spec) => cmd_info(spec),
        Target::Sub(s) => sub_info(s),
    }
}

fn cmd_docs(spec: &CommandSpec) -> Reply {
    let doc = doc_of(spec);
    let mut pairs = vec![
        ("summary", Reply::bulk_str(doc.map_or("", |d| d.summary))),
        ("since", Reply::bulk_str(doc.map_or("1.0.0", |d| d.since))),
        ("group", Reply::bulk_str(spec.group.as_str())),
    ];
    let subs: Vec<(Reply, Reply)> = subs_of(spec.name)
        .map(|s| {
            (
                Reply::bulk_str(&format!("{}|{}", s.parent, s.name)),
                sub_docs(s, spec),
            )
        })
        .collect();
    if !subs.is_empty() {
        pairs.push(("subcommands", Reply::Map(subs)));
    }
    map(pairs)
}

fn sub_docs(s: &Sub, parent: &CommandSpec) -> Reply {
    map(vec![
        ("summary", Reply::bulk_str(s.summary)),
        ("since", Reply::bulk_str(s.since)),
        ("group", Reply::bulk_str(parent.group.as_str())),
    ])
}

/// The key positions of a full command line (`args[0]` is the command), or the errors
/// COMMAND GETKEYS gives.
pub fn get_keys(args: &[Bytes]) -> Result<(&'static CommandSpec, Vec<usize>), Reply> {
    let Some(spec) = args.first().and_then(|n| command::lookup(n)) else {
        return Err(Reply::error("ERR Invalid command specified"));
    };
    if !spec.arity_ok(args.len()) {
        return Err(Reply::error(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys: Vec<usize> = match movable(spec.cmd) {
        Some(m) => {
            let (dest, at) = match m {
                Movable::NumKeys(i) => (None, i),
                Movable::DestNumKeys => (Some(1), 2),
            };
            let n = args::int(&args[at])
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Reply::error("ERR Invalid arguments specified for command"))?;
            let n = n as usize;
            if at + n >= args.len() {
                return Err(Reply::error("ERR Invalid arguments specified for command"));
            }
            dest.into_iter().chain(at + 1..=at + n).collect()
        }
        None => match args.get(1).and_then(|sub| find_sub(spec.name, sub)) {
            // A subcommand's own key positions (OBJECT ENCODING key, MEMORY USAGE key).
            Some(sub) if sub.keys.0 > 0 => {
                let (first, last, step) = sub.keys;
                let last = if last < 0 {
                    args.len() as i32 + last
                } else {
                    last.min(args.len() as i32 - 1)
                };
                (first..=last)
                    .step_by(step.max(1) as usize)
                    .map(|i| i as usize)
                    .collect()
            }
            Some(_) => Vec::new(),
            None => spec.key_indices(args.len()).collect(),
        },
    };
    if keys.is_empty() {
        return Err(Reply::error("ERR The command has no key arguments"));
    }
    Ok((spec, keys))
}

/// COMMAND [COUNT | INFO | DOCS | LIST | GETKEYS | GETKEYSANDFLAGS | HELP].
pub fn command(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 1 {
        return Ok(Reply::Array(COMMANDS.iter().map(cmd_info).collect()));
    }
    let sub = subcommand("command", args)?;
    match sub.name {
        "count" => Ok(Reply::Int(COMMANDS.len() as i64)),
        "info" => {
            if args.len() == 2 {
                return Ok(Reply::Array(COMMANDS.iter().map(cmd_info).collect()));
            }
            Ok(Reply::Array(
                args[2..]
                    .iter()
                    .map(|n| lookup(n).map_or(Reply::Nil, |t| target_info(&t)))
                    .collect(),
            ))
        }
        "docs" => {
            let mut out = Vec::new();
            if args.len() == 2 {
                for spec in COMMANDS {
                    out.push((Reply::bulk_str(spec.name), cmd_docs(spec)));
                }
            } else {
                for n in &args[2..] {
                    match lookup(n) {
                        Some(Target::Cmd(spec)) => {
                            out.push((Reply::bulk_str(spec.name), cmd_docs(spec)))
                        }
                        Some(Target::Sub(s)) => {
                            if let Some(parent) = command::lookup(s.parent.as_bytes()) {
                                out.push((
                                    Reply::bulk_str(&format!("{}|{}", s.parent, s.name)),
                                    sub_docs(s, parent),
                                ));
                            }
                        }
                        None => {}
                    }
                }
            }
            Ok(Reply::Map(out))
        }
        "list" => list(args),
        "getkeys" => {
            let (_, keys) = get_keys(&args[2..])?;
            Ok(Reply::Array(
                keys.into_iter()
                    .map(|i| Reply::Bulk(args[2 + i].clone()))
                    .collect(),
            ))
        }
        "getkeysandflags" => {
            let (spec, keys) = get_keys(&args[2..])?;
            let flags = key_flags(spec);
            Ok(Reply::Array(
                keys.into_iter()
                    .map(|i| {
                        Reply::Array(vec![
                            Reply::Bulk(args[2 + i].clone()),
                            Reply::Set(flags.iter().map(|f| Reply::status(*f)).collect()),
                        ])
                    })
                    .collect(),
            ))
        }
        "help" => Ok(help_reply(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
                "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
                "    Return a list of all commands in this Redis server.",
            ],
        )),
        _ => Err(args::unknown_subcommand("command", &args[1])),
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command
/// and subcommand name (`client|list`).
fn list(args: &[Bytes]) -> CmdResult {
    enum Filter<'a> {
        All,
        Module,
        AclCat(String),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if args::is(&args[2], "filterby") => {
            if args::is(&args[3], "module") {
                Filter::Module
            } else if args::is(&args[3], "aclcat") {
                Filter::AclCat(args::lower(&args[4]))
            } else if args::is(&args[3], "pattern") {
                Filter::Pattern(&args[4])
            } else {
                return Err(args::syntax_error());
            }
        }
        _ => return Err(args::syntax_error()),
    };
    let mut out = Vec::new();
    for spec in COMMANDS {
        let acl = doc_of(spec).map_or("", |d| d.acl);
        let mut names = vec![(spec.name.to_string(), acl)];
        names.extend(subs_of(spec.name).map(|s| (format!("{}|{}", s.parent, s.name), s.acl)));
        for (name, acl) in names {
            let keep = match &filter {
                Filter::All => true,
                Filter::Module => false,
                Filter::AclCat(c) => acl.split_whitespace().any(|a| a == c),
                Filter::Pattern(p) => glob::matches(p, name.as_bytes(), true),
            };
            if keep {
                out.push(Reply::bulk_str(&name));
            }
        }
    }
    Ok(Reply::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn docs_cover_the_table() {
        for spec in COMMANDS {
            assert!(doc_of(spec).is_some(), "no docs for {}", spec.name);
        }
    }

    #[test]
    fn getkeys() {
        let (_, k) = get_keys(&b(&["mset", "a", "1", "b", "2"])).unwrap();
        assert_eq!(k, vec![1, 3]);
        let (_, k) = get_keys(&b(&[
            "zunionstore",
            "d",
            "2",
            "a",
            "b",
            "weights",
            "1",
            "2",
        ]))
        .unwrap();
        assert_eq!(k, vec![1, 3, 4]);
        let (_, k) = get_keys(&b(&["zunion", "2", "a", "b"])).unwrap();
        assert_eq!(k, vec![2, 3]);
        assert!(get_keys(&b(&["zunion", "5", "a"])).is_err());
        assert!(get_keys(&b(&["ping"])).is_err());
        assert!(get_keys(&b(&["nope"])).is_err());
        assert!(get_keys(&b(&["get"])).is_err());
        let (_, k) = get_keys(&b(&["memory", "usage", "k"])).unwrap();
        assert_eq!(k, vec![2]);
        let (_, k) = get_keys(&b(&["object", "encoding", "k"])).unwrap();
        assert_eq!(k, vec![2]);
        assert!(get_keys(&b(&["object", "help"])).is_err());
    }

    #[test]
    fn subcommand_errors() {
        let e = subcommand("client", &b(&["client", "setname"]))
            .err()
            .unwrap();
        assert_eq!(
            e,
            Reply::error("ERR wrong number of arguments for 'client|setname' command")
        );
        let e = subcommand("client", &b(&["client", "bogus"]))
            .err()
            .unwrap();
        assert_eq!(
            e,
            Reply::error("ERR unknown subcommand 'bogus'. Try CLIENT HELP.")
        );
        assert_eq!(
            subcommand("client", &b(&["client", "ID"])).unwrap().name,
            "id"
        );
    }
}

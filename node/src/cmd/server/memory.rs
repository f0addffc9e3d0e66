//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP. USAGE estimates the bytes a
//! key and its value take with Redis's data layouts (sampling large collections as Redis
//! does); STATS reports the counting allocator's figures in Redis's field names.

use bytes::Bytes;
use tandem_protocol::Reply;

use super::command::subcommand;
use super::debug::{encoding, peek};
use super::help_reply;
use super::info::MemFigures;
use crate::cmd::args::{self, CmdResult};
use crate::cmd::Ctx;
use crate::db::{Entry, Value};
use crate::server::Server;

/// Allocation size of an sds string of `n` bytes (header + payload + terminator).
fn sds(n: usize) -> usize {
    let hdr = if n < 256 {
        3
    } else if n < 65536 {
        5
    } else {
        9
    };
    hdr + n + 1
}

/// Bytes of one listpack entry holding `n` bytes.
fn lp_entry(n: usize) -> usize {
    let enc = if n < 64 {
        1
    } else if n < 4096 {
        2
    } else {
        5
    };
    let total = enc + n;
    total + if total < 128 { 1 } else { 2 }
}

/// Bytes of a dict's table for `n` entries (buckets are a power of two).
fn dict_table(n: usize) -> usize {
    56 + 8 * n.max(4).next_power_of_two()
}

/// Average of `per(item)` over the first `samples` items (all when 0), times `len`.
fn sampled<I: Iterator<Item = usize>>(len: usize, samples: usize, items: I) -> usize {
    if samples == 0 || len <= samples {
        return items.sum();
    }
    let sum: usize = items.take(samples).sum();
    sum / samples * len
}

/// An estimate of the memory `key` and its value take, as MEMORY USAGE reports it.
pub fn usage(srv: &Server, key: &[u8], e: &Entry, samples: usize) -> usize {
    const ROBJ: usize = 16;
    const DICT_ENTRY: usize = 24;
    let enc = encoding(srv, &e.value);
    let value = match &e.value {
        Value::Str(s) => match enc {
            "int" => 0,
            "embstr" => s.len() + 4,
            _ => sds(s.len()),
        },
        Value::List(l) => {
            let bytes = sampled(l.len(), samples, l.iter().map(|x| lp_entry(x.len())));
            let nodes = bytes / 8192 + 1;
            40 + nodes * (32 + 7) + bytes
        }
        Value::Hash(h) => {
            if enc == "listpack" {
                7 + sampled(
                    h.len(),
                    samples,
                    h.iter().map(|(f, v)| lp_entry(f.len()) + lp_entry(v.len())),
                )
            } else {
                dict_table(h.len())
                    + sampled(
                        h.len(),
                        samples,
                        h.iter()
                            .map(|(f, v)| DICT_ENTRY + sds(f.len()) + sds(v.len())),
                    )
            }
        }
        Value::Set(s) => {
            if enc == "intset" {
                8 + 8 * s.len()
            } else {
                dict_table(s.len())
                    + sampled(
                        s.len(),
                        samples,
                        s.iter().map(|m| DICT_ENTRY + sds(m.len())),
                    )
            }
        }
        Value::ZSet(z) => {
            if enc == "listpack" {
                7 + sampled(
                    z.len(),
                    samples,
                    z.dict.keys().map(|m| lp_entry(m.len()) + lp_entry(8)),
                )
            } else {
                16 + dict_table(z.len())
                    + sampled(
                        z.len(),
                        samples,
                        z.dict.keys().map(|m| DICT_ENTRY + sds(m.len()) + 48),
                    )
            }
        }
    };
    DICT_ENTRY + sds(key.len()) + ROBJ + value
}

pub fn memory(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = subcommand("memory", args)?;
    match sub.name {
        "usage" => {
            let mut samples = 5usize;
            let mut i = 3;
            while i < args.len() {
                if args::is(&args[i], "samples") && i + 1 < args.len() {
                    let n = args::int(&args[i + 1])?;
                    if n < 0 {
                        return Err(args::syntax_error());
                    }
                    samples = usize::try_from(n).unwrap_or(usize::MAX);
                    i += 2;
                } else {
                    return Err(args::syntax_error());
                }
            }
            let srv = ctx.srv;
            let key = args[2].clone();
            Ok(match peek(ctx, &key) {
                Some(e) => Reply::Int(usage(srv, &key, e, samples) as i64),
                None => Reply::Nil,
            })
        }
        "stats" => Ok(stats(ctx)),
        "doctor" => {
            let m = MemFigures::new(ctx.srv);
            let mut report = String::new();
            if m.used < 5 << 20 {
                report.push_str("This instance is using very little memory (under 5 MB): there is nothing to diagnose yet.\n");
            } else {
                if m.peak > m.used.saturating_mul(3) / 2 {
                    report.push_str(&format!(
                        " * Peak memory: the peak ({}) was much higher than the memory used now ({}).\n",
                        super::bytes_to_human(m.peak),
                        super::bytes_to_human(m.used)
                    ));
                }
                if m.frag_ratio() > 1.4 {
                    report.push_str(&format!(
                        " * High fragmentation: the resident set is {:.2} times the memory in use.\n",
                        m.frag_ratio()
                    ));
                }
                if report.is_empty() {
                    report.push_str("No memory problem found: fragmentation and peak usage are within normal ranges.\n");
                }
            }
            Ok(Reply::Verbatim("txt", Bytes::from(report)))
        }
        "malloc-stats" => Ok(Reply::Verbatim(
            "txt",
            Bytes::from_static(b"Stats not supported for the current allocator"),
        )),
        "purge" => Ok(Reply::Ok),
        "help" => Ok(help_reply(
            "MEMORY",
            &[
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ],
        )),
        _ => Err(args::unknown_subcommand("memory", &args[1])),
    }
}

fn stats(ctx: &mut Ctx) -> Reply {
    let m = MemFigures::new(ctx.srv);
    let ndbs = ctx.databases();
    let mut per_db = vec![(0usize, 0usize); ndbs];
    if ctx.has_all_shards() {
        for shard in ctx.shards_mut() {
            for (i, db) in shard.dbs.iter().enumerate().take(ndbs) {
                per_db[i].0 += db.len();
                per_db[i].1 += db.expires.len();
            }
        }
    }
    let keys: usize = per_db.iter().map(|d| d.0).sum();
    let b = |s: &str| Reply::bulk_str(s);
    let int = |n: u64| Reply::Int(n as i64);
    let mut out = vec![
        (b("peak.allocated"), int(m.peak)),
        (b("total.allocated"), int(m.used)),
        (b("startup.allocated"), int(m.startup)),
        (b("replication.backlog"), int(0)),
        (b("clients.slaves"), int(0)),
        (b("clients.normal"), int(m.clients_normal)),
        (b("cluster.links"), int(0)),
        (b("aof.buffer"), int(0)),
        (b("lua.caches"), int(0)),
        (b("functions.caches"), int(0)),
    ];
    for (i, (k, e)) in per_db.iter().enumerate() {
        if *k == 0 {
            continue;
        }
        out.push((
            b(&format!("db.{i}")),
            Reply::Map(vec![
                (
                    b("overhead.hashtable.main"),
                    int((*k * 24 + dict_table(*k)) as u64),
                ),
                (
                    b("overhead.hashtable.expires"),
                    int((*e * 24 + dict_table(*e)) as u64),
                ),
            ]),
        ));
    }
    let net = m.used.saturating_sub(m.startup);
    out.extend([
        (b("overhead.total"), int(m.overhead)),
        (b("keys.count"), int(keys as u64)),
        (
            b("keys.bytes-per-key"),
            int(if keys == 0 { 0 } else { net / keys as u64 }),
        ),
        (b("dataset.bytes"), int(m.dataset)),
        (b("dataset.percentage"), Reply::Double(m.dataset_perc())),
        (b("peak.percentage"), Reply::Double(m.peak_perc())),
        (b("allocator.allocated"), int(m.used)),
        (b("allocator.active"), int(m.used)),
        (b("allocator.resident"), int(m.rss)),
        (b("allocator-fragmentation.ratio"), Reply::Double(1.0)),
        (b("allocator-fragmentation.bytes"), int(0)),
        (b("allocator.rss-ratio"), Reply::Double(m.frag_ratio())),
        (
            b("allocator.rss-bytes"),
            Reply::Int(m.rss as i64 - m.used as i64),
        ),
        (b("rss-overhead.ratio"), Reply::Double(1.0)),
        (b("rss-overhead.bytes"), int(0)),
        (b("fragmentation"), Reply::Double(m.frag_ratio())),
        (
            b("fragmentation.bytes"),
            Reply::Int(m.rss as i64 - m.used as i64),
        ),
    ]);
    Reply::Map(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes() {
        assert_eq!(sds(5), 9);
        assert_eq!(lp_entry(5), 7);
        assert_eq!(dict_table(3), 56 + 32);
        assert_eq!(sampled(100, 5, std::iter::repeat(10)), 1000);
        assert_eq!(sampled(3, 0, [1, 2, 3].into_iter()), 6);
    }
}

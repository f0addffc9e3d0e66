//! PUBLISH and PUBSUB (CHANNELS, NUMSUB, NUMPAT). Subscribing is session state and lives in
//! the session; delivery lives in `crate::pubsub`.

use bytes::Bytes;
use tandem_protocol::Reply;

use super::args::{self, CmdResult};
use super::Ctx;

/// PUBLISH delivers here and, as in Redis 7.0, goes to the replication stream (never the AOF,
/// see [`crate::propagate::is_repl_only`]) so subscribers on replicas get the message too.
pub fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = ctx.srv.pubsub.publish(&args[1], &args[2]);
    if ctx.srv.feed.is_active() && !ctx.from_master {
        ctx.propagate.push(args.to_vec());
    }
    Ok(Reply::Int(n as i64))
}

pub fn pubsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = args::lower(&args[1]);
    match sub.as_str() {
        "channels" if args.len() <= 3 => {
            let pattern = args.get(2).map(|p| &p[..]);
            Ok(Reply::bulks(ctx.srv.pubsub.channels(pattern)))
        }
        "numsub" => {
            let mut out = Vec::new();
            for ch in &args[2..] {
                out.push(Reply::Bulk(ch.clone()));
                out.push(Reply::Int(ctx.srv.pubsub.numsub(ch) as i64));
            }
            Ok(Reply::Array(out))
        }
        "numpat" if args.len() == 2 => Ok(Reply::Int(ctx.srv.pubsub.numpat() as i64)),
        "help" => Ok(Reply::Array(
            [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|s| Reply::status(*s))
            .collect(),
        )),
        "channels" | "numpat" => Err(Reply::error(format!(
            "ERR wrong number of arguments for 'pubsub|{sub}' command"
        ))),
        _ => Err(args::unknown_subcommand("pubsub", &args[1])),
    }
}

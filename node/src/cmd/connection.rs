//! Connection commands that run under a [`Ctx`]: PING, ECHO, SELECT.
//! (AUTH, HELLO, QUIT, RESET change session state and are handled by the session.)

use bytes::Bytes;
use tandem_protocol::Reply;

use super::args::{self, CmdResult};
use super::Ctx;

pub fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // A RESP2 client in subscribed mode gets PING's answer shaped like a pub/sub message.
    let subscribed = ctx.client.is_some_and(|c| {
        c.subscriptions.load(std::sync::atomic::Ordering::Relaxed) > 0
            || c.psubscriptions.load(std::sync::atomic::Ordering::Relaxed) > 0
    });
    if subscribed && ctx.proto == tandem_protocol::Protocol::Resp2 && args.len() <= 2 {
        let payload = args.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![
            Reply::bulk_str("pong"),
            Reply::Bulk(payload),
        ]));
    }
    match args.len() {
        1 => Ok(Reply::status("PONG")),
        2 => Ok(Reply::Bulk(args[1].clone())),
        _ => {
            let _ = ctx;
            Err(args::wrong_arity("ping"))
        }
    }
}

pub fn echo(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(args[1].clone()))
}

pub fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = args::int(&args[1])?;
    if db < 0 || db as usize >= ctx.databases() {
        return Err(Reply::error("ERR DB index is out of range"));
    }
    ctx.db = db as usize;
    if let Some(c) = ctx.client {
        c.db.store(ctx.db, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(Reply::Ok)
}

//! list commands.

use bytes::Bytes;

use super::{CmdResult, Ctx};

pub fn lpush(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn rpush(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lpushx(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn rpushx(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lpop(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn rpop(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lrange(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn llen(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lindex(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lset(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lrem(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn ltrim(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn linsert(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lpos(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lmove(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn rpoplpush(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn blpop(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn brpop(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn blmove(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn brpoplpush(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

/// The timeout argument of a blocking list command: `None` means wait forever (0).
/// Errors: `ERR timeout is not a float or out of range`, `ERR timeout is negative`.
pub fn blocking_timeout(
    cmd: tandem_protocol::Cmd,
    args: &[Bytes],
) -> Result<Option<std::time::Duration>, tandem_protocol::Reply> {
    let _ = (cmd, args);
    Ok(None)
}

/// The keys a blocked client waits on (BLPOP/BRPOP: all keys; BLMOVE/BRPOPLPUSH: the source).
pub fn blocking_keys(cmd: tandem_protocol::Cmd, args: &[Bytes]) -> Vec<Bytes> {
    let _ = cmd;
    args[1..args.len() - 1].to_vec()
}

/// Tries a blocking command once without blocking: `Ok(Some(reply))` when it could be served,
/// `Ok(None)` when every key is empty (the session then blocks), `Err` for an error reply.
pub fn try_blocking(
    ctx: &mut Ctx,
    cmd: tandem_protocol::Cmd,
    args: &[Bytes],
) -> Result<Option<tandem_protocol::Reply>, tandem_protocol::Reply> {
    let _ = (ctx, cmd, args);
    Ok(None)
}

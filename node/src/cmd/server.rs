//! server commands.

use bytes::Bytes;

use super::{CmdResult, Ctx};

pub fn client(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn info(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn role(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn config(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn command(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn time(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn lastsave(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn debug(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn wait(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn save(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn bgsave(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn bgrewriteaof(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn memory(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn slowlog(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
}

pub fn latency(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(tandem_protocol::Reply::error("ERR not implemented yet"))
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

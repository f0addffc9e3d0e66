//! Argument parsing helpers shared by the command handlers, with Redis's exact error texts.

use bytes::Bytes;
use tandem_protocol::number;
use tandem_protocol::Reply;

pub const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
pub const ERR_SYNTAX: &str = "ERR syntax error";
pub const ERR_NO_SUCH_KEY: &str = "ERR no such key";
pub const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const ERR_OUT_OF_RANGE: &str = "ERR index out of range";

pub type CmdResult = Result<Reply, Reply>;

pub fn syntax_error() -> Reply {
    Reply::error(ERR_SYNTAX)
}

/// A signed integer argument, or `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> Result<i64, Reply> {
    number::parse_i64(arg).ok_or_else(|| Reply::error(ERR_NOT_INTEGER))
}

/// A float argument (scores, increments, timeouts), or `ERR value is not a valid float`.
pub fn float(arg: &[u8]) -> Result<f64, Reply> {
    number::parse_f64(arg).ok_or_else(|| Reply::error(ERR_NOT_FLOAT))
}

/// A positive count: `ERR value is out of range, must be positive` for negatives.
pub fn positive(arg: &[u8]) -> Result<i64, Reply> {
    let v = int(arg)?;
    if v < 0 {
        return Err(Reply::error("ERR value is out of range, must be positive"));
    }
    Ok(v)
}

/// Case-insensitive keyword comparison (`NX`, `WITHSCORES`, ...).
#[inline]
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Lower-cased argument as text (for subcommand names and messages).
pub fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// `ERR wrong number of arguments for 'name' command`.
pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// `ERR unknown subcommand 'x'. Try NAME HELP.`
pub fn unknown_subcommand(cmd: &str, sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_ascii_uppercase()
    ))
}

/// Bytes of an argument as a `Bytes` handle (cheap clone).
pub fn b(arg: &Bytes) -> Bytes {
    arg.clone()
}

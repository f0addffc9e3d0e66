//! One-off commands through a redis-rs connection with the reply checked for its type:
//! `text` and `int` panic, naming the command, when the reply is of another kind.

use redis::{Connection, Value};

/// Sends `args` (the command name first) and returns the raw reply.
pub fn cmd(c: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c)
}

/// A string reply (bulk, simple, verbatim or OK) as text.
pub fn text(c: &mut Connection, args: &[&str]) -> String {
    match cmd(c, args).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::SimpleString(s) => s,
        Value::VerbatimString { text, .. } => text,
        Value::Okay => "OK".into(),
        v => panic!("{args:?}: not a string: {v:?}"),
    }
}

/// An integer reply.
pub fn int(c: &mut Connection, args: &[&str]) -> i64 {
    match cmd(c, args).unwrap() {
        Value::Int(i) => i,
        v => panic!("{args:?}: not an integer: {v:?}"),
    }
}

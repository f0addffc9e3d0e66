//! Command execution: [`execute`] dispatches a parsed command to its handler with an
//! exhaustive match over the command table, so every command in `tandem-protocol`'s table
//! has exactly one implementation here. One module per command group.
//!
//! Handlers have the shape `fn(&mut Ctx, &[Bytes]) -> CmdResult`; `args[0]` is the command
//! name. `Err(reply)` is an error *reply* (the connection stays open), never a crash.

pub mod args;
pub mod connection;
pub mod ctx;
pub mod hash;
pub mod keys;
pub mod list;
pub mod pubsub;
pub mod server;
pub mod set;
pub mod string;
pub mod zset;

use bytes::Bytes;
use tandem_protocol::command::{Cmd, CommandSpec};
use tandem_protocol::Reply;

pub use args::CmdResult;
pub use ctx::Ctx;

/// Runs one command under `ctx` and returns its reply (errors included).
pub fn execute(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    match dispatch(ctx, spec, args) {
        Ok(r) | Err(r) => r,
    }
}

fn dispatch(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes]) -> CmdResult {
    match spec.cmd {
        Cmd::Get => string::get(ctx, args),
        Cmd::Set => string::set_(ctx, args),
        Cmd::SetNx => string::setnx(ctx, args),
        Cmd::SetEx => string::setex(ctx, args),
        Cmd::PSetEx => string::psetex(ctx, args),
        Cmd::GetSet => string::getset(ctx, args),
        Cmd::GetDel => string::getdel(ctx, args),
        Cmd::GetEx => string::getex(ctx, args),
        Cmd::MGet => string::mget(ctx, args),
        Cmd::MSet => string::mset(ctx, args),
        Cmd::MSetNx => string::msetnx(ctx, args),
        Cmd::Incr => string::incr(ctx, args),
        Cmd::Decr => string::decr(ctx, args),
        Cmd::IncrBy => string::incrby(ctx, args),
        Cmd::DecrBy => string::decrby(ctx, args),
        Cmd::IncrByFloat => string::incrbyfloat(ctx, args),
        Cmd::Append => string::append(ctx, args),
        Cmd::StrLen => string::strlen(ctx, args),
        Cmd::GetRange => string::getrange(ctx, args),
        Cmd::Substr => string::substr(ctx, args),
        Cmd::SetRange => string::setrange(ctx, args),
        Cmd::Del => keys::del(ctx, args),
        Cmd::Unlink => keys::unlink(ctx, args),
        Cmd::Exists => keys::exists(ctx, args),
        Cmd::Type => keys::type_(ctx, args),
        Cmd::Touch => keys::touch(ctx, args),
        Cmd::Rename => keys::rename(ctx, args),
        Cmd::RenameNx => keys::renamenx(ctx, args),
        Cmd::Keys => keys::keys(ctx, args),
        Cmd::Scan => keys::scan(ctx, args),
        Cmd::RandomKey => keys::randomkey(ctx, args),
        Cmd::Expire => keys::expire(ctx, args),
        Cmd::PExpire => keys::pexpire(ctx, args),
        Cmd::ExpireAt => keys::expireat(ctx, args),
        Cmd::PExpireAt => keys::pexpireat(ctx, args),
        Cmd::Ttl => keys::ttl(ctx, args),
        Cmd::PTtl => keys::pttl(ctx, args),
        Cmd::Persist => keys::persist(ctx, args),
        Cmd::ExpireTime => keys::expiretime(ctx, args),
        Cmd::PExpireTime => keys::pexpiretime(ctx, args),
        Cmd::Copy => keys::copy_(ctx, args),
        Cmd::Move => keys::move_(ctx, args),
        Cmd::Object => keys::object(ctx, args),
        Cmd::Select => connection::select(ctx, args),
        Cmd::SwapDb => keys::swapdb(ctx, args),
        Cmd::FlushDb => keys::flushdb(ctx, args),
        Cmd::FlushAll => keys::flushall(ctx, args),
        Cmd::DbSize => keys::dbsize(ctx, args),
        Cmd::LPush => list::lpush(ctx, args),
        Cmd::RPush => list::rpush(ctx, args),
        Cmd::LPushX => list::lpushx(ctx, args),
        Cmd::RPushX => list::rpushx(ctx, args),
        Cmd::LPop => list::lpop(ctx, args),
        Cmd::RPop => list::rpop(ctx, args),
        Cmd::LRange => list::lrange(ctx, args),
        Cmd::LLen => list::llen(ctx, args),
        Cmd::LIndex => list::lindex(ctx, args),
        Cmd::LSet => list::lset(ctx, args),
        Cmd::LRem => list::lrem(ctx, args),
        Cmd::LTrim => list::ltrim(ctx, args),
        Cmd::LInsert => list::linsert(ctx, args),
        Cmd::LPos => list::lpos(ctx, args),
        Cmd::LMove => list::lmove(ctx, args),
        Cmd::RPopLPush => list::rpoplpush(ctx, args),
        Cmd::BLPop => list::blpop(ctx, args),
        Cmd::BRPop => list::brpop(ctx, args),
        Cmd::BLMove => list::blmove(ctx, args),
        Cmd::BRPopLPush => list::brpoplpush(ctx, args),
        Cmd::HSet => hash::hset(ctx, args),
        Cmd::HMSet => hash::hmset(ctx, args),
        Cmd::HSetNx => hash::hsetnx(ctx, args),
        Cmd::HGet => hash::hget(ctx, args),
        Cmd::HMGet => hash::hmget(ctx, args),
        Cmd::HGetAll => hash::hgetall(ctx, args),
        Cmd::HDel => hash::hdel(ctx, args),
        Cmd::HExists => hash::hexists(ctx, args),
        Cmd::HIncrBy => hash::hincrby(ctx, args),
        Cmd::HIncrByFloat => hash::hincrbyfloat(ctx, args),
        Cmd::HKeys => hash::hkeys(ctx, args),
        Cmd::HVals => hash::hvals(ctx, args),
        Cmd::HLen => hash::hlen(ctx, args),
        Cmd::HStrLen => hash::hstrlen(ctx, args),
        Cmd::HRandField => hash::hrandfield(ctx, args),
        Cmd::HScan => hash::hscan(ctx, args),
        Cmd::SAdd => set::sadd(ctx, args),
        Cmd::SRem => set::srem(ctx, args),
        Cmd::SMembers => set::smembers(ctx, args),
        Cmd::SIsMember => set::sismember(ctx, args),
        Cmd::SMIsMember => set::smismember(ctx, args),
        Cmd::SCard => set::scard(ctx, args),
        Cmd::SPop => set::spop(ctx, args),
        Cmd::SRandMember => set::srandmember(ctx, args),
        Cmd::SInter => set::sinter(ctx, args),
        Cmd::SInterCard => set::sintercard(ctx, args),
        Cmd::SUnion => set::sunion(ctx, args),
        Cmd::SDiff => set::sdiff(ctx, args),
        Cmd::SInterStore => set::sinterstore(ctx, args),
        Cmd::SUnionStore => set::sunionstore(ctx, args),
        Cmd::SDiffStore => set::sdiffstore(ctx, args),
        Cmd::SMove => set::smove(ctx, args),
        Cmd::SScan => set::sscan(ctx, args),
        Cmd::ZAdd => zset::zadd(ctx, args),
        Cmd::ZRem => zset::zrem(ctx, args),
        Cmd::ZScore => zset::zscore(ctx, args),
        Cmd::ZMScore => zset::zmscore(ctx, args),
        Cmd::ZIncrBy => zset::zincrby(ctx, args),
        Cmd::ZCard => zset::zcard(ctx, args),
        Cmd::ZCount => zset::zcount(ctx, args),
        Cmd::ZLexCount => zset::zlexcount(ctx, args),
        Cmd::ZRank => zset::zrank(ctx, args),
        Cmd::ZRevRank => zset::zrevrank(ctx, args),
        Cmd::ZRange => zset::zrange(ctx, args),
        Cmd::ZRangeStore => zset::zrangestore(ctx, args),
        Cmd::ZRangeByScore => zset::zrangebyscore(ctx, args),
        Cmd::ZRevRange => zset::zrevrange(ctx, args),
        Cmd::ZRevRangeByScore => zset::zrevrangebyscore(ctx, args),
        Cmd::ZRangeByLex => zset::zrangebylex(ctx, args),
        Cmd::ZRevRangeByLex => zset::zrevrangebylex(ctx, args),
        Cmd::ZPopMin => zset::zpopmin(ctx, args),
        Cmd::ZPopMax => zset::zpopmax(ctx, args),
        Cmd::ZRemRangeByRank => zset::zremrangebyrank(ctx, args),
        Cmd::ZRemRangeByScore => zset::zremrangebyscore(ctx, args),
        Cmd::ZRemRangeByLex => zset::zremrangebylex(ctx, args),
        Cmd::ZRandMember => zset::zrandmember(ctx, args),
        Cmd::ZScan => zset::zscan(ctx, args),
        Cmd::ZUnionStore => zset::zunionstore(ctx, args),
        Cmd::ZInterStore => zset::zinterstore(ctx, args),
        Cmd::ZDiffStore => zset::zdiffstore(ctx, args),
        Cmd::ZUnion => zset::zunion(ctx, args),
        Cmd::ZInter => zset::zinter(ctx, args),
        Cmd::ZDiff => zset::zdiff(ctx, args),
        Cmd::Subscribe => Err(session_only(spec)),
        Cmd::Unsubscribe => Err(session_only(spec)),
        Cmd::PSubscribe => Err(session_only(spec)),
        Cmd::PUnsubscribe => Err(session_only(spec)),
        Cmd::Publish => pubsub::publish(ctx, args),
        Cmd::PubSub => pubsub::pubsub(ctx, args),
        Cmd::Multi => Err(session_only(spec)),
        Cmd::Exec => Err(session_only(spec)),
        Cmd::Discard => Err(session_only(spec)),
        Cmd::Watch => Err(session_only(spec)),
        Cmd::Unwatch => Err(session_only(spec)),
        Cmd::Ping => connection::ping(ctx, args),
        Cmd::Echo => connection::echo(ctx, args),
        Cmd::Auth => Err(session_only(spec)),
        Cmd::Hello => Err(session_only(spec)),
        Cmd::Quit => Err(session_only(spec)),
        Cmd::Reset => Err(session_only(spec)),
        Cmd::Client => server::client(ctx, args),
        Cmd::Info => server::info(ctx, args),
        Cmd::Role => server::role(ctx, args),
        Cmd::Config => server::config(ctx, args),
        Cmd::Command => server::command(ctx, args),
        Cmd::Time => server::time(ctx, args),
        Cmd::LastSave => server::lastsave(ctx, args),
        Cmd::Debug => server::debug(ctx, args),
        Cmd::Shutdown => Err(session_only(spec)),
        Cmd::Wait => server::wait(ctx, args),
        Cmd::Save => server::save(ctx, args),
        Cmd::BgSave => server::bgsave(ctx, args),
        Cmd::BgRewriteAof => server::bgrewriteaof(ctx, args),
        Cmd::ReplicaOf => Err(session_only(spec)),
        Cmd::SlaveOf => Err(session_only(spec)),
        Cmd::ReplConf => Err(session_only(spec)),
        Cmd::PSync => Err(session_only(spec)),
        Cmd::Sync => Err(session_only(spec)),
        Cmd::Failover => Err(session_only(spec)),
        Cmd::Monitor => Err(session_only(spec)),
        Cmd::Memory => server::memory(ctx, args),
        Cmd::Slowlog => server::slowlog(ctx, args),
        Cmd::Latency => server::latency(ctx, args),
        Cmd::Function => server::function(ctx, args),
    }
}

/// Commands that change connection state are run by the session, never through here.
fn session_only(spec: &CommandSpec) -> Reply {
    Reply::error(format!(
        "ERR '{}' cannot be used in this context",
        spec.name
    ))
}

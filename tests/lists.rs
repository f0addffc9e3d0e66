//! List commands through real clients: values and reply types, errors in Redis 7.0's exact
//! words (checked byte-for-byte against Debian's redis-server 7.0), pipelining, and the
//! blocking pops (BLPOP/BRPOP/BLMOVE/BRPOPLPUSH) woken by pushes from another client, timing
//! out, and not blocking inside MULTI.

mod common;
use common::exact::{same_as_redis, ExactConn as Raw};
use common::Proc;

use std::sync::mpsc;
use std::time::{Duration, Instant};

const LIST_SCRIPT: &str = "
rpush l a b c d e f a b c
lpush l2 z y x
lpushx nokey a
rpushx nokey a
lpushx l2 w
rpushx l2 end1 end2
llen l
llen nokey
lrange l 0 -1
lrange l 2 4
lrange l -3 -1
lrange l -100 100
lrange l 5 2
lrange l 100 200
lrange nokey 0 -1
lrange l x 1
lrange l 0 y
lindex l 0
lindex l -1
lindex l 100
lindex l -100
lindex nokey 0
lindex l x
lset l 1 B
lset l -1 C
lset l 100 x
lset nokey 0 x
lset l x y
lrange l 0 -1
lpos l a
lpos l a rank 2
lpos l a rank -1
lpos l a rank -2
lpos l a rank 3
lpos l a count 0
lpos l a count 1
lpos l a count 0 rank -1
lpos l a maxlen 3
lpos l a count 0 maxlen 7
lpos l zz
lpos l zz count 2
lpos nokey a
lpos nokey a count 0
lpos l a rank 0
lpos l a count -1
lpos l a maxlen -1
lpos l a rank
lpos l a foo 1
lpos l a rank x
lpos l a count x
lpos l a maxlen x
lpos l a count 99999999999999999999
lpos l a rank 1 rank 2
lpos l a count 1 count 0
lrange l 0 -9223372036854775808
lindex l -9223372036854775808
lindex l 9223372036854775807
lrem l -9223372036854775808 zz
lpos l a rank -9223372036854775808
linsert l before d D-
linsert l after d d+
linsert l after nosuch x
linsert nokey after a x
linsert l middle a x
lrange l 0 -1
lrem l 0 zz
lrem l 1 a
lrem l -1 c
rpush r x y x y x y x
lrem r 2 x
lrange r 0 -1
lrem r -2 y
lrange r 0 -1
lrem r 0 x
lrange r 0 -1
lrem r 0 y
exists r
lrem nokey 0 a
lrem l x a
ltrim l 1 -2
lrange l 0 -1
ltrim l 0 0
lrange l 0 -1
ltrim l 5 1
exists l
ltrim nokey 0 1
ltrim l x 1
rpush p 1 2 3 4 5
lpop p
rpop p
lpop p 2
rpop p 0
rpop p 10
exists p
lpop p
lpop p 1
lpop p x
lpop p -1
lpop p 1 2
rpop
rpush m a b c
lmove m m left right
lrange m 0 -1
lmove m m right left
lmove m n left left
lmove m n right right
lrange n 0 -1
lmove m n left left
exists m
lmove m n left left
lmove n m up left
lmove n m left down
rpoplpush n n
rpoplpush n o
rpoplpush nokey o
lrange n 0 -1
lrange o 0 -1
set s v
lpush s a
rpush s a
lpushx s a
llen s
lrange s 0 1
lindex s 0
lset s 0 a
lrem s 0 a
ltrim s 0 1
linsert s before a b
lpos s a
lpop s
rpop s 2
lmove s n left left
lmove o s left left
rpoplpush o s
lrange o 0 -1
blpop nokey s 0
blpop s o 0
blpop o s 0
brpop o s 0
blmove s o left left 0
rpush o p q
blmove o s left left 0
brpoplpush s o 0
blpop nokey x
blpop nokey -1
blpop nokey -0.5
blpop nokey inf
blmove a b up left x
blmove a b left left x
brpoplpush a b x
blpop nokey 0.01
brpop nokey nokey2 0.01
blmove nokey b left left 0.01
brpoplpush nokey b 0.01
multi
blpop nokey 0
brpop nokey 0
blmove nokey b left right 0
brpoplpush nokey b 0
blpop nokey -1
blmove nokey b up right 0
rpush q a b c
blpop q 0
brpop q 0
blmove q q2 left right 0
brpoplpush q2 q 0
exec
lrange q 0 -1
lrange q2 0 -1
hello 3
lpop nokey 1
lpop nokey
lrange nokey 0 -1
lpos nokey a
blpop nokey 0.01
multi
blpop nokey 0
blmove nokey b left right 0
exec
rpush h3 a
blpop h3 1
";

#[test]
fn list_commands_match_redis_byte_for_byte() {
    same_as_redis(LIST_SCRIPT);
}

#[test]
fn push_pop_range_with_a_client() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let n: i64 = redis::cmd("RPUSH")
        .arg("l")
        .arg(&["a", "b", "c"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 3);
    let n: i64 = redis::cmd("LPUSH")
        .arg("l")
        .arg(&["x", "y"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 5);
    let all: Vec<String> = redis::cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(all, ["y", "x", "a", "b", "c"]);
    let popped: Vec<String> = redis::cmd("RPOP").arg("l").arg(2).query(&mut c).unwrap();
    assert_eq!(popped, ["c", "b"]);
    let missing: Option<Vec<String>> = redis::cmd("LPOP")
        .arg("nokey")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(missing, None);
    let pos: Option<i64> = redis::cmd("LPOS").arg("l").arg("a").query(&mut c).unwrap();
    assert_eq!(pos, Some(2));
    // Popping everything deletes the key.
    let _: Vec<String> = redis::cmd("LPOP").arg("l").arg(10).query(&mut c).unwrap();
    let exists: i64 = redis::cmd("EXISTS").arg("l").query(&mut c).unwrap();
    assert_eq!(exists, 0);
    let err = redis::cmd("LSET")
        .arg("l")
        .arg(0)
        .arg("v")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("no such key"), "{err}");
}

#[test]
fn pipelined_pushes_and_reads() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("RPUSH").arg("big").arg(i);
    }
    pipe.cmd("LLEN").arg("big");
    pipe.cmd("LINDEX").arg("big").arg(-1);
    pipe.cmd("LRANGE").arg("big").arg(10).arg(12);
    let res: Vec<redis::Value> = pipe.query(&mut c).unwrap();
    assert_eq!(res.len(), 503);
    assert_eq!(res[499], redis::Value::Int(500));
    assert_eq!(res[500], redis::Value::Int(500));
    let last: String = redis::FromRedisValue::from_redis_value(&res[501]).unwrap();
    assert_eq!(last, "499");
    let mid: Vec<String> = redis::FromRedisValue::from_redis_value(&res[502]).unwrap();
    assert_eq!(mid, ["10", "11", "12"]);
}

/// Runs `cmd` on a fresh connection in a thread; the result arrives on the channel.
fn spawn_blocking(
    node: &Proc,
    cmd: redis::Cmd,
) -> (mpsc::Receiver<redis::Value>, std::thread::JoinHandle<()>) {
    let mut c = node.conn();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let v: redis::Value = cmd.query(&mut c).unwrap();
        let _ = tx.send(v);
    });
    (rx, h)
}

fn blocked_clients(c: &mut redis::Connection) -> Option<i64> {
    let info: String = redis::cmd("INFO").arg("clients").query(c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until `n` clients are blocked (falls back to a short sleep if INFO lacks the field).
fn wait_blocked(c: &mut redis::Connection, n: i64) {
    if blocked_clients(c).is_none() {
        std::thread::sleep(Duration::from_millis(300));
        return;
    }
    assert!(
        common::eventually(Duration::from_secs(5), || blocked_clients(c) == Some(n)),
        "client never blocked"
    );
}

#[test]
fn blpop_is_woken_by_a_push_from_another_client() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut cmd = redis::cmd("BLPOP");
    cmd.arg("empty").arg("q").arg(0);
    let (rx, h) = spawn_blocking(&node, cmd);
    wait_blocked(&mut c, 1);
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "BLPOP answered before any push"
    );
    let _: i64 = redis::cmd("RPUSH")
        .arg("q")
        .arg(&["v1", "v2"])
        .query(&mut c)
        .unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("BLPOP woken");
    let got: Vec<String> = redis::FromRedisValue::from_redis_value(&got).unwrap();
    assert_eq!(got, ["q", "v1"]);
    h.join().unwrap();
    let rest: Vec<String> = redis::cmd("LRANGE")
        .arg("q")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(rest, ["v2"]);

    // BRPOP takes from the tail; the pushed list is emptied and deleted.
    let mut cmd = redis::cmd("BRPOP");
    cmd.arg("r").arg(0);
    let (rx, h) = spawn_blocking(&node, cmd);
    wait_blocked(&mut c, 1);
    let _: i64 = redis::cmd("LPUSH")
        .arg("r")
        .arg("only")
        .query(&mut c)
        .unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("BRPOP woken");
    let got: Vec<String> = redis::FromRedisValue::from_redis_value(&got).unwrap();
    assert_eq!(got, ["r", "only"]);
    h.join().unwrap();
    let exists: i64 = redis::cmd("EXISTS").arg("r").query(&mut c).unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn blmove_and_brpoplpush_are_woken_by_a_push() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut cmd = redis::cmd("BLMOVE");
    cmd.arg("src").arg("dst").arg("RIGHT").arg("LEFT").arg(10);
    let (rx, h) = spawn_blocking(&node, cmd);
    wait_blocked(&mut c, 1);
    let _: i64 = redis::cmd("RPUSH")
        .arg("src")
        .arg(&["a", "b"])
        .query(&mut c)
        .unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("BLMOVE woken");
    assert_eq!(got, redis::Value::BulkString(b"b".to_vec()));
    h.join().unwrap();
    let dst: Vec<String> = redis::cmd("LRANGE")
        .arg("dst")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(dst, ["b"]);

    let mut cmd = redis::cmd("BRPOPLPUSH");
    cmd.arg("src2").arg("dst").arg(0);
    let (rx, h) = spawn_blocking(&node, cmd);
    wait_blocked(&mut c, 1);
    let _: i64 = redis::cmd("LPUSH")
        .arg("src2")
        .arg("z")
        .query(&mut c)
        .unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("BRPOPLPUSH woken");
    assert_eq!(got, redis::Value::BulkString(b"z".to_vec()));
    h.join().unwrap();
    let dst: Vec<String> = redis::cmd("LRANGE")
        .arg("dst")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(dst, ["z", "b"]);
}

#[test]
fn blocking_pops_time_out_with_nil() {
    let node = Proc::node(&[]);
    let mut raw = Raw::connect(node.port);
    let start = Instant::now();
    assert_eq!(raw.cmd(&["BLPOP", "a", "b", "0.3"]), b"*-1\r\n");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(
        raw.cmd(&["BLMOVE", "a", "b", "LEFT", "LEFT", "0.1"]),
        b"*-1\r\n"
    );
    assert_eq!(raw.cmd(&["BRPOPLPUSH", "a", "b", "0.1"]), b"*-1\r\n");
    // The connection is still usable afterwards.
    assert_eq!(raw.cmd(&["RPUSH", "a", "x"]), b":1\r\n");
    assert_eq!(
        raw.cmd(&["BRPOP", "a", "0.1"]),
        b"*2\r\n$1\r\na\r\n$1\r\nx\r\n"
    );
}

/// A blocked client keeps reading (to see a disconnect), so its buffer grows while it waits:
/// a command bigger than the one that blocked, sent meanwhile, runs after the timeout and the
/// connection lives on (an early build measured its turn by the buffer's length and panicked).
#[test]
fn commands_sent_while_blocked_run_after_the_block() {
    let node = Proc::node(&[]);
    let mut raw = common::Raw::connect(node.port);
    raw.send_cmd(&["BLPOP", "nolist", "0.3"]);
    std::thread::sleep(Duration::from_millis(100));
    let big = "v".repeat(20 * 1024);
    raw.send_cmd(&["SET", "after", big.as_str()]);
    raw.send_cmd(&["GET", "after"]);
    assert_eq!(raw.read(), common::Resp::NullArray);
    assert_eq!(raw.read(), common::Resp::Simple("OK".into()));
    assert_eq!(raw.read(), common::Resp::bulk(&big));
    assert_eq!(raw.cmd(&["PING"]), common::Resp::Simple("PONG".into()));
}

#[test]
fn blpop_inside_multi_does_not_block() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let start = Instant::now();
    let res: (Option<Vec<String>>, Option<String>, i64) = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("nokey")
        .arg(0)
        .cmd("BLMOVE")
        .arg("nokey")
        .arg("d")
        .arg("LEFT")
        .arg("LEFT")
        .arg(0)
        .cmd("RPUSH")
        .arg("later")
        .arg("v")
        .query(&mut c)
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(res, (None, None, 1));
}

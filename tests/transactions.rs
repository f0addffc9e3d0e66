//! MULTI / EXEC / DISCARD / WATCH as clients see them. Every scenario runs against `tandem
//! node` and against a real redis-server 7.0 with the same expectations, so the expectations
//! are Redis's behaviour, not our reading of it.

mod common;
use common::compare::on_both;
use common::{Proc, Raw, Resp};

fn ok() -> Resp {
    Resp::Simple("OK".into())
}
fn queued() -> Resp {
    Resp::Simple("QUEUED".into())
}

#[test]
fn multi_exec_runs_queued_commands_in_order() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(c.cmd(&["MULTI"]), ok(), "{who}");
        assert_eq!(c.cmd(&["SET", "a", "1"]), queued(), "{who}");
        assert_eq!(c.cmd(&["INCR", "a"]), queued(), "{who}");
        assert_eq!(c.cmd(&["GET", "a"]), queued(), "{who}");
        assert_eq!(c.cmd(&["PING"]), queued(), "{who}");
        assert_eq!(
            c.cmd(&["EXEC"]),
            Resp::Array(vec![
                ok(),
                Resp::Int(2),
                Resp::bulk("2"),
                Resp::Simple("PONG".into())
            ]),
            "{who}"
        );
        // An empty transaction.
        assert_eq!(c.cmd(&["MULTI"]), ok(), "{who}");
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![]), "{who}");
        // Pipelined in one write.
        c.send(b"MULTI\r\nSET b x\r\nGET b\r\nEXEC\r\n");
        assert_eq!(c.read(), ok(), "{who}");
        assert_eq!(c.read(), queued(), "{who}");
        assert_eq!(c.read(), queued(), "{who}");
        assert_eq!(c.read(), Resp::Array(vec![ok(), Resp::bulk("x")]), "{who}");
    });
}

#[test]
fn queued_commands_are_invisible_until_exec() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        let mut other = Raw::connect(p.port);
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "pending", "v"]), queued());
        assert_eq!(other.cmd(&["GET", "pending"]), Resp::NullBulk, "{who}");
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
        assert_eq!(other.cmd(&["GET", "pending"]), Resp::bulk("v"), "{who}");
    });
}

#[test]
fn discard_and_misplaced_commands() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "d", "x"]), queued());
        assert_eq!(c.cmd(&["DISCARD"]), ok(), "{who}");
        assert_eq!(c.cmd(&["GET", "d"]), Resp::NullBulk, "{who}");
        assert_eq!(
            c.cmd(&["DISCARD"]).err_text(),
            "ERR DISCARD without MULTI",
            "{who}"
        );
        assert_eq!(
            c.cmd(&["EXEC"]).err_text(),
            "ERR EXEC without MULTI",
            "{who}"
        );
        // Nested MULTI is an error but does not abort the transaction.
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(
            c.cmd(&["MULTI"]).err_text(),
            "ERR MULTI calls can not be nested",
            "{who}"
        );
        // WATCH inside MULTI: same.
        assert_eq!(
            c.cmd(&["WATCH", "x"]).err_text(),
            "ERR WATCH inside MULTI is not allowed",
            "{who}"
        );
        assert_eq!(c.cmd(&["PING"]), queued());
        assert_eq!(
            c.cmd(&["EXEC"]),
            Resp::Array(vec![Resp::Simple("PONG".into())]),
            "{who}"
        );
    });
}

#[test]
fn queueing_errors_abort_exec() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        // Unknown command.
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "never", "1"]), queued());
        assert_eq!(
            c.cmd(&["NOSUCHCMD", "x"]).err_text(),
            "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ",
            "{who}"
        );
        assert_eq!(
            c.cmd(&["EXEC"]).err_text(),
            "EXECABORT Transaction discarded because of previous errors.",
            "{who}"
        );
        assert_eq!(c.cmd(&["GET", "never"]), Resp::NullBulk, "{who}");
        // Wrong arity.
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "never", "1"]), queued());
        assert_eq!(
            c.cmd(&["GET"]).err_text(),
            "ERR wrong number of arguments for 'get' command",
            "{who}"
        );
        assert_eq!(
            c.cmd(&["EXEC"]).err_text(),
            "EXECABORT Transaction discarded because of previous errors.",
            "{who}"
        );
        assert_eq!(c.cmd(&["GET", "never"]), Resp::NullBulk, "{who}");
        // The connection is out of MULTI afterwards.
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()), "{who}");
    });
}

#[test]
fn runtime_errors_do_not_abort_the_other_commands() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(c.cmd(&["SET", "s", "not a number"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "before", "1"]), queued());
        assert_eq!(c.cmd(&["INCR", "s"]), queued());
        assert_eq!(c.cmd(&["LPUSH", "s", "x"]), queued());
        assert_eq!(c.cmd(&["SET", "after", "2"]), queued());
        let r = c.cmd(&["EXEC"]);
        let Resp::Array(items) = r else {
            panic!("{who}: EXEC replied {r:?}")
        };
        assert_eq!(items.len(), 4, "{who}");
        assert_eq!(items[0], ok(), "{who}");
        assert_eq!(
            items[1].err_text(),
            "ERR value is not an integer or out of range",
            "{who}"
        );
        assert_eq!(
            items[2].err_text(),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "{who}"
        );
        assert_eq!(items[3], ok(), "{who}");
        assert_eq!(c.cmd(&["GET", "before"]), Resp::bulk("1"), "{who}");
        assert_eq!(c.cmd(&["GET", "after"]), Resp::bulk("2"), "{who}");
    });
}

#[test]
fn watch_aborts_exec_when_another_client_modifies_the_key() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        let mut other = Raw::connect(p.port);
        assert_eq!(c.cmd(&["SET", "w", "1"]), ok());
        assert_eq!(c.cmd(&["WATCH", "w"]), ok());
        assert_eq!(other.cmd(&["SET", "w", "2"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "w", "3"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::NullArray, "{who}: RESP2 *-1");
        assert_eq!(c.cmd(&["GET", "w"]), Resp::bulk("2"), "{who}");
        // EXEC unwatched everything: the next transaction runs.
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["SET", "w", "4"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]), "{who}");

        // A key that did not exist, created by another client.
        assert_eq!(c.cmd(&["WATCH", "fresh"]), ok());
        assert_eq!(other.cmd(&["SET", "fresh", "x"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["PING"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::NullArray, "{who}");

        // A deletion counts as a modification.
        assert_eq!(c.cmd(&["WATCH", "fresh"]), ok());
        assert_eq!(other.cmd(&["DEL", "fresh"]), Resp::Int(1));
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["PING"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::NullArray, "{who}");

        // So does the watching client's own write before MULTI.
        assert_eq!(c.cmd(&["WATCH", "w"]), ok());
        assert_eq!(c.cmd(&["SET", "w", "mine"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["PING"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::NullArray, "{who}");

        // RESP3: the aborted EXEC is a null.
        assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
        assert_eq!(c.cmd(&["WATCH", "w"]), ok());
        assert_eq!(other.cmd(&["SET", "w", "5"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["PING"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::Null, "{who}: RESP3 _");
    });
}

#[test]
fn watch_untouched_unwatch_and_discard() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        let mut other = Raw::connect(p.port);
        assert_eq!(c.cmd(&["SET", "u", "1"]), ok());
        // Untouched (reads and writes to other keys do not count).
        assert_eq!(c.cmd(&["WATCH", "u", "v"]), ok());
        assert_eq!(other.cmd(&["GET", "u"]), Resp::bulk("1"));
        assert_eq!(other.cmd(&["SET", "unrelated", "1"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["INCR", "u"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(2)]), "{who}");
        // Same key name in another database does not count.
        assert_eq!(c.cmd(&["WATCH", "u"]), ok());
        assert_eq!(other.cmd(&["SELECT", "1"]), ok());
        assert_eq!(other.cmd(&["SET", "u", "db1"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["INCR", "u"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(3)]), "{who}");
        assert_eq!(other.cmd(&["SELECT", "0"]), ok());
        // UNWATCH forgets the watch.
        assert_eq!(c.cmd(&["WATCH", "u"]), ok());
        assert_eq!(other.cmd(&["SET", "u", "10"]), ok());
        assert_eq!(c.cmd(&["UNWATCH"]), ok(), "{who}");
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["INCR", "u"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(11)]), "{who}");
        // DISCARD unwatches too.
        assert_eq!(c.cmd(&["WATCH", "u"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["DISCARD"]), ok());
        assert_eq!(other.cmd(&["SET", "u", "20"]), ok());
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["INCR", "u"]), queued());
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(21)]), "{who}");
    });
}

#[test]
fn flushall_and_flushdb_touch_watched_keys() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        let mut other = Raw::connect(p.port);
        for flush in ["FLUSHALL", "FLUSHDB"] {
            assert_eq!(c.cmd(&["SET", "f", "1"]), ok());
            assert_eq!(c.cmd(&["WATCH", "f"]), ok());
            assert_eq!(other.cmd(&[flush]), ok(), "{who} {flush}");
            assert_eq!(c.cmd(&["MULTI"]), ok());
            assert_eq!(c.cmd(&["SET", "f", "2"]), queued());
            assert_eq!(c.cmd(&["EXEC"]), Resp::NullArray, "{who} {flush}");
            assert_eq!(c.cmd(&["GET", "f"]), Resp::NullBulk, "{who} {flush}");
        }
    });
}

#[test]
fn transactions_through_redis_rs() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let (a, b): (i64, String) = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg("counter")
        .arg(5)
        .cmd("ECHO")
        .arg("in tx")
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b.as_str()), (5, "in tx"));
    // The optimistic-locking loop of redis::transaction.
    let mut other = node.conn();
    let mut attempts = 0;
    let v: (i64,) = redis::transaction(&mut c, &["counter"], |conn, pipe| {
        attempts += 1;
        let cur: i64 = redis::cmd("GET").arg("counter").query(conn)?;
        if attempts == 1 {
            // Someone else changes the key between WATCH and EXEC: the first try fails.
            redis::cmd("SET")
                .arg("counter")
                .arg(100)
                .exec(&mut other)
                .unwrap();
        }
        pipe.cmd("SET")
            .arg("counter")
            .arg(cur + 1)
            .ignore()
            .cmd("GET")
            .arg("counter")
            .query(conn)
    })
    .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(v, (101,));
}

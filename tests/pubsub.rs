//! Pub/Sub as clients see it: (P)(UN)SUBSCRIBE replies, PUBLISH receiver counts, message and
//! pmessage delivery in RESP2 and RESP3, PUBSUB introspection, the RESP2 subscribed-mode
//! restriction, and a slow subscriber being cut off instead of growing the server's memory.
//! Scenarios that must match Redis byte for byte also run against a real redis-server 7.0.

mod common;
use common::compare::on_both;
use common::{eventually, Proc, Raw, Resp};
use std::time::Duration;

fn push3(kind: &str, name: &str, n: i64) -> Resp {
    Resp::Array(vec![Resp::bulk(kind), Resp::bulk(name), Resp::Int(n)])
}

#[test]
fn subscribe_and_unsubscribe_replies() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        c.send_cmd(&["SUBSCRIBE", "a", "b"]);
        assert_eq!(c.read(), push3("subscribe", "a", 1), "{who}");
        assert_eq!(c.read(), push3("subscribe", "b", 2), "{who}");
        // Subscribing twice does not count twice.
        assert_eq!(
            c.cmd(&["SUBSCRIBE", "a"]),
            push3("subscribe", "a", 2),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["PSUBSCRIBE", "news.*"]),
            push3("psubscribe", "news.*", 3),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["UNSUBSCRIBE", "a"]),
            push3("unsubscribe", "a", 2),
            "{who}"
        );
        // Unsubscribing from something never subscribed still answers, count unchanged.
        assert_eq!(
            c.cmd(&["UNSUBSCRIBE", "zzz"]),
            push3("unsubscribe", "zzz", 2),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["PUNSUBSCRIBE"]),
            push3("punsubscribe", "news.*", 1),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["UNSUBSCRIBE"]),
            push3("unsubscribe", "b", 0),
            "{who}"
        );
        // With nothing left: one reply with a nil name.
        assert_eq!(
            c.cmd(&["UNSUBSCRIBE"]),
            Resp::Array(vec![
                Resp::bulk("unsubscribe"),
                Resp::NullBulk,
                Resp::Int(0)
            ]),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["PUNSUBSCRIBE"]),
            Resp::Array(vec![
                Resp::bulk("punsubscribe"),
                Resp::NullBulk,
                Resp::Int(0)
            ]),
            "{who}"
        );
        // Out of subscribed mode: ordinary commands work again.
        assert_eq!(c.cmd(&["ECHO", "back"]), Resp::bulk("back"), "{who}");
        // Unsubscribing with several channels subscribed answers once per channel.
        c.send_cmd(&["SUBSCRIBE", "x", "y", "z"]);
        for _ in 0..3 {
            c.read();
        }
        c.send_cmd(&["UNSUBSCRIBE"]);
        let mut names: Vec<String> = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..3 {
            match c.read() {
                Resp::Array(v) if v.len() == 3 => {
                    assert_eq!(v[0], Resp::bulk("unsubscribe"), "{who}");
                    names.push(v[1].text());
                    counts.push(v[2].clone());
                }
                other => panic!("{who}: {other:?}"),
            }
        }
        names.sort();
        assert_eq!(names, ["x", "y", "z"], "{who}");
        assert_eq!(counts, [Resp::Int(2), Resp::Int(1), Resp::Int(0)], "{who}");
    });
}

#[test]
fn publish_counts_and_delivers_messages() {
    on_both(|who, p| {
        let mut s1 = Raw::connect(p.port);
        let mut s2 = Raw::connect(p.port);
        let mut ps = Raw::connect(p.port);
        let mut publisher = Raw::connect(p.port);
        assert_eq!(
            s1.cmd(&["SUBSCRIBE", "chan"]),
            push3("subscribe", "chan", 1)
        );
        assert_eq!(
            s2.cmd(&["SUBSCRIBE", "chan"]),
            push3("subscribe", "chan", 1)
        );
        assert_eq!(
            ps.cmd(&["PSUBSCRIBE", "ch*"]),
            push3("psubscribe", "ch*", 1)
        );
        // s2 also matches through a pattern: it receives the message twice.
        assert_eq!(
            s2.cmd(&["PSUBSCRIBE", "c?an"]),
            push3("psubscribe", "c?an", 2)
        );

        assert_eq!(
            publisher.cmd(&["PUBLISH", "chan", "hello"]),
            Resp::Int(4),
            "{who}"
        );
        let message = Resp::bulks(&["message", "chan", "hello"]);
        assert_eq!(s1.read(), message, "{who}");
        assert_eq!(s2.read(), message, "{who}");
        assert_eq!(
            s2.read(),
            Resp::bulks(&["pmessage", "c?an", "chan", "hello"]),
            "{who}"
        );
        assert_eq!(
            ps.read(),
            Resp::bulks(&["pmessage", "ch*", "chan", "hello"]),
            "{who}"
        );
        // Only the pattern matches.
        assert_eq!(
            publisher.cmd(&["PUBLISH", "chatter", "x"]),
            Resp::Int(1),
            "{who}"
        );
        assert_eq!(
            ps.read(),
            Resp::bulks(&["pmessage", "ch*", "chatter", "x"]),
            "{who}"
        );
        // Nobody listens.
        assert_eq!(
            publisher.cmd(&["PUBLISH", "nobody", "x"]),
            Resp::Int(0),
            "{who}"
        );
        // Binary payloads arrive intact, in publish order.
        let payload: Vec<u8> = (0..=255u8).collect();
        for i in 0..100 {
            let mut msg = payload.clone();
            msg.extend_from_slice(format!("#{i}").as_bytes());
            publisher.cmd(&[b"PUBLISH".as_slice(), b"chan", &msg]);
        }
        for i in 0..100 {
            let mut msg = payload.clone();
            msg.extend_from_slice(format!("#{i}").as_bytes());
            assert_eq!(
                s1.read(),
                Resp::Array(vec![
                    Resp::bulk("message"),
                    Resp::bulk("chan"),
                    Resp::Bulk(msg)
                ]),
                "{who}"
            );
        }
        // A subscriber that disconnects stops counting.
        drop(s1);
        assert!(
            eventually(Duration::from_secs(5), || {
                publisher.cmd(&["PUBSUB", "NUMSUB", "chan"])
                    == Resp::Array(vec![Resp::bulk("chan"), Resp::Int(1)])
            }),
            "{who}: a closed subscriber is still counted"
        );
    });
}

#[test]
fn pubsub_introspection() {
    on_both(|who, p| {
        let mut a = Raw::connect(p.port);
        let mut b = Raw::connect(p.port);
        let mut q = Raw::connect(p.port);
        assert_eq!(q.cmd(&["PUBSUB", "CHANNELS"]), Resp::Array(vec![]), "{who}");
        assert_eq!(q.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(0), "{who}");
        a.send_cmd(&["SUBSCRIBE", "news.tech", "news.art", "sport"]);
        for _ in 0..3 {
            a.read();
        }
        b.send_cmd(&["SUBSCRIBE", "news.tech"]);
        b.read();
        b.send_cmd(&["PSUBSCRIBE", "news.*", "x*"]);
        b.read();
        b.read();
        a.send_cmd(&["PSUBSCRIBE", "news.*"]);
        a.read();

        let sorted = |r: Resp| -> Vec<String> {
            let Resp::Array(items) = r else {
                panic!("{who}: {r:?}")
            };
            let mut v: Vec<String> = items.iter().map(Resp::text).collect();
            v.sort();
            v
        };
        assert_eq!(
            sorted(q.cmd(&["PUBSUB", "CHANNELS"])),
            ["news.art", "news.tech", "sport"],
            "{who}"
        );
        assert_eq!(
            sorted(q.cmd(&["PUBSUB", "CHANNELS", "news.*"])),
            ["news.art", "news.tech"],
            "{who}"
        );
        assert_eq!(
            q.cmd(&["PUBSUB", "NUMSUB", "news.tech", "sport", "none"]),
            Resp::Array(vec![
                Resp::bulk("news.tech"),
                Resp::Int(2),
                Resp::bulk("sport"),
                Resp::Int(1),
                Resp::bulk("none"),
                Resp::Int(0),
            ]),
            "{who}"
        );
        assert_eq!(q.cmd(&["PUBSUB", "NUMSUB"]), Resp::Array(vec![]), "{who}");
        // Redis 7.0 counts distinct patterns.
        assert_eq!(q.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(2), "{who}");
        assert_eq!(
            q.cmd(&["PUBSUB", "NOPE"]).err_text(),
            "ERR unknown subcommand 'NOPE'. Try PUBSUB HELP.",
            "{who}"
        );
        // Channels disappear when their last subscriber leaves.
        drop(a);
        assert!(
            eventually(Duration::from_secs(5), || {
                sorted(q.cmd(&["PUBSUB", "CHANNELS"])) == ["news.tech"]
            }),
            "{who}"
        );
        assert_eq!(q.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(2), "{who}");
    });
}

#[test]
fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(c.cmd(&["SUBSCRIBE", "a"]), push3("subscribe", "a", 1));
        assert_eq!(
            c.cmd(&["GET", "x"]).err_text(),
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            "{who}"
        );
        assert_eq!(
            c.cmd(&["PUBLISH", "a", "x"]).err_text(),
            "ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            "{who}"
        );
        // PING in subscribed mode answers as a pub/sub message would.
        assert_eq!(c.cmd(&["PING"]), Resp::bulks(&["pong", ""]), "{who}");
        assert_eq!(
            c.cmd(&["PING", "hi"]),
            Resp::bulks(&["pong", "hi"]),
            "{who}"
        );
        // RESET leaves subscribed mode.
        assert_eq!(c.cmd(&["RESET"]), Resp::Simple("RESET".into()), "{who}");
        assert_eq!(c.cmd(&["ECHO", "free"]), Resp::bulk("free"), "{who}");
        let mut q = Raw::connect(p.port);
        assert_eq!(q.cmd(&["PUBLISH", "a", "x"]), Resp::Int(0), "{who}");
        // QUIT is allowed too.
        assert_eq!(c.cmd(&["PSUBSCRIBE", "p"]), push3("psubscribe", "p", 1));
        assert_eq!(c.cmd(&["QUIT"]), Resp::Simple("OK".into()), "{who}");
        assert!(c.closed_within(Duration::from_secs(5)), "{who}");
    });
}

#[test]
fn resp3_push_delivery() {
    on_both(|who, p| {
        let mut c = Raw::connect(p.port);
        assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
        let push = |items: Vec<Resp>| Resp::Push(items);
        assert_eq!(
            c.cmd(&["SUBSCRIBE", "r3"]),
            push(vec![
                Resp::bulk("subscribe"),
                Resp::bulk("r3"),
                Resp::Int(1)
            ]),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["PSUBSCRIBE", "r*"]),
            push(vec![
                Resp::bulk("psubscribe"),
                Resp::bulk("r*"),
                Resp::Int(2)
            ]),
            "{who}"
        );
        // In RESP3 any command may run while subscribed.
        assert_eq!(
            c.cmd(&["SET", "k", "v"]),
            Resp::Simple("OK".into()),
            "{who}"
        );
        assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"), "{who}");
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()), "{who}");
        let mut publisher = Raw::connect(p.port);
        assert_eq!(
            publisher.cmd(&["PUBLISH", "r3", "m"]),
            Resp::Int(2),
            "{who}"
        );
        let mut got = vec![c.read(), c.read()];
        got.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(
            got,
            vec![
                push(vec![
                    Resp::bulk("message"),
                    Resp::bulk("r3"),
                    Resp::bulk("m")
                ]),
                push(vec![
                    Resp::bulk("pmessage"),
                    Resp::bulk("r*"),
                    Resp::bulk("r3"),
                    Resp::bulk("m")
                ]),
            ],
            "{who}"
        );
        // A command's reply and a message can interleave; both arrive whole.
        assert_eq!(publisher.cmd(&["PUBLISH", "rx", "n"]), Resp::Int(1));
        assert_eq!(
            c.read(),
            push(vec![
                Resp::bulk("pmessage"),
                Resp::bulk("r*"),
                Resp::bulk("rx"),
                Resp::bulk("n")
            ]),
            "{who}"
        );
        assert_eq!(c.cmd(&["ECHO", "after"]), Resp::bulk("after"), "{who}");
        assert_eq!(
            c.cmd(&["PUNSUBSCRIBE", "r*"]),
            push(vec![
                Resp::bulk("punsubscribe"),
                Resp::bulk("r*"),
                Resp::Int(1)
            ]),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["UNSUBSCRIBE"]),
            push(vec![
                Resp::bulk("unsubscribe"),
                Resp::bulk("r3"),
                Resp::Int(0)
            ]),
            "{who}"
        );
        assert_eq!(
            c.cmd(&["UNSUBSCRIBE"]),
            push(vec![Resp::bulk("unsubscribe"), Resp::Null, Resp::Int(0)]),
            "{who}"
        );
    });
}

#[test]
fn redis_rs_pubsub_client() {
    let node = Proc::node(&[]);
    let mut sub_conn = node.conn();
    let mut publisher = node.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("rs-chan").unwrap();
    sub.psubscribe("rs-*").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("rs-chan")
        .arg("payload")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 2);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let msg = sub.get_message().unwrap();
        let payload: String = msg.get_payload().unwrap();
        let pattern: Option<String> = msg.get_pattern().ok();
        seen.push((msg.get_channel_name().to_string(), payload, pattern));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("rs-chan".to_string(), "payload".to_string(), None),
            (
                "rs-chan".to_string(),
                "payload".to_string(),
                Some("rs-*".to_string())
            ),
        ]
    );
    sub.unsubscribe("rs-chan").unwrap();
    sub.punsubscribe("rs-*").unwrap();
}

/// VmRSS of a process in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[test]
fn slow_subscriber_is_disconnected_and_memory_stays_bounded() {
    let node = Proc::node(&[]);
    let pid = node.child.as_ref().map(|c| c.id()).expect("pid");
    let mut slow = Raw::connect(node.port);
    assert_eq!(
        slow.cmd(&["SUBSCRIBE", "firehose"]),
        push3("subscribe", "firehose", 1)
    );
    // A healthy subscriber on another channel must not be affected.
    let mut healthy = Raw::connect(node.port);
    assert_eq!(
        healthy.cmd(&["SUBSCRIBE", "calm"]),
        push3("subscribe", "calm", 1)
    );
    let rss_before = rss(pid);

    // Publish 64 KB messages until the slow reader is cut off (PUBLISH returns 0), up to
    // 4 GB worth, which would be the server's memory if nothing bounded the queue.
    let mut publisher = Raw::connect(node.port);
    let payload = vec![b'x'; 64 * 1024];
    let mut batch = Vec::new();
    for _ in 0..64 {
        batch.extend_from_slice(&common::encode_cmd(&[
            b"PUBLISH".as_slice(),
            b"firehose",
            &payload,
        ]));
    }
    let mut published = 0u64;
    let mut max_rss = 0;
    let mut cut_off = false;
    while published < 64 * 1024 {
        publisher.send(&batch);
        let mut zero = false;
        for _ in 0..64 {
            match publisher.read() {
                Resp::Int(0) => zero = true,
                Resp::Int(1) => {}
                other => panic!("PUBLISH replied {other:?}"),
            }
        }
        published += 64;
        max_rss = max_rss.max(rss(pid));
        if zero {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "the slow subscriber still counted as a receiver after {published} messages of 64 KB"
    );
    eprintln!(
        "slow subscriber cut off after {published} messages ({} MB); node RSS {} MB -> max {} MB",
        (published * payload.len() as u64) >> 20,
        rss_before >> 20,
        max_rss >> 20
    );
    // The server closes the slow connection and forgets the subscription.
    assert!(
        eventually(Duration::from_secs(10), || {
            publisher.cmd(&["PUBSUB", "NUMSUB", "firehose"])
                == Resp::Array(vec![Resp::bulk("firehose"), Resp::Int(0)])
        }),
        "the slow subscriber is still subscribed"
    );
    assert!(
        slow.closed_within(Duration::from_secs(30)),
        "the slow subscriber's connection was not closed"
    );
    // Memory: whatever was queued is bounded (well under what was published).
    let published_bytes = published * payload.len() as u64;
    let growth = max_rss.saturating_sub(rss_before);
    assert!(
        growth < 160 << 20,
        "RSS grew by {} MB while publishing {} MB to a subscriber that never reads",
        growth >> 20,
        published_bytes >> 20
    );
    // Everyone else is fine.
    assert_eq!(
        publisher.cmd(&["PUBLISH", "calm", "still here"]),
        Resp::Int(1)
    );
    assert_eq!(
        healthy.read(),
        Resp::bulks(&["message", "calm", "still here"])
    );
    common::assert_alive(node.port);
}

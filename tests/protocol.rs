//! The wire protocol as clients see it: malformed input gets Redis's exact protocol error and
//! closes only that connection (the server keeps serving everyone else and keeps its data),
//! inline commands, pipelining, RESP3 via HELLO 3, and Redis's error texts for arity and
//! unknown commands. Where the bytes must match redis-server 7.0 exactly, the same input is
//! also sent to a real redis-server and the two answers are compared.

mod common;
use common::{assert_alive, encode_cmd, Proc, Raw, Resp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `input` on a fresh connection and collects everything the server writes until it
/// closes the connection (`<EOF>` is appended) or stays silent for `idle`.
fn exchange(port: u16, input: &[u8], idle: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(idle)).unwrap();
    // The server may close before reading everything: a failed write is part of the answer.
    let _ = s.write_all(input);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                out.extend_from_slice(b"<EOF>");
                break;
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                out.extend_from_slice(b"<EOF>");
                break;
            }
            Err(_) => break,
        }
        if Instant::now() > deadline {
            break;
        }
    }
    out
}

/// Whether a new connection gets PONG within `wait`.
fn pong_within(port: u16, wait: Duration) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, wait) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(wait));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes a marker key, runs `f`, then checks from a new client that the server answers
/// PING and the marker is still there.
fn survives(node: &Proc, what: &str, f: impl FnOnce()) {
    let mut c = Raw::connect(node.port);
    let key = format!("marker:{what}");
    assert_eq!(c.cmd(&["SET", &key, "kept"]), Resp::Simple("OK".into()));
    f();
    let mut after = Raw::connect(node.port);
    assert_eq!(
        after.cmd(&["PING"]),
        Resp::Simple("PONG".into()),
        "after {what}"
    );
    assert_eq!(
        after.cmd(&["GET", &key]),
        Resp::bulk("kept"),
        "after {what}"
    );
    // The old connection was not disturbed either.
    assert_eq!(c.cmd(&["GET", &key]), Resp::bulk("kept"), "after {what}");
}

#[test]
fn protocol_errors_reply_and_close_only_that_connection() {
    let node = Proc::node(&[]);
    let idle = Duration::from_millis(500);
    let cases: &[(&str, Vec<u8>, &str)] = &[
        (
            "huge bulk length",
            b"*1\r\n$999999999999\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length\r\n<EOF>",
        ),
        (
            "multibulk over 1M",
            b"*2000000\r\n".to_vec(),
            "-ERR Protocol error: invalid multibulk length\r\n<EOF>",
        ),
        (
            "non-bulk element",
            b"*1\r\n:1\r\n".to_vec(),
            "-ERR Protocol error: expected '$', got ':'\r\n<EOF>",
        ),
        (
            "non-numeric multibulk length",
            b"*x\r\n".to_vec(),
            "-ERR Protocol error: invalid multibulk length\r\n<EOF>",
        ),
        (
            "non-numeric bulk length",
            b"*1\r\n$x\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length\r\n<EOF>",
        ),
        (
            "negative bulk length",
            b"*1\r\n$-1\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length\r\n<EOF>",
        ),
        (
            "unbalanced quotes inline",
            b"ECHO \"a b\r\n".to_vec(),
            "-ERR Protocol error: unbalanced quotes in request\r\n<EOF>",
        ),
        (
            "inline longer than 64KB",
            vec![b'x'; 70 * 1024],
            "-ERR Protocol error: too big inline request\r\n<EOF>",
        ),
        (
            "replies before the error are kept",
            b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n:1\r\nPING\r\n".to_vec(),
            "+PONG\r\n+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n<EOF>",
        ),
    ];
    for (what, input, expected) in cases {
        survives(&node, what, || {
            let got = exchange(node.port, input, idle);
            assert_eq!(show(&got), *expected, "{what}");
        });
    }
}

#[test]
fn random_bytes_never_hurt_the_server() {
    let mut node = Proc::node(&[]);
    let mut rng = fastrand::Rng::with_seed(0x7a4d3e);
    let valid = [
        encode_cmd(&["SET", "fuzz", "value"]),
        encode_cmd(&["ECHO", "hello world"]),
        encode_cmd(&["PING"]),
        b"ECHO \"a\\x41 b\" 'c d'\r\n".to_vec(),
    ]
    .concat();
    survives(&node, "random bytes", || {
        for round in 0..300 {
            let input: Vec<u8> = match round % 3 {
                // Pure noise, sometimes forced to look like a multibulk or bulk header.
                0 => {
                    let mut v: Vec<u8> = (0..rng.usize(1..2048)).map(|_| rng.u8(..)).collect();
                    if rng.bool() {
                        v[0] = b'*';
                    }
                    v
                }
                // A valid pipeline with a few bytes flipped.
                1 => {
                    let mut v = valid.clone();
                    for _ in 0..rng.usize(1..6) {
                        let i = rng.usize(..v.len());
                        v[i] = rng.u8(..);
                    }
                    v
                }
                // A valid pipeline with random RESP punctuation spliced in.
                _ => {
                    let mut v = valid.clone();
                    let junk = [
                        b"\r\n".as_slice(),
                        b"*",
                        b"$",
                        b"-1",
                        b"99999999",
                        b"\"",
                        b"\0",
                    ];
                    for _ in 0..rng.usize(1..4) {
                        let i = rng.usize(..v.len());
                        let j = junk[rng.usize(..junk.len())];
                        v.splice(i..i, j.iter().copied());
                    }
                    v
                }
            };
            exchange(node.port, &input, Duration::from_millis(5));
            if !node.is_running() || !pong_within(node.port, Duration::from_secs(5)) {
                panic!(
                    "the node stopped answering after input \"{}\"; log:\n{}",
                    input.escape_ascii(),
                    std::fs::read_to_string(&node.log).unwrap_or_default()
                );
            }
        }
    });
    assert!(node.alive(), "the node process died");
}

#[test]
fn truncated_frames_leave_the_server_serving() {
    let node = Proc::node(&[]);
    let frame = [
        encode_cmd(&["SET", "k", "some value"]),
        encode_cmd(&["ECHO", "x"]),
    ]
    .concat();
    survives(&node, "truncated frames", || {
        for cut in 1..frame.len() {
            let mut s = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
            s.write_all(&frame[..cut]).unwrap();
            // Dropped without finishing the frame.
        }
    });
}

#[test]
fn a_client_that_never_finishes_a_frame_does_not_block_others() {
    let node = Proc::node(&[]);
    let mut stalled = Raw::connect(node.port);
    // Announce a 100000-byte argument and send 10 bytes of it.
    stalled.send(b"*2\r\n$4\r\nECHO\r\n$100000\r\n0123456789");
    let mut stalled_inline = Raw::connect(node.port);
    stalled_inline.send(b"ECHO never-ending-");
    survives(&node, "stalled clients", || {
        let mut others: Vec<Raw> = (0..5).map(|_| Raw::connect(node.port)).collect();
        for i in 0..50 {
            for (j, c) in others.iter_mut().enumerate() {
                let msg = format!("{i}-{j}");
                assert_eq!(c.cmd(&["ECHO", &msg]), Resp::bulk(&msg));
            }
        }
    });
    // Finishing the frames later still works.
    let rest = vec![b'a'; 100000 - 10];
    stalled.send(&rest);
    stalled.send(b"\r\n");
    let mut expected = b"0123456789".to_vec();
    expected.extend_from_slice(&rest);
    assert_eq!(stalled.read(), Resp::Bulk(expected));
    stalled_inline.send(b"inline\r\n");
    assert_eq!(stalled_inline.read(), Resp::bulk("never-ending-inline"));
}

#[test]
fn fragmented_and_large_frames() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    // One byte per write.
    for b in encode_cmd(&["ECHO", "byte by byte"]) {
        c.send(&[b]);
    }
    assert_eq!(c.read(), Resp::bulk("byte by byte"));
    // A 4 MB argument, written in one go.
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    c.send_cmd(&[b"ECHO".as_slice(), &big]);
    assert_eq!(c.read(), Resp::Bulk(big.clone()));
    // Binary-safe: every byte value, including CR LF and NUL.
    let all: Vec<u8> = (0..=255u8).collect();
    assert_eq!(
        c.cmd(&[b"SET".as_slice(), b"bin", &all]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["GET", "bin"]), Resp::Bulk(all));
}

#[test]
fn inline_commands() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    c.send(b"PING\r\n");
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    c.send(b"ECHO \"a b\"\r\n");
    assert_eq!(c.read(), Resp::bulk("a b"));
    // Bare \n, blank lines, and sdssplitargs escapes.
    c.send(b"\r\n\nECHO \"\\x41\\n\\t\\\"\"\n");
    assert_eq!(c.read(), Resp::bulk("A\n\t\""));
    c.send(b"ECHO 'it\\'s'\r\n");
    assert_eq!(c.read(), Resp::bulk("it's"));
    // A NUL ends the inline line (it once made the splitter loop forever).
    c.send(b"ECHO nul\0ignored \"\r\n");
    assert_eq!(c.read(), Resp::bulk("nul"));
    c.send(b"   ping    \r\n");
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    // Inline and multibulk mixed in one write.
    let mut mixed = b"ECHO one\r\n".to_vec();
    mixed.extend_from_slice(&encode_cmd(&["ECHO", "two"]));
    mixed.extend_from_slice(b"ECHO three\r\n");
    c.send(&mixed);
    assert_eq!(c.read(), Resp::bulk("one"));
    assert_eq!(c.read(), Resp::bulk("two"));
    assert_eq!(c.read(), Resp::bulk("three"));
    c.send(b"SET inline \"v w\"\r\nGET inline\r\n");
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.read(), Resp::bulk("v w"));
}

#[test]
fn pipelining_1000_commands_in_one_write() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(&encode_cmd(&["ECHO", &format!("msg-{i}")]));
    }
    c.send(&batch);
    for i in 0..1000 {
        assert_eq!(c.read(), Resp::bulk(&format!("msg-{i}")));
    }
    // Writes and reads interleaved: each GET sees the SET just before it.
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(&encode_cmd(&[
            "SET",
            &format!("k{}", i % 10),
            &i.to_string(),
        ]));
        batch.extend_from_slice(&encode_cmd(&["GET", &format!("k{}", i % 10)]));
    }
    c.send(&batch);
    for i in 0..1000 {
        assert_eq!(c.read(), Resp::Simple("OK".into()));
        assert_eq!(c.read(), Resp::bulk(&i.to_string()));
    }
    // The same through redis-rs pipelines.
    let mut conn = node.conn();
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("ECHO").arg(i);
    }
    let got: Vec<String> = p.query(&mut conn).unwrap();
    let want: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
}

fn hello_fields(r: &Resp) -> Vec<(String, Resp)> {
    match r {
        Resp::Map(pairs) => pairs.iter().map(|(k, v)| (k.text(), v.clone())).collect(),
        Resp::Array(items) => items
            .chunks(2)
            .map(|kv| (kv[0].text(), kv[1].clone()))
            .collect(),
        other => panic!("HELLO replied {other:?}"),
    }
}

#[test]
fn resp3_via_hello() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    // RESP2 first: nil bulk, and HELLO 2 as a flat array.
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::NullBulk);
    let h2 = c.cmd(&["HELLO", "2"]);
    assert!(matches!(&h2, Resp::Array(a) if a.len() == 14), "{h2:?}");
    let h3 = c.cmd(&["HELLO", "3"]);
    assert!(
        matches!(h3, Resp::Map(_)),
        "HELLO 3 must reply a map: {h3:?}"
    );
    let fields = hello_fields(&h3);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["server", "version", "proto", "id", "mode", "role", "modules"]
    );
    assert_eq!(fields[0].1, Resp::bulk("redis"));
    assert!(fields[1].1.text().starts_with("7."), "{:?}", fields[1].1);
    assert_eq!(fields[2].1, Resp::Int(3));
    assert!(matches!(fields[3].1, Resp::Int(id) if id > 0));
    assert_eq!(fields[4].1, Resp::bulk("standalone"));
    assert_eq!(fields[5].1, Resp::bulk("master"));
    assert_eq!(fields[6].1, Resp::Array(vec![]));
    // RESP3 null.
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::Null);
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // Unsupported versions and bad arguments.
    assert_eq!(
        c.cmd(&["HELLO", "4"]).err_text(),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        c.cmd(&["HELLO", "x"]).err_text(),
        "ERR Protocol version is not an integer or out of range"
    );
    // SETNAME through HELLO.
    assert!(matches!(
        c.cmd(&["HELLO", "3", "SETNAME", "tester"]),
        Resp::Map(_)
    ));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::bulk("tester"));

    // Pub/sub in RESP3: replies and messages are push frames, and ordinary commands keep
    // working on the subscribed connection.
    assert_eq!(
        c.cmd(&["SUBSCRIBE", "news"]),
        Resp::Push(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("news"),
            Resp::Int(1)
        ])
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::Null);
    let mut publisher = Raw::connect(node.port);
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "hello"]), Resp::Int(1));
    assert_eq!(
        c.read(),
        Resp::Push(vec![
            Resp::bulk("message"),
            Resp::bulk("news"),
            Resp::bulk("hello")
        ])
    );
    assert_eq!(
        c.cmd(&["UNSUBSCRIBE"]),
        Resp::Push(vec![
            Resp::bulk("unsubscribe"),
            Resp::bulk("news"),
            Resp::Int(0)
        ])
    );
    // Back to RESP2.
    assert!(matches!(c.cmd(&["HELLO", "2"]), Resp::Array(_)));
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::NullBulk);
}

#[test]
fn error_texts() {
    let node = Proc::node(&[]);
    let mut c = Raw::connect(node.port);
    assert_eq!(
        c.cmd(&["GET"]).err_text(),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        c.cmd(&["get", "a", "b"]).err_text(),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        c.cmd(&["ECHO"]).err_text(),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        c.cmd(&["NOSUCH", "a", "b"]).err_text(),
        "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        c.cmd(&["nosuch"]).err_text(),
        "ERR unknown command 'nosuch', with args beginning with: "
    );
    // The connection stays usable after errors.
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // Through redis-rs too.
    let mut conn = node.conn();
    let err = redis::cmd("GET").query::<String>(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
}

/// The same bytes in, the same bytes out as redis-server 7.0 (HELLO's client id aside).
#[test]
fn same_replies_as_redis_server() {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    let inputs: &[&[u8]] = &[
        b"*1\r\n$999999999999\r\n",
        b"*1\r\n:1\r\n",
        b"*x\r\n",
        b"*1\r\n$-1\r\n",
        b"ECHO \"a b\r\n",
        b"ECHO \"a b\"\r\nPING\r\nPING hello\r\n",
        b"*1\r\n$4\r\nPING\r\n*-1\r\n*0\r\nPING\r\n\r\nPING\r\n",
        b"GET\r\nfoo a b\r\nfoo\r\n",
        b"HELLO 3\r\nGET nokey\r\nSUBSCRIBE a\r\nPING\r\nGET x\r\nUNSUBSCRIBE\r\nUNSUBSCRIBE\r\n",
        b"SUBSCRIBE a\r\nGET x\r\nPING\r\nPING hi\r\nPSUBSCRIBE p*\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE\r\n",
        b"AUTH x\r\nAUTH default x\r\n",
        b"MULTI\r\nPING\r\nEXEC\r\nEXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH x\r\nFOO\r\nEXEC\r\n",
        b"PUBSUB NUMSUB a b\r\nPUBSUB NUMPAT\r\nPUBSUB CHANNELS\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n",
        b"HELLO 3\r\nUNSUBSCRIBE\r\nPUBSUB NUMSUB a\r\nHELLO 2\r\n",
        b"SELECT 99\r\nSELECT x\r\nSELECT 1\r\nECHO\r\nHELLO 4\r\n",
    ];
    let node_version = server_version(&node);
    let redis_version = server_version(&redis);
    for input in inputs {
        let idle = Duration::from_millis(300);
        let ours = normalize(exchange(node.port, input, idle), &node_version);
        let theirs = normalize(exchange(redis.port, input, idle), &redis_version);
        assert_eq!(ours, theirs, "input {:?}", show(input));
    }
    assert_alive(node.port);
}

fn server_version(p: &Proc) -> String {
    let mut c = Raw::connect(p.port);
    let h = hello_fields(&c.cmd(&["HELLO", "2"]));
    h[1].1.text()
}

/// Blanks out what legitimately differs between two servers: HELLO's client id and the
/// version string.
fn normalize(b: Vec<u8>, version: &str) -> String {
    let s = show(&b).replace(
        &format!("${}\r\n{}\r\n", version.len(), version),
        "$V\r\nVERSION\r\n",
    );
    let marker = "$2\r\nid\r\n:";
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find(marker) {
        let j = i + marker.len();
        out.push_str(&rest[..j]);
        out.push('N');
        let end = rest[j..].find("\r\n").map(|e| j + e).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

//! Server/admin commands through real clients: INFO, CLIENT, CONFIG, COMMAND, DEBUG, MEMORY,
//! SLOWLOG, LATENCY, TIME, ROLE, LASTSAVE, SAVE & co., side by side with redis-server where
//! the shape matters, and through redis-cli.

mod common;
use common::query::{cmd, int, text};
use common::{eventually, Proc};

use redis::{Connection, InfoDict, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn err(c: &mut Connection, args: &[&str]) -> String {
    match cmd(c, args) {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// INFO text split into (section, [(field, value)]) in order.
fn sections(info: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in info.split("\r\n") {
        if let Some(h) = line.strip_prefix("# ") {
            out.push((h.to_string(), Vec::new()));
        } else if let Some((k, v)) = line.split_once(':') {
            out.last_mut()
                .expect("field before any section")
                .1
                .push((k.to_string(), v.to_string()));
        } else {
            assert!(line.is_empty(), "odd INFO line {line:?}");
        }
    }
    out
}

/// Whether the strings commands are in this build (they come from another branch).
fn have_set(c: &mut Connection) -> bool {
    cmd(c, &["SET", "__probe", "1"]).is_ok() && cmd(c, &["DEL", "__probe"]).is_ok()
}

/// Sends raw RESP on a fresh socket and reads one reply's first line.
fn raw(port: u16, req: &str) -> (BufReader<TcpStream>, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (r, line)
}

#[test]
fn info_sections_fields_and_format() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let info = text(&mut c, &["INFO"]);
    assert!(
        info.starts_with("# Server\r\nredis_version:7.0.15\r\n"),
        "{info}"
    );
    assert!(info.ends_with("\r\n"));
    assert!(!info.contains("\n\n") && info.contains("\r\n\r\n# Clients\r\n"));
    let secs = sections(&info);
    let names: Vec<&str> = secs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Server",
            "Clients",
            "Memory",
            "Persistence",
            "Stats",
            "Replication",
            "CPU",
            "Modules",
            "Errorstats",
            "Cluster",
            "Keyspace"
        ]
    );
    let d: InfoDict = redis::cmd("INFO").query(&mut c).unwrap();
    assert_eq!(d.get::<String>("redis_mode").unwrap(), "standalone");
    assert_eq!(d.get::<u16>("tcp_port").unwrap(), node.port);
    assert_eq!(d.get::<String>("run_id").unwrap().len(), 40);
    assert_eq!(
        d.get::<u32>("process_id").unwrap(),
        node.child.as_ref().unwrap().id()
    );
    assert_eq!(d.get::<u64>("arch_bits").unwrap(), 64);
    assert_eq!(d.get::<u64>("hz").unwrap(), 10);
    assert!(d.get::<u64>("connected_clients").unwrap() >= 1);
    assert_eq!(d.get::<u64>("maxclients").unwrap(), 10000);
    assert_eq!(d.get::<u64>("blocked_clients").unwrap(), 0);
    assert!(d.get::<u64>("used_memory").unwrap() > 0);
    assert!(d.get::<u64>("used_memory_rss").unwrap() > 0);
    assert!(d.get::<u64>("used_memory_peak").unwrap() >= d.get::<u64>("used_memory").unwrap());
    assert!(d
        .get::<String>("used_memory_human")
        .unwrap()
        .ends_with(['B', 'K', 'M', 'G']));
    assert_eq!(d.get::<u64>("maxmemory").unwrap(), 0);
    assert_eq!(d.get::<String>("maxmemory_human").unwrap(), "0B");
    assert_eq!(d.get::<String>("maxmemory_policy").unwrap(), "noeviction");
    assert!(d.get::<f64>("mem_fragmentation_ratio").unwrap() > 0.0);
    assert_eq!(d.get::<u64>("loading").unwrap(), 0);
    assert_eq!(d.get::<u64>("rdb_bgsave_in_progress").unwrap(), 0);
    assert_eq!(d.get::<String>("rdb_last_bgsave_status").unwrap(), "ok");
    assert_eq!(d.get::<u64>("aof_enabled").unwrap(), 0);
    assert_eq!(d.get::<String>("aof_last_write_status").unwrap(), "ok");
    assert!(d.get::<u64>("total_connections_received").unwrap() >= 1);
    assert!(d.get::<u64>("total_commands_processed").unwrap() >= 1);
    assert!(d.get::<u64>("instantaneous_ops_per_sec").is_some());
    assert!(d.get::<u64>("total_net_input_bytes").unwrap() > 0);
    assert_eq!(d.get::<u64>("pubsub_channels").unwrap(), 0);
    assert_eq!(d.get::<String>("role").unwrap(), "master");
    assert_eq!(d.get::<u64>("connected_slaves").unwrap(), 0);
    assert_eq!(
        d.get::<String>("master_failover_state").unwrap(),
        "no-failover"
    );
    let replid = d.get::<String>("master_replid").unwrap();
    assert!(replid.len() == 40 && replid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(d.get::<String>("master_replid2").unwrap(), "0".repeat(40));
    assert_eq!(d.get::<i64>("master_repl_offset").unwrap(), 0);
    assert_eq!(d.get::<i64>("second_repl_offset").unwrap(), -1);
    assert_eq!(d.get::<u64>("repl_backlog_size").unwrap(), 1048576);
    assert!(d.get::<f64>("used_cpu_user").is_some());
    assert_eq!(d.get::<u64>("cluster_enabled").unwrap(), 0);

    // Sections on demand, case-insensitively, several at once; unknown ones are empty.
    let server = text(&mut c, &["INFO", "SERVER"]);
    assert_eq!(sections(&server).len(), 1);
    let two = text(&mut c, &["INFO", "clients", "replication"]);
    let names: Vec<String> = sections(&two).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Clients", "Replication"]);
    assert_eq!(text(&mut c, &["INFO", "nosuchsection"]), "");
    let all = text(&mut c, &["INFO", "all"]);
    assert!(all.contains("# Commandstats\r\n") && all.contains("# Keyspace\r\n"));
    assert!(!info.contains("# Commandstats"));
    let everything = text(&mut c, &["INFO", "everything"]);
    assert!(everything.contains("# Latencystats\r\n"));
    let dflt = text(&mut c, &["INFO", "default"]);
    assert!(!dflt.contains("# Commandstats") && dflt.contains("# Errorstats"));
}

/// INFO carries the same sections and fields as redis-server 7.0's (values aside).
#[test]
fn info_fields_match_redis_server() {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    let ours = sections(&text(&mut node.conn(), &["INFO", "everything"]));
    let theirs = sections(&text(&mut redis.conn(), &["INFO", "everything"]));
    let names = |s: &Vec<(String, Vec<(String, String)>)>| -> Vec<String> {
        s.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(names(&ours), names(&theirs));
    for ((sec, ours), (_, theirs)) in ours.iter().zip(&theirs) {
        if matches!(
            sec.as_str(),
            "Commandstats" | "Latencystats" | "Keyspace" | "Errorstats"
        ) {
            continue;
        }
        let a: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        let b: Vec<&str> = theirs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(a, b, "fields of # {sec}");
    }
}

#[test]
fn commandstats_and_errorstats_count() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    assert_eq!(text(&mut c, &["CONFIG", "RESETSTAT"]), "OK");
    for _ in 0..3 {
        cmd(&mut c, &["PING"]).unwrap();
    }
    // Pipelined calls count one by one.
    let _: () = redis::pipe()
        .cmd("ECHO")
        .arg("a")
        .ignore()
        .cmd("ECHO")
        .arg("b")
        .ignore()
        .query(&mut c)
        .unwrap();
    err(&mut c, &["CONFIG", "SET", "nosuch", "1"]);
    err(&mut c, &["NOSUCHCOMMAND"]);
    let stats = text(&mut c, &["INFO", "commandstats"]);
    let line = |name: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("no cmdstat_{name} in {stats}"))
            .to_string()
    };
    assert!(
        line("ping").starts_with("cmdstat_ping:calls=3,usec="),
        "{stats}"
    );
    assert!(
        line("ping").contains(",usec_per_call=")
            && line("ping").ends_with(",rejected_calls=0,failed_calls=0")
    );
    assert!(line("echo").starts_with("cmdstat_echo:calls=2,"));
    assert!(
        line("config").ends_with("failed_calls=1"),
        "{}",
        line("config")
    );
    let errs = text(&mut c, &["INFO", "errorstats"]);
    assert!(errs.contains("errorstat_ERR:count=2\r\n"), "{errs}");
    let d: InfoDict = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert_eq!(d.get::<u64>("total_error_replies").unwrap(), 2);
    // RESETSTAT clears them.
    text(&mut c, &["CONFIG", "RESETSTAT"]);
    let stats = text(&mut c, &["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_ping"), "{stats}");
}

#[test]
fn client_id_name_info_list() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let id = int(&mut c, &["CLIENT", "ID"]);
    assert!(id > 0);
    assert_eq!(cmd(&mut c, &["CLIENT", "GETNAME"]).unwrap(), Value::Nil);
    assert_eq!(text(&mut c, &["CLIENT", "SETNAME", "worker-1"]), "OK");
    assert_eq!(text(&mut c, &["CLIENT", "GETNAME"]), "worker-1");
    assert!(err(&mut c, &["CLIENT", "SETNAME", "bad name"])
        .contains("Client names cannot contain spaces, newlines or special characters."));
    assert!(err(&mut c, &["CLIENT", "SETNAME"])
        .contains("wrong number of arguments for 'client|setname' command"));
    assert!(err(&mut c, &["CLIENT", "NOSUCH"])
        .contains("unknown subcommand 'NOSUCH'. Try CLIENT HELP."));

    let info = text(&mut c, &["CLIENT", "INFO"]);
    assert!(info.ends_with('\n'));
    let fields: Vec<&str> = info
        .trim_end()
        .split(' ')
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "id",
            "addr",
            "laddr",
            "fd",
            "name",
            "age",
            "idle",
            "flags",
            "db",
            "sub",
            "psub",
            "ssub",
            "multi",
            "qbuf",
            "qbuf-free",
            "argv-mem",
            "multi-mem",
            "rbs",
            "rbp",
            "obl",
            "oll",
            "omem",
            "tot-mem",
            "events",
            "cmd",
            "user",
            "redir",
            "resp"
        ]
    );
    assert!(
        info.starts_with(&format!("id={id} addr=127.0.0.1:")),
        "{info}"
    );
    assert!(info.contains(&format!(" laddr=127.0.0.1:{} ", node.port)));
    assert!(info.contains(" name=worker-1 ") && info.contains(" flags=N db=0 "));
    assert!(
        info.contains(" cmd=client|info user=default redir=-1 resp=2"),
        "{info}"
    );

    let mut other = node.conn();
    cmd(&mut other, &["SELECT", "3"]).unwrap();
    let other_id = int(&mut other, &["CLIENT", "ID"]);
    // The harness's readiness probe may still be closing: wait until only we two remain.
    assert!(eventually(Duration::from_secs(5), || {
        text(&mut c, &["CLIENT", "LIST"]).lines().count() == 2
    }));
    let list = text(&mut c, &["CLIENT", "LIST"]);
    assert!(list.contains(&format!("id={other_id} ")) && list.contains(" db=3 "));
    assert!(list.contains(" cmd=client|list "));
    let only = text(&mut c, &["CLIENT", "LIST", "ID", &other_id.to_string()]);
    assert_eq!(only.lines().count(), 1);
    assert!(only.starts_with(&format!("id={other_id} ")) && only.contains(" cmd=client "));
    assert_eq!(text(&mut c, &["CLIENT", "LIST", "ID", "999999"]), "");
    assert!(err(&mut c, &["CLIENT", "LIST", "ID", "x"]).contains("Invalid client ID"));
    assert_eq!(
        text(&mut c, &["CLIENT", "LIST", "TYPE", "normal"])
            .lines()
            .count(),
        2
    );
    assert_eq!(text(&mut c, &["CLIENT", "LIST", "TYPE", "pubsub"]), "");
    assert!(
        err(&mut c, &["CLIENT", "LIST", "TYPE", "bogus"]).contains("Unknown client type 'bogus'")
    );
    assert!(err(&mut c, &["CLIENT", "LIST", "bogus"]).contains("syntax error"));

    // Library info (redis-py 5 sends it on connect), flags and the small subcommands.
    assert_eq!(
        text(&mut c, &["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        "OK"
    );
    assert_eq!(
        text(&mut c, &["CLIENT", "SETINFO", "lib-ver", "5.0.1"]),
        "OK"
    );
    assert!(
        err(&mut c, &["CLIENT", "SETINFO", "color", "red"]).contains("Unrecognized option 'color'")
    );
    assert!(
        err(&mut c, &["CLIENT", "SETINFO", "lib-name", "a b"]).contains("cannot contain spaces")
    );
    assert_eq!(text(&mut c, &["CLIENT", "NO-EVICT", "on"]), "OK");
    assert_eq!(text(&mut c, &["CLIENT", "NO-TOUCH", "on"]), "OK");
    assert!(text(&mut c, &["CLIENT", "INFO"]).contains(" flags=eT "));
    assert!(err(&mut c, &["CLIENT", "NO-EVICT", "maybe"]).contains("syntax error"));
    assert_eq!(text(&mut c, &["CLIENT", "REPLY", "ON"]), "OK");
    assert_eq!(text(&mut c, &["CLIENT", "PAUSE", "0"]), "OK");
    assert!(err(&mut c, &["CLIENT", "PAUSE", "abc"]).contains("timeout is not an integer"));
    assert_eq!(text(&mut c, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(
        int(&mut c, &["CLIENT", "UNBLOCK", &other_id.to_string()]),
        0
    );
    assert_eq!(int(&mut c, &["CLIENT", "GETREDIR"]), -1);
    assert!(err(&mut c, &["CLIENT", "TRACKING", "on"]).contains("not supported"));
    assert_eq!(text(&mut c, &["CLIENT", "TRACKING", "off"]), "OK");
    match cmd(&mut c, &["CLIENT", "HELP"]).unwrap() {
        Value::Array(lines) => assert!(lines.len() > 10),
        v => panic!("{v:?}"),
    }
}

#[test]
fn client_kill_closes_connections() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let mut victim = node.conn();
    let victim_id = int(&mut victim, &["CLIENT", "ID"]);
    assert_eq!(
        int(&mut c, &["CLIENT", "KILL", "ID", &victim_id.to_string()]),
        1
    );
    assert!(
        eventually(Duration::from_secs(5), || cmd(&mut victim, &["PING"])
            .is_err()),
        "killed connection still answers"
    );
    assert_eq!(
        int(&mut c, &["CLIENT", "KILL", "ID", &victim_id.to_string()]),
        0
    );
    assert!(
        err(&mut c, &["CLIENT", "KILL", "ID", "0"]).contains("client-id should be greater than 0")
    );

    // Old form, by address.
    let mut victim2 = node.conn();
    let v2 = text(&mut victim2, &["CLIENT", "INFO"]);
    let addr = v2
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_string();
    assert_eq!(text(&mut c, &["CLIENT", "KILL", &addr]), "OK");
    assert!(eventually(Duration::from_secs(5), || cmd(
        &mut victim2,
        &["PING"]
    )
    .is_err()));
    assert!(err(&mut c, &["CLIENT", "KILL", "1.2.3.4:5"]).contains("No such client"));

    // SKIPME yes (the default) spares the caller; filters combine.
    let me = int(&mut c, &["CLIENT", "ID"]).to_string();
    assert_eq!(int(&mut c, &["CLIENT", "KILL", "ID", &me]), 0);
    assert_eq!(
        int(
            &mut c,
            &["CLIENT", "KILL", "ID", &me, "TYPE", "pubsub", "SKIPME", "no"]
        ),
        0
    );
    assert!(err(&mut c, &["CLIENT", "KILL", "TYPE", "nope"]).contains("Unknown client type 'nope'"));
    assert!(err(&mut c, &["CLIENT", "KILL", "USER", "alice"]).contains("No such user 'alice'"));
    assert!(err(&mut c, &["CLIENT", "KILL", "SKIPME", "maybe"]).contains("syntax error"));
    assert!(err(&mut c, &["CLIENT", "KILL", "ID", "1", "TYPE"]).contains("syntax error"));
    // Three arguments is the old form, whatever the word.
    assert!(err(&mut c, &["CLIENT", "KILL", "ID"]).contains("No such client"));

    // TYPE pubsub kills a subscriber; its socket sees EOF.
    let (mut sub, first) = raw(node.port, "SUBSCRIBE news\r\n");
    assert_eq!(first, "*3\r\n");
    let mut rest = [0u8; 64];
    let _ = sub
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let _ = sub.read(&mut rest);
    assert_eq!(
        text(&mut c, &["CLIENT", "LIST", "TYPE", "pubsub"])
            .lines()
            .count(),
        1
    );
    assert_eq!(int(&mut c, &["CLIENT", "KILL", "TYPE", "pubsub"]), 1);
    sub.get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        sub.read_to_end(&mut buf).unwrap_or(0),
        0,
        "subscriber not closed"
    );

    // SKIPME no kills the caller itself, after the reply.
    let mut me2 = node.conn();
    let id2 = int(&mut me2, &["CLIENT", "ID"]).to_string();
    assert_eq!(
        int(&mut me2, &["CLIENT", "KILL", "ID", &id2, "SKIPME", "no"]),
        1
    );
    assert!(eventually(Duration::from_secs(5), || cmd(
        &mut me2,
        &["PING"]
    )
    .is_err()));
    assert_eq!(text(&mut c, &["PING"]), "PONG");
}

#[test]
fn config_get_set_round_trips_and_errors() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let get = |c: &mut Connection, p: &str| -> Vec<String> {
        redis::cmd("CONFIG").arg("GET").arg(p).query(c).unwrap()
    };
    assert_eq!(get(&mut c, "maxmemory"), ["maxmemory", "0"]);
    assert_eq!(get(&mut c, "appendonly"), ["appendonly", "no"]);
    assert_eq!(
        get(&mut c, "replica-read-only"),
        ["replica-read-only", "yes"]
    );
    assert_eq!(get(&mut c, "slave-read-only"), ["slave-read-only", "yes"]);
    assert_eq!(
        get(&mut c, "port"),
        ["port", node.port.to_string().as_str()]
    );
    assert_eq!(get(&mut c, "nosuch"), Vec::<String>::new());
    let many: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .arg("timeout")
        .arg("HZ")
        .query(&mut c)
        .unwrap();
    assert_eq!(many, ["hz", "10", "timeout", "0"]);
    let pat = get(&mut c, "maxmemory*");
    let names: Vec<&String> = pat.iter().step_by(2).collect();
    for n in ["maxmemory", "maxmemory-policy", "maxmemory-samples"] {
        assert!(names.iter().any(|x| *x == n), "{n} not in {pat:?}");
    }
    assert!(get(&mut c, "*").len() > 100);

    // Several pairs at once, units, then INFO sees them.
    assert_eq!(
        text(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "10mb",
                "maxmemory-policy",
                "allkeys-lru",
                "hz",
                "20"
            ]
        ),
        "OK"
    );
    assert_eq!(get(&mut c, "maxmemory"), ["maxmemory", "10485760"]);
    let d: InfoDict = redis::cmd("INFO").query(&mut c).unwrap();
    assert_eq!(d.get::<u64>("maxmemory").unwrap(), 10485760);
    assert_eq!(d.get::<String>("maxmemory_human").unwrap(), "10.00M");
    assert_eq!(d.get::<String>("maxmemory_policy").unwrap(), "allkeys-lru");
    assert_eq!(d.get::<u64>("hz").unwrap(), 20);
    for (p, v, back) in [
        ("maxmemory-samples", "7", "7"),
        ("timeout", "300", "300"),
        ("appendfsync", "ALWAYS", "always"),
        ("appendonly", "yes", "yes"),
        ("save", "3600 1  300 100", "3600 1 300 100"),
        ("save", "", ""),
        ("lfu-log-factor", "5", "5"),
        ("lfu-decay-time", "2", "2"),
        ("proto-max-bulk-len", "2mb", "2097152"),
        ("client-query-buffer-limit", "4mb", "4194304"),
        ("maxclients", "500", "500"),
        ("replica-priority", "10", "10"),
        ("slave-priority", "11", "11"),
        ("repl-backlog-size", "2mb", "2097152"),
        ("min-replicas-to-write", "1", "1"),
        ("min-replicas-to-write", "0", "0"),
        ("min-replicas-max-lag", "20", "20"),
        ("loglevel", "warning", "warning"),
        ("dbfilename", "x.rdb", "x.rdb"),
        ("hash-max-listpack-entries", "64", "64"),
        ("hash-max-ziplist-entries", "65", "65"),
        ("lazyfree-lazy-user-del", "yes", "yes"),
        ("notify-keyspace-events", "", ""),
    ] {
        assert_eq!(text(&mut c, &["CONFIG", "SET", p, v]), "OK", "{p}");
        assert_eq!(get(&mut c, p), [p, back], "{p}");
    }
    assert_eq!(get(&mut c, "replica-priority"), ["replica-priority", "11"]);
    assert_eq!(get(&mut c, "appendonly"), ["appendonly", "yes"]);
    text(&mut c, &["CONFIG", "SET", "appendonly", "no"]);

    // dir must exist; it is reported absolute.
    let sub = node.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        text(&mut c, &["CONFIG", "SET", "dir", sub.to_str().unwrap()]),
        "OK"
    );
    assert_eq!(
        get(&mut c, "dir")[1],
        std::fs::canonicalize(&sub).unwrap().to_str().unwrap()
    );
    assert!(err(&mut c, &["CONFIG", "SET", "dir", "/no/such/dir"])
        .contains("No such file or directory"));

    // Errors, and nothing applied when one pair is bad.
    assert!(err(&mut c, &["CONFIG", "SET", "hz", "30", "maxmemory", "lots"]).contains(
        "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
    ));
    assert_eq!(get(&mut c, "hz"), ["hz", "20"]);
    assert!(err(&mut c, &["CONFIG", "SET", "xyz", "1"])
        .contains("Unknown option or number of arguments for CONFIG SET - 'xyz'"));
    assert!(
        err(&mut c, &["CONFIG", "SET", "databases", "4"]).contains("can't set immutable config")
    );
    assert!(err(&mut c, &["CONFIG", "SET", "appendonly", "maybe"])
        .contains("argument must be 'yes' or 'no'"));
    assert!(err(&mut c, &["CONFIG", "SET", "maxmemory-samples", "0"])
        .contains("argument must be between 1 and 64 inclusive"));
    assert!(err(&mut c, &["CONFIG", "SET", "timeout", "abc"])
        .contains("argument couldn't be parsed into an integer"));
    assert!(
        err(&mut c, &["CONFIG", "SET", "maxmemory-policy", "sometimes"])
            .contains("must be one of the following")
    );
    assert!(err(&mut c, &["CONFIG", "SET", "save", "100"]).contains("Invalid save parameters"));
    assert!(err(&mut c, &["CONFIG", "SET", "hz", "1", "hz", "2"]).contains("duplicate parameter"));
    assert!(err(&mut c, &["CONFIG", "SET", "hz", "1", "timeout"])
        .contains("wrong number of arguments for 'config|set' command"));
    assert!(err(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).contains("only ''"));
    assert!(err(&mut c, &["CONFIG", "GET"])
        .contains("wrong number of arguments for 'config|get' command"));
    assert!(
        err(&mut c, &["CONFIG", "REWRITE"]).contains("The server is running without a config file")
    );
    assert!(err(&mut c, &["CONFIG", "FOO"]).contains("unknown subcommand 'FOO'. Try CONFIG HELP."));
    match cmd(&mut c, &["CONFIG", "HELP"]).unwrap() {
        Value::Array(l) => assert!(l.len() >= 8),
        v => panic!("{v:?}"),
    }

    // requirepass takes effect for new connections.
    text(&mut c, &["CONFIG", "SET", "requirepass", "s3cret"]);
    let (_, line) = raw(node.port, "PING\r\n");
    assert!(line.starts_with("-NOAUTH"), "{line}");
    assert_eq!(text(&mut c, &["CONFIG", "SET", "requirepass", ""]), "OK");
    let (_, line) = raw(node.port, "PING\r\n");
    assert_eq!(line, "+PONG\r\n");
}

#[test]
fn config_get_is_a_map_in_resp3() {
    let node = Proc::node(&[]);
    let (mut r, first) = raw(node.port, "HELLO 3\r\n");
    assert!(first.starts_with('%'));
    let mut junk = String::new();
    // HELLO's map has 7 pairs, one or two lines each; drain until it is quiet.
    let _ = r
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)));
    while r.read_line(&mut junk).map(|n| n > 0).unwrap_or(false) {}
    r.get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    r.get_mut().write_all(b"CONFIG GET maxmemory\r\n").unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "%1\r\n");
    let url = format!("redis://127.0.0.1:{}/?protocol=resp3", node.port);
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    match cmd(&mut c, &["CONFIG", "GET", "hz"]).unwrap() {
        Value::Map(m) => assert_eq!(m.len(), 1),
        v => panic!("{v:?}"),
    }
    match cmd(&mut c, &["INFO", "server"]).unwrap() {
        Value::VerbatimString { text, .. } => assert!(text.starts_with("# Server\r\n")),
        v => panic!("{v:?}"),
    }
}

#[test]
fn command_introspection() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let count = int(&mut c, &["COMMAND", "COUNT"]);
    assert!(count >= 150, "{count}");
    match cmd(&mut c, &["COMMAND"]).unwrap() {
        Value::Array(all) => assert_eq!(all.len() as i64, count),
        v => panic!("{v:?}"),
    }
    let info = cmd(&mut c, &["COMMAND", "INFO", "get", "nosuch", "client|kill"]).unwrap();
    let Value::Array(entries) = info else {
        panic!("{info:?}")
    };
    assert_eq!(entries.len(), 3);
    let Value::Array(get) = &entries[0] else {
        panic!()
    };
    assert_eq!(get.len(), 10);
    assert_eq!(get[0], Value::BulkString(b"get".to_vec()));
    assert_eq!(get[1], Value::Int(2));
    let words = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(a) | Value::Set(a) => a
                .iter()
                .map(|x| match x {
                    Value::SimpleString(s) => s.clone(),
                    Value::BulkString(b) => String::from_utf8_lossy(b).into(),
                    v => panic!("{v:?}"),
                })
                .collect(),
            v => panic!("{v:?}"),
        }
    };
    assert_eq!(words(&get[2]), ["readonly", "fast"]);
    assert_eq!(&get[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)]);
    assert_eq!(words(&get[6]), ["@read", "@string", "@fast"]);
    let Value::Array(specs) = &get[8] else {
        panic!()
    };
    assert_eq!(specs.len(), 1);
    assert_eq!(entries[1], Value::Nil);
    let Value::Array(kill) = &entries[2] else {
        panic!()
    };
    assert_eq!(kill[0], Value::BulkString(b"client|kill".to_vec()));
    assert_eq!(kill[1], Value::Int(-3));
    // CLIENT lists its subcommands.
    let client = cmd(&mut c, &["COMMAND", "INFO", "client"]).unwrap();
    let Value::Array(client) = client else {
        panic!()
    };
    let Value::Array(client) = &client[0] else {
        panic!()
    };
    let Value::Array(subs) = &client[9] else {
        panic!()
    };
    assert!(subs.len() >= 15);

    // DOCS: summary, since, group (a map; flat in RESP2).
    let docs: Vec<Value> = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("get")
        .arg("nosuch")
        .query(&mut c)
        .unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0], Value::BulkString(b"get".to_vec()));
    let Value::Array(fields) = &docs[1] else {
        panic!("{docs:?}")
    };
    let fields = words(&Value::Array(fields.clone()));
    assert_eq!(fields[0], "summary");
    assert_eq!(&fields[2..6], ["since", "1.0.0", "group", "string"]);
    let all_docs: Vec<Value> = redis::cmd("COMMAND").arg("DOCS").query(&mut c).unwrap();
    assert_eq!(all_docs.len() as i64, count * 2);

    // LIST, with filters.
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut c).unwrap();
    assert!(list.iter().any(|n| n == "config|set") && list.iter().any(|n| n == "zadd"));
    let pat: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("PATTERN")
        .arg("config*")
        .query(&mut c)
        .unwrap();
    assert!(pat.contains(&"config".to_string()) && pat.contains(&"config|get".to_string()));
    assert!(pat.iter().all(|n| n.starts_with("config")));
    let cat: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("ACLCAT")
        .arg("list")
        .query(&mut c)
        .unwrap();
    assert!(cat.contains(&"lpush".to_string()) && !cat.contains(&"get".to_string()));
    let module: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("MODULE")
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert!(module.is_empty());
    assert!(err(&mut c, &["COMMAND", "LIST", "FILTERBY", "COLOR", "x"]).contains("syntax error"));

    // GETKEYS.
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, ["a", "b"]);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("zunionstore")
        .arg("dst")
        .arg("2")
        .arg("k1")
        .arg("k2")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, ["dst", "k1", "k2"]);
    assert!(
        err(&mut c, &["COMMAND", "GETKEYS", "nosuch", "x"]).contains("Invalid command specified")
    );
    assert!(err(&mut c, &["COMMAND", "GETKEYS", "get", "a", "b"])
        .contains("Invalid number of arguments specified for command"));
    assert!(err(&mut c, &["COMMAND", "GETKEYS", "echo", "a"])
        .contains("The command has no key arguments"));
    assert!(
        err(&mut c, &["COMMAND", "NOPE"]).contains("unknown subcommand 'NOPE'. Try COMMAND HELP.")
    );
}

#[test]
fn time_role_lastsave_and_save() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let t: Vec<String> = redis::cmd("TIME").query(&mut c).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secs: i64 = t[0].parse().unwrap();
    let micros: i64 = t[1].parse().unwrap();
    assert!((secs - now).abs() <= 2 && (0..1_000_000).contains(&micros));
    match cmd(&mut c, &["TIME"]).unwrap() {
        Value::Array(v) => assert!(matches!(v[0], Value::BulkString(_))),
        v => panic!("{v:?}"),
    }
    let role = cmd(&mut c, &["ROLE"]).unwrap();
    assert_eq!(
        role,
        Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(0),
            Value::Array(vec![])
        ])
    );
    let last = int(&mut c, &["LASTSAVE"]);
    assert!(last <= now + 1 && last > now - 60);
    assert_eq!(text(&mut c, &["SAVE"]), "OK");
    assert!(int(&mut c, &["LASTSAVE"]) >= last);
    assert!(node.path().join("dump.rdb").exists());
}

#[test]
fn debug_and_memory() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let empty = text(&mut c, &["DEBUG", "DIGEST"]);
    assert_eq!(empty, "0".repeat(40));
    assert_eq!(text(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "OK");
    assert_eq!(text(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), "OK");
    assert_eq!(text(&mut c, &["DEBUG", "JMAP"]), "OK");
    assert_eq!(
        text(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1mb"]),
        "OK"
    );
    assert!(text(&mut c, &["DEBUG", "STRINGMATCH-LEN"]).contains("test passed"));
    let before: InfoDict = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert_eq!(text(&mut c, &["DEBUG", "CHANGE-REPL-ID"]), "OK");
    let after: InfoDict = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert_ne!(
        before.get::<String>("master_replid"),
        after.get::<String>("master_replid")
    );
    assert_eq!(text(&mut c, &["SET", "reload:k", "v"]), "OK");
    assert_eq!(text(&mut c, &["DEBUG", "RELOAD"]), "OK");
    assert_eq!(text(&mut c, &["GET", "reload:k"]), "v");
    assert!(err(&mut c, &["DEBUG", "OBJECT", "nokey"]).contains("no such key"));
    assert!(err(&mut c, &["DEBUG", "NOPE"]).contains("unknown subcommand 'NOPE'. Try DEBUG HELP."));
    assert!(err(&mut c, &["DEBUG", "ERROR", "boom"]).contains("boom"));
    assert_eq!(
        cmd(&mut c, &["DEBUG", "PROTOCOL", "integer"]).unwrap(),
        Value::Int(12345)
    );
    assert_eq!(
        text(&mut c, &["DEBUG", "PROTOCOL", "string"]),
        "Hello World"
    );
    assert_eq!(
        cmd(&mut c, &["DEBUG", "PROTOCOL", "true"]).unwrap(),
        Value::Int(1)
    );
    assert_eq!(text(&mut c, &["DEBUG", "SLEEP", "0"]), "OK");
    match cmd(&mut c, &["DEBUG", "HELP"]).unwrap() {
        Value::Array(l) => assert!(l.len() > 10),
        v => panic!("{v:?}"),
    }
    let digests = cmd(&mut c, &["DEBUG", "DIGEST-VALUE", "a", "b"]).unwrap();
    assert_eq!(
        digests,
        Value::Array(vec![Value::SimpleString("0".repeat(40)); 2])
    );

    assert_eq!(
        cmd(&mut c, &["MEMORY", "USAGE", "nokey"]).unwrap(),
        Value::Nil
    );
    assert!(err(&mut c, &["MEMORY", "USAGE", "k", "SAMPLES"]).contains("syntax error"));
    let stats: Vec<Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    let names: Vec<String> = stats
        .iter()
        .step_by(2)
        .map(|v| match v {
            Value::BulkString(b) => String::from_utf8_lossy(b).into(),
            v => panic!("{v:?}"),
        })
        .collect();
    for n in [
        "peak.allocated",
        "total.allocated",
        "keys.count",
        "dataset.bytes",
        "fragmentation",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    assert!(!text(&mut c, &["MEMORY", "DOCTOR"]).is_empty());
    assert_eq!(text(&mut c, &["MEMORY", "PURGE"]), "OK");
    assert!(err(&mut c, &["MEMORY", "USAGE"])
        .contains("wrong number of arguments for 'memory|usage' command"));

    // Earlier commands may have been slow enough for the log in a debug build.
    assert_eq!(text(&mut c, &["SLOWLOG", "RESET"]), "OK");
    assert_eq!(
        cmd(&mut c, &["SLOWLOG", "GET"]).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(
        cmd(&mut c, &["SLOWLOG", "GET", "5"]).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 0);
    assert_eq!(text(&mut c, &["SLOWLOG", "RESET"]), "OK");
    assert!(err(&mut c, &["SLOWLOG", "GET", "-5"])
        .contains("count should be greater than or equal to -1"));
    assert_eq!(
        cmd(&mut c, &["LATENCY", "LATEST"]).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(
        cmd(&mut c, &["LATENCY", "HISTORY", "command"]).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(int(&mut c, &["LATENCY", "RESET"]), 0);
    assert!(!text(&mut c, &["LATENCY", "DOCTOR"]).is_empty());
    assert!(err(&mut c, &["LATENCY", "NOPE"]).contains("Try LATENCY HELP."));
}

/// Data-dependent parts: need SET (from the strings commands). Skipped, with a note, in a
/// build without them.
#[test]
fn digest_keyspace_and_object_follow_data() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    if !have_set(&mut c) {
        eprintln!("SET not available in this build: data-dependent checks skipped");
        return;
    }
    let d0 = text(&mut c, &["DEBUG", "DIGEST"]);
    cmd(&mut c, &["SET", "k", "hello"]).unwrap();
    let d1 = text(&mut c, &["DEBUG", "DIGEST"]);
    assert_ne!(d0, d1);
    assert_eq!(d1.len(), 40);
    assert_eq!(text(&mut c, &["DEBUG", "DIGEST"]), d1, "digest is stable");
    cmd(&mut c, &["SET", "k", "world"]).unwrap();
    let d2 = text(&mut c, &["DEBUG", "DIGEST"]);
    assert_ne!(d1, d2);
    cmd(&mut c, &["SET", "k", "hello"]).unwrap();
    assert_eq!(
        text(&mut c, &["DEBUG", "DIGEST"]),
        d1,
        "same data, same digest"
    );
    let v = cmd(&mut c, &["DEBUG", "DIGEST-VALUE", "k", "missing"]).unwrap();
    let Value::Array(v) = v else { panic!() };
    assert_ne!(v[0], Value::SimpleString("0".repeat(40)));
    assert_eq!(v[1], Value::SimpleString("0".repeat(40)));

    cmd(&mut c, &["SET", "n", "12345"]).unwrap();
    let obj = text(&mut c, &["DEBUG", "OBJECT", "k"]);
    assert!(
        obj.starts_with("Value at:0x")
            && obj.contains(" refcount:1 encoding:embstr serializedlength:6 lru:"),
        "{obj}"
    );
    assert!(text(&mut c, &["DEBUG", "OBJECT", "n"]).contains("encoding:int"));
    let usage = int(&mut c, &["MEMORY", "USAGE", "k"]);
    assert!(usage > 0 && usage < 200, "{usage}");
    let ks = text(&mut c, &["INFO", "keyspace"]);
    assert_eq!(ks, "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n");
    cmd(&mut c, &["SELECT", "2"]).unwrap();
    cmd(&mut c, &["SET", "e", "v", "EX", "100"]).unwrap();
    let ks = text(&mut c, &["INFO", "keyspace"]);
    assert!(ks.contains("db2:keys=1,expires=1,avg_ttl="), "{ks}");
    let ttl: u64 = ks.trim_end().rsplit('=').next().unwrap().parse().unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
}

#[test]
fn pipelined_admin_commands() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let (id, name, time, count): (i64, Option<String>, Vec<String>, i64) = redis::pipe()
        .cmd("CLIENT")
        .arg("ID")
        .cmd("CLIENT")
        .arg("GETNAME")
        .cmd("TIME")
        .cmd("COMMAND")
        .arg("COUNT")
        .query(&mut c)
        .unwrap();
    assert!(id > 0 && name.is_none() && time.len() == 2 && count > 100);
}

#[test]
fn redis_cli_works() {
    let node = Proc::node(&[]);
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new("redis-cli")
            .arg("-p")
            .arg(node.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let info = run(&["INFO"]);
    assert!(
        info.contains("redis_version:7.0.15") && info.contains("# Keyspace"),
        "{info}"
    );
    let list = run(&["CLIENT", "LIST"]);
    assert!(
        list.starts_with("id=") && list.contains("cmd=client|list"),
        "{list}"
    );
    let docs = run(&["COMMAND", "DOCS", "GET"]);
    assert!(
        docs.contains("summary") && docs.contains("since") && docs.contains("string"),
        "{docs}"
    );
    let cfg = run(&["CONFIG", "GET", "maxmemory"]);
    assert_eq!(cfg, "maxmemory\n0\n");
    let resp3 = run(&["-3", "CONFIG", "GET", "hz"]);
    assert_eq!(resp3, "hz 10\n");
    let time = run(&["TIME"]);
    assert_eq!(time.lines().count(), 2);
}

/// COMMAND INFO agrees with redis-server 7.0 on name, arity, flags, key positions, ACL
/// categories and tips (key specs are approximated and not compared).
#[test]
fn command_info_matches_redis_server() {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    let (mut a, mut b) = (node.conn(), redis.conn());
    for name in [
        "get",
        "mset",
        "lpush",
        "hgetall",
        "keys",
        "client",
        "config",
        "memory",
        "object",
        "client|kill",
        "config|get",
    ] {
        let ours = cmd(&mut a, &["COMMAND", "INFO", name]).unwrap();
        let theirs = cmd(&mut b, &["COMMAND", "INFO", name]).unwrap();
        let head = |v: Value| -> Vec<Value> {
            let Value::Array(mut outer) = v else { panic!() };
            let Value::Array(inner) = outer.remove(0) else {
                panic!()
            };
            inner.into_iter().take(8).collect()
        };
        assert_eq!(head(ours), head(theirs), "COMMAND INFO {name}");
    }
}

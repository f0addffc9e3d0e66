//! `tandem sentinel` with real processes: 3 data nodes (Tandem nodes or Debian's
//! redis-server 7.0, a parameter of every scenario) and 3 sentinels, killed with kill -9.
//! Covers automatic failover, the old master coming back as a replica, forced failover, no
//! failover without a majority, a leader crashing mid-failover, restarts that remember the
//! master, redis-py's Sentinel client, the SENTINEL API and pub/sub events, and the reply
//! shapes side by side with Debian's redis-sentinel. Every wait polls to a deadline.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAME: &str = "mymaster";
/// down-after-milliseconds of the tests' sentinels.
const DOWN_AFTER_MS: &str = "1000";
/// failover-timeout of the tests' sentinels.
const FAILOVER_TIMEOUT_MS: &str = "3000";
/// Longest wait for anything a failover does.
const DEADLINE: Duration = Duration::from_secs(30);

/// Which server plays the data nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Data {
    Tandem,
    Redis,
}

/// Starts a data node on `port` (a free one if `None`), replica of `replicaof` if given.
fn data_node(kind: Data, port: Option<u16>, replicaof: Option<u16>) -> Proc {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = port.unwrap_or_else(free_port);
    let log = dir.path().join("node.log");
    let mut cmd = match kind {
        Data::Tandem => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
            c.args(["node", "--repl-diskless-sync-delay", "0"]);
            c
        }
        Data::Redis => {
            require_tool("redis-server");
            let mut c = Command::new("redis-server");
            c.args(["--save", "", "--repl-diskless-sync-delay", "0"]);
            c
        }
    };
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir.path());
    if let Some(m) = replicaof {
        cmd.args(["--replicaof", "127.0.0.1", &m.to_string()]);
    }
    Proc::spawn(cmd, port, dir, log)
}

/// One command on a fresh connection (the target may be dead: errors are values).
fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut c = client.get_connection_with_timeout(Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

/// The master port a sentinel gives for NAME.
fn master_port(sentinel: u16) -> Option<u16> {
    let r: Option<(String, String)> =
        query(sentinel, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME]).ok()?;
    r.and_then(|(_, p)| p.parse().ok())
}

/// ROLE of a data node: ("master", None) or ("slave", Some(master port)).
fn role(port: u16) -> Option<(String, Option<u16>)> {
    let v: redis::Value = query(port, &["ROLE"]).ok()?;
    let redis::Value::Array(items) = v else {
        return None;
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let r = text(items.first()?)?;
    let mport = match items.get(2) {
        Some(redis::Value::Int(p)) if r == "slave" => Some(*p as u16),
        _ => None,
    };
    Some((r, mport))
}

fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    let info: String = query(port, &["INFO", section]).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

fn master_fields(sentinel: u16) -> HashMap<String, String> {
    query(sentinel, &["SENTINEL", "MASTER", NAME]).unwrap_or_default()
}

/// Pub/sub events of one sentinel (PSUBSCRIBE *), collected by a thread.
struct Events {
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl Events {
    fn subscribe(port: u16) -> Events {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to sentinel");
        let mut w = stream.try_clone().expect("clone");
        std::io::Write::write_all(&mut w, &encode_cmd(&["PSUBSCRIBE", "*"])).expect("write");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let mut r = BufReader::new(stream);
        // The subscription confirmation, read here so no event can precede it.
        read_array(&mut r).expect("psubscribe reply");
        std::thread::spawn(move || {
            while let Some(items) = read_array(&mut r) {
                if items.len() == 4 && items[0] == "pmessage" {
                    sink.lock()
                        .unwrap()
                        .push((items[2].clone(), items[3].clone()));
                }
            }
        });
        Events { log }
    }

    /// The text of the first event named `name` (waits up to `timeout`).
    fn wait(&self, name: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((_, t)) = self.log.lock().unwrap().iter().find(|(n, _)| n == name) {
                return Some(t.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether an event named `name` with exactly this text arrives within `timeout`.
    fn saw(&self, name: &str, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        eventually(timeout, || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .any(|(n, t)| n == name && pred(t))
        })
    }

    fn names(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Reads one RESP2 array of bulk strings / integers as text; `None` at EOF or on error.
fn read_array(r: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if let Some(len) = l.strip_prefix('$') {
            let len: usize = len.parse().ok()?;
            let mut buf = vec![0u8; len + 2];
            r.read_exact(&mut buf).ok()?;
            out.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        } else {
            out.push(l.get(1..).unwrap_or_default().to_string());
        }
    }
    Some(out)
}

/// 3 data nodes (a master and two replicas) and 3 sentinels monitoring them.
struct Cluster {
    nodes: Vec<Proc>,
    sentinels: Vec<Proc>,
    sentinel_ports: Vec<u16>,
    sentinel_dirs: Vec<tempfile::TempDir>,
    master: u16,
}

impl Cluster {
    fn start(kind: Data) -> Cluster {
        let master = data_node(kind, None, None);
        let mport = master.port;
        let mut nodes = vec![master];
        for _ in 0..2 {
            nodes.push(data_node(kind, None, Some(mport)));
        }
        for n in &nodes[1..] {
            assert!(
                eventually(DEADLINE, || info_field(
                    n.port,
                    "replication",
                    "master_link_status"
                )
                .as_deref()
                    == Some("up")),
                "replica {} never synced with {mport}",
                n.port
            );
        }
        let mut c = Cluster {
            nodes,
            sentinels: Vec::new(),
            sentinel_ports: Vec::new(),
            sentinel_dirs: Vec::new(),
            master: mport,
        };
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("tempdir");
            c.sentinel_ports.push(port);
            c.sentinel_dirs.push(dir);
            let s = c.start_sentinel(c.sentinels.len());
            c.sentinels.push(s);
        }
        for &s in &c.sentinel_ports {
            assert!(
                eventually(DEADLINE, || {
                    let f = master_fields(s);
                    f.get("num-slaves").map(String::as_str) == Some("2")
                        && f.get("num-other-sentinels").map(String::as_str) == Some("2")
                }),
                "sentinel {s} did not discover the replicas and its peers: {:?}",
                master_fields(s)
            );
        }
        c
    }

    fn start_sentinel(&self, i: usize) -> Proc {
        let m = self.master.to_string();
        Proc::sentinel(
            self.sentinel_ports[i],
            self.sentinel_dirs[i].path(),
            &[
                "--monitor",
                NAME,
                "127.0.0.1",
                &m,
                "2",
                "--down-after-ms",
                DOWN_AFTER_MS,
                "--failover-timeout-ms",
                FAILOVER_TIMEOUT_MS,
            ],
        )
    }

    fn node(&mut self, port: u16) -> &mut Proc {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("no such node")
    }

    fn live_sentinels(&self) -> Vec<u16> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .map(|s| s.port)
            .collect()
    }

    /// Waits until every live sentinel names the same master, other than `old`, and that
    /// node says it is a master; returns its port.
    fn wait_new_master(&self, old: u16) -> u16 {
        let mut seen = Vec::new();
        let ok = eventually(DEADLINE, || {
            seen = self
                .live_sentinels()
                .iter()
                .map(|&s| master_port(s))
                .collect();
            match seen.first() {
                Some(Some(p)) if *p != old && seen.iter().all(|x| *x == Some(*p)) => {
                    role(*p).map(|r| r.0) == Some("master".into())
                }
                _ => false,
            }
        });
        assert!(ok, "the sentinels did not agree on a new master: {seen:?}");
        seen[0].expect("a master")
    }

    /// Live data nodes that answer ROLE with "master".
    fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .filter(|n| role(n.port).map(|r| r.0) == Some("master".into()))
            .map(|n| n.port)
            .collect()
    }

    fn wait_replica_of(&self, port: u16, master: u16) {
        let mut last = None;
        let ok = eventually(DEADLINE, || {
            last = role(port);
            last.as_ref()
                .is_some_and(|(r, m)| r == "slave" && *m == Some(master))
        });
        assert!(ok, "node {port} is not a replica of {master}: {last:?}");
    }
}

fn run_redis_py(new_master: u16, sentinels: &[u16]) {
    let python = require_tool("python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sentinel_client.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(NAME).arg(new_master.to_string());
    for s in sentinels {
        cmd.arg(s.to_string());
    }
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "tests/py/sentinel_client.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// kill -9 the master: a new master is elected and takes writes, the events are Redis's,
/// redis-py finds the new master, the old master comes back as a replica, and a restarted
/// sentinel remembers the new master.
fn failover_end_to_end(kind: Data) {
    let mut c = Cluster::start(kind);
    let events: Vec<Events> = c
        .sentinel_ports
        .iter()
        .map(|&p| Events::subscribe(p))
        .collect();
    let old = c.master;
    let _: () = query(old, &["SET", "before", "1"]).expect("write to the master");
    for n in &c.nodes[1..] {
        assert!(eventually(DEADLINE, || query::<Option<String>>(
            n.port,
            &["GET", "before"]
        )
        .ok()
        .flatten()
        .is_some()));
    }
    c.node(old).kill();
    let new = c.wait_new_master(old);
    assert_ne!(new, old);

    // The new master takes writes and kept the data.
    let _: () = query(new, &["SET", "after", "2"]).expect("write to the new master");
    assert_eq!(query::<String>(new, &["GET", "before"]).unwrap(), "1");
    let other = c.nodes[1..]
        .iter()
        .map(|n| n.port)
        .find(|p| *p != new)
        .unwrap();
    c.wait_replica_of(other, new);

    // Events, with Redis's formats (a loaded machine may let a peer finish the failover
    // before some sentinel reaches ODOWN itself: any of the three counts).
    let master_desc = format!("master {NAME} 127.0.0.1 {old}");
    let any = |name: &str, pred: &dyn Fn(&str) -> bool| {
        events
            .iter()
            .any(|e| e.saw(name, pred, Duration::from_millis(100)))
    };
    assert!(eventually(DEADLINE, || any("+sdown", &|t| t == master_desc)));
    assert!(eventually(DEADLINE, || any("+odown", &|t| t
        .starts_with(&format!("{master_desc} #quorum ")))));
    let switch = format!("{NAME} 127.0.0.1 {old} 127.0.0.1 {new}");
    assert!(eventually(DEADLINE, || any("+switch-master", &|t| t == switch)));
    assert!(any("+new-epoch", &|t| t.parse::<u64>().is_ok()));
    assert!(any("+vote-for-leader", &|t| t.split_once(' ').is_some_and(
        |(id, epoch)| id.len() == 40 && epoch.parse::<u64>().is_ok()
    )));

    // redis-py's Sentinel client finds the new master (RESP3 and RESP2).
    run_redis_py(new, &c.sentinel_ports);

    // The old master, restarted, is turned into a replica of the new one.
    c.nodes.retain(|n| n.port != old);
    c.nodes.push(data_node(kind, Some(old), None));
    c.wait_replica_of(old, new);
    assert_eq!(c.masters(), vec![new]);

    // A sentinel killed and restarted remembers the current master and its id.
    let id: String = query(c.sentinel_ports[2], &["SENTINEL", "MYID"]).unwrap();
    c.sentinels[2].kill();
    c.sentinels[2] = c.start_sentinel(2);
    assert_eq!(master_port(c.sentinel_ports[2]), Some(new));
    let id2: String = query(c.sentinel_ports[2], &["SENTINEL", "MYID"]).unwrap();
    assert_eq!(id, id2);
    let f = master_fields(c.sentinel_ports[2]);
    assert_eq!(f["num-other-sentinels"], "2");
    assert_eq!(f["num-slaves"], "2");
}

#[test]
fn failover_end_to_end_redis_nodes() {
    failover_end_to_end(Data::Redis);
}

#[test]
fn failover_end_to_end_tandem_nodes() {
    failover_end_to_end(Data::Tandem);
}

/// SENTINEL FAILOVER promotes a replica without agreement; the healthy old master becomes a
/// replica; one master in the end.
fn forced_failover(kind: Data) {
    let c = Cluster::start(kind);
    let s0 = c.sentinel_ports[0];
    let events = Events::subscribe(s0);
    let old = c.master;
    let r: String = query(s0, &["SENTINEL", "FAILOVER", NAME]).expect("failover");
    assert_eq!(r, "OK");
    let again = query::<String>(s0, &["SENTINEL", "FAILOVER", NAME]).unwrap_err();
    assert_eq!(again.code(), Some("INPROG"), "{again}");
    let e = query::<String>(s0, &["SENTINEL", "FAILOVER", "nope"]).unwrap_err();
    assert_eq!(e.detail(), Some("No such master with that name"));
    let new = c.wait_new_master(old);
    c.wait_replica_of(old, new);
    let other = c.nodes[1..]
        .iter()
        .map(|n| n.port)
        .find(|p| *p != new)
        .unwrap();
    c.wait_replica_of(other, new);
    assert_eq!(c.masters(), vec![new]);
    let _: () = query(new, &["SET", "k", "v"]).expect("write to the new master");
    events
        .wait("+switch-master", DEADLINE)
        .expect("+switch-master");
    let names = events.names();
    let pos = |n: &str| names.iter().position(|x| x == n);
    let order = [
        "+new-epoch",
        "+try-failover",
        "+elected-leader",
        "+failover-state-select-slave",
        "+selected-slave",
        "+failover-state-send-slaveof-noone",
        "+failover-state-wait-promotion",
        "+promoted-slave",
        "+failover-state-reconf-slaves",
        "+slave-reconf-sent",
        "+failover-end",
        "+switch-master",
    ];
    let positions: Vec<_> = order.iter().map(|n| pos(n)).collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]),
        "events out of order or missing: {names:?}"
    );
    assert_eq!(
        events.wait("+promoted-slave", DEADLINE).unwrap(),
        format!("slave 127.0.0.1:{new} 127.0.0.1 {new} @ {NAME} 127.0.0.1 {old}")
    );
}

#[test]
fn forced_failover_redis_nodes() {
    forced_failover(Data::Redis);
}

#[test]
fn forced_failover_tandem_nodes() {
    forced_failover(Data::Tandem);
}

/// With two of three sentinels stopped, the survivor may see the master objectively down
/// (quorum 1) but never gets a majority: no failover.
fn no_failover_without_majority(kind: Data) {
    let mut c = Cluster::start(kind);
    let s0 = c.sentinel_ports[0];
    c.sentinels[1].kill();
    c.sentinels[2].kill();
    let r: String = query(s0, &["SENTINEL", "SET", NAME, "quorum", "1"]).unwrap();
    assert_eq!(r, "OK");
    // Once the peers are down: quorum reachable, majority not.
    let mut last = String::new();
    assert!(
        eventually(DEADLINE, || {
            match query::<String>(s0, &["SENTINEL", "CKQUORUM", NAME]) {
                Err(e) => {
                    last = e.to_string();
                    e.code() == Some("NOQUORUM")
                        && e.detail()
                            == Some("1 usable Sentinels. Not enough available Sentinels to reach the majority and authorize a failover")
                }
                Ok(s) => {
                    last = s;
                    false
                }
            }
        }),
        "ckquorum: {last}"
    );
    let events = Events::subscribe(s0);
    let old = c.master;
    c.node(old).kill();
    events
        .wait("+odown", DEADLINE)
        .expect("+odown with quorum 1");
    events
        .wait("-failover-abort-not-elected", DEADLINE)
        .expect("-failover-abort-not-elected");
    assert_eq!(master_port(s0), Some(old));
    for n in &c.nodes[1..] {
        assert_eq!(role(n.port), Some(("slave".to_string(), Some(old))));
    }
    assert!(!events.names().contains(&"+elected-leader".to_string()));
}

#[test]
fn no_failover_without_majority_redis_nodes() {
    no_failover_without_majority(Data::Redis);
}

#[test]
fn no_failover_without_majority_tandem_nodes() {
    no_failover_without_majority(Data::Tandem);
}

/// The elected sentinel crashes (SENTINEL SIMULATE-FAILURE) right after its election or
/// right after the promotion: the others finish the job, one master in the end.
fn leader_crash_mid_failover(kind: Data, when: &str) {
    let mut c = Cluster::start(kind);
    for &s in &c.sentinel_ports {
        let r: String = query(s, &["SENTINEL", "SIMULATE-FAILURE", when]).unwrap();
        assert_eq!(r, "OK");
    }
    let old = c.master;
    c.node(old).kill();
    assert!(
        eventually(DEADLINE, || c.sentinels.iter().any(|s| !s.is_running())),
        "no sentinel crashed {when}"
    );
    // Only one crash: the survivors stop simulating (HELP clears the flags, as in Redis).
    for s in c.live_sentinels() {
        let _: redis::Value = query(s, &["SENTINEL", "SIMULATE-FAILURE", "HELP"]).unwrap();
    }
    assert_eq!(
        c.live_sentinels().len(),
        2,
        "more than one sentinel crashed"
    );
    let new = c.wait_new_master(old);
    let other = c.nodes[1..]
        .iter()
        .map(|n| n.port)
        .find(|p| *p != new)
        .unwrap();
    c.wait_replica_of(other, new);
    assert_eq!(c.masters(), vec![new]);
    c.sentinels.retain(|s| s.is_running());
}

#[test]
fn leader_crash_after_election_redis_nodes() {
    leader_crash_mid_failover(Data::Redis, "crash-after-election");
}

#[test]
fn leader_crash_after_promotion_redis_nodes() {
    leader_crash_mid_failover(Data::Redis, "crash-after-promotion");
}

#[test]
fn leader_crash_after_promotion_tandem_nodes() {
    leader_crash_mid_failover(Data::Tandem, "crash-after-promotion");
}

// ---------------------------------------------------------------------------------------------
// The API.

fn hello3(port: u16) -> Raw {
    let mut r = Raw::connect(port);
    let h = r.cmd(&["HELLO", "3"]);
    assert!(matches!(h, Resp::Map(_)), "{h:?}");
    r
}

fn map_keys(r: &Resp) -> Vec<String> {
    match r {
        Resp::Map(pairs) => pairs.iter().map(|(k, _)| k.text()).collect(),
        Resp::Array(items) => items.chunks(2).map(|kv| kv[0].text()).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn map_get(r: &Resp, key: &str) -> Resp {
    match r {
        Resp::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.text() == key)
            .map(|(_, v)| v.clone()),
        Resp::Array(items) => items
            .chunks(2)
            .find(|kv| kv[0].text() == key)
            .map(|kv| kv[1].clone()),
        _ => None,
    }
    .unwrap_or_else(|| panic!("no {key} in {r:?}"))
}

const MASTER_KEYS: &[&str] = &[
    "name",
    "ip",
    "port",
    "runid",
    "flags",
    "link-pending-commands",
    "link-refcount",
    "last-ping-sent",
    "last-ok-ping-reply",
    "last-ping-reply",
    "down-after-milliseconds",
    "info-refresh",
    "role-reported",
    "role-reported-time",
    "config-epoch",
    "num-slaves",
    "num-other-sentinels",
    "quorum",
    "failover-timeout",
    "parallel-syncs",
];

#[test]
fn api_replies_and_events() {
    let mut c = Cluster::start(Data::Redis);
    let s0 = c.sentinel_ports[0];
    let m = c.master;
    let mut r2 = Raw::connect(s0);
    let mut r3 = hello3(s0);

    // get-master-addr-by-name: [ip, "port"], null for unknown names.
    assert_eq!(
        r2.cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME]),
        Resp::bulks(&["127.0.0.1", &m.to_string()])
    );
    assert_eq!(
        r2.cmd(&["SENTINEL", "get-master-addr-by-name", "nope"]),
        Resp::NullArray
    );
    assert_eq!(
        r3.cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "nope"]),
        Resp::Null
    );

    // masters / master: flat arrays in RESP2, maps in RESP3, every value a bulk string.
    let masters = r2.cmd(&["SENTINEL", "MASTERS"]);
    let Resp::Array(ms) = &masters else {
        panic!("{masters:?}")
    };
    assert_eq!(ms.len(), 1);
    assert_eq!(map_keys(&ms[0]), MASTER_KEYS);
    let master = r3.cmd(&["SENTINEL", "MASTER", NAME]);
    assert!(matches!(master, Resp::Map(_)));
    assert_eq!(map_keys(&master), MASTER_KEYS);
    if let Resp::Map(pairs) = &master {
        assert!(
            pairs.iter().all(|(_, v)| matches!(v, Resp::Bulk(_))),
            "{master:?}"
        );
    }
    assert_eq!(map_get(&master, "flags"), Resp::bulk("master"));
    assert_eq!(map_get(&master, "port"), Resp::bulk(&m.to_string()));
    assert_eq!(map_get(&master, "quorum"), Resp::bulk("2"));
    assert_eq!(map_get(&master, "num-slaves"), Resp::bulk("2"));
    assert_eq!(map_get(&master, "num-other-sentinels"), Resp::bulk("2"));
    assert_eq!(
        map_get(&master, "down-after-milliseconds"),
        Resp::bulk(DOWN_AFTER_MS)
    );
    assert_eq!(
        map_get(&master, "failover-timeout"),
        Resp::bulk(FAILOVER_TIMEOUT_MS)
    );
    assert_eq!(map_get(&master, "runid").text().len(), 40);
    assert_eq!(
        r2.cmd(&["SENTINEL", "MASTER", "nope"]),
        Resp::Error("ERR No such master with that name".into())
    );

    // replicas / slaves.
    for sub in ["REPLICAS", "SLAVES"] {
        let reps = r2.cmd(&["SENTINEL", sub, NAME]);
        let Resp::Array(items) = &reps else {
            panic!("{reps:?}")
        };
        assert_eq!(items.len(), 2);
        for r in items {
            assert_eq!(map_get(r, "flags"), Resp::bulk("slave"));
            assert_eq!(map_get(r, "master-port"), Resp::bulk(&m.to_string()));
            assert_eq!(map_get(r, "master-link-status"), Resp::bulk("ok"));
            assert_eq!(map_get(r, "slave-priority"), Resp::bulk("100"));
            let name = map_get(r, "name").text();
            assert_eq!(name, format!("127.0.0.1:{}", map_get(r, "port").text()));
        }
    }
    // sentinels: the two peers, by run id.
    let peers = r3.cmd(&["SENTINEL", "SENTINELS", NAME]);
    let Resp::Array(items) = &peers else {
        panic!("{peers:?}")
    };
    assert_eq!(items.len(), 2);
    let ids: Vec<String> = c.sentinel_ports[1..]
        .iter()
        .map(|&p| query::<String>(p, &["SENTINEL", "MYID"]).unwrap())
        .collect();
    for p in items {
        assert!(ids.contains(&map_get(p, "runid").text()));
        assert_eq!(map_get(p, "flags"), Resp::bulk("sentinel"));
        assert_eq!(map_get(p, "voted-leader"), Resp::bulk("?"));
    }

    // ckquorum, myid, ping, role, info.
    assert_eq!(
        r2.cmd(&["SENTINEL", "CKQUORUM", NAME]),
        Resp::Simple(
            "OK 3 usable Sentinels. Quorum and failover authorization can be reached".into()
        )
    );
    let myid = r2.cmd(&["SENTINEL", "MYID"]).text();
    assert!(myid.len() == 40 && myid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(r2.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(r2.cmd(&["PING", "hi"]), Resp::bulk("hi"));
    assert_eq!(
        r2.cmd(&["ROLE"]),
        Resp::Array(vec![Resp::bulk("sentinel"), Resp::bulks(&[NAME])])
    );
    let info = r2.cmd(&["INFO", "sentinel"]).text();
    assert!(
        info.starts_with("# Sentinel\r\nsentinel_masters:1\r\nsentinel_tilt:0\r\n"),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "master0:name={NAME},status=ok,address=127.0.0.1:{m},slaves=2,sentinels=3\r\n"
        )),
        "{info}"
    );
    let all = r2.cmd(&["INFO"]).text();
    assert!(all.contains("redis_mode:sentinel") && all.contains(&format!("run_id:{myid}")));
    assert!(matches!(r3.cmd(&["INFO"]), Resp::Bulk(..)));

    // is-master-down-by-addr: state, then votes (one per epoch, first come).
    assert_eq!(
        r2.cmd(&[
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "127.0.0.1",
            &m.to_string(),
            "0",
            "*"
        ]),
        Resp::Array(vec![Resp::Int(0), Resp::bulk("*"), Resp::Int(0)])
    );
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    assert_eq!(
        r2.cmd(&[
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "127.0.0.1",
            &m.to_string(),
            "100",
            &a
        ]),
        Resp::Array(vec![Resp::Int(0), Resp::bulk(&a), Resp::Int(100)])
    );
    assert_eq!(
        r2.cmd(&[
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "127.0.0.1",
            &m.to_string(),
            "100",
            &b
        ]),
        Resp::Array(vec![Resp::Int(0), Resp::bulk(&a), Resp::Int(100)])
    );
    assert_eq!(
        r2.cmd(&[
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "127.0.0.1",
            "x",
            "0",
            "*"
        ]),
        Resp::Error("ERR value is not an integer or out of range".into())
    );

    // set.
    assert_eq!(
        r2.cmd(&[
            "SENTINEL",
            "SET",
            NAME,
            "down-after-milliseconds",
            "1500",
            "parallel-syncs",
            "2"
        ]),
        Resp::Simple("OK".into())
    );
    assert_eq!(master_fields(s0)["down-after-milliseconds"], "1500");
    assert_eq!(master_fields(s0)["parallel-syncs"], "2");
    assert_eq!(
        r2.cmd(&["SENTINEL", "SET", NAME, "foo", "1"]),
        Resp::Error("ERR Unknown option or number of arguments for SENTINEL SET 'foo'".into())
    );
    assert_eq!(
        r2.cmd(&["SENTINEL", "SET", NAME, "quorum", "0"]),
        Resp::Error("ERR Invalid argument '0' for SENTINEL SET 'quorum'".into())
    );
    assert_eq!(
        r2.cmd(&["SENTINEL", "SET", NAME, "quorum"]),
        Resp::Error("ERR wrong number of arguments for 'sentinel|set' command".into())
    );
    assert_eq!(
        r2.cmd(&["SENTINEL", "SET", "nope", "quorum", "1"]),
        Resp::Error("ERR No such master with that name".into())
    );

    // monitor / remove.
    let unused = free_port().to_string();
    assert_eq!(
        r2.cmd(&["SENTINEL", "MONITOR", "other", "127.0.0.1", &unused, "1"]),
        Resp::Simple("OK".into())
    );
    for (args, err) in [
        (
            ["SENTINEL", "MONITOR", "other", "127.0.0.1", "1", "1"],
            "ERR Duplicate master name.",
        ),
        (
            ["SENTINEL", "MONITOR", "x", "localhost", "1", "1"],
            "ERR Invalid IP address or hostname specified",
        ),
        (
            ["SENTINEL", "MONITOR", "x", "127.0.0.1", "p", "1"],
            "ERR Invalid port",
        ),
        (
            ["SENTINEL", "MONITOR", "x", "127.0.0.1", "1", "0"],
            "ERR Quorum must be 1 or greater.",
        ),
    ] {
        assert_eq!(r2.cmd(&args), Resp::Error(err.into()), "{args:?}");
    }
    assert_eq!(
        r2.cmd(&["ROLE"]),
        Resp::Array(vec![Resp::bulk("sentinel"), Resp::bulks(&[NAME, "other"])])
    );
    let other = r2.cmd(&["SENTINEL", "MASTER", "other"]);
    assert_eq!(
        map_get(&other, "down-after-milliseconds"),
        Resp::bulk("30000")
    );
    assert_eq!(map_get(&other, "failover-timeout"), Resp::bulk("180000"));
    assert_eq!(
        r2.cmd(&["SENTINEL", "REMOVE", "other"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(
        r2.cmd(&["SENTINEL", "REMOVE", "other"]),
        Resp::Error("ERR No such master with that name".into())
    );

    // Errors with Redis's texts.
    for (args, err) in [
        (
            &["FOO", "bar"][..],
            "ERR unknown command 'FOO', with args beginning with: 'bar' ",
        ),
        (
            &["SENTINEL", "FOO"][..],
            "ERR unknown subcommand 'FOO'. Try SENTINEL HELP.",
        ),
        (
            &["SENTINEL", "MASTERS", "x"][..],
            "ERR wrong number of arguments for 'sentinel|masters' command",
        ),
        (
            &["SENTINEL"][..],
            "ERR wrong number of arguments for 'sentinel' command",
        ),
        (
            &["PUBLISH", "ch", "x"][..],
            "ERR Only HELLO messages are accepted by Sentinel instances.",
        ),
    ] {
        assert_eq!(r2.cmd(args), Resp::Error(err.into()), "{args:?}");
    }

    // reset: forgets replicas and peers, which are found again.
    assert_eq!(r2.cmd(&["SENTINEL", "RESET", "nomatch*"]), Resp::Int(0));
    assert_eq!(r2.cmd(&["SENTINEL", "RESET", "my*"]), Resp::Int(1));
    assert!(eventually(DEADLINE, || {
        let f = master_fields(s0);
        f.get("num-slaves").map(String::as_str) == Some("2")
            && f.get("num-other-sentinels").map(String::as_str) == Some("2")
    }));

    // Pub/sub: a replica killed gives +sdown with the replica's %@ form.
    let mut sub = Raw::connect(s0);
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "+sdown"]),
        Resp::Array(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("+sdown"),
            Resp::Int(1)
        ])
    );
    assert_eq!(
        sub.cmd(&["INFO"]),
        Resp::Error("ERR Can't execute 'info': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".into())
    );
    assert_eq!(
        sub.cmd(&["PING"]),
        Resp::Array(vec![Resp::bulk("pong"), Resp::bulk("")])
    );
    let victim = c.nodes[2].port;
    c.nodes[2].kill();
    assert_eq!(
        sub.read(),
        Resp::Array(vec![
            Resp::bulk("message"),
            Resp::bulk("+sdown"),
            Resp::bulk(&format!(
                "slave 127.0.0.1:{victim} 127.0.0.1 {victim} @ {NAME} 127.0.0.1 {m}"
            )),
        ])
    );
    let reps = r2.cmd(&["SENTINEL", "REPLICAS", NAME]);
    let Resp::Array(items) = &reps else {
        panic!("{reps:?}")
    };
    let dead = items
        .iter()
        .find(|r| map_get(r, "port").text() == victim.to_string())
        .expect("the dead replica is still known");
    assert_eq!(
        map_get(dead, "flags"),
        Resp::bulk("s_down,slave,disconnected")
    );
    // RESP3 subscribers get push messages.
    let mut sub3 = hello3(s0);
    sub3.send_cmd(&["SUBSCRIBE", "-sdown"]);
    assert!(matches!(sub3.read(), Resp::Push(_)));
}

/// The same requests to Debian's redis-sentinel and to a Tandem sentinel watching the same
/// master: same reply types and error texts, same field names. The two also find each
/// other through hello messages (the formats are compatible).
#[test]
fn replies_match_redis_sentinel() {
    require_tool("redis-server");
    let master = data_node(Data::Redis, None, None);
    let replica = data_node(Data::Redis, None, Some(master.port));
    let m = master.port.to_string();
    let down_after = format!("sentinel down-after-milliseconds {NAME} 1000");
    let failover_timeout = format!("sentinel failover-timeout {NAME} 3000");
    let theirs = Proc::redis_sentinel(NAME, master.port, 2, &[&down_after, &failover_timeout]);
    let state = tempfile::tempdir().unwrap();
    let ours = Proc::sentinel(
        free_port(),
        state.path(),
        &[
            "--monitor",
            NAME,
            "127.0.0.1",
            &m,
            "2",
            "--down-after-ms",
            "1000",
        ],
    );
    // Each finds the replica and the other sentinel.
    for p in [ours.port, theirs.port] {
        assert!(
            eventually(DEADLINE, || {
                let f = master_fields(p);
                f.get("num-slaves").map(String::as_str) == Some("1")
                    && f.get("num-other-sentinels").map(String::as_str) == Some("1")
            }),
            "sentinel {p}: {:?}",
            master_fields(p)
        );
    }
    let shape = |r: &Resp| -> String {
        match r {
            Resp::Error(e) => format!("-{e}"),
            Resp::Simple(s) => format!("+{}", s.split(' ').next().unwrap_or("")),
            Resp::Int(_) => ":".into(),
            Resp::Bulk(_) => "$".into(),
            Resp::NullBulk => "$-1".into(),
            Resp::NullArray => "*-1".into(),
            Resp::Null => "_".into(),
            Resp::Array(items) => format!("*{}", items.len()),
            Resp::Map(pairs) => format!(
                "%[{}]",
                pairs
                    .iter()
                    .map(|(k, _)| k.text())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Resp::Push(items) => format!(">{}", items.len()),
            Resp::Verbatim(f, _) => format!("={f}"),
            other => format!("{other:?}"),
        }
    };
    let script: Vec<Vec<String>> = [
        vec!["PING"],
        vec!["SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME],
        vec!["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "nope"],
        vec!["SENTINEL", "MASTER", NAME],
        vec!["SENTINEL", "MASTER", "nope"],
        vec!["SENTINEL", "MASTERS"],
        vec!["SENTINEL", "MASTERS", "x"],
        vec!["SENTINEL", "REPLICAS", "nope"],
        vec!["SENTINEL", "CKQUORUM", NAME],
        vec!["SENTINEL", "CKQUORUM", "nope"],
        vec!["SENTINEL", "MYID"],
        vec![
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "127.0.0.1",
            &m,
            "0",
            "*",
        ],
        vec![
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "127.0.0.1",
            "x",
            "0",
            "*",
        ],
        vec![
            "SENTINEL",
            "IS-MASTER-DOWN-BY-ADDR",
            "10.9.9.9",
            "1",
            "0",
            "*",
        ],
        vec!["SENTINEL", "SET", NAME, "foo", "1"],
        vec!["SENTINEL", "SET", NAME, "quorum", "x"],
        vec!["SENTINEL", "SET", NAME, "quorum"],
        vec!["SENTINEL", "MONITOR", NAME, "127.0.0.1", &m, "2"],
        vec!["SENTINEL", "MONITOR", "x", "localhost", "1", "1"],
        vec!["SENTINEL", "MONITOR", "x", "127.0.0.1", "y", "1"],
        vec!["SENTINEL", "MONITOR", "x", "127.0.0.1", "1", "0"],
        vec!["SENTINEL", "FAILOVER", "nope"],
        vec!["SENTINEL", "REMOVE", "nope"],
        vec!["SENTINEL", "RESET", "nomatch*"],
        vec!["SENTINEL", "FOO"],
        vec!["SENTINEL"],
        vec!["SENTINEL", "SIMULATE-FAILURE", "bogus"],
        vec!["ROLE"],
        vec!["FOO", "bar"],
        vec!["PUBLISH", "ch", "x"],
        vec!["AUTH", "pw"],
        vec!["HELLO", "4"],
        vec!["INFO", "sentinel"],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect();
    for resp3 in [false, true] {
        let (mut a, mut b) = if resp3 {
            (hello3(ours.port), hello3(theirs.port))
        } else {
            (Raw::connect(ours.port), Raw::connect(theirs.port))
        };
        for cmd in &script {
            let (x, y) = (a.cmd(cmd), b.cmd(cmd));
            assert_eq!(
                shape(&x),
                shape(&y),
                "{cmd:?} (resp3: {resp3}): {x:?} vs {y:?}"
            );
        }
        // Field names of every instance kind.
        for sub in ["REPLICAS", "SENTINELS"] {
            let (x, y) = (
                a.cmd(&["SENTINEL", sub, NAME]),
                b.cmd(&["SENTINEL", sub, NAME]),
            );
            let keys = |r: &Resp| match r {
                Resp::Array(items) => items.iter().map(map_keys).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            };
            let mut kx = keys(&x);
            let ky = keys(&y);
            // Redis 7.0 lists replica-announced only from 7.0.x with that field; compare what it has.
            for k in kx.iter_mut() {
                if !ky.iter().flatten().any(|f| f == "replica-announced") {
                    k.retain(|f| f != "replica-announced");
                }
            }
            assert_eq!(kx, ky, "SENTINEL {sub} field names (resp3: {resp3})");
        }
    }
    drop(replica);
}

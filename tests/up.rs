//! `tandem up`: one command starts 3 nodes, 3 sentinels and the proxy; the endpoints table
//! comes first with the proxy; data written through the proxy reaches the replicas; metrics
//! answer; Ctrl-C (SIGINT) stops every process.

mod common;

use common::{eventually, free_port, panic_excerpt, Raw, Resp, PANIC_LINES};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `n` consecutive free ports (the deployment numbers its nodes and sentinels from a base).
fn free_run(n: u16) -> u16 {
    for _ in 0..200 {
        let base = 20000 + (free_port() % 30000);
        let Some(last) = base.checked_add(n) else {
            continue;
        };
        if (base..last).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no run of {n} free ports");
}

/// The `tandem up` process group, killed on drop (the children too).
struct Up {
    child: Child,
}

impl Drop for Up {
    fn drop(&mut self) {
        let pg = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pg, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn port_closed(p: u16) -> bool {
    TcpStream::connect(("127.0.0.1", p)).is_err()
}

#[test]
fn up_starts_everything_serves_through_the_proxy_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = free_run(3);
    let sentinels = free_run(3);
    let proxy = free_port();
    let metrics = free_port();
    let log = dir.path().join("up.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["up", "--dir"])
        .arg(dir.path().join("data"))
        .args(["--proxy-port", &proxy.to_string()])
        .args(["--node-port", &nodes.to_string()])
        .args(["--sentinel-port", &sentinels.to_string()])
        .args(["--metrics-port", &metrics.to_string()])
        .args(["--down-after-ms", "1000", "--failover-timeout-ms", "5000"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut up = Up { child };
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(90), || read_log()
            .contains("deployment ready")),
        "tandem up never became ready:\n{}",
        read_log()
    );
    // The table lists the proxy first.
    let text = read_log();
    let table = &text[text.find("deployment ready").unwrap()..];
    let proxy_at = table.find(&format!("127.0.0.1:{proxy}")).unwrap();
    let node_at = table.find(&format!("127.0.0.1:{nodes}")).unwrap();
    assert!(proxy_at < node_at, "proxy is not first:\n{table}");
    assert!(table.contains(&format!("http://127.0.0.1:{metrics}/metrics")));

    // Writes through the proxy land on the master and reach both replicas.
    let mut p = Raw::connect(proxy);
    assert!(eventually(Duration::from_secs(30), || p
        .cmd(&["SET", "up:key", "hello"])
        == Resp::Simple("OK".into())));
    assert_eq!(p.cmd(&["GET", "up:key"]), Resp::bulk("hello"));
    for replica in [nodes + 1, nodes + 2] {
        let mut r = Raw::connect(replica);
        assert!(
            eventually(Duration::from_secs(30), || r.cmd(&["GET", "up:key"])
                == Resp::bulk("hello")),
            "replica {replica} never got the write"
        );
    }

    // Metrics answer over HTTP.
    let mut m = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    m.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    m.read_to_string(&mut body).unwrap();
    assert!(
        body.starts_with("HTTP/1.") && body.contains(" 200 "),
        "{body}"
    );

    // Ctrl-C stops everything.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut exited = false;
    for _ in 0..300 {
        if up.child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(exited, "tandem up did not exit on SIGINT:\n{}", read_log());
    for port in [
        proxy,
        nodes,
        nodes + 1,
        nodes + 2,
        sentinels,
        sentinels + 1,
        sentinels + 2,
    ] {
        assert!(port_closed(port), "port {port} still open after stop");
    }
    let text = read_log();
    assert!(text.contains("all stopped"));
    assert_eq!(
        panic_excerpt(&text, PANIC_LINES),
        None,
        "a component panicked"
    );
}

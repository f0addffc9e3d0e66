//! Test harness shared by the integration tests: starts the real `tandem` binary (or
//! redis-server) on a free loopback port in a temp dir, waits until PING answers, and kills
//! the process on drop. Tests never share ports or directories.
#![allow(dead_code)]

pub mod compare;
pub mod exact;
pub mod query;
pub mod repl;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started process may take to answer PING.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Picks a free loopback port for a server a test starts. Ports come from below Linux's
/// ephemeral range (32768-60999): the kernel never gives those to outgoing connections, so
/// a port found free here stays free until the server binds it (a port from `bind(0)` could
/// be taken meanwhile by any connection's local end). Each port is handed out at most once
/// per test process, so parallel tests never pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const HIGH: u32 = 32_000;
    // Test binaries run one after another; each starts at its own place in the range.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let _ = NEXT.compare_exchange(
        0,
        LOW + (std::process::id() * 7919) % (HIGH - LOW),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..(HIGH - LOW) {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (LOW + (n - LOW) % (HIGH - LOW)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on loopback in {LOW}..{HIGH}")
}

/// Runs `tandem bench ARGS --json` (ARGS split at whitespace; a fault scenario starts and
/// stops its own deployment), asserts that it succeeded (`hint` is added to the failure
/// message), and returns its JSON report.
pub fn bench_scenario(args: &str, hint: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("bench")
        .args(args.split_whitespace())
        .arg("--json")
        .output()
        .expect("cannot run tandem bench");
    assert!(
        out.status.success(),
        "tandem bench {args} failed: {}\n{}{hint}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A running server process, killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `tandem node` with extra flags on a free port.
    pub fn node(extra: &[&str]) -> Proc {
        Self::node_in(tempfile::tempdir().expect("tempdir"), extra)
    }

    /// Starts `tandem node` in an existing directory (restart tests: take it from a stopped
    /// `Proc` with [`Proc::take_dir`]). Full syncs start at once
    /// (`--repl-diskless-sync-delay 0`) unless `extra` sets the delay.
    pub fn node_in(dir: tempfile::TempDir, extra: &[&str]) -> Proc {
        let port = free_port();
        let log = dir.path().join("node.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.arg("node")
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir.path())
            .args(extra);
        if !extra.contains(&"--repl-diskless-sync-delay") {
            cmd.args(["--repl-diskless-sync-delay", "0"]);
        }
        Self::spawn(cmd, port, dir, log)
    }

    /// Starts Debian's redis-server on a free port (for side-by-side tests).
    pub fn redis_server(extra: &[&str]) -> Proc {
        Self::redis_server_at(tempfile::tempdir().expect("tempdir"), free_port(), extra)
    }

    /// Starts redis-server in an existing directory.
    pub fn redis_server_in(dir: tempfile::TempDir, extra: &[&str]) -> Proc {
        Self::redis_server_at(dir, free_port(), extra)
    }

    /// Starts redis-server on a given port (e.g. to restart a killed node in place).
    pub fn redis_server_on(port: u16, extra: &[&str]) -> Proc {
        Self::redis_server_at(tempfile::tempdir().expect("tempdir"), port, extra)
    }

    fn redis_server_at(dir: tempfile::TempDir, port: u16, extra: &[&str]) -> Proc {
        require_tool("redis-server");
        let log = dir.path().join("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir.path())
            .arg("--save")
            .arg("")
            .args(extra);
        Self::spawn(cmd, port, dir, log)
    }

    /// Starts `tandem sentinel` on `port` with its state file in `state_dir` (kept by the
    /// caller, so a restarted sentinel finds its state again).
    pub fn sentinel(port: u16, state_dir: &Path, extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("sentinel.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.env("RUST_LOG", "info")
            .arg("sentinel")
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(state_dir)
            .args(extra);
        Self::spawn(cmd, port, dir, log)
    }

    /// Starts `tandem proxy` on a free port with extra flags (`--master`, `--sentinels`,
    /// ...); `--metrics` is off unless given. Ready means PING answers (the proxy answers
    /// PING itself, even with no backend).
    pub fn proxy(extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("proxy.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.arg("proxy")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        if !extra.contains(&"--metrics") {
            cmd.arg("--metrics").arg("");
        }
        cmd.args(extra).env("RUST_LOG", "tandem_proxy=debug,info");
        Self::spawn(cmd, port, dir, log)
    }

    /// Starts Redis Sentinel (`redis-server sentinel.conf --sentinel`) on a free port,
    /// monitoring `name` at `master` with `quorum`; `extra_conf` lines are appended.
    pub fn redis_sentinel(name: &str, master: u16, quorum: u32, extra_conf: &[&str]) -> Proc {
        require_tool("redis-server");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("sentinel.log");
        let conf = dir.path().join("sentinel.conf");
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {master} {quorum}\n",
            dir.path().display()
        );
        for l in extra_conf {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&conf, text).expect("sentinel.conf");
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf).arg("--sentinel");
        Self::spawn(cmd, port, dir, log)
    }

    /// The process id (for signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The log written so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `cmd` with its output in `log`, and waits until `port` answers PING.
    pub fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir, log: PathBuf) -> Proc {
        let logf = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdout(Stdio::from(logf.try_clone().expect("log")))
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("cannot start server process");
        let p = Proc {
            child: Some(child),
            port,
            dir,
            log,
        };
        p.wait_ready();
        p
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Polls PING until it answers (or panics with the process log after READY_TIMEOUT).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
                if pong.is_ok() || matches!(&pong, Err(e) if e.code() == Some("NOAUTH")) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "server on port {} not ready; log:\n{}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// A new synchronous redis-rs connection.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect")
    }

    /// Kills the process (kill -9) and hands over its directory, to start another in it.
    pub fn take_dir(mut self) -> tempfile::TempDir {
        self.kill();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is still running (without reaping it: works through `&self`).
    pub fn is_running(&self) -> bool {
        let Some(pid) = self.child.as_ref().map(|c| c.id()) else {
            return false;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(status) => !status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z')),
            Err(_) => false,
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// Lines of a process's panic quoted in the failing test's message (message and backtrace).
pub const PANIC_LINES: usize = 40;

/// The panic a process's log shows, quoted: the one check shared with the bench scenarios.
pub use tandem_bench::scenario::deploy::panic_excerpt;

impl Drop for Proc {
    /// Kills the process; a panic in its log fails the test (a thread that panicked on some
    /// input may have been restarted or hidden behind a retry, but it is a defect).
    fn drop(&mut self) {
        self.kill();
        if let Some(excerpt) = panic_excerpt(&self.log_text(), PANIC_LINES) {
            if !std::thread::panicking() {
                panic!("{} panicked: {excerpt}", self.log.display());
            }
        }
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Raw RESP over TCP: for tests that need exact bytes, broken input or RESP3 types as sent.

use std::io::{Read, Write};
use std::net::TcpStream;

/// How long a raw read waits before the test fails.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// A reply as it came over the wire, RESP2 and RESP3 types kept apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:...`
    Int(i64),
    /// `$n` (`$-1` is `NullBulk`)
    Bulk(Vec<u8>),
    NullBulk,
    /// `*n` (`*-1` is `NullArray`)
    Array(Vec<Resp>),
    NullArray,
    /// RESP3 `_`
    Null,
    /// RESP3 `%n`
    Map(Vec<(Resp, Resp)>),
    /// RESP3 `~n`
    Set(Vec<Resp>),
    /// RESP3 `>n`
    Push(Vec<Resp>),
    /// RESP3 `,` (kept as text, as sent)
    Double(String),
    /// RESP3 `#t` / `#f`
    Bool(bool),
    /// RESP3 `=n` (format, body)
    Verbatim(String, Vec<u8>),
    /// RESP3 `(`
    BigNumber(String),
}

impl Resp {
    /// A bulk string from text.
    pub fn bulk(s: &str) -> Resp {
        Resp::Bulk(s.as_bytes().to_vec())
    }
    /// An array of bulk strings.
    pub fn bulks(items: &[&str]) -> Resp {
        Resp::Array(items.iter().map(|s| Resp::bulk(s)).collect())
    }
    /// The error text, or panics naming what came instead.
    pub fn err_text(&self) -> &str {
        match self {
            Resp::Error(e) => e,
            other => panic!("expected an error reply, got {other:?}"),
        }
    }
    /// Bulk or simple string as text (panics otherwise).
    pub fn text(&self) -> String {
        match self {
            Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Resp::Simple(s) => s.clone(),
            Resp::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
}

/// Encodes a command as a RESP multibulk.
pub fn encode_cmd<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw TCP connection with a buffered RESP2/RESP3 reader.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("raw connect");
        stream.set_read_timeout(Some(RAW_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).ok();
        Raw {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw write");
    }

    /// Writes bytes; false if the server already closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Sends one command as a multibulk.
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send(&encode_cmd(args));
    }

    /// Sends a command and reads its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Resp {
        self.send_cmd(args);
        self.read()
    }

    fn fill(&mut self) -> bool {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => panic!("raw read failed (timeout {RAW_TIMEOUT:?}?): {e}"),
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let s = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return s;
            }
            if !self.fill() {
                panic!(
                    "connection closed in the middle of a reply line; buffered: {:?}",
                    String::from_utf8_lossy(&self.buf[self.pos..])
                );
            }
        }
    }

    fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() - self.pos < n + 2 {
            if !self.fill() {
                panic!("connection closed in the middle of a bulk reply");
            }
        }
        let v = self.buf[self.pos..self.pos + n].to_vec();
        assert_eq!(&self.buf[self.pos + n..self.pos + n + 2], b"\r\n");
        self.pos += n + 2;
        v
    }

    /// Reads one complete reply (panics on timeout, close, or malformed input).
    pub fn read(&mut self) -> Resp {
        let l = self.line();
        let (kind, rest) = l.split_at(1.min(l.len()));
        let num = || -> i64 {
            rest.parse()
                .unwrap_or_else(|_| panic!("bad length in reply line {l:?}"))
        };
        match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(num()),
            "$" => match num() {
                -1 => Resp::NullBulk,
                n => Resp::Bulk(self.exact(n as usize)),
            },
            "*" => match num() {
                -1 => Resp::NullArray,
                n => Resp::Array((0..n).map(|_| self.read()).collect()),
            },
            "~" => Resp::Set((0..num()).map(|_| self.read()).collect()),
            ">" => Resp::Push((0..num()).map(|_| self.read()).collect()),
            "%" => Resp::Map((0..num()).map(|_| (self.read(), self.read())).collect()),
            "_" => Resp::Null,
            "," => Resp::Double(rest.to_string()),
            "#" => Resp::Bool(rest == "t"),
            "(" => Resp::BigNumber(rest.to_string()),
            "=" => {
                let body = self.exact(num() as usize);
                let fmt = String::from_utf8_lossy(&body[..3.min(body.len())]).into_owned();
                Resp::Verbatim(fmt, body[4.min(body.len())..].to_vec())
            }
            _ => panic!("unexpected reply line {l:?}"),
        }
    }

    /// True once the server has closed the connection (reads pending bytes until EOF;
    /// false if it is still open after `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).ok();
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + wait;
        let r = loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
            if Instant::now() > deadline {
                break false;
            }
        };
        self.stream.set_read_timeout(Some(RAW_TIMEOUT)).ok();
        r
    }
}

/// Asserts the server still answers a new client (PING -> PONG).
pub fn assert_alive(port: u16) {
    let mut r = Raw::connect(port);
    assert_eq!(r.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

/// Path of a tool on PATH, or panics with a message saying how CI installs it.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed or not on PATH: this test needs it \
         (CI installs it with `apt-get install -y redis-server redis-tools`; see .ci/run)"
    );
}

// ---------------------------------------------------------------------------------------------
// A TCP relay a test puts between two processes to cut or stall their link.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

/// Forwards every connection made to `port` on to `target`; the test can cut the current
/// connections (both sides see the link drop), stall forwarding, or refuse new connections.
pub struct Relay {
    pub port: u16,
    state: Arc<RelayState>,
}

struct RelayState {
    stop: AtomicBool,
    stalled: AtomicBool,
    refuse: AtomicBool,
    /// Target-to-client direction only: held (the client stops advancing, its own bytes
    /// still flow) and a delay before each chunk.
    held_back: AtomicBool,
    delay_back_ms: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay bind");
        let port = listener.local_addr().expect("relay addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(RelayState {
            stop: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            held_back: AtomicBool::new(false),
            delay_back_ms: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            while !st.stop.load(AtomicOrdering::Relaxed) {
                match listener.accept() {
                    Ok((a, _)) => {
                        if st.refuse.load(AtomicOrdering::Relaxed) {
                            drop(a);
                            continue;
                        }
                        let Ok(b) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let _ = a.set_nonblocking(false);
                        let _ = a.set_nodelay(true);
                        let _ = b.set_nodelay(true);
                        {
                            let mut c = st.conns.lock().unwrap();
                            c.push(a.try_clone().expect("clone"));
                            c.push(b.try_clone().expect("clone"));
                        }
                        for (from, to, back) in [
                            (
                                a.try_clone().expect("clone"),
                                b.try_clone().expect("clone"),
                                false,
                            ),
                            (b, a, true),
                        ] {
                            let st = st.clone();
                            std::thread::spawn(move || pump(from, to, back, &st));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay { port, state }
    }

    /// Closes every connection going through the relay now (new ones are still accepted).
    pub fn cut(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Stops (true) or resumes (false) forwarding bytes, keeping the connections open.
    pub fn stall(&self, on: bool) {
        self.state.stalled.store(on, AtomicOrdering::Relaxed);
    }

    /// Holds (true) or releases (false) the target-to-client direction only: a replica
    /// behind the relay stops advancing while its ACKs still reach the master.
    pub fn hold_back(&self, on: bool) {
        self.state.held_back.store(on, AtomicOrdering::Relaxed);
    }

    /// Delays every target-to-client chunk by `ms` (0: none).
    pub fn delay_back(&self, ms: u64) {
        self.state.delay_back_ms.store(ms, AtomicOrdering::Relaxed);
    }

    /// Refuses (true) new connections: they are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, AtomicOrdering::Relaxed);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, back: bool, st: &RelayState) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if back {
            let ms = st.delay_back_ms.load(AtomicOrdering::Relaxed);
            if ms > 0 {
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        let held = || {
            st.stalled.load(AtomicOrdering::Relaxed)
                || (back && st.held_back.load(AtomicOrdering::Relaxed))
        };
        while held() && !st.stop.load(AtomicOrdering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.stop.store(true, AtomicOrdering::Relaxed);
        self.cut();
    }
}

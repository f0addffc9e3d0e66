//! Test harness shared by the integration tests: starts the real `tandem` binary (or
//! redis-server) on a free loopback port in a temp dir, waits until PING answers, and kills
//! the process on drop. Tests never share ports or directories.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started process may take to answer PING.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Picks a free loopback port (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on loopback")
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
        let dir = tempfile::tempdir().expect("tempdir");
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
        Self::spawn(cmd, port, dir, log)
    }

    /// Starts Debian's redis-server on a free port (for side-by-side tests).
    pub fn redis_server(extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
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

    fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir, log: PathBuf) -> Proc {
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

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
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

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
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

//! Exact-bytes comparison with redis-server: a raw TCP client that returns each reply's bytes
//! as sent, and [`same_as_redis`], which runs a script against tandem and redis-server and
//! asserts identical replies line by line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Proc;

/// A raw TCP connection that sends commands and returns each reply's exact bytes.
pub struct ExactConn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl ExactConn {
    pub fn connect(port: u16) -> ExactConn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        ExactConn { s, buf: Vec::new() }
    }

    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.s.write_all(&out).unwrap();
        self.read_reply()
    }

    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = reply_len(&self.buf, 0) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read reply");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The end offset of the complete RESP2/RESP3 reply starting at `at`, if it is all there.
pub fn reply_len(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[at + 1..line_end]).ok()?;
    let after = line_end + 2;
    match buf[at] {
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n: i64 = head.parse().ok()?;
            let items = if buf[at] == b'%' { n * 2 } else { n };
            let mut pos = after;
            for _ in 0..items.max(0) {
                pos = reply_len(buf, pos)?;
            }
            Some(pos)
        }
        _ => Some(after),
    }
}

pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

/// Runs `script` (one command per line, words split on spaces) against tandem and
/// redis-server and asserts identical reply bytes for every line.
pub fn same_as_redis(script: &str) {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    let mut a = ExactConn::connect(node.port);
    let mut b = ExactConn::connect(redis.port);
    let mut mismatches = Vec::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split(' ').collect();
        let got = a.cmd(&words);
        let want = b.cmd(&words);
        if got != want && !line.to_ascii_lowercase().starts_with("hello") {
            mismatches.push(format!(
                "{line}\n   tandem: {}\n   redis:  {}",
                show(&got),
                show(&want)
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

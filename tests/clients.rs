//! Real Redis client tools against `tandem node`: redis-cli (arguments, stdin, --pipe,
//! RESP3), redis-benchmark (pipelined and not), and redis-py (tests/py/smoke.py). Where the
//! output is deterministic it is compared with the same tool's output against redis-server.
//! A missing tool fails the test with a message saying how to install it (CI installs them).

mod common;
use common::{require_tool, Proc};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `redis-cli -p PORT args...` -> stdout (asserting exit status 0).
fn cli(port: u16, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new(require_tool("redis-cli"));
    cmd.arg("-p").arg(port.to_string()).args(args);
    let out = run(cmd, stdin);
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn redis_cli_commands() {
    let node = Proc::node(&[]);
    let p = node.port;
    assert_eq!(cli(p, &["PING"], None), "PONG\n");
    assert_eq!(cli(p, &["SET", "greeting", "hello world"], None), "OK\n");
    assert_eq!(cli(p, &["GET", "greeting"], None), "hello world\n");
    assert_eq!(cli(p, &["INCR", "n"], None), "1\n");
    assert_eq!(cli(p, &["RPUSH", "l", "a", "b", "c"], None), "3\n");
    assert_eq!(cli(p, &["LRANGE", "l", "0", "-1"], None), "a\nb\nc\n");
    // Errors go to stdout with the ERR prefix, as redis-cli prints them.
    let out = cli(p, &["GET"], None);
    assert!(
        out.contains("wrong number of arguments for 'get' command"),
        "{out}"
    );
    // -n selects a database.
    assert_eq!(cli(p, &["-n", "2", "SET", "indb2", "x"], None), "OK\n");
    assert_eq!(cli(p, &["-n", "2", "GET", "indb2"], None), "x\n");
    assert_eq!(cli(p, &["GET", "indb2"], None), "\n");
}

#[test]
fn redis_cli_output_matches_redis_server() {
    let node = Proc::node(&[]);
    let redis = Proc::redis_server(&[]);
    // Commands piped on stdin, one per line (redis-cli sends them one by one).
    let script = b"SET a 1\nINCR a\nGET a\nAPPEND a xyz\nGET a\nDEL a\nGET a\nEXISTS a\n\
        HSET h f1 v1 f2 v2\nHGET h f1\nSADD s m1\nSCARD s\nZADD z 1.5 one 2 two\n\
        ZSCORE z one\nZRANGE z 0 -1 WITHSCORES\nLPUSH q x y\nLPOP q\nTYPE q\nTYPE h\n\
        NOSUCHCOMMAND arg\nECHO \"quoted value\"\nMULTI\nSET t 1\nEXEC\nPING\n";
    let ours = cli(node.port, &[], Some(script));
    let theirs = cli(redis.port, &[], Some(script));
    assert_eq!(ours, theirs);
    // RESP3 (-3): maps, sets, doubles and nulls as redis-cli renders them.
    let resp3 = b"HSET h3 f v\nHGETALL h3\nSADD s3 a\nSMEMBERS s3\nZADD z3 2.5 m\n\
        ZSCORE z3 m\nGET missing\nHELLO 3\n";
    let ours = cli(node.port, &["-3"], Some(resp3));
    let theirs = cli(redis.port, &["-3"], Some(resp3));
    // HELLO's id and version legitimately differ: compare up to that reply.
    let cut = |s: &str| s.split("server").next().unwrap_or("").to_string();
    assert_eq!(cut(&ours), cut(&theirs));
    assert!(ours.contains("proto 3\n"), "{ours}");
}

#[test]
fn redis_cli_pipe_mode() {
    let node = Proc::node(&[]);
    let mut input = Vec::new();
    for i in 0..10_000 {
        input.extend_from_slice(&common::encode_cmd(&[
            "SET",
            &format!("pipe:{i}"),
            &format!("value-{i}"),
        ]));
    }
    let out = cli(node.port, &["--pipe"], Some(&input));
    assert!(
        out.contains("errors: 0, replies: 10000"),
        "redis-cli --pipe: {out}"
    );
    assert_eq!(cli(node.port, &["GET", "pipe:9999"], None), "value-9999\n");
    assert_eq!(cli(node.port, &["DBSIZE"], None), "10000\n");
}

fn benchmark(port: u16, pipeline: &str) {
    let mut cmd = Command::new(require_tool("redis-benchmark"));
    cmd.args(["-p", &port.to_string(), "-q", "-n", "2000", "-c", "10"])
        .args(["-t", "set,get,lpush,lpop,incr", "-P", pipeline]);
    let out = run(cmd, None);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "redis-benchmark -P {pipeline} failed:\n{stdout}\n{stderr}"
    );
    let all = format!("{stdout}\n{stderr}");
    for bad in ["ERR", "Error", "error", "WARNING", "WRONGTYPE"] {
        assert!(
            !all.contains(bad),
            "redis-benchmark -P {pipeline} reported {bad:?}:\n{all}"
        );
    }
    // One "requests per second" line per test.
    for t in ["SET", "GET", "LPUSH", "LPOP", "INCR"] {
        assert!(
            // Progress lines end in \r, final ones in \n.
            stdout
                .split(['\r', '\n'])
                .map(str::trim)
                .any(|l| l.starts_with(&format!("{t}:")) && l.contains("requests per second")),
            "no result line for {t} (-P {pipeline}):\n{stdout}"
        );
    }
}

#[test]
fn redis_benchmark_runs_without_errors() {
    let node = Proc::node(&[]);
    benchmark(node.port, "1");
    benchmark(node.port, "16");
}

fn python_smoke(port: u16, who: &str) {
    let python = require_tool("python3");
    let check = run(
        {
            let mut c = Command::new(&python);
            c.args(["-c", "import redis"]);
            c
        },
        None,
    );
    assert!(
        check.status.success(),
        "redis-py is not installed for python3 (CI runs `python3 -m pip install redis`): {}",
        text(&check.stderr)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/smoke.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(port.to_string());
    let out = run(cmd, None);
    assert!(
        out.status.success(),
        "tests/py/smoke.py against {who} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn redis_py_smoke() {
    let node = Proc::node(&[]);
    python_smoke(node.port, "tandem node");
}

/// The script's expectations are checked against redis-server too, so they are Redis's.
#[test]
fn redis_py_smoke_script_passes_on_redis_server() {
    let redis = Proc::redis_server(&[]);
    python_smoke(redis.port, "redis-server");
}

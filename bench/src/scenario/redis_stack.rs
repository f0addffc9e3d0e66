//! The Redis deployment the scenarios compare Tandem with (`--stack redis`), set up the way
//! people run it: 3 redis-server 7 (one master, two `replicaof` it), 3 Sentinels
//! (`redis-server sentinel.conf --sentinel`) with the same quorum, down-after-milliseconds,
//! failover-timeout and parallel-syncs as `tandem up`, and twemproxy (nutcracker) as the one
//! endpoint, in front of the master. Twemproxy does not follow failovers itself: the
//! Sentinels' `client-reconfig-script` (`reconfig.sh`) rewrites its YAML with the new master
//! and restarts it on the same port (`nutcracker.sh`). Only the failover leader's call acts,
//! under a lock, and the restart is idempotent. Twemproxy has no reads from replicas.
//! Every process runs in one process group, killed with the [`Deployment`] on drop; configs,
//! data and logs live in its temp dir.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::deploy::{
    DeployOptions, Deployment, Own, ProxyProc, Stack, PROXY_START_TIMEOUT, SERVER_SIDE,
};
use super::relay::Relay;
use super::{free_block, loopback_block, wait_ping, MASTER_NAME};

/// The Sentinels' quorum, as `tandem up` gives its sentinels.
const QUORUM: u32 = 2;
/// Replicas reconfigured at a time after a failover: `tandem sentinel`'s default, which
/// `tandem up` keeps.
const PARALLEL_SYNCS: u32 = 1;
/// How long a freshly started redis-server or Sentinel may take to answer PING.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Starts the Redis deployment on free loopback ports in a temp dir (not yet checked ready:
/// see [`super::deploy::wait_ready`]); with `o.relays` every node behind a [`Relay`], as
/// [`DeployOptions::relays`] says.
pub async fn start(o: &DeployOptions) -> Result<Deployment> {
    let nutcracker = nutcracker_path()?;
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let node_port = free_block(3)?;
    let sentinel_port = free_block(3)?;
    let proxy_port = free_block(1)?;
    let stats_port = free_block(1)?;
    let root = dir.path().to_path_buf();
    let mut relays = Vec::new();
    if o.relays {
        for i in 0..3 {
            relays.push(Relay::start(([127, 0, 0, 1], node_port + i).into()).await?);
        }
    }
    // The port everyone else reaches node i on: its relay's, or its own.
    let reach = |i: u16| {
        relays
            .get(i as usize)
            .map(|r| r.addr.port())
            .unwrap_or(node_port + i)
    };
    let master_port = reach(0);
    for i in 0..3u16 {
        let node_dir = root.join(format!("node-{}", i + 1));
        std::fs::create_dir_all(&node_dir)?;
        let master = (i > 0).then_some(master_port);
        let relay = o.relays.then(|| reach(i));
        std::fs::write(
            node_dir.join("redis.conf"),
            node_conf(node_port + i, &node_dir, master, relay),
        )?;
    }
    // The first redis-server leads the process group everything else joins; the group
    // outlives it when a scenario kills it.
    let first = spawn_node(&root, 0, None, &root.join("node-1.log"), None)?;
    let mut d = Deployment {
        stack: Stack::Redis,
        proxy: format!("127.0.0.1:{proxy_port}"),
        sentinels: loopback_block(sentinel_port, 3),
        nodes: loopback_block(node_port, 3),
        relays,
        own: Some(Own {
            pgid: first.id() as i32,
            dir,
            children: vec![first],
            proxy: ProxyProc::Twemproxy,
        }),
    };
    let pgid = d.pgid();
    let push = |d: &mut Deployment, c: Child| {
        if let Some(own) = &mut d.own {
            own.children.push(c);
        }
    };
    for i in 1..3 {
        let log = root.join(format!("node-{}.log", i + 1));
        let c = spawn_node(&root, i, None, &log, pgid)?;
        push(&mut d, c);
    }
    for (i, n) in d.nodes.iter().enumerate() {
        let log = root.join(format!("node-{}.log", i + 1));
        wait_ping(n, START_TIMEOUT)
            .await
            .with_context(|| log_tail(&log))?;
    }

    write_script(
        &root.join("nutcracker.sh"),
        &nutcracker_script(&root, &nutcracker, proxy_port, stats_port),
    )?;
    write_script(&root.join("reconfig.sh"), &reconfig_script(&root))?;
    for i in 0..3u16 {
        let sdir = root.join(format!("sentinel-{}", i + 1));
        std::fs::create_dir_all(&sdir)?;
        let conf = sdir.join("sentinel.conf");
        std::fs::write(
            &conf,
            sentinel_conf(sentinel_port + i, &sdir, master_port, o),
        )?;
        let c = spawn_redis(
            &[conf.display().to_string(), "--sentinel".into()],
            &root.join(format!("sentinel-{}.log", i + 1)),
            pgid,
        )?;
        push(&mut d, c);
    }
    for (i, s) in d.sentinels.iter().enumerate() {
        let log = root.join(format!("sentinel-{}.log", i + 1));
        wait_ping(s, START_TIMEOUT)
            .await
            .with_context(|| log_tail(&log))?;
    }
    run_nutcracker_script(&root, pgid, Some(&format!("127.0.0.1:{master_port}"))).await?;
    wait_ping(&d.proxy, PROXY_START_TIMEOUT)
        .await
        .with_context(|| log_tail(&root.join("nutcracker.log")))?;
    Ok(d)
}

/// Starts redis-server `i` of the deployment in `dir` with its config file (and
/// `--replicaof HOST PORT` when given), output to `log`, in process group `pgid` (its own
/// when None).
pub fn spawn_node(
    dir: &Path,
    i: usize,
    replicaof: Option<(&str, &str)>,
    log: &Path,
    pgid: Option<i32>,
) -> Result<Child> {
    let conf = dir.join(format!("node-{}", i + 1)).join("redis.conf");
    let mut args = vec![conf.display().to_string()];
    if let Some((h, p)) = replicaof {
        args.extend(["--replicaof".into(), h.into(), p.into()]);
    }
    spawn_redis(&args, log, pgid)
}

fn spawn_redis(args: &[String], log: &Path, pgid: Option<i32>) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(pgid.unwrap_or(0))
        .spawn()
        .with_context(|| {
            format!("cannot start redis-server {args:?} (apt-get install redis-server)")
        })
}

/// Runs `nutcracker.sh` (with the master `HOST:PORT` to point twemproxy at, or the one it
/// has): it returns once twemproxy listens.
pub async fn run_nutcracker_script(
    dir: &Path,
    pgid: Option<i32>,
    master: Option<&str>,
) -> Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("nutcracker-script.log"))?;
    let status = tokio::process::Command::new(dir.join("nutcracker.sh"))
        .args(master)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(pgid.unwrap_or(0))
        .status()
        .await
        .context("cannot run nutcracker.sh")?;
    if !status.success() {
        bail!(
            "nutcracker.sh failed ({status}); {}; {}",
            log_tail(&dir.join("nutcracker-script.log")),
            log_tail(&dir.join("nutcracker.log"))
        );
    }
    Ok(())
}

/// The last lines of a log file, for an error message (the temp dir is gone after the run).
pub fn log_tail(path: &Path) -> String {
    const LINES: usize = 5;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "last lines of {}:\n{}",
        path.display(),
        lines[lines.len().saturating_sub(LINES)..].join("\n")
    )
}

/// The pid of the running twemproxy (from `nutcracker.pid`).
pub fn twemproxy_pid(dir: &Path) -> Result<i32> {
    let f = dir.join("nutcracker.pid");
    let s = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("{} holds {s:?}, not a pid", f.display()))
}

/// Debian installs nutcracker in /usr/sbin, which is not on every PATH.
fn nutcracker_path() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("nutcracker"))
        .find(|p| p.is_file())
        .context("nutcracker (twemproxy) not found (apt-get install nutcracker)")
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

/// redis.conf of a node: as `tandem up` runs its nodes (no save points, no AOF, full syncs
/// without the diskless delay); behind
/// the relay on port `relay` it announces the relay and links from [`SERVER_SIDE`].
fn node_conf(port: u16, dir: &Path, master_port: Option<u16>, relay: Option<u16>) -> String {
    let mut c = format!(
        "port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\nrepl-diskless-sync-delay 0\n",
        dir.display()
    );
    if let Some(r) = relay {
        c.push_str(&format!(
            "bind-source-addr {SERVER_SIDE}\nreplica-announce-ip 127.0.0.1\nreplica-announce-port {r}\n"
        ));
    }
    if let Some(m) = master_port {
        c.push_str(&format!("replicaof 127.0.0.1 {m}\n"));
    }
    c
}

/// sentinel.conf: monitors the master with `tandem up`'s settings and calls `reconfig.sh`
/// after failovers.
fn sentinel_conf(port: u16, dir: &Path, master_port: u16, o: &DeployOptions) -> String {
    let script = dir.parent().unwrap_or(dir).join("reconfig.sh");
    // Links from SERVER_SIDE; the hello messages would announce that address (taken from the
    // link), where no Sentinel listens.
    let source = if o.relays {
        format!("bind-source-addr {SERVER_SIDE}\nsentinel announce-ip 127.0.0.1\n")
    } else {
        String::new()
    };
    format!(
        "port {port}\nbind 127.0.0.1\ndir {}\n{source}\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {QUORUM}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {}\n\
         sentinel failover-timeout {MASTER_NAME} {}\n\
         sentinel parallel-syncs {MASTER_NAME} {PARALLEL_SYNCS}\n\
         sentinel client-reconfig-script {MASTER_NAME} {}\n",
        dir.display(),
        o.down_after_ms,
        o.failover_timeout_ms,
        script.display()
    )
}

/// `nutcracker.sh [HOST:PORT]`: (re)starts twemproxy on its port, in front of HOST:PORT (the
/// YAML is rewritten) or of the master already in its YAML. Idempotent: when twemproxy
/// already runs in front of HOST:PORT it does nothing. One run at a time (flock).
fn nutcracker_script(dir: &Path, nutcracker: &Path, port: u16, stats_port: u16) -> String {
    format!(
        r#"#!/bin/bash
# nutcracker.sh [HOST:PORT]: (re)starts twemproxy on 127.0.0.1:{port} in front of the master
# HOST:PORT (rewriting its YAML), or of the master already in its YAML when no argument is
# given. Idempotent: nothing happens when it already runs in front of HOST:PORT.
# Written by `tandem bench --stack redis`; reconfig.sh (the Sentinels' client-reconfig-script)
# calls it after a failover.
set -u
DIR='{dir}'
YAML="$DIR/nutcracker.yml"
PIDFILE="$DIR/nutcracker.pid"
exec 9>"$DIR/nutcracker.lock"
flock 9
# A pid is alive when it exists and is not a zombie.
alive() {{ local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }}
pid=$(cat "$PIDFILE" 2>/dev/null || true)
if [ $# -ge 1 ]; then
  if [ -n "$pid" ] && alive "$pid" && grep -qxF "   - $1:1" "$YAML" 2>/dev/null; then
    exit 0
  fi
  cat >"$YAML.tmp" <<EOF
{name}:
  listen: 127.0.0.1:{port}
  hash: fnv1a_64
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  server_connections: 1
  servers:
   - $1:1
EOF
  mv "$YAML.tmp" "$YAML"
fi
if [ -n "$pid" ] && alive "$pid"; then
  kill -TERM "$pid"
  for _ in $(seq 100); do alive "$pid" || break; sleep 0.02; done
  if alive "$pid"; then kill -KILL "$pid"; fi
fi
for _ in $(seq 20); do
  '{nutcracker}' -c "$YAML" -s {stats_port} -a 127.0.0.1 -o "$DIR/nutcracker.log" \
    </dev/null >>"$DIR/nutcracker.log" 2>&1 9>&- &
  new=$!
  echo "$new" >"$PIDFILE"
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then exit 0; fi
    alive "$new" || break
    sleep 0.02
  done
  # It gave up (the old one may still have held a port): start it again.
  kill -KILL "$new" 2>/dev/null
  sleep 0.05
done
echo "nutcracker did not start on 127.0.0.1:{port}" >&2
exit 1
"#,
        dir = dir.display(),
        nutcracker = nutcracker.display(),
        name = MASTER_NAME,
    )
}

/// `reconfig.sh`: the Sentinels' client-reconfig-script.
fn reconfig_script(dir: &Path) -> String {
    format!(
        r#"#!/bin/bash
# The Sentinels' client-reconfig-script: called by each Sentinel after a failover with
#   <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>
# Only the failover leader's call (role "leader") points twemproxy at the new master
# (nutcracker.sh rewrites the YAML and restarts it on the same port, under a lock,
# idempotently); the observers' calls do nothing.
# Written by `tandem bench --stack redis`.
[ "$#" -eq 7 ] || exit 2
[ "$1" = '{MASTER_NAME}' ] && [ "$2" = leader ] || exit 0
exec '{dir}/nutcracker.sh' "$6:$7"
"#,
        dir = dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_the_master_and_tandem_up_settings() {
        let d = Path::new("/tmp/x/node-2");
        let c = node_conf(7002, d, Some(7001), None);
        assert!(c.contains("port 7002\n"), "{c}");
        assert!(c.contains("replicaof 127.0.0.1 7001\n"), "{c}");
        assert!(!c.contains("announce"), "{c}");
        assert!(!node_conf(7001, d, None, None).contains("replicaof"));
        let c = node_conf(7002, d, Some(9001), Some(9002));
        for line in [
            "bind-source-addr 127.0.0.2",
            "replica-announce-ip 127.0.0.1",
            "replica-announce-port 9002",
            "replicaof 127.0.0.1 9001",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} missing in {c}");
        }
        let o = DeployOptions {
            stack: Stack::Redis,
            down_after_ms: 500,
            failover_timeout_ms: 3000,
            write_concern: "master".into(),
            restartable_proxy: false,
            relays: false,
        };
        let s = sentinel_conf(27001, Path::new("/tmp/x/sentinel-1"), 7001, &o);
        for line in [
            "sentinel monitor tandem 127.0.0.1 7001 2",
            "sentinel down-after-milliseconds tandem 500",
            "sentinel failover-timeout tandem 3000",
            "sentinel parallel-syncs tandem 1",
            "sentinel client-reconfig-script tandem /tmp/x/reconfig.sh",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing in {s}");
        }
        assert!(!s.contains("bind-source-addr"), "{s}");
        let o = DeployOptions { relays: true, ..o };
        let s = sentinel_conf(27001, Path::new("/tmp/x/sentinel-1"), 9001, &o);
        assert!(s.lines().any(|l| l == "bind-source-addr 127.0.0.2"), "{s}");
        assert!(
            s.lines().any(|l| l == "sentinel announce-ip 127.0.0.1"),
            "{s}"
        );
        assert!(
            s.contains("sentinel monitor tandem 127.0.0.1 9001 2\n"),
            "{s}"
        );
    }

    /// reconfig.sh acts on the leader's call only, and nutcracker.sh is idempotent: with a
    /// stand-in for nutcracker (a listener that records its start), the observer's call
    /// starts nothing, the leader's starts it in front of the new master, and a repeated
    /// leader call leaves it running as it is.
    #[test]
    fn reconfig_script_leader_only_and_idempotent() {
        let Ok(python) = which("python3") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let fake = root.join("fake-nutcracker");
        write_script(
            &fake,
            &format!(
                "#!/bin/bash\necho start >>'{}/starts'\nexec '{}' -c 'import socket,sys,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((\"127.0.0.1\",int(sys.argv[1])));s.listen();time.sleep(30)' \"$PORT\"\n",
                root.display(),
                python.display()
            ),
        )
        .unwrap();
        let port = free_block(1).unwrap();
        write_script(
            &root.join("nutcracker.sh"),
            &nutcracker_script(root, &fake, port, 1),
        )
        .unwrap();
        write_script(&root.join("reconfig.sh"), &reconfig_script(root)).unwrap();
        let reconfig = |role: &str| {
            Command::new(root.join("reconfig.sh"))
                .args([
                    MASTER_NAME,
                    role,
                    "start",
                    "127.0.0.1",
                    "1",
                    "127.0.0.1",
                    "7002",
                ])
                .env("PORT", port.to_string())
                .status()
                .unwrap()
        };
        let starts = || {
            std::fs::read_to_string(root.join("starts"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        assert!(reconfig("observer").success());
        assert_eq!(starts(), 0);
        assert!(reconfig("leader").success());
        assert_eq!(starts(), 1);
        let yaml = std::fs::read_to_string(root.join("nutcracker.yml")).unwrap();
        assert!(yaml.contains("   - 127.0.0.1:7002:1\n"), "{yaml}");
        assert!(
            yaml.contains(&format!("listen: 127.0.0.1:{port}\n")),
            "{yaml}"
        );
        assert!(reconfig("leader").success());
        assert_eq!(starts(), 1, "a repeated call restarted twemproxy");
        let pid = twemproxy_pid(root).unwrap();
        let _ = super::super::kill9(pid);
    }

    fn which(name: &str) -> Result<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .context("not found")
    }
}

//! The sentinel's state file: our id, the current epoch and, per master, its current
//! address, settings, configuration epoch, our last vote, and the replicas and sentinels
//! known. Guarantee: the file is replaced atomically (temp file, fsync, rename, fsync of
//! the directory), so a crash leaves either the old or the new state, never a mix.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tandem_protocol::types::{Epoch, NodeAddr};

use crate::instance::{Master, Peer, Replica, Sentinel, Settings};

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read the state file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write the state file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StateFile {
    pub myid: String,
    pub current_epoch: Epoch,
    #[serde(default, rename = "master")]
    pub masters: Vec<MasterState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MasterState {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub quorum: u32,
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    pub parallel_syncs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    pub config_epoch: Epoch,
    pub leader_epoch: Epoch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// `host:port` of each known replica.
    #[serde(default)]
    pub known_replicas: Vec<String>,
    #[serde(default)]
    pub known_sentinels: Vec<KnownSentinel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KnownSentinel {
    pub runid: String,
    pub host: String,
    pub port: u16,
}

fn parse_addr(s: &str) -> Option<NodeAddr> {
    let (h, p) = s.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Some(NodeAddr::new(h, p.parse().ok()?))
}

impl StateFile {
    /// A snapshot of what must survive a restart.
    pub fn of(s: &Sentinel) -> StateFile {
        StateFile {
            myid: s.core.myid.clone(),
            current_epoch: s.core.current_epoch,
            masters: s.masters.values().map(MasterState::of).collect(),
        }
    }
}

impl MasterState {
    fn of(m: &Master) -> MasterState {
        MasterState {
            name: m.name.clone(),
            host: m.addr.host.clone(),
            port: m.addr.port,
            quorum: m.settings.quorum,
            down_after_ms: m.settings.down_after.as_millis() as u64,
            failover_timeout_ms: m.settings.failover_timeout.as_millis() as u64,
            parallel_syncs: m.settings.parallel_syncs,
            auth_pass: m.settings.auth_pass.clone(),
            auth_user: m.settings.auth_user.clone(),
            config_epoch: m.config_epoch,
            leader_epoch: m.leader_epoch,
            leader: m.leader.clone(),
            known_replicas: m.replicas.keys().map(|a| a.to_string()).collect(),
            known_sentinels: m
                .sentinels
                .values()
                .map(|p| KnownSentinel {
                    runid: p.runid.clone(),
                    host: p.addr.host.clone(),
                    port: p.addr.port,
                })
                .collect(),
        }
    }

    /// The master as it was saved; links start over.
    pub fn to_master(&self, now: Instant) -> Master {
        let settings = Settings {
            quorum: self.quorum,
            down_after: Duration::from_millis(self.down_after_ms),
            failover_timeout: Duration::from_millis(self.failover_timeout_ms),
            parallel_syncs: self.parallel_syncs,
            auth_pass: self.auth_pass.clone(),
            auth_user: self.auth_user.clone(),
        };
        let addr = NodeAddr::new(self.host.clone(), self.port);
        let mut m = Master::new(self.name.clone(), addr, settings, now);
        m.config_epoch = self.config_epoch;
        m.leader_epoch = self.leader_epoch;
        m.leader = self.leader.clone();
        for r in self.known_replicas.iter().filter_map(|s| parse_addr(s)) {
            if r != m.addr {
                m.replicas.insert(r.clone(), Replica::new(r, now));
            }
        }
        for p in &self.known_sentinels {
            m.sentinels.insert(
                p.runid.clone(),
                Peer::new(p.runid.clone(), NodeAddr::new(p.host.clone(), p.port), now),
            );
        }
        m
    }
}

/// Reads the state file; `Ok(None)` if it does not exist.
pub fn load(path: &Path) -> Result<Option<StateFile>, PersistError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.into(),
                source,
            })
        }
    };
    let state: StateFile = toml::from_str(&text).map_err(|e| PersistError::Invalid {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if state.myid.len() != 40 || !state.myid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PersistError::Invalid {
            path: path.into(),
            reason: "myid must be 40 hex characters".into(),
        });
    }
    Ok(Some(state))
}

/// Writes the state file atomically: temp file, fsync, rename, fsync of the directory.
pub fn save(path: &Path, state: &StateFile) -> Result<(), PersistError> {
    let werr = |source| PersistError::Write {
        path: path.into(),
        source,
    };
    let text = toml::to_string(state).map_err(|e| werr(std::io::Error::other(e.to_string())))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp).map_err(werr)?;
        f.write_all(
            b"# Tandem sentinel state: rewritten on every change, do not edit while running.\n",
        )
        .map_err(werr)?;
        f.write_all(text.as_bytes()).map_err(werr)?;
        f.sync_all().map_err(werr)?;
    }
    std::fs::rename(&tmp, path).map_err(werr)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Core;

    #[test]
    fn round_trip_through_the_file() {
        let now = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        assert!(load(&path).unwrap().is_none());
        let mut core = Core::new("a".repeat(40), NodeAddr::new("127.0.0.1", 26379));
        core.current_epoch = 7;
        let settings = Settings {
            quorum: 2,
            down_after: Duration::from_millis(1500),
            failover_timeout: Duration::from_secs(9),
            parallel_syncs: 2,
            auth_pass: Some("pw".into()),
            auth_user: None,
        };
        let mut m = Master::new("mm".into(), NodeAddr::new("127.0.0.1", 7002), settings, now);
        m.config_epoch = 6;
        m.leader = Some("b".repeat(40));
        m.leader_epoch = 7;
        m.add_replica(&mut core, NodeAddr::new("127.0.0.1", 7001), now);
        let peer = "c".repeat(40);
        m.sentinels.insert(
            peer.clone(),
            Peer::new(peer.clone(), NodeAddr::new("10.0.0.2", 26380), now),
        );
        let mut masters = std::collections::BTreeMap::new();
        masters.insert("mm".to_string(), m);
        let s = Sentinel { core, masters };
        let state = StateFile::of(&s);
        save(&path, &state).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back, state);
        let m = back.masters[0].to_master(now);
        assert_eq!(m.addr, NodeAddr::new("127.0.0.1", 7002));
        assert_eq!(m.config_epoch, 6);
        assert_eq!(m.settings.down_after, Duration::from_millis(1500));
        assert!(m.replicas.contains_key(&NodeAddr::new("127.0.0.1", 7001)));
        assert_eq!(m.sentinels[&peer].addr, NodeAddr::new("10.0.0.2", 26380));
        assert!(!dir.path().join("state.toml.tmp").exists());
    }

    #[test]
    fn rejects_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(&path, "myid = \"short\"\ncurrent-epoch = 1\n").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Invalid { .. })));
        std::fs::write(&path, "nonsense = 1\n").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Invalid { .. })));
    }
}

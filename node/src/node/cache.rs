//! The peer cache: ids and addresses of peers this node kept recently, so a
//! node that lost its world (or restarts) can join again through them when
//! its bootstrap peers are gone. Kept in memory, and in `peers.json` under
//! the state directory when there is one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use peerworld_protocol::PeerId;
use serde::{Deserialize, Serialize};
use tracing::warn;

/// Most peers remembered.
pub(crate) const MAX_CACHED: usize = 32;
/// The file under the state directory.
const FILE: &str = "peers.json";

#[derive(Serialize, Deserialize, Default)]
struct OnDisk {
    peers: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: String,
    addr: String,
}

/// Recently kept peers, most recent first.
#[derive(Debug, Default)]
pub(crate) struct PeerCache {
    peers: Vec<(PeerId, SocketAddr)>,
    file: Option<PathBuf>,
    saved: Vec<(PeerId, SocketAddr)>,
}

impl PeerCache {
    /// The cache kept in `dir` (read now if it exists), or an in-memory one.
    /// A file that cannot be read or parsed is reported and ignored.
    pub(crate) fn open(dir: Option<&Path>) -> Self {
        let Some(dir) = dir else {
            return Self::default();
        };
        let file = dir.join(FILE);
        let peers = match std::fs::read_to_string(&file) {
            Ok(text) => match serde_json::from_str::<OnDisk>(&text) {
                Ok(d) => d
                    .peers
                    .iter()
                    .filter_map(|e| Some((PeerId::from_hex(&e.id)?, e.addr.parse().ok()?)))
                    .take(MAX_CACHED)
                    .collect(),
                Err(e) => {
                    warn!(file = %file.display(), error = %e, "ignoring an unreadable peer cache");
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                warn!(file = %file.display(), error = %e, "ignoring an unreadable peer cache");
                Vec::new()
            }
        };
        Self {
            saved: peers.clone(),
            peers,
            file: Some(file),
        }
    }

    /// The cached peers, most recent first.
    pub(crate) fn peers(&self) -> &[(PeerId, SocketAddr)] {
        &self.peers
    }

    /// Puts the peers kept now first, then the older entries, up to
    /// [`MAX_CACHED`].
    pub(crate) fn refresh(&mut self, now_kept: impl IntoIterator<Item = (PeerId, SocketAddr)>) {
        let mut next: Vec<(PeerId, SocketAddr)> = Vec::with_capacity(MAX_CACHED);
        for entry in now_kept.into_iter().chain(self.peers.iter().copied()) {
            if next.len() >= MAX_CACHED {
                break;
            }
            if !next.iter().any(|(id, _)| *id == entry.0) {
                next.push(entry);
            }
        }
        self.peers = next;
    }

    /// Writes the file if there is one and the cache changed since.
    pub(crate) fn save(&mut self) {
        let Some(file) = &self.file else {
            return;
        };
        if self.peers == self.saved {
            return;
        }
        let on_disk = OnDisk {
            peers: self
                .peers
                .iter()
                .map(|(id, addr)| Entry {
                    id: id.to_hex(),
                    addr: addr.to_string(),
                })
                .collect(),
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = file.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&on_disk)?)?;
            std::fs::rename(&tmp, file)
        };
        match write() {
            Ok(()) => self.saved = self.peers.clone(),
            Err(e) => warn!(file = %file.display(), error = %e, "cannot write the peer cache"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> (PeerId, SocketAddr) {
        (
            PeerId::from_seed(n),
            format!("127.0.0.1:{}", 4000 + n).parse().unwrap(),
        )
    }

    #[test]
    fn the_peers_kept_now_come_first_and_the_cache_is_bounded() {
        let mut c = PeerCache::default();
        c.refresh((0..10).map(entry));
        c.refresh([entry(50), entry(3)]);
        assert_eq!(c.peers()[0], entry(50));
        assert_eq!(c.peers()[1], entry(3));
        assert_eq!(c.peers().len(), 11);
        c.refresh((100..200).map(entry));
        assert_eq!(c.peers().len(), MAX_CACHED);
    }

    #[test]
    fn the_cache_survives_a_restart_and_a_broken_file_is_ignored() {
        let dir = std::env::temp_dir().join(format!("pw-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = PeerCache::open(Some(&dir));
        assert!(c.peers().is_empty());
        c.refresh([entry(1), entry(2)]);
        c.save();
        let again = PeerCache::open(Some(&dir));
        assert_eq!(again.peers(), &[entry(1), entry(2)]);
        std::fs::write(dir.join(FILE), "{not json").unwrap();
        assert!(PeerCache::open(Some(&dir)).peers().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

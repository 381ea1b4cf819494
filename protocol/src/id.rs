//! Peer identities and the records peers exchange about each other.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::geometry::Point;

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses exactly `2 × N` hex characters.
pub(crate) fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A fast hasher for maps keyed by [`PeerId`] where no remote party picks
/// the keys (the simulator, the invariant checker): ids are SHA-256 digests,
/// so their first eight bytes are already uniform. Not for a node's maps of
/// remote peers (a liar could pick colliding ids).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 =
            (self.0.rotate_left(5) ^ u64::from_le_bytes(first)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by [`PeerId`] with [`IdHasher`].
pub type IdMap<V> = std::collections::HashMap<PeerId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A set of [`PeerId`]s with [`IdHasher`].
pub type IdSet = std::collections::HashSet<PeerId, std::hash::BuildHasherDefault<IdHasher>>;

/// A peer's identity: the SHA-256 of its public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerId(pub [u8; 32]);

impl PeerId {
    /// The id of the peer owning this public key (SHA-256 of the key bytes).
    pub fn from_public_key(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }

    /// A deterministic id for simulations and tests.
    pub fn from_seed(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"peerworld-sim-id");
        h.update(seed.to_le_bytes());
        Self(h.finalize().into())
    }

    /// Full lowercase hex, 64 characters (the form used in every contract).
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        from_hex(s).map(Self)
    }

    /// The first 8 hex characters, for logs and screens.
    pub fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }

    /// A 64-bit digest of the id, used in anti-entropy digests.
    pub fn short_u64(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl Ord for PeerId {
    /// Byte order, compared a word at a time (ids are sorted and searched
    /// on every message).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        for i in 0..4 {
            let a = u64::from_be_bytes(self.0[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let b = u64::from_be_bytes(other.0[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            match a.cmp(&b) {
                std::cmp::Ordering::Equal => continue,
                o => return o,
            }
        }
        std::cmp::Ordering::Equal
    }
}

impl PartialOrd for PeerId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

/// What peers tell each other about a peer: who, where, how far it sees,
/// its display name and where to dial it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[repr(C)] // the id, position and radius in one cache line (see `Known`)
pub struct PeerInfo {
    /// The peer's identity.
    pub id: PeerId,
    /// Its position.
    pub pos: Point,
    /// Its awareness radius.
    pub radius: f32,
    /// Display name (at most [`crate::message::MAX_NAME_LEN`] bytes).
    pub name: String,
    /// Dialable address (`host:port`); empty inside the simulator.
    pub addr: String,
}

impl PeerInfo {
    /// A record with an empty address.
    pub fn new(id: PeerId, pos: Point, radius: f32, name: impl Into<String>) -> Self {
        Self {
            id,
            pos,
            radius,
            name: name.into(),
            addr: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let id = PeerId::from_seed(7);
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(PeerId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(PeerId::from_hex("zz"), None);
        assert_eq!(id.short(), id.to_hex()[..8]);
    }

    #[test]
    fn order_is_byte_order() {
        let mut ids: Vec<PeerId> = (0..200).map(PeerId::from_seed).collect();
        let mut bytes: Vec<[u8; 32]> = ids.iter().map(|i| i.0).collect();
        ids.sort();
        bytes.sort();
        assert_eq!(ids.iter().map(|i| i.0).collect::<Vec<_>>(), bytes);
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a[31] = 1;
        b[30] = 1;
        assert!(PeerId(a) < PeerId(b));
    }

    #[test]
    fn id_is_sha256_of_key() {
        // SHA-256("abc")
        let id = PeerId::from_public_key(b"abc");
        assert!(id.to_hex().starts_with("ba7816bf8f01cfea"));
    }
}

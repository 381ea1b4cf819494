//! Key records: a value stored under a name anywhere in the world (a
//! geographic hash table).
//!
//! A record's name maps by SHA-256 to a key and the key to a point of the
//! world; the [`crate::peer::OBJECT_HOLDERS`] peers nearest that point hold
//! it (see `peer/records.rs`). Every version is signed by its writer (the
//! same keys as world objects, `object.rs`); the first writer of a name
//! owns it, and holders refuse a version of another writer, so only the
//! writer may replace or remove it.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::geometry::{Point, World};
use crate::id::PeerId;
use crate::object::{
    MAX_OBJECT_KEY_LEN, MAX_OBJECT_TTL_S, MAX_SIGNATURE_LEN, ObjectError, Signer, verify_signature,
};

/// Largest value, in bytes.
pub const MAX_RECORD_VALUE: usize = 1024;
/// Longest name, in bytes of UTF-8.
pub const MAX_RECORD_NAME: usize = 128;

/// A record's key: 16 bytes of SHA-256 over its name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey(pub [u8; 16]);

impl RecordKey {
    /// The key of `name`.
    pub fn of(name: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"peerworld-record-key");
        h.update(name.as_bytes());
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        Self(out)
    }

    /// The point of `world` the key maps to: its first 8 bytes as two
    /// fractions of the sides.
    pub fn point(&self, world: World) -> Point {
        let frac = |b: &[u8]| {
            f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) / (f64::from(u32::MAX) + 1.0)
        };
        world.wrap(Point::new(
            (frac(&self.0[..4]) * f64::from(world.width)) as f32,
            (frac(&self.0[4..8]) * f64::from(world.height)) as f32,
        ))
    }

    /// Lowercase hex, 32 characters.
    pub fn to_hex(&self) -> String {
        crate::id::to_hex(&self.0)
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordKey({})", &self.to_hex()[..8])
    }
}

/// One version of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `RecordKey::of(name)`.
    pub key: RecordKey,
    /// Its name.
    pub name: String,
    /// The writer's public key (DER `SubjectPublicKeyInfo`).
    pub author_key: Vec<u8>,
    /// Higher for each newer version.
    pub version: u64,
    /// The value (at most [`MAX_RECORD_VALUE`] bytes).
    pub value: Vec<u8>,
    /// How long this version lives, in seconds from when it was signed.
    pub ttl_s: u32,
    /// This version removes the record.
    pub removed: bool,
    /// The writer's signature over everything above.
    pub sig: Vec<u8>,
}

/// A record as it travels: the version, and how long ago its writer signed
/// it (by the sender's clock), so the receiver expires it in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordCopy {
    /// The version.
    pub record: Record,
    /// Milliseconds since it was signed, as the sender believes.
    pub age_ms: u64,
}

impl Record {
    /// The writer's id.
    pub fn author(&self) -> PeerId {
        PeerId::from_public_key(&self.author_key)
    }

    /// The bytes the writer signs: a fixed layout, independent of the codec.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.name.len() + self.value.len());
        b.extend_from_slice(b"peerworld-record-v1");
        b.extend_from_slice(&self.key.0);
        for part in [self.name.as_bytes(), &self.author_key, &self.value] {
            b.extend_from_slice(&(part.len() as u32).to_le_bytes());
            b.extend_from_slice(part);
        }
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.ttl_s.to_le_bytes());
        b.push(u8::from(self.removed));
        b
    }

    /// The limits any copy must keep (checked when a message is decoded).
    pub fn check_shape(&self) -> Result<(), ObjectError> {
        if self.value.len() > MAX_RECORD_VALUE {
            return Err(ObjectError::ValueTooLong(self.value.len()));
        }
        if self.ttl_s == 0 || self.ttl_s > MAX_OBJECT_TTL_S {
            return Err(ObjectError::BadTtl);
        }
        if self.name.len() > MAX_RECORD_NAME
            || self.author_key.len() > MAX_OBJECT_KEY_LEN
            || self.sig.len() > MAX_SIGNATURE_LEN
        {
            return Err(ObjectError::TooLong);
        }
        Ok(())
    }

    /// Everything: the limits, the key's binding to the name, and the
    /// writer's signature.
    pub fn verify(&self) -> Result<(), ObjectError> {
        self.check_shape()?;
        if RecordKey::of(&self.name) != self.key {
            return Err(ObjectError::KeyNotBound);
        }
        if verify_signature(&self.author_key, &self.signed_bytes(), &self.sig) {
            Ok(())
        } else {
            Err(ObjectError::BadSignature)
        }
    }

    /// A new version of `name`, signed by `signer`.
    pub fn signed(
        signer: &dyn Signer,
        name: &str,
        value: Vec<u8>,
        version: u64,
        ttl_s: u32,
        removed: bool,
    ) -> Self {
        let mut r = Record {
            key: RecordKey::of(name),
            name: name.to_owned(),
            author_key: signer.public_key().to_vec(),
            version,
            value,
            ttl_s,
            removed,
            sig: Vec::new(),
        };
        r.sig = signer.sign(&r.signed_bytes());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::SeededSigner;

    #[test]
    fn a_signed_record_verifies_and_any_change_breaks_it() {
        let s = SeededSigner::new(1);
        let r = Record::signed(&s, "hello", b"world".to_vec(), 1, 60, false);
        assert_eq!(r.verify(), Ok(()));
        assert_eq!(r.author(), s.author());
        let mut v = r.clone();
        v.value.push(b'!');
        assert_eq!(v.verify(), Err(ObjectError::BadSignature));
        let mut n = r.clone();
        n.name = "other".into();
        assert_eq!(n.verify(), Err(ObjectError::KeyNotBound));
        let big = Record::signed(&s, "big", vec![0; MAX_RECORD_VALUE + 1], 1, 60, false);
        assert_eq!(
            big.verify(),
            Err(ObjectError::ValueTooLong(MAX_RECORD_VALUE + 1))
        );
    }

    #[test]
    fn keys_map_to_points_inside_the_world_spread_over_it() {
        let world = World::new(1000.0, 500.0);
        let pts: Vec<Point> = (0..2000)
            .map(|i| RecordKey::of(&format!("k{i}")).point(world))
            .collect();
        assert!(
            pts.iter()
                .all(|p| (0.0..1000.0).contains(&p.x) && (0.0..500.0).contains(&p.y))
        );
        let left = pts.iter().filter(|p| p.x < 500.0).count();
        let low = pts.iter().filter(|p| p.y < 250.0).count();
        assert!((900..1100).contains(&left), "{left}");
        assert!((900..1100).contains(&low), "{low}");
    }
}

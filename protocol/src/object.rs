//! World objects: signed records placed at a point of the world.
//!
//! An object belongs to the world, not to its author: the peers nearest to
//! its point hold it (see `peer/objects.rs`), and every peer within its own
//! radius of the point gets a copy. Only the author may edit or remove it:
//! every version is signed with the author's key, the key's SHA-256 is the
//! author's [`PeerId`] (for a node, the key of its QUIC identity), and the
//! object's key is bound to that id, so nobody else can mint a version of
//! it, even a first one.
//!
//! Signatures are checked with `ring`, for the two key kinds peers use:
//! ECDSA P-256 with SHA-256 (a node's certificate key, as rcgen makes it)
//! and Ed25519 (the simulator's and the tests' authors, derived from a seed
//! so a run stays deterministic). Keys travel as DER
//! `SubjectPublicKeyInfo`, the same bytes a [`PeerId`] hashes.

use std::fmt;

use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::geometry::Point;
use crate::id::PeerId;

/// Longest object text, in bytes of UTF-8.
pub const MAX_OBJECT_TEXT: usize = 280;
/// Longest author key (DER `SubjectPublicKeyInfo`), in bytes.
pub const MAX_OBJECT_KEY_LEN: usize = 128;
/// Longest signature, in bytes.
pub const MAX_SIGNATURE_LEN: usize = 128;
/// Longest lifetime of a version, in seconds (one day).
pub const MAX_OBJECT_TTL_S: u32 = 86_400;
/// Most objects in one `Objects` message.
pub const MAX_OBJECTS_PER_MESSAGE: usize = 32;

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (then 32 key bytes).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of a P-256 `SubjectPublicKeyInfo` (then the 65-byte point).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// An object's name: 16 bytes of SHA-256 over its author's id and a nonce
/// the author chose.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey(pub [u8; 16]);

impl ObjectKey {
    /// The key an author's object with this nonce must have.
    pub fn of(author: &PeerId, nonce: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"peerworld-object-key");
        h.update(author.0);
        h.update(nonce.to_le_bytes());
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        Self(out)
    }

    /// Lowercase hex, 32 characters.
    pub fn to_hex(&self) -> String {
        crate::id::to_hex(&self.0)
    }

    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        crate::id::from_hex(s).map(Self)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({})", &self.to_hex()[..8])
    }
}

/// One version of a world object (a sign: text and a colour at a point).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldObject {
    /// Its name, `ObjectKey::of(author, nonce)`.
    pub key: ObjectKey,
    /// The author's nonce.
    pub nonce: u64,
    /// The author's public key (DER `SubjectPublicKeyInfo`).
    pub author_key: Vec<u8>,
    /// 1 for the first version, one more per edit.
    pub version: u32,
    /// Where it stands.
    pub pos: Point,
    /// Its colour (RGB).
    pub colour: [u8; 3],
    /// Its text (at most [`MAX_OBJECT_TEXT`] bytes).
    pub text: String,
    /// How long this version lives, in seconds from when it was signed.
    pub ttl_s: u32,
    /// This version removes the object (a tombstone: it beats older copies).
    pub removed: bool,
    /// The author's signature over everything above.
    pub sig: Vec<u8>,
}

/// Why an object (or a version of it) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The text is longer than [`MAX_OBJECT_TEXT`] bytes.
    #[error("object text of {0} bytes exceeds the {MAX_OBJECT_TEXT}-byte limit")]
    TextTooLong(usize),
    /// The position is not finite.
    #[error("object position is not finite")]
    BadPosition,
    /// The lifetime is 0 or longer than [`MAX_OBJECT_TTL_S`].
    #[error("object lifetime must be within 1..={MAX_OBJECT_TTL_S} s")]
    BadTtl,
    /// The key or the signature is too long.
    #[error("object key or signature too long")]
    TooLong,
    /// The key is not the author's id and nonce.
    #[error("object key is not bound to its author")]
    KeyNotBound,
    /// The signature does not verify (or the key kind is unknown).
    #[error("object signature does not verify")]
    BadSignature,
    /// This peer cannot sign (no key was given to it).
    #[error("this peer has no signing key")]
    NoSigner,
    /// The object is not known here (or already gone).
    #[error("no such object")]
    Unknown,
    /// The object is someone else's.
    #[error("only the author may change an object")]
    NotAuthor,
    /// A record's value is longer than [`crate::record::MAX_RECORD_VALUE`].
    #[error("record value of {0} bytes exceeds the limit")]
    ValueTooLong(usize),
    /// The author (or this store) holds too many objects.
    #[error("too many objects: at most {0} per author")]
    Quota(usize),
}

impl WorldObject {
    /// The author's id (SHA-256 of its key).
    pub fn author(&self) -> PeerId {
        PeerId::from_public_key(&self.author_key)
    }

    /// The bytes the author signs: a fixed layout, independent of the codec.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(96 + self.author_key.len() + self.text.len());
        b.extend_from_slice(b"peerworld-object-v1");
        b.extend_from_slice(&self.key.0);
        b.extend_from_slice(&self.nonce.to_le_bytes());
        b.extend_from_slice(&(self.author_key.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.author_key);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.pos.x.to_le_bytes());
        b.extend_from_slice(&self.pos.y.to_le_bytes());
        b.extend_from_slice(&self.colour);
        b.extend_from_slice(&self.ttl_s.to_le_bytes());
        b.push(u8::from(self.removed));
        b.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        b.extend_from_slice(self.text.as_bytes());
        b
    }

    /// The limits any copy must keep (checked when a message is decoded).
    pub fn check_shape(&self) -> Result<(), ObjectError> {
        if !self.pos.is_finite() {
            return Err(ObjectError::BadPosition);
        }
        if self.text.len() > MAX_OBJECT_TEXT {
            return Err(ObjectError::TextTooLong(self.text.len()));
        }
        if self.ttl_s == 0 || self.ttl_s > MAX_OBJECT_TTL_S {
            return Err(ObjectError::BadTtl);
        }
        if self.author_key.len() > MAX_OBJECT_KEY_LEN || self.sig.len() > MAX_SIGNATURE_LEN {
            return Err(ObjectError::TooLong);
        }
        Ok(())
    }

    /// Everything: the limits, the key's binding to the author, and the
    /// author's signature.
    pub fn verify(&self) -> Result<(), ObjectError> {
        self.check_shape()?;
        if ObjectKey::of(&self.author(), self.nonce) != self.key {
            return Err(ObjectError::KeyNotBound);
        }
        if verify_signature(&self.author_key, &self.signed_bytes(), &self.sig) {
            Ok(())
        } else {
            Err(ObjectError::BadSignature)
        }
    }

    /// Signs this version with `signer` (whose key becomes the author's).
    pub fn sign(&mut self, signer: &dyn Signer) {
        self.author_key = signer.public_key().to_vec();
        self.sig.clear();
        self.sig = signer.sign(&self.signed_bytes());
    }
}

/// The objects within `r` of `centre`, nearest first (ties by key).
pub fn nearest_first<'a>(
    world: crate::geometry::World,
    objects: impl IntoIterator<Item = &'a WorldObject>,
    centre: Point,
    r: f32,
) -> Vec<&'a WorldObject> {
    let mut out: Vec<(f64, &WorldObject)> = objects
        .into_iter()
        .map(|o| (world.distance(centre, o.pos), o))
        .filter(|(d, _)| *d <= f64::from(r))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.key.cmp(&b.1.key)));
    out.into_iter().map(|(_, o)| o).collect()
}

/// Whether `sig` is `spki`'s signature of `msg` (P-256/SHA-256 in ASN.1
/// form, or Ed25519); false for any other key kind.
pub fn verify_signature(spki: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    if let Some(raw) = spki.strip_prefix(&ED25519_SPKI_PREFIX[..])
        && raw.len() == 32
    {
        return UnparsedPublicKey::new(&ED25519, raw)
            .verify(msg, sig)
            .is_ok();
    }
    if let Some(raw) = spki.strip_prefix(&P256_SPKI_PREFIX[..])
        && raw.len() == 65
    {
        return UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, raw)
            .verify(msg, sig)
            .is_ok();
    }
    false
}

/// A key that signs objects for a peer (a node's identity key; an Ed25519
/// key from a seed in the simulator).
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public key, DER `SubjectPublicKeyInfo` (its SHA-256 is the author's id).
    fn public_key(&self) -> &[u8];
    /// The signature of `msg`.
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
}

/// An Ed25519 key derived from a seed: deterministic, for simulations and tests.
pub struct SeededSigner {
    pair: Ed25519KeyPair,
    spki: Vec<u8>,
}

impl SeededSigner {
    /// The key of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"peerworld-sim-signer");
        h.update(seed.to_le_bytes());
        let secret: [u8; 32] = h.finalize().into();
        let pair = Ed25519KeyPair::from_seed_unchecked(&secret).expect("32-byte Ed25519 seed");
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Self { pair, spki }
    }

    /// The author id of this key.
    pub fn author(&self) -> PeerId {
        PeerId::from_public_key(&self.spki)
    }
}

impl fmt::Debug for SeededSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeededSigner({})", self.author().short())
    }
}

impl Signer for SeededSigner {
    fn public_key(&self) -> &[u8] {
        &self.spki
    }
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }
}

/// An object as it travels: the version, and how long ago (by the sender's
/// clock) its author signed it, so the receiver can expire it in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectCopy {
    /// The version.
    pub object: WorldObject,
    /// Milliseconds since it was signed, as the sender believes.
    pub age_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_new(signer: &SeededSigner, text: &str) -> WorldObject {
        let nonce = 7;
        let mut o = WorldObject {
            key: ObjectKey::of(&signer.author(), nonce),
            nonce,
            author_key: Vec::new(),
            version: 1,
            pos: Point::new(10.0, 20.0),
            colour: [200, 40, 40],
            text: text.into(),
            ttl_s: 60,
            removed: false,
            sig: Vec::new(),
        };
        o.sign(signer);
        o
    }

    #[test]
    fn a_signed_object_verifies_and_any_change_breaks_it() {
        let s = SeededSigner::new(1);
        let o = sign_new(&s, "hello");
        assert_eq!(o.verify(), Ok(()));
        assert_eq!(o.author(), s.author());
        let mut t = o.clone();
        t.text = "hellO".into();
        assert_eq!(t.verify(), Err(ObjectError::BadSignature));
        let mut t = o.clone();
        t.version = 2;
        assert_eq!(t.verify(), Err(ObjectError::BadSignature));
        let mut t = o.clone();
        t.removed = true;
        assert_eq!(t.verify(), Err(ObjectError::BadSignature));
    }

    #[test]
    fn another_author_cannot_sign_a_version_of_someone_elses_object() {
        let (alice, mallory) = (SeededSigner::new(1), SeededSigner::new(2));
        let o = sign_new(&alice, "alice's sign");
        let mut forged = o.clone();
        forged.version = 2;
        forged.text = "mallory was here".into();
        forged.sign(&mallory);
        // Properly signed by mallory, but the key names alice's object.
        assert_eq!(forged.verify(), Err(ObjectError::KeyNotBound));
        // Claiming alice's key with mallory's signature fails too.
        let mut claimed = forged.clone();
        claimed.author_key = alice.public_key().to_vec();
        assert_eq!(claimed.verify(), Err(ObjectError::BadSignature));
    }

    #[test]
    fn limits_are_checked() {
        let s = SeededSigner::new(3);
        let mut o = sign_new(&s, "x");
        o.text = "é".repeat(141);
        assert_eq!(o.check_shape(), Err(ObjectError::TextTooLong(282)));
        let mut o = sign_new(&s, "x");
        o.ttl_s = 0;
        assert_eq!(o.verify(), Err(ObjectError::BadTtl));
        let mut o = sign_new(&s, "x");
        o.pos = Point::new(f32::NAN, 0.0);
        assert_eq!(o.verify(), Err(ObjectError::BadPosition));
        let mut o = sign_new(&s, "x");
        o.author_key = vec![1, 2, 3];
        assert_eq!(o.verify(), Err(ObjectError::KeyNotBound));
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let k = ObjectKey::of(&PeerId::from_seed(4), 9);
        assert_eq!(ObjectKey::from_hex(&k.to_hex()), Some(k));
        assert_eq!(ObjectKey::from_hex("zz"), None);
    }
}

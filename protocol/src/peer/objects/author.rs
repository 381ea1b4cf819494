//! What an embedding program does with objects: the signing key, placing,
//! editing and removing its own, and listing what this peer knows.

use super::{Held, MAX_OBJECTS_PER_AUTHOR, expiry};
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::object::{
    MAX_OBJECT_TEXT, MAX_OBJECT_TTL_S, ObjectError, ObjectKey, Signer, WorldObject, nearest_first,
};
use crate::peer::Peer;

impl Peer {
    /// Gives this peer a key to sign the objects it places (a node's
    /// identity key). The author id of its objects is the key's SHA-256.
    pub fn set_signer(&mut self, signer: Box<dyn Signer>) {
        self.objects.signer = Some(signer);
    }

    /// The key objects and records are signed with here, if any.
    pub(in crate::peer) fn object_signer(&self) -> Option<&dyn Signer> {
        self.objects.signer.as_deref()
    }

    /// The id objects placed here are signed as (`None` without a key).
    pub fn author_id(&self) -> Option<PeerId> {
        self.objects
            .signer
            .as_ref()
            .map(|s| PeerId::from_public_key(s.public_key()))
    }

    /// Places a new object at `pos` (wrapped into the world): signed here,
    /// then handed to the peers nearest `pos`. Returns its key.
    pub fn place_object(
        &mut self,
        now: Millis,
        pos: Point,
        text: &str,
        colour: [u8; 3],
        ttl_s: u32,
    ) -> Result<ObjectKey, ObjectError> {
        let author = self.author_id().ok_or(ObjectError::NoSigner)?;
        if !pos.is_finite() {
            return Err(ObjectError::BadPosition);
        }
        if text.len() > MAX_OBJECT_TEXT {
            return Err(ObjectError::TextTooLong(text.len()));
        }
        if ttl_s == 0 || ttl_s > MAX_OBJECT_TTL_S {
            return Err(ObjectError::BadTtl);
        }
        if self.objects.by_author.get(&author).copied().unwrap_or(0) >= MAX_OBJECTS_PER_AUTHOR {
            return Err(ObjectError::Quota(MAX_OBJECTS_PER_AUTHOR));
        }
        self.objects.nonces += 1;
        // Unpredictable across restarts of a node (its token secret is
        // drawn at start), deterministic in the simulator.
        let nonce = self.next_token() ^ self.objects.nonces.rotate_left(32);
        let mut obj = WorldObject {
            key: ObjectKey::of(&author, nonce),
            nonce,
            author_key: Vec::new(),
            version: 1,
            pos: self.config.world.wrap(pos),
            colour,
            text: text.to_string(),
            ttl_s,
            removed: false,
            sig: Vec::new(),
        };
        self.sign_object(&mut obj)?;
        let key = obj.key;
        self.objects.insert(Held {
            expires: expiry(&obj, now),
            obj,
            mine: true,
            signed_at: now,
            known: Vec::new(),
            refreshed: now,
            taken: now,
            handed: 0,
            passing: false,
            presume: false,
        });
        self.spread_objects(now, &[key]);
        Ok(key)
    }

    /// Replaces the text of an object placed here; returns the new version.
    pub fn edit_object(
        &mut self,
        now: Millis,
        key: ObjectKey,
        text: &str,
    ) -> Result<u32, ObjectError> {
        if text.len() > MAX_OBJECT_TEXT {
            return Err(ObjectError::TextTooLong(text.len()));
        }
        self.new_version(now, key, |o| o.text = text.to_string())
    }

    /// Removes an object placed here (a signed tombstone replaces it).
    pub fn remove_object(&mut self, now: Millis, key: ObjectKey) -> Result<(), ObjectError> {
        self.new_version(now, key, |o| {
            o.removed = true;
            o.text.clear();
        })
        .map(|_| ())
    }

    fn sign_object(&self, obj: &mut WorldObject) -> Result<(), ObjectError> {
        let signer = self
            .objects
            .signer
            .as_deref()
            .ok_or(ObjectError::NoSigner)?;
        obj.sign(signer);
        Ok(())
    }

    fn new_version(
        &mut self,
        now: Millis,
        key: ObjectKey,
        change: impl FnOnce(&mut WorldObject),
    ) -> Result<u32, ObjectError> {
        let author = self.author_id().ok_or(ObjectError::NoSigner)?;
        let h = self.objects.held.get(&key).ok_or(ObjectError::Unknown)?;
        if h.obj.removed || now >= h.expires {
            return Err(ObjectError::Unknown);
        }
        if h.obj.author() != author {
            return Err(ObjectError::NotAuthor);
        }
        let mut obj = h.obj.clone();
        obj.version += 1;
        change(&mut obj);
        self.sign_object(&mut obj)?;
        let version = obj.version;
        let h = self
            .objects
            .held
            .get_mut(&key)
            .ok_or(ObjectError::Unknown)?;
        h.expires = expiry(&obj, now);
        h.signed_at = now;
        h.obj = obj;
        h.mine = true;
        self.objects.generation += 1;
        self.spread_objects(now, &[key]);
        Ok(version)
    }

    /// The live objects this peer knows within `r` of `centre`, nearest first.
    pub fn objects_near(&self, now: Millis, centre: Point, r: f32) -> Vec<&WorldObject> {
        nearest_first(self.config.world, self.live_objects(now), centre, r)
    }

    /// Every live object this peer holds (its own among them), by key.
    pub fn live_objects(&self, now: Millis) -> impl Iterator<Item = &WorldObject> {
        self.objects
            .held
            .values()
            .filter(move |h| !h.obj.removed && now < h.expires)
            .map(|h| &h.obj)
    }

    /// A number that changes whenever the objects held here change.
    pub fn objects_generation(&self) -> u64 {
        self.objects.generation
    }

    /// An object held here, the latest version (a removed one included).
    pub fn object(&self, key: &ObjectKey) -> Option<&WorldObject> {
        self.objects.held.get(key).map(|h| &h.obj)
    }

    /// Objects held here (tombstones included).
    pub fn objects_held(&self) -> usize {
        self.objects.held.len()
    }
}

//! What a peer holds of each object: the version, when it expires, and
//! what it knows of each kept peer's copy (`Seen`); the store's bounds.

use std::collections::{BTreeMap, HashMap};

use super::super::budget::Budgets;
use super::{OWNER_REOFFERS, REOFFER_MS, TOMBSTONE_MS};
use crate::Millis;
use crate::id::PeerId;
use crate::object::{MAX_OBJECT_TTL_S, ObjectCopy, ObjectKey, Signer, WorldObject};

/// One object held here.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) obj: WorldObject,
    pub(super) expires: Millis,
    /// Authored here: kept wherever this peer is.
    pub(super) mine: bool,
    /// When it was signed, by our clock (from the sender's account of its age).
    pub(super) signed_at: Millis,
    /// Kept peers that have a version, or were offered it.
    pub(super) known: Vec<Seen>,
    /// When the owner last sent it to everyone again.
    pub(super) refreshed: Millis,
    /// When this version was taken here.
    pub(super) taken: Millis,
    /// The last version this peer handed on while far from the point.
    pub(super) handed: u32,
    /// Taken while far from its point, to pass it on toward it.
    pub(super) passing: bool,
    /// A first copy of a version older than [`PRESUMED_AFTER_MS`], taken
    /// as we came near its point: the peers well within their radius of it
    /// (not its holders) have it already, so unless we own it we offer it
    /// only to those coming near. The owner offers it to everyone again at
    /// each refresh, so a peer that missed it is not missed for long.
    pub(super) presume: bool,
}

/// What we know of one kept peer and one object.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    pub(super) id: PeerId,
    /// The version it has (sent by us or to us), or we offered it.
    pub(super) version: u32,
    /// The last version we sent it a copy of on request.
    pub(super) answered: u32,
    /// We offered it `version` as its owner (in our view) and have not
    /// heard that it has it: the version it had before, and when.
    pub(super) unconfirmed: Option<(u32, Millis)>,
    /// Offers to it as owner made again for want of a confirmation.
    pub(super) reoffers: u8,
}

impl Seen {
    pub(super) fn new(id: PeerId, version: u32) -> Self {
        Self {
            id,
            version,
            answered: 0,
            unconfirmed: None,
            reoffers: 0,
        }
    }

    /// It has `version`: an offer to it made unconfirmed is confirmed.
    pub(super) fn confirm(&mut self, version: u32) {
        if version >= self.version {
            self.unconfirmed = None;
            self.reoffers = 0;
        }
        self.version = self.version.max(version);
    }
}

impl Held {
    /// The copy to send at `now`, with its age by our clock.
    pub(super) fn copy(&self, now: Millis) -> ObjectCopy {
        ObjectCopy {
            object: self.obj.clone(),
            age_ms: now.since(self.signed_at),
        }
    }

    pub(super) fn has(&self, id: &PeerId, version: u32) -> bool {
        self.known
            .iter()
            .any(|e| e.id == *id && e.version >= version)
    }

    /// `id` has `version` (it sent it, offered it, or we sent it a copy).
    pub(super) fn note(&mut self, id: PeerId, version: u32) {
        match self.known.iter_mut().find(|e| e.id == id) {
            Some(e) => e.confirm(version),
            None => self.known.push(Seen::new(id, version)),
        }
    }

    /// We offer `version` to `id`, the owner in our view: until it asks
    /// for it or shows it has it, the offer is made again after
    /// [`REOFFER_MS`] (at most [`OWNER_REOFFERS`] times): its request, or
    /// our answer, may have been lost with a peer that left.
    pub(super) fn offered_to_owner(&mut self, id: PeerId, version: u32, now: Millis) {
        match self.known.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.unconfirmed = Some((e.version, now));
                e.version = version;
            }
            None => self.known.push(Seen {
                unconfirmed: Some((0, now)),
                ..Seen::new(id, version)
            }),
        }
    }

    /// Offers to an owner unconfirmed for [`REOFFER_MS`] are forgotten, to
    /// be made again (a few times).
    pub(super) fn expire_offers(&mut self, now: Millis) {
        for e in &mut self.known {
            if let Some((before, at)) = e.unconfirmed
                && now.since(at) >= REOFFER_MS
            {
                e.unconfirmed = None;
                if e.reoffers < OWNER_REOFFERS {
                    e.reoffers += 1;
                    e.version = before;
                }
            }
        }
    }
}

/// The objects this peer holds, and its signing key.
#[derive(Debug, Default)]
pub(in crate::peer) struct ObjectState {
    pub(super) held: BTreeMap<ObjectKey, Held>,
    pub(super) by_author: HashMap<PeerId, usize>,
    pub(super) signer: Option<Box<dyn Signer>>,
    pub(super) nonces: u64,
    /// Copies asked for and not yet come.
    pub(super) asked: HashMap<ObjectKey, Asked>,
    /// Bumped on every change to `held` (renderers copy the list only then).
    pub(super) generation: u64,
    /// What each sender we do not keep may still send us.
    pub(super) routed: Budgets,
}

/// A copy asked for.
#[derive(Debug)]
pub(super) struct Asked {
    /// The version offered.
    pub(super) version: u32,
    /// When we asked.
    pub(super) at: Millis,
    /// Other peers that offered it, to ask in turn if no copy comes.
    pub(super) others: Vec<PeerId>,
}

impl ObjectState {
    pub(super) fn remove(&mut self, key: &ObjectKey) {
        if let Some(h) = self.held.remove(key) {
            self.generation += 1;
            let author = h.obj.author();
            if let Some(n) = self.by_author.get_mut(&author) {
                *n -= 1;
                if *n == 0 {
                    self.by_author.remove(&author);
                }
            }
        }
    }

    pub(super) fn insert(&mut self, h: Held) {
        let key = h.obj.key;
        self.generation += 1;
        if !self.held.contains_key(&key) {
            *self.by_author.entry(h.obj.author()).or_default() += 1;
        }
        self.held.insert(key, h);
    }
}

/// When `obj`, signed at `signed_at` (by our clock), expires.
pub(super) fn expiry(obj: &WorldObject, signed_at: Millis) -> Millis {
    version_expiry(obj.ttl_s, obj.removed, signed_at)
}

/// When a signed version (an object's or a record's) with this lifetime,
/// signed at `signed_at` (by our clock), expires: after its lifetime, or
/// [`TOMBSTONE_MS`] for a removal if that is sooner.
pub(in crate::peer) fn version_expiry(ttl_s: u32, removed: bool, signed_at: Millis) -> Millis {
    let life = u64::from(ttl_s.min(MAX_OBJECT_TTL_S)) * 1000;
    let life = if removed {
        life.min(TOMBSTONE_MS)
    } else {
        life
    };
    signed_at.plus(life)
}

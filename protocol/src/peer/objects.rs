//! World objects held by the peers near them.
//!
//! Guarantees:
//! - **Holders.** In each peer's view, the holders of an object are the
//!   [`OBJECT_HOLDERS`] peers nearest its point among itself and its
//!   confirmed kept peers. The nearest of all (the owner) and the next two
//!   are Delaunay neighbours of one another, so every view near the point
//!   agrees on them once views are complete.
//! - **Offer, then fetch.** On every maintenance round, and at once for a
//!   version it has just taken or made (so a new version crosses the world
//!   at the speed of the network, not a round per hop), a peer offers each
//!   object it holds, as (key, version), to every kept peer that should have
//!   it and, as far as it knows, lacks that version: the holders in its
//!   view, and the peers within their own radius plus the detection buffer
//!   of the point (so a peer learns of an object before it comes within its
//!   radius). It leaves the offer to a peer known to hold that version that
//!   lies nearer the receiver and well within its own radius, so mostly one
//!   offer reaches each receiver. A peer that took its first copy of an
//!   old version as it came near (walking in, joining) presumes that the
//!   peers well within their radius of the point have it, and offers it
//!   only to the holders and to those coming near; the owner never
//!   presumes. The receiver asks the first offerer for
//!   the copy (`ObjectWant`), and the next one if no copy came within
//!   `ASK_AGAIN_MS`; a request is answered only for what was offered, once
//!   per version.
//! - **Toward the point.** A copy taken far from its point (on its way),
//!   or a new version of our own while we are not one of its holders, is
//!   handed as a full copy, once per version, to the holders in view, each
//!   nearer the point than we are: an object placed far away travels there
//!   greedily; a relay keeps the copy [`PASSING_KEPT_MS`] after taking it,
//!   so the same version coming again by another path goes no further. A
//!   copy we held while near the point is dropped once we are
//!   beyond our radius plus twice the buffer: the peers near it have it. A
//!   join's acceptor sends the joiner, behind its reply, the objects it
//!   should hold or see.
//! - **Churn.** When a holder leaves or crashes, the others see a new third
//!   nearest and offer the object to it; an object is lost only if every
//!   peer holding a copy (the holders and everyone within radius) goes at
//!   once. Every `OWNER_REFRESH_MS` the owner forgets who has it, and so
//!   offers it again to everyone in range.
//! - **Versions.** Only a version signed by the object's author and newer
//!   than the one held replaces it (`object.rs`); a removal is a signed
//!   tombstone, kept for `TOMBSTONE_MS` (or the version's lifetime) so older
//!   copies cannot bring the object back. Each version expires `ttl_s` after
//!   its author signed it, by the receiver's clock and the sender's account
//!   of its age. The author keeps its own objects wherever it walks, so it
//!   can always edit or remove them.
//! - **Bounded.** At most [`MAX_OBJECTS_PER_AUTHOR`] objects per author
//!   and [`MAX_OBJECTS_HELD`] in all; a copy is taken only if this peer
//!   holds the object already, if it is near this peer (within radius plus
//!   twice the buffer), if this peer would hold it, or if this peer is
//!   nearer its point than the sender (or the sender is not kept: it is on
//!   its way there). A sender we do not keep gets [`ROUTED_COPIES_PER_S`]
//!   new copies a second (bursts of [`ROUTED_COPIES_BURST`]), checked
//!   before the signature: a stranger cannot make us verify without end.
//!   Anything else, and any copy that fails verification,
//!   is refused and counted. Copies, offers and requests are taken from any
//!   authenticated peer, kept or not: views are not always symmetric, and
//!   an offer from a peer we do not keep was otherwise lost for good.

use std::collections::BTreeMap;

mod author;
mod fetch;
mod held;

use held::{Asked, Held, Seen, expiry};
pub(super) use held::{ObjectState, version_expiry};

use super::{Peer, RejectReason};
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::{MAX_OBJECT_OFFERS as MAX_OFFERS, Message};
use crate::object::{MAX_OBJECT_TTL_S, ObjectCopy, ObjectKey};

/// Peers that hold each object: the owner (nearest its point) and two more.
pub const OBJECT_HOLDERS: usize = 3;
/// Most objects of one author a peer holds.
pub const MAX_OBJECTS_PER_AUTHOR: usize = 64;
/// Most objects a peer holds in all.
pub const MAX_OBJECTS_HELD: usize = 4096;
/// New object copies a second taken from one sender we do not keep.
pub const ROUTED_COPIES_PER_S: f32 = 32.0;
/// New object copies one sender we do not keep may send in a burst (a
/// whole offer's worth).
pub const ROUTED_COPIES_BURST: f32 = 256.0;
/// How often the owner sends an object again to everyone in range.
const OWNER_REFRESH_MS: u64 = 60_000;
/// A peer surely keeps the peers within this share of its radius (the
/// awareness invariant, with room for stale positions).
const SURELY_KEPT: f64 = 0.9;
/// How far short of a peer's dropping distance we stop believing it holds
/// an object (room for stale positions).
const FORGET_MARGIN: f64 = 8.0;
/// How long we wait for a copy asked for before asking whoever offers it
/// next (an offerer may have left since; at 1 000, a new version missed
/// the owner for over 2 s in 0.02 % of samples under churn).
pub(crate) const ASK_AGAIN_MS: u64 = 500;
/// How old a version must be before a peer taking its first copy near
/// its point presumes that the peers well within their radius of it have
/// it already (they have had time to fetch it; see [`Held::presume`]).
const PRESUMED_AFTER_MS: u64 = 3_000;
/// How long an offer to an object's owner waits for its request (or a
/// sign that it has the version) before it is made again.
pub(crate) const REOFFER_MS: u64 = 2_000;
/// How many times an unconfirmed offer to an owner is made again.
pub(crate) const OWNER_REOFFERS: u8 = 2;
/// How long a copy on its way is kept after it was taken (see
/// `spread_objects`).
const PASSING_KEPT_MS: u64 = 2_000;
/// Other offerers remembered per copy asked for.
const ASK_ALTERNATIVES: usize = 3;
/// How long a removal is remembered at most.
pub(super) const TOMBSTONE_MS: u64 = 600_000;

impl Peer {
    /// The [`OBJECT_HOLDERS`] nearest to `pos` among this peer (`None`) and
    /// the given peers.
    pub(super) fn holders_of(
        &self,
        pos: Point,
        peers: &[(PeerId, Point, f32)],
    ) -> Vec<Option<PeerId>> {
        self.nearest_of(pos, peers, OBJECT_HOLDERS)
    }

    /// The `n` nearest to `pos` among this peer (`None`) and the given
    /// peers, nearest first.
    pub(super) fn nearest_of(
        &self,
        pos: Point,
        peers: &[(PeerId, Point, f32)],
        n: usize,
    ) -> Vec<Option<PeerId>> {
        let world = self.config.world;
        let mut best: Vec<(f64, Option<PeerId>)> = Vec::with_capacity(n + 1);
        let mut consider = |d: f64, who: Option<PeerId>| {
            if best.len() < n || d < best[best.len() - 1].0 {
                let at = best.partition_point(|(e, _)| *e <= d);
                best.insert(at, (d, who));
                best.truncate(n);
            }
        };
        consider(world.distance(self.me.pos, pos), None);
        for (id, p, _) in peers {
            consider(world.distance(*p, pos), Some(*id));
        }
        best.into_iter().map(|(_, w)| w).collect()
    }

    /// Confirmed kept peers as (id, believed position, radius), by id.
    pub(super) fn object_peers(&self, now: Millis) -> Vec<(PeerId, Point, f32)> {
        self.kept
            .iter()
            .filter(|(_, k)| k.confirmed)
            .map(|(id, k)| (*id, self.believed(k, now), k.info.radius))
            .collect()
    }

    /// A join we accept: the joiner gets, right behind our reply, the
    /// objects it should hold or see at its place (a newcomer may be the
    /// nearest peer to an object at once). Not for a probe from a peer we
    /// keep already: it has them.
    pub(super) fn objects_for_newcomer(&mut self, now: Millis, joiner: &crate::id::PeerInfo) {
        if self.objects.held.is_empty() || self.kept.get(&joiner.id).is_some_and(|k| k.confirmed) {
            return;
        }
        let world = self.config.world;
        let reach = f64::from(joiner.radius.min(crate::message::MAX_RADIUS))
            + f64::from(self.config.buffer);
        let mut peers = self.object_peers(now);
        peers.push((joiner.id, joiner.pos, joiner.radius));
        let mut copies = Vec::new();
        let keys: Vec<ObjectKey> = self.objects.held.keys().copied().collect();
        for key in keys {
            let h = &self.objects.held[&key];
            if h.obj.removed || now >= h.expires {
                continue;
            }
            let pos = h.obj.pos;
            let wanted = world.distance(joiner.pos, pos) <= reach
                || self.holders_of(pos, &peers).contains(&Some(joiner.id));
            if wanted {
                let h = self.objects.held.get_mut(&key).expect("listed");
                h.note(joiner.id, h.obj.version);
                copies.push(h.copy(now));
            }
        }
        if !copies.is_empty() {
            self.send_copies(joiner.id, copies, now);
        }
    }

    /// The maintenance round's share: ask again, expire, hand over,
    /// publish, drop.
    pub(super) fn objects_round(&mut self, now: Millis) {
        if !self.objects.asked.is_empty() {
            self.ask_again(now);
        }
        let keys: Vec<ObjectKey> = self.objects.held.keys().copied().collect();
        self.spread_objects(now, &keys);
    }

    /// Expires, hands on toward its point, offers and drops each of `keys`
    /// held here (the module guarantees): every maintenance round for all
    /// objects, and at once for a version just taken or made, so a new
    /// version does not wait a round at each hop.
    pub(super) fn spread_objects(&mut self, now: Millis, keys: &[ObjectKey]) {
        if keys.is_empty() {
            return;
        }
        let mut peers = self.object_peers(now);
        peers.sort_unstable_by_key(|p| p.0);
        self.spread_among(now, keys, &peers);
    }

    /// [`Peer::spread_objects`] with the confirmed kept peers given, by id.
    fn spread_among(&mut self, now: Millis, keys: &[ObjectKey], peers: &[(PeerId, Point, f32)]) {
        let world = self.config.world;
        let buffer = f64::from(self.config.buffer);
        let my_reach = f64::from(self.me.radius) + 2.0 * buffer;
        let mut out: BTreeMap<PeerId, Vec<ObjectCopy>> = BTreeMap::new();
        let mut offers: BTreeMap<PeerId, Vec<(ObjectKey, u32)>> = BTreeMap::new();
        let mut gone: Vec<ObjectKey> = Vec::new();
        for &key in keys {
            let Some((pos, expired)) =
                (self.objects.held.get(&key)).map(|h| (h.obj.pos, now >= h.expires))
            else {
                continue;
            };
            if expired {
                gone.push(key);
                continue;
            }
            let holders = self.holders_of(pos, peers);
            let owner = holders.first() == Some(&None);
            let me_holder = holders.contains(&None);
            // A holder in our view, or within its radius plus `extra` of
            // the point.
            let within = |id: &PeerId, extra: f64| -> bool {
                holders.contains(&Some(*id))
                    || peers.binary_search_by(|p| p.0.cmp(id)).is_ok_and(|i| {
                        let (_, p, r) = peers[i];
                        world.distance(p, pos) <= f64::from(r) + extra
                    })
            };
            let wants = |id: &PeerId| within(id, buffer);
            let h = self.objects.held.get_mut(&key).expect("listed");
            if owner && now.since(h.refreshed) >= OWNER_REFRESH_MS {
                h.known.clear();
                h.refreshed = now;
            }
            let version = h.obj.version;
            let far = world.distance(self.me.pos, pos) > my_reach;
            if far && !me_holder && !h.mine && !h.passing {
                // A copy we held while near it, dropped as we walk away:
                // the peers near it have it.
                gone.push(key);
                continue;
            }
            // A copy on its way to its point, or a new version of our own
            // while we are not one of its holders: handed once per version
            // to the holders in view (each nearer the point than we are),
            // as a copy, not an offer. Once only: an author walking far
            // away must not hand it again to every peer its changing view
            // puts nearest the point.
            if !me_holder && (h.passing || h.mine) && h.handed < version {
                h.handed = version;
                for id in holders.iter().flatten() {
                    if h.has(id, version) {
                        continue;
                    }
                    h.note(*id, version);
                    self.stats.objects_handed += 1;
                    out.entry(*id).or_default().push(h.copy(now));
                }
            }
            if far && !me_holder {
                // A copy on its way is kept a little after it was handed
                // on, so the same version coming again by another path is
                // known and goes no further (dropped at once, every copy
                // of it was taken and handed on anew: a flood).
                let passed = !h.passing || now.since(h.taken) >= PASSING_KEPT_MS;
                if !h.mine && passed {
                    gone.push(key);
                }
                continue;
            }
            // Forget who has it once they may have dropped it (they do
            // beyond their radius plus twice the buffer): then it is sent
            // again when they come back.
            h.known
                .retain(|Seen { id, .. }| within(id, 2.0 * buffer - FORGET_MARGIN));
            h.expire_offers(now);
            // Peers known to hold this version. Each peer that should see
            // it is offered it by the one of them nearest to it that
            // surely keeps it (it lies well within that one's radius), and
            // by us if we know of none: offers are small, and the receiver
            // fetches the copy once, from the first offer.
            let deputies: Vec<(PeerId, Point, f32)> = peers
                .iter()
                .filter(|(id, _, _)| h.has(id, version))
                .copied()
                .collect();
            let presume = h.presume && !owner;
            for (id, q, r) in peers {
                if !wants(id) || h.has(id, version) {
                    continue;
                }
                if presume
                    && !holders.contains(&Some(*id))
                    && world.distance(*q, pos) <= f64::from(*r) - buffer
                {
                    h.note(*id, version);
                    continue;
                }
                let d = world.distance(self.me.pos, *q);
                let deferred = deputies.iter().any(|(k, p, r)| {
                    let dk = world.distance(*p, *q);
                    k != id && dk < d && dk <= SURELY_KEPT * f64::from(*r)
                });
                if deferred {
                    continue;
                }
                if holders.first() == Some(&Some(*id)) {
                    h.offered_to_owner(*id, version, now);
                } else {
                    h.note(*id, version);
                }
                if holders.contains(&Some(*id)) {
                    self.stats.objects_handed += 1;
                }
                offers.entry(*id).or_default().push((key, version));
            }
        }
        for key in gone {
            self.objects.remove(&key);
        }
        for (to, copies) in out {
            self.send_copies(to, copies, now);
        }
        for (to, list) in offers {
            for chunk in list.chunks(MAX_OFFERS) {
                self.send(
                    to,
                    Message::ObjectOffer {
                        offers: chunk.to_vec(),
                    },
                    now,
                );
            }
        }
    }

    /// Copies from any peer: verified, taken if new and wanted here.
    pub(super) fn on_objects(&mut self, now: Millis, from: PeerId, copies: Vec<ObjectCopy>) {
        let mut peers = self.object_peers(now);
        let world = self.config.world;
        let my_reach = f64::from(self.me.radius) + 2.0 * f64::from(self.config.buffer);
        let from_pos = self.kept.get(&from).map(|k| self.believed(k, now));
        let mut taken = Vec::new();
        for copy in copies {
            let obj = copy.object;
            if let Some(h) = self.objects.held.get_mut(&obj.key)
                && h.obj.version >= obj.version
            {
                // Same or older: it has at least that one.
                self.stats.objects_stale += 1;
                h.note(from, obj.version);
                continue;
            }
            let known = self.objects.held.contains_key(&obj.key);
            let d_me = world.distance(self.me.pos, obj.pos);
            let wanted = known
                || d_me <= my_reach
                || from_pos.is_none_or(|p| d_me < world.distance(p, obj.pos))
                || self.holders_of(obj.pos, &peers).contains(&None);
            if !wanted {
                self.stats.objects_refused += 1;
                continue;
            }
            let burst = ROUTED_COPIES_BURST;
            if from_pos.is_none()
                && !self
                    .objects
                    .routed
                    .spend(from, now, ROUTED_COPIES_PER_S, burst)
            {
                self.stats.objects_refused += 1;
                continue;
            }
            if let Err(e) = obj.verify() {
                self.stats.objects_refused += 1;
                self.reject(from, RejectReason::BadObject(e));
                continue;
            }
            let author = obj.author();
            let full = self.objects.held.len() >= MAX_OBJECTS_HELD
                || self.objects.by_author.get(&author).copied().unwrap_or(0)
                    >= MAX_OBJECTS_PER_AUTHOR;
            if !known && full {
                self.stats.objects_refused += 1;
                continue;
            }
            let age = copy.age_ms.min(u64::from(MAX_OBJECT_TTL_S) * 1000);
            let signed_at = Millis(now.0.saturating_sub(age));
            let expires = expiry(&obj, signed_at);
            if expires <= now {
                continue;
            }
            if self
                .objects
                .asked
                .get(&obj.key)
                .is_some_and(|a| a.version <= obj.version)
            {
                self.objects.asked.remove(&obj.key);
            }
            self.stats.objects_taken += 1;
            let mine = Some(author) == self.author_id();
            let version = obj.version;
            taken.push(obj.key);
            self.objects.insert(Held {
                obj,
                expires,
                mine,
                signed_at,
                known: vec![Seen::new(from, version)],
                refreshed: now,
                taken: now,
                handed: 0,
                passing: d_me > my_reach,
                presume: !known && d_me <= my_reach && age >= PRESUMED_AFTER_MS,
            });
        }
        if !taken.is_empty() {
            // The same kept peers: handed on and offered at once.
            peers.sort_unstable_by_key(|p| p.0);
            self.spread_among(now, &taken, &peers);
        }
    }
}

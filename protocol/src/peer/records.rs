//! Key records: a geographic hash table on the overlay.
//!
//! Guarantees:
//! - **Where.** A record's name maps to a key and the key to a point
//!   (`record.rs`); in each peer's view its holders are the
//!   [`OBJECT_HOLDERS`] peers nearest that point among itself and its
//!   confirmed kept peers, as for world objects.
//! - **Put.** The writer signs a version and routes it to the point
//!   (`Route` asking `Put`, over kept peers and long links); the peer it
//!   ends at takes it, hands a copy to the other holders in its view at once
//!   and answers `Stored(n)`: itself and the holders it handed a copy to.
//!   A writer that owns the point itself stores it in the same way.
//! - **Get.** A `Route` asking `Get` is answered by the first peer on its
//!   way that holds the record, or by the point's owner (then "none" if it
//!   holds nothing). A route is sent once more after `ROUTE_RETRY_MS`.
//! - **Churn.** A peer keeps a record while it is among the [`KEEP_RANK`]
//!   nearest the point in its view. Every maintenance round, and at once
//!   for a version it has just taken, each keeper offers the version to
//!   every keeper in its view not known to have it (knowledge of a peer
//!   lasts while it keeps the record in our view); the receiver asks the
//!   first offerer for the copy. So when a holder leaves or crashes, the
//!   new nearest have the record within the failure timeout and a round.
//!   Beyond the keepers (it
//!   walked away, or a copy passed through it toward the point) it hands
//!   the record once to the holders in its view that lack it and drops it
//!   [`DROP_AFTER_MS`] later. A peer that leaves hands every record it
//!   holds to the holders in its view without it. A record whose holders all crash at once
//!   is the only one lost.
//! - **Writers.** Every version is verified (key bound to the name, the
//!   writer's signature); the first writer of a name owns it: a holder
//!   refuses a version signed by another writer, and any version not newer
//!   than the one it holds. A removal is a signed tombstone kept for its
//!   lifetime (at most [`super::objects::TOMBSTONE_MS`]). Versions expire `ttl_s` after
//!   signing. Refusals are counted (`records_refused`, `rejected`).
//! - **Bounded.** At most [`MAX_RECORDS_HELD`] records per peer; a copy is
//!   taken only if we hold the record already, would hold it, or are nearer
//!   its point than the sender; a sender we do not keep gets
//!   `ROUTED_COPIES_PER_S` new copies a second (checked before the
//!   signature).

use std::collections::{BTreeMap, HashMap};

use super::budget::Budgets;
use super::objects::{ASK_AGAIN_MS, version_expiry};
use super::{OBJECT_HOLDERS, Peer, ROUTED_COPIES_BURST, ROUTED_COPIES_PER_S, RejectReason};
use crate::Millis;
use crate::id::PeerId;
use crate::message::{MAX_OBJECT_OFFERS, MAX_RECORDS_PER_MESSAGE, Message, RouteAnswer, RouteAsk};
use crate::object::{MAX_OBJECT_TTL_S, ObjectError};
use crate::record::{MAX_RECORD_NAME, MAX_RECORD_VALUE, Record, RecordCopy, RecordKey};

/// Most records a peer holds.
pub const MAX_RECORDS_HELD: usize = 4096;
/// A peer keeps a record while it is among this many peers nearest its
/// point in its view (twice the holders: as peers walk, the three nearest
/// change several times a second, and a peer that wobbles between third
/// and fourth should not drop and fetch it each time).
const KEEP_RANK: usize = 2 * OBJECT_HOLDERS;
/// A peer no longer among a record's keepers keeps it this long at least.
const DROP_AFTER_MS: u64 = 2_000;
/// An offer not answered is trusted this long (the receiver may not keep
/// the record in its own view; it is offered again after).
const OFFER_TRUST_MS: u64 = 2_000;

/// One record held here.
#[derive(Debug)]
struct HeldRecord {
    rec: Record,
    signed_at: Millis,
    expires: Millis,
    /// Peers known to have this version (they sent or offered it, asked
    /// for it, or we sent it), or offered it lately.
    has: Vec<Know>,
    /// Since when we are not among its holders in our view.
    not_holder: Option<Millis>,
    /// Handed on to the holders in our view since we stopped being one
    /// (once: a copy passing toward its point goes no further from here).
    handed: bool,
}

/// What we know of one peer and one record's version.
#[derive(Clone, Copy, Debug)]
struct Know {
    id: PeerId,
    /// It has the version; else we offered it at `at` and it has not said.
    sure: bool,
    at: Millis,
}

impl HeldRecord {
    /// Whether `id` has the version, or was offered it lately.
    fn knows(&self, id: &PeerId) -> bool {
        self.has.iter().any(|k| k.id == *id)
    }

    /// `id` surely has the version.
    fn confirm(&mut self, id: PeerId, now: Millis) {
        match self.has.iter_mut().find(|k| k.id == id) {
            Some(k) => k.sure = true,
            None => self.has.push(Know {
                id,
                sure: true,
                at: now,
            }),
        }
    }

    fn copy(&self, now: Millis) -> RecordCopy {
        RecordCopy {
            record: self.rec.clone(),
            age_ms: now.since(self.signed_at),
        }
    }
}

/// The records held here and what our own writes need.
#[derive(Debug, Default)]
pub(super) struct RecordState {
    held: BTreeMap<RecordKey, HeldRecord>,
    /// Versions written here in this incarnation.
    written: u32,
    /// Keys asked for (`RecordWant`) and when.
    asked: HashMap<RecordKey, Millis>,
    budgets: Budgets,
}

fn expiry(r: &Record, signed_at: Millis) -> Millis {
    version_expiry(r.ttl_s, r.removed, signed_at)
}

impl Peer {
    /// Writes `value` under `name` for `ttl_s` seconds: signed here and
    /// routed to the name's point; the answer comes as
    /// [`super::Event::Routed`] with the returned token (`Stored(n)`, or
    /// `Refused` when the name is another writer's).
    pub fn put_record(
        &mut self,
        now: Millis,
        name: &str,
        value: Vec<u8>,
        ttl_s: u32,
    ) -> Result<u64, ObjectError> {
        self.write_record(now, name, value, ttl_s, false)
    }

    /// Removes our record `name` (a signed tombstone, routed as a put).
    pub fn remove_record(&mut self, now: Millis, name: &str) -> Result<u64, ObjectError> {
        self.write_record(now, name, Vec::new(), 600, true)
    }

    fn write_record(
        &mut self,
        now: Millis,
        name: &str,
        value: Vec<u8>,
        ttl_s: u32,
        removed: bool,
    ) -> Result<u64, ObjectError> {
        if value.len() > MAX_RECORD_VALUE {
            return Err(ObjectError::ValueTooLong(value.len()));
        }
        if name.len() > MAX_RECORD_NAME {
            return Err(ObjectError::TooLong);
        }
        if ttl_s == 0 || ttl_s > MAX_OBJECT_TTL_S {
            return Err(ObjectError::BadTtl);
        }
        if self.object_signer().is_none() {
            return Err(ObjectError::NoSigner);
        }
        // A restarted writer's versions are newer than its last life's.
        self.records.written += 1;
        let version = (u64::from(self.config.incarnation) << 32) | u64::from(self.records.written);
        let signer = self.object_signer().ok_or(ObjectError::NoSigner)?;
        let rec = Record::signed(signer, name, value, version, ttl_s, removed);
        let target = rec.key.point(self.config.world);
        let copy = RecordCopy {
            record: rec,
            age_ms: 0,
        };
        Ok(self.start_route(now, target, RouteAsk::Put(Box::new(copy)), None))
    }

    /// Looks `name` up: answered as [`super::Event::Routed`] with the
    /// returned token (`Record(Some)` with the newest version found, or
    /// `Record(None)`), at once when we hold it.
    pub fn get_record(&mut self, now: Millis, name: &str) -> u64 {
        let key = RecordKey::of(name);
        if let Some(copy) = self.held_record(now, &key) {
            let token = self.next_token();
            self.events.push_back(super::Event::Routed {
                token,
                target: key.point(self.config.world),
                hops: 0,
                owner: self.me.id,
                pos: self.me.pos,
                answer: RouteAnswer::Record(Some(Box::new(copy))),
            });
            return token;
        }
        let target = key.point(self.config.world);
        self.start_route(now, target, RouteAsk::Get { key, detour: 0 }, None)
    }

    /// The records held here (tombstones included), by key.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.held.values().map(|h| &h.rec)
    }

    /// Our copy of `key`, if we hold a live version.
    pub(super) fn held_record(&self, now: Millis, key: &RecordKey) -> Option<RecordCopy> {
        self.records
            .held
            .get(key)
            .filter(|h| now < h.expires)
            .map(|h| h.copy(now))
    }

    /// We leave: each record we hold goes to the holders in our view
    /// without us, whatever we believe they have (a copy we sent may not
    /// have arrived; this is the last chance, and goodbyes are rare).
    pub(super) fn records_leaving(&mut self, now: Millis) {
        let world = self.config.world;
        let peers = self.object_peers(now);
        let mut out: HashMap<PeerId, Vec<RecordCopy>> = HashMap::new();
        for (key, h) in &self.records.held {
            let next = self.nearest_of(key.point(world), &peers, OBJECT_HOLDERS + 1);
            for id in next.into_iter().flatten().take(OBJECT_HOLDERS) {
                out.entry(id).or_default().push(h.copy(now));
            }
        }
        self.send_record_copies(out, now);
    }

    fn send_record_copies(&mut self, out: HashMap<PeerId, Vec<RecordCopy>>, now: Millis) {
        let mut to: Vec<(PeerId, Vec<RecordCopy>)> = out.into_iter().collect();
        to.sort_by_key(|t| t.0);
        for (id, copies) in to {
            for chunk in copies.chunks(MAX_RECORDS_PER_MESSAGE) {
                let msg = Message::Records {
                    records: chunk.to_vec(),
                };
                self.send(id, msg, now);
            }
        }
    }

    /// The nearest holder of `key` in our view other than us and `not`.
    pub(super) fn other_holder(
        &self,
        now: Millis,
        key: &RecordKey,
        not: &[PeerId],
    ) -> Option<PeerId> {
        let peers = self.object_peers(now);
        self.holders_of(key.point(self.config.world), &peers)
            .into_iter()
            .flatten()
            .find(|id| !not.contains(id))
    }

    /// The end of a put: take it, hand it to the other holders, answer.
    pub(super) fn store_put(
        &mut self,
        now: Millis,
        origin: PeerId,
        copy: RecordCopy,
    ) -> RouteAnswer {
        let key = copy.record.key;
        match self.take_record(now, origin, copy) {
            Ok(_) => {
                let handed = self.hand_records(now, &[key], true);
                RouteAnswer::Stored(u8::try_from(1 + handed).unwrap_or(u8::MAX))
            }
            Err(e) => {
                self.refuse_record(origin, e);
                RouteAnswer::Refused
            }
        }
    }

    fn refuse_record(&mut self, from: PeerId, e: ObjectError) {
        self.stats.records_refused += 1;
        if matches!(
            e,
            ObjectError::BadSignature | ObjectError::KeyNotBound | ObjectError::NotAuthor
        ) {
            self.reject(from, RejectReason::BadObject(e));
        }
    }

    /// Verifies and takes a copy from `from`; true when it is new here.
    fn take_record(
        &mut self,
        now: Millis,
        from: PeerId,
        copy: RecordCopy,
    ) -> Result<bool, ObjectError> {
        let rec = copy.record;
        if let Some(h) = self.records.held.get_mut(&rec.key)
            && rec.version <= h.rec.version
            && rec.author_key == h.rec.author_key
        {
            if rec.version == h.rec.version {
                h.confirm(from, now);
            }
            return Ok(false);
        }
        rec.verify()?;
        if let Some(h) = self.records.held.get(&rec.key)
            && now < h.expires
            && h.rec.author_key != rec.author_key
        {
            return Err(ObjectError::NotAuthor);
        }
        if !self.records.held.contains_key(&rec.key) && self.records.held.len() >= MAX_RECORDS_HELD
        {
            return Err(ObjectError::Quota(MAX_RECORDS_HELD));
        }
        let signed_at = Millis(now.0.saturating_sub(copy.age_ms));
        let expires = expiry(&rec, signed_at);
        if now >= expires {
            return Ok(false);
        }
        self.stats.records_taken += 1;
        self.records.held.insert(
            rec.key,
            HeldRecord {
                rec,
                signed_at,
                expires,
                has: vec![Know {
                    id: from,
                    sure: true,
                    at: now,
                }],
                not_holder: None,
                handed: false,
            },
        );
        Ok(true)
    }

    /// Copies of records from `from`.
    pub(super) fn on_records(&mut self, now: Millis, from: PeerId, copies: Vec<RecordCopy>) {
        let world = self.config.world;
        let kept = self.kept.get(&from).is_some_and(|k| k.confirmed);
        let peers = self.object_peers(now);
        let from_pos = self.kept.get(&from).map(|k| self.believed(k, now));
        let mut new = Vec::new();
        for copy in copies {
            let key = copy.record.key;
            let point = key.point(world);
            let held = self.records.held.contains_key(&key);
            let mine = world.distance(self.me.pos, point);
            let wanted = held
                || self.nearest_of(point, &peers, KEEP_RANK).contains(&None)
                || from_pos.is_none_or(|p| mine < world.distance(p, point));
            if !wanted {
                self.stats.records_refused += 1;
                continue;
            }
            if !held
                && !kept
                && !self
                    .records
                    .budgets
                    .spend(from, now, ROUTED_COPIES_PER_S, ROUTED_COPIES_BURST)
            {
                self.stats.records_refused += 1;
                continue;
            }
            match self.take_record(now, from, copy) {
                Ok(true) => new.push(key),
                Ok(false) => {}
                Err(e) => self.refuse_record(from, e),
            }
        }
        if !new.is_empty() {
            for key in &new {
                self.records.asked.remove(key);
            }
            self.hand_records(now, &new, false);
        }
    }

    /// The maintenance round's share: expire, hand to the holders that
    /// lack a version, drop what we no longer hold for.
    pub(super) fn records_round(&mut self, now: Millis) {
        if self.records.held.is_empty() {
            return;
        }
        self.records.held.retain(|_, h| now < h.expires);
        let keys: Vec<RecordKey> = self.records.held.keys().copied().collect();
        self.hand_records(now, &keys, false);
    }

    /// Hands each of `keys` on to the peers in our view that should keep
    /// it and are not known to have its version: while we keep it, an
    /// offer to each (full copies with `full`: a put that just ended
    /// here); once we no longer do, a full copy to each holder, once; then
    /// drops it [`DROP_AFTER_MS`] later. Returns how many peers were sent
    /// a copy or an offer.
    fn hand_records(&mut self, now: Millis, keys: &[RecordKey], full: bool) -> usize {
        let world = self.config.world;
        let peers = self.object_peers(now);
        let mut copies: HashMap<PeerId, Vec<RecordCopy>> = HashMap::new();
        let mut offers: HashMap<PeerId, Vec<(RecordKey, u64)>> = HashMap::new();
        let mut sent = 0;
        for key in keys {
            if !self.records.held.contains_key(key) {
                continue;
            }
            let keepers = self.nearest_of(key.point(world), &peers, KEEP_RANK);
            let holders = &keepers[..keepers.len().min(OBJECT_HOLDERS)];
            let h = self.records.held.get_mut(key).expect("held");
            // Knowledge of a peer lasts while it keeps the record in our
            // view: one that walked away drops its copy, and is offered it
            // again if it comes back.
            // An offer nobody answered (the peer did not want it: it does
            // not keep the record in its own view) is made again later.
            h.has.retain(|k| {
                keepers.contains(&Some(k.id)) && (k.sure || now.since(k.at) < OFFER_TRUST_MS)
            });
            let keeper = keepers.contains(&None);
            let (targets, copy) = if keeper {
                (&keepers[..], full)
            } else if !h.handed {
                (holders, true)
            } else {
                (&[][..], false)
            };
            for id in targets.iter().flatten() {
                if !h.knows(id) {
                    h.has.push(Know {
                        id: *id,
                        sure: copy,
                        at: now,
                    });
                    sent += 1;
                    if copy {
                        copies.entry(*id).or_default().push(h.copy(now));
                    } else {
                        offers.entry(*id).or_default().push((*key, h.rec.version));
                    }
                }
            }
            if keeper {
                h.not_holder = None;
                h.handed = false;
            } else {
                h.handed = true;
                let since = *h.not_holder.get_or_insert(now);
                if now.since(since) >= DROP_AFTER_MS {
                    self.records.held.remove(key);
                }
            }
        }
        self.send_record_copies(copies, now);
        let mut offers: Vec<(PeerId, Vec<(RecordKey, u64)>)> = offers.into_iter().collect();
        offers.sort_by_key(|o| o.0);
        for (id, list) in offers {
            for chunk in list.chunks(MAX_OBJECT_OFFERS) {
                let msg = Message::RecordOffer {
                    offers: chunk.to_vec(),
                };
                self.send(id, msg, now);
            }
        }
        sent
    }

    /// `from` has these versions and takes it we should keep them: we note
    /// that it has what we have, and ask it for what we lack and want (one
    /// request per key at a time, asked again of the next offerer after
    /// [`ASK_AGAIN_MS`]).
    pub(super) fn on_record_offer(
        &mut self,
        now: Millis,
        from: PeerId,
        offers: &[(RecordKey, u64)],
    ) {
        let world = self.config.world;
        let peers = self.object_peers(now);
        self.records
            .asked
            .retain(|_, at| now.since(*at) < ASK_AGAIN_MS);
        let mut want = Vec::new();
        let mut echo = Vec::new();
        for (key, version) in offers {
            if let Some(h) = self.records.held.get_mut(key)
                && h.rec.version >= *version
            {
                // Tell an offerer that did not know we have it, once.
                if h.rec.version == *version {
                    if !h.has.iter().any(|k| k.id == from && k.sure) {
                        echo.push((*key, *version));
                    }
                    h.confirm(from, now);
                }
                continue;
            }
            let wanted = self.records.held.contains_key(key)
                || self
                    .nearest_of(key.point(world), &peers, KEEP_RANK)
                    .contains(&None);
            if wanted && !self.records.asked.contains_key(key) {
                self.records.asked.insert(*key, now);
                want.push(*key);
            }
        }
        if !want.is_empty() {
            self.send(from, Message::RecordWant { keys: want }, now);
        }
        if !echo.is_empty() {
            self.send(from, Message::RecordOffer { offers: echo }, now);
        }
    }

    /// `from` asks for copies we offered it (anything else is not
    /// answered: a request costs the asker as little as the answer).
    pub(super) fn on_record_want(&mut self, now: Millis, from: PeerId, keys: &[RecordKey]) {
        let mut copies = Vec::new();
        for key in keys {
            match self.records.held.get(key) {
                Some(h) if h.knows(&from) => copies.push(h.copy(now)),
                _ => self.stats.records_refused += 1,
            }
        }
        if !copies.is_empty() {
            let mut out = HashMap::new();
            out.insert(from, copies);
            self.send_record_copies(out, now);
        }
    }
}

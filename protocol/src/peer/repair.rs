//! Repair: healing what a lost message, a race or a departure left behind.
//!
//! Guarantees:
//! - Anti-entropy: every `anti_entropy_ms` each confirmed enclosing
//!   neighbour gets a digest of the short ids we keep; the receiver answers
//!   with a `Discover` of the fresh records we should keep and lack.
//! - After a loss (goodbye or timeout) the view is rebuilt at once and each
//!   enclosing neighbour is asked to fill the hole.
//! - A new enclosing neighbour beyond our radius is asked for its side
//!   (sparse worlds).
//! - Hull repair (Solipsis): an angular gap of π or more among kept peers
//!   means a side of us is uncovered; the two neighbours bounding the gap
//!   are asked.
//! - Repair digests to one neighbour are at least `repair_interval_ms`
//!   apart; each is counted in `Stats::repairs`.
//! - Partitions heal: a confirmed peer dropped after silence may have been
//!   cut off rather than dead. The last few such peers are remembered, and
//!   one a maintenance round is probed with a join walked toward our own
//!   position (2 s after the loss, then 4, 8, … up to 64 s, then forgotten).
//!   If it is alive in another component, the walk ends at the peer there
//!   whose cell holds us, whose reply introduces both sides; ordinary
//!   discovery spreads the merge.

use super::Peer;
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::id::PeerInfo;
use crate::message::{MAX_DIGEST, Message, encoded_len, encoded_record_len};

/// The 4-byte digest form of an id.
pub fn short4(id: &PeerId) -> [u8; 4] {
    [id.0[0], id.0[1], id.0[2], id.0[3]]
}

/// Most silenced peers remembered.
const MAX_SILENCED: usize = 8;
/// First probe after the loss; the wait doubles after each probe.
const FIRST_PROBE_MS: u64 = 2_000;
/// A silenced peer is forgotten once the wait would pass this.
const LAST_PROBE_MS: u64 = 64_000;

/// A peer dropped after silence, and when to probe it next.
#[derive(Clone, Copy, Debug)]
pub(super) struct Silenced {
    id: PeerId,
    next: Millis,
    wait_ms: u64,
}

/// A peer's digests are answered at most this often (its legitimate ones
/// come every 2 s for anti-entropy, and after a loss, a join or a growth).
pub(super) const DIGEST_ANSWER_EVERY_MS: u64 = 250;
/// Digest answers to a peer stay below this many times the bytes it sent
/// us (counted by [`Message::min_wire_len`], a lower bound)...
pub const REPLY_MULTIPLE: u32 = 4;
/// ...plus this first allowance (a newcomer's first repair).
pub const FIRST_REPLY_CREDIT: u32 = 16 * 1024;
/// Credit saved at most.
const MAX_REPLY_CREDIT: u32 = 64 * 1024;

impl super::table::Known {
    /// A message from this peer: it may be answered with up to
    /// [`REPLY_MULTIPLE`] times its size.
    pub(super) fn earn_reply_credit(&mut self, msg: &Message) {
        let earned = (msg.min_wire_len() as u32).saturating_mul(REPLY_MULTIPLE);
        self.reply_credit = self
            .reply_credit
            .saturating_add(earned)
            .min(MAX_REPLY_CREDIT);
    }
}

impl Peer {
    /// Remembers a peer dropped after silence.
    pub(super) fn remember_silenced(&mut self, id: PeerId, now: Millis) {
        self.silenced.retain(|s| s.id != id);
        if self.silenced.len() >= MAX_SILENCED {
            self.silenced.remove(0);
        }
        self.silenced.push(Silenced {
            id,
            next: now.plus(FIRST_PROBE_MS),
            wait_ms: FIRST_PROBE_MS,
        });
    }

    /// Probes one silenced peer that is due, on the maintenance round.
    pub(super) fn probe_silenced(&mut self, now: Millis) {
        if !self.is_joined() {
            return;
        }
        let kept = &self.kept;
        self.silenced.retain(|s| !kept.contains_key(&s.id));
        let Some(i) = self.silenced.iter().position(|s| now >= s.next) else {
            return;
        };
        let id = self.silenced[i].id;
        let wait = self.silenced[i].wait_ms * 2;
        if wait > LAST_PROBE_MS {
            self.silenced.remove(i);
        } else {
            self.silenced[i].wait_ms = wait;
            self.silenced[i].next = now.plus(wait);
        }
        self.stats.repairs += 1;
        self.probe_through(id, now);
    }

    /// The periodic digest to each confirmed enclosing neighbour.
    pub(super) fn anti_entropy(&mut self, now: Millis) {
        let targets: Vec<PeerId> = self
            .kept
            .iter()
            .filter(|(_, k)| k.enclosing && k.confirmed)
            .map(|(id, _)| *id)
            .collect();
        for id in targets {
            self.send_digest(id, now);
        }
    }

    /// Answers a kept peer's digest with the records it lacks, at most once
    /// per [`DIGEST_ANSWER_EVERY_MS`] per peer: an 8-byte empty digest earns
    /// up to 256 records, so a flood of them was a 2 400× amplifier. And
    /// within the peer's reply credit: what we send in answers stays below
    /// [`REPLY_MULTIPLE`] times what it sent us, plus a first allowance of
    /// [`FIRST_REPLY_CREDIT`] (records beyond it wait for the next digest).
    pub(super) fn on_digest(&mut self, now: Millis, from: PeerId, ids: &[[u8; 4]]) {
        let Some(k) = self.kept.get_mut(&from) else {
            return;
        };
        if k.digest_answered
            .is_some_and(|t| now.since(t) < DIGEST_ANSWER_EVERY_MS)
        {
            self.stats.digests_refused += 1;
            return;
        }
        k.digest_answered = Some(now);
        let (pos, r) = (k.info.pos, k.info.radius);
        let has = |id: &PeerId| ids.binary_search(&short4(id)).is_ok();
        // Confirmed records only: a hint carries its relayer's belief of
        // the radius, often a stale large one, and answering digests with
        // hints passed such records on from hint to hint for ever (a crowd
        // peer kept 60 of them beyond its own reach).
        let records = self.records_for(now, from, (pos, r), false, has);
        if records.is_empty() {
            return;
        }
        let credit = self.kept.get(&from).map_or(0, |k| k.reply_credit) as usize;
        let discover = |peers: Vec<PeerInfo>| Message::Discover {
            peers,
            mutual: false,
        };
        // 2 bytes spare for the list's length.
        let overhead = encoded_len(&discover(Vec::new())) + 2;
        let paid = self.nearest_within(records, pos, overhead, credit);
        if paid.is_empty() {
            return;
        }
        let msg = discover(paid);
        let len = encoded_len(&msg) as u32;
        if let Some(k) = self.kept.get_mut(&from) {
            k.reply_credit = k.reply_credit.saturating_sub(len);
        }
        self.send(from, msg, now);
    }

    /// `records`, the nearest to `pos` first, as many as fit in `budget`
    /// bytes beside `overhead` (the reply without them); a cut is counted in
    /// `replies_capped`.
    pub(super) fn nearest_within(
        &mut self,
        mut records: Vec<PeerInfo>,
        pos: Point,
        overhead: usize,
        budget: usize,
    ) -> Vec<PeerInfo> {
        let w = self.config.world;
        records.sort_by(|a, b| {
            w.distance_sq(a.pos, pos)
                .total_cmp(&w.distance_sq(b.pos, pos))
        });
        let mut total = overhead;
        let mut paid = Vec::new();
        for rec in records {
            let one = encoded_record_len(&rec);
            if total + one > budget {
                self.stats.replies_capped += 1;
                break;
            }
            total += one;
            paid.push(rec);
        }
        paid
    }

    pub(super) fn send_digest(&mut self, to: PeerId, now: Millis) {
        let Some(k) = self.kept.get_mut(&to) else {
            return;
        };
        k.last_repair = Some(now);
        let mut ids: Vec<[u8; 4]> = self.kept.keys().map(short4).collect();
        ids.sort_unstable();
        ids.truncate(MAX_DIGEST);
        self.send(to, Message::Digest { ids }, now);
    }

    /// A digest sent to ask for repair, rate limited per neighbour.
    fn repair_digest(&mut self, to: PeerId, now: Millis) {
        let interval = self.config.repair_interval_ms;
        let due = self
            .kept
            .get(&to)
            .is_some_and(|k| k.confirmed && k.last_repair.is_none_or(|t| now.since(t) >= interval));
        if due {
            self.stats.repairs += 1;
            self.send_digest(to, now);
        }
    }

    /// A neighbour went away: recompute, then ask the enclosing ones to fill
    /// the hole.
    pub(super) fn after_loss(&mut self, now: Millis) {
        self.recompute(now);
        // `recompute` just refreshed the enclosing list.
        let targets = self.enclosing.clone();
        for id in targets {
            self.repair_digest(id, now);
        }
    }

    /// A new enclosing neighbour beyond our radius may know of peers on its
    /// side that we lack (sparse worlds): ask it.
    pub(super) fn ask_new_far_enclosing(&mut self, now: Millis, new_enclosing: &[PeerId]) {
        let (me_pos, me_r) = (self.me.pos, self.me.radius);
        for &id in new_enclosing {
            let far = self
                .kept
                .get(&id)
                .is_some_and(|k| self.config.world.distance(me_pos, k.info.pos) > f64::from(me_r));
            if far {
                self.repair_digest(id, now);
            }
        }
    }

    /// Hull repair, on the maintenance round.
    pub(super) fn repair_hull(&mut self, now: Millis) {
        if self.kept.len() < 2 || !self.is_joined() {
            return;
        }
        let world = self.config.world;
        let me = self.me.pos;
        let mut angles: Vec<(f64, PeerId)> = self
            .kept
            .iter()
            .filter_map(|(id, k)| {
                let (dx, dy) = world.delta(me, k.info.pos);
                (dx != 0.0 || dy != 0.0).then(|| (dy.atan2(dx), *id))
            })
            .collect();
        angles.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut only: Vec<f64> = angles.iter().map(|a| a.0).collect();
        let (gap, i, j) = crate::geometry::max_gap_of_angles(&mut only);
        if gap >= std::f64::consts::PI && angles.len() >= 2 {
            let (a, b) = (angles[i].1, angles[j].1);
            self.repair_digest(a, now);
            self.repair_digest(b, now);
        }
    }
}

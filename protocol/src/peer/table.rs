//! The kept peers.
//!
//! Guarantees: the table holds at most `Config::max_kept` peers once a
//! recompute has run (unless more than that are confirmed and enclosing);
//! eviction drops hints before any confirmed peer and never a confirmed
//! enclosing neighbour; no sender has more than `HINTS_PER_SENDER` hints
//! outstanding (a join reply, up to a whole message). Every insert is announced with
//! `Event::NeighbourAdded` and schedules a recompute; a peer learned from a
//! third party is a hint (`confirmed == false`) until it speaks itself, and
//! only fresh entries are vouched for to others.

use super::motion::Motion;
use super::{Event, Peer, RemoveReason};
use crate::Millis;
use crate::id::{PeerId, PeerInfo};
use crate::message::Message;

/// A peer's incarnation, then its move sequence number: records compare
/// by incarnation first, so a restarted peer's first move beats every move
/// of its previous life.
pub(super) type Stamp = (u32, u32);

/// What a peer knows about one kept peer. The fields every motion round
/// and every message read come first, so that a walk over the table
/// touches the first cache lines of each row only (`repr(C)` keeps this
/// order).
#[derive(Clone, Debug)]
#[repr(C)]
pub(super) struct Known {
    /// Its last announced motion (a hint's is still at its position).
    pub(super) motion: Motion,
    /// Where we believed it at the last motion round, when a move has
    /// corrected the belief since (pair discovery judges the change then).
    pub(super) round_old: Option<crate::geometry::Point>,
    pub(super) last_heard: Millis,
    /// Its incarnation and last move sequence number heard.
    pub(super) stamp: Stamp,
    /// It has spoken to us on its own link.
    pub(super) confirmed: bool,
    pub(super) enclosing: bool,
    pub(super) hello_sent: bool,
    pub(super) info: PeerInfo,
    pub(super) added: Millis,
    pub(super) last_sent: Millis,
    pub(super) last_repair: Option<Millis>,
    /// For a hint told to both sides: greet it ourselves if it has not
    /// spoken by then.
    pub(super) greet_at: Option<Millis>,
    /// The short ids last told to this neighbour as its likely enclosing
    /// peers (the two vertices across our shared Delaunay edge).
    pub(super) told: [u64; 2],
    /// When we last answered its digest (see `on_digest`).
    pub(super) digest_answered: Option<Millis>,
    /// Bytes we may still send it in answer to its digests: a first
    /// allowance, then [`super::repair::REPLY_MULTIPLE`] times what it sends us.
    pub(super) reply_credit: u32,
    /// For a hint: the peer that told us of it (each sender has a quota of
    /// hints outstanding, see `HINTS_PER_SENDER`).
    pub(super) vouched_by: Option<PeerId>,
}

impl Known {
    /// Whether `stamp` is of a later life than the one we knew; if so the
    /// new life knows nothing of us: it must be greeted again.
    pub(super) fn new_life(&mut self, stamp: Stamp) -> bool {
        let restarted = stamp.0 > self.stamp.0;
        if restarted {
            self.hello_sent = false;
        }
        restarted
    }
}

impl Peer {
    /// Sends `msg` to every kept peer.
    pub(super) fn broadcast(&mut self, msg: &Message, now: Millis) {
        let ids: Vec<PeerId> = self.kept.keys().copied().collect();
        for id in ids {
            self.send(id, msg.clone(), now);
        }
    }

    pub(super) fn insert(&mut self, info: PeerInfo, stamp: Stamp, confirmed: bool, now: Millis) {
        let id = info.id;
        let pos = info.pos;
        self.kept.insert(
            id,
            Known {
                info,
                stamp,
                confirmed,
                added: now,
                last_heard: now,
                last_sent: now,
                last_repair: None,
                enclosing: false,
                hello_sent: false,
                greet_at: None,
                told: [0; 2],
                motion: Motion::still(pos, now),
                round_old: None,
                digest_answered: None,
                reply_credit: super::repair::FIRST_REPLY_CREDIT,
                vouched_by: None,
            },
        );
        self.events.push_back(Event::NeighbourAdded(id));
        // A table that grew by an eighth since the last view is pruned now;
        // other changes wait for the motion round.
        if self.kept.len() > self.view_len + (self.view_len / 8).max(4) {
            self.mark_dirty_soon(now);
        } else {
            self.mark_dirty(now);
        }
    }

    /// Whether this peer may vouch for `k` to others: heard from directly
    /// within one and a half heartbeats (every kept peer speaks at least once
    /// a heartbeat), or a hint received as recently (hints must travel on
    /// before the peer speaks, or pairs are learned too late at high latency;
    /// the window keeps a crashed peer from living on as a hint relayed from
    /// peer to peer for long).
    pub(super) fn fresh(&self, k: &Known, now: Millis) -> bool {
        if k.confirmed {
            now.since(k.last_heard) <= self.config.heartbeat_ms * 3 / 2
        } else {
            now.since(k.added) <= self.config.heartbeat_ms * 3 / 2
        }
    }

    /// Drops peers beyond `Config::max_kept`: hints first, those not
    /// enclosing before those enclosing (a confirmed peer is never evicted
    /// to keep a hint, or a flood of close fake records, enclosing by
    /// construction, would push out every real neighbour), then confirmed
    /// peers that are not enclosing; the farthest first within each kind.
    /// A confirmed enclosing neighbour is never evicted.
    pub(super) fn enforce_cap(&mut self) {
        let cap = self.config.max_kept;
        if self.kept.len() <= cap {
            return;
        }
        let world = self.config.world;
        let me = self.me.pos;
        let mut by_dist: Vec<((bool, bool), f64, PeerId)> = self
            .kept
            .iter()
            .filter(|(_, k)| !(k.enclosing && k.confirmed))
            .map(|(id, k)| {
                let kind = (k.confirmed, k.enclosing);
                (kind, world.distance_sq(me, k.info.pos), *id)
            })
            .collect();
        by_dist.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let excess = self.kept.len() - cap;
        for (_, _, id) in by_dist.into_iter().take(excess) {
            self.remove(&id, RemoveReason::Evicted);
        }
    }
}

/// The kept peers, sorted by id in one contiguous vector: iteration is what
/// the hot paths do, and it stays cache-friendly. Lookups search a parallel
/// vector of the ids' first eight bytes (most comparisons end there).
#[derive(Debug, Default)]
pub(super) struct Table {
    keys: Vec<u64>,
    rows: Vec<Known>,
}

/// The id's first eight bytes, in the ids' order.
fn prefix(id: &PeerId) -> u64 {
    u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"))
}

impl Table {
    fn find(&self, id: &PeerId) -> Result<usize, usize> {
        match self.keys.binary_search(&prefix(id)) {
            Ok(i) if self.rows[i].info.id == *id => Ok(i),
            // Two ids sharing their first eight bytes: search the rows.
            Ok(_) => self.rows.binary_search_by(|k| k.info.id.cmp(id)),
            Err(i) => Err(i),
        }
    }
    pub(super) fn get(&self, id: &PeerId) -> Option<&Known> {
        self.find(id).ok().map(|i| &self.rows[i])
    }
    pub(super) fn get_mut(&mut self, id: &PeerId) -> Option<&mut Known> {
        self.find(id).ok().map(|i| &mut self.rows[i])
    }
    pub(super) fn contains_key(&self, id: &PeerId) -> bool {
        self.find(id).is_ok()
    }
    pub(super) fn insert(&mut self, id: PeerId, k: Known) {
        debug_assert_eq!(id, k.info.id);
        match self.find(&id) {
            Ok(i) => self.rows[i] = k,
            Err(i) => {
                self.keys.insert(i, prefix(&id));
                self.rows.insert(i, k);
            }
        }
    }
    pub(super) fn remove(&mut self, id: &PeerId) -> Option<Known> {
        self.find(id).ok().map(|i| {
            self.keys.remove(i);
            self.rows.remove(i)
        })
    }
    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.rows.clear();
    }
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = (&PeerId, &Known)> {
        self.rows.iter().map(|k| (&k.info.id, k))
    }
    pub(super) fn keys(&self) -> impl Iterator<Item = &PeerId> {
        self.rows.iter().map(|k| &k.info.id)
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &Known> {
        self.rows.iter()
    }
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Known> {
        self.rows.iter_mut()
    }
}

impl std::ops::Index<&PeerId> for Table {
    type Output = Known;
    fn index(&self, id: &PeerId) -> &Known {
        self.get(id).expect("known peer")
    }
}

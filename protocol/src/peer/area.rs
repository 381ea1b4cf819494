//! Area messages: an application message for every peer within a disk.
//!
//! Guarantees:
//! - **Fast path.** A sender whose own awareness disk holds the whole
//!   target disk knows every peer inside it (the overlay's invariant), so
//!   it sends the message straight to each kept peer inside the disk (plus
//!   half of `Config::buffer` for motion since the last update): one message per
//!   receiver, never forwarded (`AreaStage::Direct`). Chat is always this
//!   case: the speaker's own position and radius.
//! - **General path.** Otherwise the message is forwarded greedily over
//!   confirmed kept peers toward the centre (`Route`) until the peer with
//!   nobody nearer (whose cell holds the centre), which floods it (`Flood`):
//!   each peer that sees it first delivers it if it lies inside the disk
//!   and passes it to each Delaunay neighbour whose cell may meet the disk
//!   (the neighbour lies within the radius plus the distance between the
//!   two). A filter of the last `SEEN_REMEMBERED` (origin, id) pairs drops
//!   copies; every message stops after 255 forwards.
//! - **Bounded.** Payloads of at most `MAX_AREA_PAYLOAD` bytes, disks of
//!   at most `MAX_AREA_RADIUS`; each direct sender (and this peer's own
//!   sends) gets `AREA_RATE_PER_S` messages a second, in bursts of
//!   `AREA_BURST`; beyond it, messages are refused and counted. All
//!   senders together, a peer passes on at most `AREA_FORWARD_RATE_PER_S`
//!   messages a second (in bursts of twice that); beyond it, it delivers
//!   but does not forward (counted as refused).
//! - A first-hop message names its sender as its origin; one naming
//!   another is refused. Relayed messages carry their origin as the relay
//!   says: an application that must know its author signs the payload.

use std::collections::{HashSet, VecDeque};

use super::budget::{Bucket, Budgets};
use super::{Event, Peer, RejectReason};
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::{AreaStage, MAX_AREA_PAYLOAD, MAX_AREA_RADIUS, MAX_ROUTE_HOPS, Message};

/// Area messages a second that one direct sender may send us (and that
/// we may send), sustained.
pub const AREA_RATE_PER_S: f32 = 10.0;
/// Area messages one direct sender may send in a burst.
pub const AREA_BURST: f32 = 20.0;
/// Area messages a second this peer passes on (routes and floods), all
/// senders together: what one node forwards at most.
pub const AREA_FORWARD_RATE_PER_S: f32 = 100.0;
/// Longest chat line, in bytes of UTF-8.
pub const MAX_CHAT_LEN: usize = 280;
/// (origin, id) pairs remembered by the duplicate filter.
const SEEN_REMEMBERED: usize = 4096;
/// First byte of a chat payload (the rest is the UTF-8 text).
const CHAT_TAG: u8 = 1;

/// Why an area message or chat line was not sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AreaError {
    /// The payload is larger than [`MAX_AREA_PAYLOAD`].
    #[error("payload of {0} bytes exceeds the {MAX_AREA_PAYLOAD}-byte limit")]
    TooLarge(usize),
    /// The chat line is longer than [`MAX_CHAT_LEN`] bytes.
    #[error("chat line of {0} bytes exceeds the {MAX_CHAT_LEN}-byte limit")]
    TextTooLong(usize),
    /// The chat line is empty (after trimming).
    #[error("chat line is empty")]
    EmptyText,
    /// The centre is not finite, or the radius not in 0..=`MAX_AREA_RADIUS`.
    #[error("area must have a finite centre and a radius within 0..={MAX_AREA_RADIUS}")]
    BadArea,
    /// This peer sent [`AREA_BURST`] messages too quickly.
    #[error("sending too fast: at most {AREA_RATE_PER_S} area messages a second")]
    RateLimited,
}

/// A chat line's payload.
pub fn chat_payload(text: &str) -> Result<Vec<u8>, AreaError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AreaError::EmptyText);
    }
    if text.len() > MAX_CHAT_LEN {
        return Err(AreaError::TextTooLong(text.len()));
    }
    let mut payload = Vec::with_capacity(1 + text.len());
    payload.push(CHAT_TAG);
    payload.extend_from_slice(text.as_bytes());
    Ok(payload)
}

/// The text of a chat payload; `None` if the payload is not a chat line
/// (another kind, too long, or not UTF-8).
pub fn chat_text(payload: &[u8]) -> Option<&str> {
    let (&tag, text) = payload.split_first()?;
    if tag != CHAT_TAG || text.len() > MAX_CHAT_LEN {
        return None;
    }
    std::str::from_utf8(text).ok()
}

/// The duplicate filter, the budgets and the id counter.
#[derive(Debug, Default)]
pub(super) struct AreaState {
    next_id: u64,
    seen: HashSet<(PeerId, u64)>,
    order: VecDeque<(PeerId, u64)>,
    budgets: Budgets,
    /// This peer's own forwarding budget.
    forwarding: Option<Bucket>,
}

impl AreaState {
    /// Takes one forward from this peer's own budget, if one is left.
    fn forward_allowed(&mut self, now: Millis) -> bool {
        let burst = 2.0 * AREA_FORWARD_RATE_PER_S;
        self.forwarding
            .get_or_insert(Bucket::full(burst, now))
            .take(now, AREA_FORWARD_RATE_PER_S, burst)
    }

    /// Whether (origin, id) is new; remembers it.
    fn first_sight(&mut self, key: (PeerId, u64)) -> bool {
        if !self.seen.insert(key) {
            return false;
        }
        if self.order.len() >= SEEN_REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(key);
        true
    }

    /// Takes one message from `who`'s budget, if it has one left.
    fn spend(&mut self, who: PeerId, now: Millis) -> bool {
        self.budgets.spend(who, now, AREA_RATE_PER_S, AREA_BURST)
    }
}

/// One area message as it travels.
struct Cast {
    id: u64,
    origin: PeerId,
    centre: Point,
    radius: f32,
    hops: u16,
    payload: Vec<u8>,
}

impl Peer {
    /// Sends `payload` to every peer within `radius` of `centre`; returns
    /// its id (with our id, the key receivers see). We receive it too
    /// ([`Event::AreaMessage`]) if we lie inside the disk.
    pub fn area_cast(
        &mut self,
        now: Millis,
        centre: Point,
        radius: f32,
        payload: Vec<u8>,
    ) -> Result<u64, AreaError> {
        if payload.len() > MAX_AREA_PAYLOAD {
            return Err(AreaError::TooLarge(payload.len()));
        }
        if !centre.is_finite() || !(0.0..=MAX_AREA_RADIUS).contains(&radius) {
            return Err(AreaError::BadArea);
        }
        if !self.area.spend(self.me.id, now) {
            return Err(AreaError::RateLimited);
        }
        let centre = self.config.world.wrap(centre);
        self.area.next_id += 1;
        let cast = Cast {
            id: self.area.next_id,
            origin: self.me.id,
            centre,
            radius,
            hops: 0,
            payload,
        };
        let id = cast.id;
        let world = self.config.world;
        if world.distance(self.me.pos, centre) + f64::from(radius) <= f64::from(self.me.radius) {
            self.area.first_sight((cast.origin, cast.id));
            self.deliver_if_inside(&cast);
            // A believed position is off by at most epsilon plus a step and
            // a latency of travel (`motion.rs`): half the detection buffer
            // covers a walker, so a peer just inside is not missed.
            let slack = f64::from(radius + self.config.buffer / 2.0);
            let targets: Vec<PeerId> = self
                .kept
                .iter()
                .filter(|(_, k)| world.distance(k.info.pos, centre) <= slack)
                .map(|(id, _)| *id)
                .collect();
            for to in targets {
                self.send_cast(to, &cast, AreaStage::Direct, now);
            }
        } else {
            self.route_or_flood(&cast, None, now);
        }
        Ok(id)
    }

    /// Says `text` to every peer within our radius (a chat line).
    pub fn say(&mut self, now: Millis, text: &str) -> Result<u64, AreaError> {
        let payload = chat_payload(text)?;
        self.area_cast(now, self.me.pos, self.me.radius, payload)
    }

    pub(super) fn on_area_cast(
        &mut self,
        now: Millis,
        from: PeerId,
        (id, origin, centre): (u64, PeerId, Point),
        (radius, hops, stage): (f32, u16, AreaStage),
        payload: Vec<u8>,
    ) {
        if hops == 0 && origin != from {
            self.reject(from, RejectReason::AreaClaimsAnotherOrigin);
            return;
        }
        if !self.area.spend(from, now) {
            self.stats.area_refused += 1;
            return;
        }
        // A route is loop free (each hop nearer the centre) and delivers
        // nothing: only what is delivered counts for the filter, so a peer
        // on the route still takes part in the flood.
        if stage != AreaStage::Route && !self.area.first_sight((origin, id)) {
            self.stats.area_duplicates += 1;
            return;
        }
        let cast = Cast {
            id,
            origin,
            centre: self.config.world.wrap(centre),
            radius,
            hops,
            payload,
        };
        match stage {
            AreaStage::Direct => self.deliver(&cast),
            AreaStage::Route => self.route_or_flood(&cast, Some(from), now),
            AreaStage::Flood => self.flood(&cast, Some(from), now),
        }
    }

    /// Passes `cast` on toward its centre, or floods it from here when
    /// nobody we keep is nearer.
    fn route_or_flood(&mut self, cast: &Cast, from: Option<PeerId>, now: Millis) {
        let next = self.next_hop(now, cast.centre, |id| Some(*id) == from);
        match next {
            Some((_, to)) if cast.hops < MAX_ROUTE_HOPS => {
                if cast.origin != self.me.id && !self.area.forward_allowed(now) {
                    self.stats.area_refused += 1;
                    return;
                }
                self.stats.area_forwarded += 1;
                self.send_cast(to, cast, AreaStage::Route, now);
            }
            Some(_) => {}
            // We own the centre: the flood starts here.
            None if self.area.first_sight((cast.origin, cast.id)) => self.flood(cast, from, now),
            None => {}
        }
    }

    /// Delivers `cast` if we lie inside its disk and passes it to each
    /// Delaunay neighbour whose cell may meet the disk.
    fn flood(&mut self, cast: &Cast, from: Option<PeerId>, now: Millis) {
        self.deliver_if_inside(cast);
        if cast.hops >= MAX_ROUTE_HOPS {
            return;
        }
        let world = self.config.world;
        let me = self.me.pos;
        let targets: Vec<PeerId> = self
            .enclosing
            .iter()
            .filter(|id| Some(**id) != from)
            .filter_map(|id| self.kept.get(id))
            .filter(|k| {
                world.distance(k.info.pos, cast.centre)
                    <= f64::from(cast.radius) + world.distance(me, k.info.pos)
            })
            .map(|k| k.info.id)
            .collect();
        for to in targets {
            if cast.origin != self.me.id && !self.area.forward_allowed(now) {
                self.stats.area_refused += 1;
                return;
            }
            self.stats.area_forwarded += 1;
            self.send_cast(to, cast, AreaStage::Flood, now);
        }
    }

    fn send_cast(&mut self, to: PeerId, cast: &Cast, stage: AreaStage, now: Millis) {
        let hops = if cast.origin == self.me.id && cast.hops == 0 {
            0
        } else {
            cast.hops.saturating_add(1)
        };
        self.send(
            to,
            Message::AreaCast {
                id: cast.id,
                origin: cast.origin,
                centre: cast.centre,
                radius: cast.radius,
                hops,
                stage,
                payload: cast.payload.clone(),
            },
            now,
        );
    }

    fn deliver_if_inside(&mut self, cast: &Cast) {
        if self.config.world.distance(self.me.pos, cast.centre) <= f64::from(cast.radius) {
            self.deliver(cast);
        }
    }

    fn deliver(&mut self, cast: &Cast) {
        self.stats.area_delivered += 1;
        self.events.push_back(Event::AreaMessage {
            origin: cast.origin,
            id: cast.id,
            centre: cast.centre,
            radius: cast.radius,
            hops: cast.hops,
            payload: cast.payload.clone(),
        });
    }
}

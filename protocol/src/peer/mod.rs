//! The peer state machine, driven by `handle*` calls and drained by `poll*`
//! calls (the `quinn-proto` shape: no IO, no clock, time passed in).
//!
//! What a peer keeps: its enclosing (Voronoi-adjacent) neighbours, the peers
//! within its radius plus the detection buffer, and the peers whose radius
//! plus buffer covers it. Everything it learns from third parties is a hint
//! until the peer itself speaks on its own (authenticated) link.
//!
//! One file per rule, each opening with what the rule guarantees:
//!
//! | file | rule |
//! |---|---|
//! | `table.rs` | the kept peers: insert, freshness, the cap and eviction |
//! | `join.rs` | join, forwarding, the reply, the probe, teleport, the observed address |
//! | `discovery.rs` | moves, hints told (`Discover`), `Forget`, the local view and its fan |
//! | `pairs.rs` | pair discovery: kept peers coming within reach of each other, told by the nearest to their midpoint |
//! | `repair.rs` | digests, anti-entropy, repair after a loss, hull gaps |
//! | `liveness.rs` | hello, greeting hints, heartbeats, failure, goodbye, lost |
//! | `radius.rs` | who is in range (radius and detection buffer), the adaptive radius |
//! | `motion.rs` | dead reckoning: announcing motion, extrapolating beliefs |
//! | `area.rs` | area messages and chat |
//! | `links.rs` | long-range links, greedy routing toward a point (`Route`) |
//! | `records.rs` | key records: put, get, holders, hand-off |
//! | `objects.rs` | world objects: holders, hand-over, versions |
//! | `budget.rs` | token buckets per sender (area messages, routed object copies) |
//! | `dispatch.rs` | every received message checked and handed to its rule |
//! | `timers.rs` | the one timer table, what each timer does, when the view is rebuilt |
//!
//! This file holds the public surface: construction, accessors, `poll_*`.

use std::collections::VecDeque;

use crate::Millis;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_NAME_LEN, MAX_RADIUS, Message};

mod area;
mod budget;
mod discovery;
mod dispatch;
mod join;
mod links;
mod liveness;
mod motion;
mod objects;
mod pairs;
mod radius;
mod records;
mod repair;
mod table;
mod timers;
mod types;

pub use area::{
    AREA_BURST, AREA_FORWARD_RATE_PER_S, AREA_RATE_PER_S, AreaError, MAX_CHAT_LEN, chat_payload,
    chat_text,
};
pub use discovery::HINTS_PER_SENDER;
pub use join::{JOIN_PAD, JOINER_GRACE_MS, PROBE_PAD};
pub use links::{LINK_LIFETIME_MS, ROUTE_BURST, ROUTE_RATE_PER_S, ROUTE_REPLY_WINDOW_MS};
#[cfg(test)]
pub(crate) use objects::{ASK_AGAIN_MS, OWNER_REOFFERS, REOFFER_MS};
pub use objects::{
    MAX_OBJECTS_HELD, MAX_OBJECTS_PER_AUTHOR, OBJECT_HOLDERS, ROUTED_COPIES_BURST,
    ROUTED_COPIES_PER_S,
};
pub use radius::RadiusMode;
pub use records::MAX_RECORDS_HELD;
use repair::Silenced;
pub use repair::{FIRST_REPLY_CREDIT, REPLY_MULTIPLE, short4};
use table::Table;
use timers::{Timer, Timers, phase};
pub use types::{
    Config, Event, HEARTBEAT_MS, Neighbour, PeerState, RejectReason, RemoveReason, Stats, Transmit,
    View,
};

/// The internal join state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Alone in a world of its own (counts as joined).
    Alone,
    /// Waiting for a join reply (sent through `via`; retried on
    /// [`Timer::JoinRetry`]).
    Joining { via: PeerId },
    /// Part of a world.
    Joined,
    /// Said goodbye.
    Left,
}

/// The sans-IO peer.
#[derive(Debug)]
pub struct Peer {
    config: Config,
    me: PeerInfo,
    seq: u32,
    state: State,
    kept: Table,
    /// Ids of the enclosing neighbours as of the last recompute (the
    /// repair digests and radius announcements go to these).
    enclosing: Vec<PeerId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    timers: Timers,
    /// The entry point the join probe walks from.
    probe_via: Option<PeerId>,
    /// The joins and probes of ours still awaiting their reply: each
    /// token, and until when its reply is taken.
    awaiting: Vec<(u64, Millis)>,
    /// Secret and counter of the join tokens (`join::next_token`).
    token_key: u64,
    tokens_issued: u64,
    /// The joiner's current attempt (0, then one more per retry).
    join_attempt: u8,
    /// Joins this peer passed on lately: (joiner, the peer chosen, when).
    forwarded: std::collections::VecDeque<(PeerId, PeerId, Millis)>,
    /// When a `Forget` from an enclosing neighbour last sent a probe.
    forget_probed: Option<Millis>,
    /// The table's size after the last recompute.
    view_len: usize,
    /// Peers dropped after silence, probed again in case a partition, not a
    /// crash, silenced them (`repair.rs`).
    silenced: Vec<Silenced>,
    /// Whether this peer has ever heard a neighbour while part of a world
    /// (before that, an empty table is a new world, not a lost peer).
    ever_connected: bool,
    /// When our last join (through an acceptor) completed: a joiner that
    /// hears none of the peers it was given within
    /// [`join::JOINER_GRACE_MS`] (or the failure timeout, if longer) is
    /// lost, not a new world.
    joined_at: Option<Millis>,
    /// When the adaptive radius last changed, and whether it shrank.
    radius_changed: Option<(Millis, bool)>,
    /// Our own motion: velocity estimate and last announcement.
    own: motion::OwnMotion,
    /// Area messages: duplicate filter, budgets, ids.
    area: area::AreaState,
    /// World objects held here, and the key that signs ours.
    objects: objects::ObjectState,
    /// Long links, incoming links, routes of ours in flight.
    links: links::LinkState,
    /// Key records held here.
    records: records::RecordState,
    stats: Stats,
}

/// Bounds a record taken from the wire: the name to at most
/// `MAX_NAME_LEN` bytes on a character boundary, the radius to
/// `MAX_RADIUS`.
pub(crate) fn sanitize(info: &mut PeerInfo) {
    let name = &mut info.name;
    if name.len() > MAX_NAME_LEN {
        let mut end = MAX_NAME_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    info.radius = info.radius.min(MAX_RADIUS);
}

impl Peer {
    /// A peer alone in a new world at `me.pos`; call [`Peer::join`] to join an
    /// existing one instead.
    pub fn new(config: Config, mut me: PeerInfo, now: Millis) -> Self {
        me.pos = if me.pos.is_finite() {
            config.world.wrap(me.pos)
        } else {
            Point::default()
        };
        me.radius = config.radius;
        sanitize(&mut me);
        let mut timers = Timers::default();
        timers.set(
            Timer::Maintenance,
            now.plus(phase(&me.id, config.maintenance_ms).max(1)),
        );
        timers.set(
            Timer::Motion,
            now.plus(phase(&me.id, config.motion_ms).max(1)),
        );
        timers.set(
            Timer::AntiEntropy,
            now.plus(phase(&me.id, config.anti_entropy_ms).max(1)),
        );
        // Deterministic for the simulator; a node sets its own secret.
        let me_key = me.id.short_u64();
        Self {
            config,
            me,
            seq: 0,
            state: State::Alone,
            kept: Table::default(),
            enclosing: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timers,
            probe_via: None,
            forget_probed: None,
            view_len: 0,
            awaiting: Vec::new(),
            token_key: me_key,
            tokens_issued: 0,
            join_attempt: 0,
            forwarded: std::collections::VecDeque::new(),
            silenced: Vec::new(),
            ever_connected: false,
            joined_at: None,
            radius_changed: None,
            own: motion::OwnMotion::default(),
            area: area::AreaState::default(),
            objects: objects::ObjectState::default(),
            links: links::LinkState::default(),
            records: records::RecordState::default(),
            stats: Stats::default(),
        }
    }

    /// Own record.
    pub fn info(&self) -> &PeerInfo {
        &self.me
    }

    /// Own id.
    pub fn id(&self) -> PeerId {
        self.me.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the peer is part of a world (alone or joined).
    pub fn is_joined(&self) -> bool {
        matches!(self.state, State::Alone | State::Joined)
    }

    /// Whether a join is in progress.
    pub fn is_joining(&self) -> bool {
        matches!(self.state, State::Joining { .. })
    }

    /// Where the peer stands at `now`: joining, joined, lost (joined, but no
    /// neighbour heard within the failure timeout) or stopped.
    pub fn state(&self, now: Millis) -> PeerState {
        match self.state {
            State::Joining { .. } => PeerState::Joining,
            State::Left => PeerState::Stopped,
            State::Alone | State::Joined => {
                let joiner_grace_over = self.joined_at.is_some_and(|t| {
                    now.since(t) > self.config.failure_timeout_ms.max(join::JOINER_GRACE_MS)
                });
                if (self.ever_connected || joiner_grace_over) && !self.heard_recently(now) {
                    PeerState::Lost
                } else {
                    PeerState::Joined
                }
            }
        }
    }

    /// Number of kept peers.
    pub fn kept_count(&self) -> usize {
        self.kept.len()
    }

    /// Kept peers as (id, believed position as of the last motion round,
    /// enclosing), without cloning.
    pub fn kept(&self) -> impl Iterator<Item = (PeerId, Point, bool)> + '_ {
        self.kept
            .iter()
            .map(|(id, k)| (*id, k.info.pos, k.enclosing))
    }

    /// Kept peers as (id, believed position extrapolated to `now`,
    /// enclosing).
    pub fn kept_at(&self, now: Millis) -> impl Iterator<Item = (PeerId, Point, bool)> + '_ {
        self.kept
            .iter()
            .map(move |(id, k)| (*id, self.believed(k, now), k.enclosing))
    }

    /// What we believe of a kept peer (a hint's record included).
    pub fn record(&self, id: &PeerId) -> Option<&PeerInfo> {
        self.kept.get(id).map(|k| &k.info)
    }

    /// Whether `id` is kept.
    pub fn keeps(&self, id: &PeerId) -> bool {
        self.kept.contains_key(id)
    }

    /// Everything this peer knows at `now`, for renderers and status pages.
    pub fn view(&self, now: Millis) -> View {
        let r = f64::from(self.me.radius);
        View {
            me: self.me.clone(),
            state: self.state(now),
            neighbours: self
                .kept
                .values()
                .map(|k| Neighbour {
                    info: PeerInfo {
                        pos: self.believed(k, now),
                        ..k.info.clone()
                    },
                    enclosing: k.enclosing,
                    aware: self
                        .config
                        .world
                        .distance(self.me.pos, self.believed(k, now))
                        <= r,
                    confirmed: k.confirmed,
                    last_heard: k.last_heard,
                })
                .collect(),
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_some() {
            self.stats.msgs_out += 1;
        }
        t
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn send(&mut self, to: PeerId, msg: Message, now: Millis) {
        if let Some(k) = self.kept.get_mut(&to) {
            k.last_sent = now;
        }
        self.transmits.push_back(Transmit { to, msg });
    }

    fn remove(&mut self, id: &PeerId, why: RemoveReason) -> bool {
        let gone = self.kept.remove(id).is_some();
        if gone {
            self.events.push_back(Event::NeighbourRemoved(*id, why));
        }
        gone
    }
}

#[cfg(test)]
mod tests;

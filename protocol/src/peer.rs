//! The peer state machine: join, move, discovery, anti-entropy, leave and
//! failure repair, driven by `handle*` calls and drained by `poll*` calls.
//!
//! What a peer keeps: its enclosing (Voronoi-adjacent) neighbours, the peers
//! within its radius plus the detection buffer, and the peers whose radius
//! plus buffer covers it. Everything it learns from third parties is a hint
//! until the peer itself speaks on its own (authenticated) link.

use std::collections::VecDeque;

use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_NAME_LEN, MAX_RECORDS, Message};
use crate::voronoi;

/// How the awareness radius is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RadiusMode {
    /// Always `Config::radius`.
    Fixed,
    /// Solipsis-style: grow or shrink the radius to keep the number of peers
    /// inside it within `[min_peers, max_peers]`.
    Adaptive {
        /// Fewest peers wanted inside the radius.
        min_peers: usize,
        /// Most peers wanted inside the radius.
        max_peers: usize,
        /// Smallest radius.
        min_radius: f32,
        /// Largest radius.
        max_radius: f32,
    },
}

/// Tunables of the overlay.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The world's size.
    pub world: World,
    /// Awareness radius (the initial one in adaptive mode).
    pub radius: f32,
    /// Fixed or adaptive radius.
    pub radius_mode: RadiusMode,
    /// Detection buffer: peers are learned about this far before they cross
    /// the radius (VON uses 32 at radius 100).
    pub buffer: f32,
    /// A neighbour silent for this long is dropped as crashed.
    pub failure_timeout_ms: u64,
    /// A neighbour that was sent nothing for this long gets a ping.
    pub heartbeat_ms: u64,
    /// Period of the anti-entropy digest to each enclosing neighbour.
    pub anti_entropy_ms: u64,
    /// Period of the maintenance timer (failures, heartbeats, hull checks).
    pub maintenance_ms: u64,
    /// Delay that batches position changes before the local Delaunay view is
    /// recomputed.
    pub recompute_delay_ms: u64,
    /// Fewest milliseconds between two repair digests to the same neighbour.
    pub repair_interval_ms: u64,
    /// A join not answered within this time is sent again.
    pub join_retry_ms: u64,
    /// Join forwarding stops after this many hops (loop guard).
    pub max_join_hops: u8,
    /// A move longer than this is a teleport: leave, then re-join there.
    pub teleport_distance: f32,
    /// Most peers kept at once (the farthest non-enclosing go first).
    pub max_kept: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            world: World::default(),
            radius: 100.0,
            radius_mode: RadiusMode::Fixed,
            buffer: 32.0,
            failure_timeout_ms: 3_000,
            heartbeat_ms: 1_000,
            anti_entropy_ms: 2_000,
            maintenance_ms: 250,
            recompute_delay_ms: 10,
            repair_interval_ms: 500,
            join_retry_ms: 2_000,
            max_join_hops: 128,
            teleport_distance: 1_000.0,
            max_kept: 1_024,
        }
    }
}

/// A message to send: to whom, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// The receiver.
    pub to: PeerId,
    /// The message.
    pub msg: Message,
}

/// Why a neighbour was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveReason {
    /// It said goodbye.
    Left,
    /// It was silent for longer than the failure timeout.
    TimedOut,
    /// It is neither enclosing nor within range any more.
    OutOfRange,
}

/// What happened, for the embedding program.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The join completed through an acceptor after `hops` forwards.
    Joined {
        /// The peer whose Voronoi cell held the joiner.
        acceptor: PeerId,
        /// Join forwarding hops.
        hops: u8,
    },
    /// A peer is now kept.
    NeighbourAdded(PeerId),
    /// A kept peer reported a new position.
    NeighbourMoved(PeerId, Point),
    /// A peer is no longer kept.
    NeighbourRemoved(PeerId, RemoveReason),
    /// A message was refused (wrong claimed id, bad values); counted.
    Rejected {
        /// The sender.
        from: PeerId,
        /// Why.
        reason: &'static str,
    },
}

/// Counters a driver can export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handed out by `poll_transmit`.
    pub msgs_out: u64,
    /// Messages passed to `handle`.
    pub msgs_in: u64,
    /// Messages refused (lying ids, bad values, unknown senders of control).
    pub rejected: u64,
    /// Joins this peer accepted.
    pub joins_accepted: u64,
    /// Joins this peer forwarded.
    pub joins_forwarded: u64,
    /// Neighbours dropped after silence.
    pub timeouts: u64,
    /// Repair digests sent (hull gaps, lost neighbours, new enclosing peers).
    pub repairs: u64,
}

/// One neighbour as a renderer or checker sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourView {
    /// Its last known record.
    pub info: PeerInfo,
    /// Voronoi-adjacent in this peer's view.
    pub enclosing: bool,
    /// Within this peer's awareness radius.
    pub aware: bool,
    /// Heard from directly (not only a relayed hint).
    pub confirmed: bool,
    /// When it was last heard from.
    pub last_heard: Millis,
}

/// What a peer knows: itself and its neighbours.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Own record.
    pub me: PeerInfo,
    /// Whether the peer is part of a world.
    pub joined: bool,
    /// Kept peers, ordered by id.
    pub neighbours: Vec<NeighbourView>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Alone in a world of its own (counts as joined).
    Alone,
    /// Waiting for a join reply.
    Joining { via: PeerId, sent: Millis },
    /// Part of a world.
    Joined,
    /// Said goodbye.
    Left,
}

#[derive(Clone, Debug)]
struct Known {
    info: PeerInfo,
    seq: u32,
    confirmed: bool,
    added: Millis,
    last_heard: Millis,
    last_sent: Millis,
    last_repair: Option<Millis>,
    enclosing: bool,
    hello_sent: bool,
    /// For a hint told to both sides: greet it ourselves if it has not
    /// spoken by then.
    greet_at: Option<Millis>,
    /// The short ids last told to this neighbour as its likely enclosing
    /// peers (the two vertices across our shared Delaunay edge).
    told: [u64; 2],
}

/// The sans-IO peer.
#[derive(Debug)]
pub struct Peer {
    config: Config,
    me: PeerInfo,
    seq: u32,
    radius_target: f32,
    state: State,
    known: Table,
    /// Ids of the enclosing neighbours as of the last recompute: the
    /// per-move discovery check walks these, not every kept peer.
    enclosing: Vec<PeerId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    recompute_at: Option<Millis>,
    next_maintenance: Millis,
    next_anti_entropy: Millis,
    observed_addr: Option<String>,
    /// When and through whom to re-check the join placement.
    probe: Option<(Millis, PeerId)>,
    stats: Stats,
}

fn phase(id: &PeerId, period: u64) -> u64 {
    if period == 0 {
        0
    } else {
        id.short_u64() % period
    }
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
        me.name.truncate(MAX_NAME_LEN);
        let next_maintenance = now.plus(phase(&me.id, config.maintenance_ms).max(1));
        let next_anti_entropy = now.plus(phase(&me.id, config.anti_entropy_ms).max(1));
        Self {
            radius_target: config.radius,
            config,
            me,
            seq: 0,
            state: State::Alone,
            known: Table::default(),
            enclosing: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            recompute_at: None,
            next_maintenance,
            next_anti_entropy,
            observed_addr: None,
            probe: None,
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

    /// The address the join acceptor saw this peer come from, if reported.
    pub fn observed_addr(&self) -> Option<&str> {
        self.observed_addr.as_deref()
    }

    /// Sets the address others dial (e.g. once the observed one is known).
    pub fn set_addr(&mut self, addr: String) {
        self.me.addr = addr;
    }

    /// Number of kept peers.
    pub fn kept(&self) -> usize {
        self.known.len()
    }

    /// Kept peers as (id, believed position, enclosing), without cloning.
    pub fn neighbours(&self) -> impl Iterator<Item = (PeerId, Point, bool)> + '_ {
        self.known
            .iter()
            .map(|(id, k)| (*id, k.info.pos, k.enclosing))
    }

    /// Whether `id` is kept.
    pub fn knows(&self, id: &PeerId) -> bool {
        self.known.contains_key(id)
    }

    /// Everything this peer knows, for renderers and status pages.
    pub fn view(&self) -> View {
        let r = f64::from(self.me.radius);
        View {
            me: self.me.clone(),
            joined: self.is_joined(),
            neighbours: self
                .known
                .values()
                .map(|k| NeighbourView {
                    info: k.info.clone(),
                    enclosing: k.enclosing,
                    aware: self.config.world.distance(self.me.pos, k.info.pos) <= r,
                    confirmed: k.confirmed,
                    last_heard: k.last_heard,
                })
                .collect(),
        }
    }

    /// Starts joining the world that `bootstrap` belongs to.
    pub fn join(&mut self, bootstrap: PeerId, now: Millis) {
        if bootstrap == self.me.id {
            return;
        }
        self.state = State::Joining {
            via: bootstrap,
            sent: now,
        };
        self.send(
            bootstrap,
            Message::Join {
                joiner: self.me.clone(),
                hops: 0,
            },
            now,
        );
    }

    /// Says goodbye to every kept peer and forgets them.
    pub fn leave(&mut self, now: Millis) {
        let ids: Vec<PeerId> = self.known.keys().copied().collect();
        for id in ids {
            self.send(id, Message::Leave, now);
        }
        self.known.clear();
        self.enclosing.clear();
        self.state = State::Left;
        self.recompute_at = None;
    }

    /// The avatar moved to `pos`. A jump longer than
    /// `Config::teleport_distance` leaves and re-joins at the new place.
    pub fn move_to(&mut self, pos: Point, now: Millis) {
        if !pos.is_finite() || self.state == State::Left {
            return;
        }
        let pos = self.config.world.wrap(pos);
        let old = self.me.pos;
        if self.config.world.distance(old, pos) > f64::from(self.config.teleport_distance) {
            self.teleport(pos, now);
            return;
        }
        self.me.pos = pos;
        self.seq = self.seq.wrapping_add(1);
        let msg = Message::Move { seq: self.seq, pos };
        let ids: Vec<PeerId> = self.known.keys().copied().collect();
        for id in ids {
            self.send(id, msg.clone(), now);
        }
        self.mark_dirty(now);
    }

    fn teleport(&mut self, pos: Point, now: Millis) {
        let world = self.config.world;
        let entry = self
            .known
            .iter()
            .filter(|(_, k)| k.confirmed)
            .min_by(|a, b| {
                world
                    .distance_sq(a.1.info.pos, pos)
                    .total_cmp(&world.distance_sq(b.1.info.pos, pos))
            })
            .map(|(id, _)| *id);
        let ids: Vec<PeerId> = self.known.keys().copied().collect();
        for id in &ids {
            self.send(*id, Message::Leave, now);
            self.events
                .push_back(Event::NeighbourRemoved(*id, RemoveReason::OutOfRange));
        }
        self.known.clear();
        self.enclosing.clear();
        self.me.pos = pos;
        self.seq = self.seq.wrapping_add(1);
        self.recompute_at = None;
        match entry {
            Some(via) => self.join(via, now),
            None => self.state = State::Alone,
        }
    }

    /// A message arrived from the authenticated peer `from`.
    pub fn handle(&mut self, now: Millis, from: PeerId, msg: Message) {
        self.stats.msgs_in += 1;
        if from == self.me.id || self.state == State::Left {
            return;
        }
        if let Err(e) = msg.validate() {
            self.reject(from, e_reason(&e));
            return;
        }
        if let Some(k) = self.known.get_mut(&from) {
            k.last_heard = now;
            k.confirmed = true;
        }
        match msg {
            Message::Join { joiner, hops } => self.on_join(now, from, joiner, hops),
            Message::JoinReply {
                hops,
                peers,
                observed_addr,
            } => self.on_join_reply(now, from, hops, peers, observed_addr),
            Message::Hello {
                seq,
                pos,
                radius,
                name,
                addr,
            } => {
                let info = PeerInfo {
                    id: from,
                    pos,
                    radius,
                    name,
                    addr,
                };
                self.on_hello(now, info, seq);
            }
            Message::Move { seq, pos } => self.on_move(now, from, seq, pos),
            Message::Discover { peers, mutual } => self.on_discover(now, from, peers, mutual),
            Message::Digest { ids } => self.on_digest(now, from, &ids),
            Message::Ping => {}
            Message::Forget => {
                // Keep it only if it is enclosing for us: we still need it.
                if self.known.get(&from).is_some_and(|k| !k.enclosing) {
                    self.known.remove(&from);
                    self.events
                        .push_back(Event::NeighbourRemoved(from, RemoveReason::OutOfRange));
                    self.mark_dirty(now);
                }
            }
            Message::Leave => {
                if self.known.remove(&from).is_some() {
                    self.events
                        .push_back(Event::NeighbourRemoved(from, RemoveReason::Left));
                    self.after_loss(now);
                }
            }
        }
    }

    fn reject(&mut self, from: PeerId, reason: &'static str) {
        self.stats.rejected += 1;
        self.events.push_back(Event::Rejected { from, reason });
    }

    /// A timer fired (call at or after [`Peer::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.state == State::Left {
            return;
        }
        if let Some(at) = self.recompute_at
            && now >= at
        {
            self.recompute(now);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now.plus(self.config.maintenance_ms.max(1));
            self.maintenance(now);
        }
        if now >= self.next_anti_entropy {
            self.next_anti_entropy = now.plus(self.config.anti_entropy_ms.max(1));
            let targets: Vec<PeerId> = self
                .known
                .iter()
                .filter(|(_, k)| k.enclosing && k.confirmed)
                .map(|(id, _)| *id)
                .collect();
            for id in targets {
                self.send_digest(id, now);
            }
        }
    }

    /// When [`Peer::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.state == State::Left {
            return None;
        }
        let mut t = self.next_maintenance.min(self.next_anti_entropy);
        if let Some(r) = self.recompute_at {
            t = t.min(r);
        }
        Some(t)
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

    // ---- helpers -------------------------------------------------------

    fn send(&mut self, to: PeerId, msg: Message, now: Millis) {
        if let Some(k) = self.known.get_mut(&to) {
            k.last_sent = now;
        }
        self.transmits.push_back(Transmit { to, msg });
    }

    fn mark_dirty(&mut self, now: Millis) {
        if self.recompute_at.is_none() {
            self.recompute_at = Some(now.plus(self.config.recompute_delay_ms));
        }
    }

    /// Whether a peer at `b` (radius `rb`) is within range of one at `a`
    /// (radius `ra`), either way, buffer included.
    fn in_range(&self, a: Point, ra: f32, b: Point, rb: f32) -> bool {
        let d2 = self.config.world.distance_sq(a, b);
        let r = f64::from(ra.max(rb) + self.config.buffer);
        d2 <= r * r
    }

    fn insert(&mut self, info: PeerInfo, seq: u32, confirmed: bool, now: Millis) {
        let id = info.id;
        self.known.insert(
            id,
            Known {
                info,
                seq,
                confirmed,
                added: now,
                last_heard: now,
                last_sent: now,
                last_repair: None,
                enclosing: false,
                hello_sent: false,
                greet_at: None,
                told: [0; 2],
            },
        );
        self.events.push_back(Event::NeighbourAdded(id));
        self.mark_dirty(now);
    }

    /// Whether this peer may vouch for `k` to others: heard from directly
    /// within one and a half heartbeats (every kept peer speaks at least once
    /// a heartbeat), or a hint received as recently (hints must travel on
    /// before the peer speaks, or pairs are learned too late at high latency;
    /// the window keeps a crashed peer from living on as a hint relayed from
    /// peer to peer for long).
    fn fresh(&self, k: &Known, now: Millis) -> bool {
        if k.confirmed {
            now.since(k.last_heard) <= self.config.heartbeat_ms * 3 / 2
        } else {
            now.since(k.added) <= self.config.heartbeat_ms * 3 / 2
        }
    }

    fn send_hello(&mut self, to: PeerId, now: Millis) {
        if let Some(k) = self.known.get_mut(&to) {
            k.hello_sent = true;
        }
        let msg = self.hello();
        self.send(to, msg, now);
    }

    fn hello(&self) -> Message {
        Message::Hello {
            seq: self.seq,
            pos: self.me.pos,
            radius: self.me.radius,
            name: self.me.name.clone(),
            addr: self.me.addr.clone(),
        }
    }

    /// Records this peer should know that `to` (at `pos`, radius `r`) lacks:
    /// within range of it, or Voronoi-adjacent to it in this peer's view.
    fn records_for(
        &self,
        now: Millis,
        to: PeerId,
        pos: Point,
        r: f32,
        has: impl Fn(&PeerId) -> bool,
    ) -> Vec<PeerInfo> {
        let mut ids: Vec<PeerId> = Vec::new();
        let mut pts = vec![pos, self.me.pos];
        let mut order = vec![self.me.id];
        for (id, k) in self.known.iter() {
            // Only vouch for peers heard from lately: relaying the dead
            // would keep them alive as hints forever.
            if *id == to || !self.fresh(k, now) {
                continue;
            }
            pts.push(k.info.pos);
            order.push(*id);
            if self.in_range(pos, r, k.info.pos, k.info.radius) {
                ids.push(*id);
            }
        }
        let adj = voronoi::local_adjacency(&pts, self.config.world);
        ids.extend(adj.strict.iter().chain(&adj.weak).map(|&i| order[i - 1]));
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids {
            if id == to || has(&id) {
                continue;
            }
            if id == self.me.id {
                out.push(self.me.clone());
            } else if let Some(k) = self.known.get(&id) {
                out.push(k.info.clone());
            }
            if out.len() >= MAX_RECORDS {
                break;
            }
        }
        out
    }

    // ---- message handlers ---------------------------------------------

    fn on_join(&mut self, now: Millis, from: PeerId, mut joiner: PeerInfo, hops: u8) {
        if joiner.id == self.me.id {
            return;
        }
        if hops == 0 && joiner.id != from {
            // A first-hop join comes from the joiner itself.
            self.reject(from, "join claims another id");
            return;
        }
        joiner.pos = self.config.world.wrap(joiner.pos);
        let world = self.config.world;
        let target = joiner.pos;
        let my_d = world.distance_sq(self.me.pos, target);
        let best = self
            .known
            .iter()
            .filter(|(id, k)| k.confirmed && **id != joiner.id)
            .map(|(id, k)| (world.distance_sq(k.info.pos, target), *id))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let can_accept = matches!(self.state, State::Alone | State::Joined);
        match best {
            Some((d, next)) if (d < my_d || !can_accept) && hops < self.config.max_join_hops => {
                self.stats.joins_forwarded += 1;
                self.send(
                    next,
                    Message::Join {
                        joiner,
                        hops: hops.saturating_add(1),
                    },
                    now,
                );
            }
            _ if can_accept => {
                self.stats.joins_accepted += 1;
                let mut peers = vec![self.me.clone()];
                peers
                    .extend(self.records_for(now, joiner.id, joiner.pos, joiner.radius, |_| false));
                peers.dedup_by(|a, b| a.id == b.id);
                peers.truncate(MAX_RECORDS);
                let observed_addr = joiner.addr.clone();
                self.send(
                    joiner.id,
                    Message::JoinReply {
                        hops,
                        peers,
                        observed_addr,
                    },
                    now,
                );
            }
            _ => {} // joining ourselves, nobody to forward to: the joiner retries
        }
    }

    fn on_join_reply(
        &mut self,
        now: Millis,
        from: PeerId,
        hops: u8,
        peers: Vec<PeerInfo>,
        observed: String,
    ) {
        if let State::Joining { via, .. } = self.state {
            self.state = State::Joined;
            // Check the placement once more, from the same entry point, when
            // the neighbourhood has settled (see `probe`).
            self.probe = Some((now.plus(self.config.join_retry_ms), via));
            self.events.push_back(Event::Joined {
                acceptor: from,
                hops,
            });
            if !observed.is_empty() {
                self.observed_addr = Some(observed);
            }
        }
        self.on_discover(now, from, peers, false);
        // Ask the new neighbours for what the acceptor could not see.
        self.recompute(now);
        // `recompute` just refreshed the enclosing list.
        let targets = self.enclosing.clone();
        for id in targets {
            self.send_digest(id, now);
        }
    }

    fn on_hello(&mut self, now: Millis, mut info: PeerInfo, seq: u32) {
        info.pos = self.config.world.wrap(info.pos);
        info.name.truncate(MAX_NAME_LEN);
        let id = info.id;
        match self.known.get_mut(&id) {
            Some(k) => {
                if seq >= k.seq || !k.confirmed {
                    k.info.pos = info.pos;
                    k.seq = seq;
                }
                k.info.radius = info.radius;
                k.info.name = info.name;
                k.info.addr = info.addr;
                k.confirmed = true;
                self.mark_dirty(now);
            }
            None => {
                if self.state == State::Alone {
                    // Someone joined our world through us.
                    self.state = State::Joined;
                }
                self.insert(info, seq, true, now);
            }
        }
        if self.known.get(&id).is_some_and(|k| !k.hello_sent) {
            self.send_hello(id, now);
        }
    }

    fn on_move(&mut self, now: Millis, from: PeerId, seq: u32, pos: Point) {
        let pos = self.config.world.wrap(pos);
        // Radius changes travel in hellos; assume ours for a stranger.
        let radius = self
            .known
            .get(&from)
            .map_or(self.me.radius, |k| k.info.radius);
        let Some(k) = self.known.get_mut(&from) else {
            // A peer that keeps us but that we do not know: if it is in
            // range, learn it (it will send its full record).
            if self.is_joined() && self.in_range(self.me.pos, self.me.radius, pos, radius) {
                let info = PeerInfo {
                    id: from,
                    pos,
                    radius,
                    name: String::new(),
                    addr: String::new(),
                };
                self.insert(info, seq, true, now);
                self.send_hello(from, now);
            } else {
                // It keeps us on a stale belief: tell it, or it would hold
                // our frozen position until the failure timeout.
                self.send(from, Message::Forget, now);
            }
            return;
        };
        if seq <= k.seq && k.confirmed && seq != 0 {
            return; // stale datagram
        }
        let old = k.info.pos;
        let old_r = k.info.radius;
        k.info.pos = pos;
        k.seq = seq;
        self.events.push_back(Event::NeighbourMoved(from, pos));
        self.mark_dirty(now);
        // Discovery, judged against the mover's previous position so each
        // pair is told once per notifier: this peer answers for the pairs
        // that involve one of its enclosing neighbours. When a kept peer y
        // comes into range of the mover x and x or y is enclosing here, both
        // are told about each other, so neither waits a round trip.
        // (Telling only the side whose partner is enclosing here cost 0.05 %
        // consistency at 100 ms latency; letting only the peer nearest the
        // pair's midpoint speak lost 3 %.)
        let mover_enclosing = self.known.get(&from).is_some_and(|k| k.enclosing);
        let mut tell_mover = Vec::new();
        let mut tell_others = Vec::new();
        // Most movers are not enclosing here: then only pairs with one of
        // our few enclosing neighbours count.
        let candidates: Box<dyn Iterator<Item = &Known>> = if mover_enclosing {
            Box::new(self.known.values())
        } else {
            Box::new(self.enclosing.iter().filter_map(|id| self.known.get(id)))
        };
        for n in candidates {
            if n.info.id == from || !(n.enclosing || mover_enclosing) || !self.fresh(n, now) {
                continue;
            }
            let (npos, nr) = (n.info.pos, n.info.radius);
            if self.in_range(pos, radius, npos, nr) && !self.in_range(old, old_r, npos, nr) {
                tell_mover.push(n.info.clone());
                tell_others.push(n.info.id);
            }
        }
        if !tell_mover.is_empty() {
            self.send(
                from,
                Message::Discover {
                    peers: tell_mover,
                    mutual: true,
                },
                now,
            );
        }
        if !tell_others.is_empty() {
            let mover = self.known.get(&from).map(|k| k.info.clone());
            if let Some(mover) = mover {
                for id in tell_others {
                    self.send(
                        id,
                        Message::Discover {
                            peers: vec![mover.clone()],
                            mutual: true,
                        },
                        now,
                    );
                }
            }
        }
    }

    fn on_discover(&mut self, now: Millis, _from: PeerId, peers: Vec<PeerInfo>, mutual: bool) {
        let mut added = false;
        for mut info in peers {
            if info.id == self.me.id || self.known.contains_key(&info.id) {
                continue;
            }
            if self.known.len() >= self.config.max_kept {
                break;
            }
            info.pos = self.config.world.wrap(info.pos);
            info.name.truncate(MAX_NAME_LEN);
            let near = self.in_range(self.me.pos, self.me.radius, info.pos, info.radius);
            let id = info.id;
            self.insert(info, 0, false, now);
            if mutual {
                // The other side was told about us: it will speak first.
                let grace = self.config.heartbeat_ms / 2;
                if let Some(k) = self.known.get_mut(&id) {
                    k.greet_at = Some(now.plus(grace));
                }
            } else if near {
                self.send_hello(id, now);
            }
            added = true;
        }
        if added && self.state == State::Alone {
            self.state = State::Joined;
        }
    }

    fn on_digest(&mut self, now: Millis, from: PeerId, ids: &[[u8; 4]]) {
        let Some(k) = self.known.get(&from) else {
            return;
        };
        let (pos, r) = (k.info.pos, k.info.radius);
        let has = |id: &PeerId| ids.binary_search(&short4(id)).is_ok();
        let records = self.records_for(now, from, pos, r, has);
        if !records.is_empty() {
            self.send(
                from,
                Message::Discover {
                    peers: records,
                    mutual: false,
                },
                now,
            );
        }
    }

    fn send_digest(&mut self, to: PeerId, now: Millis) {
        let Some(k) = self.known.get_mut(&to) else {
            return;
        };
        k.last_repair = Some(now);
        let mut ids: Vec<[u8; 4]> = self.known.keys().map(short4).collect();
        ids.sort_unstable();
        ids.truncate(crate::message::MAX_DIGEST);
        self.send(to, Message::Digest { ids }, now);
    }

    fn repair_digest(&mut self, to: PeerId, now: Millis) {
        let interval = self.config.repair_interval_ms;
        let due = self
            .known
            .get(&to)
            .is_some_and(|k| k.confirmed && k.last_repair.is_none_or(|t| now.since(t) >= interval));
        if due {
            self.stats.repairs += 1;
            self.send_digest(to, now);
        }
    }

    /// A neighbour went away: recompute, then ask the enclosing ones to fill
    /// the hole.
    fn after_loss(&mut self, now: Millis) {
        self.recompute(now);
        // `recompute` just refreshed the enclosing list.
        let targets = self.enclosing.clone();
        for id in targets {
            self.repair_digest(id, now);
        }
    }

    // ---- the local view ------------------------------------------------

    /// Recomputes the enclosing set from the believed positions, drops the
    /// peers no longer needed, greets the new ones and tells each enclosing
    /// neighbour about the peers across our shared Delaunay edge.
    fn recompute(&mut self, now: Millis) {
        self.recompute_at = None;
        if self.state == State::Left {
            return;
        }
        let ids: Vec<PeerId> = self.known.keys().copied().collect();
        let mut pts = Vec::with_capacity(ids.len() + 1);
        pts.push(self.me.pos);
        pts.extend(self.known.values().map(|k| k.info.pos));
        let adj = voronoi::local_adjacency(&pts, self.config.world);
        let mut enclosing = vec![false; ids.len()];
        for &i in adj.strict.iter().chain(&adj.weak) {
            enclosing[i - 1] = true;
        }
        // Update flags; collect peers to drop and newly enclosing ones.
        let (me_pos, me_r) = (self.me.pos, self.me.radius);
        let mut drop = Vec::new();
        let mut new_enclosing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let k = &self.known[id];
            let near = self.in_range(me_pos, me_r, k.info.pos, k.info.radius);
            if !near && !enclosing[i] {
                drop.push(*id);
            } else if enclosing[i] && !k.enclosing {
                new_enclosing.push(*id);
            }
        }
        for (i, id) in ids.iter().enumerate() {
            if let Some(k) = self.known.get_mut(id) {
                k.enclosing = enclosing[i];
            }
        }
        for id in &drop {
            self.known.remove(id);
            self.events
                .push_back(Event::NeighbourRemoved(*id, RemoveReason::OutOfRange));
        }
        self.greet_hints(now);
        // A new enclosing neighbour beyond our radius may know of peers on
        // its side that we lack (sparse worlds): ask it.
        for id in new_enclosing {
            let far = self
                .known
                .get(&id)
                .is_some_and(|k| self.config.world.distance(me_pos, k.info.pos) > f64::from(me_r));
            if far {
                self.repair_digest(id, now);
            }
        }
        // Fan notifications: for each enclosing neighbour x, the two peers
        // across our shared Delaunay edge are likely enclosing for x too.
        let fan: Vec<PeerId> = adj.fan.iter().map(|&i| ids[i - 1]).collect();
        let m = fan.len();
        if m >= 3 {
            for j in 0..m {
                let x = fan[j];
                let a = fan[(j + m - 1) % m];
                let b = fan[(j + 1) % m];
                let Some(kx) = self.known.get(&x) else {
                    continue;
                };
                if !kx.confirmed {
                    continue;
                }
                let told = [a.short_u64(), b.short_u64()];
                if told == kx.told {
                    continue;
                }
                let (xpos, xr) = (kx.info.pos, kx.info.radius);
                let mut tell = Vec::new();
                for n in [a, b] {
                    if n == x || kx.told.contains(&n.short_u64()) {
                        continue;
                    }
                    if let Some(kn) = self.known.get(&n)
                        && self.fresh(kn, now)
                        && !self.in_range(xpos, xr, kn.info.pos, kn.info.radius)
                    {
                        tell.push(kn.info.clone());
                    }
                }
                if let Some(kx) = self.known.get_mut(&x) {
                    kx.told = told;
                }
                if !tell.is_empty() {
                    self.send(
                        x,
                        Message::Discover {
                            peers: tell,
                            mutual: false,
                        },
                        now,
                    );
                }
            }
        }
        self.enforce_cap();
        self.enclosing = self
            .known
            .values()
            .filter(|k| k.enclosing)
            .map(|k| k.info.id)
            .collect();
    }

    /// Says hello to kept hints not greeted yet (a mutual hint only once its
    /// grace period is over: it should speak first).
    fn greet_hints(&mut self, now: Millis) {
        let greet: Vec<PeerId> = self
            .known
            .iter()
            .filter(|(_, k)| !k.hello_sent && !k.confirmed && k.greet_at.is_none_or(|t| now >= t))
            .map(|(id, _)| *id)
            .collect();
        for id in greet {
            self.send_hello(id, now);
        }
    }

    fn enforce_cap(&mut self) {
        let cap = self.config.max_kept;
        if self.known.len() <= cap {
            return;
        }
        let world = self.config.world;
        let me = self.me.pos;
        let mut by_dist: Vec<(f64, PeerId)> = self
            .known
            .iter()
            .filter(|(_, k)| !k.enclosing)
            .map(|(id, k)| (world.distance_sq(me, k.info.pos), *id))
            .collect();
        by_dist.sort_by(|a, b| b.0.total_cmp(&a.0));
        let excess = self.known.len() - cap;
        for (_, id) in by_dist.into_iter().take(excess) {
            self.known.remove(&id);
            self.events
                .push_back(Event::NeighbourRemoved(id, RemoveReason::OutOfRange));
        }
    }

    fn maintenance(&mut self, now: Millis) {
        // Join retry.
        if let State::Joining { via, sent } = self.state
            && now.since(sent) >= self.config.join_retry_ms
        {
            self.join(via, now);
        }
        // Join probe: while many peers join at once, views disagree and
        // greedy forwarding can stop at a peer that is not the true owner of
        // the joiner's spot; the joiner then lives beside a neighbourhood it
        // never hears of, and nothing else bridges two groups that were in
        // range of each other from the start. A second greedy walk from the
        // entry point, once views have settled, ends at the true owner and
        // its reply introduces whoever was missed.
        if let Some((at, via)) = self.probe
            && now >= at
            && self.state == State::Joined
        {
            self.probe = None;
            self.send(
                via,
                Message::Join {
                    joiner: self.me.clone(),
                    hops: 0,
                },
                now,
            );
        }
        // Failure detection: silent neighbours, and hints nobody confirmed.
        let timeout = self.config.failure_timeout_ms;
        let dead: Vec<(PeerId, bool)> = self
            .known
            .iter()
            .filter(|(_, k)| {
                now.since(k.last_heard) > timeout || (!k.confirmed && now.since(k.added) > timeout)
            })
            .map(|(id, k)| (*id, k.confirmed))
            .collect();
        let lost = !dead.is_empty();
        for (id, confirmed) in dead {
            self.known.remove(&id);
            if confirmed {
                self.stats.timeouts += 1;
            }
            self.events
                .push_back(Event::NeighbourRemoved(id, RemoveReason::TimedOut));
        }
        if lost {
            self.after_loss(now);
        }
        self.greet_hints(now);
        // Heartbeats.
        let hb = self.config.heartbeat_ms;
        let quiet: Vec<PeerId> = self
            .known
            .iter()
            .filter(|(_, k)| k.confirmed && now.since(k.last_sent) >= hb)
            .map(|(id, _)| *id)
            .collect();
        for id in quiet {
            self.send(id, Message::Ping, now);
        }
        // Hull repair (Solipsis): an angular gap of π or more among kept
        // peers means a side of us is uncovered; ask the two neighbours
        // bounding the gap.
        if self.known.len() >= 2 && self.is_joined() {
            let world = self.config.world;
            let me = self.me.pos;
            let mut angles: Vec<(f64, PeerId)> = self
                .known
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
        self.adapt_radius(now);
    }

    fn adapt_radius(&mut self, now: Millis) {
        let RadiusMode::Adaptive {
            min_peers,
            max_peers,
            min_radius,
            max_radius,
        } = self.config.radius_mode
        else {
            return;
        };
        let world = self.config.world;
        let r = f64::from(self.me.radius);
        let inside = self
            .known
            .values()
            .filter(|k| world.distance(self.me.pos, k.info.pos) <= r)
            .count();
        let mut target = self.radius_target;
        if inside < min_peers {
            target *= 1.1;
        } else if inside > max_peers {
            target /= 1.1;
        }
        target = target.clamp(min_radius, max_radius);
        if (target - self.me.radius).abs() > f32::EPSILON {
            self.radius_target = target;
            self.me.radius = target;
            // Announce on the reliable path: a radius change must not be lost.
            let msg = self.hello();
            let ids: Vec<PeerId> = self.known.keys().copied().collect();
            for id in ids {
                self.send(id, msg.clone(), now);
            }
            self.mark_dirty(now);
        }
    }
}

/// The 4-byte digest form of an id.
pub fn short4(id: &PeerId) -> [u8; 4] {
    [id.0[0], id.0[1], id.0[2], id.0[3]]
}

fn e_reason(e: &crate::message::DecodeError) -> &'static str {
    use crate::message::DecodeError as D;
    match e {
        D::BadPosition => "non-finite position",
        D::BadRadius => "bad radius",
        D::TooLong => "field too long",
        _ => "invalid message",
    }
}

/// The kept peers, sorted by id in one contiguous vector: iteration is what
/// the hot paths do, and it stays cache-friendly.
#[derive(Debug, Default)]
struct Table(Vec<Known>);

impl Table {
    fn find(&self, id: &PeerId) -> Result<usize, usize> {
        self.0.binary_search_by(|k| k.info.id.cmp(id))
    }
    fn get(&self, id: &PeerId) -> Option<&Known> {
        self.find(id).ok().map(|i| &self.0[i])
    }
    fn get_mut(&mut self, id: &PeerId) -> Option<&mut Known> {
        self.find(id).ok().map(|i| &mut self.0[i])
    }
    fn contains_key(&self, id: &PeerId) -> bool {
        self.find(id).is_ok()
    }
    fn insert(&mut self, id: PeerId, k: Known) {
        debug_assert_eq!(id, k.info.id);
        match self.find(&id) {
            Ok(i) => self.0[i] = k,
            Err(i) => self.0.insert(i, k),
        }
    }
    fn remove(&mut self, id: &PeerId) -> Option<Known> {
        self.find(id).ok().map(|i| self.0.remove(i))
    }
    fn clear(&mut self) {
        self.0.clear();
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn iter(&self) -> impl Iterator<Item = (&PeerId, &Known)> {
        self.0.iter().map(|k| (&k.info.id, k))
    }
    fn keys(&self) -> impl Iterator<Item = &PeerId> {
        self.0.iter().map(|k| &k.info.id)
    }
    fn values(&self) -> impl Iterator<Item = &Known> {
        self.0.iter()
    }
}

impl std::ops::Index<&PeerId> for Table {
    type Output = Known;
    fn index(&self, id: &PeerId) -> &Known {
        self.get(id).expect("known peer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(seed: u64, x: f32, y: f32) -> Peer {
        let cfg = Config {
            world: World::new(1000.0, 1000.0),
            ..Config::default()
        };
        Peer::new(
            cfg,
            PeerInfo::new(
                PeerId::from_seed(seed),
                Point::new(x, y),
                100.0,
                format!("p{seed}"),
            ),
            Millis(0),
        )
    }

    fn drain(p: &mut Peer) -> Vec<Transmit> {
        std::iter::from_fn(|| p.poll_transmit()).collect()
    }

    fn hello_from(p: &Peer) -> Message {
        p.hello()
    }

    #[test]
    fn a_join_is_accepted_by_the_lone_peer_and_greeted() {
        let mut a = peer(1, 100.0, 100.0);
        let mut b = peer(2, 150.0, 100.0);
        b.join(a.id(), Millis(0));
        let t = drain(&mut b);
        assert_eq!(t.len(), 1);
        a.handle(Millis(5), b.id(), t[0].msg.clone());
        let replies = drain(&mut a);
        assert!(
            matches!(&replies[0].msg, Message::JoinReply { peers, .. } if peers[0].id == a.id())
        );
        b.handle(Millis(10), a.id(), replies[0].msg.clone());
        assert!(b.is_joined() && b.knows(&a.id()));
        assert!(matches!(
            b.poll_event(),
            Some(Event::NeighbourAdded(_)) | Some(Event::Joined { .. })
        ));
        // b greets a, and a keeps b from then on.
        for t in drain(&mut b) {
            if t.to == a.id() {
                a.handle(Millis(15), b.id(), t.msg);
            }
        }
        assert!(a.knows(&b.id()));
    }

    #[test]
    fn a_join_claiming_another_id_is_refused_and_counted() {
        let mut a = peer(1, 100.0, 100.0);
        let liar = PeerId::from_seed(66);
        let victim = PeerInfo::new(PeerId::from_seed(77), Point::new(1.0, 1.0), 100.0, "victim");
        a.handle(
            Millis(1),
            liar,
            Message::Join {
                joiner: victim,
                hops: 0,
            },
        );
        assert_eq!(a.stats().rejected, 1);
        assert!(drain(&mut a).is_empty());
        assert!(matches!(a.poll_event(), Some(Event::Rejected { .. })));
    }

    #[test]
    fn non_finite_positions_are_refused_and_counted() {
        let mut a = peer(1, 100.0, 100.0);
        let b = peer(2, 120.0, 100.0);
        a.handle(Millis(1), b.id(), hello_from(&b));
        assert!(a.knows(&b.id()));
        a.handle(
            Millis(2),
            b.id(),
            Message::Move {
                seq: 5,
                pos: Point::new(f32::NAN, 1.0),
            },
        );
        assert_eq!(a.stats().rejected, 1);
        let v = a.view();
        assert_eq!(v.neighbours[0].info.pos, Point::new(120.0, 100.0));
    }

    #[test]
    fn stale_moves_are_ignored() {
        let mut a = peer(1, 100.0, 100.0);
        let b = peer(2, 120.0, 100.0);
        a.handle(Millis(1), b.id(), hello_from(&b));
        a.handle(
            Millis(2),
            b.id(),
            Message::Move {
                seq: 5,
                pos: Point::new(130.0, 100.0),
            },
        );
        a.handle(
            Millis(3),
            b.id(),
            Message::Move {
                seq: 4,
                pos: Point::new(125.0, 100.0),
            },
        );
        assert_eq!(a.view().neighbours[0].info.pos, Point::new(130.0, 100.0));
    }

    #[test]
    fn silent_neighbours_time_out_and_goodbyes_are_immediate() {
        let mut a = peer(1, 100.0, 100.0);
        let b = peer(2, 120.0, 100.0);
        let c = peer(3, 80.0, 100.0);
        a.handle(Millis(1), b.id(), hello_from(&b));
        a.handle(Millis(1), c.id(), hello_from(&c));
        a.handle(Millis(500), c.id(), Message::Leave);
        assert!(!a.knows(&c.id()));
        let mut t = Millis(0);
        while t.0 < 5_000 {
            t = a.poll_timeout().unwrap();
            a.handle_timeout(t);
        }
        assert!(!a.knows(&b.id()));
        assert_eq!(a.stats().timeouts, 1);
    }

    #[test]
    fn moves_go_to_every_kept_peer_and_pings_keep_quiet_links_alive() {
        let mut a = peer(1, 100.0, 100.0);
        let b = peer(2, 120.0, 100.0);
        a.handle(Millis(1), b.id(), hello_from(&b));
        drain(&mut a);
        a.move_to(Point::new(101.0, 100.0), Millis(10));
        let t = drain(&mut a);
        assert!(
            t.iter()
                .any(|t| t.to == b.id() && matches!(t.msg, Message::Move { .. }))
        );
        let mut now = Millis(10);
        while now.0 < 1_500 {
            now = a.poll_timeout().unwrap();
            a.handle_timeout(now);
        }
        assert!(
            drain(&mut a)
                .iter()
                .any(|t| t.to == b.id() && t.msg == Message::Ping)
        );
    }
}

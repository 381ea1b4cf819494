//! A small N-peer test network (quinn's `Pair` grown to N): a virtual clock,
//! per-link latency, links that can be held (messages wait until released),
//! cut (messages dropped, a partition), and `drive` that runs
//! deliveries and timers in time order. The behaviour tests below call the
//! peers directly, one rule each, and check the invariants where they apply.

use std::collections::{BTreeMap, BTreeSet};

use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{PeerId, PeerInfo};
use crate::invariants::{self, Kept, Options, Sample, TruePeer};
use crate::message::Message;
use crate::peer::{Config, Peer};

type Link = (PeerId, PeerId);

/// The network.
pub(crate) struct Net {
    pub(crate) now: Millis,
    pub(crate) config: Config,
    pub(crate) peers: BTreeMap<PeerId, Peer>,
    latency: u64,
    /// In flight, by delivery time then send order (FIFO per link).
    flight: BTreeMap<(Millis, u64), (PeerId, PeerId, Message)>,
    order: u64,
    held: BTreeSet<Link>,
    waiting: Vec<(PeerId, PeerId, Message)>,
    cut: BTreeSet<Link>,
    /// Peers that swallow every `Join` sent to them (black holes).
    swallow: BTreeSet<PeerId>,
    /// Every message delivered or dropped, for tests that count kinds.
    pub(crate) log: Vec<(PeerId, PeerId, Message)>,
    /// Area messages delivered: (receiver, origin, id, payload).
    pub(crate) area: Vec<(PeerId, PeerId, u64, Vec<u8>)>,
    /// Routes answered: (origin, token, owner, hops, answer).
    pub(crate) routed: Vec<(PeerId, u64, PeerId, u16, crate::message::RouteAnswer)>,
}

impl Net {
    /// An empty network over `world` with `latency_ms` one way.
    pub(crate) fn new(world: World, latency_ms: u64) -> Self {
        Self::with_config(
            Config {
                world,
                ..Config::default()
            },
            latency_ms,
        )
    }

    pub(crate) fn with_config(config: Config, latency_ms: u64) -> Self {
        Self {
            now: Millis(0),
            config,
            peers: BTreeMap::new(),
            latency: latency_ms,
            flight: BTreeMap::new(),
            order: 0,
            held: BTreeSet::new(),
            waiting: Vec::new(),
            cut: BTreeSet::new(),
            swallow: BTreeSet::new(),
            log: Vec::new(),
            area: Vec::new(),
            routed: Vec::new(),
        }
    }

    /// A new peer at (x, y), alone until it joins.
    pub(crate) fn add(&mut self, seed: u64, x: f32, y: f32) -> PeerId {
        let id = PeerId::from_seed(seed);
        let info = PeerInfo::new(id, Point::new(x, y), self.config.radius, format!("p{seed}"));
        self.peers
            .insert(id, Peer::new(self.config.clone(), info, self.now));
        id
    }

    /// A new peer at (x, y) joining through `via`.
    pub(crate) fn add_joining(&mut self, seed: u64, x: f32, y: f32, via: PeerId) -> PeerId {
        let id = self.add(seed, x, y);
        let now = self.now;
        self.peer(id).join(via, now);
        self.flush();
        id
    }

    pub(crate) fn peer(&mut self, id: PeerId) -> &mut Peer {
        self.peers.get_mut(&id).expect("a peer of this net")
    }

    pub(crate) fn move_to(&mut self, id: PeerId, x: f32, y: f32) {
        let now = self.now;
        self.peer(id).move_to(Point::new(x, y), now);
        self.flush();
    }

    /// The peer says goodbye and is gone.
    pub(crate) fn leave(&mut self, id: PeerId) {
        let now = self.now;
        self.peer(id).leave(now);
        self.flush();
        self.peers.remove(&id);
    }

    /// The peer vanishes without a word.
    pub(crate) fn crash(&mut self, id: PeerId) {
        self.peers.remove(&id);
    }

    /// The peer vanishes without a word and comes back at once, with the
    /// same id and a new `incarnation`, at (x, y), joining through `via`.
    pub(crate) fn restart(&mut self, id: PeerId, incarnation: u32, x: f32, y: f32, via: PeerId) {
        let name = self.peers[&id].info().name.clone();
        self.crash(id);
        let config = Config {
            incarnation,
            ..self.config.clone()
        };
        let info = PeerInfo::new(id, Point::new(x, y), config.radius, name);
        let now = self.now;
        let mut p = Peer::new(config, info, now);
        p.join(via, now);
        self.peers.insert(id, p);
        self.flush();
    }

    /// Messages from `a` to `b` wait until [`Net::release`].
    pub(crate) fn hold(&mut self, a: PeerId, b: PeerId) {
        self.held.insert((a, b));
    }

    /// Sends what waited on the link `a` → `b`, in order.
    pub(crate) fn release(&mut self, a: PeerId, b: PeerId) {
        self.held.remove(&(a, b));
        let waiting = std::mem::take(&mut self.waiting);
        for (from, to, msg) in waiting {
            if (from, to) == (a, b) {
                self.enqueue(from, to, msg);
            } else {
                self.waiting.push((from, to, msg));
            }
        }
    }

    /// Drops every message between the two groups, both ways.
    pub(crate) fn partition(&mut self, left: &[PeerId], right: &[PeerId]) {
        for &a in left {
            for &b in right {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    /// `id` drops every join it is given from now on (it neither forwards
    /// nor accepts), and behaves otherwise.
    pub(crate) fn swallow_joins(&mut self, id: PeerId) {
        self.swallow.insert(id);
    }

    /// Ends every partition.
    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    fn enqueue(&mut self, from: PeerId, to: PeerId, msg: Message) {
        if self.cut.contains(&(from, to)) {
            return;
        }
        if self.held.contains(&(from, to)) {
            self.waiting.push((from, to, msg));
            return;
        }
        self.order += 1;
        self.flight
            .insert((self.now.plus(self.latency), self.order), (from, to, msg));
    }

    /// Puts every peer's transmits on the wire.
    fn flush(&mut self) {
        let mut out = Vec::new();
        for (id, p) in self.peers.iter_mut() {
            while let Some(t) = p.poll_transmit() {
                out.push((*id, t.to, t.msg));
            }
            while let Some(e) = p.poll_event() {
                match e {
                    crate::peer::Event::AreaMessage {
                        origin,
                        id: n,
                        payload,
                        ..
                    } => self.area.push((*id, origin, n, payload)),
                    crate::peer::Event::Routed {
                        token,
                        owner,
                        hops,
                        answer,
                        ..
                    } => self.routed.push((*id, token, owner, hops, answer)),
                    _ => {}
                }
            }
        }
        for (from, to, msg) in out {
            self.enqueue(from, to, msg);
        }
    }

    /// Runs deliveries and timers in time order until `until`.
    pub(crate) fn drive_until(&mut self, until: Millis) {
        loop {
            let next_msg = self.flight.keys().next().map(|k| k.0);
            let next_timer = self.peers.values().filter_map(|p| p.poll_timeout()).min();
            let next = match (next_msg, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_msg == Some(next) {
                let key = *self.flight.keys().next().expect("a message");
                let (from, to, msg) = self.flight.remove(&key).expect("a message");
                self.log.push((from, to, msg.clone()));
                let now = self.now;
                let swallowed = self.swallow.contains(&to) && matches!(msg, Message::Join { .. });
                if let Some(p) = self.peers.get_mut(&to).filter(|_| !swallowed) {
                    p.handle(now, from, msg);
                }
            } else {
                let now = self.now;
                for p in self.peers.values_mut() {
                    if p.poll_timeout().is_some_and(|t| t <= now) {
                        p.handle_timeout(now);
                    }
                }
            }
            self.flush();
        }
        self.now = self.now.max(until);
    }

    /// Runs for `ms` of virtual time.
    pub(crate) fn drive(&mut self, ms: u64) {
        let until = self.now.plus(ms);
        self.drive_until(until);
    }

    /// Whether `a` keeps `b` (a hint counts).
    pub(crate) fn keeps(&self, a: PeerId, b: PeerId) -> bool {
        self.peers[&a].keeps(&b)
    }

    /// Whether `a` keeps `b` and has heard from `b` itself.
    pub(crate) fn confirmed(&self, a: PeerId, b: PeerId) -> bool {
        self.peers[&a]
            .view(self.now)
            .neighbours
            .iter()
            .any(|n| n.info.id == b && n.confirmed)
    }

    /// The invariants over the peers that are part of the world.
    pub(crate) fn check(&self) -> Sample {
        let live: Vec<&Peer> = self.peers.values().filter(|p| p.is_joined()).collect();
        let truth: Vec<TruePeer> = live
            .iter()
            .map(|p| TruePeer {
                id: p.id(),
                pos: p.info().pos,
                radius: p.info().radius,
            })
            .collect();
        let views: Vec<Vec<Kept>> = live
            .iter()
            .map(|p| {
                p.kept_at(self.now)
                    .map(|(id, pos, enclosing)| Kept { id, pos, enclosing })
                    .collect()
            })
            .collect();
        invariants::check(self.config.world, &truth, &views, Options::default())
    }

    /// Asserts the awareness and connectivity invariants hold exactly.
    pub(crate) fn assert_invariants(&self, when: &str) {
        let s = self.check();
        assert!(
            s.consistency == 1.0 && s.components <= 1,
            "{when}: consistency {} components {} (hull violations {})",
            s.consistency,
            s.components,
            s.hull_violations
        );
    }

    /// How many messages of `kind` were delivered from `from` to `to`.
    pub(crate) fn sent(&self, from: PeerId, to: PeerId, kind: &str) -> usize {
        self.log
            .iter()
            .filter(|(f, t, m)| *f == from && *t == to && m.kind() == kind)
            .count()
    }
}

/// A greeting `Hello` from a peer at (x, y) with radius 100 (for feeding a
/// peer by hand).
/// A settled world of `n` peers at random places in size², joined one by
/// one through the first (seed 1, at the centre); the invariants hold.
pub(crate) fn settled(n: u64, size: f32, seed: u64) -> Net {
    let config = Config {
        world: World::new(size, size),
        ..Config::default()
    };
    settled_with(config, n, seed)
}

/// [`settled`] with every peer on `config` (its world square).
pub(crate) fn settled_with(config: Config, n: u64, seed: u64) -> Net {
    let size = config.world.width;
    let mut net = Net::with_config(config, 20);
    let mut rng = crate::sim::Rng::new(seed);
    let entry = net.add(1, size / 2.0, size / 2.0);
    for s in 2..=n {
        let (x, y) = (rng.f64() as f32 * size, rng.f64() as f32 * size);
        net.add_joining(s, x, y, entry);
        net.drive(100);
    }
    net.drive(5_000);
    net.assert_invariants("settled");
    net
}

pub(crate) fn hello(seq: u32, x: f32, y: f32) -> Message {
    Message::Hello {
        inc: 0,
        seq,
        pos: Point::new(x, y),
        radius: 100.0,
        name: String::new(),
        addr: String::new(),
        ask: true,
    }
}

mod area_rules;
mod crowd_rules;
mod discovery_rules;
mod hostile_rules;
mod link_rules;
mod model;
mod motion_rules;
mod object_rules;
mod record_rules;
mod repair_rules;
mod rules;

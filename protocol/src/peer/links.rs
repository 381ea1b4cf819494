//! Long-range links and greedy routing toward a point.
//!
//! Guarantees:
//! - A joined peer keeps up to `Config::long_links` long links (VoroNet,
//!   Kleinberg): for each, a length drawn log-uniformly between the radius
//!   and half the world's smaller side and a uniform angle give a point; a
//!   `Route` asking [`RouteAsk::Link`] goes there, and the peer it ends at
//!   (the point's owner) becomes the link unless it already takes
//!   `2 × long_links` incoming ones (then the holder draws again).
//! - The holder sends `LinkKeep` every [`keep_every`] to each far end, which
//!   answers `LinkAt` with its position. A link is drawn again when its far
//!   end is silent for the failure timeout, says it no longer takes it, is
//!   no longer between half and twice the drawn length away, says goodbye
//!   (a leaving peer tells the holders of its incoming links), or after
//!   [`LINK_LIFETIME_MS`] plus up to [`LINK_JITTER_MS`]. A far end forgets
//!   an incoming link not kept alive for three keep intervals.
//! - Every routed message (joins and probes, area messages to a far centre,
//!   `Route`) goes greedily over confirmed kept peers and the far ends of
//!   live long links, always to the candidate nearest to the point and only
//!   if it is nearer than we are: links only add candidates, so they can
//!   only shorten a route, and a route ends at the peer nobody it knows is
//!   nearer than (with the Delaunay neighbours known, the point's owner).
//!   At most [`MAX_ROUTE_HOPS`] forwards.
//! - The end of a `Route` answers its origin straight (`RouteReply`), and
//!   the origin takes an answer only for a token of its own, once, within
//!   [`ROUTE_REPLY_WINDOW_MS`]. A route unanswered for [`ROUTE_RETRY_MS`]
//!   is sent once more, through the two best other first hops (a crashed
//!   neighbour is handed routes until its silence shows). A first-hop route must come from its
//!   origin. Each sender gets [`ROUTE_RATE_PER_S`] routes a second, in
//!   bursts of [`ROUTE_BURST`]; beyond that they are refused and counted
//!   (`routes_refused`).

use super::budget::Budgets;
use super::{Event, Peer, RejectReason};
use crate::Millis;
use crate::geometry::Point;
use crate::id::{IdMap, PeerId, PeerInfo};
use crate::message::{MAX_GET_DETOURS, MAX_ROUTE_HOPS, Message, RouteAnswer, RouteAsk};

/// A long link is drawn again after this long (plus up to
/// [`LINK_JITTER_MS`], so that links made together do not end together).
pub const LINK_LIFETIME_MS: u64 = 60_000;
/// Spread of link lifetimes.
pub const LINK_JITTER_MS: u64 = 10_000;
/// How long after a route of ours its answer is taken.
pub const ROUTE_REPLY_WINDOW_MS: u64 = 10_000;
/// Routes a second each sender may make us handle.
pub const ROUTE_RATE_PER_S: f32 = 50.0;
/// Routes a sender may send at once.
pub const ROUTE_BURST: f32 = 100.0;
/// A route of ours not answered within this is sent once more, through
/// another first hop (a forwarder may have crashed on the way).
pub const ROUTE_RETRY_MS: u64 = 1_500;
/// After a refused or unanswered probe, wait this long before drawing again.
const REDRAW_AFTER_MS: u64 = 1_000;
/// Routes of ours awaiting an answer at once (the oldest are forgotten).
const MAX_AWAITED_ROUTES: usize = 64;

/// How often a holder keeps a link alive: every 5 s, or a third of the
/// failure timeout if that is shorter.
pub(super) fn keep_every(failure_timeout_ms: u64) -> u64 {
    (failure_timeout_ms / 3).clamp(1, 5_000)
}

/// One long link of ours.
#[derive(Clone, Copy, Debug)]
enum Link {
    /// None now; draw one at this time.
    Idle { at: Millis },
    /// A probe is out.
    Probing { token: u64 },
    /// Live: its far end, where it was last told to be, the drawn length,
    /// when it ends, last heard and last kept.
    Up {
        peer: PeerId,
        pos: Point,
        drawn: f32,
        ends: Millis,
        heard: Millis,
        kept: Millis,
    },
}

/// A route of ours awaiting its answer.
#[derive(Clone, Debug)]
struct Awaited {
    token: u64,
    until: Millis,
    ask: RouteAsk,
    target: Point,
    /// The link slot a probe is for, and the length it drew.
    link: Option<(usize, f32)>,
    /// When it was sent, and through whom.
    sent: Millis,
    first: PeerId,
    /// Sent a second time already.
    retried: bool,
    /// Answered (a second answer, to the retry, is dropped quietly).
    answered: bool,
}

/// Long links, incoming links and the routes of ours in flight.
#[derive(Debug, Default)]
pub(super) struct LinkState {
    out: Vec<Link>,
    /// Holders of links to us, and when each was last kept alive.
    incoming: IdMap<Millis>,
    awaited: Vec<Awaited>,
    budgets: Budgets,
}

impl Peer {
    /// Sends a `Route` for `target` asking only who owns it; the answer
    /// comes as [`Event::Routed`] with the returned token (at once, with 0
    /// hops, when we own the point ourselves).
    pub fn route(&mut self, now: Millis, target: Point) -> u64 {
        self.start_route(now, self.config.world.wrap(target), RouteAsk::Find, None)
    }

    /// The far ends of our live long links, with where each was last told
    /// to be.
    pub fn long_links(&self) -> impl Iterator<Item = (PeerId, Point)> + '_ {
        self.links.out.iter().filter_map(|l| match *l {
            Link::Up { peer, pos, .. } => Some((peer, pos)),
            _ => None,
        })
    }

    /// How many peers hold a long link to us.
    pub fn incoming_links(&self) -> usize {
        self.links.incoming.len()
    }

    /// Whether the transport should keep a connection to `id`: a kept peer,
    /// the far end of one of our long links, or the holder of one to us.
    pub fn needs_link(&self, id: &PeerId) -> bool {
        self.kept.contains_key(id)
            || self.links.incoming.contains_key(id)
            || self.long_links().any(|(p, _)| p == *id)
    }

    /// A uniform number in [0, 1) from the token generator (deterministic
    /// in the simulator).
    fn unit(&mut self) -> f64 {
        (self.next_token() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The candidate nearest to `target` among the confirmed kept peers and
    /// the far ends of live long links heard lately (a crashed peer is not
    /// handed a route while its silence runs toward the failure timeout),
    /// other than `skip`, with its squared distance to `target`.
    pub(super) fn nearest_known(
        &self,
        now: Millis,
        target: Point,
        skip: impl Fn(&PeerId) -> bool,
    ) -> Option<(f64, PeerId)> {
        let world = self.config.world;
        let link_quiet = 2 * keep_every(self.config.failure_timeout_ms);
        let links = self.links.out.iter().filter_map(move |l| match *l {
            Link::Up {
                peer, pos, heard, ..
            } if now.since(heard) <= link_quiet => Some((peer, pos)),
            _ => None,
        });
        self.kept
            .iter()
            .filter(|(_, k)| k.confirmed && self.fresh(k, now))
            .map(|(id, k)| (*id, k.info.pos))
            .chain(links)
            .filter(|(id, _)| !skip(id))
            .map(|(id, pos)| (world.distance_sq(pos, target), id))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    /// [`Peer::nearest_known`], if it is nearer to `target` than we are.
    pub(super) fn next_hop(
        &self,
        now: Millis,
        target: Point,
        skip: impl Fn(&PeerId) -> bool,
    ) -> Option<(f64, PeerId)> {
        let mine = self.config.world.distance_sq(self.me.pos, target);
        self.nearest_known(now, target, skip)
            .filter(|(d, _)| *d < mine)
    }

    /// Routes from here: answers at once when we own the point.
    pub(super) fn start_route(
        &mut self,
        now: Millis,
        target: Point,
        ask: RouteAsk,
        link: Option<(usize, f32)>,
    ) -> u64 {
        let token = self.next_token();
        let me = self.me.clone();
        match self.next_hop(now, target, |_| false) {
            Some((_, next)) => {
                self.links.awaited.retain(|a| now <= a.until);
                if self.links.awaited.len() >= MAX_AWAITED_ROUTES {
                    self.links.awaited.remove(0);
                }
                self.links.awaited.push(Awaited {
                    token,
                    until: now.plus(ROUTE_REPLY_WINDOW_MS),
                    ask: ask.clone(),
                    target,
                    link,
                    sent: now,
                    first: next,
                    retried: false,
                    answered: false,
                });
                let msg = Message::Route {
                    origin: me,
                    target,
                    hops: 0,
                    token,
                    ask,
                };
                self.send(next, msg, now);
            }
            None => {
                // We own the point: no link to ourselves.
                let answer = if let Some((slot, _)) = link {
                    self.links.out[slot] = Link::Idle {
                        at: now.plus(REDRAW_AFTER_MS),
                    };
                    RouteAnswer::Refused
                } else {
                    self.end_route(now, me.id, ask)
                };
                self.events.push_back(Event::Routed {
                    token,
                    target,
                    hops: 0,
                    owner: me.id,
                    pos: me.pos,
                    answer,
                });
            }
        }
        token
    }

    /// A `Route` arrived from `from`: pass it on, or answer it.
    pub(super) fn on_route(
        &mut self,
        now: Millis,
        from: PeerId,
        mut origin: PeerInfo,
        (target, hops, token): (Point, u16, u64),
        ask: RouteAsk,
    ) {
        if hops == 0 && origin.id != from {
            self.reject(from, RejectReason::RouteClaimsAnotherOrigin);
            return;
        }
        if !self
            .links
            .budgets
            .spend(from, now, ROUTE_RATE_PER_S, ROUTE_BURST)
        {
            self.stats.routes_refused += 1;
            return;
        }
        super::sanitize(&mut origin);
        let target = self.config.world.wrap(target);
        if origin.id == self.me.id {
            return; // our own route came back round a loop
        }
        // A holder of the record asked for answers on the way.
        let (held, detour) = match &ask {
            RouteAsk::Get { key, detour } => (self.held_record(now, key), *detour),
            _ => (None, 0),
        };
        if held.is_none()
            && detour == 0
            && let Some((_, next)) =
                self.next_hop(now, target, |id| *id == from || *id == origin.id)
            && hops < MAX_ROUTE_HOPS
        {
            self.stats.routes_forwarded += 1;
            let msg = Message::Route {
                origin,
                target,
                hops: hops + 1,
                token,
                ask,
            };
            self.send(next, msg, now);
            return;
        }
        // The end (or a holder asked after it) lacks the record: a holder
        // in our view that has not been asked may have it (holders change
        // hands as peers walk).
        if held.is_none()
            && let RouteAsk::Get { key, detour } = ask
            && detour < MAX_GET_DETOURS
            && let Some(next) = self.other_holder(now, &key, &[from, origin.id])
        {
            self.stats.routes_forwarded += 1;
            let msg = Message::Route {
                origin,
                target,
                hops: hops.saturating_add(1),
                token,
                ask: RouteAsk::Get {
                    key,
                    detour: detour + 1,
                },
            };
            self.send(next, msg, now);
            return;
        }
        self.stats.routes_answered += 1;
        let answer = match held {
            Some(copy) => RouteAnswer::Record(Some(Box::new(copy))),
            None => self.end_route(now, origin.id, ask),
        };
        let msg = Message::RouteReply {
            token,
            hops,
            pos: self.me.pos,
            answer,
        };
        self.send(origin.id, msg, now);
    }

    /// What the end of a route answers `origin`.
    fn end_route(&mut self, now: Millis, origin: PeerId, ask: RouteAsk) -> RouteAnswer {
        match ask {
            RouteAsk::Find => RouteAnswer::Found,
            RouteAsk::Link => self.take_incoming(now, origin),
            RouteAsk::Get { key, .. } => {
                RouteAnswer::Record(self.held_record(now, &key).map(Box::new))
            }
            RouteAsk::Put(copy) => self.store_put(now, origin, *copy),
        }
    }

    /// Takes `holder`'s link unless we already take as many as we may.
    fn take_incoming(&mut self, now: Millis, holder: PeerId) -> RouteAnswer {
        let expiry = 3 * keep_every(self.config.failure_timeout_ms);
        self.links.incoming.retain(|_, at| now.since(*at) <= expiry);
        let most = 2 * self.config.long_links.max(1);
        if self.links.incoming.contains_key(&holder) || self.links.incoming.len() < most {
            self.links.incoming.insert(holder, now);
            RouteAnswer::Linked
        } else {
            RouteAnswer::Refused
        }
    }

    /// The answer to a route of ours.
    pub(super) fn on_route_reply(
        &mut self,
        now: Millis,
        from: PeerId,
        (token, hops, pos): (u64, u16, Point),
        answer: RouteAnswer,
    ) {
        self.links.awaited.retain(|a| now <= a.until);
        let Some(a) = self.links.awaited.iter_mut().find(|a| a.token == token) else {
            self.reject(from, RejectReason::UnsolicitedRouteReply);
            return;
        };
        if a.answered {
            return; // the answer to our retry, or the retry's to the first
        }
        a.answered = true;
        let a = a.clone();
        let pos = self.config.world.wrap(pos);
        if let Some((slot, drawn)) = a.link
            && matches!(self.links.out.get(slot), Some(Link::Probing { token: t }) if *t == token)
        {
            self.links.out[slot] = if matches!(answer, RouteAnswer::Linked) {
                self.stats.links_made += 1;
                let life = LINK_LIFETIME_MS + (self.unit() * LINK_JITTER_MS as f64) as u64;
                Link::Up {
                    peer: from,
                    pos,
                    drawn,
                    ends: now.plus(life),
                    heard: now,
                    kept: now,
                }
            } else {
                Link::Idle {
                    at: now.plus(REDRAW_AFTER_MS),
                }
            };
        }
        self.events.push_back(Event::Routed {
            token,
            target: a.target,
            hops,
            owner: from,
            pos,
            answer,
        });
    }

    /// A holder keeps its link to us alive (or drops it).
    pub(super) fn on_link_keep(&mut self, now: Millis, from: PeerId, stop: bool) {
        if stop {
            self.links.incoming.remove(&from);
            return;
        }
        let kept = matches!(self.take_incoming(now, from), RouteAnswer::Linked);
        let msg = Message::LinkAt {
            pos: self.me.pos,
            kept,
        };
        self.send(from, msg, now);
    }

    /// A far end says where it is.
    pub(super) fn on_link_at(&mut self, now: Millis, from: PeerId, at: Point, still: bool) {
        let at = self.config.world.wrap(at);
        let Some(slot) = self
            .links
            .out
            .iter()
            .position(|l| matches!(l, Link::Up { peer, .. } if *peer == from))
        else {
            self.reject(from, RejectReason::UnsolicitedRouteReply);
            return;
        };
        if let Link::Up { pos, heard, .. } = &mut self.links.out[slot] {
            *pos = at;
            *heard = now;
        }
        if !still {
            self.redraw(slot, now, false);
        }
    }

    /// We leave: the holders of links to us that we do not keep hear it
    /// too (the others hear our `Leave` anyway).
    pub(super) fn links_leaving(&mut self, now: Millis) {
        let mut holders: Vec<PeerId> = self.links.incoming.keys().copied().collect();
        holders.sort();
        for id in holders {
            if !self.kept.contains_key(&id) {
                self.send(id, Message::Leave, now);
            }
        }
    }

    /// `from` left: a link to it is drawn again at once.
    pub(super) fn link_end_left(&mut self, now: Millis, from: PeerId) {
        self.links.incoming.remove(&from);
        if let Some(slot) = self
            .links
            .out
            .iter()
            .position(|l| matches!(l, Link::Up { peer, .. } if *peer == from))
        {
            self.redraw(slot, now, false);
        }
    }

    /// Drops link `slot` (telling its far end unless it is gone) and draws
    /// again soon.
    fn redraw(&mut self, slot: usize, now: Millis, tell: bool) {
        if let Link::Up { peer, .. } = self.links.out[slot]
            && tell
        {
            self.send(peer, Message::LinkKeep { stop: true }, now);
        }
        self.stats.links_redrawn += 1;
        self.links.out[slot] = Link::Idle { at: now };
    }

    /// Sends once more each route of ours unanswered for
    /// [`ROUTE_RETRY_MS`], through the two best first hops other than the
    /// one it took (or that one, if it is the only one nearer).
    fn retry_routes(&mut self, now: Millis) {
        for i in 0..self.links.awaited.len() {
            let a = self.links.awaited[i].clone();
            if a.answered || a.retried || now.since(a.sent) < ROUTE_RETRY_MS || now > a.until {
                continue;
            }
            self.links.awaited[i].retried = true;
            // Through the two best first hops other than the first (it may
            // have crashed; so may one more), else through the same (a loss
            // further on). The first answer is taken.
            let one = self.next_hop(now, a.target, |id| *id == a.first);
            let two = one
                .and_then(|(_, o)| self.next_hop(now, a.target, |id| *id == a.first || *id == o));
            let via: Vec<PeerId> = match (one, two) {
                (Some((_, o)), Some((_, t))) => vec![o, t],
                (Some((_, o)), None) => vec![o],
                _ => self
                    .next_hop(now, a.target, |_| false)
                    .map(|(_, f)| f)
                    .into_iter()
                    .collect(),
            };
            for next in via {
                let msg = Message::Route {
                    origin: self.me.clone(),
                    target: a.target,
                    hops: 0,
                    token: a.token,
                    ask: a.ask.clone(),
                };
                self.send(next, msg, now);
            }
        }
    }

    /// The links' part of the maintenance round: retry, keep, check, draw.
    pub(super) fn links_round(&mut self, now: Millis) {
        self.retry_routes(now);
        let want = if self.is_joined() && self.kept.len() > 0 {
            self.config.long_links
        } else {
            0
        };
        while self.links.out.len() > want {
            let last = self.links.out.len() - 1;
            self.redraw(last, now, true);
            self.links.out.pop();
        }
        while self.links.out.len() < want {
            self.links.out.push(Link::Idle { at: now });
        }
        let world = self.config.world;
        let timeout = self.config.failure_timeout_ms;
        let every = keep_every(timeout);
        for slot in 0..self.links.out.len() {
            match self.links.out[slot] {
                Link::Idle { at } if now >= at => self.draw(slot, now),
                Link::Idle { .. } => {}
                Link::Probing { token } => {
                    if !self
                        .links
                        .awaited
                        .iter()
                        .any(|a| a.token == token && now <= a.until && !a.answered)
                    {
                        self.links.out[slot] = Link::Idle { at: now };
                    }
                }
                Link::Up {
                    peer,
                    pos,
                    drawn,
                    ends,
                    heard,
                    kept,
                } => {
                    let len = world.distance(self.me.pos, pos) as f32;
                    if now.since(heard) > timeout {
                        self.redraw(slot, now, false);
                    } else if now >= ends || len < drawn / 2.0 || len > drawn * 2.0 {
                        self.redraw(slot, now, true);
                    } else if now.since(kept) >= every {
                        if let Link::Up { kept, .. } = &mut self.links.out[slot] {
                            *kept = now;
                        }
                        self.send(peer, Message::LinkKeep { stop: false }, now);
                    }
                }
            }
        }
    }

    /// Draws a length and an angle for link `slot` and probes that point.
    fn draw(&mut self, slot: usize, now: Millis) {
        let world = self.config.world;
        let lo = f64::from(self.config.radius.max(1.0));
        let hi = f64::from(world.width.min(world.height)) / 2.0;
        if hi <= lo {
            // A world too small for links: everyone is near.
            self.links.out[slot] = Link::Idle {
                at: now.plus(LINK_LIFETIME_MS),
            };
            return;
        }
        let len = lo * (hi / lo).powf(self.unit());
        let angle = self.unit() * std::f64::consts::TAU;
        let target = world.wrap(Point::new(
            (f64::from(self.me.pos.x) + len * angle.cos()) as f32,
            (f64::from(self.me.pos.y) + len * angle.sin()) as f32,
        ));
        self.links.out[slot] = Link::Probing { token: 0 };
        let token = self.start_route(now, target, RouteAsk::Link, Some((slot, len as f32)));
        if let Link::Probing { token: t } = &mut self.links.out[slot] {
            *t = token;
        }
    }
}

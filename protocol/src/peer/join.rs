//! Join: placing a newcomer in the world.
//!
//! Guarantees:
//! - A join travels greedily toward the joiner's position over confirmed
//!   kept peers, one hop closer each time, and stops after
//!   `Config::max_join_hops` (loop guard); the peer whose cell holds the
//!   joiner (nobody it keeps is closer) accepts and replies with itself
//!   first, then every fresh peer the joiner should keep (`records_for`).
//! - A first-hop join comes from the joiner itself; one naming another id is
//!   refused. A joiner that does not know its own address (it listens on an
//!   unspecified address) is given the one its first hop sees, and the
//!   acceptor echoes it back so the joiner can advertise it.
//! - An unanswered join is sent again every `Config::join_retry_ms`, through
//!   another confirmed kept peer when there is one (the one nearest to where
//!   we join), so a join whose entry or forwarder left or crashed recovers.
//!   Each retry carries the next attempt number; a forwarder that passed
//!   this joiner's join on within `FORWARD_MEMORY_MS` avoids the peers it
//!   chose before (accepting itself when nobody nearer is left), so a retry
//!   goes round a forwarder that swallows joins (a black hole).
//! - Each join or probe of ours carries a fresh token that is hard to guess
//!   (`next_token`); its reply must echo it, within `JOIN_REPLY_WINDOW_MS`,
//!   and is taken once. Any other reply is rejected as unsolicited: anyone
//!   off the join's path could otherwise end our join, set the address we
//!   advertise, or make us greet and digest its list, at any time.
//! - A reply names the place it answers for; one for a place we have since
//!   jumped away from (farther than `Config::teleport_distance`: a late
//!   reply to the probe of our previous place) is ignored.
//! - Once views have settled (`join_retry_ms` after the reply) the joiner
//!   walks the join once more from the same entry point (the probe): the
//!   second walk ends at the true owner and introduces whoever was missed
//!   while many peers joined at once.
//! - A teleport (a move longer than `Config::teleport_distance`, which
//!   walking discovery cannot follow) is a join at the new place through the
//!   confirmed kept peer nearest to it (else the nearest hint; alone if we
//!   keep nobody) that keeps
//!   the old links until the join reply completes the new view; the old
//!   neighbours hear the move and drop us unless they still need us.

use std::net::SocketAddr;

use super::repair::REPLY_MULTIPLE;
use super::{Event, Peer, RejectReason, State, Timer, sanitize};
use crate::Millis;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_RECORDS, Message, encoded_len};

/// Padding of our joins: the acceptor answers with up to
/// `REPLY_MULTIPLE` times the join's size, about 90 records (a neighbourhood
/// and its enclosing ring; the joiner's digests fetch the rest).
pub const JOIN_PAD: usize = 1_024;
/// Padding of our probes: their reply only needs to introduce the acceptor
/// and its nearest (a merge spreads by discovery from there).
pub const PROBE_PAD: usize = 256;

/// A join as received, past its joiner.
pub(super) struct Join {
    pub(super) hops: u16,
    pub(super) attempt: u8,
    pub(super) token: u64,
    pub(super) pad: Vec<u8>,
    /// Its size on the wire (a lower bound): what its reply may cost.
    pub(super) size: usize,
}

/// How long after a join or probe of ours its reply is taken: a walk
/// across a large world at a few hundred milliseconds a hop.
const JOIN_REPLY_WINDOW_MS: u64 = 10_000;
/// A joiner that has heard none of the peers its join reply gave it this
/// long after the reply is lost. Longer than the failure timeout: under
/// load (a join storm through one bootstrap) the first answers to a
/// newcomer's hellos wait behind handshakes for seconds, and a rejoin then
/// only adds to the load.
pub const JOINER_GRACE_MS: u64 = 10_000;
/// Joins and probes of ours whose replies are awaited at once (a join and
/// its retries, and a probe).
const MAX_AWAITED_REPLIES: usize = 8;
/// How long a forwarder remembers where it passed a join on.
const FORWARD_MEMORY_MS: u64 = 30_000;
/// Most joins a forwarder remembers (the oldest are forgotten first).
const MAX_FORWARDS_REMEMBERED: usize = 256;

/// Whether `addr` is one others can dial (a socket address, not 0.0.0.0).
fn dialable(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| !a.ip().is_unspecified())
}

impl Peer {
    /// Starts joining the world that `bootstrap` belongs to.
    pub fn join(&mut self, bootstrap: PeerId, now: Millis) {
        self.join_attempt = 0;
        self.send_join(bootstrap, now);
    }

    /// Sends our join (the current attempt) through `via`.
    fn send_join(&mut self, via: PeerId, now: Millis) {
        if via == self.me.id {
            return;
        }
        self.state = State::Joining { via };
        self.timers
            .set(Timer::JoinRetry, now.plus(self.config.join_retry_ms));
        let token = self.await_join_reply(now);
        self.send(
            via,
            Message::Join {
                joiner: self.me.clone(),
                hops: 0,
                attempt: self.join_attempt,
                token,
                pad: vec![0; JOIN_PAD],
            },
            now,
        );
    }

    /// Walks a join for our own position through `via` without leaving our
    /// world: its reply introduces whoever the walk ends at (another world
    /// in the same coordinates, or a part of ours we were cut off from).
    pub fn probe_through(&mut self, via: PeerId, now: Millis) {
        if via == self.me.id || !self.is_joined() {
            return;
        }
        let token = self.await_join_reply(now);
        self.send(
            via,
            Message::Join {
                joiner: self.me.clone(),
                hops: 0,
                attempt: 0,
                token,
                pad: vec![0; PROBE_PAD],
            },
            now,
        );
    }

    /// The join retry and the join probe, on the maintenance round.
    pub(super) fn join_timers(&mut self, now: Millis) {
        if let State::Joining { via } = self.state
            && self.timers.is_due(Timer::JoinRetry, now)
        {
            // The entry (or a peer on the way) may have left or crashed: try
            // another peer we keep, the one nearest to where we join.
            let next = self.entry_near(self.me.pos, Some(via)).unwrap_or(via);
            self.join_attempt = self.join_attempt.saturating_add(1);
            self.send_join(next, now);
        }
        if let Some(via) = self.probe_via
            && self.timers.is_due(Timer::Probe, now)
            && self.state == State::Joined
        {
            self.probe_via = None;
            self.timers.stop(Timer::Probe);
            self.probe_through(via, now);
        }
    }

    pub(super) fn on_join(
        &mut self,
        now: Millis,
        from: PeerId,
        remote: Option<&str>,
        mut joiner: PeerInfo,
        join: Join,
    ) {
        let Join {
            hops,
            attempt,
            token,
            pad,
            size,
        } = join;
        if joiner.id == self.me.id {
            return;
        }
        if hops == 0 && joiner.id != from {
            self.reject(from, RejectReason::JoinClaimsAnotherId);
            return;
        }
        if hops == 0
            && let Some(remote) = remote
            && !dialable(&joiner.addr)
        {
            joiner.addr = remote.to_string();
        }
        joiner.pos = self.config.world.wrap(joiner.pos);
        sanitize(&mut joiner);
        let world = self.config.world;
        let target = joiner.pos;
        let my_d = world.distance_sq(self.me.pos, target);
        // A retry avoids the peers we passed this joiner's join to before.
        self.forwarded
            .retain(|f| now.since(f.2) <= FORWARD_MEMORY_MS);
        let tried: Vec<PeerId> = if attempt > 0 {
            let j = joiner.id;
            self.forwarded
                .iter()
                .filter(|f| f.0 == j)
                .map(|f| f.1)
                .collect()
        } else {
            Vec::new()
        };
        let best = self.nearest_known(now, target, |id| *id == joiner.id || tried.contains(id));
        let can_accept = matches!(self.state, State::Alone | State::Joined);
        match best {
            Some((d, next)) if (d < my_d || !can_accept) && hops < self.config.max_join_hops => {
                self.stats.joins_forwarded += 1;
                if self.forwarded.len() >= MAX_FORWARDS_REMEMBERED {
                    self.forwarded.pop_front();
                }
                self.forwarded.push_back((joiner.id, next, now));
                self.send(
                    next,
                    Message::Join {
                        joiner,
                        hops: hops.saturating_add(1),
                        attempt,
                        token,
                        pad,
                    },
                    now,
                );
            }
            _ if can_accept => {
                self.stats.joins_accepted += 1;
                let place = (joiner.pos, joiner.radius);
                let mut others = self.records_for(now, joiner.id, place, true, |_| false);
                others.retain(|p| p.id != self.me.id);
                let mut reply = Message::JoinReply {
                    hops,
                    at: target,
                    peers: vec![self.me.clone()],
                    observed_addr: joiner.addr.clone(),
                    token,
                };
                // Within what the joiner paid for: ourselves, then the
                // nearest (its digests fetch the rest from its neighbours).
                let budget = size.saturating_mul(REPLY_MULTIPLE as usize);
                let overhead = encoded_len(&reply) + 2;
                let mut paid = self.nearest_within(others, joiner.pos, overhead, budget);
                paid.truncate(MAX_RECORDS - 1); // the farthest go
                if let Message::JoinReply { peers, .. } = &mut reply {
                    peers.extend(paid);
                }
                self.send(joiner.id, reply, now);
                self.objects_for_newcomer(now, &joiner);
            }
            _ => {} // joining ourselves, nobody to forward to: the joiner retries
        }
    }

    pub(super) fn on_join_reply(
        &mut self,
        now: Millis,
        from: PeerId,
        (hops, at, token): (u16, Point, u64),
        peers: Vec<PeerInfo>,
        observed: String,
    ) {
        self.awaiting.retain(|a| now <= a.1);
        let Some(i) = self.awaiting.iter().position(|a| a.0 == token) else {
            self.reject(from, RejectReason::UnsolicitedJoinReply);
            return;
        };
        self.awaiting.swap_remove(i);
        if self.config.world.distance(at, self.me.pos) > f64::from(self.config.teleport_distance) {
            // The answer to a join (or probe) for a place we have jumped
            // away from since: its records are of that place, and taking it
            // as the end of our current join would strand us there.
            return;
        }
        if let State::Joining { via } = self.state {
            self.state = State::Joined;
            self.joined_at = Some(now);
            self.timers.stop(Timer::JoinRetry);
            self.probe_via = Some(via);
            self.timers
                .set(Timer::Probe, now.plus(self.config.join_retry_ms));
            self.stats.joins += 1;
            self.events.push_back(Event::Joined {
                acceptor: from,
                hops,
            });
            if !dialable(&self.me.addr) && dialable(&observed) {
                self.me.addr = observed.clone();
                self.events.push_back(Event::ObservedAddr(observed));
            }
        }
        self.on_discover(now, from, peers, false, MAX_RECORDS);
        // Ask the new neighbours for what the acceptor could not see.
        self.recompute(now);
        // `recompute` just refreshed the enclosing list.
        let targets = self.enclosing.clone();
        for id in targets {
            self.send_digest(id, now);
        }
    }

    /// Joins at `pos`, keeping the old links until the new view is
    /// complete: the old neighbours hear the move (each drops us unless it
    /// still needs us), the join goes through the confirmed kept peer nearest
    /// to `pos`, and the reply's recompute drops whoever is no longer needed.
    pub(super) fn teleport(&mut self, pos: Point, now: Millis) {
        let entry = self.entry_near(pos, None);
        self.me.pos = pos;
        self.own.reset();
        self.announce(Point::default(), now);
        match entry {
            Some(via) => self.join(via, now),
            None => self.state = State::Alone,
        }
    }

    /// The confirmed kept peer nearest to `pos`, other than `not`; failing
    /// that, the nearest hint (right after a join reply every kept peer may
    /// still be a hint: a jump then would otherwise leave us alone, and the
    /// first record told would make a world of a view of the old place).
    fn entry_near(&self, pos: Point, not: Option<PeerId>) -> Option<PeerId> {
        let world = self.config.world;
        let nearest = |confirmed: bool| {
            self.kept
                .iter()
                .filter(|(id, k)| k.confirmed == confirmed && Some(**id) != not)
                .min_by(|a, b| {
                    world
                        .distance_sq(a.1.info.pos, pos)
                        .total_cmp(&world.distance_sq(b.1.info.pos, pos))
                })
                .map(|(id, _)| *id)
        };
        nearest(true).or_else(|| nearest(false))
    }

    /// A fresh token for a join or probe of ours, whose reply is then
    /// taken once within [`JOIN_REPLY_WINDOW_MS`]. At most
    /// [`MAX_AWAITED_REPLIES`] are out (the oldest is forgotten).
    fn await_join_reply(&mut self, now: Millis) -> u64 {
        let token = self.next_token();
        self.awaiting.retain(|a| now <= a.1);
        if self.awaiting.len() >= MAX_AWAITED_REPLIES {
            self.awaiting.remove(0);
        }
        self.awaiting.push((token, now.plus(JOIN_REPLY_WINDOW_MS)));
        token
    }

    /// SipHash of the secret key and a counter: a peer that saw earlier
    /// tokens cannot tell the next one.
    pub(super) fn next_token(&mut self) -> u64 {
        use std::hash::{Hash, Hasher};
        self.tokens_issued += 1;
        let mut h = std::hash::DefaultHasher::new();
        (self.token_key, self.tokens_issued).hash(&mut h);
        h.finish()
    }

    /// Sets the secret the join tokens are made from (a node draws it from
    /// the operating system; the simulator keeps the id-derived default, so
    /// runs repeat).
    pub fn set_token_secret(&mut self, secret: u64) {
        self.token_key = secret;
    }

    /// A peer alone in its own world becomes part of a larger one as soon as
    /// it keeps someone (someone joined through it, or it was told of peers).
    pub(super) fn no_longer_alone(&mut self) {
        if self.state == State::Alone {
            self.state = State::Joined;
        }
    }
}

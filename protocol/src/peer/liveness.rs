//! Liveness: hellos, heartbeats, failures and goodbyes.
//!
//! Guarantees:
//! - A peer we start keeping is greeted with our full record (`Hello`) once;
//!   a hint told to both sides of a pair is greeted only if it has not
//!   spoken within half a heartbeat (it should speak first).
//! - A `Hello` is the peer speaking for itself: it confirms the peer and its
//!   record (a newer sequence number, or any if it was only a hint).
//! - Every confirmed kept peer hears from us at least once a heartbeat (a
//!   `Ping` when nothing else was sent).
//! - A kept peer silent for `failure_timeout_ms`, or a hint that never
//!   spoke within it, is dropped and the hole repaired; a goodbye drops the
//!   sender at once.
//! - A peer that was part of a world and has heard no neighbour within the
//!   failure timeout is `Lost` ([`Peer::state`]).

use super::motion::Motion;
use super::table::Stamp;
use super::{Peer, RemoveReason, State, Timer, sanitize};
use crate::Millis;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::Message;

impl Peer {
    /// Says goodbye to every kept peer and forgets them.
    pub fn leave(&mut self, now: Millis) {
        self.records_leaving(now);
        self.links_leaving(now);
        self.broadcast(&Message::Leave, now);
        self.kept.clear();
        self.enclosing.clear();
        self.state = State::Left;
        self.timers.stop(Timer::Recompute);
    }

    pub(super) fn on_leave(&mut self, now: Millis, from: PeerId) {
        self.link_end_left(now, from);
        if self.remove(&from, RemoveReason::Left) {
            self.after_loss(now);
        }
    }

    /// A peer's own record. Answered with ours when it asks (it greets us),
    /// or when it is kept and was never greeted (a new life, or a hint that
    /// spoke first). A stranger's answer or announcement is learned and not
    /// answered: two peers out of each other's range used to bounce hellos
    /// for ever, each dropping the other before its answer came back (28
    /// hellos per peer per tick in a still crowd).
    pub(super) fn on_hello(&mut self, now: Millis, mut info: PeerInfo, stamp: Stamp, ask: bool) {
        info.pos = self.config.world.wrap(info.pos);
        sanitize(&mut info);
        let id = info.id;
        let answer = match self.kept.get_mut(&id) {
            Some(k) => {
                // A new life only of a peer heard from before: a hint's
                // stamp is (0, 0), below any real node's first word.
                if k.confirmed && k.new_life(stamp) {
                    self.stats.restarts_seen += 1;
                }
                if stamp >= k.stamp || !k.confirmed {
                    // The same announcement as the last move keeps its
                    // velocity from this fresher position; anything newer
                    // is still until its next move.
                    let vel = if stamp == k.stamp && k.confirmed {
                        k.motion.vel
                    } else {
                        Point::default()
                    };
                    k.motion = Motion {
                        pos: info.pos,
                        vel,
                        at: now,
                    };
                    k.info.pos = info.pos;
                    k.stamp = stamp;
                }
                k.info.radius = info.radius;
                k.info.name = info.name;
                k.info.addr = info.addr;
                k.confirmed = true;
                let answer = ask || !k.hello_sent;
                self.mark_dirty(now);
                answer
            }
            None => {
                // Someone joined our world through us, or found us.
                self.no_longer_alone();
                self.insert(info, stamp, true, now);
                ask
            }
        };
        if answer {
            self.answer_hello(id, now);
        }
    }

    /// Greets `to`, asking for its record in return.
    pub(super) fn send_hello(&mut self, to: PeerId, now: Millis) {
        self.hello_to(to, true, now);
    }

    /// Gives `to` our record, asking for nothing.
    fn answer_hello(&mut self, to: PeerId, now: Millis) {
        self.hello_to(to, false, now);
    }

    fn hello_to(&mut self, to: PeerId, ask: bool, now: Millis) {
        if let Some(k) = self.kept.get_mut(&to) {
            k.hello_sent = true;
        }
        let msg = self.hello(ask);
        self.send(to, msg, now);
    }

    /// Our full record, as a `Hello`.
    pub(super) fn hello(&self, ask: bool) -> Message {
        Message::Hello {
            inc: self.config.incarnation,
            seq: self.seq,
            pos: self.me.pos,
            radius: self.me.radius,
            name: self.me.name.clone(),
            addr: self.me.addr.clone(),
            ask,
        }
    }

    /// Says hello to kept hints not greeted yet (a mutual hint only once its
    /// grace period is over: it should speak first).
    pub(super) fn greet_hints(&mut self, now: Millis) {
        let greet: Vec<PeerId> = self
            .kept
            .iter()
            .filter(|(_, k)| !k.hello_sent && !k.confirmed && k.greet_at.is_none_or(|t| now >= t))
            .map(|(id, _)| *id)
            .collect();
        for id in greet {
            self.send_hello(id, now);
        }
    }

    /// Failure detection: silent neighbours, and hints nobody confirmed.
    pub(super) fn detect_failures(&mut self, now: Millis) {
        let timeout = self.config.failure_timeout_ms;
        let dead: Vec<(PeerId, bool)> = self
            .kept
            .iter()
            .filter(|(_, k)| {
                now.since(k.last_heard) > timeout || (!k.confirmed && now.since(k.added) > timeout)
            })
            .map(|(id, k)| (*id, k.confirmed))
            .collect();
        // A hint that never spoke was no neighbour: its expiry is no hole
        // to repair (invented records expiring made every honest neighbour
        // of a liar digest all its enclosing peers each round).
        let lost = dead.iter().any(|&(_, confirmed)| confirmed);
        for (id, confirmed) in dead {
            if confirmed {
                self.stats.timeouts += 1;
                self.remember_silenced(id, now);
            }
            self.remove(&id, RemoveReason::TimedOut);
        }
        if lost {
            self.after_loss(now);
        }
    }

    /// A ping to every confirmed kept peer that was sent nothing for a
    /// heartbeat.
    pub(super) fn heartbeats(&mut self, now: Millis) {
        let hb = self.config.heartbeat_ms;
        let quiet: Vec<PeerId> = self
            .kept
            .iter()
            .filter(|(_, k)| k.confirmed && now.since(k.last_sent) >= hb)
            .map(|(id, _)| *id)
            .collect();
        for id in quiet {
            self.send(id, Message::Ping, now);
        }
    }

    /// Whether a confirmed kept peer was heard within the failure timeout.
    pub(super) fn heard_recently(&self, now: Millis) -> bool {
        let timeout = self.config.failure_timeout_ms;
        self.kept
            .values()
            .any(|k| k.confirmed && now.since(k.last_heard) <= timeout)
    }
}

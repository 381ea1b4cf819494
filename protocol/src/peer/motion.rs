//! Motion: dead reckoning.
//!
//! Guarantees:
//! - A peer announces its motion (position and velocity), not every step.
//!   It estimates its own velocity from its last two steps (`move_to` calls)
//!   and announces again when its true position is further than
//!   `Config::epsilon` from where its last announcement extrapolates it, when
//!   it stops (a stop is announced twice, in case one datagram is lost), and
//!   every `Config::motion_refresh_ms` while moving. The check runs at every
//!   step and at every motion round, so a peer that simply stops calling
//!   `move_to` is announced as still within one round.
//! - Receivers extrapolate: every `Config::motion_ms` (the motion round) the
//!   believed position of each kept peer that moves is advanced to now, and
//!   pair discovery runs on the advanced positions exactly as on a received
//!   move. A belief is extrapolated for at most twice
//!   `Config::motion_refresh_ms` after its announcement, then frozen.
//! - So a neighbour's belief is off by at most `epsilon` plus one step of
//!   travel plus the latency (the announcement that corrects it is on its
//!   way), and a peer that stands still or walks straight sends (almost) no
//!   moves.

use std::collections::VecDeque;

use super::table::Known;
use super::{Peer, State, Timer};
use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::PeerId;
use crate::message::Message;

/// A motion as announced: position and velocity (world units per second)
/// at a time on the local clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Motion {
    pub(super) pos: Point,
    pub(super) vel: Point,
    pub(super) at: Millis,
}

impl Motion {
    /// Standing at `pos` since `at`.
    pub(super) fn still(pos: Point, at: Millis) -> Self {
        Self {
            pos,
            vel: Point::default(),
            at,
        }
    }

    pub(super) fn moving(&self) -> bool {
        self.vel != Point::default()
    }

    /// Where this motion puts its peer at `now`, extrapolating for at most
    /// `max_ms`.
    pub(super) fn predict(&self, world: World, now: Millis, max_ms: u64) -> Point {
        if !self.moving() {
            return self.pos;
        }
        let t = now.since(self.at).min(max_ms) as f32 / 1000.0;
        world.wrap(Point::new(
            self.pos.x + self.vel.x * t,
            self.pos.y + self.vel.y * t,
        ))
    }
}

/// Steps remembered for the velocity estimate.
const STEPS: usize = 8;
/// The oldest step used for the velocity estimate.
const STEP_WINDOW_MS: u64 = 1_000;

/// This peer's own motion: its recent steps, its velocity estimate, and
/// what it announced last.
#[derive(Clone, Debug, Default)]
pub(super) struct OwnMotion {
    /// The last steps, oldest first: where and when.
    steps: VecDeque<(Point, Millis)>,
    /// Milliseconds between the last two steps.
    step_ms: u64,
    /// Velocity (units per second): the mean over the longest run of
    /// recent steps that lie on one straight line at one speed (within a
    /// quarter of the tolerance), so rounded coordinates do not make it
    /// jitter and a turn shows at once.
    vel: Point,
    /// The last announcement.
    pub(super) sent: Option<Motion>,
    /// The stop announcement still has to be repeated once.
    repeat_stop: bool,
}

impl OwnMotion {
    /// Takes a step to `pos` at `now` (a jump longer than `jump` starts
    /// afresh).
    fn observe(&mut self, world: World, pos: Point, now: Millis, jump: f32, tol: f32) {
        if let Some(&(p0, t0)) = self.steps.back() {
            if now.since(t0) == 0 || world.distance(p0, pos) > f64::from(jump) {
                self.steps.clear();
            } else {
                self.step_ms = now.since(t0);
            }
        }
        while self.steps.len() >= STEPS
            || self
                .steps
                .front()
                .is_some_and(|&(_, t)| now.since(t) > STEP_WINDOW_MS)
        {
            self.steps.pop_front();
        }
        self.steps.push_back((pos, now));
        self.vel = self.estimate(world, tol);
    }

    /// The mean velocity over the longest straight run ending now.
    fn estimate(&self, world: World, tol: f32) -> Point {
        let Some(&(p, t)) = self.steps.back() else {
            return Point::default();
        };
        let tol = f64::from(tol.max(1e-3));
        // Offsets from the newest step, and times before it.
        let back: Vec<((f64, f64), f64)> = self
            .steps
            .iter()
            .map(|&(q, tq)| (world.delta(p, q), t.since(tq) as f64))
            .collect();
        for (j, &((xj, yj), dtj)) in back.iter().enumerate() {
            if dtj <= 0.0 {
                break;
            }
            // Velocity from step j to now; every step between must lie on
            // that line at that speed.
            let (vx, vy) = (-xj / dtj, -yj / dtj);
            let straight = back[j + 1..].iter().all(|&((x, y), dt)| {
                let (ex, ey) = (xj + vx * (dtj - dt) - x, yj + vy * (dtj - dt) - y);
                ex * ex + ey * ey <= tol * tol
            });
            if straight {
                return Point::new((vx * 1000.0) as f32, (vy * 1000.0) as f32);
            }
        }
        Point::default()
    }

    /// The velocity at `now`: zero once no step came for twice the last
    /// step interval (the peer stopped calling `move_to`).
    fn vel(&self, now: Millis) -> Point {
        match self.steps.back() {
            Some(&(_, t)) if now.since(t) <= (2 * self.step_ms).max(50) => self.vel,
            _ => Point::default(),
        }
    }

    /// Forgets the velocity (a teleport).
    pub(super) fn reset(&mut self) {
        self.steps.clear();
        self.vel = Point::default();
    }
}

impl Peer {
    /// The avatar stepped to `pos` (not a teleport): estimate the velocity,
    /// and announce if the neighbours' extrapolation is now off by more than
    /// the tolerance (judged at steps only: between steps the avatar stands
    /// where its last step put it).
    pub(super) fn step_to(&mut self, pos: Point, now: Millis) {
        let (world, jump, eps) = (
            self.config.world,
            self.config.teleport_distance,
            self.config.epsilon,
        );
        self.own.observe(world, pos, now, jump, eps / 4.0);
        self.me.pos = pos;
        // A tolerance of 0 announces every step.
        let off = eps <= 0.0
            || self.own.sent.is_none_or(|sent| {
                world.distance(sent.predict(world, now, u64::MAX), pos) > f64::from(eps)
            });
        if off {
            self.announce(self.own.vel(now), now);
        } else {
            self.announce_if_due(now);
        }
    }

    /// Announces a stop (twice), and a moving peer's motion every
    /// `motion_refresh_ms`.
    fn announce_if_due(&mut self, now: Millis) {
        let Some(sent) = self.own.sent else {
            return;
        };
        let vel = self.own.vel(now);
        let stopped = sent.moving() && vel == Point::default();
        let refresh = sent.moving() && now.since(sent.at) >= self.config.motion_refresh_ms;
        let repeat = self.own.repeat_stop && now.since(sent.at) >= self.config.motion_ms;
        if stopped || refresh || repeat {
            self.announce(vel, now);
        }
    }

    /// Tells `to` alone our current motion (the last sequence number): a
    /// cheap first word to a peer we were introduced to.
    pub(super) fn send_motion(&mut self, to: PeerId, now: Millis) {
        let vel = self.own.sent.map_or(Point::default(), |s| s.vel);
        let msg = Message::Move {
            inc: self.config.incarnation,
            seq: self.seq,
            pos: self.me.pos,
            vel,
        };
        self.send(to, msg, now);
    }

    /// Tells every kept peer our position and velocity, with the next
    /// sequence number.
    pub(super) fn announce(&mut self, vel: Point, now: Millis) {
        let pos = self.me.pos;
        self.own.repeat_stop = self
            .own
            .sent
            .is_some_and(|sent| sent.moving() && vel == Point::default());
        self.own.sent = Some(Motion { pos, vel, at: now });
        self.seq = self.seq.wrapping_add(1);
        self.stats.moves_announced += 1;
        let msg = Message::Move {
            inc: self.config.incarnation,
            seq: self.seq,
            pos,
            vel,
        };
        self.broadcast(&msg, now);
    }

    /// The motion round: our own announcement checked, then every belief
    /// about a moving peer advanced to now, with pair discovery on it.
    pub(super) fn motion_round(&mut self, now: Millis) {
        if self.state == State::Left {
            return;
        }
        if self.is_joined() {
            self.announce_if_due(now);
        }
        let world = self.config.world;
        let max_ms = 2 * self.config.motion_refresh_ms;
        let mut advanced = Vec::new();
        for k in self.kept.values_mut() {
            // A belief a move corrected since the last round is judged from
            // where it was then.
            let old = k.round_old.take().unwrap_or(k.info.pos);
            if k.motion.moving() {
                k.info.pos = k.motion.predict(world, now, max_ms);
            }
            if k.info.pos != old {
                advanced.push((k.info.id, old, k.info.radius, k.info.pos));
            }
        }
        if advanced.is_empty() {
            return;
        }
        self.mark_dirty(now);
        // The table iterates in id order: `moved` is sorted.
        let moved: Vec<(PeerId, Point)> = advanced.iter().map(|a| (a.0, a.1)).collect();
        let mut views = self.pair_views(now, &moved);
        // Movers and rows are both in id order: one walk finds each
        // mover's place among the rows.
        let mut lo = 0;
        for &(id, old, r, pos) in &advanced {
            lo = views.rows_below(lo, &id);
            self.tell_pairs(now, id, (old, pos), self.reach(r), (&mut views, lo));
        }
    }

    /// Where we believe kept peer `k` is at `now`.
    pub(super) fn believed(&self, k: &Known, now: Millis) -> Point {
        if k.motion.moving() {
            let max_ms = 2 * self.config.motion_refresh_ms;
            k.motion.predict(self.config.world, now, max_ms)
        } else {
            k.info.pos
        }
    }

    /// Arms the next motion round.
    pub(super) fn next_motion_round(&mut self, now: Millis) {
        self.timers
            .set(Timer::Motion, now.plus(self.config.motion_ms.max(1)));
    }
}

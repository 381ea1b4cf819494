//! The world's dynamics the simulator applies each tick: the initial joins,
//! churn, walking and teleports, and the partition that cuts links.

use super::{MERGE_PROBE_TICKS, PLAZA_RADIUS, Sim, TELEPORT_SETTLE_MS};
use crate::geometry::Point;
use crate::mobility::{Mobility, Walker, random_point};

impl Sim {
    /// Drains a peer's transmits and events, and re-arms its timer.
    /// Counts the teleported peers that, 2 s after the jump, are not part of
    /// the world or have no enclosing neighbour.
    pub(super) fn check_teleports(&mut self) {
        while let Some(&(slot, at)) = self.teleport_checks.front() {
            if at > self.now {
                break;
            }
            self.teleport_checks.pop_front();
            // A peer that jumped again within the 2 s is judged on its last
            // jump, by that jump's own check.
            if self.teleport_checks.iter().any(|&(s, _)| s == slot) {
                continue;
            }
            let s = &self.slots[slot];
            if s.alive && !(s.peer.is_joined() && s.peer.kept().any(|(_, _, enc)| enc)) {
                self.teleports_unsettled += 1;
            }
        }
    }

    /// Whether the partition separates the two peers now.
    pub(super) fn cut_off(&self, a: usize, b: usize) -> bool {
        let Some((from, to)) = self.cfg.partition else {
            return false;
        };
        let half = self.world.width / 2.0;
        let side = |i: usize| self.slots[i].peer.info().pos.x < half;
        (from..to).contains(&self.tick) && side(a) != side(b)
    }

    pub(super) fn initial_joins(&mut self) {
        if self.pending_joins == 0 {
            return;
        }
        let n = if self.cfg.joins_per_tick == 0 {
            self.pending_joins
        } else {
            self.cfg.joins_per_tick.min(self.pending_joins)
        };
        for _ in 0..n {
            let pos = random_point(self.world, &mut self.rng);
            self.spawn(pos);
            self.pending_joins -= 1;
        }
    }

    pub(super) fn churn(&mut self) {
        if self.cfg.churn <= 0.0 || self.pending_joins > 0 {
            return;
        }
        let n = self.slots.len();
        let mut leavers = Vec::new();
        for i in 0..n {
            if self.slots[i].alive
                && self.slots[i].peer.is_joined()
                && self.rng.f64() < self.cfg.churn
            {
                leavers.push((i, self.rng.f64() < 0.5));
            }
        }
        for (i, crash) in leavers {
            let id = self.slots[i].peer.id();
            if crash {
                self.crash(&id);
            } else {
                self.leave(&id);
            }
            let pos = random_point(self.world, &mut self.rng);
            self.spawn(pos);
        }
    }

    /// Two worlds: at the merge tick, a peer of the first is given a peer
    /// of the second; it probes through it then and every
    /// `MERGE_PROBE_TICKS` while both live.
    pub(super) fn merge_probe(&mut self) {
        let Some(at) = self.cfg.merge_at else {
            return;
        };
        if self.tick == at {
            let joined = |w: u8| {
                self.slots
                    .iter()
                    .find(|s| s.alive && s.born_in == w && s.peer.is_joined())
                    .map(|s| s.peer.id())
            };
            self.merge_link = joined(0).zip(joined(1));
        }
        if self.tick < at || !(self.tick - at).is_multiple_of(MERGE_PROBE_TICKS) {
            return;
        }
        if let Some((prober, via)) = self.merge_link
            && self.peer(&via).is_some()
            && let Some(&i) = self.by_id.get(&prober)
            && self.slots[i].alive
        {
            self.slots[i].peer.probe_through(via, self.now);
            self.flush(i);
        }
    }

    /// A random spot in the plaza (uniform over its disk).
    pub(super) fn plaza_spot(&mut self) -> Point {
        let centre = Point::new(self.world.width / 2.0, self.world.height / 2.0);
        let r = PLAZA_RADIUS as f64 * self.rng.f64().sqrt();
        let a = std::f64::consts::TAU * self.rng.f64();
        Point::new(
            centre.x + (r * a.cos()) as f32,
            centre.y + (r * a.sin()) as f32,
        )
    }

    pub(super) fn walk(&mut self) {
        if self.cfg.speed <= 0.0 {
            return;
        }
        let still = matches!(self.cfg.mobility, Mobility::Still);
        for i in 0..self.slots.len() {
            if !self.slots[i].alive || !self.slots[i].peer.is_joined() {
                continue;
            }
            if let Some(spot) = self.slots[i].plaza {
                // Straight to its spot in the plaza, then stay.
                let at = self.slots[i].peer.info().pos;
                let (dx, dy) = (f64::from(spot.x - at.x), f64::from(spot.y - at.y));
                let d = dx.hypot(dy);
                if d == 0.0 {
                    continue;
                }
                let k = (self.cfg.speed / d).min(1.0);
                let pos = if k >= 1.0 {
                    spot
                } else {
                    Point::new(at.x + (dx * k) as f32, at.y + (dy * k) as f32)
                };
                self.slots[i].peer.move_to(pos, self.now);
                self.flush(i);
                continue;
            }
            if still {
                continue;
            }
            let pos = if self.cfg.teleport > 0.0 && self.rng.f64() < self.cfg.teleport {
                let to = random_point(self.world, &mut self.rng);
                self.slots[i].walker = Walker::new(to);
                self.teleports += 1;
                self.teleport_checks
                    .push_back((i, self.now.plus(TELEPORT_SETTLE_MS)));
                to
            } else {
                self.slots[i].walker.step(
                    self.world,
                    self.cfg.mobility,
                    &self.hot,
                    self.cfg.speed,
                    &mut self.rng,
                )
            };
            self.slots[i].peer.move_to(pos, self.now);
            self.flush(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Millis;
    use crate::sim::SimConfig;

    /// Two peers 50 apart, settled, and a queued 2 s check for the first.
    fn settled_pair() -> Sim {
        let mut sim = Sim::new(SimConfig {
            peers: 0,
            ticks: 100,
            ..SimConfig::default()
        });
        sim.spawn(Point::new(100.0, 100.0));
        sim.spawn(Point::new(150.0, 100.0));
        sim.run_ticks(20);
        sim
    }

    #[test]
    fn a_teleporter_still_joining_at_its_check_is_unsettled() {
        let mut sim = settled_pair();
        let other = sim.slots[1].peer.id();
        let now = sim.now;
        sim.slots[0].peer.join(other, now);
        sim.teleport_checks.push_back((0, now));
        sim.check_teleports();
        assert_eq!(sim.teleports_unsettled, 1);
    }

    #[test]
    fn a_teleporter_that_jumped_again_is_judged_on_its_last_jump_only() {
        let mut sim = settled_pair();
        let other = sim.slots[1].peer.id();
        let now = sim.now;
        // Its first jump's check comes while it joins at its second place.
        sim.slots[0].peer.join(other, now);
        sim.teleport_checks.push_back((0, now));
        sim.teleport_checks.push_back((0, Millis(now.0 + 1_000)));
        sim.check_teleports();
        assert_eq!(sim.teleports_unsettled, 0);
        assert_eq!(sim.teleport_checks.len(), 1, "the last jump's check waits");
    }
}

//! Routes and long links in the simulator (`--lookups P`, `--long-links K`):
//! each counted peer routes to a random point with probability P per tick;
//! the report says how many hops the routes took, what share ended at one
//! of the point's true holders (the [`OBJECT_HOLDERS`] live peers nearest
//! to it as the route ends: any of them can answer for a record there), and
//! how the long links look at the end.

use std::collections::HashMap;

use super::Sim;
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::RouteAsk;
use crate::mobility::random_point;
use crate::peer::{OBJECT_HOLDERS, ROUTE_REPLY_WINDOW_MS};

/// The routes sent in the measured window.
#[derive(Debug, Default)]
pub(super) struct RouteLog {
    /// (origin, token) of each route sent and not yet answered: its point
    /// and when it was sent.
    out: HashMap<(PeerId, u64), (Point, Millis, bool)>,
    /// Routes answered.
    answered: u64,
    /// Routes that reached their end (answered or not).
    ended: u64,
    /// Hops of each answered route.
    hops: Vec<u16>,
    /// Answers that named the true owner.
    right: u64,
}

/// What the report says of routes and links.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RouteFigures {
    pub hops_mean: Option<f64>,
    pub hops_p99: Option<f64>,
    pub success: Option<f64>,
    pub links_mean: f64,
    pub links_dead: u64,
    pub incoming_max: usize,
    pub len_log_ks: Option<f64>,
}

impl Sim {
    /// This tick's routes.
    pub(super) fn lookups(&mut self) {
        if self.cfg.lookups <= 0.0 || self.tick < self.measure_from() {
            return;
        }
        let now = self.now;
        for i in 0..self.slots.len() {
            if !self.slots[i].counted(now) || self.rng.f64() >= self.cfg.lookups {
                continue;
            }
            let target = random_point(self.world, &mut self.rng);
            let token = self.slots[i].peer.route(now, target);
            let origin = self.slots[i].peer.id();
            self.routes
                .out
                .insert((origin, token), (target, now, false));
            self.flush(i);
        }
    }

    /// `end` answers a route of `origin`'s: judged now, where the peers
    /// are as the route ends (not a latency later, when the answer lands).
    pub(super) fn route_ended(&mut self, end: PeerId, origin: PeerId, token: u64) {
        let Some((target, _, judged)) = self.routes.out.get_mut(&(origin, token)) else {
            return;
        };
        if *judged {
            return;
        }
        *judged = true;
        let target = *target;
        self.routes.ended += 1;
        if self.among_nearest(target, end, OBJECT_HOLDERS) {
            self.routes.right += 1;
        }
    }

    /// A route of `origin`'s was answered.
    pub(super) fn routed(
        &mut self,
        origin: PeerId,
        token: u64,
        ask: RouteAsk,
        hops: u16,
        owner: PeerId,
    ) {
        if ask != RouteAsk::Find {
            return;
        }
        let Some((target, _, judged)) = self.routes.out.remove(&(origin, token)) else {
            return;
        };
        self.routes.answered += 1;
        self.routes.hops.push(hops);
        // Answered at once by its origin (0 hops): judged here.
        if !judged {
            self.routes.ended += 1;
            if self.among_nearest(target, owner, OBJECT_HOLDERS) {
                self.routes.right += 1;
            }
        }
    }

    /// Whether `who` is among the `n` live peers nearest to `p`.
    fn among_nearest(&self, p: Point, who: PeerId, n: usize) -> bool {
        let Some(&i) = self.by_id.get(&who) else {
            return false;
        };
        if !self.slots[i].alive {
            return false;
        }
        let mine = self.world.distance_sq(self.slots[i].peer.info().pos, p);
        let nearer = self
            .slots
            .iter()
            .filter(|s| s.alive && s.peer.is_joined() && s.peer.id() != who)
            .filter(|s| self.world.distance_sq(s.peer.info().pos, p) < mine)
            .count();
        nearer < n
    }

    /// The figures of routes and links.
    pub(super) fn route_figures(&self) -> RouteFigures {
        let log = &self.routes;
        let mut f = RouteFigures::default();
        // A route that never reached its end fails once its origin has
        // given up on it (younger ones are not judged, nor those of an
        // origin that has left since).
        let lost = log
            .out
            .iter()
            .filter(|((origin, _), (_, at, ended))| {
                !ended
                    && self.now.since(*at) > ROUTE_REPLY_WINDOW_MS
                    && self.by_id.get(origin).is_some_and(|&i| self.slots[i].alive)
            })
            .count() as u64;
        let judged = log.ended + lost;
        if judged > 0 {
            let mut h = log.hops.clone();
            h.sort_unstable();
            if !h.is_empty() {
                f.hops_mean = Some(h.iter().map(|&x| f64::from(x)).sum::<f64>() / h.len() as f64);
                let at = ((h.len() as f64 * 0.99).ceil() as usize).clamp(1, h.len()) - 1;
                f.hops_p99 = Some(f64::from(h[at]));
            }
            f.success = Some(log.right as f64 / judged as f64);
        }
        let cfg = &self.cfg.peer;
        if cfg.long_links == 0 {
            return f;
        }
        let lo = f64::from(cfg.radius.max(1.0)).ln();
        let hi = (f64::from(cfg.world.width.min(cfg.world.height)) / 2.0).ln();
        let mut units = Vec::new();
        let mut peers = 0usize;
        let mut links = 0usize;
        for s in self.slots.iter().filter(|s| s.alive && s.peer.is_joined()) {
            peers += 1;
            f.incoming_max = f.incoming_max.max(s.peer.incoming_links());
            for (far, _) in s.peer.long_links() {
                match self.by_id.get(&far).map(|&j| &self.slots[j]) {
                    Some(t) if t.alive => {
                        links += 1;
                        let d = self.world.distance(s.peer.info().pos, t.peer.info().pos);
                        if hi > lo && d > 0.0 {
                            units.push(((d.ln() - lo) / (hi - lo)).clamp(0.0, 1.0));
                        }
                    }
                    _ => f.links_dead += 1,
                }
            }
        }
        f.links_mean = links as f64 / peers.max(1) as f64;
        f.len_log_ks = ks_from_uniform(units);
        f
    }
}

/// The Kolmogorov–Smirnov distance of a sample in [0, 1] from the uniform
/// distribution (`None` for an empty sample).
pub(crate) fn ks_from_uniform(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    let d = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| (x - i as f64 / n).max((i + 1) as f64 / n - x))
        .fold(0.0, f64::max);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::ks_from_uniform;

    #[test]
    fn the_ks_distance_is_small_for_a_uniform_sample_and_large_for_a_lump() {
        let uniform: Vec<f64> = (0..1000).map(|i| (f64::from(i) + 0.5) / 1000.0).collect();
        assert!(ks_from_uniform(uniform).unwrap() < 0.01);
        let lump = vec![0.9; 100];
        assert!(ks_from_uniform(lump).unwrap() > 0.85);
        assert_eq!(ks_from_uniform(Vec::new()), None);
    }
}

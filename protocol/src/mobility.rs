//! Mobility models for the simulator: random waypoint and hot-spot clusters.

use crate::geometry::{Point, World};
use crate::sim::Rng;

/// How simulated avatars move.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mobility {
    /// Nobody moves.
    Still,
    /// Random waypoint: walk at `speed` to a uniform random point, pick anew.
    RandomWaypoint,
    /// Like random waypoint, but waypoints are drawn near one of `spots`
    /// hot spots (Gaussian, σ = `spread`) most of the time.
    HotSpots {
        /// Number of hot spots.
        spots: usize,
        /// Spread around each spot, in world units.
        spread: f32,
    },
}

/// Per-avatar mobility state.
#[derive(Clone, Debug)]
pub struct Walker {
    /// Current (true) position.
    pub pos: Point,
    target: Point,
}

impl Walker {
    /// A walker standing at `pos`.
    pub fn new(pos: Point) -> Self {
        Self { pos, target: pos }
    }

    /// Advances by `step` units toward the waypoint, choosing a new one when
    /// reached. Returns the new position.
    pub fn step(
        &mut self,
        world: World,
        mobility: Mobility,
        hot: &[Point],
        step: f64,
        rng: &mut Rng,
    ) -> Point {
        if matches!(mobility, Mobility::Still) || step <= 0.0 {
            return self.pos;
        }
        let (dx, dy) = world.delta(self.pos, self.target);
        let d = dx.hypot(dy);
        if d <= step {
            self.pos = self.target;
            self.target = pick_target(world, mobility, hot, rng);
        } else {
            let f = step / d;
            self.pos = world.wrap(Point::new(
                (f64::from(self.pos.x) + dx * f) as f32,
                (f64::from(self.pos.y) + dy * f) as f32,
            ));
        }
        self.pos
    }
}

/// Draws a waypoint.
pub fn pick_target(world: World, mobility: Mobility, hot: &[Point], rng: &mut Rng) -> Point {
    match mobility {
        Mobility::HotSpots { spread, .. } if !hot.is_empty() && rng.f64() < 0.8 => {
            let c = hot[rng.below(hot.len() as u64) as usize];
            let (gx, gy) = rng.gaussian2();
            world.wrap(Point::new(
                (f64::from(c.x) + gx * f64::from(spread)) as f32,
                (f64::from(c.y) + gy * f64::from(spread)) as f32,
            ))
        }
        _ => random_point(world, rng),
    }
}

/// A uniform random point of the world.
pub fn random_point(world: World, rng: &mut Rng) -> Point {
    world.wrap(Point::new(
        (rng.f64() * f64::from(world.width)) as f32,
        (rng.f64() * f64::from(world.height)) as f32,
    ))
}

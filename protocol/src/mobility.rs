//! Mobility models for the simulator: random waypoint, hot-spot clusters,
//! a walker that turns every tick and one that stops and goes.

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
    /// Walks at `speed` and turns every tick: the heading changes by a
    /// uniform angle in ±`max_turn` radians (a random walk of the heading).
    Turning {
        /// Largest change of heading per tick, in radians.
        max_turn: f32,
    },
    /// Random waypoint that stops and goes: each tick a walking avatar stops
    /// with probability `p_stop`, and a stopped one walks on with `p_go`.
    StopAndGo {
        /// Per-tick chance that a walking avatar stops.
        p_stop: f32,
        /// Per-tick chance that a stopped avatar walks on.
        p_go: f32,
    },
}

impl Mobility {
    /// The turning walker with its default (±30° per tick).
    pub const TURNING: Self = Self::Turning {
        max_turn: std::f32::consts::PI / 6.0,
    };
    /// The stop-and-go walker with its default: walks 2 s, stops 1 s on
    /// average.
    pub const STOP_AND_GO: Self = Self::StopAndGo {
        p_stop: 0.05,
        p_go: 0.1,
    };
}

/// Per-avatar mobility state.
#[derive(Clone, Debug)]
pub struct Walker {
    /// Current (true) position.
    pub pos: Point,
    target: Point,
    /// Heading of the turning walker (radians), drawn at its first step.
    heading: Option<f64>,
    /// The stop-and-go walker is standing.
    stopped: bool,
}

impl Walker {
    /// A walker standing at `pos`.
    pub fn new(pos: Point) -> Self {
        Self {
            pos,
            target: pos,
            heading: None,
            stopped: false,
        }
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
        match mobility {
            Mobility::Still => return self.pos,
            _ if step <= 0.0 => return self.pos,
            Mobility::Turning { max_turn } => {
                let turn = (rng.f64() * 2.0 - 1.0) * f64::from(max_turn);
                let h = match self.heading {
                    Some(h) => h + turn,
                    None => rng.f64() * std::f64::consts::TAU,
                };
                self.heading = Some(h);
                self.pos = world.wrap(Point::new(
                    (f64::from(self.pos.x) + step * h.cos()) as f32,
                    (f64::from(self.pos.y) + step * h.sin()) as f32,
                ));
                return self.pos;
            }
            Mobility::StopAndGo { p_stop, p_go } => {
                let p = if self.stopped { p_go } else { p_stop };
                if rng.f64() < f64::from(p) {
                    self.stopped = !self.stopped;
                }
                if self.stopped {
                    return self.pos;
                }
            }
            _ => {}
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

//! Range: who counts as near.
//!
//! Guarantees: the awareness relation is symmetric in the pair and uses the
//! larger of the two radii, plus the detection buffer (`Config::buffer`), so
//! a peer is learned about before it crosses the radius and both sides of a
//! pair agree on whether they must keep each other. Distances are on the
//! torus. The radius itself is fixed (`Config::radius`); an adaptive radius
//! for crowds belongs here when it comes.

use super::Peer;
use crate::geometry::Point;

impl Peer {
    /// Whether a peer at `b` (radius `rb`) is within range of one at `a`
    /// (radius `ra`), either way, buffer included.
    pub(super) fn in_range(&self, a: Point, ra: f32, b: Point, rb: f32) -> bool {
        let d2 = self.config.world.distance_sq(a, b);
        let r = f64::from(ra.max(rb) + self.config.buffer);
        d2 <= r * r
    }
}

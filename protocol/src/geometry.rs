//! Torus geometry: wrapping, shortest deltas, distances and angular gaps.
//!
//! Positions are `f32` (they travel on the wire as such); every computation
//! on them is done in `f64`, where the difference of two `f32` values is
//! exact, so every peer derives bit-identical peer-centred coordinates.

use serde::{Deserialize, Serialize};

/// A position in the world, in world units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal coordinate, in `[0, width)` once wrapped.
    pub x: f32,
    /// Vertical coordinate, in `[0, height)` once wrapped.
    pub y: f32,
}

impl Point {
    /// A point from its coordinates.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    /// Whether both coordinates are finite (no NaN, no infinity).
    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

/// The size of the torus world.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct World {
    /// Width in world units.
    pub width: f32,
    /// Height in world units.
    pub height: f32,
}

impl Default for World {
    fn default() -> Self {
        Self::new(10_000.0, 10_000.0)
    }
}

/// Wraps a coordinate into `[0, size)` (never -0.0).
pub(crate) fn wrap_coord(v: f64, size: f64) -> f64 {
    if (0.0..size).contains(&v) {
        return v + 0.0; // already inside (and -0 made +0)
    }
    let w = v.rem_euclid(size);
    // rem_euclid can return `size` itself for tiny negative inputs.
    if w >= size { 0.0 } else { w + 0.0 }
}

/// The shortest signed offset `to - from` on a circle of length `size`.
fn delta_coord(from: f32, to: f32, size: f32) -> f64 {
    let size = f64::from(size);
    let mut d = f64::from(to) - f64::from(from);
    let half = size / 2.0;
    if d > half {
        d -= size;
    } else if d < -half {
        d += size;
    }
    // Inputs outside [0, size) can need more than one wrap.
    if d.abs() > half {
        d = (d + half).rem_euclid(size) - half;
    }
    d
}

impl World {
    /// A world of the given size. Sizes must be positive and finite.
    pub const fn new(width: f32, height: f32) -> Self {
        Self { width, height }
    }

    /// Whether the size is usable (positive and finite).
    pub fn is_valid(self) -> bool {
        self.width.is_finite() && self.height.is_finite() && self.width > 0.0 && self.height > 0.0
    }

    /// The point wrapped into `[0, w) × [0, h)`.
    pub fn wrap(self, p: Point) -> Point {
        let x = wrap_coord(f64::from(p.x), f64::from(self.width)) as f32;
        let y = wrap_coord(f64::from(p.y), f64::from(self.height)) as f32;
        // Rounding to f32 can land exactly on the upper bound.
        Point::new(
            if x >= self.width { 0.0 } else { x },
            if y >= self.height { 0.0 } else { y },
        )
    }

    /// The shortest offset from `from` to `to` on the torus (nearest image).
    pub fn delta(self, from: Point, to: Point) -> (f64, f64) {
        (
            delta_coord(from.x, to.x, self.width),
            delta_coord(from.y, to.y, self.height),
        )
    }

    /// Torus distance between two points.
    pub fn distance(self, a: Point, b: Point) -> f64 {
        let (dx, dy) = self.delta(a, b);
        dx.hypot(dy)
    }

    /// Squared torus distance between two points.
    pub fn distance_sq(self, a: Point, b: Point) -> f64 {
        let (dx, dy) = self.delta(a, b);
        dx * dx + dy * dy
    }
}

/// Largest gap between sorted angles; returns the gap and the indices (in the
/// sorted order) of the two angles bounding it.
pub(crate) fn max_gap_of_angles(angles: &mut [f64]) -> (f64, usize, usize) {
    use std::f64::consts::TAU;
    if angles.len() < 2 {
        return (TAU, 0, 0);
    }
    angles.sort_by(f64::total_cmp);
    let n = angles.len();
    let mut best = (angles[0] + TAU - angles[n - 1], n - 1, 0);
    for i in 1..n {
        let g = angles[i] - angles[i - 1];
        if g > best.0 {
            best = (g, i - 1, i);
        }
    }
    best
}

/// A quick sufficient test that the origin lies strictly inside the convex
/// hull of the offsets, without trigonometry: sorted by a monotone
/// pseudo-angle, every turn from one direction to the next is strictly
/// counter-clockwise and under a half turn. `false` means "not sure": ask
/// [`origin_strictly_inside_hull`].
pub fn origin_inside_by_turns(offsets: &[(f64, f64)]) -> bool {
    // The "diamond angle": in [0, 4), increasing with the true angle.
    fn pseudo_angle((x, y): (f64, f64)) -> f64 {
        let p = y / (x.abs() + y.abs());
        if x >= 0.0 {
            if y >= 0.0 { p } else { 4.0 + p }
        } else {
            2.0 - p
        }
    }
    let mut dirs: Vec<(f64, (f64, f64))> = offsets
        .iter()
        .filter(|&&(x, y)| x != 0.0 || y != 0.0)
        .map(|&o| (pseudo_angle(o), o))
        .collect();
    if dirs.len() < 3 {
        return false;
    }
    dirs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut turned = false;
    for (i, &(_, a)) in dirs.iter().enumerate() {
        let b = dirs[(i + 1) % dirs.len()].1;
        let cross = a.0 * b.1 - a.1 * b.0;
        let dot = a.0 * b.0 + a.1 * b.1;
        if cross > 0.0 {
            turned = true;
        } else if cross < 0.0 || dot <= 0.0 {
            return false; // a half turn or more between two directions
        }
    }
    turned
}

/// Whether the origin lies strictly inside the convex hull of the offsets,
/// decided with exact orientation predicates (not angles).
///
/// The origin is strictly inside exactly when no closed half-plane through the
/// origin contains all offsets, i.e. when there is no direction `d` with every
/// offset on the non-negative side of the line through the origin normal to d.
/// Checked by brute force over candidate separating lines (each through the
/// origin and an offset); used by tests as a reference and by the checker.
pub fn origin_strictly_inside_hull(offsets: &[(f64, f64)]) -> bool {
    let pts: Vec<(f64, f64)> = offsets
        .iter()
        .copied()
        .filter(|&(x, y)| x != 0.0 || y != 0.0)
        .collect();
    if pts.len() < 3 {
        return false;
    }
    // The origin is on or outside the hull iff some line through the origin
    // and one of the points has all points on one closed side of it.
    for &a in &pts {
        let mut left = false;
        let mut right = false;
        for &b in &pts {
            let o = robust::orient2d(
                robust::Coord { x: 0.0, y: 0.0 },
                robust::Coord { x: a.0, y: a.1 },
                robust::Coord { x: b.0, y: b.1 },
            );
            if o > 0.0 {
                left = true;
            } else if o < 0.0 {
                right = true;
            }
        }
        if !(left && right) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The largest angular gap (radians, in `[0, 2π]`) between consecutive
    /// directions from the origin to the given offsets. Offsets at the origin are
    /// ignored; with fewer than two directions the gap is `2π`.
    ///
    /// A point is strictly inside the convex hull of a set of points exactly when
    /// the largest gap of the directions to them is below π.
    fn max_angular_gap(offsets: impl IntoIterator<Item = (f64, f64)>) -> f64 {
        let mut angles: Vec<f64> = offsets
            .into_iter()
            .filter(|&(x, y)| x != 0.0 || y != 0.0)
            .map(|(x, y)| y.atan2(x))
            .collect();
        max_gap_of_angles(&mut angles).0
    }

    #[test]
    fn delta_takes_the_short_way_across_the_seam() {
        let w = World::new(1000.0, 1000.0);
        let (dx, dy) = w.delta(Point::new(990.0, 5.0), Point::new(10.0, 995.0));
        assert_eq!((dx, dy), (20.0, -10.0));
        assert!(
            (w.distance(Point::new(0.0, 0.0), Point::new(999.0, 999.0)) - 2f64.sqrt()).abs() < 1e-9
        );
    }

    #[test]
    fn wrap_handles_negative_and_large_values() {
        let w = World::new(100.0, 50.0);
        assert_eq!(w.wrap(Point::new(-1.0, 51.0)), Point::new(99.0, 1.0));
        assert_eq!(w.wrap(Point::new(-1e-9, 0.0)).x, 0.0);
        assert_eq!(w.wrap(Point::new(250.0, -100.0)), Point::new(50.0, 0.0));
    }

    #[test]
    fn gap_of_square_is_a_quarter_turn() {
        let g = max_angular_gap([(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)]);
        assert!((g - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!(origin_strictly_inside_hull(&[
            (1.0, 0.0),
            (0.0, 1.0),
            (-1.0, 0.0),
            (0.0, -1.0)
        ]));
        assert!(!origin_strictly_inside_hull(&[
            (1.0, 0.0),
            (0.0, 1.0),
            (-1.0, 0.0)
        ]));
    }

    fn coord() -> impl Strategy<Value = f32> {
        prop_oneof![(-3000i32..3000).prop_map(|v| v as f32), -3000.0f32..3000.0]
    }

    proptest! {
        #[test]
        fn wrapped_points_are_in_range(x in coord(), y in coord()) {
            let w = World::new(1200.0, 700.0);
            let p = w.wrap(Point::new(x, y));
            prop_assert!(p.x >= 0.0 && p.x < 1200.0 && p.y >= 0.0 && p.y < 700.0);
        }

        #[test]
        fn distance_is_symmetric_and_bounded(a in (coord(), coord()), b in (coord(), coord())) {
            let w = World::new(1200.0, 700.0);
            let (a, b) = (Point::new(a.0, a.1), Point::new(b.0, b.1));
            let d1 = w.distance(a, b);
            let d2 = w.distance(b, a);
            prop_assert!((d1 - d2).abs() < 1e-9);
            prop_assert!(d1 <= (600.0f64.powi(2) + 350.0f64.powi(2)).sqrt() + 1e-6);
            // Brute force over the 9 images agrees on the minimum.
            let mut best = f64::INFINITY;
            let (wa, wb) = (w.wrap(a), w.wrap(b));
            for i in -1..=1 {
                for j in -1..=1 {
                    let dx = f64::from(wb.x) + f64::from(i) * 1200.0 - f64::from(wa.x);
                    let dy = f64::from(wb.y) + f64::from(j) * 700.0 - f64::from(wa.y);
                    best = best.min(dx.hypot(dy));
                }
            }
            prop_assert!((w.distance(wa, wb) - best).abs() < 1e-6);
        }

        #[test]
        fn hull_test_agrees_with_angular_gap(pts in prop::collection::vec((-50i32..50, -50i32..50), 0..12)) {
            let offs: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (f64::from(x), f64::from(y))).collect();
            let inside = origin_strictly_inside_hull(&offs);
            let gap = max_angular_gap(offs.iter().copied());
            // Away from the π boundary the two must agree.
            if (gap - std::f64::consts::PI).abs() > 1e-9 {
                prop_assert_eq!(inside, gap < std::f64::consts::PI);
            }
            // Whole-unit offsets: the quick test is exact too.
            prop_assert_eq!(origin_inside_by_turns(&offs), inside);
        }

        #[test]
        fn the_quick_hull_test_never_says_inside_wrongly(
            pts in prop::collection::vec((-50.0f64..50.0, -50.0f64..50.0), 0..40),
        ) {
            if origin_inside_by_turns(&pts) {
                prop_assert!(origin_strictly_inside_hull(&pts));
            }
        }
    }
}

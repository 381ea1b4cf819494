//! The Voronoi cell of one point, built directly: the other points are
//! inserted nearest first into the point's Delaunay star (the cyclic list of
//! its neighbours), and insertion stops once the next point lies beyond
//! twice the largest circumradius around the point, where no point can
//! change the cell any more. Each insertion asks, per Delaunay triangle
//! around the point, whether the new point lies in its circumcircle: a
//! float test against the circle decides when the point is clearly inside
//! or outside, and the exact predicate (`robust::incircle`) near the edge
//! and for flat triangles, so a peer's local view costs a sort and a few
//! dozen cheap tests instead of a triangulation of all it knows.
//!
//! The star answers only the common case. It gives up (`None`, and the
//! caller triangulates) when four points around the point are cocircular
//! or two share a spot (weak adjacency, where a triangulation must choose a
//! diagonal), when the known points do not surround the point, and when a
//! circumcircle around the point is not inside the world's box centred on
//! it (then periodic images could matter).

use super::Adjacency;

/// Twice the world's size: a virtual point this far away on each axis
/// bounds the first cell, and one still present at the end means the known
/// points do not surround the point.
const VIRTUAL_SCALE: f64 = 2.0;

/// The adjacency of `pts[0]` among `pts` (its local view, with every other
/// point at its nearest image in a `w` × `h` torus), or `None` when the
/// configuration needs the general path. The points as given are tried
/// first; when they do not surround `pts[0]` closely enough (a sparse
/// world), again with their periodic images and those of `pts[0]` itself.
pub(super) fn star_adjacency(pts: &[(f64, f64)], w: f64, h: f64) -> Option<Adjacency> {
    match star(pts, w, h, false) {
        Err(Retry) => star(pts, w, h, true).ok().flatten(),
        Ok(adj) => adj,
    }
}

/// The star could not prove its cell without periodic images.
struct Retry;

fn star(pts: &[(f64, f64)], w: f64, h: f64, images: bool) -> Result<Option<Adjacency>, Retry> {
    let n = pts.len();
    if n < 2 {
        return Ok(None);
    }
    let me = pts[0];
    // Candidate `c` is point `c / per`, at its image `c % per`.
    let per: u32 = if images { 9 } else { 1 };
    let image = |c: u32| -> (f64, f64) {
        let p = pts[(c / per) as usize];
        if images {
            let (dx, dy) = IMAGES[(c % per) as usize];
            (p.0 + dx * w, p.1 + dy * h)
        } else {
            p
        }
    };
    // Nearest first (squared distances are non-negative: their bits sort
    // as they do), ties by candidate.
    let d2 = |p: (f64, f64)| (p.0 - me.0).powi(2) + (p.1 - me.1).powi(2);
    let nc = n as u32 * per;
    let mut cands: Vec<(u64, u32)> = (per..nc)
        .chain(if images { 0..4 } else { 0..0 })
        .chain(if images { 5..9 } else { 0..0 })
        .map(|c| (d2(image(c)).to_bits(), c))
        .collect();
    cands.sort_unstable();

    // Four virtual points, counter-clockwise, after the candidates.
    let l = VIRTUAL_SCALE * w.max(h);
    let virt = [
        (me.0 + l, me.1),
        (me.0, me.1 + l),
        (me.0 - l, me.1),
        (me.0, me.1 - l),
    ];
    let at = |c: u32| -> (f64, f64) {
        if c < nc {
            image(c)
        } else {
            virt[(c - nc) as usize]
        }
    };
    let first_virtual = nc;
    let mut star: Vec<u32> = (first_virtual..first_virtual + 4).collect();
    // Where each star point is (the predicates ask for them again and again).
    let mut star_at: Vec<(f64, f64)> = star.iter().map(|&c| at(c)).collect();
    let mut killed: Vec<bool> = Vec::with_capacity(16);
    let mut next: Vec<u32> = Vec::with_capacity(16);
    let mut reach = f64::INFINITY;
    // Per triangle of the star, its circumcircle when float arithmetic can
    // be trusted with it (see `circles_of`).
    let mut circles: Vec<Option<(f64, f64, f64)>> = vec![None; star.len()];
    for &(bits, c) in &cands {
        let dist2 = f64::from_bits(bits);
        let pc = at(c);
        if dist2 == 0.0 {
            return Ok(None); // a point on our very spot
        }
        if dist2.sqrt() > reach * (1.0 + 1e-9) {
            break;
        }
        let k = star.len();
        killed.clear();
        let (cx, cy) = (pc.0 - me.0, pc.1 - me.1);
        for i in 0..k {
            // Clearly inside or outside a trusted circle: no exact
            // predicate needed.
            if let Some((ux, uy, r2)) = circles[i] {
                let d2 = (cx - ux).powi(2) + (cy - uy).powi(2);
                if d2 < r2 * (1.0 - CIRCLE_MARGIN) {
                    killed.push(true);
                    continue;
                }
                if d2 > r2 * (1.0 + CIRCLE_MARGIN) {
                    killed.push(false);
                    continue;
                }
            }
            let (a, b) = (star_at[i], star_at[(i + 1) % k]);
            let s = robust::incircle(coord(me), coord(a), coord(b), coord(pc));
            if s == 0.0 {
                return Ok(None); // cocircular: weak adjacency somewhere
            }
            killed.push(s > 0.0);
        }
        // The triangles whose circumcircle holds c form one run.
        let mut starts = (0..k).filter(|&i| killed[i] && !killed[(i + k - 1) % k]);
        let (Some(start), None) = (starts.next(), starts.next()) else {
            if killed.iter().any(|&x| x) {
                return Ok(None); // all killed, or not one run: give up
            }
            continue; // c does not touch the cell
        };
        let m = (0..k).take_while(|&j| killed[(start + j) % k]).count();
        // Neighbours star[start + 1 ..= start + m - 1] lose their edge; c
        // comes between star[start] and star[start + m].
        next.clear();
        next.extend((0..=k - m).map(|j| star[(start + m + j) % k]));
        next.push(c);
        std::mem::swap(&mut star, &mut next);
        star_at.clear();
        star_at.extend(star.iter().map(|&c| at(c)));
        reach = 2.0 * circles_of(me, &star_at, &mut circles);
    }
    if star.iter().any(|&i| i >= first_virtual) {
        return Err(Retry); // the points do not surround us
    }
    if images {
        // Every image left out lies at least 1.5 world sizes away.
        if reach >= 1.5 * w.min(h) {
            return Ok(None);
        }
    } else {
        // Every circumcircle around us inside the box of the world centred
        // on us: no other image of any point can fall in one.
        let k = star.len();
        for i in 0..k {
            let (ux, uy, r2) =
                circles[i].unwrap_or_else(|| circumcircle(me, star_at[i], star_at[(i + 1) % k]));
            let r = r2.sqrt();
            if !(ux.abs() + r < w / 2.0 && uy.abs() + r < h / 2.0) {
                return Err(Retry);
            }
        }
    }
    // Our own images bound the cell but are no neighbours.
    let fan: Vec<usize> = star
        .iter()
        .map(|&c| (c / per) as usize)
        .filter(|&i| i != 0)
        .collect();
    let mut strict = fan.clone();
    strict.sort_unstable();
    strict.dedup();
    Ok(Some(Adjacency {
        strict,
        weak: Vec::new(),
        fan,
        reach,
    }))
}

/// The nine periodic offsets, in world sizes; the fifth is the point itself.
const IMAGES: [(f64, f64); 9] = [
    (-1.0, -1.0),
    (-1.0, 0.0),
    (-1.0, 1.0),
    (0.0, -1.0),
    (0.0, 0.0),
    (0.0, 1.0),
    (1.0, -1.0),
    (1.0, 0.0),
    (1.0, 1.0),
];

fn coord(p: (f64, f64)) -> robust::Coord<f64> {
    robust::Coord { x: p.0, y: p.1 }
}

/// Centre (relative to `me`) and squared radius of the circle through
/// `me`, `a`, `b`.
fn circumcircle(me: (f64, f64), a: (f64, f64), b: (f64, f64)) -> (f64, f64, f64) {
    let (ax, ay) = (a.0 - me.0, a.1 - me.1);
    let (bx, by) = (b.0 - me.0, b.1 - me.1);
    let d = 2.0 * (ax * by - ay * bx);
    let (a2, b2) = (ax * ax + ay * ay, bx * bx + by * by);
    let ux = (by * a2 - ay * b2) / d;
    let uy = (ax * b2 - bx * a2) / d;
    (ux, uy, ux * ux + uy * uy)
}

/// How far from a float circumcircle's edge (as a share of its squared
/// radius) a point must lie for the float test to decide: the triangles
/// trusted are never flatter than a sine of 1e-6, where the centre's error
/// stays below 1e-9 of the radius.
const CIRCLE_MARGIN: f64 = 1e-7;

/// The largest circumradius of the star's triangles; and in `circles`, per
/// triangle, its circumcircle (centre relative to `me`, squared radius)
/// when the triangle is not too flat for the float circle to be trusted
/// (else `None`: always ask the exact predicate).
fn circles_of(
    me: (f64, f64),
    star_at: &[(f64, f64)],
    circles: &mut Vec<Option<(f64, f64, f64)>>,
) -> f64 {
    let k = star_at.len();
    circles.clear();
    let mut max_r2: f64 = 0.0;
    for i in 0..k {
        let (a, b) = (star_at[i], star_at[(i + 1) % k]);
        let circle = circumcircle(me, a, b);
        max_r2 = max_r2.max(circle.2);
        let (ax, ay) = (a.0 - me.0, a.1 - me.1);
        let (bx, by) = (b.0 - me.0, b.1 - me.1);
        let sine = (ax * by - ay * bx).abs() / ((ax * ax + ay * ay) * (bx * bx + by * by)).sqrt();
        let trusted = sine > 1e-6 && circle.2.is_finite();
        circles.push(trusted.then_some(circle));
    }
    max_r2.sqrt()
}

#[cfg(test)]
mod tests {
    use super::super::triangulated_local;
    use super::*;
    use crate::geometry::World;
    use proptest::prelude::*;

    /// The same cyclic sequence, whatever the starting point.
    fn same_cycle(a: &[usize], b: &[usize]) -> bool {
        a.len() == b.len()
            && (a.is_empty()
                || (0..b.len()).any(|r| (0..a.len()).all(|i| a[i] == b[(i + r) % b.len()])))
    }

    /// Points around a centre of a `size` world: the peer at the centre,
    /// the others where the strategy put them (or on a grid of `grid`).
    fn shifted(pts: &[(f32, f32)], size: f32, grid: f32) -> Vec<(f64, f64)> {
        let c = f64::from(size / 2.0);
        std::iter::once((c, c))
            .chain(pts.iter().map(|&(x, y)| {
                let snap = |v: f32| {
                    if grid > 0.0 {
                        (v / grid).round() * grid
                    } else {
                        v
                    }
                };
                (c + f64::from(snap(x)), c + f64::from(snap(y)))
            }))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whenever the star answers, it answers what the triangulation
        /// does: the same neighbours, in the same cyclic order, the same
        /// reach.
        #[test]
        fn the_star_agrees_with_the_triangulation(
            pts in prop::collection::vec((-150.0f32..150.0, -150.0f32..150.0), 3..90),
            grid in prop::sample::select(vec![0.0f32, 0.0, 1.0, 10.0]),
            size in prop::sample::select(vec![300.0f32, 400.0, 1200.0]),
        ) {
            let s = shifted(&pts, size, grid);
            let world = World::new(size, size);
            if let Some(star) = star_adjacency(&s, f64::from(size), f64::from(size)) {
                let tri = triangulated_local(&s, world);
                prop_assert_eq!(&star.strict, &tri.strict);
                prop_assert!(tri.weak.is_empty(), "weak {:?}", tri.weak);
                prop_assert!(same_cycle(&star.fan, &tri.fan), "fan {:?} vs {:?}", star.fan, tri.fan);
                prop_assert!((star.reach - tri.reach).abs() <= 1e-6 * tri.reach, "reach {} vs {}", star.reach, tri.reach);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Sparse views in small worlds, where periodic images shape the
        /// cell.
        #[test]
        fn sparse_views_agree_with_the_triangulation(
            pts in prop::collection::vec((-50.0f32..50.0, -40.0f32..40.0), 1..40),
        ) {
            let s = shifted(&pts, 100.0, 0.0);
            let s: Vec<(f64, f64)> = s.iter().map(|&(x, y)| (x, y - 10.0)).collect();
            let world = World::new(100.0, 80.0);
            if let Some(star) = star_adjacency(&s, 100.0, 80.0) {
                let tri = triangulated_local(&s, world);
                prop_assert_eq!(&star.strict, &tri.strict);
                prop_assert!(tri.weak.is_empty(), "weak {:?}", tri.weak);
                prop_assert!(same_cycle(&star.fan, &tri.fan), "fan {:?} vs {:?}", star.fan, tri.fan);
            }
        }
    }

    #[test]
    fn the_star_answers_dense_and_sparse_views_and_declines_cocircular_ones() {
        // A peer among 40 random others within 132 units: the star answers.
        let mut s = 99u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as f32 / (1u64 << 31) as f32 * 264.0 - 132.0
        };
        let pts: Vec<(f32, f32)> = (0..40).map(|_| (next(), next())).collect();
        let s = shifted(&pts, 1200.0, 0.0);
        assert!(star_adjacency(&s, 1200.0, 1200.0).is_some());
        // A square grid: cocircular everywhere.
        let grid: Vec<(f32, f32)> = (-2..=2)
            .flat_map(|i| (-2..=2).map(move |j| (i as f32 * 10.0, j as f32 * 10.0)))
            .filter(|&p| p != (0.0, 0.0))
            .collect();
        assert!(star_adjacency(&shifted(&grid, 1200.0, 0.0), 1200.0, 1200.0).is_none());
        // Everyone on one side, or a cell reaching past the world's box:
        // the star answers with periodic images, as the triangulation does.
        let side: Vec<(f32, f32)> = (1..10).map(|i| (i as f32 * 7.0, (i * i) as f32)).collect();
        let far = [(45.0, 0.0), (-45.0, 1.0), (0.0, 45.0), (1.0, -45.0)];
        for (pts, size) in [
            (&side[..], 1200.0),
            (&far[..], 100.0),
            (&[(45.0, 7.0)], 100.0),
        ] {
            let s = shifted(pts, size, 0.0);
            assert!(star(&s, f64::from(size), f64::from(size), false).is_err());
            let star = star_adjacency(&s, f64::from(size), f64::from(size))
                .unwrap_or_else(|| panic!("{pts:?} in {size}"));
            let tri = triangulated_local(&s, World::new(size, size));
            assert_eq!(star.strict, tri.strict);
            assert!(
                same_cycle(&star.fan, &tri.fan),
                "{:?} vs {:?}",
                star.fan,
                tri.fan
            );
        }
    }
}

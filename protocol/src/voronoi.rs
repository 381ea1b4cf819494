//! Voronoi adjacency on the torus, through a Delaunay triangulation (spade).
//!
//! One routine serves both sides of the overlay: the ground truth (all live
//! peers) and each peer's local view (itself plus the peers it knows, placed
//! at their nearest images around it). Points are triangulated together with
//! the images of those near the world's border; the padding grows until every
//! triangle around the vertices asked for has its circumcircle inside the
//! padded box, which proves it is a triangle of the infinite periodic
//! Delaunay triangulation.
//!
//! Adjacency comes in two strengths: *strict* (the Voronoi cells share an edge
//! of positive length) and *weak* (cocircular points adjacent through a
//! zero-length edge, or points at the very same spot). A correct enclosing
//! set holds every strict neighbour and nothing but strict or weak ones.

use std::collections::HashMap;

use spade::handles::FixedFaceHandle;
use spade::handles::InnerTag;
use spade::{DelaunayTriangulation, HasPosition, Point2, Triangulation};

use crate::geometry::{Point, World, wrap_coord};

mod star;

#[derive(Clone, Copy, Debug)]
struct Vertex {
    pos: Point2<f64>,
    /// Index of the distinct spot this vertex is an image of.
    spot: u32,
    /// Whether this is the spot itself rather than a periodic image.
    central: bool,
}

impl HasPosition for Vertex {
    type Scalar = f64;
    fn position(&self) -> Point2<f64> {
        self.pos
    }
}

/// Voronoi adjacency of one point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Adjacency {
    /// Indices of points whose cells share a positive-length edge with it.
    pub strict: Vec<usize>,
    /// Indices adjacent only through a zero-length edge, or at the same spot.
    pub weak: Vec<usize>,
    /// Triangulation neighbours in counter-clockwise order (one index per
    /// distinct spot, images of the point itself left out): consecutive
    /// entries span a Delaunay triangle with the point.
    pub fan: Vec<usize>,
    /// Twice the largest circumradius of the Delaunay triangles around the
    /// point (infinite when not computed): points farther than this cannot
    /// change its cell.
    pub reach: f64,
}

/// Computes the Voronoi adjacency on the torus of `points[i]` for each `i` in
/// `wanted` (all points when `None`). Coordinates may be anywhere; they are
/// wrapped. Non-finite points must be filtered out by the caller.
pub fn torus_adjacency(points: &[Point], world: World, wanted: Option<&[usize]>) -> Vec<Adjacency> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (f64::from(p.x), f64::from(p.y)))
        .collect();
    adjacency_impl(&pts, world, wanted, None)
}

/// The adjacency of `points[0]` alone, for a peer's local view: the points
/// are translated so that `points[0]` sits at the world's centre, and the
/// padding starts at zero (in a dense world no image is ever needed).
pub fn local_adjacency(points: &[Point], world: World) -> Adjacency {
    if points.is_empty() {
        return Adjacency {
            reach: f64::INFINITY,
            ..Adjacency::default()
        };
    }
    let centre = Point::new(world.width / 2.0, world.height / 2.0);
    let me = points[0];
    // Exact in f64: dx, dy are differences of f32 values, and so is the
    // sum with the centre, so every peer sees the same configuration.
    let shifted: Vec<(f64, f64)> = points
        .iter()
        .map(|&p| {
            let (dx, dy) = world.delta(me, p);
            (f64::from(centre.x) + dx, f64::from(centre.y) + dy)
        })
        .collect();
    // The common case, without a triangulation.
    let (w, h) = (f64::from(world.width), f64::from(world.height));
    if let Some(adj) = star::star_adjacency(&shifted, w, h) {
        return adj;
    }
    triangulated_local(&shifted, world)
}

/// `local_adjacency` through a triangulation: every case, cocircular points
/// and sparse worlds included.
fn triangulated_local(shifted: &[(f64, f64)], world: World) -> Adjacency {
    let centre = Point::new(world.width / 2.0, world.height / 2.0);
    // Only the nearest points can shape the cell: triangulate those first,
    // and all of them only when a farther point could still matter.
    const FIRST: usize = 16;
    if shifted.len() > FIRST + 1 {
        let (cx, cy) = (f64::from(centre.x), f64::from(centre.y));
        let d2 = |i: usize| (shifted[i].0 - cx).powi(2) + (shifted[i].1 - cy).powi(2);
        let mut order: Vec<usize> = (1..shifted.len()).collect();
        order.sort_by(|&a, &b| d2(a).total_cmp(&d2(b)).then(a.cmp(&b)));
        let subset: Vec<(f64, f64)> = std::iter::once(shifted[0])
            .chain(order[..FIRST].iter().map(|&i| shifted[i]))
            .collect();
        let mut adj = adjacency_impl(&subset, world, Some(&[0]), Some(0.0)).swap_remove(0);
        let next = d2(order[FIRST]).sqrt();
        if adj.reach.is_finite() && next > adj.reach {
            let map = |v: &mut Vec<usize>| v.iter_mut().for_each(|i| *i = order[*i - 1]);
            map(&mut adj.strict);
            map(&mut adj.weak);
            map(&mut adj.fan);
            adj.strict.sort_unstable();
            adj.weak.sort_unstable();
            return adj;
        }
    }
    adjacency_impl(shifted, world, Some(&[0]), Some(0.0)).swap_remove(0)
}

fn adjacency_impl(
    points: &[(f64, f64)],
    world: World,
    wanted: Option<&[usize]>,
    initial_margin: Option<f64>,
) -> Vec<Adjacency> {
    let n = points.len();
    let mut out = vec![
        Adjacency {
            reach: f64::INFINITY,
            ..Adjacency::default()
        };
        n
    ];
    if n < 2 {
        return out;
    }
    let (w, h) = (f64::from(world.width), f64::from(world.height));
    // Group points by exact spot.
    let mut spot_of = Vec::with_capacity(n);
    let mut spots: Vec<(f64, f64)> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<(u64, u64), u32> = HashMap::with_capacity(n);
    for (i, &(x, y)) in points.iter().enumerate() {
        let p = (wrap_coord(x, w), wrap_coord(y, h));
        let key = (p.0.to_bits(), p.1.to_bits());
        let s = *index.entry(key).or_insert_with(|| {
            spots.push(p);
            members.push(Vec::new());
            (spots.len() - 1) as u32
        });
        members[s as usize].push(i);
        spot_of.push(s);
    }
    let mut wanted_spots: Vec<u32> = match wanted {
        Some(ws) => ws.iter().map(|&i| spot_of[i]).collect(),
        None => (0..spots.len() as u32).collect(),
    };
    wanted_spots.sort_unstable();
    wanted_spots.dedup();

    // Same-spot partners are weak neighbours.
    for &s in &wanted_spots {
        let m = &members[s as usize];
        if m.len() > 1 {
            for &i in m {
                out[i].weak.extend(m.iter().copied().filter(|&j| j != i));
            }
        }
    }
    if spots.len() < 2 {
        // Everyone on one spot: no Voronoi edges at all.
        return out;
    }

    // Start with a padding of a few mean spacings; grow until proven.
    let spacing = (w * h / spots.len() as f64).sqrt();
    let mut margin = initial_margin.unwrap_or(4.0 * spacing).min(w.max(h));
    loop {
        let full = margin >= w.max(h);
        let tri = triangulate(&spots, w, h, if full { w.max(h) } else { margin });
        match adjacency_of(&tri, &wanted_spots, w, h, margin, full) {
            Some(adj) => {
                for (s, (strict, weak, fan), reach) in adj {
                    let expand = |v: &[u32]| -> Vec<usize> {
                        v.iter()
                            .flat_map(|&t| members[t as usize].iter().copied())
                            .collect()
                    };
                    let strict = expand(&strict);
                    let weak = expand(&weak);
                    let fan: Vec<usize> = fan.iter().map(|&t| members[t as usize][0]).collect();
                    for &i in &members[s as usize] {
                        out[i].fan = fan.clone();
                        out[i].reach = reach;
                        out[i]
                            .strict
                            .extend(strict.iter().copied().filter(|&j| j != i));
                        out[i].weak.extend(weak.iter().copied().filter(|&j| j != i));
                    }
                }
                break;
            }
            None if margin <= 0.0 => margin = w.min(h) / 4.0,
            None => margin = (margin * 2.0).min(w.max(h)),
        }
    }
    for a in &mut out {
        a.strict.sort_unstable();
        a.strict.dedup();
        a.weak.sort_unstable();
        a.weak.dedup();
        // Strict wins when a point is adjacent both ways (through two images).
        let strict = &a.strict;
        a.weak.retain(|j| strict.binary_search(j).is_err());
    }
    out
}

fn triangulate(spots: &[(f64, f64)], w: f64, h: f64, margin: f64) -> DelaunayTriangulation<Vertex> {
    let mut verts = Vec::with_capacity(spots.len() * 2);
    for (s, &(x, y)) in spots.iter().enumerate() {
        for i in -1i32..=1 {
            for j in -1i32..=1 {
                let (ix, iy) = (x + f64::from(i) * w, y + f64::from(j) * h);
                let central = i == 0 && j == 0;
                if central
                    || (ix >= -margin && ix <= w + margin && iy >= -margin && iy <= h + margin)
                {
                    verts.push(Vertex {
                        pos: spade::mitigate_underflow(Point2::new(ix, iy)),
                        spot: s as u32,
                        central,
                    });
                }
            }
        }
    }
    // All coordinates are finite and distinct (spots are deduplicated and
    // images of distinct spots are distinct), so loading cannot fail.
    DelaunayTriangulation::bulk_load(verts).expect("finite, distinct vertices")
}

type SpotAdjacency = Vec<(u32, (Vec<u32>, Vec<u32>, Vec<u32>), f64)>;

/// Reads the adjacency of the wanted spots' central vertices; `None` when the
/// padding does not prove it (a circumcircle reaches out of the padded box, or
/// a wanted vertex lies on the hull of the finite set).
fn adjacency_of(
    tri: &DelaunayTriangulation<Vertex>,
    wanted: &[u32],
    w: f64,
    h: f64,
    margin: f64,
    full: bool,
) -> Option<SpotAdjacency> {
    let mut central = HashMap::with_capacity(wanted.len());
    for v in tri.vertices() {
        if v.data().central {
            central.insert(v.data().spot, v.fix());
        }
    }
    let inside = |c: Point2<f64>, r2: f64| {
        let r = r2.sqrt();
        c.x - r >= -margin && c.x + r <= w + margin && c.y - r >= -margin && c.y + r <= h + margin
    };
    let mut result = Vec::with_capacity(wanted.len());
    for &s in wanted {
        let v = tri.vertex(*central.get(&s)?);
        let mut strict = Vec::new();
        let mut weak = Vec::new();
        let mut fan = Vec::new();
        let mut reach = 0.0f64;
        for e in v.out_edges() {
            let face = e.face().as_inner()?;
            let (c, r2) = face.circumcircle();
            if !full && !inside(c, r2) {
                return None;
            }
            reach = reach.max(2.0 * r2.sqrt());
            let other = e.to().data().spot;
            if other == s {
                continue; // an image of itself
            }
            fan.push(other);
            if edge_is_zero_length(tri, e.fix()) {
                weak.push(other);
                // The whole cocircular polygon around this edge is weakly
                // adjacent: every vertex of the faces joined through
                // zero-length edges.
                collect_cocircular(tri, face.fix(), &mut weak);
            } else {
                strict.push(other);
            }
        }
        // A cocircular polygon can also make v weakly adjacent to vertices
        // that are not triangulation neighbours (the other diagonal).
        for e in v.out_edges() {
            if let Some(face) = e.face().as_inner() {
                let mut poly = Vec::new();
                if face_has_zero_edge(tri, face.fix()) {
                    collect_cocircular(tri, face.fix(), &mut poly);
                    weak.extend(poly);
                }
            }
        }
        weak.retain(|&t| t != s);
        strict.sort_unstable();
        strict.dedup();
        weak.sort_unstable();
        weak.dedup();
        weak.retain(|t| strict.binary_search(t).is_err());
        result.push((s, (strict, weak, fan), reach));
    }
    Some(result)
}

fn coord(p: Point2<f64>) -> robust::Coord<f64> {
    robust::Coord { x: p.x, y: p.y }
}

/// Whether the Voronoi edge dual to this Delaunay edge has zero length: both
/// adjacent faces are inner and the four vertices are cocircular.
fn edge_is_zero_length(
    tri: &DelaunayTriangulation<Vertex>,
    e: spade::handles::FixedDirectedEdgeHandle,
) -> bool {
    let e = tri.directed_edge(e);
    let (Some(c), Some(d)) = (e.opposite_vertex(), e.rev().opposite_vertex()) else {
        return false;
    };
    let (a, b) = (e.from().position(), e.to().position());
    robust::incircle(coord(a), coord(b), coord(c.position()), coord(d.position())) == 0.0
}

fn face_has_zero_edge(tri: &DelaunayTriangulation<Vertex>, f: FixedFaceHandle<InnerTag>) -> bool {
    tri.face(f)
        .adjacent_edges()
        .iter()
        .any(|e| edge_is_zero_length(tri, e.fix()))
}

/// Adds the spots of every face reachable from `start` through zero-length
/// edges (one cocircular polygon).
fn collect_cocircular(
    tri: &DelaunayTriangulation<Vertex>,
    start: FixedFaceHandle<InnerTag>,
    out: &mut Vec<u32>,
) {
    let mut stack = vec![start];
    let mut seen = vec![start];
    while let Some(f) = stack.pop() {
        let face = tri.face(f);
        out.extend(face.vertices().iter().map(|v| v.data().spot));
        for e in face.adjacent_edges() {
            if edge_is_zero_length(tri, e.fix())
                && let Some(g) = e.rev().face().as_inner()
                && !seen.contains(&g.fix())
            {
                seen.push(g.fix());
                stack.push(g.fix());
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod brute {
    //! Reference Voronoi adjacency by brute force: for each pair (a, image of
    //! b), the part of their bisector closer to them than to every image of
    //! every other point, as an interval on the bisector line.
    use super::*;

    pub fn adjacency(points: &[Point], world: World) -> Vec<Adjacency> {
        let (w, h) = (f64::from(world.width), f64::from(world.height));
        let pts: Vec<(f64, f64)> = points
            .iter()
            .map(|p| {
                let p = world.wrap(*p);
                (f64::from(p.x), f64::from(p.y))
            })
            .collect();
        let n = pts.len();
        let mut out = vec![Adjacency::default(); n];
        let scale = w.max(h);
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                if pts[a] == pts[b] {
                    out[a].weak.push(b);
                    continue;
                }
                let mut best = -1.0f64;
                for i in -2i32..=2 {
                    for j in -2i32..=2 {
                        let bp = (pts[b].0 + f64::from(i) * w, pts[b].1 + f64::from(j) * h);
                        best = best.max(edge_length(&pts, a, b, bp, w, h));
                    }
                }
                if best > 1e-7 * scale {
                    out[a].strict.push(b);
                } else if best >= 0.0 {
                    out[a].weak.push(b);
                }
            }
        }
        out
    }

    /// Length of the Voronoi edge between a and the image bp of b (negative
    /// when they are not adjacent).
    fn edge_length(pts: &[(f64, f64)], a: usize, b: usize, bp: (f64, f64), w: f64, h: f64) -> f64 {
        let pa = pts[a];
        let mid = ((pa.0 + bp.0) / 2.0, (pa.1 + bp.1) / 2.0);
        let dir = (-(bp.1 - pa.1), bp.0 - pa.0);
        let (mut lo, mut hi) = (-1e9f64, 1e9f64);
        for (c, &pc) in pts.iter().enumerate() {
            for i in -2i32..=2 {
                for j in -2i32..=2 {
                    let cp = (pc.0 + f64::from(i) * w, pc.1 + f64::from(j) * h);
                    if (c == a && i == 0 && j == 0) || (c == b && cp == bp) || cp == pa {
                        continue;
                    }
                    if cp == bp {
                        // A duplicate of b's image: does not shrink the edge.
                        continue;
                    }
                    // x(t) = mid + t·dir must satisfy |x-pa|² ≤ |x-cp|²,
                    // i.e. 2 x·(cp-pa) ≤ |cp|² - |pa|²: linear in t.
                    let g = (cp.0 - pa.0, cp.1 - pa.1);
                    let k = (cp.0 * cp.0 + cp.1 * cp.1 - pa.0 * pa.0 - pa.1 * pa.1) / 2.0;
                    let base = mid.0 * g.0 + mid.1 * g.1;
                    let slope = dir.0 * g.0 + dir.1 * g.1;
                    let rhs = k - base;
                    if slope.abs() < 1e-15 {
                        if rhs < -1e-9 {
                            return -1.0;
                        }
                    } else if slope > 0.0 {
                        hi = hi.min(rhs / slope);
                    } else {
                        lo = lo.max(rhs / slope);
                    }
                }
            }
        }
        if hi < lo {
            return -1.0;
        }
        (hi - lo) * (dir.0.hypot(dir.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(points: &[Point], world: World) -> Result<(), TestCaseError> {
        let fast = torus_adjacency(points, world, None);
        let slow = brute::adjacency(points, world);
        for i in 0..points.len() {
            let f = &fast[i];
            let s = &slow[i];
            // Every strict neighbour of the reference is found, and the fast
            // one calls nothing adjacent that the reference does not.
            for j in &s.strict {
                prop_assert!(
                    f.strict.contains(j),
                    "point {i}: missing strict {j}: fast {f:?} slow {s:?}"
                );
            }
            for j in f.strict.iter().chain(&f.weak) {
                prop_assert!(
                    s.strict.contains(j) || s.weak.contains(j),
                    "point {i}: extra {j}: fast {f:?} slow {s:?}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn two_and_three_points_are_all_neighbours() {
        let w = World::new(100.0, 100.0);
        let a = torus_adjacency(&[Point::new(10.0, 10.0), Point::new(60.0, 40.0)], w, None);
        assert_eq!(a[0].strict, vec![1]);
        let a = torus_adjacency(
            &[
                Point::new(10.0, 10.0),
                Point::new(60.0, 40.0),
                Point::new(30.0, 80.0),
            ],
            w,
            None,
        );
        assert_eq!(a[2].strict, vec![0, 1]);
    }

    #[test]
    fn square_grid_diagonals_are_weak() {
        let w = World::new(40.0, 40.0);
        let pts: Vec<Point> = (0..4)
            .flat_map(|i| (0..4).map(move |j| Point::new(i as f32 * 10.0, j as f32 * 10.0)))
            .collect();
        let a = torus_adjacency(&pts, w, None);
        // Point (10,10) = index 5: strict are the four axis neighbours.
        assert_eq!(a[5].strict, vec![1, 4, 6, 9]);
        assert_eq!(a[5].weak, vec![0, 2, 8, 10]);
        check(&pts, w).unwrap();
    }

    #[test]
    fn same_spot_points_share_neighbours() {
        let w = World::new(100.0, 100.0);
        let pts = [
            Point::new(10.0, 10.0),
            Point::new(10.0, 10.0),
            Point::new(50.0, 50.0),
            Point::new(80.0, 20.0),
        ];
        let a = torus_adjacency(&pts, w, None);
        assert_eq!(a[0].weak, vec![1]);
        assert_eq!(a[1].weak, vec![0]);
        assert!(a[2].strict.contains(&0) && a[2].strict.contains(&1));
    }

    #[test]
    fn many_points_match_brute_force() {
        // A mid-size deterministic set that needs the margin to grow.
        let w = World::new(500.0, 300.0);
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as f32 / (1u64 << 31) as f32
        };
        let pts: Vec<Point> = (0..40)
            .map(|_| Point::new(next() * 500.0, next() * 300.0))
            .collect();
        check(&pts, w).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn local_view_matches_global_triangulation(
            pts in prop::collection::vec((0.0f32..400.0, 0.0f32..400.0), 2..80),
            grid in any::<bool>(),
        ) {
            // Dense sets (where the nearest-first shortcut applies) and
            // integer grids (cocircular points everywhere).
            let pts: Vec<Point> = pts
                .into_iter()
                .map(|(x, y)| if grid { Point::new((x / 25.0).floor() * 25.0, (y / 25.0).floor() * 25.0) } else { Point::new(x, y) })
                .collect();
            let world = World::new(400.0, 400.0);
            let global = torus_adjacency(&pts, world, Some(&[0]));
            let local = local_adjacency(&pts, world);
            prop_assert_eq!(&local.strict, &global[0].strict);
            prop_assert_eq!(&local.weak, &global[0].weak);
        }

        #[test]
        fn random_sets_match_brute_force(pts in prop::collection::vec((0.0f32..200.0, 0.0f32..150.0), 1..10)) {
            let pts: Vec<Point> = pts.into_iter().map(|(x, y)| Point::new(x, y)).collect();
            check(&pts, World::new(200.0, 150.0))?;
        }

        #[test]
        fn integer_sets_match_brute_force(pts in prop::collection::vec((0i32..12, 0i32..12), 1..10)) {
            let pts: Vec<Point> = pts.into_iter().map(|(x, y)| Point::new(x as f32 * 10.0, y as f32 * 10.0)).collect();
            check(&pts, World::new(120.0, 120.0))?;
        }
    }
}

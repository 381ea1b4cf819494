//! The invariant checker: compares every peer's view with the ground truth.
//!
//! Definitions (DESIGN.md "Invariants and metrics"): awareness consistency,
//! stale share, kept per peer, strongly connected components, hull
//! violations, Voronoi correctness and drift. Everything scales to 100 000
//! peers: range queries go through an R-tree (`rstar`) of the true
//! positions padded with their torus images, and Voronoi neighbours come from
//! one Delaunay triangulation of the torus.

use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

use crate::geometry::{Point, World, origin_inside_by_turns, origin_strictly_inside_hull};
use crate::id::{IdMap, PeerId};
use crate::voronoi;

/// A live peer as it really is.
#[derive(Clone, Debug, PartialEq)]
pub struct TruePeer {
    /// Identity.
    pub id: PeerId,
    /// True position.
    pub pos: Point,
    /// True awareness radius.
    pub radius: f32,
}

/// One entry of a peer's view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kept {
    /// Who.
    pub id: PeerId,
    /// Where the viewer believes it is.
    pub pos: Point,
    /// Whether the viewer counts it as enclosing (Voronoi-adjacent).
    pub enclosing: bool,
}

/// What to compute.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Believed positions further than this from the truth are stale.
    pub stale_tolerance: f64,
    /// Whether to compute Voronoi correctness (one global triangulation).
    pub voronoi: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stale_tolerance: 10.0,
            voronoi: true,
        }
    }
}

/// The invariants at one instant. Fractions are in [0, 1].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Live peers.
    pub peers: usize,
    /// Σ |known ∩ should-know| / Σ |should-know| (1 when nothing should be known).
    pub consistency: f64,
    /// Mean size of the should-know sets.
    pub should_know_mean: f64,
    /// Largest should-know set.
    pub should_know_max: usize,
    /// Share of known aware pairs whose believed position is off by more than
    /// the tolerance.
    pub stale_share: f64,
    /// Mean number of kept peers.
    pub kept_mean: f64,
    /// Largest number of kept peers.
    pub kept_max: usize,
    /// Strongly connected components of the graph p → kept(p).
    pub components: usize,
    /// Peers outside the hull of their kept peers but inside the hull of all.
    pub hull_violations: usize,
    /// Share of peers whose enclosing set is the true Voronoi neighbourhood
    /// (1 when not computed).
    pub voronoi_correct: f64,
    /// Mean distance between believed and true positions of known live peers.
    pub drift_mean: f64,
    /// Kept entries naming peers that are not alive.
    pub dead_kept: usize,
}

/// Means and worst values over a series of samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples taken.
    pub samples: u64,
    /// Mean awareness consistency (0 without samples).
    pub consistency: f64,
    /// Worst sample.
    pub consistency_min: f64,
    /// Mean should-know set size.
    pub should_know_mean: f64,
    /// Largest should-know set seen.
    pub should_know_max: usize,
    /// Mean stale share.
    pub stale_share: f64,
    /// Worst stale share.
    pub stale_share_max: f64,
    /// Mean kept peers per peer.
    pub kept_mean: f64,
    /// Most kept peers of any peer in any sample.
    pub kept_max: usize,
    /// Mean strongly connected components.
    pub components: f64,
    /// Worst sample.
    pub components_max: usize,
    /// Mean hull violations.
    pub hull_violations: f64,
    /// Worst sample.
    pub hull_violations_max: usize,
    /// Mean Voronoi correctness (0 without samples).
    pub voronoi_correct: f64,
    /// Worst sample.
    pub voronoi_correct_min: f64,
    /// Mean drift.
    pub drift_mean: f64,
    /// Worst sample's mean drift.
    pub drift_max: f64,
    /// Most kept entries naming dead peers in a sample.
    pub dead_kept_max: usize,
}

/// Accumulates samples into a [`Summary`].
#[derive(Clone, Debug, Default)]
pub struct Tally {
    sum: Summary,
}

impl Tally {
    /// Adds a sample.
    pub fn record(&mut self, s: &Sample) {
        let t = &mut self.sum;
        let first = t.samples == 0;
        t.samples += 1;
        t.consistency += s.consistency;
        t.consistency_min = if first {
            s.consistency
        } else {
            t.consistency_min.min(s.consistency)
        };
        t.should_know_mean += s.should_know_mean;
        t.should_know_max = t.should_know_max.max(s.should_know_max);
        t.stale_share += s.stale_share;
        t.stale_share_max = t.stale_share_max.max(s.stale_share);
        t.kept_mean += s.kept_mean;
        t.kept_max = t.kept_max.max(s.kept_max);
        t.components += s.components as f64;
        t.components_max = t.components_max.max(s.components);
        t.hull_violations += s.hull_violations as f64;
        t.hull_violations_max = t.hull_violations_max.max(s.hull_violations);
        t.voronoi_correct += s.voronoi_correct;
        t.voronoi_correct_min = if first {
            s.voronoi_correct
        } else {
            t.voronoi_correct_min.min(s.voronoi_correct)
        };
        t.drift_mean += s.drift_mean;
        t.drift_max = t.drift_max.max(s.drift_mean);
        t.dead_kept_max = t.dead_kept_max.max(s.dead_kept);
    }

    /// The means and worst values so far.
    pub fn summary(&self) -> Summary {
        let t = &self.sum;
        let k = t.samples.max(1) as f64;
        Summary {
            consistency: t.consistency / k,
            should_know_mean: t.should_know_mean / k,
            stale_share: t.stale_share / k,
            kept_mean: t.kept_mean / k,
            components: t.components / k,
            hull_violations: t.hull_violations / k,
            voronoi_correct: t.voronoi_correct / k,
            drift_mean: t.drift_mean / k,
            ..t.clone()
        }
    }
}

/// Computes the invariants. `views[i]` is the view of `truth[i]`.
pub fn check(world: World, truth: &[TruePeer], views: &[Vec<Kept>], opts: Options) -> Sample {
    let n = truth.len();
    assert_eq!(n, views.len(), "one view per live peer");
    let mut s = Sample {
        peers: n,
        consistency: 1.0,
        voronoi_correct: 1.0,
        ..Sample::default()
    };
    if n == 0 {
        return s;
    }
    let index: IdMap<usize> = truth.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let positions: Vec<Point> = truth.iter().map(|p| p.pos).collect();

    // Views as index lists (live peers only), and the believed positions
    // by index. Peer by peer on the current rayon pool; each view gives its
    // believed positions by index, its drifts in its own order and its
    // entries for peers that are not live. The drift is summed afterwards
    // in the views' order, so the figure does not depend on the threads.
    type PerView = (Vec<(usize, Point)>, Vec<f64>, usize);
    let per_view: Vec<PerView> = views
        .par_iter()
        .map(|v| {
            let mut bs = Vec::with_capacity(v.len());
            let mut drift = Vec::with_capacity(v.len());
            let mut dead = 0;
            for k in v {
                match index.get(&k.id) {
                    Some(&j) => {
                        bs.push((j, k.pos));
                        drift.push(world.distance_sq(k.pos, truth[j].pos).sqrt());
                    }
                    None => dead += 1,
                }
            }
            // A view listing a peer twice: the first belief counts.
            bs.sort_by_key(|b| b.0);
            bs.dedup_by_key(|b| b.0);
            (bs, drift, dead)
        })
        .collect();
    let mut kept_idx: Vec<Vec<usize>> = Vec::with_capacity(n);
    let mut believed: Vec<Vec<(usize, Point)>> = Vec::with_capacity(n);
    let mut drift_sum = 0.0;
    let mut drift_n = 0usize;
    for (bs, drift, dead) in per_view {
        s.dead_kept += dead;
        drift_n += drift.len();
        for d in drift {
            drift_sum += d;
        }
        kept_idx.push(bs.iter().map(|b| b.0).collect());
        believed.push(bs);
    }
    s.drift_mean = if drift_n > 0 {
        drift_sum / drift_n as f64
    } else {
        0.0
    };
    s.kept_mean = kept_idx.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    s.kept_max = kept_idx.iter().map(Vec::len).max().unwrap_or(0);

    // Awareness.
    let finder = RangeFinder::new(
        world,
        &positions,
        truth.iter().map(|p| p.radius).fold(0.0f32, f32::max),
    );
    // Per peer: (should know, of which kept, of which stale).
    let aware: Vec<(usize, usize, usize)> = truth
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let should = finder.within(i, f64::from(p.radius));
            let bs = &believed[i];
            let mut kept = 0;
            let mut stale = 0;
            for &j in &should {
                if let Ok(at) = bs.binary_search_by_key(&j, |b| b.0) {
                    kept += 1;
                    if world.distance_sq(bs[at].1, truth[j].pos) > opts.stale_tolerance.powi(2) {
                        stale += 1;
                    }
                }
            }
            (should.len(), kept, stale)
        })
        .collect();
    s.should_know_max = aware.iter().map(|a| a.0).max().unwrap_or(0);
    let should_total: usize = aware.iter().map(|a| a.0).sum();
    let kept_and_should_know: usize = aware.iter().map(|a| a.1).sum();
    let stale: usize = aware.iter().map(|a| a.2).sum();
    s.should_know_mean = should_total as f64 / n as f64;
    if should_total > 0 {
        s.consistency = kept_and_should_know as f64 / should_total as f64;
    }
    s.stale_share = if kept_and_should_know > 0 {
        stale as f64 / kept_and_should_know as f64
    } else {
        0.0
    };

    s.components = strongly_connected_components(&kept_idx);

    // Voronoi (also used to speed up the hull exemption test).
    let truth_adj = if opts.voronoi || n >= 4 {
        Some(voronoi::torus_adjacency(&positions, world, None))
    } else {
        None
    };
    if opts.voronoi {
        let adj = truth_adj.as_ref().expect("computed");
        let correct = views
            .par_iter()
            .enumerate()
            .filter(|&(i, v)| {
                let enc: Vec<usize> = {
                    let mut e: Vec<usize> = v
                        .iter()
                        .filter(|k| k.enclosing)
                        .filter_map(|k| index.get(&k.id).copied())
                        .collect();
                    e.sort_unstable();
                    e.dedup();
                    e
                };
                let a = &adj[i];
                let all_strict = a.strict.iter().all(|j| enc.binary_search(j).is_ok());
                let nothing_else = enc
                    .iter()
                    .all(|j| a.strict.binary_search(j).is_ok() || a.weak.binary_search(j).is_ok());
                all_strict && nothing_else
            })
            .count();
        s.voronoi_correct = correct as f64 / n as f64;
    }

    // Hull violations.
    if n >= 4 {
        s.hull_violations = (0..n)
            .into_par_iter()
            .filter(|&i| {
                let offs: Vec<(f64, f64)> = kept_idx[i]
                    .iter()
                    .map(|&j| world.delta(positions[i], positions[j]))
                    .collect();
                if origin_inside_by_turns(&offs) || origin_strictly_inside_hull(&offs) {
                    return false;
                }
                // Exempt when not strictly inside the hull of all live peers.
                truth_adj.as_ref().is_some_and(|adj| {
                    let o: Vec<(f64, f64)> = adj[i]
                        .strict
                        .iter()
                        .map(|&j| world.delta(positions[i], positions[j]))
                        .collect();
                    origin_strictly_inside_hull(&o)
                }) || {
                    let o: Vec<(f64, f64)> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| world.delta(positions[i], positions[j]))
                        .collect();
                    origin_strictly_inside_hull(&o)
                }
            })
            .count();
    }
    s
}

/// Counts the strongly connected components of a directed graph given as
/// adjacency lists (iterative Tarjan).
pub fn strongly_connected_components(adj: &[Vec<usize>]) -> usize {
    let n = adj.len();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0usize;
    let mut count = 0usize;
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if *pos < adj[v].len() {
                let w = adj[v][*pos];
                *pos += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    count += 1;
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        if w == v {
                            break;
                        }
                    }
                }
            }
        }
    }
    count
}

type Entry = GeomWithData<[f64; 2], usize>;

/// Torus range queries over fixed points: an R-tree of the points and of
/// their images within `pad` of the border.
pub struct RangeFinder {
    world: World,
    tree: RTree<Entry>,
    points: Vec<Point>,
    brute: bool,
}

impl RangeFinder {
    /// Indexes `points` for queries of radius up to `max_radius`.
    pub fn new(world: World, points: &[Point], max_radius: f32) -> Self {
        let (w, h) = (f64::from(world.width), f64::from(world.height));
        let pad = f64::from(max_radius) + 1.0;
        let brute = pad * 2.0 >= w.min(h) || points.len() < 64;
        let mut entries = Vec::with_capacity(points.len() * 11 / 10);
        if !brute {
            for (i, p) in points.iter().enumerate() {
                let p = world.wrap(*p);
                let (x, y) = (f64::from(p.x), f64::from(p.y));
                for dx in [-w, 0.0, w] {
                    for dy in [-h, 0.0, h] {
                        let (ix, iy) = (x + dx, y + dy);
                        if ix >= -pad && ix <= w + pad && iy >= -pad && iy <= h + pad {
                            entries.push(GeomWithData::new([ix, iy], i));
                        }
                    }
                }
            }
        }
        Self {
            world,
            tree: RTree::bulk_load(entries),
            points: points.to_vec(),
            brute,
        }
    }

    /// Indices of the points within `r` (torus distance, inclusive) of point
    /// `i`, excluding `i` itself.
    pub fn within(&self, i: usize, r: f64) -> Vec<usize> {
        let c = self.points[i];
        let r2 = r * r;
        if self.brute {
            return (0..self.points.len())
                .filter(|&j| j != i && self.world.distance_sq(c, self.points[j]) <= r2)
                .collect();
        }
        let cw = self.world.wrap(c);
        let q = [f64::from(cw.x), f64::from(cw.y)];
        let mut out: Vec<usize> = self
            .tree
            .locate_within_distance(q, (r + 1e-6) * (r + 1e-6))
            .map(|e| e.data)
            .filter(|&j| j != i && self.world.distance_sq(c, self.points[j]) <= r2)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Rng;

    /// A correct world: views built from the truth itself.
    fn perfect(n: usize, world: World, radius: f32, seed: u64) -> (Vec<TruePeer>, Vec<Vec<Kept>>) {
        let mut rng = Rng::new(seed);
        let truth: Vec<TruePeer> = (0..n)
            .map(|i| TruePeer {
                id: PeerId::from_seed(i as u64),
                pos: crate::mobility::random_point(world, &mut rng),
                radius,
            })
            .collect();
        let pos: Vec<Point> = truth.iter().map(|t| t.pos).collect();
        let adj = voronoi::torus_adjacency(&pos, world, None);
        let finder = RangeFinder::new(world, &pos, radius);
        let views = (0..n)
            .map(|i| {
                let mut ids: Vec<usize> = finder.within(i, f64::from(radius));
                ids.extend(adj[i].strict.iter().copied());
                ids.sort_unstable();
                ids.dedup();
                ids.into_iter()
                    .map(|j| Kept {
                        id: truth[j].id,
                        pos: truth[j].pos,
                        enclosing: adj[i].strict.contains(&j),
                    })
                    .collect()
            })
            .collect();
        (truth, views)
    }

    #[test]
    fn perfect_views_pass_every_metric() {
        let world = World::new(1200.0, 1200.0);
        let (truth, views) = perfect(1000, world, 100.0, 1);
        let s = check(world, &truth, &views, Options::default());
        assert_eq!(s.consistency, 1.0);
        assert!(s.should_know_mean > 15.0, "{}", s.should_know_mean);
        assert_eq!(s.components, 1);
        assert_eq!(s.hull_violations, 0);
        assert_eq!(s.voronoi_correct, 1.0);
        assert_eq!(s.drift_mean, 0.0);
        assert_eq!(s.stale_share, 0.0);
        assert_eq!(s.dead_kept, 0);
    }

    #[test]
    fn each_metric_catches_its_defect() {
        let world = World::new(1200.0, 1200.0);
        let (truth, views) = perfect(500, world, 100.0, 2);
        let opts = Options::default();

        // A missing aware neighbour lowers consistency (and nothing else).
        let mut v = views.clone();
        let victim = v[0]
            .iter()
            .position(|k| !k.enclosing && world.distance(k.pos, truth[0].pos) <= 100.0)
            .unwrap();
        v[0].remove(victim);
        let s = check(world, &truth, &v, opts);
        assert!(s.consistency < 1.0);

        // A dropped enclosing neighbour breaks Voronoi correctness.
        let mut v = views.clone();
        let e = v[3].iter().position(|k| k.enclosing).unwrap();
        v[3][e].enclosing = false;
        assert!(check(world, &truth, &v, opts).voronoi_correct < 1.0);
        // So does a spurious one.
        let mut v = views.clone();
        let e = v[4].iter().position(|k| !k.enclosing).unwrap();
        v[4][e].enclosing = true;
        assert!(check(world, &truth, &v, opts).voronoi_correct < 1.0);

        // A wrong believed position shows as drift and staleness.
        let mut v = views.clone();
        v[5][0].pos.x += 50.0;
        let s = check(world, &truth, &v, opts);
        assert!(s.drift_mean > 0.0 && s.stale_share > 0.0);

        // Keeping only the neighbours on one side is a hull violation.
        let mut v = views.clone();
        let me = truth[6].pos;
        v[6].retain(|k| world.delta(me, k.pos).0 > 0.0);
        assert!(check(world, &truth, &v, opts).hull_violations >= 1);

        // Cutting every edge into one peer splits the graph.
        let mut v = views.clone();
        let lonely = truth[7].id;
        for view in &mut v {
            view.retain(|k| k.id != lonely);
        }
        assert!(check(world, &truth, &v, opts).components >= 2);

        // A view naming a dead peer is counted.
        let mut v = views;
        v[8].push(Kept {
            id: PeerId::from_seed(999_999),
            pos: me,
            enclosing: false,
        });
        assert_eq!(check(world, &truth, &v, opts).dead_kept, 1);
    }

    #[test]
    fn range_finder_matches_brute_force_across_the_seam() {
        let world = World::new(1000.0, 800.0);
        let mut rng = Rng::new(3);
        let pts: Vec<Point> = (0..400)
            .map(|_| crate::mobility::random_point(world, &mut rng))
            .collect();
        let f = RangeFinder::new(world, &pts, 120.0);
        for i in 0..pts.len() {
            let mut brute: Vec<usize> = (0..pts.len())
                .filter(|&j| j != i && world.distance(pts[i], pts[j]) <= 120.0)
                .collect();
            brute.sort_unstable();
            assert_eq!(f.within(i, 120.0), brute, "point {i}");
        }
    }

    #[test]
    fn scc_counts_components() {
        assert_eq!(
            strongly_connected_components(&[vec![1], vec![2], vec![0]]),
            1
        );
        assert_eq!(
            strongly_connected_components(&[vec![1], vec![], vec![0]]),
            3
        );
        assert_eq!(
            strongly_connected_components(&[vec![1], vec![0], vec![3], vec![2]]),
            2
        );
    }
}

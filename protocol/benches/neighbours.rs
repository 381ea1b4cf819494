//! Neighbour recomputation: the local Delaunay view of one peer, and the
//! global torus triangulation the checker uses.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use peerworld_protocol::sim::Rng;
use peerworld_protocol::{Point, World, mobility::random_point, voronoi};

fn local_view(c: &mut Criterion) {
    let world = World::new(1200.0, 1200.0);
    let mut rng = Rng::new(7);
    for k in [10usize, 40, 80] {
        // A peer at the centre of k peers spread over its buffered radius.
        let mut pts = vec![Point::new(600.0, 600.0)];
        while pts.len() <= k {
            let p = random_point(world, &mut rng);
            if world.distance(p, pts[0]) <= 132.0 {
                pts.push(p);
            }
        }
        c.bench_function(&format!("local_adjacency_{k}"), |b| {
            b.iter(|| voronoi::local_adjacency(&pts, world))
        });
    }
}

fn global(c: &mut Criterion) {
    let world = World::new(1200.0, 1200.0);
    let mut rng = Rng::new(8);
    let pts: Vec<Point> = (0..1000).map(|_| random_point(world, &mut rng)).collect();
    c.bench_function("torus_adjacency_1000", |b| {
        b.iter(|| voronoi::torus_adjacency(&pts, world, None))
    });
}

criterion_group!(benches, local_view, global);
criterion_main!(benches);

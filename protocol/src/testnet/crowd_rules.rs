//! Rules that keep a crowd's views small and its walkers known, one test
//! each, on one peer fed by hand.

use super::hello;
use super::rules::{WORLD, lone, run, told_of_a_hint};
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::Message;
use crate::peer::Config;

#[test]
fn a_digest_is_answered_with_peers_heard_from_not_with_hints() {
    // A hint carries its relayer's belief of the radius, often a stale large
    // one from before a crowd shrank it. Digest answers that vouched for
    // hints passed such records on from hint to hint, and a crowd peer kept
    // 60 peers beyond its own reach.
    let (mut p, b, hint) = told_of_a_hint(Point::new(520.0, 520.0));
    let d = PeerId::from_seed(4);
    p.handle(Millis(3), d, hello(1, 500.0, 540.0));
    while p.poll_transmit().is_some() {}
    p.handle(Millis(10), d, Message::Digest { ids: Vec::new() });
    let told: Vec<PeerId> = std::iter::from_fn(|| p.poll_transmit())
        .filter(|t| t.to == d)
        .flat_map(|t| match t.msg {
            Message::Discover { peers, .. } => peers.into_iter().map(|i| i.id).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert!(
        told.contains(&b),
        "the confirmed peer is vouched for: {told:?}"
    );
    assert!(!told.contains(&hint), "the hint is not: {told:?}");
}

#[test]
fn an_adaptive_radius_shrinks_in_a_crowd_and_grows_back_when_it_leaves() {
    use crate::peer::RadiusMode;
    let config = Config {
        world: WORLD,
        radius_mode: RadiusMode::Adaptive,
        neighbours: (8, 40),
        ..Config::default()
    };
    let mut p = lone(1, 500.0, 500.0, config);
    // 100 peers within 20 units.
    let crowd: Vec<PeerId> = (0..100u64).map(|i| PeerId::from_seed(100 + i)).collect();
    for (i, &q) in crowd.iter().enumerate() {
        let ang = i as f32 * 2.4;
        let d = 2.0 + (i as f32 / 100.0).sqrt() * 18.0;
        p.handle(
            Millis(1),
            q,
            hello(1, 500.0 + d * ang.cos(), 500.0 + d * ang.sin()),
        );
    }
    run(&mut p, 300);
    let r = p.info().radius;
    assert!(r < 20.0, "radius {r} in a crowd");
    let reach = r * (1.0 + 32.0 / 100.0);
    let within = p
        .view(Millis(300))
        .neighbours
        .iter()
        .filter(|n| WORLD.distance(n.info.pos, p.info().pos) <= f64::from(reach))
        .count();
    assert!((8..=40).contains(&within), "{within} within reach {reach}");
    // The crowd leaves; the radius grows back to the configured one, never
    // beyond it.
    for (i, &q) in crowd.iter().enumerate() {
        p.handle(Millis(400 + i as u64), q, Message::Leave);
    }
    run(&mut p, 60_000);
    assert_eq!(p.info().radius, 100.0);
    assert!(p.stats().radius_changes >= 2);
}

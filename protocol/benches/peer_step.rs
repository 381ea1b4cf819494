//! One peer's tick with k kept peers that walk: its own step, the moves it
//! receives (each neighbour announces about one tick in five, as dead
//! reckoning does on random-waypoint walkers), its motion round (beliefs
//! advanced, pair discovery), its view rebuilt, and what it sends.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use peerworld_protocol::sim::Rng;
use peerworld_protocol::{Config, Message, Millis, Peer, PeerId, PeerInfo, Point, World};

/// A tick of virtual time, as in the simulator.
const TICK_MS: u64 = 100;

/// Neighbour `i` circles its home (radius 20, 5 units a tick), so the
/// neighbourhood stays put however many ticks the benchmark runs.
fn on_circle(home: Point, phase: f32, tick: u64) -> (Point, Point) {
    let w = 5.0 / 20.0; // radians per tick
    let a = phase + w * tick as f32;
    let pos = Point::new(home.x + 20.0 * a.cos(), home.y + 20.0 * a.sin());
    // Units per second.
    let per_s = 1000.0 / TICK_MS as f32;
    let vel = Point::new(-5.0 * per_s * a.sin(), 5.0 * per_s * a.cos());
    (pos, vel)
}

fn peer_step(c: &mut Criterion) {
    let world = World::new(1200.0, 1200.0);
    for k in [10usize, 40, 80] {
        let mut rng = Rng::new(k as u64);
        let centre = Point::new(600.0, 600.0);
        let config = Config {
            world,
            ..Config::default()
        };
        let me = PeerInfo::new(PeerId::from_seed(0), centre, 100.0, "me");
        let mut p = Peer::new(config, me, Millis(0));
        // k neighbours spread over the buffered radius (112 + the circle).
        let mut homes = Vec::new();
        while homes.len() < k {
            let at = Point::new(
                488.0 + rng.f64() as f32 * 224.0,
                488.0 + rng.f64() as f32 * 224.0,
            );
            if world.distance(at, centre) <= 112.0 {
                homes.push((at, rng.f64() as f32 * std::f32::consts::TAU));
            }
        }
        let ids: Vec<PeerId> = (1..=k as u64).map(PeerId::from_seed).collect();
        for (id, &(home, phase)) in ids.iter().zip(&homes) {
            let (pos, _) = on_circle(home, phase, 0);
            let hello = Message::Hello {
                inc: 0,
                seq: 1,
                pos,
                radius: 100.0,
                name: String::new(),
                addr: String::new(),
                ask: false,
            };
            p.handle(Millis(1), *id, hello);
        }
        let mut tick = 1u64;
        let mut seq = 1u32;
        let mut step = |p: &mut Peer| {
            tick += 1;
            seq += 1;
            let now = Millis(tick * TICK_MS);
            for (i, (id, &(home, phase))) in ids.iter().zip(&homes).enumerate() {
                if (i as u64 + tick).is_multiple_of(5) {
                    let (pos, vel) = on_circle(home, phase, tick);
                    let msg = Message::Move {
                        inc: 0,
                        seq,
                        pos,
                        vel,
                    };
                    p.handle(now, *id, msg);
                }
            }
            let (own, _) = on_circle(centre, 0.0, tick);
            p.move_to(own, now);
            while let Some(t) = p.poll_timeout().filter(|t| *t <= now) {
                p.handle_timeout(t);
            }
            let mut sent = 0;
            while p.poll_transmit().is_some() {
                sent += 1;
            }
            while p.poll_event().is_some() {}
            sent
        };
        // Settle: the first views, greetings and fan notices.
        for _ in 0..50 {
            step(&mut p);
        }
        assert!(p.kept_count() >= k * 9 / 10, "kept {}", p.kept_count());
        c.bench_function(&format!("peer_step_{k}"), |b| b.iter(|| step(&mut p)));
    }
}

criterion_group!(benches, peer_step);
criterion_main!(benches);

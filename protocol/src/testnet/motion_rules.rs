//! Dead reckoning over the test network: what moving costs, and how far a
//! neighbour's belief may be from the truth.

use super::Net;
use crate::geometry::{Point, World};
use crate::id::PeerId;
use crate::peer::Config;

const WORLD: World = World {
    width: 1000.0,
    height: 1000.0,
};
/// One step of the walkers below, every `STEP_MS`.
const STEP: f32 = 5.0;
const STEP_MS: u64 = 100;

/// Nine peers on a 3 × 3 grid 60 apart, joined and settled.
/// The test world, with a tolerance of 4 units.
fn config() -> Config {
    Config {
        world: WORLD,
        epsilon: 4.0,
        ..Config::default()
    }
}

fn grid(net: &mut Net) -> Vec<PeerId> {
    let first = net.add(1, 400.0, 400.0);
    let mut ids = vec![first];
    for i in 1..9u64 {
        let (x, y) = (400.0 + 60.0 * (i % 3) as f32, 400.0 + 60.0 * (i / 3) as f32);
        ids.push(net.add_joining(i + 1, x, y, first));
        net.drive(200);
    }
    net.drive(3_000);
    net.assert_invariants("settled");
    ids
}

fn announced(net: &Net, ids: &[PeerId]) -> u64 {
    ids.iter()
        .map(|id| net.peers[id].stats().moves_announced)
        .sum()
}

/// Every peer of `ids` walks east in step, `STEP` units every `STEP_MS`,
/// `steps` times.
fn walk_east(net: &mut Net, ids: &[PeerId], steps: u64) {
    for _ in 0..steps {
        for &id in ids {
            let p = net.peers[&id].info().pos;
            net.move_to(id, p.x + STEP, p.y);
        }
        net.drive(STEP_MS);
    }
}

#[test]
fn a_still_world_and_a_straight_walking_one_send_almost_no_moves_after_settling() {
    let mut net = Net::with_config(config(), 20);
    let ids = grid(&mut net);
    // Still: nothing to announce.
    let before = announced(&net, &ids);
    net.drive(5_000);
    assert_eq!(
        announced(&net, &ids),
        before,
        "a still world announced moves"
    );
    // Everyone walks east in step, 5 units every 100 ms, for 10 s.
    let steps = 100;
    let before = announced(&net, &ids);
    walk_east(&mut net, &ids, steps);
    let per_peer = (announced(&net, &ids) - before) as f64 / ids.len() as f64;
    // The first step, then one refresh a second: not one per step.
    let refreshes = (steps * STEP_MS) as f64 / net.config.motion_refresh_ms as f64;
    assert!(
        per_peer <= refreshes + 2.0,
        "{per_peer} announcements per peer over {steps} straight steps"
    );
    net.assert_invariants("after walking");
}

#[test]
fn a_turning_walker_is_never_further_than_epsilon_and_a_step_from_where_its_neighbours_believe_it()
{
    let mut net = Net::with_config(config(), 20);
    let ids = grid(&mut net);
    let walker = ids[4];
    let bound = f64::from(net.config.epsilon + STEP);
    let mut worst = 0.0f64;
    let mut heading = 0.0f32;
    // The heading changes every step: by 25° for 5 s, then zigzags.
    for step in 0..150 {
        heading += if step < 50 {
            0.44
        } else if step % 2 == 0 {
            1.2
        } else {
            -1.2
        };
        let p = net.peers[&walker].info().pos;
        net.move_to(
            walker,
            p.x + STEP * heading.cos(),
            p.y + STEP * heading.sin(),
        );
        // Look every 10 ms, deliveries included.
        for _ in 0..STEP_MS / 10 {
            net.drive(10);
            let truth = net.peers[&walker].info().pos;
            for id in &ids {
                if *id == walker {
                    continue;
                }
                let believed = net.peers[id]
                    .kept_at(net.now)
                    .find(|k| k.0 == walker)
                    .map(|k| k.1);
                if let Some(b) = believed {
                    worst = worst.max(WORLD.distance(b, truth));
                }
            }
        }
    }
    assert!(
        worst <= bound,
        "a belief was {worst:.2} from the walker (bound {bound})"
    );
    // Not a bound met by sending every step.
    let steps_announced = net.peers[&walker].stats().moves_announced;
    assert!(
        steps_announced < 150,
        "{steps_announced} announcements for 150 steps"
    );
    net.assert_invariants("after turning");
    let _ = Point::default();
}

/// Messages delivered (all, and moves) while every peer of a settled grid
/// walks east in step for 10 s; then, after one crashed, how long until the
/// first of the others dropped it, and until none kept it.
fn walk_then_crash(heartbeat_ms: u64) -> ((usize, usize), (u64, u64)) {
    let mut net = Net::with_config(config().with_heartbeat(heartbeat_ms), 20);
    let ids = grid(&mut net);
    let before = net.log.len();
    walk_east(&mut net, &ids, 100);
    let sent = &net.log[before..];
    let sent = (
        sent.len(),
        sent.iter().filter(|(_, _, m)| m.kind() == "move").count(),
    );
    net.assert_invariants("after walking");
    let gone = ids[4];
    let others: Vec<PeerId> = ids.iter().copied().filter(|&id| id != gone).collect();
    net.crash(gone);
    let crashed = net.now;
    let mut first = None;
    while others.iter().any(|&id| net.keeps(id, gone)) {
        assert!(
            net.now.since(crashed) < 60_000,
            "a crashed peer was kept for a minute"
        );
        if first.is_none() && others.iter().any(|&id| !net.keeps(id, gone)) {
            first = Some(net.now.since(crashed));
        }
        net.drive(50);
    }
    let last = net.now.since(crashed);
    (sent, (first.unwrap_or(last), last))
}

#[test]
fn a_longer_heartbeat_sends_fewer_messages_and_still_drops_a_crashed_neighbour_within_three() {
    assert_eq!(Config::default().with_heartbeat(1_000), Config::default());
    let (sent_1s, dropped_1s) = walk_then_crash(1_000);
    let (sent_2s, dropped_2s) = walk_then_crash(2_000);
    // Walking straight, a peer's moves are its refreshes. (The grid's
    // outer peers, on the hull of a sparse world, also send repair digests
    // every half second whatever the heartbeat.)
    assert!(
        (sent_2s.1 as f64) < 0.65 * sent_1s.1 as f64 && sent_2s.0 < sent_1s.0,
        "(messages, moves): {sent_2s:?} with a 2 s heartbeat, {sent_1s:?} with 1 s"
    );
    // A crash is noticed after three heartbeats of silence: the first
    // neighbour drops it no sooner than two after the crash (it may have
    // heard it last up to a heartbeat before), the last within three (a
    // maintenance round and a latency of slack).
    for (hb, (first, last)) in [(1_000, dropped_1s), (2_000, dropped_2s)] {
        assert!(
            first >= 2 * hb && last <= 3 * hb + 300,
            "heartbeat {hb} ms: the crashed peer was first dropped after {first} ms, by all after {last} ms"
        );
    }
}

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
    for _ in 0..steps {
        for &id in &ids {
            let p = net.peers[&id].info().pos;
            net.move_to(id, p.x + STEP, p.y);
        }
        net.drive(STEP_MS);
    }
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

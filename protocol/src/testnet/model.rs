//! A model test (proptest-state-machine): random sequences of joins, goodbyes,
//! crashes, walks and short partitions, with the invariants checked on the
//! test network after each step has settled.
//!
//! Each step runs long enough to settle (more than the failure timeout plus
//! a repair round); a partition lasts less than the failure timeout. Longer
//! partitions are not healed today (see the issue on real dynamics).

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use super::Net;
use crate::geometry::World;
use crate::id::PeerId;

const WORLD: World = World {
    width: 800.0,
    height: 800.0,
};
/// Virtual time each step runs before the check.
const SETTLE_MS: u64 = 6_000;

#[derive(Clone, Debug)]
enum Step {
    Join { x: f32, y: f32, via: usize },
    Leave(usize),
    Crash(usize),
    Walk { who: usize, dx: f32, dy: f32 },
    ShortPartition { split: usize },
}

/// The reference: how many peers are alive and the next seed.
#[derive(Clone, Debug)]
struct Model {
    alive: usize,
    next_seed: u64,
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(Model {
            alive: 1,
            next_seed: 2,
        })
        .boxed()
    }

    fn transitions(state: &Self::State) -> BoxedStrategy<Self::Transition> {
        let n = state.alive.max(1);
        let join =
            (0f32..800.0, 0f32..800.0, 0..n).prop_map(|(x, y, via)| Step::Join { x, y, via });
        if state.alive < 3 {
            return join.boxed();
        }
        prop_oneof![
            4 => join,
            1 => (0..n).prop_map(Step::Leave),
            1 => (0..n).prop_map(Step::Crash),
            3 => (0..n, -40f32..40.0, -40f32..40.0)
                .prop_map(|(who, dx, dy)| Step::Walk { who, dx, dy }),
            1 => (1..n).prop_map(|split| Step::ShortPartition { split }),
        ]
        .boxed()
    }

    fn apply(mut state: Self::State, t: &Self::Transition) -> Self::State {
        match t {
            Step::Join { .. } => {
                state.alive += 1;
                state.next_seed += 1;
            }
            Step::Leave(_) | Step::Crash(_) => state.alive -= 1,
            Step::Walk { .. } | Step::ShortPartition { .. } => {}
        }
        state
    }

    fn preconditions(state: &Self::State, t: &Self::Transition) -> bool {
        match t {
            Step::Join { via, .. } => *via < state.alive && state.alive < 14,
            Step::Leave(i) | Step::Crash(i) => *i < state.alive && state.alive >= 3,
            Step::Walk { who, .. } => *who < state.alive,
            Step::ShortPartition { split } => *split < state.alive,
        }
    }
}

/// The network under test and its live peers in join order.
struct Sut {
    net: Net,
    live: Vec<PeerId>,
    next_seed: u64,
}

struct OverlayModel;

impl StateMachineTest for OverlayModel {
    type SystemUnderTest = Sut;
    type Reference = Model;

    fn init_test(_: &Model) -> Sut {
        let mut net = Net::new(WORLD, 40);
        let first = net.add(1, 400.0, 400.0);
        Sut {
            net,
            live: vec![first],
            next_seed: 2,
        }
    }

    fn apply(mut sut: Sut, _: &Model, t: Step) -> Sut {
        match t {
            Step::Join { x, y, via } => {
                let via = sut.live[via];
                let id = sut.net.add_joining(sut.next_seed, x, y, via);
                sut.next_seed += 1;
                sut.live.push(id);
            }
            Step::Leave(i) => {
                let id = sut.live.remove(i);
                sut.net.leave(id);
            }
            Step::Crash(i) => {
                let id = sut.live.remove(i);
                sut.net.crash(id);
            }
            Step::Walk { who, dx, dy } => {
                let id = sut.live[who];
                let p = sut.net.peers[&id].info().pos;
                sut.net.move_to(id, p.x + dx, p.y + dy);
            }
            Step::ShortPartition { split } => {
                let (left, right) = sut.live.split_at(split);
                let (left, right) = (left.to_vec(), right.to_vec());
                sut.net.partition(&left, &right);
                sut.net.drive(1_500);
                sut.net.heal();
            }
        }
        sut.net.drive(SETTLE_MS);
        sut
    }

    fn check_invariants(sut: &Sut, _: &Model) {
        let s = sut.net.check();
        assert_eq!(
            s.peers,
            sut.live.len(),
            "every live peer is part of the world"
        );
        assert!(
            s.consistency == 1.0,
            "consistency {} ({} peers)",
            s.consistency,
            s.peers
        );
        assert!(s.components <= 1, "{} components", s.components);
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 200,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_invariants_hold_after_every_settled_join_leave_crash_walk_and_partition(
        sequential 1..24 => OverlayModel
    );
}

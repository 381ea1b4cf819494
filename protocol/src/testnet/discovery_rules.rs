//! Discovery rules, one test each: pairs introduced before they meet,
//! greetings, `Forget`, the table's cap, and when the view is rebuilt.

use super::rules::{WORLD, config, greeted_by, lone, run};
use super::{Net, hello};
use crate::Millis;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::Message;
use crate::peer::{Config, Event, Peer, RemoveReason};

#[test]
fn a_common_neighbour_introduces_a_pair_before_it_crosses_the_radius() {
    let mut net = Net::new(WORLD, 50);
    let a = net.add(1, 500.0, 500.0);
    // Peers all over the world, so that no cell wraps around the torus.
    let mut seed = 100;
    for x in [100.0, 300.0, 700.0, 900.0] {
        for y in [100.0, 300.0, 700.0, 900.0] {
            net.add_joining(seed, x, y, a);
            seed += 1;
            net.drive(300);
        }
    }
    // a, d and e stand between b and c, so b and c are not Voronoi
    // neighbours either.
    let d = net.add_joining(4, 500.0, 560.0, a);
    net.drive(500);
    let e = net.add_joining(5, 500.0, 440.0, a);
    net.drive(500);
    let b = net.add_joining(2, 410.0, 505.0, a);
    net.drive(1_000);
    let c = net.add_joining(3, 590.0, 500.0, a);
    net.drive(3_000);
    assert!(net.keeps(a, b) && net.keeps(a, c) && net.keeps(d, b) && net.keeps(e, c));
    assert!(!net.keeps(c, b), "180 apart, beyond radius + buffer");
    // b walks toward c; a, which keeps both, tells them about each other
    // once they are within radius + buffer (132), before 100.
    let mut x = 410.0;
    while x < 470.0 {
        x += 5.0;
        net.move_to(b, x, 505.0);
        net.drive(100);
    }
    // 120 apart: inside the buffer, outside the radius.
    net.drive(300);
    assert!(net.keeps(c, b) && net.keeps(b, c));
    assert!(net.sent(a, c, "discover") >= 1);
}

#[test]
fn a_move_from_a_stranger_out_of_range_is_answered_with_forget() {
    let mut p = lone(1, 100.0, 100.0, config());
    let stranger = PeerId::from_seed(9);
    p.handle(
        Millis(1),
        stranger,
        Message::Move {
            inc: 0,
            seq: 3,
            pos: Point::new(600.0, 600.0),
            vel: Point::default(),
        },
    );
    let t = p.poll_transmit().expect("an answer");
    assert_eq!((t.to, t.msg), (stranger, Message::Forget));
    assert!(!p.keeps(&stranger));
}

#[test]
fn a_greeting_is_answered_and_an_answer_is_not() {
    // Two peers that disagree on keeping each other used to bounce hellos
    // for ever, each dropping the other before the answer came back.
    let mut p = lone(1, 100.0, 100.0, config());
    let (greeter, answerer) = (PeerId::from_seed(2), PeerId::from_seed(3));
    let mut greeting = hello(1, 600.0, 600.0);
    p.handle(Millis(1), greeter, greeting.clone());
    let t = p.poll_transmit().expect("an answer to a greeting");
    assert!(matches!(t.msg, Message::Hello { ask: false, .. }) && t.to == greeter);
    if let Message::Hello { ask, .. } = &mut greeting {
        *ask = false;
    }
    p.handle(Millis(2), answerer, greeting);
    assert!(p.keeps(&answerer), "an answer is learned");
    assert!(p.poll_transmit().is_none(), "an answer was answered");
}

#[test]
fn forget_drops_a_peer_that_is_not_enclosing_but_keeps_an_enclosing_one() {
    let mut p = lone(1, 500.0, 500.0, config());
    // A ring of six at 40 units, and `hidden` right behind one of them.
    for i in 0..6u64 {
        let ang = i as f32 * std::f32::consts::TAU / 6.0;
        p.handle(
            Millis(1),
            PeerId::from_seed(10 + i),
            hello(1, 500.0 + 40.0 * ang.cos(), 500.0 + 40.0 * ang.sin()),
        );
    }
    let hidden = PeerId::from_seed(99);
    p.handle(Millis(1), hidden, hello(1, 590.0, 500.0));
    run(&mut p, 20);
    assert!(p.keeps(&hidden), "in range");
    let ring0 = PeerId::from_seed(10);
    p.handle(Millis(30), ring0, Message::Forget);
    assert!(p.keeps(&ring0), "enclosing: still needed");
    p.handle(Millis(31), hidden, Message::Forget);
    assert!(!p.keeps(&hidden));
    let removed: Vec<Event> = std::iter::from_fn(|| p.poll_event()).collect();
    assert!(removed.contains(&Event::NeighbourRemoved(hidden, RemoveReason::Forgotten)));
}

#[test]
fn a_forget_from_an_enclosing_neighbour_walks_a_join_for_our_own_place() {
    // A joiner given a poor view kept only far peers that answered each of
    // its moves with `Forget` (which kept them alive), for ever. Their
    // `Forget` now sends a probe: the owner of our place answers.
    let mut p = lone(1, 500.0, 500.0, config());
    let far = PeerId::from_seed(2);
    p.handle(Millis(1), far, hello(1, 800.0, 500.0));
    run(&mut p, 200);
    while p.poll_transmit().is_some() {}
    assert!(p.kept().any(|(id, _, enclosing)| id == far && enclosing));
    let me = p.id();
    let probes = |p: &mut Peer| {
        std::iter::from_fn(|| p.poll_transmit())
            .filter(|t| {
                t.to == far
                    && matches!(&t.msg, Message::Join { joiner, hops: 0, .. } if joiner.id == me)
            })
            .count()
    };
    p.handle(Millis(300), far, Message::Forget);
    assert!(p.keeps(&far), "an enclosing neighbour is kept");
    assert_eq!(probes(&mut p), 1, "a probe through it");
    p.handle(Millis(400), far, Message::Forget);
    assert_eq!(probes(&mut p), 0, "at most one probe per join retry");
    p.handle(Millis(1_400), far, Message::Forget);
    assert_eq!(probes(&mut p), 1);
}

#[test]
fn the_cap_evicts_the_farthest_peers_that_are_not_enclosing() {
    let config = Config {
        world: WORLD,
        max_kept: 8,
        ..Config::default()
    };
    let mut p = lone(1, 500.0, 500.0, config);
    // Six close around us, then six farther out behind them.
    let mut far = Vec::new();
    for i in 0..6u64 {
        let ang = i as f32 * std::f32::consts::TAU / 6.0;
        let (c, s) = (ang.cos(), ang.sin());
        p.handle(
            Millis(1),
            PeerId::from_seed(10 + i),
            hello(1, 500.0 + 30.0 * c, 500.0 + 30.0 * s),
        );
        let id = PeerId::from_seed(20 + i);
        p.handle(
            Millis(1),
            id,
            hello(
                1,
                500.0 + (70.0 + i as f32) * c,
                500.0 + (70.0 + i as f32) * s,
            ),
        );
        far.push(id);
    }
    run(&mut p, 20);
    assert_eq!(p.kept_count(), 8);
    for i in 0..6u64 {
        assert!(p.keeps(&PeerId::from_seed(10 + i)), "enclosing stay");
    }
    // The two farthest of the outer ring went.
    assert!(!p.keeps(&far[5]) && !p.keeps(&far[4]));
    assert!(p.keeps(&far[0]) && p.keeps(&far[1]));
}

#[test]
fn far_hints_wait_for_the_motion_round_unless_the_table_grew_by_an_eighth() {
    // A fixed radius rebuilds the view once per motion round (here one in
    // 1 000 s, so none comes during the test); a table that grew by an
    // eighth (at least 4 peers) since the last view is pruned at once.
    let config = Config {
        world: WORLD,
        motion_ms: 1_000_000,
        ..Config::default()
    };
    let mut p = lone(1, 500.0, 500.0, config);
    let ring: Vec<PeerId> = (0..6u64).map(|i| PeerId::from_seed(10 + i)).collect();
    for (i, &id) in ring.iter().enumerate() {
        let ang = i as f32 * std::f32::consts::TAU / 6.0;
        p.handle(
            Millis(1),
            id,
            hello(1, 500.0 + 40.0 * ang.cos(), 500.0 + 40.0 * ang.sin()),
        );
    }
    run(&mut p, 100);
    assert_eq!(p.kept_count(), 6);
    // Hints 200 to 230 units away, behind the ring: neither in range nor
    // enclosing.
    let far = |from: u64, n: u64| -> Vec<PeerInfo> {
        (from..from + n)
            .map(|s| {
                let ang = s as f32 * 0.7;
                let d = 200.0 + (s % 4) as f32 * 10.0;
                let at = Point::new(500.0 + d * ang.cos(), 500.0 + d * ang.sin());
                PeerInfo::new(PeerId::from_seed(s), at, 100.0, "far")
            })
            .collect()
    };
    let tell = |p: &mut Peer, at: u64, peers: Vec<PeerInfo>| {
        let discover = Message::Discover {
            peers,
            mutual: false,
        };
        p.handle(Millis(at), ring[0], discover);
    };
    tell(&mut p, 200, far(100, 3));
    run(&mut p, 300);
    assert_eq!(p.kept_count(), 9, "three more wait for the round");
    tell(&mut p, 400, far(200, 10));
    let delay = p.config().recompute_delay_ms;
    run(&mut p, 400 + delay);
    assert_eq!(p.kept_count(), 6, "a table grown by ten is pruned at once");
}

#[test]
fn a_pair_is_told_by_the_few_peers_nearest_its_midpoint_only() {
    // x walks to within reach (132) of y; their midpoint is (505, 540),
    // 40 units from the peer under test at (500, 500).
    let told = |nearer: &[(f32, f32)]| {
        let mut at = vec![(430.0, 540.0), (570.0, 540.0)];
        at.extend_from_slice(nearer);
        let (mut p, ids) = greeted_by(&at);
        run(&mut p, 300);
        let (x, y) = (ids[0], ids[1]);
        let enclosing = p.kept().any(|(id, _, e)| id == x && e);
        let step = Message::Move {
            inc: 0,
            seq: 2,
            pos: Point::new(440.0, 540.0),
            vel: Point::default(),
        };
        p.handle(Millis(400), x, step);
        // Pairs are judged at the next motion round.
        let mut out: Vec<_> = std::iter::from_fn(|| p.poll_transmit()).collect();
        out.extend(run(&mut p, 600));
        let sent = out
            .into_iter()
            .filter(|t| matches!(t.msg, Message::Discover { .. }))
            .map(|t| t.to)
            .collect::<Vec<_>>();
        (enclosing, sent, x, y)
    };
    let (_, sent, x, y) = told(&[]);
    assert!(
        sent.contains(&x) && sent.contains(&y),
        "the nearest tells both"
    );
    // Three peers nearer the midpoint: they tell it, this one does not,
    // although the mover is its Voronoi neighbour (which used to be enough).
    let (enclosing, sent, _, _) = told(&[(505.0, 545.0), (500.0, 535.0), (510.0, 535.0)]);
    assert!(enclosing, "the mover is enclosing here");
    assert!(sent.is_empty(), "told by a fourth: {sent:?}");
}

#[test]
fn a_pair_is_told_whether_or_not_the_view_spans_half_the_world() {
    // The pair checks skip the torus while the view's coordinates lie
    // within less than half the world of each other; a far enclosing
    // neighbour (490 units below, 530 from the pair's row) switches them to
    // the wrapping form. Both must tell the pair, whichever end moves (the
    // lower id's side is checked in chunks, the higher id's against the
    // still rows below it).
    for far in [None, Some((500.0, 10.0))] {
        for lower_moves in [true, false] {
            let mut at = vec![(430.0, 540.0), (570.0, 540.0)];
            at.extend(far);
            let (mut p, ids) = greeted_by(&at);
            run(&mut p, 300);
            if far.is_some() {
                assert!(p.keeps(&ids[2]), "the far peer is kept (enclosing)");
            }
            // The mover steps 10 units towards the other, into reach.
            let (mover, pos) = if (ids[0] < ids[1]) == lower_moves {
                (ids[0], Point::new(440.0, 540.0))
            } else {
                (ids[1], Point::new(560.0, 540.0))
            };
            let step = Message::Move {
                inc: 0,
                seq: 2,
                pos,
                vel: Point::default(),
            };
            p.handle(Millis(400), mover, step);
            let mut out: Vec<_> = std::iter::from_fn(|| p.poll_transmit()).collect();
            out.extend(run(&mut p, 600));
            let told: Vec<PeerId> = out
                .into_iter()
                .filter(|t| matches!(t.msg, Message::Discover { .. }))
                .map(|t| t.to)
                .collect();
            assert!(
                told.contains(&ids[0]) && told.contains(&ids[1]),
                "far peer {far:?}, lower id moves {lower_moves}: told {told:?}"
            );
        }
    }
}

#[test]
fn a_stranger_just_beyond_reach_is_learned_within_twice_the_tolerance() {
    // Whoever told it of us judged the pair on beliefs, each off by up to
    // the tolerance: a `Forget` here would undo that introduction.
    let cfg = config();
    let (reach, eps) = (cfg.radius + cfg.buffer, cfg.epsilon);
    let first = |d: f32| {
        let mut p = lone(1, 100.0, 100.0, config());
        let stranger = PeerId::from_seed(9);
        let step = Message::Move {
            inc: 0,
            seq: 3,
            pos: Point::new(100.0 + d, 100.0),
            vel: Point::default(),
        };
        p.handle(Millis(1), stranger, step);
        (p.keeps(&stranger), p.poll_transmit().map(|t| t.msg))
    };
    let (kept, answer) = first(reach + 1.5 * eps);
    assert!(kept, "learned within reach + 2ε");
    assert!(!matches!(answer, Some(Message::Forget)), "{answer:?}");
    let (kept, answer) = first(reach + 3.0 * eps);
    assert!(!kept);
    assert_eq!(answer, Some(Message::Forget));
}

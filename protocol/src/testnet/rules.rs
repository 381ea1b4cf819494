//! One behaviour test per rule, over a few peers on the test network (or one
//! peer fed by hand where the rule is local).

use super::{Net, hello};
use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{PeerId, PeerInfo};
use crate::message::Message;
use crate::peer::{Config, Event, Peer, RemoveReason, short4};

const WORLD: World = World {
    width: 1000.0,
    height: 1000.0,
};

pub(super) fn lone(seed: u64, x: f32, y: f32, config: Config) -> Peer {
    let info = PeerInfo::new(PeerId::from_seed(seed), Point::new(x, y), 100.0, "p");
    Peer::new(config, info, Millis(0))
}

/// The token of the last join or probe `p` sent (its queued messages are
/// drained).
pub(super) fn join_token(p: &mut Peer) -> u64 {
    std::iter::from_fn(|| p.poll_transmit())
        .filter_map(|t| match t.msg {
            Message::Join { token, hops: 0, .. } => Some(token),
            _ => None,
        })
        .last()
        .expect("no join sent")
}

/// Runs a lone peer's timers until `until` and returns what it sent.
pub(super) fn run(p: &mut Peer, until: u64) -> Vec<crate::peer::Transmit> {
    let mut out = Vec::new();
    while let Some(t) = p.poll_timeout().filter(|t| t.0 <= until) {
        p.handle_timeout(t);
        out.extend(std::iter::from_fn(|| p.poll_transmit()));
    }
    out
}

/// A lone peer at (500, 500) greeted by one peer at each of `at` (seeds 2,
/// 3, …), with what it sent in answer drained. Returns it and their ids.
pub(super) fn greeted_by(at: &[(f32, f32)]) -> (Peer, Vec<PeerId>) {
    let mut p = lone(1, 500.0, 500.0, config());
    let ids: Vec<PeerId> = (2..).take(at.len()).map(PeerId::from_seed).collect();
    for (&id, &(x, y)) in ids.iter().zip(at) {
        p.handle(Millis(1), id, hello(1, x, y));
    }
    while p.poll_transmit().is_some() {}
    (p, ids)
}

/// A lone peer at (500, 500) that keeps `b` (seed 2, confirmed) and was
/// told by `b` of the hint `c` (seed 3) at `c_at`.
pub(super) fn told_of_a_hint(c_at: Point) -> (Peer, PeerId, PeerId) {
    let mut p = lone(1, 500.0, 500.0, config());
    let (b, c) = (PeerId::from_seed(2), PeerId::from_seed(3));
    p.handle(Millis(1), b, hello(1, 540.0, 500.0));
    let hint = PeerInfo::new(c, c_at, 100.0, "c");
    let discover = Message::Discover {
        peers: vec![hint],
        mutual: false,
    };
    p.handle(Millis(2), b, discover);
    (p, b, c)
}

pub(super) fn config() -> Config {
    Config {
        world: WORLD,
        ..Config::default()
    }
}

#[test]
fn peers_joining_one_after_another_through_one_entry_all_keep_each_other() {
    let mut net = Net::new(WORLD, 20);
    let a = net.add(1, 500.0, 500.0);
    let b = net.add_joining(2, 550.0, 500.0, a);
    net.drive(500);
    let c = net.add_joining(3, 500.0, 560.0, a);
    net.drive(3_000);
    for (x, y) in [(a, b), (a, c), (b, c)] {
        assert!(net.keeps(x, y) && net.keeps(y, x), "{x} and {y}");
    }
    assert_eq!(net.sent(c, a, "join"), 2, "the join and its probe");
    net.assert_invariants("after three joins");
}

#[test]
fn an_unanswered_join_is_sent_again_until_it_is_answered() {
    let config = Config {
        world: WORLD,
        join_retry_ms: 2_000,
        ..Config::default()
    };
    let mut net = Net::with_config(config, 20);
    let a = net.add(1, 500.0, 500.0);
    let b = net.add(2, 550.0, 500.0);
    net.hold(b, a);
    let now = net.now;
    net.peer(b).join(a, now);
    // Retries are checked on the 250 ms maintenance round: by 4.6 s, two.
    net.drive(4_600);
    assert!(net.peers[&b].is_joining());
    net.release(b, a);
    net.drive(1_000);
    assert_eq!(net.sent(b, a, "join"), 3, "the join and two retries");
    assert!(net.peers[&b].is_joined() && net.confirmed(b, a) && net.confirmed(a, b));
}

#[test]
fn a_join_is_forwarded_greedily_to_the_peer_whose_cell_holds_the_joiner() {
    let mut net = Net::new(WORLD, 10);
    let a = net.add(1, 100.0, 100.0);
    let b = net.add_joining(2, 180.0, 100.0, a);
    net.drive(1_000);
    let c = net.add_joining(3, 260.0, 100.0, b);
    net.drive(1_000);
    // A newcomer next to c, entering through a: a forwards toward it.
    let d = net.add_joining(4, 300.0, 110.0, a);
    net.drive(3_000);
    assert!(net.sent(a, b, "join") >= 1, "a forwards to b");
    assert!(net.sent(c, d, "join_reply") >= 1, "c accepts");
    assert!(net.keeps(d, c) && net.keeps(c, d));
    net.assert_invariants("after a forwarded join");
}

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
fn a_digest_is_answered_with_the_fresh_records_the_sender_lacks() {
    let (mut p, ids) = greeted_by(&[(540.0, 500.0), (560.0, 530.0), (470.0, 480.0)]);
    let (b, c, d) = (ids[0], ids[1], ids[2]);
    // b knows c already, not d: it gets d (and us), not c.
    let mut ids = vec![short4(&c)];
    ids.sort_unstable();
    p.handle(Millis(5), b, Message::Digest { ids });
    let t = p.poll_transmit().expect("a discover");
    let Message::Discover { peers, .. } = t.msg else {
        panic!("expected a discover, got {:?}", t.msg);
    };
    let named: Vec<PeerId> = peers.iter().map(|p| p.id).collect();
    assert!(named.contains(&d) && !named.contains(&c) && !named.contains(&b));
}

#[test]
fn after_a_short_partition_heals_digests_reintroduce_the_two_sides() {
    let mut net = Net::new(WORLD, 20);
    let a = net.add(1, 500.0, 500.0);
    let b = net.add_joining(2, 560.0, 500.0, a);
    net.drive(1_000);
    net.partition(&[a], &[PeerId::from_seed(3)]);
    let c = net.add_joining(3, 530.0, 560.0, b);
    net.drive(2_500);
    assert!(
        !net.confirmed(a, c) && !net.confirmed(c, a),
        "cut apart, at most hints"
    );
    net.heal();
    let digests_before = net.sent(a, b, "digest") + net.sent(c, b, "digest");
    net.drive(4_500);
    assert!(net.sent(a, b, "digest") + net.sent(c, b, "digest") > digests_before);
    assert!(net.confirmed(a, c) && net.confirmed(c, a));
    net.assert_invariants("after the partition healed");
}

#[test]
fn a_gap_of_half_a_turn_asks_the_two_peers_bounding_it() {
    // Both to the east: the west half is uncovered.
    let (mut p, ids) = greeted_by(&[(550.0, 510.0), (550.0, 490.0)]);
    let (b, c) = (ids[0], ids[1]);
    let sent = run(&mut p, 300);
    for id in [b, c] {
        assert!(
            sent.iter()
                .any(|t| t.to == id && matches!(t.msg, Message::Digest { .. })),
            "a repair digest to {id}"
        );
    }
    assert!(p.stats().repairs >= 2);
}

#[test]
fn a_teleport_leaves_the_old_place_and_joins_the_new_one() {
    let config = Config {
        world: WORLD,
        teleport_distance: 300.0,
        ..Config::default()
    };
    let mut net = Net::with_config(config, 20);
    let a = net.add(1, 200.0, 200.0);
    let old: Vec<PeerId> = [(2, 250.0, 200.0), (3, 200.0, 250.0)]
        .into_iter()
        .map(|(s, x, y)| net.add_joining(s, x, y, a))
        .collect();
    net.drive(1_000);
    let new: Vec<PeerId> = [(4, 700.0, 700.0), (5, 750.0, 700.0), (6, 700.0, 750.0)]
        .into_iter()
        .map(|(s, x, y)| {
            let id = net.add_joining(s, x, y, a);
            net.drive(500);
            id
        })
        .collect();
    net.drive(3_000);
    let t = old[0];
    net.move_to(t, 730.0, 730.0);
    net.drive(4_000);
    for &n in &new {
        assert!(net.keeps(t, n) && net.keeps(n, t), "{t} and {n}");
    }
    net.assert_invariants("after the teleport");
}

#[test]
fn a_join_reply_for_a_place_we_jumped_away_from_does_not_end_our_join() {
    // The late answer to the probe of our previous place once ended the
    // join at the new one with a view of the old: stranded.
    let mut p = lone(1, 500.0, 500.0, config());
    let (b, c) = (PeerId::from_seed(2), PeerId::from_seed(3));
    p.handle(Millis(1), b, hello(1, 540.0, 500.0));
    assert!(p.is_joined());
    p.probe_through(b, Millis(1));
    let probe = join_token(&mut p);
    p.move_to(Point::new(100.0, 100.0), Millis(2));
    assert!(!p.is_joined(), "a jump is a join at the new place");
    let join = join_token(&mut p);
    let reply = |at: Point, token| Message::JoinReply {
        hops: 1,
        at,
        peers: vec![PeerInfo::new(c, Point::new(520.0, 520.0), 100.0, "c")],
        observed_addr: String::new(),
        token,
    };
    p.handle(Millis(3), c, reply(Point::new(500.0, 500.0), probe));
    assert!(!p.is_joined(), "a reply for the old place ended the join");
    p.handle(Millis(4), c, reply(Point::new(100.0, 100.0), join));
    assert!(p.is_joined());
}

#[test]
fn a_jump_right_after_a_join_reply_joins_through_a_hint() {
    // Right after a join reply every kept peer may still be a hint: a jump
    // then left the peer alone, and the first record told made a world of a
    // view of the old place (stranded: 2 components).
    let mut p = lone(1, 500.0, 500.0, config());
    let (b, c) = (PeerId::from_seed(2), PeerId::from_seed(3));
    p.join(b, Millis(0));
    let token = join_token(&mut p);
    p.handle(
        Millis(1),
        b,
        Message::JoinReply {
            hops: 1,
            at: Point::new(500.0, 500.0),
            peers: vec![
                PeerInfo::new(b, Point::new(530.0, 500.0), 100.0, "b"),
                PeerInfo::new(c, Point::new(500.0, 530.0), 100.0, "c"),
            ],
            observed_addr: String::new(),
            token,
        },
    );
    assert!(p.is_joined() && p.keeps(&b) && p.keeps(&c));
    while p.poll_transmit().is_some() {}
    p.move_to(Point::new(100.0, 100.0), Millis(2));
    assert!(p.is_joining(), "alone after the jump");
    let joins = std::iter::from_fn(|| p.poll_transmit())
        .filter(|t| matches!(&t.msg, Message::Join { hops: 0, .. }))
        .count();
    assert_eq!(joins, 1);
}

#[test]
fn a_teleport_whose_entry_crashes_joins_through_another_kept_peer() {
    let config = Config {
        world: WORLD,
        teleport_distance: 200.0,
        ..Config::default()
    };
    let mut net = Net::with_config(config, 20);
    let a = net.add(1, 300.0, 300.0);
    let mut ids = vec![a];
    for (s, x, y) in [
        (2, 360.0, 300.0),
        (3, 300.0, 360.0),
        (4, 240.0, 300.0),
        (5, 300.0, 240.0),
        (6, 420.0, 330.0),
        (7, 650.0, 650.0),
        (8, 700.0, 650.0),
        (9, 650.0, 700.0),
    ] {
        ids.push(net.add_joining(s, x, y, a));
        net.drive(400);
    }
    net.drive(3_000);
    // t jumps next to peer 6, its nearest kept peer there, which crashes as
    // the join leaves.
    let t = ids[1];
    let entry = ids[5];
    assert!(net.confirmed(t, entry));
    net.move_to(t, 600.0, 600.0);
    net.crash(entry);
    net.drive(6_000);
    assert!(net.peers[&t].is_joined(), "still joining");
    for &n in &ids[6..] {
        assert!(net.confirmed(t, n) && net.confirmed(n, t), "{t} and {n}");
    }
    net.assert_invariants("after the entry crashed");
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
fn a_silent_neighbour_times_out_and_the_rest_repair_around_it() {
    let mut net = Net::new(WORLD, 20);
    let a = net.add(1, 500.0, 500.0);
    let mut ids = vec![a];
    for (s, x, y) in [
        (2, 560.0, 500.0),
        (3, 500.0, 560.0),
        (4, 440.0, 500.0),
        (5, 500.0, 440.0),
    ] {
        ids.push(net.add_joining(s, x, y, a));
        net.drive(300);
    }
    net.drive(3_000);
    net.crash(a);
    net.drive(5_000);
    for &x in &ids[1..] {
        assert!(!net.keeps(x, a), "{x} still keeps the crashed peer");
    }
    net.assert_invariants("after a crash");
}

#[test]
fn a_greeted_hint_answering_is_not_a_restart() {
    // A hint's stamp is (0, 0): a real node's answer (incarnation > 0) was
    // counted as a restart and answered once more.
    let (mut p, _, c) = told_of_a_hint(Point::new(520.0, 530.0));
    let greeted = std::iter::from_fn(|| p.poll_transmit()).any(|t| t.to == c);
    assert!(greeted, "a near hint is greeted");
    let mut answer = hello(1, 520.0, 530.0);
    if let Message::Hello { inc, ask, .. } = &mut answer {
        (*inc, *ask) = (7, false);
    }
    p.handle(Millis(3), c, answer);
    assert_eq!(p.stats().restarts_seen, 0);
    assert!(
        std::iter::from_fn(|| p.poll_transmit()).all(|t| t.to != c),
        "answered again"
    );
}

#[test]
fn a_restarted_peer_is_seen_at_its_new_place_at_once() {
    let mut net = Net::new(WORLD, 20);
    let a = net.add(1, 500.0, 500.0);
    let b = net.add_joining(2, 560.0, 500.0, a);
    let c = net.add_joining(3, 500.0, 560.0, a);
    net.drive(1_000);
    for step in 1..=20 {
        net.move_to(b, 560.0 + step as f32, 500.0);
        net.drive(50);
    }
    net.assert_invariants("before the restart");
    // Back within the failure timeout, with its move counter at 0 again.
    net.restart(b, 1, 540.0, 530.0, a);
    net.drive(300);
    let at = |net: &Net, who: PeerId| {
        net.peers[&who]
            .view(net.now)
            .neighbours
            .iter()
            .find(|n| n.info.id == b)
            .map(|n| n.info.pos)
    };
    assert_eq!(at(&net, a), Some(Point::new(540.0, 530.0)));
    assert_eq!(at(&net, c), Some(Point::new(540.0, 530.0)));
    net.move_to(b, 545.0, 530.0);
    net.drive(100);
    assert_eq!(at(&net, a), Some(Point::new(545.0, 530.0)));
    assert_eq!(at(&net, c), Some(Point::new(545.0, 530.0)));
    // The others greeted the new life: it knows them first-hand.
    assert!(net.confirmed(b, a) && net.confirmed(b, c));
    assert!(net.peers[&a].stats().restarts_seen >= 1);
    // A late move of the old life changes nothing.
    let now = net.now;
    net.peer(a).handle(
        now,
        b,
        Message::Move {
            inc: 0,
            seq: 999,
            pos: Point::new(900.0, 900.0),
            vel: Point::default(),
        },
    );
    assert_eq!(at(&net, a), Some(Point::new(545.0, 530.0)));
    net.drive(3_000);
    net.assert_invariants("after the restart");
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

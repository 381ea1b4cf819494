//! Repair rules, one test each: digests, partitions, hull gaps, timeouts
//! and restarts.

use super::rules::{WORLD, greeted_by, run, told_of_a_hint};
use super::{Net, hello};
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::Message;
use crate::peer::short4;

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
fn a_joiner_that_hears_none_of_the_peers_it_was_given_is_lost_after_its_grace() {
    let mut net = Net::new(WORLD, 20);
    let a = net.add(1, 500.0, 500.0);
    let b = net.add_joining(2, 560.0, 500.0, a);
    // The reply arrives; from then on nothing gets through either way.
    while !net.peer(b).is_joined() {
        net.drive(1);
        assert!(net.now < Millis(1_000), "the join did not complete");
    }
    net.partition(&[a], &[b]);
    let now = net.now;
    assert_eq!(net.peer(b).state(now), crate::PeerState::Joined);
    let timeout = net.config.failure_timeout_ms;
    let grace = crate::peer::JOINER_GRACE_MS.max(timeout);
    net.drive(grace - 100);
    let now = net.now;
    assert_eq!(
        net.peer(b).state(now),
        crate::PeerState::Joined,
        "not lost within the joiner's grace"
    );
    net.drive(200);
    let now = net.now;
    assert_eq!(
        net.peer(b).state(now),
        crate::PeerState::Lost,
        "a joiner that heard nobody stays joined for ever, alone"
    );
    // The first peer of a world, alone from the start, is not lost.
    let mut alone = Net::new(WORLD, 20);
    let first = alone.add(1, 500.0, 500.0);
    alone.drive(3 * timeout);
    let now = alone.now;
    assert_eq!(alone.peer(first).state(now), crate::PeerState::Joined);
}

//! One behaviour test per rule, over a few peers on the test network (or one
//! peer fed by hand where the rule is local): joining and teleporting here,
//! with the helpers the other rule files share; discovery in
//! `discovery_rules.rs`, repair and restarts in `repair_rules.rs`.

use super::{Net, hello};
use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{PeerId, PeerInfo};
use crate::message::Message;
use crate::peer::{Config, Peer};

pub(super) const WORLD: World = World {
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

//! Long links and routes: links are made, kept, bounded and drawn again;
//! a route ends at the owner of its point; strangers cannot flood routes
//! or answer routes nobody sent.

use super::{Net, settled_with};
use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{PeerId, PeerInfo};
use crate::message::{Message, RouteAnswer, RouteAsk};
use crate::peer::{Config, LINK_LIFETIME_MS, ROUTE_BURST};

fn linked_world(n: u64, size: f32, links: usize, seed: u64) -> Net {
    let config = Config {
        world: World::new(size, size),
        long_links: links,
        ..Config::default()
    };
    settled_with(config, n, seed)
}

/// The peer nearest to `p` (ties by id).
fn owner(net: &Net, p: Point) -> PeerId {
    let world = net.config.world;
    net.peers
        .iter()
        .map(|(id, q)| (world.distance_sq(q.info().pos, p), *id))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .expect("peers")
        .1
}

/// Routes from every 4th peer to a spread of points; returns the mean hops
/// and asserts that each ended at the point's owner.
fn route_everywhere(net: &mut Net, size: f32) -> f64 {
    let ids: Vec<PeerId> = net.peers.keys().copied().step_by(4).collect();
    let mut sent = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let t = Point::new(
            (i as f32 * 0.618_034).fract() * size,
            (i as f32 * 0.414_214).fract() * size,
        );
        let now = net.now;
        let token = net.peer(*id).route(now, t);
        sent.push((*id, token, t));
    }
    net.drive(3_000);
    let mut hops = 0u64;
    for (origin, token, t) in &sent {
        let got = net
            .routed
            .iter()
            .find(|r| r.0 == *origin && r.1 == *token)
            .unwrap_or_else(|| panic!("the route of {origin} to {t:?} was not answered"));
        assert_eq!(got.2, owner(net, *t), "the route to {t:?} ended elsewhere");
        hops += u64::from(got.3);
    }
    hops as f64 / sent.len() as f64
}

#[test]
fn every_peer_keeps_its_long_links_and_takes_at_most_twice_as_many() {
    let mut net = linked_world(150, 1500.0, 4, 11);
    net.drive(3_000);
    let world = net.config.world;
    for (id, p) in &net.peers {
        let links: Vec<(PeerId, Point)> = p.long_links().collect();
        assert_eq!(links.len(), 4, "{id} keeps {} links", links.len());
        for (far, _) in links {
            assert!(net.peers.contains_key(&far), "{id} links to a stranger");
            assert_ne!(far, *id);
        }
        assert!(p.incoming_links() <= 8, "{id} takes {}", p.incoming_links());
    }
    // Links are long: most reach beyond the radius.
    let far = net
        .peers
        .values()
        .flat_map(|p| {
            let me = p.info().pos;
            p.long_links()
                .map(move |(_, at)| world.distance(me, at))
                .collect::<Vec<_>>()
        })
        .filter(|d| *d > 100.0)
        .count();
    assert!(
        far >= 150 * 4 * 3 / 4,
        "only {far} links reach beyond the radius"
    );
}

#[test]
fn a_route_ends_at_the_owner_of_its_point_and_long_links_shorten_it() {
    let mut without = linked_world(300, 2400.0, 0, 5);
    let mut with = linked_world(300, 2400.0, 4, 5);
    with.drive(3_000);
    let plain = route_everywhere(&mut without, 2400.0);
    let linked = route_everywhere(&mut with, 2400.0);
    assert!(
        linked < plain * 0.8,
        "links do not shorten routes: {linked:.2} hops against {plain:.2}"
    );
}

#[test]
fn a_link_whose_far_end_crashed_is_drawn_again_to_a_live_peer() {
    let mut net = linked_world(120, 1500.0, 2, 8);
    net.drive(3_000);
    let holder = *net.peers.keys().nth(10).expect("a peer");
    let far: Vec<PeerId> = net.peer(holder).long_links().map(|l| l.0).collect();
    assert_eq!(far.len(), 2);
    net.crash(far[0]);
    // The failure timeout, then a redraw and its probe.
    net.drive(net.config.failure_timeout_ms + 2_000);
    let now: Vec<PeerId> = net.peer(holder).long_links().map(|l| l.0).collect();
    assert_eq!(now.len(), 2, "links now: {now:?}");
    assert!(!now.contains(&far[0]), "still linked to the crashed peer");
    assert!(now.iter().all(|p| net.peers.contains_key(p)));
    assert!(net.peer(holder).stats().links_redrawn >= 1);
}

#[test]
fn links_are_drawn_again_after_their_lifetime() {
    let mut net = linked_world(80, 1500.0, 2, 9);
    net.drive(1_000);
    let made: u64 = net.peers.values().map(|p| p.stats().links_made).sum();
    net.drive(LINK_LIFETIME_MS + 12_000);
    let later: u64 = net.peers.values().map(|p| p.stats().links_made).sum();
    assert!(later >= made + 80, "links made {made} then {later}");
    assert!(net.peers.values().all(|p| p.long_links().count() == 2));
}

#[test]
fn a_far_end_refuses_links_beyond_twice_the_count() {
    let world = World::new(1000.0, 1000.0);
    let config = Config {
        world,
        long_links: 2,
        ..Config::default()
    };
    let mut p = crate::peer::Peer::new(
        config,
        PeerInfo::new(PeerId::from_seed(1), Point::new(500.0, 500.0), 100.0, "p"),
        Millis(0),
    );
    let mut answers = Vec::new();
    for s in 2..10u64 {
        let origin = PeerInfo::new(PeerId::from_seed(s), Point::new(10.0, 10.0), 100.0, "o");
        p.handle(
            Millis(10),
            origin.id,
            Message::Route {
                origin,
                target: Point::new(500.0, 501.0),
                hops: 0,
                token: s,
                ask: RouteAsk::Link,
            },
        );
        while let Some(t) = p.poll_transmit() {
            if let Message::RouteReply { answer, .. } = t.msg {
                answers.push(answer);
            }
        }
    }
    let linked = answers
        .iter()
        .filter(|a| **a == RouteAnswer::Linked)
        .count();
    assert_eq!(linked, 4, "answers: {answers:?}");
    assert_eq!(answers.len(), 8);
    assert_eq!(p.incoming_links(), 4);
}

#[test]
fn a_stranger_cannot_flood_routes_nor_answer_routes_nobody_sent() {
    let config = Config {
        world: World::new(1000.0, 1000.0),
        ..Config::default()
    };
    let mut p = crate::peer::Peer::new(
        config,
        PeerInfo::new(PeerId::from_seed(1), Point::new(500.0, 500.0), 100.0, "p"),
        Millis(0),
    );
    let stranger = PeerInfo::new(PeerId::from_seed(2), Point::new(10.0, 10.0), 100.0, "s");
    for i in 0..1_000u64 {
        p.handle(
            Millis(1),
            stranger.id,
            Message::Route {
                origin: stranger.clone(),
                target: Point::new(500.0, 500.0),
                hops: 0,
                token: i,
                ask: RouteAsk::Find,
            },
        );
    }
    let answered = std::iter::from_fn(|| p.poll_transmit())
        .filter(|t| matches!(t.msg, Message::RouteReply { .. }))
        .count();
    assert_eq!(answered, ROUTE_BURST as usize);
    assert_eq!(p.stats().routes_refused, 1_000 - ROUTE_BURST as u64);
    // A route naming someone else as its first-hop origin.
    let other = PeerInfo::new(PeerId::from_seed(3), Point::new(10.0, 10.0), 100.0, "o");
    p.handle(
        Millis(5_000),
        stranger.id,
        Message::Route {
            origin: other,
            target: Point::new(500.0, 500.0),
            hops: 0,
            token: 1,
            ask: RouteAsk::Find,
        },
    );
    // An answer nobody asked for, and a far end nobody linked to.
    p.handle(
        Millis(5_000),
        stranger.id,
        Message::RouteReply {
            token: 99,
            hops: 1,
            pos: Point::new(1.0, 1.0),
            answer: RouteAnswer::Linked,
        },
    );
    p.handle(
        Millis(5_000),
        stranger.id,
        Message::LinkAt {
            pos: Point::new(1.0, 1.0),
            kept: true,
        },
    );
    assert_eq!(p.stats().rejected, 3);
    assert_eq!(p.long_links().count(), 0);
}

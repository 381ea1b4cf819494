//! Unit tests of single peers; the rules' behaviour tests over several
//! peers live in `crate::testnet`.

use super::*;
use crate::geometry::World;
use crate::testnet::hello;

fn peer(seed: u64, x: f32, y: f32) -> Peer {
    let cfg = Config {
        world: World::new(1000.0, 1000.0),
        ..Config::default()
    };
    Peer::new(
        cfg,
        PeerInfo::new(
            PeerId::from_seed(seed),
            Point::new(x, y),
            100.0,
            format!("p{seed}"),
        ),
        Millis(0),
    )
}

fn drain(p: &mut Peer) -> Vec<Transmit> {
    std::iter::from_fn(|| p.poll_transmit()).collect()
}

fn hello_from(p: &Peer) -> Message {
    p.hello(true)
}

#[test]
fn a_join_is_accepted_by_the_lone_peer_and_greeted() {
    let mut a = peer(1, 100.0, 100.0);
    let mut b = peer(2, 150.0, 100.0);
    b.join(a.id(), Millis(0));
    let t = drain(&mut b);
    assert_eq!(t.len(), 1);
    a.handle(Millis(5), b.id(), t[0].msg.clone());
    let replies = drain(&mut a);
    assert!(matches!(&replies[0].msg, Message::JoinReply { peers, .. } if peers[0].id == a.id()));
    b.handle(Millis(10), a.id(), replies[0].msg.clone());
    assert!(b.is_joined() && b.keeps(&a.id()));
    assert!(matches!(
        b.poll_event(),
        Some(Event::NeighbourAdded(_)) | Some(Event::Joined { .. })
    ));
    // b greets a, and a keeps b from then on.
    for t in drain(&mut b) {
        if t.to == a.id() {
            a.handle(Millis(15), b.id(), t.msg);
        }
    }
    assert!(a.keeps(&b.id()));
}

#[test]
fn a_join_claiming_another_id_is_refused_and_counted() {
    let mut a = peer(1, 100.0, 100.0);
    let liar = PeerId::from_seed(66);
    let victim = PeerInfo::new(PeerId::from_seed(77), Point::new(1.0, 1.0), 100.0, "victim");
    a.handle(
        Millis(1),
        liar,
        Message::Join {
            joiner: victim,
            hops: 0,
            attempt: 0,
            token: 7,
            pad: Vec::new(),
        },
    );
    assert_eq!(a.stats().rejected, 1);
    assert!(drain(&mut a).is_empty());
    assert!(matches!(a.poll_event(), Some(Event::Rejected { .. })));
}

#[test]
fn non_finite_positions_are_refused_and_counted() {
    let mut a = peer(1, 100.0, 100.0);
    let b = peer(2, 120.0, 100.0);
    a.handle(Millis(1), b.id(), hello_from(&b));
    assert!(a.keeps(&b.id()));
    a.handle(
        Millis(2),
        b.id(),
        Message::Move {
            inc: 0,
            seq: 5,
            pos: Point::new(f32::NAN, 1.0),
            vel: Point::default(),
        },
    );
    assert_eq!(a.stats().rejected, 1);
    let v = a.view(Millis(3));
    assert_eq!(v.neighbours[0].info.pos, Point::new(120.0, 100.0));
}

#[test]
fn stale_moves_are_ignored() {
    let mut a = peer(1, 100.0, 100.0);
    let b = peer(2, 120.0, 100.0);
    a.handle(Millis(1), b.id(), hello_from(&b));
    a.handle(
        Millis(2),
        b.id(),
        Message::Move {
            inc: 0,
            seq: 5,
            pos: Point::new(130.0, 100.0),
            vel: Point::default(),
        },
    );
    a.handle(
        Millis(3),
        b.id(),
        Message::Move {
            inc: 0,
            seq: 4,
            pos: Point::new(125.0, 100.0),
            vel: Point::default(),
        },
    );
    assert_eq!(
        a.view(Millis(3)).neighbours[0].info.pos,
        Point::new(130.0, 100.0)
    );
}

#[test]
fn silent_neighbours_time_out_and_goodbyes_are_immediate() {
    let mut a = peer(1, 100.0, 100.0);
    let b = peer(2, 120.0, 100.0);
    let c = peer(3, 80.0, 100.0);
    a.handle(Millis(1), b.id(), hello_from(&b));
    a.handle(Millis(1), c.id(), hello_from(&c));
    a.handle(Millis(500), c.id(), Message::Leave);
    assert!(!a.keeps(&c.id()));
    let mut t = Millis(0);
    while t.0 < 5_000 {
        t = a.poll_timeout().unwrap();
        a.handle_timeout(t);
    }
    assert!(!a.keeps(&b.id()));
    assert_eq!(a.stats().timeouts, 1);
}

#[test]
fn moves_go_to_every_kept_peer_and_pings_keep_quiet_links_alive() {
    let mut a = peer(1, 100.0, 100.0);
    let b = peer(2, 120.0, 100.0);
    a.handle(Millis(1), b.id(), hello_from(&b));
    drain(&mut a);
    a.move_to(Point::new(101.0, 100.0), Millis(10));
    let t = drain(&mut a);
    assert!(
        t.iter()
            .any(|t| t.to == b.id() && matches!(t.msg, Message::Move { .. }))
    );
    let mut now = Millis(10);
    while now.0 < 1_500 {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
    }
    assert!(
        drain(&mut a)
            .iter()
            .any(|t| t.to == b.id() && t.msg == Message::Ping)
    );
}

#[test]
fn a_long_name_is_cut_on_a_character_boundary() {
    // 63 ASCII bytes, then 'é' (2 bytes) across the 64-byte limit.
    let name = format!("{}é and more", "a".repeat(63));
    let p = Peer::new(
        Config::default(),
        PeerInfo::new(PeerId::from_seed(1), Point::new(1.0, 1.0), 100.0, name),
        Millis(0),
    );
    assert_eq!(p.info().name, "a".repeat(63));
}

#[test]
fn pair_discovery_in_a_crowd_never_sends_more_records_than_a_receiver_accepts() {
    let mut a = peer(1, 500.0, 500.0);
    let mover = PeerId::from_seed(2);
    a.handle(Millis(1), mover, hello(1, 380.0, 500.0));
    // 300 peers in a tight crowd east of us, out of the mover's range.
    for i in 0..300u64 {
        let (x, y) = (560.0 + (i % 20) as f32 * 0.5, 490.0 + (i / 20) as f32 * 0.5);
        a.handle(Millis(1), PeerId::from_seed(100 + i), hello(1, x, y));
    }
    let mut now = Millis(1);
    while now.0 < 50 {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
    }
    drain(&mut a);
    // The mover walks next to the crowd: it must learn all 300.
    a.handle(
        Millis(60),
        mover,
        Message::Move {
            inc: 0,
            seq: 2,
            pos: Point::new(470.0, 500.0),
            vel: Point::default(),
        },
    );
    // Pairs are judged at the next motion round.
    let mut sent = drain(&mut a);
    while now.0 < 200 {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
        sent.extend(drain(&mut a));
    }
    let mut told = 0;
    for t in sent {
        assert!(
            t.msg.validate().is_ok(),
            "{} refused by its receiver",
            t.msg.kind()
        );
        if let (true, Message::Discover { peers, .. }) = (t.to == mover, &t.msg) {
            told += peers.len();
        }
    }
    assert_eq!(told, 300);
}

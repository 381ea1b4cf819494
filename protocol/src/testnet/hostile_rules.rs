//! Rules against lying and hoarding peers, one test each, on one peer fed
//! by hand.

use super::rules::{config, greeted_by, join_token, lone, run, told_of_a_hint};
use super::{Net, hello};
use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_RECORDS, Message};
use crate::peer::{Config, HINTS_PER_SENDER, Peer};

#[test]
fn only_a_peer_s_own_record_confirms_a_hint() {
    // A hint's position is a third party's belief: any message from the
    // peer (a `Ping`, a `Digest`, a `Forget`) once confirmed it, and a
    // teleporter's pre-jump place stayed in views as a confirmed neighbour
    // that routed joins round a loop.
    let (mut p, _, c) = told_of_a_hint(Point::new(520.0, 520.0));
    let seen = |p: &Peer, now: u64| {
        let n = p.view(Millis(now)).neighbours;
        let c = n.into_iter().find(|n| n.info.id == c).expect("c kept");
        (c.confirmed, c.info.pos)
    };
    let digest = Message::Digest { ids: Vec::new() };
    for (at, msg) in [(3, Message::Ping), (4, digest)] {
        p.handle(Millis(at), c, msg);
        assert!(!seen(&p, at).0, "confirmed by a message without its record");
    }
    let moved = Message::Move {
        inc: 0,
        seq: 1,
        pos: Point::new(560.0, 560.0),
        vel: Point::new(0.0, 0.0),
    };
    p.handle(Millis(5), c, moved);
    assert_eq!(seen(&p, 5), (true, Point::new(560.0, 560.0)));
}

#[test]
fn a_join_reply_nobody_asked_for_is_rejected() {
    // Anyone could end our join, set the address we advertise, or make us
    // greet and digest its list; within the window of a probe, anyone
    // still could, until replies had to echo the probe's token.
    let mut p = lone(1, 500.0, 500.0, config());
    let (b, liar, c) = (
        PeerId::from_seed(2),
        PeerId::from_seed(3),
        PeerId::from_seed(4),
    );
    p.handle(Millis(1), b, hello(1, 540.0, 500.0));
    let reply = |token| Message::JoinReply {
        hops: 1,
        at: Point::new(500.0, 500.0),
        peers: vec![PeerInfo::new(c, Point::new(520.0, 520.0), 100.0, "c")],
        observed_addr: String::new(),
        token,
    };
    p.handle(Millis(2), liar, reply(0));
    assert!(!p.keeps(&c) && p.stats().rejected == 1, "taken unasked");
    p.probe_through(b, Millis(3));
    let token = join_token(&mut p);
    p.handle(Millis(4), liar, reply(token ^ 1));
    assert!(!p.keeps(&c) && p.stats().rejected == 2, "a guessed token");
    p.handle(Millis(5), liar, reply(token));
    assert!(p.keeps(&c), "the answer to a probe");
    p.handle(Millis(6), liar, reply(token));
    assert_eq!(p.stats().rejected, 3, "an answer taken twice");
    p.probe_through(b, Millis(7));
    let late = join_token(&mut p);
    assert_ne!(late, token, "tokens repeat");
    p.handle(Millis(60_000), liar, reply(late));
    assert_eq!(p.stats().rejected, 4, "taken long after the probe");
}

#[test]
fn a_hoarder_is_kept_only_within_the_clamped_radius() {
    // A peer declaring radius 1e30 was kept, relayed and fed every move by
    // everyone in the world.
    let config = Config {
        world: World::new(4_000.0, 4_000.0),
        ..Config::default()
    };
    let hoard = |x: f32| Message::Hello {
        inc: 0,
        seq: 1,
        pos: Point::new(x, 500.0),
        radius: 1e30,
        name: String::new(),
        addr: String::new(),
        ask: true,
    };
    let h = PeerId::from_seed(9);
    for (x, kept) in [(1_000.0, true), (1_800.0, false)] {
        let mut p = lone(1, 500.0, 500.0, config.clone());
        // Four neighbours round p: the hoarder is never Voronoi-adjacent.
        for (seed, (dx, dy)) in [(60.0, 0.0), (-60.0, 0.0), (0.0, 60.0), (0.0, -60.0)]
            .into_iter()
            .enumerate()
        {
            let from = PeerId::from_seed(2 + seed as u64);
            p.handle(Millis(1), from, hello(1, 500.0 + dx, 500.0 + dy));
        }
        p.handle(Millis(2), h, hoard(x));
        run(&mut p, 500);
        let seen = p.view(Millis(500)).neighbours;
        let r = seen.iter().find(|n| n.info.id == h).map(|n| n.info.radius);
        assert_eq!(r.is_some(), kept, "hoarder at {x}");
        assert!(r.is_none_or(|r| r <= crate::message::MAX_RADIUS));
    }
}

#[test]
fn a_digest_flood_is_answered_four_times_a_second_at_most() {
    // An 8-byte empty digest earns up to 256 records: unthrottled, a flood
    // of them was a 2 400× amplifier.
    let (mut p, ids) = greeted_by(&[(540.0, 500.0), (500.0, 540.0)]);
    let b = ids[0];
    let answers = |p: &mut Peer| {
        std::iter::from_fn(|| p.poll_transmit())
            .filter(|t| t.to == b && matches!(t.msg, Message::Discover { .. }))
            .count()
    };
    for at in 10..110 {
        p.handle(Millis(at), b, Message::Digest { ids: Vec::new() });
    }
    assert_eq!(answers(&mut p), 1, "a hundred digests in 100 ms");
    assert_eq!(p.stats().digests_refused, 99);
    p.handle(Millis(300), b, Message::Digest { ids: Vec::new() });
    assert_eq!(answers(&mut p), 1, "250 ms later, answered again");
}

/// `n` points around (500, 500), at `first` units and then in `rings`
/// rings (how many, how far apart), turning 0.61 rad from one to the next.
fn around(n: usize, first: f32, (rings, gap): (usize, f32)) -> Vec<(f32, f32)> {
    (0..n)
        .map(|i| {
            let a = i as f32 * 0.61;
            let d = first + (i % rings) as f32 * gap;
            (500.0 + d * a.cos(), 500.0 + d * a.sin())
        })
        .collect()
}

#[test]
fn digest_answers_stay_within_four_times_what_the_asker_sent() {
    // A kept peer that sends nothing but empty digests, answered at most
    // four times a second, still drew 2 400 times its bytes: now the
    // answers stop at its reply credit.
    let (mut p, ids) = greeted_by(&around(80, 20.0, (9, 9.0)));
    let asker = ids[0];
    let mut sent_to_us = crate::testnet::hello(1, 0.0, 0.0).min_wire_len();
    let mut answered = 0usize;
    for i in 0..400u64 {
        let now = Millis(1_000 + i * 260);
        // The others stay fresh (records of the silent are not vouched for).
        for id in &ids[1..] {
            p.handle(now, *id, Message::Ping);
        }
        let digest = Message::Digest { ids: Vec::new() };
        sent_to_us += digest.min_wire_len();
        p.handle(now, asker, digest);
        answered += std::iter::from_fn(|| p.poll_transmit())
            .filter(|t| t.to == asker && matches!(t.msg, Message::Discover { .. }))
            .map(|t| crate::message::encoded_len(&t.msg))
            .sum::<usize>();
    }
    let bound = 4 * sent_to_us + crate::peer::FIRST_REPLY_CREDIT as usize;
    assert!(answered > 0, "never answered");
    assert!(
        answered <= bound,
        "{answered} bytes answered to {sent_to_us} sent"
    );
    assert!(p.stats().replies_capped > 0);
}

#[test]
fn a_join_reply_stays_within_four_times_the_join_and_padding_buys_records() {
    // An unpadded 54-byte join drew the acceptor's whole neighbourhood, up
    // to 256 records (171 times its size here), from every new free id.
    let (mut p, _) = greeted_by(&around(200, 5.0, (20, 4.0)));
    let reply_to = |p: &mut Peer, seed: u64, pad: usize| {
        let joiner = PeerId::from_seed(seed);
        let join = Message::Join {
            joiner: PeerInfo::new(joiner, Point::new(501.0, 499.0), 100.0, "j"),
            hops: 0,
            attempt: 0,
            token: seed,
            pad: vec![0; pad],
        };
        let asked = join.min_wire_len();
        p.handle(Millis(100), joiner, join);
        let reply = std::iter::from_fn(|| p.poll_transmit())
            .find(|t| t.to == joiner && matches!(t.msg, Message::JoinReply { .. }))
            .expect("the join is answered");
        let Message::JoinReply { peers, .. } = &reply.msg else {
            unreachable!()
        };
        (asked, crate::message::encoded_len(&reply.msg), peers.len())
    };
    let (asked, answered, records) = reply_to(&mut p, 900, 0);
    assert!(records >= 1, "at least the acceptor: {records}");
    assert!(
        answered <= 4 * asked,
        "{answered} bytes answered to an unpadded join of {asked}"
    );
    let capped = p.stats().replies_capped;
    assert!(capped > 0);
    let (asked, answered, padded_records) = reply_to(&mut p, 901, crate::peer::JOIN_PAD);
    assert!(answered <= 4 * asked, "{answered} to {asked}");
    assert!(
        padded_records >= 60 && padded_records > 5 * records,
        "{padded_records} records for a padded join, {records} unpadded"
    );
}

/// `n` fake records packed within ten units of (500, 500).
fn close_fakes(n: u64) -> Vec<PeerInfo> {
    (0..n)
        .map(|i| {
            let at = Point::new(
                490.0 + (i % 40) as f32 * 0.5,
                490.0 + (i / 40 % 40) as f32 * 0.5,
            );
            PeerInfo::new(PeerId::from_seed(1_000 + i), at, 100.0, "")
        })
        .collect()
}

/// Whether `p` keeps `id` as a confirmed peer at `now`.
fn confirms(p: &Peer, id: PeerId, now: u64) -> bool {
    let n = p.view(Millis(now)).neighbours;
    n.iter().any(|n| n.info.id == id && n.confirmed)
}

#[test]
fn a_flood_of_close_hints_does_not_push_out_an_honest_peer() {
    // Four `Discover`s of close fake records filled the table, every fake
    // was greeted (dialled, by a node), and the cap then evicted the honest
    // peer that said hello: it was farther than the fakes.
    let (mut p, ids) = greeted_by(&[(540.0, 500.0)]);
    let liar = ids[0];
    for chunk in close_fakes(1_024).chunks(MAX_RECORDS) {
        let peers = chunk.to_vec();
        let mutual = false;
        p.handle(Millis(2), liar, Message::Discover { peers, mutual });
    }
    let honest = PeerId::from_seed(9);
    p.handle(Millis(3), honest, hello(1, 560.0, 560.0));
    let sent = run(&mut p, 200);
    assert!(confirms(&p, honest, 200), "the honest peer was pushed out");
    let greeted_fakes = sent
        .iter()
        .filter(|t| t.to != liar && t.to != honest && matches!(t.msg, Message::Hello { .. }))
        .count();
    // One sender gets at most half a message's worth of hints in (each is
    // greeted: a dial, for a node).
    let most = MAX_RECORDS / 2;
    assert!(greeted_fakes <= most, "{greeted_fakes} fakes greeted");
    assert!(p.kept_count() <= most + 2, "{} kept", p.kept_count());
    assert_eq!(p.stats().hints_refused, 1_024 - HINTS_PER_SENDER as u64);
}

#[test]
fn a_full_table_evicts_hints_before_confirmed_peers() {
    // Many senders' hints together can fill the table: the cap then drops
    // hints, never a peer heard from itself, however far.
    let config = Config {
        max_kept: 40,
        ..config()
    };
    let mut p = lone(1, 500.0, 500.0, config);
    let far = PeerId::from_seed(2);
    p.handle(Millis(1), far, hello(1, 590.0, 500.0));
    for (i, chunk) in close_fakes(60).chunks(10).enumerate() {
        let liar = PeerId::from_seed(100 + i as u64);
        p.handle(Millis(1), liar, hello(1, 500.0, 480.0 - i as f32));
        let peers = chunk.to_vec();
        let mutual = false;
        p.handle(Millis(2), liar, Message::Discover { peers, mutual });
    }
    let honest = PeerId::from_seed(9);
    p.handle(Millis(3), honest, hello(1, 560.0, 560.0));
    run(&mut p, 200);
    assert!(p.kept_count() <= 40);
    for id in [far, honest] {
        assert!(confirms(&p, id, 200), "{id} evicted to keep hints");
    }
}

/// The peers a join for `joiner` was forwarded to, in order.
fn join_path(net: &Net, joiner: PeerId) -> Vec<PeerId> {
    let path = net.log.iter().filter_map(|(_, to, m)| match m {
        Message::Join {
            joiner: j, hops, ..
        } if j.id == joiner && *hops > 0 => Some(*to),
        _ => None,
    });
    path.collect()
}

#[test]
fn a_forwarder_that_swallows_joins_is_gone_round_within_three_retries() {
    // A join retried through the same entry took the same greedy path into
    // the same black hole, for ever.
    let mut net = Net::new(World::new(1_000.0, 1_000.0), 10);
    let mut rng = crate::sim::Rng::new(7);
    let entry = net.add(1, 100.0, 100.0);
    for seed in 2..80 {
        let (x, y) = (rng.f64() as f32 * 1_000.0, rng.f64() as f32 * 1_000.0);
        net.add_joining(seed, x, y, entry);
        net.drive(200);
    }
    net.drive(5_000);
    // Where a join for (600, 600) goes: the black hole is a forwarder half
    // way along.
    let scout = net.add_joining(98, 600.0, 600.0, entry);
    net.drive(500);
    let path = join_path(&net, scout);
    assert!(path.len() >= 3, "a short path: {path:?}");
    let hole = path[path.len() / 2 - 1];
    net.leave(scout);
    net.drive(5_000);
    net.swallow_joins(hole);
    let joiner = net.add_joining(99, 600.0, 600.0, entry);
    net.drive(3_500); // the first attempt and three retries, 1 s apart
    let path = join_path(&net, joiner);
    assert!(path.contains(&hole), "the join never met the black hole");
    assert!(net.peer(joiner).is_joined(), "not joined: {path:?}");
    let attempts = net
        .log
        .iter()
        .filter(|(from, _, m)| *from == joiner && matches!(m, Message::Join { hops: 0, .. }))
        .count();
    assert!(attempts <= 4, "{attempts} attempts");
    net.drive(5_000);
    net.assert_invariants("5 s after the join");
}

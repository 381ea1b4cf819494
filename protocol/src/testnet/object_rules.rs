//! World objects: who holds them, who sees them, hand-over, versions.

use super::Net;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::Message;
use crate::object::{ObjectCopy, ObjectError, ObjectKey, SeededSigner, WorldObject};
use crate::peer::{Event, MAX_OBJECTS_PER_AUTHOR, OBJECT_HOLDERS, RejectReason};

/// A settled world of `n` peers at random places in size², each with a key.
fn world(n: u64, size: f32, seed: u64) -> Net {
    let mut net = super::settled(n, size, seed);
    for s in 1..=n {
        net.peer(PeerId::from_seed(s))
            .set_signer(Box::new(SeededSigner::new(s)));
    }
    net
}

/// `world(n, size, seed)` where peer `author` placed a sign with `text`,
/// living `ttl_s`, at its own place 1.5 s ago: (net, author, the place,
/// the key).
fn placed_for(
    (n, size, seed): (u64, f32, u64),
    author: u64,
    text: &str,
    ttl_s: u32,
) -> (Net, PeerId, Point, ObjectKey) {
    let mut net = world(n, size, seed);
    let author = PeerId::from_seed(author);
    let at = net.peer(author).info().pos;
    let now = net.now;
    let key = net
        .peer(author)
        .place_object(now, at, text, [9, 9, 9], ttl_s)
        .unwrap();
    net.drive(1_500);
    (net, author, at, key)
}

/// `placed_for` a sign that lives an hour.
fn placed(
    n: u64,
    size: f32,
    seed: u64,
    author: u64,
    text: &str,
) -> (Net, PeerId, Point, ObjectKey) {
    placed_for((n, size, seed), author, text, 3_600)
}

/// A settled world where a peer placed a sign across the world from
/// itself 3 s ago: (net, author, the place, the key).
fn placed_across() -> (Net, PeerId, Point, ObjectKey) {
    let mut net = world(200, 600.0, 4);
    let author = PeerId::from_seed(7);
    let mine = net.peer(author).info().pos;
    let at = Point::new((mine.x + 300.0) % 600.0, (mine.y + 300.0) % 600.0);
    let now = net.now;
    let key = net
        .peer(author)
        .place_object(now, at, "over there", [10, 200, 10], 3_600)
        .unwrap();
    net.drive(3_000);
    (net, author, at, key)
}

/// Version 1 of `signer`'s object number `nonce` at `pos`, signed, as
/// just sent (age 0).
fn signed_copy(signer: &SeededSigner, nonce: u64, pos: Point, text: String) -> ObjectCopy {
    let mut object = WorldObject {
        key: ObjectKey::of(&signer.author(), nonce),
        nonce,
        author_key: Vec::new(),
        version: 1,
        pos,
        colour: [1, 2, 3],
        text,
        ttl_s: 600,
        removed: false,
        sig: Vec::new(),
    };
    object.sign(signer);
    ObjectCopy { object, age_ms: 0 }
}

/// The peer nearest `at` other than `author`.
fn a_holder(net: &Net, at: Point, author: PeerId) -> PeerId {
    nearest(net, at, 2)
        .into_iter()
        .find(|id| *id != author)
        .unwrap()
}

/// The `k` live peers nearest `at` (true positions).
fn nearest(net: &Net, at: Point, k: usize) -> Vec<PeerId> {
    let world = net.config.world;
    let mut all: Vec<(f64, PeerId)> = net
        .peers
        .iter()
        .map(|(id, p)| (world.distance(p.info().pos, at), *id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all.into_iter().take(k).map(|(_, id)| id).collect()
}

/// Peers within their own radius of `at`.
fn in_range(net: &Net, at: Point) -> Vec<PeerId> {
    let world = net.config.world;
    net.peers
        .iter()
        .filter(|(_, p)| world.distance(p.info().pos, at) <= f64::from(p.info().radius))
        .map(|(id, _)| *id)
        .collect()
}

/// The version of `key` that `id` holds (0: none).
fn version_at(net: &Net, id: PeerId, key: ObjectKey) -> u32 {
    net.peers[&id].object(&key).map_or(0, |o| o.version)
}

/// Every holder and everyone in range holds `version` (and lists it unless
/// it is a removal).
fn assert_everywhere(net: &Net, key: ObjectKey, at: Point, version: u32, when: &str) {
    let mut want = nearest(net, at, OBJECT_HOLDERS);
    want.extend(in_range(net, at));
    assert!(want.len() > OBJECT_HOLDERS, "{when}: nobody in range");
    for id in want {
        assert_eq!(version_at(net, id, key), version, "{when}: {id} lacks it");
    }
}

#[test]
fn a_sign_reaches_its_holders_and_everyone_within_radius() {
    let (net, _, at, key) = placed(200, 600.0, 3, 40, "welcome");
    assert_everywhere(&net, key, at, 1, "placed");
    let listed = net.peers[&nearest(&net, at, 1)[0]].objects_near(net.now, at, 1.0);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].text, "welcome");
    assert_eq!(listed[0].author(), SeededSigner::new(40).author());
    // Far peers do not hold it.
    let world = net.config.world;
    let far = net
        .peers
        .values()
        .filter(|p| world.distance(p.info().pos, at) > 300.0)
        .filter(|p| p.object(&key).is_some())
        .count();
    assert_eq!(far, 0, "far peers hold it");
}

#[test]
fn a_sign_placed_far_away_travels_to_its_point() {
    let (mut net, author, at, key) = placed_across();
    assert_everywhere(&net, key, at, 1, "routed");
    // The author keeps its own, to edit it later; those on the way do not.
    assert_eq!(version_at(&net, author, key), 1);
    let now = net.now;
    assert_eq!(net.peer(author).edit_object(now, key, "moved on"), Ok(2));
    net.drive(3_000);
    assert_everywhere(&net, key, at, 2, "edited from afar");
    // Peers on the way dropped their copies once the holders had them.
    let world = net.config.world;
    let reach = f64::from(net.config.radius + 2.0 * net.config.buffer);
    let strays: Vec<PeerId> = net
        .peers
        .iter()
        .filter(|(id, p)| **id != author && p.object(&key).is_some())
        .filter(|(_, p)| world.distance(p.info().pos, at) > reach)
        .map(|(id, _)| *id)
        .collect();
    assert!(strays.is_empty(), "copies left on the way: {strays:?}");
    // Each peer took each of the two versions once at most: a copy on its
    // way that came again by another path went no further.
    let most = net.peers.values().map(|p| p.stats().objects_taken).max();
    assert!(
        most <= Some(2),
        "a peer took {most:?} copies of two versions"
    );
}

#[test]
fn a_new_version_from_afar_reaches_the_owner_without_waiting_rounds() {
    let (mut net, author, at, key) = placed_across();
    let owner = nearest(&net, at, 1)[0];
    assert_eq!(version_at(&net, owner, key), 1);
    let now = net.now;
    assert_eq!(net.peer(author).edit_object(now, key, "again"), Ok(2));
    // Several hops of 20 ms each: a copy taken on the way is handed on at
    // once, not at the next maintenance round (250 ms) of every hop.
    let start = net.now;
    while version_at(&net, owner, key) < 2 && net.now.since(start) < 3_000 {
        net.drive(10);
    }
    let took = net.now.since(start);
    assert!(
        took <= net.config.maintenance_ms,
        "the owner had the new version after {took} ms"
    );
}

#[test]
fn holders_that_crash_are_replaced() {
    let (mut net, author, at, key) = placed(200, 600.0, 5, 50, "still here");
    // The author and the next nearest crash; so does everyone else in range
    // but one holder.
    let keep = nearest(&net, at, OBJECT_HOLDERS)[2];
    for id in in_range(&net, at) {
        if id != keep {
            net.crash(id);
        }
    }
    assert!(!net.peers.contains_key(&author));
    net.drive(8_000);
    assert_everywhere(&net, key, at, 1, "after the crash");
}

#[test]
fn only_the_author_may_change_an_object() {
    let (mut net, author, at, key) = placed(120, 500.0, 6, 30, "alice's");
    let holder = a_holder(&net, at, author);
    // Another peer's API refuses.
    let now = net.now;
    assert_eq!(
        net.peer(holder).edit_object(now, key, "mallory's"),
        Err(ObjectError::NotAuthor)
    );
    assert_eq!(
        net.peer(holder).remove_object(now, key),
        Err(ObjectError::NotAuthor)
    );
    // A forged version 2 on the wire, from a kept peer, is refused and counted.
    let mut forged: WorldObject = net.peers[&holder].object(&key).unwrap().clone();
    forged.version = 2;
    forged.text = "mallory's".into();
    forged.sign(&SeededSigner::new(999));
    let liar = net.peers[&holder].kept().next().unwrap().0;
    let refused = net.peers[&holder].stats().objects_refused;
    net.peer(holder).handle(
        now,
        liar,
        Message::Objects {
            objects: vec![ObjectCopy {
                object: forged,
                age_ms: 0,
            }],
        },
    );
    assert_eq!(net.peers[&holder].stats().objects_refused, refused + 1);
    let mut saw = false;
    while let Some(e) = net.peer(holder).poll_event() {
        saw |= matches!(
            e,
            Event::Rejected {
                reason: RejectReason::BadObject(ObjectError::KeyNotBound),
                ..
            }
        );
    }
    assert!(saw, "no rejection event");
    assert_eq!(net.peers[&holder].object(&key).unwrap().text, "alice's");
}

#[test]
fn a_removal_beats_older_copies() {
    let (mut net, author, at, key) = placed(120, 500.0, 7, 20, "soon gone");
    let holder = a_holder(&net, at, author);
    let old = net.peers[&holder].object(&key).unwrap().clone();
    let now = net.now;
    net.peer(author).remove_object(now, key).unwrap();
    net.drive(1_500);
    assert_everywhere(&net, key, at, 2, "removed");
    let now = net.now;
    assert!(
        net.peers
            .values()
            .all(|p| p.objects_near(now, at, 50.0).is_empty())
    );
    // The old version comes back on the wire: ignored.
    let from = net.peers[&holder].kept().next().unwrap().0;
    net.peer(holder).handle(
        now,
        from,
        Message::Objects {
            objects: vec![ObjectCopy {
                object: old,
                age_ms: 0,
            }],
        },
    );
    assert!(net.peers[&holder].object(&key).unwrap().removed);
    assert_eq!(
        net.peer(author).remove_object(now, key),
        Err(ObjectError::Unknown)
    );
}

#[test]
fn bad_input_and_quotas_are_refused() {
    let mut net = world(30, 300.0, 8);
    let author = PeerId::from_seed(3);
    let at = net.peer(author).info().pos;
    let now = net.now;
    let p = net.peer(author);
    assert_eq!(
        p.place_object(now, at, &"x".repeat(281), [0; 3], 60),
        Err(ObjectError::TextTooLong(281))
    );
    assert_eq!(
        p.place_object(now, Point::new(f32::NAN, 1.0), "x", [0; 3], 60),
        Err(ObjectError::BadPosition)
    );
    assert_eq!(
        p.place_object(now, at, "x", [0; 3], 0),
        Err(ObjectError::BadTtl)
    );
    for i in 0..MAX_OBJECTS_PER_AUTHOR {
        p.place_object(now, at, &format!("n{i}"), [0; 3], 60)
            .unwrap();
    }
    assert_eq!(
        p.place_object(now, at, "one too many", [0; 3], 60),
        Err(ObjectError::Quota(MAX_OBJECTS_PER_AUTHOR))
    );
    // A peer without a key cannot place anything.
    let mut lone = super::rules::lone(77, 1.0, 1.0, super::rules::config());
    assert_eq!(
        lone.place_object(now, at, "x", [0; 3], 60),
        Err(ObjectError::NoSigner)
    );
}

#[test]
fn a_version_expires_after_its_lifetime() {
    let (mut net, _, at, key) = placed_for((60, 400.0, 9), 12, "brief", 2);
    assert_everywhere(&net, key, at, 1, "placed");
    net.drive(2_000);
    assert!(
        net.peers.values().all(|p| p.object(&key).is_none()),
        "an expired object is still held"
    );
}

#[test]
fn a_still_world_stops_sending_objects_once_they_are_placed() {
    let mut net = world(200, 600.0, 11);
    let mut rng = crate::sim::Rng::new(5);
    for n in 0..40u64 {
        let author = PeerId::from_seed(2 + n * 4);
        let at = Point::new(rng.f64() as f32 * 600.0, rng.f64() as f32 * 600.0);
        let now = net.now;
        net.peer(author)
            .place_object(now, at, &format!("sign {n}"), [0; 3], 3_600)
            .unwrap();
    }
    net.drive(10_000);
    let totals = |net: &Net| -> (u64, u64) {
        net.peers.values().fold((0, 0), |a, p| {
            (a.0 + p.stats().objects_sent, a.1 + p.stats().objects_taken)
        })
    };
    let before = totals(&net);
    net.drive(10_000);
    let after = totals(&net);
    assert_eq!(before, after, "objects still sent in a still world");
}

#[test]
fn a_joiner_gets_the_objects_at_its_place_with_its_join_reply() {
    let (mut net, author, at, key) = placed(120, 500.0, 13, 30, "here first");
    let joiner = net.add_joining(500, at.x + 3.0, at.y, author);
    for _ in 0..200 {
        if net.peers[&joiner].is_joined() {
            break;
        }
        net.drive(5);
    }
    assert!(net.peers[&joiner].is_joined(), "the join did not complete");
    // Two one-way latencies after its reply: before any maintenance round
    // could have offered it, it holds the object already.
    net.drive(40);
    assert_eq!(version_at(&net, joiner, key), 1);
}

#[test]
fn a_copy_asked_for_and_not_sent_is_asked_of_the_next_offerer() {
    let mut p = super::rules::lone(1, 500.0, 500.0, super::rules::config());
    let (a, b) = (PeerId::from_seed(2), PeerId::from_seed(3));
    let key = ObjectKey::of(&SeededSigner::new(9).author(), 1);
    let offer = || Message::ObjectOffer {
        offers: vec![(key, 1)],
    };
    let wants = |sent: &[crate::peer::Transmit]| -> Vec<PeerId> {
        sent.iter()
            .filter(|t| matches!(&t.msg, Message::ObjectWant { keys } if keys == &[key]))
            .map(|t| t.to)
            .collect()
    };
    p.handle(crate::Millis(10), a, offer());
    p.handle(crate::Millis(20), b, offer());
    let again = crate::peer::ASK_AGAIN_MS;
    assert_eq!(
        wants(&super::rules::run(&mut p, again - 100)),
        [a],
        "asked once, of the first"
    );
    // a never answers: after ASK_AGAIN_MS (and a maintenance round), b is asked.
    assert_eq!(wants(&super::rules::run(&mut p, again + 400)), [b]);
}

#[test]
fn a_stranger_cannot_push_copies_without_end() {
    use crate::Millis;
    use crate::peer::{ROUTED_COPIES_BURST, ROUTED_COPIES_PER_S};
    // 300 signed copies near the receiver, by five authors (under the
    // per-author quota), in messages of 30.
    let copies: Vec<ObjectCopy> = (0..300u64)
        .map(|i| {
            let pos = Point::new(500.0 + (i % 20) as f32, 500.0 + (i / 20) as f32);
            signed_copy(&SeededSigner::new(100 + i % 5), i, pos, format!("n{i}"))
        })
        .collect();
    let taken_from = |kept: bool| {
        let mut p = super::rules::lone(1, 500.0, 500.0, super::rules::config());
        let from = PeerId::from_seed(2);
        if kept {
            p.handle(Millis(1), from, super::hello(1, 520.0, 500.0));
        }
        for chunk in copies.chunks(30) {
            let msg = Message::Objects {
                objects: chunk.to_vec(),
            };
            p.handle(Millis(2), from, msg);
        }
        (p.stats().objects_taken, p.stats().objects_refused)
    };
    let (taken, refused) = taken_from(false);
    let most = ROUTED_COPIES_BURST as u64 + ROUTED_COPIES_PER_S as u64;
    assert!(taken <= most, "a stranger had {taken} copies taken");
    assert!(
        refused >= 300u64.saturating_sub(most),
        "only {refused} refused"
    );
    assert_eq!(
        taken_from(true),
        (300, 0),
        "a kept peer's copies are all taken"
    );
}

#[test]
fn a_joiner_near_an_old_sign_does_not_offer_it_to_those_who_have_it() {
    let mut offered = 0;
    for seed in [17, 3, 5, 8] {
        let (mut net, author, at, key) = placed(200, 600.0, seed, 60, "old news");
        // Long enough for everyone around to have fetched it. The joiner
        // takes it from its acceptor, and offers it only to its holders
        // and to those coming near (before, it offered it to 2–9 peers
        // well within their radius of it per seed here).
        net.drive(6_000);
        let world = net.config.world;
        let buffer = f64::from(net.config.buffer);
        let had: Vec<PeerId> = net
            .peers
            .iter()
            .filter(|(id, p)| {
                version_at(&net, **id, key) == 1
                    && world.distance(p.info().pos, at) <= f64::from(p.info().radius) - buffer
            })
            .map(|(id, _)| *id)
            .collect();
        let joiner = net.add_joining(900 + seed, at.x + 40.0, at.y + 30.0, author);
        net.drive(4_000);
        assert_eq!(version_at(&net, joiner, key), 1);
        let holders = nearest(&net, at, OBJECT_HOLDERS);
        let n: usize = had
            .iter()
            .filter(|id| !holders.contains(id))
            .map(|id| net.sent(joiner, *id, "object_offer"))
            .sum();
        offered += n;
    }
    assert_eq!(offered, 0, "{offered} offers to peers that had it");
}

#[test]
fn an_offer_to_the_owner_is_made_again_until_it_asks() {
    use crate::Millis;
    use crate::peer::{OWNER_REOFFERS, REOFFER_MS};
    // p holds a sign whose owner, in its view, is q (nearer its point); q
    // stays alive but never asks for it (its request was lost, say).
    let count_offers = |answer: bool| -> usize {
        let mut p = super::rules::lone(1, 500.0, 500.0, super::rules::config());
        p.set_signer(Box::new(SeededSigner::new(1)));
        let q = PeerId::from_seed(2);
        p.handle(Millis(1), q, super::hello(1, 520.0, 500.0));
        let key = p
            .place_object(Millis(2), Point::new(530.0, 500.0), "x", [0; 3], 3_600)
            .unwrap();
        let mut offers = 0;
        let mut now = 2;
        for seq in 2..12u32 {
            let mut sent: Vec<_> = std::iter::from_fn(|| p.poll_transmit()).collect();
            sent.extend(super::rules::run(&mut p, now + 1_000));
            for t in sent {
                let to_q = t.to == q
                    && matches!(&t.msg, Message::ObjectOffer { offers } if offers.iter().any(|o| o.0 == key));
                if to_q {
                    offers += 1;
                    if answer {
                        p.handle(Millis(now), q, Message::ObjectWant { keys: vec![key] });
                    }
                }
            }
            now += 1_000;
            p.handle(Millis(now), q, super::hello(seq, 520.0, 500.0));
        }
        assert!(now > REOFFER_MS * u64::from(OWNER_REOFFERS + 3));
        offers
    };
    assert_eq!(count_offers(false), 1 + usize::from(OWNER_REOFFERS));
    assert_eq!(count_offers(true), 1, "offered again after it asked");
}

#[test]
fn a_copy_received_twice_is_counted_stale_once() {
    use crate::Millis;
    let mut p = super::rules::lone(1, 500.0, 500.0, super::rules::config());
    let q = PeerId::from_seed(2);
    p.handle(Millis(1), q, super::hello(1, 520.0, 500.0));
    let at = Point::new(510.0, 500.0);
    let copy = Message::Objects {
        objects: vec![signed_copy(&SeededSigner::new(9), 1, at, "twice".into())],
    };
    p.handle(Millis(10), q, copy.clone());
    assert_eq!((p.stats().objects_taken, p.stats().objects_stale), (1, 0));
    p.handle(Millis(20), q, copy);
    assert_eq!((p.stats().objects_taken, p.stats().objects_stale), (1, 1));
}

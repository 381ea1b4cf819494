//! Key records: put here, read anywhere, three holders kept through
//! crashes and goodbyes, and only the writer may change one.

use super::{Net, settled};
use crate::id::PeerId;
use crate::message::{Message, RouteAnswer};
use crate::object::{ObjectError, SeededSigner};
use crate::record::{MAX_RECORD_VALUE, Record, RecordCopy, RecordKey};

fn world_with_signers(n: u64, size: f32, seed: u64) -> Net {
    let mut net = settled(n, size, seed);
    let ids: Vec<PeerId> = net.peers.keys().copied().collect();
    for id in ids {
        let s = id.short_u64();
        net.peer(id).set_signer(Box::new(SeededSigner::new(s)));
    }
    net
}

/// `writer` puts `value` under `name` for 600 s; the route's token.
fn put(net: &mut Net, writer: PeerId, name: &str, value: &[u8]) -> u64 {
    let now = net.now;
    net.peer(writer)
        .put_record(now, name, value.to_vec(), 600)
        .expect("a signed put")
}

/// The answer to `origin`'s route `token`.
fn answer(net: &Net, origin: PeerId, token: u64) -> Option<RouteAnswer> {
    net.routed
        .iter()
        .find(|r| r.0 == origin && r.1 == token)
        .map(|r| r.4.clone())
}

/// The value `reader` reads under `name` (after driving 2 s).
fn read(net: &mut Net, reader: PeerId, name: &str) -> Option<Vec<u8>> {
    let now = net.now;
    let token = net.peer(reader).get_record(now, name);
    net.drive(2_000);
    match answer(net, reader, token) {
        Some(RouteAnswer::Record(Some(c))) if !c.record.removed => Some(c.record.value),
        Some(RouteAnswer::Record(_)) => None,
        other => panic!("{reader} got {other:?} for {name}"),
    }
}

/// The peers nearest to `key`'s point, nearest first.
fn nearest(net: &Net, key: &RecordKey, n: usize) -> Vec<PeerId> {
    let world = net.config.world;
    let p = key.point(world);
    let mut d: Vec<(f64, PeerId)> = net
        .peers
        .iter()
        .map(|(id, q)| (world.distance(q.info().pos, p), *id))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().take(n).map(|x| x.1).collect()
}

fn holding(net: &Net, key: &RecordKey) -> Vec<PeerId> {
    net.peers
        .iter()
        .filter(|(_, p)| p.records().any(|r| r.key == *key))
        .map(|(id, _)| *id)
        .collect()
}

#[test]
fn a_record_put_at_one_peer_is_read_at_every_other_and_held_by_the_three_nearest() {
    let mut net = world_with_signers(120, 1200.0, 4);
    let writer = *net.peers.keys().next().expect("a peer");
    let token = put(&mut net, writer, "greeting", b"hello");
    net.drive(2_000);
    assert!(
        matches!(answer(&net, writer, token), Some(RouteAnswer::Stored(n)) if n >= 2),
        "{:?}",
        answer(&net, writer, token)
    );
    let key = RecordKey::of("greeting");
    net.drive(1_000);
    let holders = holding(&net, &key);
    for id in nearest(&net, &key, 3) {
        assert!(
            holders.contains(&id),
            "{id} is among the nearest and lacks it"
        );
    }
    let readers: Vec<PeerId> = net.peers.keys().copied().step_by(7).collect();
    for r in readers {
        assert_eq!(
            read(&mut net, r, "greeting").as_deref(),
            Some(&b"hello"[..])
        );
    }
    assert_eq!(read(&mut net, writer, "nothing here"), None);
}

#[test]
fn the_three_holders_are_back_within_the_failure_timeout_after_two_crash() {
    let mut net = world_with_signers(120, 1200.0, 6);
    let writer = *net.peers.keys().nth(3).expect("a peer");
    put(&mut net, writer, "kept", b"v");
    net.drive(3_000);
    let key = RecordKey::of("kept");
    let first = nearest(&net, &key, 3);
    net.crash(first[0]);
    net.crash(first[1]);
    net.drive(net.config.failure_timeout_ms + 3_000);
    let holders = holding(&net, &key);
    for id in nearest(&net, &key, 3) {
        assert!(
            holders.contains(&id),
            "{id} is among the nearest and lacks it"
        );
    }
    assert_eq!(read(&mut net, writer, "kept").as_deref(), Some(&b"v"[..]));
}

#[test]
fn holders_that_say_goodbye_one_after_another_lose_nothing() {
    let mut net = world_with_signers(100, 1200.0, 7);
    let key = RecordKey::of("bye");
    // The writer far from the point: it keeps no copy.
    let writer = *nearest(&net, &key, 100).last().expect("a peer");
    put(&mut net, writer, "bye", b"still here");
    net.drive(3_000);
    for _ in 0..8 {
        let owner = nearest(&net, &key, 1)[0];
        net.leave(owner);
        net.drive(300);
    }
    net.drive(2_000);
    assert_eq!(
        read(&mut net, writer, "bye").as_deref(),
        Some(&b"still here"[..])
    );
}

#[test]
fn a_holder_that_leaves_hands_its_records_to_a_keeper_that_lacks_them() {
    // Two peers: the writer holds the record; what it sends the other is
    // lost until it leaves, so only its goodbye's copy can arrive.
    let mut net = world_with_signers(2, 400.0, 3);
    let ids: Vec<PeerId> = net.peers.keys().copied().collect();
    let key = RecordKey::of("only copy");
    let p = key.point(net.config.world);
    let world = net.config.world;
    let (writer, other) = if world.distance(net.peers[&ids[0]].info().pos, p)
        <= world.distance(net.peers[&ids[1]].info().pos, p)
    {
        (ids[0], ids[1])
    } else {
        (ids[1], ids[0])
    };
    net.partition(&[writer], &[other]);
    put(&mut net, writer, "only copy", b"x");
    net.drive(1_000);
    assert!(holding(&net, &key) == vec![writer]);
    net.heal();
    net.leave(writer);
    net.drive(1_000);
    assert_eq!(holding(&net, &key), vec![other]);
}

#[test]
fn only_the_writer_may_change_a_record_and_bad_ones_are_refused() {
    let mut net = world_with_signers(80, 1000.0, 8);
    let ids: Vec<PeerId> = net.peers.keys().copied().collect();
    let (writer, forger) = (ids[2], ids[40]);
    put(&mut net, writer, "mine", b"original");
    net.drive(2_000);
    let token = put(&mut net, forger, "mine", b"forged");
    net.drive(2_000);
    assert_eq!(answer(&net, forger, token), Some(RouteAnswer::Refused));
    assert_eq!(
        read(&mut net, ids[10], "mine").as_deref(),
        Some(&b"original"[..])
    );
    let refused: u64 = net.peers.values().map(|p| p.stats().records_refused).sum();
    assert!(refused >= 1);
    // The writer may replace it.
    put(&mut net, writer, "mine", b"second");
    net.drive(2_000);
    assert_eq!(
        read(&mut net, ids[10], "mine").as_deref(),
        Some(&b"second"[..])
    );
    // Too large a value, a bad lifetime.
    let now = net.now;
    assert_eq!(
        net.peer(writer)
            .put_record(now, "big", vec![0; MAX_RECORD_VALUE + 1], 60),
        Err(ObjectError::ValueTooLong(MAX_RECORD_VALUE + 1))
    );
    assert_eq!(
        net.peer(writer).put_record(now, "x", Vec::new(), 0),
        Err(ObjectError::BadTtl)
    );
    // A copy whose signature does not match is refused and counted.
    let mut bad = Record::signed(
        &SeededSigner::new(99),
        "mine",
        b"evil".to_vec(),
        1 << 40,
        600,
        false,
    );
    bad.value = b"changed".to_vec();
    let holder = nearest(&net, &RecordKey::of("mine"), 1)[0];
    let before = net.peer(holder).stats().rejected;
    let now = net.now;
    net.peer(holder).handle(
        now,
        ids[50],
        Message::Records {
            records: vec![RecordCopy {
                record: bad,
                age_ms: 0,
            }],
        },
    );
    assert_eq!(net.peer(holder).stats().rejected, before + 1);
    assert_eq!(
        read(&mut net, ids[10], "mine").as_deref(),
        Some(&b"second"[..])
    );
}

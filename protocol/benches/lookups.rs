//! How many record lookups one peer answers a second: a holder of the
//! record handles a `Route` asking for it (from 64 senders in turn, each
//! within its route budget) and answers with a copy. Signature checks are
//! not involved (the copy is the holder's own, verified when taken).
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peerworld_protocol::message::{Message, RouteAsk};
use peerworld_protocol::object::SeededSigner;
use peerworld_protocol::record::RecordKey;
use peerworld_protocol::{Config, Millis, Peer, PeerId, PeerInfo, Point, World};

fn lookups(c: &mut Criterion) {
    let world = World::new(1000.0, 1000.0);
    let config = Config {
        world,
        ..Config::default()
    };
    let key = RecordKey::of("bench");
    let me = PeerInfo::new(PeerId::from_seed(0), key.point(world), 100.0, "holder");
    let mut p = Peer::new(config, me, Millis(0));
    p.set_signer(Box::new(SeededSigner::new(0)));
    // Alone, the peer owns every point: the put is stored here.
    p.put_record(Millis(0), "bench", vec![7; 100], 86_400)
        .expect("a put");
    while p.poll_event().is_some() {}
    assert_eq!(p.records().count(), 1);
    let senders: Vec<PeerInfo> = (1..=64u64)
        .map(|s| PeerInfo::new(PeerId::from_seed(s), Point::new(1.0, 1.0), 100.0, "asker"))
        .collect();
    let mut g = c.benchmark_group("lookups");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    g.bench_function("answer_a_get", |b| {
        b.iter(|| {
            n += 1;
            let origin = senders[(n % 64) as usize].clone();
            // Each sender asks once every 64 ms: within its 50 a second.
            let now = Millis(1_000 + n);
            let id = origin.id;
            p.handle(
                now,
                id,
                Message::Route {
                    origin,
                    target: key.point(world),
                    hops: 0,
                    token: n,
                    ask: RouteAsk::Get { key, detour: 0 },
                },
            );
            let answer = p.poll_transmit().expect("an answer");
            assert!(matches!(answer.msg, Message::RouteReply { .. }));
            while p.poll_transmit().is_some() {}
        });
    });
    g.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);

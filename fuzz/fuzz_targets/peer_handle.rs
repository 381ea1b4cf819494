//! One peer fed a stream of messages from 23 others (and from itself), with
//! its timers run between them: never a panic, and it never keeps itself.
//!
//! Each step is a kind byte, a sender byte, a time step byte, then either a
//! raw frame (kind ≥ 16: a u16 length, then the frame, decoded as a node
//! would) or a message built from the next bytes (kind < 16; 14 moves the
//! peer, 15 is an area message, received or our own, or a world object:
//! our own placed, edited or removed, or a copy signed by one of three
//! authors, sometimes tampered with, an offer or a request; or a route or
//! a key record: our own put, get or route, or a route, answer, record
//! copy, offer, request or long-link message received), so the fuzzer
//! reaches deep states without having to learn the encoding first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerworld_protocol::message::{AreaStage, Message, RouteAnswer, RouteAsk, decode};
use peerworld_protocol::object::{ObjectCopy, ObjectKey, SeededSigner, WorldObject};
use peerworld_protocol::record::{Record, RecordCopy, RecordKey};
use peerworld_protocol::{Config, Millis, Peer, PeerId, PeerInfo, Point, RadiusMode, World};

/// Reads bytes from the front of the input, zeros once it is used up.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    /// A coordinate in the 1000-unit world (or just outside it).
    fn coord(&mut self) -> f32 {
        f32::from(self.u16()) / 60.0
    }
    fn point(&mut self) -> Point {
        Point::new(self.coord(), self.coord())
    }
    fn id(&mut self) -> PeerId {
        PeerId::from_seed(u64::from(self.u8() % 24))
    }
    fn info(&mut self) -> PeerInfo {
        let id = self.id();
        let pos = self.point();
        let radius = f32::from(self.u8()) * 2.0;
        PeerInfo::new(id, pos, radius, "f")
    }
    fn infos(&mut self) -> Vec<PeerInfo> {
        let n = self.u8() % 12;
        (0..n).map(|_| self.info()).collect()
    }
}

/// A world-object step (kind 15, sub-kinds 1, 2, 3 and 5): `Some` message
/// to receive, or `None` after acting on the peer itself.
fn object_step(
    sub: u8,
    b: &mut Bytes,
    p: &mut Peer,
    now: Millis,
    authors: &[SeededSigner],
) -> Option<Message> {
    let author = &authors[usize::from(b.u8() % 3)];
    let key = |n: u8| ObjectKey::of(&author.author(), u64::from(n % 4));
    match sub {
        1 => {
            let held: Vec<ObjectKey> = p.live_objects(now).map(|o| o.key).collect();
            match (b.u8() % 3, held.first()) {
                (1, Some(k)) => {
                    let _ = p.edit_object(now, *k, "edited");
                }
                (2, Some(k)) => {
                    let _ = p.remove_object(now, *k);
                }
                _ => {
                    let _ = p.place_object(now, b.point(), "sign", [1, 2, 3], u32::from(b.u8()));
                }
            }
            None
        }
        2 => {
            let nonce = u64::from(b.u8() % 4);
            let mut object = WorldObject {
                key: ObjectKey::of(&author.author(), nonce),
                nonce,
                author_key: Vec::new(),
                version: u32::from(b.u8() % 5),
                pos: b.point(),
                colour: [0; 3],
                text: "x".into(),
                ttl_s: u32::from(b.u8()),
                removed: b.u8() % 4 == 0,
                sig: Vec::new(),
            };
            object.sign(author);
            if b.u8() % 4 == 0 {
                object.text.push('!');
            }
            Some(Message::Objects {
                objects: vec![ObjectCopy {
                    object,
                    age_ms: u64::from(b.u8()) * 100,
                }],
            })
        }
        3 => Some(Message::ObjectOffer {
            offers: (0..b.u8() % 4)
                .map(|_| (key(b.u8()), u32::from(b.u8() % 5)))
                .collect(),
        }),
        _ => Some(Message::ObjectWant {
            keys: (0..b.u8() % 4).map(|_| key(b.u8())).collect(),
        }),
    }
}

/// A route or record step (kind 15, sub-kinds 8 and 9): `Some` message to
/// receive, or `None` after acting on the peer itself.
fn route_step(
    b: &mut Bytes,
    p: &mut Peer,
    now: Millis,
    authors: &[SeededSigner; 3],
) -> Option<Message> {
    let author = &authors[usize::from(b.u8() % 3)];
    let name = ["a", "b", "c", "d"][usize::from(b.u8() % 4)];
    let copy = |b: &mut Bytes| {
        let mut record = Record::signed(
            author,
            name,
            vec![b.u8(); usize::from(b.u8()) * 5],
            u64::from(b.u8() % 5),
            u32::from(b.u8()),
            b.u8() % 4 == 0,
        );
        if b.u8() % 4 == 0 {
            record.value.push(1);
        }
        RecordCopy {
            record,
            age_ms: u64::from(b.u8()) * 100,
        }
    };
    match b.u8() % 10 {
        0 => {
            let _ = p.put_record(
                now,
                name,
                vec![1; usize::from(b.u8()) * 5],
                u32::from(b.u8()),
            );
            None
        }
        1 => {
            p.get_record(now, name);
            None
        }
        2 => {
            p.route(now, b.point());
            None
        }
        3 => {
            let ask = match b.u8() % 4 {
                0 => RouteAsk::Link,
                1 => RouteAsk::Find,
                2 => RouteAsk::Get {
                    key: RecordKey::of(name),
                    detour: b.u8() % 4,
                },
                _ => RouteAsk::Put(Box::new(copy(b))),
            };
            Some(Message::Route {
                origin: b.info(),
                target: b.point(),
                hops: u16::from(b.u8() % 4),
                token: u64::from(b.u8() % 4),
                ask,
            })
        }
        4 => Some(Message::RouteReply {
            token: u64::from(b.u8() % 4),
            hops: u16::from(b.u8()),
            pos: b.point(),
            answer: match b.u8() % 4 {
                0 => RouteAnswer::Linked,
                1 => RouteAnswer::Refused,
                2 => RouteAnswer::Stored(b.u8()),
                _ => RouteAnswer::Record(Some(Box::new(copy(b)))),
            },
        }),
        5 => Some(Message::Records {
            records: (0..b.u8() % 3).map(|_| copy(b)).collect(),
        }),
        6 => Some(Message::RecordOffer {
            offers: (0..b.u8() % 4)
                .map(|_| (RecordKey::of(name), u64::from(b.u8() % 5)))
                .collect(),
        }),
        7 => Some(Message::RecordWant {
            keys: vec![RecordKey::of(name)],
        }),
        8 => Some(Message::LinkKeep {
            stop: b.u8() % 2 == 0,
        }),
        _ => Some(Message::LinkAt {
            pos: b.point(),
            kept: b.u8() % 2 == 0,
        }),
    }
}

/// `sent` is the token of the last join the peer sent, which a reply
/// echoes half of the time (a reply must echo it to be taken).
fn message(kind: u8, b: &mut Bytes, sent: u64) -> Option<Message> {
    Some(match kind {
        0 => Message::Join {
            joiner: b.info(),
            hops: u16::from(b.u8() % 4),
            attempt: b.u8() % 4,
            token: u64::from(b.u8() % 4),
            pad: vec![0; usize::from(b.u8()) * 8],
        },
        1 => Message::JoinReply {
            hops: u16::from(b.u8()),
            at: b.point(),
            peers: b.infos(),
            observed_addr: if b.u8() % 2 == 0 {
                "127.0.0.1:9".into()
            } else {
                String::new()
            },
            token: if b.u8() % 2 == 0 { sent } else { 0 },
        },
        2 | 3 => Message::Hello {
            inc: u32::from(b.u8() % 3),
            seq: u32::from(b.u8()),
            pos: b.point(),
            radius: f32::from(b.u8()) * 2.0,
            name: String::new(),
            addr: String::new(),
            ask: b.u8() % 2 == 0,
        },
        4..=7 => Message::Move {
            inc: u32::from(b.u8() % 3),
            seq: u32::from(b.u8()),
            pos: b.point(),
            vel: Point::new(f32::from(b.u8()) - 128.0, f32::from(b.u8()) - 128.0),
        },
        8 | 9 => Message::Discover {
            peers: b.infos(),
            mutual: b.u8() % 2 == 0,
        },
        10 => Message::Digest {
            ids: (0..b.u8() % 8).map(|_| [b.u8(), 0, 0, 0]).collect(),
        },
        11 => Message::Ping,
        12 => Message::Forget,
        13 => Message::Leave,
        15 => Message::AreaCast {
            id: u64::from(b.u8() % 8),
            origin: b.id(),
            centre: b.point(),
            radius: f32::from(b.u8()) * 4.0,
            hops: u16::from(b.u8() % 4),
            stage: [AreaStage::Direct, AreaStage::Route, AreaStage::Flood][usize::from(b.u8() % 3)],
            payload: (0..b.u8() % 16).map(|_| b.u8()).collect(),
        },
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let adaptive = b.u8() % 2 == 0;
    let config = Config {
        world: World::new(1_000.0, 1_000.0),
        radius_mode: if adaptive {
            RadiusMode::Adaptive
        } else {
            RadiusMode::Fixed
        },
        max_kept: 8,
        long_links: 2,
        ..Config::default()
    };
    let me = PeerInfo::new(PeerId::from_seed(0), Point::new(500.0, 500.0), 100.0, "me");
    let mut p = Peer::new(config, me, Millis(0));
    p.set_signer(Box::new(SeededSigner::new(0)));
    let authors = [
        SeededSigner::new(1),
        SeededSigner::new(2),
        SeededSigner::new(3),
    ];
    if b.u8() % 2 == 0 {
        p.join(PeerId::from_seed(1), Millis(0));
    }
    let mut now = 0u64;
    let mut sent = 0u64;
    while !b.0.is_empty() {
        let kind = b.u8();
        let from = b.id();
        now += u64::from(b.u8()) * 4;
        let msg = if kind >= 16 {
            let len = usize::from(b.u16()).min(b.0.len());
            let (frame, rest) = b.0.split_at(len);
            b.0 = rest;
            decode(frame).ok()
        } else if kind == 14 {
            p.move_to(b.point(), Millis(now));
            None
        } else if kind == 15 {
            match b.u8() % 10 {
                0 | 4 => {
                    // Our own area message or chat line (errors are fine, panics not).
                    let (centre, radius) = (b.point(), f32::from(b.u8()) * 4.0);
                    let _ = p.area_cast(Millis(now), centre, radius, vec![1, b'x']);
                    let _ = p.say(Millis(now), "hi");
                    None
                }
                sub @ (1 | 2 | 3 | 5) => object_step(sub, &mut b, &mut p, Millis(now), &authors),
                8 | 9 => route_step(&mut b, &mut p, Millis(now), &authors),
                _ => message(kind, &mut b, sent),
            }
        } else {
            message(kind, &mut b, sent)
        };
        if let Some(msg) = msg {
            p.handle(Millis(now), from, msg);
        }
        while let Some(t) = p.poll_timeout().filter(|t| t.0 <= now) {
            p.handle_timeout(t);
        }
        while let Some(t) = p.poll_transmit() {
            if let Message::Join { token, hops: 0, .. } = t.msg {
                sent = token;
            }
        }
        while p.poll_event().is_some() {}
        assert!(!p.keeps(&PeerId::from_seed(0)), "keeps itself");
        if kind % 8 == 7 {
            // The whole view (a Delaunay of every kept peer) now and then:
            // every step made it the bulk of the work.
            let _ = p.view(Millis(now));
        }
    }
    let _ = p.view(Millis(now));
});

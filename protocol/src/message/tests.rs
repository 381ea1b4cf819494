//! The codec: round trips, bounds, and bytes that never panic.
use super::*;
use crate::id::PeerId;
use proptest::prelude::*;

fn info_strategy() -> impl Strategy<Value = PeerInfo> {
    (
        any::<[u8; 32]>(),
        -1e4f32..1e4,
        -1e4f32..1e4,
        0.0f32..1e4,
        "[a-z]{0,12}",
        "[0-9.:]{0,21}",
    )
        .prop_map(|(id, x, y, r, name, addr)| PeerInfo {
            id: PeerId(id),
            pos: Point::new(x, y),
            radius: r,
            name,
            addr,
        })
}

fn record_strategy() -> impl Strategy<Value = crate::record::RecordCopy> {
    (
        "[a-z ]{0,40}",
        prop::collection::vec(any::<u8>(), 0..100),
        prop::collection::vec(any::<u8>(), 0..300),
        any::<u64>(),
        1..=crate::object::MAX_OBJECT_TTL_S,
        any::<(bool, u64)>(),
    )
        .prop_map(|(name, key, value, version, ttl_s, (removed, age_ms))| {
            crate::record::RecordCopy {
                record: crate::record::Record {
                    key: crate::record::RecordKey::of(&name),
                    name,
                    author_key: key.clone(),
                    version,
                    value,
                    ttl_s,
                    removed,
                    sig: key,
                },
                age_ms,
            }
        })
}

fn message_strategy() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            info_strategy(),
            any::<u16>(),
            any::<u8>(),
            any::<u64>(),
            0..64usize
        )
            .prop_map(|(joiner, hops, attempt, token, pad)| {
                Message::Join {
                    token,
                    joiner,
                    hops,
                    attempt,
                    pad: vec![0; pad],
                }
            }),
        (
            any::<u16>(),
            info_strategy(),
            prop::collection::vec(info_strategy(), 0..8),
            "[0-9.:]{0,21}",
            any::<u64>(),
        )
            .prop_map(|(hops, me, peers, observed_addr, token)| {
                Message::JoinReply {
                    hops,
                    at: me.pos,
                    peers,
                    observed_addr,
                    token,
                }
            }),
        (info_strategy(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
            |(i, inc, seq, ask)| Message::Hello {
                inc,
                seq,
                pos: i.pos,
                radius: i.radius,
                name: i.name,
                addr: i.addr,
                ask,
            }
        ),
        (
            any::<u32>(),
            any::<u32>(),
            -1e4f32..1e4,
            -1e4f32..1e4,
            -1e3f32..1e3
        )
            .prop_map(|(inc, seq, x, y, v)| Message::Move {
                inc,
                seq,
                pos: Point::new(x, y),
                vel: Point::new(v, -v),
            }),
        (prop::collection::vec(info_strategy(), 0..8), any::<bool>())
            .prop_map(|(peers, mutual)| Message::Discover { peers, mutual }),
        prop::collection::vec(any::<[u8; 4]>(), 0..40).prop_map(|ids| Message::Digest { ids }),
        Just(Message::Ping),
        Just(Message::Leave),
        Just(Message::Forget),
        (
            any::<u64>(),
            any::<[u8; 32]>(),
            -1e4f32..1e4,
            0f32..MAX_AREA_RADIUS,
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(id, origin, c, radius, hops, payload)| Message::AreaCast {
                id,
                origin: PeerId(origin),
                centre: Point::new(c, -c),
                radius,
                hops,
                stage: [AreaStage::Direct, AreaStage::Route, AreaStage::Flood]
                    [usize::from(hops % 3)],
                payload,
            }),
        (
            any::<[u8; 16]>(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..100),
            any::<u32>(),
            -1e4f32..1e4,
            "[a-zé ]{0,40}",
            1..=crate::object::MAX_OBJECT_TTL_S,
            any::<(bool, u64)>(),
        )
            .prop_map(
                |(key, nonce, bytes, version, c, text, ttl_s, (removed, age_ms))| {
                    let object = crate::object::WorldObject {
                        key: crate::object::ObjectKey(key),
                        nonce,
                        author_key: bytes.clone(),
                        version,
                        pos: Point::new(c, c / 2.0),
                        colour: [key[0], key[1], key[2]],
                        text,
                        ttl_s,
                        removed,
                        sig: bytes,
                    };
                    Message::Objects {
                        objects: vec![crate::object::ObjectCopy { object, age_ms }],
                    }
                }
            ),
        prop::collection::vec((any::<[u8; 16]>(), any::<u32>()), 0..20).prop_map(|v| {
            Message::ObjectOffer {
                offers: v
                    .into_iter()
                    .map(|(k, n)| (crate::object::ObjectKey(k), n))
                    .collect(),
            }
        }),
        prop::collection::vec(any::<[u8; 16]>(), 0..20).prop_map(|v| Message::ObjectWant {
            keys: v.into_iter().map(crate::object::ObjectKey).collect(),
        }),
        (
            info_strategy(),
            -1e4f32..1e4,
            0..=MAX_ROUTE_HOPS,
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(|(origin, c, hops, token, link)| Message::Route {
                origin,
                target: Point::new(c, c / 3.0),
                hops,
                token,
                ask: if link { RouteAsk::Link } else { RouteAsk::Find },
            }),
        (
            any::<u64>(),
            any::<u16>(),
            -1e4f32..1e4,
            0..5u8,
            record_strategy()
        )
            .prop_map(|(token, hops, c, a, r)| Message::RouteReply {
                token,
                hops,
                pos: Point::new(c, -c),
                answer: match a {
                    0 => RouteAnswer::Linked,
                    1 => RouteAnswer::Refused,
                    2 => RouteAnswer::Found,
                    3 => RouteAnswer::Stored(hops as u8),
                    _ => RouteAnswer::Record(Some(Box::new(r))),
                },
            }),
        (
            info_strategy(),
            record_strategy(),
            any::<bool>(),
            any::<u8>()
        )
            .prop_map(|(origin, r, put, detour)| Message::Route {
                target: origin.pos,
                origin,
                hops: 1,
                token: 2,
                ask: if put {
                    RouteAsk::Put(Box::new(r))
                } else {
                    RouteAsk::Get {
                        key: r.record.key,
                        detour,
                    }
                },
            }),
        prop::collection::vec(record_strategy(), 0..4)
            .prop_map(|records| Message::Records { records }),
        prop::collection::vec((any::<[u8; 16]>(), any::<u64>()), 0..20).prop_map(|v| {
            Message::RecordOffer {
                offers: v
                    .into_iter()
                    .map(|(k, n)| (crate::record::RecordKey(k), n))
                    .collect(),
            }
        }),
        prop::collection::vec(any::<[u8; 16]>(), 0..20).prop_map(|v| Message::RecordWant {
            keys: v.into_iter().map(crate::record::RecordKey).collect(),
        }),
        any::<bool>().prop_map(|stop| Message::LinkKeep { stop }),
        (-1e4f32..1e4, any::<bool>()).prop_map(|(c, kept)| Message::LinkAt {
            pos: Point::new(c, c),
            kept
        }),
    ]
}

proptest! {
    #[test]
    fn round_trip(msg in message_strategy()) {
        let bytes = encode(&msg).unwrap();
        prop_assert_eq!(bytes.len(), encoded_len(&msg));
        prop_assert!(msg.min_wire_len() <= bytes.len(), "{} > {}", msg.min_wire_len(), bytes.len());
        if let Message::Discover { peers, mutual } = &msg {
            let empty = encoded_len(&Message::Discover { peers: Vec::new(), mutual: *mutual });
            let records: usize = peers.iter().map(encoded_record_len).sum();
            prop_assert_eq!(bytes.len(), empty + records);
        }
        prop_assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let mut framed = PROTOCOL_VERSION.to_le_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        let _ = decode(&framed);
    }

    #[test]
    fn trailing_bytes_are_rejected(msg in message_strategy(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = encode(&msg).unwrap();
        bytes.extend_from_slice(&extra);
        prop_assert!(matches!(decode(&bytes), Err(DecodeError::TrailingBytes(n)) if n == extra.len()));
    }

    #[test]
    fn truncated_frames_are_rejected(msg in message_strategy(), cut in 1usize..8) {
        let bytes = encode(&msg).unwrap();
        let keep = bytes.len().saturating_sub(cut);
        prop_assert!(decode(&bytes[..keep]).is_err());
    }
}

#[test]
fn non_finite_positions_are_rejected() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let m = Message::Move {
            inc: 0,
            seq: 1,
            pos: Point::new(bad, 0.0),
            vel: Point::default(),
        };
        assert_eq!(decode(&encode(&m).unwrap()), Err(DecodeError::BadPosition));
        let m = Message::Move {
            inc: 0,
            seq: 1,
            pos: Point::default(),
            vel: Point::new(0.0, bad),
        };
        assert_eq!(decode(&encode(&m).unwrap()), Err(DecodeError::BadVelocity));
        let mut i = PeerInfo::new(PeerId::from_seed(1), Point::new(0.0, 0.0), 10.0, "x");
        i.pos.y = bad;
        let m = Message::Discover {
            peers: vec![i],
            mutual: false,
        };
        assert_eq!(decode(&encode(&m).unwrap()), Err(DecodeError::BadPosition));
    }
    let m = Message::Hello {
        inc: 0,
        seq: 1,
        pos: Point::new(1.0, 0.0),
        radius: f32::NAN,
        name: String::new(),
        addr: String::new(),
        ask: false,
    };
    assert_eq!(decode(&encode(&m).unwrap()), Err(DecodeError::BadRadius));
}

#[test]
fn unknown_versions_are_rejected() {
    let mut bytes = encode(&Message::Ping).unwrap();
    bytes[..2].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::UnknownVersion(PROTOCOL_VERSION + 1))
    );
    bytes[..2].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(decode(&bytes), Err(DecodeError::UnknownVersion(0)));
    // Version 1 had no incarnation: refused with its own error.
    bytes[..2].copy_from_slice(&1u16.to_le_bytes());
    assert_eq!(decode(&bytes), Err(DecodeError::UnknownVersion(1)));
    assert_eq!(decode(&[1]), Err(DecodeError::Truncated));
}

#[test]
fn oversized_frames_are_rejected() {
    let big = vec![0u8; MAX_FRAME_LEN + 1];
    assert_eq!(decode(&big), Err(DecodeError::TooLarge(MAX_FRAME_LEN + 1)));
    // A length prefix claiming a huge list does not allocate or panic.
    let mut bytes = PROTOCOL_VERSION.to_le_bytes().to_vec();
    bytes.push(5); // Digest variant
    bytes.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(decode(&bytes).is_err());
    let long_name = "n".repeat(MAX_NAME_LEN + 1);
    let m = Message::Hello {
        inc: 0,
        seq: 0,
        pos: Point::new(0.0, 0.0),
        radius: 1.0,
        name: long_name,
        addr: String::new(),
        ask: false,
    };
    assert_eq!(decode(&encode(&m).unwrap()), Err(DecodeError::TooLong));
}

#[test]
fn a_join_padded_beyond_the_limit_is_refused() {
    let join = |pad: usize| Message::Join {
        joiner: PeerInfo::new(PeerId::from_seed(1), Point::new(1.0, 2.0), 100.0, "j"),
        hops: 0,
        attempt: 0,
        token: 9,
        pad: vec![0; pad],
    };
    let at_limit = join(MAX_JOIN_PAD);
    assert_eq!(decode(&encode(&at_limit).unwrap()), Ok(at_limit));
    assert_eq!(
        decode(&encode(&join(MAX_JOIN_PAD + 1)).unwrap()),
        Err(DecodeError::TooLong)
    );
}

#[test]
fn move_is_small() {
    let m = Message::Move {
        inc: 0,
        seq: 70_000,
        pos: Point::new(1234.5, 99.25),
        vel: Point::new(50.0, 0.0),
    };
    // version 2 + tag 1 + incarnation 1 + seq 5 + position 8 + velocity 8
    assert_eq!(encoded_len(&m), 25);
    let m = Message::Move {
        inc: 30_000_000,
        seq: 200,
        pos: Point::new(1234.5, 99.25),
        vel: Point::new(50.0, 0.0),
    };
    // version 2 + tag 1 + incarnation 5 + seq 1 + position 8 + velocity 8
    assert_eq!(encoded_len(&m), 25);
}

#[test]
fn too_fast_a_velocity_is_rejected() {
    let m = Message::Move {
        inc: 0,
        seq: 1,
        pos: Point::default(),
        vel: Point::new(MAX_SPEED, MAX_SPEED),
    };
    assert_eq!(decode(&encode(&m).unwrap()), Err(DecodeError::BadVelocity));
}

#[test]
fn routes_beyond_the_hop_limit_or_to_nowhere_are_refused() {
    let origin = PeerInfo::new(PeerId::from_seed(1), Point::new(1.0, 2.0), 100.0, "o");
    let route = |target: Point, hops: u16| Message::Route {
        origin: origin.clone(),
        target,
        hops,
        token: 7,
        ask: RouteAsk::Find,
    };
    let ok = route(Point::new(5.0, 5.0), MAX_ROUTE_HOPS);
    assert_eq!(decode(&encode(&ok).unwrap()).unwrap(), ok);
    let far = encode(&route(Point::new(5.0, 5.0), MAX_ROUTE_HOPS + 1)).unwrap();
    assert_eq!(decode(&far), Err(DecodeError::TooLong));
    let nowhere = encode(&route(Point::new(f32::NAN, 5.0), 0)).unwrap();
    assert_eq!(decode(&nowhere), Err(DecodeError::BadPosition));
    let at = encode(&Message::LinkAt {
        pos: Point::new(f32::INFINITY, 0.0),
        kept: true,
    })
    .unwrap();
    assert_eq!(decode(&at), Err(DecodeError::BadPosition));
}

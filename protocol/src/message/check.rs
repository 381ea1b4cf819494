//! What a message's contents may be (`validate`), what it costs at least
//! on the wire (`min_wire_len`), its kind for counters, and whether it
//! travels as a datagram.

use super::*;
impl Message {
    /// Whether the message may travel unreliably (as a QUIC datagram).
    pub fn is_datagram(&self) -> bool {
        matches!(self, Message::Move { .. } | Message::Ping)
    }

    /// A lower bound of the message's encoded length (frame included),
    /// cheap to compute: what a receiver credits the sender with when it
    /// bounds its replies (`peer/repair.rs`).
    pub fn min_wire_len(&self) -> usize {
        // id 32, position 8, radius 4, two lengths; then the strings.
        fn info(i: &PeerInfo) -> usize {
            46 + i.name.len() + i.addr.len()
        }
        // key 16, five lengths or numbers, the flag; then the bytes.
        fn record_len(r: &crate::record::Record) -> usize {
            22 + r.name.len() + r.author_key.len() + r.value.len() + r.sig.len()
        }
        fn ask_len(a: &RouteAsk) -> usize {
            match a {
                RouteAsk::Get { .. } => 17,
                RouteAsk::Put(c) => record_len(&c.record),
                _ => 0,
            }
        }
        3 + match self {
            Message::Join { joiner, pad, .. } => info(joiner) + 4 + pad.len(),
            Message::JoinReply { peers, .. } => 12 + peers.iter().map(info).sum::<usize>(),
            Message::Hello { name, addr, .. } => 17 + name.len() + addr.len(),
            Message::Move { .. } => 18,
            Message::Discover { peers, .. } => 2 + peers.iter().map(info).sum::<usize>(),
            Message::Digest { ids } => 1 + 4 * ids.len(),
            Message::Ping | Message::Leave | Message::Forget => 0,
            Message::AreaCast { payload, .. } => 48 + payload.len(),
            Message::Objects { objects } => {
                1 + objects
                    .iter()
                    .map(|c| {
                        let o = &c.object;
                        40 + o.author_key.len() + o.text.len() + o.sig.len()
                    })
                    .sum::<usize>()
            }
            Message::ObjectOffer { offers } => 1 + 17 * offers.len(),
            Message::ObjectWant { keys } => 1 + 16 * keys.len(),
            Message::Route { origin, ask, .. } => info(origin) + 11 + ask_len(ask),
            Message::RouteReply { answer, .. } => {
                11 + match answer {
                    RouteAnswer::Record(Some(c)) => record_len(&c.record),
                    _ => 0,
                }
            }
            Message::Records { records } => {
                1 + records.iter().map(|c| record_len(&c.record)).sum::<usize>()
            }
            Message::RecordOffer { offers } => 1 + 17 * offers.len(),
            Message::RecordWant { keys } => 1 + 16 * keys.len(),
            Message::LinkKeep { .. } => 1,
            Message::LinkAt { .. } => 9,
        }
    }

    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::JoinReply { .. } => "join_reply",
            Message::Hello { .. } => "hello",
            Message::Move { .. } => "move",
            Message::Discover { .. } => "discover",
            Message::Digest { .. } => "digest",
            Message::Ping => "ping",
            Message::Leave => "leave",
            Message::Forget => "forget",
            Message::AreaCast { .. } => "area_cast",
            Message::Objects { .. } => "objects",
            Message::ObjectOffer { .. } => "object_offer",
            Message::ObjectWant { .. } => "object_want",
            Message::Route { ask, .. } => ask.kind(),
            Message::Records { .. } => "records",
            Message::RecordOffer { .. } => "record_offer",
            Message::RecordWant { .. } => "record_want",
            Message::RouteReply { .. } => "route_reply",
            Message::LinkKeep { .. } => "link_keep",
            Message::LinkAt { .. } => "link_at",
        }
    }

    /// Checks the contents a well-formed encoding can still get wrong.
    pub fn validate(&self) -> Result<(), DecodeError> {
        fn record_shape(r: &crate::record::Record) -> Result<(), DecodeError> {
            r.check_shape().map_err(|_| DecodeError::TooLong)
        }
        fn info(i: &PeerInfo) -> Result<(), DecodeError> {
            if !i.pos.is_finite() {
                return Err(DecodeError::BadPosition);
            }
            if !i.radius.is_finite() || i.radius < 0.0 {
                return Err(DecodeError::BadRadius);
            }
            if i.name.len() > MAX_NAME_LEN || i.addr.len() > MAX_ADDR_LEN {
                return Err(DecodeError::TooLong);
            }
            Ok(())
        }
        match self {
            Message::Join { joiner, pad, .. } => {
                if pad.len() > MAX_JOIN_PAD {
                    return Err(DecodeError::TooLong);
                }
                info(joiner)
            }
            Message::JoinReply {
                at,
                peers,
                observed_addr,
                ..
            } => {
                if !at.is_finite() {
                    return Err(DecodeError::BadPosition);
                }
                if peers.len() > MAX_RECORDS || observed_addr.len() > MAX_ADDR_LEN {
                    return Err(DecodeError::TooLong);
                }
                peers.iter().try_for_each(info)
            }
            Message::Hello {
                pos,
                radius,
                name,
                addr,
                ..
            } => {
                if !pos.is_finite() {
                    Err(DecodeError::BadPosition)
                } else if !radius.is_finite() || *radius < 0.0 {
                    Err(DecodeError::BadRadius)
                } else if name.len() > MAX_NAME_LEN || addr.len() > MAX_ADDR_LEN {
                    Err(DecodeError::TooLong)
                } else {
                    Ok(())
                }
            }
            Message::Move { pos, vel, .. } => {
                if !pos.is_finite() {
                    Err(DecodeError::BadPosition)
                } else if !vel.is_finite() || vel.x.hypot(vel.y) > MAX_SPEED {
                    Err(DecodeError::BadVelocity)
                } else {
                    Ok(())
                }
            }
            Message::Discover { peers, .. } => {
                if peers.len() > MAX_RECORDS {
                    return Err(DecodeError::TooLong);
                }
                peers.iter().try_for_each(info)
            }
            Message::Digest { ids } => {
                if ids.len() > MAX_DIGEST {
                    Err(DecodeError::TooLong)
                } else {
                    Ok(())
                }
            }
            Message::Ping | Message::Leave | Message::Forget | Message::LinkKeep { .. } => Ok(()),
            Message::Route {
                origin,
                target,
                hops,
                ask,
                ..
            } => {
                if !target.is_finite() {
                    Err(DecodeError::BadPosition)
                } else if *hops > MAX_ROUTE_HOPS {
                    Err(DecodeError::TooLong)
                } else if let RouteAsk::Put(c) = ask {
                    info(origin)?;
                    record_shape(&c.record)
                } else {
                    info(origin)
                }
            }
            Message::RouteReply { pos, answer, .. } => {
                if !pos.is_finite() {
                    Err(DecodeError::BadPosition)
                } else if let RouteAnswer::Record(Some(c)) = answer {
                    record_shape(&c.record)
                } else {
                    Ok(())
                }
            }
            Message::LinkAt { pos, .. } => {
                if pos.is_finite() {
                    Ok(())
                } else {
                    Err(DecodeError::BadPosition)
                }
            }
            Message::RecordOffer { offers } => at_most(offers.len(), MAX_OBJECT_OFFERS),
            Message::RecordWant { keys } => at_most(keys.len(), MAX_OBJECT_OFFERS),
            Message::Records { records } => {
                if records.len() > MAX_RECORDS_PER_MESSAGE {
                    return Err(DecodeError::TooLong);
                }
                records.iter().try_for_each(|c| record_shape(&c.record))
            }
            Message::ObjectOffer { offers } => at_most(offers.len(), MAX_OBJECT_OFFERS),
            Message::ObjectWant { keys } => at_most(keys.len(), MAX_OBJECT_OFFERS),
            Message::Objects { objects } => {
                if objects.len() > crate::object::MAX_OBJECTS_PER_MESSAGE {
                    return Err(DecodeError::TooLong);
                }
                objects.iter().try_for_each(|c| {
                    c.object.check_shape().map_err(|e| match e {
                        crate::object::ObjectError::BadPosition => DecodeError::BadPosition,
                        _ => DecodeError::TooLong,
                    })
                })
            }
            Message::AreaCast {
                centre,
                radius,
                payload,
                ..
            } => {
                if !centre.is_finite() {
                    Err(DecodeError::BadPosition)
                } else if !radius.is_finite() || *radius < 0.0 || *radius > MAX_AREA_RADIUS {
                    Err(DecodeError::BadRadius)
                } else if payload.len() > MAX_AREA_PAYLOAD {
                    Err(DecodeError::TooLong)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// A list of `len` items where at most `max` may be.
fn at_most(len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        Err(DecodeError::TooLong)
    } else {
        Ok(())
    }
}

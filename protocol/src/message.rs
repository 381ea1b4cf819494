//! The wire messages (this file), what their contents may be
//! (`message/check.rs`) and their codec (`message/codec.rs`, the one place
//! bincode is used, so it can be swapped).
//!
//! A frame is a 2-byte little-endian protocol version followed by the
//! bincode-2 encoding of a [`Message`]. Decoding checks the version range, the
//! size limit, that every byte was consumed, and that every position, radius,
//! name and list is sane; it never panics.

use serde::{Deserialize, Serialize};

use crate::geometry::Point;
use crate::id::PeerInfo;

/// The protocol version this build speaks.
///
/// Version 2 added the incarnation to `Hello` and `Move`; a version-1 peer
/// cannot tell a restarted peer from a stale one, so version 1 is refused.
/// Version 3 added `ask` to `Hello` and `at` to `JoinReply`; version 4 the
/// velocity to `Move` (dead reckoning: an older peer's moves would be
/// extrapolated wrongly); version 5 the attempt to `Join`; version 6 the
/// join tokens; version 7 world objects (`Objects`); version 9 hop
/// counters of 16 bits, routed messages and long links (`Route`,
/// `RouteReply`, `LinkKeep`, `LinkAt`) and key records (`Records`). Older
/// versions are refused.
pub const PROTOCOL_VERSION: u16 = 9;
/// The oldest protocol version this build still accepts.
pub const OLDEST_SUPPORTED_VERSION: u16 = 9;
/// Fastest velocity a `Move` may announce, in world units per second.
pub const MAX_SPEED: f32 = 100_000.0;
/// Largest awareness radius a peer may declare, in world units. A larger
/// declared radius is clamped to it on receipt: a peer is kept, relayed and
/// fed moves for its own radius only up to here (a "hoarder" declaring
/// 1e30 was kept by everyone in the world).
pub const MAX_RADIUS: f32 = 1_000.0;
/// Largest encoded frame accepted, in bytes.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest number of peer records in one message.
pub const MAX_RECORDS: usize = 256;
/// Largest display name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Largest address string, in bytes.
pub const MAX_ADDR_LEN: usize = 128;
/// Largest number of ids in an anti-entropy digest.
pub const MAX_DIGEST: usize = 1024;
/// Largest application payload of an area message, in bytes.
pub const MAX_AREA_PAYLOAD: usize = 1024;
/// Most object offers, or requests, in one message.
pub const MAX_OBJECT_OFFERS: usize = 256;
/// Most padding in a join, in bytes (see `Message::Join::pad`).
pub const MAX_JOIN_PAD: usize = 4_096;
/// Largest radius of an area message's disk, in world units.
pub const MAX_AREA_RADIUS: f32 = 4_000.0;
/// Most forwards of a routed message (join, area message, `Route`): a
/// world of a million peers needs more than 255 without long links.
pub const MAX_ROUTE_HOPS: u16 = 4_096;
/// Most holders a lookup asks after the end of its route.
pub const MAX_GET_DETOURS: u8 = 2;
/// Most key records in one `Records` message.
pub const MAX_RECORDS_PER_MESSAGE: usize = 32;

/// What a routed message asks of the peer it ends at (see `peer/links.rs`
/// and `peer/records.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RouteAsk {
    /// To become one of the origin's long links (refused beyond twice
    /// `Config::long_links` incoming links).
    Link,
    /// Only who owns the point (`GET /route`).
    Find,
    /// The record under this key (answered by the first holder on the way;
    /// the end, lacking it, asks the next holder in its view, `detour`
    /// counting those steps, at most [`MAX_GET_DETOURS`]).
    Get {
        /// The record's key.
        key: crate::record::RecordKey,
        /// Holders asked after the end of the route.
        detour: u8,
    },
    /// Store this record version (at the owner of its key's point).
    Put(Box<crate::record::RecordCopy>),
}

impl RouteAsk {
    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RouteAsk::Link => "link_probe",
            RouteAsk::Find => "route",
            RouteAsk::Get { .. } => "record_get",
            RouteAsk::Put(_) => "record_put",
        }
    }
}

/// The answer of the peer a routed message ended at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RouteAnswer {
    /// It is now the origin's long link.
    Linked,
    /// It has as many incoming links as it takes, or refuses the record
    /// (another writer's name, a bad signature, an older version).
    Refused,
    /// It owns the point (the answer to [`RouteAsk::Find`]).
    Found,
    /// The record, or none (the answer to [`RouteAsk::Get`]).
    Record(Option<Box<crate::record::RecordCopy>>),
    /// Stored: by how many holders (itself, and those it handed copies to).
    Stored(u8),
}

/// How far an area message has gone (see `peer/area.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AreaStage {
    /// Sent straight to a receiver inside the disk by a sender that knows
    /// the whole disk: delivered, never forwarded.
    Direct,
    /// Forwarded greedily toward the centre, to the peer whose cell holds it.
    Route,
    /// Spreading from that peer over Delaunay edges to the cells that meet
    /// the disk.
    Flood,
}

/// A message between two peers. The sender is never part of the message: it
/// is the authenticated peer at the other end of the connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Asks to place `joiner`; forwarded greedily toward `joiner.pos` until
    /// the peer whose Voronoi cell holds it (the acceptor).
    Join {
        /// The newcomer.
        joiner: PeerInfo,
        /// Hops travelled so far.
        hops: u16,
        /// The joiner's attempt (0 first; each retry one more): a forwarder
        /// that already passed this joiner's join on avoids the peers it
        /// chose before, so a retry takes another path round a black hole.
        attempt: u8,
        /// The joiner's unguessable token for this join or probe, echoed in
        /// the reply: only a peer on the join's path can answer it.
        token: u64,
        /// Zeros the joiner pays to be answered: the acceptor's reply stays
        /// within `REPLY_MULTIPLE` times the join's size (QUIC pads its
        /// Initial for the same reason). At most [`MAX_JOIN_PAD`] bytes.
        pad: Vec<u8>,
    },
    /// The acceptor's answer: itself first, then the peers the joiner should
    /// know, and the address the joiner's connection came from (if known).
    JoinReply {
        /// Hops the join travelled.
        hops: u16,
        /// Where the join placed the joiner (the position it asked for): a
        /// joiner that has jumped elsewhere since ignores the reply.
        at: Point,
        /// Acceptor, then enclosing and nearby peers of the joiner.
        peers: Vec<PeerInfo>,
        /// The joiner's address as seen by the acceptor (empty if unknown).
        observed_addr: String,
        /// The token of the join this answers.
        token: u64,
    },
    /// Introduces the sender to a peer it now keeps, or announces a new
    /// radius; the sender's id is the authenticated one of the link.
    Hello {
        /// The sender's incarnation: its boot epoch, higher after a restart.
        inc: u32,
        /// The sender's current move sequence number.
        seq: u32,
        /// The sender's position.
        pos: Point,
        /// The sender's awareness radius.
        radius: f32,
        /// The sender's display name.
        name: String,
        /// Where to dial the sender (may be empty).
        addr: String,
        /// The sender greets a peer it just learned of and asks for its
        /// record in return. An answer or an announcement (a new radius)
        /// does not ask, so two hellos never bounce.
        ask: bool,
    },
    /// The sender's motion: where it is and how fast it goes; receivers
    /// extrapolate until the next one (sent as a datagram: may be
    /// lost/reordered; sent again when the true position leaves the
    /// extrapolation by more than the sender's tolerance, on a stop, and at
    /// least every `Config::motion_refresh_ms` while moving).
    Move {
        /// The sender's incarnation; a move of an older one is ignored, a
        /// newer one replaces what was known of the sender.
        inc: u32,
        /// Increasing per sender and incarnation; older updates are ignored.
        seq: u32,
        /// New position.
        pos: Point,
        /// Velocity at that position, in world units per second.
        vel: Point,
    },
    /// Records of peers the receiver should know (hints: believed only once
    /// the peer itself speaks).
    Discover {
        /// The records.
        peers: Vec<PeerInfo>,
        /// Whether the peers named were told about the receiver too (then
        /// they will speak first and no hello is needed).
        mutual: bool,
    },
    /// Anti-entropy: the short ids of the peers the sender keeps; the receiver
    /// answers with a `Discover` of what the sender lacks.
    Digest {
        /// The first 4 bytes of every kept peer's id, sorted.
        ids: Vec<[u8; 4]>,
    },
    /// Keep-alive (a datagram).
    Ping,
    /// The sender leaves the world.
    Leave,
    /// The sender does not keep the receiver (it sent a move to a peer that
    /// finds it out of range): stop sending, drop the sender unless needed.
    Forget,
    /// An application message for every peer within `radius` of `centre`
    /// (chat, world objects).
    AreaCast {
        /// The origin's number for it; with `origin`, the duplicate filter's key.
        id: u64,
        /// The peer that sent it first (the sender itself when `hops` is 0).
        origin: crate::id::PeerId,
        /// The disk's centre.
        centre: Point,
        /// The disk's radius (at most [`MAX_AREA_RADIUS`]).
        radius: f32,
        /// Forwards so far.
        hops: u16,
        /// How far it has gone.
        stage: AreaStage,
        /// The application's bytes (at most [`MAX_AREA_PAYLOAD`]).
        payload: Vec<u8>,
    },
    /// World objects the receiver should hold or see (see `peer/objects.rs`).
    Objects {
        /// The copies (at most [`crate::object::MAX_OBJECTS_PER_MESSAGE`]).
        objects: Vec<crate::object::ObjectCopy>,
    },
    /// The sender holds these object versions and takes it the receiver
    /// should see them: the receiver asks for those it lacks.
    ObjectOffer {
        /// (key, version) pairs (at most [`MAX_OBJECT_OFFERS`]).
        offers: Vec<(crate::object::ObjectKey, u32)>,
    },
    /// Asks for the copies of objects the receiver offered.
    ObjectWant {
        /// The keys (at most [`MAX_OBJECT_OFFERS`]).
        keys: Vec<crate::object::ObjectKey>,
    },
    /// Forwarded greedily toward `target` over kept peers and long links
    /// until the peer nearest to it (the owner), which answers the origin
    /// straight with a `RouteReply`.
    Route {
        /// The peer that sent it first (the sender itself when `hops` is 0).
        origin: PeerInfo,
        /// The point it goes to.
        target: Point,
        /// Forwards so far (at most [`MAX_ROUTE_HOPS`]).
        hops: u16,
        /// The origin's token, echoed in the reply.
        token: u64,
        /// What it asks of the owner.
        ask: RouteAsk,
    },
    /// The owner's answer to a `Route`, sent straight to its origin.
    RouteReply {
        /// The route's token.
        token: u64,
        /// Forwards the route took.
        hops: u16,
        /// The owner's position.
        pos: Point,
        /// The answer.
        answer: RouteAnswer,
    },
    /// Key records the receiver should hold (see `peer/records.rs`).
    Records {
        /// The copies (at most [`MAX_RECORDS_PER_MESSAGE`]).
        records: Vec<crate::record::RecordCopy>,
    },
    /// The sender keeps these record versions and takes it the receiver
    /// should too: the receiver asks for those it lacks.
    RecordOffer {
        /// (key, version) pairs (at most [`MAX_OBJECT_OFFERS`]).
        offers: Vec<(crate::record::RecordKey, u64)>,
    },
    /// Asks for the copies of records the receiver offered.
    RecordWant {
        /// The keys (at most [`MAX_OBJECT_OFFERS`]).
        keys: Vec<crate::record::RecordKey>,
    },
    /// From a peer whose long link the receiver is: still in use (or, with
    /// `stop`, no longer). Answered with `LinkAt`.
    LinkKeep {
        /// The link is dropped.
        stop: bool,
    },
    /// The far end of a long link: where it is, and whether it still takes
    /// the link.
    LinkAt {
        /// Its position.
        pos: Point,
        /// It keeps counting the link (false: it has too many).
        kept: bool,
    },
}

mod check;
mod codec;
pub use codec::{DecodeError, EncodeError, decode, encode, encoded_len, encoded_record_len};

#[cfg(test)]
mod tests;

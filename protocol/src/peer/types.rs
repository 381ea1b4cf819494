//! The peer's public types: its configuration, what it sends and reports,
//! and what it knows.

use super::RadiusMode;
use crate::Millis;
use crate::geometry::World;
use crate::id::{PeerId, PeerInfo};
use crate::message::MAX_ROUTE_HOPS;
use crate::message::{DecodeError, Message};

/// Tunables of the overlay.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The world's size.
    pub world: World,
    /// Awareness radius (with [`RadiusMode::Adaptive`], the largest).
    pub radius: f32,
    /// Whether the radius is fixed or adapts to crowds.
    pub radius_mode: RadiusMode,
    /// Adaptive radius: the fewest and most peers to keep within reach
    /// (radius plus buffer); the radius shrinks above the most and grows
    /// back below the fewest.
    pub neighbours: (usize, usize),
    /// Detection buffer: peers are learned about this far before they cross
    /// the radius (VON uses 32 at radius 100).
    pub buffer: f32,
    /// Dead reckoning: a move is announced only when the true position is
    /// further than this (world units) from where the last announcement
    /// extrapolates it, on a stop, and every `motion_refresh_ms` while
    /// moving (default 2, within an avatar). 0 announces every step, with
    /// its velocity: receivers still extrapolate between steps.
    pub epsilon: f32,
    /// A moving peer announces its motion at least this often (a lost
    /// datagram is corrected within this time); beliefs are extrapolated
    /// for at most twice this.
    pub motion_refresh_ms: u64,
    /// Period of the motion round: beliefs about moving peers are advanced
    /// to now, pair discovery runs on them, and this peer checks its own
    /// announcement against where it is.
    pub motion_ms: u64,
    /// A neighbour silent for this long is dropped as crashed; with no
    /// neighbour heard for this long, a joined peer is lost.
    pub failure_timeout_ms: u64,
    /// A neighbour that was sent nothing for this long gets a ping.
    pub heartbeat_ms: u64,
    /// Period of the anti-entropy digest to each enclosing neighbour.
    pub anti_entropy_ms: u64,
    /// Period of the maintenance timer (failures, heartbeats, hull checks).
    pub maintenance_ms: u64,
    /// Delay that batches position changes before the local Delaunay view is
    /// recomputed.
    pub recompute_delay_ms: u64,
    /// Fewest milliseconds between two repair digests to the same neighbour.
    pub repair_interval_ms: u64,
    /// A join not answered within this time is sent again.
    pub join_retry_ms: u64,
    /// Join forwarding stops after this many hops (loop guard).
    pub max_join_hops: u16,
    /// A move longer than this in one step is a teleport: a join at the new
    /// place (walking discovery only follows moves shorter than the
    /// detection buffer per exchange).
    pub teleport_distance: f32,
    /// Most peers kept at once (the farthest non-enclosing go first).
    pub max_kept: usize,
    /// This peer's incarnation (boot epoch): a restarted peer must start
    /// with a higher one than its previous life, so that others replace
    /// what they knew of it at once (the node uses the wall clock).
    pub incarnation: u32,
    /// Long-range links kept (`links.rs`; 0: none, as VON). Nodes and the
    /// client keep 4.
    pub long_links: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            world: World::default(),
            radius: 100.0,
            radius_mode: RadiusMode::Fixed,
            neighbours: (8, 40),
            buffer: 32.0,
            epsilon: 2.0,
            motion_refresh_ms: 1_000,
            motion_ms: 100,
            failure_timeout_ms: 3_000,
            heartbeat_ms: 1_000,
            anti_entropy_ms: 2_000,
            maintenance_ms: 250,
            recompute_delay_ms: 10,
            repair_interval_ms: 500,
            join_retry_ms: 1_000,
            max_join_hops: MAX_ROUTE_HOPS,
            teleport_distance: 100.0,
            max_kept: 1_024,
            incarnation: 0,
            long_links: 0,
        }
    }
}

/// The heartbeats [`Config::with_heartbeat`] accepts, in milliseconds: no
/// shorter than the maintenance round that sends the pings, no longer than
/// half a minute of not noticing a crash.
pub const HEARTBEAT_MS: std::ops::RangeInclusive<u64> = 250..=30_000;

impl Config {
    /// The liveness timers, scaled together from one heartbeat of `ms`
    /// (clamped to [`HEARTBEAT_MS`]; the defaults are those of 1 000): a
    /// ping to a kept peer sent nothing for `ms`, a moving peer's motion
    /// refreshed as often, a silent neighbour dropped after three
    /// heartbeats, an anti-entropy digest every two. These messages are
    /// most of what a settled world sends (a walker's refreshes, a still
    /// peer's pings, the digests and their answers), so a longer heartbeat
    /// costs fewer messages, and notices a crash and repairs a lost motion
    /// datagram that much later.
    #[must_use]
    pub fn with_heartbeat(mut self, ms: u64) -> Self {
        let ms = ms.clamp(*HEARTBEAT_MS.start(), *HEARTBEAT_MS.end());
        self.heartbeat_ms = ms;
        self.motion_refresh_ms = ms;
        self.failure_timeout_ms = 3 * ms;
        self.anti_entropy_ms = 2 * ms;
        self
    }
}

/// A message to send: to whom, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// The receiver.
    pub to: PeerId,
    /// The message.
    pub msg: Message,
}

/// Why a kept peer was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveReason {
    /// It said goodbye.
    Left,
    /// It was silent for longer than the failure timeout (or, a hint, never
    /// spoke within it).
    TimedOut,
    /// It is neither enclosing nor within range any more.
    OutOfRange,
    /// It told us it does not keep us, and it is not enclosing for us.
    Forgotten,
    /// Evicted to keep the table under `Config::max_kept`.
    Evicted,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// A position that is not finite.
    #[error("non-finite position")]
    BadPosition,
    /// A velocity that is not finite or too fast.
    #[error("bad velocity")]
    BadVelocity,
    /// A radius that is not finite or is negative.
    #[error("bad radius")]
    BadRadius,
    /// A name, address or list over its limit.
    #[error("field too long")]
    TooLong,
    /// A first-hop join that names another peer than its sender.
    #[error("join claims another id")]
    JoinClaimsAnotherId,
    /// A join reply nobody asked for (no join or probe of ours is out).
    #[error("unsolicited join reply")]
    UnsolicitedJoinReply,
    /// A first-hop area message naming another peer as its origin.
    #[error("a first-hop area message names another peer as its origin")]
    AreaClaimsAnotherOrigin,
    /// A world object whose key, signature or limits are wrong (a forged
    /// edit of someone else's object among them).
    #[error("bad object: {0}")]
    BadObject(crate::object::ObjectError),
    /// A first-hop routed message naming another peer as its origin.
    #[error("a first-hop routed message names another peer as its origin")]
    RouteClaimsAnotherOrigin,
    /// A route reply, or a long link's answer, nobody asked for.
    #[error("unsolicited route reply")]
    UnsolicitedRouteReply,
    /// Anything else the validator refuses.
    #[error("invalid message")]
    Invalid,
}

impl From<&DecodeError> for RejectReason {
    fn from(e: &DecodeError) -> Self {
        match e {
            DecodeError::BadPosition => Self::BadPosition,
            DecodeError::BadVelocity => Self::BadVelocity,
            DecodeError::BadRadius => Self::BadRadius,
            DecodeError::TooLong => Self::TooLong,
            _ => Self::Invalid,
        }
    }
}

/// What happened, for the embedding program.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The join completed through an acceptor after `hops` forwards.
    Joined {
        /// The peer whose Voronoi cell held the joiner.
        acceptor: PeerId,
        /// Join forwarding hops.
        hops: u16,
    },
    /// A peer is now kept.
    NeighbourAdded(PeerId),
    /// A peer is no longer kept.
    NeighbourRemoved(PeerId, RemoveReason),
    /// This peer did not know its own dialable address; the join acceptor
    /// reported the one it saw, and the peer now advertises it.
    ObservedAddr(String),
    /// An area message for a disk we lie in (or sent straight to us).
    AreaMessage {
        /// The peer that sent it first.
        origin: PeerId,
        /// The origin's number for it.
        id: u64,
        /// The disk's centre.
        centre: crate::geometry::Point,
        /// The disk's radius.
        radius: f32,
        /// Forwards it took.
        hops: u16,
        /// The application's bytes ([`crate::peer::chat_text`] reads a chat line).
        payload: Vec<u8>,
    },
    /// A route of ours (`Peer::route`, `get_record`, `put_record`, or a
    /// long link's probe) was answered.
    Routed {
        /// The token `Peer::route` (or `get_record`, `put_record`) returned.
        token: u64,
        /// The answer.
        answer: crate::message::RouteAnswer,
        /// The point it went to.
        target: crate::geometry::Point,
        /// Forwards it took (0: we own the point ourselves).
        hops: u16,
        /// The peer it ended at, and where that peer is.
        owner: PeerId,
        /// The owner's position.
        pos: crate::geometry::Point,
    },
    /// A message was refused; counted in [`Stats::rejected`].
    Rejected {
        /// The sender.
        from: PeerId,
        /// Why.
        reason: RejectReason,
    },
}

/// The overlay's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Messages handed out by `poll_transmit`.
    pub msgs_out: u64,
    /// Messages passed to `handle`.
    pub msgs_in: u64,
    /// Messages refused (lying ids, bad values).
    pub rejected: u64,
    /// Joins this peer completed.
    pub joins: u64,
    /// Joins this peer accepted for others.
    pub joins_accepted: u64,
    /// Joins this peer forwarded.
    pub joins_forwarded: u64,
    /// Neighbours dropped after the failure timeout.
    pub timeouts: u64,
    /// Repair digests sent (hull gaps, lost neighbours, new enclosing peers).
    pub repairs: u64,
    /// Kept peers heard in a new incarnation (restarted with the same id).
    pub restarts_seen: u64,
    /// Motion announcements (each a `Move` to every kept peer).
    pub moves_announced: u64,
    /// Times the adaptive radius changed.
    pub radius_changes: u64,
    /// Peer records received in `Discover` messages.
    pub discover_records: u64,
    /// Of those, records of peers already kept here (told twice).
    pub discover_known: u64,
    /// Digests left unanswered: the same peer's previous one was answered
    /// less than 250 ms before.
    pub digests_refused: u64,
    /// Records not taken as hints: their sender's quota of hints not yet
    /// heard from was full, or the table was.
    pub hints_refused: u64,
    /// Area messages delivered to this peer (chat lines among them).
    pub area_delivered: u64,
    /// Area messages passed on (routed toward a centre, or flooded).
    pub area_forwarded: u64,
    /// Copies of area messages already seen, dropped.
    pub area_duplicates: u64,
    /// Area messages refused: their sender was over its budget, or not
    /// passed on: this peer was over its forwarding budget.
    pub area_refused: u64,
    /// Digest answers cut short: the asker's reply credit (4× what it sent
    /// us, plus 16 KiB) did not pay for every record.
    pub replies_capped: u64,
    /// World objects (new versions) taken from other peers.
    pub objects_taken: u64,
    /// Object copies sent to other peers.
    pub objects_sent: u64,
    /// Object copies sent to a holder that lacked them (hand-overs).
    pub objects_handed: u64,
    /// Object copies taken no further: this peer held that version or a
    /// newer one already (a copy sent twice, or crossing a newer one).
    pub objects_stale: u64,
    /// Object copies refused: bad signature or key, over a quota, or not
    /// wanted here (far from this peer and not on their way to their point).
    pub objects_refused: u64,
    /// Routed messages (`Route`) passed on.
    pub routes_forwarded: u64,
    /// Routed messages that ended here and were answered.
    pub routes_answered: u64,
    /// Routed messages refused: their sender was over its budget.
    pub routes_refused: u64,
    /// Key record versions taken (puts that ended here, hand-offs).
    pub records_taken: u64,
    /// Key record copies refused (bad signature or name, another writer's
    /// name, quota, not wanted here).
    pub records_refused: u64,
    /// Long links made (a far end took our probe).
    pub links_made: u64,
    /// Long links dropped and drawn again (far end silent or refusing,
    /// length out of bounds, lifetime over).
    pub links_redrawn: u64,
}

impl Stats {
    /// `(name, help, value)` of the counters a node exports (the message
    /// totals are counted by the transport instead).
    pub fn fields(&self) -> [(&'static str, &'static str, u64); 29] {
        [
            (
                "rejected",
                "Messages the overlay refused (wrong claimed id, bad values).",
                self.rejected,
            ),
            ("joins", "Joins completed by this node.", self.joins),
            (
                "joins_accepted",
                "Joins this node accepted for others.",
                self.joins_accepted,
            ),
            (
                "joins_forwarded",
                "Joins this node forwarded.",
                self.joins_forwarded,
            ),
            (
                "timeouts",
                "Neighbours dropped after the failure timeout.",
                self.timeouts,
            ),
            (
                "repairs",
                "Repair requests sent (hull gaps, lost neighbours).",
                self.repairs,
            ),
            (
                "restarts_seen",
                "Kept peers heard in a new incarnation (restarted with the same id).",
                self.restarts_seen,
            ),
            (
                "discover_records",
                "Peer records received in Discover messages.",
                self.discover_records,
            ),
            (
                "discover_known",
                "Discover records of peers already kept here (told twice).",
                self.discover_known,
            ),
            (
                "radius_changes",
                "Times the adaptive radius changed (crowds).",
                self.radius_changes,
            ),
            (
                "digests_refused",
                "Digests left unanswered (the same peer's last one was answered under 250 ms before).",
                self.digests_refused,
            ),
            (
                "hints_refused",
                "Records not taken as hints (the sender's quota of unconfirmed hints, or the table, was full).",
                self.hints_refused,
            ),
            (
                "area_delivered",
                "Area messages (chat lines among them) delivered to this node.",
                self.area_delivered,
            ),
            (
                "area_forwarded",
                "Area messages this node passed on toward their area or within it.",
                self.area_forwarded,
            ),
            (
                "area_duplicates",
                "Copies of area messages already seen, dropped.",
                self.area_duplicates,
            ),
            (
                "area_refused",
                "Area messages refused (their sender over its budget) or not passed on (ours spent).",
                self.area_refused,
            ),
            (
                "replies_capped",
                "Digest answers cut short by the asker's reply credit (4x what it sent, plus 16 KiB).",
                self.replies_capped,
            ),
            (
                "objects_taken",
                "World object versions taken from other nodes.",
                self.objects_taken,
            ),
            (
                "objects_sent",
                "World object copies sent to other nodes.",
                self.objects_sent,
            ),
            (
                "objects_stale",
                "World object copies received at a version already held.",
                self.objects_stale,
            ),
            (
                "objects_handed",
                "World object copies handed to a holder that lacked them.",
                self.objects_handed,
            ),
            (
                "objects_refused",
                "World object copies refused (bad signature or key, quota, or not wanted here).",
                self.objects_refused,
            ),
            (
                "routes_forwarded",
                "Routed messages (long-link probes, route queries) passed on.",
                self.routes_forwarded,
            ),
            (
                "routes_answered",
                "Routed messages that ended at this node and were answered.",
                self.routes_answered,
            ),
            (
                "routes_refused",
                "Routed messages refused (their sender over its budget).",
                self.routes_refused,
            ),
            (
                "records_taken",
                "Key record versions taken (puts and hand-offs).",
                self.records_taken,
            ),
            (
                "records_refused",
                "Key record copies refused (bad signature or name, another writer's name, quota, not wanted here).",
                self.records_refused,
            ),
            ("links_made", "Long links made.", self.links_made),
            (
                "links_redrawn",
                "Long links dropped and drawn again (far end gone or refusing, length, lifetime).",
                self.links_redrawn,
            ),
        ]
    }
}

/// One kept peer as a renderer, a status page or a checker sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    /// Its last known record.
    pub info: PeerInfo,
    /// Voronoi-adjacent in this peer's view.
    pub enclosing: bool,
    /// Within this peer's awareness radius.
    pub aware: bool,
    /// Heard from directly (not only a relayed hint).
    pub confirmed: bool,
    /// When it was last heard from.
    pub last_heard: Millis,
}

/// Where a peer stands with respect to the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Waiting for a join reply.
    Joining,
    /// Part of a world (or alone in a new one).
    Joined,
    /// Was part of a world, but no neighbour has been heard within the
    /// failure timeout.
    Lost,
    /// Said goodbye (left the world), or stopped.
    Stopped,
}

/// What a peer knows at one instant: itself and its kept peers.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Own record.
    pub me: PeerInfo,
    /// Where the peer stands.
    pub state: PeerState,
    /// Kept peers, ordered by id.
    pub neighbours: Vec<Neighbour>,
}

impl View {
    /// Whether part of a world (joined, or lost but not gone).
    pub fn joined(&self) -> bool {
        matches!(self.state, PeerState::Joined | PeerState::Lost)
    }
}

//! Deterministic overlay logic for peerworld; no networking code, no clock.
//!
//! The [`Peer`] state machine is fed with messages, moves and timer ticks (each
//! with the current time as [`Millis`]) and polled for what to send and what
//! happened, in the style of `quinn-proto`. The [`sim`] module runs thousands
//! of peers over a virtual network; [`invariants`] checks their views against
//! the ground truth.

pub mod geometry;
pub mod id;
pub mod invariants;
pub mod message;
pub mod mobility;
pub mod object;
pub mod peer;
pub mod record;
pub mod sim;
pub mod voronoi;

#[cfg(test)]
mod testnet;

pub use geometry::{Point, World};
pub use id::{PeerId, PeerInfo};
pub use message::{DecodeError, Message};
pub use peer::{
    AreaError, Config, Event, HEARTBEAT_MS, Neighbour, Peer, PeerState, RadiusMode, RejectReason,
    RemoveReason, Stats, Transmit, View,
};

/// A point in time, in milliseconds (real or virtual).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`.
    pub fn plus(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds since `earlier` (0 if `earlier` is later).
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

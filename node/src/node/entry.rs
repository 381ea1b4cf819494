//! Staying in the world: the entry peers a node joins through (the peer
//! cache first, then the configured bootstraps, in turn), the rejoin
//! schedule while lost, the merge probes through the other bootstraps, and
//! the peer cache's refresh. Part of the driver; it only dials and asks the
//! overlay, which decides.

use std::net::SocketAddr;
use std::time::Duration;

use peerworld_protocol::{Millis, PeerId, PeerState};
use tokio::time::Instant;
use tracing::{info, warn};

use super::driver::Driver;
use crate::link::Purpose;

/// First wait between two rejoins while lost; it doubles up to `REJOIN_MAX`.
const REJOIN_FIRST: Duration = Duration::from_secs(1);
/// First merge probe after joining.
const MERGE_FIRST: Duration = Duration::from_secs(5);
/// Merge probes come every one to two of these.
const MERGE_PERIOD: Duration = Duration::from_secs(30);
/// Ticks between two refreshes (and saves) of the peer cache.
pub(super) const CACHE_EVERY_TICKS: u64 = 50;
/// Longest wait between two rejoins while lost.
const REJOIN_MAX: Duration = Duration::from_secs(30);
/// A join an entry peer took but that has not completed after this long
/// is stalled: the entry (or the peer it forwards through) is gone, busy
/// or swallows joins, and the overlay's own retries go through the same
/// peers. The node then joins again through its next entry. (The overlay
/// takes a reply within 10 s of its request; a join through a loaded
/// 1 000-node swarm completes in a few seconds.)
const JOIN_STALL: Duration = Duration::from_secs(10);

/// The rejoin schedule while lost or while a join is stalled.
#[derive(Debug)]
pub(in crate::node) struct Rejoin {
    at: Option<Instant>,
    backoff: Duration,
    /// When the entry peer last took our join.
    pub(in crate::node) join_started: Option<Instant>,
}

impl Default for Rejoin {
    fn default() -> Self {
        Self {
            at: None,
            backoff: REJOIN_FIRST,
            join_started: None,
        }
    }
}

impl Driver {
    pub(super) fn dial_bootstrap(&mut self) {
        let (expected, addr) = self.entries[self.boot_next % self.entries.len()];
        self.boot_next += 1;
        self.boot_retry = None;
        info!(%addr, cached = expected.is_some(), "dialing an entry peer");
        self.dial(addr, expected, Purpose::Join);
    }

    /// Cached peers first, then the configured bootstrap peers.
    pub(super) fn rejoin_entries(&self) -> Vec<(Option<PeerId>, SocketAddr)> {
        let cached = self.cache.peers().iter().map(|&(id, a)| (Some(id), a));
        cached
            .chain(self.bootstrap.iter().map(|&a| (None, a)))
            .collect()
    }

    /// Remembers the confirmed kept peers whose address we know.
    pub(super) fn refresh_cache(&mut self) {
        let now = self.now();
        let view = self.peer.view(now);
        let book = &self.book;
        self.cache.refresh(
            view.neighbours
                .iter()
                .filter(|n| n.confirmed)
                .filter_map(|n| Some((n.info.id, book.get(&n.info.id)?))),
        );
        self.cache.save();
    }

    /// Worlds merge: now and then (first 5 s after joining, then every
    /// 30 to 60 s) walk a join probe for our own position through each
    /// configured bootstrap other than the one we joined through. If it
    /// belongs to another world in the same coordinates, the probe's reply
    /// introduces both sides and discovery spreads the merge.
    pub(super) fn probe_other_bootstraps(&mut self, now: Millis) {
        if self.peer.state(now) != PeerState::Joined || !self.bootstrapped {
            self.merge_at = None;
            return;
        }
        let t = Instant::now();
        let Some(at) = self.merge_at else {
            self.merge_at = Some(t + MERGE_FIRST);
            return;
        };
        if t < at {
            return;
        }
        let period = MERGE_PERIOD.mul_f64(1.0 + self.rng.f64());
        self.merge_at = Some(t + period);
        let others: Vec<SocketAddr> = self
            .bootstrap
            .iter()
            .copied()
            .filter(|a| Some(*a) != self.joined_via)
            .collect();
        for addr in others {
            self.dial(addr, None, Purpose::Probe);
        }
    }

    /// Lost (no neighbour heard within the failure timeout): join again
    /// through the recently kept peers, then the bootstrap peers, in turn, with jittered exponential
    /// backoff (1 s doubling to 30 s) until the node is part of a world again.
    ///
    /// A join that an entry peer took but that stalls (see [`JOIN_STALL`])
    /// goes on the same schedule to the next entry in turn, so that one
    /// entry that accepts connections but never gets the join answered
    /// (refusing our later dials under load, or swallowing joins) cannot
    /// keep the node out of the world.
    pub(super) fn rejoin_if_lost(&mut self, now: Millis) {
        let state = self.peer.state(now);
        let t = Instant::now();
        let stalled = state == PeerState::Joining
            && self.bootstrapped
            && self
                .rejoin
                .join_started
                .is_some_and(|at| t.duration_since(at) >= JOIN_STALL);
        if state != PeerState::Lost && !stalled {
            if state == PeerState::Joined {
                self.rejoin = Rejoin::default();
            }
            return;
        }
        if !self.bootstrapped || self.rejoin.at.is_some_and(|at| t < at) {
            return;
        }
        // A stalled join goes on to the next entry of the current list; a
        // lost node starts the list again (the peer cache first).
        if !stalled {
            self.entries = self.rejoin_entries();
            self.boot_next = 0;
        }
        if self.entries.is_empty() {
            return;
        }
        let why = if stalled {
            "the join through an entry peer stalled"
        } else {
            "lost every neighbour"
        };
        warn!(
            backoff_s = self.rejoin.backoff.as_secs_f64(),
            why, "joining again through an entry peer"
        );
        let jitter = 0.75 + 0.5 * self.rng.f64();
        self.rejoin.at = Some(t + self.rejoin.backoff.mul_f64(jitter));
        self.rejoin.backoff = (self.rejoin.backoff * 2).min(REJOIN_MAX);
        self.bootstrapped = false;
        self.dial_bootstrap();
    }
}

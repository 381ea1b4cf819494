//! Staying in the world: the entry peers a node joins through (the peer
//! cache first, then the configured bootstraps, in turn), the rejoin
//! schedule while lost, the merge probes, and
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
/// Merge probes come every one to two of these by default
/// ([`crate::NodeConfig::merge_every`]).
pub const MERGE_EVERY: Duration = Duration::from_secs(30);
/// The bootstrap a node joined through is probed one merge round in this
/// many.
const JOINED_VIA_EVERY: u64 = 8;
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

    /// Partitions heal, worlds merge: now and then (first 5 s after
    /// joining, then every one to two `merge_every`) walk a join probe for
    /// our own position through each configured bootstrap (the one we
    /// joined through one round in [`JOINED_VIA_EVERY`]) and through one
    /// recently kept peer (in turn), each only while we do not keep it: a
    /// peer we keep is in our part of the world, and a probe through it
    /// ends there. If the walk ends in another world in the same
    /// coordinates, or in a part of ours we were cut off from (a join storm
    /// or a partition that outlived the failure timeout), the probe's reply
    /// introduces both sides and discovery spreads the merge.
    pub(super) fn merge_probes(&mut self, now: Millis) {
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
        let period = self.merge_every.mul_f64(1.0 + self.rng.f64());
        self.merge_at = Some(t + period);
        self.merge_rounds += 1;
        // Every node of a world may share one bootstrap, which a probe from
        // each of them every period would load with a handshake per node
        // per period (a 1 000-node swarm on one host then took twice as
        // long to join, and split more): the one we joined through gets
        // one round in `JOINED_VIA_EVERY`, the first some minutes in.
        let via_too = self.merge_rounds.is_multiple_of(JOINED_VIA_EVERY);
        let kept: Vec<SocketAddr> = self
            .peer
            .kept()
            .filter_map(|(id, _, _)| self.book.get(&id))
            .collect();
        let bootstraps: Vec<SocketAddr> = self
            .bootstrap
            .iter()
            .copied()
            .filter(|a| !kept.contains(a) && (via_too || Some(*a) != self.joined_via))
            .collect();
        for addr in bootstraps {
            self.dial(addr, None, Purpose::Probe);
        }
        // Cached bootstraps are left to the bootstrap probes above, which
        // spare the one we joined through.
        let cached = self.cache.peers();
        let next = (0..cached.len())
            .map(|k| (self.merge_cached + k) % cached.len())
            .find(|&i| !self.peer.keeps(&cached[i].0) && !self.bootstrap.contains(&cached[i].1));
        if let Some(i) = next {
            self.merge_cached = i + 1;
            let (id, addr) = cached[i];
            if self.links.get(&id).is_some() {
                self.peer.probe_through(id, now);
            } else {
                self.dial(addr, Some(id), Purpose::Probe);
            }
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

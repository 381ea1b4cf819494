//! The one timer table, what each timer does when it fires, and when the
//! view is rebuilt.

use super::{Peer, RadiusMode, State};
use crate::Millis;
use crate::id::PeerId;

/// The peer's timers: one deadline each, in one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// Rebuild the local Delaunay view (`discovery::recompute`): armed
    /// `recompute_delay_ms` after the first position change, so a burst of
    /// changes costs one rebuild.
    Recompute,
    /// The maintenance round, every `maintenance_ms` (offset per peer):
    /// join retry and probe, failure detection, greetings, heartbeats, hull
    /// repair.
    Maintenance,
    /// Anti-entropy, every `anti_entropy_ms` (offset per peer): a digest to
    /// each confirmed enclosing neighbour.
    AntiEntropy,
    /// Send the join again if no reply came. Checked on the maintenance
    /// round, so it fires at most `maintenance_ms` late.
    JoinRetry,
    /// Walk the join once more from the same entry point once views have
    /// settled (`join.rs`). Checked on the maintenance round.
    Probe,
    /// The motion round, every `motion_ms` (offset per peer): beliefs about
    /// moving peers advanced, own motion checked (`motion.rs`).
    Motion,
}

impl Timer {
    pub(super) const ALL: [Timer; 6] = [
        Timer::Recompute,
        Timer::Maintenance,
        Timer::AntiEntropy,
        Timer::JoinRetry,
        Timer::Probe,
        Timer::Motion,
    ];

    /// Whether the driver must wake up for it (the others are checked by
    /// the maintenance round).
    fn wakes(self) -> bool {
        matches!(
            self,
            Timer::Recompute | Timer::Maintenance | Timer::AntiEntropy | Timer::Motion
        )
    }
}

/// Deadlines by [`Timer`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timers([Option<Millis>; Timer::ALL.len()]);

impl Timers {
    pub(super) fn get(&self, t: Timer) -> Option<Millis> {
        self.0[t as usize]
    }
    pub(super) fn set(&mut self, t: Timer, at: Millis) {
        self.0[t as usize] = Some(at);
    }
    pub(super) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    pub(super) fn is_due(&self, t: Timer, now: Millis) -> bool {
        self.get(t).is_some_and(|at| now >= at)
    }
    /// The earliest deadline the driver must wake up for.
    pub(super) fn next_wake(&self) -> Option<Millis> {
        Timer::ALL
            .iter()
            .filter(|t| t.wakes())
            .filter_map(|&t| self.get(t))
            .min()
    }
}

/// A peer's offset within `period`, from its id: peers' rounds spread out.
pub(super) fn phase(id: &PeerId, period: u64) -> u64 {
    if period == 0 {
        0
    } else {
        id.short_u64() % period
    }
}

impl Peer {
    /// A timer fired (call at or after [`Peer::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.state == State::Left {
            return;
        }
        if self.timers.is_due(Timer::Motion, now) {
            self.next_motion_round(now);
            self.motion_round(now);
        }
        if self.timers.is_due(Timer::Recompute, now) {
            self.recompute(now);
        }
        if self.timers.is_due(Timer::Maintenance, now) {
            self.timers.set(
                Timer::Maintenance,
                now.plus(self.config.maintenance_ms.max(1)),
            );
            self.maintenance(now);
        }
        if self.timers.is_due(Timer::AntiEntropy, now) {
            self.timers.set(
                Timer::AntiEntropy,
                now.plus(self.config.anti_entropy_ms.max(1)),
            );
            self.anti_entropy(now);
        }
    }

    /// The maintenance round: each rule's periodic part, in this order.
    fn maintenance(&mut self, now: Millis) {
        self.join_timers(now);
        self.detect_failures(now);
        self.greet_hints(now);
        self.heartbeats(now);
        self.repair_hull(now);
        self.probe_silenced(now);
        self.adapt_radius(now);
        self.objects_round(now);
        self.links_round(now);
        self.records_round(now);
    }

    /// When [`Peer::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.state == State::Left {
            return None;
        }
        self.timers.next_wake()
    }

    /// Arms the recompute for the next motion round (beliefs moved: the
    /// view is rebuilt once per round, on the positions of that round),
    /// unless it is armed already. With the adaptive radius every change
    /// is recomputed within `recompute_delay_ms` (crowds, where radii
    /// change, lost 0.04 to 0.18 points of consistency on two seeds of
    /// three with the view once per round).
    pub(super) fn mark_dirty(&mut self, now: Millis) {
        if self.config.radius_mode == RadiusMode::Adaptive {
            self.mark_dirty_soon(now);
        } else if self.timers.get(Timer::Recompute).is_none() {
            let at = now.plus(self.config.recompute_delay_ms);
            let at = match self.timers.get(Timer::Motion) {
                Some(m) if m >= at => m,
                _ => at,
            };
            self.timers.set(Timer::Recompute, at);
        }
    }

    /// Arms the recompute within `recompute_delay_ms`: the table grew by an
    /// eighth since the last view (a crowd's hints are pruned without
    /// waiting for the round), or the radius is adaptive.
    pub(super) fn mark_dirty_soon(&mut self, now: Millis) {
        let at = now.plus(self.config.recompute_delay_ms);
        if self.timers.get(Timer::Recompute).is_none_or(|t| t > at) {
            self.timers.set(Timer::Recompute, at);
        }
    }
}

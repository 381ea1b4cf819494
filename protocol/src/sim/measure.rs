//! Measuring: the invariants over the peers that count, and the report.

use rayon::prelude::*;

use super::{Report, Sim, Slot, TICK_MS};
use crate::id::IdSet;
use crate::invariants::{self, Kept, Options, Sample, TruePeer};

/// Two worlds count as merged from the first sample with one component and
/// at least this consistency.
pub const MERGED_CONSISTENCY: f64 = 0.999;

impl Sim {
    /// The invariants now, over the peers that count (see the counting rule
    /// in docs/PROTOCOL.md).
    pub fn sample(&self) -> Sample {
        match &self.pool {
            Some(pool) => pool.install(|| self.sample_here()),
            None => self.sample_here(),
        }
    }

    fn sample_here(&self) -> Sample {
        // The counting rule: a peer counts from two one-way latencies after
        // its join completed; joining (or re-joining) peers do not count, and
        // neither do others' entries about them.
        // Liars are not measured, nor others' entries about them.
        let counts = |s: &Slot| s.counted(self.now) && s.peer.is_joined();
        let not_yet: IdSet = self
            .slots
            .iter()
            .filter(|s| s.alive && !counts(s))
            .map(|s| s.peer.id())
            .collect();
        let live: Vec<&Slot> = self.slots.iter().filter(|s| counts(s)).collect();
        let truth: Vec<TruePeer> = live
            .iter()
            .map(|s| TruePeer {
                id: s.peer.id(),
                pos: s.peer.info().pos,
                radius: s.peer.info().radius,
            })
            .collect();
        let views: Vec<Vec<Kept>> = live
            .par_iter()
            .map(|s| {
                let mut v = Vec::with_capacity(s.peer.kept_count());
                v.extend(
                    s.peer
                        .kept_at(self.now)
                        .filter(|(id, _, _)| not_yet.is_empty() || !not_yet.contains(id))
                        .map(|(id, pos, enclosing)| Kept { id, pos, enclosing }),
                );
                v
            })
            .collect();
        let opts = Options {
            stale_tolerance: 2.0 * self.cfg.speed.max(1.0),
            voronoi: self.cfg.voronoi,
        };
        invariants::check(self.world, &truth, &views, opts)
    }

    /// Whether the current tick is one to sample (measured and on the
    /// sampling period).
    pub fn should_sample(&self) -> bool {
        self.tick > self.measure_from()
            && (self.tick - self.measure_from()).is_multiple_of(self.cfg.sample_every.max(1))
    }

    /// Adds a sample to the report's averages.
    pub fn record(&mut self, s: &Sample) {
        self.totals.record(s);
        if let Some(t) = self.cfg.merge_at
            && self.tick >= t
            && s.components == 1
            && s.consistency >= MERGED_CONSISTENCY
            && self.merged_tick.is_none()
        {
            self.merged_tick = Some(self.tick);
        }
    }

    /// The report so far.
    pub fn report(&self) -> Report {
        let t = self.totals.summary();
        let (chat_delivery, chat_duplicates) = self.chat_log.figures();
        let peer_ticks = self.window_peer_ticks.max(1) as f64;
        let objects = self.object_figures();
        let routes = self.route_figures();
        let links = self.cfg.peer.long_links > 0;
        let window_ticks = self.tick.saturating_sub(self.measure_from()).max(1) as f64;
        let secs_per_tick = TICK_MS as f64 / 1000.0;
        let now = self.counters();
        let base = self.window_base.unwrap_or(now);
        Report {
            peers: self.slots.iter().filter(|s| s.alive).count(),
            ticks: self.tick,
            measure_from: self.measure_from(),
            summary: t,
            msgs_per_peer_per_s: self.window_msgs as f64 / peer_ticks / secs_per_tick,
            bytes_per_peer_per_s: self.window_bytes as f64 / peer_ticks / secs_per_tick,
            msgs_per_peer_per_tick: self.window_msgs as f64 / peer_ticks,
            bytes_per_peer_per_tick: self.window_bytes as f64 / peer_ticks,
            join_hops_mean: if self.joins > 0 {
                self.join_hops as f64 / self.joins as f64
            } else {
                0.0
            },
            join_time_ms_mean: if self.joins > 0 {
                self.join_time as f64 / self.joins as f64
            } else {
                0.0
            },
            joins: self.joins,
            teleports: self.teleports,
            teleports_unsettled_2s: self.teleports_unsettled,
            crowd_bytes_per_peer_per_tick: (self.cfg.crowd > 0.0).then(|| {
                self.window_crowd_bytes as f64 / self.window_crowd_peer_ticks.max(1) as f64
            }),
            merged_after_s: self.cfg.merge_at.and_then(|t| {
                self.merged_tick
                    .map(|m| (m - t) as f64 * TICK_MS as f64 / 1000.0)
            }),
            moves_per_peer_per_tick: (now.moves - base.moves) as f64 / peer_ticks,
            discover_records_per_peer_per_tick: (now.discover_records - base.discover_records)
                as f64
                / peer_ticks,
            discover_known_share: (now.discover_known - base.discover_known) as f64
                / (now.discover_records - base.discover_records).max(1) as f64,
            peer_ticks: self.peer_ticks,
            chat_delivery,
            chat_duplicates,
            objects_readable: objects.map(|o| o.readable),
            objects_readable_worst: objects.map(|o| o.readable_worst),
            objects_visible: objects.map(|o| o.visible),
            objects_lost: objects.map(|o| o.lost),
            object_edits: objects.map(|o| o.edits),
            object_handovers_per_tick: objects
                .and(self.window_base)
                .map(|_| (now.handed - base.handed) as f64 / window_ticks),
            object_copies_per_peer_per_tick: objects
                .and(self.window_base)
                .map(|_| (now.copies_sent - base.copies_sent) as f64 / peer_ticks),
            object_copies_stale_share: objects.and(self.window_base).map(|_| {
                (now.copies_stale - base.copies_stale) as f64
                    / (now.copies_sent - base.copies_sent).max(1) as f64
            }),
            route_hops_mean: routes.hops_mean,
            route_hops_p99: routes.hops_p99,
            lookup_success: routes.success,
            records_stored: routes.records_stored,
            records_lost: routes.records_lost,
            long_links_mean: links.then_some(routes.links_mean),
            long_links_dead: links.then_some(routes.links_dead),
            incoming_links_max: links.then_some(routes.incoming_max),
            long_link_len_log_ks: routes.len_log_ks,
            bytes_by_kind: self
                .window_by_kind
                .iter()
                .map(|(k, v)| (*k, *v as f64 / peer_ticks))
                .collect(),
            wall_s: 0.0,
        }
    }
}

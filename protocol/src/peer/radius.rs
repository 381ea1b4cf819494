//! Range: who counts as near, and how far that is.
//!
//! Guarantees:
//! - The awareness relation is symmetric in the pair and uses the larger
//!   reach of the two, where a peer's reach is its radius plus its detection
//!   buffer, so a peer is learned about before it crosses the radius and
//!   both sides of a pair agree on whether they must keep each other.
//!   Distances are on the torus.
//! - With [`RadiusMode::Fixed`] the radius is `Config::radius` and the
//!   buffer `Config::buffer`.
//! - With [`RadiusMode::Adaptive`] the radius shrinks in a crowd and grows
//!   back, never beyond `Config::radius`: at each recompute of the view and
//!   each maintenance round, when
//!   more than `max` kept peers are within reach, the radius shrinks so that
//!   halfway between `min` and `max` are; below the configured radius with
//!   at most that many within reach, it grows (a second after the last
//!   change, five after a shrink unless fewer than `min` are within reach),
//!   staying within the old reach so that everyone the new radius covers is
//!   known already. The buffer scales with the radius
//!   (`buffer × radius / Config::radius`). A change is told to every kept
//!   peer in a `Hello` (whoever keeps us only for our reach drops us or
//!   learns us at its next recompute), and a growth asks the enclosing
//!   neighbours for the peers now in reach with a digest.

use super::Peer;
use crate::Millis;
use crate::geometry::Point;

/// How a peer's awareness radius is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RadiusMode {
    /// Always `Config::radius` (as VON; comparable research runs).
    #[default]
    Fixed,
    /// Shrinks in crowds to keep the neighbours in range between
    /// `Config::neighbours` bounds, and grows back to `Config::radius`.
    Adaptive,
}

/// The smallest adaptive radius, as a share of the configured one.
const MIN_RADIUS_SHARE: f32 = 1.0 / 64.0;
/// Fewest milliseconds between a radius change and a growth.
const GROW_EVERY_MS: u64 = 1_000;
/// Fewest milliseconds between a shrink and a growth (unless starved).
const GROW_AFTER_SHRINK_MS: u64 = 5_000;

impl Peer {
    /// The detection buffer of a peer whose radius is `r`.
    fn buffer_for(&self, r: f32) -> f32 {
        match self.config.radius_mode {
            RadiusMode::Fixed => self.config.buffer,
            RadiusMode::Adaptive => {
                self.config.buffer * (r / self.config.radius.max(f32::MIN_POSITIVE)).min(1.0)
            }
        }
    }

    /// How far a peer whose radius is `r` keeps others: radius + buffer.
    pub(super) fn reach(&self, r: f32) -> f32 {
        r + self.buffer_for(r)
    }

    /// Whether a peer at `b` (radius `rb`) is within range of one at `a`
    /// (radius `ra`), either way, buffer included.
    pub(super) fn in_range(&self, a: Point, ra: f32, b: Point, rb: f32) -> bool {
        self.in_range_plus(a, ra, b, rb, 0.0)
    }

    /// `in_range`, `slack` units further.
    fn in_range_plus(&self, a: Point, ra: f32, b: Point, rb: f32, slack: f32) -> bool {
        let d2 = self.config.world.distance_sq(a, b);
        let r = f64::from(self.reach(ra).max(self.reach(rb)) + slack);
        d2 <= r * r
    }

    /// Like `in_range`, with a slack of twice the dead reckoning tolerance:
    /// whether to learn a peer we do not keep that sent us its motion. It
    /// was told of us by a peer that judged us within reach of each other
    /// on its beliefs, each off by up to the tolerance; answering `Forget`
    /// would undo that, and the pair would not be told again.
    pub(super) fn in_range_told(&self, a: Point, ra: f32, b: Point, rb: f32) -> bool {
        self.in_range_plus(a, ra, b, rb, 2.0 * self.config.epsilon)
    }

    /// The adaptive radius step (see the module guarantees).
    pub(super) fn adapt_radius(&mut self, now: Millis) {
        if self.config.radius_mode != RadiusMode::Adaptive || !self.is_joined() {
            return;
        }
        let (lo, hi) = self.config.neighbours;
        let target = lo.midpoint(hi).max(1);
        let full = self.config.radius;
        let r = self.me.radius;
        let world = self.config.world;
        let mut dists: Vec<f32> = self
            .kept
            .values()
            .map(|k| world.distance(self.me.pos, k.info.pos) as f32)
            .collect();
        dists.sort_by(f32::total_cmp);
        let within = dists.partition_point(|&d| d <= self.reach(r));
        // The radius whose reach holds `target` known peers ends just short
        // of the next one (reach / radius is the same at every radius).
        let scale = 1.0 + self.buffer_for(full) / full.max(f32::MIN_POSITIVE);
        let fits = dists.get(target).map_or(full, |&d| d / scale * 0.999);
        let new = if within > hi {
            fits
        } else if r < full && within <= target && self.may_grow(now, within < lo) {
            // Within the old reach: everyone the new radius covers is known
            // already, so awareness never lags a growth.
            fits.clamp(r, r * (1.0 + 0.75 * (scale - 1.0)))
        } else {
            return;
        };
        let new = new.clamp(full * MIN_RADIUS_SHARE, full);
        if (new - r).abs() > r * 0.01 {
            self.set_radius(new, now);
        }
    }

    /// Growth waits [`GROW_EVERY_MS`] after any change (the digests of the
    /// last growth must come back first) and [`GROW_AFTER_SHRINK_MS`] after a
    /// shrink (at a crowd's edge, growing straight back in would swing the
    /// radius to and fro) unless fewer than the fewest are within reach.
    fn may_grow(&self, now: Millis, starved: bool) -> bool {
        match self.radius_changed {
            None => true,
            Some((at, shrank)) => {
                let wait = if shrank && !starved {
                    GROW_AFTER_SHRINK_MS
                } else {
                    GROW_EVERY_MS
                };
                now.since(at) >= wait
            }
        }
    }

    /// Takes `r` as our radius and tells every kept peer; a growth also asks
    /// the enclosing neighbours for what is now in reach.
    fn set_radius(&mut self, r: f32, now: Millis) {
        let grew = r > self.me.radius;
        self.me.radius = r;
        self.radius_changed = Some((now, !grew));
        self.stats.radius_changes += 1;
        let msg = self.hello(false);
        self.broadcast(&msg, now);
        if grew {
            let enclosing = self.enclosing.clone();
            for id in enclosing {
                self.send_digest(id, now);
            }
        }
        self.mark_dirty(now);
    }
}

//! World objects in the simulator (`--objects N`): N signs placed at
//! random points by random peers once everyone has joined, each edited by
//! its author now and then. Every [`OBJECT_SAMPLE_TICKS`] measured ticks the
//! report checks them against the truth:
//!
//! - `objects_readable`: the share of live objects whose owner (the live
//!   peer nearest the object's point, by true positions) holds the latest
//!   version;
//! - `objects_visible`: the share of (counted peer, live object within the
//!   peer's radius) pairs where the peer holds the latest version;
//! - `objects_lost` (at the end): live objects no live peer holds at all.
//!
//! A version younger than [`OBJECT_GRACE_MS`] is still on its way: until
//! then the previous version counts too (and so on back: the newest
//! version at least that old, or the first, is the one due).

use super::{Sim, Slot};
use crate::Millis;
use crate::geometry::Point;
use crate::mobility::random_point;
use crate::object::{ObjectKey, SeededSigner};

/// Sample objects every this many measured ticks.
pub const OBJECT_SAMPLE_TICKS: u64 = 10;
/// How long a new version may take to reach everyone concerned.
pub const OBJECT_GRACE_MS: u64 = 2_000;
/// Per object per tick probability that its author edits it (about once a
/// minute at 100 ms ticks).
const EDIT_PER_TICK: f64 = 1.0 / 600.0;
/// Lifetime of the simulator's objects (longer than any run).
const SIM_OBJECT_TTL_S: u32 = 86_400;

/// One object as the simulator placed it.
#[derive(Debug)]
struct Truth {
    key: ObjectKey,
    author: usize,
    pos: Point,
    /// Each version, and when it was made (never empty).
    made: Vec<(u32, Millis)>,
}

impl Truth {
    /// The oldest version a holder may have at `now`: the newest one made
    /// at least [`OBJECT_GRACE_MS`] ago, or the first.
    fn due(&self, now: Millis) -> u32 {
        (self.made.iter().rev())
            .find(|(_, at)| now.since(*at) >= OBJECT_GRACE_MS)
            .unwrap_or(&self.made[0])
            .0
    }
}

/// The objects placed, and the sums the report averages.
#[derive(Debug, Default)]
pub(super) struct ObjectLog {
    placed: bool,
    truths: Vec<Truth>,
    readable: (u64, u64),
    readable_worst: Option<f64>,
    visible: (u64, u64),
    edits: u64,
}

/// The figures `sim --json` adds with `--objects`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ObjectFigures {
    /// Mean share of live objects readable at their owner.
    pub readable: f64,
    /// Worst sample of the same.
    pub readable_worst: f64,
    /// Share of (peer, object within its radius) pairs seen at the latest version.
    pub visible: f64,
    /// Live objects no live peer holds, at the end.
    pub lost: u64,
    /// Edits made.
    pub edits: u64,
}

impl Sim {
    /// The tick where objects are placed: ten ticks after the last initial join.
    fn objects_tick(&self) -> u64 {
        self.measure_from().saturating_sub(40)
    }

    /// Places the objects (once), then edits some.
    pub(super) fn objects_step(&mut self) {
        if self.cfg.objects == 0 || self.tick < self.objects_tick() {
            return;
        }
        let now = self.now;
        if !self.objects.placed {
            self.objects.placed = true;
            let authors: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].counted(now))
                .collect();
            if authors.is_empty() {
                return;
            }
            for n in 0..self.cfg.objects {
                let i = authors[self.rng.below(authors.len() as u64) as usize];
                let pos = random_point(self.world, &mut self.rng);
                let slot = &mut self.slots[i];
                if slot.peer.author_id().is_none() {
                    slot.peer
                        .set_signer(Box::new(SeededSigner::new(slot.peer.id().short_u64())));
                }
                let text = format!("sign {n}");
                if let Ok(key) =
                    slot.peer
                        .place_object(now, pos, &text, [200, 120, 40], SIM_OBJECT_TTL_S)
                {
                    self.objects.truths.push(Truth {
                        key,
                        author: i,
                        pos,
                        made: vec![(1, now)],
                    });
                }
                self.flush(i);
            }
            return;
        }
        for t in 0..self.objects.truths.len() {
            if self.rng.f64() >= EDIT_PER_TICK {
                continue;
            }
            let (i, key) = (self.objects.truths[t].author, self.objects.truths[t].key);
            if !self.slots[i].alive {
                continue;
            }
            let text = format!("edited at {}", self.tick);
            if let Ok(v) = self.slots[i].peer.edit_object(now, key, &text) {
                let truth = &mut self.objects.truths[t];
                truth.made.push((v, now));
                self.objects.edits += 1;
                self.flush(i);
            }
        }
    }

    /// Whether `slot` holds `t` at a version that counts now.
    fn holds_current(&self, slot: &Slot, t: &Truth) -> bool {
        let due = t.due(self.now);
        slot.peer.object(&t.key).is_some_and(|o| o.version >= due)
    }

    /// On a measured tick every [`OBJECT_SAMPLE_TICKS`]: readability and
    /// visibility against the truth.
    pub(super) fn sample_objects(&mut self) {
        if self.objects.truths.is_empty()
            || self.tick <= self.measure_from()
            || !(self.tick - self.measure_from()).is_multiple_of(OBJECT_SAMPLE_TICKS)
        {
            return;
        }
        let now = self.now;
        let (mut readable, mut live) = (0u64, 0u64);
        let (mut seen, mut pairs) = (0u64, 0u64);
        for t in &self.objects.truths {
            let mut owner: Option<(f64, usize)> = None;
            for (i, s) in self.slots.iter().enumerate() {
                if !s.alive || s.liar || !s.peer.is_joined() {
                    continue;
                }
                let d = self.world.distance(s.peer.info().pos, t.pos);
                if owner.is_none_or(|(best, _)| d < best) {
                    owner = Some((d, i));
                }
                if s.counted(now) && d <= f64::from(s.peer.info().radius) {
                    pairs += 1;
                    seen += u64::from(self.holds_current(s, t));
                }
            }
            if let Some((_, i)) = owner {
                live += 1;
                readable += u64::from(self.holds_current(&self.slots[i], t));
            }
        }
        let log = &mut self.objects;
        log.readable.0 += readable;
        log.readable.1 += live;
        log.visible.0 += seen;
        log.visible.1 += pairs;
        if live > 0 {
            let share = readable as f64 / live as f64;
            log.readable_worst = Some(log.readable_worst.map_or(share, |w: f64| w.min(share)));
        }
    }

    /// For each object placed, how many live peers hold it (any version).
    pub fn object_copies(&self) -> Vec<usize> {
        self.objects
            .truths
            .iter()
            .map(|t| {
                self.slots
                    .iter()
                    .filter(|s| s.alive && s.peer.object(&t.key).is_some())
                    .count()
            })
            .collect()
    }

    /// Live objects that no live peer holds (at any version).
    pub fn objects_lost(&self) -> u64 {
        self.object_copies().iter().filter(|&&n| n == 0).count() as u64
    }

    /// The object figures so far (`None` without `--objects`).
    pub fn object_figures(&self) -> Option<ObjectFigures> {
        if self.cfg.objects == 0 {
            return None;
        }
        let share = |(a, b): (u64, u64)| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Some(ObjectFigures {
            readable: share(self.objects.readable),
            readable_worst: self.objects.readable_worst.unwrap_or(0.0),
            visible: share(self.objects.visible),
            lost: self.objects_lost(),
            edits: self.objects.edits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_due_is_the_newest_one_past_the_grace() {
        let t = Truth {
            key: ObjectKey::of(&SeededSigner::new(1).author(), 1),
            author: 0,
            pos: Point::new(0.0, 0.0),
            made: vec![(1, Millis(0)), (2, Millis(5_000)), (3, Millis(6_000))],
        };
        assert_eq!(t.due(Millis(1_000)), 1, "the first is due from the start");
        // Two edits within the grace: the one before both is still due.
        assert_eq!(t.due(Millis(6_500)), 1);
        assert_eq!(t.due(Millis(5_000 + OBJECT_GRACE_MS)), 2);
        assert_eq!(t.due(Millis(6_000 + OBJECT_GRACE_MS)), 3);
    }
}

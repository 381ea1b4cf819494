//! Pair discovery: when two kept peers come within reach of each other.
//!
//! Guarantees:
//! - When a kept peer `y` comes into range of a mover `x` (judged at each
//!   motion round, on the beliefs then against those at the last round,
//!   whether they moved by extrapolation or by a received move; so each pair
//!   is told once per notifier), and this peer is one of the [`PAIR_TELLERS`] peers it keeps
//!   (itself included) nearest the pair's midpoint, both are told about
//!   each other (`Discover { mutual: true }`), so neither waits a round
//!   trip. Every peer near the midpoint keeps both ends and sees the same
//!   few candidates, so a pair is told about three times, not once per
//!   common neighbour.
//! - Each motion round judges every pair of fresh kept peers once: the
//!   beliefs now against those at the last round, column by column, and a
//!   pair whose both ends moved from its lower id's side only.

use super::Peer;
use crate::Millis;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_RECORDS, Message};

/// The fresh kept peers as pair discovery sees them, column by column (the
/// checks run over every pair of kept peers each motion round): where each
/// is believed now and was believed before this round of moves, and how
/// far it keeps others. Rows are in the table's (id) order.
pub(super) struct PairViews {
    /// The world's size.
    size: (f32, f32),
    /// The smallest and largest coordinates so far, per axis.
    bounds: [(f32, f32); 2],
    ids: Vec<PeerId>,
    x: Vec<f32>,
    y: Vec<f32>,
    old_x: Vec<f32>,
    old_y: Vec<f32>,
    reach: Vec<f32>,
    /// Heard from directly (not a hint: a third party's claim).
    confirmed: Vec<bool>,
    /// The rows whose belief did not move in this round, in order.
    still: Vec<u32>,
}

impl PairViews {
    fn new(size: (f32, f32), n: usize) -> Self {
        Self {
            size,
            bounds: [(f32::INFINITY, f32::NEG_INFINITY); 2],
            ids: Vec::with_capacity(n),
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            old_x: Vec::with_capacity(n),
            old_y: Vec::with_capacity(n),
            reach: Vec::with_capacity(n),
            confirmed: Vec::with_capacity(n),
            still: Vec::new(),
        }
    }

    fn push(&mut self, id: PeerId, pos: Point, old: Point, reach: f32, confirmed: bool) {
        if pos == old {
            self.still.push(self.ids.len() as u32);
        }
        self.cover(pos);
        self.cover(old);
        self.ids.push(id);
        self.x.push(pos.x);
        self.y.push(pos.y);
        self.old_x.push(old.x);
        self.old_y.push(old.y);
        self.reach.push(reach);
        self.confirmed.push(confirmed);
    }

    /// The first row at or after `start` whose id is not below `id`.
    pub(super) fn rows_below(&self, start: usize, id: &PeerId) -> usize {
        start + self.ids[start..].iter().take_while(|r| *r < id).count()
    }

    /// Widens the bounds to cover `p`.
    fn cover(&mut self, p: Point) {
        for (b, v) in self.bounds.iter_mut().zip([p.x, p.y]) {
            *b = (b.0.min(v), b.1.max(v));
        }
    }

    /// How many confirmed rows lie nearer `mid` than `mine` (squared), by
    /// the squared distance `d` (every row at once: the loop vectorizes).
    #[inline(always)]
    fn nearer(
        &self,
        mid: (f32, f32),
        mine: f32,
        d: impl Fn((f32, f32), (f32, f32)) -> f32,
    ) -> usize {
        let rows = self.x.iter().zip(&self.y).zip(&self.confirmed);
        rows.map(|((&x, &y), &c)| usize::from(c & (d((x, y), mid) < mine)))
            .sum()
    }

    /// Per row of `rows`, whether it and the mover (`new`, `old`, `reach`)
    /// came within reach of each other in this round, by the squared
    /// distance `d` (a chunk at a time: the loop vectorizes).
    #[inline(always)]
    fn crossings(
        &self,
        rows: std::ops::Range<usize>,
        (new, old, reach): ((f32, f32), (f32, f32), f32),
        flags: &mut [bool; PAIR_CHUNK],
        d: impl Fn((f32, f32), (f32, f32)) -> f32,
    ) {
        let m = rows.len();
        let (xs, ys) = (&self.x[rows.clone()], &self.y[rows.clone()]);
        let (oxs, oys) = (&self.old_x[rows.clone()], &self.old_y[rows.clone()]);
        let rs = &self.reach[rows];
        let (xs, ys, oxs, oys, rs) = (&xs[..m], &ys[..m], &oxs[..m], &oys[..m], &rs[..m]);
        for j in 0..m {
            let r = reach.max(rs[j]);
            flags[j] = (d(new, (xs[j], ys[j])) <= r * r) & (d(old, (oxs[j], oys[j])) > r * r);
        }
    }

    /// Whether every coordinate so far lies within less than half the world
    /// of every other on each axis: then no difference of two of them
    /// wraps, and the pair checks may skip the torus (with the very same
    /// arithmetic, so the same results).
    fn unwrapped(&self) -> bool {
        let [(x0, x1), (y0, y1)] = self.bounds;
        x1 - x0 < self.size.0 / 2.0 - 1.0 && y1 - y0 < self.size.1 / 2.0 - 1.0
    }
}

/// The shortest offset from `a` to `b` along one axis of a torus of side
/// `size`, both coordinates within `[-size / 2, 3 size / 2)` (beliefs are
/// wrapped into `[0, size)`). Branch-free, so the pair loop vectorizes.
#[inline]
fn axis_delta(a: f32, b: f32, size: f32) -> f32 {
    let d = b - a;
    let d = if d > size / 2.0 { d - size } else { d };
    if d < -size / 2.0 { d + size } else { d }
}

/// Squared torus distance, in the pair loop's single precision.
#[inline]
fn dist_sq(a: (f32, f32), b: (f32, f32), (w, h): (f32, f32)) -> f32 {
    let (dx, dy) = (axis_delta(a.0, b.0, w), axis_delta(a.1, b.1, h));
    dx * dx + dy * dy
}

/// Squared distance between two points of an unwrapped view (see
/// `PairViews::unwrapped`).
#[inline]
fn plain_dist_sq(a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    dx * dx + dy * dy
}

/// Pairs checked at a time in `tell_pairs` (a stack buffer of flags).
const PAIR_CHUNK: usize = 64;

/// How many peers tell a pair that came within reach of each other: the
/// ones nearest its midpoint. (On VON's trace: every common neighbour of
/// which one end was enclosing, about 4.2 per pair, gave 534 B/peer/tick of
/// discovery; the nearest 3 give 304 B at the same consistency; the nearest
/// 2 lost 0.05 points on random-waypoint walkers.)
pub const PAIR_TELLERS: usize = 3;

impl Peer {
    /// The kept peers pair discovery looks at: the fresh ones. `moved`
    /// lists, sorted by id, the peers whose beliefs moved in this round,
    /// with their old positions.
    pub(super) fn pair_views(&self, now: Millis, moved: &[(PeerId, Point)]) -> PairViews {
        let world = self.config.world;
        let mut views = PairViews::new((world.width, world.height), self.kept.len());
        // The tellers' count measures our own distance too.
        views.cover(self.me.pos);
        // Both the table and `moved` are in id order: one merge.
        let mut m = moved.iter().peekable();
        for k in self.kept.values() {
            let id = k.info.id;
            while m.next_if(|x| x.0 < id).is_some() {}
            let old = m.next_if(|x| x.0 == id).map_or(k.info.pos, |x| x.1);
            if self.fresh(k, now) {
                let reach = self.reach(k.info.radius);
                views.push(id, k.info.pos, old, reach, k.confirmed);
            }
        }
        views
    }

    /// Pair discovery after `from`'s belief moved from `old` to `pos` in
    /// this round (`reach`: how far it keeps others), over `views` (the fresh kept peers, see `pair_views`). A
    /// pair whose both beliefs moved in this round is judged old against
    /// old and new against new, and told once, from its lower id's side.
    /// (Letting only the one peer nearest the midpoint speak lost 3 %.)
    /// `lo`: the rows with ids below `from` (see `PairViews::rows_below`).
    pub(super) fn tell_pairs(
        &mut self,
        now: Millis,
        from: PeerId,
        (old, pos): (Point, Point),
        reach: f32,
        (views, lo): (&mut PairViews, usize),
    ) {
        let size = views.size;
        // The mover's row is absent when it is not fresh.
        views.cover(pos);
        views.cover(old);
        let (new, old, me) = (
            (pos.x, pos.y),
            (old.x, old.y),
            (self.me.pos.x, self.me.pos.y),
        );
        let views = &*views;
        let mut tell_others = Vec::new();
        // Are we among the few nearest the pair's midpoint? (Among the
        // peers heard from directly: a liar's invented peers near the
        // midpoint would silence every honest teller.)
        debug_assert_eq!(lo, views.ids.partition_point(|id| *id < from));
        let mover_row = (views.ids.get(lo) == Some(&from)).then_some(lo);
        let unwrapped = views.unwrapped();
        let mut consider = |i: usize| {
            if Some(i) == mover_row {
                return;
            }
            let mid = (
                new.0 + axis_delta(new.0, views.x[i], size.0) / 2.0,
                new.1 + axis_delta(new.1, views.y[i], size.1) / 2.0,
            );
            let mine = dist_sq(me, mid, size);
            // Every row at once (vectorized), then the two ends taken out.
            let mut nearer = if unwrapped {
                views.nearer(mid, mine, plain_dist_sq)
            } else {
                views.nearer(mid, mine, |a, b| dist_sq(a, b, size))
            };
            for q in [Some(i), mover_row] {
                if let Some(q) = q
                    && views.confirmed[q]
                    && dist_sq((views.x[q], views.y[q]), mid, size) < mine
                {
                    nearer -= 1;
                }
            }
            if nearer < PAIR_TELLERS {
                tell_others.push(views.ids[i]);
            }
        };
        let crossed = |j: usize| {
            let r = reach.max(views.reach[j]);
            (dist_sq(new, (views.x[j], views.y[j]), size) <= r * r)
                & (dist_sq(old, (views.old_x[j], views.old_y[j]), size) > r * r)
        };
        // Rows are in id order: those before `lo` have lower ids, and the
        // ones among them that moved judged this pair from their side.
        let still_below = views.still.partition_point(|&i| (i as usize) < lo);
        for &i in &views.still[..still_below] {
            if crossed(i as usize) {
                consider(i as usize);
            }
        }
        // The rest, a chunk of pairs at a time (vectorized).
        let n = views.ids.len();
        let mut start = lo;
        while start < n {
            let end = (start + PAIR_CHUNK).min(n);
            let m = end - start;
            let mut flags = [false; PAIR_CHUNK];
            let mover = (new, old, reach);
            if unwrapped {
                views.crossings(start..end, mover, &mut flags, plain_dist_sq);
            } else {
                views.crossings(start..end, mover, &mut flags, |a, b| dist_sq(a, b, size));
            }
            if flags[..m].iter().fold(false, |a, &f| a | f) {
                for j in (0..m).filter(|&j| flags[j]) {
                    consider(start + j);
                }
            }
            start = end;
        }
        if tell_others.is_empty() {
            return;
        }
        let tell_mover: Vec<PeerInfo> = tell_others
            .iter()
            .filter_map(|id| self.kept.get(id).map(|k| k.info.clone()))
            .collect();
        // In a crowd the list can pass what one message may carry.
        for chunk in tell_mover.chunks(MAX_RECORDS) {
            self.send(
                from,
                Message::Discover {
                    peers: chunk.to_vec(),
                    mutual: true,
                },
                now,
            );
        }
        let mover = self.kept.get(&from).map(|k| k.info.clone());
        if let Some(mover) = mover {
            for id in tell_others {
                self.send(
                    id,
                    Message::Discover {
                        peers: vec![mover.clone()],
                        mutual: true,
                    },
                    now,
                );
            }
        }
    }
}

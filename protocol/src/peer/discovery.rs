//! Discovery: moves, and learning of the peers one should keep.
//!
//! Guarantees:
//! - Every move goes to every kept peer, with an increasing sequence number;
//!   older or repeated moves are ignored.
//! - Pairs of kept peers that come within reach of each other are told
//!   about each other by the few peers nearest their midpoint (see
//!   `pairs.rs`).
//! - A move from a peer we do not keep: learned if it is in range (with a
//!   slack of twice the tolerance: the peer that told us of each other
//!   judged the pair on beliefs), else
//!   answered with `Forget` so it stops feeding us a frozen belief. A
//!   `Forget` drops the sender unless it is enclosing for us; then it
//!   walks a join for our own place through the sender (rate limited).
//! - After a change of positions the local Delaunay view is rebuilt, at
//!   the next motion round with a fixed radius (once per round, on that
//!   round's beliefs), within `recompute_delay_ms` with the adaptive radius
//!   or when the table grew by an eighth since the last view: the
//!   enclosing flags are refreshed, peers neither enclosing nor in range
//!   are dropped, hints are greeted, new far enclosing neighbours are asked
//!   for their side, and each enclosing neighbour is told of the two peers
//!   across our shared Delaunay edge (the fan), once per change.

use super::motion::Motion;
use super::table::{Known, Stamp};
use super::{Peer, RemoveReason, State, Timer, sanitize};
use crate::Millis;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_RECORDS, Message};
use crate::voronoi;

/// Most hints one sender may have outstanding here (told, not yet heard
/// from): a join reply, solicited and taken once, may fill a whole message.
pub const HINTS_PER_SENDER: usize = 128;

impl Peer {
    /// The avatar moved to `pos`. A jump longer than
    /// `Config::teleport_distance` is a teleport: a join at the new place.
    pub fn move_to(&mut self, pos: Point, now: Millis) {
        if !pos.is_finite() || self.state == State::Left {
            return;
        }
        let pos = self.config.world.wrap(pos);
        let old = self.me.pos;
        if self.config.world.distance(old, pos) > f64::from(self.config.teleport_distance) {
            self.teleport(pos, now);
            return;
        }
        if pos != old {
            self.step_to(pos, now);
            self.mark_dirty(now);
        }
    }

    /// A move: `from` is at `pos` going at `vel` (units per second).
    pub(super) fn on_move(
        &mut self,
        now: Millis,
        from: PeerId,
        stamp: Stamp,
        pos: Point,
        vel: Point,
    ) {
        let pos = self.config.world.wrap(pos);
        // Radius changes travel in hellos; assume ours for a stranger.
        let radius = self
            .kept
            .get(&from)
            .map_or(self.me.radius, |k| k.info.radius);
        let Some(k) = self.kept.get_mut(&from) else {
            // A peer that keeps us but that we do not know: if it is in
            // range, learn it (it will send its full record).
            if self.is_joined() && self.in_range_told(self.me.pos, self.me.radius, pos, radius) {
                let info = PeerInfo {
                    id: from,
                    pos,
                    radius,
                    name: String::new(),
                    addr: String::new(),
                };
                self.insert(info, stamp, true, now);
                if let Some(k) = self.kept.get_mut(&from) {
                    k.motion = Motion { pos, vel, at: now };
                }
                self.send_hello(from, now);
            } else {
                // It keeps us on a stale belief: tell it, or it would hold
                // our frozen position until the failure timeout.
                self.send(from, Message::Forget, now);
            }
            return;
        };
        if stamp <= k.stamp && k.confirmed && stamp.1 != 0 {
            return; // stale datagram, or a move of an earlier life
        }
        let restarted = k.confirmed && k.new_life(stamp);
        k.confirmed = true;
        // Pair discovery judges the corrected belief at the next motion
        // round, against the belief at the last one.
        k.round_old.get_or_insert(k.info.pos);
        k.info.pos = pos;
        k.motion = Motion { pos, vel, at: now };
        k.stamp = stamp;
        if restarted {
            // A new life that moved before its hello reached us.
            self.stats.restarts_seen += 1;
            self.send_hello(from, now);
        }
        self.mark_dirty(now);
    }

    /// Records told by `from`: each unknown one is kept as a hint, within
    /// `quota` hints from `from` outstanding (not yet heard from themselves)
    /// and the table's cap.
    pub(super) fn on_discover(
        &mut self,
        now: Millis,
        from: PeerId,
        peers: Vec<PeerInfo>,
        mutual: bool,
        quota: usize,
    ) {
        let mut added = false;
        // Counted at the first record we lack (most are known).
        let mut outstanding = None;
        self.stats.discover_records += peers.len() as u64;
        for mut info in peers {
            if info.id == self.me.id || self.kept.contains_key(&info.id) {
                self.stats.discover_known += 1;
                continue;
            }
            let outstanding = outstanding.get_or_insert_with(|| {
                self.kept
                    .values()
                    .filter(|k| !k.confirmed && k.vouched_by == Some(from))
                    .count()
            });
            if self.kept.len() >= self.config.max_kept || *outstanding >= quota {
                self.stats.hints_refused += 1;
                continue;
            }
            *outstanding += 1;
            info.pos = self.config.world.wrap(info.pos);
            sanitize(&mut info);
            let near = self.in_range(self.me.pos, self.me.radius, info.pos, info.radius);
            let id = info.id;
            self.insert(info, (0, 0), false, now);
            if let Some(k) = self.kept.get_mut(&id) {
                k.vouched_by = Some(from);
            }
            if mutual {
                // The other side was told about us and does the same: our
                // motion confirms us there (a move is a third of a hello),
                // and a hello follows only if it stays silent.
                let grace = self.config.heartbeat_ms / 2;
                if let Some(k) = self.kept.get_mut(&id) {
                    k.greet_at = Some(now.plus(grace));
                }
                if self.is_joined() {
                    self.send_motion(id, now);
                }
            } else if near {
                self.send_hello(id, now);
            }
            added = true;
        }
        if added {
            self.no_longer_alone();
        }
    }

    /// The sender does not keep us: drop it unless it is enclosing for us.
    /// An enclosing neighbour that does not keep us knows peers between us
    /// that we lack (in a true Delaunay view the relation is mutual), and it
    /// will never tell us, nor send us its moves: we walk a join for our own
    /// place through it (at most once per `join_retry_ms`), and the owner of
    /// our place answers with what we lack. A joiner given a poor view while
    /// the world filled kept only far peers that each answered its moves
    /// with `Forget`, which kept them alive, for ever.
    pub(super) fn on_forget(&mut self, now: Millis, from: PeerId) {
        let Some(k) = self.kept.get(&from) else {
            return;
        };
        if !k.enclosing {
            self.remove(&from, RemoveReason::Forgotten);
            self.mark_dirty(now);
        } else if self
            .forget_probed
            .is_none_or(|t| now.since(t) >= self.config.join_retry_ms)
        {
            self.forget_probed = Some(now);
            self.probe_through(from, now);
        }
    }

    /// Records this peer should know that `to` (at `pos`, radius `r`) lacks:
    /// within range of it, or Voronoi-adjacent to it in this peer's view.
    /// Hints (records not yet heard from their peer) are vouched for only
    /// when `hints` is set.
    pub(super) fn records_for(
        &self,
        now: Millis,
        to: PeerId,
        (pos, r): (Point, f32),
        hints: bool,
        has: impl Fn(&PeerId) -> bool,
    ) -> Vec<PeerInfo> {
        let vouched =
            |id: &PeerId, k: &Known| *id != to && self.fresh(k, now) && (hints || k.confirmed);
        let mut ids: Vec<PeerId> = Vec::new();
        let mut pts = vec![pos, self.me.pos];
        let mut order = vec![self.me.id];
        // A record it lacks that is not in its range (or ours, which only
        // its cell adds): only its Voronoi cell in our view can say whether
        // it needs it.
        let mut unexplained = !has(&self.me.id);
        for (id, k) in self.kept.iter() {
            // Only vouch for peers heard from lately: relaying the dead
            // would keep them alive as hints forever.
            if !vouched(id, k) {
                continue;
            }
            pts.push(k.info.pos);
            order.push(*id);
            if self.in_range(pos, r, k.info.pos, k.info.radius) {
                ids.push(*id);
            } else if !has(id) {
                unexplained = true;
            }
        }
        if unexplained {
            let adj = voronoi::local_adjacency(&pts, self.config.world);
            ids.extend(adj.strict.iter().chain(&adj.weak).map(|&i| order[i - 1]));
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids {
            if id == to || has(&id) {
                continue;
            }
            if id == self.me.id {
                out.push(self.me.clone());
            } else if let Some(k) = self.kept.get(&id) {
                out.push(k.info.clone());
            }
            if out.len() >= MAX_RECORDS {
                break;
            }
        }
        out
    }

    /// Recomputes the enclosing set from the believed positions, drops the
    /// peers no longer needed, greets the new ones and tells each enclosing
    /// neighbour about the peers across our shared Delaunay edge.
    pub(super) fn recompute(&mut self, now: Millis) {
        self.timers.stop(Timer::Recompute);
        if self.state == State::Left {
            return;
        }
        // A crowd may have come within reach since the last view.
        self.adapt_radius(now);
        let ids: Vec<PeerId> = self.kept.keys().copied().collect();
        let mut pts = Vec::with_capacity(ids.len() + 1);
        pts.push(self.me.pos);
        pts.extend(self.kept.values().map(|k| k.info.pos));
        let adj = voronoi::local_adjacency(&pts, self.config.world);
        let mut enclosing = vec![false; ids.len()];
        for &i in adj.strict.iter().chain(&adj.weak) {
            enclosing[i - 1] = true;
        }
        // Hints are third parties' claims: one that lies close to us takes
        // the enclosing place of real neighbours. A confirmed peer enclosing
        // among the confirmed ones stays enclosing (kept, told of pairs,
        // digested), and the fan is told of confirmed peers only. (Without
        // an enclosing hint the two views agree: removing a point that is
        // not our Delaunay neighbour leaves our neighbours as they are.)
        // (The table iterates in the order of `ids`.)
        let hint_encloses = self
            .kept
            .values()
            .zip(&enclosing)
            .any(|(k, &e)| e && !k.confirmed);
        let mut fan: Vec<PeerId> = adj.fan.iter().map(|&i| ids[i - 1]).collect();
        if hint_encloses {
            let confirmed: Vec<usize> = (self.kept.values().enumerate())
                .filter(|(_, k)| k.confirmed)
                .map(|(i, _)| i)
                .collect();
            let mut cpts = Vec::with_capacity(confirmed.len() + 1);
            cpts.push(self.me.pos);
            cpts.extend(confirmed.iter().map(|&i| pts[i + 1]));
            let cadj = voronoi::local_adjacency(&cpts, self.config.world);
            for &j in cadj.strict.iter().chain(&cadj.weak) {
                enclosing[confirmed[j - 1]] = true;
            }
            fan = cadj.fan.iter().map(|&j| ids[confirmed[j - 1]]).collect();
        }
        // Update flags; collect peers to drop and newly enclosing ones.
        let (me_pos, me_r) = (self.me.pos, self.me.radius);
        let mut drop = Vec::new();
        let mut new_enclosing = Vec::new();
        for (i, (id, k)) in ids.iter().zip(self.kept.values()).enumerate() {
            let near = self.in_range(me_pos, me_r, k.info.pos, k.info.radius);
            if !near && !enclosing[i] {
                drop.push(*id);
            } else if enclosing[i] && !k.enclosing {
                new_enclosing.push(*id);
            }
        }
        for (k, &e) in self.kept.values_mut().zip(&enclosing) {
            k.enclosing = e;
        }
        for id in &drop {
            self.remove(id, RemoveReason::OutOfRange);
        }
        self.greet_hints(now);
        self.ask_new_far_enclosing(now, &new_enclosing);
        self.tell_fan(now, &fan);
        self.enforce_cap();
        self.view_len = self.kept.len();
        self.enclosing = self
            .kept
            .values()
            .filter(|k| k.enclosing)
            .map(|k| k.info.id)
            .collect();
    }

    /// Fan notifications: for each enclosing neighbour x (in angular order
    /// around us), the two peers across our shared Delaunay edge are likely
    /// enclosing for x too; tell x of them once per change.
    fn tell_fan(&mut self, now: Millis, fan: &[PeerId]) {
        let m = fan.len();
        if m < 3 {
            return;
        }
        for j in 0..m {
            let x = fan[j];
            let a = fan[(j + m - 1) % m];
            let b = fan[(j + 1) % m];
            let Some(kx) = self.kept.get(&x) else {
                continue;
            };
            if !kx.confirmed {
                continue;
            }
            let told = [a.short_u64(), b.short_u64()];
            if told == kx.told {
                continue;
            }
            let (xpos, xr) = (kx.info.pos, kx.info.radius);
            let mut tell = Vec::new();
            for n in [a, b] {
                if n == x || kx.told.contains(&n.short_u64()) {
                    continue;
                }
                if let Some(kn) = self.kept.get(&n)
                    && self.fresh(kn, now)
                    && !self.in_range(xpos, xr, kn.info.pos, kn.info.radius)
                {
                    tell.push(kn.info.clone());
                }
            }
            if let Some(kx) = self.kept.get_mut(&x) {
                kx.told = told;
            }
            if !tell.is_empty() {
                self.send(
                    x,
                    Message::Discover {
                        peers: tell,
                        mutual: false,
                    },
                    now,
                );
            }
        }
    }
}

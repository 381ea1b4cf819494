//! Routes, records and long links in the simulator (`--lookups P`,
//! `--records N`, `--long-links K`): N records are put by random peers as
//! the window opens; each counted peer looks up a random stored record
//! (without records: routes to a random point) with probability P per
//! tick; a lookup succeeds when it returns the newest version stored;
//! the report says how many hops the routes took, what share ended at one
//! of the point's true holders (the [`OBJECT_HOLDERS`] live peers nearest
//! to it as the route ends: any of them can answer for a record there), and
//! how the long links look at the end.

use std::collections::HashMap;

use super::Sim;
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::RouteAnswer;
use crate::mobility::random_point;
use crate::object::SeededSigner;
use crate::peer::{OBJECT_HOLDERS, ROUTE_REPLY_WINDOW_MS};
use crate::record::RecordKey;

/// A route of ours in flight.
#[derive(Debug, Clone, Copy)]
struct Pending {
    target: Point,
    at: Millis,
    /// It reached its end (judged then, for a route to a point).
    ended: bool,
    /// A lookup of this record (index into `records`), not a route to a point.
    record: Option<usize>,
}

/// A record put by the simulator (`records`).
#[derive(Debug)]
struct SimRecord {
    name: String,
    /// Its writer's slot.
    writer: usize,
    /// Its newest version, once a put was answered `Stored`.
    stored: Option<u64>,
}

/// The routes sent in the measured window, and the records.
#[derive(Debug, Default)]
pub(super) struct RouteLog {
    out: HashMap<(PeerId, u64), Pending>,
    /// Routes that reached their end (answered or not), and lookups answered.
    ended: u64,
    /// Hops of each answered route.
    hops: Vec<u16>,
    /// Ended at a holder of the point, or found the newest version.
    right: u64,
    records: Vec<SimRecord>,
    /// Puts in flight: (writer, token) to the record.
    puts: HashMap<(PeerId, u64), usize>,
    put: bool,
}

/// What the report says of routes and links.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RouteFigures {
    pub hops_mean: Option<f64>,
    pub hops_p99: Option<f64>,
    pub success: Option<f64>,
    pub records_lost: Option<u64>,
    pub records_stored: Option<u64>,
    pub links_mean: f64,
    pub links_dead: u64,
    pub incoming_max: usize,
    pub len_log_ks: Option<f64>,
}

/// Lookups stop this many ticks before the end of the run (5 s: a route
/// across 100 000 peers without long links takes about 4 s).
pub const LOOKUP_QUIET_TICKS: u64 = 50;
/// Records live this long (the simulated runs are shorter).
const SIM_RECORD_TTL_S: u32 = 3_600;

impl Sim {
    /// This tick's puts (once, at the window's start) and lookups.
    pub(super) fn lookups(&mut self) {
        if self.tick < self.measure_from() {
            return;
        }
        let now = self.now;
        if self.cfg.records > 0 && !self.routes.put {
            self.routes.put = true;
            let writers: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].counted(now))
                .collect();
            for n in 0..self.cfg.records {
                let Some(&i) = writers.get(self.rng.below(writers.len().max(1) as u64) as usize)
                else {
                    break;
                };
                let slot = &mut self.slots[i];
                if slot.peer.author_id().is_none() {
                    slot.peer
                        .set_signer(Box::new(SeededSigner::new(slot.peer.id().short_u64())));
                }
                let name = format!("record {n}");
                let value = format!("value of record {n}").into_bytes();
                if let Ok(token) = slot.peer.put_record(now, &name, value, SIM_RECORD_TTL_S) {
                    let id = slot.peer.id();
                    self.routes
                        .puts
                        .insert((id, token), self.routes.records.len());
                    self.routes.records.push(SimRecord {
                        name,
                        writer: i,
                        stored: None,
                    });
                }
                self.flush(i);
            }
        }
        // No new lookups near the end: a long route sent then would not be
        // answered in time, and the hop figures would favour short ones.
        if self.cfg.lookups <= 0.0 || self.tick + LOOKUP_QUIET_TICKS > self.cfg.ticks {
            return;
        }
        for i in 0..self.slots.len() {
            if !self.slots[i].counted(now) || self.rng.f64() >= self.cfg.lookups {
                continue;
            }
            let origin = self.slots[i].peer.id();
            let (token, target, record) = if self.cfg.records > 0 {
                // A record whose put was answered, at random.
                let stored: Vec<usize> = (0..self.routes.records.len())
                    .filter(|&r| self.routes.records[r].stored.is_some())
                    .collect();
                if stored.is_empty() {
                    continue;
                }
                let r = stored[self.rng.below(stored.len() as u64) as usize];
                let name = self.routes.records[r].name.clone();
                let target = RecordKey::of(&name).point(self.world);
                (self.slots[i].peer.get_record(now, &name), target, Some(r))
            } else {
                let target = random_point(self.world, &mut self.rng);
                (self.slots[i].peer.route(now, target), target, None)
            };
            self.routes.out.insert(
                (origin, token),
                Pending {
                    target,
                    at: now,
                    ended: false,
                    record,
                },
            );
            self.flush(i);
        }
    }

    /// `end` answers a route of `origin`'s: judged now, where the peers
    /// are as the route ends (not a latency later, when the answer lands).
    pub(super) fn route_ended(&mut self, end: PeerId, origin: PeerId, token: u64) {
        let Some(p) = self.routes.out.get_mut(&(origin, token)) else {
            return;
        };
        if p.ended || p.record.is_some() {
            return;
        }
        p.ended = true;
        let target = p.target;
        self.routes.ended += 1;
        if self.among_nearest(target, end, OBJECT_HOLDERS) {
            self.routes.right += 1;
        }
    }

    /// A route of `origin`'s was answered.
    pub(super) fn routed(
        &mut self,
        origin: PeerId,
        token: u64,
        hops: u16,
        owner: PeerId,
        answer: &RouteAnswer,
    ) {
        if let Some(r) = self.routes.puts.remove(&(origin, token)) {
            if let RouteAnswer::Stored(_) = answer {
                let writer = self.routes.records[r].writer;
                let name = &self.routes.records[r].name;
                let version = self.slots[writer]
                    .peer
                    .records()
                    .find(|x| &x.name == name)
                    .map_or(1, |x| x.version);
                self.routes.records[r].stored = Some(version);
            }
            return;
        }
        let Some(p) = self.routes.out.remove(&(origin, token)) else {
            return;
        };
        self.routes.hops.push(hops);
        match p.record {
            Some(r) => {
                self.routes.ended += 1;
                let want = self.routes.records[r].stored;
                if let RouteAnswer::Record(Some(c)) = answer
                    && !c.record.removed
                    && Some(c.record.version) >= want
                {
                    self.routes.right += 1;
                }
            }
            // Answered at once by its origin (0 hops): judged here.
            None if !p.ended => {
                self.routes.ended += 1;
                if self.among_nearest(p.target, owner, OBJECT_HOLDERS) {
                    self.routes.right += 1;
                }
            }
            None => {}
        }
    }

    /// Whether `who` is among the `n` live peers nearest to `p`.
    fn among_nearest(&self, p: Point, who: PeerId, n: usize) -> bool {
        let Some(&i) = self.by_id.get(&who) else {
            return false;
        };
        if !self.slots[i].alive {
            return false;
        }
        let mine = self.world.distance_sq(self.slots[i].peer.info().pos, p);
        let nearer = self
            .slots
            .iter()
            .filter(|s| s.alive && s.peer.is_joined() && s.peer.id() != who)
            .filter(|s| self.world.distance_sq(s.peer.info().pos, p) < mine)
            .count();
        nearer < n
    }

    /// The figures of routes and links.
    pub(super) fn route_figures(&self) -> RouteFigures {
        let log = &self.routes;
        let mut f = RouteFigures::default();
        // A route that never reached its end fails once its origin has
        // given up on it (younger ones are not judged, nor those of an
        // origin that has left since).
        let lost = log
            .out
            .iter()
            .filter(|((origin, _), p)| {
                !p.ended
                    && self.now.since(p.at) > ROUTE_REPLY_WINDOW_MS
                    && self.by_id.get(origin).is_some_and(|&i| self.slots[i].alive)
            })
            .count() as u64;
        let judged = log.ended + lost;
        if judged > 0 {
            let mut h = log.hops.clone();
            h.sort_unstable();
            if !h.is_empty() {
                f.hops_mean = Some(h.iter().map(|&x| f64::from(x)).sum::<f64>() / h.len() as f64);
                let at = ((h.len() as f64 * 0.99).ceil() as usize).clamp(1, h.len()) - 1;
                f.hops_p99 = Some(f64::from(h[at]));
            }
            f.success = Some(log.right as f64 / judged as f64);
        }
        if !self.routes.records.is_empty() {
            let stored: Vec<&SimRecord> = self
                .routes
                .records
                .iter()
                .filter(|r| r.stored.is_some())
                .collect();
            f.records_stored = Some(stored.len() as u64);
            let held: std::collections::HashSet<RecordKey> = self
                .slots
                .iter()
                .filter(|s| s.alive)
                .flat_map(|s| s.peer.records().map(|r| r.key))
                .collect();
            f.records_lost = Some(
                stored
                    .iter()
                    .filter(|r| !held.contains(&RecordKey::of(&r.name)))
                    .count() as u64,
            );
        }
        let cfg = &self.cfg.peer;
        if cfg.long_links == 0 {
            return f;
        }
        let lo = f64::from(cfg.radius.max(1.0)).ln();
        let hi = (f64::from(cfg.world.width.min(cfg.world.height)) / 2.0).ln();
        let mut units = Vec::new();
        let mut peers = 0usize;
        let mut links = 0usize;
        for s in self.slots.iter().filter(|s| s.alive && s.peer.is_joined()) {
            peers += 1;
            f.incoming_max = f.incoming_max.max(s.peer.incoming_links());
            for (far, _) in s.peer.long_links() {
                match self.by_id.get(&far).map(|&j| &self.slots[j]) {
                    Some(t) if t.alive => {
                        links += 1;
                        let d = self.world.distance(s.peer.info().pos, t.peer.info().pos);
                        if hi > lo && d > 0.0 {
                            units.push(((d.ln() - lo) / (hi - lo)).clamp(0.0, 1.0));
                        }
                    }
                    _ => f.links_dead += 1,
                }
            }
        }
        f.links_mean = links as f64 / peers.max(1) as f64;
        f.len_log_ks = ks_from_uniform(units);
        f
    }
}

/// The Kolmogorov–Smirnov distance of a sample in [0, 1] from the uniform
/// distribution (`None` for an empty sample).
pub(crate) fn ks_from_uniform(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    let d = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| (x - i as f64 / n).max((i + 1) as f64 / n - x))
        .fold(0.0, f64::max);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::ks_from_uniform;

    #[test]
    fn the_ks_distance_is_small_for_a_uniform_sample_and_large_for_a_lump() {
        let uniform: Vec<f64> = (0..1000).map(|i| (f64::from(i) + 0.5) / 1000.0).collect();
        assert!(ks_from_uniform(uniform).unwrap() < 0.01);
        let lump = vec![0.9; 100];
        assert!(ks_from_uniform(lump).unwrap() > 0.85);
        assert_eq!(ks_from_uniform(Vec::new()), None);
    }
}

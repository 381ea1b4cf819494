//! A deterministic discrete-event simulator of many [`Peer`]s.
//!
//! Virtual clock, per-link latency with jitter, loss of datagrams, mobility,
//! churn and trace replay. Control messages travel reliably and in order per
//! link (as on a QUIC stream: every control message on a link takes the same
//! latency); position updates and pings may be lost or reordered (as QUIC
//! datagrams). The same configuration and seed give the same result, bit for
//! bit, on any number of threads (`batch.rs`): no wall clock, no unseeded
//! randomness, no hash-order iteration.

use std::collections::{BTreeMap, HashMap};

use crate::Millis;
use crate::geometry::{Point, World};
use crate::id::{IdMap, PeerId, PeerInfo};
use crate::invariants::Tally;
use crate::mobility::{Mobility, Walker, random_point};
use crate::peer::Peer;

/// Virtual milliseconds per tick.
pub const TICK_MS: u64 = 100;
/// A teleported peer should be settled (joined, with an enclosing
/// neighbour) this long after the jump.
const TELEPORT_SETTLE_MS: u64 = 2_000;
/// Framing bytes counted per message (as VAST counts them).
pub const FRAMING_BYTES: u64 = 4;

mod batch;
mod chat;
mod config;
mod dynamics;
mod liars;
mod measure;
mod objects;
mod rng;
mod routes;
mod trace;

pub use config::{Bootstrap, MERGE_PROBE_TICKS, PLAZA_RADIUS, Report, SimConfig};
pub use objects::{OBJECT_GRACE_MS, OBJECT_SAMPLE_TICKS, ObjectFigures};
pub use rng::Rng;
use trace::trace_last_entry;
pub use trace::{Trace, TraceError};

struct Slot {
    peer: Peer,
    walker: Walker,
    alive: bool,
    timer_at: Option<Millis>,
    join_started: Option<Millis>,
    /// When the peer starts counting in the metrics: two one-way latencies
    /// after its join completed (at once for the first, alone).
    counts_from: Option<Millis>,
    /// Which of the two worlds it was born in (`merge_at`; else 0).
    born_in: u8,
    /// Its spot in the plaza, for a peer of the crowd (`crowd`).
    plaza: Option<Point>,
    /// It falsifies every record it relays (`liars`).
    liar: bool,
}

impl Slot {
    /// A live honest peer past its counting start (see `measure.rs`).
    fn counted(&self, now: Millis) -> bool {
        self.alive && !self.liar && self.counts_from.is_some_and(|t| t <= now)
    }
}

#[derive(Debug)]
enum Action {
    Deliver {
        to: usize,
        from: PeerId,
        /// Boxed: a message is large, and an action moves several times.
        t: Box<crate::peer::Transmit>,
    },
    Timer {
        slot: usize,
    },
    /// An event already handled in its window, whose outputs wait to be
    /// dispatched in the queue's order (`batch.rs`).
    Done {
        slot: usize,
    },
}

impl Action {
    /// The slot it is for.
    fn slot(&self) -> usize {
        match *self {
            Action::Deliver { to, .. } => to,
            Action::Timer { slot } | Action::Done { slot } => slot,
        }
    }
}

/// The simulator.
pub struct Sim {
    cfg: SimConfig,
    world: World,
    rng: Rng,
    slots: Vec<Slot>,
    by_id: IdMap<usize>,
    by_trace: HashMap<u32, usize>,
    /// Pending actions by delivery time; FIFO within one millisecond, which
    /// keeps control messages in order per link.
    queue: BTreeMap<Millis, Vec<Action>>,
    now: Millis,
    tick: u64,
    next_id: u64,
    pending_joins: usize,
    last_join_tick: u64,
    hot: Vec<Point>,
    // Cost counters: total and within the measurement window.
    msgs: u64,
    bytes: u64,
    window_msgs: u64,
    window_bytes: u64,
    window_peer_ticks: u64,
    window_by_kind: BTreeMap<&'static str, u64>,
    window_crowd_bytes: u64,
    window_crowd_peer_ticks: u64,
    /// The counters of all peers summed when the window opened.
    window_base: Option<Counters>,
    peer_ticks: u64,
    join_hops: u64,
    join_time: u64,
    joins: u64,
    totals: Tally,
    /// Teleports waiting for their 2 s check: (slot, when to check).
    teleport_checks: std::collections::VecDeque<(usize, Millis)>,
    teleports: u64,
    teleports_unsettled: u64,
    /// The step of the trace's last newcomer, found once.
    trace_last_entry: Option<u64>,
    /// Two worlds: the peer given the other world's address, and that
    /// address; then the tick of the first one-component sample.
    merge_link: Option<(PeerId, PeerId)>,
    merged_tick: Option<u64>,
    /// Lines said (`chat`) and their receptions.
    chat_log: chat::ChatLog,
    /// Objects placed (`objects`) and how they were seen.
    objects: objects::ObjectLog,
    /// Routes sent (`lookups`) and their answers.
    routes: routes::RouteLog,
    /// `SimConfig::threads` threads for a window's events and for sampling;
    /// a tick runs inside the pool, so its worker threads stay warm (none
    /// if the threads could not be started: then all runs on the caller's).
    pool: Option<rayon::ThreadPool>,
    /// The pool's size (1 without one). Kept apart from the pool, which is
    /// taken out of the simulator while a tick runs inside it.
    threads: usize,
    /// Each slot's share of the window being run (`batch.rs`).
    work: Vec<batch::Work>,
    /// The longest window run at once: the shortest latency a message can
    /// have (`batch.rs`).
    lookahead: u64,
}

/// Peer counters the report takes over the measured window.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counters {
    pub moves: u64,
    pub handed: u64,
    pub copies_sent: u64,
    pub copies_stale: u64,
    pub discover_records: u64,
    pub discover_known: u64,
}

impl Sim {
    /// A simulator; peers are created as the ticks run.
    pub fn new(cfg: SimConfig) -> Self {
        let world = cfg.peer.world;
        let mut rng = Rng::new(cfg.seed);
        let hot = match cfg.mobility {
            Mobility::HotSpots { spots, .. } => {
                (0..spots).map(|_| random_point(world, &mut rng)).collect()
            }
            _ => Vec::new(),
        };
        let pending_joins = if cfg.trace.is_some() { 0 } else { cfg.peers };
        // A pool even for one thread, so that sampling uses no more.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads.max(1))
            .build()
            .ok();
        Self {
            world,
            rng,
            slots: Vec::new(),
            by_id: IdMap::default(),
            by_trace: HashMap::new(),
            queue: BTreeMap::new(),
            now: Millis(0),
            tick: 0,
            next_id: 0,
            pending_joins,
            last_join_tick: 0,
            hot,
            msgs: 0,
            bytes: 0,
            window_msgs: 0,
            window_bytes: 0,
            window_peer_ticks: 0,
            window_by_kind: BTreeMap::new(),
            window_crowd_bytes: 0,
            window_crowd_peer_ticks: 0,
            window_base: None,
            peer_ticks: 0,
            join_hops: 0,
            join_time: 0,
            joins: 0,
            totals: Tally::default(),
            teleport_checks: std::collections::VecDeque::new(),
            teleports: 0,
            teleports_unsettled: 0,
            trace_last_entry: cfg.trace.as_ref().map(trace_last_entry),
            merge_link: None,
            merged_tick: None,
            chat_log: chat::ChatLog::default(),
            objects: objects::ObjectLog::default(),
            routes: routes::RouteLog::default(),
            threads: pool
                .as_ref()
                .map_or(1, rayon::ThreadPool::current_num_threads),
            pool,
            work: Vec::new(),
            lookahead: cfg.latency_ms.max(1),
            cfg,
        }
    }

    /// The world.
    pub fn world(&self) -> World {
        self.world
    }

    /// The current tick (ticks run so far).
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The virtual time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Total messages sent so far.
    pub fn messages_sent(&self) -> u64 {
        self.msgs
    }

    /// Total bytes sent so far (frames + framing).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes
    }

    /// Whether every initial join (or the whole trace) has been issued.
    pub fn joins_done(&self) -> bool {
        self.pending_joins == 0
    }

    /// The tick of the last join issued.
    pub fn last_join_tick(&self) -> u64 {
        self.last_join_tick
    }

    /// The tick from which samples are averaged.
    pub fn measure_from(&self) -> u64 {
        self.cfg.measure_from.unwrap_or_else(|| {
            let joins = if let Some(last) = self.trace_last_entry {
                last
            } else if self.cfg.joins_per_tick == 0 {
                0
            } else {
                (self.cfg.peers as u64).div_ceil(self.cfg.joins_per_tick as u64)
            };
            joins + 50
        })
    }

    /// Ids of the live peers.
    pub fn live_ids(&self) -> Vec<PeerId> {
        self.slots
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.peer.id())
            .collect()
    }

    /// A live peer by id.
    pub fn peer(&self, id: &PeerId) -> Option<&Peer> {
        self.by_id
            .get(id)
            .map(|&i| &self.slots[i].peer)
            .filter(|_| self.slots[self.by_id[id]].alive)
    }

    /// The live peers.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.slots.iter().filter(|s| s.alive).map(|s| &s.peer)
    }

    fn new_id(&mut self) -> PeerId {
        let id = PeerId::from_seed(
            self.cfg
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(self.next_id),
        );
        self.next_id += 1;
        id
    }

    /// Adds a peer at `pos`; it joins through a live peer (or starts the
    /// world if there is none). Returns its id.
    pub fn spawn(&mut self, pos: Point) -> PeerId {
        let id = self.new_id();
        let info = PeerInfo::new(
            id,
            pos,
            self.cfg.peer.radius,
            format!("p{}", self.next_id - 1),
        );
        let mut peer = Peer::new(self.cfg.peer.clone(), info, self.now);
        let born_in = if self.two_worlds() {
            (self.slots.len() % 2) as u8
        } else {
            0
        };
        let via = self.pick_bootstrap(born_in);
        let plaza =
            (self.cfg.crowd > 0.0 && self.rng.f64() < self.cfg.crowd).then(|| self.plaza_spot());
        let liar = self.cfg.liars > 0.0 && self.rng.f64() < self.cfg.liars;
        let mut join_started = None;
        let mut counts_from = Some(self.now);
        if let Some(via) = via {
            peer.join(via, self.now);
            join_started = Some(self.now);
            counts_from = None;
        }
        let walker = Walker::new(peer.info().pos);
        let slot = self.slots.len();
        self.slots.push(Slot {
            peer,
            walker,
            alive: true,
            timer_at: None,
            join_started,
            counts_from,
            born_in,
            plaza,
            liar,
        });
        self.by_id.insert(id, slot);
        self.last_join_tick = self.tick;
        self.flush(slot);
        id
    }

    /// Whether the world is still two worlds (`merge_at` not reached).
    fn two_worlds(&self) -> bool {
        self.cfg.merge_at.is_some_and(|t| self.tick < t)
    }

    fn pick_bootstrap(&mut self, world: u8) -> Option<PeerId> {
        let apart = self.two_worlds();
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].alive && self.slots[i].peer.is_joined())
            .filter(|&i| !apart || self.slots[i].born_in == world)
            .collect();
        if live.is_empty() {
            return None;
        }
        let i = match self.cfg.bootstrap {
            Bootstrap::Single => live[0],
            Bootstrap::Random => live[self.rng.below(live.len() as u64) as usize],
        };
        Some(self.slots[i].peer.id())
    }

    /// Crashes a peer: it vanishes without a word.
    pub fn crash(&mut self, id: &PeerId) {
        if let Some(&i) = self.by_id.get(id) {
            self.slots[i].alive = false;
        }
    }

    /// A peer says goodbye and goes.
    pub fn leave(&mut self, id: &PeerId) {
        if let Some(&i) = self.by_id.get(id)
            && self.slots[i].alive
        {
            self.slots[i].peer.leave(self.now);
            self.flush(i);
            self.slots[i].alive = false;
        }
    }

    /// Moves a peer (its walker stays where the model put it otherwise).
    pub fn move_peer(&mut self, id: &PeerId, pos: Point) {
        if let Some(&i) = self.by_id.get(id)
            && self.slots[i].alive
        {
            let pos = self.world.wrap(pos);
            self.slots[i].walker = Walker::new(pos);
            self.slots[i].peer.move_to(pos, self.now);
            self.flush(i);
        }
    }

    /// Crashes `count` random live peers at once.
    pub fn crash_random(&mut self, count: usize) -> Vec<PeerId> {
        let mut out = Vec::new();
        for _ in 0..count {
            let live: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].alive)
                .collect();
            if live.is_empty() {
                break;
            }
            let i = live[self.rng.below(live.len() as u64) as usize];
            self.slots[i].alive = false;
            out.push(self.slots[i].peer.id());
        }
        out
    }

    fn enqueue(&mut self, at: Millis, action: Action) {
        self.queue.entry(at).or_default().push(action);
    }

    fn link_latency(&self, a: &PeerId, b: &PeerId) -> u64 {
        if self.cfg.jitter_ms == 0 {
            return self.cfg.latency_ms;
        }
        let h = a.short_u64() ^ b.short_u64().rotate_left(17);
        self.cfg.latency_ms + h % (self.cfg.jitter_ms + 1)
    }

    /// Takes what the peer in `slot` produced and dispatches it.
    fn flush(&mut self, slot: usize) {
        let out = self.slots[slot].drain(self.now);
        self.dispatch(slot, out);
    }

    /// Runs one tick: joins, churn and moves at its start, then every event
    /// inside it. Returns false once the configured ticks have run.
    pub fn step(&mut self) -> bool {
        match self.pool.take() {
            Some(pool) => {
                let more = pool.install(|| self.step_here());
                self.pool = Some(pool);
                more
            }
            None => self.step_here(),
        }
    }

    fn step_here(&mut self) -> bool {
        if self.tick >= self.cfg.ticks {
            return false;
        }
        self.now = Millis(self.tick * TICK_MS);
        if self.cfg.trace.is_some() {
            self.trace_step();
        } else {
            self.initial_joins();
            self.churn();
            self.walk();
            self.merge_probe();
        }
        self.chat();
        self.lookups();
        self.objects_step();
        self.run_until(Millis((self.tick + 1) * TICK_MS));
        self.check_teleports();
        self.sample_objects();
        let live = self.slots.iter().filter(|s| s.alive).count() as u64;
        self.peer_ticks += live;
        self.tick += 1;
        if self.tick == self.measure_from() {
            self.window_base = Some(self.counters());
        }
        if self.tick > self.measure_from() {
            self.window_peer_ticks += live;
            self.window_crowd_peer_ticks += self
                .slots
                .iter()
                .filter(|s| s.alive && s.plaza.is_some())
                .count() as u64;
        }
        true
    }

    /// The counters of every peer so far, summed (the departed included).
    pub(crate) fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for s in &self.slots {
            let st = s.peer.stats();
            c.moves += st.moves_announced;
            c.handed += st.objects_handed;
            c.copies_sent += st.objects_sent;
            c.copies_stale += st.objects_stale;
            c.discover_records += st.discover_records;
            c.discover_known += st.discover_known;
        }
        c
    }

    /// Runs `n` ticks (fewer if the configured end comes first).
    pub fn run_ticks(&mut self, n: u64) {
        for _ in 0..n {
            if !self.step() {
                break;
            }
        }
    }

    /// Runs to the end, sampling as configured, and reports.
    pub fn run(mut self) -> Report {
        while self.step() {
            if self.should_sample() {
                let s = self.sample();
                self.record(&s);
            }
        }
        self.report()
    }
}

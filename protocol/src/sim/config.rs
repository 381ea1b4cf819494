//! What a simulation runs ([`SimConfig`]) and what it reports ([`Report`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::trace::Trace;
use crate::invariants::Summary;
use crate::mobility::Mobility;
use crate::peer::Config;

/// The plaza of `--crowd`: a disk this wide in radius at the world's centre.
pub const PLAZA_RADIUS: f32 = 30.0;

/// Ticks between two merge probes of the peer given the other world's
/// address (30 s, as a node's bootstrap probes).
pub const MERGE_PROBE_TICKS: u64 = 300;

/// How newcomers find the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Through the oldest live peer.
    Single,
    /// Through a random live peer.
    Random,
}

/// Simulation parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of peers (ignored with a trace).
    pub peers: usize,
    /// Ticks to run.
    pub ticks: u64,
    /// Speed in units per tick.
    pub speed: f64,
    /// Mobility model.
    pub mobility: Mobility,
    /// Seed of every random choice.
    pub seed: u64,
    /// Per peer per tick probability of leaving (half crash, half goodbye);
    /// each leaver is replaced by a newcomer at a random spot.
    pub churn: f64,
    /// Per peer per tick probability of jumping to a random spot (a
    /// teleport: the avatar moves there at once).
    pub teleport: f64,
    /// From tick `.0` to tick `.1`, messages between the two halves of the
    /// world (x below W/2, and the rest) are dropped: a partition.
    pub partition: Option<(u64, u64)>,
    /// Two worlds in the same coordinates until this tick: newcomers join
    /// through a peer of their own world (alternately the one and the
    /// other); at this tick one peer of the first is given a peer of the
    /// second, and walks a join probe through it then and every
    /// [`MERGE_PROBE_TICKS`] after (as a node does through a bootstrap).
    pub merge_at: Option<u64>,
    /// Share of the peers that walk into the plaza (within [`PLAZA_RADIUS`]
    /// of the world's centre, each to its own spot) and stay there; the
    /// others walk as the mobility model says.
    pub crowd: f64,
    /// Share of the peers that lie (chosen at spawn): every record they
    /// relay in a `Discover` or a `JoinReply` is falsified (position,
    /// radius, address or id), and each such message carries a few invented
    /// peers close to its receiver. Liars do not count in the metrics: the
    /// report is the honest peers' view of one another.
    pub liars: f64,
    /// Per counted peer per tick probability of saying a chat line (an
    /// area message to every peer within its radius), in the measured
    /// window.
    pub chat: f64,
    /// World objects placed at random points by random peers once everyone
    /// has joined, each edited by its author about once a minute
    /// (`sim/objects.rs`).
    pub objects: usize,
    /// Per counted peer per tick probability of routing to a random point
    /// (a `Route` asking who owns it), in the measured window; long links
    /// are `peer.long_links`.
    pub lookups: f64,
    /// Key records put by random peers as the measured window opens;
    /// lookups then ask for them by name.
    pub records: usize,
    /// Base one-way latency in milliseconds.
    pub latency_ms: u64,
    /// Latency spread: each link adds a fixed 0..=jitter, each datagram a
    /// further random 0..=jitter.
    pub jitter_ms: u64,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Initial joins per tick (0: all at tick 0).
    pub joins_per_tick: usize,
    /// How newcomers pick their bootstrap peer.
    pub bootstrap: Bootstrap,
    /// First tick averaged into the report (default: 50 after the last join).
    pub measure_from: Option<u64>,
    /// Sample the invariants every this many ticks.
    pub sample_every: u64,
    /// Compute Voronoi correctness at each sample.
    pub voronoi: bool,
    /// Overlay configuration for every peer (its world and radius are used).
    pub peer: Config,
    /// Replay this trace instead of the mobility model.
    pub trace: Option<Trace>,
    /// Threads that run the peers' events of one lookahead window side by
    /// side, and sampling (`sim/batch.rs`). The result does not depend on
    /// it.
    pub threads: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            peers: 1000,
            ticks: 300,
            speed: 5.0,
            mobility: Mobility::RandomWaypoint,
            seed: 1,
            churn: 0.0,
            teleport: 0.0,
            chat: 0.0,
            objects: 0,
            lookups: 0.0,
            records: 0,
            partition: None,
            merge_at: None,
            crowd: 0.0,
            liars: 0.0,
            latency_ms: 5,
            jitter_ms: 3,
            loss: 0.0,
            joins_per_tick: 20,
            bootstrap: Bootstrap::Single,
            measure_from: None,
            sample_every: 1,
            voronoi: true,
            peer: Config::default(),
            trace: None,
            threads: 1,
        }
    }
}

/// The whole-run figures (`sim --json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Peers at the end of the run.
    pub peers: usize,
    /// Ticks run.
    pub ticks: u64,
    /// First measured tick.
    pub measure_from: u64,
    /// The invariants: means and worst samples (flattened into the JSON).
    #[serde(flatten)]
    pub summary: Summary,
    /// Messages per peer per second over the measured ticks.
    pub msgs_per_peer_per_s: f64,
    /// Bytes (frame + 4) per peer per second over the measured ticks.
    pub bytes_per_peer_per_s: f64,
    /// Messages per peer per tick.
    pub msgs_per_peer_per_tick: f64,
    /// Bytes per peer per tick.
    pub bytes_per_peer_per_tick: f64,
    /// Mean join forwarding hops.
    pub join_hops_mean: f64,
    /// Mean time from join to join reply (virtual ms).
    pub join_time_ms_mean: f64,
    /// Joins completed.
    pub joins: u64,
    /// Teleports (`--teleport`) made.
    pub teleports: u64,
    /// Of those, the ones whose peer, 2 s after the jump, was not yet part of
    /// the world or had no enclosing neighbour (stranded).
    pub teleports_unsettled_2s: u64,
    /// With two worlds (`--merge-at`): seconds from the merge tick to the
    /// first sample with one component and a consistency of at least
    /// 99.9 % (none if it never came).
    pub merged_after_s: Option<f64>,
    /// With `--crowd`: bytes sent per crowd peer per tick (measured ticks).
    pub crowd_bytes_per_peer_per_tick: Option<f64>,
    /// Motion announcements (dead reckoning updates, each a `Move` to every
    /// kept peer) per peer per tick, over the measured window.
    pub moves_per_peer_per_tick: f64,
    /// Peer records received in `Discover` messages per peer per tick, over
    /// the measured window.
    pub discover_records_per_peer_per_tick: f64,
    /// The share of those records the receiver already kept (redundant).
    pub discover_known_share: f64,
    /// Peer-ticks simulated (live peers summed over ticks).
    pub peer_ticks: u64,
    /// With `--chat`: the share of the peers within a speaker's radius
    /// (true positions, at send time) that received its line.
    pub chat_delivery: Option<f64>,
    /// With `--chat`: copies received beyond the first, as a share of all
    /// copies received.
    pub chat_duplicates: Option<f64>,
    /// With `--objects`: the mean share of live objects whose owner (the
    /// live peer nearest the point) holds the latest version.
    pub objects_readable: Option<f64>,
    /// With `--objects`: the worst sample of the same.
    pub objects_readable_worst: Option<f64>,
    /// With `--objects`: the share of (counted peer, live object within its
    /// radius) pairs where the peer holds the latest version.
    pub objects_visible: Option<f64>,
    /// With `--objects`: live objects no live peer holds, at the end.
    pub objects_lost: Option<u64>,
    /// With `--objects`: edits made by the objects' authors.
    pub object_edits: Option<u64>,
    /// With `--objects`: object copies handed to a holder that lacked them,
    /// per tick (all peers together), over the measured window.
    pub object_handovers_per_tick: Option<f64>,
    /// With `--objects`: object copies sent per peer per tick, over the
    /// measured window.
    pub object_copies_per_peer_per_tick: Option<f64>,
    /// With `--objects`: the share of copies received that the receiver
    /// held already at that version or a newer one (wasted).
    pub object_copies_stale_share: Option<f64>,
    /// With `--lookups`: mean forwards of the routes answered.
    pub route_hops_mean: Option<f64>,
    /// With `--lookups`: the 99th percentile of the same.
    pub route_hops_p99: Option<f64>,
    /// With `--lookups`: the share of the lookups judged that returned the
    /// newest stored version of their record (with `--records`), or of
    /// the routes that ended at one of the three peers nearest their point
    /// (the holders of a record there) as they ended. A lookup not
    /// answered within the reply window fails (its origin retries once);
    /// those of an origin that left are not judged.
    pub lookup_success: Option<f64>,
    /// With `--records`: records whose put was answered `Stored`.
    pub records_stored: Option<u64>,
    /// With `--records`: of those, the ones no live peer holds at the end.
    pub records_lost: Option<u64>,
    /// With `--long-links`: live long links per live peer at the end.
    pub long_links_mean: Option<f64>,
    /// With `--long-links`: long links whose far end is gone, at the end.
    pub long_links_dead: Option<u64>,
    /// With `--long-links`: the most incoming links one peer takes, at the end.
    pub incoming_links_max: Option<usize>,
    /// With `--long-links`: the Kolmogorov–Smirnov distance of the links'
    /// log lengths (between the radius and half the world) from uniform.
    pub long_link_len_log_ks: Option<f64>,
    /// Bytes per peer per tick by message kind (measured ticks).
    pub bytes_by_kind: BTreeMap<&'static str, f64>,
    /// Wall time in seconds (filled by the caller; 0 inside the simulator).
    pub wall_s: f64,
}

//! The overlay's must-hold properties, checked in the deterministic simulator.
//!
//! Unless a test says otherwise: world 1200×1200, radius 100 (about 22 peers
//! should be known by each), fixed seeds, and "settled" = 50 ticks after the
//! last join or event.

use peerworld_protocol::invariants::Sample;
use peerworld_protocol::mobility::Mobility;
use peerworld_protocol::sim::{Report, Sim, SimConfig};
use peerworld_protocol::{Point, RadiusMode, World};

#[path = "overlay/objects.rs"]
mod objects;

fn config(peers: usize, world: f32, mobility: Mobility, ticks: u64) -> SimConfig {
    let mut cfg = SimConfig {
        peers,
        ticks,
        mobility,
        seed: 42,
        ..SimConfig::default()
    };
    cfg.peer.world = World::new(world, world);
    cfg.peer.radius = 100.0;
    cfg
}

/// Random-waypoint walkers at 100 ms latency, measured for `window` ticks
/// from 50 ticks after the joins, every `every` ticks, Voronoi check off.
fn walkers(peers: usize, world: f32, seed: u64, window: u64, every: u64) -> SimConfig {
    let mut cfg = config(peers, world, Mobility::RandomWaypoint, 0);
    cfg.seed = seed;
    cfg.latency_ms = 100;
    let from = join_ticks(&cfg) + 50;
    cfg.ticks = from + window;
    cfg.measure_from = Some(from);
    cfg.sample_every = every;
    cfg.voronoi = false;
    cfg
}

/// Ticks the initial joins take.
fn join_ticks(cfg: &SimConfig) -> u64 {
    (cfg.peers as u64).div_ceil(cfg.joins_per_tick.max(1) as u64)
}

fn assert_converged(s: &Sample, what: &str) {
    assert_eq!(s.consistency, 1.0, "{what}: consistency {s:?}");
    assert_eq!(s.voronoi_correct, 1.0, "{what}: voronoi {s:?}");
    assert_eq!(s.components, 1, "{what}: components {s:?}");
    assert_eq!(s.dead_kept, 0, "{what}: dead peers kept {s:?}");
}

#[test]
fn thousand_still_peers_joined_through_one_bootstrap_converge() {
    let cfg = config(1000, 1200.0, Mobility::Still, 0);
    let settle = join_ticks(&cfg) + 50;
    let mut sim = Sim::new(SimConfig {
        ticks: settle,
        ..cfg
    });
    sim.run_ticks(settle);
    let s = sim.sample();
    assert_eq!(s.peers, 1000);
    assert!(s.should_know_mean >= 10.0, "{s:?}");
    assert_converged(&s, "still 1000");
    assert_eq!(s.hull_violations, 0, "{s:?}");
    assert!(
        s.kept_max <= 3 * s.should_know_max + 12,
        "kept_max {} vs largest should-know {}",
        s.kept_max,
        s.should_know_max
    );
}

#[test]
fn thousand_walking_peers_stay_consistent() {
    let mut cfg = config(1000, 1200.0, Mobility::RandomWaypoint, 0);
    cfg.speed = 5.0;
    let from = join_ticks(&cfg) + 50;
    cfg.ticks = from + 300;
    cfg.measure_from = Some(from);
    let r: Report = Sim::new(cfg).run();
    assert_eq!(r.summary.samples, 300);
    assert!(r.summary.should_know_mean >= 10.0, "{r:?}");
    assert!(
        r.summary.consistency >= 0.995,
        "mean consistency {}",
        r.summary.consistency
    );
    assert_eq!(r.summary.hull_violations_max, 0, "{r:?}");
    assert_eq!(r.summary.components_max, 1, "{r:?}");
    // No "everyone keeps everyone".
    assert!(
        r.summary.kept_max <= 3 * r.summary.should_know_max + 12,
        "{r:?}"
    );
}

#[test]
fn cost_per_peer_does_not_grow_with_the_world() {
    // Same density: 1 000 peers in 1200², 10 000 in (1200·√10)².
    let run = |peers: usize, side: f32| {
        let mut cfg = config(peers, side, Mobility::RandomWaypoint, 0);
        cfg.joins_per_tick = peers / 25;
        let from = join_ticks(&cfg) + 50;
        cfg.ticks = from + 40;
        cfg.measure_from = Some(from);
        cfg.voronoi = false;
        cfg.sample_every = 20;
        Sim::new(cfg).run()
    };
    let small = run(1000, 1200.0);
    let large = run(10_000, 1200.0 * 10f32.sqrt());
    let ratio = large.bytes_per_peer_per_tick / small.bytes_per_peer_per_tick;
    assert!(
        (0.85..=1.15).contains(&ratio),
        "bytes per peer per tick: 1k {} vs 10k {} (ratio {ratio})",
        small.bytes_per_peer_per_tick,
        large.bytes_per_peer_per_tick
    );
    assert!(large.summary.consistency >= 0.995, "{large:?}");
    // 400 joins a tick: views disagree while they land; the join probe must
    // leave no isolated group behind.
    assert_eq!(large.summary.components_max, 1, "{large:?}");
    assert_eq!(large.summary.hull_violations_max, 0, "{large:?}");
}

#[test]
fn survivors_repair_after_a_tenth_crash_at_once() {
    let cfg = config(1000, 1200.0, Mobility::Still, 0);
    let settle = join_ticks(&cfg) + 50;
    let timeout_ticks = cfg.peer.failure_timeout_ms / 100;
    let total = settle + timeout_ticks + 20;
    let mut sim = Sim::new(SimConfig {
        ticks: total,
        ..cfg
    });
    sim.run_ticks(settle);
    let crashed = sim.crash_random(100);
    assert_eq!(crashed.len(), 100);
    // Right after the crash the views still hold the dead.
    assert!(sim.sample().dead_kept > 0);
    sim.run_ticks(timeout_ticks + 20);
    let s = sim.sample();
    assert_eq!(s.peers, 900);
    assert_converged(&s, "after crash");
    for p in sim.peers() {
        for id in &crashed {
            assert!(!p.keeps(id), "{} still keeps crashed {}", p.id(), id);
        }
    }
}

#[test]
fn graceful_leave_leaves_no_dangling_neighbour() {
    let cfg = config(300, 700.0, Mobility::Still, 0);
    let settle = join_ticks(&cfg) + 50;
    let mut sim = Sim::new(SimConfig {
        ticks: settle + 100,
        ..cfg
    });
    sim.run_ticks(settle);
    let leavers: Vec<_> = sim.live_ids().into_iter().step_by(30).collect();
    for id in &leavers {
        sim.leave(id);
    }
    // Well inside the failure timeout: the goodbye did the work.
    sim.run_ticks(5);
    let s = sim.sample();
    assert_eq!(s.dead_kept, 0, "{s:?}");
    for p in sim.peers() {
        for id in &leavers {
            assert!(!p.keeps(id));
        }
    }
    sim.run_ticks(20);
    assert_converged(&sim.sample(), "after leaves");
}

/// Runs a still world to convergence, then measures messages over a window.
/// A still world whose peers join one by one at the given spots, `gap` ticks
/// apart, then run `settle` ticks.
fn still_world(points: &[Point], world: f32, gap: u64, settle: u64) -> Sim {
    let mut cfg = config(0, world, Mobility::Still, 1000);
    cfg.joins_per_tick = 1;
    let mut sim = Sim::new(cfg);
    for p in points {
        sim.spawn(*p);
        sim.run_ticks(gap);
    }
    sim.run_ticks(settle);
    sim
}

fn sparse_run(points: Vec<Point>, world: f32) -> (Sample, f64, f64) {
    let mut sim = still_world(&points, world, 1, 100);
    let s = sim.sample();
    let n = points.len() as f64;
    let window = |sim: &mut Sim| {
        let before = sim.messages_sent();
        sim.run_ticks(100);
        (sim.messages_sent() - before) as f64 / n / 10.0
    };
    let first = window(&mut sim);
    let second = window(&mut sim);
    (s, first, second)
}

#[test]
fn sparse_world_converges_without_looping() {
    let mut rng = peerworld_protocol::sim::Rng::new(5);
    let world = World::new(10_000.0, 10_000.0);
    let pts: Vec<Point> = (0..20)
        .map(|_| peerworld_protocol::mobility::random_point(world, &mut rng))
        .collect();
    let (s, first, second) = sparse_run(pts, 10_000.0);
    assert_eq!(s.voronoi_correct, 1.0, "{s:?}");
    assert_eq!(s.components, 1, "{s:?}");
    // Steady state: heartbeats and anti-entropy only, no repair loop.
    let bound = s.kept_mean * 1.5 + 5.0;
    assert!(
        first <= bound && second <= bound,
        "msgs/peer/s {first}, {second} (bound {bound})"
    );
}

#[test]
fn tight_cluster_converges_without_looping() {
    let mut rng = peerworld_protocol::sim::Rng::new(6);
    let pts: Vec<Point> = (0..50)
        .map(|_| {
            Point::new(
                5000.0 + (rng.f64() * 100.0) as f32,
                5000.0 + (rng.f64() * 100.0) as f32,
            )
        })
        .filter(|p| (f64::from(p.x) - 5050.0).hypot(f64::from(p.y) - 5050.0) <= 50.0)
        .chain((0..50).map(|i| Point::new(5040.0 + (i % 5) as f32, 5040.0 + (i / 5 % 5) as f32)))
        .take(50)
        .collect();
    assert_eq!(pts.len(), 50);
    let (s, first, second) = sparse_run(pts, 10_000.0);
    assert_eq!(s.voronoi_correct, 1.0, "{s:?}");
    assert_eq!(s.components, 1, "{s:?}");
    assert_eq!(s.consistency, 1.0, "{s:?}");
    let bound = s.kept_mean * 1.5 + 5.0;
    assert!(
        first <= bound && second <= bound,
        "msgs/peer/s {first}, {second} (bound {bound})"
    );
}

fn small_world(points: &[(f32, f32)], world: f32) -> Sample {
    let points: Vec<Point> = points.iter().map(|&(x, y)| Point::new(x, y)).collect();
    still_world(&points, world, 2, 60).sample()
}

#[test]
fn worlds_of_one_two_and_three_peers_reach_full_awareness_in_one_component() {
    let s = small_world(&[(10.0, 10.0)], 1000.0);
    assert_eq!((s.peers, s.components, s.consistency), (1, 1, 1.0));
    let s = small_world(&[(10.0, 10.0), (60.0, 10.0)], 1000.0);
    assert_converged(&s, "two peers");
    assert!(s.should_know_mean >= 1.0);
    let s = small_world(&[(10.0, 10.0), (60.0, 10.0), (600.0, 700.0)], 1000.0);
    assert_converged(&s, "three peers");
}

#[test]
fn peers_on_the_same_spot_converge() {
    let pts = [
        (500.0, 500.0),
        (500.0, 500.0),
        (500.0, 500.0),
        (520.0, 500.0),
        (480.0, 530.0),
        (500.0, 500.0),
    ];
    let s = small_world(&pts, 1000.0);
    assert_converged(&s, "same spot");
    assert!(s.should_know_mean >= 4.0);
}

#[test]
fn peers_across_the_torus_seam_know_each_other() {
    // Two groups on either side of the corner seam know each other.
    let pts = [
        (5.0, 5.0),
        (995.0, 5.0),
        (5.0, 995.0),
        (995.0, 995.0),
        (40.0, 20.0),
        (960.0, 980.0),
        (20.0, 960.0),
    ];
    let s = small_world(&pts, 1000.0);
    assert_converged(&s, "seam");
    assert!(s.should_know_mean >= 5.0, "{s:?}");
}

#[test]
fn integer_grid_positions_converge() {
    // Cocircular points everywhere: a regular grid.
    let pts: Vec<(f32, f32)> = (0..36)
        .map(|i| (100.0 + (i % 6) as f32 * 50.0, 100.0 + (i / 6) as f32 * 50.0))
        .collect();
    let s = small_world(&pts, 1000.0);
    assert_converged(&s, "grid");
}

#[test]
fn same_seed_gives_identical_reports() {
    let run = || {
        let mut cfg = config(300, 700.0, Mobility::RandomWaypoint, 120);
        cfg.churn = 0.002;
        cfg.loss = 0.05;
        Sim::new(cfg).run()
    };
    let a = run();
    let b = run();
    assert!(a.summary.samples > 0);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn churn_keeps_the_world_connected() {
    let mut cfg = config(500, 850.0, Mobility::RandomWaypoint, 0);
    cfg.churn = 0.001; // 0.5 leavers per tick
    let from = join_ticks(&cfg) + 50;
    cfg.ticks = from + 200;
    cfg.measure_from = Some(from);
    let r = Sim::new(cfg).run();
    assert!(r.summary.should_know_mean >= 10.0, "{r:?}");
    assert!(r.summary.consistency >= 0.99, "{r:?}");
    assert!(r.summary.components <= 1.05, "{r:?}");
}

#[test]
fn teleport_rejoins_at_the_new_place() {
    let mut cfg = config(300, 700.0, Mobility::Still, 0);
    cfg.peer.teleport_distance = 200.0;
    let settle = join_ticks(&cfg) + 50;
    let mut sim = Sim::new(SimConfig {
        ticks: settle + 200,
        ..cfg
    });
    sim.run_ticks(settle);
    let id = sim.live_ids()[7];
    let before = sim.peer(&id).unwrap().info().pos;
    let target = Point::new((before.x + 350.0) % 700.0, (before.y + 350.0) % 700.0);
    let joins = sim.report().joins;
    sim.move_peer(&id, target);
    sim.run_ticks(30);
    let s = sim.sample();
    assert_converged(&s, "after teleport");
    assert_eq!(sim.report().joins, joins + 1, "the jump re-joined");
    assert_eq!(sim.peer(&id).unwrap().info().pos, target);
}

#[test]
fn walkers_that_teleport_now_and_then_stay_in_one_world() {
    // About one jump to a random spot per tick, across a world of 400 walkers
    // at 100 ms latency: a jump is a join at the new place that keeps the
    // old links until the reply, so nobody is stranded.
    for seed in [3, 4] {
        let mut cfg = config(400, 800.0, Mobility::RandomWaypoint, 0);
        cfg.seed = seed;
        cfg.latency_ms = 100;
        cfg.teleport = 0.0025;
        cfg.ticks = join_ticks(&cfg) + 50 + 150;
        cfg.sample_every = 5;
        cfg.voronoi = false;
        let r = Sim::new(cfg).run();
        let t = &r.summary;
        assert_eq!(t.components_max, 1, "seed {seed}: {r:?}");
        assert!(t.consistency >= 0.995, "seed {seed}: {r:?}");
        assert!(t.consistency_min >= 0.99, "seed {seed}: {r:?}");
        assert!(r.teleports >= 100, "seed {seed}: {r:?}");
        assert_eq!(r.teleports_unsettled_2s, 0, "seed {seed}: stranded {r:?}");
    }
}

#[test]
fn a_partition_longer_than_the_failure_timeout_heals_after_the_cut_ends() {
    // Still peers (walkers would carry news across the cut): 10 s with the
    // two halves of the world cut apart, then 10 s to heal.
    let mut cfg = config(300, 700.0, Mobility::Still, 0);
    cfg.latency_ms = 50;
    let cut = join_ticks(&cfg) + 50;
    cfg.partition = Some((cut, cut + 100));
    cfg.ticks = cut + 200;
    cfg.measure_from = Some(cut + 199);
    let mut sim = Sim::new(cfg);
    sim.run_ticks(cut + 90);
    assert!(sim.sample().components >= 2, "the cut splits the world");
    sim.run_ticks(110);
    assert_converged(&sim.sample(), "10 s after the partition healed");
}

#[test]
fn loss_of_position_updates_is_tolerated() {
    let mut cfg = config(500, 850.0, Mobility::RandomWaypoint, 0);
    cfg.loss = 0.1;
    let from = join_ticks(&cfg) + 50;
    cfg.ticks = from + 100;
    cfg.measure_from = Some(from);
    let r = Sim::new(cfg).run();
    assert!(r.summary.consistency >= 0.99, "{r:?}");
    assert_eq!(r.summary.components_max, 1, "{r:?}");
}

#[test]
fn two_worlds_in_the_same_coordinates_merge_once_one_peer_is_given_the_others_address() {
    // 500 + 500 walkers in one 1200 × 1200 square at 100 ms latency, each
    // world unaware of the other until one peer probes through a peer of
    // the other world.
    let mut cfg = config(1000, 1200.0, Mobility::RandomWaypoint, 0);
    cfg.seed = 5;
    cfg.latency_ms = 100;
    cfg.voronoi = false;
    let merge = join_ticks(&cfg) + 20;
    cfg.merge_at = Some(merge);
    cfg.measure_from = Some(merge - 20);
    cfg.sample_every = 10;
    cfg.ticks = merge + 150;
    let r = Sim::new(cfg).run();
    assert_eq!(r.summary.components_max, 2, "apart before: {r:?}");
    assert!(r.summary.consistency_min < 0.6, "unaware before: {r:?}");
    let after = r.merged_after_s.expect("the two worlds never merged");
    assert!(after <= 90.0, "merged only after {after} s");
}

#[test]
fn an_adaptive_radius_keeps_a_crowd_small_and_aware() {
    // Half of 600 still peers walk into a plaza 60 units wide (30 around
    // the centre) and stay: with the fixed radius each of them keeps the
    // whole crowd; the adaptive radius shrinks to keep at most 40 within
    // reach, and awareness holds for the radius each has now.
    let run = |mode: RadiusMode, crowd: f64, mobility: Mobility| {
        let mut cfg = config(600, 930.0, mobility, 0);
        cfg.crowd = crowd;
        cfg.latency_ms = 50;
        cfg.voronoi = false;
        cfg.peer.radius_mode = mode;
        // The farthest walk to the plaza is about 650 units at 5 per tick.
        let from = join_ticks(&cfg) + 150;
        cfg.ticks = from + 50;
        cfg.measure_from = Some(from);
        cfg.sample_every = 10;
        Sim::new(cfg).run()
    };
    let fixed = run(RadiusMode::Fixed, 0.5, Mobility::Still);
    assert!(fixed.summary.kept_max >= 250, "fixed: {fixed:?}");
    let r = run(RadiusMode::Adaptive, 0.5, Mobility::Still);
    let t = &r.summary;
    assert!(t.kept_max <= 60, "adaptive: {r:?}");
    assert!(t.consistency >= 0.999, "adaptive: {r:?}");
    assert_eq!(t.components_max, 1, "adaptive: {r:?}");
    // Settled, nobody greets anybody (two peers out of each other's range
    // once bounced hellos for ever: 758 B per peer per tick of hellos).
    let hellos = r.bytes_by_kind.get("hello").copied().unwrap_or(0.0);
    assert!(hellos <= 10.0, "{hellos} B of hellos per peer per tick");
    // The crowd costs at most twice what the same peers cost walking apart.
    let apart = run(RadiusMode::Adaptive, 0.0, Mobility::RandomWaypoint);
    let crowd = r.crowd_bytes_per_peer_per_tick.unwrap();
    assert!(
        crowd <= 2.0 * apart.bytes_per_peer_per_tick,
        "crowd {crowd} B vs apart {} B per peer per tick",
        apart.bytes_per_peer_per_tick
    );
}

#[test]
fn honest_walkers_stay_aware_of_each_other_among_liars() {
    // One peer in twenty falsifies every record it relays (positions,
    // radii, addresses, ids) and invents peers next to whoever it tells.
    // Invented records close to a peer took the enclosing places of its
    // real neighbours (99.2 % at 1 000 peers), and their expiry made every
    // honest neighbour digest all its enclosing peers each round.
    // (One seed: liars make the simulation several times slower.)
    let mut cfg = walkers(400, 760.0, 5, 100, 5);
    cfg.liars = 0.05;
    let r = Sim::new(cfg).run();
    let t = &r.summary;
    assert!(t.should_know_mean >= 10.0, "{r:?}");
    assert_eq!(t.components_max, 1, "{r:?}");
    assert!(t.consistency >= 0.999, "{r:?}");
}

#[test]
fn chat_lines_reach_everyone_within_the_speakers_radius_while_everyone_walks() {
    // Each peer speaks about once every 5 s; a line must reach the peers
    // within the speaker's radius (true positions when it spoke), once.
    for seed in [2, 3] {
        let mut cfg = walkers(500, 850.0, seed, 100, 10);
        cfg.chat = 0.02;
        let r = Sim::new(cfg).run();
        assert!(r.summary.should_know_mean >= 10.0, "{r:?}");
        let delivery = r.chat_delivery.expect("lines were said");
        assert!(delivery >= 0.999, "seed {seed}: delivery {delivery}: {r:?}");
        assert!(r.chat_duplicates.unwrap_or(0.0) <= 0.01, "{r:?}");
    }
}

#[test]
fn a_settled_world_of_ten_thousand_routes_every_lookup_to_its_owner_within_log2_n_hops() {
    // 10 000 still peers at the density of 1 000 in 1200², 4 long links
    // each; one route in 500 peer-ticks to a random point for 30 ticks
    // (none in the last 50, so that every route is answered).
    let peers = 10_000;
    let side = 1200.0 * 10f32.sqrt();
    let mut cfg = config(peers, side, Mobility::Still, 0);
    cfg.joins_per_tick = 200;
    cfg.latency_ms = 100;
    cfg.peer.long_links = 4;
    cfg.lookups = 0.002;
    let from = join_ticks(&cfg) + 50;
    cfg.ticks = from + 80;
    cfg.measure_from = Some(from);
    cfg.voronoi = false;
    cfg.sample_every = 80;
    let r = Sim::new(cfg).run();
    let hops = r.route_hops_mean.expect("routes were sent");
    assert!(hops <= (peers as f64).log2(), "{hops:.2} hops: {r:?}");
    assert_eq!(r.lookup_success, Some(1.0), "{r:?}");
    let links = r.long_links_mean.expect("links");
    assert!(links >= 3.99, "{links} long links per peer: {r:?}");
    assert_eq!(r.long_links_dead, Some(0));
    assert!(r.incoming_links_max.is_some_and(|m| m <= 8), "{r:?}");
    // Log-uniform lengths.
    assert!(r.long_link_len_log_ks.is_some_and(|d| d < 0.1), "{r:?}");
}

#[test]
fn lookups_find_every_record_while_everyone_walks_and_churns() {
    let mut cfg = walkers(1000, 1200.0, 3, 200, 50);
    cfg.churn = 0.002;
    cfg.peer.long_links = 4;
    cfg.records = 300;
    cfg.lookups = 0.01;
    let r = Sim::new(cfg).run();
    let ok = r.lookup_success.expect("lookups were made");
    assert!(ok >= 0.999, "lookup success {ok}: {r:?}");
    assert!(r.records_stored.is_some_and(|n| n >= 280), "{r:?}");
    assert_eq!(r.records_lost, Some(0), "{r:?}");
}

#[test]
fn records_keep_three_holders_when_a_tenth_of_the_peers_crash_at_once() {
    use peerworld_protocol::record::RecordKey;
    let mut cfg = config(1000, 1200.0, Mobility::Still, 0);
    cfg.latency_ms = 100;
    cfg.peer.long_links = 4;
    cfg.records = 300;
    cfg.voronoi = false;
    let from = join_ticks(&cfg) + 50;
    cfg.measure_from = Some(from);
    cfg.ticks = from + 200;
    let timeout_ticks = cfg.peer.failure_timeout_ms / 100;
    let world = cfg.peer.world;
    let mut sim = Sim::new(cfg);
    sim.run_ticks(from + 30);
    assert_eq!(sim.crash_random(100).len(), 100);
    // The failure timeout, then three seconds.
    sim.run_ticks(timeout_ticks + 30);
    let peers: Vec<_> = sim.peers().collect();
    let (mut full, mut owned) = (0, 0);
    for n in 0..300 {
        let key = RecordKey::of(&format!("record {n}"));
        let p = key.point(world);
        let mut near: Vec<_> = peers
            .iter()
            .map(|q| (world.distance(q.info().pos, p), q))
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        let holds = |q: &&peerworld_protocol::peer::Peer| q.records().any(|r| r.key == key);
        let held: Vec<bool> = near.iter().take(3).map(|(_, q)| holds(q)).collect();
        full += usize::from(held.iter().all(|h| *h));
        owned += usize::from(held[0]);
    }
    assert!(owned >= 299, "the owner holds {owned} of 300");
    assert!(full >= 299, "the three nearest hold {full} of 300");
}

//! `peerworld-node swarm`: N nodes in this process over loopback QUIC.

use std::time::Duration;

use clap::Args;
use peerworld_node::swarm::{self, RunPlan, SwarmConfig};
use peerworld_protocol::World;

use peerworld_node::args::{heartbeat_ms, parse_world};

/// Flags of `swarm`.
#[derive(Args, Debug)]
pub struct SwarmArgs {
    /// Nodes to start.
    #[arg(long, default_value_t = 50)]
    peers: usize,
    /// Measured seconds (after the joins settle).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Awareness radius.
    #[arg(long, default_value_t = 300.0)]
    radius: f32,
    /// World W,H [default: square, 50 000 square units per node, which puts
    /// about five nodes within radius 300].
    #[arg(long, value_parser = parse_world)]
    world: Option<World>,
    /// Walking speed, units per second (0: still).
    #[arg(long, default_value_t = 30.0)]
    speed: f32,
    /// Crash this many nodes (silently: no goodbye) ...
    #[arg(long, default_value_t = 0)]
    kill: usize,
    /// ... this many seconds into the measured window.
    #[arg(long, default_value_t = 5.0)]
    kill_at: f64,
    /// Seconds between the last join and the first sample.
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
    /// Liveness period in milliseconds (pings, motion refresh; failure
    /// timeout three, anti-entropy two of them), as `run --heartbeat-ms`.
    #[arg(long, default_value_t = 1_000, value_parser = heartbeat_ms)]
    heartbeat_ms: u64,
    /// Nodes started per second.
    #[arg(long, default_value_t = 50.0)]
    joins_per_s: f64,
    /// Seed of positions, walks and crashes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON object at the end (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Runs the swarm and prints the report.
pub fn run(a: SwarmArgs) -> anyhow::Result<()> {
    if a.peers == 0 {
        anyhow::bail!("--peers must be at least 1");
    }
    if !(a.duration.is_finite() && a.duration > 0.0 && a.settle >= 0.0 && a.kill_at >= 0.0) {
        anyhow::bail!("--duration must be positive; --settle and --kill-at not negative");
    }
    if a.kill >= a.peers {
        anyhow::bail!("--kill must leave at least one node alive");
    }
    let side = SwarmConfig::side_for(a.peers, 50_000.0);
    let world = a.world.unwrap_or(World::new(side, side));
    let (w, h) = (world.width, world.height);
    let mut cfg = SwarmConfig::new(a.peers, world, a.radius);
    cfg.overlay = cfg.overlay.with_heartbeat(a.heartbeat_ms);
    cfg.speed = a.speed;
    cfg.seed = a.seed;
    cfg.joins_per_s = a.joins_per_s;
    let plan = RunPlan {
        duration: Duration::from_secs_f64(a.duration),
        settle: Duration::from_secs_f64(a.settle),
        kill: a.kill,
        kill_at: Duration::from_secs_f64(a.kill_at),
        join_timeout: Duration::from_secs(60 + a.peers as u64 / 5),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()?;
    let report = rt.block_on(swarm::run(&cfg, &plan, |line| eprintln!("{line}")))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let s = &report.summary;
        println!(
            "peers                 {} ({} alive)",
            report.peers, report.alive
        );
        println!("world                 {w} x {h}, radius {}", a.radius);
        println!(
            "measured              {:.1} s after joins took {:.1} s ({} of {} joined)",
            report.duration_s, report.join_s, report.joined, report.peers
        );
        println!(
            "consistency           {:.5} (min {:.5}), should-know {:.2}",
            s.consistency, s.consistency_min, s.should_know_mean
        );
        println!(
            "components            {:.2} (max {})",
            s.components, s.components_max
        );
        println!(
            "hull violations       {:.2} (max {})",
            s.hull_violations, s.hull_violations_max
        );
        println!(
            "voronoi correct       {:.4} (min {:.4})",
            s.voronoi_correct, s.voronoi_correct_min
        );
        println!(
            "kept                  {:.1} (max {})",
            s.kept_mean, s.kept_max
        );
        println!("drift                 {:.2}", s.drift_mean);
        println!("msgs/node/s           {:.1}", report.msgs_per_peer_per_s);
        println!("bytes/node/s          {:.0}", report.bytes_per_peer_per_s);
        println!("cpu                   {:.2} cores", report.cpu_cores);
        println!(
            "peak rss              {:.1} MB ({:.2} MB/node)",
            report.peak_rss_mb, report.rss_per_peer_mb
        );
        if report.killed > 0 {
            println!(
                "killed                {}, repaired in {:?} s",
                report.killed, report.repair_s
            );
        }
    }
    Ok(())
}

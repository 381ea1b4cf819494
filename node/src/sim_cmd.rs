//! `peerworld-node sim`: reads the arguments and any trace file, drives the
//! (pure) simulator, measures wall time and prints the report.

use peerworld_protocol::message::MAX_RADIUS;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use peerworld_node::args::{
    RadiusModeArg, heartbeat_ms, parse_neighbours, parse_range, parse_world,
};
use peerworld_protocol::World;
use peerworld_protocol::mobility::Mobility;
use peerworld_protocol::sim::{Bootstrap, Report, Sim, SimConfig, TICK_MS, Trace};

/// Arguments of `sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Number of peers (ignored with --trace).
    #[arg(long, default_value_t = 1000)]
    peers: usize,
    /// Ticks to run (a tick is 100 ms of virtual time).
    #[arg(long, default_value_t = 300)]
    ticks: u64,
    /// Walking speed in units per tick.
    #[arg(long, default_value_t = 5.0)]
    speed: f64,
    /// Awareness radius.
    #[arg(long, default_value_t = 100.0)]
    radius: f32,
    /// Detection buffer beyond the radius.
    #[arg(long, default_value_t = 32.0)]
    buffer: f32,
    /// Dead reckoning tolerance (world units): a peer announces its motion
    /// again when its true position leaves the extrapolation by more than
    /// this. 0 announces every step.
    #[arg(long, default_value_t = 2.0)]
    epsilon: f32,
    /// Liveness period in milliseconds (pings, motion refresh; failure
    /// timeout three, anti-entropy two of them), as `run --heartbeat-ms`.
    #[arg(long, default_value_t = 1_000, value_parser = heartbeat_ms)]
    heartbeat_ms: u64,
    /// World size as W,H.
    #[arg(long, default_value = "1200,1200", value_parser = parse_world)]
    world: World,
    /// Threads that run the peers side by side (default: every core). The
    /// results are the same for any number; only the speed changes.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Per peer per tick probability of leaving (half crash, half goodbye).
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Per peer per tick probability of jumping to a random spot.
    #[arg(long, default_value_t = 0.0)]
    teleport: f64,
    /// Drop every message between the two halves of the world (a vertical
    /// cut at W/2, and the seam) from tick T1 to tick T2: T1..T2.
    #[arg(long, value_parser = parse_ticks)]
    partition: Option<(u64, u64)>,
    /// fixed (as VON, the default: research runs compare), or adaptive (the
    /// radius shrinks in crowds to keep the peers within reach inside
    /// --neighbours, and grows back to --radius).
    #[arg(long, value_enum, default_value_t = RadiusModeArg::Fixed)]
    radius_mode: RadiusModeArg,
    /// Adaptive radius: fewest and most peers within reach, MIN..MAX.
    #[arg(long, default_value = "8..40", value_parser = parse_neighbours)]
    neighbours: (usize, usize),
    /// Share of the peers that walk into a plaza (30 units around the
    /// world's centre, each to its own spot) and stay; the report gives
    /// `crowd_bytes_per_peer_per_tick`.
    #[arg(long, default_value_t = 0.0)]
    crowd: f64,
    /// Share of the peers that lie: every record they relay (in `Discover`
    /// and `JoinReply`) is falsified (position, radius, address or id) and
    /// each such message adds invented peers near its receiver. The report
    /// measures the honest peers among themselves.
    #[arg(long, default_value_t = 0.0)]
    liars: f64,
    /// Per peer per tick probability of saying a chat line (in the
    /// measured window). The report adds `chat_delivery` (share of the
    /// peers within the speaker's radius that got it) and `chat_duplicates`.
    #[arg(long, default_value_t = 0.0)]
    chat: f64,
    /// World objects placed at random points by random peers once all
    /// have joined, each edited by its author about once a minute. The
    /// report adds `objects_readable` (at their owner), `objects_visible`
    /// (by every peer within radius), `objects_lost`, `object_edits`,
    /// `object_handovers_per_tick`, `object_copies_per_peer_per_tick` and
    /// `object_copies_stale_share`.
    #[arg(long, default_value_t = 0)]
    objects: usize,
    /// Long-range links per peer (0, the default: none, as VON). The report
    /// adds `long_links_mean`, `long_links_dead`, `incoming_links_max` and
    /// `long_link_len_log_ks`.
    #[arg(long, default_value_t = 0)]
    long_links: usize,
    /// Per peer per tick probability of routing to a random point (in the
    /// measured window). The report adds `route_hops_mean`,
    /// `route_hops_p99` and `lookup_success` (the share that ended at the
    /// point's true owner).
    #[arg(long, default_value_t = 0.0)]
    lookups: f64,
    /// Key records put by random peers as the measured window opens; the
    /// lookups then ask for them by name (`lookup_success`: the newest
    /// version came back). The report adds `records_stored` and
    /// `records_lost` (stored, and held by no live peer at the end).
    #[arg(long, default_value_t = 0)]
    records: usize,
    /// Two worlds in the same coordinates until tick T (newcomers join
    /// their own, alternately); at T one peer of the first is given a peer
    /// of the second and probes through it then and every 30 s. The report
    /// gives `merged_after_s` (to one component and 99.9 % consistency).
    #[arg(long, value_name = "T")]
    merge_at: Option<u64>,
    /// Replay a movement trace (CSV `peer,step,x,y`, plain or .xz).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Base one-way latency in milliseconds.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
    /// Latency spread in milliseconds (per link, and again per datagram).
    #[arg(long)]
    jitter_ms: Option<u64>,
    /// Probability that a datagram (position update, ping) is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// First tick averaged (default: 50 ticks after the last initial join).
    #[arg(long)]
    measure_from: Option<u64>,
    /// Mobility model.
    #[arg(long, value_enum, default_value_t = MobilityArg::Waypoint)]
    mobility: MobilityArg,
    /// Initial joins per tick (0: all at once).
    #[arg(long, default_value_t = 20)]
    joins_per_tick: usize,
    /// Newcomers join through a random live peer instead of the oldest one.
    #[arg(long)]
    random_bootstrap: bool,
    /// Sample the invariants every this many ticks.
    #[arg(long, default_value_t = 1)]
    sample_every: u64,
    /// Skip the Voronoi-correctness check (one global triangulation per sample).
    #[arg(long)]
    no_voronoi: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write every sample to FILE, one JSON object a line with its tick.
    #[arg(long, value_name = "FILE")]
    series: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MobilityArg {
    /// Nobody moves.
    Still,
    /// Random waypoint.
    Waypoint,
    /// Random waypoint biased toward a few hot spots.
    Hotspots,
    /// Walks at --speed and turns every tick (heading ±30° per tick).
    Turning,
    /// Random waypoint that stops and goes (walks 2 s, stops 1 s on average).
    StopAndGo,
}

fn read_trace(path: &PathBuf) -> anyhow::Result<Trace> {
    let raw = std::fs::read(path).with_context(|| format!("reading trace {}", path.display()))?;
    let text = if raw.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
            .map_err(|e| anyhow::anyhow!("decompressing {}: {e:?}", path.display()))?;
        String::from_utf8(out).context("trace is not UTF-8")?
    } else {
        let mut s = String::new();
        raw.as_slice()
            .read_to_string(&mut s)
            .context("trace is not UTF-8")?;
        s
    };
    Ok(Trace::parse(&text)?)
}

/// Parses `T1..T2` (ticks, T1 < T2).
fn parse_ticks(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = parse_range(s, "T1..T2")?;
    if a >= b {
        return Err(format!("{s:?}: T1 must come before T2"));
    }
    Ok((a, b))
}

/// Runs the simulator as the arguments say.
pub fn run(a: SimArgs) -> anyhow::Result<()> {
    if ![
        a.churn, a.loss, a.teleport, a.crowd, a.liars, a.chat, a.lookups,
    ]
    .iter()
    .all(|p| (0.0..=1.0).contains(p))
    {
        bail!(
            "--churn, --loss, --teleport, --crowd, --liars, --chat and --lookups are probabilities in [0, 1]"
        );
    }
    if !(a.radius.is_finite()
        && a.radius > 0.0
        && a.radius <= MAX_RADIUS
        && a.speed.is_finite()
        && a.speed >= 0.0)
    {
        bail!("--radius must be positive and at most {MAX_RADIUS}, and --speed non-negative");
    }
    if !(a.epsilon.is_finite() && a.epsilon >= 0.0) {
        bail!("--epsilon must be zero or positive");
    }
    if a.trace.is_none() && a.peers == 0 {
        bail!("--peers must be at least 1");
    }
    let trace = a.trace.as_ref().map(read_trace).transpose()?;
    let mut cfg = SimConfig {
        peers: a.peers,
        ticks: a.ticks,
        speed: a.speed,
        mobility: match a.mobility {
            MobilityArg::Still => Mobility::Still,
            MobilityArg::Waypoint => Mobility::RandomWaypoint,
            MobilityArg::Hotspots => Mobility::HotSpots {
                spots: 5,
                spread: a.world.width.min(a.world.height) / 20.0,
            },
            MobilityArg::Turning => Mobility::TURNING,
            MobilityArg::StopAndGo => Mobility::STOP_AND_GO,
        },
        seed: a.seed,
        churn: a.churn,
        teleport: a.teleport,
        partition: a.partition,
        merge_at: a.merge_at,
        crowd: a.crowd,
        liars: a.liars,
        chat: a.chat,
        objects: a.objects,
        lookups: a.lookups,
        records: a.records,
        latency_ms: a.latency_ms,
        jitter_ms: a.jitter_ms.unwrap_or((a.latency_ms / 2).min(3)),
        loss: a.loss,
        joins_per_tick: a.joins_per_tick,
        bootstrap: if a.random_bootstrap {
            Bootstrap::Random
        } else {
            Bootstrap::Single
        },
        measure_from: a.measure_from,
        sample_every: a.sample_every.max(1),
        voronoi: !a.no_voronoi,
        trace,
        threads: a.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            usize::from,
        ),
        ..SimConfig::default()
    };
    cfg.peer = cfg.peer.with_heartbeat(a.heartbeat_ms);
    cfg.peer.world = a.world;
    cfg.peer.radius = a.radius;
    cfg.peer.buffer = a.buffer;
    cfg.peer.epsilon = a.epsilon;
    cfg.peer.radius_mode = a.radius_mode.into();
    cfg.peer.neighbours = a.neighbours;
    cfg.peer.long_links = a.long_links;

    let mut series = a
        .series
        .as_ref()
        .map(|p| {
            std::fs::File::create(p)
                .map(std::io::BufWriter::new)
                .with_context(|| format!("creating {}", p.display()))
        })
        .transpose()?;
    let mut sim = Sim::new(cfg);
    let start = Instant::now();
    let mut sample_time = Duration::ZERO;
    let mut last_progress = Instant::now();
    while sim.step() {
        if sim.should_sample() {
            let t = Instant::now();
            let s = sim.sample();
            sample_time += t.elapsed();
            sim.record(&s);
            if let Some(out) = series.as_mut() {
                let mut v = serde_json::to_value(&s)?;
                v.as_object_mut()
                    .expect("a sample is an object")
                    .insert("tick".into(), sim.tick().into());
                writeln!(out, "{v}")?;
            }
        }
        if last_progress.elapsed() > Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "tick {}/{}  peers {}  {:.1}s elapsed",
                sim.tick(),
                a.ticks,
                sim.live_ids().len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let mut report = sim.report();
    report.wall_s = wall;
    let step_s = (wall - sample_time.as_secs_f64()).max(1e-9);
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        let o = v.as_object_mut().expect("report is an object");
        o.insert(
            "duration_s".into(),
            (report.ticks as f64 * TICK_MS as f64 / 1000.0).into(),
        );
        o.insert("sample_wall_s".into(), sample_time.as_secs_f64().into());
        o.insert(
            "peer_ticks_per_s".into(),
            (report.peer_ticks as f64 / step_s).into(),
        );
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print_table(&report, sample_time.as_secs_f64(), step_s);
    }
    Ok(())
}

fn print_table(r: &Report, sample_s: f64, step_s: f64) {
    let pct = |x: f64| format!("{:.4} %", x * 100.0);
    let mut rows: Vec<(&str, String)> = vec![
        ("peers", r.peers.to_string()),
        (
            "ticks (measured from)",
            format!("{} ({})", r.ticks, r.measure_from),
        ),
        ("samples", r.summary.samples.to_string()),
        (
            "consistency mean / min",
            format!(
                "{} / {}",
                pct(r.summary.consistency),
                pct(r.summary.consistency_min)
            ),
        ),
        (
            "should-know per peer",
            format!(
                "{:.1} (max {})",
                r.summary.should_know_mean, r.summary.should_know_max
            ),
        ),
        (
            "kept per peer mean / max",
            format!("{:.1} / {}", r.summary.kept_mean, r.summary.kept_max),
        ),
        (
            "components mean / max",
            format!("{:.2} / {}", r.summary.components, r.summary.components_max),
        ),
        (
            "hull violations mean / max",
            format!(
                "{:.2} / {}",
                r.summary.hull_violations, r.summary.hull_violations_max
            ),
        ),
        (
            "voronoi correct mean / min",
            format!(
                "{} / {}",
                pct(r.summary.voronoi_correct),
                pct(r.summary.voronoi_correct_min)
            ),
        ),
        (
            "stale share mean / max",
            format!(
                "{} / {}",
                pct(r.summary.stale_share),
                pct(r.summary.stale_share_max)
            ),
        ),
        (
            "drift mean / worst",
            format!("{:.3} / {:.3}", r.summary.drift_mean, r.summary.drift_max),
        ),
        (
            "msgs per peer per s",
            format!("{:.1}", r.msgs_per_peer_per_s),
        ),
        (
            "bytes per peer per s / tick",
            format!(
                "{:.0} / {:.1}",
                r.bytes_per_peer_per_s, r.bytes_per_peer_per_tick
            ),
        ),
        (
            "motion announcements per peer per tick",
            format!("{:.3}", r.moves_per_peer_per_tick),
        ),
        ("join hops mean", format!("{:.2}", r.join_hops_mean)),
        ("join time mean", format!("{:.0} ms", r.join_time_ms_mean)),
        (
            "wall time (sampling)",
            format!("{:.2} s ({:.2} s)", r.wall_s, sample_s),
        ),
        (
            "peer-ticks per s (no sampling)",
            format!("{:.0}", r.peer_ticks as f64 / step_s),
        ),
    ];
    if r.teleports > 0 {
        rows.push((
            "teleports (unsettled at 2 s)",
            format!("{} ({})", r.teleports, r.teleports_unsettled_2s),
        ));
    }
    if let Some(b) = r.crowd_bytes_per_peer_per_tick {
        rows.push(("bytes per crowd peer per tick", format!("{b:.1}")));
    }
    if let Some(t) = r.merged_after_s {
        rows.push(("merged (1 component, 99.9 %) after", format!("{t:.1} s")));
    }
    if let (Some(m), Some(p), Some(ok)) = (r.route_hops_mean, r.route_hops_p99, r.lookup_success) {
        rows.push((
            "route hops mean / p99 (success)",
            format!("{m:.2} / {p:.0} ({:.3} %)", ok * 100.0),
        ));
    }
    if let (Some(m), Some(inc)) = (r.long_links_mean, r.incoming_links_max) {
        rows.push((
            "long links per peer (most incoming)",
            format!("{m:.2} ({inc})"),
        ));
    }
    for (k, v) in rows {
        println!("{k:<32} {v}");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::SimArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn threads_default_to_every_core_and_zero_is_refused() {
        let cli = Cli::try_parse_from(["sim"]).unwrap();
        assert_eq!(cli.sim.threads, None);
        let cli = Cli::try_parse_from(["sim", "--threads", "3"]).unwrap();
        assert_eq!(cli.sim.threads, Some(3));
        let e = Cli::try_parse_from(["sim", "--threads", "0"])
            .err()
            .expect("0 threads is refused");
        assert!(e.to_string().contains("--threads"), "{e}");
    }
}

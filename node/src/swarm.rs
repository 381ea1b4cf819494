//! Many nodes in one process over loopback QUIC (real endpoints, real TLS),
//! sampled against the ground truth with `peerworld_protocol::invariants`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use peerworld_protocol::invariants::{self, Kept, Options, Sample, Summary, Tally, TruePeer};
use peerworld_protocol::sim::Rng;
use peerworld_protocol::{Config, World};
use serde::Serialize;

use crate::{Error, Node, NodeConfig, NodeHandle, Walk};

/// How to run a swarm.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// Nodes.
    pub peers: usize,
    /// Overlay tunables (world, radius, timeouts) shared by every node.
    pub overlay: Config,
    /// Walking speed in units per second (0: still).
    pub speed: f32,
    /// Seed of positions, walks and the choice of crashed nodes.
    pub seed: u64,
    /// Nodes started per second (the first is the seed every other joins
    /// through).
    pub joins_per_s: f64,
    /// Loopback address to bind.
    pub ip: IpAddr,
}

impl SwarmConfig {
    /// `peers` nodes in `world` with awareness `radius`.
    pub fn new(peers: usize, world: World, radius: f32) -> Self {
        Self {
            peers,
            overlay: Config {
                world,
                radius,
                ..Config::default()
            },
            speed: 0.0,
            seed: 1,
            joins_per_s: 100.0,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// The side of a square world giving each node `area` square units
    /// (about five peers within radius 300 at 50 000).
    pub fn side_for(peers: usize, area: f64) -> f32 {
        (peers.max(1) as f64 * area).sqrt() as f32
    }
}

/// Running nodes and which of them are alive.
#[derive(Debug)]
pub struct Swarm {
    world: World,
    nodes: Vec<NodeHandle>,
    alive: Vec<bool>,
    rng: Rng,
}

impl Swarm {
    /// Starts the nodes (the first one alone, the rest through it) and
    /// returns once all are spawned; joins may still be in flight.
    pub async fn start(cfg: &SwarmConfig) -> Result<Self, Error> {
        let mut rng = Rng::new(cfg.seed);
        let mut nodes = Vec::with_capacity(cfg.peers);
        let gap = Duration::from_secs_f64(1.0 / cfg.joins_per_s.max(0.1));
        let walk = if cfg.speed > 0.0 {
            Walk::Random { speed: cfg.speed }
        } else {
            Walk::Still
        };
        for i in 0..cfg.peers {
            let mut nc = NodeConfig::new(SocketAddr::new(cfg.ip, 0));
            nc.overlay = cfg.overlay.clone();
            // Every node of a swarm shares one address.
            nc.max_links_per_ip = nc.max_links;
            nc.pos = Some(peerworld_protocol::mobility::random_point(
                cfg.overlay.world,
                &mut rng,
            ));
            nc.name = format!("bot-{i}");
            nc.walk = walk;
            nc.seed = rng.next_u64();
            if let Some(first) = nodes.first() {
                nc.bootstrap = vec![NodeHandle::local_addr(first)];
            }
            nodes.push(Node::spawn(nc)?);
            if i + 1 < cfg.peers {
                tokio::time::sleep(gap).await;
            }
        }
        Ok(Self {
            world: cfg.overlay.world,
            alive: vec![true; nodes.len()],
            nodes,
            rng,
        })
    }

    /// The nodes (dead ones included).
    pub fn nodes(&self) -> &[NodeHandle] {
        &self.nodes
    }

    /// How many nodes are alive.
    pub fn alive(&self) -> usize {
        self.alive.iter().filter(|a| **a).count()
    }

    /// Whether every live node has joined.
    pub fn all_joined(&self) -> bool {
        self.live().all(|n| {
            let s = n.snapshot();
            s.joined() && s.view.state != crate::PeerState::Joining
        })
    }

    fn live(&self) -> impl Iterator<Item = &NodeHandle> {
        self.nodes
            .iter()
            .zip(&self.alive)
            .filter(|(_, a)| **a)
            .map(|(n, _)| n)
    }

    /// The invariants now: every live node's own position is the truth,
    /// its neighbours are its view.
    pub fn sample(&self, opts: Options) -> Sample {
        let mut truth = Vec::new();
        let mut views = Vec::new();
        for node in self.live() {
            let s = node.snapshot();
            truth.push(TruePeer {
                id: s.view.me.id,
                pos: s.view.me.pos,
                radius: s.view.me.radius,
            });
            views.push(
                s.view
                    .neighbours
                    .iter()
                    .map(|n| Kept {
                        id: n.info.id,
                        pos: n.info.pos,
                        enclosing: n.enclosing,
                    })
                    .collect(),
            );
        }
        invariants::check(self.world, &truth, &views, opts)
    }

    /// Every node's own position now (`None` for dead ones).
    pub fn positions(&self) -> Vec<Option<peerworld_protocol::Point>> {
        self.nodes
            .iter()
            .zip(&self.alive)
            .map(|(n, a)| a.then(|| n.snapshot().view.me.pos))
            .collect()
    }

    /// Crashes `k` random live nodes (socket silenced, no goodbye); returns
    /// their indices.
    pub fn crash(&mut self, k: usize) -> Vec<usize> {
        let mut live: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.alive[i]).collect();
        let mut out = Vec::new();
        while out.len() < k && !live.is_empty() {
            let i = live.swap_remove(self.rng.below(live.len() as u64) as usize);
            self.nodes[i].crash();
            self.alive[i] = false;
            out.push(i);
        }
        out
    }

    /// Mean join hops of the live nodes that joined through forwarding.
    pub fn join_hops_mean(&self) -> f64 {
        let hops: Vec<u16> = self.live().filter_map(|n| n.snapshot().join_hops).collect();
        if hops.is_empty() {
            0.0
        } else {
            hops.iter().map(|&h| f64::from(h)).sum::<f64>() / hops.len() as f64
        }
    }

    /// The transport's and the overlay's counters summed over every node
    /// (dead ones included), by name.
    pub fn counters(&self) -> (BTreeMap<&'static str, u64>, BTreeMap<&'static str, u64>) {
        let mut transport = BTreeMap::new();
        let mut overlay = BTreeMap::new();
        for n in &self.nodes {
            for (name, _, v) in n.metrics().fields() {
                *transport.entry(name).or_insert(0) += v;
            }
            for (name, _, v) in n.snapshot().stats.fields() {
                *overlay.entry(name).or_insert(0) += v;
            }
        }
        (transport, overlay)
    }

    /// Decode errors counted by all nodes.
    pub fn decode_errors(&self) -> u64 {
        self.nodes.iter().map(|n| n.metrics().decode_errors).sum()
    }

    /// Leaves gracefully and waits for every node to stop.
    pub async fn shutdown(self) {
        for n in &self.nodes {
            n.shutdown();
        }
        for n in &self.nodes {
            let _ = tokio::time::timeout(Duration::from_secs(5), n.closed()).await;
        }
    }
}

/// What the `swarm` command measures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SwarmReport {
    /// Nodes started.
    pub peers: usize,
    /// Nodes alive at the end.
    pub alive: usize,
    /// Measured seconds (after the joins settled).
    pub duration_s: f64,
    /// Seconds from the first start until every node had joined.
    pub join_s: f64,
    /// Nodes joined at the end of the join phase (fewer than `peers` when
    /// the phase ran out of time).
    pub joined: usize,
    /// The invariants: means and worst samples.
    #[serde(flatten)]
    pub summary: Summary,
    /// Messages per node per second (measured window).
    pub msgs_per_peer_per_s: f64,
    /// Bytes per node per second (measured window).
    pub bytes_per_peer_per_s: f64,
    /// Bytes per node per 100 ms (the simulator's tick).
    pub bytes_per_peer_per_tick: f64,
    /// Mean join forwarding hops.
    pub join_hops_mean: f64,
    /// How fast the nodes really walked (mean distance per second between
    /// samples, over the measured window): under `--speed` when the
    /// machine cannot keep up.
    pub walked_per_s: f64,
    /// Frames that failed to decode (should be 0 among honest nodes).
    pub decode_errors: u64,
    /// Nodes crashed by `--kill`.
    pub killed: usize,
    /// Seconds after the crash until consistency was 1, one component and no
    /// view kept a dead node (None: never within the run, or no crash).
    pub repair_s: Option<f64>,
    /// Process CPU seconds over the measured window.
    pub cpu_s: f64,
    /// CPU use over the measured window, in cores.
    pub cpu_cores: f64,
    /// Peak resident memory of the process, MB.
    pub peak_rss_mb: f64,
    /// Peak resident memory per node, MB.
    pub rss_per_peer_mb: f64,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// The transport's counters (`/metrics` names without the prefix),
    /// summed over every node, over the measured window.
    pub transport: BTreeMap<&'static str, u64>,
    /// The overlay's counters, the same way.
    pub overlay: BTreeMap<&'static str, u64>,
}

/// The run's plan.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// Measured seconds after the joins settle.
    pub duration: Duration,
    /// Seconds to wait after every node joined before measuring.
    pub settle: Duration,
    /// Crash this many nodes ...
    pub kill: usize,
    /// ... this long into the measured window.
    pub kill_at: Duration,
    /// Give up waiting for joins after this long.
    pub join_timeout: Duration,
}

/// Runs a whole swarm: start, settle, sample every second, optionally crash
/// some nodes, report. `progress` gets one line per second.
pub async fn run(
    cfg: &SwarmConfig,
    plan: &RunPlan,
    mut progress: impl FnMut(&str),
) -> Result<SwarmReport, Error> {
    let t0 = Instant::now();
    let mut swarm = Swarm::start(cfg).await?;
    while !swarm.all_joined() && t0.elapsed() < plan.join_timeout {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let join_s = t0.elapsed().as_secs_f64();
    let joined = swarm.live().filter(|n| n.snapshot().joined()).count();
    progress(&format!(
        "{} nodes started, {joined} joined after {join_s:.1} s; settling {} s",
        cfg.peers,
        plan.settle.as_secs()
    ));
    tokio::time::sleep(plan.settle).await;

    let opts = Options {
        stale_tolerance: f64::from(cfg.speed) * 0.2 + 1.0,
        voronoi: true,
    };
    let mut tally = Tally::default();
    let (transport0, overlay0) = swarm.counters();
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut killed_at: Option<Instant> = None;
    let mut killed = 0;
    let mut repair_s = None;
    let mut next = start;
    let mut second = 0u64;
    let mut walked = (0.0f64, 0usize);
    let mut last_pos = swarm.positions();
    let mut last_at = Instant::now();
    loop {
        next += Duration::from_secs(1);
        tokio::time::sleep_until(next.into()).await;
        second += 1;
        if plan.kill > 0 && killed_at.is_none() && start.elapsed() >= plan.kill_at {
            killed = swarm.crash(plan.kill).len();
            killed_at = Some(Instant::now());
            progress(&format!("crashed {killed} nodes"));
        }
        let s = swarm.sample(opts);
        tally.record(&s);
        let pos = swarm.positions();
        let dt = last_at.elapsed().as_secs_f64();
        last_at = Instant::now();
        let mut w = (0.0, 0usize);
        for (a, b) in last_pos.iter().zip(&pos) {
            if let (Some(a), Some(b)) = (a, b) {
                w.0 += cfg.overlay.world.distance(*a, *b) / dt;
                w.1 += 1;
            }
        }
        walked.0 += w.0;
        walked.1 += w.1;
        last_pos = pos;
        if let Some(at) = killed_at
            && repair_s.is_none()
            && s.consistency >= 1.0
            && s.components == 1
            && s.dead_kept == 0
        {
            repair_s = Some(at.elapsed().as_secs_f64());
        }
        progress(&format!(
            "t={second:>3}s walked={:.1}/s live={} consistency={:.4} components={} hull={} voronoi={:.3} kept={:.1} dead_kept={}",
            w.0 / w.1.max(1) as f64,
            s.peers,
            s.consistency,
            s.components,
            s.hull_violations,
            s.voronoi_correct,
            s.kept_mean,
            s.dead_kept
        ));
        if start.elapsed() + Duration::from_millis(500) >= plan.duration {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (transport1, overlay1) = swarm.counters();
    let window = |end: BTreeMap<&'static str, u64>, start: &BTreeMap<&'static str, u64>| {
        end.into_iter()
            .map(|(k, v)| (k, v.saturating_sub(start.get(k).copied().unwrap_or(0))))
            .collect::<BTreeMap<_, _>>()
    };
    let transport = window(transport1, &transport0);
    // The rates come from the same reading of the counters as `transport`
    // (two readings a moment apart disagreed while nodes kept sending).
    let (msgs, bytes) = (transport["msgs_sent"], transport["bytes_sent"]);
    let node_secs = cfg.peers as f64 * secs;
    let peak = peak_rss_mb();
    let report = SwarmReport {
        peers: cfg.peers,
        alive: swarm.alive(),
        duration_s: secs,
        join_s,
        joined,
        summary: tally.summary(),
        msgs_per_peer_per_s: msgs as f64 / node_secs,
        bytes_per_peer_per_s: bytes as f64 / node_secs,
        bytes_per_peer_per_tick: bytes as f64 / node_secs / 10.0,
        join_hops_mean: swarm.join_hops_mean(),
        walked_per_s: walked.0 / walked.1.max(1) as f64,
        decode_errors: swarm.decode_errors(),
        killed,
        repair_s,
        cpu_s: cpu,
        cpu_cores: cpu / secs,
        peak_rss_mb: peak,
        rss_per_peer_mb: peak / cfg.peers.max(1) as f64,
        wall_s: t0.elapsed().as_secs_f64(),
        transport,
        overlay: window(overlay1, &overlay0),
    };
    swarm.shutdown().await;
    Ok(report)
}

/// CPU seconds used by this process (user + system), from /proc; 0 elsewhere.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 per second on Linux).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process in MB, from /proc; 0 elsewhere.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

//! `peerworld-node run`: one node over QUIC, configured by flags, environment
//! variables and an optional TOML file (flag beats env beats file beats
//! default).

use peerworld_protocol::message::MAX_RADIUS;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use peerworld_node::args::{RadiusModeArg, check_heartbeat, parse_neighbours, parse_pair};
use peerworld_node::{Identity, Node, NodeConfig, Walk, status};
use peerworld_protocol::{Config, Point, World};
use serde::Deserialize;
use tracing::info;

/// Self-motion of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalkArg {
    /// Stand still.
    Still,
    /// Wander (random waypoint at `--speed`).
    Random,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `run`; each also reads `PEERWORLD_<FLAG>` from the environment.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// UDP address to listen on [default: 0.0.0.0:4433].
    #[arg(long, env = "PEERWORLD_LISTEN")]
    listen: Option<SocketAddr>,
    /// A node of the world to join, HOST:PORT (repeatable; env: comma-separated).
    /// Without one, this node starts a new world.
    #[arg(long, env = "PEERWORLD_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// Address others should dial [default: the listen address, or the one the
    /// bootstrap peer observes when listening on 0.0.0.0].
    #[arg(long, env = "PEERWORLD_ADVERTISE")]
    advertise: Option<SocketAddr>,
    /// Start position X,Y [default: random].
    #[arg(long, env = "PEERWORLD_POS", value_parser = parse_pair)]
    pos: Option<(f32, f32)>,
    /// Awareness radius in world units [default: 100]; with the adaptive
    /// mode, the largest.
    #[arg(long, env = "PEERWORLD_RADIUS")]
    radius: Option<f32>,
    /// fixed, or adaptive: the radius shrinks in crowds to keep the peers
    /// within reach inside --neighbours, and grows back [default: adaptive].
    #[arg(long, env = "PEERWORLD_RADIUS_MODE")]
    radius_mode: Option<RadiusModeArg>,
    /// Adaptive radius: fewest and most peers within reach, MIN..MAX
    /// [default: 8..40].
    #[arg(long, env = "PEERWORLD_NEIGHBOURS", value_parser = parse_neighbours)]
    neighbours: Option<(usize, usize)>,
    /// Long-range links kept (Kleinberg/VoroNet: far routes take about
    /// log N hops instead of about √N) [default: 4].
    #[arg(long, env = "PEERWORLD_LONG_LINKS")]
    long_links: Option<usize>,
    /// Dead reckoning tolerance in world units: the node announces its
    /// motion again when its position leaves what the neighbours
    /// extrapolate by more than this; 0 announces every step [default: 2].
    #[arg(long, env = "PEERWORLD_EPSILON")]
    epsilon: Option<f32>,
    /// Liveness period in milliseconds: a ping to a neighbour sent nothing
    /// this long, a walker's motion refreshed as often, a silent neighbour
    /// dropped after three, an anti-entropy digest every two. Longer costs
    /// fewer messages and notices crashes later [default: 1000; 250..=30000].
    #[arg(long, env = "PEERWORLD_HEARTBEAT_MS")]
    heartbeat_ms: Option<u64>,
    /// Display name [default: node-<short id>].
    #[arg(long, env = "PEERWORLD_NAME")]
    name: Option<String>,
    /// Serve /status, /metrics and /healthz on this TCP address.
    #[arg(long, env = "PEERWORLD_STATUS")]
    status: Option<SocketAddr>,
    /// still, or random (a wandering bot) [default: still].
    #[arg(long, env = "PEERWORLD_WALK")]
    walk: Option<WalkArg>,
    /// Walking speed in units per second [default: 20].
    #[arg(long, env = "PEERWORLD_SPEED")]
    speed: Option<f32>,
    /// World size W,H; every node of a world must agree [default: 10000,10000].
    #[arg(long, env = "PEERWORLD_WORLD", value_parser = parse_pair)]
    world: Option<(f32, f32)>,
    /// Key file: created (mode 0600) on first run, reused after, so the node
    /// keeps its id [default: a fresh key per run].
    #[arg(long, env = "PEERWORLD_IDENTITY")]
    identity: Option<PathBuf>,
    /// Folder for state kept across restarts (the peer cache, so a node whose
    /// bootstrap peers are gone can join again through peers it kept).
    #[arg(long, env = "PEERWORLD_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// TOML file with any of these settings (same names, `bootstrap` a list).
    #[arg(long, env = "PEERWORLD_CONFIG")]
    config: Option<PathBuf>,
    /// Log format [default: text]; filter with RUST_LOG.
    #[arg(long, env = "PEERWORLD_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Seed of the random start position and walk.
    #[arg(long, env = "PEERWORLD_SEED")]
    seed: Option<u64>,
}

/// The TOML file: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    #[serde(default)]
    bootstrap: Vec<String>,
    advertise: Option<SocketAddr>,
    pos: Option<[f32; 2]>,
    radius: Option<f32>,
    radius_mode: Option<RadiusModeArg>,
    neighbours: Option<String>,
    long_links: Option<usize>,
    epsilon: Option<f32>,
    heartbeat_ms: Option<u64>,
    name: Option<String>,
    status: Option<SocketAddr>,
    walk: Option<WalkArg>,
    speed: Option<f32>,
    world: Option<[f32; 2]>,
    identity: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    seed: Option<u64>,
}

/// The settings after merging, before defaults are filled in.
#[derive(Debug)]
pub struct Settings {
    /// Node configuration.
    pub node: NodeConfig,
    /// Status server address.
    pub status: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Identity file, if any.
    pub identity_file: Option<PathBuf>,
}

fn resolve(addrs: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for a in addrs.iter().filter(|a| !a.trim().is_empty()) {
        let mut found = a
            .trim()
            .to_socket_addrs()
            .with_context(|| format!("bootstrap {a:?}: expected HOST:PORT"))?;
        out.push(
            found
                .next()
                .with_context(|| format!("bootstrap {a:?} resolves to no address"))?,
        );
    }
    Ok(out)
}

/// Merges flags/env (already merged by clap) over the file over defaults.
pub fn settings(args: RunArgs) -> anyhow::Result<Settings> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("config {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let world = args.world.or(file.world.map(|[w, h]| (w, h)));
    let world = world.map_or(World::default(), |(w, h)| World::new(w, h));
    if !world.is_valid() {
        bail!("--world: sides must be positive");
    }
    let radius = args.radius.or(file.radius).unwrap_or(100.0);
    if !(radius.is_finite() && radius > 0.0 && radius <= MAX_RADIUS) {
        bail!("--radius must be positive and at most {MAX_RADIUS} (the protocol's largest)");
    }
    let radius_mode = args
        .radius_mode
        .or(file.radius_mode)
        .unwrap_or(RadiusModeArg::Adaptive);
    let neighbours = match (args.neighbours, &file.neighbours) {
        (Some(n), _) => n,
        (None, Some(s)) => parse_neighbours(s).map_err(|e| anyhow::anyhow!("neighbours: {e}"))?,
        (None, None) => Config::default().neighbours,
    };
    let epsilon = args
        .epsilon
        .or(file.epsilon)
        .unwrap_or(Config::default().epsilon);
    if !(epsilon.is_finite() && epsilon >= 0.0) {
        bail!("--epsilon must be zero or positive");
    }
    let heartbeat_ms = args
        .heartbeat_ms
        .or(file.heartbeat_ms)
        .unwrap_or(Config::default().heartbeat_ms);
    check_heartbeat(heartbeat_ms).map_err(|e| anyhow::anyhow!("--heartbeat-ms: {e}"))?;
    let speed = args.speed.or(file.speed).unwrap_or(20.0);
    if !(speed.is_finite() && speed >= 0.0) {
        bail!("--speed must be zero or positive");
    }
    let walk = match args.walk.or(file.walk).unwrap_or(WalkArg::Still) {
        WalkArg::Still => Walk::Still,
        WalkArg::Random => Walk::Random { speed },
    };
    let bootstrap = if args.bootstrap.is_empty() {
        resolve(&file.bootstrap)?
    } else {
        resolve(&args.bootstrap)?
    };
    let identity_file = args.identity.or(file.identity);
    let identity = match &identity_file {
        Some(p) => Some(Identity::load_or_create(p)?),
        None => None,
    };
    let mut node = NodeConfig::new(
        args.listen
            .or(file.listen)
            .unwrap_or_else(|| "0.0.0.0:4433".parse().expect("a valid address")),
    );
    node.bootstrap = bootstrap;
    node.advertise = args.advertise.or(file.advertise);
    node.pos = args
        .pos
        .or(file.pos.map(|[x, y]| (x, y)))
        .map(|(x, y)| Point::new(x, y));
    node.overlay = Config {
        world,
        radius,
        radius_mode: radius_mode.into(),
        neighbours,
        epsilon,
        long_links: args.long_links.or(file.long_links).unwrap_or(4),
        ..Config::default().with_heartbeat(heartbeat_ms)
    };
    node.walk = walk;
    node.seed = args.seed.or(file.seed).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    node.name = args.name.or(file.name).unwrap_or_default();
    node.identity = identity;
    node.state_dir = args.state_dir.or(file.state_dir);
    Ok(Settings {
        node,
        status: args.status.or(file.status),
        log_format: args
            .log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Text),
        identity_file,
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the node until SIGINT or SIGTERM, then leaves gracefully.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut s = settings(args)?;
    init_logging(s.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if s.node.identity.is_none() {
            s.node.identity = Some(Identity::generate()?);
        }
        if s.node.name.is_empty()
            && let Some(i) = &s.node.identity
        {
            s.node.name = format!("node-{}", i.id().short());
        }
        let node = Node::spawn(s.node.clone())?;
        info!(
            id = %node.id().to_hex(),
            listen = %node.local_addr(),
            identity = ?s.identity_file,
            "node running"
        );
        if let Some(addr) = s.status {
            let bound = status::serve(addr, node.clone()).await?;
            info!(%bound, "status server on http://{bound}/status");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: leaving"),
            _ = term.recv() => info!("SIGTERM: leaving"),
            _ = node.closed() => bail!("the node stopped by itself"),
        }
        node.shutdown();
        tokio::time::timeout(std::time::Duration::from_secs(5), node.closed())
            .await
            .context("the node did not stop within 5 s")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = std::env::temp_dir().join(format!("pw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node.toml");
        std::fs::write(
            &file,
            "radius = 250.0\nname = \"from-file\"\nworld = [2000, 1000]\nbootstrap = [\"127.0.0.1:9\"]\nwalk = \"random\"\nheartbeat_ms = 2000\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--name",
            "from-flag",
        ])
        .unwrap();
        let s = settings(cli.run).unwrap();
        assert_eq!(s.node.name, "from-flag");
        assert_eq!(s.node.overlay.radius, 250.0);
        assert_eq!(s.node.overlay.world, World::new(2000.0, 1000.0));
        assert_eq!(s.node.bootstrap, vec!["127.0.0.1:9".parse().unwrap()]);
        assert_eq!(s.node.walk, Walk::Random { speed: 20.0 });
        assert_eq!(s.node.listen, "0.0.0.0:4433".parse().unwrap());
        let o = &s.node.overlay;
        assert_eq!(
            (o.heartbeat_ms, o.motion_refresh_ms, o.failure_timeout_ms),
            (2_000, 2_000, 6_000),
            "the file's heartbeat scales the liveness timers"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let cli = Cli::try_parse_from(["x", "--radius=-5"]).unwrap();
        let err = settings(cli.run).unwrap_err().to_string();
        assert!(err.contains("radius"), "{err}");
        let cli = Cli::try_parse_from(["x", "--heartbeat-ms", "10"]).unwrap();
        let err = settings(cli.run).unwrap_err().to_string();
        assert!(
            err.contains("--heartbeat-ms") && err.contains("250..=30000"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("pw-cfg-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node.toml");
        std::fs::write(&file, "radios = 3\n").unwrap();
        let cli = Cli::try_parse_from(["x", "--config", file.to_str().unwrap()]).unwrap();
        let err = format!("{:#}", settings(cli.run).unwrap_err());
        assert!(err.contains("radios"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

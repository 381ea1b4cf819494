//! The bridge between Bevy and the node: bounded channels, read without
//! blocking inside systems (the bevy_quinnet pattern), and the runtime thread
//! that runs the nodes (own, and in the embedded world a seed and bots).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bevy::prelude::*;
use peerworld_node::{ChatFeed, Command, Identity, Node, NodeConfig, NodeHandle, Snapshot, Walk};
use peerworld_protocol::{Config, Point, World};
use tokio::sync::{mpsc, oneshot, watch};

/// Channels to the node: commands out (bounded; a full queue drops the
/// command, and a newer move follows), views in (latest wins).
#[derive(Resource)]
pub struct Bridge {
    /// Commands to the node.
    pub commands: mpsc::Sender<Command>,
    /// The node's views.
    pub views: watch::Receiver<Arc<Snapshot>>,
    /// The chat lines the node hears.
    pub chat: ChatFeed,
}

impl Bridge {
    /// A bridge whose other ends the caller keeps (tests fill it by hand).
    pub fn pair(first: Snapshot) -> (Self, mpsc::Receiver<Command>, watch::Sender<Arc<Snapshot>>) {
        let (ctx, crx) = mpsc::channel(64);
        let (vtx, vrx) = watch::channel(Arc::new(first));
        (
            Self {
                commands: ctx,
                views: vrx,
                chat: ChatFeed::default(),
            },
            crx,
            vtx,
        )
    }
}

/// Why the network side could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The tokio runtime could not be built.
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The network thread could not be started.
    #[error("network thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The network thread stopped before reporting its nodes.
    #[error("the network thread stopped while starting")]
    Stopped,
    /// A node could not start.
    #[error(transparent)]
    Node(#[from] peerworld_node::Error),
}

/// The newest view, and when (in `Time` seconds) it arrived.
#[derive(Resource)]
pub struct LatestView {
    /// The view.
    pub snapshot: Arc<Snapshot>,
    /// Arrival time.
    pub at: f64,
    /// Views received so far.
    pub count: u64,
    /// Messages in+out per second, smoothed.
    pub msgs_per_s: f64,
    /// Bytes in+out per second, smoothed.
    pub bytes_per_s: f64,
    last_msgs: (u64, u64, f64),
}

/// Sent when a new view arrived.
#[derive(Message, Clone)]
pub struct ViewUpdated(pub Arc<Snapshot>);

/// System sets, in order.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetSystems {
    /// Read the bridge.
    Receive,
    /// Apply views to the world (avatars).
    Apply,
    /// Send commands to the node.
    Send,
}

/// Reads the bridge into [`LatestView`] and [`ViewUpdated`].
pub struct NetPlugin;

impl Plugin for NetPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<ViewUpdated>()
            .configure_sets(
                Update,
                (NetSystems::Receive, NetSystems::Apply, NetSystems::Send).chain(),
            )
            .add_systems(Startup, init_view)
            .add_systems(Update, receive.in_set(NetSystems::Receive));
    }
}

fn init_view(mut commands: Commands, bridge: Res<Bridge>) {
    commands.insert_resource(LatestView {
        snapshot: bridge.views.borrow().clone(),
        at: 0.0,
        count: 0,
        msgs_per_s: 0.0,
        bytes_per_s: 0.0,
        last_msgs: (0, 0, 0.0),
    });
}

fn receive(
    mut bridge: ResMut<Bridge>,
    mut latest: ResMut<LatestView>,
    time: Res<Time>,
    mut out: MessageWriter<ViewUpdated>,
) {
    if !bridge.views.has_changed().unwrap_or(false) {
        return;
    }
    let snap = bridge.views.borrow_and_update().clone();
    let now = time.elapsed_secs_f64();
    let msgs = snap.stats.msgs_in + snap.stats.msgs_out;
    let (m0, b0, t0) = latest.last_msgs;
    if now - t0 >= 0.5 {
        let rate = msgs.saturating_sub(m0) as f64 / (now - t0);
        let bytes = snap.bytes.saturating_sub(b0) as f64 / (now - t0);
        let smooth = |old: f64, new: f64| {
            if t0 == 0.0 {
                new
            } else {
                0.5 * old + 0.5 * new
            }
        };
        latest.msgs_per_s = smooth(latest.msgs_per_s, rate);
        latest.bytes_per_s = smooth(latest.bytes_per_s, bytes);
        latest.last_msgs = (msgs, snap.bytes, now);
    }
    latest.snapshot = snap.clone();
    latest.at = now;
    latest.count += 1;
    out.write(ViewUpdated(snap));
}

/// How the client's world is set up.
#[derive(Clone, Debug)]
pub struct NetSetup {
    /// Join this world instead of hosting the embedded one.
    pub join: Option<SocketAddr>,
    /// Own node's listen address.
    pub listen: SocketAddr,
    /// Own name.
    pub name: String,
    /// Bots in the embedded world.
    pub bots: usize,
    /// Awareness radius (the largest, with the adaptive mode).
    pub radius: f32,
    /// Fixed, or adaptive (shrinks in crowds).
    pub radius_mode: peerworld_protocol::RadiusMode,
    /// Adaptive radius: fewest and most peers within reach.
    pub neighbours: (usize, usize),
    /// Liveness period (see `Config::with_heartbeat`).
    pub heartbeat_ms: u64,
    /// World size.
    pub world: World,
    /// Own key.
    pub identity: Option<Identity>,
    /// Bot walking speed, units per second.
    pub bot_speed: f32,
    /// Where the own node keeps its peer cache (only when joining a world).
    pub state_dir: Option<std::path::PathBuf>,
}

/// The tokio runtime thread and the nodes on it. Dropping it (or
/// [`NetRuntime::shutdown`]) makes every node leave gracefully.
pub struct NetRuntime {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The own node.
    pub own: NodeHandle,
    /// Where the embedded world's seed listens (others may `--join` it).
    pub seed_addr: Option<SocketAddr>,
}

impl NetRuntime {
    /// Starts the nodes on a fresh one-worker runtime thread; returns the
    /// runtime and the bridge to the own node.
    pub fn start(setup: NetSetup) -> Result<(Self, Bridge), NetError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("peerworld-net".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("peerworld-node")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(NetError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let nodes = match start_nodes(&setup).await {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let (own, seed_addr) = (nodes[0].clone(), nodes.get(1).map(|n| n.local_addr()));
                    let _ = ready_tx.send(Ok((
                        own.clone(),
                        if setup.join.is_some() {
                            None
                        } else {
                            seed_addr
                        },
                    )));
                    if setup.join.is_none() && nodes.len() > 1 {
                        place_signs(&nodes[1], &nodes[2..], setup.world);
                    }
                    if setup.join.is_none() && nodes.len() > 2 {
                        tokio::spawn(chatter(nodes[2..].to_vec()));
                    }
                    let _ = stop_rx.await;
                    for n in &nodes {
                        n.shutdown();
                    }
                    for n in &nodes {
                        let _ = tokio::time::timeout(Duration::from_secs(3), n.closed()).await;
                    }
                });
            })?;
        let (own, seed_addr) = ready_rx.recv().map_err(|_| NetError::Stopped)??;
        let bridge = Bridge {
            commands: own.commands(),
            views: own.watch(),
            chat: own.chat_feed(),
        };
        Ok((
            Self {
                stop: Some(stop_tx),
                thread: Some(thread),
                own,
                seed_addr,
            },
            bridge,
        ))
    }

    /// Every node leaves; waits for the runtime thread.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NetRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the embedded world's bots say now and then.
const BOT_LINES: &[&str] = &[
    "hello!",
    "anyone around?",
    "nice weather on this plane",
    "I am walking north, I think",
    "who drew these grid lines?",
    "the Voronoi cells look good today (press V)",
    "see you around",
    "this world has no server, did you know?",
];

/// The signs a bot of the centre town places around it (offsets from the
/// centre, and text): the first lies in view of a newcomer.
pub const WORLD_SIGNS: &[(f32, f32, &str)] = &[
    (70.0, -50.0, "welcome to peerworld"),
    (-260.0, 180.0, "no server here: peers keep this sign"),
    (320.0, 260.0, "press P to leave a sign"),
];

/// The towns of the embedded world, as offsets from its centre (where you
/// arrive), and the sign a bot of each puts up at home: half of the bots
/// live in the first town, the others in the four around it, and each
/// now and then travels.
pub const TOWNS: &[(f32, f32, &str)] = &[
    (0.0, 0.0, ""),
    (
        -900.0,
        700.0,
        "north-west town: the peers here hold this sign",
    ),
    (
        1000.0,
        -800.0,
        "south-east town (click the minimap to jump)",
    ),
    (900.0, 900.0, "north-east town"),
    (
        -1000.0,
        -900.0,
        "south-west town: walk on, the world is 4000 wide",
    ),
];

/// How far a bot strays from its town (σ, world units).
const TOWN_SPREAD: f32 = 220.0;

/// The town bot `i` lives in.
fn town_of(i: usize) -> usize {
    if i.is_multiple_of(2) {
        0
    } else {
        1 + (i / 2) % (TOWNS.len() - 1)
    }
}

/// The centre of town `t` in `world`.
fn town_at(world: World, t: usize) -> Point {
    let (dx, dy, _) = TOWNS[t];
    world.wrap(Point::new(world.width / 2.0 + dx, world.height / 2.0 + dy))
}

/// The first bot of each town puts up its town's signs once joined: the
/// centre's [`WORLD_SIGNS`], one near home elsewhere (the seed does, for a
/// town with no bot). Signs outlive their author: the peers nearest each
/// one hold it.
fn place_signs(seed: &NodeHandle, bots: &[NodeHandle], world: World) {
    for (t, &(_, _, town_sign)) in TOWNS.iter().enumerate() {
        let author = (0..bots.len())
            .find(|&i| town_of(i) == t)
            .map_or_else(|| seed.clone(), |i| bots[i].clone());
        let at = town_at(world, t);
        let signs: Vec<(Point, &str)> = if t == 0 {
            WORLD_SIGNS
                .iter()
                .map(|&(dx, dy, text)| (Point::new(at.x + dx, at.y + dy), text))
                .collect()
        } else {
            vec![(Point::new(at.x + 40.0, at.y - 30.0), town_sign)]
        };
        tokio::spawn(async move {
            for _ in 0..100 {
                if author.snapshot().view.state == peerworld_protocol::PeerState::Joined {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for (pos, text) in signs {
                let sign = peerworld_node::NewObject {
                    pos: world.wrap(pos),
                    text: text.into(),
                    colour: [120, 200, 255],
                    ttl_s: peerworld_protocol::object::MAX_OBJECT_TTL_S,
                };
                let _ = author.place_object(sign).await;
            }
        });
    }
}

/// Now and then (every 1 to 3 s) a random bot says a line: with the bots
/// spread over five towns, you hear one every few seconds.
async fn chatter(bots: Vec<NodeHandle>) {
    let mut rng = peerworld_protocol::sim::Rng::new(0x00c4_a77e);
    loop {
        let wait = 1.0 + 2.0 * rng.f64();
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        let bot = &bots[rng.below(bots.len() as u64) as usize];
        let line = BOT_LINES[rng.below(BOT_LINES.len() as u64) as usize];
        let _ = bot.say(line).await;
    }
}

/// Any port on loopback.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Own node first, then (embedded world) the seed and the bots.
async fn start_nodes(setup: &NetSetup) -> Result<Vec<NodeHandle>, NetError> {
    let overlay = Config {
        world: setup.world,
        radius: setup.radius,
        radius_mode: setup.radius_mode,
        neighbours: setup.neighbours,
        ..Config::default().with_heartbeat(setup.heartbeat_ms)
    };
    let centre = Point::new(setup.world.width / 2.0, setup.world.height / 2.0);
    let mut out = Vec::new();
    let bootstrap = match setup.join {
        Some(addr) => vec![addr],
        None => {
            let mut seed = NodeConfig::new(LOOPBACK);
            seed.overlay = overlay.clone();
            // The embedded world lives on one address.
            seed.max_links_per_ip = seed.max_links;
            seed.name = "seed".into();
            seed.pos = Some(Point::new(centre.x - 60.0, centre.y + 40.0));
            let seed = Node::spawn(seed)?;
            let addr = seed.local_addr();
            out.push(seed);
            for i in 0..setup.bots {
                let mut bot = NodeConfig::new(LOOPBACK);
                bot.overlay = overlay.clone();
                bot.max_links_per_ip = bot.max_links;
                bot.name = format!("bot-{}", i + 1);
                let home = town_at(setup.world, town_of(i));
                bot.walk = Walk::Around {
                    speed: setup.bot_speed,
                    home,
                    spread: TOWN_SPREAD,
                };
                // Start at home, on a spiral (no two on one spot).
                let (a, r) = (i as f32 * 2.4, 40.0 + (i * 37 % 180) as f32);
                bot.pos = Some(
                    setup
                        .world
                        .wrap(Point::new(home.x + r * a.cos(), home.y + r * a.sin())),
                );
                bot.bootstrap = vec![addr];
                bot.seed = i as u64 + 1;
                out.push(Node::spawn(bot)?);
            }
            vec![addr]
        }
    };
    let mut own = NodeConfig::new(setup.listen);
    own.overlay = overlay;
    if setup.join.is_none() {
        own.max_links_per_ip = own.max_links;
    }
    own.name = setup.name.clone();
    own.identity = setup.identity.clone();
    own.bootstrap = bootstrap;
    if setup.join.is_some() {
        own.state_dir = setup.state_dir.clone();
    }
    own.pos = Some(centre);
    out.insert(0, Node::spawn(own)?);
    Ok(out)
}

/// A bridge fed by a synthetic world instead of a node: `n` peers circling
/// within `spread` units of the own avatar, reported 10 times a second (for
/// measuring the renderer with many avatars). Stops when the bridge drops.
pub fn synthetic(n: usize, world: World, spread: Vec2) -> Bridge {
    use peerworld_node::{Neighbour, PeerState};
    use peerworld_protocol::{Millis, View};
    use peerworld_protocol::{PeerId, PeerInfo};
    let centre = Point::new(world.width / 2.0, world.height / 2.0);
    let me = PeerInfo::new(PeerId::from_seed(u64::MAX), centre, 300.0, "you");
    let base = Snapshot {
        view: View {
            me,
            state: PeerState::Joined,
            neighbours: Vec::new(),
        },
        world,
        uptime_ms: 0,
        stats: Default::default(),
        links: 0,
        join_hops: None,
        bytes: 0,
        objects: Default::default(),
    };
    let (bridge, mut commands, views) = Bridge::pair(base.clone());
    std::thread::spawn(move || {
        let mut rng = peerworld_protocol::sim::Rng::new(7);
        let homes: Vec<(Point, f32, f32)> = (0..n)
            .map(|_| {
                let x = centre.x + (rng.f64() as f32 - 0.5) * spread.x;
                let y = centre.y + (rng.f64() as f32 - 0.5) * spread.y;
                (
                    Point::new(x, y),
                    10.0 + rng.f64() as f32 * 30.0,
                    rng.f64() as f32 * std::f32::consts::TAU,
                )
            })
            .collect();
        let start = std::time::Instant::now();
        loop {
            while commands.try_recv().is_ok() {}
            let t = start.elapsed().as_secs_f32();
            let neighbours = homes
                .iter()
                .enumerate()
                .map(|(i, &(home, r, phase))| Neighbour {
                    info: PeerInfo::new(
                        PeerId::from_seed(i as u64),
                        world.wrap(Point::new(
                            home.x + r * (t * 0.8 + phase).cos(),
                            home.y + r * (t * 0.8 + phase).sin(),
                        )),
                        300.0,
                        format!("peer-{i}"),
                    ),
                    enclosing: i % 7 == 0,
                    aware: true,
                    confirmed: true,
                    last_heard: Millis(0),
                })
                .collect();
            let mut snap = base.clone();
            snap.view.neighbours = neighbours;
            if views.send(Arc::new(snap)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    bridge
}

//! The driver: one task owns the `Peer`, the connections and one timer, and
//! talks to everything else through bounded channels.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use peerworld_protocol::message::{self, Message};
use peerworld_protocol::mobility::{Mobility, Walker};
use peerworld_protocol::peer::Stats;
use peerworld_protocol::sim::Rng;
use peerworld_protocol::{Config, Event, Millis, Peer, PeerId, PeerInfo, Point, World};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, TransportConfig, VarInt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::identity::Identity;
use crate::link::{self, Input, LEN_PREFIX};
use crate::metrics::Metrics;
use crate::socket::MutableSocket;
use crate::{Error, close_code};

/// Most connections a node holds (accepted and dialed).
pub const MAX_LINKS: usize = 512;
/// Most dials in flight at once; records beyond are dropped, not dialed.
pub const MAX_PENDING_DIALS: usize = 32;
/// Control frames queued for a peer while its dial is in flight.
const MAX_QUEUED_PER_DIAL: usize = 64;
/// Control frames queued for a connection's writer.
const WRITER_QUEUE: usize = 1024;
/// Driver inbox (messages from connection tasks).
const INBOX: usize = 4096;
/// Remembered peer addresses before the book is pruned to known peers.
const MAX_ADDRS: usize = 4096;
/// Period of the walk / publish / housekeeping tick.
const TICK: Duration = Duration::from_millis(100);
/// A connection to a peer the overlay no longer keeps closes after this.
const IDLE_LINK: Duration = Duration::from_secs(10);
/// A duplicate connection lives this long so frames in flight still arrive.
const RETIRE_AFTER: Duration = Duration::from_secs(2);
/// Handshake deadline.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node's avatar moves by itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Walk {
    /// Only when told through [`NodeHandle::move_to`].
    Still,
    /// Random waypoint at `speed` units per second (a wandering bot).
    Random {
        /// Units per second.
        speed: f32,
    },
}

/// What a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// UDP address to bind (port 0 picks one).
    pub listen: SocketAddr,
    /// Peers to join through, tried in turn; empty starts a new world.
    pub bootstrap: Vec<SocketAddr>,
    /// Address others should dial; default: the bound address unless it is
    /// unspecified (0.0.0.0), else the one the bootstrap peer observed.
    pub advertise: Option<SocketAddr>,
    /// Start position; default: random.
    pub pos: Option<Point>,
    /// Display name.
    pub name: String,
    /// Overlay tunables (world, radius, timeouts).
    pub overlay: Config,
    /// Self-motion.
    pub walk: Walk,
    /// The key; `None` makes a fresh one.
    pub identity: Option<Identity>,
    /// Seed of the walk and of the random start position.
    pub seed: u64,
}

impl NodeConfig {
    /// A still node on `listen` with defaults for the rest.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            bootstrap: Vec::new(),
            advertise: None,
            pos: None,
            name: String::new(),
            overlay: Config::default(),
            walk: Walk::Still,
            identity: None,
            seed: 0,
        }
    }
}

/// Connection state, for status pages and the client's HUD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    /// Dialing the bootstrap or waiting for the join reply.
    Joining,
    /// Part of a world (or alone in a new one).
    Joined,
    /// Joined once, but no neighbour has been heard within the failure
    /// timeout.
    Lost,
    /// Left or stopped.
    Stopped,
}

/// A kept peer as the node sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    /// Its record (position and radius as last believed).
    pub info: PeerInfo,
    /// Voronoi-adjacent.
    pub enclosing: bool,
    /// Within our awareness radius.
    pub aware: bool,
    /// It has spoken to us itself (not only relayed as a hint).
    pub confirmed: bool,
    /// Milliseconds since it was last heard.
    pub age_ms: u64,
}

/// The node's view at one instant: what a renderer or a status page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Own record.
    pub me: PeerInfo,
    /// The world.
    pub world: World,
    /// Whether part of a world.
    pub joined: bool,
    /// Connection state.
    pub state: ConnState,
    /// Kept peers.
    pub neighbours: Vec<Neighbour>,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// The overlay's counters.
    pub stats: Stats,
    /// Open connections.
    pub links: usize,
    /// Forwarding hops of this node's last completed join.
    pub join_hops: Option<u8>,
}

#[derive(Debug)]
enum Command {
    MoveTo(Point),
}

/// A running node. See [`Node::spawn`].
#[derive(Debug)]
pub struct Node;

/// Cloneable handle to a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    id: PeerId,
    local_addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    view: watch::Receiver<Arc<Snapshot>>,
    stop: CancellationToken,
    crash: CancellationToken,
    done: CancellationToken,
    metrics: Arc<Metrics>,
}

impl NodeHandle {
    /// The node's id.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Moves the avatar (a jump longer than the teleport distance re-joins).
    /// Returns false if the node has stopped or is too busy to take it (a
    /// later move supersedes it anyway).
    pub fn move_to(&self, pos: Point) -> bool {
        self.commands.try_send(Command::MoveTo(pos)).is_ok()
    }

    /// The latest view.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.view.borrow().clone()
    }

    /// A receiver that sees every new view.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.view.clone()
    }

    /// The counters.
    pub fn metrics(&self) -> crate::MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Leaves gracefully (goodbye to every neighbour), closes the endpoint
    /// and stops the driver. Returns at once; see [`NodeHandle::closed`].
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Stops as if the machine died: the socket goes quiet first, then the
    /// driver stops, with no goodbye and no connection close on the wire.
    pub fn crash(&self) {
        self.crash.cancel();
    }

    /// Whether the driver has stopped.
    pub fn is_closed(&self) -> bool {
        self.done.is_cancelled()
    }

    /// Waits until the driver has stopped.
    pub async fn closed(&self) {
        self.done.cancelled().await;
    }
}

fn transport_config() -> TransportConfig {
    let mut t = TransportConfig::default();
    // The overlay detects failures itself (its own, shorter timeout); quinn's
    // idle timeout only reclaims dead connections.
    t.max_idle_timeout(Some(VarInt::from_u32(10_000).into()));
    t.keep_alive_interval(None);
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.max_concurrent_uni_streams(VarInt::from_u32(8));
    t
}

impl Node {
    /// Binds the endpoint and starts the driver on the current tokio runtime.
    pub fn spawn(config: NodeConfig) -> Result<NodeHandle, Error> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|e| Error::NoRuntime(e.to_string()))?;
        if !config.overlay.world.is_valid() {
            return Err(Error::Config(
                "world size must be positive and finite".into(),
            ));
        }
        if !(config.overlay.radius.is_finite() && config.overlay.radius > 0.0) {
            return Err(Error::Config("radius must be positive and finite".into()));
        }
        let identity = match config.identity.clone() {
            Some(i) => i,
            None => Identity::generate()?,
        };
        let id = identity.id();
        let socket = UdpSocket::bind(config.listen).map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let local_addr = socket.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let quinn_runtime: Arc<dyn quinn::Runtime> = Arc::new(quinn::TokioRuntime);
        let muted = Arc::new(AtomicBool::new(false));
        let inner = {
            let _guard = runtime.enter();
            quinn_runtime
                .wrap_udp_socket(socket)
                .map_err(|source| Error::Bind {
                    addr: local_addr,
                    source,
                })?
        };
        let socket = Arc::new(MutableSocket::new(inner, muted.clone()));
        let server_crypto = QuicServerConfig::try_from(identity.server_config()?)
            .map_err(|e| Error::Identity(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(Arc::new(transport_config()));
        let endpoint = {
            let _guard = runtime.enter();
            Endpoint::new_with_abstract_socket(
                quinn::EndpointConfig::default(),
                Some(server),
                socket,
                quinn_runtime,
            )
            .map_err(|source| Error::Bind {
                addr: local_addr,
                source,
            })?
        };

        let mut rng = Rng::new(config.seed ^ id.short_u64());
        let world = config.overlay.world;
        let pos = config
            .pos
            .unwrap_or_else(|| peerworld_protocol::mobility::random_point(world, &mut rng));
        let advertise = config
            .advertise
            .or_else(|| (!local_addr.ip().is_unspecified()).then_some(local_addr));
        let mut me = PeerInfo::new(id, pos, config.overlay.radius, config.name.clone());
        if let Some(a) = advertise {
            me.addr = a.to_string();
        }
        let start = Instant::now();
        let peer = Peer::new(config.overlay.clone(), me, Millis(0));
        let metrics = Arc::new(Metrics::default());
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let (view_tx, view_rx) = watch::channel(Arc::new(Snapshot {
            me: peer.info().clone(),
            world,
            joined: false,
            state: ConnState::Joining,
            neighbours: Vec::new(),
            uptime_ms: 0,
            stats: Stats::default(),
            links: 0,
            join_hops: None,
        }));
        let stop = CancellationToken::new();
        let crash = CancellationToken::new();
        let done = CancellationToken::new();
        let walker = match config.walk {
            Walk::Still => None,
            Walk::Random { speed } => Some((Walker::new(pos), speed)),
        };
        let links_open = Arc::new(AtomicUsize::new(0));
        let driver = Driver {
            peer,
            identity,
            endpoint: endpoint.clone(),
            start,
            metrics: metrics.clone(),
            inbox_tx: inbox_tx.clone(),
            links: HashMap::new(),
            retiring: Vec::new(),
            dialing: HashMap::new(),
            addrs: HashMap::new(),
            bootstrap: config.bootstrap.clone(),
            boot_next: 0,
            boot_retry: None,
            bootstrapped: config.bootstrap.is_empty(),
            advertise_known: advertise.is_some(),
            walker,
            rng,
            view_tx,
            dirty: true,
            was_joined: false,
            join_hops: None,
            links_open: links_open.clone(),
            tasks: JoinSet::new(),
            writers: JoinSet::new(),
        };
        let span = info_span!("node", id = %id.short());
        runtime.spawn(
            accept_loop(
                endpoint,
                inbox_tx,
                metrics.clone(),
                links_open,
                stop.clone(),
            )
            .instrument(span.clone()),
        );
        let stop2 = stop.clone();
        let crash2 = crash.clone();
        let done2 = done.clone();
        runtime.spawn(
            async move {
                driver
                    .run(commands_rx, inbox_rx, stop2.clone(), crash2, muted)
                    .await;
                // Also ends the accept loop after a crash.
                stop2.cancel();
                done2.cancel();
            }
            .instrument(span),
        );
        Ok(NodeHandle {
            id,
            local_addr,
            commands: commands_tx,
            view: view_rx,
            stop,
            crash,
            done,
            metrics,
        })
    }
}

async fn accept_loop(
    endpoint: Endpoint,
    inbox: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
    links_open: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            _ = stop.cancelled() => return,
            i = endpoint.accept() => match i { Some(i) => i, None => return },
        };
        if links_open.load(Ordering::Relaxed) >= MAX_LINKS {
            Metrics::add(&metrics.handshakes_refused, 1);
            incoming.refuse();
            continue;
        }
        let inbox = inbox.clone();
        let metrics = metrics.clone();
        tokio::spawn(
            async move {
                let remote = incoming.remote_address();
                let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => {
                        Metrics::add(&metrics.handshakes_refused, 1);
                        info!(%remote, error = %e, "refused an incoming connection");
                        return;
                    }
                    Err(_) => {
                        Metrics::add(&metrics.handshakes_refused, 1);
                        return;
                    }
                };
                match link::peer_id(&conn) {
                    Ok(id) => {
                        Metrics::add(&metrics.conns_accepted, 1);
                        let _ = inbox
                            .send(Input::Connected {
                                conn,
                                id,
                                dialed: false,
                                bootstrap: false,
                            })
                            .await;
                    }
                    Err(e) => {
                        Metrics::add(&metrics.handshakes_refused, 1);
                        conn.close(close_code::MALFORMED.into(), b"bad certificate");
                        info!(%remote, error = %e, "refused an incoming connection");
                    }
                }
            }
            .in_current_span(),
        );
    }
}

struct Link {
    conn: Connection,
    tx: mpsc::Sender<Bytes>,
    dialer: PeerId,
    last_used: Instant,
}

struct Driver {
    peer: Peer,
    identity: Identity,
    endpoint: Endpoint,
    start: Instant,
    metrics: Arc<Metrics>,
    inbox_tx: mpsc::Sender<Input>,
    links: HashMap<PeerId, Link>,
    retiring: Vec<(Instant, Connection)>,
    /// Dials in flight by expected id, with the control frames waiting.
    dialing: HashMap<PeerId, Vec<Bytes>>,
    addrs: HashMap<PeerId, SocketAddr>,
    bootstrap: Vec<SocketAddr>,
    boot_next: usize,
    boot_retry: Option<Instant>,
    bootstrapped: bool,
    advertise_known: bool,
    walker: Option<(Walker, f32)>,
    rng: Rng,
    view_tx: watch::Sender<Arc<Snapshot>>,
    dirty: bool,
    was_joined: bool,
    join_hops: Option<u8>,
    links_open: Arc<AtomicUsize>,
    tasks: JoinSet<()>,
    writers: JoinSet<()>,
}

impl Driver {
    fn now(&self) -> Millis {
        Millis(self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, t: Millis) -> Instant {
        self.start + Duration::from_millis(t.0)
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inbox: mpsc::Receiver<Input>,
        stop: CancellationToken,
        crash: CancellationToken,
        muted: Arc<AtomicBool>,
    ) {
        info!(addr = %self.peer.info().addr, pos = ?self.peer.info().pos, "node started");
        if !self.bootstrap.is_empty() {
            self.dial_bootstrap();
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.flush();
            let wake = self
                .peer
                .poll_timeout()
                .map(|t| self.instant(t))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = crash.cancelled() => {
                    muted.store(true, Ordering::Relaxed);
                    info!("crashed (socket muted, no goodbye)");
                    break;
                }
                _ = stop.cancelled() => {
                    self.leave().await;
                    break;
                }
                cmd = commands.recv() => match cmd {
                    Some(Command::MoveTo(p)) => {
                        let now = self.now();
                        self.peer.move_to(p, now);
                        self.dirty = true;
                    }
                    None => {
                        self.leave().await;
                        break;
                    }
                },
                Some(input) = inbox.recv() => {
                    self.on_input(input);
                    // Take what else is waiting before flushing.
                    for _ in 0..64 {
                        match inbox.try_recv() {
                            Ok(input) => self.on_input(input),
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.peer.handle_timeout(now);
                    self.dirty = true;
                }
                _ = tick.tick() => self.on_tick(),
                Some(_) = self.writers.join_next(), if !self.writers.is_empty() => {}
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        self.publish(true);
        self.tasks.abort_all();
    }

    /// Goodbye to everyone, let the writers deliver it, close the endpoint.
    async fn leave(&mut self) {
        let now = self.now();
        self.peer.leave(now);
        self.flush();
        self.dialing.clear();
        self.links.clear(); // drops the writer queues: writers finish their streams
        let writers = std::mem::take(&mut self.writers);
        let _ = tokio::time::timeout(Duration::from_millis(1500), writers.join_all()).await;
        self.endpoint.close(close_code::NORMAL.into(), b"goodbye");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        info!("left the world");
    }

    fn dial_bootstrap(&mut self) {
        let addr = self.bootstrap[self.boot_next % self.bootstrap.len()];
        self.boot_next += 1;
        self.boot_retry = None;
        info!(%addr, "dialing the bootstrap peer");
        self.dial(addr, None, true);
    }

    fn dial(&mut self, addr: SocketAddr, expected: Option<PeerId>, bootstrap: bool) {
        let config =
            match self.identity.client_config(expected).and_then(|c| {
                QuicClientConfig::try_from(c).map_err(|e| Error::Identity(e.to_string()))
            }) {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot build a client configuration");
                    return;
                }
            };
        let mut config = quinn::ClientConfig::new(Arc::new(config));
        config.transport_config(Arc::new(transport_config()));
        let inbox = self.inbox_tx.clone();
        let metrics = self.metrics.clone();
        let connecting = self.endpoint.connect_with(config, addr, "peerworld");
        self.tasks.spawn(
            async move {
                let result = match connecting {
                    Ok(c) => tokio::time::timeout(HANDSHAKE_TIMEOUT, c).await.ok(),
                    Err(e) => {
                        debug!(%addr, error = %e, "cannot dial");
                        None
                    }
                };
                let input = match result {
                    Some(Ok(conn)) => match link::peer_id(&conn) {
                        Ok(id) => {
                            Metrics::add(&metrics.conns_dialed, 1);
                            Input::Connected {
                                conn,
                                id,
                                dialed: true,
                                bootstrap,
                            }
                        }
                        Err(_) => Input::DialFailed {
                            addr,
                            expected,
                            bootstrap,
                        },
                    },
                    Some(Err(e)) => {
                        debug!(%addr, error = %e, "dial failed");
                        Input::DialFailed {
                            addr,
                            expected,
                            bootstrap,
                        }
                    }
                    None => Input::DialFailed {
                        addr,
                        expected,
                        bootstrap,
                    },
                };
                let _ = inbox.send(input).await;
            }
            .in_current_span(),
        );
    }

    fn on_input(&mut self, input: Input) {
        self.dirty = true;
        match input {
            Input::Connected {
                conn,
                id,
                dialed,
                bootstrap,
            } => self.on_connected(conn, id, dialed, bootstrap),
            Input::DialFailed {
                addr,
                expected,
                bootstrap,
            } => {
                Metrics::add(&self.metrics.dials_failed, 1);
                if let Some(id) = expected
                    && let Some(queued) = self.dialing.remove(&id)
                {
                    Metrics::add(&self.metrics.send_dropped, queued.len() as u64);
                    debug!(peer = %id.short(), %addr, "dial failed");
                }
                if bootstrap {
                    warn!(%addr, "bootstrap peer unreachable; retrying");
                    self.boot_retry = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Closed { id, conn_id } => {
                if self
                    .links
                    .get(&id)
                    .is_some_and(|l| l.conn.stable_id() == conn_id)
                {
                    self.links.remove(&id);
                    self.links_open.store(self.links.len(), Ordering::Relaxed);
                    debug!(peer = %id.short(), "connection closed");
                }
            }
        }
    }

    fn on_connected(&mut self, conn: Connection, id: PeerId, dialed: bool, bootstrap: bool) {
        let me = self.peer.id();
        if id == me {
            conn.close(close_code::NORMAL.into(), b"that is me");
            if bootstrap {
                warn!("the bootstrap address is this node itself");
            }
            return;
        }
        let dialer = if dialed { me } else { id };
        self.tasks.spawn(
            link::read_link(
                conn.clone(),
                id,
                self.inbox_tx.clone(),
                self.metrics.clone(),
            )
            .in_current_span(),
        );
        let keep_new = match self.links.get(&id) {
            None => true,
            // Both dialed at once: keep the connection dialed by the lower id
            // (both sides decide the same); the same dialer again means the
            // old connection is stale.
            Some(old) => old.dialer == dialer || dialer == me.min(id),
        };
        if keep_new {
            let (tx, rx) = mpsc::channel(WRITER_QUEUE);
            self.writers
                .spawn(link::write_frames(conn.clone(), rx).in_current_span());
            let old = self.links.insert(
                id,
                Link {
                    conn,
                    tx,
                    dialer,
                    last_used: Instant::now(),
                },
            );
            if let Some(old) = old {
                Metrics::add(&self.metrics.duplicate_conns, 1);
                self.retiring
                    .push((Instant::now() + RETIRE_AFTER, old.conn));
            }
        } else {
            Metrics::add(&self.metrics.duplicate_conns, 1);
            self.retiring.push((Instant::now() + RETIRE_AFTER, conn));
        }
        self.links_open.store(self.links.len(), Ordering::Relaxed);
        if let Some(queued) = self.dialing.remove(&id)
            && let Some(link) = self.links.get(&id)
        {
            for frame in queued {
                if link.tx.try_send(frame).is_err() {
                    Metrics::add(&self.metrics.send_dropped, 1);
                }
            }
        }
        if bootstrap && !self.bootstrapped {
            self.bootstrapped = true;
            if let Some(link) = self.links.get(&id) {
                self.addrs.insert(id, link.conn.remote_address());
            }
            info!(peer = %id.short(), "joining through the bootstrap peer");
            let now = self.now();
            self.peer.join(id, now);
        }
    }

    fn learn_addr(&mut self, id: PeerId, addr: &str, authoritative: bool) {
        if id == self.peer.id() || addr.is_empty() {
            return;
        }
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            return;
        };
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return;
        }
        if authoritative {
            self.addrs.insert(id, addr);
        } else {
            self.addrs.entry(id).or_insert(addr);
        }
    }

    fn on_message(&mut self, from: PeerId, mut msg: Message) {
        if let Some(link) = self.links.get_mut(&from) {
            link.last_used = Instant::now();
        }
        match &mut msg {
            Message::Join { joiner, hops } => {
                // First hop: the joiner itself. Fill in the address we see
                // it dial from if it does not know its own (listens on
                // 0.0.0.0); the acceptor echoes it back as observed.
                if *hops == 0 && joiner.id == from {
                    let unknown = joiner
                        .addr
                        .parse::<SocketAddr>()
                        .map_or(true, |a| a.ip().is_unspecified());
                    if unknown && let Some(link) = self.links.get(&from) {
                        joiner.addr = link.conn.remote_address().to_string();
                    }
                }
                let (id, addr) = (joiner.id, joiner.addr.clone());
                self.learn_addr(id, &addr, id == from);
            }
            Message::JoinReply {
                peers,
                observed_addr,
                ..
            } => {
                if !self.advertise_known
                    && let Ok(observed) = observed_addr.parse::<SocketAddr>()
                {
                    info!(%observed, "advertising the address the world sees");
                    self.peer.set_addr(observed.to_string());
                    self.advertise_known = true;
                }
                for p in peers.iter() {
                    self.learn_addr(p.id, &p.addr, p.id == from);
                }
            }
            Message::Discover { peers, .. } => {
                for p in peers.iter() {
                    self.learn_addr(p.id, &p.addr, false);
                }
            }
            Message::Hello { addr, .. } => {
                let addr = addr.clone();
                self.learn_addr(from, &addr, true);
            }
            _ => {}
        }
        let now = self.now();
        self.peer.handle(now, from, msg);
    }

    /// Sends what the overlay wants sent and takes its events.
    fn flush(&mut self) {
        while let Some(t) = self.peer.poll_transmit() {
            self.send(t.to, &t.msg);
        }
        while let Some(e) = self.peer.poll_event() {
            self.dirty = true;
            match e {
                Event::Joined { acceptor, hops } => {
                    Metrics::add(&self.metrics.joins, 1);
                    self.join_hops = Some(hops);
                    info!(acceptor = %acceptor.short(), hops, "joined");
                }
                Event::Rejected { from, reason } => {
                    warn!(peer = %from.short(), reason, "refused a message");
                }
                Event::NeighbourAdded(id) => debug!(peer = %id.short(), "neighbour added"),
                Event::NeighbourRemoved(id, why) => {
                    debug!(peer = %id.short(), ?why, "neighbour removed");
                }
                Event::NeighbourMoved(..) => {}
            }
        }
    }

    fn send(&mut self, to: PeerId, msg: &Message) {
        let frame = match message::encode(msg) {
            Ok(f) => Bytes::from(f),
            Err(e) => {
                warn!(peer = %to.short(), error = %e, "cannot encode a message");
                return;
            }
        };
        let len = frame.len();
        if let Some(link) = self.links.get_mut(&to) {
            link.last_used = Instant::now();
            if msg.is_datagram()
                && link.conn.max_datagram_size().is_some_and(|max| len <= max)
                && link.conn.send_datagram(frame.clone()).is_ok()
            {
                self.count_sent(len, true);
                return;
            }
            if link.tx.try_send(frame).is_ok() {
                self.count_sent(len + LEN_PREFIX, false);
            } else {
                Metrics::add(&self.metrics.send_dropped, 1);
            }
            return;
        }
        if msg.is_datagram() {
            // Position updates and pings to a peer we cannot reach now are
            // not worth a dial: a newer one follows.
            if !self.dialing.contains_key(&to) {
                Metrics::add(&self.metrics.send_dropped, 1);
                return;
            }
        }
        if let Some(queue) = self.dialing.get_mut(&to) {
            if queue.len() < MAX_QUEUED_PER_DIAL && !msg.is_datagram() {
                queue.push(frame);
                self.count_sent(len + LEN_PREFIX, false);
            } else {
                Metrics::add(&self.metrics.send_dropped, 1);
            }
            return;
        }
        let Some(&addr) = self.addrs.get(&to) else {
            debug!(peer = %to.short(), "no address to dial");
            Metrics::add(&self.metrics.send_dropped, 1);
            return;
        };
        if self.dialing.len() >= MAX_PENDING_DIALS || self.links.len() >= MAX_LINKS {
            Metrics::add(&self.metrics.send_dropped, 1);
            return;
        }
        self.dialing.insert(to, vec![frame]);
        self.count_sent(len + LEN_PREFIX, false);
        self.dial(addr, Some(to), false);
    }

    fn count_sent(&self, bytes: usize, datagram: bool) {
        Metrics::add(&self.metrics.msgs_sent, 1);
        Metrics::add(&self.metrics.bytes_sent, bytes as u64);
        if datagram {
            Metrics::add(&self.metrics.datagrams_sent, 1);
        }
    }

    fn on_tick(&mut self) {
        let now = self.now();
        if let Some((walker, speed)) = self.walker.as_mut()
            && self.peer.is_joined()
            && self.bootstrapped
        {
            let step = f64::from(*speed) * TICK.as_secs_f64();
            let world = self.peer.config().world;
            let pos = walker.step(world, Mobility::RandomWaypoint, &[], step, &mut self.rng);
            self.peer.move_to(pos, now);
            self.dirty = true;
        }
        if let Some(at) = self.boot_retry
            && Instant::now() >= at
        {
            self.dial_bootstrap();
        }
        let t = Instant::now();
        self.retiring.retain(|(at, conn)| {
            if t >= *at {
                conn.close(close_code::NORMAL.into(), b"duplicate");
                false
            } else {
                true
            }
        });
        // Close connections to peers the overlay no longer keeps.
        let peer = &self.peer;
        self.links.retain(|id, link| {
            let keep = peer.knows(id) || t.duration_since(link.last_used) < IDLE_LINK;
            if !keep {
                link.conn
                    .close(close_code::NORMAL.into(), b"not a neighbour");
            }
            keep
        });
        self.links_open.store(self.links.len(), Ordering::Relaxed);
        if self.addrs.len() > MAX_ADDRS {
            self.addrs.retain(|id, _| peer.knows(id));
        }
        self.publish(false);
    }

    fn publish(&mut self, stopped: bool) {
        if !self.dirty && !stopped {
            return;
        }
        self.dirty = false;
        let now = self.now();
        let view = self.peer.view();
        let failure = self.peer.config().failure_timeout_ms;
        let heard_recently = view
            .neighbours
            .iter()
            .any(|n| n.confirmed && now.since(n.last_heard) <= failure);
        if view.joined && heard_recently {
            self.was_joined = true;
        }
        let state = if stopped {
            ConnState::Stopped
        } else if !view.joined || !self.bootstrapped || self.peer.is_joining() {
            ConnState::Joining
        } else if self.was_joined && !heard_recently {
            ConnState::Lost
        } else {
            ConnState::Joined
        };
        let stats = self.peer.stats().clone();
        let m = &self.metrics;
        Metrics::set(&m.rejected, stats.rejected);
        Metrics::set(&m.joins_accepted, stats.joins_accepted);
        Metrics::set(&m.joins_forwarded, stats.joins_forwarded);
        Metrics::set(&m.timeouts, stats.timeouts);
        Metrics::set(&m.repairs, stats.repairs);
        let snapshot = Snapshot {
            me: view.me,
            world: self.peer.config().world,
            joined: view.joined,
            state,
            neighbours: view
                .neighbours
                .into_iter()
                .map(|n| Neighbour {
                    age_ms: now.since(n.last_heard),
                    info: n.info,
                    enclosing: n.enclosing,
                    aware: n.aware,
                    confirmed: n.confirmed,
                })
                .collect(),
            uptime_ms: now.0,
            stats,
            links: self.links.len(),
            join_hops: self.join_hops,
        };
        self.view_tx.send_replace(Arc::new(snapshot));
    }
}

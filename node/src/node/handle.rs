//! The embedding surface: what a node needs to start ([`NodeConfig`]), what
//! it shows ([`Snapshot`]) and how to steer it ([`NodeHandle`]).

use std::net::SocketAddr;
use std::sync::Arc;

use peerworld_protocol::mobility::Mobility;
use peerworld_protocol::object::{ObjectError, ObjectKey, WorldObject, nearest_first};
use peerworld_protocol::{Config, Millis, Neighbour, PeerId, Point, Stats, View, World};

use super::ObjectCommandError;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::identity::Identity;
use crate::metrics::Metrics;

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
    /// Random waypoint at `speed`, four waypoints in five near `home`
    /// (Gaussian, σ = `spread`), the others anywhere: a bot that lives in a
    /// town and now and then travels.
    Around {
        /// Units per second.
        speed: f32,
        /// Where it lives.
        home: Point,
        /// How far it strays, in world units.
        spread: f32,
    },
}

impl Walk {
    /// Its speed, mobility model and hot spot (`None` when still).
    pub(super) fn model(self) -> Option<(f32, Mobility, Option<Point>)> {
        match self {
            Walk::Still => None,
            Walk::Random { speed } => Some((speed, Mobility::RandomWaypoint, None)),
            Walk::Around {
                speed,
                home,
                spread,
            } => Some((speed, Mobility::HotSpots { spots: 1, spread }, Some(home))),
        }
    }
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
    /// Where to keep the peer cache (`peers.json`) across restarts; `None`
    /// keeps it in memory only.
    pub state_dir: Option<std::path::PathBuf>,
    /// Most open connections (default [`crate::MAX_LINKS`]); when full, a
    /// new one takes the slot of the least recently used link to a peer
    /// the overlay does not keep.
    pub max_links: usize,
    /// Most inbound connections from one source (an IPv4 address or an
    /// IPv6 /64; default [`crate::MAX_LINKS_PER_IP`]). A world of nodes on
    /// one host (a swarm, the client's embedded world) raises it.
    pub max_links_per_ip: usize,
    /// Merge probes (see the protocol's "Partitions heal, worlds merge")
    /// come every one to two of these; the first comes 5 s after joining.
    pub merge_every: std::time::Duration,
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
            state_dir: None,
            max_links: super::MAX_LINKS,
            max_links_per_ip: super::MAX_LINKS_PER_IP,
            merge_every: super::MERGE_EVERY,
        }
    }
}

/// The node's view at one instant: what a renderer or a status page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// What the overlay knows (own record, state, kept peers). The state is
    /// `Joining` until the bootstrap peer answered, and `Stopped` once the
    /// driver has stopped.
    pub view: View,
    /// The world.
    pub world: World,
    /// Milliseconds since the node started (the clock of `last_heard`).
    pub uptime_ms: u64,
    /// The overlay's counters.
    pub stats: Stats,
    /// Open connections.
    pub links: usize,
    /// Forwarding hops of this node's last completed join.
    pub join_hops: Option<u16>,
    /// Bytes sent and received on the wire so far (frames, both ways).
    pub bytes: u64,
    /// The live world objects this node holds (every one within its
    /// radius, and those it holds for others), by key.
    pub objects: Arc<Vec<WorldObject>>,
}

impl Snapshot {
    /// Whether part of a world (joined, or lost but not gone).
    pub fn joined(&self) -> bool {
        self.view.joined()
    }

    /// Milliseconds between `n` last being heard and this snapshot.
    pub fn age_ms(&self, n: &Neighbour) -> u64 {
        Millis(self.uptime_ms).since(n.last_heard)
    }
}

/// What an embedding program asks of its node.
#[derive(Debug)]
pub enum Command {
    /// Move the avatar here (a jump longer than the teleport distance
    /// re-joins there).
    MoveTo(Point),
    /// Sleep like a suspended machine: the socket goes quiet and the driver
    /// pauses for this long, then both resume (for tests of the overlay's
    /// recovery; see [`NodeHandle::suspend`]).
    Suspend(std::time::Duration),
    /// Say a chat line to every peer within our radius; the answer is the
    /// line's number (or why it was refused).
    Say(
        String,
        tokio::sync::oneshot::Sender<Result<u64, peerworld_protocol::AreaError>>,
    ),
    /// Place a world object; the answer is its key.
    PlaceObject(
        NewObject,
        tokio::sync::oneshot::Sender<Result<ObjectKey, ObjectError>>,
    ),
    /// Remove an object this node placed.
    RemoveObject(
        ObjectKey,
        tokio::sync::oneshot::Sender<Result<(), ObjectError>>,
    ),
    /// A routed request (a record put or get, or who owns a point); the
    /// answer comes when the route's end answers.
    Route(
        RouteRequest,
        tokio::sync::oneshot::Sender<Result<Routed, ObjectError>>,
    ),
}

/// A request routed through the world (see [`NodeHandle::put_record`],
/// [`NodeHandle::get_record`], [`NodeHandle::route`]).
#[derive(Clone, Debug, PartialEq)]
pub enum RouteRequest {
    /// Store `value` under `name` for `ttl_s` seconds.
    Put {
        /// The record's name.
        name: String,
        /// At most 1 KiB.
        value: Vec<u8>,
        /// Its lifetime in seconds (1..=86 400).
        ttl_s: u32,
    },
    /// Read the record under `name`.
    Get(String),
    /// Who owns this point.
    Find(Point),
}

/// The answer to a routed request.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    /// Forwards the route took.
    pub hops: u16,
    /// The peer that answered.
    pub owner: PeerId,
    /// Its answer.
    pub answer: peerworld_protocol::message::RouteAnswer,
}

/// Why a record request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Refused here (value too large, bad lifetime, no key to sign with).
    #[error(transparent)]
    Invalid(#[from] ObjectError),
    /// The holders refused it: the name is another writer's (or a newer
    /// version is held).
    #[error("the record's holders refused it (the name is another writer's)")]
    NotYours,
    /// No answer came within [`ROUTE_WAIT`].
    #[error("no answer from the world within {} s", ROUTE_WAIT.as_secs())]
    NoAnswer,
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// How long a routed request waits for its answer (the route is sent once
/// more after 1.5 s, and answers are taken for 10 s).
pub const ROUTE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A world object to place (see [`NodeHandle::place_object`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NewObject {
    /// Where.
    pub pos: Point,
    /// Its text (at most 280 bytes).
    pub text: String,
    /// Its colour.
    pub colour: [u8; 3],
    /// Its lifetime in seconds (1..=86 400).
    pub ttl_s: u32,
}

/// Cloneable handle to a running node. See [`crate::Node::spawn`].
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub(super) id: PeerId,
    pub(super) local_addr: SocketAddr,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) view: watch::Receiver<Arc<Snapshot>>,
    pub(super) stop: CancellationToken,
    pub(super) crash: CancellationToken,
    pub(super) done: CancellationToken,
    pub(super) metrics: Arc<Metrics>,
    pub(super) chat: super::chat::ChatFeed,
    pub(super) cut: Arc<crate::socket::Cut>,
}

impl NodeHandle {
    /// Says `text` (trimmed, at most 280 bytes of UTF-8) to every peer
    /// within our radius; returns the line's key (our id and its number,
    /// `hex-n`). We hear it too ([`NodeHandle::messages`]).
    pub async fn say(&self, text: &str) -> Result<String, super::SayError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Say(text.to_string(), tx))
            .await
            .map_err(|_| super::SayError::Stopped)?;
        let n = rx.await.map_err(|_| super::SayError::Stopped)??;
        Ok(format!("{}-{n}", self.id.to_hex()))
    }

    /// Places a world object, signed with this node's key; returns its key.
    /// The peers nearest its point hold it from then on, whether or not
    /// this node stays.
    pub async fn place_object(&self, new: NewObject) -> Result<ObjectKey, ObjectCommandError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::PlaceObject(new, tx))
            .await
            .map_err(|_| ObjectCommandError::Stopped)?;
        Ok(rx.await.map_err(|_| ObjectCommandError::Stopped)??)
    }

    /// Removes an object this node placed (a signed removal replaces it).
    pub async fn remove_object(&self, key: ObjectKey) -> Result<(), ObjectCommandError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::RemoveObject(key, tx))
            .await
            .map_err(|_| ObjectCommandError::Stopped)?;
        Ok(rx.await.map_err(|_| ObjectCommandError::Stopped)??)
    }

    /// Sends a routed request and waits for its answer.
    async fn routed(&self, req: RouteRequest) -> Result<Routed, RecordError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Route(req, tx))
            .await
            .map_err(|_| RecordError::Stopped)?;
        match tokio::time::timeout(ROUTE_WAIT, rx).await {
            Ok(Ok(answer)) => Ok(answer?),
            Ok(Err(_)) => Err(RecordError::Stopped),
            Err(_) => Err(RecordError::NoAnswer),
        }
    }

    /// Stores `value` (at most 1 KiB) under `name` for `ttl_s` seconds,
    /// signed with this node's key; returns once the peers nearest the
    /// name's point have it, with how many hold it (the owner and the
    /// holders it handed a copy to).
    pub async fn put_record(
        &self,
        name: &str,
        value: Vec<u8>,
        ttl_s: u32,
    ) -> Result<u8, RecordError> {
        use peerworld_protocol::message::RouteAnswer;
        let req = RouteRequest::Put {
            name: name.to_string(),
            value,
            ttl_s,
        };
        match self.routed(req).await?.answer {
            RouteAnswer::Stored(n) => Ok(n),
            _ => Err(RecordError::NotYours),
        }
    }

    /// The newest value stored under `name`, or `None`.
    pub async fn get_record(&self, name: &str) -> Result<Option<Vec<u8>>, RecordError> {
        use peerworld_protocol::message::RouteAnswer;
        match self
            .routed(RouteRequest::Get(name.to_string()))
            .await?
            .answer
        {
            RouteAnswer::Record(Some(c)) if !c.record.removed => Ok(Some(c.record.value)),
            _ => Ok(None),
        }
    }

    /// Routes to `to` and returns the hops taken and the peer that owns it.
    pub async fn route(&self, to: Point) -> Result<(u16, PeerId), RecordError> {
        let r = self.routed(RouteRequest::Find(to)).await?;
        Ok((r.hops, r.owner))
    }

    /// The live objects this node knows within `r` of `centre`, nearest first.
    pub fn objects_near(&self, centre: Point, r: f32) -> Vec<WorldObject> {
        let s = self.snapshot();
        nearest_first(s.world, s.objects.iter(), centre, r)
            .into_iter()
            .cloned()
            .collect()
    }

    /// The chat lines heard (our own among them) numbered above `after`,
    /// oldest first; at most the last [`super::CHAT_KEPT`].
    pub fn messages(&self, after: u64) -> Vec<super::ChatLine> {
        self.chat.after(after)
    }

    /// The chat lines as they arrive, for a renderer to poll.
    pub fn chat_feed(&self) -> super::ChatFeed {
        self.chat.clone()
    }

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

    /// Suspends the node for `d` as if its machine slept: its socket drops
    /// everything and its driver stops, then both resume. Returns false if
    /// the node has stopped or its queue is full.
    pub fn suspend(&self, d: std::time::Duration) -> bool {
        self.commands.try_send(Command::Suspend(d)).is_ok()
    }

    /// Cuts the node off from exactly these addresses, as a network
    /// partition would: datagrams to or from them are dropped at the
    /// socket, everything else flows, and the driver runs on. An empty
    /// list heals the cut.
    pub fn cut_off(&self, from: &[SocketAddr]) {
        self.cut.set(from);
    }

    /// The node's command queue (bounded), for programs that hold a sender
    /// rather than the handle.
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// The latest view.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.view.borrow().clone()
    }

    /// A receiver that sees every new view.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.view.clone()
    }

    /// The transport's counters.
    pub fn metrics(&self) -> crate::MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The live transport counters (the status server adds to them).
    pub(crate) fn metrics_counters(&self) -> &Metrics {
        &self.metrics
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

#[cfg(test)]
mod tests {
    use super::*;
    use peerworld_protocol::mobility::Walker;
    use peerworld_protocol::sim::Rng;

    #[test]
    fn a_bot_that_walks_around_home_stays_mostly_near_it() {
        let world = World::new(4000.0, 4000.0);
        let home = Point::new(1000.0, 3000.0);
        let share_near = |walk: Walk| {
            let (speed, mobility, hot) = walk.model().expect("it walks");
            let mut w = Walker::new(home);
            let mut rng = Rng::new(7);
            let steps = 20_000;
            let near = (0..steps)
                .map(|_| {
                    w.step(
                        world,
                        mobility,
                        hot.as_slice(),
                        f64::from(speed) * 0.1,
                        &mut rng,
                    )
                })
                .filter(|p| world.distance(*p, home) < 3.0 * 220.0)
                .count();
            near as f64 / f64::from(steps)
        };
        let around = share_near(Walk::Around {
            speed: 40.0,
            home,
            spread: 220.0,
        });
        let anywhere = share_near(Walk::Random { speed: 40.0 });
        assert!(around > 0.5, "{around}");
        assert!(anywhere < 0.2, "{anywhere}");
        assert_eq!(Walk::Still.model(), None);
    }
}

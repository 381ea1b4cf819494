//! The driver: one task owns the `Peer`, the link table, the address book
//! and one timer, and talks to everything else through bounded channels.
//! It interprets no protocol message itself: the overlay decides, the driver
//! carries frames and keeps the transport's books.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::Walk;
use peerworld_protocol::message::Message;
use peerworld_protocol::mobility::Walker;
use peerworld_protocol::object::WorldObject;
use peerworld_protocol::sim::Rng;
use peerworld_protocol::{Event, Millis, Peer, PeerId, PeerState};
use quinn::{Connection, Endpoint};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::addrbook::AddressBook;
use super::cache::PeerCache;
use super::entry::{CACHE_EVERY_TICKS, Rejoin};
use super::handle::{Command, RouteRequest, Routed, Snapshot};
use super::links::LinkTable;
use crate::close_code;
use crate::identity::Identity;
use crate::link::{Input, Purpose};
use crate::metrics::Metrics;

/// Period of the walk / publish / housekeeping tick.
const TICK: Duration = Duration::from_millis(100);
/// The longest time one step of a walking bot covers.
const MAX_WALK_STEP_MS: u64 = 1_000;

pub(super) struct Driver {
    pub(super) peer: Peer,
    pub(super) identity: Identity,
    pub(super) endpoint: Endpoint,
    pub(super) start: Instant,
    pub(super) metrics: Arc<Metrics>,
    pub(super) inbox_tx: mpsc::Sender<Input>,
    pub(super) links: LinkTable<Connection>,
    pub(super) book: AddressBook,
    /// The configured bootstrap peers.
    pub(super) bootstrap: Vec<SocketAddr>,
    /// Where the current (re)join tries, in turn: an id when known (a
    /// cached peer), and an address.
    pub(super) entries: Vec<(Option<PeerId>, SocketAddr)>,
    pub(super) boot_next: usize,
    /// The entry address that answered our last join.
    pub(super) joined_via: Option<SocketAddr>,
    /// When to walk the next merge probes.
    pub(super) merge_at: Option<Instant>,
    /// Merge probes come every one to two of these.
    pub(super) merge_every: Duration,
    /// The next peer cache entry a merge probe may go through.
    pub(super) merge_cached: usize,
    /// Merge rounds since the node started.
    pub(super) merge_rounds: u64,
    /// Recently kept peers (and their file under the state directory).
    pub(super) cache: PeerCache,
    pub(super) ticks: u64,
    pub(super) boot_retry: Option<Instant>,
    /// Whether the bootstrap peer answered (or there is none).
    pub(super) bootstrapped: bool,
    /// The bot's walk, and when it last stepped.
    pub(super) walker: Option<(Walker, Walk, Millis)>,
    pub(super) rng: Rng,
    pub(super) view_tx: watch::Sender<Arc<Snapshot>>,
    pub(super) dirty: bool,
    pub(super) join_hops: Option<u16>,
    /// Routed requests awaiting their answer, by token.
    pub(super) routes: std::collections::HashMap<
        u64,
        tokio::sync::oneshot::Sender<Result<Routed, peerworld_protocol::object::ObjectError>>,
    >,
    /// When to try the next rejoin while lost, and the backoff after it.
    pub(super) rejoin: Rejoin,
    pub(super) links_open: Arc<AtomicUsize>,
    pub(super) tasks: JoinSet<()>,
    pub(super) writers: JoinSet<()>,
    /// Chat lines heard, shared with the handles.
    pub(super) chat: super::chat::ChatFeed,
    /// The objects last published, and the (generation, second) they are of.
    pub(super) objects: ((u64, u64), Arc<Vec<WorldObject>>),
}

impl Driver {
    pub(super) fn now(&self) -> Millis {
        Millis(self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, t: Millis) -> Instant {
        self.start + Duration::from_millis(t.0)
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inbox: mpsc::Receiver<Input>,
        stop: CancellationToken,
        crash: CancellationToken,
        muted: Arc<AtomicBool>,
    ) {
        info!(addr = %self.peer.info().addr, pos = ?self.peer.info().pos, "node started");
        if !self.entries.is_empty() {
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
                // Timers and the tick before any input: a peer that keeps
                // the inbox busy must not stop our pings, failure detection,
                // anti-entropy or publishing (once it did, and honest
                // neighbours timed the victim out).
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.walk(now);
                    self.peer.handle_timeout(now);
                    self.dirty = true;
                }
                _ = tick.tick() => self.on_tick(),
                cmd = commands.recv() => match cmd {
                    Some(Command::MoveTo(p)) => {
                        let now = self.now();
                        self.peer.move_to(p, now);
                        self.dirty = true;
                    }
                    Some(Command::Say(text, answer)) => {
                        let now = self.now();
                        let _ = answer.send(self.peer.say(now, &text));
                        self.dirty = true;
                    }
                    // Published before the answer: a program that lists
                    // objects right after placing one sees it.
                    Some(Command::PlaceObject(o, answer)) => {
                        let now = self.now();
                        let placed = self.peer.place_object(now, o.pos, &o.text, o.colour, o.ttl_s);
                        self.dirty = true;
                        self.publish(false);
                        let _ = answer.send(placed);
                    }
                    Some(Command::RemoveObject(key, answer)) => {
                        let now = self.now();
                        let removed = self.peer.remove_object(now, key);
                        self.dirty = true;
                        self.publish(false);
                        let _ = answer.send(removed);
                    }
                    Some(Command::Route(req, answer)) => {
                        let now = self.now();
                        let token = match req {
                            RouteRequest::Put { name, value, ttl_s } => {
                                self.peer.put_record(now, &name, value, ttl_s)
                            }
                            RouteRequest::Get(name) => Ok(self.peer.get_record(now, &name)),
                            RouteRequest::Find(p) => Ok(self.peer.route(now, p)),
                        };
                        match token {
                            Ok(token) => {
                                self.routes.retain(|_, w| !w.is_closed());
                                self.routes.insert(token, answer);
                            }
                            Err(e) => {
                                let _ = answer.send(Err(e));
                            }
                        }
                        self.dirty = true;
                    }
                    Some(Command::Suspend(d)) => {
                        info!(secs = d.as_secs_f64(), "suspended");
                        muted.store(true, Ordering::Relaxed);
                        tokio::time::sleep(d).await;
                        muted.store(false, Ordering::Relaxed);
                        info!("resumed");
                    }
                    None => {
                        self.leave().await;
                        break;
                    }
                },
                // Finished tasks are reaped before input too.
                Some(_) = self.writers.join_next(), if !self.writers.is_empty() => {}
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
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
            }
        }
        self.publish(true);
        self.tasks.abort_all();
    }

    /// Goodbye to everyone, let the writers deliver it, close the endpoint.
    async fn leave(&mut self) {
        self.refresh_cache();
        let now = self.now();
        self.peer.leave(now);
        self.flush();
        self.links.clear(); // drops the writer queues: writers finish their streams
        let writers = std::mem::take(&mut self.writers);
        let _ = tokio::time::timeout(Duration::from_millis(1500), writers.join_all()).await;
        self.endpoint.close(close_code::NORMAL.into(), b"goodbye");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        info!("left the world");
    }

    fn on_input(&mut self, input: Input) {
        self.dirty = true;
        match input {
            Input::Connected {
                conn,
                id,
                dialed,
                purpose,
            } => self.on_connected(conn, id, dialed, purpose),
            Input::DialFailed {
                addr,
                expected,
                purpose,
            } => {
                Metrics::add(&self.metrics.dials_failed, 1);
                if let Some(id) = expected {
                    self.book.failed(&id, addr);
                }
                if let Some(id) = expected
                    && let Some(queued) = self.links.dial_failed(&id)
                {
                    Metrics::add(&self.metrics.send_dropped, queued.len() as u64);
                    debug!(peer = %id.short(), %addr, "dial failed");
                }
                if purpose == Purpose::Join {
                    warn!(%addr, "bootstrap peer unreachable; retrying");
                    self.boot_retry = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Closed { id, conn_id } => {
                if self.links.closed(&id, |c| c.stable_id() == conn_id) {
                    self.links_open.store(self.links.len(), Ordering::Relaxed);
                    debug!(peer = %id.short(), "connection closed");
                }
            }
        }
    }

    fn on_message(&mut self, from: PeerId, msg: Message) {
        let remote = self.links.get(&from).map(|link| link.conn.remote_address());
        let refused = self.book.learn_from(from, remote, &msg);
        if refused > 0 {
            Metrics::add(&self.metrics.addrs_out_of_scope, refused);
        }
        let remote = remote.map(|r| r.to_string());
        let now = self.now();
        self.peer
            .handle_from_addr(now, from, remote.as_deref(), msg);
        // Only a peer the overlay keeps refreshes its link: a stranger that
        // pings keeps no slot.
        if self.peer.needs_link(&from)
            && let Some(link) = self.links.get_mut(&from)
        {
            link.last_used = Instant::now();
        }
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
                    self.join_hops = Some(hops);
                    info!(acceptor = %acceptor.short(), hops, "joined");
                }
                Event::ObservedAddr(observed) => {
                    info!(%observed, "advertising the address the world sees");
                }
                Event::Rejected { from, reason } => {
                    warn!(peer = %from.short(), %reason, "refused a message");
                }
                Event::AreaMessage {
                    origin,
                    centre,
                    payload,
                    ..
                } => self.chat.hear(&self.peer, origin, centre, &payload),
                Event::Routed {
                    token,
                    hops,
                    owner,
                    answer,
                    ..
                } => {
                    debug!(token, hops, owner = %owner.short(), "route answered");
                    if let Some(waiter) = self.routes.remove(&token) {
                        let _ = waiter.send(Ok(Routed {
                            hops,
                            owner,
                            answer,
                        }));
                    }
                }
                Event::NeighbourAdded(id) => debug!(peer = %id.short(), "neighbour added"),
                Event::NeighbourRemoved(id, why) => {
                    debug!(peer = %id.short(), ?why, "neighbour removed");
                }
            }
        }
    }

    /// A walking bot steps to where it is at `now`. Called on every tick and
    /// before the overlay's timers: a motion round that ran while a late
    /// tick had not yet stepped took the bot for stopped (no step for twice
    /// the step interval) and announced a stop, then a start, to every
    /// neighbour (on a loaded swarm, most of all moves).
    fn walk(&mut self, now: Millis) {
        let walking = self.peer.is_joined() && self.bootstrapped;
        if let Some((walker, walk, stepped)) = self.walker.as_mut()
            && let Some((speed, mobility, home)) = walk.model()
        {
            // The step covers the time since the last one, not one tick:
            // on a busy machine ticks come late, and a walker whose pace
            // followed them would leave its own announced motion (and
            // announce again) at every late tick. A long pause (a suspended
            // node) walks at most one second's way.
            let secs = now.since(*stepped).min(MAX_WALK_STEP_MS) as f64 / 1000.0;
            *stepped = now;
            if walking {
                let world = self.peer.config().world;
                let step = f64::from(speed) * secs;
                let pos = walker.step(world, mobility, home.as_slice(), step, &mut self.rng);
                self.peer.move_to(pos, now);
                self.dirty = true;
            }
        }
    }

    fn on_tick(&mut self) {
        let now = self.now();
        self.walk(now);
        self.dial_held_back();
        if let Some(at) = self.boot_retry
            && Instant::now() >= at
        {
            self.dial_bootstrap();
        }
        self.rejoin_if_lost(now);
        self.merge_probes(now);
        self.ticks += 1;
        if self.ticks.is_multiple_of(CACHE_EVERY_TICKS) {
            self.refresh_cache();
        }
        let peer = &self.peer;
        let reaped = self.links.reap(Instant::now(), |id| peer.needs_link(id));
        for conn in reaped.duplicates {
            conn.close(close_code::NORMAL.into(), b"duplicate");
        }
        for conn in reaped.idle {
            conn.close(close_code::NORMAL.into(), b"not a neighbour");
        }
        self.links_open.store(self.links.len(), Ordering::Relaxed);
        self.book.prune(|id| peer.needs_link(id));
        self.publish(false);
    }

    /// The live objects, copied again only when they changed (or some
    /// expired: checked once a second).
    fn objects_list(&mut self, now: Millis) -> Arc<Vec<WorldObject>> {
        let generation = (self.peer.objects_generation(), now.0 / 1000);
        if self.objects.0 != generation {
            let list = self.peer.live_objects(now).cloned().collect();
            self.objects = (generation, Arc::new(list));
        }
        self.objects.1.clone()
    }

    fn publish(&mut self, stopped: bool) {
        if !self.dirty && !stopped {
            return;
        }
        self.dirty = false;
        let now = self.now();
        let mut view = self.peer.view(now);
        if stopped {
            view.state = PeerState::Stopped;
        } else if !self.bootstrapped {
            view.state = PeerState::Joining;
        }
        let snapshot = Snapshot {
            view,
            world: self.peer.config().world,
            uptime_ms: now.0,
            stats: self.peer.stats().clone(),
            links: self.links.len(),
            join_hops: self.join_hops,
            bytes: {
                let m = self.metrics.snapshot();
                m.bytes_sent + m.bytes_recv
            },
            objects: self.objects_list(now),
        };
        self.view_tx.send_replace(Arc::new(snapshot));
    }
}

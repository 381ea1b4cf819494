//! A running node: [`Node::spawn`] binds the endpoint and starts the driver.
//!
//! | file | what |
//! |---|---|
//! | `handle.rs` | the surface: `NodeConfig`, `Snapshot`, `NodeHandle`, `Command` |
//! | `driver.rs` | the task that owns the `Peer`: the select loop, sending, publishing |
//! | `entry.rs` | staying in the world: entry peers, rejoins while lost, merge probes, the peer cache |
//! | `links.rs` | the link table (duplicates, dials in flight), no quinn inside |
//! | `addrbook.rs` | where to dial each peer; hints never overwrite a peer's own word |
//! | `chat.rs` | the chat lines heard, for `/messages` |
//! | `cache.rs` | recently kept peers, for joining again (persisted under `state_dir`) |
//! | `admission.rs` | caps on handshakes in flight and connections per source |
//! | `transport.rs` | QUIC settings, the accept loop, one dial |

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use peerworld_protocol::mobility::Walker;
use peerworld_protocol::sim::Rng;
use peerworld_protocol::{Millis, Peer, PeerInfo, Stats};
use quinn::Endpoint;
use quinn::crypto::rustls::QuicServerConfig;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

mod addrbook;
mod admission;
mod cache;
mod chat;
mod driver;
mod entry;
mod handle;
mod links;
mod transport;
mod wire;

pub use admission::{MAX_HANDSHAKES, MAX_LINKS_PER_IP};
pub use chat::{CHAT_KEPT, ChatFeed, ChatLine, ObjectCommandError, SayError};
pub use entry::MERGE_EVERY;
pub use handle::{
    Command, NewObject, NodeConfig, NodeHandle, ROUTE_WAIT, RecordError, RouteRequest, Routed,
    Snapshot, Walk,
};
pub use links::{MAX_LINKS, MAX_PENDING_DIALS};

use crate::Error;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::socket::{Cut, MutableSocket};
use driver::Driver;

/// Driver inbox (messages from connection tasks).
const INBOX: usize = 4096;

/// Start of the incarnation clock: 2026-01-01 00:00 UTC, in Unix seconds.
const INCARNATION_EPOCH_S: u64 = 1_767_225_600;

/// This boot's incarnation: tenths of a second since
/// [`INCARNATION_EPOCH_S`] (a u32 lasts 13 years), and always above the
/// last one handed out in this process, so that a node restarted at once,
/// even in the same process, counts as a new life.
fn incarnation_now() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static LAST: AtomicU32 = AtomicU32::new(0);
    let tenths = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() / 100)
        .saturating_sub(u128::from(INCARNATION_EPOCH_S) * 10);
    let clock = u32::try_from(tenths).unwrap_or(u32::MAX).max(1);
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(clock.max(last.saturating_add(1)))
        })
        .unwrap_or(0);
    clock.max(prev.saturating_add(1))
}

/// 64 bits the operating system drew at random (std's hash keys are seeded
/// from it), for secrets nobody else may guess.
fn os_random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish()
}

/// A running node. See [`Node::spawn`].
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Binds the endpoint and starts the driver on the current tokio runtime.
    pub fn spawn(config: NodeConfig) -> Result<NodeHandle, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(Error::NoRuntime)?;
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
        let cut = Arc::new(Cut::default());
        let socket = Arc::new(MutableSocket::new(inner, muted.clone(), cut.clone()));
        let server_crypto = QuicServerConfig::try_from(identity.server_config()?)
            .map_err(|e| Error::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(Arc::new(transport::transport_config()));
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
        let mut overlay = config.overlay.clone();
        if overlay.incarnation == 0 {
            overlay.incarnation = incarnation_now();
        }
        let mut peer = Peer::new(overlay, me, Millis(0));
        peer.set_token_secret(os_random_u64());
        peer.set_signer(Box::new(identity.signer()?));
        let metrics = Arc::new(Metrics::default());
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let mut first = peer.view(Millis(0));
        first.state = peerworld_protocol::PeerState::Joining;
        let (view_tx, view_rx) = watch::channel(Arc::new(Snapshot {
            view: first,
            world,
            uptime_ms: 0,
            stats: Stats::default(),
            links: 0,
            join_hops: None,
            bytes: 0,
            objects: Arc::default(),
        }));
        let stop = CancellationToken::new();
        let crash = CancellationToken::new();
        let done = CancellationToken::new();
        let walker = config
            .walk
            .model()
            .map(|_| (Walker::new(pos), config.walk, Millis(0)));
        let links_open = Arc::new(AtomicUsize::new(0));
        // The first join tries the configured bootstrap peers, then the
        // peers cached by an earlier run.
        let cache = cache::PeerCache::open(config.state_dir.as_deref());
        let entries: Vec<_> = config
            .bootstrap
            .iter()
            .map(|&a| (None, a))
            .chain(cache.peers().iter().map(|&(id, a)| (Some(id), a)))
            .collect();
        let chat = chat::ChatFeed::default();
        let driver = Driver {
            peer,
            identity,
            endpoint: endpoint.clone(),
            start,
            metrics: metrics.clone(),
            inbox_tx: inbox_tx.clone(),
            links: links::LinkTable::new(id, config.max_links),
            book: addrbook::AddressBook::new(id),
            bootstrap: config.bootstrap.clone(),
            entries: entries.clone(),
            boot_next: 0,
            joined_via: None,
            merge_at: None,
            merge_every: config.merge_every,
            merge_cached: 0,
            merge_rounds: 0,
            cache,
            ticks: 0,
            boot_retry: None,
            bootstrapped: entries.is_empty(),
            walker,
            rng,
            view_tx,
            dirty: true,
            join_hops: None,
            routes: std::collections::HashMap::new(),
            rejoin: entry::Rejoin::default(),
            links_open: links_open.clone(),
            tasks: JoinSet::new(),
            writers: JoinSet::new(),
            chat: chat.clone(),
            objects: ((u64::MAX, 0), Arc::default()),
        };
        let span = info_span!("node", id = %id.short());
        runtime.spawn(
            transport::accept_loop(
                endpoint,
                inbox_tx,
                metrics.clone(),
                (
                    links_open,
                    config.max_links,
                    admission::Admission::new(config.max_links_per_ip),
                ),
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
            chat,
            cut,
        })
    }
}

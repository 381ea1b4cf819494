//! peerworld's node: the QUIC driver around `peerworld_protocol::Peer`.
//!
//! [`Node::spawn`] binds one quinn endpoint (dialing and accepting, TLS 1.3
//! with self-signed certificates whose key hash is the [`PeerId`]) and starts
//! the driver task that owns the overlay state machine. The returned
//! [`NodeHandle`] moves the avatar, watches the view and shuts the node down.
//! [`status`] serves `/status`, `/metrics` and `/healthz`; [`swarm`] runs many
//! nodes in one process and checks the overlay's invariants over real QUIC.

pub mod args;
pub mod identity;
mod link;
pub mod metrics;
mod node;
mod socket;
pub mod status;
pub mod status_objects;
pub mod status_records;
pub mod swarm;

pub use identity::Identity;
pub use metrics::{Metrics, MetricsSnapshot};
pub use node::{
    CHAT_KEPT, ChatFeed, ChatLine, Command, MAX_HANDSHAKES, MAX_LINKS, MAX_LINKS_PER_IP,
    MAX_PENDING_DIALS, NewObject, Node, NodeConfig, NodeHandle, ObjectCommandError, ROUTE_WAIT,
    RecordError, RouteRequest, Routed, SayError, Snapshot, Walk,
};
pub use peerworld_protocol::{Neighbour, PeerState};

/// Errors of the node library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Our own identity key file could not be read or written.
    #[error("identity key {path}: {source}")]
    KeyFile {
        /// The key file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Our own identity key could not be made or parsed, or its certificate
    /// could not be signed.
    #[error("{}: {source}", key_context(.path.as_deref()))]
    Key {
        /// The key file, if the key came from one.
        path: Option<std::path::PathBuf>,
        /// Why.
        source: rcgen::Error,
    },
    /// The TLS or QUIC crypto configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A peer's certificate is missing, does not parse, or does not prove
    /// the id it names.
    #[error("peer certificate: {0}")]
    PeerCertificate(String),
    /// A socket could not be bound or used.
    #[error("socket {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("configuration: {0}")]
    Config(String),
    /// The node's driver has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// Must be called from inside a tokio runtime.
    #[error("no tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
}

/// QUIC application close codes.
pub mod close_code {
    /// Normal close (goodbye, idle link, duplicate connection).
    pub const NORMAL: u32 = 0;
    /// A frame did not decode.
    pub const MALFORMED: u32 = 0x10;
    /// A frame exceeded the size limit.
    pub const TOO_LARGE: u32 = 0x11;
    /// A frame carried an unsupported protocol version.
    pub const BAD_VERSION: u32 = 0x12;
    /// The node has too many connections.
    pub const BUSY: u32 = 0x13;
    /// The peer opened a second stream (one control stream per direction).
    pub const EXTRA_STREAM: u32 = 0x14;
}

/// What an identity key error is about: a file that holds no usable key
/// (truncated or corrupt), or a key being made.
fn key_context(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => format!(
            "identity file {} holds no usable key (truncated or corrupt? move it away to make a new identity)",
            p.display()
        ),
        None => "identity key".to_string(),
    }
}

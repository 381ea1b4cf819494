//! One QUIC connection to one authenticated peer: a writer task that sends
//! length-delimited control frames on our unidirectional stream, and a reader
//! task that decodes the peer's streams and datagrams for the driver.
//!
//! A frame is a 4-byte little-endian length, then the encoded message. A frame
//! that fails to decode closes the connection with a code from
//! [`crate::close_code`], a log line and a counter; the node keeps running.

use std::sync::Arc;

use bytes::Bytes;
use peerworld_protocol::message::{self, DecodeError, MAX_FRAME_LEN};
use peerworld_protocol::{Message, PeerId};
use quinn::Connection;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::identity::id_of_cert;
use crate::metrics::Metrics;
use crate::{Error, close_code};

/// Bytes of the length prefix of a stream frame.
pub(crate) const LEN_PREFIX: usize = 4;

/// Why a connection was dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// To carry messages to a peer (or it dialled us).
    Peer,
    /// To join (or join again) through the peer at the other end.
    Join,
    /// To walk a merge probe (a join for our own position) through it.
    Probe,
}

/// What the connection tasks tell the driver.
#[derive(Debug)]
pub(crate) enum Input {
    /// A handshake completed.
    Connected {
        conn: Connection,
        id: PeerId,
        dialed: bool,
        purpose: Purpose,
    },
    /// A dial failed or timed out.
    DialFailed {
        addr: std::net::SocketAddr,
        expected: Option<PeerId>,
        purpose: Purpose,
    },
    /// A decoded message from the authenticated peer `from`.
    Message { from: PeerId, msg: Message },
    /// A connection ended.
    Closed { id: PeerId, conn_id: usize },
}

/// The authenticated id of a connection's peer.
pub(crate) fn peer_id(conn: &Connection) -> Result<PeerId, Error> {
    let certs = conn
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .ok_or_else(|| Error::PeerCertificate("none presented".into()))?;
    let cert = certs
        .first()
        .ok_or_else(|| Error::PeerCertificate("empty chain".into()))?;
    id_of_cert(cert)
}

/// Writes frames handed over `rx` on a fresh unidirectional stream, then
/// finishes the stream when the sender is dropped.
pub(crate) async fn write_frames(conn: Connection, mut rx: mpsc::Receiver<Bytes>) {
    let mut stream = match conn.open_uni().await {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "could not open a stream");
            return;
        }
    };
    while let Some(frame) = rx.recv().await {
        let len = (frame.len() as u32).to_le_bytes();
        if stream.write_all(&len).await.is_err() || stream.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = stream.finish();
    // Wait (briefly) until the peer has the data, so a goodbye is not lost
    // to the endpoint closing right after.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.stopped()).await;
}

/// Reads everything the peer sends on `conn` until it closes.
pub(crate) async fn read_link(
    conn: Connection,
    id: PeerId,
    inbox: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
) {
    let conn_id = conn.stable_id();
    let mut streams = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            stream = conn.accept_uni() => match stream {
                Ok(recv) => {
                    streams.spawn(read_stream(conn.clone(), recv, id, inbox.clone(), metrics.clone()));
                }
                Err(_) => break,
            },
            datagram = conn.read_datagram() => match datagram {
                Ok(bytes) => {
                    Metrics::add(&metrics.datagrams_recv, 1);
                    if !deliver(&conn, id, &bytes, 0, &inbox, &metrics).await {
                        break;
                    }
                }
                Err(_) => break,
            },
        }
    }
    streams.abort_all();
    let _ = inbox.send(Input::Closed { id, conn_id }).await;
}

async fn read_stream(
    conn: Connection,
    mut recv: quinn::RecvStream,
    id: PeerId,
    inbox: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; LEN_PREFIX];
        if recv.read_exact(&mut len).await.is_err() {
            return; // finished or reset
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME_LEN {
            refuse(&conn, id, &DecodeError::TooLarge(len), &metrics);
            return;
        }
        buf.resize(len, 0);
        if recv.read_exact(&mut buf).await.is_err() {
            return;
        }
        if !deliver(&conn, id, &buf, LEN_PREFIX, &inbox, &metrics).await {
            return;
        }
    }
}

/// Decodes one frame and hands it to the driver; false when the connection
/// was closed for it (or the driver is gone).
async fn deliver(
    conn: &Connection,
    id: PeerId,
    frame: &[u8],
    overhead: usize,
    inbox: &mpsc::Sender<Input>,
    metrics: &Metrics,
) -> bool {
    match message::decode(frame) {
        Ok(msg) => {
            Metrics::add(&metrics.msgs_recv, 1);
            Metrics::add(&metrics.bytes_recv, (frame.len() + overhead) as u64);
            inbox.send(Input::Message { from: id, msg }).await.is_ok()
        }
        Err(e) => {
            refuse(conn, id, &e, metrics);
            false
        }
    }
}

fn refuse(conn: &Connection, id: PeerId, error: &DecodeError, metrics: &Metrics) {
    Metrics::add(&metrics.decode_errors, 1);
    let code = match error {
        DecodeError::TooLarge(_) => {
            Metrics::add(&metrics.oversized_frames, 1);
            close_code::TOO_LARGE
        }
        DecodeError::UnknownVersion(_) => {
            Metrics::add(&metrics.bad_versions, 1);
            close_code::BAD_VERSION
        }
        _ => close_code::MALFORMED,
    };
    warn!(peer = %id.short(), %error, code, "bad frame: closing the connection");
    let reason = error.to_string();
    conn.close(code.into(), &reason.as_bytes()[..reason.len().min(200)]);
}

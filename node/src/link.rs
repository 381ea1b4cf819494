//! One QUIC connection to one authenticated peer: a writer task that sends
//! length-delimited control frames on our unidirectional stream, and a reader
//! task that decodes the peer's streams and datagrams for the driver.
//!
//! A frame is a 4-byte little-endian length, then the encoded message. A frame
//! that fails to decode closes the connection with a code from
//! [`crate::close_code`], a log line and a counter; the node keeps running.
//!
//! Bounds: each side opens exactly one control stream per connection (a
//! second one closes the connection with `close_code::EXTRA_STREAM`: there is
//! nothing to reap, and stream churn costs nothing), and the writer's queue
//! holds at most [`WRITER_QUEUE_BYTES`] (and [`WRITER_QUEUE_FRAMES`]): a peer
//! that never grants stream credit pins that much, then its frames are
//! dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Most bytes queued for one connection's writer.
pub(crate) const WRITER_QUEUE_BYTES: usize = 256 * 1024;
/// Most frames queued for one connection's writer.
pub(crate) const WRITER_QUEUE_FRAMES: usize = 1024;

/// The driver's end of a writer queue, bounded in bytes and in frames.
#[derive(Debug)]
pub(crate) struct WriterTx {
    tx: mpsc::Sender<Bytes>,
    free: Arc<AtomicUsize>,
}

/// The writer task's end of the queue.
#[derive(Debug)]
pub(crate) struct WriterRx {
    rx: mpsc::Receiver<Bytes>,
    free: Arc<AtomicUsize>,
}

/// A writer queue holding at most `bytes` and `frames`.
pub(crate) fn writer_queue(bytes: usize, frames: usize) -> (WriterTx, WriterRx) {
    let (tx, rx) = mpsc::channel(frames);
    // The bytes the queue may still take.
    let free = Arc::new(AtomicUsize::new(bytes));
    let tx = WriterTx {
        tx,
        free: free.clone(),
    };
    (tx, WriterRx { rx, free })
}

impl WriterTx {
    /// Queues `frame`; false (and nothing queued) when it would pass either
    /// bound or the writer is gone.
    pub(crate) fn try_send(&self, frame: Bytes) -> bool {
        let len = frame.len();
        let took = self
            .free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                free.checked_sub(len)
            });
        if took.is_err() {
            return false;
        }
        if self.tx.try_send(frame).is_err() {
            self.free.fetch_add(len, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl WriterRx {
    /// The next frame; its bytes count as queued until [`WriterRx::written`].
    async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// `len` bytes left the queue.
    fn written(&self, len: usize) {
        self.free.fetch_add(len, Ordering::AcqRel);
    }
}

/// Writes frames handed over `rx` on a fresh unidirectional stream, then
/// finishes the stream when the sender is dropped.
pub(crate) async fn write_frames(conn: Connection, mut rx: WriterRx) {
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
        rx.written(frame.len());
    }
    let _ = stream.finish();
    // Wait (briefly) until the peer has the data, so a goodbye is not lost
    // to the endpoint closing right after.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.stopped()).await;
}

/// Reads everything the peer sends on `conn` until it closes: its one
/// control stream and its datagrams.
pub(crate) async fn read_link(
    conn: Connection,
    id: PeerId,
    inbox: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
) {
    let conn_id = conn.stable_id();
    let mut control = None;
    loop {
        tokio::select! {
            stream = conn.accept_uni() => match stream {
                Ok(recv) if control.is_none() => {
                    let task = read_stream(conn.clone(), recv, id, inbox.clone(), metrics.clone());
                    control = Some(tokio::spawn(task));
                }
                Ok(_) => {
                    Metrics::add(&metrics.extra_streams, 1);
                    warn!(peer = %id.short(), "a second stream: closing the connection");
                    conn.close(close_code::EXTRA_STREAM.into(), b"one stream per direction");
                    break;
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
    if let Some(task) = control {
        task.abort();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_writer_queue_is_bounded_in_bytes_and_frees_what_was_written() {
        let (tx, mut rx) = writer_queue(10_000, 1_000);
        let frame = Bytes::from(vec![0u8; 3_000]);
        let taken = std::iter::repeat_with(|| tx.try_send(frame.clone()))
            .take(10)
            .filter(|&ok| ok)
            .count();
        assert_eq!(taken, 3, "10 000 bytes hold three frames of 3 000");
        assert!(tx.try_send(Bytes::from(vec![0u8; 1_000])), "the rest fits");
        assert!(!tx.try_send(Bytes::from_static(b"x")));
        let first = rx.recv().await.unwrap();
        assert!(!tx.try_send(frame.clone()), "received is not written");
        rx.written(first.len());
        assert!(tx.try_send(frame.clone()), "written frees its bytes");
        let (small, _rx) = writer_queue(10_000, 2);
        let one = Bytes::from_static(b"x");
        assert!(small.try_send(one.clone()) && small.try_send(one.clone()));
        assert!(!small.try_send(one), "the frame bound holds too");
    }
}

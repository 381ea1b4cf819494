//! QUIC plumbing: the transport settings, the accept loop and one dial.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peerworld_protocol::PeerId;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, TransportConfig, VarInt};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info};

use super::admission::{Admission, Refusal};
use super::links::MAX_PENDING_DIALS;
use crate::identity::Identity;
use crate::link::{self, Input, Purpose};
use crate::metrics::Metrics;
use crate::{Error, close_code};

/// Handshake deadline.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The QUIC settings of every connection.
pub(super) fn transport_config() -> TransportConfig {
    let mut t = TransportConfig::default();
    // The overlay detects failures itself (its own, shorter timeout); quinn's
    // idle timeout only reclaims dead connections.
    t.max_idle_timeout(Some(VarInt::from_u32(10_000).into()));
    t.keep_alive_interval(None);
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    // One control stream per direction (a second closes the connection).
    t.max_concurrent_uni_streams(VarInt::from_u32(1));
    t
}

/// Accepts connections until `stop` and hands each authenticated one to the
/// driver, which makes room for it when full (see `LinkTable::make_room`).
/// It refuses beyond the cap plus [`MAX_PENDING_DIALS`] of headroom, beyond
/// [`super::MAX_HANDSHAKES`] in flight and beyond the source's share; under load
/// it first sends an unvalidated source a retry.
pub(super) async fn accept_loop(
    endpoint: Endpoint,
    inbox: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
    (links_open, max_links, admission): (Arc<AtomicUsize>, usize, Arc<Admission>),
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            _ = stop.cancelled() => return,
            i = endpoint.accept() => match i { Some(i) => i, None => return },
        };
        if links_open.load(Ordering::Relaxed) >= max_links + MAX_PENDING_DIALS {
            Metrics::add(&metrics.handshakes_refused, 1);
            incoming.refuse();
            continue;
        }
        if admission.under_load() && !incoming.remote_address_validated() && incoming.may_retry() {
            Metrics::add(&metrics.handshake_retries, 1);
            let _ = incoming.retry();
            continue;
        }
        let remote = incoming.remote_address();
        let mut admitted = match admission.admit(remote.ip()) {
            Ok(a) => a,
            Err(why) => {
                Metrics::add(&metrics.handshakes_refused, 1);
                if why == Refusal::PerSource {
                    Metrics::add(&metrics.conns_per_source_refused, 1);
                }
                incoming.refuse();
                continue;
            }
        };
        let inbox = inbox.clone();
        let metrics = metrics.clone();
        tokio::spawn(
            async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await;
                admitted.handshake_done();
                let conn = match handshake {
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
                        let sent = inbox
                            .send(Input::Connected {
                                conn: conn.clone(),
                                id,
                                dialed: false,
                                purpose: Purpose::Peer,
                            })
                            .await;
                        if sent.is_ok() {
                            // The source's slot is held while the connection lives.
                            conn.closed().await;
                        }
                    }
                    Err(e) => {
                        Metrics::add(&metrics.handshakes_refused, 1);
                        conn.close(close_code::MALFORMED.into(), b"bad certificate");
                        info!(%remote, error = %e, "refused an incoming connection");
                    }
                }
                drop(admitted);
            }
            .in_current_span(),
        );
    }
}

/// Everything a dial needs from the driver.
pub(super) struct Dialer<'a> {
    pub(super) identity: &'a Identity,
    pub(super) endpoint: &'a Endpoint,
    pub(super) inbox: &'a mpsc::Sender<Input>,
    pub(super) metrics: &'a Arc<Metrics>,
}

impl Dialer<'_> {
    /// Dials `addr` (expecting `expected`'s certificate if given) in a task
    /// on `tasks`; the outcome reaches the driver as an [`Input`].
    pub(super) fn dial(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        addr: SocketAddr,
        expected: Option<PeerId>,
        purpose: Purpose,
    ) -> Result<(), Error> {
        let crypto = QuicClientConfig::try_from(self.identity.client_config(expected)?)
            .map_err(|e| Error::Tls(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport_config()));
        let inbox = self.inbox.clone();
        let metrics = self.metrics.clone();
        let connecting = self.endpoint.connect_with(config, addr, "peerworld");
        tasks.spawn(
            async move {
                let failed = Input::DialFailed {
                    addr,
                    expected,
                    purpose,
                };
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
                                purpose,
                            }
                        }
                        Err(_) => failed,
                    },
                    Some(Err(e)) => {
                        debug!(%addr, error = %e, "dial failed");
                        failed
                    }
                    None => failed,
                };
                let _ = inbox.send(input).await;
            }
            .in_current_span(),
        );
        Ok(())
    }
}

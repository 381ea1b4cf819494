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
    // No path-MTU discovery: our messages are small (a move is under 100
    // bytes; larger ones go on the stream), links are many and short-lived,
    // and each discovery sends about four probes padded up to 1 452 bytes,
    // each acknowledged: on `swarm` that was a tenth of all packets.
    t.mtu_discovery_config(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use quinn::crypto::rustls::QuicServerConfig;

    /// Two endpoints on loopback with our settings, the client's config
    /// expecting the server's id.
    fn pair() -> (Endpoint, Endpoint, quinn::ClientConfig) {
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let crypto = QuicServerConfig::try_from(a.server_config().unwrap()).unwrap();
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::new(transport_config()));
        let server = Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
        let crypto = QuicClientConfig::try_from(b.client_config(Some(a.id())).unwrap()).unwrap();
        let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
        client_config.transport_config(Arc::new(transport_config()));
        let client = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        (server, client, client_config)
    }

    #[tokio::test]
    async fn links_send_no_path_mtu_probes() {
        let (server, client, config) = pair();
        let addr = server.local_addr().unwrap();
        let dial = client.connect_with(config, addr, "peerworld").unwrap();
        let (dialed, accepted) = tokio::join!(dial, async { server.accept().await.unwrap().await });
        let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
        for _ in 0..20 {
            dialed.send_datagram(Bytes::from_static(b"a move")).unwrap();
            accepted.read_datagram().await.unwrap();
            accepted
                .send_datagram(Bytes::from_static(b"a reply"))
                .unwrap();
            dialed.read_datagram().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for conn in [&dialed, &accepted] {
            let path = conn.stats().path;
            assert_eq!(path.sent_plpmtud_probes, 0, "{path:?}");
            assert!(conn.max_datagram_size().is_some_and(|m| m >= 1_000));
        }
    }
}

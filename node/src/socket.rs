//! A UDP socket that can be silenced: the in-process stand-in for a crashed
//! machine. Once muted it drops everything it would send or receive, so the
//! other nodes see a peer that simply went quiet (no goodbye, no close).
//! It can also be cut off from some addresses only (a network partition):
//! datagrams to or from them are dropped, the rest flows.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// Wraps the runtime's socket with a mute switch.
pub(crate) struct MutableSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    muted: Arc<AtomicBool>,
    cut: Arc<Cut>,
}

/// The addresses a socket is cut off from (none by default). The flag
/// spares the lock on every datagram while nothing is cut.
#[derive(Debug, Default)]
pub(crate) struct Cut {
    any: AtomicBool,
    from: Mutex<Vec<SocketAddr>>,
}

impl Cut {
    /// Cuts the socket off from exactly these addresses (none: heals).
    pub(crate) fn set(&self, from: &[SocketAddr]) {
        let mut cut = self.from.lock().unwrap_or_else(|e| e.into_inner());
        cut.clear();
        cut.extend_from_slice(from);
        self.any.store(!cut.is_empty(), Ordering::Relaxed);
    }

    fn blocks(&self, addr: &SocketAddr) -> bool {
        self.any.load(Ordering::Relaxed)
            && self
                .from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(addr)
    }
}

impl fmt::Debug for MutableSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutableSocket")
            .field("muted", &self.muted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MutableSocket {
    pub(crate) fn new(
        inner: Arc<dyn AsyncUdpSocket>,
        muted: Arc<AtomicBool>,
        cut: Arc<Cut>,
    ) -> Self {
        Self { inner, muted, cut }
    }
}

impl AsyncUdpSocket for MutableSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if self.muted.load(Ordering::Relaxed) || self.cut.blocks(&transmit.destination) {
            return Ok(());
        }
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let got = self.inner.poll_recv(cx, bufs, meta);
            if !self.muted.load(Ordering::Relaxed) {
                if let Poll::Ready(Ok(n)) = got {
                    // A datagram from a cut-off address reads as empty,
                    // which the endpoint skips.
                    for m in meta.iter_mut().take(n) {
                        if self.cut.blocks(&m.addr) {
                            m.len = 0;
                        }
                    }
                }
                return got;
            }
            match got {
                // Drain and drop; the inner socket re-registers the waker
                // when it runs dry.
                Poll::Ready(Ok(_)) => continue,
                other => return other,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

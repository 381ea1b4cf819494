//! A UDP socket that can be silenced: the in-process stand-in for a crashed
//! machine. Once muted it drops everything it would send or receive, so the
//! other nodes see a peer that simply went quiet (no goodbye, no close).

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// Wraps the runtime's socket with a mute switch.
pub(crate) struct MutableSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    muted: Arc<AtomicBool>,
}

impl fmt::Debug for MutableSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutableSocket")
            .field("muted", &self.muted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MutableSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, muted: Arc<AtomicBool>) -> Self {
        Self { inner, muted }
    }
}

impl AsyncUdpSocket for MutableSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if self.muted.load(Ordering::Relaxed) {
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

//! The driver's side of the links: dialing, taking a connection once its
//! handshake completes, and carrying frames to peers (on a link, as a
//! datagram, or queued behind a dial).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use peerworld_protocol::PeerId;
use peerworld_protocol::message::{self, Message};
use quinn::Connection;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, warn};

use super::driver::Driver;
use super::links::Queued;
use super::transport::Dialer;
use crate::close_code;
use crate::link::{self, LEN_PREFIX, Purpose, WRITER_QUEUE_BYTES, WRITER_QUEUE_FRAMES};
use crate::metrics::Metrics;

/// How long a dial for a first move waits for the peer to dial us (see
/// [`super::links::LinkTable::defer_dial`]).
const DIAL_DEFER: Duration = Duration::from_millis(300);

impl Driver {
    fn dialer(&self) -> Dialer<'_> {
        Dialer {
            identity: &self.identity,
            endpoint: &self.endpoint,
            inbox: &self.inbox_tx,
            metrics: &self.metrics,
        }
    }

    pub(super) fn dial(&mut self, addr: SocketAddr, expected: Option<PeerId>, purpose: Purpose) {
        let mut tasks = std::mem::take(&mut self.tasks);
        if let Err(e) = self.dialer().dial(&mut tasks, addr, expected, purpose) {
            warn!(error = %e, "cannot build a client configuration");
        }
        self.tasks = tasks;
    }

    pub(super) fn on_connected(
        &mut self,
        conn: Connection,
        id: PeerId,
        dialed: bool,
        purpose: Purpose,
    ) {
        let me = self.peer.id();
        if id == me {
            conn.close(close_code::NORMAL.into(), b"that is me");
            if purpose == Purpose::Join {
                warn!("the bootstrap address is this node itself");
            }
            return;
        }
        if self.links.get(&id).is_none() && self.links.is_full() {
            let peer = &self.peer;
            match self.links.make_room(|p| peer.needs_link(p)) {
                Some(old) => {
                    Metrics::add(&self.metrics.links_evicted, 1);
                    old.close(close_code::BUSY.into(), b"slot given to another peer");
                }
                None => {
                    Metrics::add(&self.metrics.handshakes_refused, 1);
                    conn.close(close_code::BUSY.into(), b"too many connections");
                    return;
                }
            }
        }
        self.tasks.spawn(
            link::read_link(
                conn.clone(),
                id,
                self.inbox_tx.clone(),
                self.metrics.clone(),
            )
            .in_current_span(),
        );
        let duplicates_before = self.links.retiring_len();
        let writers = &mut self.writers;
        let (_, queued) = self.links.connected(
            id,
            conn,
            dialed,
            |conn| {
                let (tx, rx) = link::writer_queue(WRITER_QUEUE_BYTES, WRITER_QUEUE_FRAMES);
                writers.spawn(link::write_frames(conn.clone(), rx).in_current_span());
                tx
            },
            Instant::now(),
        );
        if self.links.retiring_len() > duplicates_before {
            Metrics::add(&self.metrics.duplicate_conns, 1);
        }
        self.links_open.store(self.links.len(), Ordering::Relaxed);
        if let Some(link) = self.links.get(&id) {
            for frame in queued {
                if !link.tx.try_send(frame) {
                    Metrics::add(&self.metrics.send_dropped, 1);
                }
            }
        }
        let remote = self.links.get(&id).map(|l| l.conn.remote_address());
        if let Some(addr) = remote
            && dialed
        {
            self.book.succeeded(&id, addr);
        }
        if let Some(addr) = remote
            && purpose != Purpose::Peer
        {
            self.book.learn_addr(id, addr, true);
        }
        let now = self.now();
        match purpose {
            Purpose::Join if !self.bootstrapped => {
                self.bootstrapped = true;
                self.joined_via = remote;
                self.rejoin.join_started = Some(Instant::now());
                info!(peer = %id.short(), "joining through the bootstrap peer");
                self.peer.join(id, now);
            }
            Purpose::Probe => {
                debug!(peer = %id.short(), "merge probe through a bootstrap peer");
                self.peer.probe_through(id, now);
            }
            Purpose::Join | Purpose::Peer => {}
        }
    }

    pub(super) fn send(&mut self, to: PeerId, msg: &Message) {
        let frame = match message::encode(msg) {
            Ok(f) => Bytes::from(f),
            Err(e) => {
                warn!(peer = %to.short(), error = %e, "cannot encode a message");
                return;
            }
        };
        let len = frame.len();
        let kept = self.peer.needs_link(&to);
        if let Some(link) = self.links.get_mut(&to) {
            if kept {
                link.last_used = Instant::now();
            }
            if msg.is_datagram()
                && link.conn.max_datagram_size().is_some_and(|max| len <= max)
                && link.conn.send_datagram(frame.clone()).is_ok()
            {
                self.count_sent(len, true);
                return;
            }
            if link.tx.try_send(frame) {
                self.count_sent(len + LEN_PREFIX, false);
            } else {
                Metrics::add(&self.metrics.send_dropped, 1);
            }
            return;
        }
        // Motion and pings to a peer we cannot reach now wait behind a dial
        // in flight, or start one to a peer we keep: a motion announcement
        // stands until the motion changes, so a dropped one leaves the peer
        // extrapolating an old motion. To others they are not worth a dial.
        if msg.is_datagram() && !kept && !self.links.is_dialing(&to) {
            Metrics::add(&self.metrics.send_dropped, 1);
            return;
        }
        let addr = self.book.get(&to);
        if addr.is_some() && self.links.is_full() {
            let peer = &self.peer;
            if let Some(old) = self.links.make_room(|p| peer.needs_link(p)) {
                Metrics::add(&self.metrics.links_evicted, 1);
                old.close(close_code::BUSY.into(), b"slot given to another peer");
                self.links_open.store(self.links.len(), Ordering::Relaxed);
            }
        }
        match self.links.queue(to, frame, addr.is_some()) {
            Queued::Behind => self.count_sent(len + LEN_PREFIX, false),
            Queued::Dial => {
                self.count_sent(len + LEN_PREFIX, false);
                if msg.is_datagram() && self.peer.id() > to {
                    // A first move: the peer, introduced to us by the same
                    // `Discover`, greets us now too, and both ends would
                    // dial. The lower id dials; we wait for its connection.
                    self.links.defer_dial(to, Instant::now() + DIAL_DEFER);
                } else if let Some(addr) = addr {
                    self.dial(addr, Some(to), Purpose::Peer);
                }
            }
            Queued::Dropped => {
                if addr.is_none() {
                    debug!(peer = %to.short(), "no address to dial");
                }
                Metrics::add(&self.metrics.send_dropped, 1);
            }
        }
    }

    fn count_sent(&self, bytes: usize, datagram: bool) {
        Metrics::add(&self.metrics.msgs_sent, 1);
        Metrics::add(&self.metrics.bytes_sent, bytes as u64);
        if datagram {
            Metrics::add(&self.metrics.datagrams_sent, 1);
        }
    }

    /// Dials the held-back dials whose peer did not connect meanwhile.
    pub(super) fn dial_held_back(&mut self) {
        for id in self.links.due_dials(Instant::now()) {
            match self.book.get(&id) {
                Some(addr) => self.dial(addr, Some(id), Purpose::Peer),
                None => {
                    let lost = self.links.dial_failed(&id).map_or(0, |q| q.len());
                    Metrics::add(&self.metrics.send_dropped, lost as u64);
                }
            }
        }
    }
}

//! The link table: which connection carries our traffic to each peer, the
//! duplicates waiting to close, and the dials in flight with the frames
//! queued behind them. A plain struct (no quinn inside): the driver feeds it
//! what happened and acts on what it returns.

use std::collections::HashMap;
use std::time::Duration;

use crate::link::WriterTx;
use bytes::Bytes;
use peerworld_protocol::PeerId;
use tokio::time::Instant;

/// Most connections a node holds (accepted and dialed).
pub const MAX_LINKS: usize = 512;
/// Most dials in flight at once; frames beyond are dropped, not dialed.
pub const MAX_PENDING_DIALS: usize = 32;
/// Control frames queued for a peer while its dial is in flight.
pub(crate) const MAX_QUEUED_PER_DIAL: usize = 64;
/// A connection to a peer the overlay no longer keeps closes after this.
pub(crate) const IDLE_LINK: Duration = Duration::from_secs(10);
/// A duplicate connection lives this long so frames in flight still arrive.
pub(crate) const RETIRE_AFTER: Duration = Duration::from_secs(2);
/// Two connections with one peer opened within this time are simultaneous
/// dials (settled by id); a later one means the peer lost the first (it
/// restarted, or its side closed), so the later one wins.
pub(crate) const RACE_WINDOW: Duration = Duration::from_secs(2);

/// One open connection and the queue of its writer task.
#[derive(Debug)]
pub(crate) struct Link<C> {
    pub(crate) conn: C,
    pub(crate) tx: WriterTx,
    /// The peer that dialed this connection.
    pub(crate) dialer: PeerId,
    pub(crate) opened: Instant,
    pub(crate) last_used: Instant,
}

/// What to do with a frame for a peer without a link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    /// Queued behind the dial in flight.
    Behind,
    /// Queued; start dialing.
    Dial,
    /// Dropped (queue full, too many dials or links).
    Dropped,
}

/// Connections by peer, the retiring duplicates and the dials in flight.
#[derive(Debug)]
pub(crate) struct LinkTable<C> {
    me: PeerId,
    /// Most open links (see [`LinkTable::make_room`]).
    max_links: usize,
    links: HashMap<PeerId, Link<C>>,
    retiring: Vec<(Instant, C)>,
    dialing: HashMap<PeerId, Vec<Bytes>>,
    /// Dials held back until then (see [`LinkTable::defer_dial`]); their
    /// frames wait in `dialing`.
    deferred: HashMap<PeerId, Instant>,
}

impl<C> LinkTable<C> {
    pub(crate) fn new(me: PeerId, max_links: usize) -> Self {
        Self {
            me,
            max_links,
            links: HashMap::new(),
            retiring: Vec::new(),
            dialing: HashMap::new(),
            deferred: HashMap::new(),
        }
    }

    /// Open links.
    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    pub(crate) fn get(&self, id: &PeerId) -> Option<&Link<C>> {
        self.links.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &PeerId) -> Option<&mut Link<C>> {
        self.links.get_mut(id)
    }

    /// Whether a dial to `id` is in flight.
    pub(crate) fn is_dialing(&self, id: &PeerId) -> bool {
        self.dialing.contains_key(id)
    }

    /// A handshake with `id` completed. When both sides dialed at once, both
    /// keep the connection dialed by the lower id (both decide the same); the
    /// same dialer again, or a connection opened well after the one we hold
    /// (a restarted peer dialing us), means the old connection is stale.
    /// Returns whether
    /// the new connection carries our traffic from now on (the loser
    /// retires), and the frames that were waiting for it.
    pub(crate) fn connected(
        &mut self,
        id: PeerId,
        conn: C,
        dialed: bool,
        tx: impl FnOnce(&C) -> WriterTx,
        now: Instant,
    ) -> (bool, Vec<Bytes>) {
        let dialer = if dialed { self.me } else { id };
        let keep_new = match self.links.get(&id) {
            None => true,
            Some(old) => {
                old.dialer == dialer
                    || dialer == self.me.min(id)
                    || now.saturating_duration_since(old.opened) > RACE_WINDOW
            }
        };
        if keep_new {
            let tx = tx(&conn);
            let link = Link {
                conn,
                tx,
                dialer,
                opened: now,
                last_used: now,
            };
            if let Some(old) = self.links.insert(id, link) {
                self.retiring.push((now + RETIRE_AFTER, old.conn));
            }
        } else {
            self.retiring.push((now + RETIRE_AFTER, conn));
        }
        self.deferred.remove(&id);
        let queued = self.dialing.remove(&id).unwrap_or_default();
        (keep_new, queued)
    }

    /// Connections waiting to close: duplicates in their grace period (it
    /// grows by one whenever a new connection replaces or loses to another).
    pub(crate) fn retiring_len(&self) -> usize {
        self.retiring.len()
    }

    /// The dial to `id` failed: the frames that waited for it.
    pub(crate) fn dial_failed(&mut self, id: &PeerId) -> Option<Vec<Bytes>> {
        self.deferred.remove(id);
        self.dialing.remove(id)
    }

    /// Holds back the dial [`LinkTable::queue`] just asked for until
    /// `until`: the peer is likely dialing us (both ends of a mutual
    /// introduction greet each other at once, and the connection dialed by
    /// the lower id is the one both keep), so our frames wait for its
    /// connection instead of paying a second handshake.
    pub(crate) fn defer_dial(&mut self, to: PeerId, until: Instant) {
        if self.dialing.contains_key(&to) {
            self.deferred.insert(to, until);
        }
    }

    /// The held-back dials whose time is up and whose peer has not
    /// connected meanwhile: the caller dials them now.
    pub(crate) fn due_dials(&mut self, now: Instant) -> Vec<PeerId> {
        let due: Vec<PeerId> = self
            .deferred
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            self.deferred.remove(id);
        }
        due.into_iter()
            .filter(|id| self.dialing.contains_key(id) && !self.links.contains_key(id))
            .collect()
    }

    /// The connection `conn_id` to `id` closed; true if it was the live one.
    pub(crate) fn closed(&mut self, id: &PeerId, is_it: impl Fn(&C) -> bool) -> bool {
        if self.links.get(id).is_some_and(|l| is_it(&l.conn)) {
            self.links.remove(id);
            true
        } else {
            false
        }
    }

    /// A frame for `to`, which has no link: queue it behind a dial.
    pub(crate) fn queue(&mut self, to: PeerId, frame: Bytes, can_dial: bool) -> Queued {
        if let Some(queue) = self.dialing.get_mut(&to) {
            if queue.len() < MAX_QUEUED_PER_DIAL {
                queue.push(frame);
                return Queued::Behind;
            }
            return Queued::Dropped;
        }
        if !can_dial
            || self.dialing.len() >= MAX_PENDING_DIALS
            || self.links.len() >= self.max_links
        {
            return Queued::Dropped;
        }
        self.dialing.insert(to, vec![frame]);
        Queued::Dial
    }

    /// Takes the retired duplicates whose time is up and the links to peers
    /// no longer kept and idle for [`IDLE_LINK`]: the caller closes them.
    pub(crate) fn reap(&mut self, now: Instant, keeps: impl Fn(&PeerId) -> bool) -> Reaped<C> {
        let mut duplicates = Vec::new();
        let mut i = 0;
        while i < self.retiring.len() {
            if now >= self.retiring[i].0 {
                duplicates.push(self.retiring.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        let idle: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(id, l)| !keeps(id) && now.duration_since(l.last_used) >= IDLE_LINK)
            .map(|(id, _)| *id)
            .collect();
        let idle = idle
            .into_iter()
            .filter_map(|id| self.links.remove(&id).map(|l| l.conn))
            .collect();
        Reaped { duplicates, idle }
    }

    /// When the table is full, takes the least recently used link to a peer
    /// the overlay does not keep, for the caller to close: a kept peer's
    /// slot is never given up (512 free ids that ping used to fill every
    /// slot and cut the node off). `None` when there was room, or nothing
    /// to give up.
    pub(crate) fn make_room(&mut self, keeps: impl Fn(&PeerId) -> bool) -> Option<C> {
        if self.links.len() < self.max_links {
            return None;
        }
        let lru = self
            .links
            .iter()
            .filter(|(id, _)| !keeps(id))
            .min_by_key(|(id, l)| (l.last_used, **id))
            .map(|(id, _)| *id)?;
        self.links.remove(&lru).map(|l| l.conn)
    }

    /// Whether the table is full.
    pub(crate) fn is_full(&self) -> bool {
        self.links.len() >= self.max_links
    }

    /// Drops every link and dial (their writers finish their streams).
    pub(crate) fn clear(&mut self) {
        self.dialing.clear();
        self.deferred.clear();
        self.links.clear();
    }
}

/// Connections to close.
#[derive(Debug)]
pub(crate) struct Reaped<C> {
    /// Duplicates whose grace period is over.
    pub(crate) duplicates: Vec<C>,
    /// Links to peers no longer kept, idle for [`IDLE_LINK`].
    pub(crate) idle: Vec<C>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> PeerId {
        PeerId::from_seed(n)
    }

    fn writer() -> WriterTx {
        crate::link::writer_queue(1_000, 4).0
    }

    #[test]
    fn simultaneous_dials_keep_the_connection_dialed_by_the_lower_id() {
        let (a, b) = (id(1), id(2));
        let (lo, hi) = (a.min(b), a.max(b));
        let now = Instant::now();
        // Seen from the lower id: its own dial wins whatever the order.
        let mut t = LinkTable::new(lo, MAX_LINKS);
        assert!(t.connected(hi, "accepted", false, |_| writer(), now).0);
        assert!(t.connected(hi, "dialed", true, |_| writer(), now).0);
        assert_eq!(t.get(&hi).unwrap().conn, "dialed");
        // Seen from the higher id: the connection the lower id dialed wins.
        let mut t = LinkTable::new(hi, MAX_LINKS);
        assert!(t.connected(lo, "accepted", false, |_| writer(), now).0);
        assert!(!t.connected(lo, "dialed", true, |_| writer(), now).0);
        assert_eq!(t.get(&lo).unwrap().conn, "accepted");
        assert_eq!(t.retiring_len(), 1);
    }

    #[test]
    fn a_connection_opened_after_the_race_window_replaces_the_old_one() {
        let (a, b) = (id(1), id(2));
        let (lo, hi) = (a.min(b), a.max(b));
        let now = Instant::now();
        // The lower id dialed long ago; the higher one restarted and dials.
        let mut t = LinkTable::new(lo, MAX_LINKS);
        assert!(t.connected(hi, "old", true, |_| writer(), now).0);
        let later = now + RACE_WINDOW + Duration::from_millis(1);
        assert!(t.connected(hi, "restarted", false, |_| writer(), later).0);
        assert_eq!(t.get(&hi).unwrap().conn, "restarted");
        assert_eq!(t.retiring_len(), 1);
    }

    #[test]
    fn a_new_connection_from_the_same_dialer_replaces_the_stale_one() {
        let mut t = LinkTable::new(id(1), MAX_LINKS);
        let now = Instant::now();
        t.connected(id(2), "old", true, |_| writer(), now);
        assert!(t.connected(id(2), "new", true, |_| writer(), now).0);
        assert_eq!(t.get(&id(2)).unwrap().conn, "new");
        // Closing the old one does not drop the new link.
        assert!(!t.closed(&id(2), |c| *c == "old"));
        assert!(t.closed(&id(2), |c| *c == "new"));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn frames_wait_behind_a_dial_and_are_bounded() {
        let mut t: LinkTable<&str> = LinkTable::new(id(1), MAX_LINKS);
        assert_eq!(t.queue(id(2), Bytes::from_static(b"a"), true), Queued::Dial);
        for _ in 1..MAX_QUEUED_PER_DIAL {
            assert_eq!(t.queue(id(2), Bytes::new(), true), Queued::Behind);
        }
        assert_eq!(t.queue(id(2), Bytes::new(), true), Queued::Dropped);
        let (_, queued) = t.connected(id(2), "c", true, |_| writer(), Instant::now());
        assert_eq!(queued.len(), MAX_QUEUED_PER_DIAL);
        assert_eq!(queued[0], Bytes::from_static(b"a"));
        assert!(!t.is_dialing(&id(2)));
    }

    #[test]
    fn a_held_back_dial_is_due_only_if_the_peer_has_not_connected_meanwhile() {
        let now = Instant::now();
        let later = now + Duration::from_millis(300);
        let mut t: LinkTable<&str> = LinkTable::new(id(9), MAX_LINKS);
        // The peer dials us first: its connection takes our frames and
        // nothing is left to dial.
        assert_eq!(
            t.queue(id(2), Bytes::from_static(b"hi"), true),
            Queued::Dial
        );
        t.defer_dial(id(2), later);
        assert_eq!(t.queue(id(2), Bytes::new(), true), Queued::Behind);
        assert!(t.due_dials(now).is_empty());
        let (_, queued) = t.connected(id(2), "theirs", false, |_| writer(), now);
        assert_eq!(queued.len(), 2);
        assert!(t.due_dials(later).is_empty());
        // A peer that does not dial us is dialed once the time is up, once.
        assert_eq!(t.queue(id(3), Bytes::new(), true), Queued::Dial);
        t.defer_dial(id(3), later);
        assert!(t.due_dials(now).is_empty());
        assert_eq!(t.due_dials(later), vec![id(3)]);
        assert!(t.due_dials(later).is_empty());
        assert!(t.is_dialing(&id(3)));
        // Only a dial that was asked for can be held back.
        t.defer_dial(id(4), later);
        assert!(t.due_dials(later).is_empty());
    }

    #[test]
    fn dials_in_flight_are_capped() {
        let mut t: LinkTable<&str> = LinkTable::new(id(0), MAX_LINKS);
        for n in 1..=MAX_PENDING_DIALS as u64 {
            assert_eq!(t.queue(id(n), Bytes::new(), true), Queued::Dial);
        }
        assert_eq!(t.queue(id(999), Bytes::new(), true), Queued::Dropped);
        assert_eq!(t.dial_failed(&id(1)).map(|q| q.len()), Some(1));
        assert_eq!(t.queue(id(999), Bytes::new(), true), Queued::Dial);
        assert_eq!(t.queue(id(1000), Bytes::new(), false), Queued::Dropped);
    }

    #[test]
    fn idle_links_to_peers_no_longer_kept_and_expired_duplicates_are_reaped() {
        let mut t = LinkTable::new(id(1), MAX_LINKS);
        let start = Instant::now();
        t.connected(id(2), "kept", true, |_| writer(), start);
        t.connected(id(3), "dropped", true, |_| writer(), start);
        t.connected(id(3), "dropped-again", true, |_| writer(), start);
        let early = t.reap(start + Duration::from_secs(1), |p| *p == id(2));
        assert!(early.duplicates.is_empty() && early.idle.is_empty());
        let later = t.reap(start + IDLE_LINK, |p| *p == id(2));
        assert_eq!(later.duplicates, vec!["dropped"]);
        assert_eq!(later.idle, vec!["dropped-again"]);
        assert!(t.get(&id(2)).is_some());
    }

    #[test]
    fn a_full_table_gives_up_the_least_recently_used_link_it_does_not_need() {
        let mut t: LinkTable<&str> = LinkTable::new(id(0), 3);
        let start = Instant::now();
        for (n, name) in [(1, "kept"), (2, "old"), (3, "new")] {
            let at = start + Duration::from_secs(n);
            t.connected(id(n), name, true, |_| writer(), at);
        }
        assert!(t.is_full());
        let kept = |p: &PeerId| *p == id(1);
        assert_eq!(t.make_room(kept), Some("old"), "the least recently used");
        assert_eq!(t.make_room(kept), None, "room now");
        t.connected(
            id(4),
            "newest",
            true,
            |_| writer(),
            start + Duration::from_secs(9),
        );
        assert_eq!(t.make_room(kept), Some("new"));
        t.connected(
            id(5),
            "latest",
            true,
            |_| writer(),
            start + Duration::from_secs(9),
        );
        let all = |_: &PeerId| true;
        assert_eq!(
            t.make_room(all),
            None,
            "a kept peer's link is never given up"
        );
    }
}

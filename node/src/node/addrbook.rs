//! The address book: where to dial each peer.
//!
//! Each peer has up to [`MAX_CANDIDATES`] candidate addresses. An address a
//! peer gives for itself (its `Hello`, its own join, its own record in a
//! reply, the address its connection came from) replaces its previous own
//! one; an address relayed by a third party is a hint added beside it, never
//! over it. A dial goes to the candidate with the fewest failures in a row
//! (the peer's own word first among equals); a failed dial counts against
//! its address, and an address that failed [`MAX_FAILURES`] times in a row
//! is dropped, so one lie cannot stop a node from ever reaching a peer.
//! Scoped: a peer talking to us from a public address cannot make us dial a
//! loopback, private or link-local one (a hop into the operator's own
//! network). Addresses that cannot be dialled (unparsable, unspecified,
//! port 0) are ignored.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use peerworld_protocol::{Message, PeerId};

/// Remembered peer addresses before the book is pruned to kept peers.
pub(crate) const MAX_ADDRS: usize = 4096;
/// Most candidate addresses kept per peer.
pub(crate) const MAX_CANDIDATES: usize = 4;
/// A candidate is dropped after this many failed dials in a row.
pub(crate) const MAX_FAILURES: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct Candidate {
    addr: SocketAddr,
    /// The peer gave it itself.
    own: bool,
    /// Failed dials in a row.
    failures: u8,
}

/// Where to dial each peer.
#[derive(Debug)]
pub(crate) struct AddressBook {
    me: PeerId,
    addrs: HashMap<PeerId, Vec<Candidate>>,
}

/// Loopback, private, link-local or unique-local: reachable only from the
/// same host or network.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
    }
}

impl AddressBook {
    pub(crate) fn new(me: PeerId) -> Self {
        Self {
            me,
            addrs: HashMap::new(),
        }
    }

    /// Where to dial `id` next, if anywhere.
    pub(crate) fn get(&self, id: &PeerId) -> Option<SocketAddr> {
        let c = self.addrs.get(id)?;
        c.iter()
            .min_by_key(|c| (c.failures, !c.own))
            .map(|c| c.addr)
    }

    /// Records `addr` for `id`: `from_itself` when the peer gave it.
    pub(crate) fn learn(&mut self, id: PeerId, addr: &str, from_itself: bool) {
        if id == self.me || addr.is_empty() {
            return;
        }
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            return;
        };
        self.learn_addr(id, addr, from_itself);
    }

    /// Records a parsed address (e.g. the one a connection came from).
    pub(crate) fn learn_addr(&mut self, id: PeerId, addr: SocketAddr, from_itself: bool) {
        if id == self.me || addr.ip().is_unspecified() || addr.port() == 0 {
            return;
        }
        let c = self.addrs.entry(id).or_default();
        if from_itself {
            c.retain(|c| !c.own && c.addr != addr);
            c.insert(
                0,
                Candidate {
                    addr,
                    own: true,
                    failures: 0,
                },
            );
            c.truncate(MAX_CANDIDATES);
        } else if !c.iter().any(|c| c.addr == addr) && c.len() < MAX_CANDIDATES {
            c.push(Candidate {
                addr,
                own: false,
                failures: 0,
            });
        }
    }

    /// A dial of `id` at `addr` failed.
    pub(crate) fn failed(&mut self, id: &PeerId, addr: SocketAddr) {
        let Some(c) = self.addrs.get_mut(id) else {
            return;
        };
        for x in c.iter_mut().filter(|x| x.addr == addr) {
            x.failures = x.failures.saturating_add(1);
        }
        c.retain(|x| x.failures < MAX_FAILURES);
        if c.is_empty() {
            self.addrs.remove(id);
        }
    }

    /// A dial of `id` at `addr` succeeded.
    pub(crate) fn succeeded(&mut self, id: &PeerId, addr: SocketAddr) {
        if let Some(c) = self.addrs.get_mut(id) {
            for x in c.iter_mut().filter(|x| x.addr == addr) {
                x.failures = 0;
            }
        }
    }

    /// Learns the addresses a message from the authenticated `from`, whose
    /// connection comes from `remote`, carries; returns how many were
    /// refused for their scope (a local address from a public peer).
    pub(crate) fn learn_from(
        &mut self,
        from: PeerId,
        remote: Option<SocketAddr>,
        msg: &Message,
    ) -> u64 {
        let public_teller = remote.is_some_and(|r| !is_local(r.ip()));
        let mut refused = 0;
        let mut learn = |book: &mut Self, id: PeerId, addr: &str, own: bool| {
            let local = addr.parse::<SocketAddr>().is_ok_and(|a| is_local(a.ip()));
            if public_teller && local {
                refused += 1;
            } else {
                book.learn(id, addr, own);
            }
        };
        match msg {
            Message::Join { joiner, .. } => learn(self, joiner.id, &joiner.addr, joiner.id == from),
            Message::JoinReply { peers, .. } => {
                for p in peers {
                    learn(self, p.id, &p.addr, p.id == from);
                }
            }
            Message::Discover { peers, .. } => {
                for p in peers {
                    learn(self, p.id, &p.addr, false);
                }
            }
            Message::Hello { addr, .. } => learn(self, from, addr, true),
            // A route's origin is answered straight by the route's end.
            Message::Route { origin, .. } => {
                learn(self, origin.id, &origin.addr, origin.id == from)
            }
            _ => {}
        }
        refused
    }

    /// Keeps only the peers `keep` says, once the book is over [`MAX_ADDRS`].
    pub(crate) fn prune(&mut self, keep: impl Fn(&PeerId) -> bool) {
        if self.addrs.len() > MAX_ADDRS {
            self.addrs.retain(|id, _| keep(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerworld_protocol::{PeerInfo, Point};

    fn rec(n: u64, addr: &str) -> PeerInfo {
        let mut p = PeerInfo::new(PeerId::from_seed(n), Point::new(1.0, 1.0), 100.0, "p");
        p.addr = addr.into();
        p
    }

    #[test]
    fn a_hint_never_overwrites_what_the_peer_said_itself() {
        let mut book = AddressBook::new(PeerId::from_seed(0));
        let b = PeerId::from_seed(2);
        book.learn(b, "127.0.0.1:2000", true);
        book.learn_from(
            PeerId::from_seed(3),
            None,
            &Message::Discover {
                peers: vec![rec(2, "127.0.0.1:6666")],
                mutual: false,
            },
        );
        assert_eq!(book.get(&b), Some("127.0.0.1:2000".parse().unwrap()));
        // The peer itself may change it.
        book.learn_from(
            b,
            None,
            &Message::Hello {
                inc: 0,
                seq: 1,
                pos: Point::new(0.0, 0.0),
                radius: 100.0,
                name: String::new(),
                addr: "127.0.0.1:2001".into(),
                ask: false,
            },
        );
        assert_eq!(book.get(&b), Some("127.0.0.1:2001".parse().unwrap()));
    }

    #[test]
    fn undialable_addresses_and_our_own_are_ignored() {
        let me = PeerId::from_seed(0);
        let mut book = AddressBook::new(me);
        for bad in ["", "nonsense", "0.0.0.0:4000", "127.0.0.1:0"] {
            book.learn(PeerId::from_seed(5), bad, true);
        }
        book.learn(me, "127.0.0.1:9", true);
        assert_eq!(book.get(&PeerId::from_seed(5)), None);
        assert_eq!(book.get(&me), None);
    }

    #[test]
    fn a_hint_fills_in_an_unknown_address() {
        let mut book = AddressBook::new(PeerId::from_seed(0));
        book.learn_from(
            PeerId::from_seed(3),
            None,
            &Message::JoinReply {
                hops: 0,
                at: Point::new(0.0, 0.0),
                peers: vec![rec(3, "127.0.0.1:3000"), rec(4, "127.0.0.1:4000")],
                observed_addr: String::new(),
                token: 0,
            },
        );
        assert!(book.get(&PeerId::from_seed(3)).is_some());
        assert!(book.get(&PeerId::from_seed(4)).is_some());
    }

    #[test]
    fn a_lying_hint_costs_a_few_dials_not_the_peer() {
        // The book kept the first address it heard and never tried another:
        // one lie stopped a node from ever dialling the peer.
        let mut book = AddressBook::new(PeerId::from_seed(0));
        let b = PeerId::from_seed(2);
        let (lie, truth): (SocketAddr, SocketAddr) = (
            "127.0.0.1:6666".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        );
        book.learn_addr(b, lie, false);
        book.learn_addr(b, truth, false);
        assert_eq!(book.get(&b), Some(lie), "the first heard goes first");
        book.failed(&b, lie);
        assert_eq!(book.get(&b), Some(truth), "then the next candidate");
        book.failed(&b, truth); // a lost packet: both have failed once
        book.succeeded(&b, truth);
        assert_eq!(book.get(&b), Some(truth));
        for _ in 0..MAX_FAILURES {
            book.failed(&b, lie);
        }
        assert_eq!(book.addrs[&b].len(), 1, "the lie is dropped");
        // More hints than candidates: the rest are not taken.
        for port in 3000..3010 {
            book.learn_addr(b, SocketAddr::from(([127, 0, 0, 1], port)), false);
        }
        assert_eq!(book.addrs[&b].len(), MAX_CANDIDATES);
        // The peer's own word goes first, and replaces its previous own one.
        book.learn_addr(b, SocketAddr::from(([127, 0, 0, 1], 4000)), true);
        book.learn_addr(b, SocketAddr::from(([127, 0, 0, 1], 4001)), true);
        assert_eq!(book.get(&b), Some(SocketAddr::from(([127, 0, 0, 1], 4001))));
        assert_eq!(book.addrs[&b].iter().filter(|c| c.own).count(), 1);
    }

    #[test]
    fn a_public_peer_cannot_point_us_at_local_addresses() {
        let mut book = AddressBook::new(PeerId::from_seed(0));
        let discover = Message::Discover {
            peers: vec![
                rec(4, "127.0.0.1:22"),
                rec(5, "10.1.2.3:80"),
                rec(6, "[fe80::1]:80"),
                rec(7, "198.51.100.7:4000"),
            ],
            mutual: false,
        };
        let public = Some("203.0.113.5:4000".parse().unwrap());
        let refused = book.learn_from(PeerId::from_seed(3), public, &discover);
        for n in [4, 5, 6] {
            assert_eq!(book.get(&PeerId::from_seed(n)), None, "peer {n}");
        }
        assert!(book.get(&PeerId::from_seed(7)).is_some());
        assert_eq!(refused, 3);
        // From a peer on our own network, local addresses are what it knows.
        let local = Some("192.168.1.9:4000".parse().unwrap());
        book.learn_from(PeerId::from_seed(3), local, &discover);
        assert!(book.get(&PeerId::from_seed(4)).is_some());
    }
}

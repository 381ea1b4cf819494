//! The address book: where to dial each peer.
//!
//! An address a peer gives for itself (its `Hello`, its own join, its own
//! record in a reply) is authoritative and replaces what we had; an address
//! relayed by a third party is a hint and never overwrites one. Addresses
//! that cannot be dialled (unparsable, unspecified, port 0) are ignored.

use std::collections::HashMap;
use std::net::SocketAddr;

use peerworld_protocol::{Message, PeerId};

/// Remembered peer addresses before the book is pruned to kept peers.
pub(crate) const MAX_ADDRS: usize = 4096;

/// Where to dial each peer.
#[derive(Debug)]
pub(crate) struct AddressBook {
    me: PeerId,
    addrs: HashMap<PeerId, SocketAddr>,
}

impl AddressBook {
    pub(crate) fn new(me: PeerId) -> Self {
        Self {
            me,
            addrs: HashMap::new(),
        }
    }

    /// Where to dial `id`, if known.
    pub(crate) fn get(&self, id: &PeerId) -> Option<SocketAddr> {
        self.addrs.get(id).copied()
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
        if from_itself {
            self.addrs.insert(id, addr);
        } else {
            self.addrs.entry(id).or_insert(addr);
        }
    }

    /// Learns the addresses a message from the authenticated `from` carries.
    pub(crate) fn learn_from(&mut self, from: PeerId, msg: &Message) {
        match msg {
            Message::Join { joiner, .. } => self.learn(joiner.id, &joiner.addr, joiner.id == from),
            Message::JoinReply { peers, .. } => {
                for p in peers {
                    self.learn(p.id, &p.addr, p.id == from);
                }
            }
            Message::Discover { peers, .. } => {
                for p in peers {
                    self.learn(p.id, &p.addr, false);
                }
            }
            Message::Hello { addr, .. } => self.learn(from, addr, true),
            _ => {}
        }
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
            &Message::Discover {
                peers: vec![rec(2, "127.0.0.1:6666")],
                mutual: false,
            },
        );
        assert_eq!(book.get(&b), Some("127.0.0.1:2000".parse().unwrap()));
        // The peer itself may change it.
        book.learn_from(
            b,
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
            &Message::JoinReply {
                hops: 0,
                at: Point::new(0.0, 0.0),
                peers: vec![rec(3, "127.0.0.1:3000"), rec(4, "127.0.0.1:4000")],
                observed_addr: String::new(),
            },
        );
        assert!(book.get(&PeerId::from_seed(3)).is_some());
        assert!(book.get(&PeerId::from_seed(4)).is_some());
    }
}

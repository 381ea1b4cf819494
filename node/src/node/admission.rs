//! Who may start a handshake: a cap on handshakes in flight and on inbound
//! connections per source (an IPv4 address, or an IPv6 /64, which one
//! host usually holds whole). No quinn inside: the accept loop asks, and
//! holds the guards it gets for as long as the handshake or the
//! connection lives.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Handshakes in flight at once; beyond half of it, a source whose address
/// is not validated yet is first sent a QUIC retry (it must echo a token,
/// which a spoofed source cannot).
pub const MAX_HANDSHAKES: usize = 64;

/// Default cap on inbound connections from one source.
pub const MAX_LINKS_PER_IP: usize = 32;

/// The source a connection is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    Self::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// Why a handshake was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// [`MAX_HANDSHAKES`] are in flight.
    Handshakes,
    /// The source holds its share of connections already.
    PerSource,
}

/// The counters, shared by the accept loop and the tasks it spawns.
#[derive(Debug)]
pub(super) struct Admission {
    max_per_source: usize,
    handshakes: AtomicUsize,
    per_source: Mutex<HashMap<Source, usize>>,
}

impl Admission {
    pub(super) fn new(max_per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_source: max_per_source.max(1),
            handshakes: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
        })
    }

    /// Handshakes in flight now.
    pub(super) fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// Whether a source that has not proved its address should be sent a
    /// retry first.
    pub(super) fn under_load(&self) -> bool {
        self.handshakes() >= MAX_HANDSHAKES / 2
    }

    /// Takes a handshake slot and a slot of `ip`'s share, or says why not.
    /// The handshake slot is freed when [`Admitted::handshake_done`] is
    /// called (or the guard dropped), the source's when the guard drops.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let taken = self
            .handshakes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_HANDSHAKES).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(Refusal::Handshakes);
        }
        let source = Source::from(ip);
        let mut map = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(source).or_insert(0);
        if *n >= self.max_per_source {
            drop(map);
            self.handshakes.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::PerSource);
        }
        *n += 1;
        Ok(Admitted {
            admission: self.clone(),
            source,
            handshaking: true,
        })
    }
}

/// One admitted connection's slots.
#[derive(Debug)]
pub(super) struct Admitted {
    admission: Arc<Admission>,
    source: Source,
    handshaking: bool,
}

impl Admitted {
    /// The handshake ended (either way): frees its slot; the source's slot
    /// stays taken until the guard drops.
    pub(super) fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.admission.handshakes.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.handshake_done();
        let mut map = self
            .admission
            .per_source
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_share_and_no_more_until_one_closes() {
        let a = Admission::new(2);
        let mut g1 = a.admit(ip("10.0.0.1")).unwrap();
        let mut g2 = a.admit(ip("10.0.0.1")).unwrap();
        g1.handshake_done();
        g2.handshake_done();
        assert_eq!(a.admit(ip("10.0.0.1")).unwrap_err(), Refusal::PerSource);
        // Another address has its own share.
        let g3 = a.admit(ip("10.0.0.2")).unwrap();
        drop(g1);
        let g4 = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.handshakes(), 2, "g3 and g4 are still handshaking");
        drop((g2, g3, g4));
        assert_eq!(a.handshakes(), 0);
        assert!(a.per_source.lock().unwrap().is_empty());
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_prefix_and_a_mapped_v4_as_v4() {
        let a = Admission::new(1);
        let _g = a.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            Refusal::PerSource
        );
        assert!(a.admit(ip("2001:db8:1:3::1")).is_ok());
        let _v4 = a.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            a.admit(ip("::ffff:192.0.2.7")).unwrap_err(),
            Refusal::PerSource
        );
    }

    #[test]
    fn handshakes_in_flight_are_capped_and_freed_when_done() {
        let a = Admission::new(usize::MAX);
        let mut held: Vec<Admitted> = (0..MAX_HANDSHAKES)
            .map(|i| a.admit(IpAddr::from([10, 0, 1, i as u8])).unwrap())
            .collect();
        assert!(a.under_load());
        assert_eq!(a.admit(ip("10.0.2.1")).unwrap_err(), Refusal::Handshakes);
        held[0].handshake_done();
        // Done once frees one slot, not two.
        held[0].handshake_done();
        let _next = a.admit(ip("10.0.2.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.2.2")).unwrap_err(), Refusal::Handshakes);
        held.clear();
        assert_eq!(a.handshakes(), 1);
    }
}

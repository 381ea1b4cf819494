//! The transport's counters, shared by the driver, the connection tasks and
//! the status server. The overlay counts its own (`peerworld_protocol::Stats`,
//! in every `Snapshot`).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($( #[doc = $help:literal] $name:ident ),* $(,)?) => {
        /// Live counters (atomics, bumped from any task).
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( #[doc = $help] pub $name: AtomicU64, )*
        }

        /// A copy of the counters at one instant.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct MetricsSnapshot {
            $( #[doc = $help] pub $name: u64, )*
        }

        impl Metrics {
            /// Reads every counter.
            pub fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl MetricsSnapshot {
            /// `(name, help, value)` of every counter.
            pub fn fields(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![ $( (stringify!($name), $help.trim(), self.$name), )* ]
            }
        }
    };
}

counters! {
    /// Messages sent (streams and datagrams).
    msgs_sent,
    /// Bytes sent: encoded frames, plus the 4-byte length prefix on streams.
    bytes_sent,
    /// Messages received and decoded.
    msgs_recv,
    /// Bytes received: encoded frames, plus the 4-byte length prefix on streams.
    bytes_recv,
    /// Position updates and pings sent as QUIC datagrams.
    datagrams_sent,
    /// Datagrams received.
    datagrams_recv,
    /// Frames that failed to decode (malformed, too large, unknown version).
    decode_errors,
    /// Of those, frames over the size limit.
    oversized_frames,
    /// Of those, frames with an unsupported protocol version.
    bad_versions,
    /// Connections accepted.
    conns_accepted,
    /// Connections dialed.
    conns_dialed,
    /// Dials that failed or timed out.
    dials_failed,
    /// Handshakes refused (bad certificate, wrong id, too many connections).
    handshakes_refused,
    /// Retries sent to unvalidated sources while many handshakes were in flight.
    handshake_retries,
    /// Connections refused because their source (IPv4 address, IPv6 /64) held its share.
    conns_per_source_refused,
    /// Duplicate connections closed (both sides dialed at once).
    duplicate_conns,
    /// Messages dropped: no address to dial, queue full, or too many dials.
    send_dropped,
    /// Connections closed for opening a second stream.
    extra_streams,
    /// Links to peers the overlay does not keep, closed to make room.
    links_evicted,
    /// Addresses not learned: a public peer named a local one (loopback, private, link-local).
    addrs_out_of_scope,
    /// Chat lines refused at the API (not JSON, empty, too long, too fast).
    chat_refused,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_help_and_snapshots() {
        let m = Metrics::default();
        Metrics::add(&m.decode_errors, 3);
        let s = m.snapshot();
        assert_eq!(s.decode_errors, 3);
        let fields = s.fields();
        assert_eq!(fields.len(), 21);
        assert!(fields.iter().all(|(_, help, _)| !help.is_empty()));
        assert!(
            fields
                .iter()
                .any(|&(name, _, v)| name == "decode_errors" && v == 3)
        );
    }
}

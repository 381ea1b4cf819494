//! Rules that keep a crowd's views small and its walkers known, one test
//! each, on one peer fed by hand.

use super::hello;
use super::rules::told_of_a_hint;
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::Message;

#[test]
fn a_digest_is_answered_with_peers_heard_from_not_with_hints() {
    // A hint carries its relayer's belief of the radius, often a stale large
    // one from before a crowd shrank it. Digest answers that vouched for
    // hints passed such records on from hint to hint, and a crowd peer kept
    // 60 peers beyond its own reach.
    let (mut p, b, hint) = told_of_a_hint(Point::new(520.0, 520.0));
    let d = PeerId::from_seed(4);
    p.handle(Millis(3), d, hello(1, 500.0, 540.0));
    while p.poll_transmit().is_some() {}
    p.handle(Millis(10), d, Message::Digest { ids: Vec::new() });
    let told: Vec<PeerId> = std::iter::from_fn(|| p.poll_transmit())
        .filter(|t| t.to == d)
        .flat_map(|t| match t.msg {
            Message::Discover { peers, .. } => peers.into_iter().map(|i| i.id).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert!(
        told.contains(&b),
        "the confirmed peer is vouched for: {told:?}"
    );
    assert!(!told.contains(&hint), "the hint is not: {told:?}");
}

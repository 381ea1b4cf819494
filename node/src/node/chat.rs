//! Chat lines a node has heard (its own among them), for `GET /messages`
//! and [`super::NodeHandle::messages`]: the last [`CHAT_KEPT`], oldest
//! first, each numbered in arrival order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use peerworld_protocol::{Peer, PeerId, Point};
use tokio::time::Instant;

/// Why a line was not said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SayError {
    /// The overlay refused it (too long, empty, too fast).
    #[error(transparent)]
    Refused(#[from] peerworld_protocol::AreaError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why an object was not placed or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectCommandError {
    /// The overlay refused it (bad text or position, not ours, unknown, quota).
    #[error(transparent)]
    Refused(#[from] peerworld_protocol::object::ObjectError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Lines kept (the oldest are dropped first).
pub const CHAT_KEPT: usize = 256;

/// One line heard.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatLine {
    /// Arrival number at this node (1, 2, …).
    pub seq: u64,
    /// The speaker.
    pub from: PeerId,
    /// The speaker's name as this node knows it (empty if it does not).
    pub name: String,
    /// Where the speaker was when it spoke.
    pub pos: Point,
    /// The text.
    pub text: String,
    /// When it arrived.
    pub at: Instant,
}

/// The lines, shared by the driver (which adds) and the handles and
/// renderers (which read); a renderer's tests fill one by hand.
#[derive(Clone, Debug, Default)]
pub struct ChatFeed(Arc<Mutex<Inbox>>);

#[derive(Debug, Default)]
struct Inbox {
    lines: VecDeque<ChatLine>,
    last_seq: u64,
}

impl ChatFeed {
    /// Adds a line heard now.
    pub fn push(&self, from: PeerId, name: String, pos: Point, text: String) {
        let mut inbox = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inbox.last_seq += 1;
        let seq = inbox.last_seq;
        if inbox.lines.len() >= CHAT_KEPT {
            inbox.lines.pop_front();
        }
        inbox.lines.push_back(ChatLine {
            seq,
            from,
            name,
            pos,
            text,
            at: Instant::now(),
        });
    }

    /// An area message `peer` received: kept if it is a chat line, with the
    /// speaker's name as `peer` knows it.
    pub(crate) fn hear(&self, peer: &Peer, origin: PeerId, centre: Point, payload: &[u8]) {
        let Some(text) = peerworld_protocol::peer::chat_text(payload) else {
            tracing::debug!(peer = %origin.short(), "an area message that is not chat");
            return;
        };
        let name = peer
            .record(&origin)
            .or((origin == peer.id()).then(|| peer.info()))
            .map(|i| i.name.clone())
            .unwrap_or_default();
        self.push(origin, name, centre, text.to_string());
    }

    /// The lines numbered above `after`, oldest first.
    pub fn after(&self, after: u64) -> Vec<ChatLine> {
        let inbox = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inbox
            .lines
            .iter()
            .filter(|l| l.seq > after)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_kept_up_to_the_cap_and_read_after_a_number() {
        let inbox = ChatFeed::default();
        let id = PeerId::from_seed(1);
        for i in 0..CHAT_KEPT + 10 {
            inbox.push(id, "a".into(), Point::new(0.0, 0.0), format!("line {i}"));
        }
        let all = inbox.after(0);
        assert_eq!(all.len(), CHAT_KEPT);
        assert_eq!(all[0].seq, 11);
        assert_eq!(all[0].text, "line 10");
        let last = inbox.after(CHAT_KEPT as u64 + 8);
        assert_eq!(last.iter().map(|l| l.seq).collect::<Vec<_>>(), [265, 266]);
    }
}

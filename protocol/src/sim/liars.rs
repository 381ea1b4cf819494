//! The liar model (`SimConfig::liars`): what a lying peer does to the
//! records it relays.

use super::Sim;
use crate::geometry::Point;
use crate::id::{PeerId, PeerInfo};
use crate::message::{MAX_RADIUS, MAX_RECORDS, Message};
use crate::mobility::random_point;
use crate::peer::Transmit;

/// Invented peers a liar adds to each message of records.
const INVENTED_PER_MESSAGE: usize = 8;
/// How close to its receiver a liar places a tempting lie.
const CLOSE: f64 = 20.0;

impl Sim {
    /// Falsifies every record a liar relays in `t` (not its own: its own
    /// record is authenticated by its link), and adds invented peers close
    /// to the receiver.
    pub(super) fn falsify(&mut self, me: PeerId, t: &mut Transmit) {
        let near = self
            .by_id
            .get(&t.to)
            .map(|&i| self.slots[i].peer.info().pos)
            .unwrap_or_default();
        let peers = match &mut t.msg {
            Message::Discover { peers, .. } | Message::JoinReply { peers, .. } => peers,
            _ => return,
        };
        let mut records = std::mem::take(peers);
        for r in records.iter_mut().filter(|r| r.id != me) {
            match self.rng.below(5) {
                0 => r.pos = random_point(self.world, &mut self.rng),
                1 => r.pos = self.close_to(near),
                2 => {
                    r.radius = if self.rng.below(2) == 0 {
                        1e30
                    } else {
                        MAX_RADIUS
                    }
                }
                3 => {
                    r.id = self.invented_id();
                    r.pos = self.close_to(near);
                }
                _ => r.addr = "10.0.0.1:1".into(),
            }
        }
        for _ in 0..INVENTED_PER_MESSAGE {
            if records.len() >= MAX_RECORDS {
                break;
            }
            let id = self.invented_id();
            let pos = self.close_to(near);
            records.push(PeerInfo::new(id, pos, self.cfg.peer.radius, "fake"));
        }
        *peers = records;
    }

    /// A point within [`CLOSE`] of `p`.
    fn close_to(&mut self, p: Point) -> Point {
        let dx = (self.rng.f64() * 2.0 - 1.0) * CLOSE;
        let dy = (self.rng.f64() * 2.0 - 1.0) * CLOSE;
        self.world.wrap(Point::new(
            (f64::from(p.x) + dx) as f32,
            (f64::from(p.y) + dy) as f32,
        ))
    }

    /// An id no peer has.
    fn invented_id(&mut self) -> PeerId {
        PeerId::from_seed(u64::MAX / 2 + self.rng.below(1 << 40))
    }
}

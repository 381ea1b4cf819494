//! Chat in the simulator (`--chat P`): each counted peer says a line with
//! probability P per tick; the report says what share of the peers within
//! the speaker's radius (true positions, at send time) received it, and
//! how many copies arrived beyond the first.

use std::collections::HashMap;

use super::Sim;
use crate::id::PeerId;

/// Lines said within this many ticks of the end are not judged (still on
/// their way).
const CHAT_SETTLE_TICKS: u64 = 10;

/// One line said, and who has received it.
#[derive(Debug, Default)]
pub(super) struct Line {
    /// The peers within the speaker's radius when it spoke, each with the
    /// copies received so far.
    targets: HashMap<PeerId, u32>,
    /// Copies received by peers outside that audience (the sender's slack).
    others: HashMap<PeerId, u32>,
}

/// The lines said in the measured window.
#[derive(Debug, Default)]
pub(super) struct ChatLog {
    lines: HashMap<(PeerId, u64), Line>,
}

impl ChatLog {
    /// A delivery of (origin, id) to `to`.
    pub(super) fn delivered(&mut self, to: PeerId, key: (PeerId, u64)) {
        if let Some(line) = self.lines.get_mut(&key) {
            let copies = match line.targets.get_mut(&to) {
                Some(c) => c,
                None => line.others.entry(to).or_insert(0),
            };
            *copies += 1;
        }
    }

    /// (received ÷ audience, copies beyond the first ÷ receptions), over
    /// the lines judged; `None` without any.
    pub(super) fn figures(&self) -> (Option<f64>, Option<f64>) {
        let (mut audience, mut reached, mut copies, mut extra) = (0u64, 0u64, 0u64, 0u64);
        for line in self.lines.values() {
            audience += line.targets.len() as u64;
            for &c in line.targets.values().chain(line.others.values()) {
                reached += u64::from(c > 0);
                copies += u64::from(c);
                extra += u64::from(c.saturating_sub(1));
            }
            reached -= line.others.values().filter(|&&c| c > 0).count() as u64;
        }
        let delivery = (audience > 0).then(|| reached as f64 / audience as f64);
        let duplicates = (copies > 0).then(|| extra as f64 / copies as f64);
        (delivery, duplicates)
    }
}

impl Sim {
    /// This tick's chat lines.
    pub(super) fn chat(&mut self) {
        let judged =
            self.tick >= self.measure_from() && self.tick + CHAT_SETTLE_TICKS <= self.cfg.ticks;
        if self.cfg.chat <= 0.0 || !judged {
            return;
        }
        let now = self.now;
        for i in 0..self.slots.len() {
            if !self.slots[i].counted(now) || self.rng.f64() >= self.cfg.chat {
                continue;
            }
            let Ok(id) = self.slots[i].peer.say(now, "hello") else {
                continue;
            };
            let speaker = self.slots[i].peer.info().clone();
            let mut line = Line::default();
            for (j, s) in self.slots.iter().enumerate() {
                if j != i
                    && s.counted(now)
                    && self.world.distance(s.peer.info().pos, speaker.pos)
                        <= f64::from(speaker.radius)
                {
                    line.targets.insert(s.peer.id(), 0);
                }
            }
            self.chat_log.lines.insert((speaker.id, id), line);
            self.flush(i);
        }
    }
}

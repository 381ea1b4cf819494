//! Token buckets per sender: how much a peer accepts from each other peer
//! (area messages, routed object copies).

use std::collections::HashMap;

use crate::Millis;
use crate::id::PeerId;

/// Senders whose budgets are remembered (the one heard from longest ago is
/// forgotten first).
const REMEMBERED: usize = 1024;

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    tokens: f32,
    last: Millis,
}

impl Bucket {
    pub(super) fn full(burst: f32, now: Millis) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// Refills for the time since the last call, then takes one token if
    /// there is one.
    pub(super) fn take(&mut self, now: Millis, rate: f32, burst: f32) -> bool {
        let refill = now.since(self.last) as f32 / 1000.0 * rate;
        self.tokens = (self.tokens + refill).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One bucket per sender, for at most [`REMEMBERED`] senders.
#[derive(Debug, Default)]
pub(super) struct Budgets(HashMap<PeerId, Bucket>);

impl Budgets {
    /// Takes one token from `who`'s bucket (`rate` a second, bursts of
    /// `burst`, full for a sender not seen before), if one is left.
    pub(super) fn spend(&mut self, who: PeerId, now: Millis, rate: f32, burst: f32) -> bool {
        if !self.0.contains_key(&who)
            && self.0.len() >= REMEMBERED
            && let Some(old) = self.0.iter().min_by_key(|(_, b)| b.last).map(|(id, _)| *id)
        {
            self.0.remove(&old);
        }
        self.0
            .entry(who)
            .or_insert(Bucket::full(burst, now))
            .take(now, rate, burst)
    }
}

//! Offers, requests and copies between two peers (see the parent module's
//! "Offer, then fetch").

use super::{ASK_AGAIN_MS, ASK_ALTERNATIVES, Asked, MAX_OBJECTS_HELD};
use crate::Millis;
use crate::id::PeerId;
use crate::message::Message;
use crate::object::{MAX_OBJECTS_PER_MESSAGE, ObjectCopy, ObjectKey};
use crate::peer::Peer;

impl Peer {
    /// Copies asked for that did not come: ask the next peer that offered
    /// them, or give up (a later offer asks again).
    pub(super) fn ask_again(&mut self, now: Millis) {
        let mut asks: Vec<(PeerId, ObjectKey)> = Vec::new();
        self.objects.asked.retain(|key, a| {
            if now.since(a.at) < ASK_AGAIN_MS {
                return true;
            }
            match a.others.pop() {
                Some(next) => {
                    a.at = now;
                    asks.push((next, *key));
                    true
                }
                None => false,
            }
        });
        asks.sort_unstable();
        for (to, key) in asks {
            self.send(to, Message::ObjectWant { keys: vec![key] }, now);
        }
    }

    pub(super) fn send_copies(&mut self, to: PeerId, copies: Vec<ObjectCopy>, now: Millis) {
        for chunk in copies.chunks(MAX_OBJECTS_PER_MESSAGE) {
            self.stats.objects_sent += chunk.len() as u64;
            self.send(
                to,
                Message::Objects {
                    objects: chunk.to_vec(),
                },
                now,
            );
        }
    }

    /// A peer offers object versions: ask it for those we lack (once per
    /// [`ASK_AGAIN_MS`] per object, whoever offers; later offerers are kept
    /// to ask next).
    pub(in crate::peer) fn on_object_offer(
        &mut self,
        now: Millis,
        from: PeerId,
        offers: &[(ObjectKey, u32)],
    ) {
        let mut ask = Vec::new();
        for &(key, version) in offers {
            if let Some(h) = self.objects.held.get_mut(&key)
                && h.obj.version >= version
            {
                h.note(from, version);
                continue;
            }
            let pending = &mut self.objects.asked;
            if let Some(a) = pending.get_mut(&key)
                && a.version >= version
            {
                // Asked already: keep this one in case that answer never comes.
                if a.others.len() < ASK_ALTERNATIVES && !a.others.contains(&from) {
                    a.others.push(from);
                }
                continue;
            }
            if pending.len() >= MAX_OBJECTS_HELD {
                continue;
            }
            pending.insert(
                key,
                Asked {
                    version,
                    at: now,
                    others: Vec::new(),
                },
            );
            ask.push(key);
        }
        if !ask.is_empty() {
            self.send(from, Message::ObjectWant { keys: ask }, now);
        }
    }

    /// A peer asks for copies: sent only for the objects we know it should
    /// have (we offered them, or it sent us a version), each at most once
    /// per version: a request cannot make us send more than that.
    pub(in crate::peer) fn on_object_want(
        &mut self,
        now: Millis,
        from: PeerId,
        keys: &[ObjectKey],
    ) {
        let mut copies = Vec::new();
        for key in keys {
            let Some(h) = self.objects.held.get_mut(key) else {
                continue;
            };
            let version = h.obj.version;
            let Some(e) = h.known.iter_mut().find(|e| e.id == from) else {
                self.stats.objects_refused += 1;
                continue;
            };
            if e.answered >= version {
                self.stats.objects_refused += 1;
                continue;
            }
            e.answered = version;
            e.confirm(version);
            copies.push(h.copy(now));
        }
        if !copies.is_empty() {
            self.send_copies(from, copies, now);
        }
    }
}

//! The events of one lookahead window, run side by side.
//!
//! No message arrives sooner than the configured latency after it was sent
//! (at least a millisecond). So within a window of that length starting at
//! the earliest pending event, nothing a peer does can reach another peer:
//! every event of the window is either already queued or a timer the peer
//! sets for itself. The simulator runs a window in two phases. First each
//! peer handles its own events of the window in their queued order, plus
//! the timers it sets inside the window, and keeps what it produced aside;
//! this phase may run on several threads, one peer on one thread at a
//! time. Then the window's events are walked in the queue's order (by time,
//! first in first out), as a single-threaded simulator would handle them,
//! and each one's outputs are dispatched (counted, lost, delayed, queued)
//! on the caller's thread. The result is the same for any number of
//! threads.

use std::collections::VecDeque;

use rayon::prelude::*;

use super::{Action, FRAMING_BYTES, Sim, Slot};
use crate::Millis;
use crate::id::PeerId;
use crate::message::{Message, encoded_len};
use crate::peer::{Event, Transmit};

/// What one event asks of a peer.
enum Job {
    Deliver { from: PeerId, t: Box<Transmit> },
    Timer,
}

/// What a peer produced while handling one event.
#[derive(Default)]
pub(super) struct Outbox {
    /// Each message with its size on the wire (0 for a liar's, whose
    /// messages change before they are counted).
    transmits: Vec<(Box<Transmit>, u64)>,
    events: Vec<Event>,
    /// A timer to queue (the peer's `timer_at` is already set to it).
    timer: Option<Millis>,
}

/// One slot's share of a window: its queued events, then what each of its
/// events (queued or its own timers) produced, in order.
#[derive(Default)]
pub(super) struct Work {
    jobs: Vec<(Millis, Job)>,
    done: VecDeque<(Millis, Option<Outbox>)>,
}

impl Slot {
    /// Runs one event on this slot's peer (if it still applies) and takes
    /// what the peer produced.
    fn run(&mut self, at: Millis, job: Job) -> Option<Outbox> {
        match job {
            Job::Deliver { from, t } => {
                if !self.alive {
                    return None;
                }
                self.peer.handle(at, from, t.msg);
            }
            Job::Timer => {
                if !self.alive || self.timer_at != Some(at) {
                    return None;
                }
                self.timer_at = None;
                self.peer.handle_timeout(at);
            }
        }
        Some(self.drain(at))
    }

    /// Runs this slot's events of a window ending at `end`: the queued ones
    /// and the timers it sets itself before `end`, by time; at the same
    /// millisecond a queued event comes first, and own timers by when they
    /// were set, as the queue would order them.
    fn run_window(&mut self, end: Millis, work: &mut Work) {
        let mut own: Vec<Millis> = Vec::new();
        let mut jobs = std::mem::take(&mut work.jobs).into_iter().peekable();
        loop {
            // The earliest own timer, the first set among equals.
            let next_own = own.iter().copied().enumerate().min_by_key(|&(i, t)| (t, i));
            let (at, job) = match (jobs.peek(), next_own) {
                (Some(&(q, _)), Some((i, t))) if t < q => {
                    own.remove(i);
                    (t, Job::Timer)
                }
                (Some(_), _) => jobs.next().expect("peeked"),
                (None, Some((i, t))) => {
                    own.remove(i);
                    (t, Job::Timer)
                }
                (None, None) => break,
            };
            let out = self.run(at, job);
            if let Some(t) = out.as_ref().and_then(|o| o.timer)
                && t < end
            {
                own.push(t);
            }
            work.done.push_back((at, out));
        }
    }

    /// Takes the peer's pending messages, events and next timer.
    pub(super) fn drain(&mut self, now: Millis) -> Outbox {
        let mut out = Outbox::default();
        while let Some(t) = self.peer.poll_transmit() {
            let size = if self.liar {
                0
            } else {
                encoded_len(&t.msg) as u64 + FRAMING_BYTES
            };
            out.transmits.push((Box::new(t), size));
        }
        while let Some(e) = self.peer.poll_event() {
            out.events.push(e);
        }
        if let Some(t) = self.peer.poll_timeout() {
            let t = t.max(now.plus(1));
            if self.timer_at.is_none_or(|cur| t < cur) {
                self.timer_at = Some(t);
                out.timer = Some(t);
            }
        }
        out
    }
}

impl Sim {
    /// Runs every event before `until`, one lookahead window at a time.
    pub(super) fn run_until(&mut self, until: Millis) {
        let lookahead = self.lookahead;
        while let Some((&first, _)) = self.queue.first_key_value() {
            if first >= until {
                break;
            }
            let end = first.plus(lookahead).min(until);
            self.run_window(end);
        }
        self.now = until;
    }

    /// Runs the events before `end` (see the module's notes).
    fn run_window(&mut self, end: Millis) {
        let n = self.slots.len();
        self.work.resize_with(n, Work::default);
        // Hand each queued event to its slot, leaving its place in the queue.
        for (&at, actions) in self.queue.range_mut(..end) {
            for a in actions.iter_mut() {
                let slot = a.slot();
                let job = match std::mem::replace(a, Action::Done { slot }) {
                    Action::Deliver { from, t, .. } => Job::Deliver { from, t },
                    // (No `Done` is left: each window's walk takes its own.)
                    Action::Timer { .. } | Action::Done { .. } => Job::Timer,
                };
                self.work[slot].jobs.push((at, job));
            }
        }
        let busy = |(_, w): &(&mut Slot, &mut Work)| !w.jobs.is_empty();
        let each = |(s, w): (&mut Slot, &mut Work)| s.run_window(end, w);
        if self.threads > 1 {
            self.slots
                .par_iter_mut()
                .zip(self.work.par_iter_mut())
                .filter(busy)
                .for_each(each);
        } else {
            self.slots
                .iter_mut()
                .zip(self.work.iter_mut())
                .filter(busy)
                .for_each(each);
        }
        // Walk the window in the queue's order (own timers join the queue as
        // their setters' outputs are dispatched) and dispatch.
        while let Some(entry) = self.queue.first_entry() {
            let at = *entry.key();
            if at >= end {
                break;
            }
            self.now = at;
            for a in entry.remove() {
                let slot = a.slot();
                let (when, out) = self.work[slot]
                    .done
                    .pop_front()
                    .expect("every event of the window was run");
                debug_assert_eq!(when, at, "slot {slot} ran its events in the queue's order");
                if let Some(out) = out {
                    self.dispatch(slot, out);
                }
            }
        }
    }
}

impl Sim {
    /// Counts, loses, delays and queues a peer's messages, notes its events
    /// and queues its timer.
    pub(super) fn dispatch(&mut self, slot: usize, out: Outbox) {
        let from = self.slots[slot].peer.id();
        let in_window = self.tick >= self.measure_from();
        for (mut t, mut size) in out.transmits {
            if self.slots[slot].liar {
                self.falsify(from, &mut t);
                size = encoded_len(&t.msg) as u64 + FRAMING_BYTES;
            }
            self.msgs += 1;
            self.bytes += size;
            if in_window {
                self.window_msgs += 1;
                self.window_bytes += size;
                *self.window_by_kind.entry(t.msg.kind()).or_default() += size;
                if self.slots[slot].plaza.is_some() {
                    self.window_crowd_bytes += size;
                }
            }
            if let Message::RouteReply { token, .. } = t.msg {
                self.route_ended(from, t.to, token);
            }
            let Some(&to) = self.by_id.get(&t.to) else {
                continue;
            };
            if !self.slots[to].alive || self.cut_off(slot, to) {
                continue;
            }
            let mut lat = self.link_latency(&from, &t.to);
            if t.msg.is_datagram() {
                if self.cfg.loss > 0.0 && self.rng.f64() < self.cfg.loss {
                    continue;
                }
                if self.cfg.jitter_ms > 0 {
                    lat += self.rng.below(self.cfg.jitter_ms + 1);
                }
            }
            let at = self.now.plus(lat.max(1));
            self.enqueue(at, Action::Deliver { to, from, t });
        }
        for e in out.events {
            match e {
                Event::AreaMessage { origin, id, .. } => {
                    let to = self.slots[slot].peer.id();
                    self.chat_log.delivered(to, (origin, id));
                }
                Event::Routed {
                    token,
                    hops,
                    owner,
                    answer,
                    ..
                } => self.routed(from, token, hops, owner, &answer),
                Event::Joined { hops, .. } => {
                    self.slots[slot].counts_from = Some(self.now.plus(2 * self.cfg.latency_ms));
                    self.joins += 1;
                    self.join_hops += u64::from(hops);
                    if let Some(t0) = self.slots[slot].join_started.take() {
                        self.join_time += self.now.since(t0);
                    }
                }
                _ => {}
            }
        }
        if let Some(t) = out.timer {
            self.enqueue(t, Action::Timer { slot });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::World;
    use crate::sim::{Report, SimConfig};

    /// A small world where everything happens at once: churn, teleports,
    /// liars, loss, jitter, chat, objects, lookups and key records.
    fn busy(threads: usize) -> SimConfig {
        let mut cfg = SimConfig {
            peers: 120,
            ticks: 90,
            seed: 7,
            churn: 0.01,
            teleport: 0.005,
            liars: 0.05,
            chat: 0.02,
            objects: 8,
            lookups: 0.01,
            records: 6,
            latency_ms: 40,
            jitter_ms: 15,
            loss: 0.03,
            joins_per_tick: 30,
            measure_from: Some(30),
            threads,
            ..SimConfig::default()
        };
        cfg.peer.world = World::new(600.0, 600.0);
        cfg.peer.radius = 100.0;
        cfg.peer.long_links = 2;
        cfg
    }

    fn run(threads: usize, lookahead: Option<u64>) -> Report {
        let mut sim = Sim::new(busy(threads));
        if let Some(ms) = lookahead {
            sim.lookahead = ms;
        }
        sim.run()
    }

    #[test]
    fn windows_on_two_threads_give_the_report_of_one_event_at_a_time() {
        // A window of one millisecond holds no timer a peer sets itself
        // inside it, so it runs the events in the queue's plain order.
        let plain = run(1, Some(1));
        assert!(plain.summary.samples > 0 && plain.msgs_per_peer_per_s > 0.0);
        assert_eq!(run(1, None), plain, "40 ms windows, one thread");
        assert_eq!(run(2, None), plain, "40 ms windows, two threads");
    }
}

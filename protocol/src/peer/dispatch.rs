//! Message dispatch: every received message checked, the sender's liveness
//! noted, then handed to the rule that handles it.

use super::join::Join;
use super::{Event, HINTS_PER_SENDER, Peer, RejectReason, State};
use crate::Millis;
use crate::id::{PeerId, PeerInfo};
use crate::message::Message;

impl Peer {
    /// A message arrived from the authenticated peer `from`.
    pub fn handle(&mut self, now: Millis, from: PeerId, msg: Message) {
        self.handle_from_addr(now, from, None, msg);
    }

    /// A message arrived from the authenticated peer `from`, whose link comes
    /// from the transport address `remote` (a first-hop join from a peer that
    /// does not know its own address is given this one).
    pub fn handle_from_addr(
        &mut self,
        now: Millis,
        from: PeerId,
        remote: Option<&str>,
        msg: Message,
    ) {
        self.stats.msgs_in += 1;
        if from == self.me.id || self.state == State::Left {
            return;
        }
        if let Err(e) = msg.validate() {
            self.reject(from, RejectReason::from(&e));
            return;
        }
        // Any message shows the sender alive; only its own record (a
        // `Hello` or a `Move`) confirms it: a hint's position is a third
        // party's belief, and a `Forget` or a `Ping` confirming it kept a
        // teleporter's pre-jump place in a view as a confirmed neighbour,
        // which routed joins round a loop.
        if let Some(k) = self.kept.get_mut(&from) {
            k.last_heard = now;
            k.earn_reply_credit(&msg);
        }
        // What a join's reply may cost (only joins need it).
        let join_size = match &msg {
            Message::Join { .. } => msg.min_wire_len(),
            _ => 0,
        };
        match msg {
            Message::Join {
                joiner,
                hops,
                attempt,
                token,
                pad,
            } => {
                let join = Join {
                    hops,
                    attempt,
                    token,
                    pad,
                    size: join_size,
                };
                self.on_join(now, from, remote, joiner, join);
            }
            Message::JoinReply {
                hops,
                at,
                peers,
                observed_addr,
                token,
            } => self.on_join_reply(now, from, (hops, at, token), peers, observed_addr),
            Message::Hello {
                inc,
                seq,
                pos,
                radius,
                name,
                addr,
                ask,
            } => {
                let info = PeerInfo {
                    id: from,
                    pos,
                    radius,
                    name,
                    addr,
                };
                self.on_hello(now, info, (inc, seq), ask);
            }
            Message::Move { inc, seq, pos, vel } => self.on_move(now, from, (inc, seq), pos, vel),
            Message::Discover { peers, mutual } => {
                self.on_discover(now, from, peers, mutual, HINTS_PER_SENDER);
            }
            Message::Digest { ids } => self.on_digest(now, from, &ids),
            // From any authenticated peer: a copy is verified and taken
            // only if wanted here; an offer costs us one small request; a
            // request is answered only for what we offered.
            Message::Objects { objects } => self.on_objects(now, from, objects),
            Message::ObjectOffer { offers } => self.on_object_offer(now, from, &offers),
            Message::ObjectWant { keys } => self.on_object_want(now, from, &keys),
            Message::Ping => {}
            Message::Forget => self.on_forget(now, from),
            Message::Leave => self.on_leave(now, from),
            Message::AreaCast {
                id,
                origin,
                centre,
                radius,
                hops,
                stage,
                payload,
            } => self.on_area_cast(
                now,
                from,
                (id, origin, centre),
                (radius, hops, stage),
                payload,
            ),
            Message::Route {
                origin,
                target,
                hops,
                token,
                ask,
            } => self.on_route(now, from, origin, (target, hops, token), ask),
            Message::RouteReply {
                token,
                hops,
                pos,
                answer,
            } => self.on_route_reply(now, from, (token, hops, pos), answer),
            Message::Records { records } => self.on_records(now, from, records),
            Message::RecordOffer { offers } => self.on_record_offer(now, from, &offers),
            Message::RecordWant { keys } => self.on_record_want(now, from, &keys),
            Message::LinkKeep { stop } => self.on_link_keep(now, from, stop),
            Message::LinkAt { pos, kept } => self.on_link_at(now, from, pos, kept),
        }
        if self.is_joined() && self.kept.get(&from).is_some_and(|k| k.confirmed) {
            self.ever_connected = true;
        }
    }

    pub(super) fn reject(&mut self, from: PeerId, reason: RejectReason) {
        self.stats.rejected += 1;
        self.events.push_back(Event::Rejected { from, reason });
    }
}

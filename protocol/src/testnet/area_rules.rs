//! Area messages and chat: who receives them, once, and what is refused.

use super::{Net, settled as world};
use crate::Millis;
use crate::geometry::Point;
use crate::id::PeerId;
use crate::message::{AreaStage, MAX_AREA_PAYLOAD, Message};
use crate::peer::{AREA_BURST, AREA_FORWARD_RATE_PER_S, AreaError, chat_text};

/// Who lies within `radius` of `centre` (by true position), and who
/// received (origin, id), with how many copies each.
fn audience(
    net: &Net,
    centre: Point,
    radius: f32,
    origin: PeerId,
    id: u64,
) -> (Vec<PeerId>, Vec<(PeerId, usize)>) {
    let world = net.config.world;
    let inside: Vec<PeerId> = net
        .peers
        .iter()
        .filter(|(_, p)| world.distance(p.info().pos, centre) <= f64::from(radius))
        .map(|(id, _)| *id)
        .collect();
    let mut got: Vec<(PeerId, usize)> = Vec::new();
    for (to, o, n, _) in &net.area {
        if *o == origin && *n == id {
            match got.iter_mut().find(|g| g.0 == *to) {
                Some(g) => g.1 += 1,
                None => got.push((*to, 1)),
            }
        }
    }
    (inside, got)
}

#[test]
fn a_chat_line_reaches_everyone_within_the_speakers_radius_once() {
    let mut net = world(200, 600.0, 3);
    let speaker = PeerId::from_seed(40);
    let now = net.now;
    let (pos, radius) = (
        net.peer(speaker).info().pos,
        net.peer(speaker).info().radius,
    );
    let id = net.peer(speaker).say(now, "  hello, world  ").unwrap();
    net.drive(500);
    let (inside, got) = audience(&net, pos, radius, speaker, id);
    assert!(inside.len() >= 5, "a sparse audience: {}", inside.len());
    for p in &inside {
        assert!(got.iter().any(|g| g.0 == *p), "{p} did not hear it");
    }
    assert!(got.iter().all(|g| g.1 == 1), "copies: {got:?}");
    let line = net
        .area
        .iter()
        .find(|a| a.1 == speaker)
        .map(|a| a.3.clone());
    assert_eq!(line.as_deref().and_then(chat_text), Some("hello, world"));
    // One message per receiver: the speaker knows its whole disk.
    let sent = net
        .log
        .iter()
        .filter(|(_, _, m)| matches!(m, Message::AreaCast { .. }))
        .count();
    assert!(
        sent <= inside.len() + 10,
        "{sent} messages for {} receivers",
        inside.len()
    );
}

#[test]
fn an_area_message_far_away_and_wider_than_any_view_reaches_the_peers_inside() {
    // Radius 100 views; the disk is 250 wide, and 600 units from the sender.
    let mut net = world(300, 1_000.0, 5);
    let sender = PeerId::from_seed(2);
    net.move_to(sender, 100.0, 100.0);
    net.drive(3_000);
    let (centre, radius) = (Point::new(650.0, 600.0), 250.0);
    let now = net.now;
    let id = net
        .peer(sender)
        .area_cast(now, centre, radius, b"sign".to_vec())
        .unwrap();
    net.drive(3_000);
    let (inside, got) = audience(&net, centre, radius, sender, id);
    assert!(inside.len() >= 30, "only {} inside", inside.len());
    let missed: Vec<_> = inside
        .iter()
        .filter(|p| !got.iter().any(|g| g.0 == **p))
        .collect();
    assert!(
        missed.is_empty(),
        "{} of {} missed it",
        missed.len(),
        inside.len()
    );
    assert!(got.iter().all(|g| g.1 == 1), "delivered twice: {got:?}");
    let outside = got.iter().filter(|g| !inside.contains(&g.0)).count();
    assert_eq!(outside, 0, "delivered outside the disk");
}

#[test]
fn forged_origins_floods_and_bad_sends_are_refused() {
    let mut net = world(20, 1_000.0, 7);
    let (a, b) = (PeerId::from_seed(3), PeerId::from_seed(4));
    let cast = |origin, id, payload: Vec<u8>| Message::AreaCast {
        id,
        origin,
        centre: Point::new(500.0, 500.0),
        radius: 50.0,
        hops: 0,
        stage: AreaStage::Direct,
        payload,
    };
    // A first-hop message naming someone else.
    let t = Millis(net.now.0 + 1);
    let before = net.peer(a).stats().rejected;
    net.peer(a)
        .handle(t, b, cast(PeerId::from_seed(9), 1, vec![1, b'x']));
    assert_eq!(net.peer(a).stats().rejected, before + 1);
    // A flood from one sender: the burst passes, the rest is refused.
    let burst = AREA_BURST as u64;
    for n in 0..burst + 30 {
        net.peer(a).handle(t, b, cast(b, 100 + n, vec![1, b'x']));
    }
    assert_eq!(net.peer(a).stats().area_refused, 30);
    // The same message twice is delivered once.
    let later = Millis(t.0 + 10_000);
    net.peer(a).handle(later, b, cast(b, 100, vec![1]));
    assert_eq!(net.peer(a).stats().area_duplicates, 1);
    // Our own sends: too large, a bad disk, a too long or empty line, too fast.
    let p = net.peer(a);
    let big = vec![0; MAX_AREA_PAYLOAD + 1];
    assert_eq!(
        p.area_cast(later, Point::new(1.0, 1.0), 10.0, big),
        Err(AreaError::TooLarge(MAX_AREA_PAYLOAD + 1))
    );
    assert_eq!(
        p.area_cast(later, Point::new(f32::NAN, 1.0), 10.0, vec![]),
        Err(AreaError::BadArea)
    );
    assert_eq!(
        p.say(later, &"x".repeat(281)),
        Err(AreaError::TextTooLong(281))
    );
    assert_eq!(p.say(later, "   "), Err(AreaError::EmptyText));
    let sent = (0..100).filter(|_| p.say(later, "spam").is_ok()).count();
    assert_eq!(sent, burst as usize);
    // Many senders each within their budget: the peer still passes on
    // no more than its own forwarding budget (a burst of twice the rate).
    let far = Point::new(
        1_000.0 - p.info().pos.x.clamp(1.0, 999.0),
        1_000.0 - p.info().pos.y.clamp(1.0, 999.0),
    );
    let (forwarded, refused) = (p.stats().area_forwarded, p.stats().area_refused);
    let t = Millis(later.0 + 60_000);
    for n in 0..300u64 {
        let sender = PeerId::from_seed(1_000 + n / 10);
        let msg = Message::AreaCast {
            id: n,
            origin: sender,
            centre: far,
            radius: 10.0,
            hops: 0,
            stage: AreaStage::Route,
            payload: vec![2],
        };
        p.handle(t, sender, msg);
    }
    let burst = (2.0 * AREA_FORWARD_RATE_PER_S) as u64;
    assert_eq!(p.stats().area_forwarded - forwarded, burst);
    assert_eq!(p.stats().area_refused - refused, 300 - burst);
    // Payloads that are not chat lines read as none.
    assert_eq!(chat_text(&[1, 0xff, 0xfe]), None);
    assert_eq!(chat_text(&[2, b'a']), None);
    assert_eq!(chat_text(&[]), None);
}

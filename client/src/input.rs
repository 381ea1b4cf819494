//! Walking: WASD / arrow keys move the own avatar at once (the client does
//! not wait for the node), a click sets a point to walk to, and moves go to
//! the node at most 20 times a second.

use bevy::prelude::*;
use peerworld_protocol::Point;

use crate::avatar::OwnPos;
use peerworld_node::Command;
use tokio::sync::mpsc;

use crate::net::{Bridge, NetSystems};

/// Walking speed in units per second.
#[derive(Resource, Debug, Clone, Copy)]
pub struct WalkSpeed(pub f32);

/// A point clicked to walk to (continuous coordinates).
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct WalkTarget(pub Option<Vec2>);

/// Seconds between two moves sent to the node.
pub const SEND_PERIOD: f64 = 0.05;

#[derive(Resource, Default)]
struct LastSent {
    pos: Option<Vec2>,
    at: f64,
}

/// Keyboard walking and sending moves.
pub struct WalkPlugin;

impl Plugin for WalkPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(WalkSpeed(160.0))
            .init_resource::<WalkTarget>()
            .init_resource::<LastSent>()
            .add_systems(Update, walk.before(NetSystems::Apply))
            .add_systems(Update, send_moves.in_set(NetSystems::Send));
    }
}

/// The unit direction the keys point to (zero when none or opposite).
pub fn key_direction(keys: &ButtonInput<KeyCode>) -> Vec2 {
    let mut d = Vec2::ZERO;
    if keys.any_pressed([KeyCode::KeyW, KeyCode::ArrowUp]) {
        d.y += 1.0;
    }
    if keys.any_pressed([KeyCode::KeyS, KeyCode::ArrowDown]) {
        d.y -= 1.0;
    }
    if keys.any_pressed([KeyCode::KeyA, KeyCode::ArrowLeft]) {
        d.x -= 1.0;
    }
    if keys.any_pressed([KeyCode::KeyD, KeyCode::ArrowRight]) {
        d.x += 1.0;
    }
    d.normalize_or_zero()
}

fn walk(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    chat: Option<Res<crate::chat::ChatState>>,
    mut target: ResMut<WalkTarget>,
    mut own: ResMut<OwnPos>,
    speed: Res<WalkSpeed>,
    time: Res<Time>,
) {
    if !own.placed {
        return;
    }
    let step = speed.0 * time.delta_secs();
    let typing = chat.is_some_and(|c| c.is_typing());
    let dir = match keys {
        Some(k) if !typing => key_direction(&k),
        _ => Vec2::ZERO,
    };
    if dir != Vec2::ZERO {
        target.0 = None; // keys take over from a click
        own.display += dir * step;
    } else if let Some(goal) = target.0 {
        let to = goal - own.display;
        if to.length() <= step {
            own.display = goal;
            target.0 = None;
        } else {
            own.display += to.normalize() * step;
        }
    }
}

fn send_moves(own: Res<OwnPos>, bridge: Res<Bridge>, mut last: ResMut<LastSent>, time: Res<Time>) {
    if !own.placed {
        return;
    }
    offer_move(
        &bridge.commands,
        &mut last,
        own.wrapped(),
        time.elapsed_secs_f64(),
    );
}

/// Sends `pos` if the avatar moved and the last move is a send period old.
/// A full queue drops the move, and `last` keeps the last position the node
/// actually took, so the move is offered again on the next frame (a final
/// move is never lost).
fn offer_move(commands: &mpsc::Sender<Command>, last: &mut LastSent, pos: Vec2, now: f64) {
    let Some(prev) = last.pos else {
        // The node already stands where the first view placed us.
        last.pos = Some(pos);
        return;
    };
    let moved = prev.distance(pos) > 0.01;
    if moved
        && now - last.at >= SEND_PERIOD
        && commands
            .try_send(Command::MoveTo(Point::new(pos.x, pos.y)))
            .is_ok()
    {
        last.pos = Some(pos);
        last.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_refused_by_a_full_queue_is_offered_again() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut last = LastSent {
            pos: Some(Vec2::new(0.0, 0.0)),
            at: 0.0,
        };
        tx.try_send(Command::MoveTo(Point::new(0.0, 0.0))).unwrap();
        // The avatar stops at (10, 0) while the queue is full.
        offer_move(&tx, &mut last, Vec2::new(10.0, 0.0), 1.0);
        assert!(rx.try_recv().is_ok());
        // Standing still from now on: the final position still reaches the node.
        offer_move(&tx, &mut last, Vec2::new(10.0, 0.0), 1.1);
        let got = rx.try_recv().ok();
        assert!(
            matches!(got, Some(Command::MoveTo(p)) if p == Point::new(10.0, 0.0)),
            "{got:?}"
        );
    }
}

//! Signs: the world objects the node knows, drawn as a coloured post with
//! their text; `P` opens a prompt that places one at the avatar (Enter
//! places it, Escape drops it) and `X` removes the nearest of our own
//! within [`REMOVE_REACH`] units.

use std::collections::HashMap;

use bevy::input::ButtonState;
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use peerworld_node::{Command, NewObject};
use peerworld_protocol::object::{
    MAX_OBJECT_TEXT, ObjectError, ObjectKey, WorldObject, nearest_first,
};
use peerworld_protocol::{Point, World};
use tokio::sync::oneshot;

use crate::avatar::OwnPos;
use crate::chat::{ChatState, push_within, refusals};
use crate::net::{Bridge, LatestView, NetSystems};
use crate::{nearest_image, vec2};

/// How far from the avatar `X` looks for an own sign to remove.
pub const REMOVE_REACH: f32 = 60.0;
/// Lifetime of a sign placed from the client (one day, the most).
const SIGN_TTL_S: u32 = peerworld_protocol::object::MAX_OBJECT_TTL_S;
/// Colour of the signs placed from the client.
pub const SIGN_COLOUR: [u8; 3] = [240, 180, 40];
/// Size of a sign's post, in world units.
pub const POST_SIZE: f32 = 14.0;

/// A sign drawn for a world object.
#[derive(Component, Debug)]
pub struct Sign {
    /// The object.
    pub key: ObjectKey,
    /// Its version drawn.
    pub version: u32,
}

/// The sign's text, a child of its post.
#[derive(Component, Debug)]
pub struct SignText;

/// The answers awaited from the node, and the signs drawn.
#[derive(Resource, Default)]
pub struct SignState {
    pending: Vec<oneshot::Receiver<Result<ObjectKey, ObjectError>>>,
    removing: Vec<oneshot::Receiver<Result<(), ObjectError>>>,
    index: HashMap<ObjectKey, Entity>,
}

/// Signs: drawing, placing, removing.
pub struct SignPlugin;

impl Plugin for SignPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SignState>()
            .add_message::<KeyboardInput>()
            .add_systems(
                Update,
                (
                    keys.after(crate::chat::type_line).before(NetSystems::Send),
                    (answers, draw_signs).after(NetSystems::Apply),
                ),
            );
    }
}

/// `P` opens the prompt, typing fills it, Enter places, Escape drops;
/// `X` removes the nearest own sign. Not while a chat line is open.
fn keys(
    mut input: MessageReader<KeyboardInput>,
    mut signs: ResMut<SignState>,
    mut chat: ResMut<ChatState>,
    bridge: Res<Bridge>,
    own: Res<OwnPos>,
    view: Res<LatestView>,
) {
    for k in input.read() {
        if k.state != ButtonState::Pressed {
            continue;
        }
        if chat.typing.is_some() || chat.keys_taken {
            continue;
        }
        let Some(line) = chat.sign.as_mut() else {
            match &k.logical_key {
                Key::Character(c) if c.eq_ignore_ascii_case("p") => {
                    chat.sign = Some(String::new());
                }
                Key::Character(c) if c.eq_ignore_ascii_case("x") => {
                    remove_nearest(&mut signs, &mut chat, &bridge, &own, &view);
                }
                _ => {}
            }
            continue;
        };
        match &k.logical_key {
            Key::Enter => {
                let text = chat.sign.take().unwrap_or_default();
                if !text.trim().is_empty() {
                    let at = own.wrapped();
                    place(&mut signs, &mut chat, &bridge, Point::new(at.x, at.y), text);
                }
            }
            Key::Escape => chat.sign = None,
            Key::Backspace => {
                line.pop();
            }
            Key::Space => push_within(line, " ", MAX_OBJECT_TEXT),
            Key::Character(s) => push_within(line, s, MAX_OBJECT_TEXT),
            _ => {}
        }
    }
}

/// Asks the node to place a sign with `text` at `at`.
pub fn place(
    signs: &mut SignState,
    chat: &mut ChatState,
    bridge: &Bridge,
    at: Point,
    text: String,
) {
    let (tx, rx) = oneshot::channel();
    let new = NewObject {
        pos: at,
        text: text.trim().to_string(),
        colour: SIGN_COLOUR,
        ttl_s: SIGN_TTL_S,
    };
    if bridge
        .commands
        .try_send(Command::PlaceObject(new, tx))
        .is_ok()
    {
        signs.pending.push(rx);
    } else {
        chat.note("· sign not placed: the node is busy or stopped".into());
    }
}

/// The nearest live object of ours within [`REMOVE_REACH`] of `at`.
pub fn nearest_own(
    objects: &[WorldObject],
    me: peerworld_protocol::PeerId,
    world: World,
    at: Vec2,
) -> Option<ObjectKey> {
    nearest_first(world, objects, Point::new(at.x, at.y), REMOVE_REACH)
        .into_iter()
        .find(|o| o.author() == me)
        .map(|o| o.key)
}

fn remove_nearest(
    signs: &mut SignState,
    chat: &mut ChatState,
    bridge: &Bridge,
    own: &OwnPos,
    view: &LatestView,
) {
    let snap = &view.snapshot;
    let Some(key) = nearest_own(&snap.objects, snap.view.me.id, snap.world, own.wrapped()) else {
        chat.note(format!("· no sign of yours within {REMOVE_REACH} units"));
        return;
    };
    let (tx, rx) = oneshot::channel();
    if bridge
        .commands
        .try_send(Command::RemoveObject(key, tx))
        .is_ok()
    {
        signs.removing.push(rx);
    }
}

/// Refusals from the node go to the log.
fn answers(mut signs: ResMut<SignState>, mut chat: ResMut<ChatState>) {
    let mut notes = refusals(&mut signs.pending, "sign not placed");
    notes.extend(refusals(&mut signs.removing, "sign not removed"));
    for n in notes {
        chat.note(n);
    }
}

fn colour(c: [u8; 3]) -> Color {
    Color::srgb_u8(c[0], c[1], c[2])
}

/// One sign entity per object the node knows: spawned, updated when its
/// version changes, despawned when gone; placed at the image of its
/// point nearest the avatar (the world wraps).
fn draw_signs(
    mut commands: Commands,
    view: Res<LatestView>,
    own: Res<OwnPos>,
    mut signs: ResMut<SignState>,
    mut posts: Query<(&mut Sign, &mut Transform, &mut Sprite, &Children)>,
    mut texts: Query<&mut Text2d, With<SignText>>,
) {
    let snap = &view.snapshot;
    let mut live: Vec<ObjectKey> = Vec::with_capacity(snap.objects.len());
    for o in snap.objects.iter() {
        live.push(o.key);
        let pos = vec2(o.pos);
        let shown = nearest_image(snap.world, own.display, pos);
        match signs.index.get(&o.key).and_then(|e| posts.get_mut(*e).ok()) {
            Some((mut sign, mut tf, mut sprite, children)) => {
                tf.translation.x = shown.x;
                tf.translation.y = shown.y;
                if sign.version != o.version {
                    sign.version = o.version;
                    sprite.color = colour(o.colour);
                    for c in children.iter() {
                        if let Ok(mut t) = texts.get_mut(c) {
                            t.0 = o.text.clone();
                        }
                    }
                }
            }
            None => {
                let e = commands
                    .spawn((
                        Sign {
                            key: o.key,
                            version: o.version,
                        },
                        Sprite::from_color(colour(o.colour), Vec2::splat(POST_SIZE)),
                        Transform::from_xyz(shown.x, shown.y, 0.5),
                    ))
                    .with_child((
                        SignText,
                        Text2d::new(o.text.clone()),
                        TextFont::from_font_size(13.0),
                        TextColor(colour(o.colour)),
                        Transform::from_xyz(0.0, POST_SIZE + 4.0, 0.1),
                    ))
                    .id();
                signs.index.insert(o.key, e);
            }
        }
    }
    live.sort_unstable();
    signs.index.retain(|k, e| {
        let keep = live.binary_search(k).is_ok();
        if !keep {
            commands.entity(*e).despawn();
        }
        keep
    });
}

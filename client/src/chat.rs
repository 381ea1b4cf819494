//! Chat: Enter opens a line, typing fills it (the avatar stands still and
//! the overlay keys are letters meanwhile), Enter says it, Escape drops it.
//! Every line the node hears (our own among them) becomes a bubble over
//! its speaker's avatar for [`BUBBLE_SECS`] and enters the log.

use std::collections::VecDeque;

use bevy::input::ButtonState;
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use peerworld_node::Command;
use peerworld_protocol::{AreaError, PeerId};
use tokio::sync::oneshot;

use crate::avatar::{AvatarIndex, OwnAvatar};
use crate::net::{Bridge, LatestView, NetSystems};

/// How long a bubble stays over its speaker, in seconds.
pub const BUBBLE_SECS: f64 = 6.0;
/// Lines the log keeps.
pub const LOG_LINES: usize = 8;
/// Longest line one can type (the protocol's limit, in bytes).
pub const MAX_TYPED: usize = peerworld_protocol::peer::MAX_CHAT_LEN;
/// Height of a bubble above its speaker's centre.
const BUBBLE_RISE: f32 = 46.0;

/// The line being typed, the log, and what was said but not yet answered.
#[derive(Resource, Default)]
pub struct ChatState {
    /// The line being typed, while the chat line is open.
    pub typing: Option<String>,
    /// The text of a new sign being typed, while its prompt is open
    /// (`signs.rs`).
    pub sign: Option<String>,
    /// The chat line was open at some point this frame: its keys were
    /// not for anything else.
    pub keys_taken: bool,
    /// The last lines heard (and refusals), oldest first.
    pub log: VecDeque<String>,
    last_seq: u64,
    pending: Vec<oneshot::Receiver<Result<u64, AreaError>>>,
}

impl ChatState {
    /// Whether keys go to the chat line or the sign prompt rather than to
    /// walking.
    pub fn is_typing(&self) -> bool {
        self.typing.is_some() || self.sign.is_some()
    }

    /// Adds a line of our own (a refusal, a notice) to the log.
    pub fn note(&mut self, line: String) {
        self.log(line);
    }

    fn log(&mut self, line: String) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }
}

/// A chat line over its speaker's avatar, until `until` (`Time` seconds).
#[derive(Component, Debug)]
pub struct Bubble {
    /// Who said it.
    pub speaker: PeerId,
    /// When it goes.
    pub until: f64,
}

/// A line to say once the node has joined (`--say TEXT`, for scripts).
#[derive(Resource, Debug, Default, Clone)]
pub struct SayOnJoin(pub Option<String>);

/// Typing, saying, bubbles and the log.
pub struct ChatPlugin;

impl Plugin for ChatPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ChatState>()
            .init_resource::<SayOnJoin>()
            .add_message::<KeyboardInput>()
            .add_systems(
                Update,
                (
                    hear.after(NetSystems::Receive).before(NetSystems::Apply),
                    (type_line, say_on_join).before(NetSystems::Send),
                    (place_bubbles, expire_bubbles).after(NetSystems::Apply),
                ),
            );
    }
}

/// Reads the keys into the chat line; says it on Enter.
pub(crate) fn type_line(
    mut keys: MessageReader<KeyboardInput>,
    mut chat: ResMut<ChatState>,
    bridge: Res<Bridge>,
) {
    chat.keys_taken = chat.typing.is_some();
    for k in keys.read() {
        chat.keys_taken |= chat.typing.is_some();
        if k.state != ButtonState::Pressed || chat.sign.is_some() {
            continue;
        }
        let Some(line) = chat.typing.as_mut() else {
            if k.logical_key == Key::Enter {
                chat.typing = Some(String::new());
            }
            continue;
        };
        match &k.logical_key {
            Key::Enter => {
                let text = chat.typing.take().unwrap_or_default();
                if !text.trim().is_empty() {
                    say(&mut chat, &bridge, text);
                }
            }
            Key::Escape => chat.typing = None,
            Key::Backspace => {
                line.pop();
            }
            Key::Space => push_within(line, " ", MAX_TYPED),
            Key::Character(s) => push_within(line, s, MAX_TYPED),
            _ => {}
        }
    }
}

/// Says the `--say` line once the node is part of a world.
fn say_on_join(
    mut queued: ResMut<SayOnJoin>,
    view: Res<LatestView>,
    mut chat: ResMut<ChatState>,
    bridge: Res<Bridge>,
) {
    if queued.0.is_none() || !view.snapshot.joined() {
        return;
    }
    if let Some(text) = queued.0.take() {
        say(&mut chat, &bridge, text);
    }
}

/// Hands `text` to the node; a refusal shows in the log.
fn say(chat: &mut ChatState, bridge: &Bridge, text: String) {
    let (tx, rx) = oneshot::channel();
    if bridge.commands.try_send(Command::Say(text, tx)).is_ok() {
        chat.pending.push(rx);
    } else {
        chat.log("· not said: the node is busy or stopped".into());
    }
}

/// Appends `s` if the line stays within `max` bytes.
pub fn push_within(line: &mut String, s: &str, max: usize) {
    if line.len() + s.len() <= max && !s.chars().any(char::is_control) {
        line.push_str(s);
    }
}

/// Drops the answers that came from the node; each refusal becomes a log
/// line `what: why`.
pub fn refusals<T, E: std::fmt::Display>(
    pending: &mut Vec<oneshot::Receiver<Result<T, E>>>,
    what: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    pending.retain_mut(|rx| match rx.try_recv() {
        Ok(Err(e)) => {
            out.push(format!("· {what}: {e}"));
            false
        }
        Ok(Ok(_)) | Err(oneshot::error::TryRecvError::Closed) => false,
        Err(oneshot::error::TryRecvError::Empty) => true,
    });
    out
}

/// Takes the lines the node heard: a bubble each, and the log.
fn hear(
    mut commands: Commands,
    bridge: Res<Bridge>,
    view: Res<LatestView>,
    mut chat: ResMut<ChatState>,
    time: Res<Time>,
) {
    let now = time.elapsed_secs_f64();
    for r in refusals(&mut chat.pending, "not said") {
        chat.log(r);
    }
    for line in bridge.chat.after(chat.last_seq) {
        chat.last_seq = line.seq;
        let me = view.snapshot.view.me.id;
        let name = if line.name.is_empty() {
            line.from.short()
        } else {
            line.name.clone()
        };
        let who = if line.from == me { "you".into() } else { name };
        chat.log(format!("{who}: {}", line.text));
        commands.spawn((
            Bubble {
                speaker: line.from,
                until: now + BUBBLE_SECS,
            },
            Text2d::new(line.text),
            TextFont::from_font_size(15.0),
            TextColor(Color::srgb(1.0, 0.97, 0.85)),
            Transform::from_xyz(0.0, 0.0, 5.0),
            Visibility::Hidden,
        ));
    }
}

/// Keeps each bubble over its speaker (hidden while the speaker is not in
/// view); a newer bubble of the same speaker stacks above the older.
fn place_bubbles(
    mut bubbles: Query<(&Bubble, &mut Transform, &mut Visibility)>,
    index: Res<AvatarIndex>,
    avatars: Query<&Transform, Without<Bubble>>,
    own: Query<&Transform, (With<OwnAvatar>, Without<Bubble>)>,
    view: Res<LatestView>,
) {
    let me = view.snapshot.view.me.id;
    let mut stacked: Vec<(PeerId, f32)> = Vec::new();
    let mut order: Vec<_> = bubbles.iter_mut().collect();
    // Newest (latest `until`) highest.
    order.sort_by(|a, b| a.0.until.total_cmp(&b.0.until));
    for (bubble, mut tf, mut vis) in order {
        let anchor = if bubble.speaker == me {
            own.single().ok()
        } else {
            index
                .0
                .get(&bubble.speaker)
                .and_then(|e| avatars.get(*e).ok())
        };
        let Some(anchor) = anchor else {
            vis.set_if_neq(Visibility::Hidden);
            continue;
        };
        let level = match stacked.iter_mut().find(|s| s.0 == bubble.speaker) {
            Some(s) => {
                s.1 += 18.0;
                s.1
            }
            None => {
                stacked.push((bubble.speaker, 0.0));
                0.0
            }
        };
        tf.translation = anchor.translation + Vec3::new(0.0, BUBBLE_RISE + level, 5.0);
        vis.set_if_neq(Visibility::Visible);
    }
}

fn expire_bubbles(mut commands: Commands, bubbles: Query<(Entity, &Bubble)>, time: Res<Time>) {
    let now = time.elapsed_secs_f64();
    for (e, b) in &bubbles {
        if now >= b.until {
            commands.entity(e).despawn();
        }
    }
}

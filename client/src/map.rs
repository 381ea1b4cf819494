//! Finding your way: a minimap of the whole world in the window's
//! bottom-left corner (you, the peers your node knows, the signs it knows;
//! a click there teleports you), and zoom with the mouse wheel (or + and -).

use std::collections::{HashMap, HashSet};

use bevy::input::mouse::{MouseScrollUnit, MouseWheel};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use peerworld_protocol::object::ObjectKey;
use peerworld_protocol::{PeerId, World};

use crate::avatar::OwnPos;
use crate::input::WalkTarget;
use crate::net::{LatestView, NetSystems};
use crate::{id_colour, vec2};

/// The minimap's side, in logical pixels.
pub const MAP_SIZE: f32 = 180.0;
/// Its gap to the window's left and bottom edges.
pub const MAP_MARGIN: f32 = 10.0;
/// Most peers drawn on the minimap, the nearest (a node keeps a few dozen;
/// each dot is a UI node, and a thousand cost 10 ms a frame under software
/// rendering).
pub const MAP_PEERS: usize = 128;
/// The closest and farthest zoom (world units per pixel).
pub const ZOOM_RANGE: (f32, f32) = (0.25, 8.0);

/// What a dot on the minimap stands for.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapDot {
    /// You.
    Me,
    /// A peer your node knows.
    Peer(PeerId),
    /// A sign your node knows.
    Sign(ObjectKey),
}

#[derive(Component)]
struct Minimap;

/// The dots drawn: the view they were last drawn from, and each one's entity.
#[derive(Resource, Default)]
struct Dots {
    view: u64,
    index: HashMap<MapDot, Entity>,
}

/// The minimap and the zoom.
pub struct MapPlugin;

impl Plugin for MapPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Dots>()
            .add_message::<MouseWheel>()
            .add_systems(Startup, setup)
            .add_systems(Update, (click_to_teleport.before(NetSystems::Send), zoom))
            .add_systems(Update, draw_dots.after(NetSystems::Apply));
    }
}

/// Where the point `p` of `world` shows on the minimap, in pixels from its
/// top-left corner (the world's y grows up, the screen's down).
pub fn world_to_map(world: World, p: Vec2) -> Vec2 {
    Vec2::new(
        p.x / world.width * MAP_SIZE,
        (1.0 - p.y / world.height) * MAP_SIZE,
    )
}

/// The world point under `at` (pixels from the minimap's top-left corner).
pub fn map_to_world(world: World, at: Vec2) -> Vec2 {
    Vec2::new(
        at.x / MAP_SIZE * world.width,
        (1.0 - at.y / MAP_SIZE) * world.height,
    )
}

/// The minimap's rectangle in a window of `size` logical pixels (origin top
/// left, as cursor positions are).
pub fn map_rect(size: Vec2) -> Rect {
    let min = Vec2::new(MAP_MARGIN, size.y - MAP_MARGIN - MAP_SIZE);
    Rect::from_corners(min, min + Vec2::splat(MAP_SIZE))
}

/// Whether the cursor at `cursor` is over the minimap of `window`.
pub fn over_map(window: &Window, cursor: Vec2) -> bool {
    map_rect(window.size()).contains(cursor)
}

/// World units per pixel of a camera's projection (its zoom).
pub fn scale_of(projection: &Projection) -> f32 {
    match projection {
        Projection::Orthographic(o) => o.scale,
        _ => 1.0,
    }
}

/// The zoom after `lines` wheel lines (up zooms in), within [`ZOOM_RANGE`].
pub fn zoom_step(scale: f32, lines: f32) -> f32 {
    (scale * 1.15_f32.powf(-lines)).clamp(ZOOM_RANGE.0, ZOOM_RANGE.1)
}

fn setup(mut commands: Commands) {
    commands.spawn((
        Minimap,
        Node {
            position_type: PositionType::Absolute,
            left: px(MAP_MARGIN),
            bottom: px(MAP_MARGIN),
            width: px(MAP_SIZE),
            height: px(MAP_SIZE),
            border: UiRect::all(px(1.0)),
            ..default()
        },
        BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.6)),
        BorderColor::all(Color::srgba(0.8, 0.8, 0.8, 0.5)),
    ));
}

/// A dot of `side` pixels centred on `at` (minimap pixels).
fn dot(kind: MapDot, at: Vec2, side: f32, colour: Color) -> impl Bundle {
    (
        kind,
        Node {
            position_type: PositionType::Absolute,
            left: px(at.x - side / 2.0),
            top: px(at.y - side / 2.0),
            width: px(side),
            height: px(side),
            ..default()
        },
        BackgroundColor(colour),
    )
}

/// Moves you every frame, and on each new view moves, adds and removes the
/// peers' and signs' dots (each kept while it stays known: a view is ten a
/// second, and rebuilding a thousand UI nodes each time cost frames).
fn draw_dots(
    mut commands: Commands,
    view: Res<LatestView>,
    own: Res<OwnPos>,
    mut drawn: ResMut<Dots>,
    map: Query<Entity, With<Minimap>>,
    mut nodes: Query<(&mut Node, &mut BackgroundColor), With<MapDot>>,
) {
    let Ok(map) = map.single() else { return };
    let world = view.snapshot.world;
    let mut wanted = Vec::new();
    if own.placed {
        wanted.push((
            MapDot::Me,
            world_to_map(world, own.wrapped()),
            6.0,
            Color::WHITE,
        ));
    }
    let fresh = drawn.view != view.count;
    if fresh {
        drawn.view = view.count;
        let s = &view.snapshot;
        let me = s.view.me.pos;
        let mut near: Vec<&peerworld_protocol::Neighbour> = s.view.neighbours.iter().collect();
        if near.len() > MAP_PEERS {
            near.select_nth_unstable_by(MAP_PEERS, |a, b| {
                let d = |n: &peerworld_protocol::Neighbour| world.distance_sq(n.info.pos, me);
                d(a).total_cmp(&d(b))
            });
            near.truncate(MAP_PEERS);
        }
        for n in near {
            let at = world_to_map(world, vec2(n.info.pos));
            wanted.push((MapDot::Peer(n.info.id), at, 4.0, id_colour(&n.info.id)));
        }
        for o in s.objects.iter().filter(|o| !o.removed) {
            let [r, g, b] = o.colour;
            let at = world_to_map(world, vec2(o.pos));
            wanted.push((MapDot::Sign(o.key), at, 4.0, Color::srgb_u8(r, g, b)));
        }
        let keep: HashSet<MapDot> = wanted.iter().map(|w| w.0).collect();
        drawn.index.retain(|kind, e| {
            let known = *kind == MapDot::Me || keep.contains(kind);
            if !known {
                commands.entity(*e).despawn();
            }
            known
        });
    }
    for (kind, at, side, colour) in wanted {
        let (left, top) = (px(at.x - side / 2.0), px(at.y - side / 2.0));
        match drawn.index.get(&kind).and_then(|&e| nodes.get_mut(e).ok()) {
            Some((mut node, mut bg)) => {
                if node.left != left || node.top != top {
                    node.left = left;
                    node.top = top;
                }
                bg.set_if_neq(BackgroundColor(colour));
            }
            None if !drawn.index.contains_key(&kind) => {
                let e = commands.spawn(dot(kind, at, side, colour)).id();
                commands.entity(map).add_child(e);
                drawn.index.insert(kind, e);
            }
            None => {} // spawned this frame's commands ago, not yet queryable
        }
    }
}

/// A click on the minimap jumps there (a teleport: the node joins at the
/// new place); anywhere else it is a walk (`render.rs`).
fn click_to_teleport(
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    view: Res<LatestView>,
    mut own: ResMut<OwnPos>,
    mut target: ResMut<WalkTarget>,
) {
    let Some(buttons) = buttons else { return };
    if !buttons.just_pressed(MouseButton::Left) || !own.placed {
        return;
    }
    let Ok(window) = windows.single() else { return };
    let Some(cursor) = window.cursor_position() else {
        return;
    };
    let rect = map_rect(window.size());
    if rect.contains(cursor) {
        own.display = map_to_world(view.snapshot.world, cursor - rect.min);
        target.0 = None;
    }
}

/// The mouse wheel (or + and -) zooms the camera.
fn zoom(
    mut wheel: MessageReader<MouseWheel>,
    keys: Option<Res<ButtonInput<KeyCode>>>,
    chat: Option<Res<crate::chat::ChatState>>,
    mut camera: Query<&mut Projection, With<Camera2d>>,
) {
    let mut lines: f32 = wheel
        .read()
        .map(|w| match w.unit {
            MouseScrollUnit::Line => w.y,
            MouseScrollUnit::Pixel => w.y / 40.0,
        })
        .sum();
    if let Some(keys) = keys
        && !chat.is_some_and(|c| c.is_typing())
    {
        if keys.just_pressed(KeyCode::Equal) || keys.just_pressed(KeyCode::NumpadAdd) {
            lines += 1.0;
        }
        if keys.just_pressed(KeyCode::Minus) || keys.just_pressed(KeyCode::NumpadSubtract) {
            lines -= 1.0;
        }
    }
    if lines == 0.0 {
        return;
    }
    for mut projection in &mut camera {
        if let Projection::Orthographic(ortho) = &mut *projection {
            ortho.scale = zoom_step(ortho.scale, lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimap_and_the_world_map_back_and_forth() {
        let w = World::new(4000.0, 4000.0);
        assert_eq!(world_to_map(w, Vec2::new(0.0, 4000.0)), Vec2::ZERO);
        assert_eq!(
            world_to_map(w, Vec2::new(2000.0, 1000.0)),
            Vec2::new(90.0, 135.0)
        );
        let p = Vec2::new(1234.0, 3210.0);
        assert!((map_to_world(w, world_to_map(w, p)) - p).length() < 0.01);
    }

    #[test]
    fn the_minimap_sits_in_the_bottom_left_corner() {
        let r = map_rect(Vec2::new(1280.0, 720.0));
        assert!(r.contains(Vec2::new(15.0, 700.0)));
        assert!(!r.contains(Vec2::new(640.0, 360.0)));
        assert!(!r.contains(Vec2::new(15.0, 500.0)));
    }

    #[test]
    fn the_wheel_zooms_within_its_range() {
        assert!(zoom_step(1.0, 1.0) < 1.0);
        assert!(zoom_step(1.0, -1.0) > 1.0);
        assert_eq!(zoom_step(1.0, 100.0), ZOOM_RANGE.0);
        assert_eq!(zoom_step(1.0, -100.0), ZOOM_RANGE.1);
    }
}

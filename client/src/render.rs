//! What a window shows: avatar discs (one shared procedurally drawn image,
//! tinted by id, so a thousand avatars batch into few draws), name labels on
//! the interpolated transforms, a camera that follows, the awareness circle,
//! a ground grid, the toggles for Voronoi cells (V) and links to enclosing
//! neighbours (L), and the HUD.

use bevy::asset::RenderAssetUsages;
use bevy::core_pipeline::tonemapping::{DebandDither, Tonemapping};
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::render::view::Msaa;
use bevy::window::PrimaryWindow;
use spade::{DelaunayTriangulation, Point2, Triangulation};

use crate::avatar::{Avatar, OwnAvatar, OwnPos};
use crate::input::WalkTarget;
use crate::net::LatestView;
use crate::{AVATAR_SIZE, id_colour, nearest_image, vec2};

/// Which overlays are on.
#[derive(Resource, Debug, Clone, Copy)]
pub struct Overlays {
    /// Voronoi cells of the known peers (V).
    pub voronoi: bool,
    /// Links to enclosing neighbours (L).
    pub links: bool,
}

/// The disc image every avatar sprite shares.
#[derive(Resource)]
pub struct DiscImage(pub Handle<Image>);

#[derive(Component)]
struct Hud;

#[derive(Component)]
struct Label;

#[derive(Resource, Default)]
struct Fps(f32);

/// Sprites, labels, camera, gizmos and HUD.
pub struct RenderPlugin;

impl Plugin for RenderPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Overlays {
            voronoi: false,
            links: true,
        })
        .insert_resource(ClearColor(Color::srgb(0.07, 0.08, 0.10)))
        .init_resource::<Fps>()
        .add_systems(Startup, setup)
        .add_systems(
            Update,
            (
                dress_avatars,
                dress_own,
                label_lod,
                toggles,
                click_to_walk,
                follow_camera,
                draw_gizmos,
                hud,
            )
                .after(crate::net::NetSystems::Apply),
        );
    }
}

/// A white disc with a soft edge and a darker rim, `size` pixels wide.
pub fn disc_image(size: u32) -> Image {
    let mut data = Vec::with_capacity((size * size * 4) as usize);
    let c = (size as f32 - 1.0) / 2.0;
    let r = size as f32 / 2.0 - 1.0;
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            let alpha = (r - d + 0.5).clamp(0.0, 1.0);
            let shade = if d > r - 3.0 { 150 } else { 255 };
            data.extend_from_slice(&[shade, shade, shade, (alpha * 255.0) as u8]);
        }
    }
    Image::new(
        Extent3d {
            width: size,
            height: size,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        data,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    )
}

fn setup(mut commands: Commands, mut images: ResMut<Assets<Image>>) {
    // No MSAA, tonemapping or dithering: flat 2D colours do not need them,
    // and under software rendering each costs a full-screen pass (MSAA 4x
    // quadruples every fragment).
    commands.spawn((
        Camera2d,
        Msaa::Off,
        Tonemapping::None,
        DebandDither::Disabled,
    ));
    commands.insert_resource(DiscImage(images.add(disc_image(64))));
    commands.spawn((
        Hud,
        screen_text(
            15.0,
            Node {
                position_type: PositionType::Absolute,
                top: px(8.0),
                left: px(8.0),
                padding: UiRect::all(px(6.0)),
                ..default()
            },
        ),
        BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.6)),
    ));
}

/// Text on the screen (HUD, panels): empty until a system fills it, in the
/// HUD's colour, placed by `node`.
pub fn screen_text(font_px: f32, node: Node) -> impl Bundle {
    (
        Text::new(""),
        TextFont {
            font_size: bevy::text::FontSize::Px(font_px),
            ..default()
        },
        TextColor(Color::srgb(0.85, 0.87, 0.9)),
        node,
    )
}

fn label(name: &str) -> impl Bundle {
    (
        Label,
        Text2d::new(name.to_string()),
        TextFont {
            font_size: bevy::text::FontSize::Px(13.0),
            ..default()
        },
        TextColor(Color::srgb(0.8, 0.82, 0.85)),
        Transform::from_xyz(0.0, LABEL_RISE, 0.5),
    )
}

fn dress_avatars(
    mut commands: Commands,
    disc: Res<DiscImage>,
    added: Query<(Entity, &Avatar), Added<Avatar>>,
    changed: Query<(&Avatar, &Children), Changed<Avatar>>,
    mut labels: Query<&mut Text2d, With<Label>>,
) {
    for (e, avatar) in &added {
        commands
            .entity(e)
            .insert(Sprite {
                image: disc.0.clone(),
                color: id_colour(&avatar.id),
                custom_size: Some(Vec2::splat(AVATAR_SIZE)),
                ..default()
            })
            .with_child(label(&avatar.name));
    }
    for (avatar, children) in &changed {
        for child in children {
            if let Ok(mut text) = labels.get_mut(*child)
                && text.0 != avatar.name
            {
                text.0 = avatar.name.clone();
            }
        }
    }
}

/// Labels shown at most: the nearest avatars keep theirs. A thousand
/// overlapping names are unreadable, and under software rendering they cost a
/// quarter of the frame.
pub const MAX_LABELS: usize = 120;

/// Width of one character of a label, in pixels at zoom 1 (13 px font).
const LABEL_CHAR_W: f32 = 7.0;
/// Height of a label line, in pixels.
const LABEL_H: f32 = 15.0;
/// How far above its avatar's centre a label sits.
const LABEL_RISE: f32 = AVATAR_SIZE * 0.5 + 10.0;

/// Whether two labels centred at `a` and `b` with `a_len` and `b_len`
/// characters would overlap.
pub fn labels_overlap(a: Vec2, a_len: usize, b: Vec2, b_len: usize) -> bool {
    let half = (a_len + b_len) as f32 * LABEL_CHAR_W / 2.0;
    (a.x - b.x).abs() < half && (a.y - b.y).abs() < LABEL_H
}

/// The HUD's box in world units, for labels to keep out of (`scale` world
/// units to the pixel: the zoom).
fn hud_box(node: &ComputedNode, cam: &Transform, window: &Window, scale: f32) -> Option<Rect> {
    let size = node.size() * node.inverse_scale_factor() * scale;
    let top_left = cam.translation.truncate()
        + Vec2::new(8.0 - window.width() / 2.0, window.height() / 2.0 - 8.0) * scale;
    Some(Rect::from_corners(
        top_left,
        top_left + Vec2::new(size.x, -size.y),
    ))
}

/// Signs, for labels to keep off their texts.
type SignPosts<'w, 's> =
    Query<'w, 's, (&'static Transform, &'static Children), With<crate::signs::Sign>>;
/// Signs' texts.
type SignTexts<'w, 's> =
    Query<'w, 's, (&'static Transform, &'static Text2d), With<crate::signs::SignText>>;

// A Bevy system: its parameters are what it reads, not a call signature.
#[allow(clippy::too_many_arguments)]
fn label_lod(
    avatars: Query<(&Transform, &Children), With<Avatar>>,
    own_label: Query<(&Transform, &Children), With<OwnAvatar>>,
    mut labels: Query<(&mut Visibility, &Text2d), With<Label>>,
    own: Res<OwnPos>,
    hud: Query<&ComputedNode, With<Hud>>,
    camera: Query<(&Transform, &Projection), With<Camera2d>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    (signs, sign_texts): (SignPosts, SignTexts),
    mut scratch: Local<Vec<(f32, Entity, Vec2)>>,
) {
    // A label lies LABEL_RISE above its avatar's centre.
    let hud = match (hud.single(), camera.single(), windows.single()) {
        (Ok(n), Ok((c, p)), Ok(w)) => hud_box(n, c, w, crate::map::scale_of(p)),
        _ => None,
    }
    .map(|r| {
        Rect::from_corners(
            r.min - Vec2::new(0.0, LABEL_RISE),
            r.max - Vec2::new(0.0, LABEL_RISE),
        )
    });
    scratch.clear();
    for (tf, children) in &avatars {
        let at = tf.translation.truncate();
        let d = at.distance_squared(own.display);
        scratch.extend(children.iter().map(|c| (d, c, at)));
    }
    let cut = if scratch.len() > MAX_LABELS {
        scratch.select_nth_unstable_by(MAX_LABELS, |a, b| a.0.total_cmp(&b.0));
        scratch[MAX_LABELS].0
    } else {
        f32::INFINITY
    };
    // Nearest first: a label that would cover a nearer one (or the own
    // avatar's) is hidden, so names never sit on top of each other.
    scratch.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut shown: Vec<(Vec2, usize)> = own_label
        .iter()
        .flat_map(|(tf, children)| {
            let at = tf.translation.truncate();
            children
                .iter()
                .filter_map(|c| labels.get(c).ok().map(|(_, t)| (at, t.0.chars().count())))
                .collect::<Vec<_>>()
        })
        .collect();
    // Signs' texts stay readable: a name that would cover one is hidden
    // (a text is placed as a label of an avatar LABEL_RISE below it).
    for (tf, children) in &signs {
        for (text_tf, text) in children.iter().filter_map(|c| sign_texts.get(c).ok()) {
            let at = (tf.translation + text_tf.translation).truncate() - Vec2::new(0.0, LABEL_RISE);
            shown.push((at, text.0.chars().count()));
        }
    }
    for &(d, e, at) in scratch.iter() {
        if let Ok((mut v, text)) = labels.get_mut(e) {
            let len = text.0.chars().count();
            let half = Vec2::new(len as f32 * LABEL_CHAR_W / 2.0, LABEL_H / 2.0);
            let under_hud = hud.is_some_and(|r| {
                !r.intersect(Rect::from_center_half_size(at, half))
                    .is_empty()
            });
            let free = !under_hud && !shown.iter().any(|&(p, l)| labels_overlap(p, l, at, len));
            let want = if d < cut && free {
                shown.push((at, len));
                Visibility::Inherited
            } else {
                Visibility::Hidden
            };
            v.set_if_neq(want);
        }
    }
}

fn dress_own(
    mut commands: Commands,
    disc: Res<DiscImage>,
    view: Res<LatestView>,
    own: Query<(Entity, Option<&Sprite>), With<OwnAvatar>>,
) {
    for (e, sprite) in &own {
        if sprite.is_none() {
            let me = &view.snapshot.view.me;
            commands
                .entity(e)
                .insert(Sprite {
                    image: disc.0.clone(),
                    color: id_colour(&me.id),
                    custom_size: Some(Vec2::splat(AVATAR_SIZE * 1.3)),
                    ..default()
                })
                .with_child(label(&format!("{} (you)", me.name)));
        }
    }
}

fn toggles(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    chat: Option<Res<crate::chat::ChatState>>,
    mut overlays: ResMut<Overlays>,
) {
    let Some(keys) = keys else { return };
    if chat.is_some_and(|c| c.is_typing()) {
        return;
    }
    if keys.just_pressed(KeyCode::KeyV) {
        overlays.voronoi = !overlays.voronoi;
    }
    if keys.just_pressed(KeyCode::KeyL) {
        overlays.links = !overlays.links;
    }
}

fn click_to_walk(
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    mut target: ResMut<WalkTarget>,
) {
    let Some(buttons) = buttons else { return };
    if !buttons.just_pressed(MouseButton::Left) {
        return;
    }
    let (Ok(window), Ok((camera, cam_tf))) = (windows.single(), cameras.single()) else {
        return;
    };
    if let Some(cursor) = window.cursor_position()
        && !crate::map::over_map(window, cursor)
        && let Ok(p) = camera.viewport_to_world_2d(cam_tf, cursor)
    {
        target.0 = Some(p);
    }
}

fn follow_camera(
    mut camera: Query<&mut Transform, With<Camera2d>>,
    own: Res<OwnPos>,
    time: Res<Time>,
) {
    let Ok(mut tf) = camera.single_mut() else {
        return;
    };
    let goal = own.display.extend(tf.translation.z);
    if (goal - tf.translation).length() > 2_000.0 {
        tf.translation = goal; // teleport or first placement: no sweep
    } else {
        let k = 1.0 - (-8.0 * time.delta_secs()).exp();
        tf.translation = tf.translation.lerp(goal, k);
    }
}

fn draw_gizmos(
    mut gizmos: Gizmos,
    own: Res<OwnPos>,
    view: Res<LatestView>,
    overlays: Res<Overlays>,
    avatars: Query<(&Avatar, &Transform)>,
    camera: Query<(&Transform, &Projection), With<Camera2d>>,
) {
    let Ok((cam, projection)) = camera.single() else {
        return;
    };
    // Ground grid every 100 units, anchored to world coordinates so it shows
    // motion, over the whole view at any zoom.
    let spacing = 100.0;
    let c = cam.translation.truncate();
    let anchor = (c / spacing).round() * spacing;
    let cells = (Vec2::new(40.0, 24.0) * crate::map::scale_of(projection)).ceil();
    gizmos.grid_2d(
        Isometry2d::from_translation(anchor),
        UVec2::new(cells.x as u32 + 2, cells.y as u32 + 2),
        Vec2::splat(spacing),
        Color::srgb(0.12, 0.13, 0.16),
    );
    let me = own.display;
    let radius = view.snapshot.view.me.radius;
    gizmos
        .circle_2d(
            Isometry2d::from_translation(me),
            radius,
            Color::srgba(0.9, 0.9, 0.9, 0.45),
        )
        .resolution(128);
    if overlays.links {
        for (a, tf) in &avatars {
            if a.enclosing {
                gizmos.line_2d(
                    me,
                    tf.translation.truncate(),
                    Color::srgba(0.6, 0.75, 1.0, 0.35),
                );
            }
        }
    }
    if overlays.voronoi {
        let mut tri: DelaunayTriangulation<Point2<f64>> = DelaunayTriangulation::new();
        let _ = tri.insert(Point2::new(f64::from(me.x), f64::from(me.y)));
        for n in &view.snapshot.view.neighbours {
            let p = nearest_image(own.world, me, vec2(n.info.pos));
            let _ = tri.insert(Point2::new(f64::from(p.x), f64::from(p.y)));
        }
        for edge in tri.undirected_voronoi_edges() {
            let [a, b] = edge.vertices();
            if let (Some(fa), Some(fb)) = (a.as_delaunay_face(), b.as_delaunay_face()) {
                let (pa, pb) = (fa.circumcenter(), fb.circumcenter());
                gizmos.line_2d(
                    Vec2::new(pa.x as f32, pa.y as f32),
                    Vec2::new(pb.x as f32, pb.y as f32),
                    Color::srgba(1.0, 0.85, 0.4, 0.4),
                );
            }
        }
    }
}

fn hud(
    mut q: Query<&mut Text, With<Hud>>,
    view: Res<LatestView>,
    own: Res<OwnPos>,
    overlays: Res<Overlays>,
    chat: Option<Res<crate::chat::ChatState>>,
    time: Res<Time>,
    mut fps: ResMut<Fps>,
) {
    let dt = time.delta_secs();
    if dt > 0.0 {
        fps.0 = if fps.0 == 0.0 {
            1.0 / dt
        } else {
            0.95 * fps.0 + 0.05 / dt
        };
    }
    let Ok(mut text) = q.single_mut() else { return };
    let s = &view.snapshot;
    let pos = own.wrapped();
    let aware = s
        .view
        .neighbours
        .iter()
        .filter(|n| n.aware && n.confirmed)
        .count();
    let enclosing = s.view.neighbours.iter().filter(|n| n.enclosing).count();
    let state = format!("{:?}", s.view.state).to_lowercase();
    text.0 = format!(
        "{} ({})   {state}\npos {:.0}, {:.0}   radius {:.0}   world {:.0} x {:.0}\nknown {}   aware {aware}   enclosing {enclosing}\nmsgs/s {:.0}   links {}   fps {:.0}\nWASD/arrows walk, click to go, wheel or +/- zoom, click the map to jump   [V] voronoi {}   [L] links {}",
        s.view.me.name,
        s.view.me.id.short(),
        pos.x,
        pos.y,
        s.view.me.radius,
        s.world.width,
        s.world.height,
        s.view.neighbours.len(),
        view.msgs_per_s,
        s.links,
        fps.0,
        if overlays.voronoi { "on" } else { "off" },
        if overlays.links { "on" } else { "off" },
    );
    if let Some(chat) = chat {
        for line in &chat.log {
            text.0.push('\n');
            text.0.push_str(line);
        }
        match (&chat.typing, &chat.sign) {
            (Some(line), _) => text
                .0
                .push_str(&format!("\n> {line}_   [Enter] say  [Esc] cancel")),
            (None, Some(line)) => text.0.push_str(&format!(
                "\nsign: {line}_   [Enter] place here  [Esc] cancel"
            )),
            (None, None) => text
                .0
                .push_str("\n[Enter] chat   [P] place a sign   [X] remove yours   [F3] traffic"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_overlap_when_their_boxes_meet() {
        let a = Vec2::new(100.0, 100.0);
        // "bot-1" and "bot-2" side by side, 20 px apart: they overlap.
        assert!(labels_overlap(a, 5, a + Vec2::new(20.0, 5.0), 5));
        // 60 px apart they do not; nor one line apart vertically.
        assert!(!labels_overlap(a, 5, a + Vec2::new(60.0, 0.0), 5));
        assert!(!labels_overlap(a, 5, a + Vec2::new(0.0, 16.0), 5));
    }
}

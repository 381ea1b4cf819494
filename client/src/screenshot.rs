//! Screenshot mode: wait until the node has joined and enough peers are
//! drawn, let the shaders warm up, save a PNG through Bevy's screenshot API
//! (plus a JSON sidecar naming the peers drawn, their colours and screen
//! positions, for tests and bug reports), and exit; or fail after a timeout.

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::window::PrimaryWindow;
use peerworld_node::PeerState;

use crate::avatar::Avatar;
use crate::chat::Bubble;
use crate::id_colour;
use crate::net::LatestView;
use crate::signs::Sign;

/// Frames to wait once ready (the first ones are black while shaders
/// compile).
pub const WARM_UP_FRAMES: u32 = 30;

/// What to capture and when to give up.
#[derive(Resource, Debug, Clone)]
pub struct ScreenshotPlan {
    /// PNG path.
    pub path: PathBuf,
    /// Peers that must be drawn.
    pub min_peers: usize,
    /// Seconds before giving up.
    pub timeout_s: f64,
    /// Also wait for a chat bubble to be drawn (`--say`).
    pub bubble: bool,
    /// Also wait for this many signs to be drawn (the embedded world's).
    pub min_signs: usize,
}

/// The signs drawn: their object, colour and place.
type SignsDrawn<'w, 's> = Query<'w, 's, (&'static Sign, &'static Sprite, &'static GlobalTransform)>;

/// The avatars drawn, with where they are.
type AvatarsDrawn<'w, 's> =
    Query<'w, 's, (&'static Avatar, &'static GlobalTransform), With<Sprite>>;
/// The chat bubbles, with their text, place and visibility.
type BubblesDrawn<'w, 's> = Query<
    'w,
    's,
    (
        &'static Text2d,
        &'static GlobalTransform,
        &'static Visibility,
    ),
    With<Bubble>,
>;

#[derive(Resource, Default)]
struct Progress {
    ready_frames: u32,
    requested: bool,
}

#[derive(Resource, Default)]
struct Captured(Option<Result<(), String>>);

/// Runs the plan in [`ScreenshotPlan`].
pub struct ScreenshotPlugin;

impl Plugin for ScreenshotPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Progress>()
            .init_resource::<Captured>()
            .add_systems(Last, capture);
    }
}

// A Bevy system: its parameters are what it reads, not a call signature.
#[allow(clippy::too_many_arguments)]
fn capture(
    mut commands: Commands,
    plan: Res<ScreenshotPlan>,
    mut progress: ResMut<Progress>,
    captured: Res<Captured>,
    view: Res<LatestView>,
    time: Res<Time<Real>>,
    (avatars, bubbles, signs): (AvatarsDrawn, BubblesDrawn, SignsDrawn),
    camera: Query<&GlobalTransform, With<Camera2d>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    mut exit: MessageWriter<AppExit>,
) {
    if let Some(result) = &captured.0 {
        match result {
            Ok(()) => {
                println!("peerworld: screenshot saved to {}", plan.path.display());
                exit.write(AppExit::Success);
            }
            Err(e) => {
                eprintln!("peerworld: screenshot failed: {e}");
                exit.write(AppExit::from_code(3));
            }
        }
        return;
    }
    let drawn = avatars.iter().count();
    let joined = view.snapshot.view.state == PeerState::Joined;
    if time.elapsed_secs_f64() > plan.timeout_s && !progress.requested {
        eprintln!(
            "peerworld: no screenshot after {:.0} s: node {} , {drawn} of {} peers drawn",
            plan.timeout_s,
            if joined { "joined" } else { "not joined" },
            plan.min_peers
        );
        exit.write(AppExit::from_code(2));
        return;
    }
    if progress.requested {
        return;
    }
    let bubbled = !plan.bubble || bubbles.iter().any(|b| *b.2 == Visibility::Visible);
    let signed = signs.iter().count() >= plan.min_signs;
    if joined && drawn >= plan.min_peers && bubbled && signed {
        progress.ready_frames += 1;
    } else {
        progress.ready_frames = 0;
    }
    if progress.ready_frames < WARM_UP_FRAMES {
        return;
    }
    progress.requested = true;
    if let (Ok(cam), Ok(window)) = (camera.single(), windows.single()) {
        let sidecar = sidecar(&view, (&avatars, &bubbles, &signs), cam, window);
        let path = plan.path.with_extension("json");
        if let Err(e) = std::fs::write(&path, sidecar.to_string()) {
            eprintln!("peerworld: cannot write {}: {e}", path.display());
        }
    }
    let path = plan.path.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |shot: On<ScreenshotCaptured>, mut captured: ResMut<Captured>| {
            let result = shot
                .image
                .clone()
                .try_into_dynamic()
                .map_err(|e| e.to_string())
                .and_then(|img| img.to_rgb8().save(&path).map_err(|e| e.to_string()));
            captured.0 = Some(result);
        },
    );
}

/// The peers drawn: id, colour (sRGB bytes) and window position in pixels
/// (origin top left); the chat bubbles shown, with their text; and the
/// signs, with their colour.
fn sidecar(
    view: &LatestView,
    (avatars, bubbles, signs): (&AvatarsDrawn, &BubblesDrawn, &SignsDrawn),
    cam: &GlobalTransform,
    window: &Window,
) -> serde_json::Value {
    let (w, h) = (window.width(), window.height());
    let c = cam.translation().truncate();
    let bubbles: Vec<serde_json::Value> = bubbles
        .iter()
        .filter(|b| *b.2 == Visibility::Visible)
        .map(|(text, tf, _)| {
            let p = tf.translation().truncate() - c;
            serde_json::json!({
                "text": text.0,
                "screen": [p.x + w / 2.0, h / 2.0 - p.y],
            })
        })
        .collect();
    let peers: Vec<serde_json::Value> = avatars
        .iter()
        .map(|(a, tf)| {
            let p = tf.translation().truncate() - c;
            let rgb = id_colour(&a.id).to_srgba();
            serde_json::json!({
                "id": a.id.to_hex(),
                "name": a.name,
                "colour": [(rgb.red * 255.0).round(), (rgb.green * 255.0).round(), (rgb.blue * 255.0).round()],
                "screen": [p.x + w / 2.0, h / 2.0 - p.y],
            })
        })
        .collect();
    let signs: Vec<serde_json::Value> = signs
        .iter()
        .map(|(sign, sprite, tf)| {
            let p = tf.translation().truncate() - c;
            let rgb = sprite.color.to_srgba();
            serde_json::json!({
                "key": sign.key.to_hex(),
                "colour": [(rgb.red * 255.0).round(), (rgb.green * 255.0).round(), (rgb.blue * 255.0).round()],
                "screen": [p.x + w / 2.0, h / 2.0 - p.y],
            })
        })
        .collect();
    let map = crate::map::map_rect(window.size());
    serde_json::json!({
        "width": window.physical_width(),
        "height": window.physical_height(),
        "own": view.snapshot.view.me.id.to_hex(),
        "peers": peers,
        "bubbles": bubbles,
        "signs": signs,
        "minimap": [map.min.x, map.min.y, map.max.x, map.max.y],
    })
}

/// Frame-time measurement: after a warm-up, records `frames` frame times,
/// prints one JSON line (mean, median, 95th percentile) and exits.
#[derive(Resource, Debug, Clone)]
pub struct FrameBench {
    /// Frames to measure.
    pub frames: usize,
    /// Frames skipped first.
    pub warm_up: usize,
    seen: usize,
    times_ms: Vec<f64>,
}

impl FrameBench {
    /// Measures `frames` frames after 120 warm-up frames.
    pub fn new(frames: usize) -> Self {
        Self {
            frames,
            warm_up: 120,
            seen: 0,
            times_ms: Vec::with_capacity(frames),
        }
    }
}

/// Runs [`FrameBench`].
pub struct FrameBenchPlugin;

impl Plugin for FrameBenchPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Last, frame_bench);
    }
}

fn frame_bench(
    mut bench: ResMut<FrameBench>,
    time: Res<Time<Real>>,
    avatars: Query<(), With<Avatar>>,
    mut exit: MessageWriter<AppExit>,
) {
    bench.seen += 1;
    if bench.seen <= bench.warm_up {
        return;
    }
    bench.times_ms.push(time.delta_secs_f64() * 1000.0);
    if bench.times_ms.len() < bench.frames {
        return;
    }
    let mut t = bench.times_ms.clone();
    t.sort_by(f64::total_cmp);
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    let pct = |p: f64| t[((t.len() - 1) as f64 * p) as usize];
    println!(
        "{}",
        serde_json::json!({
            "avatars": avatars.iter().count(),
            "frames": t.len(),
            "frame_ms_mean": mean,
            "frame_ms_p50": pct(0.5),
            "frame_ms_p95": pct(0.95),
            "fps": 1000.0 / mean,
        })
    );
    exit.write(AppExit::Success);
}

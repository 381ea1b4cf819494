//! The F3 panel: the last minute of messages and bytes per second (in and
//! out together), as two lines in the window's bottom-right corner.

use std::collections::VecDeque;

use bevy::prelude::*;
use bevy::window::PrimaryWindow;

use crate::chat::ChatState;
use crate::net::LatestView;

/// Samples kept: one a second, a minute.
pub const PERF_SAMPLES: usize = 60;
/// The panel's size in pixels.
const PANEL: Vec2 = Vec2::new(260.0, 90.0);
/// Gap to the window's edges, in pixels.
const MARGIN: f32 = 12.0;

/// The last minute of (messages/s, bytes/s), oldest first.
#[derive(Resource, Debug, Default)]
pub struct PerfHistory {
    /// The samples.
    pub samples: VecDeque<(f64, f64)>,
    next_at: f64,
}

impl PerfHistory {
    /// Adds a sample, forgetting the oldest beyond [`PERF_SAMPLES`].
    pub fn push(&mut self, msgs: f64, bytes: f64) {
        if self.samples.len() >= PERF_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((msgs, bytes));
    }

    /// The largest of each series (at least 1, so a flat line sits low).
    pub fn max(&self) -> (f64, f64) {
        self.samples
            .iter()
            .fold((1.0, 1.0), |(m, b), s| (m.max(s.0), b.max(s.1)))
    }
}

/// Whether the panel shows (F3).
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct PerfPanel(pub bool);

#[derive(Component)]
struct PerfText;

/// Samples every second; F3 shows the panel.
pub struct PerfPlugin;

impl Plugin for PerfPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PerfHistory>()
            .init_resource::<PerfPanel>()
            .add_systems(Startup, setup)
            .add_systems(Update, (sample, toggle, draw).chain());
    }
}

fn setup(mut commands: Commands) {
    commands.spawn((
        PerfText,
        crate::render::screen_text(
            12.0,
            Node {
                position_type: PositionType::Absolute,
                right: Val::Px(MARGIN + 6.0),
                bottom: Val::Px(MARGIN + PANEL.y + 4.0),
                ..default()
            },
        ),
        Visibility::Hidden,
    ));
}

fn sample(mut history: ResMut<PerfHistory>, view: Res<LatestView>, time: Res<Time>) {
    let now = time.elapsed_secs_f64();
    if now >= history.next_at {
        history.next_at = now + 1.0;
        history.push(view.msgs_per_s, view.bytes_per_s);
    }
}

fn toggle(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    chat: Option<Res<ChatState>>,
    mut panel: ResMut<PerfPanel>,
    mut text: Query<&mut Visibility, With<PerfText>>,
) {
    let typing = chat.is_some_and(|c| c.is_typing());
    if let Some(keys) = keys
        && keys.just_pressed(KeyCode::F3)
        && !typing
    {
        panel.0 = !panel.0;
    }
    for mut v in &mut text {
        v.set_if_neq(if panel.0 {
            Visibility::Visible
        } else {
            Visibility::Hidden
        });
    }
}

fn draw(
    mut gizmos: Gizmos,
    panel: Res<PerfPanel>,
    history: Res<PerfHistory>,
    camera: Query<&Transform, With<Camera2d>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    mut text: Query<&mut Text, With<PerfText>>,
) {
    if !panel.0 {
        return;
    }
    let (Ok(cam), Ok(window)) = (camera.single(), windows.single()) else {
        return;
    };
    // Bottom-right corner of the window, in world units (zoom 1).
    let half = Vec2::new(window.width(), window.height()) / 2.0;
    let origin = cam.translation.truncate() + Vec2::new(half.x - MARGIN - PANEL.x, MARGIN - half.y);
    let frame = Color::srgba(0.8, 0.82, 0.85, 0.5);
    gizmos.rect_2d(
        Isometry2d::from_translation(origin + PANEL / 2.0),
        PANEL,
        frame,
    );
    let (max_m, max_b) = history.max();
    let step = PANEL.x / (PERF_SAMPLES - 1) as f32;
    let line = |pick: fn(&(f64, f64)) -> f64, max: f64| -> Vec<Vec2> {
        history
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                origin
                    + Vec2::new(
                        i as f32 * step,
                        (pick(s) / max) as f32 * (PANEL.y - 4.0) + 2.0,
                    )
            })
            .collect()
    };
    gizmos.linestrip_2d(line(|s| s.0, max_m), Color::srgb(0.35, 0.9, 0.5));
    gizmos.linestrip_2d(line(|s| s.1, max_b), Color::srgb(1.0, 0.65, 0.25));
    if let Ok(mut t) = text.single_mut() {
        let (m, b) = history.samples.back().copied().unwrap_or_default();
        t.0 = format!(
            "last minute   msgs/s {m:.0} (max {max_m:.0})   KB/s {:.1} (max {:.1})",
            b / 1000.0,
            max_b / 1000.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_a_minute_and_its_maxima() {
        let mut h = PerfHistory::default();
        for i in 0..100 {
            h.push(f64::from(i), f64::from(i) * 100.0);
        }
        assert_eq!(h.samples.len(), PERF_SAMPLES);
        assert_eq!(h.samples.front(), Some(&(40.0, 4_000.0)));
        assert_eq!(h.max(), (99.0, 9_900.0));
    }
}

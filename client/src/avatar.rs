//! Avatars: one entity per peer the node reports, spawned, moved and
//! despawned as the view changes, drawn a little behind the newest report and
//! interpolated between reports.

use std::collections::{HashMap, VecDeque};

use bevy::prelude::*;
use peerworld_protocol::{PeerId, World};

use crate::net::{NetSystems, ViewUpdated};
use crate::{nearest_image, vec2};

/// Remote avatars are drawn this far (seconds) behind the newest report.
pub const INTERP_DELAY: f64 = 0.15;

/// The own avatar.
#[derive(Component)]
pub struct OwnAvatar;

/// A remote peer's avatar.
#[derive(Component, Debug, Clone)]
pub struct Avatar {
    /// Its id.
    pub id: PeerId,
    /// Its name.
    pub name: String,
    /// Voronoi neighbour of the own node.
    pub enclosing: bool,
}

/// Reported positions with their arrival times, unwrapped so that
/// consecutive samples are continuous across the torus seam.
#[derive(Component, Debug, Default)]
pub struct Interp {
    samples: VecDeque<(f64, Vec2)>,
}

impl Interp {
    fn push(&mut self, world: World, t: f64, pos: Vec2) {
        let p = match self.samples.back() {
            Some(&(_, last)) => nearest_image(world, last, pos),
            None => pos,
        };
        self.samples.push_back((t, p));
        while self.samples.len() > 16 {
            self.samples.pop_front();
        }
    }

    /// The position at time `t` (clamped to the samples, no extrapolation).
    pub fn at(&self, t: f64) -> Option<Vec2> {
        let first = *self.samples.front()?;
        if t <= first.0 {
            return Some(first.1);
        }
        for (&(t0, p0), &(t1, p1)) in self.samples.iter().zip(self.samples.iter().skip(1)) {
            if t <= t1 {
                let f = if t1 > t0 {
                    ((t - t0) / (t1 - t0)) as f32
                } else {
                    1.0
                };
                return Some(p0.lerp(p1, f));
            }
        }
        self.samples.back().map(|s| s.1)
    }

    fn prune(&mut self, t: f64) {
        while self.samples.len() > 2 && self.samples[1].0 <= t {
            self.samples.pop_front();
        }
    }
}

/// The own avatar's position: `display` is continuous (never wrapped) so the
/// camera glides across the seam; the node is told the wrapped one.
#[derive(Resource, Debug)]
pub struct OwnPos {
    /// Continuous position.
    pub display: Vec2,
    /// The world.
    pub world: World,
    /// Set once the first view placed the avatar.
    pub placed: bool,
}

impl OwnPos {
    /// The wrapped position.
    pub fn wrapped(&self) -> Vec2 {
        vec2(self.world.wrap(peerworld_protocol::Point::new(
            self.display.x,
            self.display.y,
        )))
    }
}

/// Ids to entities.
#[derive(Resource, Default)]
pub struct AvatarIndex(pub HashMap<PeerId, Entity>);

/// Spawns, moves, despawns and interpolates avatars.
pub struct AvatarPlugin;

impl Plugin for AvatarPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<AvatarIndex>()
            .insert_resource(OwnPos {
                display: Vec2::ZERO,
                world: World::default(),
                placed: false,
            })
            .add_systems(Startup, spawn_own)
            .add_systems(
                Update,
                (apply_views, interpolate, place_own)
                    .chain()
                    .in_set(NetSystems::Apply),
            );
    }
}

fn spawn_own(mut commands: Commands) {
    commands.spawn((OwnAvatar, Transform::from_xyz(0.0, 0.0, 2.0)));
}

fn apply_views(
    mut commands: Commands,
    mut views: MessageReader<ViewUpdated>,
    mut index: ResMut<AvatarIndex>,
    mut own: ResMut<OwnPos>,
    mut avatars: Query<(&mut Avatar, &mut Interp)>,
    time: Res<Time>,
) {
    let now = time.elapsed_secs_f64();
    for ViewUpdated(snap) in views.read() {
        own.world = snap.world;
        if !own.placed && snap.joined() {
            own.display = vec2(snap.view.me.pos);
            own.placed = true;
        }
        let mut seen = Vec::with_capacity(snap.view.neighbours.len());
        for n in snap.view.neighbours.iter().filter(|n| n.confirmed) {
            let id = n.info.id;
            seen.push(id);
            let pos = vec2(n.info.pos);
            match index.0.get(&id).and_then(|&e| avatars.get_mut(e).ok()) {
                Some((mut avatar, mut interp)) => {
                    interp.push(snap.world, now, pos);
                    if avatar.name != n.info.name || avatar.enclosing != n.enclosing {
                        avatar.name = n.info.name.clone();
                        avatar.enclosing = n.enclosing;
                    }
                }
                None => {
                    let mut interp = Interp::default();
                    interp.push(snap.world, now, pos);
                    let e = commands
                        .spawn((
                            Avatar {
                                id,
                                name: n.info.name.clone(),
                                enclosing: n.enclosing,
                            },
                            interp,
                            Transform::from_xyz(pos.x, pos.y, 1.0),
                        ))
                        .id();
                    index.0.insert(id, e);
                }
            }
        }
        seen.sort_unstable();
        index.0.retain(|id, e| {
            let keep = seen.binary_search(id).is_ok();
            if !keep {
                commands.entity(*e).despawn();
            }
            keep
        });
    }
}

fn interpolate(
    mut avatars: Query<(&mut Interp, &mut Transform), With<Avatar>>,
    own: Res<OwnPos>,
    time: Res<Time>,
) {
    let t = time.elapsed_secs_f64() - INTERP_DELAY;
    for (mut interp, mut tf) in &mut avatars {
        if let Some(p) = interp.at(t) {
            let shown = nearest_image(own.world, own.display, p);
            tf.translation.x = shown.x;
            tf.translation.y = shown.y;
        }
        interp.prune(t);
    }
}

fn place_own(mut q: Query<&mut Transform, With<OwnAvatar>>, own: Res<OwnPos>) {
    for mut tf in &mut q {
        tf.translation.x = own.display.x;
        tf.translation.y = own.display.y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_is_continuous_across_the_seam() {
        let w = World::new(1000.0, 1000.0);
        let mut i = Interp::default();
        i.push(w, 0.0, Vec2::new(990.0, 500.0));
        i.push(w, 1.0, Vec2::new(10.0, 500.0));
        let mid = i.at(0.5).unwrap();
        assert!((mid - Vec2::new(1000.0, 500.0)).length() < 1e-3, "{mid}");
        assert_eq!(i.at(5.0).unwrap(), Vec2::new(1010.0, 500.0));
        assert_eq!(i.at(-1.0).unwrap(), Vec2::new(990.0, 500.0));
    }
}

//! peerworld's Bevy client: draws what its in-process node reports and walks
//! the own avatar.
//!
//! The node runs on a tokio runtime on its own thread ([`net::NetRuntime`]);
//! a [`net::Bridge`] of bounded channels carries moves out and views in. The
//! logic plugins ([`net::NetPlugin`], [`avatar::AvatarPlugin`],
//! [`input::WalkPlugin`]) run under `MinimalPlugins` with a bridge filled by
//! hand; [`render::RenderPlugin`] adds sprites, labels, gizmos and the HUD.

pub mod avatar;
pub mod chat;
pub mod input;
pub mod map;
pub mod net;
pub mod perf;
pub mod render;
pub mod screenshot;
pub mod signs;

use bevy::prelude::*;
use peerworld_protocol::{PeerId, Point, World};

/// World units to screen: one unit is one pixel at zoom 1.
pub const AVATAR_SIZE: f32 = 22.0;

/// The colour of a peer: from its id, bright and saturated so avatars are
/// told apart from the HUD and gizmos (which are grey and white).
pub fn id_colour(id: &PeerId) -> Color {
    let b = id.0;
    let hue = f32::from(u16::from_le_bytes([b[0], b[1]])) / 65_536.0 * 360.0;
    let saturation = 0.75 + f32::from(b[2]) / 255.0 * 0.2;
    let lightness = 0.55 + f32::from(b[3]) / 255.0 * 0.1;
    Color::hsl(hue, saturation, lightness)
}

/// `to` as seen from `from` on the torus: `from + shortest offset`, so a peer
/// across the seam is drawn at its nearest image.
pub fn nearest_image(world: World, from: Vec2, to: Vec2) -> Vec2 {
    let (dx, dy) = world.delta(Point::new(from.x, from.y), Point::new(to.x, to.y));
    from + Vec2::new(dx as f32, dy as f32)
}

/// A protocol point as a Bevy vector.
pub fn vec2(p: Point) -> Vec2 {
    Vec2::new(p.x, p.y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_image_crosses_the_seam() {
        let w = World::new(1000.0, 1000.0);
        let p = nearest_image(w, Vec2::new(990.0, 10.0), Vec2::new(5.0, 995.0));
        assert!((p - Vec2::new(1005.0, -5.0)).length() < 1e-3, "{p}");
    }

    #[test]
    fn colours_differ_between_ids() {
        let a = id_colour(&PeerId::from_seed(1)).to_srgba();
        let b = id_colour(&PeerId::from_seed(2)).to_srgba();
        assert_ne!(a, b);
    }
}

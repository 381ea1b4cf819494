//! `peerworld`: the Bevy client.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use bevy::window::WindowResolution;
use clap::Parser;
use peerworld_client::avatar::AvatarPlugin;
use peerworld_client::chat::{ChatPlugin, SayOnJoin};
use peerworld_client::input::WalkPlugin;
use peerworld_client::map::MapPlugin;
use peerworld_client::net::{NetPlugin, NetRuntime, NetSetup, synthetic};
use peerworld_client::perf::PerfPlugin;
use peerworld_client::render::RenderPlugin;
use peerworld_client::screenshot::{
    FrameBench, FrameBenchPlugin, ScreenshotPlan, ScreenshotPlugin,
};
use peerworld_client::signs::SignPlugin;
use peerworld_node::Identity;
use peerworld_node::args::{RadiusModeArg, heartbeat_ms, parse_neighbours, parse_world};
use peerworld_protocol::World;

/// Walk a shared peer-to-peer world.
///
/// With no arguments, opens an embedded world: a seed node and 32 bots
/// living in five towns of a 4000 x 4000 world, on this machine (real nodes
/// over loopback QUIC), and your avatar. `--join HOST:PORT` joins an existing world instead (for example
/// one hosted by `peerworld-node run`).
///
/// Keys: WASD or arrows walk (or click a point to walk to it), the wheel
/// or + and - zoom, a click on the minimap (bottom left) jumps there, V
/// toggles the Voronoi cells of the known peers, L the links to enclosing
/// neighbours, Enter opens the chat line (Enter says it, Esc drops it), P
/// places a sign, F3 plots the last minute of messages and bytes per second.
#[derive(Parser, Debug)]
#[command(name = "peerworld", version)]
struct Cli {
    /// Join the world a node at HOST:PORT belongs to (no embedded world).
    #[arg(long)]
    join: Option<String>,
    /// Your name, shown above your avatar [default: your login name].
    #[arg(long)]
    name: Option<String>,
    /// UDP address of your node [default: 127.0.0.1:0 in the embedded world,
    /// 0.0.0.0:0 when joining].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Wandering bots in the embedded world (they live in five towns).
    #[arg(long, default_value_t = 32)]
    bots: usize,
    /// Awareness radius [default: 300 in the embedded world, about the
    /// window: you see peers cross your awareness circle; 100 when joining].
    #[arg(long)]
    radius: Option<f32>,
    /// fixed, or adaptive: the radius shrinks in crowds to keep the peers
    /// within reach inside --neighbours, and grows back to --radius.
    #[arg(long, value_enum, default_value_t = RadiusModeArg::Adaptive)]
    radius_mode: RadiusModeArg,
    /// Adaptive radius: fewest and most peers within reach, MIN..MAX.
    #[arg(long, default_value = "8..40", value_parser = parse_neighbours)]
    neighbours: (usize, usize),
    /// Liveness period in milliseconds, as `peerworld-node run
    /// --heartbeat-ms`; use the value of the world you join.
    #[arg(long, default_value_t = 1_000, value_parser = heartbeat_ms)]
    heartbeat_ms: u64,
    /// World size W,H; must match the world you join [default: 4000,4000
    /// embedded (about twenty windows: find your way with the minimap),
    /// 10000,10000 when joining].
    #[arg(long, value_parser = parse_world)]
    world: Option<World>,
    /// Key file that keeps your id across launches [default: identity.key in
    /// your data directory, e.g. ~/.local/share/peerworld/].
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Save a PNG of the window once joined and the peers are drawn, then exit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Peers that must be drawn before the screenshot [default: 8, or all
    /// bots when fewer].
    #[arg(long)]
    min_peers: Option<usize>,
    /// Seconds before screenshot mode gives up (exit code 2).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Window width in pixels.
    #[arg(long, default_value_t = 1280)]
    width: u32,
    /// Window height in pixels.
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Speed of the embedded world's bots, units per second.
    #[arg(long, default_value_t = 40.0)]
    bot_speed: f32,
    /// Say this line once joined (for scripts; Enter opens the chat line).
    #[arg(long)]
    say: Option<String>,
    /// Measurement: draw N synthetic peers (no nodes, no network) instead.
    #[arg(long, hide = true)]
    synthetic: Option<usize>,
    /// Measurement: print frame times over this many frames, then exit.
    #[arg(long, hide = true)]
    bench_frames: Option<usize>,
}

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Turns the renderer's known start-up panics into one clear line.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Unable to find a GPU") || msg.contains("find a suitable adapter") {
            eprintln!(
                "peerworld: no Vulkan driver found; install one (e.g. mesa-vulkan-drivers for software rendering)"
            );
            std::process::exit(1);
        }
        if msg.contains("event loop") {
            eprintln!("peerworld: cannot open a window ({msg}); is DISPLAY set?");
            std::process::exit(1);
        }
        default(info);
    }));
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    if !has_display() {
        eprintln!(
            "peerworld: no display (DISPLAY / WAYLAND_DISPLAY unset); run it in a desktop session or under xvfb-run"
        );
        return Ok(std::process::ExitCode::from(1));
    }
    install_panic_hook();
    let join = match &cli.join {
        Some(j) => Some(
            std::net::ToSocketAddrs::to_socket_addrs(j)
                .with_context(|| format!("--join {j:?}: expected HOST:PORT"))?
                .next()
                .with_context(|| format!("--join {j:?} resolves to no address"))?,
        ),
        None => None,
    };
    let world = cli.world.unwrap_or(if join.is_some() {
        World::new(10_000.0, 10_000.0)
    } else {
        World::new(4000.0, 4000.0)
    });
    let radius = cli
        .radius
        .unwrap_or(if join.is_some() { 100.0 } else { 300.0 });
    let max = peerworld_protocol::message::MAX_RADIUS;
    if !(radius.is_finite() && radius > 0.0 && radius <= max) {
        anyhow::bail!("--radius must be positive and at most {max} (the protocol's largest)");
    }
    let name = cli.name.clone().unwrap_or_else(|| {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "walker".into())
    });
    let identity_path = cli
        .identity
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("peerworld").join("identity.key")));
    let identity = match &identity_path {
        Some(p) => Some(Identity::load_or_create(p).with_context(|| {
            format!(
                "identity {} (pass --identity FILE to use another)",
                p.display()
            )
        })?),
        None => None,
    };
    let listen = cli.listen.unwrap_or_else(|| {
        if join.is_some() {
            "0.0.0.0:0".parse().expect("valid")
        } else {
            "127.0.0.1:0".parse().expect("valid")
        }
    });
    let bots = if join.is_some() { 0 } else { cli.bots };
    let (mut net, bridge) = match cli.synthetic {
        Some(n) => (
            None,
            synthetic(n, world, Vec2::new(cli.width as f32, cli.height as f32)),
        ),
        None => {
            let (net, bridge) = NetRuntime::start(NetSetup {
                join,
                listen,
                name: name.clone(),
                bots,
                radius,
                radius_mode: cli.radius_mode.into(),
                neighbours: cli.neighbours,
                heartbeat_ms: cli.heartbeat_ms,
                world,
                identity,
                bot_speed: cli.bot_speed,
                // The peer cache lives beside the key: a joined world can be
                // found again when its bootstrap peer is gone.
                state_dir: dirs::data_dir().map(|d| d.join("peerworld")),
            })?;
            (Some(net), bridge)
        }
    };
    if let Some(seed) = net.as_ref().and_then(|n| n.seed_addr) {
        println!(
            "peerworld: embedded world's seed on {seed} (peerworld --join {seed} --world {},{})",
            world.width, world.height
        );
    }

    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: Some(Window {
                    title: format!("peerworld — {name}"),
                    resolution: WindowResolution::new(cli.width, cli.height),
                    ..default()
                }),
                ..default()
            })
            .set(LogPlugin {
                filter: "warn,peerworld_node=info,wgpu=error,wgpu_hal=off,naga=error".into(),
                ..default()
            }),
    )
    .insert_resource(bridge)
    .insert_resource(SayOnJoin(cli.say.clone()))
    .add_plugins((
        NetPlugin,
        AvatarPlugin,
        WalkPlugin,
        ChatPlugin,
        SignPlugin,
        MapPlugin,
        RenderPlugin,
        PerfPlugin,
    ));
    if let Some(path) = cli.screenshot {
        app.insert_resource(ScreenshotPlan {
            path,
            min_peers: cli.min_peers.unwrap_or(bots.min(8)),
            timeout_s: cli.timeout,
            bubble: cli.say.is_some(),
            min_signs: if cli.join.is_none() && bots > 0 { 1 } else { 0 },
        })
        .add_plugins(ScreenshotPlugin);
    }
    if let Some(frames) = cli.bench_frames {
        app.insert_resource(FrameBench::new(frames))
            .add_plugins(FrameBenchPlugin);
    }
    let exit = app.run();
    if let Some(net) = net.as_mut() {
        net.shutdown();
    }
    Ok(match exit {
        AppExit::Success => std::process::ExitCode::SUCCESS,
        AppExit::Error(code) => std::process::ExitCode::from(code.get()),
    })
}

//! `peerworld-node`: the headless node, the simulator and the local swarm.

mod api_cmd;
mod run_cmd;
mod sim_cmd;
mod swarm_cmd;

use clap::{Parser, Subcommand};

// The node allocates per message (frames, QUIC packets, the overlay's
// records) from several threads; glibc's allocator took a fifth of a
// loaded swarm's time and a tenth of the simulator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// peerworld's headless node.
#[derive(Parser, Debug)]
#[command(
    name = "peerworld-node",
    version,
    about = "peerworld: a peer-to-peer virtual world (headless node and simulator)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the overlay in the deterministic simulator and report its invariants.
    Sim(sim_cmd::SimArgs),
    /// Run one node over QUIC (a world's seed, a member, or a wandering bot).
    Run(run_cmd::RunArgs),
    /// Run N nodes over loopback QUIC in this process and check the invariants.
    Swarm(swarm_cmd::SwarmArgs),
    /// Say a chat line through a running node (`run --status ADDR`).
    Say(api_cmd::SayArgs),
    /// List the chat lines a running node has heard.
    Messages(api_cmd::MessagesArgs),
    /// List the world objects a running node knows near a point.
    Objects(api_cmd::ObjectsArgs),
    /// Place a sign through a running node (signed with its key).
    Place(api_cmd::PlaceArgs),
    /// Remove a sign the running node placed.
    Remove(api_cmd::RemoveArgs),
    /// Store a value under a key in the world, through a running node.
    Put(api_cmd::PutArgs),
    /// Read the value stored under a key, through a running node.
    Get(api_cmd::GetArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Swarm(args) => swarm_cmd::run(args),
        Command::Say(args) => api_cmd::say(args),
        Command::Messages(args) => api_cmd::messages(args),
        Command::Objects(args) => api_cmd::objects(args),
        Command::Place(args) => api_cmd::place(args),
        Command::Remove(args) => api_cmd::remove(args),
        Command::Put(args) => api_cmd::put(args),
        Command::Get(args) => api_cmd::get(args),
    }
}

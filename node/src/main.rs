//! `peerworld-node`: the headless node, the simulator and the local swarm.

mod chat_cmd;
mod run_cmd;
mod sim_cmd;
mod swarm_cmd;

use clap::{Parser, Subcommand};

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
    Say(chat_cmd::SayArgs),
    /// List the chat lines a running node has heard.
    Messages(chat_cmd::MessagesArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Swarm(args) => swarm_cmd::run(args),
        Command::Say(args) => chat_cmd::say(args),
        Command::Messages(args) => chat_cmd::messages(args),
    }
}

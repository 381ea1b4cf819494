//! `peerworld-node`: the headless node, the simulator and the local swarm.

mod sim_cmd;

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
    /// Run one node over QUIC (not built yet).
    Run,
    /// Run N nodes over loopback QUIC (not built yet).
    Swarm,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
        Command::Run | Command::Swarm => {
            anyhow::bail!(
                "the QUIC node is not built yet (issue 3); `peerworld-node sim` runs the overlay today"
            )
        }
    }
}

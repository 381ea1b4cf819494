//! The peerworld client. The Bevy window is not built yet; until it is, this
//! binary says so and points at the simulator.

fn main() {
    eprintln!(
        "peerworld: the Bevy client is not built yet.\n\
         Try the simulator instead: cargo run --release -p peerworld-node -- sim --peers 1000 --ticks 300"
    );
    std::process::exit(2);
}

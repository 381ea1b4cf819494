#!/usr/bin/env bash
# Starts N `peerworld-node run` processes on 127.0.0.1 (wandering bots in a
# 1000x1000 world, radius 300; WALK=still for still nodes), lets them settle, suspends K of them with
# SIGSTOP for S seconds (longer than the 3 s failure timeout), resumes them
# with SIGCONT, and prints awareness consistency and strongly connected
# components from every /status, once a second for W seconds after the resume.
# Usage: scripts/suspend-and-resume.sh [N] [K] [S] [W]   (needs curl, python3)
set -euo pipefail
n=${1:-20}
k=${2:-4}
stop_s=${3:-8}
watch_s=${4:-20}
bin=${BIN:-target/release/peerworld-node}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in $(seq 0 $((n - 1))); do
    args=(run --listen "127.0.0.1:$((5800 + i))" --status "127.0.0.1:$((5900 + i))"
          --world 1000,1000 --radius 300 --walk "${WALK:-random}" --speed 20 --seed "$i" --name "n$i")
    if [ "$i" -gt 0 ]; then args+=(--bootstrap 127.0.0.1:5800); fi
    RUST_LOG=warn "$bin" "${args[@]}" 2>"$dir/n$i.log" &
    pids+=($!)
    sleep 0.1
done
measure() {
    for i in $(seq 0 $((n - 1))); do
        curl -sf -m 2 "http://127.0.0.1:$((5900 + i))/status" > "$dir/s$i.json" || echo '{}' > "$dir/s$i.json"
    done
    python3 "$(dirname "$0")/overlay-check.py" "$1" 1000 "$dir" $(for i in $(seq 0 $((n - 1))); do echo "s$i.json"; done)
}
sleep 15
measure "settled"
victims=("${pids[@]:1:$k}")
kill -STOP "${victims[@]}"
sleep "$stop_s"
kill -CONT "${victims[@]}"
for s in $(seq 1 "$watch_s"); do
    sleep 1
    measure "${s} s after resume"
done

#!/usr/bin/env bash
# Two worlds in the same coordinates: N `peerworld-node run` processes
# bootstrapped through one seed (127.0.0.1:6000), N more through another
# (127.0.0.1:6100), wandering in a 1000x1000 world at radius 300 (WALK=still
# for still nodes). After SETTLE seconds one more node is started with both
# bootstraps; prints awareness consistency and strongly connected components
# over all 2N+1 nodes once a second for W seconds.
# Usage: scripts/two-worlds.sh [N] [W] [SETTLE]   (needs curl, python3)
set -euo pipefail
n=${1:-10}
watch_s=${2:-90}
settle_s=${3:-10}
bin=${BIN:-target/release/peerworld-node}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start() { # port status-port seed name [bootstrap...]
    local port=$1 status=$2 seed=$3 name=$4
    shift 4
    local args=(run --listen "127.0.0.1:$port" --status "127.0.0.1:$status"
                --world 1000,1000 --radius 300 --walk "${WALK:-random}" --speed 20
                --seed "$seed" --name "$name")
    for b in "$@"; do args+=(--bootstrap "$b"); done
    RUST_LOG=warn "$bin" "${args[@]}" 2>"$dir/$name.log" &
    pids+=($!)
}
files=()
for w in 0 1; do
    base=$((6000 + 100 * w))
    for i in $(seq 0 $((n - 1))); do
        if [ "$i" -eq 0 ]; then
            start $((base + i)) $((base + 50 + i)) $((100 * w + i)) "w$w-$i"
        else
            start $((base + i)) $((base + 50 + i)) $((100 * w + i)) "w$w-$i" "127.0.0.1:$base"
        fi
        files+=("$((base + 50 + i)).json")
        sleep 0.1
    done
done
measure() {
    for f in "${files[@]}"; do
        curl -sf -m 2 "http://127.0.0.1:${f%.json}/status" > "$dir/$f" || echo '{}' > "$dir/$f"
    done
    python3 "$(dirname "$0")/overlay-check.py" "$1" 1000 "$dir" "${files[@]}"
}
sleep "$settle_s"
measure "two worlds"
start 6200 6250 999 bridge 127.0.0.1:6000 127.0.0.1:6100
files+=("6250.json")
for s in $(seq 1 "$watch_s"); do
    sleep 1
    measure "${s} s after the bridge"
done

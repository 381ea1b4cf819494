#!/usr/bin/env bash
# Starts N separate `peerworld-node run` processes on 127.0.0.1 (wandering
# bots in a 1000x1000 world, radius 300), lets them settle, reads every
# /status, and checks that they agree with each other:
#   - every pair within a node's radius (by the nodes' own positions) is known,
#   - believed positions are close to the positions the nodes report,
#   - enclosing flags are mutual where both keep each other.
# Then stops them with SIGTERM and checks that each exits 0.
# Usage: scripts/status-agreement.sh [N] [SETTLE_SECS]   (needs curl, python3)
set -euo pipefail
n=${1:-30}
settle=${2:-15}
bin=${BIN:-target/release/peerworld-node}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in $(seq 0 $((n - 1))); do
    args=(run --listen "127.0.0.1:$((5600 + i))" --status "127.0.0.1:$((5700 + i))"
          --world 1000,1000 --radius 300 --walk random --speed 20 --seed "$i" --name "n$i")
    if [ "$i" -gt 0 ]; then args+=(--bootstrap 127.0.0.1:5600); fi
    RUST_LOG=warn "$bin" "${args[@]}" 2>"$dir/n$i.log" &
    pids+=($!)
    sleep 0.1
done
sleep "$settle"
for i in $(seq 0 $((n - 1))); do
    curl -sf "http://127.0.0.1:$((5700 + i))/status" > "$dir/s$i.json"
done
python3 - "$dir" "$n" <<'PY'
import json, math, sys
d, n = sys.argv[1], int(sys.argv[2])
S = [json.load(open(f"{d}/s{i}.json")) for i in range(n)]
W, H = S[0]["world"]
def dist(a, b):
    dx = abs(a[0] - b[0]); dy = abs(a[1] - b[1])
    return math.hypot(min(dx, W - dx), min(dy, H - dy))
by_id = {s["id"]: s for s in S}
should = known = 0; errs = []; encl_pairs = encl_mutual = 0
for s in S:
    kept = {x["id"]: x for x in s["neighbours"]}
    for t in S:
        if t is s: continue
        if dist(s["pos"], t["pos"]) <= s["radius"]:
            should += 1; known += t["id"] in kept
    for i, x in kept.items():
        if i in by_id:
            errs.append(dist(x["pos"], by_id[i]["pos"]))
            back = {y["id"]: y for y in by_id[i]["neighbours"]}.get(s["id"])
            if x["enclosing"] and back is not None:
                encl_pairs += 1; encl_mutual += back["enclosing"]
print(json.dumps({
    "nodes": n, "joined": sum(s["joined"] for s in S),
    "consistency": known / max(should, 1), "should_know_mean": should / n,
    "kept_mean": sum(len(s["neighbours"]) for s in S) / n,
    "position_error_mean": sum(errs) / max(len(errs), 1),
    "position_error_max": max(errs, default=0),
    "enclosing_mutual_share": encl_mutual / max(encl_pairs, 1),
}))
PY
codes=0
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || codes=$((codes + 1)); done
pids=()
echo "nodes exiting non-zero after SIGTERM: $codes"

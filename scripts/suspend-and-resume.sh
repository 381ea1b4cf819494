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
    python3 - "$dir" "$n" "$1" <<'PY'
import json, math, sys
d, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
S = [json.load(open(f"{d}/s{i}.json")) for i in range(n)]
S = [s for s in S if "id" in s]
W = 1000.0
def dist(a, b):
    dx = abs(a[0] - b[0]); dx = min(dx, W - dx)
    dy = abs(a[1] - b[1]); dy = min(dy, W - dy)
    return math.hypot(dx, dy)
ids = [s["id"] for s in S]
kept = {s["id"]: {x["id"] for x in s["neighbours"] if x["confirmed"]} for s in S}
should = known = 0
for s in S:
    for t in S:
        if s is t or dist(s["pos"], t["pos"]) > s["radius"]:
            continue
        should += 1
        known += t["id"] in kept[s["id"]]
# strongly connected components (Kosaraju)
adj = {i: [j for j in kept[i] if j in kept] for i in ids}
radj = {i: [] for i in ids}
for i in ids:
    for j in adj[i]:
        radj[j].append(i)
seen, order = set(), []
def dfs(u, g, out):
    stack = [(u, iter(g[u]))]; seen.add(u)
    while stack:
        v, it = stack[-1]
        for w in it:
            if w not in seen:
                seen.add(w); stack.append((w, iter(g[w]))); break
        else:
            stack.pop(); out.append(v)
for i in ids:
    if i not in seen:
        dfs(i, adj, order)
seen = set(); comps = 0
for i in reversed(order):
    if i not in seen:
        dfs(i, radj, []); comps += 1
states = sorted({s.get("state") for s in S})
print(f"{label}: consistency {known / max(should, 1) * 100:.2f} % ({known}/{should})  components {comps}  states {states}")
PY
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

#!/usr/bin/env python3
"""Awareness consistency and strongly connected components over the /status
JSON of a set of nodes (one file each), as the overlay's checker counts them:
a node should know every node within its own radius (on the torus of side W).
Usage: overlay-check.py LABEL W DIR FILE...   (files relative to DIR)"""
import json, math, sys
label, W, d = sys.argv[1], float(sys.argv[2]), sys.argv[3]
S = []
for f in sys.argv[4:]:
    try:
        S.append(json.load(open(f"{d}/{f}")))
    except (OSError, ValueError):
        pass
S = [s for s in S if "id" in s]
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

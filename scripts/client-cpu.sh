#!/usr/bin/env bash
# The client's CPU on its embedded world, renderer and nodes apart.
#
#   [PEERWORLD_BIN=path] scripts/client-cpu.sh [SECONDS] [-- CLIENT FLAGS...]
#
# Runs target/release/peerworld under Xvfb (software Vulkan), lets it settle
# for 10 s, then reads every thread's CPU time from /proc twice, SECONDS
# apart (default 30), and prints the cores each group of threads used: the
# nodes (the tokio worker "peerworld-node" and "peerworld-net"), Bevy's main
# thread, Bevy's task pools, the software rasteriser (llvmpipe / lavapipe),
# and the rest; then Xvfb's, and the client's RSS. Frame times come from
# `--bench-frames`, printed by the client itself as one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
[ "${1:-}" = "--" ] && shift
bin=${PEERWORLD_BIN:-target/release/peerworld}
[ -x "$bin" ] || { echo "build it first: cargo build --release -p peerworld-client" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
frames=$(( (secs + 12) * 45 ))
XDG_RUNTIME_DIR=$dir xvfb-run -a -s "-screen 0 1280x720x24 -nolisten tcp" \
    "$bin" --identity "$dir/id.key" --name cpu --bench-frames "$frames" "$@" \
    >"$dir/out" 2>"$dir/err" &
runner=$!
pid=""
for _ in $(seq 100); do
    pid=$(pgrep -n -x peerworld || true)
    [ -n "$pid" ] && break
    sleep 0.1
done
[ -n "$pid" ] || { echo "the client did not start" >&2; cat "$dir/err" >&2; exit 1; }
sleep 10
# Clock ticks of each thread, as "name ticks" lines.
ticks() {
    for t in /proc/"$1"/task/*; do
        [ -r "$t/stat" ] || continue
        name=$(cat "$t/comm" 2>/dev/null || echo gone)
        # Fields 14 and 15 (utime, stime) after the ")" that ends the name.
        st=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
        set -- $st
        echo "$name $(( ${12} + ${13} ))"
    done
}
group() {
    case "$1" in
        peerworld-node*|peerworld-net*) echo nodes ;;
        peerworld) echo "bevy main" ;;
        *Compute*|*Async*|*IO\ Task*|*TaskPool*|*task*) echo "bevy pools" ;;
        llvmpipe*|lavapipe*|lp*|*lvp*) echo rasteriser ;;
        *) echo other ;;
    esac
}
xvfb=$(pgrep -n Xvfb || true)
before=$(ticks "$pid"); xb=$(ticks "${xvfb:-0}" 2>/dev/null | awk '{s+=$2} END {print s+0}')
sleep "$secs"
after=$(ticks "$pid"); xa=$(ticks "${xvfb:-0}" 2>/dev/null | awk '{s+=$2} END {print s+0}')
rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
hz=$(getconf CLK_TCK)
declare -A used
while read -r name t; do
    b=$(echo "$before" | awk -v n="$name" '$1==n {s+=$2} END {print s+0}')
    used[$name]=$(( t - b ))
done < <(echo "$after" | awk '{s[$1]+=$2} END {for (n in s) print n, s[n]}')
declare -A groups
for name in "${!used[@]}"; do
    g=$(group "$name")
    groups[$g]=$(( ${groups[$g]:-0} + used[$name] ))
done
echo "cores used over ${secs} s (clock ticks / ${hz} / seconds):"
total=0
for g in nodes "bevy main" "bevy pools" rasteriser other; do
    v=${groups[$g]:-0}
    total=$(( total + v ))
    printf '  %-11s %.2f\n' "$g" "$(echo "$v / $hz / $secs" | bc -l)"
done
printf '  %-11s %.2f\n' "client" "$(echo "$total / $hz / $secs" | bc -l)"
printf '  %-11s %.2f\n' "Xvfb" "$(echo "($xa - $xb) / $hz / $secs" | bc -l)"
echo "  RSS ${rss} KiB"
wait "$runner" || true
grep -h '^{' "$dir/out" || echo "(no frame times: the client exited early)"

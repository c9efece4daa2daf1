#!/usr/bin/env bash
# Resident memory of one embedded run over time (docs/PERFORMANCE.md, "Where the 10-minute
# run's memory went"):
#
#   benches/harness/rss.sh DURATION [RATE]    # e.g. 10m 5000
#
# Runs `resilbench run benches/harness/fast.toml --rate RATE --duration DURATION` (embedded
# backend), samples its VmRSS and VmHWM (the kernel's exact peak so far, what ru_maxrss and the
# harness's HARNESS_MEMORY step report) every 0.2 s into target/rss/samples.txt ("seconds
# VmHWM-KiB VmRSS-KiB"), and prints the sampled peak and when it came, and the last VmHWM read
# (the exact peak, but for the last 0.2 s). The release binary must be built. Nothing is
# asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 DURATION [RATE]" >&2; exit 2; }
out=${RSS_OUT:-target/rss}
mkdir -p "$out"
target/release/resilbench run benches/harness/fast.toml --rate "${2:-5000}" --duration "$1" \
    --out "$out/run" --force --quiet >/dev/null 2>&1 &
pid=$!
start=$(date +%s.%N)
: >"$out/samples.txt"
while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/VmRSS|VmHWM/ {printf "%s ", $2}' /proc/$pid/status 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {printf "%.1f", a - b}') $rss" >>"$out/samples.txt"
    sleep 0.2
done
wait $pid || true
sort -k3 -n "$out/samples.txt" | tail -1 | awk '{printf "sampled peak %.1f MiB at %s s\n", $3 / 1024, $1}'
tail -1 "$out/samples.txt" | awk '{printf "VmHWM %.1f MiB\n", $2 / 1024}'

#!/usr/bin/env bash
# Sweep speed (docs/PERFORMANCE.md, "Sweeps"):
#
#   benches/harness/sweep.sh [POINTS]     # default 100
#
# A POINTS-point grid of the quickstart at 1,000 calls/s for 60 s per point (one strategy,
# `grpc-hedging`, its hedging delay swept from 1 ms in steps of 1 ms: 60,000 simulated calls
# per point), on the virtual clock:
#   1. with --jobs 2 (both cores): wall seconds, peak RSS;
#   2. with --jobs 1: wall seconds, so the parallel speed-up is (2) ÷ (1);
#   3. a quarter of the grid with --jobs 2: peak RSS, to compare with (1): memory stays flat
#      when the peak does not grow with the number of points.
# Prints the machine's load average before each step, and the CPU time each step used and
# how many cores that kept busy on average (the machine is shared: measure when it is quiet;
# on a busy machine the cores a step got, not the tool, set its wall time). The release binary must be built (cargo build --release). Nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
points=${1:-100}
bin=target/release/resilbench
out=${SWEEP_OUT:-target/sweep-bench}
rm -rf "$out"
mkdir -p "$out"
grid() {
    local n=$1
    echo "strategies.grpc-hedging.layers.grpc_hedge.hedging_delay=1ms..${n}ms step 1ms"
}
step() {
    local label=$1 jobs=$2 n=$3
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M %U %S" -o "$out/$label.rss" "$bin" sweep profiles/quickstart.toml \
        --duration 60s --rate 1000 --strategy grpc-hedging --vary "$(grid "$n")" \
        --jobs "$jobs" --out "$out/$label" --quiet >/dev/null
    t1=$(date +%s.%N)
    read -r rss user sys <"$out/$label.rss"
    awk -v a="$t1" -v b="$t0" -v n="$n" -v j="$jobs" -v l="$label" -v rss="$rss" -v cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" \
        'BEGIN {printf "%-8s %4d points, --jobs %d: %6.2f s wall, %5.2f points/s, CPU %.1f s (%.2f cores busy), peak RSS %.1f MiB\n", l, n, j, a - b, n / (a - b), cpu, cpu / (a - b), rss / 1024}'
    echo "$t1 $t0" | awk '{print $1 - $2}' >"$out/$label.wall"
}
step jobs2 2 "$points"
step jobs1 1 "$points"
step quarter 2 $((points / 4))
awk -v a="$(cat "$out/jobs1.wall")" -v b="$(cat "$out/jobs2.wall")" \
    'BEGIN {printf "parallel speed-up (jobs 1 ÷ jobs 2): %.2fx\n", a / b}'
calls=$(python3 -c "import json,sys; d=json.load(open('$out/jobs2/sweep.json')); print(sum(p['strategies'][0]['figures']['counts.offered'] for p in d['points']))" 2>/dev/null || echo "?")
echo "simulated calls in the measured windows of the $points points: $calls"

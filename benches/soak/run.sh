#!/usr/bin/env bash
# Soak benchmark (issue 9): runs benches/soak/soak.toml (every layer kind at once) for
# SOAK_DURATION (default 30m) at SOAK_RATE calls/s (default 5000) on the real clock, and
# samples the run's resident memory and open file descriptors every SOAK_EVERY seconds
# (default 10). Prints the figures and writes them to $SOAK_OUT/soak.json (default
# target/soak). The footprint should not grow with the duration beyond the per-second
# timeline (a row and a compressed histogram per second).
#
#   benches/soak/run.sh                       # 30 minutes
#   SOAK_DURATION=2m benches/soak/run.sh      # a quick look
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${SOAK_DURATION:-30m}
rate=${SOAK_RATE:-5000}
every=${SOAK_EVERY:-10}
out=${SOAK_OUT:-target/soak}
cargo build --release --locked --quiet
rm -rf "$out"
mkdir -p "$out"
./target/release/resilbench run benches/soak/soak.toml --duration "$duration" --rate "$rate" \
    --out "$out/run" --quiet >"$out/stdout.txt" 2>"$out/stderr.txt" &
pid=$!
echo "t_s,rss_kib,peak_rss_kib,fds" >"$out/samples.csv"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
    status=/proc/$pid/status
    rss=$(awk '/^VmRSS:/ {print $2}' "$status" 2>/dev/null || true)
    hwm=$(awk '/^VmHWM:/ {print $2}' "$status" 2>/dev/null || true)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    if [ -n "$rss" ]; then
        echo "$(( $(date +%s) - start )),$rss,$hwm,$fds" >>"$out/samples.csv"
    fi
    sleep "$every"
done
wait "$pid"
python3 - "$out" "$duration" "$rate" <<'PY'
import csv, json, sys
out, duration, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = [tuple(map(int, r.values())) for r in csv.DictReader(open(f"{out}/samples.csv"))]
# The first minute fills the histograms and the connection pool; compare from there.
settled = [r for r in rows if r[0] >= 60] or rows
first, last = settled[0], settled[-1]
results = json.load(open(f"{out}/run/results.json"))
s = results["strategies"][0]
summary = {
    "duration": duration,
    "rate": rate,
    "calls_offered": s["counts"]["offered"],
    "attempts": s["attempts"]["total"],
    "rss_mib_at": {"t_s": first[0], "mib": round(first[1] / 1024, 1)},
    "rss_mib_end": {"t_s": last[0], "mib": round(last[1] / 1024, 1)},
    "peak_rss_mib": round(max(r[2] for r in rows) / 1024, 1),
    "fds_at_start": first[3],
    "fds_at_end": last[3],
    "fds_max": max(r[3] for r in rows),
    "lag_ms": results["generator"]["lag_ms"],
    "achieved_rate": results["generator"]["achieved_rate"],
    "samples": len(rows),
}
json.dump(summary, open(f"{out}/soak.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
PY

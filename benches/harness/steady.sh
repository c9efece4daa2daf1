#!/usr/bin/env bash
# Steady-state cost of one open-loop rate against a running `resilbench serve` (the figures of
# docs/PERFORMANCE.md, "The driver's wake-ups"):
#
#   benches/harness/steady.sh ADDR SERVER_PID RATE [extra `run` arguments]
#
# Runs `resilbench run benches/harness/fast.toml --target ADDR --rate RATE --duration 6s` and
# reads both processes' CPU time (/proc/PID/stat utime + stime) and the client's context
# switches (all its threads) at 2 s and at 5 s, so that only the steady middle 3 s count
# (start-up and the report are left out); then the run's generator figures. STEADY_PROFILE
# names another profile to run (a copy of fast.toml with other load settings). The release
# binary must be built (`cargo build --release`). Nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { echo "usage: $0 ADDR SERVER_PID RATE [run args]" >&2; exit 2; }
addr=$1 spid=$2 rate=$3; shift 3
out=${STEADY_OUT:-target/steady/rate-$rate}
mkdir -p "$(dirname "$out")"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
target/release/resilbench run "${STEADY_PROFILE:-benches/harness/fast.toml}" --target "$addr" --rate "$rate" \
    --duration 6s --out "$out" --force --quiet "$@" >/dev/null 2>&1 &
cpid=$!
sleep 2
c0=$(cpu $cpid) s0=$(cpu "$spid") x0=$(switches $cpid)
sleep 3
c1=$(cpu $cpid) s1=$(cpu "$spid") x1=$(switches $cpid)
wait $cpid || true
python3 - "$rate" $((c1 - c0)) $((s1 - s0)) $((x1 - x0)) "$(getconf CLK_TCK)" "$out/results.json" <<'PY'
import json, sys
rate, client, server, switches, hz = map(int, sys.argv[1:6])
per = lambda ticks: ticks / hz / 3
print(f"rate {rate}/s: client {per(client):.0%} of a core ({per(client) * 1e6 / rate:.1f} us/call), "
      f"server {per(server):.0%} ({per(server) * 1e6 / rate:.1f} us/call), "
      f"client context switches {switches // 3}/s")
s = json.load(open(sys.argv[6]))["strategies"][0]
g = s["generator"]
print(f"achieved {g['achieved_rate']:.1f}, lag {g['lag_ms']}, interval error "
      f"{g.get('interval_error_ms')}, dropped {s['counts']['dropped']}")
PY

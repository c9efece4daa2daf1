#!/usr/bin/env bash
# What `resilbench proxy` costs (issue 22), one command, side by side in one run:
#
#   benches/proxy.sh                 # about 5 minutes
#   PROXY_QUICK=1 benches/proxy.sh   # a smoke of about a minute
#
# 1. starts `resilbench serve benches/harness/fast.toml` (no added latency, no errors) and
#    `resilbench proxy benches/harness/fast.toml --upstream SERVE` (the same profile: no
#    faults) in processes of their own, on every core (client, proxy and server compete for
#    them, as on a developer's machine);
# 2. at 10,000 calls/s, `resilbench run --target` directly against `serve`, then through the
#    proxy, then again each (ABAB), and prints each run's attempt latency p50/p99 and the
#    difference proxy - direct of the mean of each pair;
# 3. the highest sustainable open-loop rate of each (achieved >= 99% of offered, no drops,
#    every call OK, attempt latency p99 <= 10 ms: nothing queues up), direct and through the
#    proxy alternating at each rate; a rate that fails is tried once more; each search stops
#    at its first rate failed twice. (The harness's stricter generator lag p99 <= 1 ms is about
#    the client, the same in both; on this loaded machine it failed at 10,000/s direct.)
# Writes $PROXY_OUT/proxy.json (default target/proxy-bench). Speed is never asserted: these
# are figures for docs/PERFORMANCE.md, with the machine's load written beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${PROXY_QUICK:-}
out=${PROXY_OUT:-target/proxy-bench}
secs=$([ -n "$quick" ] && echo 2s || echo 5s)
cargo build --release --locked --quiet
bin=target/release/resilbench
rm -rf "$out"; mkdir -p "$out"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

start() { # name command... -> sets $addr, the address it listens on, from its log
    local name=$1; shift
    "$@" >/dev/null 2>"$out/$name.log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q "listening on" "$out/$name.log" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/$name.log" | head -1)
    [ -n "$addr" ] || { echo "$name did not start: $(cat "$out/$name.log")" >&2; exit 2; }
}
start serve "$bin" serve benches/harness/fast.toml --listen 127.0.0.1:0
direct=$addr
start proxy "$bin" proxy benches/harness/fast.toml --listen 127.0.0.1:0 --upstream "$direct"
proxied=$addr
echo "serve on $direct, proxy on $proxied; load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

run_at() { # target rate dir -> one JSON line: latency and whether the rate was sustained
    "$bin" run benches/harness/fast.toml --target "$1" --rate "$2" --duration "$secs" \
        --out "$3" --quiet >/dev/null 2>"$3.log" || true
    python3 - "$3/results.json" "$2" <<'PY'
import json, sys
path, rate = sys.argv[1], int(sys.argv[2])
try:
    s = json.load(open(path))["strategies"][0]
except (OSError, ValueError, KeyError, IndexError):
    print(json.dumps({"rate": rate, "sustainable": False, "error": "no results"}))
    sys.exit(0)
g, a = s["generator"], s["latency_ms"]["attempt"]
ok = (g["achieved_rate"] >= 0.99 * g["offered_rate"] and a["p99"] <= 10.0
      and s["counts"]["dropped"] == 0 and s["counts"]["succeeded"] == s["counts"]["sent"])
print(json.dumps({"rate": rate, "sustainable": ok, "achieved": round(g["achieved_rate"], 1),
                  "lag_p99_ms": g["lag_ms"]["p99"], "dropped": s["counts"]["dropped"],
                  "failed": s["counts"]["sent"] - s["counts"]["succeeded"],
                  "p50_ms": a["p50"], "p99_ms": a["p99"]}))
PY
}

echo "== latency at 10,000 calls/s (attempt latency, ms)"
for round in 1 2; do
    for target in direct proxied; do
        line=$(run_at "${!target}" 10000 "$out/latency-$target-$round")
        echo "{\"target\": \"$target\", \"round\": $round, ${line#\{}" | tee -a "$out/latency.jsonl"
    done
done
python3 - "$out/latency.jsonl" <<'PY' | tee "$out/latency-summary.json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def mean(target, key):
    v = [r[key] for r in rows if r["target"] == target and key in r]
    return sum(v) / len(v) if v else None
d = {k: mean("direct", k) for k in ("p50_ms", "p99_ms")}
p = {k: mean("proxied", k) for k in ("p50_ms", "p99_ms")}
added = {k: (round((p[k] - d[k]) * 1000) if None not in (p[k], d[k]) else None) for k in d}
print(json.dumps({"direct_ms": d, "proxied_ms": p, "added_us": added}))
PY

echo "== sustainable rate, direct and through the proxy alternating"
rates=$([ -n "$quick" ] && echo "2000 4000" || echo "5000 10000 15000 20000 25000 30000 35000 40000 45000 50000 60000 70000")
declare -A best=([direct]=0 [proxied]=0) done_=([direct]="" [proxied]="")
for rate in $rates; do
    for target in direct proxied; do
        [ -n "${done_[$target]}" ] && continue
        held=""
        for try in 1 2; do
            line=$(run_at "${!target}" "$rate" "$out/rate-$target-$rate-$try")
            echo "{\"target\": \"$target\", \"try\": $try, ${line#\{}" | tee -a "$out/rates.jsonl"
            case $line in *'"sustainable": true'*) held=1; break ;; esac
        done
        if [ -n "$held" ]; then best[$target]=$rate; else done_[$target]=1; fi
    done
    [ -n "${done_[direct]}" ] && [ -n "${done_[proxied]}" ] && break
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "{\"sustainable_direct\": ${best[direct]}, \"sustainable_proxied\": ${best[proxied]}, \"loadavg_after\": \"$load\", \"latency\": $(cat "$out/latency-summary.json")}" | tee "$out/proxy.json"

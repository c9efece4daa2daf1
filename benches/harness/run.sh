#!/usr/bin/env bash
# Throughput and accuracy harness (issue 8), one command:
#
#   benches/harness/run.sh                 # the full harness (about 3 minutes)
#   HARNESS_QUICK=1 benches/harness/run.sh # a smoke of a few seconds: checks it still works
#   HARNESS_MEMORY=1 benches/harness/run.sh # also peak RSS of 1- and 10-minute runs (+11 min)
#
# 1. starts `resilbench serve benches/harness/fast.toml` in its own process;
# 2. runs h2load (Debian's nghttp2-client) against it, gRPC unary `Call` with a prebuilt
#    gRPC-framed body, for its maximum throughput over a few connection/stream settings;
# 3. runs `resilbench run --target` against the same server at increasing open-loop rates and
#    finds the highest sustainable one (achieved >= 99% of offered, lag p99 <= 1 ms, no drops);
# 4. measures timing accuracy with the embedded backend at 1k/s and 10k/s (lag p50/p99/max,
#    inter-send interval error);
#    and the latency of its attempts against h2load --rps at 1k/s and 5k/s;
# 5. measures virtual-time speed (simulated calls per wall second);
# 6. with HARNESS_MEMORY=1, peak RSS of a 1-minute and a 10-minute run at 5k/s;
# then prints one table and writes it to $HARNESS_OUT/harness.json (default target/harness).
# Speed is never asserted: these are figures to write down, with this command, in
# docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=${HARNESS_QUICK:-}
out=${HARNESS_OUT:-target/harness}
secs=$([ -n "$quick" ] && echo 2s || echo 10s)
command -v h2load >/dev/null || { echo "h2load not found: apt-get install nghttp2-client" >&2; exit 2; }
cargo build --release --locked --quiet
bin=target/release/resilbench
rm -rf "$out"; mkdir -p "$out"

# 1. The server.
"$bin" serve benches/harness/fast.toml --listen 127.0.0.1:0 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out/serve.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/serve.log" | head -1)
[ -n "$addr" ] || { echo "serve did not start" >&2; exit 2; }

# 2. h2load: a CallRequest{request_id: "1"} in gRPC's length-prefixed framing.
printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$out/call.bin"
h2() { # connections streams requests
    h2load -c "$1" -m "$2" -n "$3" -t 1 -d "$out/call.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://$addr/resilbench.v1.Backend/Call" 2>&1
}
best=0; best_set=""
n=$([ -n "$quick" ] && echo 20000 || echo 300000)
for setting in "1 100" "2 100" "4 100" "4 256" "8 64"; do
    set -- $setting
    line=$(h2 "$1" "$2" "$n" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
    echo "h2load -c $1 -m $2: ${line:-?} req/s"
    echo "{\"c\": $1, \"m\": $2, \"rps\": ${line:-0}}" >>"$out/h2load.jsonl"
    if [ -n "$line" ] && awk "BEGIN{exit !($line > $best)}"; then best=$line; best_set="$setting"; fi
done

# 3. resilbench against the same server: the highest sustainable open-loop rate.
run_at() { # rate dir
    "$bin" run benches/harness/fast.toml --target "$addr" --rate "$1" --duration "$secs" \
        --out "$2" --quiet >/dev/null 2>&1 || true
}
sustainable() { # dir -> "yes|no achieved lag_p99 dropped"
    python3 - "$1/results.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("no 0 0 0"); sys.exit()
s = r["strategies"][0]
g = s["generator"]
ok = g["achieved_rate"] >= 0.99 * g["offered_rate"] and g["lag_ms"]["p99"] <= 1.0 and s["counts"]["dropped"] == 0
print("yes" if ok else "no", round(g["achieved_rate"], 1), g["lag_ms"]["p99"], s["counts"]["dropped"])
PY
}
rates=$([ -n "$quick" ] && echo "1000 2000" || echo "10000 20000 30000 35000 40000 45000 50000 55000 60000 70000 80000 100000 120000")
found=0
for rate in $rates; do
    run_at "$rate" "$out/rate-$rate"
    read -r verdict achieved p99 dropped <<<"$(sustainable "$out/rate-$rate")"
    echo "resilbench --rate $rate: achieved $achieved, lag p99 $p99 ms, dropped $dropped: $verdict"
    echo "{\"rate\": $rate, \"achieved\": $achieved, \"lag_p99_ms\": $p99, \"dropped\": $dropped, \"sustainable\": \"$verdict\"}" >>"$out/rates.jsonl"
    [ "$verdict" = yes ] && found=$rate || break
done

# 3b. Latency overhead at moderate rates: h2load's --rps against resilbench's attempts, same
# server. h2load prints min/max/mean/sd of its "time for request"; resilbench's attempt
# latency is the same span (request sent to status received).
for rate in 1000 5000; do
    n=$((rate * $([ -n "$quick" ] && echo 2 || echo 10)))
    line=$(h2load -c 1 -m 100 --rps "$rate" -n "$n" -t 1 -d "$out/call.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://$addr/resilbench.v1.Backend/Call" 2>&1 | sed -n 's/^time for request: *//p')
    # min max mean sd: values with units (us/ms/s)
    echo "$line" | python3 -c '
import sys, json
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit): return round(float(v[:-len(unit)]) * f, 4)
    return None
f = sys.stdin.read().split()
print(json.dumps({"rate": int(sys.argv[1]), "min_ms": ms(f[0]), "max_ms": ms(f[1]), "mean_ms": ms(f[2]), "sd_ms": ms(f[3])}))
' "$rate" >>"$out/h2load-rps.jsonl" || true
    run_at "$rate" "$out/latency-$rate"
done

# 4. Accuracy with the embedded backend (no --target): lag and inter-send interval error at
# 1k/s and 10k/s.
for rate in 1000 10000; do
    "$bin" run benches/harness/fast.toml --rate "$rate" --duration "$secs" --out "$out/embedded-$rate" \
        --quiet >/dev/null 2>&1 || true
done

# 5. Virtual-time speed.
vstart=$(date +%s.%N)
"$bin" run benches/harness/fast.toml --clock virtual --rate 20000 --duration "$([ -n "$quick" ] && echo 5s || echo 60s)" \
    --out "$out/virtual" --quiet >/dev/null
vend=$(date +%s.%N)

# 6. Memory (HARNESS_MEMORY=1, 11 minutes): peak RSS of a 1-minute and a 10-minute run at
# 5,000 calls/s with the embedded backend; it must not grow with the duration.
if [ -n "${HARNESS_MEMORY:-}" ]; then
    for d in 1m 10m; do
        python3 - "$bin" "$d" "$out/memory-$d" <<'PY' >>"$out/memory.jsonl"
import json, resource, subprocess, sys
bin, duration, dir = sys.argv[1:]
subprocess.run([bin, "run", "benches/harness/fast.toml", "--rate", "5000", "--duration", duration,
                "--out", dir, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"duration": duration, "peak_rss_mib": round(peak_kib / 1024, 1)}))
PY
    done
fi

python3 - "$out" "$best" "$best_set" "$found" "$vstart" "$vend" <<'PY'
import json, sys
out, best, best_set, found, vstart, vend = sys.argv[1:]
best, found = float(best), int(found)
def lag(d):
    try:
        s = json.load(open(f"{out}/{d}/results.json"))["strategies"][0]
        g = s["generator"]
        return g["lag_ms"], g["achieved_rate"], g.get("interval_error_ms")
    except Exception:
        return None, None, None
virtual = json.load(open(f"{out}/virtual/results.json"))["strategies"][0]
calls = virtual["counts"]["offered"] + 20000  # the warmup second is sent too
wall = float(vend) - float(vstart)
table = {
    "h2load_max_rps": best,
    "h2load_best_setting": best_set,
    "resilbench_sustainable_rate": found,
    "sustainable_over_h2load": round(found / best, 3) if best else None,
    "embedded_1k_lag_ms": lag("embedded-1000")[0],
    "embedded_10k_lag_ms": lag("embedded-10000")[0],
    "embedded_10k_achieved": lag("embedded-10000")[1],
    "embedded_1k_interval_error_ms": lag("embedded-1000")[2],
    "embedded_10k_interval_error_ms": lag("embedded-10000")[2],
    "virtual_calls_per_wall_s": round(calls / wall),
}
def jsonl(name):
    try:
        return [json.loads(l) for l in open(f"{out}/{name}") if l.strip()]
    except OSError:
        return []
for h in jsonl("h2load-rps.jsonl"):
    try:
        a = json.load(open(f"{out}/latency-{h['rate']}/results.json"))["strategies"][0]["latency_ms"]["attempt"]
        mine = {"mean_ms": round(a["mean"], 4), "p50_ms": a["p50"], "p99_ms": a["p99"], "max_ms": a["max"]}
    except Exception:
        mine = None
    table[f"latency_at_{h['rate']}"] = {"h2load": h, "resilbench_attempt": mine}
for m in jsonl("memory.jsonl"):
    table[f"peak_rss_mib_{m['duration']}"] = m["peak_rss_mib"]
json.dump(table, open(f"{out}/harness.json", "w"), indent=2)
print()
for k, v in table.items():
    print(f"{k:32} {v}")
print(f"\nwritten: {out}/harness.json")
PY

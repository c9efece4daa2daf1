#!/usr/bin/env bash
# Throughput and accuracy harness (issue 8), one command:
#
#   benches/harness/run.sh                 # the full harness (about 20 minutes)
#   HARNESS_QUICK=1 benches/harness/run.sh # a smoke of about a minute: checks it still works
#   HARNESS_MEMORY=1 benches/harness/run.sh # also peak RSS of 1- and 10-minute runs (+11 min)
#
# For each CPU layout (below: "shared", then "pinned" with the server on a core of its own):
# 1. starts `resilbench serve benches/harness/fast.toml` in its own process;
# 2. runs h2load (Debian's nghttp2-client) against it, gRPC unary `Call` with a prebuilt
#    gRPC-framed body and the headers resilbench's attempts carry, for its maximum throughput
#    over a few connection/stream settings, with its own CPU and the server's per request;
# 3. runs `resilbench run --target` against the same server at increasing open-loop rates and
#    finds the highest sustainable one (achieved >= 99% of offered, lag p99 <= 1 ms, no drops),
#    with each run's client and server CPU per call, over one and over two connections
#    (HARNESS_CONNECTIONS), as h2load's maximum is its best over its settings;
# then, on the shared layout:
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

# The CPU layouts the rate figures are measured in. "shared": server and generator on all the
# cores, competing for them (on 2 cores, each generator's CPU is taken from the server). "pinned":
# the server on the last core, the generators (h2load, then resilbench) on the others, as load
# generators are benchmarked, so that what a generator costs does not slow the server it
# measures. Both layouts serve the same binary and profile; h2load and resilbench always meet
# the same server in the same layout. HARNESS_LAYOUTS picks some ("shared pinned" by default;
# pinned needs taskset and two cores).
# The CPUs this process may use (not always 0..N-1, in a container): the last is the pinned
# server's, the others the generators'.
read -r -a cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
cores=${#cpus[@]}
server_cpu=${cpus[$((cores - 1))]}
client_cpus=$(IFS=,; echo "${cpus[*]:0:$((cores - 1))}")
layouts=${HARNESS_LAYOUTS:-shared pinned}
if [ "$cores" -lt 2 ] || ! command -v taskset >/dev/null; then layouts=shared; fi
printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$out/call.bin" # CallRequest{request_id: "1"}, gRPC-framed
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null || true' EXIT

start_server() { # layout -> sets $server and $addr
    local pin=()
    [ "$1" = pinned ] && pin=(taskset -c "$server_cpu")
    rm -f "$out/serve-$1.log" # a second start must not read the first one's address
    "${pin[@]}" "$bin" serve benches/harness/fast.toml --listen 127.0.0.1:0 2>"$out/serve-$1.log" &
    server=$!
    for _ in $(seq 50); do grep -q "listening on" "$out/serve-$1.log" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/serve-$1.log" | head -1)
    [ -n "$addr" ] || { echo "serve did not start" >&2; exit 2; }
}
stop_server() { kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; server=""; }
hz=$(getconf CLK_TCK)
server_ticks() { # the server's CPU time so far, in clock ticks (utime + stime)
    awk '{print $14 + $15}' "/proc/$server/stat"
}
client_pin() { # layout -> the command prefix that places a generator
    [ "$1" = pinned ] && echo "taskset -c $client_cpus" || true
}

# 2. h2load, gRPC unary `Call` over a few connection/stream settings: its maximum. Its
# requests carry the headers resilbench's first attempts carry (the 1 s deadline as
# `grpc-timeout`, as a gRPC client writes it, and `resilbench-attempt`), so that the server does
# the same work for each request of either generator; without them h2load's maximum was 5-7%
# higher (docs/PERFORMANCE.md).
h2() { # layout h2load-arguments... -> h2load's report, then "h2load cpu SECONDS" (its user +
    # system time), one thread, gRPC unary `Call`
    local layout=$1; shift
    python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"h2load cpu {r.ru_utime + r.ru_stime:.3f}")
' $(client_pin "$layout") h2load "$@" -t 1 -d "$out/call.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        -H 'grpc-timeout: 999999u' -H 'resilbench-attempt: 0' \
        "http://$addr/resilbench.v1.Backend/Call" 2>&1
}

# 3. resilbench against the same server: the highest sustainable open-loop rate, searched once per
# number of connections in HARNESS_CONNECTIONS ("1 2" by default: h2load's figure is its best
# over five settings, resilbench's is its best over these; each is written). Each rate runs
# for $secs; a rate that fails is run once more (this machine's noise decides single runs at the
# 1 ms edge), the search stops at the first rate that fails twice, and then halves the gap
# between the last rate held and that one twice. Each run's CPU: the
# client's from its rusage (start-up and the report included, ~0.3 s), the server's from
# /proc/PID/stat over the same span; per call over every call sent, the warmup's included.
# The profile per number of connections: fast.toml with its `load.connections` set (one
# connection's always: the latency runs below use it).
connections_searched=${HARNESS_CONNECTIONS:-1 2}
for c in $connections_searched; do
    case $c in [1-9] | [1-5][0-9] | 6[0-4]) ;; *)
        echo "HARNESS_CONNECTIONS: '$c' is not a number of connections from 1 to 64" >&2; exit 2 ;;
    esac
done
for c in 1 $connections_searched; do
    sed "s/^deadline = \"1s\"/deadline = \"1s\"\nconnections = $c/" benches/harness/fast.toml >"$out/fast-c$c.toml"
    grep -q "^connections = $c\$" "$out/fast-c$c.toml" || { echo "could not set connections $c" >&2; exit 2; }
done
run_at() { # layout rate dir [connections] -> one JSON line
    python3 - "$bin" "$addr" "$2" "$secs" "$3" "$server" "$(client_pin "$1")" "$out/fast-c${4:-1}.toml" <<'PY'
import json, os, re, resource, subprocess, sys
bin, addr, rate, secs, dir, server, pin, profile = sys.argv[1:]
connections = re.search(r"-c(\d+)\.toml$", profile).group(1)
hz = os.sysconf("SC_CLK_TCK")
def server_cpu():
    f = open(f"/proc/{server}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
before_client = resource.getrusage(resource.RUSAGE_CHILDREN)
before_server = server_cpu()
done = subprocess.run(pin.split() + [bin, "run", profile, "--target", addr, "--rate", rate,
                       "--duration", secs, "--out", dir, "--quiet"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if done.returncode == 2:  # refused (a bad profile or flag): not a rate that failed
    sys.exit(f"resilbench run refused its arguments: {done.stderr.strip()[:500]}")
after = resource.getrusage(resource.RUSAGE_CHILDREN)
server_s = server_cpu() - before_server
client_s = (after.ru_utime - before_client.ru_utime) + (after.ru_stime - before_client.ru_stime)
line = {"rate": int(rate), "connections": int(connections), "sustainable": "no", "achieved": 0, "lag_p99_ms": None, "dropped": None}
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
def seconds(text):  # the forms resilbench writes (profile::duration::format) and passes
    number = text.rstrip("nsumh")
    return float(number) * UNITS[text[len(number):]]  # anything else raises: no silent "no"
duration = seconds(secs)
try:
    r = json.load(open(f"{dir}/results.json"))
except (OSError, ValueError):  # no results: the run failed
    r = None
if r is not None:
    s = r["strategies"][0]
    g = s["generator"]
    ok = g["achieved_rate"] >= 0.99 * g["offered_rate"] and g["lag_ms"]["p99"] <= 1.0 and s["counts"]["dropped"] == 0
    # counts.sent leaves the warmup out; its calls cost CPU too (constant arrivals)
    warmup = seconds(r["profile"]["load"]["warmup"])
    calls = max(1.0, s["counts"]["sent"] * duration / (duration - warmup))
    line.update(sustainable="yes" if ok else "no", achieved=round(g["achieved_rate"], 1),
                lag_p99_ms=g["lag_ms"]["p99"], dropped=s["counts"]["dropped"],
                client_us_per_call=round(client_s * 1e6 / calls, 1),
                server_us_per_call=round(server_s * 1e6 / calls, 1))
print(json.dumps(line))
PY
}
rates=$([ -n "$quick" ] && echo "1000 2000" || echo "10000 20000 30000 40000 45000 50000 55000 60000 65000 70000 75000 80000 85000 90000 100000 110000 120000 140000 160000 180000 200000 220000 240000")
n=$([ -n "$quick" ] && echo 20000 || echo 300000)
for layout in $layouts; do
    echo "== layout: $layout ($cores cores)"
    start_server "$layout"
    best=0; best_set=""; best_server=null; best_own=null
    for setting in "1 100" "2 100" "4 100" "4 256" "8 64"; do
        set -- $setting
        # The server's CPU per request over h2load's run, as for resilbench's runs below, and
        # h2load's own.
        cpu0=$(server_ticks)
        report=$(h2 "$layout" -c "$1" -m "$2" -n "$n")
        line=$(echo "$report" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
        per=$(awk -v a="$cpu0" -v b="$(server_ticks)" -v hz="$hz" -v n="$n" 'BEGIN{printf "%.1f", (b - a) / hz * 1e6 / n}')
        own=$(echo "$report" | sed -n 's/^h2load cpu //p' | awk -v n="$n" '{printf "%.2f", $1 * 1e6 / n}')
        echo "h2load -c $1 -m $2: ${line:-?} req/s, server ${per} us/request, h2load ${own:-?} us/request"
        echo "{\"layout\": \"$layout\", \"c\": $1, \"m\": $2, \"rps\": ${line:-0}, \"server_us_per_call\": $per, \"h2load_us_per_call\": ${own:-null}}" >>"$out/h2load.jsonl"
        if [ -n "$line" ] && awk "BEGIN{exit !($line > $best)}"; then best=$line; best_set="$setting"; best_server=$per; best_own=${own:-null}; fi
    done
    holds() { # rate connections -> success if it is sustainable at the first or the second try
        local try line
        for try in 1 2; do
            # (`set -e` does not reach into a function called as a condition: say it here.)
            line=$(run_at "$layout" "$1" "$out/$layout-c$2-rate-$1-$try" "$2") ||
                { echo "the run at $1/s could not be measured" >&2; exit 2; }
            echo "{\"layout\": \"$layout\", \"try\": $try, ${line#\{}" >>"$out/rates.jsonl"
            echo "resilbench --rate $1 --connections $2 (try $try): $line"
            case $line in *'"sustainable": "yes"'*) return 0 ;; esac
        done
        return 1
    }
    sustainable=0 sustainable_c=1 each=""
    for c in $connections_searched; do
        found=0 failed=""
        for rate in $rates; do
            if holds "$rate" "$c"; then found=$rate; else failed=$rate; break; fi
        done
        # Then halve the gap between the last rate held and the first not held, twice, so that
        # the figure is within a quarter of the search's step (2,500/s at 100,000/s).
        if [ -z "$quick" ] && [ -n "$failed" ] && [ "$found" -gt 0 ]; then
            for _ in 1 2; do
                mid=$(( (found + failed) / 2 / 500 * 500 ))
                [ "$mid" -gt "$found" ] && [ "$mid" -lt "$failed" ] || break
                if holds "$mid" "$c"; then found=$mid; else failed=$mid; fi
            done
        fi
        each="$each${each:+, }\"$c\": $found"
        if [ "$found" -gt "$sustainable" ]; then sustainable=$found; sustainable_c=$c; fi
    done
    echo "{\"layout\": \"$layout\", \"h2load_max_rps\": $best, \"h2load_best_setting\": \"$best_set\", \"h2load_server_us_per_call\": $best_server, \"h2load_us_per_call\": $best_own, \"sustainable_rate\": $sustainable, \"sustainable_connections\": $sustainable_c, \"sustainable_by_connections\": {$each}}" >>"$out/layouts.jsonl"
    stop_server
done
start_server shared # for the latency runs

# 3b. Latency overhead at moderate rates: h2load's --rps against resilbench's attempts, same
# server. h2load prints min/max/mean/sd of its "time for request"; resilbench's attempt
# latency is the same span (request sent to status received).
for rate in 1000 5000; do
    n=$((rate * $([ -n "$quick" ] && echo 2 || echo 10)))
    line=$(h2 shared -c 1 -m 100 --rps "$rate" -n "$n" | sed -n 's/^time for request: *//p')
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
    run_at shared "$rate" "$out/latency-$rate" >/dev/null
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

python3 - "$out" "$vstart" "$vend" <<'PY'
import json, sys
out, vstart, vend = sys.argv[1:]
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
def jsonl(name):
    try:
        return [json.loads(l) for l in open(f"{out}/{name}") if l.strip()]
    except OSError:
        return []
table = {}
for l in jsonl("layouts.jsonl"):
    k = l["layout"]
    at = [r for r in jsonl("rates.jsonl") if r["layout"] == k and r["rate"] == l["sustainable_rate"]
          and r.get("connections", 1) == l.get("sustainable_connections", 1) and r["sustainable"] == "yes"]
    table[f"{k}_h2load_max_rps"] = l["h2load_max_rps"]
    table[f"{k}_h2load_best_setting"] = l["h2load_best_setting"]
    table[f"{k}_h2load_server_us_per_call"] = l.get("h2load_server_us_per_call")
    table[f"{k}_h2load_own_us_per_call"] = l.get("h2load_us_per_call")
    table[f"{k}_resilbench_sustainable_rate"] = l["sustainable_rate"]
    table[f"{k}_resilbench_best_connections"] = l.get("sustainable_connections")
    table[f"{k}_resilbench_sustainable_by_connections"] = l.get("sustainable_by_connections")
    table[f"{k}_sustainable_over_h2load"] = round(l["sustainable_rate"] / l["h2load_max_rps"], 3) if l["h2load_max_rps"] else None
    if at:
        table[f"{k}_at_sustainable"] = {x: at[0].get(x) for x in ("lag_p99_ms", "client_us_per_call", "server_us_per_call")}
table.update({
    "embedded_1k_lag_ms": lag("embedded-1000")[0],
    "embedded_10k_lag_ms": lag("embedded-10000")[0],
    "embedded_10k_achieved": lag("embedded-10000")[1],
    "embedded_1k_interval_error_ms": lag("embedded-1000")[2],
    "embedded_10k_interval_error_ms": lag("embedded-10000")[2],
    "virtual_calls_per_wall_s": round(calls / wall),
})
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
    print(f"{k:36} {v}")
print(f"\nwritten: {out}/harness.json")
PY

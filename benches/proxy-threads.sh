#!/usr/bin/env bash
# Where a call's time goes through `resilbench proxy`, thread by thread (issue 22): CPU,
# time on a CPU and waiting for one, and context switches, of `serve`, the proxy and the
# generator, over 2 s in the middle of one run, and per call.
#
#   benches/proxy-threads.sh open 70000 [PROXY OPTIONS]       # resilbench run --rate, open loop
#   benches/proxy-threads.sh closed "-c1 -m100 -D 6" [PROXY OPTIONS]   # h2load through it
#   benches/proxy-threads.sh direct "-c1 -m100 -D 6"     # h2load against serve alone
#
# (h2load must outlast the 4 s read: give it `-D` seconds rather than `-n` requests.)
#
# Starts `serve benches/harness/fast.toml` and (but for `direct`) `proxy fast.toml --upstream
# SERVE [PROXY OPTIONS]`, then the generator: `resilbench run fast.toml --target PROXY --rate
# RATE` for 6 s, or h2load with the given arguments (gRPC unary `Call`, the headers run.sh
# sends). After 2 s it reads /proc/PID/task/*/{stat,status,schedstat} twice, 2 s apart. Per
# thread: CPU (utime + stime), on CPU and waiting in a run queue (schedstat), context
# switches; per call: each process's CPU and context switches over the calls of those 2 s
# (the generator's achieved rate). Counts travel between machines, times do not. Figures:
# docs/PERFORMANCE.md, "Where the queue formed".
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?open RATE | closed H2LOAD-ARGS | direct H2LOAD-ARGS}
load=${2:?the rate, or the arguments to h2load}
shift 2
cargo build --release --locked --quiet
bin=target/release/resilbench
out=target/proxy-threads
rm -rf "$out"; mkdir -p "$out"
printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$out/call.bin" # CallRequest{request_id: "1"}
# pids, the trap that kills them, start()
source benches/processes.sh
start serve "$bin" serve benches/harness/fast.toml --listen 127.0.0.1:0
target=$addr
names="serve"
if [ "$mode" != direct ]; then
    start proxy "$bin" proxy benches/harness/fast.toml --listen 127.0.0.1:0 --upstream "$target" "$@"
    target=$addr
    names="serve proxy"
fi
if [ "$mode" = open ]; then
    "$bin" run benches/harness/fast.toml --target "$target" --rate "$load" --duration 6s \
        --out "$out/run" --quiet >/dev/null 2>"$out/run.log" &
else
    command -v h2load >/dev/null || { echo "h2load not found: apt-get install nghttp2-client" >&2; exit 2; }
    # shellcheck disable=SC2086
    h2load $load -t 1 -d "$out/call.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
        -H 'grpc-timeout: 999999u' -H 'resilbench-attempt: 0' \
        "http://$target/resilbench.v1.Backend/Call" >"$out/h2load.log" 2>&1 &
fi
generator=$!
names="$names generator"
pids+=("$generator")
sleep 2
snap() { # -> one line per thread: process, tid, name, ticks, switches, on-CPU ns, waiting ns
    local i=0 p
    for p in "${pids[@]}"; do
        local who
        who=$(echo "$names" | cut -d' ' -f$((i + 1)))
        i=$((i + 1))
        for t in /proc/"$p"/task/*; do
            local name ticks csw sched
            name=$(tr ' ' _ <"$t/comm" 2>/dev/null) || continue
            ticks=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "$t/stat" 2>/dev/null || echo 0)
            csw=$(awk '/ctxt_switches/{n += $2} END{print n + 0}' "$t/status" 2>/dev/null || echo 0)
            sched=$(cut -d' ' -f1,2 "$t/schedstat" 2>/dev/null || echo 0 0)
            echo "$who ${t##*/} $name $ticks $csw $sched"
        done
    done
}
snap >"$out/a"; sleep 2; snap >"$out/b"
wait "$generator" || true
if [ "$mode" = open ]; then
    python3 - "$out/run/results.json" >"$out/summary" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["strategies"][0]
g, a = s["generator"], s["latency_ms"]["attempt"]
lag = g.get("lag_ms", {}).get("p99")
print(g["achieved_rate"])
print(f"achieved {g['achieved_rate']:.0f}/s, attempt p50 {a['p50']} ms p99 {a['p99']} ms, "
      f"lag p99 {lag} ms, dropped {s['counts']['dropped']}")
PY
    rate=$(head -1 "$out/summary")
    summary=$(tail -1 "$out/summary")
else
    rate=$(sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$out/h2load.log")
    summary="h2load: $(grep -E 'finished in|time for request' "$out/h2load.log" | tr -s ' ' | paste -sd';')"
fi
hz=$(getconf CLK_TCK)
python3 - "$out/a" "$out/b" "$hz" "${rate:-0}" <<'PY'
import sys
hz, rate = int(sys.argv[3]), float(sys.argv[4])
def read(path):
    rows = {}
    for line in open(path):
        who, tid, name, ticks, csw, run, wait = line.split()
        rows[(who, tid)] = (name, int(ticks), int(csw), int(run), int(wait))
    return rows
a, b = read(sys.argv[1]), read(sys.argv[2])
per = {}
for key, (name, ticks, csw, run, wait) in sorted(b.items()):
    if key not in a:
        continue
    _, t0, c0, r0, w0 = a[key]
    cpu, sw = (ticks - t0) / hz / 2, (csw - c0) / 2
    if cpu == 0 and sw < 50:
        continue
    print(f"{key[0]:9} {name:20} cpu {cpu:6.1%}  on CPU {(run - r0) / 2e9:6.1%}  "
          f"waiting {(wait - w0) / 2e9:6.1%}  switches/s {sw:7.0f}")
    p = per.setdefault(key[0], [0.0, 0.0])
    p[0] += cpu; p[1] += sw
if rate > 0:
    for who, (cpu, sw) in per.items():
        print(f"per call  {who:9} cpu {cpu / rate * 1e6:5.2f} us  switches {sw / rate:.4f}")
PY
echo "$summary"

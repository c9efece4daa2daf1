#!/usr/bin/env bash
# A/B of builds, pinned, alternately (docs/PERFORMANCE.md, "serve's unary fast path": the
# rows that name it; its per-step rows came from a scratch script with the same steps):
#
#   benches/harness/ab.sh RATE ROUNDS SERVE_BIN...
#
# For each round, each SERVE_BIN in turn: `SERVE_BIN serve benches/harness/fast.toml` on the
# last CPU this process may use, then each client build of AB_CLIENTS (default: the release
# build) runs `run benches/harness/fast.toml --target … --rate RATE --duration 6s` on the
# first CPU, and both processes' CPU time (/proc/PID/stat utime + stime) is read at 2 s and
# 5 s, so only the steady middle 3 s count, per call over RATE (pick a rate the builds hold:
# achieved = offered); then h2load (AB_H2LOAD, default `-c 4 -m 256 -n 600000`, the harness's
# gRPC `Call` and headers) against the same server, with the server's CPU per request over
# the requests h2load counts as succeeded (any 2xx response; the harness's server answers
# them all OK). Prints one line per measurement; a run that fails stops the script. Nothing
# is asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { echo "usage: $0 RATE ROUNDS SERVE_BIN..." >&2; exit 2; }
rate=$1 rounds=$2; shift 2
command -v h2load >/dev/null || { echo "h2load not found: apt-get install nghttp2-client" >&2; exit 2; }
read -r -a cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
[ ${#cpus[@]} -ge 2 ] || { echo "needs two CPUs" >&2; exit 2; }
server_cpu=${cpus[$((${#cpus[@]} - 1))]} client_cpu=${cpus[0]}
clients=${AB_CLIENTS:-target/release/resilbench}
out=$(mktemp -d)
server="" client=""
trap 'kill $server $client 2>/dev/null; rm -rf "$out"' EXIT
printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$out/call.bin" # CallRequest{request_id: "1"}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for _ in $(seq "$rounds"); do
    for sb in "$@"; do
        taskset -c "$server_cpu" "$sb" serve benches/harness/fast.toml --listen 127.0.0.1:0 2>"$out/serve.log" &
        server=$!
        for _ in $(seq 50); do grep -q "listening on" "$out/serve.log" && break; sleep 0.1; done
        addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/serve.log" | head -1)
        [ -n "$addr" ] || { echo "$sb serve did not start" >&2; exit 2; }
        for cb in $clients; do
            rm -rf "$out/run"
            taskset -c "$client_cpu" "$cb" run benches/harness/fast.toml --target "$addr" --rate "$rate" \
                --duration 6s --out "$out/run" --quiet >/dev/null 2>&1 &
            client=$!
            sleep 2
            c0=$(ticks "$client") s0=$(ticks "$server")
            sleep 3
            c1=$(ticks "$client") s1=$(ticks "$server")
            wait "$client" || { echo "$cb run failed" >&2; exit 1; }
            client=""
            python3 - "$sb" "$cb" "$rate" $((c1 - c0)) $((s1 - s0)) "$hz" "$out/run/results.json" <<'PY'
import json, sys
sb, cb, rate, c, s, hz, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
per = lambda t: t / hz / 3 * 1e6 / rate
st = json.load(open(path))["strategies"][0]
print(f"serve {sb}, client {cb}, {rate}/s: client {per(c):.2f} us/call, server {per(s):.2f} us/call, "
      f"lag p99 {st['generator']['lag_ms']['p99']} ms, dropped {st['counts']['dropped']}")
PY
        done
        s0=$(ticks "$server")
        # shellcheck disable=SC2086
        if ! report=$(taskset -c "$client_cpu" h2load ${AB_H2LOAD:--c 4 -m 256 -n 600000} -t 1 -d "$out/call.bin" \
            -H 'content-type: application/grpc' -H 'te: trailers' \
            -H 'grpc-timeout: 999999u' -H 'resilbench-attempt: 0' \
            "http://$addr/resilbench.v1.Backend/Call" 2>&1); then
            echo "$report" >&2
            exit 1
        fi
        s1=$(ticks "$server")
        n=$(echo "$report" | sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p')
        # h2load writes short times in ms or us.
        rps=$(echo "$report" | sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p')
        [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$rps" ] || { echo "h2load's report not understood:" >&2; echo "$report" >&2; exit 1; }
        per=$(awk -v t=$((s1 - s0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
        echo "serve $sb, h2load: $rps req/s, server $per us/request ($n succeeded)"
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    done
done

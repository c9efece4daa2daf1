#!/usr/bin/env bash
# Allocations per call in `resilbench proxy` (issue 22), counted, not timed (counts travel
# between machines):
#
#   sudo benches/proxy-allocs.sh                     # the proxy's defaults, one thread
#   sudo benches/proxy-allocs.sh --connections 1     # any proxy option, passed on
#
# Needs `perf` (Debian's linux-perf) and the right to add uprobes (root). Puts uprobes on
# mimalloc's `mi_malloc_aligned`, `mi_zalloc_aligned` and `mi_realloc_aligned` in the release
# binary (every Rust allocation goes through one of them), then runs `serve
# benches/harness/fast.toml`, the proxy in front of it with `--threads 1`, and `run
# fast.toml --target PROXY --rate 2000` twice, for 3 s and for 9 s, counting the proxy's
# allocations with `perf stat -p` over each run. Per call is the difference between the two
# runs over the 12,000 calls between them, so that start-up and the connections' set-up fall
# out. The probes are removed at the end. Figures: docs/PERFORMANCE.md, "Allocations per call
# in the proxy".
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 2; }
cargo build --release --locked --quiet
bin=$PWD/target/release/resilbench
out=target/proxy-allocs
rate=2000
rm -rf "$out"; mkdir -p "$out"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    perf probe -q -d 'probe_resilbench:*' >/dev/null 2>&1 || true
}
trap cleanup EXIT
perf probe -q -d 'probe_resilbench:*' >/dev/null 2>&1 || true
for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
    perf probe -q -x "$bin" --add "$f" >/dev/null
done
events=$(perf probe -l 2>/dev/null | awk '/probe_resilbench/{print $1}' | paste -sd,)

start() { # name command... -> sets $addr, the address it listens on, from its log
    local name=$1; shift
    rm -f "$out/$name.log"
    "$@" >/dev/null 2>"$out/$name.log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q "listening on" "$out/$name.log" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/$name.log" | head -1)
    [ -n "$addr" ] || { echo "$name did not start: $(cat "$out/$name.log")" >&2; exit 2; }
}

count() { # seconds proxy-options... -> the proxy's allocations over a run of that length
    local secs=$1; shift
    start serve "$bin" serve benches/harness/fast.toml --listen 127.0.0.1:0
    local serve=$addr serve_pid=${pids[-1]}
    start proxy "$bin" proxy benches/harness/fast.toml --threads 1 --listen 127.0.0.1:0 \
        --upstream "$serve" "$@"
    local proxy=$addr proxy_pid=${pids[-1]}
    perf stat -e "$events" -p "$proxy_pid" -x, -o "$out/stat.$secs" &
    local stat=$!
    sleep 0.2
    "$bin" run benches/harness/fast.toml --target "$proxy" --rate "$rate" --duration "${secs}s" \
        --out "$out/run-$secs" --quiet >/dev/null 2>"$out/run-$secs.log"
    kill -INT "$stat"; wait "$stat" 2>/dev/null || true
    kill "$serve_pid" "$proxy_pid"; wait "$serve_pid" "$proxy_pid" 2>/dev/null || true
    awk -F, '$1 ~ /^[0-9]+$/ {n += $1} END {print n + 0}' "$out/stat.$secs"
}

short=$(count 3 "$@")
long=$(count 9 "$@")
python3 -c "
short, long, calls = $short, $long, 6 * $rate
print(f'proxy allocations: {short} over 3 s, {long} over 9 s at $rate calls/s: {(long - short) / calls:.2f} per call')
"

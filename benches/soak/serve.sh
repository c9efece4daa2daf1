#!/usr/bin/env bash
# Soak of `resilbench serve` under h2load (Debian's nghttp2-client; issue 21): serves
# benches/harness/fast.toml with serve's default limits, drives it with
# h2load -c SERVE_SOAK_CLIENTS (100) -m SERVE_SOAK_STREAMS (1000) for SERVE_SOAK_SECONDS (60),
# gRPC unary `Call`, and samples serve's resident memory and open file descriptors every 5 s.
# Then stops serve with SIGTERM and says how long it took. Prints the figures and h2load's
# summary; writes them under $SERVE_SOAK_OUT (target/serve-soak). Nothing is asserted.
#
#   benches/soak/serve.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
clients=${SERVE_SOAK_CLIENTS:-100}
streams=${SERVE_SOAK_STREAMS:-1000}
secs=${SERVE_SOAK_SECONDS:-60}
out=${SERVE_SOAK_OUT:-target/serve-soak}
command -v h2load >/dev/null || { echo "h2load not found: apt-get install nghttp2-client" >&2; exit 2; }
cargo build --release --locked --quiet
rm -rf "$out"
mkdir -p "$out"
printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$out/call.bin" # CallRequest{request_id: "1"}, gRPC-framed
./target/release/resilbench serve benches/harness/fast.toml --listen 127.0.0.1:0 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out/serve.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/serve.log" | head -1)
[ -n "$addr" ] || { echo "serve did not start" >&2; exit 2; }
h2load -c "$clients" -m "$streams" -D "$secs" -t 1 -d "$out/call.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://$addr/resilbench.v1.Backend/Call" >"$out/h2load.txt" 2>&1 &
load=$!
echo "t_s,rss_kib,peak_rss_kib,fds" >"$out/samples.csv"
start=$(date +%s)
while kill -0 "$load" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server/status")
    fds=$(ls "/proc/$server/fd" | wc -l)
    echo "$(( $(date +%s) - start )),$rss,$hwm,$fds" >>"$out/samples.csv"
    sleep 5
done
wait "$load" || true
stopping=$(date +%s.%N)
kill -TERM "$server"
wait "$server" || true
took=$(awk -v a="$(date +%s.%N)" -v b="$stopping" 'BEGIN {printf "%.2f", a - b}')
trap - EXIT
cat "$out/samples.csv"
grep -E "^finished in|^requests:|^status codes:" "$out/h2load.txt"
tail -1 "$out/serve.log"
echo "stopped $took s after SIGTERM"

# Sourced by benches/proxy.sh and benches/proxy-threads.sh: the processes a bench starts (serve,
# the proxy), killed when the script exits, each found at the address its log says.
# Needs $out (a folder for the logs).
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

#!/usr/bin/env bash
# Wake-ups per call, side by side (issue 26), one command:
#
#   benches/harness/wakeups.sh                  # 20k/s and 50k/s, 10 s each
#   WAKEUPS_RATES="10000 30000" WAKEUPS_SECS=5 benches/harness/wakeups.sh
#   WAKEUPS_QUANTA="100us default" WAKEUPS_ROUNDS=3 benches/harness/wakeups.sh   # an A/B
#
# By default two resilbench arms run: the profile's own `load.wake_quantum` ("default") and
# `"10ms"`, h2load's own batching: h2load --rps arms a repeating 10 ms timer
# (`rps_watcher.repeat = std::max(0.01, 1. / config.rps)`, nghttp2 v1.52.0 src/h2load.cc line
# 1179, `Client::connection_made`) and each tick sends every request fallen due since the last
# (`rps_cb`), without measuring how late they leave. At equal batching the two mechanisms'
# costs compare apart from the lateness policy (resilbench still counts the lag it causes).
#
# Against one `resilbench serve benches/harness/fast.toml` pinned to the last CPU, with the
# generator on the others (as run.sh's "pinned" layout), at each rate:
# 1. h2load -c1 -m100 --rps RATE (gRPC unary `Call`, the headers resilbench's attempts carry);
# 2. resilbench run --target at RATE;
# (for each `load.wake_quantum` of WAKEUPS_QUANTA, "default" meaning the profile's own, in
# alternating rounds so that a change in the machine's load meets every variant alike)
# and for each: the generator's CPU and context switches (voluntary + involuntary, from
# getrusage of the finished child: every thread it had), the server's CPU and context switches
# over the same span (summed over its threads, /proc/PID/task/*/status and stat), per call,
# and resilbench's lag p99. Context switches are counted, not timed: a wake-up that is cheap on
# one machine costs tens of microseconds on another (a KVM guest waking a thread on the other
# vCPU), and the count is what travels between machines. Nothing here is asserted: the table
# goes into docs/PERFORMANCE.md with this command.
set -euo pipefail
cd "$(dirname "$0")/../.."
rates=${WAKEUPS_RATES:-20000 50000}
secs=${WAKEUPS_SECS:-10}
quanta=${WAKEUPS_QUANTA:-default 10ms}
rounds=${WAKEUPS_ROUNDS:-1}
out=${HARNESS_OUT:-target/wakeups}
command -v h2load >/dev/null || { echo "h2load not found: apt-get install nghttp2-client" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 2; }
cargo build --release --locked --quiet
bin=target/release/resilbench
rm -rf "$out"; mkdir -p "$out"
read -r -a cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
[ "${#cpus[@]}" -ge 2 ] || { echo "needs two CPUs (server pinned apart from the generator)" >&2; exit 2; }
server_cpu=${cpus[$((${#cpus[@]} - 1))]}
client_cpus=$(IFS=,; echo "${cpus[*]:0:$((${#cpus[@]} - 1))}")
printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$out/call.bin" # CallRequest{request_id: "1"}, gRPC-framed

taskset -c "$server_cpu" "$bin" serve benches/harness/fast.toml --listen 127.0.0.1:0 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out/serve.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/serve.log" | head -1)
[ -n "$addr" ] || { echo "serve did not start" >&2; exit 2; }

for q in $quanta; do # one profile per quantum: fast.toml, with its wake_quantum set
    if [ "$q" = default ]; then cp benches/harness/fast.toml "$out/fast-$q.toml"; else
        sed "s/^deadline = \"1s\"/deadline = \"1s\"\nwake_quantum = \"$q\"/" benches/harness/fast.toml >"$out/fast-$q.toml"
        grep -q "wake_quantum = \"$q\"" "$out/fast-$q.toml" || { echo "could not set wake_quantum $q" >&2; exit 2; }
    fi
done

python3 - "$bin" "$addr" "$server" "$client_cpus" "$secs" "$out" "$quanta" "$rounds" $rates <<'PY'
import json, os, resource, subprocess, sys
bin, addr, server, client_cpus, secs, out, quanta, rounds, *rates = sys.argv[1:]
secs = int(secs)
quanta = quanta.split()
rounds = int(rounds)
hz = os.sysconf("SC_CLK_TCK")

def server_figures():
    """The server's CPU seconds and context switches so far, over all its threads."""
    cpu = csw = 0
    for tid in os.listdir(f"/proc/{server}/task"):
        try:
            stat = open(f"/proc/{server}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            cpu += (int(stat[11]) + int(stat[12])) / hz
            for line in open(f"/proc/{server}/task/{tid}/status"):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    csw += int(line.split()[1])
        except OSError:  # a thread that ended between the listing and the read
            pass
    return cpu, csw

def measure(cmd):
    """Runs cmd pinned to the client CPUs: its CPU, context switches and the server's."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = server_figures()
    done = subprocess.run(["taskset", "-c", client_cpus] + cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    s1 = server_figures()
    return done, {
        "client_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "client_csw": (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw),
        "client_csw_voluntary": after.ru_nvcsw - before.ru_nvcsw,
        "server_cpu_s": s1[0] - s0[0],
        "server_csw": s1[1] - s0[1],
    }

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
def seconds(text):  # the forms resilbench writes (profile::duration::format)
    number = text.rstrip("nsumh")
    return float(number) * UNITS[text[len(number):]]

def per_call(f, calls):
    return {
        "calls": calls,
        "client_cpu_us": round(f["client_cpu_s"] * 1e6 / calls, 2),
        "client_csw": round(f["client_csw"] / calls, 4),
        "client_csw_voluntary": round(f["client_csw_voluntary"] / calls, 4),
        "server_cpu_us": round(f["server_cpu_s"] * 1e6 / calls, 2),
        "server_csw": round(f["server_csw"] / calls, 4),
    }

rows = []
for round_ in range(1, rounds + 1):
  for rate in map(int, rates):
    n = rate * secs
    done, f = measure(["h2load", "-c", "1", "-m", "100", "--rps", str(rate), "-n", str(n), "-t", "1",
                       "-d", f"{out}/call.bin", "-H", "content-type: application/grpc",
                       "-H", "te: trailers", "-H", "grpc-timeout: 999999u",
                       "-H", "resilbench-attempt: 0", f"http://{addr}/resilbench.v1.Backend/Call"])
    ok = [l for l in done.stdout.splitlines() if l.startswith("requests:")]
    h2 = per_call(f, n)
    h2["h2load_requests_line"] = ok[0] if ok else done.stdout[-400:]
    row = {"round": round_, "rate": rate, "h2load": h2}
    for q in quanta:
        folder = f"{out}/resilbench-{rate}-{q}-{round_}"
        done, f = measure([bin, "run", f"{out}/fast-{q}.toml", "--target", addr, "--rate", str(rate),
                           "--duration", f"{secs}s", "--out", folder, "--quiet"])
        try:
            r = json.load(open(f"{folder}/results.json"))
            s = r["strategies"][0]
            # counts.sent leaves the warmup out; its calls cost CPU and wake-ups too (constant
            # arrivals), as in run.sh.
            warmup = seconds(r["profile"]["load"]["warmup"])
            calls = round(s["counts"]["sent"] * secs / (secs - warmup))
            mine = per_call(f, max(1, calls))
            mine["wake_quantum"] = r["profile"]["load"]["wake_quantum"]
            mine["lag_p99_ms"] = s["generator"]["lag_ms"]["p99"]
            mine["achieved_rate"] = round(s["generator"]["achieved_rate"], 1)
            mine["attempt_p50_ms"] = s["latency_ms"]["attempt"]["p50"]
            mine["attempt_p99_ms"] = s["latency_ms"]["attempt"]["p99"]
            mine["e2e_p50_ms"] = s["latency_ms"]["e2e"]["p50"]
            mine["ratios_to_h2load"] = {
                "client_csw": round(mine["client_csw"] / h2["client_csw"], 2) if h2["client_csw"] else None,
                "client_cpu": round(mine["client_cpu_us"] / h2["client_cpu_us"], 2) if h2["client_cpu_us"] else None,
                "server_cpu": round(mine["server_cpu_us"] / h2["server_cpu_us"], 2) if h2["server_cpu_us"] else None,
            }
        except (OSError, ValueError, KeyError) as e:
            mine = {"error": f"no results: {e}; exit {done.returncode}; {done.stderr[-400:]}"}
        row[f"resilbench_{q}"] = mine
    rows.append(row)
    print(json.dumps(row))
json.dump(rows, open(f"{out}/wakeups.json", "w"), indent=2)
print(f"\nwritten: {out}/wakeups.json")
PY

"""Cross-check of resilbench's client flavors against real gRPC clients (not run in CI).

For each scenario in scenarios/ (a profile: a backend script, a load, and a service config),
and each real client given on the command line, this:
  1. starts `resilbench serve SCENARIO --log-attempts` on a free loopback port;
  2. runs the real client: calls "0" .. "N-1" at the scenario's rate, with its deadline and
     service config, on one channel (client.py for grpcio, client.js for grpc-js);
  3. reads the attempts from serve's log and the statuses and times from the client;
  4. runs the same scenario with `resilbench run --clock virtual`, the strategy's `client` set
     to the flavor that names the real client, and reads results.json;
and prints both side by side: statuses, attempts, call times (and, for the first-retry
scenario, the wait before each call's first retry as serve's log shows it).

    python crosscheck.py RESILBENCH CLIENT=FLAVOR=COMMAND... [--only SCENARIO]

e.g. `grpcio=c-core@1.85="/tmp/venv/bin/python client.py"`; crosscheck.sh sets these up.
"""

import json
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOG = re.compile(r"^\+(\d+\.\d+)s Call request_id=(\S+) attempt=(\d+) .* status=(\S+)")


def seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(ms|s)", text)
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario_copy(tmp: Path, name: str, flavor: str) -> Path:
    text = (HERE / "scenarios" / f"{name}.toml").read_text().replace("@CLIENT@", flavor)
    (tmp / f"{name}.toml").write_text(text)
    (tmp / f"{name}.json").write_text((HERE / "scenarios" / f"{name}.json").read_text())
    return tmp / f"{name}.toml"


def real(resilbench: str, profile: Path, command: str, load: dict) -> dict:
    port = free_port()
    serve = subprocess.Popen(
        [resilbench, "serve", str(profile), "--listen", f"127.0.0.1:{port}", "--log-attempts"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    n = round(load["rate"] * seconds(load["duration"]))
    spacing_ms = 1000 / load["rate"]
    config = profile.with_suffix(".json")
    out = subprocess.run(
        shlex.split(command)
        + [f"127.0.0.1:{port}", str(config), str(n), str(spacing_ms), str(seconds(load["deadline"]))],
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=300,
    )
    time.sleep(0.3)
    serve.terminate()
    log = serve.communicate(timeout=10)[1]
    calls = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if len(calls) != n:
        sys.exit(f"{command}: {len(calls)} of {n} calls came back:\n{out.stdout}\n{out.stderr}")
    attempts: dict[str, list[float]] = {}
    for line in log.splitlines():
        m = LOG.match(line)
        if m and m.group(2) != "warmup":
            attempts.setdefault(m.group(2), []).append(float(m.group(1)))
    return {"calls": calls, "attempts": attempts}


def virtual(resilbench: str, profile: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(
            [resilbench, "run", str(profile), "--clock", "virtual", "--quiet", "--out", f"{out}/r"],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            sys.exit(f"resilbench run {profile}: {run.stderr}")
        s = json.loads(Path(f"{out}/r/results.json").read_text())["strategies"][0]
    return s


def statuses(codes) -> str:
    counts: dict[str, int] = {}
    for c in codes:
        counts[c] = counts.get(c, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def main() -> None:
    resilbench, *rest = sys.argv[1:]
    only = None
    if "--only" in rest:
        i = rest.index("--only")
        only = rest[i + 1]
        rest = rest[:i] + rest[i + 2 :]
    clients = [c.split("=", 2) for c in rest]
    for path in sorted((HERE / "scenarios").glob("*.toml")):
        name = path.stem
        if only and name != only:
            continue
        load = tomllib.loads(path.read_text().replace("@CLIENT@", "a6"))["load"]
        print(f"\n== {name}: {tomllib.loads(path.read_text().replace('@CLIENT@', 'a6'))['description']}")
        for label, flavor, command in clients:
            with tempfile.TemporaryDirectory() as tmp:
                profile = scenario_copy(Path(tmp), name, flavor)
                r = real(resilbench, profile, command, load)
                v = virtual(resilbench, profile)
            times = sorted(c["ms"] for c in r["calls"])
            # serve logs the attempts it answered: one cut by the client (a hedge that lost)
            # is not in its log, so resilbench's count leaves those out too.
            n_attempts = sum(len(a) for a in r["attempts"].values())
            print(
                f"  {label:<10} real:           {statuses(c['status'] for c in r['calls'])}; "
                f"{n_attempts} attempts answered; call ms {times[0]:.1f}–{times[-1]:.1f}"
            )
            e2e = v["latency_ms"]["e2e"]
            a = v["attempts"]
            answered = a["total"] - a.get("hedges_cancelled", 0)
            print(
                f"  {'':<10} {flavor:<15} {statuses(k for k, n in v['status'].items() for _ in range(n))}; "
                f"{answered} attempts answered; call ms p50 {e2e['p50']:.1f}, max {e2e['max']:.1f}"
            )
            if name == "first-retry":
                gaps = sorted(
                    round((a[1] - a[0]) * 1000 - 1) for a in r["attempts"].values() if len(a) > 1
                )
                print(f"  {'':<10} real waits before retry 1 (ms, from serve's log): {gaps}")


if __name__ == "__main__":
    main()

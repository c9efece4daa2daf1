"""Which C-core behaviour does this grpcio release have? (benches/flavors/crosscheck.sh)

Against `resilbench serve probe.toml --log-attempts` at ADDR, with a retry policy
(maxAttempts 5, 0.1 s x 2, UNAVAILABLE), prints one line:
  zero=<status after pushback 0, and when, or "none in 5 s">
  malformed=<status after pushback "soon">
  first-waits=<the waits before six calls' first retry, in ms, read from serve's log LOG>

    python probe.py ADDR LOG
"""

import json
import re
import sys
import time

import grpc

CONFIG = json.dumps({"methodConfig": [{"name": [{"service": "resilbench.v1.Backend"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})


def main() -> None:
    addr, log = sys.argv[1:3]
    channel = grpc.insecure_channel(addr, options=[
        ("grpc.enable_retries", 1), ("grpc.service_config", CONFIG),
        ("grpc.service_config_disable_resolution", 1)])
    call = channel.unary_unary("/resilbench.v1.Backend/Call",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)

    def send(request_id: str, timeout: float) -> str:
        raw = request_id.encode()
        future = call.future(b"\x0a" + bytes([len(raw)]) + raw, timeout=timeout)
        t0 = time.monotonic()
        try:
            future.result(timeout=timeout + 4)
            status = "OK"
        except grpc.FutureTimeoutError:
            future.cancel()
            return f"none in {timeout + 4:.0f} s (deadline {timeout:.0f} s)"
        except grpc.RpcError as e:
            status = e.code().name
        return f"{status} at {(time.monotonic() - t0) * 1000:.0f} ms"

    send("warmup", 5)
    zero = send("zero", 1)
    malformed = send("malformed", 1)
    for i in range(6):
        send(f"retry-{i}", 2)
    time.sleep(0.3)
    ended: dict[str, list[float]] = {}
    for line in open(log):
        m = re.match(r"^\+(\d+\.\d+)s Call request_id=(retry-\d) ", line)
        if m:
            ended.setdefault(m.group(2), []).append(float(m.group(1)))
    waits = sorted(round((t[1] - t[0]) * 1000 - 1) for t in ended.values() if len(t) > 1)
    print(f"grpcio {grpc.__version__}: zero={zero}; malformed={malformed}; first-waits={waits}")


if __name__ == "__main__":
    main()

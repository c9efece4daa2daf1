"""A gRPC C-core client (grpcio) for benches/flavors/crosscheck.py.

Sends calls "0" .. "N-1" to resilbench.v1.Backend/Call, SPACING_MS apart (open loop), each
with DEADLINE_S, on one channel given SERVICE_CONFIG (a JSON file). Prints one JSON line per
call: {"id": ..., "status": "OK" | code name, "ms": elapsed}. The request is encoded by hand
(field 1, the request id), so no generated code is needed.

    python client.py ADDR SERVICE_CONFIG N SPACING_MS DEADLINE_S
"""

import json
import sys
import threading
import time

import grpc


def request(request_id: str) -> bytes:
    raw = request_id.encode()
    return b"\x0a" + bytes([len(raw)]) + raw


def main() -> None:
    addr, config_path, n, spacing_ms, deadline_s = sys.argv[1:6]
    n, spacing, deadline = int(n), float(spacing_ms) / 1000, float(deadline_s)
    with open(config_path) as f:
        config = f.read()
    channel = grpc.insecure_channel(
        addr,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", config),
            ("grpc.service_config_disable_resolution", 1),
        ],
    )
    call = channel.unary_unary(
        "/resilbench.v1.Backend/Call",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    call(request("warmup"), timeout=5)  # the connection, before the clock starts
    lock, done, results = threading.Lock(), threading.Event(), []

    def finished(i, t0, future):
        ms = (time.monotonic() - t0) * 1000
        code = future.code()
        with lock:
            results.append({"id": i, "status": code.name, "ms": round(ms, 3)})
            if len(results) == n:
                done.set()

    start = time.monotonic()
    for i in range(n):
        delay = start + i * spacing - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        future = call.future(request(str(i)), timeout=deadline)
        future.add_done_callback(lambda f, i=i, t0=t0: finished(i, t0, f))
    done.wait(timeout=deadline + n * spacing + 30)
    for r in sorted(results, key=lambda r: r["id"]):
        print(json.dumps(r))


if __name__ == "__main__":
    main()

"""A gRPC server nobody on this project wrote: Python grpcio (gRPC C-core's HTTP/2 stack),
serving resilbench's Backend methods with generic raw-bytes handlers (no generated code).

Used by tests/grpcio.rs (and `.ci/run`, which installs grpcio). It prints the port it bound,
then serves until killed; each new client connection (peer) is written to stderr as
`peer <address>`, so a test can tell how many connections a run made (GOAWAY mid-run makes
the client open another).

Options:
  --max-concurrent-streams N   grpc.max_concurrent_streams (SETTINGS_MAX_CONCURRENT_STREAMS)
  --max-connection-age-ms N    grpc.max_connection_age_ms: GOAWAY after about N ms
  --max-connection-age-grace-ms N   grpc.max_connection_age_grace_ms
  --overload-protection 0|1    grpc.http.overload_protection (C-core's default: 1)
  --delay-ms N                 each call sleeps N ms before it answers
  --workers N                  the thread pool's size (default 16)
"""

import argparse
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "resilbench.v1.Backend"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--max-concurrent-streams", type=int)
    p.add_argument("--max-connection-age-ms", type=int)
    p.add_argument("--max-connection-age-grace-ms", type=int)
    p.add_argument("--overload-protection", type=int)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--workers", type=int, default=16)
    args = p.parse_args()

    peers = set()
    lock = threading.Lock()

    def seen(context):
        peer = context.peer()
        with lock:
            if peer not in peers:
                peers.add(peer)
                print("peer", peer, file=sys.stderr, flush=True)

    def ident(b):
        return b

    def unary(request, context):
        seen(context)
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000.0)
        # An empty message is a valid CallReply / MutateReply (every field at its default).
        return b""

    def stream(request, context):
        seen(context)
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000.0)
        for _ in range(3):
            yield b""

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Call": grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=ident, response_serializer=ident
            ),
            "Mutate": grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=ident, response_serializer=ident
            ),
            "Stream": grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=ident, response_serializer=ident
            ),
        },
    )
    options = []
    if args.max_concurrent_streams is not None:
        options.append(("grpc.max_concurrent_streams", args.max_concurrent_streams))
    if args.max_connection_age_ms is not None:
        options.append(("grpc.max_connection_age_ms", args.max_connection_age_ms))
    if args.max_connection_age_grace_ms is not None:
        options.append(("grpc.max_connection_age_grace_ms", args.max_connection_age_grace_ms))
    if args.overload_protection is not None:
        options.append(("grpc.http.overload_protection", args.overload_protection))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers),
        handlers=[handler],
        options=options,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

"""The tests' foreign service (tests/proto/acme/echo/v1/echo.proto) on Python grpcio: gRPC
C-core's HTTP/2 and TLS, Python protobuf's decoder, grpcio-reflection (v1alpha only, as it
ships). No generated code: generic handlers take the raw bytes, and the message classes come
from the protoset given (the same files, with their imports).

Say echoes id and n, and fails a GRUMPY call's first attempt (no grpc-previous-rpc-attempts)
with UNAVAILABLE; Count streams `count` replies. The service acme.echo.v1.Raw has no proto: its
messages are raw bytes. Raw/Chat (bidi streaming) answers each message with the same bytes as
it arrives; Raw/Gather (client streaming) answers, once the client has half-closed, with
"MESSAGES BYTES" in ASCII. Every call is written to the log as one JSON
line: method, id, n, mood, note, and its metadata.

usage: echo_server.py --protoset FILE [--log FILE] [--tls CERT KEY [CA]]
                      [--max-connection-age-ms MS] [--max-connection-age-grace-ms MS]
                      [--max-concurrent-streams N] [--overload-protection 0|1]
                      [--delay-ms MS] [--workers N]
Prints "listening PORT" once serving (port 0 is chosen by the system). Without --log no call
is written (the load tests of tests/grpcio.rs: a line per call would slow the server they
measure). Each new client connection (peer) is written to stderr as `peer ADDRESS`, so a test
can count the connections a run made (GOAWAY mid-run makes the client open another).

The C-core options the load tests need: grpc.max_concurrent_streams (SETTINGS_MAX_CONCURRENT_
STREAMS), grpc.max_connection_age_ms (GOAWAY after about that long) and its grace (default
5000 ms), grpc.http.overload_protection (C-core's default: 1); --delay-ms makes each call
sleep before it answers, --workers sizes the thread pool (default 16).
"""

import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection

SERVICE = "acme.echo.v1.Echo"

parser = argparse.ArgumentParser()
parser.add_argument("--protoset", required=True)
parser.add_argument("--log")
parser.add_argument("--tls", nargs="+")
parser.add_argument("--max-connection-age-ms", type=int)
parser.add_argument("--max-connection-age-grace-ms", type=int, default=5000)
parser.add_argument("--max-concurrent-streams", type=int)
parser.add_argument("--overload-protection", type=int)
parser.add_argument("--delay-ms", type=float, default=0.0)
parser.add_argument("--workers", type=int, default=16)
args = parser.parse_args()

pool = descriptor_pool.DescriptorPool()
with open(args.protoset, "rb") as f:
    for file in descriptor_pb2.FileDescriptorSet.FromString(f.read()).file:
        pool.Add(file)  # imports first, as protoc writes them


def message(name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


SayRequest = message("acme.echo.v1.SayRequest")
SayReply = message("acme.echo.v1.SayReply")
CountRequest = message("acme.echo.v1.CountRequest")
GRUMPY = pool.FindEnumTypeByName("acme.echo.v1.Mood").values_by_name["MOOD_GRUMPY"].number

log = open(args.log, "a", buffering=1) if args.log else None
lock = threading.Lock()
peers = set()


def record(method, request, context, **fields):
    peer = context.peer()
    with lock:
        if peer not in peers:
            peers.add(peer)
            print("peer", peer, file=sys.stderr, flush=True)
    if args.delay_ms:
        time.sleep(args.delay_ms / 1000.0)
    metadata = {k: (v if isinstance(v, str) else v.hex()) for k, v in context.invocation_metadata()}
    if log is None:
        return metadata
    line = dict(method=method, id=request.id, metadata=metadata, **fields)
    with lock:
        log.write(json.dumps(line) + "\n")
    return metadata


def say(raw, context):
    request = SayRequest.FromString(raw)
    metadata = record("Say", request, context, n=request.n, mood=request.mood,
                      note=request.detail.note)
    if request.mood == GRUMPY and "grpc-previous-rpc-attempts" not in metadata:
        context.abort(grpc.StatusCode.UNAVAILABLE, "grumpy at first")
    reply = SayReply(id=request.id, n=request.n)
    for k, v in metadata.items():
        reply.metadata[k] = v
    return reply.SerializeToString()


def count(raw, context):
    request = CountRequest.FromString(raw)
    record("Count", request, context, n=request.count, mood=0, note="")
    for i in range(request.count):
        yield SayReply(id=request.id, n=i).SerializeToString()


def raw(b):
    return b


handler = grpc.method_handlers_generic_handler(SERVICE, {
    "Say": grpc.unary_unary_rpc_method_handler(
        say, request_deserializer=raw, response_serializer=raw),
    "Count": grpc.unary_stream_rpc_method_handler(
        count, request_deserializer=raw, response_serializer=raw),
})


def chat(requests, context):
    for message in requests:
        yield message


def gather(requests, context):
    n = size = 0
    for message in requests:
        n += 1
        size += len(message)
    return f"{n} {size}".encode()


raw_handler = grpc.method_handlers_generic_handler("acme.echo.v1.Raw", {
    "Chat": grpc.stream_stream_rpc_method_handler(
        chat, request_deserializer=raw, response_serializer=raw),
    "Gather": grpc.stream_unary_rpc_method_handler(
        gather, request_deserializer=raw, response_serializer=raw),
})
options = []
if args.max_connection_age_ms is not None:
    options.append(("grpc.max_connection_age_ms", args.max_connection_age_ms))
    options.append(("grpc.max_connection_age_grace_ms", args.max_connection_age_grace_ms))
if args.max_concurrent_streams is not None:
    options.append(("grpc.max_concurrent_streams", args.max_concurrent_streams))
if args.overload_protection is not None:
    options.append(("grpc.http.overload_protection", args.overload_protection))
server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                     handlers=[handler, raw_handler], options=options)
reflection.enable_server_reflection([SERVICE, reflection.SERVICE_NAME], server, pool=pool)
if args.tls:
    cert, key = (open(p, "rb").read() for p in args.tls[:2])
    ca = open(args.tls[2], "rb").read() if len(args.tls) > 2 else None
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None)
    port = server.add_secure_port("127.0.0.1:0", credentials)
else:
    port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"listening {port}", flush=True)
try:
    server.wait_for_termination()
except KeyboardInterrupt:
    sys.exit(0)

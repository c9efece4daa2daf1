"""A real C-core client (Python grpcio) with a retry service config: calls
/acme.echo.v1.Echo/Say CALLS times, one after another, and prints one JSON line with the
status of each call.

The service config is gRFC A6's, given as the channel's `grpc.service_config`: retry
UNAVAILABLE up to MAX_ATTEMPTS attempts (C-core treats values above 5 as 5), backoff 10 ms
doubling to 50 ms. Each call has a 5 s deadline. The request is an empty SayRequest.

usage: retry_client.py --target HOST:PORT --calls N --max-attempts N
"""

import argparse
import json

import grpc

parser = argparse.ArgumentParser()
parser.add_argument("--target", required=True)
parser.add_argument("--calls", type=int, required=True)
parser.add_argument("--max-attempts", type=int, required=True)
args = parser.parse_args()

config = {
    "methodConfig": [{
        "name": [{"service": "acme.echo.v1.Echo"}],
        "retryPolicy": {
            "maxAttempts": args.max_attempts,
            "initialBackoff": "0.01s",
            "maxBackoff": "0.05s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }]
}
channel = grpc.insecure_channel(args.target, options=[
    ("grpc.service_config", json.dumps(config)),
    ("grpc.enable_retries", 1),
])
say = channel.unary_unary("/acme.echo.v1.Echo/Say")
codes = []
for _ in range(args.calls):
    try:
        say(b"", timeout=5)
        codes.append("OK")
    except grpc.RpcError as e:
        codes.append(e.code().name)
channel.close()
print(json.dumps({"codes": codes}), flush=True)

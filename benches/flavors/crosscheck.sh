#!/usr/bin/env bash
# Cross-checks resilbench's client flavors against real gRPC clients (issue 24). Not run in
# CI: the clients are large installs. Everything is installed under /tmp:
#   - grpcio (gRPC C-core) in a venv per release: /tmp/flv-py-VERSION
#   - @grpc/grpc-js with npm, one prefix per release: /tmp/flv-node-VERSION
#   - with JAVA=1, Debian's grpc-java 1.41.3 and its jars, unpacked (not installed) under
#     /tmp/flv-java, run by the JDK on the machine (Client.java, source-file mode)
# Then, for every scenario in scenarios/, crosscheck.py drives each client through
# `resilbench serve` and compares it with `resilbench run --clock virtual` as that client's
# flavor; and probe.py asks each grpcio release the three questions that place C-core's
# releases (docs/strategies.md, "Client flavors").
#
#   benches/flavors/crosscheck.sh                     # grpcio 1.85, grpc-js 1.14.7
#   GRPCIO="1.51 1.85" GRPC_JS="1.12.6 1.14.7" JAVA=1 benches/flavors/crosscheck.sh
#   benches/flavors/crosscheck.sh --only pushback-zero   # one scenario
#   GRPCIO="1.51 1.66 1.67" benches/flavors/crosscheck.sh probe
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
grpcio=${GRPCIO:-1.85}
grpc_js=${GRPC_JS:-1.14.7}
(cd "$root" && cargo build --quiet --locked)
rb="$root/target/debug/resilbench"

venv() { # venv VERSION: a venv with grpcio==VERSION.* (the newest patch of that minor)
    local dir=/tmp/flv-py-$1
    if [ ! -x "$dir/bin/python" ]; then
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet "grpcio==$1.*"
    fi
    echo "$dir/bin/python"
}

if [ "${1:-}" = probe ]; then
    for v in $grpcio; do
        py=$(venv "$v")
        port=$((50100 + RANDOM % 1000))
        log=$(mktemp)
        "$rb" serve "$here/probe.toml" --listen "127.0.0.1:$port" --log-attempts 2>"$log" &
        pid=$!
        sleep 0.5
        (cd "$here" && timeout 60 "$py" probe.py "127.0.0.1:$port" "$log") || true
        kill "$pid"
        rm -f "$log"
    done
    exit 0
fi

clients=()
for v in $grpcio; do
    py=$(venv "$v")
    version=$("$py" -c 'import grpc; print(grpc.__version__)')
    clients+=("grpcio-$version=c-core@$version=$py client.py")
done
for v in $grpc_js; do
    dir=/tmp/flv-node-$v
    if [ ! -d "$dir/node_modules/@grpc/grpc-js" ]; then
        mkdir -p "$dir"
        (cd "$dir" && npm init -y >/dev/null && npm install --silent "@grpc/grpc-js@$v")
    fi
    clients+=("grpc-js-$v=grpc-js@$v=env NODE_PATH=$dir/node_modules node client.js")
done
if [ "${JAVA:-0}" = 1 ]; then
    if [ ! -f /tmp/flv-java/cp ]; then
        mkdir -p /tmp/flv-java/debs
        (cd /tmp/flv-java/debs && apt-get download libgrpc-java libopencensus-java libnetty-java \
            libguava-java libgoogle-gson-java libperfmark-java libjsr305-java >/dev/null)
        for deb in /tmp/flv-java/debs/*.deb; do dpkg -x "$deb" /tmp/flv-java/root; done
        jars=/tmp/flv-java/root/usr/share/java
        ls $jars/{grpc-api,grpc-core,grpc-netty,grpc-stub,grpc-context,gson,guava,perfmark-api,netty-buffer,netty-codec,netty-codec-http,netty-codec-http2,netty-common,netty-handler,netty-resolver,netty-transport,netty-codec-socks,netty-handler-proxy,jsr305,opencensus-api}.jar \
            | tr '\n' ':' >/tmp/flv-java/cp
    fi
    version=$(ls /tmp/flv-java/root/usr/share/java/grpc-core-*.jar | sed 's/.*grpc-core-\(.*\)\.jar/\1/')
    clients+=("grpc-java-$version=grpc-java@$version=java -cp $(cat /tmp/flv-java/cp) Client.java")
fi
python3 "$here/crosscheck.py" "$rb" "${clients[@]}" "$@"

#!/usr/bin/env bash
# A real S3-compatible server for chronofs's tests, benchmarks and README walkthrough: Garage
# (https://garagehq.deuxfleurs.fr, crates.io `garage`, AGPL-3.0), run as a separate program on
# loopback ports, never linked into chronofs.
#
#   tests/s3/server.sh install                 build Garage once (about 10 minutes on 2 cores)
#   tests/s3/server.sh start DIR [--nodes N]   start N nodes (default 1; N=3: replication 3)
#                                              with their data under DIR, create a bucket and a
#                                              key, print `export` lines (also in DIR/env)
#   tests/s3/server.sh stop DIR                stop every node started in DIR
#   tests/s3/server.sh kill-node DIR I         kill node I (1-based) with SIGKILL
#   tests/s3/server.sh start-node DIR I        start node I again (same data, same ports)
#
# Garage is installed under $CHRONOFS_GARAGE_ROOT (default /var/cache/chronofs-test/garage),
# where later runs on the same machine find it; set CHRONOFS_GARAGE to use another binary.
# The printed variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
# CHRONOFS_S3_ENDPOINT (node 1's S3 address) and CHRONOFS_S3_TEST_REPO (an s3: location in the
# bucket). Garage ignores If-None-Match on PUT, which chronofs's lock protocol does not need.
set -euo pipefail

GARAGE_VERSION=2.5.0
GARAGE_ROOT=${CHRONOFS_GARAGE_ROOT:-/var/cache/chronofs-test/garage}
GARAGE=${CHRONOFS_GARAGE:-$GARAGE_ROOT/bin/garage}
REGION=garage
BUCKET=chronofs-test

die() { echo "server.sh: $*" >&2; exit 1; }

install() {
    if [ -x "$GARAGE" ] && "$GARAGE" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
        return
    fi
    command -v cargo >/dev/null || die "cargo is needed to build Garage"
    echo "server.sh: building Garage $GARAGE_VERSION into $GARAGE_ROOT (once per machine)" >&2
    mkdir -p "$GARAGE_ROOT"
    cargo install garage --version "=$GARAGE_VERSION" --locked --root "$GARAGE_ROOT" --quiet >&2
    [ -x "$GARAGE" ] || die "the Garage build left no binary at $GARAGE"
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# garage CLI against node I.
g() { local i=$1; shift; "$GARAGE" -c "$DIR/node$i/garage.toml" "$@"; }

# Writes node I's config (ports are kept in DIR/nodeI/ports so a restart reuses them).
configure_node() {
    local i=$1 nodes=$2 secret=$3 rpc s3 admin
    mkdir -p "$DIR/node$i/meta" "$DIR/node$i/data"
    if [ ! -f "$DIR/node$i/ports" ]; then
        echo "$(free_port) $(free_port) $(free_port)" > "$DIR/node$i/ports"
    fi
    read -r rpc s3 admin < "$DIR/node$i/ports"
    cat > "$DIR/node$i/garage.toml" <<EOF
metadata_dir = "$DIR/node$i/meta"
data_dir = "$DIR/node$i/data"
db_engine = "sqlite"
replication_factor = $nodes
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
}

start_node() {
    local i=$1
    [ -f "$DIR/node$i/garage.toml" ] || die "no node $i in $DIR"
    # setsid: the node outlives the shell that started it, in its own process group.
    setsid "$GARAGE" -c "$DIR/node$i/garage.toml" server > "$DIR/node$i/log" 2>&1 < /dev/null &
    echo $! > "$DIR/node$i/pid"
    local s3; s3=$(cut -d' ' -f2 "$DIR/node$i/ports")
    for _ in $(seq 1 100); do
        if (echo > "/dev/tcp/127.0.0.1/$s3") 2>/dev/null; then return; fi
        kill -0 "$(cat "$DIR/node$i/pid")" 2>/dev/null || { tail -20 "$DIR/node$i/log" >&2; die "node $i exited"; }
        sleep 0.1
    done
    die "node $i did not open its S3 port $s3"
}

kill_node() {
    local i=$1
    [ -f "$DIR/node$i/pid" ] || return 0
    local pid
    pid=$(cat "$DIR/node$i/pid")
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$DIR/node$i/pid"
    # Return once it is gone, so that the caller's next request meets a dead server (on a
    # loaded machine the process can outlive the kill by a moment).
    for _ in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null || [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then
            return 0
        fi
        sleep 0.05
    done
}

start() {
    local nodes=1
    if [ "${1:-}" = --nodes ]; then nodes=${2:?--nodes needs a number}; fi
    [ "$nodes" -ge 1 ] && [ "$nodes" -le 7 ] || die "--nodes takes 1 to 7"
    install
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    if [ -f "$DIR/env" ] && [ -f "$DIR/node1/pid" ] && kill -0 "$(cat "$DIR/node1/pid")" 2>/dev/null; then
        cat "$DIR/env"; return
    fi
    local secret; secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    for i in $(seq 1 "$nodes"); do configure_node "$i" "$nodes" "$secret"; start_node "$i"; done
    echo "$nodes" > "$DIR/nodes"
    # Wait until node 1 answers, connect the others to it, then lay out the cluster.
    local id
    for _ in $(seq 1 100); do id=$(g 1 node id -q 2>/dev/null) && break; sleep 0.2; done
    [ -n "${id:-}" ] || die "node 1 does not answer its RPC port"
    for i in $(seq 2 "$nodes"); do
        local other; other=$(g "$i" node id -q 2>/dev/null)
        g 1 node connect "$other" > /dev/null
    done
    for i in $(seq 1 "$nodes"); do
        local nid; nid=$(g "$i" node id -q 2>/dev/null | cut -d@ -f1)
        for _ in $(seq 1 50); do
            g 1 layout assign -z "dc$i" -c 1G "${nid:0:16}" > /dev/null 2>&1 && break
            sleep 0.2
        done
    done
    g 1 layout apply --version 1 > /dev/null
    for _ in $(seq 1 100); do g 1 bucket create "$BUCKET" > /dev/null 2>&1 && break; sleep 0.2; done
    local out key secret_key
    out=$(g 1 key create chronofs-test)
    key=$(echo "$out" | awk -F': *' '/Key ID/ {print $2; exit}')
    secret_key=$(echo "$out" | awk -F': *' '/Secret key/ {print $2; exit}')
    [ -n "$key" ] && [ -n "$secret_key" ] || die "could not read the new key from: $out"
    g 1 bucket allow --read --write --owner "$BUCKET" --key chronofs-test > /dev/null
    local s3; s3=$(cut -d' ' -f2 "$DIR/node1/ports")
    cat > "$DIR/env" <<EOF
export AWS_ACCESS_KEY_ID=$key
export AWS_SECRET_ACCESS_KEY=$secret_key
export AWS_DEFAULT_REGION=$REGION
export CHRONOFS_S3_ENDPOINT=http://127.0.0.1:$s3
export CHRONOFS_S3_TEST_REPO=s3:http://127.0.0.1:$s3/$BUCKET/repo
EOF
    chmod 600 "$DIR/env"
    cat "$DIR/env"
}

stop() {
    [ -d "$DIR" ] || return 0
    for pidfile in "$DIR"/node*/pid; do
        [ -f "$pidfile" ] || continue
        local pid; pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

cmd=${1:-}; shift || true
case $cmd in
install) install ;;
start) DIR=${1:?usage: server.sh start DIR [--nodes N]}; shift; start "$@" ;;
stop) DIR=${1:?usage: server.sh stop DIR}; stop ;;
kill-node) DIR=${1:?usage: server.sh kill-node DIR I}; kill_node "${2:?node number}" ;;
start-node) DIR=${1:?usage: server.sh start-node DIR I}; start_node "${2:?node number}" ;;
*) die "usage: server.sh install | start DIR [--nodes N] | stop DIR | kill-node DIR I | start-node DIR I" ;;
esac

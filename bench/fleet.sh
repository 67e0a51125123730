#!/usr/bin/env bash
# What a client pays as a shared repository grows (issue 25): for repositories of SIZES blobs
# (real index files written by bench/synthetic_index.rs, as if other hosts had backed up; their
# packs absent) and SNAPS snapshot files (bench/synthetic_snapshots.rs), the wall time and peak
# RSS of a host's commands on its own small directory (400 KiB, its one real snapshot):
#   cold   the local index is rebuilt from nothing (a new host, or a lost cache)
#   warm   the local index is up to date (every later command)
#   full   --no-cache: every index file loaded into memory (what every command did before the
#          local index; what prune and check still do)
# The mount's row is the time until its root lists, and its peak RSS after a file is read.
#
# STORAGE=garage puts the repository in a bucket of a one-node Garage server (tests/s3/server.sh)
# instead of a local directory, and each cell also gives the S3 requests the server counted
# (Garage's api_s3_request_counter) and the bytes over loopback (nothing else talks on lo;
# one node, so no replication traffic is counted) during the command.
#
#   sudo bash bench/fleet.sh                            # SIZES="1000000 10000000" SNAPS=1000
#   sudo SIZES=100000000 COMMANDS="backup mount" bash bench/fleet.sh   # the largest (~15 GB)
#   sudo STORAGE=garage bash bench/fleet.sh             # the same on object storage
# GATHER=1 has a prune gather the snapshot files into snapshot sets (docs/FORMAT.md) before the
# index files are added, as a pruned repository holds them.
# COMMANDS (default "backup ls restore mount") and MODES (default "cold warm full") pick rows
# and columns; a column not measured shows "-".
#
# Output: a table on stdout and in $BENCH_DIR/results-fleet.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-fleet.txt
SIZES=${SIZES:-1000000 10000000}
SNAPS=${SNAPS:-1000}
COMMANDS=${COMMANDS:-backup ls restore mount}
MODES=${MODES:-cold warm full}
STORAGE=${STORAGE:-local}
cargo build --release --locked --quiet --bin chronofs --example synthetic-index \
    --example synthetic-snapshots
C=$PWD/target/release/chronofs
W=$BENCH_DIR/fleet
export XDG_CACHE_HOME=$W/cache
REPO=$W/repo
if [ "$STORAGE" = garage ]; then
    GARAGE_DIR=$BENCH_DIR/garage-fleet-index
    bash tests/s3/server.sh stop "$GARAGE_DIR" 2>/dev/null || true
    rm -rf "$GARAGE_DIR"
    bash tests/s3/server.sh start "$GARAGE_DIR" > /dev/null
    trap 'bash tests/s3/server.sh stop "$GARAGE_DIR" >/dev/null 2>&1' EXIT
    . "$GARAGE_DIR/env"
    ADMIN=$(cut -d' ' -f3 "$GARAGE_DIR/node1/ports")
fi

# S3 requests the server has counted, and bytes received on lo.
requests() {
    curl -s "http://127.0.0.1:$ADMIN/metrics" \
        | awk '/^api_s3_request_counter/ {n += $NF} END {printf "%d", n}'
}
lo_bytes() { awk '$1 == "lo:" {printf "%.0f", $2}' /proc/net/dev; }

# Runs $@ (a function of this script), printing its cell, with the requests and bytes it
# caused on Garage.
traffic() {
    [ "$STORAGE" = garage ] || { "$@"; return; }
    local r0 b0 cell
    r0=$(requests); b0=$(lo_bytes)
    cell=$("$@")
    printf '%s, %d req, %s MB' "$cell" $(( $(requests) - r0 )) \
        "$(calc %.1f "($(lo_bytes) - $b0) / 1000000")"
}

# Runs chronofs with $@ (see time_rss in lib.sh).
measure() { time_rss "$C" "$@"; }

# Mounts, times until the root lists, reads a file, prints "seconds MiB" of the daemon.
measure_mount() {
    local extra=$1 start pid
    mkdir -p "$W/mnt"
    start=$(now)
    "$C" $extra -r "$REPO" mount -q "$W/mnt"
    ls "$W/mnt" >/dev/null
    local ready
    ready=$(elapsed "$start")
    pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
    cat "$W/mnt/latest$W/src/f1" >/dev/null 2>&1 || cat "$(find "$W/mnt" -name f1 | head -1)" >/dev/null
    local rss
    rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
    "$C" umount "$W/mnt"
    echo "$ready s, $rss MiB"
}

rows=("| blobs | command | cold | warm | full (--no-cache) |" "|---|---|---|---|---|")
for n in $SIZES; do
    rm -rf "$W"; mkdir -p "$W/src" "$W/cache"
    if [ "$STORAGE" = garage ]; then
        REPO=s3:$CHRONOFS_S3_ENDPOINT/chronofs-test/fleet-$n
    fi
    head -c 400000 /dev/urandom > "$W/src/f1"
    "$C" -r "$REPO" init --encryption none >/dev/null
    "$C" -r "$REPO" backup "$W/src" >/dev/null
    ./target/release/examples/synthetic-snapshots "$REPO" "$SNAPS"
    if [ "${GATHER:-}" = 1 ]; then
        sleep 3  # past the grace period below: the files are settled
        CHRONOFS_LOCK_STALE_SECS=2 "$C" -r "$REPO" prune -q
        [ "$STORAGE" = garage ] || echo "gathered: $(ls "$REPO/snapshots" | wc -l) files" >&2
    fi
    # After the prune: it would drop the synthetic packs, which are absent, as unused.
    ./target/release/examples/synthetic-index "$REPO" "$n" >/dev/null
    [ "$STORAGE" = garage ] || echo "$n blobs: index files $(du -sh "$REPO/index" | cut -f1)" >&2
    for cmd in $COMMANDS; do
        row="| $n | $cmd |"
        for mode in cold warm full; do
            if [[ " $MODES " != *" $mode "* ]]; then row="$row - |"; continue; fi
            extra=""
            [ "$mode" = full ] && extra=--no-cache
            [ "$mode" = cold ] && rm -rf "$XDG_CACHE_HOME"
            echo "more" >> "$W/src/f1"
            case $cmd in
                backup) r=$(traffic measure $extra -r "$REPO" backup "$W/src") ;;
                ls) r=$(traffic measure $extra -r "$REPO" ls latest) ;;
                restore) rm -rf "$W/out"; r=$(traffic measure $extra -r "$REPO" restore --target "$W/out" latest) ;;
                mount) r=$(traffic measure_mount "$extra") ;;
            esac
            row="$row $r |"
        done
        rows+=("$row")
        echo "$row" >&2
    done
    echo "local index on disk: $(du -sh "$XDG_CACHE_HOME"/chronofs/*/index | cut -f1)" >&2
done
printf '%s\n' "${rows[@]}" | tee "$OUT"

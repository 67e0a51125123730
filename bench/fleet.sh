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
#   sudo bash bench/fleet.sh                            # SIZES="1000000 10000000" SNAPS=1000
#   sudo SIZES=100000000 COMMANDS="backup mount" bash bench/fleet.sh   # the largest (~15 GB)
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
cargo build --release --locked --quiet --bin chronofs --example synthetic-index \
    --example synthetic-snapshots
C=$PWD/target/release/chronofs
W=$BENCH_DIR/fleet
export XDG_CACHE_HOME=$W/cache

# Runs chronofs with $@ (see time_rss in lib.sh).
measure() { time_rss "$C" "$@"; }

# Mounts, times until the root lists, reads a file, prints "seconds MiB" of the daemon.
measure_mount() {
    local extra=$1 start pid
    mkdir -p "$W/mnt"
    start=$(now)
    "$C" $extra -r "$W/repo" mount -q "$W/mnt"
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
    head -c 400000 /dev/urandom > "$W/src/f1"
    "$C" -r "$W/repo" init --encryption none >/dev/null
    "$C" -r "$W/repo" backup "$W/src" >/dev/null
    ./target/release/examples/synthetic-index "$W/repo" "$n" >/dev/null
    ./target/release/examples/synthetic-snapshots "$W/repo" "$SNAPS"
    echo "$n blobs: index files $(du -sh "$W/repo/index" | cut -f1)" >&2
    for cmd in $COMMANDS; do
        row="| $n | $cmd |"
        for mode in cold warm full; do
            if [[ " $MODES " != *" $mode "* ]]; then row="$row - |"; continue; fi
            extra=""
            [ "$mode" = full ] && extra=--no-cache
            [ "$mode" = cold ] && rm -rf "$XDG_CACHE_HOME"
            echo "more" >> "$W/src/f1"
            case $cmd in
                backup) r=$(measure $extra -r "$W/repo" backup "$W/src") ;;
                ls) r=$(measure $extra -r "$W/repo" ls latest) ;;
                restore) rm -rf "$W/out"; r=$(measure $extra -r "$W/repo" restore --target "$W/out" latest) ;;
                mount) r=$(measure_mount "$extra") ;;
            esac
            row="$row $r |"
        done
        rows+=("$row")
        echo "$row" >&2
    done
    echo "local index on disk: $(du -sh "$XDG_CACHE_HOME"/chronofs/*/index | cut -f1)" >&2
done
printf '%s\n' "${rows[@]}" | tee "$OUT"

#!/usr/bin/env bash
# Time travel at scale: the history commands and the mount's versions/ on a repository of
# 1,000 snapshots (bench/lib.sh's build_many: a small directory whose file `counter` changes
# in every snapshot, so it has 1,000 versions).
#
#   sudo bash bench/history.sh        # needs root (drop_caches)
#
# Each figure is the median of 3 runs with a cold page cache (and, for the mount, a fresh
# mount): `chronofs versions` of the file, `chronofs diff` of the first and last snapshot,
# `chronofs find`, and through the mount `ls versions/DIR/` (the union of names) and
# `ls versions/DIR/counter/` (1,000 entries), plus reading the oldest version.
# Output: a table on stdout and in $BENCH_DIR/results-history.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-history.txt
MNT=$BENCH_DIR/mnt-history
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_many
mkdir -p "$MNT"
SMALL=$BENCH_DIR/small
FIRST=$("$CHRONOFS" -r "$MANY" snapshots --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["name"])')

median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
declare -A T
run() { # name, command...
    local name=$1 t0 times=()
    shift
    for _ in 1 2 3; do
        drop
        t0=$(now)
        "$@" > /dev/null
        times+=("$(elapsed "$t0")")
    done
    T[$name]=$(median "${times[@]}")
    echo "$name: ${T[$name]}s (${times[*]})" >&2
}
mounted() { # name, command... (run on a fresh mount)
    local name=$1 t0 times=()
    shift
    for _ in 1 2 3; do
        "$CHRONOFS" -r "$MANY" mount -q "$MNT"
        drop
        t0=$(now)
        "$@" > /dev/null
        times+=("$(elapsed "$t0")")
        "$CHRONOFS" umount "$MNT"
    done
    T[$name]=$(median "${times[@]}")
    echo "$name: ${T[$name]}s (${times[*]})" >&2
}

run versions "$CHRONOFS" -r "$MANY" versions "$SMALL/counter"
run diff "$CHRONOFS" -r "$MANY" diff "$FIRST" latest
run find "$CHRONOFS" -r "$MANY" find counter
mounted ls-dir ls -l "$MNT/versions$SMALL/"
mounted ls-versions ls -l "$MNT/versions$SMALL/counter/"
COUNT=$("$CHRONOFS" -r "$MANY" mount -q "$MNT" && ls "$MNT/versions$SMALL/counter/" | wc -l; "$CHRONOFS" umount "$MNT")
mounted cat-oldest sh -c "cat \"$MNT/versions$SMALL/counter/\$(ls \"$MNT/versions$SMALL/counter/\" | head -1)\""

{
    echo "# chronofs time-travel benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(uname -r); $("$CHRONOFS" --version)"
    echo "repository: 1,000 snapshots of a small directory; counter has $COUNT versions"
    echo "median of 3, cold page cache (mount figures on a fresh mount each time)"
    echo
    printf '%-40s %10s\n' what seconds
    printf '%-40s %9ss\n' "chronofs versions (1,000 versions)" "${T[versions]}" \
        "chronofs diff first latest" "${T[diff]}" \
        "chronofs find counter" "${T[find]}" \
        "ls -l versions/DIR/ (mount)" "${T[ls-dir]}" \
        "ls -l versions/DIR/counter/ (mount)" "${T[ls-versions]}" \
        "cat of the oldest version (mount)" "${T[cat-oldest]}"
} | tee "$OUT"

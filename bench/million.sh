#!/usr/bin/env bash
# The mount at scale: `ls -lR` of a snapshot of 1,000,000 small files in 10,000 directories,
# through the mount and on the source, and the mount process's peak memory.
#
#   sudo bash bench/million.sh        # needs root (drop_caches), ~6 GB free in $BENCH_DIR
#
# Data (built once): $BENCH_DIR/million/dNNNN/fNN, 10,000 directories of 100 files of a few
# bytes each. One chronofs repository of one snapshot of it (built once).
# Measured, best of 2, each with a cold page cache: `ls -lR` of the source; `ls -lR` through a
# fresh mount; the mount process's peak RSS (VmHWM) after it.
# Output: a table on stdout and in $BENCH_DIR/results-million.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-million.txt
SRC=$BENCH_DIR/million
REPO=$BENCH_DIR/chronofs-million
MNT=$BENCH_DIR/mnt-million
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs

if [ ! -f "$SRC/.complete" ]; then
    echo "building 1,000,000 files in $SRC" >&2
    rm -rf "$SRC"
    python3 - "$SRC" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(10_000):
    p = os.path.join(root, f"d{d:04d}")
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, f"f{f:02d}"), "w") as fh:
            fh.write(f"{d}/{f}\n")
PY
    touch "$SRC/.complete"
fi
if [ ! -f "$REPO/.complete-contents" ]; then
    rm -rf "$REPO"
    "$CHRONOFS" -r "$REPO" init -q
    t0=$(now)
    "$CHRONOFS" -r "$REPO" backup -q "$SRC"
    echo "backup of 1,000,000 files: $(elapsed "$t0")s" >&2
    touch "$REPO/.complete-contents"
fi
ENTRIES=$(find "$SRC" | wc -l)
mkdir -p "$MNT"

best() { printf '%s\n' "$@" | sort -n | head -1; }
local_t=(); mount_t=(); rss=()
for _ in 1 2; do
    drop
    t0=$(now)
    ls -lR "$SRC" > /dev/null
    local_t+=("$(elapsed "$t0")")

    "$CHRONOFS" -r "$REPO" mount -q "$MNT"
    pid=$(pgrep -f -- "mount $MNT --daemon-child" | head -1)
    drop
    t0=$(now)
    ls -lR "$MNT/latest$SRC" > /dev/null
    mount_t+=("$(elapsed "$t0")")
    rss+=("$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$pid/status")")
    "$CHRONOFS" umount "$MNT"
    echo "local ${local_t[-1]}s, mount ${mount_t[-1]}s, peak RSS ${rss[-1]} MiB" >&2
done
L=$(best "${local_t[@]}"); M=$(best "${mount_t[@]}")
{
    echo "# chronofs mount at scale, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $("$CHRONOFS" --version)"
    echo "data: $ENTRIES entries (10,000 directories of 100 small files)"
    echo
    echo "ls -lR, cold, best of 2: local ${L}s, through the mount ${M}s ($(calc %.2f "$M / $L")x local)"
    echo "mount process peak RSS: $(printf '%s MiB ' "${rss[@]}")"
} | tee "$OUT"

#!/usr/bin/env bash
# What an idle mount costs as snapshot files pile up (issue 25): the mount daemon's CPU time
# over IDLE seconds in which nobody touches the mount, for repositories of COUNTS snapshot files
# (synthetic copies of one snapshot record, bench/synthetic_snapshots.rs), on local disk.
#
#   sudo bash bench/idle_mount.sh                   # COUNTS="1000 10000 100000" IDLE=30
#   sudo BEFORE=/path/to/older/chronofs bash bench/idle_mount.sh   # the same for another build
#
# Output: a table on stdout and in $BENCH_DIR/results-idle-mount.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-idle-mount.txt
COUNTS=${COUNTS:-1000 10000 100000}
IDLE=${IDLE:-30}
cargo build --release --locked --quiet --bin chronofs --example synthetic-snapshots
C=$PWD/target/release/chronofs
GEN=$PWD/target/release/examples/synthetic-snapshots
W=$BENCH_DIR/idle-mount
ticks=$(getconf CLK_TCK)

# CPU seconds (user + system) of process $1 so far.
cpu() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

# Mounts $2 with binary $1, waits IDLE seconds, prints the daemon's CPU seconds in them.
idle_cpu() {
    local bin=$1 repo=$2
    mkdir -p "$W/mnt"
    "$bin" -r "$repo" mount -q "$W/mnt"
    local pid
    pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
    sleep 3 # past the start
    local before
    before=$(cpu "$pid")
    sleep "$IDLE"
    calc %.2f "$(cpu "$pid") - $before"
    "$bin" umount "$W/mnt"
}

rows=("| snapshot files | daemon CPU in ${IDLE} s idle (this build) | (BEFORE) |" "|---|---|---|")
for n in $COUNTS; do
    rm -rf "$W"; mkdir -p "$W/src"
    echo data > "$W/src/file"
    "$C" -r "$W/repo" init -q --encryption none
    "$C" -r "$W/repo" backup -q --no-progress "$W/src"
    "$GEN" "$W/repo" $((n - 1))
    now_cpu=$(idle_cpu "$C" "$W/repo")
    before_cpu=-
    [ -z "${BEFORE:-}" ] || before_cpu=$(idle_cpu "$BEFORE" "$W/repo")
    rows+=("| $n | ${now_cpu} s | ${before_cpu} s |")
done
printf '%s\n' "${rows[@]}" | tee "$OUT"

#!/usr/bin/env bash
# What a client pays as the number of snapshot files grows (issue 25): a repository of one
# real snapshot plus COUNT synthetic ones spread over HOSTS host names
# (bench/synthetic_snapshots.rs: real snapshot files sharing one tree), plaintext, on local
# disk. For each command, the wall time and peak RSS:
#   cold   no cache directory yet: every snapshot file is read (and the catalog written)
#   warm   the snapshot catalog is up to date but for one new snapshot file
#   same   nothing changed since this client's last command, a second or more ago: the
#          catalog's saved listing stands for the directory (docs/FORMAT.md)
# The mount's rows: the time until `latest` can be stat'ed, and then `ls` of the root.
#
# With GATHER=1, a prune first gathers the snapshot files into snapshot sets (docs/FORMAT.md,
# "Snapshot sets"; its time and peak RSS are printed), so that `snapshots/` holds a few dozen
# sets instead of COUNT files: what a repository that is pruned looks like.
#
#   sudo bash bench/snapshot_scale.sh                  # COUNTS="100000 1000000" HOSTS=1000
#   sudo REUSE=1 COUNTS=1000000 bash bench/snapshot_scale.sh   # measure again, same repository
#   sudo GATHER=1 COUNTS=1000000 bash bench/snapshot_scale.sh  # gathered into sets first
#
# Output: a table on stdout and in $BENCH_DIR/results-snapshot-scale.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-snapshot-scale.txt
COUNTS=${COUNTS:-100000 1000000}
HOSTS=${HOSTS:-1000}
cargo build --release --locked --quiet --bin chronofs --example synthetic-snapshots
C=$PWD/target/release/chronofs
W=$BENCH_DIR/snapshot-scale
export XDG_CACHE_HOME=$W/cache

# Runs chronofs on the repository with $@ (see time_rss in lib.sh).
measure() { time_rss "$C" -r "$W/repo" "$@"; }

# Mounts; prints "ready s / ls s, MiB" (until latest stats; ls of the root; daemon's peak RSS).
measure_mount() {
    local start ready pid rss list
    mkdir -p "$W/mnt"
    start=$(now)
    "$C" -r "$W/repo" mount -q "$W/mnt"
    stat "$W/mnt/latest" >/dev/null
    ready=$(elapsed "$start")
    start=$(now)
    ls "$W/mnt" >/dev/null
    list=$(elapsed "$start")
    pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
    rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
    "$C" umount "$W/mnt"
    echo "$ready s / $list s, $rss MiB"
}

rows=("| snapshot files | command | cold | warm | same |" "|---|---|---|---|---|")
for n in $COUNTS; do
    if [ "${REUSE:-}" = 1 ] && [ -d "$W/repo/snapshots" ]; then
        # Measure again on the repository the last run made (a few more snapshot files).
        echo "reusing $W/repo" >&2
    else
        rm -rf "$W"; mkdir -p "$W/src"
        head -c 400000 /dev/urandom > "$W/src/f1"
        "$C" -r "$W/repo" init --encryption none >/dev/null
        "$C" --no-cache -r "$W/repo" backup --host host0000 "$W/src" >/dev/null
        ./target/release/examples/synthetic-snapshots "$W/repo" "$n" "$HOSTS"
    fi
    if [ "${GATHER:-}" = 1 ]; then
        # Snapshot files settle after a lock's grace period (2 s here) by the storage's clock.
        sleep 3
        r=$(time_rss env CHRONOFS_GATHER_AT=1000 CHRONOFS_LOCK_STALE_SECS=2 "$C" --no-cache -r "$W/repo" prune -q)
        echo "prune gathering $(ls "$W/repo/snapshots" | wc -l) files now: $r" >&2
        rows+=("| $n | \`prune\` (gathers into $(ls "$W/repo/snapshots" | wc -l) files) | $r | | |")
    fi
    sync
    for cmd in "snapshots --host host0001" status "ls latest" backup mount; do
        row="| $n | \`$cmd\` |"
        for mode in cold warm same; do
            case $mode in
                cold) rm -rf "$XDG_CACHE_HOME" ;;
                # One snapshot file the catalog has not seen.
                warm) "$C" --no-cache -r "$W/repo" backup --host host0000 "$W/src" >/dev/null ;;
                # Still for a second, then listed once (which saves the listing).
                same) sleep 1.2; "$C" -r "$W/repo" snapshots --host none >/dev/null ;;
            esac
            case $cmd in
                backup) echo "more" >> "$W/src/f1"; r=$(measure backup --host host0000 "$W/src") ;;
                mount) r=$(measure_mount) ;;
                *) read -ra words <<< "$cmd"; r=$(measure "${words[@]}") ;;
            esac
            row="$row $r |"
        done
        rows+=("$row")
        echo "$row" >&2
    done
done
printf '%s\n' "${rows[@]}" | tee "$OUT"

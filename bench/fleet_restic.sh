#!/usr/bin/env bash
# A small host's cost in a repository that others filled, chronofs against restic (issue 25):
# one "fleet" host backs up FILES small files of distinct content (one blob each: FILES blobs,
# as restic's index cannot be synthesized without its encryption, the blobs are real), then a
# "small" host backs up its own 400 KiB directory into the same repository and works with it.
# Both tools encrypted, repositories on local disk, each with its own local cache.
#
#   sudo bash bench/fleet_restic.sh          # FILES=1000000 (about 10 minutes for restic)
#
# Rows, for each tool: the fleet's backup (for scale), then the small host's
#   backup cold   its first backup with no local cache (a new host)
#   backup warm   a second backup (one byte changed), cache up to date
#   ls            of its latest snapshot, warm
#   restore       of its latest snapshot, warm
#   mount         warm; until the mount lists its snapshots, and the daemon's peak RSS
# Each: wall time and peak RSS (GNU time). Output: a table on stdout and in
# $BENCH_DIR/results-fleet-restic.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-fleet-restic.txt
FILES=${FILES:-1000000}
W=$BENCH_DIR/fleet-restic
install_peers
cargo build --release --locked --quiet --bin chronofs
C=$PWD/target/release/chronofs

rm -rf "$W"; mkdir -p "$W/small" "$W/mnt"
echo "writing $FILES files of distinct content" >&2
python3 - "$W/fleet" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:05}")
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, f"f{i % 1000:03}"), "wb") as f:
        f.write(os.urandom(48))
EOF
head -c 400000 /dev/urandom > "$W/small/f1"

export XDG_CACHE_HOME=$W/chronofs-cache
RESTIC_CACHE=$W/restic-cache
export RESTIC_REPOSITORY=$W/restic
"$C" -r "$W/chronofs" init -q
restic init -q >/dev/null

# Waits until $1 lists something, prints the seconds since $2.
ready() {
    for _ in $(seq 1 6000); do
        [ -n "$(ls -A "$1" 2>/dev/null)" ] && { elapsed "$2"; return; }
        sleep 0.01
    done
    echo "mount at $1 did not come up" >&2; return 1
}

rows=("| command | chronofs | restic 0.14 |" "|---|---|---|")
declare -A R
for tool in chronofs restic; do
    case $tool in
    chronofs)
        R[fleet]=$(time_rss "$C" -r "$W/chronofs" backup -q --host fleet "$W/fleet")
        rm -rf "$XDG_CACHE_HOME"
        R[cold]=$(time_rss "$C" -r "$W/chronofs" backup -q --host small "$W/small")
        echo more >> "$W/small/f1"
        R[warm]=$(time_rss "$C" -r "$W/chronofs" backup -q --host small "$W/small")
        R[ls]=$(time_rss "$C" -r "$W/chronofs" ls latest)
        rm -rf "$W/out"
        R[restore]=$(time_rss "$C" -r "$W/chronofs" restore -q latest --target "$W/out")
        start=$(now)
        "$C" -r "$W/chronofs" mount -q "$W/mnt"
        t=$(ready "$W/mnt" "$start")
        pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
        cat "$W/mnt/latest$W/small/f1" > /dev/null
        rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
        "$C" umount "$W/mnt"
        ;;
    restic)
        R[fleet]=$(time_rss restic backup -q --cache-dir "$RESTIC_CACHE" --host fleet "$W/fleet")
        rm -rf "$RESTIC_CACHE"
        R[cold]=$(time_rss restic backup -q --cache-dir "$RESTIC_CACHE" --host small "$W/small")
        echo more >> "$W/small/f1"
        R[warm]=$(time_rss restic backup -q --cache-dir "$RESTIC_CACHE" --host small "$W/small")
        R[ls]=$(time_rss restic ls --cache-dir "$RESTIC_CACHE" latest)
        rm -rf "$W/out"
        R[restore]=$(time_rss restic restore -q --cache-dir "$RESTIC_CACHE" latest --target "$W/out")
        start=$(now)
        restic mount --cache-dir "$RESTIC_CACHE" "$W/mnt" > /dev/null 2>&1 &
        pid=$!
        t=$(ready "$W/mnt/snapshots" "$start")
        cat "$(find "$W/mnt/snapshots/latest/" -name f1 | head -1)" > /dev/null
        rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
        umount "$W/mnt"; wait "$pid" || true
        ;;
    esac
    R[mount]="$t s, $rss MiB"
    cmp -s "$W/small/f1" "$W/out$W/small/f1" || { echo "$tool restored f1 wrong" >&2; exit 1; }
    for k in fleet cold warm ls restore mount; do R[$tool,$k]=${R[$k]}; done
    echo "$tool: $(du -sh "$W/$tool" | cut -f1) repository" >&2
done
declare -A labels=([fleet]="fleet host's backup of $FILES files" [cold]="small host: backup, cold cache"
    [warm]="small host: backup, warm" [ls]="small host: ls latest" [restore]="small host: restore"
    [mount]="small host: mount ready, daemon RSS")
for k in fleet cold warm ls restore mount; do
    rows+=("| ${labels[$k]} | ${R[chronofs,$k]} | ${R[restic,$k]} |")
done
printf '%s\n' "${rows[@]}" | tee "$OUT"

#!/usr/bin/env bash
# A mount that lives through 1,000 snapshot additions (issue 23): the mount daemon's resident
# memory every 100 snapshots, while a reader lists the root and reads the newest snapshot after
# each one. One command:
#
#   sudo bash bench/mount_months.sh
#
# A plaintext repository (no key derivation per backup), a small directory whose counter file
# changes every time. Output: a table on stdout and in $BENCH_DIR/results-mount-months.txt.
# READ=0: the reader only lists the root (what the records cost, without the caches that
# reading each new snapshot fills). KEEP=K: a retention policy runs beside, as it would for a
# mount that lives for months: `forget --keep-last K` after each backup, with `--prune` every
# 100th time, so the mount shows at most K snapshots while N arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-mount-months.txt
N=${N:-1000}
READ=${READ:-1}
KEEP=${KEEP:-}
W=$BENCH_DIR/mount-months
cargo build --release --locked --quiet
C=$PWD/target/release/chronofs
rm -rf "$W"; mkdir -p "$W/src" "$W/mnt"
"$C" -r "$W/repo" init -q --encryption none
echo 0 > "$W/src/counter"
"$C" -r "$W/repo" backup -q --no-progress "$W/src"
"$C" -r "$W/repo" mount -q "$W/mnt"
pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$pid/status"; }
rows=("| snapshots | RSS (KiB) | peak RSS (KiB) | shown by the mount |" "|---|---|---|---|")
rows+=("| 1 | $(rss) | $(hwm) | $(ls "$W/mnt" | grep -c '^20') |")
for i in $(seq 2 "$N"); do
    echo "$i" > "$W/src/counter"
    "$C" -r "$W/repo" backup -q --no-progress "$W/src"
    if [ -n "$KEEP" ]; then
        prune=(); [ $((i % 100)) -ne 0 ] || prune=(--prune)
        "$C" -r "$W/repo" forget -q --keep-last "$KEEP" "${prune[@]}"
    fi
    ls "$W/mnt" >/dev/null
    [ "$READ" = 0 ] || cat "$W/mnt/latest$W/src/counter" >/dev/null 2>&1 || true
    if [ $((i % 100)) -eq 0 ]; then
        sleep 1
        rows+=("| $i | $(rss) | $(hwm) | $(ls "$W/mnt" | grep -c '^20') |")
    fi
done
"$C" umount "$W/mnt"
# The same repository mounted afresh, after the same walk: what showing N snapshots costs
# without having lived through their additions.
"$C" -r "$W/repo" mount -q "$W/mnt"
pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
ls "$W/mnt" >/dev/null
[ "$READ" = 0 ] || for d in "$W"/mnt/20*; do cat "$d$W/src/counter" >/dev/null 2>&1 || true; done
sleep 1
what="fresh mount"; [ "$READ" = 0 ] || what="fresh mount, every snapshot read"
fresh="| $N, $what | $(rss) | $(hwm) | $(ls "$W/mnt" | grep -c '^20') |"
"$C" umount "$W/mnt"
{
    echo "mount memory over $N snapshot additions, READ=$READ KEEP=${KEEP:-all} ($(date -u +%F), $(nproc) cores, release build)"
    printf '%s\n' "${rows[@]}" "$fresh"
} | tee "$OUT"

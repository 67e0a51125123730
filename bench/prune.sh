#!/usr/bin/env bash
# Retention benchmark: forget + prune, chronofs vs restic, on the same snapshots, one command:
#
#   sudo bash bench/prune.sh        # needs root (drop_caches), ~6 GB free in $BENCH_DIR
#
# Data: data/man of bench/lib.sh (~21k small files), a 256 MiB image and a churn directory.
# GENERATIONS (52) daily snapshots go into both repositories (backup --time, one day apart).
# Between two, the tree changes: bench/mutate.py SRC GEN (another 1% of the files each time is
# appended to, rewritten, deleted or joined by a new file; 4 MiB inserted into the image and 64
# scattered overwrites), and a new 16 MiB file of random data is added while the one from three
# generations before is deleted.
# Then both tools forget with the same policy (--keep-daily 7 --keep-weekly 4 --keep-monthly 3,
# the same calendar buckets since everything is in UTC) and prune with --max-unused 10%; the
# prune is timed with a cold page cache, with its peak RSS (GNU time's %M). Repository sizes
# before and after, and a check of each pruned repository (not timed), complete the report.
# Output: a table on stdout and in $BENCH_DIR/results-prune.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-prune.txt
GENERATIONS=${GENERATIONS:-52}
WORK=$BENCH_DIR/prune-bench
SRC=$WORK/src

install_peers
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_data

rm -rf "$WORK"
mkdir -p "$WORK/src/churn"
cp -a "$DATA/man" "$SRC/man"
head -c 268435456 "$DATA/big.img" > "$SRC/man/big.img"   # mutate.py changes it too
export RESTIC_REPOSITORY=$WORK/restic-repo
CREPO=$WORK/chronofs-repo
restic init -q
"$CHRONOFS" -r "$CREPO" init -q

for g in $(seq 1 "$GENERATIONS"); do
    python3 bench/mutate.py "$SRC/man" "$g" 2>/dev/null
    python3 - "$SRC/churn" "$g" <<'PY'
import os, random, sys
d, g = sys.argv[1], int(sys.argv[2])
with open(os.path.join(d, f"g{g}.bin"), "wb") as f:
    f.write(random.Random(g).randbytes(16 << 20))
old = os.path.join(d, f"g{g - 3}.bin")
if os.path.exists(old):
    os.remove(old)
PY
    t=$(date -u -d "2026-01-01 12:00:00 UTC + $((g - 1)) days" '+%Y-%m-%d %H:%M:%S')
    "$CHRONOFS" -r "$CREPO" backup -q --no-progress --time "${t/ /T}Z" "$SRC"
    restic backup -q --time "$t" "$SRC"
    [ $((g % 10)) -eq 0 ] && echo "generation $g of $GENERATIONS" >&2
done

POLICY=(--keep-daily 7 --keep-weekly 4 --keep-monthly 3)
declare -A T RSS BEFORE AFTER SNAPS
BEFORE[chronofs]=$(du -sb "$CREPO" | cut -f1)
BEFORE[restic]=$(du -sb "$RESTIC_REPOSITORY" | cut -f1)
TZ=UTC "$CHRONOFS" -r "$CREPO" forget -q "${POLICY[@]}"
TZ=UTC restic forget -q "${POLICY[@]}" >/dev/null
SNAPS[chronofs]=$("$CHRONOFS" -r "$CREPO" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
SNAPS[restic]=$(restic snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

for tool in chronofs restic; do
    drop
    start=$(now)
    case $tool in
    chronofs) /usr/bin/time -f %M -o "$WORK/rss" "$CHRONOFS" -r "$CREPO" prune --max-unused 10% --json > "$WORK/chronofs-prune.json" ;;
    restic) /usr/bin/time -f %M -o "$WORK/rss" restic prune --max-unused 10% > "$WORK/restic-prune.log" ;;
    esac
    T[$tool]=$(elapsed "$start")
    RSS[$tool]=$(( $(tail -1 "$WORK/rss") / 1024 ))
    echo "$tool prune: ${T[$tool]}s, peak RSS ${RSS[$tool]} MiB" >&2
done
AFTER[chronofs]=$(du -sb "$CREPO" | cut -f1)
AFTER[restic]=$(du -sb "$RESTIC_REPOSITORY" | cut -f1)
"$CHRONOFS" -r "$CREPO" check --read-data -q
restic check -q >/dev/null

mib() { calc %.1f "$1 / 1048576"; }
{
    echo "# prune benchmark, $(date -u +%Y-%m-%d), $(nproc) cores"
    echo "# $GENERATIONS daily snapshots of $(du -sh "$SRC" | cut -f1) (man pages + churn), forget ${POLICY[*]}, prune --max-unused 10%"
    printf "%-9s %10s %10s %10s %12s %12s\n" tool snapshots prune_s rss_MiB before_MiB after_MiB
    for tool in chronofs restic; do
        printf "%-9s %10s %10s %10s %12s %12s\n" "$tool" "$GENERATIONS->${SNAPS[$tool]}" "${T[$tool]}" \
            "${RSS[$tool]}" "$(mib "${BEFORE[$tool]}")" "$(mib "${AFTER[$tool]}")"
    done
    echo "# time ratio restic/chronofs: $(calc %.2f "${T[restic]} / ${T[chronofs]}")"
    echo "# chronofs report: $(cat "$WORK/chronofs-prune.json")"
} | tee "$OUT"

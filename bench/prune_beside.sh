#!/usr/bin/env bash
# A backup with a prune running beside it, against the same backup alone; and restic, whose
# prune takes an exclusive lock, on the same sequence. One command:
#
#   sudo bash bench/prune_beside.sh        # needs root (drop_caches), ~3 GB free in $BENCH_DIR
#
# Data: data/man of bench/lib.sh (~21k small files) and a 256 MiB image, GENERATIONS (12)
# generations changed by bench/mutate.py, each backed up; then all but the last three are
# forgotten, so that a prune has work (deleting and repacking). The measured backup is the
# next generation, warm page cache, best of RUNS (3):
#   alone:  the backup by itself;
#   beside: the same backup, started 0.2 s after `prune --max-unused 0` on a fresh copy of the
#           repository (so the prune runs for the whole backup or most of it).
# For restic the "beside" backup meets the prune's exclusive lock: restic 0.14 has no
# --retry-lock, so the script reports whether it failed, and the time of prune then backup.
# Output: a table on stdout and in $BENCH_DIR/results-prune-beside.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-prune-beside.txt
GENERATIONS=${GENERATIONS:-12}
RUNS=${RUNS:-3}
WORK=$BENCH_DIR/prune-beside
SRC=$WORK/src

install_peers
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_data

rm -rf "$WORK"
mkdir -p "$WORK"
cp -a "$DATA/man" "$SRC"
head -c 268435456 "$DATA/big.img" > "$SRC/big.img"
export RESTIC_REPOSITORY=$WORK/restic-repo
CREPO=$WORK/chronofs-repo
restic init -q
"$CHRONOFS" -r "$CREPO" init -q
for g in $(seq 1 "$GENERATIONS"); do
    python3 bench/mutate.py "$SRC" "$g" 2>/dev/null
    "$CHRONOFS" -r "$CREPO" backup -q --no-progress "$SRC"
    restic backup -q "$SRC"
done
"$CHRONOFS" -r "$CREPO" forget -q --keep-last 3
restic forget -q --keep-last 3
python3 bench/mutate.py "$SRC" $((GENERATIONS + 1)) 2>/dev/null
cp -a "$CREPO" "$WORK/chronofs-pristine"
cp -a "$RESTIC_REPOSITORY" "$WORK/restic-pristine"

fresh() { rm -rf "$CREPO" "$RESTIC_REPOSITORY"; cp -a "$WORK/chronofs-pristine" "$CREPO"; cp -a "$WORK/restic-pristine" "$RESTIC_REPOSITORY"; }
best() { sort -n | head -1; }

alone=() beside=() prune_t=() waited=()
for r in $(seq 1 "$RUNS"); do
    fresh
    t=$(now); "$CHRONOFS" -r "$CREPO" backup -q --no-progress "$SRC"; alone+=("$(elapsed "$t")")
    fresh
    t0=$(now)
    "$CHRONOFS" -r "$CREPO" prune -q --max-unused 0 & ppid=$!
    sleep 0.2
    t=$(now); "$CHRONOFS" -r "$CREPO" backup -q --no-progress "$SRC"; beside+=("$(elapsed "$t")")
    still=$(kill -0 "$ppid" 2>/dev/null && echo yes || echo no)
    wait "$ppid"; prune_t+=("$(elapsed "$t0")")
    waited+=("$still")
    "$CHRONOFS" -r "$CREPO" check -q
done
# restic: the backup meets the prune's lock.
fresh
restic prune -q --max-unused 0 >/dev/null 2>&1 & rpid=$!
sleep 0.2
t=$(now)
if restic backup -q "$SRC" >/dev/null 2>"$WORK/restic-beside.err"; then restic_beside="ran ($(elapsed "$t") s)"; else restic_beside="refused: $(grep -m1 -o 'repository is already locked[^:]*' "$WORK/restic-beside.err" || head -c 80 "$WORK/restic-beside.err")"; fi
wait "$rpid" || true
fresh
t=$(now); restic backup -q "$SRC"; restic_alone=$(elapsed "$t")

a=$(printf '%s\n' "${alone[@]}" | best)
b=$(printf '%s\n' "${beside[@]}" | best)
{
    echo "prune beside a backup ($(date -u +%F), $(nproc) cores, ${GENERATIONS} generations of data/man + 256 MiB image, 3 kept)"
    echo "| | time (best of $RUNS) |"
    echo "|---|---|"
    echo "| chronofs backup alone | ${a} s |"
    echo "| chronofs backup with prune --max-unused 0 beside it | ${b} s ($(calc %.2f "$b / $a")x) |"
    echo "| chronofs prune during those runs | $(printf '%s ' "${prune_t[@]}")s (still running when the backup ended: ${waited[*]}) |"
    echo "| restic backup alone | ${restic_alone} s |"
    echo "| restic backup started during restic prune | ${restic_beside} |"
} | tee "$OUT"

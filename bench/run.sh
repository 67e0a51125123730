#!/usr/bin/env bash
# Backup benchmark: chronofs vs restic vs borg, same data, same run, one command:
#
#   sudo bash bench/run.sh          # needs root (drop_caches), ~15 GB free in $BENCH_DIR
#
# Data: the data set of bench/lib.sh (a ~2 GiB tree of ~84k entries copied from /usr, plus a
# 1 GiB file standing in for a VM image), copied to $BENCH_DIR/src so it can be changed.
# Phases, each timed with a cold page cache (echo 3 > drop_caches first), for each tool:
#   first      first backup into an empty repository
#   unchanged  the same tree again
#   changed    after bench/mutate.py: ~1% of files appended to, rewritten, added or
#              deleted; 4 MiB inserted in the middle of the big file and 64 scattered 4 KiB
#              overwrites in it
#   restore    the latest snapshot into an empty directory (next to `cp -a` of the source)
# Also: bytes added by the changed backup (as each tool reports it), repository size, and each
# run's peak RSS (GNU time's %M). borg runs with --encryption none; restic always encrypts;
# chronofs runs twice, encrypted (the default) and as chronofs-plain (`init --encryption
# none`), and the table ends with what encryption costs it.
# Output: a table on stdout and in $BENCH_DIR/results-backup.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-backup.txt
SRC=$BENCH_DIR/src
WORK=$BENCH_DIR/backup-bench
TOOLS=(chronofs chronofs-plain restic borg)

install_peers
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_data

rm -rf "$WORK" "$SRC"
mkdir -p "$WORK"
cp -a "$DATA" "$SRC"
export RESTIC_REPOSITORY=$WORK/restic-repo BORG_REPO=$WORK/borg-repo
CREPO=$WORK/chronofs-repo
CREPO_PLAIN=$WORK/chronofs-plain-repo
# The repository of a chronofs variant.
crepo() { if [ "$1" = chronofs ]; then echo "$CREPO"; else echo "$CREPO_PLAIN"; fi; }

declare -A T RSS ADDED
BORG_N=0

# Runs one tool's phase; sets T[tool,phase], RSS[tool,phase] and, for backups, ADDED[tool,phase].
phase() {
    local tool=$1 ph=$2 log=$WORK/$1-$2.log
    # The previous tool's restore is deleted before the caches are dropped (drop syncs): a
    # deletion of 3 GB in 84k files left to the kernel went on during the next timed restore,
    # which made every restore after the first about twice as slow (chronofs ran first).
    case $ph in
    restore) rm -rf "$WORK/restore"; mkdir -p "$WORK/restore" ;;
    esac
    drop
    local t0; t0=$(now)
    case $tool,$ph in
    chronofs*,restore) /usr/bin/time -f %M -o "$WORK/rss" "$CHRONOFS" -r "$(crepo "$tool")" restore latest --target "$WORK/restore" -q > "$log" ;;
    chronofs*,*) /usr/bin/time -f %M -o "$WORK/rss" "$CHRONOFS" -r "$(crepo "$tool")" backup --json --no-progress "$SRC" > "$log" ;;
    restic,restore) /usr/bin/time -f %M -o "$WORK/rss" restic restore latest --target "$WORK/restore" -q > "$log" ;;
    restic,*) /usr/bin/time -f %M -o "$WORK/rss" restic backup --json "$SRC" > "$log" ;;
    borg,restore) (cd "$WORK/restore" && /usr/bin/time -f %M -o "$WORK/rss" borg extract "::b$BORG_N") > "$log" ;;
    borg,*) BORG_N=$((BORG_N + 1)); /usr/bin/time -f %M -o "$WORK/rss" borg create --json "::b$BORG_N" "$SRC" > "$log" ;;
    esac
    T[$tool,$ph]=$(elapsed "$t0")
    RSS[$tool,$ph]=$(( $(tail -1 "$WORK/rss") / 1024 ))
    case $tool in
    chronofs*) ADDED[$tool,$ph]=$(tail -1 "$log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["bytes_added"])' 2>/dev/null || echo 0) ;;
    restic) ADDED[$tool,$ph]=$(grep '"message_type":"summary"' "$log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_added"])' 2>/dev/null || echo 0) ;;
    borg) ADDED[$tool,$ph]=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["archive"]["stats"]["deduplicated_size"])' < "$log" 2>/dev/null || echo 0) ;;
    esac
    echo "$tool $ph: ${T[$tool,$ph]}s, peak RSS ${RSS[$tool,$ph]} MiB" >&2
}

"$CHRONOFS" -r "$CREPO" init -q
"$CHRONOFS" -r "$CREPO_PLAIN" init -q --encryption none
restic init -q
borg init --encryption none

for tool in "${TOOLS[@]}"; do phase "$tool" first; phase "$tool" unchanged; done
python3 bench/mutate.py "$SRC"
# What each tool reports as added need not be what it stores (restic 0.14 reports data
# before compression): the repository's growth on disk is measured too.
repo_of() { case $1 in chronofs*) crepo "$1" ;; restic) echo "$RESTIC_REPOSITORY" ;; borg) echo "$BORG_REPO" ;; esac; }
declare -A GROWTH
for tool in "${TOOLS[@]}"; do
    before=$(du -sb "$(repo_of "$tool")" | cut -f1)
    phase "$tool" changed
    GROWTH[$tool]=$(( $(du -sb "$(repo_of "$tool")" | cut -f1) - before ))
done
for tool in "${TOOLS[@]}"; do phase "$tool" restore; done

drop
rm -rf "$WORK/restore"
t0=$(now); cp -a "$SRC" "$WORK/restore"; T[local,restore]=$(elapsed "$t0")
rm -rf "$WORK/restore"
drop
t0=$(now); ls -lR "$SRC" > /dev/null; T[local,lsR]=$(elapsed "$t0")

declare -A SIZE
SIZE[chronofs]=$(du -sb "$CREPO" | cut -f1)
SIZE[chronofs-plain]=$(du -sb "$CREPO_PLAIN" | cut -f1)
SIZE[restic]=$(du -sb "$RESTIC_REPOSITORY" | cut -f1)
SIZE[borg]=$(du -sb "$BORG_REPO" | cut -f1)

mib() { calc %.1f "$1 / 1048576"; }
# ratio of the best peer's value to chronofs's (higher is better for chronofs)
ratio() { # phase key
    local best; best=$(printf '%s\n' "${T[restic,$1]}" "${T[borg,$1]}" | sort -g | head -1)
    calc %.2f "$best / ${T[chronofs,$1]}"
}

{
    echo "# chronofs backup benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
    echo "versions: $("$CHRONOFS" --version), $(restic version | cut -d' ' -f1-2), $(borg --version)"
    echo "data: $(find "$DATA" | wc -l) entries, $(du -sh --apparent-size "$DATA" | cut -f1) (tree + man + 1 GiB big.img)"
    echo
    printf '%-10s %10s %10s %10s %14s\n' phase chronofs restic borg "vs best peer"
    for ph in first unchanged changed restore; do
        printf '%-10s %9ss %9ss %9ss %13sx\n' "$ph" "${T[chronofs,$ph]}" "${T[restic,$ph]}" "${T[borg,$ph]}" "$(ratio "$ph")"
    done
    echo
    echo "local: cp -a of the source ${T[local,restore]}s; cold ls -lR of the source ${T[local,lsR]}s"
    echo "added by the changed backup (MiB): chronofs $(mib "${ADDED[chronofs,changed]}"), restic $(mib "${ADDED[restic,changed]}"), borg $(mib "${ADDED[borg,changed]}")"
    echo "repository growth on disk by the changed backup (MiB): chronofs $(mib "${GROWTH[chronofs]}"), restic $(mib "${GROWTH[restic]}"), borg $(mib "${GROWTH[borg]}")"
    echo "repository size after both backups (MiB): chronofs $(mib "${SIZE[chronofs]}"), restic $(mib "${SIZE[restic]}"), borg $(mib "${SIZE[borg]}")"
    for ph in first unchanged changed restore; do
        echo "peak RSS $ph (MiB): chronofs ${RSS[chronofs,$ph]}, restic ${RSS[restic,$ph]}, borg ${RSS[borg,$ph]}"
    done
    echo
    echo "encryption cost (chronofs encrypted vs --encryption none, same data, same run):"
    for ph in first unchanged changed restore; do
        printf '  %-10s %9ss vs %9ss: %s%%\n' "$ph" "${T[chronofs,$ph]}" "${T[chronofs-plain,$ph]}" \
            "$(calc %+.1f "(${T[chronofs,$ph]} / ${T[chronofs-plain,$ph]} - 1) * 100")"
    done
    echo "  repository size (MiB): $(mib "${SIZE[chronofs]}") vs $(mib "${SIZE[chronofs-plain]}")"
} | tee "$OUT"
rm -rf "$SRC" "$WORK"

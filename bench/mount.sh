#!/usr/bin/env bash
# Mount benchmark: chronofs mount vs restic mount vs borg mount, same data, same run.
#
#   sudo bash bench/mount.sh            # needs root (drop_caches), ~10 GB free in $BENCH_DIR
#
# Data set (built once from this machine's files, reused by later runs):
#   data/big.img   1 GiB: the first GiB of `tar c /usr/lib` (binaries: compressible)
#   data/man/      a copy of /usr/share/man (~21k small files)
#   data/tree/     /usr/share + /usr/lib/{x86_64-linux-gnu,jvm,gcc,python3*} (~2 GiB, ~57k entries)
# Workloads, each on a fresh mount with a cold page cache (echo 3 > drop_caches after the
# mount is ready), best of $REPS runs (default 2): cat of big.img, cp -a of man/, tar cf - of tree/, ls -lR of data/.
# Also: time from the mount command to the first successful `ls` of the root, the mount
# process's peak RSS (VmHWM) over all workloads, and chronofs's readiness with 1,000 snapshots.
# The same workloads on the source directory give the "local" column.
# Output: a table on stdout and in $BENCH_DIR/results-mount.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-mount.txt
export RESTIC_REPOSITORY=$BENCH_DIR/restic-repo BORG_REPO=$BENCH_DIR/borg-repo
CHRONOFS_REPO=$BENCH_DIR/chronofs-repo
CHRONOFS_PLAIN=$BENCH_DIR/chronofs-plain-repo

install_peers
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_data
ENTRIES=$(find "$DATA" | wc -l)
TREE_SIZE=$(du -sh --apparent-size "$DATA/tree" | cut -f1)
MAN_FILES=$(find "$DATA/man" -type f | wc -l)

# ---- repositories ---------------------------------------------------------------------------
if [ ! -f "$BENCH_DIR/.repos-complete-v3" ]; then
    rm -rf "$CHRONOFS_REPO" "$CHRONOFS_PLAIN" "$RESTIC_REPOSITORY" "$BORG_REPO"
    "$CHRONOFS" -r "$CHRONOFS_REPO" init -q
    "$CHRONOFS" -r "$CHRONOFS_REPO" backup -q "$DATA"
    "$CHRONOFS" -r "$CHRONOFS_PLAIN" init -q --encryption none
    "$CHRONOFS" -r "$CHRONOFS_PLAIN" backup -q "$DATA"
    restic init -q
    restic backup -q "$DATA"
    borg init --encryption none
    borg create "::bench" "$DATA"
    touch "$BENCH_DIR/.repos-complete-v3"
fi

MNT=$BENCH_DIR/mnt
mkdir -p "$MNT"
MOUNT_PID=""

# root of the data inside each tool's mount
inside() {
    case $1 in
        chronofs*) echo "$MNT/latest$DATA" ;;
        restic) echo "$MNT/snapshots/latest$DATA" ;;
        borg) echo "$MNT/bench${DATA}" ;;
        local) echo "$DATA" ;;
    esac
}

start_mount() { # tool -> sets MOUNT_PID and READY (seconds until the data directory lists)
    local t0; t0=$(now)
    case $1 in
        chronofs) "$CHRONOFS" -r "$CHRONOFS_REPO" mount -q "$MNT"
                  MOUNT_PID=$(pgrep -f -- "mount $MNT --daemon-child" | head -1 || true) ;;
        chronofs-plain) "$CHRONOFS" -r "$CHRONOFS_PLAIN" mount -q "$MNT"
                  MOUNT_PID=$(pgrep -f -- "mount $MNT --daemon-child" | head -1 || true) ;;
        restic) restic mount -q "$MNT" >/dev/null 2>&1 & MOUNT_PID=$! ;;
        borg) borg mount -f "$BORG_REPO" "$MNT" >/dev/null 2>&1 & MOUNT_PID=$! ;;
        local) MOUNT_PID=""; READY=0; return ;;
    esac
    local dir; dir=$(inside "$1")
    until ls "$dir" >/dev/null 2>&1; do sleep 0.005; done
    READY=$(elapsed "$t0")
}

stop_mount() {
    [ "$1" = local ] && return
    if [ "${1%-plain}" = chronofs ]; then "$CHRONOFS" umount "$MNT"; else fusermount3 -u "$MNT" 2>/dev/null || fusermount -u "$MNT" 2>/dev/null || umount "$MNT"; fi
    [ -n "$MOUNT_PID" ] && while kill -0 "$MOUNT_PID" 2>/dev/null; do sleep 0.05; done
    MOUNT_PID=""
}

peak_rss_kb=0
note_rss() {
    [ -n "$MOUNT_PID" ] || return 0
    local kb; kb=$(awk '/VmHWM/ {print $2}' "/proc/$MOUNT_PID/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak_rss_kb" ] && peak_rss_kb=$kb
    return 0
}

workload() { # tool name -> seconds
    local dir; dir=$(inside "$1")
    local t0
    case $2 in
        cat) t0=$(now); cat "$dir/big.img" > /dev/null ;;
        cp) t0=$(now); cp -a "$dir/man" "$BENCH_DIR/cp-out" ;;
        tar) t0=$(now); tar cf - -C "$dir" tree | cat > /dev/null ;;
        lsR) t0=$(now); ls -lR "$dir" > /dev/null ;;
    esac
    elapsed "$t0"
}

# Each workload runs REPS times (fresh mount, cold cache each time); the best time counts,
# since a shared VM's noise only ever adds time.
REPS=${REPS:-2}
declare -A R
for tool in local chronofs chronofs-plain restic borg; do
    peak_rss_kb=0
    ready=()
    for w in cat cp tar lsR; do
        for rep in $(seq 1 "$REPS"); do
            rm -rf "$BENCH_DIR/cp-out"
            drop
            start_mount $tool
            ready+=("$READY")
            drop
            t=$(workload $tool $w)
            note_rss
            stop_mount $tool
            echo "$tool $w run $rep: ${t}s" >&2
            if [ -z "${R[$tool,$w]:-}" ] || [ "$(calc %d "$t < ${R[$tool,$w]}")" = 1 ]; then R[$tool,$w]=$t; fi
        done
    done
    R[$tool,ready]=$(printf '%s\n' "${ready[@]}" | sort -n | sed -n "$(( (${#ready[@]} + 1) / 2 ))p") # median
    R[$tool,rss]=$((peak_rss_kb / 1024))
done
rm -rf "$BENCH_DIR/cp-out"

# chronofs with 1,000 snapshots: time to the first `ls` of the root.
build_many
many=()
for i in 1 2 3 4 5; do
    drop
    t0=$(now)
    "$CHRONOFS" -r "$MANY" mount -q "$MNT"
    n=$(ls "$MNT" | wc -l)
    many+=("$(elapsed "$t0")")
    "$CHRONOFS" umount "$MNT"
done
R[chronofs,ready1000]=$(printf '%s\n' "${many[@]}" | sort -n | sed -n 3p)

ratio() { calc %.2f "$1 / $2"; }
mibs() { calc %.0f "1024 / $1"; }
best_peer() { # workload -> smaller of restic/borg
    if [ "$(calc %d "${R[restic,$1]} < ${R[borg,$1]}")" = 1 ]; then echo "${R[restic,$1]} restic"; else echo "${R[borg,$1]} borg"; fi
}
{
    echo "# chronofs mount benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
    echo "versions: $("$CHRONOFS" --version), $(restic version | cut -d' ' -f1-2), $(borg --version)"
    echo "data: $ENTRIES entries; tree $TREE_SIZE; man $MAN_FILES files; big.img 1 GiB (start of tar of /usr/lib)"
    echo
    echo "best of $REPS runs each; vs best peer = peer time / chronofs time (higher is better); vs local = local time / chronofs time"
    printf '%-22s %10s %10s %10s %10s %14s %14s\n' workload local chronofs restic borg "vs best peer" "vs local"
    for w in cat cp tar lsR; do
        read -r bp who <<< "$(best_peer $w)"
        printf '%-22s %9ss %9ss %9ss %9ss %13sx %13sx\n' "$w" "${R[local,$w]}" "${R[chronofs,$w]}" "${R[restic,$w]}" "${R[borg,$w]}" \
            "$(ratio "$bp" "${R[chronofs,$w]}") ($who)" "$(ratio "${R[local,$w]}" "${R[chronofs,$w]}")"
    done
    echo
    echo "cat 1 GiB throughput (MiB/s): local $(mibs "${R[local,cat]}"), chronofs $(mibs "${R[chronofs,cat]}"), restic $(mibs "${R[restic,cat]}"), borg $(mibs "${R[borg,cat]}")"
    echo "ready (mount command to first ls of the data, median of all mounts): chronofs ${R[chronofs,ready]}s, restic ${R[restic,ready]}s, borg ${R[borg,ready]}s"
    echo "ready with 1,000 snapshots (chronofs, median of 5): ${R[chronofs,ready1000]}s"
    echo "peak RSS of the mount process: chronofs ${R[chronofs,rss]} MiB, restic ${R[restic,rss]} MiB, borg ${R[borg,rss]} MiB"
    echo "encryption cost (chronofs encrypted vs --encryption none): $(for w in cat cp tar lsR; do
        printf '%s %ss vs %ss (%s%%); ' "$w" "${R[chronofs,$w]}" "${R[chronofs-plain,$w]}" \
            "$(calc %+.1f "(${R[chronofs,$w]} / ${R[chronofs-plain,$w]} - 1) * 100")"; done)"
} | tee "$OUT"

#!/usr/bin/env bash
# Object-storage benchmark: chronofs vs restic on the same local S3 server (Garage, started by
# tests/s3/server.sh, the script the tests use), same data, same run:
#
#   sudo bash bench/s3.sh            # needs root (drop_caches), ~10 GB free in $BENCH_DIR
#
# Data: bench/lib.sh's data set (a ~2 GiB tree of ~84k entries and a 1 GiB big.img).
# Phases, each with a cold page cache, for each tool, both with their local caches on:
#   first      first backup into an empty repository in the bucket
#   unchanged  the same tree again
#   restore    the latest snapshot into an empty directory
#   cat        cat of big.img (1 GiB) through each tool's FUSE mount (mount time excluded)
#   ready      mount of a repository of 100 snapshots, warm cache, until ls shows them all
# For each phase: wall time, S3 requests the server counted (Garage's api_s3_request_counter)
# and bytes over loopback (received on lo, which counts each byte once, in either direction;
# nothing else talks on lo meanwhile).
# Output: a table on stdout and in $BENCH_DIR/results-s3.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-s3.txt
WORK=$BENCH_DIR/s3-bench
GARAGE_DIR=$BENCH_DIR/garage
TOOLS=(chronofs restic)

install_peers
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_data

bash tests/s3/server.sh stop "$GARAGE_DIR" 2>/dev/null || true
rm -rf "$WORK" "$GARAGE_DIR"
mkdir -p "$WORK"
bash tests/s3/server.sh start "$GARAGE_DIR" > /dev/null
. "$GARAGE_DIR/env"
trap 'bash tests/s3/server.sh stop "$GARAGE_DIR"' EXIT
ADMIN=$(cut -d' ' -f3 "$GARAGE_DIR/node1/ports")
CREPO=s3:$CHRONOFS_S3_ENDPOINT/chronofs-test/chronofs
export RESTIC_REPOSITORY=s3:$CHRONOFS_S3_ENDPOINT/chronofs-test/restic
export CHRONOFS_CACHE_DIR=$WORK/chronofs-cache
RESTIC_CACHE=$WORK/restic-cache

requests() {
    curl -s "http://127.0.0.1:$ADMIN/metrics" \
        | awk '/^api_s3_request_counter/ {n += $NF} END {printf "%d", n}'
}
lo_bytes() { awk '$1 == "lo:" {printf "%.0f", $2}' /proc/net/dev; }

declare -A T REQ BYTES
phase() {
    local tool=$1 ph=$2 mnt=$WORK/mnt
    drop
    if [ "$ph" = restore ]; then rm -rf "$WORK/restore"; mkdir -p "$WORK/restore"; fi
    if [ "$ph" = cat ]; then
        mkdir -p "$mnt"
        case $tool in
        chronofs) "$CHRONOFS" -r "$CREPO" mount -q "$mnt" ;;
        restic) restic mount --cache-dir "$RESTIC_CACHE" "$mnt" > /dev/null 2>&1 & ;;
        esac
        local file
        for _ in $(seq 1 600); do
            file=$(ls -d "$mnt"/latest/"$DATA"/big.img "$mnt"/snapshots/latest/"$DATA"/big.img 2>/dev/null | head -1 || true)
            [ -n "$file" ] && break
            sleep 0.1
        done
        [ -n "$file" ] || { echo "$tool mount did not come up" >&2; exit 1; }
        drop
    fi
    local r0 b0 t0
    r0=$(requests); b0=$(lo_bytes); t0=$(now)
    case $tool,$ph in
    chronofs,first | chronofs,unchanged) "$CHRONOFS" -r "$CREPO" backup -q "$DATA" ;;
    chronofs,restore) "$CHRONOFS" -r "$CREPO" restore -q latest --target "$WORK/restore" ;;
    restic,first | restic,unchanged) restic backup -q --cache-dir "$RESTIC_CACHE" "$DATA" ;;
    restic,restore) restic restore -q --cache-dir "$RESTIC_CACHE" latest --target "$WORK/restore" ;;
    *,cat) cat "$file" > /dev/null ;;
    esac
    T[$tool,$ph]=$(elapsed "$t0")
    REQ[$tool,$ph]=$(( $(requests) - r0 ))
    BYTES[$tool,$ph]=$(( $(lo_bytes) - b0 ))
    if [ "$ph" = cat ]; then
        fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    echo "$tool $ph: ${T[$tool,$ph]}s, ${REQ[$tool,$ph]} requests, ${BYTES[$tool,$ph]} bytes" >&2
}

"$CHRONOFS" -r "$CREPO" init -q
restic init -q --cache-dir "$RESTIC_CACHE"
for ph in first unchanged restore cat; do
    for tool in "${TOOLS[@]}"; do phase "$tool" "$ph"; done
done

# Mount readiness on a repository of 100 snapshots with a warm cache: a small tree (200 files,
# one changed before each backup) backed up 100 times into its own prefix, the cache warmed by
# one listing, then the time from starting the mount until `ls` of the mount shows all 100
# snapshots, and the requests that took.
SMALL=$WORK/small
mkdir -p "$SMALL"
for i in $(seq 1 200); do head -c 4096 /dev/urandom > "$SMALL/f$i"; done
MANY=s3:$CHRONOFS_S3_ENDPOINT/chronofs-test/many
export RESTIC_MANY=s3:$CHRONOFS_S3_ENDPOINT/chronofs-test/restic-many
"$CHRONOFS" -r "$MANY" init -q
restic -r "$RESTIC_MANY" init -q --cache-dir "$RESTIC_CACHE"
for i in $(seq 1 100); do
    date +%s%N > "$SMALL/f$(( i % 200 + 1 ))"
    "$CHRONOFS" -r "$MANY" backup -q "$SMALL"
    restic -r "$RESTIC_MANY" backup -q --cache-dir "$RESTIC_CACHE" "$SMALL"
done
ready() {
    local tool=$1 mnt=$WORK/mnt-ready r0 t0 n=0
    mkdir -p "$mnt"
    case $tool in
    chronofs) "$CHRONOFS" -r "$MANY" snapshots -q > /dev/null ;;
    restic) restic -r "$RESTIC_MANY" snapshots -q --cache-dir "$RESTIC_CACHE" > /dev/null ;;
    esac
    r0=$(requests); t0=$(now)
    case $tool in
    chronofs) "$CHRONOFS" -r "$MANY" mount -q "$mnt" ;;
    restic) restic -r "$RESTIC_MANY" mount --cache-dir "$RESTIC_CACHE" "$mnt" > /dev/null 2>&1 & ;;
    esac
    for _ in $(seq 1 3000); do
        case $tool in
        chronofs) n=$(ls "$mnt" 2>/dev/null | grep -c '^20' || true) ;;
        restic) n=$(ls "$mnt/snapshots" 2>/dev/null | grep -c '^20' || true) ;;
        esac
        [ "$n" -ge 100 ] && break
        sleep 0.01
    done
    [ "$n" -ge 100 ] || { echo "$tool mount showed $n of 100 snapshots" >&2; exit 1; }
    T[$tool,ready]=$(elapsed "$t0")
    REQ[$tool,ready]=$(( $(requests) - r0 ))
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    wait 2>/dev/null || true
    echo "$tool ready: ${T[$tool,ready]}s, ${REQ[$tool,ready]} requests" >&2
}
for tool in "${TOOLS[@]}"; do ready "$tool"; done

mib() { calc %.1f "$1 / 1048576"; }
{
    echo "# chronofs object-storage benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(uname -r); server: $("${CHRONOFS_GARAGE:-/var/cache/chronofs-test/garage/bin/garage}" --version), one node on loopback"
    echo "versions: $("$CHRONOFS" --version), $(restic version | cut -d' ' -f1-2)"
    echo "data: $(find "$DATA" | wc -l) entries, $(du -sh --apparent-size "$DATA" | cut -f1)"
    echo
    printf '%-10s %10s %10s %9s %10s %10s %12s %12s\n' phase chronofs restic ratio "req chr" "req restic" "MiB chr" "MiB restic"
    for ph in first unchanged restore cat; do
        printf '%-10s %9ss %9ss %8sx %10s %10s %12s %12s\n' "$ph" "${T[chronofs,$ph]}" "${T[restic,$ph]}" \
            "$(calc %.2f "${T[restic,$ph]} / ${T[chronofs,$ph]}")" "${REQ[chronofs,$ph]}" "${REQ[restic,$ph]}" \
            "$(mib "${BYTES[chronofs,$ph]}")" "$(mib "${BYTES[restic,$ph]}")"
    done
    printf '%-10s %9ss %9ss %8sx %10s %10s\n' ready "${T[chronofs,ready]}" "${T[restic,ready]}" \
        "$(calc %.2f "${T[restic,ready]} / ${T[chronofs,ready]}")" "${REQ[chronofs,ready]}" "${REQ[restic,ready]}"
    echo "ratio = restic time / chronofs time (higher is better for chronofs); MiB = bytes over loopback (up and down)"
    echo "ready = from starting the mount until ls shows all 100 snapshots of a second repository, cache warm"
} | tee "$OUT"
rm -rf "$WORK"

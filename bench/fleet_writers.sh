#!/usr/bin/env bash
# Sixteen writers at once (issue 25): WRITERS backup processes, each posing as its own host
# with its own cache, back up a shared OS tree (SHARED, default /usr) plus HOST_MB of their
# own data into one repository, all at once, then a second round after each host appended
# 4 MiB. On a local directory and on a three-node Garage cluster (tests/s3/server.sh), in the
# same run. Reports per round: wall time, aggregate throughput (source bytes of all hosts /
# wall time), pack bytes stored against the distinct data (plaintext repository; the shared
# tree compresses), and after the second round restores every snapshot of every host and
# compares it with what was backed up (`diff -r` of the shared tree, `cmp` of the own data).
#
#   sudo bash bench/fleet_writers.sh   # WRITERS=16 SHARED=/usr/include HOST_MB=32 MODES="local s3"
#
# Output: a table on stdout and in $BENCH_DIR/results-fleet-writers.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-fleet-writers.txt
WRITERS=${WRITERS:-16}
SHARED=${SHARED:-/usr/include}
HOST_MB=${HOST_MB:-32}
MODES=${MODES:-local s3}
W=$BENCH_DIR/fleet-writers
GARAGE_DIR=$BENCH_DIR/garage-fleet
cargo build --release --locked --quiet --bin chronofs
C=$PWD/target/release/chronofs

rm -rf "$W"; mkdir -p "$W"
# Each host's own data (they all read SHARED), made anew for each storage.
own_data() {
    local h
    for h in $(seq 1 "$WRITERS"); do
        mkdir -p "$W/own/$h"
        head -c $((HOST_MB * 1048576)) /dev/urandom > "$W/own/$h/data"
    done
}
shared_bytes=$(du -sb --apparent-size "$SHARED" | cut -f1)
own_bytes=$((HOST_MB * 1048576))
echo "shared tree $SHARED: $shared_bytes bytes; own data per host: $own_bytes bytes" >&2

stored() {  # bytes of the pack files the index names
    "$C" -r "$REPO" status --json | tr ',' '\n' | awk -F: '/"repository_bytes"/ {print $2}'
}

round() {  # every host at once; prints the wall time in seconds
    local start pids=() h
    start=$(now)
    for h in $(seq 1 "$WRITERS"); do
        CHRONOFS_CACHE_DIR=$W/cache/$h "$C" -q -r "$REPO" backup --host "host$h" \
            "$SHARED" "$W/own/$h" > "$W/log.$h" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { cat "$W"/log.* >&2; exit 1; }; done
    elapsed "$start"
}

verify() {  # every snapshot of every host restores to exactly what it backed up
    local h t id n
    t=$W/restore
    for h in $(seq 1 "$WRITERS"); do
        n=0
        for id in $("$C" -r "$REPO" snapshots --host "host$h" --json \
                | awk -F'"' '$2 == "id" {print $4}'); do
            n=$((n + 1))
            rm -rf "$t"; mkdir -p "$t"
            CHRONOFS_CACHE_DIR=$W/cache/$h "$C" -q -r "$REPO" restore --target "$t" "$id" >/dev/null
            diff -r --no-dereference "$SHARED" "$t$SHARED" >/dev/null \
                || { echo "host$h $id: $SHARED differs" >&2; exit 1; }
            # Round 1 backed up the first HOST_MB MiB, round 2 all of it.
            local want=$(( own_bytes + (n - 1) * 4194304 ))
            [ "$(stat -c %s "$t$W/own/$h/data")" = "$want" ] \
                && cmp -n "$want" "$W/own/$h/data" "$t$W/own/$h/data" \
                || { echo "host$h $id: own data differs" >&2; exit 1; }
        done
        [ "$n" = 2 ] || { echo "host$h: $n snapshots, expected 2" >&2; exit 1; }
    done
    rm -rf "$t"
}

rows=("| storage | round | wall | aggregate source read | distinct data | stored (packs) | restores |" "|---|---|---|---|---|---|---|")
for mode in $MODES; do
    rm -rf "$W/repo" "$W/cache"
    case $mode in
    local) REPO=$W/repo ;;
    s3)
        trap 'bash tests/s3/server.sh stop "$GARAGE_DIR" >/dev/null 2>&1' EXIT
        bash tests/s3/server.sh stop "$GARAGE_DIR" 2>/dev/null || true
        rm -rf "$GARAGE_DIR"
        bash tests/s3/server.sh start "$GARAGE_DIR" --nodes 3 > /dev/null
        . "$GARAGE_DIR/env"
        REPO=s3:$CHRONOFS_S3_ENDPOINT/chronofs-test/fleet
        ;;
    esac
    "$C" -r "$REPO" init --encryption none >/dev/null
    own_data
    distinct=$((shared_bytes + WRITERS * own_bytes))
    for r in 1 2; do
        if [ "$r" = 2 ]; then
            # Each host changes a little: 4 MiB of new data appended.
            for h in $(seq 1 "$WRITERS"); do head -c 4194304 /dev/urandom >> "$W/own/$h/data"; done
            distinct=$((distinct + WRITERS * 4194304))
        fi
        secs=$(round)
        total=$((WRITERS * (shared_bytes + own_bytes + (r - 1) * 4194304)))
        rate=$(calc %.0f "$total / $secs / 1048576")
        checked=-
        if [ "$r" = 2 ]; then verify; checked="all $((2 * WRITERS)) exact"; fi
        rows+=("| $mode | $r | ${secs} s | $rate MiB/s ($((total / 1048576)) MiB) | $((distinct / 1048576)) MiB | $(( $(stored) / 1048576 )) MiB | $checked |")
        echo "${rows[-1]}" >&2
    done
    if [ "$mode" = s3 ]; then bash tests/s3/server.sh stop "$GARAGE_DIR"; fi
done
printf '%s\n' "${rows[@]}" | tee "$OUT"

#!/usr/bin/env bash
# Disk images, side by side with restic and borg (both encrypted, as chronofs is):
#
#   sudo bash bench/images.sh [reads] [incrementals]     # default: both; ~25 GB free in $BENCH_DIR
#
# incrementals: a 10 GiB disk image (the bench data as a tar, then `tar c /usr`, then random
#   bytes: compressible and not, some content repeated), backed up once, then changed in place
#   three times, 1% of its bytes each time, each change followed by a backup of every tool:
#     spread-4k   26,214 random 4 KiB blocks (a file system's scattered block writes)
#     spread-64k  1,638 random 64 KiB extents
#     clustered   16 runs of 6.4 MiB
#   For each backup: wall time, and bytes the repository grew by (du -sb) against the bytes
#   changed. Tools: chronofs (default chunker, 1 MiB average), chronofs with a 64 KiB average
#   chunk (`init --chunk-min 16K --chunk-avg 64K --chunk-max 256K`), restic, borg
#   (repokey-blake2, default chunker). Page cache dropped before every backup.
# reads: fio through each tool's mount on the bench data's 1 GiB image (data/big.img), cold
#   cache: 4 KiB random reads (one job, and four in parallel) for 15 s, and one sequential
#   1 MiB pass; and the same file on local disk.
# Output: tables on stdout and in $BENCH_DIR/results-images.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-images.txt
W=$BENCH_DIR/images
export BORG_PASSPHRASE=bench
PARTS=${*:-reads incrementals}

install_peers
command -v fio >/dev/null || apt-get install -y -qq fio >/dev/null
cargo build --release --locked --quiet
CHRONOFS=$PWD/target/release/chronofs
build_data
mkdir -p "$W"
: > "$OUT.tmp"
say() { echo "$*" | tee -a "$OUT.tmp"; }
say "# chronofs image benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
say "versions: $("$CHRONOFS" --version), $(restic version | cut -d' ' -f1-2), $(borg --version), $(fio --version)"

TOOLS="chronofs chronofs-64k restic borg"
repo() { echo "$W/repo-$1"; }

init_repo() { # tool
    local r; r=$(repo "$1"); rm -rf "$r"
    case $1 in
        chronofs) "$CHRONOFS" -r "$r" init -q ;;
        chronofs-64k) "$CHRONOFS" -r "$r" init -q --chunk-min 16384 --chunk-avg 65536 --chunk-max 262144 ;;
        restic) restic -r "$r" init -q ;;
        borg) borg init -e repokey-blake2 "$r" ;;
    esac
}

backup() { # tool path name
    local r; r=$(repo "$1")
    case $1 in
        chronofs*) "$CHRONOFS" -r "$r" backup -q "$2" ;;
        restic) restic -r "$r" backup -q "$2" >/dev/null ;;
        borg) borg create "$r::$3" "$2" ;;
    esac
}

if [[ " $PARTS " == *" incrementals "* ]]; then
    IMG=$W/disk.img
    SIZE=$((10 << 30))
    CHANGED=$((SIZE / 100))
    # The same image, and the same changes, for every tool: the random part is a keyed
    # AES-CTR stream and the changes come from a seeded generator. One tool at a time (the
    # image, rebuilt for each, and one repository fit in ~25 GB).
    build_image() {
        echo "building the 10 GiB image" >&2
        # (head closes the pipe early: the producers' SIGPIPE is expected.)
        { tar cf - -C "$DATA" . 2>/dev/null; tar cf - /usr 2>/dev/null
          head -c "$SIZE" /dev/zero | openssl enc -aes-128-ctr -nosalt \
              -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000; } \
            | head -c "$SIZE" > "$IMG" || true
        [ "$(stat -c %s "$IMG")" -eq "$SIZE" ] || { echo "the image is not $SIZE bytes" >&2; exit 1; }
    }
    change_image() { # kind
        python3 - "$IMG" "$1" "$CHANGED" <<'EOF'
import os, random, sys
path, kind, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(path)
rnd = random.Random(f"chronofs-{kind}")
fd = os.open(path, os.O_WRONLY)
if kind.startswith("spread"):
    block = 4096 if kind == "spread-4k" else 65536
    for slot in rnd.sample(range(size // block), total // block):
        os.pwrite(fd, rnd.randbytes(block), slot * block)
else:
    run = (total // 16) // 4096 * 4096
    for start in rnd.sample(range((size - run) // 4096), 16):
        os.pwrite(fd, rnd.randbytes(run), start * 4096)
os.fsync(fd)
os.close(fd)
EOF
    }
    declare -A T G
    for t in $TOOLS; do
        build_image
        if [ "$t" = chronofs ]; then
            # The image as a block device: the raw read rate (dd, cold) against a first
            # backup of the device by chronofs (cold, a repository of its own).
            LOOP=$(losetup --find --show --read-only "$IMG")
            drop; t0=$(now); dd if="$LOOP" of=/dev/null bs=4M status=none; DD_S=$(elapsed "$t0")
            init_repo chronofs
            drop; t0=$(now); "$CHRONOFS" -r "$(repo chronofs)" backup -q "$LOOP"; DEV_S=$(elapsed "$t0")
            losetup -d "$LOOP"
        fi
        init_repo "$t"
        step=0
        for change in first spread-4k spread-64k clustered; do
            [ "$change" = first ] || change_image "$change"
            step=$((step + 1))
            before=$(du -sb "$(repo "$t")" | cut -f1)
            drop
            t0=$(now)
            backup "$t" "$IMG" "s$step"
            T[$t,$change]=$(elapsed "$t0")
            G[$t,$change]=$(( $(du -sb "$(repo "$t")" | cut -f1) - before ))
            echo "$t $change: ${T[$t,$change]} s, +${G[$t,$change]} bytes" >&2
        done
        rm -rf "$(repo "$t")" "$IMG"
    done
    mib() { calc %.1f "$1 / 1048576"; }
    say
    say "## Image incrementals: 10 GiB image, 1% changed per step ($(mib $CHANGED) MiB), cold cache"
    say "reading the image as a block device (loop), cold: dd ${DD_S} s ($(calc %.0f "10240 / $DD_S") MiB/s); chronofs backup of the device ${DEV_S} s ($(calc %.0f "10240 / $DEV_S") MiB/s)"
    say "time in s / repository growth in MiB (growth / changed bytes)"
    printf '%-12s' step | tee -a "$OUT.tmp"; for t in $TOOLS; do printf '%26s' "$t" | tee -a "$OUT.tmp"; done; echo | tee -a "$OUT.tmp"
    for change in first spread-4k spread-64k clustered; do
        printf '%-12s' "$change" | tee -a "$OUT.tmp"
        for t in $TOOLS; do
            if [ "$change" = first ]; then
                cell="${T[$t,$change]} / $(mib "${G[$t,$change]}")"
            else
                cell="${T[$t,$change]} / $(mib "${G[$t,$change]}") ($(calc %.1f "${G[$t,$change]} / $CHANGED")x)"
            fi
            printf '%26s' "$cell" | tee -a "$OUT.tmp"
        done
        echo | tee -a "$OUT.tmp"
    done
fi

if [[ " $PARTS " == *" reads "* ]]; then
    SRC=$W/src
    rm -rf "$SRC"; mkdir -p "$SRC"
    cp "$DATA/big.img" "$SRC/disk.img"
    for t in chronofs restic borg; do init_repo "$t"; backup "$t" "$SRC" bench; done
    MNT=$W/mnt
    mkdir -p "$MNT"
    file_in() {
        case $1 in
            local) echo "$SRC/disk.img" ;;
            chronofs) echo "$MNT/latest$SRC/disk.img" ;;
            restic) echo "$MNT/snapshots/latest$SRC/disk.img" ;;
            borg) echo "$MNT/bench$SRC/disk.img" ;;
        esac
    }
    mount_tool() {
        case $1 in
            local) return ;;
            chronofs) "$CHRONOFS" -r "$(repo chronofs)" mount -q "$MNT" ;;
            restic) restic -r "$(repo restic)" mount -q "$MNT" >/dev/null 2>&1 & ;;
            borg) borg mount "$(repo borg)" "$MNT" ;;
        esac
        until [ -e "$(file_in "$1")" ]; do sleep 0.05; done
    }
    umount_tool() {
        case $1 in
            local) return ;;
            chronofs) "$CHRONOFS" umount "$MNT" ;;
            *) fusermount3 -u "$MNT" 2>/dev/null || fusermount -u "$MNT" 2>/dev/null || umount "$MNT" ;;
        esac
        while mountpoint -q "$MNT"; do sleep 0.05; done
    }
    fio_run() { # file args... -> JSON on stdout
        fio --name=job --filename="$1" --readonly --ioengine=psync --output-format=json "${@:2}"
    }
    declare -A F
    for t in local chronofs restic borg; do
        for w in rand1 rand4 seq; do
            mount_tool "$t"
            drop
            f=$(file_in "$t")
            case $w in
                rand1) j=$(fio_run "$f" --rw=randread --bs=4k --runtime=15 --time_based)
                       F[$t,$w]=$(echo "$j" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))') ;;
                rand4) j=$(fio_run "$f" --rw=randread --bs=4k --runtime=15 --time_based --numjobs=4 --group_reporting)
                       F[$t,$w]=$(echo "$j" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))') ;;
                seq) j=$(fio_run "$f" --rw=read --bs=1M)
                     F[$t,$w]=$(echo "$j" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["bw"] / 1024))') ;;
            esac
            umount_tool "$t"
            echo "$t $w: ${F[$t,$w]}" >&2
        done
    done
    say
    say "## Reads of a 1 GiB image through the mount (fio, psync, cold cache)"
    printf '%-28s %10s %10s %10s %10s\n' workload local chronofs restic borg | tee -a "$OUT.tmp"
    for w in rand1 rand4 seq; do
        case $w in
            rand1) label="4 KiB random, 1 job (IOPS)" ;;
            rand4) label="4 KiB random, 4 jobs (IOPS)" ;;
            seq) label="1 MiB sequential (MiB/s)" ;;
        esac
        printf '%-28s %10s %10s %10s %10s\n' "$label" "${F[local,$w]}" "${F[chronofs,$w]}" "${F[restic,$w]}" "${F[borg,$w]}" | tee -a "$OUT.tmp"
    done
    rm -rf "$SRC"
    for t in chronofs restic borg; do rm -rf "$(repo "$t")"; done
fi
mv "$OUT.tmp" "$OUT"

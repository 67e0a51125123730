# Shared by the benchmark scripts: settings, peer installation, timing helpers and the data set.
# Source it from bench/*.sh after `cd` to the repository root.

BENCH_DIR=${BENCH_DIR:-/var/tmp/chronofs-bench}
DATA=$BENCH_DIR/data
export RESTIC_PASSWORD=bench CHRONOFS_PASSWORD=bench
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

[ "$(id -u)" -eq 0 ] || { echo "run as root (needs drop_caches)" >&2; exit 1; }

# Installs the peers (and what their mounts need) from Debian's packages if missing.
install_peers() {
    local missing=""
    command -v restic >/dev/null || missing="$missing restic"
    command -v borg >/dev/null || missing="$missing borgbackup"
    command -v fusermount3 >/dev/null || missing="$missing fuse3"
    command -v fusermount >/dev/null || missing="$missing fuse"
    command -v python3 >/dev/null || missing="$missing python3"
    python3 -c 'import llfuse' 2>/dev/null || python3 -c 'import pyfuse3' 2>/dev/null \
        || missing="$missing python3-llfuse"
    if [ -n "$missing" ]; then
        apt-get install -y -qq $missing >/dev/null
    fi
}

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
elapsed() { calc %.3f "$(now) - $1"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# Builds the data set once from this machine's files:
#   data/big.img   1 GiB: the first GiB of `tar c /usr/lib` (binaries: compressible)
#   data/man/      a copy of /usr/share/man (~21k small files)
#   data/tree/     /usr/share + /usr/lib/{x86_64-linux-gnu,jvm,gcc,python3*} (~2 GiB)
build_data() {
    [ -f "$DATA/.complete" ] && return
    echo "building the data set in $DATA" >&2
    rm -rf "$DATA"; mkdir -p "$DATA/tree/usr/lib"
    tar cf - /usr/lib 2>/dev/null | head -c 1073741824 > "$DATA/big.img" || true
    cp -a /usr/share/man "$DATA/man"
    cp -a /usr/share "$DATA/tree/usr/share"
    for d in x86_64-linux-gnu jvm gcc python3 python3.11; do
        [ -e "/usr/lib/$d" ] && cp -a "/usr/lib/$d" "$DATA/tree/usr/lib/$d"
    done
    touch "$DATA/.complete"
}

# A repository of 1,000 snapshots of a small directory whose one file changes every time
# (built once): $MANY, of $BENCH_DIR/small. Needs $CHRONOFS.
MANY=$BENCH_DIR/chronofs-1000
build_many() {
    [ -f "$MANY/.complete" ] && return
    rm -rf "$MANY" "$BENCH_DIR/small"; mkdir -p "$BENCH_DIR/small"
    "$CHRONOFS" -r "$MANY" init -q
    for i in $(seq 1 1000); do
        echo "$i" > "$BENCH_DIR/small/counter"
        "$CHRONOFS" -r "$MANY" backup -q "$BENCH_DIR/small"
    done
    touch "$MANY/.complete"
}

# Runs "$@" with its output discarded; prints "S s, M MiB" (wall time, peak RSS), or shows its
# stderr and fails. Scratch files go in $W.
time_rss() {
    /usr/bin/time -o "$W/time" -f "%e %M" "$@" >/dev/null 2>"$W/err" \
        || { cat "$W/err" >&2; return 1; }
    awk '{ printf "%.2f s, %d MiB", $1, $2 / 1024 }' "$W/time"
}

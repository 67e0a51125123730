#!/usr/bin/env bash
# Where the CPU goes (issue 27, item 1): a first backup of the data set, its restore, and a
# cold `cat` of the 1 GiB image through the mount, each sampled with `perf record` (all
# threads; the mount daemon by its pid), the samples sorted into stages by symbol (chunk,
# hash, compress, decompress, seal/open, allocator, libc copies, kernel I/O, kernel memory,
# FUSE, other), and set next to the machine's limit per stage: one core doing that stage alone
# on 256 MiB of the same data (bench/stage_limits.rs). Encrypted repository (the default),
# local disk, caches dropped before each step.
#
#   sudo bash bench/stages.sh
#
# Output: Markdown tables on stdout and in $BENCH_DIR/results-stages.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
build_data
cargo build --release --locked --quiet --bin chronofs --example stage-limits
C=$PWD/target/release/chronofs
W=$BENCH_DIR/stages
OUT=$BENCH_DIR/results-stages.txt
mountpoint -q "$W/mnt" 2>/dev/null && "$C" umount "$W/mnt"
rm -rf "$W"; mkdir -p "$W/mnt"

# The machine's limit per stage, on the tree's files (what a backup mostly reads).
find "$DATA/tree" -type f -print0 | xargs -0 cat 2>/dev/null | head -c 268435456 > "$W/sample" || true
./target/release/examples/stage-limits "$W/sample" 256 > "$W/limits.md" 2> "$W/limits.log"

# Runs "$@" under perf; $1 is the step's name. Leaves $W/NAME.perf and $W/NAME.time
# ("wall user sys", seconds).
profile() {
    local name=$1; shift
    drop
    perf record -q -F 499 -o "$W/$name.perf" -- \
        /usr/bin/time -f "%e %U %S" -o "$W/$name.time" "$@" >/dev/null 2>"$W/$name.log"
}

"$C" -r "$W/repo" init -q --kdf-memory 64M
profile backup "$C" -r "$W/repo" backup -q "$DATA"
profile restore "$C" -r "$W/repo" restore latest --target "$W/restore"
rm -rf "$W/restore"

# The mount: the daemon's CPU time (utime + stime from /proc, in clock ticks) around one cold
# `cat` of the image, sampled by pid.
"$C" -r "$W/repo" mount "$W/mnt"
pid=$(pgrep -f -- "mount $W/mnt --daemon-child" | head -1)
img=$W/mnt/latest$DATA/big.img
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
drop
before=$(ticks)
perf record -q -F 499 -p "$pid" -o "$W/mount.perf" 2>/dev/null &
perf_pid=$!
sleep 1
start=$(now)
cat "$img" > /dev/null
wall=$(elapsed "$start")
kill -INT "$perf_pid"; wait "$perf_pid" || true
cpu=$(calc %.2f "($(ticks) - $before) / $(getconf CLK_TCK)")
echo "$wall $cpu 0" > "$W/mount.time"
"$C" umount "$W/mnt"

data_mib=$(du -sb --apparent-size "$DATA" | awk '{ printf "%.0f", $1 / 1048576 }')
for step in backup restore mount; do
    perf report -i "$W/$step.perf" --no-children --sort sym --stdio -q -F overhead,sym \
        2>/dev/null > "$W/$step.symbols"
done

python3 - "$W" "$data_mib" <<'EOF' | tee "$OUT"
import re, sys
w, data_mib = sys.argv[1], float(sys.argv[2])

def stage(sym):
    kernel = '[k]' in sym
    if kernel:
        if 'fuse' in sym:
            return 'kernel: FUSE'
        if re.search(r'fault|clear_page|alloc_pages|folio|memcg|lru|zap|unmap|mmap|vma|pte|page_add|free_pages|rmqueue', sym):
            return 'kernel: memory (faults, pages)'
        return 'kernel: file I/O and other'
    if re.search(r'cut_gear|chunking|fastcdc', sym):
        return 'chunk (FastCDC)'
    if 'blake3' in sym:
        return 'hash (keyed blake3)'
    if re.search(r'ZSTD|HUF_|FSE_|HIST_|zstd', sym):
        if re.search(r'[Dd]ecomp|[Dd]ecode|execSequence|buildFSETable|DCtx|DDict', sym):
            return 'decompress (zstd)'
        return 'compress (zstd)'
    if re.search(r'aes|Aes|polyval|Polyval|gcm|Gcm|ghash', sym):
        return 'seal/open (AES-256-GCM-SIV)'
    if re.search(r'mem(move|cpy|set|cmp)', sym):
        return 'libc copies (mem*)'
    if re.search(r'malloc|free|realloc|calloc|_int_|tcache|arena|sysmalloc', sym):
        return 'allocator'
    return 'other (chronofs, std, threads)'

def shares(step):
    out = {}
    for line in open(f'{w}/{step}.symbols'):
        m = re.match(r'\s*([\d.]+)%\s+(.*)', line)
        if m:
            s = stage(m.group(2))
            out[s] = out.get(s, 0) + float(m.group(1))
    return out

def times(step):
    wall, user, sys_ = (float(x) for x in open(f'{w}/{step}.time').read().split())
    return wall, user + sys_

limits = {}
for line in open(f'{w}/limits.md'):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if len(cells) == 2:
        limits[cells[0]] = float(cells[1])

steps = [('backup', data_mib), ('restore', data_mib), ('mount', 1024.0)]
names = {'backup': f'first backup ({data_mib:.0f} MiB)', 'restore': f'restore ({data_mib:.0f} MiB)',
         'mount': 'cold `cat` of the 1 GiB image through the mount (daemon)'}
rows = {}
print('| step | wall | CPU (user + sys) | MiB/s |')
print('|---|---|---|---|')
for step, mib in steps:
    wall, cpu = times(step)
    rows[step] = (shares(step), cpu)
    print(f'| {names[step]} | {wall:.1f} s | {cpu:.1f} s | {mib / wall:.0f} |')
print()
order = ['chunk (FastCDC)', 'hash (keyed blake3)', 'compress (zstd)', 'decompress (zstd)',
         'seal/open (AES-256-GCM-SIV)', 'libc copies (mem*)', 'allocator',
         'kernel: file I/O and other', 'kernel: memory (faults, pages)', 'kernel: FUSE',
         'other (chronofs, std, threads)']
print('CPU seconds per stage (share of the step\'s CPU):')
print()
print('| stage | backup | restore | mount `cat` |')
print('|---|---|---|---|')
for s in order:
    cells = []
    for step, _ in steps:
        share, cpu = rows[step]
        p = share.get(s, 0.0)
        cells.append(f'{cpu * p / 100:.1f} s ({p:.0f}%)' if p >= 0.5 else '-')
    print(f'| {s} | ' + ' | '.join(cells) + ' |')
print()
print('The machine\'s limit per stage (one core, data in memory, bench/stage_limits.rs), and the')
print('CPU seconds the stage would need at that limit for this step\'s data:')
print()
print('| stage | MiB/s per core | backup at the limit | restore at the limit | mount `cat` at the limit |')
print('|---|---|---|---|---|')
uses = {'chunk (FastCDC)': ('backup',), 'hash (keyed blake3)': ('backup', 'restore', 'mount'),
        'compress (zstd 3)': ('backup',), 'encrypt (AES-256-GCM-SIV, compressed)': ('backup',),
        'decrypt (AES-256-GCM-SIV, compressed)': ('restore', 'mount'),
        'decompress (zstd)': ('restore', 'mount')}
for name, rate in limits.items():
    cells = []
    for step, mib in steps:
        cells.append(f'{mib / rate:.2f} s' if step in uses.get(name, ()) else '-')
    print(f'| {name} | {rate:.0f} | ' + ' | '.join(cells) + ' |')
EOF
cat "$W/limits.log" >&2

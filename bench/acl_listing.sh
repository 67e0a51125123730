#!/usr/bin/env bash
# `ls -lR` through the mount against the local disk, on a tree without ACLs and on the same
# tree with an ACL on every file, and on a mount that began without ACLs and replaced its
# connection when the snapshot with them arrived (issue 23). One command:
#
#   sudo bash bench/acl_listing.sh
#
# Data: data/man of bench/lib.sh (~21k entries). Cold page cache before every run (the
# repository's and the source's), best of RUNS (3). Output: a table on stdout and in
# $BENCH_DIR/results-acl-listing.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$BENCH_DIR/results-acl-listing.txt
RUNS=${RUNS:-3}
W=$BENCH_DIR/acl-listing
cargo build --release --locked --quiet
C=$PWD/target/release/chronofs
build_data
command -v setfacl >/dev/null || apt-get install -y -qq acl >/dev/null
rm -rf "$W"; mkdir -p "$W/mnt"
cp -a "$DATA/man" "$W/noacl"
cp -a "$DATA/man" "$W/acl"
setfacl -R -m u:nobody:r "$W/acl"
"$C" -r "$W/repo" init -q
"$C" -r "$W/repo" backup -q --no-progress "$W/noacl"

best_ls() { # best of RUNS, cold, of `ls -lR DIR`
    local best=""
    for _ in $(seq 1 "$RUNS"); do
        drop; local t; t=$(now); ls -lR "$1" >/dev/null; t=$(elapsed "$t")
        if [ -z "$best" ] || awk "BEGIN { exit !($t < $best) }"; then best=$t; fi
    done
    echo "$best"
}
in_mnt() { echo "$W/mnt/latest$1"; }

local_noacl=$(best_ls "$W/noacl")
local_acl=$(best_ls "$W/acl")
"$C" -r "$W/repo" mount -q "$W/mnt"
mnt_noacl=$(best_ls "$(in_mnt "$W/noacl")")
# The snapshot with ACLs arrives while mounted: the mount replaces its connection.
"$C" -r "$W/repo" backup -q --no-progress "$W/acl"
t=$(now)
until getfacl -n "$(in_mnt "$W/acl")/man1" 2>/dev/null | grep -q "user:65534:"; do sleep 0.05; done
appeared=$(elapsed "$t")
mnt_acl_replaced=$(best_ls "$(in_mnt "$W/acl")")
"$C" umount "$W/mnt"
"$C" -r "$W/repo" mount -q "$W/mnt"
mnt_acl=$(best_ls "$(in_mnt "$W/acl")")
mnt_noacl_full=$(best_ls "$W/mnt/$(ls "$W/mnt" | grep -m1 '^20')$W/noacl")
"$C" umount "$W/mnt"
ratio() { calc %.2f "$1 / $2"; }
{
    echo "ls -lR through the mount, $(date -u +%F), $(nproc) cores, data/man ($(find "$W/noacl" | wc -l) entries), cold, best of $RUNS"
    echo "| tree | local | mount | mount / local |"
    echo "|---|---|---|---|"
    echo "| without ACLs, no snapshot holds any (the kernel told so) | ${local_noacl} s | ${mnt_noacl} s | $(ratio "$mnt_noacl" "$local_noacl") |"
    echo "| without ACLs, beside a snapshot with ACLs (per-file answers) | ${local_noacl} s | ${mnt_noacl_full} s | $(ratio "$mnt_noacl_full" "$local_noacl") |"
    echo "| an ACL on every file, fresh mount | ${local_acl} s | ${mnt_acl} s | $(ratio "$mnt_acl" "$local_acl") |"
    echo "| an ACL on every file, after the connection was replaced | ${local_acl} s | ${mnt_acl_replaced} s | $(ratio "$mnt_acl_replaced" "$local_acl") |"
    echo "| backup of the ACL tree done until its ACL shows in the running mount | | ${appeared} s | |"
} | tee "$OUT"

#!/usr/bin/env bash
# The README's demo: build chronofs, create an encrypted repository (the passphrase comes
# from CHRONOFS_PASSWORD, so nothing asks), back up a sample directory twice
# (a change in between), list the snapshots by date, mount the repository and `ls` across the
# dated directories, copy a file out with cp, and restore.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust first (https://rustup.rs), then rerun." >&2
    exit 1
fi
bash docs/packages.sh demo
cargo build --release --locked --quiet
bin="$PWD/target/release/chronofs"

work=$(mktemp -d /tmp/chronofs-demo.XXXXXX)
export CHRONOFS_REPO="$work/repo"
# A demo passphrase; for real backups use a long one, and --password-file or a prompt.
export CHRONOFS_PASSWORD="demo passphrase, not for real backups"
sample="$work/sample"
mkdir -p "$sample"
cp -r /usr/share/doc/. "$sample/doc" 2>/dev/null || true
seq 1 100000 > "$sample/numbers.txt"
truncate -s 1G "$sample/sparse-disk.img"

echo "== chronofs init (encrypted)";  "$bin" init
echo "== key list";                   "$bin" key list
echo "== first backup";               "$bin" backup "$sample"
sleep 1
echo "more" >> "$sample/numbers.txt"
echo "== second backup (only the change is read)"; "$bin" backup "$sample"
echo "== snapshots, one dated name each"; "$bin" snapshots
echo "== ls latest (first lines)";    "$bin" ls latest "$sample" | head -5
echo "== check --read-data";          "$bin" check --read-data
first=$("$bin" snapshots --json | grep -m1 '"name"' | sed 's/.*"name": "\(.*\)".*/\1/')
echo "== restore $first:$sample/numbers.txt"
"$bin" restore "$first:$sample/numbers.txt" --target "$work/restored"
tail -1 "$work/restored/numbers.txt"

mnt="$work/mnt"
mkdir -p "$mnt"
echo "== chronofs mount $mnt";      "$bin" mount "$mnt"
trap '"$bin" umount "$mnt" 2>/dev/null || true' EXIT
echo "== ls $mnt";                    ls -l "$mnt"
echo "== ls across dates: numbers.txt in every snapshot"
ls -l "$mnt"/20*/"$sample"/numbers.txt
echo "== the last line in each snapshot"
for d in "$mnt"/20*; do printf '%s: ' "$(basename "$d")"; tail -1 "$d/$sample/numbers.txt"; done
echo "== cp a file out of the first snapshot"
cp -a "$mnt/$first/$sample/numbers.txt" "$work/copied-numbers.txt"
cmp "$work/copied-numbers.txt" "$work/restored/numbers.txt" && echo "identical to the restore"
echo "== hosts/, tags/, ids/ and latest"; ls "$mnt/hosts"/* "$mnt/ids"; readlink "$mnt/latest"
echo "== at/TIME: the newest snapshot at or before any time (here: now)"; readlink "$mnt/at/0s"
echo "== chronofs umount $mnt";      "$bin" umount "$mnt"
trap - EXIT
echo "== demo repository at $CHRONOFS_REPO (remove $work when done)"

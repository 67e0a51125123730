#!/usr/bin/env bash
# Installs the Debian packages the demo or the tests use, with sudo when not root: so the
# README's commands work as root on a machine without sudo, and as a normal user with it.
#   bash docs/packages.sh demo|test
set -euo pipefail
case "${1:-demo}" in
    demo) packages=(build-essential fuse3 acl attr) ;;
    test) packages=(build-essential fuse3 acl attr util-linux rsync python3 perl tar coreutils
                    e2fsprogs xfsprogs btrfs-progs fdisk qemu-utils tzdata time systemd postgresql dpkg) ;;
    *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "installing ${missing[*]} needs root: run as root, or install sudo" >&2; exit 1; }
    as_root=(sudo)
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null

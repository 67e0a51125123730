#!/usr/bin/env bash
# Builds the Debian package of chronofs: the binary, its man pages, shell completions, the
# systemd units of scheduled jobs and example job files.
#
#   bash packaging/build-deb.sh [OUT_DIR]      # default OUT_DIR: target/debian
#
# It needs only cargo and dpkg-deb (Debian's dpkg). The man pages and completions are the
# checked-in, generated ones (see man/ and packaging/completions/; a test keeps them current).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/debian}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
cargo build --release --locked --quiet

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -Dm755 target/release/chronofs "$stage/usr/bin/chronofs"
strip --strip-debug "$stage/usr/bin/chronofs" 2>/dev/null || true
for page in man/*.1 man/*.5; do
    section=${page##*.}
    install -Dm644 "$page" "$stage/usr/share/man/man$section/$(basename "$page")"
    gzip -9n "$stage/usr/share/man/man$section/$(basename "$page")"
done
install -Dm644 packaging/completions/chronofs.bash "$stage/usr/share/bash-completion/completions/chronofs"
install -Dm644 packaging/completions/_chronofs "$stage/usr/share/zsh/vendor-completions/_chronofs"
install -Dm644 packaging/completions/chronofs.fish "$stage/usr/share/fish/vendor_completions.d/chronofs.fish"
for unit in packaging/systemd/*; do
    install -Dm644 "$unit" "$stage/lib/systemd/system/$(basename "$unit")"
done
for example in packaging/examples/*.conf; do
    install -Dm644 "$example" "$stage/usr/share/doc/chronofs/examples/$(basename "$example")"
done
install -Dm644 README.md "$stage/usr/share/doc/chronofs/README.md"
install -Dm644 docs/FORMAT.md "$stage/usr/share/doc/chronofs/FORMAT.md"
install -d -m755 "$stage/etc/chronofs"
cat > "$stage/usr/share/doc/chronofs/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: chronofs
License: MIT or Apache-2.0
COPYRIGHT

installed_kib=$(du -sk "$stage" | cut -f1)
install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: chronofs
Version: $version
Architecture: $arch
Maintainer: chronofs developers <chronofs@localhost>
Installed-Size: $installed_kib
Depends: libc6 (>= 2.34), fuse3
Recommends: acl, attr
Section: utils
Priority: optional
Description: versioned, deduplicated backups you can mount and browse by date
 chronofs keeps backups in a repository of deduplicated, compressed chunks.
 Every snapshot restores on its own and costs only what changed, and
 "chronofs mount" shows every snapshot as a dated directory, to copy files
 out with ordinary tools. Jobs in /etc/chronofs run from systemd timers, with
 retention, restore drills and monitoring.
CONTROL
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
# New template units: let a running systemd see them (not when installing into another root).
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
POSTINST
chmod 755 "$stage/DEBIAN/postinst"

mkdir -p "$out"
deb="$out/chronofs_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

#!/usr/bin/env bash
# The package test: builds the .deb, checks its contents with dpkg-deb -c, installs it into a
# throwaway root with dpkg --root, and checks what landed there: the binary runs, every man
# page and completion is in place, the systemd units pass `systemd-analyze verify`, and the
# example job files parse and schedule.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package test: $*" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
deb=$(bash packaging/build-deb.sh "$out/deb")
[ -f "$deb" ] || fail "no package built"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
expect=(./usr/bin/chronofs ./usr/share/man/man5/chronofs-job.5.gz
        ./usr/share/bash-completion/completions/chronofs
        ./usr/share/zsh/vendor-completions/_chronofs
        ./usr/share/fish/vendor_completions.d/chronofs.fish
        ./usr/share/doc/chronofs/examples/home.conf ./usr/share/doc/chronofs/copyright)
for page in man/*.1; do expect+=("./usr/share/man/man1/$(basename "$page").gz"); done
for unit in packaging/systemd/*; do expect+=("./lib/systemd/system/$(basename "$unit")"); done
for f in "${expect[@]}"; do
    grep -qxF "$f" <<<"$contents" || fail "$f is missing from the package"
done
dpkg-deb -f "$deb" Depends | grep -q fuse3 || fail "the package does not depend on fuse3"

root="$out/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" >/dev/null 2>&1 \
    || fail "dpkg --root could not install the package"
dpkg --root="$root" -s chronofs | grep -q "Status: install ok installed" || fail "not installed"
"$root/usr/bin/chronofs" --version | grep -q "chronofs" || fail "the installed binary does not run"
zcat "$root/usr/share/man/man1/chronofs-backup.1.gz" | grep -q "pre\\\\-exec" \
    || fail "chronofs-backup.1 lacks --pre-exec"

# The units, as instances of a job named "home", with the installed binary where they expect it.
units="$out/units"
mkdir -p "$units"
for unit in "$root"/lib/systemd/system/*; do
    name=$(basename "$unit")
    sed "s|/usr/bin/chronofs|$root/usr/bin/chronofs|; s|/etc/chronofs/%i.conf|$root/usr/share/doc/chronofs/examples/%i.conf|" \
        "$unit" > "$units/${name/@/@home}"
done
verify=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$units"/* 2>&1 || true)
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"

# The example job files parse, and their schedules are calendars systemd accepts.
export CHRONOFS_CONFIG_DIR="$root/usr/share/doc/chronofs/examples"
for job in home postgres; do
    "$root/usr/bin/chronofs" job show "$job" >/dev/null || fail "example job $job does not parse"
    "$root/usr/bin/chronofs" job schedule "$job" --systemd-dir "$out/systemd" >/dev/null
done
for dropin in "$out"/systemd/*/schedule.conf; do
    calendar=$(sed -n 's/^OnCalendar=\(.\+\)$/\1/p' "$dropin")
    systemd-analyze calendar "$calendar" >/dev/null || fail "$dropin: bad calendar $calendar"
done
echo "package test: ok ($(basename "$deb"), $(grep -c . <<<"$contents") entries)"

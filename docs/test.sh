#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite as root
# (restoring owners, device nodes and ACLs, mounting, and the PostgreSQL recipe need it; with
# CHRONOFS_REQUIRE_ROOT_TESTS=1 those tests fail rather than skip), then the package test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash docs/packages.sh test
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo -E env "PATH=$PATH")
"${as_root[@]}" env CHRONOFS_REQUIRE_ROOT_TESTS=1 cargo test --locked "$@"
"${as_root[@]}" bash packaging/test-deb.sh

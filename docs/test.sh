#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite as root
# (restoring owners, device nodes and ACLs, mounting, and the PostgreSQL recipe need it; with
# CHRONOFS_REQUIRE_ROOT_TESTS=1 those tests fail rather than skip), then the package test.
# The object-storage tests run against a real S3 server, Garage, which tests/s3/server.sh builds
# once per machine (about 10 minutes on 2 cores; later runs reuse the built copy).
set -euo pipefail
cd "$(dirname "$0")/.."
bash docs/packages.sh test
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo -E env "PATH=$PATH")
"${as_root[@]}" bash tests/s3/server.sh install
"${as_root[@]}" env CHRONOFS_REQUIRE_ROOT_TESTS=1 cargo test --locked "$@"
"${as_root[@]}" bash packaging/test-deb.sh

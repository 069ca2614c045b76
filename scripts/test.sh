#!/usr/bin/env bash
# Set-up (idempotent), then the test suite. Extra arguments go to ctest, e.g. `-L fast`.
# Labels: fast (unit), slow (shared data, end-to-end CLI), service (real servers), gpu.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build_dir=${DEEPSCAN_BUILD_DIR:-$root/build}
cd "$build_dir"
exec ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@"

#!/usr/bin/env bash
# Set-up (idempotent), then `deepscan scan` on the given videos, or on the bundled sample clip.
#   scripts/scan.sh                       scan third_party/sample/sample.mp4
#   scripts/scan.sh clip.mp4 dir/ -f json any `deepscan scan` arguments
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" >&2
build_dir=${DEEPSCAN_BUILD_DIR:-$root/build}
if [ $# -eq 0 ]; then
  set -- "$root/third_party/sample/sample.mp4"
fi
exec "$build_dir/deepscan" scan "$@"

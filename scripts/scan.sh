#!/usr/bin/env bash
# Set-up (idempotent), then `deepscan scan` on the given videos, or on the bundled sample clip.
#   scripts/scan.sh                       scan third_party/sample/sample.mp4
#   scripts/scan.sh clip.mp4 dir/ -f json any `deepscan scan` arguments
# A usage placeholder pasted as is ([VIDEO...], <video>) that names no file is refused at once
# (exit 2), before the set-up, instead of being scanned as a file name.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for arg in "$@"; do
  case $arg in
    \[*\] | \<*\>)
      if [ ! -e "$arg" ]; then
        echo "scripts/scan.sh: '$arg' is a placeholder, not a file: name real videos (scripts/scan.sh clip.mp4 dir/)," \
             "or give none to scan the bundled sample clip" >&2
        exit 2
      fi
      ;;
  esac
done
"$root/scripts/setup.sh" >&2
build_dir=${DEEPSCAN_BUILD_DIR:-$root/build}
if [ $# -eq 0 ]; then
  set -- "$root/third_party/sample/sample.mp4"
fi
exec "$build_dir/deepscan" scan "$@"

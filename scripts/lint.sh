#!/usr/bin/env bash
# Formatting and static checks. `scripts/lint.sh` checks; `scripts/lint.sh --fix` reformats in place.
# clang-tidy reads build/compile_commands.json (made by scripts/setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}"
mapfile -t sources < <(git ls-files '*.cc')
clang-tidy -p "${DEEPSCAN_BUILD_DIR:-build}" --quiet "${sources[@]}" 2>/dev/null | grep -E 'warning|error' && exit 1
echo "lint: clean (${#files[@]} files)"

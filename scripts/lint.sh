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
# clang-tidy over the inference library and the tools (the LibTorch sources of src/train take minutes
# per file to analyse; `scripts/lint.sh --all` includes them).
if [ "${1:-}" = "--all" ]; then
  mapfile -t sources < <(git ls-files '*.cc')
else
  mapfile -t sources < <(git ls-files 'src/core/*.cc' 'src/video/*.cc' 'src/face/*.cc' 'src/infer/*.cc' \
    'src/pipeline/*.cc' 'src/track/*.cc' 'src/report/*.cc' 'tools/deepscan/*.cc' | grep -v -e train_command -e train_main)
fi
clang-tidy -p "${DEEPSCAN_BUILD_DIR:-build}" --quiet "${sources[@]}" 2>/dev/null | grep -E 'warning|error' && exit 1
echo "lint: clean (${#files[@]} files)"

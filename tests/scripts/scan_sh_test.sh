#!/usr/bin/env bash
# scripts/scan.sh and the README's first command: the line a new user pastes must work as written.
#   tests/scripts/scan_sh_test.sh SOURCE_DIR
# Checks: the README's first command has no placeholder left in it; scripts/scan.sh refuses a
# pasted placeholder ([VIDEO...], <video>) that names no file with exit 2 and a message naming it,
# before it runs the set-up.
set -uo pipefail
src=$1
fail() { echo "FAIL: $*"; exit 1; }

first=$(sed -n '/^```sh$/,/^```$/p' "$src/README.md" | grep -m1 '^scripts/scan.sh')
[ -n "$first" ] || fail "the README shows no scripts/scan.sh command"
command=${first%%#*}
echo "README's first command: '$command'"
case $command in *'['* | *'<'* | *'...'*) fail "the README's first command holds a placeholder: $command" ;; esac
[ "$(echo $command)" = "scripts/scan.sh" ] || fail "the README's first command is not plain scripts/scan.sh: $command"

for placeholder in '[VIDEO...]' '<video>'; do
  out=$(cd "$(mktemp -d)" && DEEPSCAN_BUILD_DIR=/nonexistent "$src/scripts/scan.sh" "$placeholder" -f json 2>&1)
  rc=$?
  [ $rc -eq 2 ] || fail "scripts/scan.sh '$placeholder' exited $rc, not 2: $out"
  grep -qF "'$placeholder' is a placeholder" <<<"$out" || fail "no clear message for '$placeholder': $out"
  grep -q '\[setup\]' <<<"$out" && fail "the set-up ran before the placeholder was refused: $out"
  echo "ok: scripts/scan.sh '$placeholder' -> exit 2: $out"
done
echo "ok"

#!/usr/bin/env bash
# CTest driver of page_test.mjs: starts `deepscan serve` on a free loopback port (with an API key, so the page's
# key field is exercised), runs the headless-Chromium test against it, stops the server.
#   tests/web/run_page_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (skipped) when node, chromium or playwright-core (npm ci in tests/web, done by scripts/setup.sh) is missing.
set -uo pipefail
build=$1
src=$2
command -v node >/dev/null || { echo "skip: no node"; exit 77; }
[ -d "$src/tests/web/node_modules/playwright-core" ] || { echo "skip: run npm ci in tests/web (scripts/setup.sh does)"; exit 77; }
log=$(mktemp)
key=page-test-key
"$build/deepscan" serve --port 0 --api-key "$key" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(grep -o '"port":[0-9]*' "$log" | head -1 | cut -d: -f2)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start:"; cat "$log"; exit 1; }
node "$src/tests/web/page_test.mjs" "http://127.0.0.1:$port" "$src/third_party/sample/sample.mp4" "$key"

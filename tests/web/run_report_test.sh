#!/usr/bin/env bash
# CTest driver of report_test.mjs: scans the sample clip (under a file name full of HTML's special characters) and a
# missing file twice, as JSON and as HTML, then checks the HTML report in headless Chromium against the JSON.
#   tests/web/run_report_test.sh BUILD_DIR SOURCE_DIR
# Artifacts kept in BUILD_DIR/report-test/: report.html, report.json, report.png (a full-page screenshot).
# Exit 77 (skipped) when node, chromium or playwright-core (npm ci in tests/web, done by scripts/setup.sh) is missing.
set -uo pipefail
build=$1
src=$2
command -v node >/dev/null || { echo "skip: no node"; exit 77; }
[ -d "$src/tests/web/node_modules/playwright-core" ] || { echo "skip: run npm ci in tests/web (scripts/setup.sh does)"; exit 77; }
sample=$src/third_party/sample/sample.mp4
[ -f "$sample" ] || { echo "skip: $sample is missing: run scripts/setup.sh"; exit 77; }
out=$build/report-test
rm -rf "$out" && mkdir -p "$out/videos"
clip="$out/videos/sample <b>&amp; \"it's\" <\\b>.mp4"
ln -s "$sample" "$clip"
missing="$out/videos/missing <i>.mp4"
for format in json html; do
  "$build/deepscan" scan --no-tuned --threads 2 -f $format -o "$out/report.$format" "$clip" "$missing" 2>"$out/scan-$format.log"
  rc=$?
  # 3: one of several inputs failed (the missing one), docs/exit-codes.md.
  [ $rc -eq 3 ] || { echo "FAIL: deepscan scan -f $format exited $rc, not 3:"; cat "$out/scan-$format.log"; exit 1; }
done
ls -l "$out/report.html"
node "$src/tests/web/report_test.mjs" "$out/report.html" "$out/report.json" "$out/report.png"

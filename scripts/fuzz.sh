#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang++ with ASan + UBSan) and runs each for SECONDS
# (default 30). Corpora go to build-fuzz/corpus/<target> (kept between runs); fuzz/seeds/<target>,
# when present, seeds it.
#   scripts/fuzz.sh [SECONDS]
# Exit 77 (CTest "skipped") when clang++ or the libFuzzer runtime is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
out=${DEEPSCAN_FUZZ_DIR:-$root/build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ not installed (apt install clang libclang-rt-14-dev)"; exit 77; }
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/include" -I"$root/src")
build() {  # build NAME SOURCES...
  local name=$1; shift
  if ! clang++ "${flags[@]}" "$@" -o "$out/$name" 2>"$out/$name.log"; then
    if grep -q "fuzzer" "$out/$name.log"; then echo "fuzz: libFuzzer runtime missing (apt install libclang-rt-14-dev)"; exit 77; fi
    cat "$out/$name.log"; exit 1
  fi
}
build csv_fuzz "$root/fuzz/csv_fuzz.cc" "$root/src/train/manifest.cc" "$root/src/core/status.cc"
build model_metadata_fuzz "$root/fuzz/model_metadata_fuzz.cc" "$root/src/infer/model_metadata.cc" "$root/src/core/status.cc"
build report_fuzz "$root/fuzz/report_fuzz.cc" "$root/src/report/report.cc" "$root/src/core/status.cc" "$root/src/core/verdict.cc"
build nal_fuzz "$root/fuzz/nal_fuzz.cc" "$root/src/video/nal.cc"
build verdict_json_fuzz "$root/fuzz/verdict_json_fuzz.cc" "$root/src/report/verdict_json.cc" "$root/src/report/report.cc" \
  "$root/src/core/status.cc" "$root/src/core/verdict.cc"
build serve_request_fuzz "$root/fuzz/serve_request_fuzz.cc" "$root/src/serve/request_parse.cc" "$root/src/serve/image_probe.cc" \
  "$root/src/serve/stream_message.cc" "$root/src/core/status.cc"
build tfjs_model_fuzz "$root/fuzz/tfjs_model_fuzz.cc" "$root/src/train/tfjs_model.cc" "$root/src/core/status.cc"
build queue_entry_fuzz "$root/fuzz/queue_entry_fuzz.cc" "$root/src/queue/entry.cc" "$root/src/queue/redis_url.cc" \
  "$root/src/report/base64.cc" "$root/src/report/verdict_json.cc" "$root/src/report/report.cc" "$root/src/core/status.cc" "$root/src/core/verdict.cc"
for t in csv_fuzz model_metadata_fuzz report_fuzz nal_fuzz verdict_json_fuzz serve_request_fuzz queue_entry_fuzz tfjs_model_fuzz; do
  mkdir -p "$out/corpus/$t"
  seeds=()
  [ -d "$root/fuzz/seeds/$t" ] && seeds=("$root/fuzz/seeds/$t")
  echo "fuzz: $t for ${seconds}s"
  rc=0
  "$out/$t" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 -artifact_prefix="$out/$t-" \
    "$out/corpus/$t" "${seeds[@]}" >"$out/$t.run.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "$out/$t.run.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t failed (exit $rc); log $out/$t.run.log, crash input $out/$t-*"
    exit 1
  fi
done
echo "fuzz: no crash"

#!/usr/bin/env bash
# `deepscan tune` refuses bad architecture-search input (docs/search.md, "Architecture search": bad
# input) with exit 2 and a message naming the field, before any Python or training runs: nothing is
# written to --out.
#   tests/search/nas_bad_input_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") without Debian's python3-optuna.
source "$(dirname "$0")/tune_test_env.sh"
fail() { echo "FAIL: $*"; exit 1; }
nas_base='{"model": {"arch": "mobilenetv3_nas", "width": 0.25, "input_size": 48}}'
good='{"parameters": {"model.nas.depth.4": {"type": "int", "low": 1, "high": 3}}}'

# expect EXIT TEXT BASE_JSON SPACE_JSON [FLAGS...]
n=0
expect() {
  local want=$1 text=$2 base=$3 space=$4
  shift 4
  n=$((n + 1))
  printf '%s' "$base" >"$tmp/base$n.json"
  printf '%s' "$space" >"$tmp/space$n.json"
  "$deepscan" tune --space "$tmp/space$n.json" --config "$tmp/base$n.json" --store "$tmp/store.h5" \
    --out "$tmp/out$n" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  [ "$got" = "$want" ] || fail "case $n ($text): exit $got, expected $want; stderr: $(cat "$tmp/stderr")"
  grep -qF -- "$text" "$tmp/stderr" || fail "case $n: stderr lacks '$text': $(cat "$tmp/stderr")"
  echo "ok $n: exit $got: $(head -1 "$tmp/stderr")"
}
# The base config's architecture.
expect 2 "unknown nas field 'width' (depth, kernel, expand, se, act)" \
  '{"model": {"arch": "mobilenetv3_nas", "input_size": 48, "nas": {"width": [1, 1, 1, 1, 1]}}}' "$good"
expect 2 "nas.depth[2] = 7 is outside [1, 6]" \
  '{"model": {"arch": "mobilenetv3_nas", "input_size": 48, "nas": {"depth": [1, 2, 7, 2, 3]}}}' "$good"
expect 2 "nas.kernel needs 5 entries (one per stage), not 2" \
  '{"model": {"arch": "mobilenetv3_nas", "input_size": 48, "nas": {"kernel": [3, 5]}}}' "$good"
expect 2 "\"nas\" is read by arch mobilenetv3_nas only (this spec's arch is mobilenetv3_small)" \
  '{"model": {"arch": "mobilenetv3_small", "input_size": 48, "nas": {"depth": [1, 1, 1, 1, 1]}}}' "$good"
# The space's architecture parameters.
expect 2 "parameter 'model.nas.depth.1': 9 is outside what it accepts, [1, 6]" "$nas_base" \
  '{"parameters": {"model.nas.depth.1": {"type": "int", "low": 1, "high": 9}}}'
expect 2 "unknown architecture parameter 'model.nas.ratio.1': expected model.nas.FIELD.STAGE" "$nas_base" \
  '{"parameters": {"model.nas.ratio.1": {"type": "float", "low": 1, "high": 6}}}'
expect 2 "unknown architecture parameter 'model.nas.depth.7'" "$nas_base" \
  '{"parameters": {"model.nas.depth.7": {"type": "int", "low": 1, "high": 2}}}'
expect 2 "nas.kernel[3] = 4 is not 3, 5 or 7" "$nas_base" \
  '{"parameters": {"model.nas.kernel.3": {"type": "categorical", "choices": [3, 4]}}}'
expect 2 "kernels are odd (3, 5, 7)" "$nas_base" \
  '{"parameters": {"model.nas.kernel.3": {"type": "int", "low": 3, "high": 7}}}'
expect 2 "parameter 'model.nas.expand.0': 12 is outside what it accepts, [1, 8]" "$nas_base" \
  '{"parameters": {"model.nas.expand.0": {"type": "float", "low": 1, "high": 12}}}'
expect 2 "choice \"gelu\" is not one of relu, hswish" "$nas_base" \
  '{"parameters": {"model.nas.act.2": {"type": "categorical", "choices": ["relu", "gelu"]}}}'
expect 2 "parameter 'model.nas.se.2' is not a number: use \"categorical\"" "$nas_base" \
  '{"parameters": {"model.nas.se.2": {"type": "int", "low": 0, "high": 1}}}'
expect 2 "searches arch mobilenetv3_nas, but the base config's is mobilenetv3_small" \
  '{"model": {"arch": "mobilenetv3_small", "input_size": 48}}' "$good"
expect 2 "cannot be searched with model.arch" "$nas_base" \
  '{"parameters": {"model.nas.depth.4": {"type": "int", "low": 1, "high": 3},
                   "model.arch": {"type": "categorical", "choices": ["mobilenetv3_nas", "mobilenetv3_small"]}}}'
# The latency settings.
expect 2 "--max-ms-per-face must be >= 0" "$nas_base" "$good" --max-ms-per-face -1
expect 2 "--measure-device: tpu not in {cpu,cuda,auto}" "$nas_base" "$good" --measure-device tpu
for i in $(seq 1 $n); do [ ! -e "$tmp/out$i" ] || fail "case $i wrote $tmp/out$i (the C++ checks come first)"; done
echo "PASS"

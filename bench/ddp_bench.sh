#!/usr/bin/env bash
# Data-parallel training speed (docs/distributed.md; figures in docs/benchmarks.md): the default recipe
# (configs/train-default.json: mobilenetv1_s16, 160 px since version 4, 16 pairs a step, SBI synthesis)
# on the real crop store, trained
#   A. by 1 process with T threads (all cores: today's `deepscan train`),
#   B. by 1 process with 1 thread,
#   C. by `--nproc 2`, 1 thread each (the same global batch of 16 pairs: 8 per rank),
# each for S and 2S steps from the same start, so that (t(2S) - t(S)) / S is the time of a training step
# without start-up, validation or export. Prints ms per step, pairs/s and the ratios; asserts no time.
#   bench/ddp_bench.sh [BUILD_DIR]      env: STEPS=30 STORE=.cache/real_crops.h5 THREADS=$(nproc)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
deepscan="$build/deepscan"
steps=${STEPS:-30}
store=${STORE:-$root/.cache/real_crops.h5}
threads=${THREADS:-$(nproc)}
[ -f "$store" ] || { echo "ddp_bench: no crop store $store (scripts/train-default.sh step 1 makes it)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The default recipe, validation made small (it is not what is measured) and no dev / fake stores.
/usr/bin/python3 - "$root/configs/train-default.json" "$tmp/config.json" "$store" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(store=sys.argv[3], dev_store="", val_fakes_store="", val_pairs=16, epochs=1, warmup_steps=10)
if c.get("init") and not c["init"].startswith("/"):
    import os
    c["init"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[1]))), c["init"])
json.dump(c, open(sys.argv[2], "w"))
PY
pairs=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pairs_per_batch"])' "$tmp/config.json")

# run NAME STEPS ARGS...: wall seconds of one training run (and its peak RSS in MB, largest process)
run() {
  local name=$1 n=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  OMP_WAIT_POLICY=PASSIVE /usr/bin/time -f '%M' -o "$tmp/$name-$n.rss" "$deepscan" train --config "$tmp/config.json" \
    --steps-per-epoch "$n" --out "$tmp/$name-$n" --no-progress "$@" >"$tmp/$name-$n.log" 2>&1 ||
    { echo "ddp_bench: $name ($n steps) failed:"; tail -5 "$tmp/$name-$n.log"; exit 1; }
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}
declare -A ms
printf '%-42s %9s %9s %11s %9s\n' "configuration" "t(${steps})" "t($((2 * steps)))" "ms / step" "pairs/s"
for cfg in "A:1 process, ${threads} threads:--threads ${threads}" "B:1 process, 1 thread:--threads 1" \
           "C:2 processes (--nproc 2), 1 thread each:--nproc 2 --threads 1"; do
  IFS=: read -r key label args <<<"$cfg"
  # shellcheck disable=SC2086
  t_short=$(run "$key" "$steps" $args)
  # shellcheck disable=SC2086
  t_long=$(run "$key" "$((2 * steps))" $args)
  ms[$key]=$(echo "$t_short $t_long $steps" | awk '{printf "%.1f", ($2 - $1) / $3 * 1000}')
  pps=$(echo "${ms[$key]} $pairs" | awk '{printf "%.1f", $2 / ($1 / 1000)}')
  printf '%-42s %8.1fs %8.1fs %11s %9s\n' "$label" "$t_short" "$t_long" "${ms[$key]}" "$pps"
done
# the weights of C's two ranks after the run (they must agree; the trainer checks it every epoch)
echo "C's weights digest: rank 0 $(grep -o 'weights [0-9a-f]*' "$tmp/C-$((2 * steps)).log" | tail -1 | cut -d' ' -f2)," \
  "rank 1 $(grep -o 'weights [0-9a-f]*' "$tmp/C-$((2 * steps))/rank-1.log" | tail -1 | cut -d' ' -f2)"
echo "peak RSS (largest process): A $(cat "$tmp/A-$((2 * steps)).rss" | awk '{printf "%.0f", $1/1024}') MB," \
  "C $(cat "$tmp/C-$((2 * steps)).rss" | awk '{printf "%.0f", $1/1024}') MB per rank"
echo "speed-up of 2 processes: $(echo "${ms[B]} ${ms[C]}" | awk '{printf "%.2f", $1 / $2}')x over 1 process on 1 thread," \
  "$(echo "${ms[A]} ${ms[C]}" | awk '{printf "%.2f", $1 / $2}')x over 1 process on ${threads} threads;" \
  "1 process: ${threads} threads $(echo "${ms[B]} ${ms[A]}" | awk '{printf "%.2f", $1 / $2}')x over 1 thread"

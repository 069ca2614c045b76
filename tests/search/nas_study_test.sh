#!/usr/bin/env bash
# An architecture search on a two-point space (docs/search.md, "Architecture search"), SQLite, a tiny
# synthetic store:
#   1. a multi-objective study (NSGA-II) over 2 architectures, run until both were drawn (3 trials or
#      more, so at least one repeats an architecture): each architecture is measured exactly once, every
#      other trial reads the cache, the cache file holds the two, the ms figures are positive, and the
#      Pareto front and study-summary.json name the architectures;
#   2. the same command with one more trial continues the study: its architecture comes from the
#      cache, nothing is measured again;
#   3. another study sharing the cache with a budget below both architectures: every trial is pruned
#      before training (no epoch trained), still without a new measurement;
#   4. a front member's pareto/trial-N.json trains with `deepscan train --config` (the "trained fully" step).
#   tests/search/nas_study_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") without Debian's python3-optuna.
tune_test_groups=8 tune_test_per_group=3
source "$(dirname "$0")/tune_test_env.sh"
logs=()
fail() { echo "FAIL: $*"; for l in "${logs[@]}"; do sed "s|^|  $(basename "$l"): |" "$l"; done; exit 1; }
cat >"$tmp/base.json" <<JSON
{"model": {"arch": "mobilenetv3_nas", "width": 0.25, "input_size": 48, "dropout": 0.0},
 "pairs_per_batch": 4, "val_fraction": 0.25, "val_pairs": 8, "warmup_steps": 0, "threads": 1,
 "epochs": 1, "steps_per_epoch": 2, "seed": 1, "store": "$tmp/store.h5"}
JSON
# Two architectures: stage 4 with one block or with five.
cat >"$tmp/space.json" <<JSON
{"parameters": {"model.nas.depth.4": {"type": "categorical", "choices": [1, 5]}}}
JSON
study=(tune --space "$tmp/space.json" --config "$tmp/base.json" --out "$tmp/nas" --multi-objective --seed 3
       --measure-threads 1 --measure-device cpu)

# ---- 1. trials until both architectures were drawn (3, then one more at a time, at most 8) --------
# The sampler is seeded, so this is deterministic; the loop only keeps the test independent of which
# architecture the seed draws first.
distinct() {
  /usr/bin/python3 -c 'import json,sys; print(len({t["arch"] for t in json.load(open(sys.argv[1]))["trials"]}))' \
    "$tmp/nas/study-summary.json"
}
trials=3
logs+=("$tmp/run1.log")
"$deepscan" "${study[@]}" --trials $trials >"$tmp/run1.log" 2>&1 || fail "run 1 exited $?"
while [ "$(distinct)" -lt 2 ]; do
  [ $trials -lt 8 ] || fail "8 trials drew one architecture"
  trials=$((trials + 1))
  "$deepscan" "${study[@]}" --trials $trials >>"$tmp/run1.log" 2>&1 || fail "run 1 (to $trials trials) exited $?"
done
measured=$(grep -c "ms per face on cpu, 1 thread(s) (measured)" "$tmp/run1.log")
cached=$(grep -c "ms per face on cpu, 1 thread(s) (from the latency cache)" "$tmp/run1.log")
[ "$measured" = 2 ] && [ "$cached" = $((trials - 2)) ] ||
  fail "run 1: $trials trials, $measured measured, $cached cached; expected 2 and $((trials - 2))"
[ "$cached" -ge 1 ] || fail "no cache hit in $trials trials"
grep -q "Pareto front (val_auc vs ms per face" "$tmp/run1.log" || fail "no Pareto front printed"
grep -E "^ +[0-9]+ +[0-9.]+ +[0-9.]+ +nas w0.25 48px d1232[15] " "$tmp/run1.log" >/dev/null ||
  fail "the Pareto front does not name the architectures"
/usr/bin/python3 - "$tmp/nas" "$trials" <<'PY' || fail "run 1 results"
import json, sys
d, trials = sys.argv[1], int(sys.argv[2])
cache = json.load(open(d + "/latency-cache.json"))["entries"]
assert len(cache) == 2, list(cache)
assert all(e["ms_per_face"] > 0 and e["device"] == "cpu" and e["threads"] == 1 for e in cache.values()), cache
keys = sorted(cache)
assert '"depth":[1,2,3,2,1]' in keys[0] + keys[1] and '"depth":[1,2,3,2,5]' in keys[0] + keys[1], keys
assert all("|onnxruntime-cpu|threads=1|cpu=" in k for k in keys), keys
s = json.load(open(d + "/study-summary.json"))
done = [t for t in s["trials"] if t["state"] == "complete"]
assert len(done) == trials, s["trials"]
assert sorted(t["latency_cached"] for t in done) == [False, False] + [True] * (trials - 2), done
assert all(t["values"][1] == t["ms_per_face"] > 0 for t in done), done
archs = s["architectures"]
assert sorted(archs) == ["nas w0.25 48px d12321 k33555 e1-4-6-3-6 se10111 act rrhhh",
                         "nas w0.25 48px d12325 k33555 e1-4-6-3-6 se10111 act rrhhh"], archs
assert sum(len(a["trials"]) for a in archs.values()) == trials
assert all(a["measured_in_trial"] is not None and a["ms_per_face"] > 0 for a in archs.values()), archs
# Each trial's figure is its architecture's cached one.
by_label = {e["label"]: e["ms_per_face"] for e in cache.values()}
assert all(abs(t["ms_per_face"] - by_label[t["arch"]]) < 1e-12 for t in done), (done, by_label)
front = s["pareto_front"]
assert front, s
for n in front:
    c = json.load(open(d + "/pareto/trial-%d.json" % n))
    t = [x for x in done if x["number"] == n][0]
    assert c["model"]["nas"]["depth"][4] == t["params"]["model.nas.depth.4"], (c["model"], t)
print("cache:", {e["label"].split()[3]: round(e["ms_per_face"], 3) for e in cache.values()}, "front:", front)
PY

# ---- 2. the rerun continues the study: a cache hit, no new measurement ----------------------------
logs+=("$tmp/run2.log")
"$deepscan" "${study[@]}" --trials $((trials + 1)) >"$tmp/run2.log" 2>&1 || fail "run 2 exited $?"
grep -q "(from the latency cache)" "$tmp/run2.log" || fail "run 2's trial was not a cache hit"
grep -q "(measured)" "$tmp/run2.log" && fail "run 2 measured an architecture again"
/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1] + "/study-summary.json"))
assert s["counts"]["complete"] == int(sys.argv[2]), s["counts"]
assert len(json.load(open(sys.argv[1] + "/latency-cache.json"))["entries"]) == 2' "$tmp/nas" $((trials + 1)) ||
  fail "run 2 results"

# ---- 3. a budget below both: pruned before training, from the shared cache ------------------------
logs+=("$tmp/run3.log")
"$deepscan" tune --space "$tmp/space.json" --config "$tmp/base.json" --out "$tmp/budget" --trials 2 --seed 4 \
  --measure-device cpu --latency-cache "$tmp/nas/latency-cache.json" --max-ms-per-face 0.000001 --pruner none \
  >"$tmp/run3.log" 2>&1 || fail "run 3 exited $?"
[ "$(grep -c "is over the budget of 0.00 ms: pruned before training" "$tmp/run3.log")" = 2 ] || fail "run 3: not 2 trials over budget"
grep -q "(measured)" "$tmp/run3.log" && fail "run 3 measured instead of reading the shared cache"
for n in 0 1; do
  [ ! -f "$tmp/budget/trials/$n/state.json" ] || fail "over-budget trial $n trained"
done
/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1] + "/study-summary.json"))
assert s["counts"]["pruned"] == 2 and all(t["over_budget"] for t in s["trials"]), s' "$tmp/budget" || fail "run 3 results"

# ---- 4. a front member trains from its config -----------------------------------------------------
n=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pareto_front"][0])' "$tmp/nas/study-summary.json")
logs+=("$tmp/final.log")
"$deepscan" train --config "$tmp/nas/pareto/trial-$n.json" --epochs 1 --steps-per-epoch 1 --out "$tmp/final" \
  --no-progress >"$tmp/final.log" 2>&1 || fail "deepscan train --config pareto/trial-$n.json"
grep -q '"arch": "mobilenetv3_nas"' "$tmp/final/model.json" || fail "the trained model's metadata lacks its architecture"
echo "PASS"

#!/usr/bin/env bash
# A 4-trial `deepscan tune` study on a tiny synthetic store with SQLite (docs/search.md):
#   1. the median pruner prunes at least one trial (its child trainer stopped after the epoch it
#      reported, fewer epochs in its state.json than the budget);
#   2. the study killed with SIGKILL mid-trial (its trainer child dies with it), then the same command
#      rerun: the trial left RUNNING is failed and retried at once (same parameters, continued from the
#      killed trial's checkpoint), numbering continues, the study ends with exactly 4 finished trials and
#      no parameter set finished twice;
#   3. finished trials keep their model, not last.pt / optimizer.pt; a pruned one keeps no checkpoint;
#      best-config.json is a config `deepscan train --config` trains from; history.png is a PNG;
#   4. a multi-objective study (NSGA-II) records the measured ms per face, prints the Pareto front and
#      writes pareto.png.
#   tests/search/tune_study_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") without Debian's python3-optuna.
set -uo pipefail
build=$1
src=$2
/usr/bin/python3 -c 'import optuna' 2>/dev/null || { echo "skip: python3-optuna missing (apt-get install python3-optuna)"; exit 77; }
tmp=$(mktemp -d)
tune_pid=""
cleanup() {
  [ -n "$tune_pid" ] && kill -KILL "$tune_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run1.log" ] && sed 's/^/  run1: /' "$tmp/run1.log"; [ -f "$tmp/run2.log" ] && sed 's/^/  run2: /' "$tmp/run2.log"; exit 1; }
deepscan="$build/deepscan"
"$build/tests/tiny_crop_store" "$tmp/store.h5" 16 3 || fail "tiny_crop_store"
# A tiny model, 3 epochs of 2 steps, one thread (deterministic for the seed).
cat >"$tmp/base.json" <<JSON
{"model": {"arch": "mobilenetv3_small", "width": 0.5, "input_size": 64, "mask_head": true, "dropout": 0.0},
 "pairs_per_batch": 8, "val_fraction": 0.25, "val_pairs": 16, "warmup_steps": 0, "threads": 1,
 "epochs": 3, "steps_per_epoch": 2, "seed": 1, "store": "$tmp/store.h5"}
JSON
# A wide learning-rate range: its high end diverges, so some trials are clearly worse.
cat >"$tmp/space.json" <<JSON
{"parameters": {"lr": {"type": "float", "low": 1e-5, "high": 2e-1, "log": true},
                "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
                "sbi_blend_ratios": {"type": "categorical", "choices": [true, false]}}}
JSON
study=(tune --space "$tmp/space.json" --config "$tmp/base.json" --out "$tmp/study" --trials 4 --seed 7
       --pruner median --startup-trials 1 --warmup-epochs 1 --heartbeat 5)

# ---- run 1: killed (SIGKILL) while trial 1 trains, after its first epoch ------------------------
start=$(date +%s.%N)
"$deepscan" "${study[@]}" >"$tmp/run1.log" 2>&1 &
tune_pid=$!
for _ in $(seq 1 1200); do
  [ -f "$tmp/study/trials/1/state.json" ] && break
  kill -0 "$tune_pid" 2>/dev/null || fail "run 1 ended before trial 1 finished an epoch"
  sleep 0.05
done
[ -f "$tmp/study/trials/1/state.json" ] || fail "trial 1 never finished an epoch"
kill -KILL "$tune_pid"
wait "$tune_pid" 2>/dev/null
tune_pid=""
sleep 0.5
pgrep -f "tune-trial.*$tmp/study" >/dev/null && fail "a trial's trainer outlived the killed study"
echo "run 1 killed during trial 1 after $(echo "$(date +%s.%N) - $start" | bc) s"

# The storage now holds trial 0 finished and trial 1 RUNNING (nobody will tell it otherwise).
query() {
  /usr/bin/python3 - "$tmp/study/study.db" "$@" <<'PY'
import json, sys, warnings
warnings.filterwarnings("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
s = optuna.load_study(study_name="deepscan-tune", storage="sqlite:///" + sys.argv[1])
print(json.dumps([{"n": t.number, "state": t.state.name, "params": t.params,
                   "steps": sorted(t.intermediate_values), "retry": t.system_attrs.get("retry_history", [])}
                  for t in s.get_trials(deepcopy=False)]))
PY
}
q1=$(query) || fail "cannot read the study"
echo "after the kill: $q1"
echo "$q1" | /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin); assert [x["state"] for x in t][:2] == ["COMPLETE", "RUNNING"], t' ||
  fail "expected trial 0 COMPLETE and trial 1 RUNNING after the kill"

# ---- run 2: the same command continues the study ------------------------------------------------
start=$(date +%s.%N)
"$deepscan" "${study[@]}" >"$tmp/run2.log" 2>&1 || fail "run 2 exited $?"
echo "run 2 finished the study in $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q "trial 1 was left running by a killed worker" "$tmp/run2.log" || fail "run 2 did not fail the dead trial"
grep -q "^trial 2 (retry of 1)" "$tmp/run2.log" || fail "trial 1 was not retried as trial 2"
grep -q "^trial 2 continues after epoch 1 of trial 1" "$tmp/run2.log" || fail "the retry did not continue from the checkpoint"
q2=$(query) || fail "cannot read the study"
echo "after run 2: $q2"
echo "$q2" | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)
states = [x["state"] for x in t]
finished = [x for x in t if x["state"] in ("COMPLETE", "PRUNED")]
assert len(finished) == 4, "finished trials: %d, expected 4: %s" % (len(finished), states)
assert states.count("FAIL") == 1 and t[1]["state"] == "FAIL", states
assert "RUNNING" not in states and "WAITING" not in states, states
assert t[2]["params"] == t[1]["params"] and t[2]["retry"] == [1], "trial 2 is not the retry of trial 1"
keys = [json.dumps(x["params"], sort_keys=True) for x in finished]
assert len(set(keys)) == len(keys), "a parameter set finished twice"
pruned = [x for x in t if x["state"] == "PRUNED"]
assert pruned, "no trial was pruned: %s" % states
for x in pruned:
    assert 1 <= max(x["steps"]) < 2, "pruned at step %s (warm-up 1 epoch, 3 epochs)" % x["steps"]
print("states", states, "pruned", [x["n"] for x in pruned])
' || fail "the resumed study is wrong"
# A pruned trial's trainer was stopped: its state.json has fewer epochs than the budget.
for n in $(echo "$q2" | /usr/bin/python3 -c 'import json,sys; print(" ".join(str(x["n"]) for x in json.load(sys.stdin) if x["state"]=="PRUNED"))'); do
  epochs=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["history"]))' "$tmp/study/trials/$n/state.json")
  [ "$epochs" -lt 3 ] || fail "pruned trial $n trained all 3 epochs"
  [ ! -f "$tmp/study/trials/$n/model.onnx" ] || fail "pruned trial $n exported a model"
  ls "$tmp/study/trials/$n/"*.pt >/dev/null 2>&1 && fail "pruned trial $n kept checkpoints"
done
# A finished trial keeps its results (best.pt, model.onnx), not what only a resumption needs.
for n in $(echo "$q2" | /usr/bin/python3 -c 'import json,sys; print(" ".join(str(x["n"]) for x in json.load(sys.stdin) if x["state"]=="COMPLETE"))'); do
  [ -f "$tmp/study/trials/$n/model.onnx" ] && [ -f "$tmp/study/trials/$n/best.pt" ] || fail "trial $n lost its model"
  [ ! -f "$tmp/study/trials/$n/optimizer.pt" ] && [ ! -f "$tmp/study/trials/$n/last.pt" ] || fail "trial $n kept last.pt/optimizer.pt"
done
grep -q "^best trial [0-9]*: val_auc" "$tmp/run2.log" || fail "no best trial printed"
head -c 8 "$tmp/study/history.png" | od -An -c | grep -q "P   N   G" || fail "history.png is not a PNG"

# ---- the best config trains ---------------------------------------------------------------------
"$deepscan" train --config "$tmp/study/best-config.json" --epochs 1 --steps-per-epoch 1 --out "$tmp/final" \
  --no-progress >"$tmp/final.log" 2>&1 || { cat "$tmp/final.log"; fail "deepscan train --config best-config.json"; }
[ -f "$tmp/final/model.onnx" ] || fail "training from best-config.json exported no model"
/usr/bin/python3 - "$tmp/study" <<'PY' || fail "best-config.json does not hold the best trial's values"
import json, sys
d = sys.argv[1]
summary = json.load(open(d + "/study-summary.json"))
best = [t for t in summary["trials"] if t["number"] == summary["best_trial"]][0]
config = json.load(open(d + "/best-config.json"))
assert abs(config["lr"] - best["params"]["lr"]) < 1e-6 * best["params"]["lr"], (config["lr"], best["params"])
assert abs(config["model"]["dropout"] - best["params"]["model.dropout"]) < 1e-6
assert config["epochs"] == 3 and config["out_dir"] == d + "/best"
PY
echo "best-config.json trains"

# ---- multi-objective: val AUC vs measured ms per face, NSGA-II -----------------------------------
cat >"$tmp/space2.json" <<JSON
{"parameters": {"model.width": {"type": "categorical", "choices": [0.25, 1.0]},
                "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true}}}
JSON
"$deepscan" tune --space "$tmp/space2.json" --config "$tmp/base.json" --out "$tmp/mo" --trials 3 --seed 2 \
  --multi-objective --epochs 1 >"$tmp/mo.log" 2>&1 || { cat "$tmp/mo.log"; fail "multi-objective study exited $?"; }
grep -q "Pareto front (val_auc vs ms per face" "$tmp/mo.log" || { cat "$tmp/mo.log"; fail "no Pareto front printed"; }
head -c 8 "$tmp/mo/pareto.png" | od -An -c | grep -q "P   N   G" || fail "pareto.png is not a PNG"
/usr/bin/python3 - "$tmp/mo" <<'PY' || { cat "$tmp/mo.log"; fail "multi-objective results"; }
import json, os, sys
s = json.load(open(sys.argv[1] + "/study-summary.json"))
done = [t for t in s["trials"] if t["state"] == "complete"]
assert len(done) == 3 and all(len(t["values"]) == 2 and t["values"][1] > 0 for t in done), done
assert all(abs(t["values"][1] - t["ms_per_face"]) < 1e-9 for t in done)
assert s["pareto_front"] and all(os.path.exists(sys.argv[1] + "/pareto/trial-%d.json" % n) for n in s["pareto_front"])
print("ms per face:", {t["number"]: round(t["ms_per_face"], 3) for t in done}, "front:", s["pareto_front"])
PY
echo "PASS"

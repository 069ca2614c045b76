#!/usr/bin/env bash
# Data-parallel training with c10d/Gloo on 127.0.0.1 (docs/distributed.md), on a tiny synthetic store:
#   1. `deepscan train --nproc 2`: both ranks print the same weights digest after every epoch (each
#      computes its own; the test compares the two logs), and the loss curve matches a 1-process run
#      with the same global batch within the stated tolerance (mean relative difference of the
#      per-epoch train loss <= 2.5%, SGD so that a wrongly scaled gradient shows), while the same
#      1-process run at half the learning rate is further off: the tolerance can fail;
#   2. resume: stopped after 2 epochs and resumed, with 2 processes, the final weights are bit-identical
#      to the uninterrupted run's (rank 1 takes rank 0's optimizer state through the group);
#   3. launched torchrun-style (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): a rank killed with SIGKILL
#      mid-training makes the other stop with exit 23 and a message within seconds, both ways round;
#      --nproc 2 with rank 1 killed: the launcher reports it and exits, rank 0 stopped;
#   4. bad input: RANK outside WORLD_SIZE, no RANK, a batch that does not split, ranks with different
#      configs or world sizes, two processes claiming one rank, a rank that never comes (DEEPSCAN_DIST_TIMEOUT).
#   tests/dist/ddp_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -15; done; exit 1; }
deepscan="$build/deepscan"
cd "$tmp" || exit 1
"$build/tests/tiny_crop_store" store.h5 16 3 || fail "tiny_crop_store"
# SGD: its step scales with the gradient, so a sum instead of a mean (or a missing all-reduce) moves the curve.
cat >sgd.json <<JSON
{"model": {"arch": "mobilenetv3_small", "width": 0.5, "input_size": 64, "mask_head": true, "dropout": 0.0},
 "pairs_per_batch": 8, "val_fraction": 0.25, "val_pairs": 16, "warmup_steps": 0, "lr": 0.05, "optimizer": "sgd",
 "epochs": 4, "steps_per_epoch": 6, "seed": 1, "store": "$tmp/store.h5"}
JSON
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
digests() { grep -o 'weights [0-9a-f]\{16\}' "$1" | awk '{print $2}'; }
losses() { /usr/bin/python3 -c 'import json,sys; print(" ".join(str(h["train_loss"]) for h in json.load(open(sys.argv[1]))["history"]))' "$1"; }
# mean over epochs of |a - b| / a
mean_rel() { /usr/bin/python3 -c 'import sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; assert len(a)==len(b)>0; print(sum(abs(x-y)/x for x,y in zip(a,b))/len(a))' "$1" "$2"; }

# ---- 1. two ranks vs one process -------------------------------------------------------------------
"$deepscan" train --config sgd.json --out single --threads 2 --no-progress >single.log 2>&1 || fail "1-process run"
"$deepscan" train --config sgd.json --lr 0.025 --out half --threads 2 --no-progress >half.log 2>&1 || fail "half-lr run"
"$deepscan" train --config sgd.json --out ddp --nproc 2 --no-progress >ddp.log 2>&1 || fail "--nproc 2 run"
grep -q 'rank 0 of 2' ddp.log || fail "rank 0 does not say it is rank 0 of 2"
grep -q 'rank 1 of 2: done' ddp/rank-1.log || fail "rank 1 did not finish"
d0=$(digests ddp.log | tr '\n' ' ')
d1=$(digests ddp/rank-1.log | tr '\n' ' ')
[ "$(digests ddp.log | wc -l)" -eq 4 ] || fail "rank 0 printed $(digests ddp.log | wc -l) digests, expected 4 (one per epoch)"
[ "$d0" = "$d1" ] || fail "weights differ across ranks: rank 0 [$d0] rank 1 [$d1]"
[ "$(digests ddp.log | sort -u | wc -l)" -eq 4 ] || fail "the weights did not change between epochs: [$d0]"
[ -f ddp/model.onnx ] && [ ! -e ddp/rank-1 ] || fail "rank 0 should write the model, rank 1 nothing"
world=$(/usr/bin/python3 -c 'import json; print(json.load(open("ddp/state.json"))["dist"]["world_size"])')
[ "$world" = 2 ] || fail "state.json dist.world_size is $world"
ls_single=$(losses single/state.json); ls_ddp=$(losses ddp/state.json); ls_half=$(losses half/state.json)
rel_ddp=$(mean_rel "$ls_single" "$ls_ddp"); rel_half=$(mean_rel "$ls_single" "$ls_half")
echo "train loss per epoch: 1 process [$ls_single]"
echo "                      2 ranks   [$ls_ddp]  mean relative difference $rel_ddp"
echo "                      1 process at half the lr [$ls_half]  $rel_half"
/usr/bin/python3 -c "import sys; sys.exit(0 if $rel_ddp <= 0.025 else 1)" || fail "2-rank loss curve off by $rel_ddp (> 2.5%)"
/usr/bin/python3 -c "import sys; sys.exit(0 if $rel_half > 2 * $rel_ddp else 1)" ||
  fail "the tolerance cannot tell: half the lr is off by only $rel_half (2 ranks: $rel_ddp)"

echo "[${SECONDS}s] resume"
# ---- 2. resume with two ranks ----------------------------------------------------------------------
"$deepscan" train --config sgd.json --out resumed --nproc 2 --stop-after-epochs 2 --no-progress >resume1.log 2>&1 ||
  fail "first half of the resumed run"
[ "$(digests resume1.log | wc -l)" -eq 2 ] || fail "the stopped run trained $(digests resume1.log | wc -l) epochs, expected 2"
"$deepscan" train --config sgd.json --out resumed --nproc 2 --resume --no-progress >resume2.log 2>&1 || fail "resume"
final_resumed=$(digests resume2.log | tail -1); final_ddp=$(digests ddp.log | tail -1)
[ "$final_resumed" = "$final_ddp" ] || fail "resumed run ends at $final_resumed, the uninterrupted one at $final_ddp"
[ "$(digests resumed/rank-1.log | tail -1)" = "$final_ddp" ] || fail "rank 1 of the resumed run ends elsewhere"

echo "[${SECONDS}s] a peer dies"
# ---- 3. a peer dies --------------------------------------------------------------------------------
long=(-v train --config sgd.json --steps-per-epoch 100000 --epochs 1 --threads 1 --no-progress)
for victim in 1 0; do
  port=$(free_port)
  survivor=$((1 - victim))
  env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$deepscan" "${long[@]}" --out "peer$victim" \
    >"peer$victim-r0.log" 2>&1 &
  p0=$!
  env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$deepscan" "${long[@]}" --out "peer$victim" \
    >"peer$victim-r1.log" 2>&1 &
  p1=$!
  pids+=("$p0" "$p1")
  # both train: rank 0 has logged steps (every 50) once training runs
  for _ in $(seq 1 600); do grep -q 'step 50/' "peer$victim-r0.log" 2>/dev/null && break; sleep 0.1; done
  grep -q 'step 50/' "peer$victim-r0.log" || fail "the torchrun-style pair never trained (victim $victim)"
  if [ "$victim" = 1 ]; then kill -KILL "$p1"; sp=$p0; else kill -KILL "$p0"; sp=$p1; fi
  t0=$(date +%s)
  wait "$sp"; rc=$?
  took=$(( $(date +%s) - t0 ))
  [ "$rc" = 23 ] || fail "rank $survivor exited $rc after rank $victim died, expected 23"
  [ "$took" -le 30 ] || fail "rank $survivor took ${took}s to stop"
  grep -q 'unavailable:.*peer stopped\|unavailable:.*went away' "peer$victim-r$survivor.log" ||
    fail "rank $survivor's message does not say a peer stopped"
  echo "rank $victim killed: rank $survivor stopped in ${took}s: $(grep -o 'unavailable:.*' "peer$victim-r$survivor.log" | cut -c1-120)"
done
# a rank that hangs (SIGSTOP): the other gives up after DEEPSCAN_DIST_TIMEOUT seconds
port=$(free_port)
env DEEPSCAN_DIST_TIMEOUT=4 RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$deepscan" "${long[@]}" \
  --out hang >hang-r0.log 2>&1 &
p0=$!
env DEEPSCAN_DIST_TIMEOUT=4 RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$deepscan" "${long[@]}" \
  --out hang >hang-r1.log 2>&1 &
p1=$!
pids+=("$p0" "$p1")
for _ in $(seq 1 600); do grep -q 'step 50/' hang-r0.log 2>/dev/null && break; sleep 0.1; done
grep -q 'step 50/' hang-r0.log || fail "the SIGSTOP pair never trained"
kill -STOP "$p1"
t0=$(date +%s)
wait "$p0"; rc=$?
took=$(( $(date +%s) - t0 ))
kill -KILL "$p1" 2>/dev/null
[ "$rc" = 23 ] || fail "rank 0 exited $rc with rank 1 stopped, expected 23"
[ "$took" -ge 3 ] && [ "$took" -le 30 ] || fail "rank 0 gave up on a stopped rank 1 after ${took}s (timeout 4 s)"
echo "rank 1 stopped (SIGSTOP): rank 0 gave up after ${took}s: $(grep -o 'unavailable:.*' hang-r0.log | cut -c1-120)"
# the launcher, rank 1 killed
"$deepscan" "${long[@]}" --out launched --nproc 2 >launched.log 2>&1 &
lp=$!
pids+=("$lp")
for _ in $(seq 1 600); do grep -q 'step 50/' launched.log 2>/dev/null && break; sleep 0.1; done
grep -q 'step 50/' launched.log || fail "--nproc 2 never trained"
r1=$(pgrep -P "$lp" | sort -n | tail -1)
[ -n "$r1" ] || fail "no child processes of the launcher"
kill -KILL "$r1"
wait "$lp"; rc=$?
[ "$rc" = 137 ] || fail "the launcher exited $rc after rank 1 was killed, expected 137 (its code)"
grep -q 'rank 1 of 2 was killed by signal 9.*rank 0 exited with 23' launched.log || fail "the launcher does not say what happened"
[ -z "$(pgrep -P "$lp")" ] || fail "ranks left running"

echo "[${SECONDS}s] bad input"
# ---- 4. bad input ----------------------------------------------------------------------------------
expect() {  # expect CODE PATTERN LOG
  [ "$4" = "$1" ] || fail "$3: exit $4, expected $1"
  grep -q -- "$2" "$3" || fail "$3 lacks '$2'"
}
RANK=2 WORLD_SIZE=2 "$deepscan" train --config sgd.json --out bad >bad1.log 2>&1
expect 2 'RANK=2 is outside \[0, WORLD_SIZE=2)' bad1.log $?
WORLD_SIZE=2 "$deepscan" train --config sgd.json --out bad >bad2.log 2>&1
expect 2 'WORLD_SIZE=2 needs RANK' bad2.log $?
"$deepscan" train --config sgd.json --pairs 7 --out bad --nproc 2 --no-progress >bad3.log 2>&1
expect 2 'pairs_per_batch (7) must be a multiple of the number of processes (2)' bad3.log $?
port=$(free_port)
RANK=0 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad --no-progress >bad4-r0.log 2>&1 &
p0=$!
RANK=1 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --lr 0.01 --out bad --no-progress >bad4-r1.log 2>&1
rc1=$?
wait "$p0"; rc0=$?
expect 2 'rank 0 trains another config than rank 1 (differing: lr)' bad4-r1.log $rc1
expect 2 'rank 1 trains another config than rank 0 (differing: lr)' bad4-r0.log $rc0
port=$(free_port)
export DEEPSCAN_DIST_TIMEOUT=20
RANK=0 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad >bad5-r0.log 2>&1 &
p0=$!
pids+=("$p0")
sleep 1
RANK=1 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad >bad5-a.log 2>&1 &
pa=$!
RANK=1 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad >bad5-b.log 2>&1 &
pb=$!
wait "$pa"; ra=$?
wait "$pb"; rb=$?
wait "$p0"
{ [ "$ra" = 2 ] && grep -q 'two processes claim rank 1' bad5-a.log; } ||
  { [ "$rb" = 2 ] && grep -q 'two processes claim rank 1' bad5-b.log; } || fail "a second rank 1 was not refused (exit $ra / $rb)"
port=$(free_port)
t0=$(date +%s)
DEEPSCAN_DIST_TIMEOUT=3 RANK=0 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad >bad6.log 2>&1
rc=$?
took=$(( $(date +%s) - t0 ))
expect 23 'waiting for the 2 ranks to join' bad6.log $rc
[ "$took" -le 20 ] || fail "a missing rank took ${took}s to be given up on (timeout 3 s)"
port=$(free_port)
RANK=0 WORLD_SIZE=2 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad >bad8-r0.log 2>&1 &
p0=$!
RANK=1 WORLD_SIZE=3 MASTER_PORT=$port "$deepscan" train --config sgd.json --out bad >bad8-r1.log 2>&1
rc1=$?
wait "$p0"; rc0=$?
expect 2 'rank 1 has WORLD_SIZE=3, rank 0 has 2' bad8-r0.log $rc0
[ "$rc1" = 23 ] || [ "$rc1" = 2 ] || fail "the rank with the other world size exited $rc1"
WORLD_SIZE=3 RANK=0 "$deepscan" train --config sgd.json --nproc 2 --out bad >bad7.log 2>&1
expect 2 '\-\-nproc 2 but WORLD_SIZE=3' bad7.log $?
echo "[${SECONDS}s] PASS"

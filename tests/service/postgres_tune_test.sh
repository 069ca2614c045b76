#!/usr/bin/env bash
# One `deepscan tune` study shared by two workers through a real PostgreSQL (docs/search.md, "Several
# machines"): the test starts its own server (initdb + pg_ctl from /usr/lib/postgresql/15/bin) on a free
# loopback port in a temporary folder, password authentication, and runs two workers at once, each with
# its own --out (as two machines would). Checks that
#   1. both workers exit 0 and each ran trials of the one study (trial numbers unique across them, every
#      trial's folder in exactly one worker's --out);
#   2. the finished trials add up: at least --trials, at most --trials + 1 (each worker stops starting
#      trials once the study holds --trials finished ones; two may start the last one together);
#   3. nothing is left RUNNING or WAITING, the password never appears in the output;
#   4. the same command run again once the study is done starts no trial and writes best-config.json of
#      the study's best trial;
#   5. a worker of another machine killed mid-trial (SIGKILL): its trial is failed once its heartbeat is
#      stale and retried by the surviving worker, and the study still gets all its trials.
#   tests/service/postgres_tune_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") when PostgreSQL 15, python3-optuna or python3-psycopg2 is missing.
set -uo pipefail
build=$1
src=$2
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_ctl" ] || { echo "skip: PostgreSQL is not installed (apt-get install postgresql)"; exit 77; }
/usr/bin/python3 -c 'import optuna, psycopg2' 2>/dev/null || { echo "skip: python3-optuna or python3-psycopg2 missing"; exit 77; }
# PostgreSQL refuses to run as root: then the server runs as the postgres user of Debian's package.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "skip: running as root and there is no postgres user"; exit 77; }
  as_pg=(runuser -u postgres --)
fi
tmp=$(mktemp -d)
pgdir=$(mktemp -d)
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$pgdir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ -f "$pgdir/data/postmaster.pid" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$tmp" "$pgdir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$tmp"/w*.log; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f"; done
  exit 1
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
password="tune-$RANDOM-secret"
printf '%s\n' "$password" >"$pgdir/pw"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$pgdir/pw"
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U tuner --pwfile="$pgdir/pw" -A scram-sha-256 >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log"; fail "initdb"; }
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
  -o "-p $port -c listen_addresses=127.0.0.1 -k $pgdir -c fsync=off" start >/dev/null ||
  { cat "$pgdir/server.log"; fail "pg_ctl start"; }
PGPASSWORD=$password "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U tuner study || fail "createdb"
url="postgresql://tuner:$password@127.0.0.1:$port/study"
echo "PostgreSQL on 127.0.0.1:$port"

"$build/tests/tiny_crop_store" "$tmp/store.h5" 16 3 || fail "tiny_crop_store"
cat >"$tmp/base.json" <<JSON
{"model": {"arch": "mobilenetv3_small", "width": 0.5, "input_size": 64, "mask_head": true, "dropout": 0.0},
 "pairs_per_batch": 8, "val_fraction": 0.25, "val_pairs": 16, "warmup_steps": 0, "threads": 1,
 "epochs": 2, "steps_per_epoch": 2, "seed": 1, "store": "$tmp/store.h5"}
JSON
cat >"$tmp/space.json" <<JSON
{"parameters": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true},
                "mask_weight": {"type": "float", "low": 0.0, "high": 1.0}}}
JSON
trials=4
tune() {  # tune OUT SEED: one worker (exec: in the background, $! is then the worker itself; in a subshell in the foreground)
  exec "$build/deepscan" tune --space "$tmp/space.json" --config "$tmp/base.json" --out "$1" --trials $trials \
    --seed "$2" --storage "$url" --study shared --pruner hyperband --heartbeat 5
}
start=$(date +%s.%N)
tune "$tmp/m1" 1 >"$tmp/w1.log" 2>&1 &
pids+=($!)
tune "$tmp/m2" 2 >"$tmp/w2.log" 2>&1 &
pids+=($!)
wait "${pids[0]}" || fail "worker 1 exited $?"
wait "${pids[1]}" || fail "worker 2 exited $?"
pids=()
echo "two workers finished the study in $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q -- "$password" "$tmp"/w*.log && fail "the password appears in the output"

/usr/bin/python3 - "$url" "$tmp" $trials <<'PY' || fail "the shared study is wrong"
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
url, tmp, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
trials = optuna.load_study(study_name="shared", storage=url).get_trials(deepcopy=False)
states = [t.state.name for t in trials]
finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
assert wanted <= len(finished) <= wanted + 1, "finished %d of %d: %s" % (len(finished), wanted, states)
assert not any(s in ("RUNNING", "WAITING") for s in states), states
numbers = [t.number for t in trials]
assert numbers == list(range(len(trials))), numbers
workers = {t.user_attrs["worker"] for t in finished}
assert len(workers) == 2, "trials by %s: both workers should have run some" % workers
for t in trials:
    where = [m for m in ("m1", "m2") if os.path.isdir(os.path.join(tmp, m, "trials", str(t.number)))]
    assert len(where) == 1, "trial %d ran in %s" % (t.number, where)
print("states", states, "per worker", {w: sum(t.user_attrs["worker"] == w for t in finished) for w in workers})
PY

# The same command on the finished study: no new trial, the study's best written.
(tune "$tmp/m3" 3) >"$tmp/w3.log" 2>&1 || fail "the rerun exited $?"
grep -q "trials finished" "$tmp/w3.log" || fail "the rerun printed no study line"
[ ! -d "$tmp/m3/trials" ] || fail "the rerun of a finished study ran a trial"
/usr/bin/python3 - "$url" "$tmp/m3/best-config.json" <<'PY' || fail "best-config.json of the rerun"
import json, sys, warnings
warnings.filterwarnings("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
best = optuna.load_study(study_name="shared", storage=sys.argv[1]).best_trial
config = json.load(open(sys.argv[2]))
assert abs(config["lr"] - best.params["lr"]) <= 1e-6 * best.params["lr"], (config["lr"], best.params)
assert abs(config["mask_weight"] - best.params["mask_weight"]) <= 1e-6
PY

# ---- a machine that dies mid-trial ---------------------------------------------------------------
# Worker A (machine "a") is killed with SIGKILL while its trial trains; worker B (machine "b") cannot see
# A's processes, so A's trial stays RUNNING until its heartbeat (1 s) is older than the grace period (2 s):
# then B fails it, retries it with the same parameters, and the study still ends with its 3 trials.
dead() {  # dead OUT SEED HOST TRIALS
  DEEPSCAN_TUNE_HOST=$3 exec "$build/deepscan" tune --space "$tmp/space.json" --config "$tmp/base.json" --out "$1" \
    --trials "$4" --seed "$2" --storage "$url" --study dead-machine --pruner none --heartbeat 1
}
dead "$tmp/a" 4 a 3 >"$tmp/wa.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -f "$tmp/a/trials/0/state.json" ] && break; sleep 0.05; done
[ -f "$tmp/a/trials/0/state.json" ] || fail "worker A never finished an epoch"
kill -KILL "${pids[0]}"
wait "${pids[0]}" 2>/dev/null
pids=()
(dead "$tmp/b" 5 b 3) >"$tmp/wb.log" 2>&1 || fail "worker B exited $?"
/usr/bin/python3 - "$url" <<'PY' || fail "the dead machine's trial was not taken over"
import sys, warnings
warnings.filterwarnings("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
trials = optuna.load_study(study_name="dead-machine", storage=sys.argv[1]).get_trials(deepcopy=False)
states = [t.state.name for t in trials]
assert trials[0].state.name == "FAIL" and trials[0].user_attrs["worker"].startswith("a:"), states
retries = [t for t in trials if t.system_attrs.get("retry_history") == [0]]
assert len(retries) == 1 and retries[0].state.name == "COMPLETE", "retry of trial 0: %s" % states
assert retries[0].params == trials[0].params and retries[0].user_attrs["worker"].startswith("b:")
assert sum(s == "COMPLETE" for s in states) == 3 and "RUNNING" not in states, states
print("dead machine:", states, "trial 0 retried as", retries[0].number)
PY
echo "PASS"

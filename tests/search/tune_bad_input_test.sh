#!/usr/bin/env bash
# `deepscan tune` refuses bad input with a clear message and its documented exit code (docs/search.md,
# docs/exit-codes.md), and the C++ checks run before any Python: nothing is written to --out.
#   tests/search/tune_bad_input_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") without Debian's python3-optuna / python3-psycopg2.
tune_test_modules="optuna, psycopg2"
source "$(dirname "$0")/tune_test_env.sh"
fail() { echo "FAIL: $*"; exit 1; }
good='{"parameters": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true}}}'

# expect EXIT TEXT SPACE_JSON [FLAGS...]: the run exits EXIT, stderr holds TEXT, --out is never created.
n=0
expect() {
  local want=$1 text=$2 space=$3
  shift 3
  n=$((n + 1))
  printf '%s' "$space" >"$tmp/space$n.json"
  "$deepscan" tune --space "$tmp/space$n.json" --store "$tmp/store.h5" --out "$tmp/out$n" "$@" \
    >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  [ "$got" = "$want" ] || fail "case $n ($text): exit $got, expected $want; stderr: $(cat "$tmp/stderr")"
  grep -qF -- "$text" "$tmp/stderr" || fail "case $n: stderr lacks '$text': $(cat "$tmp/stderr")"
  echo "ok $n: exit $got: $(head -1 "$tmp/stderr")"
}
# The search space.
expect 2 "search space does not parse" '{"parameters": {"lr": '
expect 2 "search space must be a JSON object" '[1, 2]'
expect 2 "unknown parameter 'learning_rate': not a training config key (tunable:" \
  '{"parameters": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}}}'
expect 2 "parameter 'epochs' cannot be searched: the budget" '{"parameters": {"epochs": {"type": "int", "low": 1, "high": 5}}}'
expect 2 "parameter 'lr': low (0.01) must be below high (0.0001)" \
  '{"parameters": {"lr": {"type": "float", "low": 1e-2, "high": 1e-4}}}'
expect 2 "parameter 'weight_decay': a log scale needs low > 0" \
  '{"parameters": {"weight_decay": {"type": "float", "low": 0, "high": 0.1, "log": true}}}'
expect 2 "parameter 'h264_p': 1.5 is outside what it accepts, [0, 1]" \
  '{"parameters": {"h264_p": {"type": "float", "low": 0.2, "high": 1.5}}}'
expect 2 "parameter 'model.input_size' is a whole number: use \"int\"" \
  '{"parameters": {"model.input_size": {"type": "float", "low": 64, "high": 128}}}'
expect 2 "parameter 'model.input_size': 16 is outside what it accepts, [32, 1024]" \
  '{"parameters": {"model.input_size": {"type": "categorical", "choices": [16, 64]}}}'
# Checked by the trainer's own config parser (the zoo's arch names), on each end of the range.
expect 2 "parameter 'model.arch' = \"resnet50\": unknown arch 'resnet50'" \
  '{"parameters": {"model.arch": {"type": "categorical", "choices": ["mobilenetv3_small", "resnet50"]}}}'
expect 2 "parameter 'optimizer': choice \"adam\" is not one of adamw, sgd" \
  '{"parameters": {"optimizer": {"type": "categorical", "choices": ["adamw", "adam"]}}}'
expect 2 "parameter 'lr': unknown field 'min'" '{"parameters": {"lr": {"type": "float", "min": 1e-4, "high": 1e-2}}}'
# The study's settings.
expect 2 "unsupported storage URL 'mysql://u@h/db'" "$good" --storage mysql://u@h/db
expect 2 "names no host or database" "$good" --storage postgresql://user@localhost
expect 2 "needs a single objective" "$good" --multi-objective --pruner median
expect 2 "objective dev_video_auc needs a dev store" "$good" --objective dev_video_auc
expect 2 "unknown objective 'accuracy'" "$good" --objective accuracy
# Files.
n=$((n + 1))
"$deepscan" tune --space "$tmp/absent.json" --store "$tmp/store.h5" --out "$tmp/out$n" 2>"$tmp/stderr"
[ $? = 10 ] && grep -qF "cannot read the search space $tmp/absent.json" "$tmp/stderr" || fail "missing space: $(cat "$tmp/stderr")"
echo "ok $n: missing space file: exit 10"
n=$((n + 1))
printf '%s' "$good" >"$tmp/good.json"
"$deepscan" tune --space "$tmp/good.json" --store "$tmp/absent.h5" --out "$tmp/out$n" 2>"$tmp/stderr"
[ $? = 10 ] && grep -qF "absent.h5" "$tmp/stderr" || fail "missing store: $(cat "$tmp/stderr")"
echo "ok $n: missing store: exit 10: $(head -1 "$tmp/stderr")"
n=$((n + 1))
printf '{"init": "%s"}' "$tmp/absent-graph.json" >"$tmp/bad-init.json"
"$deepscan" tune --space "$tmp/good.json" --config "$tmp/bad-init.json" --store "$tmp/store.h5" --out "$tmp/out$n" \
  2>"$tmp/stderr"
[ $? = 10 ] && grep -qF "no such file: $tmp/absent-graph.json (in the base config: every trial would fail)" "$tmp/stderr" ||
  fail "missing init: $(cat "$tmp/stderr")"
echo "ok $n: missing init of the base config: exit 10"
for i in $(seq 1 $n); do [ ! -e "$tmp/out$i" ] || fail "case $i wrote $tmp/out$i (the C++ checks come first)"; done

# An unreachable PostgreSQL (a free loopback port, nothing listening): exit 23 within the connect
# timeout, the password masked, no trial run.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s)
"$deepscan" tune --space "$tmp/good.json" --store "$tmp/store.h5" --out "$tmp/pg" --connect-timeout 3 \
  --storage "postgresql://tuner:s3cret@127.0.0.1:$port/study" >"$tmp/stdout" 2>"$tmp/stderr"
got=$?
[ "$got" = 23 ] || fail "unreachable PostgreSQL: exit $got, expected 23: $(cat "$tmp/stderr")"
grep -qF "cannot reach the study storage postgresql://tuner:***@127.0.0.1:$port/study" "$tmp/stderr" ||
  fail "unreachable PostgreSQL: message: $(cat "$tmp/stderr")"
grep -q s3cret "$tmp/stderr" "$tmp/stdout" && fail "the password was printed"
[ $(($(date +%s) - start)) -le 20 ] || fail "unreachable PostgreSQL took more than 20 s"
[ ! -e "$tmp/pg/trials" ] || fail "a trial ran without a storage"
echo "ok: unreachable PostgreSQL: exit 23: $(head -1 "$tmp/stderr")"
echo "PASS"

#!/usr/bin/env bash
# The distributed work queue, for real: a redis-server (AOF on) on loopback, 30 short clips and one
# corrupt file submitted, three `deepscan worker`s. Checks that
#   1. a worker killed with SIGKILL while it holds an entry loses nothing: a survivor takes it over
#      after --claim-idle;
#   2. a worker stopped with SIGTERM while it holds an entry finishes it, acknowledges it, exits 0;
#   3. Redis restarted mid-run (SHUTDOWN, start again on the same port and AOF): the workers reconnect and
#      the run completes;
#   4. every clip ends with exactly one result (30 done, 30 distinct results, no duplicate scan, nothing
#      pending), and the corrupt file is dead-lettered after exactly --max-attempts deliveries with its error;
#   5. `deepscan status --export` writes 31 JSON lines and an HDF5 file whose columns read back equal;
#   6. resubmitting clips is idempotent: their results are reused by content hash, nothing is scanned again;
#   7. a worker exposes Prometheus metrics; an unreachable Redis is exit 23, fast.
#   tests/service/queue_workers_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") when redis-server, redis-cli or ffmpeg is missing.
set -uo pipefail
build=$1
src=$2
for tool in redis-server redis-cli ffmpeg curl; do
  command -v "$tool" >/dev/null || { echo "skip: $tool is not installed (apt-get install redis-server)"; exit 77; }
done
deepscan="$build/deepscan"
h5cols="$build/tests/h5_columns"
tmp=$(mktemp -d)
pids=()
redis_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ -n "$redis_pid" ] && kill -KILL "$redis_pid" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$tmp"/w*.log "$tmp/redis.log"; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
  exit 1
}
. "$src/tests/service/redis_lib.sh"
port=$redis_port
url=$redis_url
# wait_for SECONDS CONDITION... : polls CONDITION every 0.05 s.
wait_for() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.05; done
  return 1
}
start_redis --appendonly yes --appendfsync always

# 30 distinct short clips (three 1.5 s cuts of ten shared real clips, 320 px wide) and one corrupt file.
mkdir -p "$tmp/clips"
shared="$src/../shared/data/videos/real"
[ -d "$shared" ] || shared="$src/third_party/sample"
# Ten sources of at least 4 s (the cuts start at 0, 1 and 2 s).
mapfile -t sources < <(for f in "$shared"/*.mp4; do
  d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f" 2>/dev/null)
  [ -n "$d" ] && awk -v d="$d" 'BEGIN { exit !(d >= 4) }' && echo "$f"
done | head -10)
[ "${#sources[@]}" -ge 1 ] || { echo "skip: no source clips in $shared"; exit 77; }
n=0
while [ $n -lt 30 ]; do
  for s in "${sources[@]}"; do
    [ $n -ge 30 ] && break
    start=$(( n / ${#sources[@]} ))
    ffmpeg -v error -y -ss "$start" -t 1.5 -i "$s" -vf "scale=320:-2" -c:v libx264 -preset ultrafast -an \
      -metadata comment="clip $n" "$tmp/clips/clip$(printf %02d $n).mp4" 2>>"$tmp/ffmpeg.log" || fail "ffmpeg could not cut $s"
    n=$((n + 1))
  done
done
head -c 20000 /dev/urandom >"$tmp/clips/poison.mp4"
[ "$(md5sum "$tmp"/clips/clip*.mp4 | cut -d' ' -f1 | sort -u | wc -l)" = 30 ] || fail "the 30 clips are not distinct"

"$deepscan" submit --queue "$url" "$tmp/clips" >"$tmp/submitted.txt" 2>"$tmp/submit.log" || fail "submit failed"
[ "$(wc -l <"$tmp/submitted.txt")" = 31 ] || fail "submit printed $(wc -l <"$tmp/submitted.txt") entries, not 31"

claim_idle=3
start_worker() {  # start_worker NAME [extra flags]
  local name=$1; shift
  "$deepscan" worker --queue "$url" --consumer "$name" --frames 4 --threads 1 --claim-idle "$claim_idle" \
    --retry-delay 0.2 --max-attempts 3 --max-backoff 0.5 --no-tuned -v "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}
holds() { [ -n "$(rc XPENDING deepscan:videos workers - + 5 "$1" 2>/dev/null)" ]; }
held_entry() { rc XPENDING deepscan:videos workers - + 5 "$1" | head -1; }
done_count() { rc HLEN deepscan:done; }
# done_at_least N: polled as a command, so the count is read again on every try (an argument like
# "$(done_count)" would be expanded once, when wait_for is called, and never change).
done_at_least() { [ "$(done_count)" -ge "$1" ] 2>/dev/null; }
start=$(date +%s%N)
start_worker w1
start_worker w2
start_worker w3 --metrics-port 0

# 1. SIGKILL w1 while it holds an entry (between XREADGROUP and XACK: scanning it).
wait_for 60 holds w1 || fail "w1 never took an entry"
kill -KILL "$pid_w1"
wait "$pid_w1" 2>/dev/null
killed_at=$(date +%s%N)
killed_entry=$(held_entry w1)  # what it held when it died (the pending list is authoritative)
[ -n "$killed_entry" ] || fail "w1 held no entry when killed (it was between two videos)"
echo "w1 killed (SIGKILL) holding entry $killed_entry"

# 2. SIGTERM w2 while it holds an entry: it finishes that one, acknowledges it and exits 0.
term_entry=""
w2_entry() { term_entry=$(held_entry w2); [ -n "$term_entry" ]; }
wait_for 60 w2_entry || fail "w2 never took an entry"
kill -TERM "$pid_w2"
wait "$pid_w2"; rc_w2=$?
[ "$rc_w2" = 0 ] || fail "w2 exited $rc_w2 after SIGTERM, not 0"
rc HGET deepscan:done "$term_entry" | grep -q '"worker":"w2"' ||
  { rc HGET deepscan:done "$term_entry"; rc HGET deepscan:failed "$term_entry"; fail "w2 did not finish entry $term_entry before exiting"; }
holds w2 && fail "w2 still holds entries after a clean stop"
echo "w2 stopped (SIGTERM) after finishing entry $term_entry, exit 0"

# 3. Restart Redis mid-run; w3 (alone now) reconnects.
wait_for 240 done_at_least 8 || fail "fewer than 8 entries done after 240 s (a loaded machine is slow, not wrong)"
before=$(done_count)
rc SHUTDOWN >/dev/null 2>&1
wait "$redis_pid" 2>/dev/null
redis_pid=""
sleep 1.5
start_redis --appendonly yes --appendfsync always
after=$(done_count)
echo "redis restarted with $after entries done ($before before the shutdown: AOF kept them)"
[ "$after" -ge "$before" ] || fail "redis lost finished entries across the restart ($before -> $after)"
# A fresh worker joins after the restart too.
start_worker w4

all_finished() { [ $(( $(rc HLEN deepscan:done) + $(rc HLEN deepscan:failed) )) -ge 31 ]; }
wait_for 150 all_finished || fail "only $(rc HLEN deepscan:done) done + $(rc HLEN deepscan:failed) failed of 31 after 150 s"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "reconnected to redis" "$tmp/w3.log" || fail "w3 did not log a reconnection"
killed_by=$(rc HGET deepscan:done "$killed_entry" | grep -o '"worker":"[a-z0-9]*"')
echo "all 31 entries finished in $elapsed_ms ms; w1's entry $killed_entry was finished by $killed_by"
[ -n "$killed_by" ] && [ "$killed_by" != '"worker":"w1"' ] || fail "w1's entry was not finished by a survivor"

# 4. Exactly one result per clip, nothing pending, no duplicate scan; the poison dead-lettered after 3 tries.
w1_gone() { "$deepscan" status --queue "$url" --json | /usr/bin/python3 -c '
import json, sys
sys.exit(0 if any(w["consumer"] == "w1" and not w["alive"] for w in json.load(sys.stdin)["workers"]) else 1)'; }
wait_for 10 w1_gone || fail "status still shows the killed w1 alive"
status=$("$deepscan" status --queue "$url" --json) || fail "status failed"
echo "$status" >"$tmp/status.json"
check() { /usr/bin/python3 - "$tmp" "$@"; }
check <<'PY' || fail "status does not add up"
import json, sys
s = json.load(open(sys.argv[1] + "/status.json"))
print("status:", {k: s[k] for k in ("submitted", "done", "failed", "pending", "results", "scanned", "cached",
                                    "duplicates", "retried", "reclaimed", "rate_per_s")})
assert s["submitted"] == 31 and s["done"] == 30 and s["failed"] == 1, s
assert s["pending"] == 0 and s["running"] == 0 and s["waiting"] == 0, s
assert s["results"] == 30 and s["duplicates"] == 0, s
assert s["reclaimed"] >= 1, "the killed worker's entry was not counted as taken over"
assert s["retried"] == 2, "the poison file was retried %d times, not 2" % s["retried"]
names = {w["consumer"]: w for w in s["workers"]}
assert {"w1", "w2", "w3", "w4"} <= set(names), names.keys()
assert names["w2"]["state"] == "stopped" and not names["w1"]["alive"], names
assert s["eta_s"] == 0
PY
[ "$(rc XLEN deepscan:dead)" = 1 ] || fail "the dead-letter stream has $(rc XLEN deepscan:dead) entries, not 1"
rc XRANGE deepscan:dead - + >"$tmp/dead.txt"
grep -q poison.mp4 "$tmp/dead.txt" && grep -q corrupt_input "$tmp/dead.txt" || { cat "$tmp/dead.txt"; fail "dead letter lacks the video or its error"; }
[ "$(grep -A1 '^attempts$' "$tmp/dead.txt" | tail -1)" = 3 ] || { cat "$tmp/dead.txt"; fail "the poison was not tried exactly 3 times"; }
echo "poison file dead-lettered after 3 attempts with corrupt_input"

# 5. Export: JSON lines and HDF5, read back and compared.
"$deepscan" status --queue "$url" --export "$tmp/results.jsonl" >/dev/null || fail "export jsonl failed"
"$deepscan" status --queue "$url" --export "$tmp/results.h5" >/dev/null || fail "export h5 failed"
"$h5cols" "$tmp/results.h5" >"$tmp/h5.json" || fail "the HDF5 export does not read back"
check "$(ls "$tmp"/clips/clip*.mp4 | tr '\n' ' ')" <<'PY' || fail "the exports are wrong"
import json, math, sys
tmp, clips = sys.argv[1], sys.argv[2].split()
rows = [json.loads(l) for l in open(tmp + "/results.jsonl")]
assert len(rows) == 31, len(rows)
ok = [r for r in rows if r["status"] in ("ok", "no_face")]
bad = [r for r in rows if r["status"] == "error"]
assert len(ok) == 30 and len(bad) == 1, (len(ok), len(bad))
assert sorted(r["video"] for r in ok) == sorted(clips), "not every clip has exactly one result"
assert len({r["hash"] for r in ok}) == 30
assert bad[0]["video"].endswith("poison.mp4") and bad[0]["error"]["code"] == "corrupt_input" and bad[0]["attempts"] == 3
for r in ok:
    assert r["verdict"]["path"] == r["video"] and r["timings"]["frames_sampled"] >= 1, r["video"]
    if r["status"] == "ok":
        assert 0 <= r["score"] <= 1 and r["label"] in ("fake", "real") and r["identities"], r["video"]
h = json.load(open(tmp + "/h5.json"))
assert h["format"] == "deepscan-queue-results" and h["rows"] == 31, (h["format"], h["rows"])
for i, r in enumerate(rows):
    assert h["path"][i] == r["video"] and h["hash"][i] == (r["hash"] or "") and h["status"][i] == r["status"]
    assert h["label"][i] == (r["label"] or "")
    if r["score"] is None:
        assert h["score"][i] is None
    else:
        assert abs(h["score"][i] - r["score"]) < 1e-3, (h["score"][i], r["score"])
    hs, js = h["identity_scores"][i], [x["score"] for x in r["identities"]]
    assert len(hs) == len(js) and all(abs(a - b) < 1e-3 for a, b in zip(hs, js)), (hs, js)
    assert abs(h["total_s"][i] - r["timings"]["total_s"]) < 2e-3
print("exports: 31 rows in jsonl and h5, columns equal")
PY

# 6. Resubmission is idempotent: the same bytes are answered from the stored results.
scanned_before=$(rc HGET deepscan:stats scanned)
"$deepscan" submit --queue "$url" "$tmp/clips/clip00.mp4" "$tmp/clips/clip07.mp4" >/dev/null || fail "resubmit failed"
wait_for 30 done_at_least 32 || fail "the resubmitted clips were not finished"
[ "$(rc HGET deepscan:stats scanned)" = "$scanned_before" ] || fail "resubmitted clips were scanned again"
[ "$(rc HLEN deepscan:results)" = 30 ] || fail "resubmission added results"
[ "$(rc HGET deepscan:stats cached)" -ge 2 ] || fail "resubmitted clips were not answered from stored results"
echo "resubmitted 2 clips: answered from stored results, no scan"

# 7. Metrics of w3; then stop the survivors cleanly.
mport=$(grep -o '"event":"metrics","host":"127.0.0.1","port":[0-9]*' "$tmp/w3.log" | grep -o '[0-9]*$')
[ -n "$mport" ] || fail "w3 did not report its metrics port"
curl -s "http://127.0.0.1:$mport/metrics" >"$tmp/metrics.txt" || fail "metrics endpoint did not answer"
grep -q '^deepscan_queue_entries_total{outcome="scanned"} [1-9]' "$tmp/metrics.txt" || { cat "$tmp/metrics.txt"; fail "no scanned count in w3's metrics"; }
grep -q '^deepscan_queue_reconnects_total [1-9]' "$tmp/metrics.txt" || fail "w3's metrics show no reconnection"
grep -q '^deepscan_queue_redis_up 1' "$tmp/metrics.txt" || fail "w3's metrics say redis is down"
for w in w3 w4; do
  eval "p=\$pid_$w"
  kill -TERM "$p"; wait "$p"; r=$?
  [ "$r" = 0 ] || fail "$w exited $r after SIGTERM"
done
echo "metrics served; w3 and w4 stopped with exit 0"

closed=$(free_port)
t0=$SECONDS
"$deepscan" status --queue "redis://127.0.0.1:$closed" >/dev/null 2>"$tmp/unreachable.txt"; r=$?
[ "$r" = 23 ] || fail "status against a closed port exited $r, not 23"
grep -q "cannot reach redis at 127.0.0.1:$closed" "$tmp/unreachable.txt" || fail "unclear message: $(cat "$tmp/unreachable.txt")"
"$deepscan" worker --queue "redis://127.0.0.1:$closed" --no-tuned >/dev/null 2>&1; r=$?
[ "$r" = 23 ] || fail "worker against a closed port exited $r, not 23"
[ $((SECONDS - t0)) -lt 30 ] || fail "the unreachable checks took too long"
echo "unreachable redis: exit 23"
echo "PASS"

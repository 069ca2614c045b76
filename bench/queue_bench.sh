#!/usr/bin/env bash
# Corpus bench of the Redis Streams work queue (docs/queue.md; figures in docs/benchmarks.md):
#   1. one `deepscan scan` of N shared clips with the machine's thread budget B, against
#      W `deepscan worker`s on this machine over the same clips through a local redis-server, each with
#      B / W threads (at least 1): videos/s of both and their ratio (the queue's overhead, with the
#      scan's own pipelining as the baseline);
#   2. the same clips in a fresh queue with W workers, one killed (SIGKILL) while it holds an entry: the
#      time until the survivors finished that entry, against --claim-idle, and the total run time.
# Prints figures and ratios; asserts no time.
#   bench/queue_bench.sh [BUILD_DIR]      env: CLIPS=40 FRAMES=8 WORKERS=3 CLAIM_IDLE=2 THREADS=$(nproc)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
deepscan="$build/deepscan"
clips=${CLIPS:-40}
frames=${FRAMES:-8}
workers=${WORKERS:-3}
claim_idle=${CLAIM_IDLE:-2}
budget=${THREADS:-$(nproc)}
per_worker=$(( budget / workers )); [ "$per_worker" -ge 1 ] || per_worker=1
command -v redis-server >/dev/null || { echo "queue_bench: redis-server is not installed"; exit 77; }
shared="$root/../shared/data/videos"
mapfile -t videos < <(find "$shared" -name '*.mp4' 2>/dev/null | sort | head -"$clips")
[ "${#videos[@]}" -gt 0 ] || { echo "queue_bench: no clips under $shared"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp" --save "" --appendonly no --logfile "$tmp/redis.log" &
pids+=($!)
for _ in $(seq 1 100); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
url="redis://127.0.0.1:$port"
now() { date +%s.%N; }
n=${#videos[@]}
echo "queue_bench: $n clips, --frames $frames, thread budget $budget; $workers workers x $per_worker threads; load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Baseline: one scan with the whole budget.
t0=$(now)
"$deepscan" scan --no-tuned --no-progress --frames "$frames" --threads "$budget" -f json -o "$tmp/scan.json" "${videos[@]}" 2>/dev/null
t1=$(now)
scan_s=$(echo "$t1 - $t0" | bc -l)

# 1b. The queue: submit, W workers until empty.
run_workers() {  # run_workers QUEUE_NAME -> starts W workers (pids in wpids)
  wpids=()
  for i in $(seq 1 "$workers"); do
    "$deepscan" worker --queue "$url" --queue-name "$1" --consumer "w$i" --no-tuned --frames "$frames" \
      --threads "$per_worker" --claim-idle "$claim_idle" --retry-delay 0.2 --until-empty >"$tmp/$1-w$i.log" 2>&1 &
    wpids+=($!); pids+=($!)
  done
}
t0=$(now)
"$deepscan" submit --queue "$url" --queue-name corpus "${videos[@]}" >/dev/null
run_workers corpus
for p in "${wpids[@]}"; do wait "$p"; done
t1=$(now)
queue_s=$(echo "$t1 - $t0" | bc -l)
done_n=$(redis-cli -p "$port" HLEN corpus:done)
failed_n=$(redis-cli -p "$port" HLEN corpus:failed)
printf "scan:  %6.2f s  %6.3f videos/s\n" "$scan_s" "$(echo "$n / $scan_s" | bc -l)"
printf "queue: %6.2f s  %6.3f videos/s  (%s done, %s dead-lettered)\n" "$queue_s" "$(echo "$n / $queue_s" | bc -l)" \
  "$done_n" "$failed_n"
printf "ratio queue/scan videos/s: %.3f\n" "$(echo "$scan_s / $queue_s" | bc -l)"

# 2. Takeover: kill one worker while it holds an entry; time until that entry is done.
t0=$(now)
"$deepscan" submit --queue "$url" --queue-name takeover "${videos[@]}" >/dev/null
run_workers takeover
victim=""
for _ in $(seq 1 600); do
  victim=$(redis-cli -p "$port" XPENDING takeover:videos workers - + 1 w1 | head -1)
  [ -n "$victim" ] && break
  sleep 0.05
done
[ -n "$victim" ] || { echo "queue_bench: w1 never held an entry"; exit 1; }
kill -KILL "${wpids[0]}"
killed=$(now)
wait "${wpids[0]}" 2>/dev/null
held=$(redis-cli -p "$port" XPENDING takeover:videos workers - + 1 w1 | head -1)
for _ in $(seq 1 6000); do
  [ -n "$(redis-cli -p "$port" HGET takeover:done "$held")$(redis-cli -p "$port" HGET takeover:failed "$held")" ] && break
  sleep 0.05
done
recovered=$(now)
for p in "${wpids[@]:1}"; do wait "$p"; done
t1=$(now)
takeover_s=$(echo "$recovered - $killed" | bc -l)
printf "takeover: killed w1 holding %s; survivors finished it %.2f s later (claim idle %s s: ratio %.2f)\n" \
  "$held" "$takeover_s" "$claim_idle" "$(echo "$takeover_s / $claim_idle" | bc -l)"
printf "takeover run: %.2f s for %d clips with one of %d workers killed (%.3f of the undisturbed queue run)\n" \
  "$(echo "$t1 - $t0" | bc -l)" "$n" "$workers" "$(echo "($t1 - $t0) / $queue_s" | bc -l)"

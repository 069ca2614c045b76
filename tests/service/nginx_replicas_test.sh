#!/usr/bin/env bash
# Horizontal scaling, for real: two `deepscan serve` replicas behind nginx on loopback, configured with
# deploy/nginx/deepscan.conf (ports substituted). Checks that
#   1. requests through nginx spread over both replicas (each replica's own /metrics counts some), and
#   2. with the replicas sharing jobs through one Redis (--queue, a real redis-server on loopback; uploads in
#      one --blob-dir), async jobs submitted through nginx are polled through nginx until done, every poll
#      answered (whichever replica takes it),
#   3. stopping one replica (SIGTERM) while scans are in flight loses none: every request sent through nginx
#      gets its 200 (accepted ones are drained by the stopping replica, new ones go to the other), and
#   4. a replica killed with SIGKILL while it scans one of its jobs and five more wait loses none: the other
#      replica scans the waiting ones at once and takes the held one over after --claim-idle; nginx reports
#      every one done, and every upload is deleted, and
#   H. under hostile load on nginx (1,000 idle connections, 100 clients trickling a header a byte a second, 70
#      uploads trickled from one address), /healthz through nginx answers 200 within 100 ms and /v1/frames 200,
#      while the crowd never reaches the replicas (nginx absorbs it; hostile_load below).
#   tests/service/nginx_replicas_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") when nginx, redis-server or curl is missing.
set -uo pipefail
build=$1
src=$2
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "skip: nginx is not installed"; exit 77; }
for tool in curl ffmpeg redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
tmp=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$redis_pid" ] && kill -KILL "$redis_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

redis_pid=""
. "$src/tests/service/redis_lib.sh"
start_redis --appendonly yes
queue=deepscan-serve  # the replicas' --queue-name (the default)

idle=2  # --claim-idle: how long a killed replica's job waits before another takes it over
start_replica() {  # start_replica NAME [PORT] -> sets port_NAME, pid_NAME
  # Behind nginx every connection comes from nginx's address: no per-client cap on the replicas (nginx has one).
  "$build/deepscan" serve --port "${2:-0}" --workers 1 --max-connections-per-client 0 --queue "$redis_url" \
    --blob-dir "$tmp/blobs" --claim-idle "$idle" >"$tmp/$1.log" 2>&1 &
  local pid=$! port=""
  pids+=("$pid")
  for _ in $(seq 1 100); do
    port=$(grep -o '"port":[0-9]*' "$tmp/$1.log" | head -1 | cut -d: -f2)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$tmp/$1.log"; fail "replica $1 did not start"; }
  eval "port_$1=$port; pid_$1=$pid"
}
start_replica a
start_replica b
front=$(free_port)

# deploy/nginx/deepscan.conf with this test's ports, inside a minimal nginx.conf.
mkdir -p "$tmp/body" "$tmp/proxy"
sed -e "s/127.0.0.1:8181/127.0.0.1:$port_a/; s/127.0.0.1:8182/127.0.0.1:$port_b/; s/listen 127.0.0.1:8180/listen 127.0.0.1:$front/" \
  "$src/deploy/nginx/deepscan.conf" >"$tmp/deepscan.conf"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$tmp/nginx.conf" <<CONF
$user_line
daemon on;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
  access_log $tmp/access.log;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/proxy;
  uwsgi_temp_path $tmp/proxy;
  scgi_temp_path $tmp/proxy;
  include $tmp/deepscan.conf;
}
CONF
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" || { cat "$tmp/error.log"; fail "nginx did not start"; }
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$front/healthz" >/dev/null && break; sleep 0.1; done

# 1. Load spreads: 24 frames, 4 at a time.
image="$src/../shared/data/images/blazeface/3faces.png"
[ -f "$image" ] || image=$(ls /usr/share/pixmaps/*.png 2>/dev/null | head -1)
[ -n "$image" ] || fail "no image to send"
seq 1 24 | xargs -P 4 -I{} curl -s -o /dev/null -w "%{http_code}\n" -H "Content-Type: image/png" \
  --data-binary @"$image" "http://127.0.0.1:$front/v1/frames" >"$tmp/frames.codes"
[ "$(grep -c '^200$' "$tmp/frames.codes")" = 24 ] || { sort "$tmp/frames.codes" | uniq -c; fail "not every frame got 200"; }
count() { curl -s "http://127.0.0.1:$1/metrics" | grep '^deepscan_http_requests_total{' | grep 'route="/v1/frames"' |
          grep 'status="200"' | awk '{s += $2} END {print s + 0}'; }
na=$(count "$port_a"); nb=$(count "$port_b")
echo "frames answered: replica a $na, replica b $nb"
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || fail "the load did not spread over both replicas"
[ $((na + nb)) = 24 ] || fail "replicas counted $((na + nb)) frames, not 24"

# WS /v1/stream through nginx: the upgrade reaches a replica (101), which counts the stream.
curl -s -i -N --max-time 2 -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
  -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "http://127.0.0.1:$front/v1/stream" >"$tmp/ws.txt" || true
head -1 "$tmp/ws.txt" | grep -q " 101 " || { cat "$tmp/ws.txt"; fail "nginx did not pass the WebSocket upgrade"; }
grep -q '"type":"ready"' "$tmp/ws.txt" || fail "no ready message through nginx"
streams=$(( $(curl -s "http://127.0.0.1:$port_a/metrics" | awk '/^deepscan_streams_total /{print $2}') + \
            $(curl -s "http://127.0.0.1:$port_b/metrics" | awk '/^deepscan_streams_total /{print $2}') ))
[ "$streams" = 1 ] || fail "replicas counted $streams streams, not 1"
echo "stream through nginx: 101 and ready"

# --- H. Hostile load through nginx (self-contained: tests/service/nginx_hostile_load.py does the work) ---
# A crowd on nginx's port while a normal client checks /healthz and scores frames through nginx; the replicas'
# own /metrics show the crowd never reached them. About 15 s (nginx's client_header_timeout closes the crowd).
# Every /healthz must answer within 100 ms (DEEPSCAN_HEALTHZ_MAX_MS overrides it on a machine loaded by others).
hostile_load() {
  local conf="$src/deploy/nginx/deepscan.conf" limit header_timeout figures
  limit=$(grep -o 'limit_conn deepscan_addr [0-9]*' "$conf" | awk '{print $3}')
  header_timeout=$(grep -o 'client_header_timeout [0-9]*' "$conf" | awk '{print $2}')
  [ -n "$limit" ] && [ -n "$header_timeout" ] || fail "deploy/nginx/deepscan.conf has no limit_conn or client_header_timeout"
  figures=$(/usr/bin/python3 "$src/tests/service/nginx_hostile_load.py" --front "$front" \
      --replicas "$port_a,$port_b" --image "$image" --idle 1000 --trickle 100 --uploads $((limit + 6)) \
      --limit-conn "$limit" --header-timeout "$header_timeout" --seconds 8 \
      --max-healthz-ms "${DEEPSCAN_HEALTHZ_MAX_MS:-100}") ||
    { echo "$figures"; tail -5 "$tmp/error.log"; fail "hostile load through nginx"; }
  echo "hostile load through nginx: $figures"
}
hostile_load

metric() {  # metric PORT NAME_AND_LABELS -> the sum of the matching series
  curl -s "http://127.0.0.1:$1/metrics" | grep -F "$2" | awk '{s += $2} END {print s + 0}'; }
submit() {  # submit URL NAME [CLIP] -> prints the job id of an async scan
  curl -s -H "Content-Type: video/mp4" --data-binary @"${3:-$clip}" "$1/v1/scan?wait=false&name=$2" |
    grep -o '"job_id":"[0-9a-f]*"' | cut -d'"' -f4; }
# poll_done ID... : polls each job through nginx until done (30 s at most); every poll must be a 200.
poll_done() {
  local id code status
  for id in "$@"; do
    for _ in $(seq 1 300); do
      code=$(curl -s -o "$tmp/job.json" -w "%{http_code}" "http://127.0.0.1:$front/v1/jobs/$id")
      [ "$code" = 200 ] || { cat "$tmp/job.json"; fail "GET /v1/jobs/$id through nginx answered $code"; }
      status=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$tmp/job.json")
      polls=$((polls + 1))
      [ "$status" = done ] && break
      [ "$status" = failed ] && { cat "$tmp/job.json"; fail "job $id failed"; }
      sleep 0.1
    done
    [ "$status" = done ] || fail "job $id is $status, not done, after 30 s"
    /usr/bin/python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["result"]["videos"][0]["path"]' \
      "$tmp/job.json" || fail "job $id has no report"
  done
}

# 2. Async jobs through nginx, polled through nginx: any replica answers for any job.
clip="$src/third_party/sample/sample.mp4"
ids=()
for i in 1 2 3 4; do ids+=("$(submit "http://127.0.0.1:$front" "async$i.mp4")"); done
[ -n "${ids[3]}" ] || fail "an async scan was not accepted"
polls=0
poll_done "${ids[@]}"
ga=$(metric "$port_a" 'deepscan_http_requests_total{route="/v1/jobs/{id}",method="GET",status="200"}')
gb=$(metric "$port_b" 'deepscan_http_requests_total{route="/v1/jobs/{id}",method="GET",status="200"}')
echo "4 async jobs done; $polls polls through nginx, answered by replica a $ga times, replica b $gb times"
[ "$ga" -gt 0 ] && [ "$gb" -gt 0 ] || fail "the polls did not reach both replicas"

# 3. Stop replica a while scans are in flight: nothing is lost.
for i in 1 2 3 4 5 6; do
  curl -s -o "$tmp/scan$i.json" -w "%{http_code}\n" -H "Content-Type: video/mp4" --data-binary @"$clip" \
    "http://127.0.0.1:$front/v1/scan?name=clip$i.mp4" >"$tmp/scan$i.code" &
  scan_pids+=($!)
done
sleep 0.7
kill -TERM "$pid_a"
for p in "${scan_pids[@]}"; do wait "$p"; done
wait "$pid_a"; rc_a=$?
echo "replica a exited with $rc_a after SIGTERM"
[ "$rc_a" = 0 ] || fail "replica a did not drain and exit 0"
for i in 1 2 3 4 5 6; do
  code=$(cat "$tmp/scan$i.code")
  [ "$code" = 200 ] || { cat "$tmp/scan$i.json"; fail "scan $i answered $code"; }
  grep -q "\"path\":\"clip$i.mp4\"" "$tmp/scan$i.json" || fail "scan $i's report is not its own"
done
echo "all 6 scans answered 200 across the stop"
# And afterwards, everything goes to replica b.
code=$(curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: image/png" --data-binary @"$image" \
  "http://127.0.0.1:$front/v1/frames")
[ "$code" = 200 ] || fail "after the stop a frame got $code"

# 4. Restart replica a (same port, same queue), give it six async jobs, kill it (SIGKILL) while its one worker
#    scans one of them: replica b scans the waiting ones at once and takes the held one over after --claim-idle.
#    (Replica a's worker may have taken any of them; b's worker too: whatever a held when it died is the test.)
#    Six distinct contents (the same bytes would be answered from the first one's stored result, unscanned).
for i in 1 2 3 4 5 6; do
  ffmpeg -v error -y -i "$clip" -c copy -metadata comment="killed $i" "$tmp/killed$i.mp4" ||
    fail "ffmpeg could not copy the sample clip"
done
start_replica a "$port_a"
ids=()
for i in 1 2 3 4 5 6; do ids+=("$(submit "http://127.0.0.1:$port_a" "killed$i.mp4" "$tmp/killed$i.mp4")"); done
[ -n "${ids[5]}" ] || fail "replica a did not accept six async jobs"
held_by_a() { rc XPENDING "$queue:videos" workers - + 100 | grep -c -- "-$pid_a-"; }
wait_held() { for _ in $(seq 1 100); do [ "$(held_by_a)" -ge 1 ] && return 0; sleep 0.05; done; return 1; }
wait_held || fail "replica a's worker never took a job"
kill -KILL "$pid_a"
wait "$pid_a" 2>/dev/null
killed_at=$(date +%s%N)
held=$(held_by_a)
unfinished=0
for id in "${ids[@]}"; do
  entry=$(rc HGET "$queue:jobs" "$id")
  [ "$(rc HEXISTS "$queue:done" "$entry")" = 1 ] || unfinished=$((unfinished + 1))
done
echo "replica a killed holding $held job(s); $unfinished of 6 unfinished"
[ "$held" = 1 ] || fail "replica a held $held jobs when killed, not 1"
[ "$unfinished" -ge 2 ] || fail "the jobs finished before the kill: the test proves nothing"
poll_done "${ids[@]}"
echo "all 6 done via nginx $(( ($(date +%s%N) - killed_at) / 1000000 )) ms after the kill (--claim-idle $idle s)"
reclaimed=$(metric "$port_b" 'deepscan_job_queue_events_total{variant="a",event="reclaimed"}')
echo "replica b took over $reclaimed job(s) from the killed replica"
[ "$reclaimed" = "$held" ] || fail "replica b took over $reclaimed jobs, not the $held replica a held"
blobs() { find "$tmp/blobs" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{32}' | wc -l; }
for _ in $(seq 1 50); do [ "$(blobs)" = 0 ] && break; sleep 0.1; done
[ "$(blobs)" = 0 ] || fail "$(blobs) uploads were not deleted after their jobs finished"
echo "PASS"

#!/usr/bin/env bash
# Horizontal scaling, for real: two `deepscan serve` replicas behind nginx on loopback, configured with
# deploy/nginx/deepscan.conf (ports substituted). Checks that
#   1. requests through nginx spread over both replicas (each replica's own /metrics counts some), and
#   2. stopping one replica (SIGTERM) while scans are in flight loses none: every request sent through nginx
#      gets its 200 (accepted ones are drained by the stopping replica, new ones go to the other).
#   tests/service/nginx_replicas_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (CTest "skipped") when nginx or curl is missing.
set -uo pipefail
build=$1
src=$2
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "skip: nginx is not installed"; exit 77; }
command -v curl >/dev/null || { echo "skip: curl is not installed"; exit 77; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
tmp=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_replica() {  # start_replica NAME -> sets port_NAME, pid_NAME
  "$build/deepscan" serve --port 0 --workers 1 >"$tmp/$1.log" 2>&1 &
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
events { worker_connections 256; }
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

# 2. Stop replica a while scans are in flight: nothing is lost.
clip="$src/third_party/sample/sample.mp4"
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
echo "PASS"

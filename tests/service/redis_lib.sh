# Sourced by the service tests that need a real redis-server (queue_workers_test.sh,
# nginx_replicas_test.sh). Needs $tmp (the test's folder) and fail(); gives
#   free_port             a free TCP port on 127.0.0.1
#   start_redis [ARGS]    starts redis-server on $redis_port (chosen once), loopback only, its data
#                         and log in $tmp, with ARGS appended (e.g. --appendonly yes); sets
#                         $redis_pid and $redis_url; waits until it answers PING
#   rc ARGS               redis-cli on that port
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=${redis_port:-$(free_port)}
redis_url="redis://127.0.0.1:$redis_port/0"
redis_pid=""
rc() { redis-cli -p "$redis_port" "$@"; }
start_redis() {
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$tmp" --save "" --protected-mode yes \
    --logfile "$tmp/redis.log" "$@" &
  redis_pid=$!
  for _ in $(seq 1 100); do [ "$(rc ping 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done
  fail "redis-server did not start"
}

#!/usr/bin/env bash
# Behind a real reverse proxy: Debian's nginx with deploy/nginx.conf (its ports
# rewritten) in front of two danmaku nodes on Redis and PostgreSQL, and a smoke client
# (tests/proxy/smoke.py) that goes through it: the page loads, a socket connects, posts
# made on either node reach the viewer whichever node nginx picked for it (so the
# cross-node path is taken), and the nodes name the forwarded client in their logs.
# Fails loudly: no nginx after the install, Redis or PostgreSQL down, a node or nginx
# that does not start, or a failed check exits non-zero.
#
# Usage: tests/proxy/run.sh
# Env:   DANMAKU_BIN  server binary (default: target/debug/danmaku, built if absent)
#        DANMAKU_TEST_REDIS_URL, DANMAKU_TEST_PG_URL (defaults: the machine's services)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
redis_url=${DANMAKU_TEST_REDIS_URL:-redis://127.0.0.1:6379}
pg_url=${DANMAKU_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}

if [ ! -x /usr/sbin/nginx ]; then
  echo "proxy: /usr/sbin/nginx missing: installing Debian's nginx"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
[ -x /usr/sbin/nginx ] || { echo "proxy: nginx is needed"; exit 1; }
redis-cli -u "$redis_url" ping >/dev/null 2>&1 || { echo "proxy: Redis at $redis_url is down"; exit 1; }
pg_isready -d "$pg_url" -q || { echo "proxy: PostgreSQL at $pg_url is down"; exit 1; }

venv=target/peers-venv
if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "websockets>=15,<18"
fi
bin="${DANMAKU_BIN:-target/debug/danmaku}"
[ -x "$bin" ] || cargo build -q --bin danmaku

work=$(mktemp -d)
ns="proxy_$$_$(date +%s)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  redis-cli -u "$redis_url" --scan --pattern "$ns:*" | xargs -r redis-cli -u "$redis_url" del >/dev/null || true
  psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS $ns CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits for a TCP port to accept, while the process lives.
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "proxy: $3 exited"; cat "$4"; exit 1; }
    sleep 0.05
  done
  echo "proxy: $3 never listened on $1"; cat "$4"; exit 1
}

export DANMAKU_JWT_SECRET="proxy-smoke-secret-0123456789abcdef0123456789"
ports=()
for n in a b; do
  port=$(free_port)
  ports+=("$port")
  DANMAKU_BIND="127.0.0.1:$port" DANMAKU_DATA_DIR="$work/data-$n" DANMAKU_LOG=info NO_COLOR=1 \
    DANMAKU_BUS="$redis_url" DANMAKU_STORE="$pg_url" DANMAKU_KEY_PREFIX="$ns" DANMAKU_PG_SCHEMA="$ns" \
    DANMAKU_NODE_ID="node-$n" DANMAKU_TRUSTED_PROXIES=127.0.0.1/32 DANMAKU_API_KEYS=proxy-admin-key \
    "$bin" serve 2>"$work/node-$n.log" &
  pids+=($!)
  wait_port "$port" "$!" "node $n" "$work/node-$n.log"
done

# The deploy file as shipped, with the two node ports and a free listen port; nginx's
# own paths (pid, logs, temp files) in the work dir, so no root-owned state is touched.
listen=$(free_port)
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:${ports[0]}/" -e "s/127\.0\.0\.1:8082/127.0.0.1:${ports[1]}/" \
    -e "s/listen 80;/listen 127.0.0.1:$listen;/" -e '/listen \[::\]:80;/d' \
    deploy/nginx.conf >"$work/danmaku.conf"
grep -q "127.0.0.1:${ports[1]}" "$work/danmaku.conf" || { echo "proxy: deploy/nginx.conf upstreams not found"; exit 1; }
cat >"$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log info;
events { worker_connections 1024; }
http {
    access_log $work/nginx-access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $work/danmaku.conf;
}
CONF
/usr/sbin/nginx -t -p "$work" -c "$work/nginx.conf" 2>&1 | sed 's/^/proxy: /'
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
wait_port "$listen" "$!" nginx "$work/nginx-error.log"

token() { "$bin" token --sub "$1" --role "$2" --ttl 10m; }
DANMAKU_TOKENS=$(printf '{"viewer":"%s","a":"%s","b":"%s","via":"%s"}' \
  "$(token proxy-viewer member)" "$(token poster-a free)" "$(token poster-b free)" "$(token poster-via free)")
export DANMAKU_TOKENS DANMAKU_PROXY="127.0.0.1:$listen" \
  DANMAKU_NODES="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}" DANMAKU_FORWARDED=198.51.100.9

status=0
"$venv/bin/python" tests/proxy/smoke.py || status=$?

# The node that took the socket logged the forwarded client, not nginx's address.
if grep -h "ws open" "$work"/node-*.log | grep -q "client=198.51.100.9"; then
  echo "proxy: ok   the node names the forwarded client (198.51.100.9) in its ws log"
else
  echo "proxy: FAIL no node logged the forwarded client"; grep -h "ws open" "$work"/node-*.log || true; status=1
fi
for n in a b; do
  if grep -q panicked "$work/node-$n.log"; then echo "proxy: node $n panicked"; cat "$work/node-$n.log"; status=1; fi
done
for i in 0 1 2; do
  kill -0 "${pids[$i]}" 2>/dev/null || { echo "proxy: process ${pids[$i]} died"; status=1; }
done
[ "$status" = 0 ] && echo "proxy: passed" || echo "proxy: FAILED"
exit "$status"

#!/usr/bin/env bash
# Proxy smoke suite: two danmaku nodes in cluster mode (Redis 127.0.0.1:6379 and
# PostgreSQL postgres://postgres@127.0.0.1:5432/test, with a fresh key prefix and
# schema) behind nginx running deploy/nginx.conf, and a Python client going through
# nginx (tests/proxy/smoke.py says what it checks). Then, from the nodes' logs: each
# node took some of the posts (so each node's direct viewer got comments published on
# the other node), and nginx's X-Forwarded-For was honoured (the client's real address
# named, the address it made up never). Fails loudly when nginx, Redis, PostgreSQL or
# Python is missing; everything it started is stopped on exit, and its Redis keys and
# schema are removed.
#
# Usage: tests/proxy/run.sh
# Env:   DANMAKU_BIN  server binary (default: target/debug/danmaku, built if absent)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/sbin/nginx ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi
[ -x /usr/sbin/nginx ] || { echo "proxy: nginx is needed (/usr/sbin/nginx)"; exit 1; }
command -v python3 >/dev/null || { echo "proxy: python3 is needed"; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
  || { echo "proxy: Redis is not answering on 127.0.0.1:6379"; exit 1; }
pg_isready -h 127.0.0.1 -p 5432 -q \
  || { echo "proxy: PostgreSQL is not answering on 127.0.0.1:5432"; exit 1; }
pg=postgres://postgres@127.0.0.1:5432/test
psql "$pg" -qAtc 'select 1' >/dev/null \
  || { echo "proxy: cannot connect to $pg"; exit 1; }

# The venv tests/peers/run.sh makes; reused when it is there.
venv=target/peers-venv
if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "websockets>=15,<18"
fi
bin="${DANMAKU_BIN:-target/debug/danmaku}"
[ -x "$bin" ] || cargo build -q --bin danmaku

ns="proxy_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
work=$(mktemp -d)
# nginx's workers run as nobody: they must reach their temp files under here.
chmod 755 "$work"
pids=()
cleanup() {
  status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$ns:*" \
    | xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null || true
  psql "$pg" -qAtc "DROP SCHEMA IF EXISTS \"$ns\" CASCADE" >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then
    for f in "$work"/node-*.log "$work"/nginx/logs/error.log; do
      [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

export DANMAKU_JWT_SECRET="proxy-smoke-secret-0123456789abcdef0123456789"
export DANMAKU_BUS=redis://127.0.0.1:6379 DANMAKU_STORE="$pg"
export DANMAKU_KEY_PREFIX="$ns" DANMAKU_PG_SCHEMA="$ns"
export DANMAKU_TRUSTED_PROXIES=127.0.0.1/32

# start_node NAME: a node on 127.0.0.1:0; sets addr_NAME once it listens.
start_node() {
  local name=$1 log="$work/node-$1.log" addr=""
  DANMAKU_BIND=127.0.0.1:0 DANMAKU_DATA_DIR="$work/data-$name" DANMAKU_NODE_ID="proxy-$name" \
    DANMAKU_LOG=info NO_COLOR=1 "$bin" serve 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$log" | head -n1)
    if [ -n "$addr" ]; then
      printf -v "addr_$name" '%s' "$addr"
      return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log"; echo "proxy: node $name exited"; exit 1; }
    sleep 0.1
  done
  cat "$log"; echo "proxy: node $name never listened"; exit 1
}
start_node a
start_node b
echo "proxy: nodes on $addr_a and $addr_b (prefix and schema $ns)"

# nginx with the deploy config, templated to the two nodes and a free port; its pid,
# logs and temp files under $work/nginx (the config's paths are prefix-relative).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/logs" "$work/nginx/temp"
sed -e "s/127\.0\.0\.1:8081/$addr_a/g" -e "s/127\.0\.0\.1:8082/$addr_b/g" \
  -e "s/listen 8080;/listen 127.0.0.1:$port;/" deploy/nginx.conf >"$work/nginx/nginx.conf"
grep -q "server $addr_a " "$work/nginx/nginx.conf" && grep -q "server $addr_b " "$work/nginx/nginx.conf" \
  && grep -q "listen 127.0.0.1:$port;" "$work/nginx/nginx.conf" \
  || { echo "proxy: templating deploy/nginx.conf failed"; exit 1; }
/usr/sbin/nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" \
  -g 'daemon off;' &
pids+=($!)
for i in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "proxy: nginx exited"; exit 1; }
  [ "$i" -eq 100 ] && { echo "proxy: nginx never listened on $port"; exit 1; }
  sleep 0.1
done
echo "proxy: $(/usr/sbin/nginx -v 2>&1) on 127.0.0.1:$port"

# Four posters: round robin spreads their posts over both nodes (checked below).
POSTER_TOKENS=$(for i in 1 2 3 4; do "$bin" token --sub "proxy-poster-$i" --role member --ttl 10m; done)
export POSTER_TOKENS PROXY="127.0.0.1:$port" NODE_A="$addr_a" NODE_B="$addr_b"
status=0
"$venv/bin/python" tests/proxy/smoke.py || status=$?

# What only the logs can tell.
passed=0 failed=0
log_check() {
  if eval "$2"; then passed=$((passed + 1)); echo "ok   $1"
  else failed=$((failed + 1)); echo "FAIL $1"; fi
}
la="$work/node-a.log" lb="$work/node-b.log"
log_check "cross-node: node A took some of the proxied posts" "grep -q 'danmaku posted (rest)' '$la'"
log_check "cross-node: node B took some of the proxied posts" "grep -q 'danmaku posted (rest)' '$lb'"
log_check "XFF honoured: a post logged with the client's address 127.0.0.2" \
  "grep -h 'danmaku posted (rest)' '$la' '$lb' | grep -q 'client=127.0.0.2'"
log_check "XFF honoured: the proxied socket opened for client 127.0.0.2" \
  "grep -h 'ws open' '$la' '$lb' | grep -q 'client=127.0.0.2'"
log_check "direct sockets are their TCP peer, 127.0.0.1" \
  "grep -h 'ws open' '$la' '$lb' | grep -q 'client=127.0.0.1'"
log_check "the made-up X-Forwarded-For entry is never taken" \
  "! grep -q 'client=198.51.100.9' '$la' '$lb'"
for n in a b; do
  log_check "node $n neither crashed nor panicked" \
    "kill -0 ${pids[$([ $n = a ] && echo 0 || echo 1)]} 2>/dev/null && ! grep -q panicked '$work/node-$n.log'"
done
echo "proxy logs: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit "$status"

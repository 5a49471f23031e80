#!/usr/bin/env bash
# Scripted fault runs against a loopback cluster, each bounded in time, each ending in
# one summary line of counts (from `danmaku bench --survive-faults --json`):
#   kill   3 nodes on Redis 127.0.0.1:6379 + PostgreSQL $PG_URL (fresh prefix/schema);
#          SIGKILL one node mid-run; reconnect time, gaps, dupes, missing (posts the
#          killed node acknowledged are owed to every viewer like any other).
#   redis  2 nodes on a throwaway redis-server this script starts on a free port: stop
#          it mid-run, wait 5 s, start it again on the same port (6379 is never touched).
#   pg     2 nodes on a throwaway PostgreSQL this script creates (initdb): stop it 10 s;
#          posts answered 503 store_unavailable (count, latency), posting resumes.
# Usage: scripts/chaos.sh [kill|redis|pg|all] [--viewers N] [--duration S] [--rate R]
#                         [--window EVENTS]   (replay window per channel; default 256)
# Env: BIN (default target/release/danmaku), PG_URL (kill; default
# postgres://postgres@127.0.0.1:5432/test), PGBIN (default /usr/lib/postgresql/15/bin).
# Out: target/chaos/<UTC stamp>/ (bench logs and JSON, server logs). Exit 1 on a failure
# to set up; the counts say how each run went.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/danmaku}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
which=all VIEWERS=3000 DUR=20 RATE=100 WINDOW=256
[ $# -gt 0 ] && [[ "$1" != --* ]] && { which=$1; shift; }
while [ $# -gt 0 ]; do
  case "$1" in
    --viewers) VIEWERS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    *) echo "chaos: unknown argument $1" >&2; exit 1 ;;
  esac
done
[ -x "$BIN" ] || { echo "chaos: no binary at $BIN (cargo build --release)" >&2; exit 1; }
for v in $(env | grep -o '^DANMAKU_[A-Z_]*' || true); do unset "$v"; done
export DANMAKU_JWT_SECRET=chaos-fixed-hs256-secret-0123456789abcdef0123
ulimit -n "$(ulimit -Hn)"
OUT=$ROOT/target/chaos/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/danmaku-chaos.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -f "$TMP/pg/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/pg" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done
  echo "chaos: server on :$1 did not start" >&2; exit 1
}

# start_nodes N REDIS STORE NS: starts N nodes; sets URLS (comma list), NODE_PIDS, SPIDS.
start_nodes() {
  local n=$1 redis=$2 store=$3 ns=$4 i port
  URLS="" SPIDS="" NODE_PIDS=()
  for i in $(seq 0 $((n - 1))); do
    port=$(free_port)
    mkdir -p "$TMP/$ns-$i"
    "$BIN" serve --data-dir "$TMP/$ns-$i" --bind "127.0.0.1:$port" --log warn --free-feed-rate 0 \
      --ws-ops-per-s 100000 --ws-ops-burst 100000 --bus "$redis" --store "$store" \
      --replay-window-events "$WINDOW" \
      --key-prefix "$ns" --pg-schema "$ns" --node-id "n$i" >"$OUT/$ns-node$i.log" 2>&1 &
    NODE_PIDS+=($!); PIDS+=($!)
    wait_http "$port"
    URLS+="${URLS:+,}http://127.0.0.1:$port"
    SPIDS+="${SPIDS:+,}${NODE_PIDS[$i]}"
  done
}

# bench NAME VIEWERS: the bench in the background (BENCH_PID), JSON to $OUT/NAME.json.
bench() {
  "$BIN" bench fanout -v "$2" -p 4 -r "$RATE" -d "$DUR" --via rest --survive-faults \
    --dead-after-s 30 --drain-s 20 --url "$URLS" --server-pid "$SPIDS" --video "$1" \
    --json "$OUT/$1.json" >"$OUT/$1.txt" 2>"$OUT/$1.err" &
  BENCH_PID=$!
}

# wait_load NAME: waits until the bench's posting started (its progress line).
wait_load() {
  for _ in $(seq 1200); do grep -q 'viewers subscribed' "$OUT/$1.err" 2>/dev/null && return; sleep 0.1; done
  echo "chaos: $1: viewers never subscribed" >&2; exit 1
}

# summary NAME: one line of counts from the bench JSON.
summary() {
  python3 - "$OUT/$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r.get("survival") or {}; f = r["refusals"]; c = s.get("reconnect", {})
miss = sum(x["missed"] for x in r["roles"].values())
print(f"{sys.argv[2]}: viewers {r['viewers']} sent {r['sent']} acked {r['acked']} errors {r['send_errors']} lost-in-flight {r.get('lost_in_flight')} "
      f"503 {f['refused_503']} (p50 {f['latency']['p50_ms']:.1f} ms max {f['latency']['max_ms']:.1f} ms) "
      f"unreachable {f['unreachable']} acked-after-last-503 {f['acked_after_last_refusal']} | "
      f"deliveries {r['deliveries']} ({r['deliveries_per_s']:.0f}/s) same p99 {r['same_node']['p99_ms']:.1f} ms "
      f"cross p99 {r['cross_node']['p99_ms']:.1f} ms | reconnects {s.get('reconnects')} by {s.get('viewers_reconnected')} "
      f"(p50 {c.get('p50_ms', 0):.0f} p99 {c.get('p99_ms', 0):.0f} max {c.get('max_ms', 0):.0f} ms) "
      f"unrecovered {s.get('unrecovered')} refilled {s.get('refilled')} renumbered {s.get('renumbered')} gaps {s.get('gaps')} dups {s.get('duplicates')} "
      f"missing {miss} down {s.get('down_at_end')} | ok {r['ok']}")
PY
}

run_kill() {
  local ns="chaos_kill_$$"
  start_nodes 3 redis://127.0.0.1:6379 "$PG_URL" "$ns"
  bench "$ns" "$VIEWERS"; wait_load "$ns"
  sleep $((DUR / 2))
  kill -9 "${NODE_PIDS[2]}"; echo "chaos: kill: SIGKILL node 2 (pid ${NODE_PIDS[2]})" >&2
  wait "$BENCH_PID" || true
  summary "$ns"
  for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -p 6379 --scan --pattern "$ns:*" | xargs -r redis-cli -p 6379 del >/dev/null || true
  command -v psql >/dev/null && psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS \"$ns\" CASCADE" >/dev/null 2>&1 || true
}

run_redis() {
  local ns="chaos_redis_$$" rport; rport=$(free_port)
  local rs=(redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP")
  "${rs[@]}" >"$OUT/redis.log" 2>&1 & PIDS+=($!); local R=$!
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  start_nodes 2 "redis://127.0.0.1:$rport" "$PG_URL" "$ns"
  bench "$ns" "$VIEWERS"; wait_load "$ns"
  sleep $((DUR / 3))
  kill "$R"; wait "$R" 2>/dev/null || true; echo "chaos: redis: stopped, 5 s" >&2
  sleep 5
  "${rs[@]}" >>"$OUT/redis.log" 2>&1 & PIDS+=($!); echo "chaos: redis: started again" >&2
  wait "$BENCH_PID" || true
  summary "$ns"
  for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  command -v psql >/dev/null && psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS \"$ns\" CASCADE" >/dev/null 2>&1 || true
}

run_pg() {
  local ns="chaos_pg_$$" pport; pport=$(free_port)
  mkdir -p "$TMP/pg"; chown postgres "$TMP" "$TMP/pg" 2>/dev/null || true
  local as=(runuser -u postgres --)
  [ "$(id -u)" = 0 ] || as=()
  "${as[@]}" "$PGBIN/initdb" -D "$TMP/pg" -U postgres --auth=trust >"$OUT/pg-initdb.log" 2>&1 \
    || { echo "chaos: initdb failed (see $OUT/pg-initdb.log)" >&2; exit 1; }
  local ctl=("${as[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -o "-p $pport -k $TMP/pg -c listen_addresses=127.0.0.1" -l "$TMP/pg/server.log")
  "${ctl[@]}" -w start >/dev/null
  start_nodes 2 redis://127.0.0.1:6379 "postgres://postgres@127.0.0.1:$pport/postgres" "$ns"
  bench "$ns" "$VIEWERS"; wait_load "$ns"
  sleep $((DUR / 4))
  "${ctl[@]}" -w stop -m fast >/dev/null; echo "chaos: pg: stopped, 10 s" >&2
  sleep 10
  "${ctl[@]}" -w start >/dev/null; echo "chaos: pg: started again" >&2
  wait "$BENCH_PID" || true
  summary "$ns"
  for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -p 6379 --scan --pattern "$ns:*" | xargs -r redis-cli -p 6379 del >/dev/null || true
}

case "$which" in
  kill) run_kill ;;
  redis) run_redis ;;
  pg) run_pg ;;
  all) run_kill; run_redis; run_pg ;;
  *) echo "chaos: unknown scenario $which (kill|redis|pg|all)" >&2; exit 1 ;;
esac
echo "chaos: logs in $OUT" >&2

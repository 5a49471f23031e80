#!/usr/bin/env bash
# Cluster figures for BENCHMARKS.md: the same `danmaku bench` load against one node and
# against three nodes of a cluster (Redis bus, PostgreSQL store), interleaved in one
# sitting, plus the Redis traffic per delivered event. (Faults: scripts/chaos.sh.)
#
#   scripts/cluster-bench.sh [--runs N] [--viewers V] [--rate R] [--rooms K]
#                            [--duration S]
#
# --viewers is the total over the nodes (3 nodes x 1k viewers: --viewers 3000);
# --rooms K > 1 runs `rooms` (K videos) instead of `fanout` (one video).
# Needs Redis on 127.0.0.1:6379 and PostgreSQL postgres://postgres@127.0.0.1:5432/test
# (the machine's services); keys and schemas are unique per run and removed after.
# Env: DANMAKU_BIN (default target/release/danmaku). Output: the bench's own report per
# run under --out DIR (default target/cluster-bench), and one summary line per run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${DANMAKU_BIN:-$ROOT/target/release/danmaku}
REDIS=redis://127.0.0.1:6379
PG=postgres://postgres@127.0.0.1:5432/test
RUNS=3 VIEWERS=3000 RATE=100 ROOMS=1 DURATION=10 OUT=$ROOT/target/cluster-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --viewers) VIEWERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --rooms) ROOMS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster-bench: unknown argument $1" >&2; exit 1 ;;
  esac
done
[ -x "$BIN" ] || { echo "cluster-bench: $BIN missing (cargo build --release)"; exit 1; }
redis-cli -u "$REDIS" ping >/dev/null || { echo "cluster-bench: Redis is down"; exit 1; }
pg_isready -d "$PG" -q || { echo "cluster-bench: PostgreSQL is down"; exit 1; }
ulimit -n 20000 2>/dev/null || true
mkdir -p "$OUT"
while read -r v; do unset "$v"; done < <(compgen -e | grep '^DANMAKU_' || true)
export DANMAKU_JWT_SECRET=cluster-bench-fixed-hs256-secret-0123456789abcdef
if [ "$ROOMS" -gt 1 ]; then
  SCEN=(rooms -v "$VIEWERS" -k "$ROOMS" -p 1 -r "$(( RATE / ROOMS > 0 ? RATE / ROOMS : 1 ))")
else
  SCEN=(fanout -v "$VIEWERS" -p 4 -r "$RATE")
fi

PIDS=() NS="" WORK=""
stop_nodes() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  if [ -n "$NS" ]; then
    redis-cli -u "$REDIS" --scan --pattern "$NS:*" | xargs -r redis-cli -u "$REDIS" del >/dev/null || true
    psql -q "$PG" -c "DROP SCHEMA IF EXISTS $NS CASCADE" >/dev/null 2>&1 || true
  fi
  [ -z "$WORK" ] || rm -rf "$WORK"
  NS="" WORK=""
}
trap stop_nodes EXIT

# start_nodes N: N nodes on ports 18181.., sharing a fresh prefix and schema.
start_nodes() {
  NS="cb_$$_$RANDOM" WORK=$(mktemp -d) URLS="" PIDLIST=""
  for i in $(seq 1 "$1"); do
    port=$((18180 + i))
    DANMAKU_BIND=127.0.0.1:$port DANMAKU_DATA_DIR=$WORK/d$i DANMAKU_LOG=warn NO_COLOR=1 \
      DANMAKU_BUS=$REDIS DANMAKU_STORE=$PG DANMAKU_KEY_PREFIX=$NS DANMAKU_PG_SCHEMA=$NS \
      DANMAKU_NODE_ID=node-$i DANMAKU_WS_OPS_PER_S=100000 DANMAKU_WS_OPS_BURST=100000 \
      DANMAKU_FREE_FEED_RATE=0 DANMAKU_MAX_CONNECTIONS_PER_USER=0 \
      "$BIN" serve 2>"$WORK/node-$i.log" &
    PIDS+=($!)
    URLS+="${URLS:+,}http://127.0.0.1:$port" PIDLIST+="${PIDLIST:+,}$!"
  done
  for i in $(seq 1 "$1"); do
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:$((18180 + i))/readyz" >/dev/null && break
      sleep 0.1
    done
    curl -fs "http://127.0.0.1:$((18180 + i))/readyz" >/dev/null || { cat "$WORK/node-$i.log"; exit 1; }
  done
}

redis_stat() { redis-cli -u "$REDIS" info stats | tr -d '\r' | sed -n "s/^$1://p"; }

# run NODES LABEL [extra bench args]: one bench run; prints the summary line.
run() {
  local n=$1 label=$2; shift 2
  start_nodes "$n"
  local c0 i0 o0
  c0=$(redis_stat total_commands_processed) i0=$(redis_stat total_net_input_bytes) o0=$(redis_stat total_net_output_bytes)
  local rep="$OUT/$label.txt" rc=0
  "$BIN" bench "${SCEN[@]}" -d "$DURATION" --via rest --url "$URLS" --server-pid "$PIDLIST" "$@" \
    >"$rep" 2>&1 || rc=$?
  local c1 i1 o1 deliveries
  c1=$(redis_stat total_commands_processed) i1=$(redis_stat total_net_input_bytes) o1=$(redis_stat total_net_output_bytes)
  deliveries=$(sed -n 's/^deliveries \([0-9]*\).*/\1/p' "$rep")
  stop_nodes
  printf '%s rc=%s | %s | %s | %s | redis per delivery: %s cmds, %s B in, %s B out | %s\n' "$label" "$rc" \
    "$(grep -m1 '^deliveries' "$rep")" \
    "$(grep -m1 '^same-node' "$rep" || echo 'one node')" \
    "$(grep '^node ' "$rep" | sed 's/http:\/\/127.0.0.1://' | tr '\n' ';')" \
    "$(awk -v a="$c0" -v b="$c1" -v d="$deliveries" 'BEGIN{printf "%.4f", (b-a)/(d>0?d:1)}')" \
    "$(awk -v a="$i0" -v b="$i1" -v d="$deliveries" 'BEGIN{printf "%.1f", (b-a)/(d>0?d:1)}')" \
    "$(awk -v a="$o0" -v b="$o1" -v d="$deliveries" 'BEGIN{printf "%.1f", (b-a)/(d>0?d:1)}')" \
    "$(grep -E '^(survive|worst viewer|result)' "$rep" | tr '\n' ' ')"
  grep -E '^(admin|free|guest|member) ' "$rep" | sed 's/^/    /'
}

for r in $(seq 1 "$RUNS"); do
  run 1 "one-node-$r"
  run 3 "three-nodes-$r"
done

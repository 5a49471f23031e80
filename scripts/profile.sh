#!/usr/bin/env bash
# Profiles the server while `danmaku bench` loads it: perf (CPU, call graphs) or
# heaptrack (live heap per idle socket). Figures in BENCHMARKS.md come from here.
#
#   scripts/profile.sh perf [SERVER FLAGS --] BENCH ARGS...   e.g. perf fanout -v 10000 -p 4 -r 200
#   scripts/profile.sh heap [VIEWERS]                         idle subscribed sockets (default 2000)
#
# perf: the server runs 20 s of the scenario; perf samples it at 499 Hz for 8 s from the
# 14th second (after connects), then prints the top symbols (children and self).
# heap: needs a build with the system allocator (heaptrack sees malloc, not mimalloc):
# `cargo build --release --features system-alloc`. The server is killed while the sockets
# are open, so heaptrack's "leaked" report is the live heap of that moment.
# Out: target/profile/<mode>-<UTC stamp>/ (perf.data or heap.zst, bench.txt, reports).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${DANMAKU_BIN:-$ROOT/target/release/danmaku}
mode=${1:?perf or heap}; shift
OUT=$ROOT/target/profile/$mode-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/danmaku-profile.XXXXXX)
PORT=${PORT:-18085}
export DANMAKU_JWT_SECRET=profile-fixed-hs256-secret-0123456789abcdef0123
ulimit -n "$(ulimit -Hn)"
SFLAGS=()
if [[ " $* " == *" -- "* ]]; then
  while [ "$1" != "--" ]; do SFLAGS+=("$1"); shift; done
  shift
fi
[ -x "$BIN" ] || { echo "profile: no binary at $BIN" >&2; exit 1; }
serve=("$BIN" serve --data-dir "$DATA" --bind "127.0.0.1:$PORT" --log warn --free-feed-rate 0
  --ws-ops-per-s 100000 --ws-ops-burst 100000 "${SFLAGS[@]}")
wait_up() {
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "profile: server did not start" >&2; exit 1
}
case "$mode" in
  perf)
    command -v perf >/dev/null || { echo "profile: perf is needed" >&2; exit 1; }
    "${serve[@]}" & S=$!
    trap 'kill $S 2>/dev/null || true; rm -rf "$DATA"' EXIT
    wait_up
    ( sleep 14; perf record -F 499 -g -p "$S" -o "$OUT/perf.data" -- sleep 8 2>/dev/null ) & P=$!
    "$BIN" bench "${@:-fanout}" -d 20 --url "http://127.0.0.1:$PORT" --server-pid "$S" >"$OUT/bench.txt" 2>&1 || true
    wait "$P" || true
    perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
      | grep -E '^ +[0-9]' | head -80 >"$OUT/children.txt"
    perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null \
      | grep -E '^ +[0-9]' | head -10 >"$OUT/dso.txt"
    grep -E '^(sent|deliveries|admin|free|guest|member|per-room|bytes per|server RSS)' "$OUT/bench.txt" || true
    cat "$OUT/dso.txt"; head -40 "$OUT/children.txt"
    ;;
  heap)
    command -v heaptrack >/dev/null || { echo "profile: heaptrack is needed" >&2; exit 1; }
    viewers=${1:-2000}
    heaptrack -o "$OUT/heap" "${serve[@]}" >"$OUT/heaptrack.log" 2>&1 &
    trap 'pkill -f "$DATA" 2>/dev/null || true; rm -rf "$DATA"' EXIT
    wait_up
    S=$(pgrep -f "^$BIN serve --data-dir $DATA" | head -1)
    [ -n "$S" ] || { echo "profile: server process not found" >&2; exit 1; }
    "$BIN" bench idle -v "$viewers" -d 20 --url "http://127.0.0.1:$PORT" --server-pid "$S" >"$OUT/bench.txt" 2>&1 &
    B=$!
    for _ in $(seq 300); do grep -q subscribed "$OUT/bench.txt" && break; sleep 0.2; done
    sleep 3
    kill -9 "$S"
    wait "$B" 2>/dev/null || true
    for _ in $(seq 120); do pgrep -f "heaptrack.*$OUT" >/dev/null || break; sleep 0.5; done
    heaptrack_print -n 60 -s 40 --print-leaks 1 "$OUT"/heap*.zst >"$OUT/heap.txt" 2>&1
    python3 "$ROOT/scripts/compare/heap_per_socket.py" "$OUT/heap.txt" "$viewers"
    ;;
  *) echo "profile: mode is perf or heap" >&2; exit 1 ;;
esac

# Sourced by the suites that drive a real server from outside (tests/peers/run.sh,
# tests/schemathesis/run.sh): starts `$bin serve` on 127.0.0.1:0 with a fresh data dir,
# waits for its "listening" log line, and checks afterwards that it neither crashed nor
# panicked. The caller sets `bin` and exports any DANMAKU_* settings it wants first.
#
#   serve NAME          sets work (temp dir, removed on exit), log, pid and addr
#   server_survived     exits 1, naming NAME and showing the log, on a crash or a panic

serve() {
  suite=$1
  work=$(mktemp -d)
  log="$work/server.log"
  : >"$log"
  DANMAKU_BIND=127.0.0.1:0 DANMAKU_DATA_DIR="$work/data" DANMAKU_LOG=info NO_COLOR=1 \
    "$bin" serve 2>"$log" &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
  addr=""
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$log" | head -n1)
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "$suite: server exited"; exit 1; }
    sleep 0.1
  done
  cat "$log"; echo "$suite: server never listened"; exit 1
}

server_survived() {
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$suite: the server crashed"; tail -n 50 "$log"; exit 1
  fi
  if grep -q "panicked" "$log"; then
    echo "$suite: the server panicked"; grep -n -A5 "panicked" "$log"; exit 1
  fi
}

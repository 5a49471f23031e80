#!/usr/bin/env bash
# WebSocket conformance against an independent peer: Python's `websockets` (RFC 6455
# and RFC 7692), with permessage-deflate on and off, against the real server.
# See tests/peers/conformance.py for what it checks. Fails loudly: a missing Python,
# a failed install, a server that does not start or any failed check exits non-zero.
#
# Usage: tests/peers/run.sh
# Env:   DANMAKU_BIN  server binary (default: target/debug/danmaku, built if absent)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v python3 >/dev/null || { echo "peers: python3 is needed"; exit 1; }
venv=target/peers-venv
if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "websockets>=15,<18"
fi
echo "peers: websockets $("$venv/bin/python" -c 'import websockets; print(websockets.__version__)')"
bin="${DANMAKU_BIN:-target/debug/danmaku}"
[ -x "$bin" ] || cargo build -q --bin danmaku

export DANMAKU_JWT_SECRET="peers-conformance-secret-0123456789abcdef0123"
. tests/lib/serve.sh
serve peers

token() { "$bin" token --sub "$1" --role "$2" --ttl 10m; }
DANMAKU_TOKENS=$(printf '{"free":"%s","member":"%s","admin":"%s"}' \
  "$(token peer-free free)" "$(token peer-member member)" "$(token peer-admin admin)")
export DANMAKU_TOKENS DANMAKU_WS="ws://$addr/ws"

status=0
"$venv/bin/python" tests/peers/conformance.py || status=$?
server_survived
exit "$status"

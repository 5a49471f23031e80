#!/usr/bin/env bash
# Tests of the embeddable client (static/lib/danmaku-client.js) in Node's test runner,
# against the real server binary ${DANMAKU_BIN:-target/debug/danmaku} (build it first;
# this script never builds). No npm packages: Node 20's WebSocket and fetch. Exits non-zero
# on any failure and ends with "N passed, N failed".
# Extra arguments go to `node --test`, e.g. --test-name-pattern=engagement
set -euo pipefail
cd "$(dirname "$0")/../.."
export DANMAKU_BIN="${DANMAKU_BIN:-target/debug/danmaku}"

if ! command -v node >/dev/null; then
  echo "client tests: node is required (Node.js 20 or later)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "client tests: Node.js $(node --version) is too old: 20 or later is needed" >&2
  exit 1
fi
if [ ! -x "$DANMAKU_BIN" ]; then
  echo "client tests: the server binary $DANMAKU_BIN is missing: run cargo build, or set DANMAKU_BIN" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
# Node 20 has WebSocket behind a flag; 22 and later have it on by default.
ws_flag=()
if [ "$node_major" -lt 22 ]; then ws_flag=(--experimental-websocket); fi

tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
node "${ws_flag[@]}" --no-warnings=ExperimentalWarning --test --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "$@" tests/client/client.test.mjs || status=$?

count() { grep -E "^# $1 [0-9]+" "$tap" | tail -1 | awk '{print $3}'; }
passed=$(count pass); passed=${passed:-0}
failed=$(count fail); failed=${failed:-0}
cancelled=$(count cancelled); cancelled=${cancelled:-0}
skipped=$(count skipped); skipped=${skipped:-0}
failed=$((failed + cancelled))
if [ "$status" -eq 0 ] && [ "$passed" -eq 0 ]; then
  echo "client tests: no test ran" >&2
  status=1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
# A full run skips nothing (a filtered run, with arguments, skips what it leaves out).
if [ "$skipped" -gt 0 ] && [ "$#" -eq 0 ]; then echo "client tests: ${skipped} skipped: none may be" >&2; status=1; fi
echo "${passed} passed, ${failed} failed"
exit "$status"

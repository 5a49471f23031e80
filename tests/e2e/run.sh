#!/usr/bin/env bash
# The browser end-to-end suite, from a fresh Debian machine: installs what is missing
# (Debian's chromium; the npm packages pinned in package-lock.json), builds the server,
# and runs the scenarios of tests/e2e/e2e.test.mjs in headless Chromium against
# target/debug/danmaku. Screenshots land in target/e2e/. Exits non-zero on any failure
# and ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if [ ! -x /usr/bin/chromium ]; then
  echo "e2e: /usr/bin/chromium missing: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "e2e: node and npm are required (Node.js 20 or later)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "e2e: Node.js $(node --version) is too old: playwright-core needs 20 or later" >&2
  exit 1
fi

echo "e2e: npm ci (tests/e2e)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

echo "e2e: cargo build"
cargo build --bin danmaku

mkdir -p target/e2e
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
(cd tests/e2e && node --test --test-concurrency=1 --test-timeout=300000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  e2e.test.mjs) || status=$?

count() { grep -E "^# $1 [0-9]+" "$tap" | tail -1 | awk '{print $3}'; }
passed=$(count pass); passed=${passed:-0}
failed=$(count fail); failed=${failed:-0}
cancelled=$(count cancelled); cancelled=${cancelled:-0}
failed=$((failed + cancelled))
if [ "$status" -eq 0 ] && [ "$passed" -eq 0 ]; then
  echo "e2e: no test ran" >&2
  status=1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
echo "e2e: screenshots in $root/target/e2e/, server log in target/e2e/server.log"
echo "${passed} passed, ${failed} failed"
exit "$status"

#!/usr/bin/env bash
# The browser end-to-end suite, from a fresh Debian machine: installs what is missing
# (Debian's chromium and fonts-noto-cjk; the npm packages pinned in package-lock.json,
# ArtPlayer and its danmuku plugin among them), builds the server, and runs every
# scenario file below in headless Chromium against target/debug/danmaku (node --test runs
# the files in name order). Screenshots land in target/e2e/, emptied first.
# Exits non-zero on any failure and ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if [ ! -x /usr/bin/chromium ]; then
  echo "e2e: /usr/bin/chromium missing: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The zh-CN scenario renders Chinese and Japanese comments: it fails on missing glyphs.
if ! fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then
  echo "e2e: no CJK font: installing Debian's fonts-noto-cjk"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null
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

# One fresh folder for the screenshots of every file of the suite.
rm -rf target/e2e
mkdir -p target/e2e
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
(cd tests/e2e && node --test --test-concurrency=1 --test-timeout=300000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  admin-zh.test.mjs artplayer.test.mjs e2e.test.mjs engagement.test.mjs i18n-keys.test.mjs i18n.test.mjs moderation.test.mjs reports.test.mjs review.test.mjs) || status=$?

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

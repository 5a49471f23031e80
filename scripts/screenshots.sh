#!/usr/bin/env bash
# Regenerates the README's screenshots from the browser suite and records what they show.
#
#   scripts/screenshots.sh            runs tests/e2e/run.sh, then copies the shots
#   scripts/screenshots.sh --no-run   copies from the last run's target/e2e/
#
# Each picture in docs/screenshots/ comes from one named e2e screenshot (the table below).
# docs/screenshots/MANIFEST records, per picture, the shot it came from and its sha256,
# and the sha256 of the whole static/ tree the run served. The test
# `pages::screenshots::the_readme_screenshots_show_the_pages_as_they_are` fails when
# static/ no longer matches that hash (the pages changed since the pictures were taken)
# or when the README shows a picture the manifest does not list: run this script then.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-run" ]; then
  tests/e2e/run.sh
fi

# docs/screenshots/<picture>   target/e2e/<shot> (the NN- prefix of the suite's own
# numbering is ignored)
pictures=(
  "member-alice.png          member-and-free-alice.png"
  "free-bob.png              free-user-locked-controls.png"
  "replay.png                replay-after-seek-paused.png"
  "admin-console.png         admin-console-push.png"
  "swagger.png               swagger-try-it-out.png"
  "heatmap-desktop.png       heatmap-desktop.png"
  "heatmap-phone.png         heatmap-phone.png"
  "zh-CN.png                 zh-CN.png"
  "artplayer.png             artplayer.png"
  "admin-moderation.png      admin-moderation.png"
  "admin-review.png          admin-review-queue.png"
)

manifest=docs/screenshots/MANIFEST
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "# Written by scripts/screenshots.sh; checked by tests/pages/screenshots.rs." >"$tmp"
echo "static $(scripts/static-hash.sh)" >>"$tmp"
for entry in "${pictures[@]}"; do
  read -r picture shot <<<"$entry"
  src=$(ls target/e2e/"$shot" target/e2e/[0-9][0-9]-"$shot" 2>/dev/null | tail -n1 || true)
  if [ -z "$src" ]; then
    echo "screenshots: target/e2e has no $shot (did the suite run every scenario?)" >&2
    exit 1
  fi
  cp "$src" "docs/screenshots/$picture"
  echo "picture $picture $(sha256sum "docs/screenshots/$picture" | cut -d' ' -f1) from $shot" >>"$tmp"
done
mv "$tmp" "$manifest"
trap - EXIT
echo "screenshots: ${#pictures[@]} pictures copied; $manifest updated"

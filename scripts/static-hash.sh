#!/usr/bin/env bash
# Prints one sha256 over every file of static/ but static/examples/vendor/ (a site's own,
# git-ignored copy of ArtPlayer): the sha256 of the lines "<sha256 of the file>  static/<path>"
# in byte order of the paths. The screenshot
# manifest records it (scripts/screenshots.sh); tests/pages/screenshots.rs computes the
# same in Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
find static -path static/examples/vendor -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1

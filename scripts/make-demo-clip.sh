#!/usr/bin/env bash
# Regenerates static/demo.webm, the demo page's own clip: 24 s of a synthetic test
# pattern with a large running clock (mm:ss.t), so that screenshots show the video time
# and seeking is easy to see. VP9 in WebM, 640x360, 24 fps, a keyframe every second
# (precise seeks), no audio. Uses Debian's ffmpeg (installed if missing; needs root).
#
#   scripts/make-demo-clip.sh [output]      # default: static/demo.webm
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-static/demo.webm}
duration=24

if ! command -v ffmpeg >/dev/null; then
  echo "ffmpeg missing: installing Debian's ffmpeg" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi

font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
if [ ! -f "$font" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
fi

# Background: a slow-moving colour gradient; a clock in the middle; a progress bar.
filter="[0:v]format=yuv420p,
drawbox=x=0:y=ih-10:w=iw*t/${duration}:h=10:color=0xff5f8f@0.9:t=fill,
drawtext=fontfile=${font}:text='%{eif\\:floor(t/60)\\:d\\:2}\\:%{eif\\:mod(floor(t)\\,60)\\:d\\:2}.%{eif\\:mod(floor(t*10)\\,10)\\:d}':fontsize=96:fontcolor=white:borderw=4:bordercolor=black@0.6:x=(w-tw)/2:y=(h-th)/2,
drawtext=fontfile=${font}:text='danmaku demo clip':fontsize=26:fontcolor=white@0.85:x=(w-tw)/2:y=(h-th)/2+80"

ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "gradients=s=640x360:r=24:d=${duration}:speed=0.02:c0=0x1b2a4a:c1=0x3867f0:c2=0x16213a:c3=0x5b2a6e:seed=7" \
  -filter_complex "$filter" \
  -an -c:v libvpx-vp9 -b:v 0 -crf 42 -deadline good -cpu-used 4 -row-mt 1 \
  -g 24 -keyint_min 24 -pix_fmt yuv420p -threads 2 \
  -metadata title="danmaku demo clip" -fflags +bitexact -map_metadata -1 \
  "$out"

size=$(stat -c %s "$out")
echo "wrote $out: ${size} bytes, ${duration} s"
if [ "$size" -ge 2000000 ]; then
  echo "error: $out is ${size} bytes; keep it well under 2 MB" >&2
  exit 1
fi

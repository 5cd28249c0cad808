#!/usr/bin/env bash
# Pipelines as a service, measured (build/bench/pipeline_service):
#  1. a video (ffmpeg's testsrc2, 640x480, 25 fps, 8 s, H.264) through
#     video_source -> image_to_tensor -> tensor_infer(dot_density) ->
#     density_count -> overlay -> image_encoder, by the pipeline engine and
#     by the plain chain of the same elements on one thread;
#  2. the HTTP frame API against push/pull in the process: a daemon started
#     here on a free loopback port, a 640x480 PNG of 20 dots.
#   bench/pipeline_service.sh [BUILD_DIR] [ROUNDS] [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
rounds=${2:-5}
seconds=${3:-5}
tmp=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
model="$build/share/inferd/models/dot_density.onnx"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=640x480:rate=25 -t 8 \
  -c:v libx264 -pix_fmt yuv420p "$tmp/video.mp4"
"$build/bench/pipeline_service" video "$tmp/video.mp4" "$model" "$rounds"
echo
/usr/bin/python3 - "$tmp/dots.png" <<'PY'
import random, sys
from PIL import Image, ImageDraw
rng = random.Random(3)
img = Image.new("RGB", (640, 480), (20, 20, 30))
d = ImageDraw.Draw(img)
for _ in range(20):
    x, y = rng.randrange(20, 620), rng.randrange(20, 460)
    d.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(240, 240, 240))
img.save(sys.argv[1])
PY
INFERD_STATE_DIR="$tmp/state" "$build/inferd" serve --listen 127.0.0.1:0 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$tmp/daemon.log" && break; sleep 0.1; done
base=$(grep -o 'http://[^ ]*' "$tmp/daemon.log" | head -1)
"$build/bench/pipeline_service" http "$base" "$tmp/dots.png" "$model" "$seconds"

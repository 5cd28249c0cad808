#!/usr/bin/env bash
# The detect family against its models' raw runs: writes models/families.py's
# square detectors (YOLOv8, YOLOv5 and SSD-style heads, 128x128 letterboxed)
# and a 640x480 picture with squares, defines an estimator for each, and runs
# build/bench/families (medians of RUNS alternating runs, ms per image).
#   bench/families.sh [BUILD_DIR] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
runs=${2:-300}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/../models/families.py" --out "$tmp"
/usr/bin/python3 - "$tmp/picture.png" <<'PY'
import random, sys
from PIL import Image
rng = random.Random(7)
img = Image.new("RGB", (640, 480))
for k in range(6):
    x, y = 40 + 100 * k, rng.randrange(20, 300)
    img.paste((230, 20, 20) if k % 2 else (20, 210, 30), (x, y, x + 160, y + 160))
img.save(sys.argv[1])
PY
cat >"$tmp/count.json" <<JSON
{"count": {"in": {"factory": "appsrc", "next": "tensor"},
  "tensor": {"factory": "image_to_tensor", "next": "infer"},
  "infer": {"factory": "tensor_infer", "props": {"modelPath": "$build/share/inferd/models/dot_density.onnx"}, "next": "count"},
  "count": {"factory": "density_count", "props": {"target": "T2"}, "next": "json"},
  "json": {"factory": "json_serialize", "next": "out"},
  "out": {"factory": "appsink"}}}
JSON
box='"input": {"resize": "letterbox", "padValue": 114}, "labelsFile": "squares.labels", "scoreThreshold": 0.8'
export INFERD_ESTIMATORS="{\"v8\": {\"type\": \"detect\", \"modelPath\": \"$tmp/squares_yolov8.onnx\", $box},
  \"v5\": {\"type\": \"detect\", \"modelPath\": \"$tmp/squares_yolov5.onnx\", \"head\": \"yolov5\", $box},
  \"ssd\": {\"type\": \"detect\", \"modelPath\": \"$tmp/squares_ssd.onnx\", \"boxesNormalized\": true, $box},
  \"crowd\": {\"type\": \"density\", \"modelPath\": \"dot_density.onnx\", \"input\": {\"resize\": \"stretch\", \"width\": 128, \"height\": 128}},
  \"crowdPipe\": {\"type\": \"pipeline\", \"pipeline\": \"$tmp/count.json\"}}"
"$build/bench/families" "$tmp/picture.png" "$runs" v8 v5 ssd crowd crowdPipe

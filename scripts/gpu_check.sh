#!/usr/bin/env bash
# Runs inferd's estimators and KServe models on the GPU and on the CPU, and
# compares: the same images and tensors go to two daemons, one on the CPU
# and one with deviceClass gpu and provider cuda, and their answers must
# agree; then `inferd bench` times both. Prints a table.
#
#   scripts/gpu_check.sh [--inferd PATH] [--seconds N] [--images DIR]
#
#   --inferd PATH   the inferd binary (default: build/inferd, else inferd on PATH)
#   --seconds N     each bench level's length (default 5; 0: no timing)
#   --images DIR    where to write the test images (default: a temporary folder)
#   --without-gpu   go on when the GPU is not used (both daemons then run on
#                   the CPU): how the tests check this script on machines
#                   without one
#
# Needs ONNX Runtime's CUDA provider (scripts/fetch_onnxruntime.sh --gpu),
# CUDA 13 and cuDNN 9, an NVIDIA driver and a GPU. Exit status: 0 when
# everything ran on the GPU and agreed with the CPU; 1 when an answer
# differed or a request failed; 2 when the GPU was not used (the reason is
# printed: the daemon's deviceFallback); 3 for a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
INFERD=""
SECONDS_EACH=5
IMAGES=""
WITHOUT_GPU=0
while [ $# -gt 0 ]; do
  case "$1" in
    --inferd) INFERD=$2; shift 2 ;;
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --images) IMAGES=$2; shift 2 ;;
    --without-gpu) WITHOUT_GPU=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (--help)" >&2; exit 3 ;;
  esac
done
if [ -z "$INFERD" ]; then
  if [ -x build/inferd ]; then INFERD=build/inferd; else INFERD=$(command -v inferd || true); fi
fi
[ -x "$INFERD" ] || { echo "gpu_check: no inferd binary (build it, or give --inferd)" >&2; exit 3; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

T=$(mktemp -d /tmp/inferd-gpu-XXXXXX)
PIDS=()
finish() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap finish EXIT
[ -n "$IMAGES" ] || IMAGES=$T/images
"$PY" scripts/gen_images.py --out "$IMAGES" >/dev/null

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start NAME PORT ENV...: a daemon with its own state; waits for /ready.
start() {
  local name=$1 port=$2; shift 2
  env INFERD_STATE_DIR="$T/state-$name" "$@" "$INFERD" serve --listen "127.0.0.1:$port" \
    2>"$T/$name.log" &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ] && return 0
    sleep 0.1
  done
  echo "gpu_check: the $name daemon did not get ready: $(tail -3 "$T/$name.log")" >&2
  exit 1
}
CPU=$(free_port); GPU=$(free_port)
start cpu "$CPU" INFERD_DEVICE_CLASS=cpu
start gpu "$GPU" INFERD_DEVICE_CLASS=gpu INFERD_MODELS_BACKEND_OPTIONS='{"provider": "cuda"}'

# Where each estimator and model runs on the GPU daemon.
"$PY" - "$GPU" <<'EOF' || [ "$WITHOUT_GPU" = 1 ] || exit 2
import json, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
get = lambda p: json.load(urllib.request.urlopen(base + p))
bad = []
for e in get("/v1/estimators")["estimators"]:
    d = get("/v1/estimators/" + e["name"])
    if d.get("device", "").startswith("cuda"):
        print("estimator %-22s runs on %s" % (d["name"], d["device"]))
    elif "device" in d:
        bad.append("estimator %s runs on %s: %s" % (d["name"], d["device"], d.get("deviceFallback", "")))
index = urllib.request.Request(base + "/v2/repository/index", data=b"{}")
for m in json.load(urllib.request.urlopen(index)):
    c = get("/v2/models/%s/config" % m["name"])
    kinds = [g["kind"] for g in c.get("instance_group", [])]
    if kinds == ["KIND_GPU"]:
        print("model     %-22s runs on GPU %s" % (m["name"], c["instance_group"][0].get("gpus")))
    else:
        bad.append("model %s runs as %s" % (m["name"], kinds))
if bad:
    print("gpu_check: the GPU is not used:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF

# The same requests to both: the answers must agree.
"$PY" - "$CPU" "$GPU" "$IMAGES" <<'EOF' || exit 1
import json, os, random, sys, urllib.request
cpu, gpu, images = ["http://127.0.0.1:%s" % p for p in sys.argv[1:3]] + [sys.argv[3]]

def post(base, path, body, ctype):
    req = urllib.request.Request(base + path, data=body, headers={"Content-Type": ctype})
    return json.load(urllib.request.urlopen(req, timeout=120))

def close(a, b, path="", tol=1e-3):
    """Differences between two JSON answers: numbers within tol (relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return ["%s: keys %s vs %s" % (path, sorted(a), sorted(b))]
        return [d for k in a for d in close(a[k], b[k], path + "." + k, tol)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s: %d vs %d items" % (path, len(a), len(b))]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in close(x, y, "%s[%d]" % (path, i), tol)]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return [] if abs(a - b) <= tol * max(1.0, abs(a), abs(b)) else ["%s: %r vs %r" % (path, a, b)]
    return [] if a == b else ["%s: %r vs %r" % (path, a, b)]

estimators = {"peopleCountEstimator": "dots_", "imageLabelEstimator": "colour_", "defectEstimator": "scratches_"}
diffs, n = [], 0
for name, prefix in estimators.items():
    for f in sorted(os.listdir(images)):
        if not f.startswith(prefix):
            continue
        body = open(os.path.join(images, f), "rb").read()
        ctype = "image/png" if f.endswith(".png") else "image/jpeg"
        a, b = (post(base, "/v1/estimators/" + name, body, ctype) for base in (cpu, gpu))
        diffs += ["%s %s%s" % (name, f, d) for d in close(a, b)]
        n += 1
# KServe: random inputs of each model's shape (dynamic dimensions as 1x3x64x64).
rng = random.Random(7)
index = post(cpu, "/v2/repository/index", b"{}", "application/json")
for m in index:
    meta = json.load(urllib.request.urlopen(cpu + "/v2/models/" + m["name"]))
    inputs = []
    for i in meta["inputs"]:
        shape = [d if d > 0 else (1 if k == 0 else 3 if k == 1 else 64) for k, d in enumerate(i["shape"])]
        size = 1
        for d in shape:
            size *= d
        inputs.append({"name": i["name"], "shape": shape, "datatype": i["datatype"],
                       "data": [rng.random() for _ in range(size)]})
    body = json.dumps({"inputs": inputs}).encode()
    path = "/v2/models/%s/infer" % m["name"]
    a, b = (post(base, path, body, "application/json") for base in (cpu, gpu))
    for x, y in zip(sorted(a["outputs"], key=lambda o: o["name"]), sorted(b["outputs"], key=lambda o: o["name"])):
        diffs += ["model %s %s%s" % (m["name"], x["name"], d) for d in close(x["data"], y["data"], tol=1e-2)]
    n += 1
print("%d requests each to the CPU and the GPU daemon: %d differ" % (n, len(diffs)))
for d in diffs[:20]:
    print("  " + d)
sys.exit(1 if diffs else 0)
EOF

# Timing: the same load on both.
[ "$SECONDS_EACH" != 0 ] || exit 0
printf '\n%-22s %-4s %6s %10s %10s %10s\n' "estimator" "on" "conc" "req/s" "p50 ms" "p99 ms"
for name in peopleCountEstimator imageLabelEstimator defectEstimator; do
  case $name in
    peopleCountEstimator) img=$IMAGES/dots_09_100.png ;;
    imageLabelEstimator) img=$IMAGES/colour_02_red.png ;;
    *) img=$IMAGES/scratches_01_1.png ;;
  esac
  for side in cpu gpu; do
    port=$CPU; [ $side = gpu ] && port=$GPU
    "$INFERD" bench --url "http://127.0.0.1:$port" --estimator "$name" --body "$img" -c 1,8 \
      -d "$SECONDS_EACH" --warmup 1 --csv "$T/$name-$side.csv" >/dev/null 2>&1 || true
    "$PY" - "$T/$name-$side.csv" "$name" "$side" <<'EOF'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print("%-22s %-4s %6s %10s %10s %10s" % (sys.argv[2], sys.argv[3], r["clients"],
          r["requests_per_s"], r["p50_ms"], r["p99_ms"]))
EOF
  done
done

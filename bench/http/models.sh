#!/usr/bin/env bash
# bench/http/models.sh: the estimation API with models of realistic size,
# with a fixed batch of 1 and with a dynamic batch, against the raw limit.
#
#   bench/http/models.sh [BUILD_DIR]    # BUILD_DIR (from the current folder) defaults to build
#
# Generates bench/models/generate.py's models (an MCNN-style crowd density
# network, ~134k parameters, run at 640x480; a MobileNetV1-0.5 classifier,
# ~1.3M parameters, 224x224; each as *_b1.onnx, batch fixed at 1, and
# *_dyn.onnx, batch dynamic) and two photo-like JPEGs (640x480 and 224x224,
# painted here), then for each model:
#
#   - the raw limit: BUILD_DIR/bench/raw_loop (decode the JPEG with
#     libturbojpeg, float32 CHW, ONNX Runtime's C API, nothing of inferd) in
#     one process with ORT's default threads ("raw 1p": what one process
#     can do) and in nproc processes of one thread each ("ceiling": the
#     per-core limit, no thread pool, nothing shared), once before and once
#     after the model's daemon runs (the rows show the mean, so that the
#     machine's other load hits both sides alike);
#   - for each setting ("default": only the model in the config, the
#     batcher's defaults; "maxBatch 1": {"maxBatch": 1}), a fresh
#     `BUILD_DIR/inferd serve --listen 127.0.0.1:0` with the model as
#     peopleCountEstimator (density, ?targets=T2) or imageLabelEstimator
#     (classifier, with its labels file) in INFERD_ESTIMATORS, one check
#     request, then the project's own load tool, `inferd bench` (closed
#     loop, one client per connection, the JPEG as a raw image/jpeg body)
#     at each of CONNECTIONS, WARMUP s then DURATION s.
#
# Settings (environment): DURATION (s, default 8) and WARMUP (s, default 2)
# per load run, CONNECTIONS (default "1 4 16"), RAW_DURATION (default 5) and
# RAW_WARMUP (default 1) per raw_loop run, MODELS (default all four:
# "mcnn_density_b1 mcnn_density_dyn mobilenet_cls_b1 mobilenet_cls_dyn"),
# SETTINGS (default the two above: lines of LABEL|JSON, the JSON merged into
# the estimator's INFERD_ESTIMATORS entry, e.g.
#   SETTINGS=$'default|{}\nquiet ORT|{"backendOptions": {"allow_spinning": false}}'
# ). About 7 minutes with the defaults, 5 with DURATION=5.
#
# Prints one table to stdout (progress lines go to stderr): per model,
# setting and connections: inferd bench's requests/s and p50/p99 ms; errors
# (requests not answered 2xx, no answer included, in the measured run); the
# mean batch (inferd_estimator_batch_size_sum/count deltas of /metrics over
# the measured run); the daemon's CPU ms per request (utime + stime of
# /proc/PID/stat over the measured run); the daemon's peak RSS (VmHWM of
# /proc/PID/status read after the run: the process's peak so far, so with one
# daemon per model and setting, the row at 16 connections holds the peak of
# all three); the raw loop's images/s in one process and at the ceiling, and
# requests/s over each. Then a table of the raw runs (before, after, mean;
# ms per image in one process, CPU ms per image, the largest process's peak
# RSS).
#
# Exit status: 0; 1 when any request failed (the errors column says where;
# the script goes on to print the table first) or something else went wrong
# (it stops at once); 2 on a usage error. Everything it makes goes into a
# mktemp folder, removed on exit; its daemons are killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$#" -le 1 ] || { echo "usage: bench/http/models.sh [BUILD_DIR]" >&2; exit 2; }
BUILD=${1:-build}
INFERD="$BUILD/inferd"
RAW="$BUILD/bench/raw_loop"
GENERATE="$ROOT/bench/models/generate.py"
PY=/usr/bin/python3
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
RAW_DURATION=${RAW_DURATION:-5}
RAW_WARMUP=${RAW_WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-1 4 16}
MODELS=${MODELS:-mcnn_density_b1 mcnn_density_dyn mobilenet_cls_b1 mobilenet_cls_dyn}
SETTINGS=${SETTINGS:-$'default|{}\nmaxBatch 1|{"maxBatch": 1}'}
NPROC=$(nproc)
HZ=$(getconf CLK_TCK)

NAME=bench/http/models
. "$ROOT/bench/http/lib.sh"
command -v curl >/dev/null || die "curl is not installed"
[ -x "$INFERD" ] || die "$INFERD is missing: build the tree first (cmake --build $BUILD)"
[ -x "$RAW" ] || die "$RAW is missing: build the tree first (cmake --build $BUILD)"
[ -x "$PY" ] || die "$PY is missing (Debian's python3 with numpy, onnx and PIL)"


# vm_hwm_mib: the daemon's peak RSS so far, MiB.
vm_hwm_mib() { awk '$1 == "VmHWM:" {printf "%.1f", $2 / 1024}' "/proc/$DAEMON_PID/status"; }

# ---- the models and the images ---------------------------------------------------
"$PY" "$GENERATE" --out "$T/models" --quiet || die "bench/models/generate.py failed"
# Photo-like scenes: a lit background, a crowd of figures (bigger nearer the
# bottom), a slight blur and sensor noise, JPEG quality 90 (a camera's size,
# not a synthetic image's).
"$PY" - "$T" <<'EOF' || die "painting the images failed"
import sys
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

def scene(w, h, people, seed, path):
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    top, bottom = np.array([0.55, 0.62, 0.70]), np.array([0.35, 0.30, 0.26])
    base = top * (1 - y) + bottom * y + 0.05 * np.sin(6.0 * x + 2.0 * y)
    base = np.clip(np.rint(np.broadcast_to(base, (h, w, 3)) * 255), 0, 255).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(people):
        cx, cy = rng.uniform(0, w), rng.uniform(h * 0.2, h)
        s = 4 + 14 * cy / h
        body = tuple(int(v) for v in rng.integers(20, 235, 3))
        skin = tuple(int(v) for v in rng.uniform(0.45, 0.95) * np.array([255, 205, 170]))
        d.ellipse([cx - s * 0.6, cy, cx + s * 0.6, cy + s * 2.2], fill=body)
        d.ellipse([cx - s * 0.35, cy - s * 0.7, cx + s * 0.35, cy], fill=skin)
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    a = np.asarray(img).astype(np.float64) + rng.normal(0, 4.0, (h, w, 3))
    Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB").save(
        path, "JPEG", quality=90)

scene(640, 480, 150, 1, sys.argv[1] + "/crowd_640x480.jpg")
scene(224, 224, 12, 2, sys.argv[1] + "/object_224x224.jpg")
EOF

# model_info NAME: sets ESTIMATOR, IMAGE, URL_QUERY, MODEL_ENTRY (the
# estimator's INFERD_ESTIMATORS properties, without braces).
model_info() {
  local path="$T/models/$1.onnx"
  [ -f "$path" ] || die "no model $1 (MODELS names one of: mcnn_density_b1 mcnn_density_dyn mobilenet_cls_b1 mobilenet_cls_dyn)"
  case "$1" in
    mcnn_density_*)
      ESTIMATOR=peopleCountEstimator
      IMAGE="$T/crowd_640x480.jpg"
      URL_QUERY="?targets=T2"
      MODEL_ENTRY="\"modelPath\": \"$path\""
      ;;
    mobilenet_cls_*)
      ESTIMATOR=imageLabelEstimator
      IMAGE="$T/object_224x224.jpg"
      URL_QUERY=""
      MODEL_ENTRY="\"modelPath\": \"$path\", \"labelsFile\": \"$T/models/mobilenet_cls.labels\""
      ;;
    *) die "no model $1" ;;
  esac
}

# estimators_json SETTINGS_JSON: the INFERD_ESTIMATORS value: the model's
# entry merged with the setting's keys.
estimators_json() {
  "$PY" -c 'import json, sys
entry = json.loads("{" + sys.argv[2] + "}")
entry.update(json.loads(sys.argv[3]))
print(json.dumps({sys.argv[1]: entry}))' "$ESTIMATOR" "$MODEL_ENTRY" "$1" \
    || die "bad setting JSON: $1"
}

field() { # KEY LINE
  sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}


# A request gets 60 s (as it had under wrk): the density network at 16
# connections answers in about 2 s on 2 cores, a slower machine must not turn
# that into errors.
LOAD_TIMEOUT=60

# http_load CONNECTIONS SECONDS: run_load (lib.sh) with the model's image;
# sets RPS, P50, P99, REQUESTS and ERRORS (requests not answered 2xx, no
# answer included); failures are counted, not fatal: the table shows where
# they happened.
http_load() {
  local c=$1
  run_load "$c" "$2" "$BASE$URL_PATH" "$IMAGE" image/jpeg
  if [ "$ERRORS" -ne 0 ]; then
    FAILED=$((FAILED + ERRORS))
    echo "  $ERRORS request(s) failed ($c connections; by status:" \
         "$ERROR_DETAIL${LAST_ERROR:+; last error: $LAST_ERROR})" >&2
    # One failing answer, to say why.
    curl -s -o "$T/bad.out" -w '%{http_code}' -H 'Content-Type: image/jpeg' --data-binary @"$IMAGE" \
      "$BASE$URL_PATH" >"$T/bad.code" 2>/dev/null || true
    if [ "$(cat "$T/bad.code")" != 200 ]; then
      echo "  a request now answers $(cat "$T/bad.code"): $(head -c 300 "$T/bad.out")" >&2
    fi
    grep -m3 -E 'WARN|ERROR' "$T/daemon.log" | sed 's/^/  daemon: /' >&2 || true
  fi
}

# run_raw MODEL_PATH PROCS THREADS: sets RAW_LINE (raw_loop's key=value line).
run_raw() {
  local out
  out=$("$RAW" -w "$RAW_WARMUP" -p "$2" -t "$3" "$1" "$IMAGE" "$RAW_DURATION" 2>&1) \
    || { echo "$out" >&2; die "raw_loop failed"; }
  RAW_LINE=$(grep '^images_per_s=' <<<"$out") || { echo "$out" >&2; die "raw_loop printed no result"; }
}

# raw_both MODEL_PATH: the raw loop in one process (ORT's threads) and at the
# per-core ceiling; sets RAW1_LINE and RAWC_LINE.
raw_both() {
  run_raw "$1" 1 0
  RAW1_LINE=$RAW_LINE
  run_raw "$1" "$NPROC" 1
  RAWC_LINE=$RAW_LINE
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
mean2() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (a + b) / 2}'; }

# raw_row MODEL MODE BEFORE_LINE AFTER_LINE: a row of the raw table.
raw_row() {
  local b a
  b=$(field images_per_s "$3")
  a=$(field images_per_s "$4")
  printf '| %-17s | %-22s | %8s | %8s | %8s | %9s | %10s | %12s |' "$1" "$2" "$b" "$a" \
    "$(mean2 "$b" "$a")" \
    "$(mean2 "$(field ms_per_image "$3")" "$(field ms_per_image "$4")")" \
    "$(mean2 "$(field cpu_ms_per_image "$3")" "$(field cpu_ms_per_image "$4")")" \
    "$(awk -v x="$(field peak_rss_kib "$3")" -v y="$(field peak_rss_kib "$4")" \
       'BEGIN {printf "%.1f", (x > y ? x : y) / 1024}')"
}

# ---- the runs --------------------------------------------------------------------
echo "bench/http/models: $NPROC CPUs, $("$INFERD" --version) bench," \
     "inferd bench ${DURATION} s after ${WARMUP} s of warm-up at $CONNECTIONS connection(s)," \
     "raw_loop ${RAW_DURATION} s after ${RAW_WARMUP} s; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
FAILED=0
ROWS=()
RAW_ROWS=()
T0=$(date +%s)
for model in $MODELS; do
  model_info "$model"
  URL_PATH="/v1/estimators/$ESTIMATOR$URL_QUERY"
  mpath="$T/models/$model.onnx"
  # The raw loop just before and just after the model's daemon runs: the
  # rows hold their mean, so that the machine's other load (and its drift)
  # hits both sides alike.
  raw_both "$mpath"
  raw1_before=$RAW1_LINE
  rawc_before=$RAWC_LINE
  echo "$model ($ESTIMATOR, $(basename "$IMAGE")): raw loop $(field images_per_s "$RAW1_LINE")" \
       "images/s in 1 process, $(field images_per_s "$RAWC_LINE") in $NPROC processes x 1 thread" \
       "(output sum $(field output_sum "$RAW1_LINE"))" >&2
  MODEL_ROWS=()
  while IFS= read -r -u 3 cfg; do
    [ -n "$cfg" ] || continue
    label=${cfg%%|*}
    settings=${cfg#*|}
    start_daemon "$(estimators_json "$settings")"
    desc=$(curl -sf "$BASE/v1/estimators/$ESTIMATOR") || die "$model, $label: GET /v1/estimators/$ESTIMATOR failed"
    answer=$(curl -s -w '\n%{http_code}' -H 'Content-Type: image/jpeg' --data-binary @"$IMAGE" \
      "$BASE$URL_PATH") || die "$model, $label: the check request failed"
    [ "$(tail -1 <<<"$answer")" = 200 ] \
      || die "$model, $label: the check request answered $(tail -1 <<<"$answer"): $(head -1 <<<"$answer")"
    echo "  $label: $(grep -o '"maxBatch":[0-9]*,"modelBatch":[^,]*' <<<"$desc" || true)" \
         "$(grep -o '"maxDelayUs":[0-9]*,"workers":[0-9]*' <<<"$desc" || true);" \
         "answer $(head -1 <<<"$answer" | head -c 160)" >&2
    for c in $CONNECTIONS; do
      http_load "$c" "$WARMUP"
      settle 20 warn
      images0=$(metric inferd_estimator_batch_size_sum)
      batches0=$(metric inferd_estimator_batch_size_count)
      cpu0=$(cpu_ticks)
      http_load "$c" "$DURATION"
      settle 20 warn
      cpu1=$(cpu_ticks)
      images1=$(metric inferd_estimator_batch_size_sum)
      batches1=$(metric inferd_estimator_batch_size_count)
      hwm=$(vm_hwm_mib)
      batch=$(awk -v i=$((images1 - images0)) -v b=$((batches1 - batches0)) \
        'BEGIN {printf "%.2f", (b ? i / b : 0)}')
      requests=$REQUESTS
      cpu_ms=$(awk -v t=$((cpu1 - cpu0)) -v hz="$HZ" -v n="$requests" \
        'BEGIN {printf "%.1f", (n ? t * 1000 / hz / n : 0)}')
      rps=$RPS
      # The raw columns are filled in after the raw runs that follow.
      MODEL_ROWS+=("$rps|$(printf '| %-17s | %-12s | %5s | %8s | %8s | %8s | %6s | %5s | %7s | %9s |' \
        "$model" "$label" "$c" "$rps" "$P50" "$P99" \
        "$ERRORS" "$batch" "$cpu_ms" "$hwm")")
      echo "  $label, $c connections: $rps requests/s, p50 $P50 ms," \
           "$ERRORS errors, batch $batch, $cpu_ms CPU ms/request, VmHWM $hwm MiB" >&2
    done
    stop_daemon
  done 3<<<"$SETTINGS"
  raw_both "$mpath"
  raw1=$(mean2 "$(field images_per_s "$raw1_before")" "$(field images_per_s "$RAW1_LINE")")
  rawc=$(mean2 "$(field images_per_s "$rawc_before")" "$(field images_per_s "$RAWC_LINE")")
  echo "  raw loop after: $(field images_per_s "$RAW1_LINE") images/s in 1 process," \
       "$(field images_per_s "$RAWC_LINE") in $NPROC processes x 1 thread" >&2
  for r in "${MODEL_ROWS[@]}"; do
    rps=${r%%|*}
    ROWS+=("${r#*|}$(printf ' %8s | %8s | %6s | %7s |' "$raw1" "$rawc" "$(ratio "$rps" "$raw1")" \
      "$(ratio "$rps" "$rawc")")")
  done
  RAW_ROWS+=("$(raw_row "$model" "1 process, ORT threads" "$raw1_before" "$RAW1_LINE")")
  RAW_ROWS+=("$(raw_row "$model" "$NPROC processes x 1 thread" "$rawc_before" "$RAWC_LINE")")
done

echo "bench/http/models: done in $(( $(date +%s) - T0 )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "inferd bench: ${DURATION} s per row after ${WARMUP} s of warm-up; $NPROC CPUs. raw 1p/s, ceil/s: raw_loop's images/s in"
echo "1 process (ORT's threads) and in $NPROC processes x 1 thread, ${RAW_DURATION} s each, the mean of a run before and one after"
echo "the model's rows. VmHWM: the daemon's peak RSS so far (one daemon per model and setting, read after each row)."
echo
echo "| model             | setting      | conns | req/s    | p50 ms   | p99 ms   | errors | batch | CPU ms  | VmHWM MiB | raw 1p/s | ceil/s   | ÷ raw  | ÷ ceil  |"
echo "|-------------------|--------------|-------|----------|----------|----------|--------|-------|---------|-----------|----------|----------|--------|---------|"
printf '%s\n' "${ROWS[@]}"
echo
echo "| model             | raw loop               | before/s | after/s  | mean/s   | ms/image  | CPU ms/img | peak RSS MiB |"
echo "|-------------------|------------------------|----------|----------|----------|-----------|------------|--------------|"
printf '%s\n' "${RAW_ROWS[@]}"
if [ "$FAILED" -ne 0 ]; then
  echo "bench/http/models: $FAILED request(s) failed (the errors column says where, warm-up runs included in this count)" >&2
  exit 1
fi

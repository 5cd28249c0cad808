#!/usr/bin/env bash
# bench/http/run.sh: the estimation API under load. Drives a real
# `inferd serve` with the project's own load tool, `inferd bench` (POST
# /v1/estimators/peopleCountEstimator?targets=T2, a raw image/png body: a
# 640x480 PNG with 20 dots drawn here by scripts/gen_images.py's own dot
# painter), closed loop at 1, 4 and 16 connections (one client each), for
# several batcher settings (INFERD_ESTIMATORS: the defaults, maxBatch 1 =
# batching off, then maxBatch 16 with maxBatchBytes 64 MiB, so that 640x480
# images can group, and a few maxDelayUs), and compares each row with the
# same work done in process without HTTP (build/bench/estimator_inproc: the
# same image decoded and submitted to the same estimator runtime, as many
# images in flight as the load has connections).
#
#   bench/http/run.sh [BUILD_DIR]    # BUILD_DIR (from the current folder) defaults to build
#
# Needs a build of the whole tree (BUILD_DIR/inferd, which serves and makes
# the load, BUILD_DIR/bench/estimator_inproc, the default models).
# Settings (environment): DURATION (s, default 10) and WARMUP (s, default 2)
# per load run, INPROC_DURATION (default 3) and INPROC_WARMUP (default 1) per
# in-process run (one just before and one just after each load run; their
# mean is the row's in-process rate), CONNECTIONS (default "1 4 16"). About
# 4 minutes with the defaults. Progress lines go to stderr, the table to
# stdout.
#
# Every answer must be 2xx (inferd bench counts the others by status, and a
# request with no answer as an error too) and the answer to a check request
# must hold the drawn count, or the script stops with exit status 1. It
# prints one table (and writes nothing in the tree):
#   config, connections, requests/s, p50 and p99 ms (inferd bench's latency:
#   from sending a request to its full answer), the mean
#   batch size (inferd_estimator_batch_size_sum/count deltas from /metrics over
#   the measured run), the in-process images/s, HTTP / in-process, and CPU ms
#   per image on each side (the daemon's utime + stime from /proc over the
#   images of the measured run; estimator_inproc's getrusage): wall-clock
#   rates move with whatever else runs on the machine, CPU per image much less.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[ "$#" -le 1 ] || { echo "usage: bench/http/run.sh [BUILD_DIR]" >&2; exit 2; }
INFERD="$BUILD/inferd"
INPROC="$BUILD/bench/estimator_inproc"
PY=/usr/bin/python3
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
INPROC_DURATION=${INPROC_DURATION:-3}
INPROC_WARMUP=${INPROC_WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-1 4 16}
ESTIMATOR=peopleCountEstimator
HZ=$(getconf CLK_TCK)
DOTS=20

# label|INFERD_ESTIMATORS settings of peopleCountEstimator
CONFIGS=(
  'defaults|{}'
  'off (maxBatch 1)|{"maxBatch": 1}'
  'batch 16, 0 us|{"maxBatch": 16, "maxBatchBytes": 67108864}'
  'batch 16, 2 ms|{"maxBatch": 16, "maxBatchBytes": 67108864, "maxDelayUs": 2000}'
  'batch 16, 10 ms|{"maxBatch": 16, "maxBatchBytes": 67108864, "maxDelayUs": 10000}'
)

NAME=bench/http
. "$ROOT/bench/http/lib.sh"
[ -x "$INFERD" ] || die "$INFERD is missing: build the tree first (cmake --build $BUILD)"
[ -x "$INPROC" ] || die "$INPROC is missing: build the tree first (cmake --build $BUILD)"


# ---- the image: scripts/gen_images.py's dots (4-10 px, >= 24 px apart) ------
"$PY" - "$ROOT/scripts" "$T/dots.png" "$DOTS" <<'EOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import gen_images as g
img, dots = g.make_dots(np.random.default_rng([2026, 11, 21]), 640, 480, int(sys.argv[3]))
g.to_image(img).save(sys.argv[2], "PNG", optimize=False, compress_level=6)
EOF
IMAGE="$T/dots.png"
URL_PATH="/v1/estimators/$ESTIMATOR?targets=T2"


# A request gets 30 s (as it had under wrk): far above any latency of this
# image, short enough that a stuck daemon stops the run in good time.
LOAD_TIMEOUT=30

# http_load CONNECTIONS SECONDS: run_load (lib.sh) with the image; sets RPS, P50,
# P99; stops on any answer that is not 2xx or a request with no answer: a rate
# that counts failures means nothing.
http_load() {
  run_load "$1" "$2" "$BASE$URL_PATH" "$IMAGE" image/png
  if [ "$ERRORS" -ne 0 ]; then
    load_show
    die "not every answer was 2xx ($1 connections): $ERRORS of $REQUESTS failed (by status: $ERROR_DETAIL${LAST_ERROR:+; last error: $LAST_ERROR})"
  fi
}

field() { # KEY LINE
  sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}

# run_inproc SETTINGS_JSON CLIENTS: the same image, estimator and settings in
# process (bench/estimator_inproc); sets IN_RATE, IN_BATCH, IN_P50, IN_CPU.
run_inproc() {
  local out line
  out=$(INFERD_ESTIMATORS="{\"$ESTIMATOR\": $1}" "$INPROC" -w "$INPROC_WARMUP" \
    "$IMAGE" "$2" "$INPROC_DURATION" 2>&1) || { echo "$out" >&2; die "estimator_inproc failed"; }
  line=$(grep '^images_per_s=' <<<"$out") || { echo "$out" >&2; die "estimator_inproc printed no result"; }
  [ "$(field result "$line")" = "{\"count\":$DOTS}" ] \
    || die "in process the image gave $(field result "$line"), not a count of $DOTS"
  IN_RATE=$(field images_per_s "$line")
  IN_BATCH=$(field mean_batch "$line")
  IN_P50=$(field p50_ms "$line")
  IN_CPU=$(field cpu_ms_per_image "$line")
}

# ---- the runs --------------------------------------------------------------------
echo "bench/http: $(nproc) CPUs, $("$INFERD" --version) bench, image 640x480 PNG" \
     "($(stat -c %s "$IMAGE") bytes, $DOTS dots), inferd bench ${DURATION} s after ${WARMUP} s of warm-up," \
     "in process ${INPROC_DURATION} s after ${INPROC_WARMUP} s; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
ROWS=()
for cfg in "${CONFIGS[@]}"; do
  label=${cfg%%|*}
  settings=${cfg#*|}
  start_daemon "{\"$ESTIMATOR\": $settings}"
  # The answer must hold the drawn count, or the rates below mean nothing.
  answer=$(curl -sf -H 'Content-Type: image/png' --data-binary @"$IMAGE" "$BASE$URL_PATH") \
    || die "$label: the check request failed"
  [ "$answer" = "{\"estimator\":\"$ESTIMATOR\",\"results\":[{\"count\":$DOTS}]}" ] \
    || die "$label: the check request answered $answer, not a count of $DOTS"
  for c in $CONNECTIONS; do
    # In process just before and just after the load run, so that the
    # machine's other load (and its drift) hits both sides alike.
    run_inproc "$settings" "$c"
    in_before=$IN_RATE
    in_cpu_before=$IN_CPU
    http_load "$c" "$WARMUP"
    settle 5
    images0=$(metric inferd_estimator_batch_size_sum)
    batches0=$(metric inferd_estimator_batch_size_count)
    cpu0=$(cpu_ticks)
    http_load "$c" "$DURATION"
    settle 5
    cpu1=$(cpu_ticks)
    images1=$(metric inferd_estimator_batch_size_sum)
    batches1=$(metric inferd_estimator_batch_size_count)
    batch=$(awk -v i=$((images1 - images0)) -v b=$((batches1 - batches0)) \
      'BEGIN {printf "%.2f", (b ? i / b : 0)}')
    cpu_ms=$(awk -v t=$((cpu1 - cpu0)) -v hz="$HZ" -v i=$((images1 - images0)) \
      'BEGIN {printf "%.1f", (i ? t * 1000 / hz / i : 0)}')
    run_inproc "$settings" "$c"
    in_rate=$(awk -v a="$in_before" -v b="$IN_RATE" 'BEGIN {printf "%.1f", (a + b) / 2}')
    in_cpu=$(awk -v a="$in_cpu_before" -v b="$IN_CPU" 'BEGIN {printf "%.1f", (a + b) / 2}')
    rps=$RPS
    ROWS+=("$(printf '| %-19s | %5s | %10s | %8s | %8s | %10s | %13s | %12s | %11s | %14s |' \
      "$label" "$c" "$rps" "$P50" "$P99" "$batch" \
      "$in_rate" "$(awk -v a="$rps" -v b="$in_rate" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')" \
      "$cpu_ms" "$in_cpu")")
    echo "  $label, $c connections: HTTP $rps requests/s (batch $batch); in process" \
         "$in_before then $IN_RATE images/s (batch $IN_BATCH, p50 $IN_P50 ms)" >&2
  done
  stop_daemon
done

echo
echo "| config              | conns | requests/s | p50 ms   | p99 ms   | mean batch | in-proc img/s | HTTP/in-proc | CPU ms/req  | in-proc CPU ms |"
echo "|---------------------|-------|------------|----------|----------|------------|---------------|--------------|-------------|----------------|"
printf '%s\n' "${ROWS[@]}"
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

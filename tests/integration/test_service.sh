#!/usr/bin/env bash
# The service: every built-in route, the estimation API with each body kind
# (checked against the synthetic images' truth), errors with their status
# and message, limits, 200 concurrent requests, dynamic batching visible in
# /metrics, management access, estimator replacement on and off, and a
# graceful stop that finishes in-flight requests.
source "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}"
PY=/usr/bin/python3
CLIENT="$TEST_SRCDIR/tests/integration/service_client.py"

INFERD_HTTP_MAX_IMAGES=4 INFERD_HTTP_MAX_BODY_BYTES=3000000 \
INFERD_ESTIMATORS='{"peopleCountEstimator": {"maxBatch": 16, "maxDelayUs": 20000}}' start_daemon

# ---- built-in routes -------------------------------------------------------
expect_http GET /health 200 '"status":"ok"'
expect_http GET /ready 200 '"status":"ready"'
expect_http GET /version 200 '"plugin_abi":"2.4"'
expect_http GET /v1/estimators 200 '"name":"peopleCountEstimator"'
expect_http GET /v1/estimators/imageLabelEstimator 200 '"builtIn":true'
expect_http GET /v1/estimators/nope 404 "no estimator named 'nope'"
expect_http GET /v1/plugins 200 '"name":"estimators"'
expect_http GET /v1/plugins/estimators 200 '"estimators":["defectEstimator","imageLabelEstimator","peopleCountEstimator"]'
expect_http GET /v1/plugins/nope 404 "no plugin named 'nope'"
expect_http POST /health 405 'method POST is not allowed on /health (allowed: GET)'
expect_http DELETE /v1/estimators/peopleCountEstimator 405 'allowed: GET, POST'
expect_http GET /no/such/route 404 'no route for GET /no/such/route'
pass "built-in routes, 404 and 405"

# ---- the estimation API against the truth ------------------------------------
"$PY" "$CLIENT" "$BASE" "$TEST_DATA" check || fail "estimation checks"

# ---- a body over http.max_body_bytes: 413 before it is read -------------------
head -c 3500000 /dev/zero > "$T/big.bin"
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
       --data-binary @"$T/big.bin" "$BASE/v1/estimators/peopleCountEstimator")
[ "$code" = 413 ] && grep -q 'larger than http.max_body_bytes (3000000 bytes)' "$T/body" \
  || fail "oversized body: $code $(cat "$T/body")"
pass "a body over http.max_body_bytes gets 413"

# ---- 200 concurrent requests, sharing batches ----------------------------------
"$PY" "$CLIENT" "$BASE" "$TEST_DATA" concurrent 200 || fail "concurrent requests"
curl -s "$BASE/metrics" > "$T/metrics"
batches=$(awk '/^inferd_estimator_batch_size_count\{estimator="peopleCountEstimator"\}/ {print $2}' "$T/metrics")
items=$(awk '/^inferd_estimator_batch_size_sum\{estimator="peopleCountEstimator"\}/ {print $2}' "$T/metrics")
[ -n "$batches" ] && [ -n "$items" ] && [ "$batches" -lt "$items" ] \
  || fail "no batch held more than one image: $batches batches for $items images"
pass "dynamic batching: $items images ran in $batches batches"
grep -q '^inferd_http_requests_total{route="/v1/estimators/\*",method="POST",status="200"}' "$T/metrics" \
  || fail "/metrics lacks the estimation request counter"
grep -q '^inferd_http_request_duration_seconds_bucket{route="/health",le="+Inf"}' "$T/metrics" \
  || fail "/metrics lacks the latency histogram"
grep -q '^inferd_estimator_queue_depth{estimator="peopleCountEstimator"} 0' "$T/metrics" \
  || fail "/metrics lacks the queue depth"
grep -q '^inferd_plugin_errors_total{plugin="estimators"} 0' "$T/metrics" \
  || fail "/metrics lacks the plugin error counter"
grep -q '^inferd_events_unrouted_total ' "$T/metrics" || fail "/metrics lacks the event counters"
pass "/metrics: requests, latency histograms, queue depth, batch sizes, plugin errors, events"

# ---- management routes: loopback only unless a token is set ---------------------
ADDR=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.' | grep -v '^127\.' | head -1 || true)
stop_daemon
if [ -n "$ADDR" ]; then
  LISTEN=0.0.0.0:0 start_daemon
  code=$(curl -s -o "$T/body" -w '%{http_code}' "http://$ADDR:$PORT/v1/plugins" || true)
  [ "$code" = 403 ] && grep -q 'open on loopback only' "$T/body" || fail "no token, remote: $code $(cat "$T/body")"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR:$PORT/health")
  [ "$code" = 200 ] || fail "/health from $ADDR: $code"
  stop_daemon
  INFERD_HTTP_TOKEN=s3cret LISTEN=0.0.0.0:0 start_daemon
  code=$(curl -s -o "$T/body" -w '%{http_code}' "http://$ADDR:$PORT/v1/plugins" || true)
  [ "$code" = 401 ] && grep -q 'Authorization: Bearer' "$T/body" || fail "remote, no bearer: $code"
  code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Authorization: Bearer wrong' "http://$ADDR:$PORT/v1/plugins")
  [ "$code" = 401 ] || fail "remote, wrong token: $code"
  code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Authorization: Bearer s3cret' "http://$ADDR:$PORT/v1/plugins")
  [ "$code" = 200 ] || fail "remote, right token: $code $(cat "$T/body")"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/plugins")
  [ "$code" = 200 ] || fail "loopback without a token: $code"
  stop_daemon
  pass "management routes: open on loopback, 403 remote without http.token, 401/200 with it"
else
  echo "NOT RUN - management token check: this machine has no non-loopback IPv4 address"
fi

# ---- estimator replacement, switched on and off by the active list ------------
if [ -f "$TEST_BUILD_DIR/lib/inferd/plugins/people_count_onnx.so" ]; then
  D=dots_03_5.png
  start_daemon --active people_count_onnx
  expect_http GET /v1/estimators/peopleCountEstimator 200 '"plugin":"people_count_onnx"'
  grep -q '"replaced":true' "$T/body" || fail "replacement not marked: $(cat "$T/body")"
  curl -s -H 'Content-Type: image/png' --data-binary @"$TEST_DATA/$D" \
    "$BASE/v1/estimators/peopleCountEstimator" > "$T/on.json"
  "$PY" - "$T/on.json" <<'EOF' || fail "replacement answer: $(cat "$T/on.json")"
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
assert r["count"] == 5 and len(r["points"]) == 5, r
assert all(set(p) == {"x", "y"} for p in r["points"]), r
EOF
  grep -q "peopleCountEstimator: onnxPeopleCountEstimator (plugin people_count_onnx, replacing the built-in)" \
    "$T/daemon.log" || fail "the log does not say the built-in was replaced"
  stop_daemon
  start_daemon
  expect_http GET /v1/estimators/peopleCountEstimator 200 '"plugin":"estimators"'
  pass "replacement: --active people_count_onnx takes over peopleCountEstimator; without it the built-in serves"
else
  fail "the people_count_onnx example plugin was not built"
fi

# ---- image.max_pixels (413 from the header, before decoding); a full queue (503) --
stop_daemon
INFERD_IMAGE_MAX_PIXELS=5000 \
INFERD_ESTIMATORS='{"peopleCountEstimator": {"maxQueue": 2, "maxBatch": 16, "maxDelayUs": 3000000}}' \
  start_daemon
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
       --data-binary @"$TEST_DATA/colour_02_red.png" "$BASE/v1/estimators/imageLabelEstimator")
[ "$code" = 413 ] && grep -q 'is 96x80 = 7680 pixels, more than image.max_pixels (5000)' "$T/body" \
  || fail "image over image.max_pixels: $code $(cat "$T/body")"
pass "an image over image.max_pixels gets 413 naming its size"
/usr/bin/python3 - "$TEST_DATA" "$T/tiny.png" <<'PY'
import sys
from PIL import Image
Image.new("RGB", (40, 40)).save(sys.argv[2])
PY
# Two images wait 3 s for their batch to fill; a third does not fit maxQueue 2.
curl -s -o "$T/first" -w '%{http_code}' -F a=@"$T/tiny.png" -F b=@"$T/tiny.png" \
  "$BASE/v1/estimators/peopleCountEstimator" > "$T/first.code" &
first=$!
for _ in $(seq 1 100); do
  curl -s "$BASE/metrics" > "$T/metrics"
  grep -q '^inferd_estimator_queue_depth{estimator="peopleCountEstimator"} 2' "$T/metrics" && break
  sleep 0.05
done
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
       --data-binary @"$T/tiny.png" "$BASE/v1/estimators/peopleCountEstimator")
[ "$code" = 503 ] && grep -q '"code":"overloaded"' "$T/body" && grep -q 'maxQueue 2' "$T/body" \
  || fail "a full queue: $code $(cat "$T/body")"
wait "$first"
[ "$(cat "$T/first.code")" = 200 ] || fail "the queued request: $(cat "$T/first.code") $(cat "$T/first")"
curl -s "$BASE/metrics" > "$T/metrics"
grep -q '^inferd_estimator_rejected_total{estimator="peopleCountEstimator"} 1' "$T/metrics" \
  || fail "the rejected image is not counted: $(grep rejected "$T/metrics")"
stop_daemon
start_daemon
pass "a full estimator queue gets 503 overloaded (counted); the queued request still finishes"

# ---- graceful stop: in-flight requests finish ----------------------------------
for i in $(seq 1 30); do
  curl -s -o "$T/inflight.$i" -w '%{http_code}' -H 'Content-Type: image/png' \
    --data-binary @"$TEST_DATA/dots_11_200.png" "$BASE/v1/estimators/peopleCountEstimator" \
    > "$T/inflight.$i.code" &
done
sleep 0.2
stop_daemon
wait
okn=0
for i in $(seq 1 30); do
  c=$(cat "$T/inflight.$i.code")
  case "$c" in
    200) okn=$((okn + 1)) ;;
    000) ;;  # sent after the server stopped accepting: refused, never half-answered
    *) fail "in-flight request $i ended with $c: $(cat "$T/inflight.$i")" ;;
  esac
done
[ "$okn" -gt 0 ] || fail "no in-flight request finished"
pass "SIGTERM: $okn in-flight requests finished with 200, none cut off"

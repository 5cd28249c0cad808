#!/usr/bin/env bash
# The service's own events reach event components: estimation_done after
# each estimation request, config_reload after SIGHUP (a good and a bad
# config file), plugin_failed when an estimator fails its images, with what
# the payload documents (docs/service.md).
source "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_PLUGIN_DIR:?}"

# wait_lines FILE N: waits up to 5 s for FILE to hold N lines.
wait_lines() {
  for _ in $(seq 1 100); do
    [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 has $(cat "$1" 2>/dev/null | wc -l) lines, want $2"
}

echo '{"log": {"level": "info"}}' > "$T/inferd.json"
export INFERD_PLUGIN_SETTINGS="{\"test_ev_record_done\": {\"path\": \"$T/done.jsonl\"},
  \"test_ev_record_reload\": {\"path\": \"$T/reload.jsonl\"},
  \"test_ev_record\": {\"path\": \"$T/failed.jsonl\"}}"
start_daemon --config "$T/inferd.json" --plugin-dir "$TEST_PLUGIN_DIR" --active test_ev_record

curl -s -o /dev/null -F a=@"$TEST_DATA/dots_03_5.png" -F b=@"$TEST_DATA/dots_05_20.png" \
  "$BASE/v1/estimators/peopleCountEstimator"
curl -s -o /dev/null -H 'Content-Type: image/png' --data-binary @"$TEST_DATA/colour_02_red.png" \
  "$BASE/v1/estimators/imageLabelEstimator"
wait_lines "$T/done.jsonl" 2
/usr/bin/python3 - "$T/done.jsonl" <<'PY' || fail "estimation_done: $(cat "$T/done.jsonl")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
by = {e["estimator"]: e for e in ev}
assert by["peopleCountEstimator"]["images"] == 2 and by["peopleCountEstimator"]["failed"] == 0, ev
assert by["imageLabelEstimator"]["images"] == 1, ev
for e in ev:
    assert all(e[k] >= 0 for k in ("decode_ms", "queue_ms", "inference_ms")), e
    assert "error" not in e, e
PY
pass "estimation_done: one event per request with its estimator, images and timings"

# SIGHUP with a changed file: log.level applies now, http.threads needs a restart.
echo '{"log": {"level": "debug"}, "http": {"threads": 3}}' > "$T/inferd.json"
kill -HUP "$DAEMON_PID"
wait_lines "$T/reload.jsonl" 1
curl -s -o /dev/null "$BASE/health"
for _ in $(seq 1 100); do grep -q 'DEBUG.*GET /health' "$T/daemon.log" && break; sleep 0.05; done
grep -q 'DEBUG.*GET /health' "$T/daemon.log" || fail "log.level debug did not apply after SIGHUP"
# SIGHUP with a broken file: refused, the running config stays.
echo '{"log": {"level": "loud"}}' > "$T/inferd.json"
kill -HUP "$DAEMON_PID"
wait_lines "$T/reload.jsonl" 2
/usr/bin/python3 - "$T/reload.jsonl" <<'PY' || fail "config_reload: $(cat "$T/reload.jsonl")"
import json, sys
good, bad = [json.loads(l) for l in open(sys.argv[1])]
assert good == {"ok": True, "changed": ["log.level", "http.threads"], "restartNeeded": ["http.threads"]} \
    or good == {"ok": True, "changed": ["http.threads", "log.level"], "restartNeeded": ["http.threads"]}, good
assert bad == {"ok": False}, bad
PY
grep -q 'configuration reload (SIGHUP) failed; keeping the running one' "$T/daemon.log" \
  || fail "the failed reload is not logged"
expect_http GET /health 200
stop_daemon
pass "config_reload: changed keys and the ones needing a restart; a bad file is refused and logged"

# An estimator configured with a model that does not fit it fails every image:
# 500 plugin_error naming the mismatch, a plugin_failed event, and the error
# counted for the plugin in /metrics.
INFERD_ESTIMATORS='{"imageLabelEstimator": {"modelPath": "dot_density.onnx"}}' \
  start_daemon --plugin-dir "$TEST_PLUGIN_DIR" --active test_ev_record
expect_http GET /health 200
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
       --data-binary @"$TEST_DATA/colour_02_red.png" "$BASE/v1/estimators/imageLabelEstimator")
[ "$code" = 500 ] && grep -q '"code":"plugin_error"' "$T/body" \
  && grep -q 'labelsFile names 8 classes' "$T/body" || fail "a misfit model: $code $(cat "$T/body")"
wait_lines "$T/failed.jsonl" 1
grep -q '"plugin":"estimators","component":"imageLabelEstimator"' "$T/failed.jsonl" \
  || fail "plugin_failed: $(cat "$T/failed.jsonl")"
curl -s "$BASE/metrics" > "$T/metrics"
grep -q '^inferd_plugin_errors_total{plugin="estimators"} 1$' "$T/metrics" \
  || fail "plugin error not counted: $(grep plugin_errors "$T/metrics")"
grep -q '^inferd_estimator_failed_total{estimator="imageLabelEstimator"} 1$' "$T/metrics" \
  || fail "failed image not counted"
# A bad request to the same estimator is the client's error, not the plugin's.
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
       --data-binary @"$TEST_DATA/colour_02_red.png" "$BASE/v1/estimators/imageLabelEstimator?topK=0")
[ "$code" = 400 ] || fail "topK=0: $code"
curl -s "$BASE/metrics" > "$T/metrics"
grep -q '^inferd_plugin_errors_total{plugin="estimators"} 1$' "$T/metrics" \
  || fail "a bad request counted as a plugin error"
stop_daemon
pass "plugin_failed: an estimator failing its images gives 500 plugin_error, an event and a count"

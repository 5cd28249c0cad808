#!/usr/bin/env bash
# C plugins activated and deactivated while the daemon serves (POST
# /v1/plugins/{name}/activate|deactivate, `inferd plugin activate|
# deactivate`): under load (plugin_live.py), then each refusal with its
# status and reason, and that nothing is recorded (the next start takes
# active_plugins again).
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_BUILD_DIR:?}"
PLUGINS="$TEST_BUILD_DIR/lib/inferd/plugins"
[ -f "$PLUGINS/people_count_onnx.so" ] && [ -f "$PLUGINS/teapot.so" ] && [ -f "$PLUGINS/sample.so" ] ||
  fail "the example plugins were not built"
export INFERD_PLUGINS_DIR="$PLUGINS" INFERD_STATE_DIR="$T/state"
export INFERD_PLUGIN_SETTINGS='{"teapot": {"intervalMs": 20}}'
start_daemon

expect_http GET /teapot 404
/usr/bin/python3 "$(dirname "$0")/plugin_live.py" "$BASE" "$TEST_DATA" || fail "plugin_live.py"
grep -q 'peopleCountEstimator: now served by onnxPeopleCountEstimator (plugin people_count_onnx 1.0.0, replacing the built-in)' \
  "$T/daemon.log" || fail "no rebind line in the log"
grep -q 'plugin teapot 1.0.0 let go: 1 background or event component closed' "$T/daemon.log" ||
  fail "no let-go line in the log"

# ---- refusals ----------------------------------------------------------------------
expect_json POST /v1/plugins/nope/activate 404 \
  'j["error"]["message"].startswith("active plugin '"'nope'"' is not in the plugin folder") and "teapot" in j["error"]["message"]'
expect_json POST /v1/plugins/nope/deactivate 404 \
  'j["error"]["message"] == "no plugin named '"'nope'"' is active (GET /v1/plugins lists them)"'
expect_json POST /v1/plugins/onnxruntime/deactivate 400 \
  'j["error"]["code"] == "bad_plugin" and "is built in: it cannot be deactivated" in j["error"]["message"]'
expect_json POST /v1/plugins/teapot/activate 200 'j["name"] == "teapot" and j["components"][0]["kind"] == "background"'
expect_json POST /v1/plugins/teapot/activate 409 \
  'j["error"]["message"].startswith("plugin teapot is active already")'
pass "activate: a file not in plugins.dir 404 listing what is; built in 400; twice 409"

# A running pipeline holds an element of sample: it stays, and says who holds it.
expect_json POST /v1/plugins/sample/activate 200 'j["name"] == "sample"'
cat >"$T/pipe.json" <<'JSON'
{"name": "tagged", "pipeline": {"tagged": {
  "in": {"factory": "appsrc", "next": "decode"},
  "decode": {"factory": "image_decoder", "next": "tag"},
  "tag": {"factory": "mxpi_sampleplugin", "next": "json"},
  "json": {"factory": "json_serialize", "props": {"dataSource": "tag"}, "next": "out"},
  "out": {"factory": "appsink"}}}, "start": true}
JSON
expect_json POST /v1/pipelines 201 'j["state"] == "running"' -H 'Content-Type: application/json' --data-binary @"$T/pipe.json"
expect_json POST /v1/plugins/sample/deactivate 409 \
  '"plugin sample is in use by 1 instance (tag)" in j["error"]["message"] and j["error"]["message"].startswith("plugin sample stays active")'
curl -s -o "$T/frame" -H 'Content-Type: image/png' --data-binary @"$TEST_DATA/dots_03_5.png" \
  "$BASE/v1/pipelines/tagged/frames" || fail "frame"
grep -q '"tag":{"message":"hello"' "$T/frame" || fail "the pipeline after the refusal: $(cat "$T/frame")"
expect_http DELETE /v1/pipelines/tagged 200
expect_json POST /v1/plugins/sample/deactivate 200 'j == {"name": "sample", "active": False}'
pass "deactivate while a pipeline's element is of the plugin: 409 naming it, the pipeline runs on; after its deletion 200"

# ---- the CLI -------------------------------------------------------------------------
expect_exit 0 "" "$TEST_INFERD" plugin deactivate teapot --url "$BASE"
[ "$(cat "$T/out")" = "plugin teapot is inactive" ] || fail "plugin deactivate output: $(cat "$T/out")"
expect_exit 1 "inferd: 404 not_found: no plugin named 'teapot' is active (GET /v1/plugins lists them)" \
  "$TEST_INFERD" plugin deactivate teapot --url "$BASE"
expect_exit 0 "" "$TEST_INFERD" plugin activate teapot --url "$BASE"
[ "$(cat "$T/out")" = "plugin teapot 1.0.0 is active" ] || fail "plugin activate output: $(cat "$T/out")"
expect_exit 2 "inferd: plugin activate: missing NAME" "$TEST_INFERD" plugin activate --url "$BASE"
expect_http GET /teapot 418
pass "inferd plugin activate|deactivate NAME against the daemon"

# Not recorded: a restart takes active_plugins again.
stop_daemon
start_daemon
expect_http GET /teapot 404
expect_json GET /v1/estimators/peopleCountEstimator 200 'j["plugin"] == "estimators"'
stop_daemon
pass "an activation lasts until the daemon stops (active_plugins decides at start)"

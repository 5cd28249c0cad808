#!/usr/bin/env bash
# Health that tells the truth: /ready answers 503 with the reason while a
# portable plugin's process is down (killed with SIGKILL) and 200 again once
# it has restarted; a rule that should run but failed, and a pipeline whose
# start failed, make it 503 when health.required names them; a bad
# health.required entry is a configuration error (exit 2). The events
# plugin_crashed, plugin_restarted and rule_status reach an event plugin.
source "$(dirname "$0")/lib.sh"
: "${TEST_PLUGIN_DIR:?}" "${TEST_SRCDIR:?}" "${TEST_MODELS:?}"

wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.05; done
}
ready_is() { # ready_is CODE [NEEDLE]
  local code
  code=$(curl -s -o "$T/ready" -w '%{http_code}' "$BASE/ready")
  [ "$code" = "$1" ] && { [ -z "${2:-}" ] || grep -qF -- "$2" "$T/ready"; }
}

mkdir -p "$T/packages"
/usr/bin/python3 "$TEST_SRCDIR/plugins/examples/python/pack.py" "$T/packages" >/dev/null || fail "pack.py"
export INFERD_PORTABLE_HEARTBEAT_MS=200
export INFERD_EVENTS_FLUSH_MS=20
export INFERD_HEALTH_REQUIRED=portables,rules,pipelines
export INFERD_PLUGIN_SETTINGS="{\"test_ev_record_crashed\": {\"path\": \"$T/crashed.jsonl\"},
  \"test_ev_record_restarted\": {\"path\": \"$T/restarted.jsonl\"},
  \"test_ev_record_rule\": {\"path\": \"$T/rule.jsonl\"}}"
"$TEST_INFERD" plugin install "$T/packages/pyai.zip" >/dev/null 2>&1 || fail "install pyai"
start_daemon --plugin-dir "$TEST_PLUGIN_DIR" --active test_ev_record,test_good
wait_for 10 ready_is 200 '"status":"ready"' || fail "/ready with pyai running: $(cat "$T/ready")"

# ---- a portable plugin's process killed: 503 with the reason, then back.
pid=$(curl -s "$BASE/plugins/portables/pyai" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
kill -KILL "$pid"
wait_for 5 ready_is 503 'portable plugin pyai is restarting' ||
  fail "/ready after killing pyai: $(cat "$T/ready")"
/usr/bin/python3 - "$T/ready" <<'PY' || fail "/ready's body: $(cat "$T/ready")"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["error"]["code"] == "not_ready", b
assert any("pyai" in r and "signal 9" in r for r in b["reasons"]), b
PY
wait_for 20 ready_is 200 || fail "/ready after pyai's restart: $(cat "$T/ready")"
wait_for 5 test -s "$T/restarted.jsonl" || fail "no plugin_restarted event"
/usr/bin/python3 - "$T/crashed.jsonl" "$T/restarted.jsonl" <<'PY' || fail "events: $(cat "$T/crashed.jsonl" "$T/restarted.jsonl")"
import json, sys
c = [json.loads(l) for l in open(sys.argv[1])]
r = [json.loads(l) for l in open(sys.argv[2])]
assert len(c) == 1 and c[0]["plugin"] == "pyai" and c[0]["restarting"] is True, c
assert "signal 9" in c[0]["reason"] and c[0]["restartInMs"] > 0, c
assert len(r) == 1 and r[0] == {"plugin": "pyai", "restarts": 1}, r
PY
pass "a killed portable plugin: /ready 503 naming it and how it ended, 200 once it runs again; plugin_crashed and plugin_restarted reach an event plugin"

# ---- a rule that should run: rule_status events; failing, it makes /ready 503.
curl -s -o /dev/null -H 'Content-Type: application/json' \
  -d '{"sql": "CREATE STREAM pushed () WITH (TYPE=\"httppush\", DATASOURCE=\"/pushed\", FORMAT=\"json\")"}' "$BASE/streams"
curl -s -o "$T/body" -H 'Content-Type: application/json' \
  -d '{"id": "r1", "sql": "SELECT * FROM pushed", "actions": [{"log": {}}]}' "$BASE/rules"
wait_for 5 grep -q '"status":"running"' "$T/rule.jsonl" || fail "rule_status running: $(cat "$T/rule.jsonl" 2>/dev/null)"
ready_is 200 || fail "/ready with r1 running: $(cat "$T/ready")"
curl -s -o /dev/null -X POST "$BASE/rules/r1/stop"
wait_for 5 grep -q '"status":"stopped"' "$T/rule.jsonl" || fail "rule_status stopped: $(cat "$T/rule.jsonl")"
ready_is 200 || fail "/ready with r1 stopped on purpose: $(cat "$T/ready")"
# A rule that calls a C plugin's function, the daemon restarted without
# that plugin: the rule cannot come back (failed, with why), and /ready
# says so until it is deleted.
curl -s -o "$T/body" -H 'Content-Type: application/json' \
  -d '{"id": "r2", "sql": "SELECT test_sum(a, 1) AS s FROM pushed", "actions": [{"log": {}}]}' "$BASE/rules"
wait_for 5 grep -q '"rule":"r2","status":"running"' "$T/rule.jsonl" || fail "r2 running: $(cat "$T/body") $(cat "$T/rule.jsonl")"
stop_daemon
: >"$T/rule.jsonl"
start_daemon --plugin-dir "$TEST_PLUGIN_DIR" --active test_ev_record
wait_for 10 ready_is 503 'rule r2 is failed: ' || fail "/ready with r2 failing: $(cat "$T/ready")"
grep -q "test_sum" "$T/ready" || fail "/ready does not say why r2 failed: $(cat "$T/ready")"
wait_for 5 grep -q '"rule":"r2","status":"failed"' "$T/rule.jsonl" || fail "rule_status failed: $(cat "$T/rule.jsonl")"
curl -s -o /dev/null -X DELETE "$BASE/rules/r2"
wait_for 5 ready_is 200 || fail "/ready after deleting r2: $(cat "$T/ready")"
pass "rules: rule_status events (running, stopped, failed with the reason); a rule that should run and cannot makes /ready 503 with why, one stopped on purpose does not"
stop_daemon

# ---- a pipeline whose model is gone after a restart: kept, failed with
# why, and /ready says so while health.required has pipelines.
cp "$TEST_MODELS/dot_density.onnx" "$T/pipe_model.onnx"
INFERD_HEALTH_REQUIRED=pipelines start_daemon
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"p\": {
  \"in\": {\"factory\": \"appsrc\", \"next\": \"decode\"},
  \"decode\": {\"factory\": \"image_decoder\", \"next\": \"infer\"},
  \"infer\": {\"factory\": \"tensor_infer\", \"props\": {\"modelPath\": \"$T/pipe_model.onnx\"}, \"next\": \"out\"},
  \"out\": {\"factory\": \"appsink\"}}}" "$BASE/v1/pipelines")
[ "$code" = 201 ] || fail "POST the pipeline: $code $(cat "$T/body")"
ready_is 200 || fail "/ready with p running: $(cat "$T/ready")"
stop_daemon
rm "$T/pipe_model.onnx"
INFERD_HEALTH_REQUIRED=pipelines start_daemon
ready_is 503 "pipeline p failed: " || fail "/ready with p's model gone: $(cat "$T/ready")"
grep -q "pipe_model.onnx" "$T/ready" || fail "/ready does not say why p failed: $(cat "$T/ready")"
curl -s "$BASE/v1/pipelines/p" | grep -q '"state":"failed"' || fail "p's state after the restart"
curl -s -o /dev/null -X DELETE "$BASE/v1/pipelines/p"
ready_is 200 || fail "/ready after deleting p: $(cat "$T/ready")"
stop_daemon
pass "pipelines: one whose model is gone after a restart is kept, failed with why; /ready says so until it is deleted"

# ---- models: one that fails to load makes /ready (and KServe's) 503 while
# health.required has models (the default); load and unload are events.
mkdir -p "$T/models"
cp "$TEST_MODELS/dot_density.onnx" "$T/models/good.onnx"
echo "not a model" > "$T/models/broken.onnx"
export INFERD_PLUGIN_SETTINGS="{\"test_ev_record_loaded\": {\"path\": \"$T/loaded.jsonl\"},
  \"test_ev_record_unloaded\": {\"path\": \"$T/unloaded.jsonl\"}}"
INFERD_HEALTH_REQUIRED=models INFERD_MODELS_DIR="$T/models" \
  start_daemon --plugin-dir "$TEST_PLUGIN_DIR" --active test_ev_record
ready_is 503 "model 'broken' is not ready: it failed to load" || fail "/ready with a broken model: $(cat "$T/ready")"
code=$(curl -s -o "$T/kready" -w '%{http_code}' "$BASE/v2/health/ready")
[ "$code" = 503 ] && grep -q "model 'broken' is not ready" "$T/kready" || fail "/v2/health/ready: $code $(cat "$T/kready")"
curl -s -o /dev/null -X POST "$BASE/v2/repository/models/good/unload"
curl -s -o /dev/null -X POST "$BASE/v2/repository/models/good/load"
wait_for 5 test -s "$T/loaded.jsonl" || fail "no model_loaded event"
wait_for 5 test -s "$T/unloaded.jsonl" || fail "no model_unloaded event"
grep -q '{"model":"good","versions":\["1"\]}' "$T/loaded.jsonl" && grep -q '{"model":"good"}' "$T/unloaded.jsonl" ||
  fail "model events: $(cat "$T/loaded.jsonl" "$T/unloaded.jsonl")"
stop_daemon
INFERD_HEALTH_REQUIRED=portables INFERD_MODELS_DIR="$T/models" start_daemon
ready_is 200 || fail "/ready without models required: $(cat "$T/ready")"
stop_daemon
pass "models: a model that fails to load makes /ready and /v2/health/ready 503 with why (unless health.required leaves models out); load and unload are model_loaded and model_unloaded events"

# ---- one named thing, and what a bad entry gets.
INFERD_HEALTH_REQUIRED=portable:nope start_daemon
ready_is 503 'portable nope (health.required) does not exist' || fail "portable:nope: $(cat "$T/ready")"
stop_daemon
rc=0
INFERD_HEALTH_REQUIRED=plugins "$TEST_INFERD" serve --listen 127.0.0.1:0 >"$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -qF 'health.required: "plugins" is not one of portables, rules, pipelines, models, portable:NAME, rule:ID, pipeline:NAME, model:NAME' "$T/bad.out" ||
  fail "a bad health.required entry: exit $rc: $(cat "$T/bad.out")"
pass "health.required names one thing (a missing one is a reason), a bad entry exits 2 with what is allowed"

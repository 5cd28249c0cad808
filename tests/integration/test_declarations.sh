#!/usr/bin/env bash
# One declaration language: every configuration surface refuses an unknown
# key and a bad value through the one validator, with the same message
# shape: "<owner>: unknown property '<path>' (did you mean '<name>'? known:
# ...)" and "<owner>: property '<path>': <why> (got <value>; allowed:
# <what>)", every fault of a document at once. One row per surface: the
# config file, an element's properties and keys (a pipeline file), a rule's
# definition and options, an action's settings, a stream's WITH options,
# an MQTT profile, a portable package's manifest.
source "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rules_lib.sh"

SHAPE_UNKNOWN="unknown property '"
SHAPE_BAD="(got "

# surface NAME OUTPUT_FILE UNKNOWN_NEEDLE BAD_NEEDLE: both faults in one message.
surface() {
  grep -qF -- "$3" "$2" || fail "$1: lacks '$3': $(cat "$2")"
  grep -qF -- "$4" "$2" || fail "$1: lacks '$4': $(cat "$2")"
  grep -qF -- "$SHAPE_UNKNOWN" "$2" && grep -qF -- "$SHAPE_BAD" "$2" || fail "$1: not the shape: $(cat "$2")"
  pass "$1: an unknown key and a bad value in one message, the same shape"
}

# ---- the config file ---------------------------------------------------------------------
echo '{"http": {"workres": 2, "idle_timeout_s": "soon"}}' >"$T/config.json"
"$TEST_INFERD" config --config "$T/config.json" >"$T/out" 2>&1 && fail "a bad config passed"
surface "config" "$T/out" "unknown property 'http.workres' (did you mean 'http.workers'?" \
  "property 'http.idle_timeout_s': not an integer (got \"soon\""

# ---- a pipeline file: an element's keys, then its properties ----------------------------------
/usr/bin/python3 -c "from PIL import Image; Image.new('RGB', (8, 8)).save('$T/x.png')"
cat >"$T/keys.json" <<'JSON'
{"s": {"in": {"factory": "appsrc", "nxet": "out", "props": 3}, "out": {"factory": "appsink"}}}
JSON
"$TEST_INFERD" run "$T/keys.json" "$T/x.png" >"$T/out" 2>&1 && fail "bad element keys passed"
surface "pipeline element keys" "$T/out" "element in: unknown property 'nxet' (did you mean 'next'?" \
  "property 'props': not a JSON object (got 3"
cat >"$T/props.json" <<'JSON'
{"s": {"in": {"factory": "appsrc", "next": "r"},
       "r": {"factory": "image_resize", "props": {"resizeWidht": 8, "resizeHeight": "tall"}, "next": "out"},
       "out": {"factory": "appsink"}}}
JSON
"$TEST_INFERD" run "$T/props.json" "$T/x.png" >"$T/out" 2>&1 && fail "bad element properties passed"
surface "element properties" "$T/out" "unknown property 'resizeWidht' (did you mean 'resizeWidth'?" \
  "property 'resizeHeight': not an integer (got \"tall\""

# ---- the daemon's surfaces -------------------------------------------------------------------
cat >"$T/profiles.json" <<'JSON'
{"mqtt": {"profiles": {"edge": {"sever": "tcp://e:1883", "protocolVersion": 9}}}}
JSON
"$TEST_INFERD" config --config "$T/profiles.json" >"$T/out" 2>&1 && fail "a bad profile passed"
surface "mqtt.profiles" "$T/out" "unknown property 'mqtt.profiles.edge.sever' (did you mean 'server'?" \
  "property 'mqtt.profiles.edge.protocolVersion': out of range (got 9"

start_daemon
api POST /streams '{"sql": "CREATE STREAM s () WITH (DATASORCE=\"a\", QOS=5)"}'
[ "$(cat "$T/code")" = 400 ] || fail "stream WITH: $(cat "$T/code")"
surface "stream WITH options" "$T/body" "unknown property 'DATASORCE' (did you mean 'DATASOURCE'?" \
  "property 'QOS': out of range (got 5"
expect POST /streams '{"sql": "CREATE STREAM s () WITH (DATASOURCE=\"a\")"}' 201
api POST /rules '{"id": "r", "sql": "SELECT * FROM s", "actions": [{"log": {}}], "options": {"bufferLenght": 5, "qos": 7}}'
[ "$(cat "$T/code")" = 400 ] || fail "rule options: $(cat "$T/code")"
surface "rule options" "$T/body" "unknown property 'options.bufferLenght' (did you mean 'bufferLength'?" \
  "property 'options.qos': out of range (got 7"
api POST /rules '{"id": "r", "sql": "SELECT * FROM s", "actions": [{"rest": {"url": "http://127.0.0.1:9/x", "retryCont": 2, "timeout": "forever"}}]}'
[ "$(cat "$T/code")" = 400 ] || fail "action settings: $(cat "$T/code")"
surface "action settings" "$T/body" "unknown property 'retryCont' (did you mean 'retryCount'?" \
  "property 'timeout': not a duration (got \\\"forever\\\""
stop_daemon

# ---- a portable package's manifest -------------------------------------------------------------
/usr/bin/python3 - "$T/bad.zip" <<'PY'
import json, sys, zipfile
m = {"version": "v1", "language": "python", "executable": "main.py",
     "functions": [{"name": "f", "minArgz": 1, "maxArgs": "many"}]}
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("bad.json", json.dumps(m))
    z.writestr("main.py", "print('never runs')\n")
PY
INFERD_STATE_DIR="$T/pstate" "$TEST_INFERD" plugin install "$T/bad.zip" >"$T/out" 2>&1 && fail "a bad manifest installed"
surface "package manifest" "$T/out" "unknown property 'functions[0].minArgz' (did you mean 'minArgs'?" \
  "property 'functions[0].maxArgs': not an integer (got \"many\""

# ---- inferd describe: the same declarations, printed -----------------------------------------
"$TEST_INFERD" describe rule >"$T/out" || fail "describe rule"
grep -qE '^      bufferLength +uint in \[1, 1000000\]; default 1024$' "$T/out" \
  || fail "describe rule: no nested bufferLength: $(cat "$T/out")"
grep -qE '^  sql +string; required$' "$T/out" || fail "describe rule: sql: $(cat "$T/out")"
"$TEST_INFERD" describe mqtt >"$T/out" || fail "describe mqtt"
grep -qE '^  qos +int in \[0, 2\]; optional$' "$T/out" || fail "describe mqtt: $(cat "$T/out")"
grep -qE '^  resendInterval +a duration' "$T/out" || fail "describe mqtt: no sink settings: $(cat "$T/out")"
"$TEST_INFERD" describe manifest --json >"$T/out" || fail "describe manifest --json"
/usr/bin/python3 - "$T/out" <<'PY' || fail "describe manifest --json: $(cat "$T/out")"
import json, sys
specs = {s["name"]: s for s in json.load(open(sys.argv[1]))}
fn = {f["name"]: f for f in specs["functions"]["fields"]}
assert specs["executable"]["required"] is True, specs["executable"]
assert "minArgs" in fn and fn["minArgs"]["type"] == "int", fn
PY
"$TEST_INFERD" describe config >"$T/out" || fail "describe config"
grep -qE "^  portable.memory_limit_mb +uint" "$T/out" || fail "describe config: $(cat "$T/out")"
rc=0; "$TEST_INFERD" describe rul >"$T/out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -qF "no surface 'rul' (there are: rule, stream" "$T/out" \
  || fail "describe rul: rc $rc: $(cat "$T/out")"
pass "describe: every surface printed from its declaration (nested keys, --json); an unknown one exits 2 with the list"

echo "test_declarations: all passed"

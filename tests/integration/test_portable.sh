#!/usr/bin/env bash
# Portable plugins end to end: the example packages (plugins/examples/python)
# installed through the CLI and through REST, used through the daemon
# (function exec, an estimator replacement, event delivery, background
# routes), a plugin killed with SIGKILL in the middle of a call (the call
# fails cleanly, the plugin comes back, the next call works), a daemon
# restart that finds every plugin back, removal, and every kind of bad
# package refused with its reason and nothing left behind.
source "$(dirname "$0")/lib.sh"

PKG="$T/packages"
mkdir -p "$PKG"
/usr/bin/python3 "$TEST_SRCDIR/plugins/examples/python/pack.py" "$PKG" >/dev/null \
  || fail "pack.py could not pack the examples"
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/portable_packages.py" "$TEST_SRCDIR" "$PKG" \
  || fail "portable_packages.py"

RECEIVER_PID=""
cleanup_receiver() { [ -n "$RECEIVER_PID" ] && kill -KILL "$RECEIVER_PID" 2>/dev/null; cleanup; }
trap cleanup_receiver EXIT
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/monitoring_receiver.py" \
  --port-file "$T/rport" --log "$T/received.jsonl" 2>"$T/receiver.log" &
RECEIVER_PID=$!
for _ in $(seq 1 100); do [ -s "$T/rport" ] && break; sleep 0.05; done
RPORT=$(cat "$T/rport")

export INFERD_STATE_DIR="$T/state"
export INFERD_PORTABLE_START_TIMEOUT_MS=4000
export INFERD_PORTABLE_HEARTBEAT_MS=200
export INFERD_PORTABLE_HEARTBEAT_TIMEOUT_MS=3000
export INFERD_PORTABLE_INSTALL_TIMEOUT_MS=1500
export INFERD_EVENTS_FLUSH_MS=20
export INFERD_PLUGIN_SETTINGS="{\"monitor\": {\"url\": \"http://127.0.0.1:$RPORT/1/buckets\", \"bucket\": \"portable\"}}"

# ---- the CLI: install with no daemon running ---------------------------------------
for p in pypeople monitor teapot; do
  "$TEST_INFERD" plugin install "$PKG/$p.zip" >"$T/cli.out" 2>"$T/cli.err" \
    || fail "inferd plugin install $p.zip: $(cat "$T/cli.err")"
  grep -q "installed portable plugin $p v" "$T/cli.out" || fail "install $p said: $(cat "$T/cli.out")"
done
[ -x "$T/state/plugins/teapot/install.sh" ] || fail "teapot's install.sh lost its mode"
"$TEST_INFERD" plugin install "$PKG/teapot.zip" 2>"$T/cli.err" && fail "a second install of teapot passed"
grep -q "portable plugin teapot is installed already: remove it first" "$T/cli.err" || fail "second install: $(cat "$T/cli.err")"
"$TEST_INFERD" plugin list >"$T/list.out" || fail "plugin list"
grep -q "^teapot v1.0.0" "$T/list.out" && grep -q "estimator  *numpyPeopleCount" "$T/list.out" \
  || fail "plugin list does not show the portable plugins: $(cat "$T/list.out")"
pass "CLI: install pypeople, monitor, teapot; a second install refused; plugin list shows them"

start_daemon
"$TEST_INFERD" plugin install "$PKG/slow.zip" 2>"$T/cli.err" && fail "CLI install with a daemon running passed"
grep -q "in use by a running inferd daemon" "$T/cli.err" || fail "CLI install while serving: $(cat "$T/cli.err")"
pass "CLI install is refused while a daemon runs on the state folder"

# ---- REST installs -------------------------------------------------------------------
for p in pyai defect slow; do
  code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$BASE/plugins/portables" \
         -d "{\"name\": \"$p\", \"file\": \"file://$PKG/$p.zip\"}") || fail "POST $p"
  [ "$code" = 201 ] || fail "POST /plugins/portables $p: $code $(cat "$T/body")"
  grep -q '"status":"running"' "$T/body" || fail "$p is not running after install: $(cat "$T/body")"
done
expect_http GET /plugins/portables 200 '"name":"pyai"'
expect_http GET /plugins/portables/slow 200 '"functions":[{"name":"sleepy"'
expect_http GET /plugins/portables/nope 404 "no portable plugin named 'nope' is installed"
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$BASE/plugins/portables" \
       -d "{\"name\": \"pyai\", \"file\": \"file://$PKG/pyai.zip\"}")
[ "$code" = 409 ] && grep -q "installed already" "$T/body" || fail "duplicate REST install: $code $(cat "$T/body")"
pass "REST: POST /plugins/portables installs pyai, defect, slow (201, running); a duplicate is 409"

# ---- functions through the daemon -------------------------------------------------------
/usr/bin/python3 - "$BASE" "$TEST_DATA" <<'PY' || fail "function calls"
import base64, json, sys, urllib.request
base, data = sys.argv[1], sys.argv[2]
truth = json.load(open(data + "/truth.json"))
def call(name, body, ctype):
    req = urllib.request.Request(f"{base}/v1/functions/{name}/exec", data=body,
                                 headers={"Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["result"]
for c in truth["colours"]:
    res = call("labelImage", open(f"{data}/{c['file']}", "rb").read(), "image/png")
    assert res[0]["label"] == c["label"], (c, res)
for s in truth["scratches"]:
    b64 = base64.b64encode(open(f"{data}/{s['file']}", "rb").read()).decode()
    res = call("inference", json.dumps({"args": [b64]}).encode(), "application/json")
    assert res["defect"] == s["count"], (s, {k: v for k, v in res.items() if k != "base64"})
    assert base64.b64decode(res["base64"])[:2] == b"\xff\xd8", "not a JPEG"
big = bytes(range(256)) * 4096  # 1 MiB: through shared memory both ways
req = urllib.request.Request(f"{base}/v1/functions/echo/exec", data=big,
                             headers={"Content-Type": "application/octet-stream"})
echoed = json.load(urllib.request.urlopen(req))["result"]
assert base64.b64decode(echoed) == big, "1 MiB echo differs"
print(f"labelImage: {len(truth['colours'])} colours right; inference: {len(truth['scratches'])} scratch counts right; 1 MiB echo exact")
PY
expect_http GET /v1/functions/nope/exec 405
curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"args": ["boom"]}' "$BASE/v1/functions/fails/exec" >"$T/code"
[ "$(cat "$T/code")" = 500 ] && grep -q '"plugin_error"' "$T/body" && grep -q 'boom' "$T/body" \
  || fail "a raising function: $(cat "$T/code") $(cat "$T/body")"
curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"args": [1, 2]}' "$BASE/v1/functions/whoami/exec" >"$T/code"
[ "$(cat "$T/code")" = 400 ] && grep -q 'takes 0 to 0 arguments, not 2' "$T/body" \
  || fail "wrong arity: $(cat "$T/code") $(cat "$T/body")"
curl -s -o "$T/body" -w '%{http_code}' -X POST -d x "$BASE/v1/functions/nope/exec" >"$T/code"
[ "$(cat "$T/code")" = 404 ] || fail "unknown function: $(cat "$T/code") $(cat "$T/body")"
pass "functions: labelImage, inference, a 1 MiB echo; a raising function is 500 plugin_error with its message; arity 400; unknown 404"

# ---- calls that wait do not hold the HTTP threads ------------------------------------------
# Four 3-second calls at once (more than the HTTP threads, which are one per
# core): they run on the worker pool, so /health, /metrics and an estimation
# answer at once meanwhile.
calls=()
for i in 1 2 3 4; do
  curl -s -o "$T/sleepy$i.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"args": [3000]}' "$BASE/v1/functions/sleepy/exec" >"$T/sleepy$i.code" &
  calls+=($!)
done
sleep 0.5
for path in /health /metrics; do
  t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$BASE$path")
  [ "${t%% *}" = 200 ] && awk -v s="${t##* }" 'BEGIN {exit !(s < 1.0)}' ||
    fail "GET $path while four calls wait: '$t' (status, seconds), want 200 within 1 s"
done
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H 'Content-Type: image/png' \
  --data-binary @"$TEST_DATA/$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dots"][3]["file"])' "$TEST_DATA/truth.json")" \
  "$BASE/v1/estimators/peopleCountEstimator?targets=T2")
[ "${t%% *}" = 200 ] && awk -v s="${t##* }" 'BEGIN {exit !(s < 2.0)}' ||
  fail "an estimation while four calls wait: '$t', want 200 within 2 s"
wait "${calls[@]}"
for i in 1 2 3 4; do
  [ "$(cat "$T/sleepy$i.code")" = 200 ] || fail "call $i: $(cat "$T/sleepy$i.code") $(cat "$T/sleepy$i.body")"
done
pass "four 3 s function calls at once: /health, /metrics and an estimation answered within a second meanwhile"

# ---- the estimator replacement, events and routes -----------------------------------------
expect_http GET /v1/plugins/pypeople 200 '"estimators":["peopleCountEstimator"]'
/usr/bin/python3 - "$BASE" "$TEST_DATA" <<'PY' || fail "estimations through the replacement"
import json, sys, urllib.request
base, data = sys.argv[1], sys.argv[2]
truth = json.load(open(data + "/truth.json"))
for d in truth["dots"][:8]:
    req = urllib.request.Request(f"{base}/v1/estimators/peopleCountEstimator",
                                 data=open(f"{data}/{d['file']}", "rb").read(),
                                 headers={"Content-Type": "image/png"})
    res = json.load(urllib.request.urlopen(req))
    r = res["results"][0]
    assert r["count"] == d["count"] and len(r["points"]) == d["count"], (d["file"], r)
req = urllib.request.Request(f"{base}/v1/estimators/peopleCountEstimator?targets=T2",
                             data=open(f"{data}/{truth['dots'][3]['file']}", "rb").read(),
                             headers={"Content-Type": "image/png"})
r = json.load(urllib.request.urlopen(req))["results"][0]
assert r == {"count": truth["dots"][3]["count"]}, r
PY
expect_http GET /teapot 418 "I am teapot"
expect_http GET /teapot/version 200 "T800"
expect_http POST /teapot 405 "allows only GET"
for _ in $(seq 1 100); do
  grep -q '"/1/buckets/portable/objects"' "$T/received.jsonl" 2>/dev/null && break; sleep 0.05
done
grep -q '"/1/buckets/portable/objects"' "$T/received.jsonl" || fail "no monitoring point reached the receiver: $(cat "$T/received.jsonl" 2>/dev/null)"
pass "numpyPeopleCount replaces peopleCountEstimator (counts right, T2 shape), teapot routes, monitor points delivered"

# ---- SIGKILL in the middle of a call ---------------------------------------------------------
pid=$(curl -s "$BASE/plugins/portables/slow" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
curl -s -o "$T/slow.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"args": [5000]}' "$BASE/v1/functions/sleepy/exec" >"$T/slow.code" &
CURL=$!
sleep 0.5
kill -KILL "$pid"
wait "$CURL" || true
[ "$(cat "$T/slow.code")" = 500 ] && grep -q "portable plugin slow" "$T/slow.body" \
  && grep -q "killed by signal 9" "$T/slow.body" \
  || fail "the call in flight: $(cat "$T/slow.code") $(cat "$T/slow.body")"
for _ in $(seq 1 100); do
  curl -s "$BASE/plugins/portables/slow" >"$T/st"
  grep -q '"status":"running"' "$T/st" && break; sleep 0.05
done
grep -q '"status":"running"' "$T/st" && grep -q '"restarts":1' "$T/st" || fail "after the kill: $(cat "$T/st")"
curl -s -X POST -H 'Content-Type: application/json' -d '{"args": []}' "$BASE/v1/functions/whoami/exec" >"$T/who"
newpid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"])' "$T/who")
[ "$newpid" != "$pid" ] || fail "whoami after the restart still says $pid"
curl -sf "$BASE/metrics" >"$T/metrics"
grep -q '^inferd_portable_restarts_total{plugin="slow"} 1' "$T/metrics" || fail "metrics: $(grep portable "$T/metrics")"
pass "SIGKILL mid-call: the call failed 500 naming the signal, the plugin restarted (restarts 1, new pid $newpid), the next call works"

# ---- restart: everything comes back -----------------------------------------------------------
stop_daemon
start_daemon
curl -s "$BASE/plugins/portables" >"$T/all"
for p in pypeople monitor teapot pyai defect slow; do
  grep -q "\"name\":\"$p\"" "$T/all" || fail "$p is gone after the restart: $(cat "$T/all")"
done
expect_http GET /teapot 418 "I am teapot"
curl -s -X POST -H 'Content-Type: application/json' -d '{"args": [7]}' "$BASE/v1/functions/sleepy/exec" | grep -q '"result":7' \
  || fail "sleepy after the restart"
pass "daemon restart: all six plugins back and answering"

# ---- removal ------------------------------------------------------------------------------------
expect_http DELETE /plugins/portables/pyai 200 '"removed":true'
expect_http GET /plugins/portables/pyai 404
[ ! -e "$T/state/plugins/pyai" ] || fail "pyai's folder is still there"
curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$BASE/v1/functions/labelImage/exec" >"$T/code"
[ "$(cat "$T/code")" = 404 ] || fail "labelImage after removal: $(cat "$T/code")"
expect_http DELETE /plugins/portables/pyai 404
pass "DELETE /plugins/portables/pyai: gone from the API, the disk and the functions"
# A plugin whose function /v1/functions/.../exec called (sleepy, just above)
# is removed whole: it installs again at once and answers.
expect_http DELETE /plugins/portables/slow 200 '"removed":true'
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
       -d "{\"name\": \"slow\", \"file\": \"file://$PKG/slow.zip\"}" "$BASE/plugins/portables")
[ "$code" = 201 ] || fail "reinstall of slow after a call and a removal: $code $(cat "$T/body")"
curl -s -X POST -H 'Content-Type: application/json' -d '{"args": [8]}' "$BASE/v1/functions/sleepy/exec" |
  grep -q '"result":8' || fail "sleepy after the reinstall"
pass "remove after a call through /v1/functions: the reinstall is 201 and answers (was 409 until restart)"

# ---- what install.sh leaves running ---------------------------------------------------------------
# escapee's install.sh starts `setsid sleep 4242 &` (which keeps the
# install's output open) and a setsid shell with its output closed: the
# install answers at once (not after the 1.5 s install timeout) and neither
# process outlives it.
t0=$(date +%s%N)
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
       -d "{\"name\": \"escapee\", \"file\": \"file://$PKG/escapee.zip\"}" "$BASE/plugins/portables")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$code" = 201 ] || fail "install escapee: $code $(cat "$T/body")"
[ "$ms" -lt 1500 ] || fail "install escapee took $ms ms: it waited for what install.sh left running"
sleep 0.2
# What this daemon's installs started carries INFERD_INSTALL_ID=<its pid>-...
left=$(grep -l "INFERD_INSTALL_ID=$DAEMON_PID-" /proc/[0-9]*/environ 2>/dev/null || true)
[ -z "$left" ] || fail "install.sh's setsid processes outlived it: $left"
expect_http DELETE /plugins/portables/escapee 200
pass "install.sh's setsid children are killed when it ends; the install answers in $ms ms"

# ---- what a plugin process leaves running ----------------------------------------------------------
# spawner starts `setsid sleep 4245` (its own session, out of the plugin's
# process group); removing the plugin ends it too.
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
       -d "{\"name\": \"spawner\", \"file\": \"file://$PKG/spawner.zip\"}" "$BASE/plugins/portables")
[ "$code" = 201 ] || fail "install spawner: $code $(cat "$T/body")"
mine() { grep -l "INFERD_PLUGIN_ID=$DAEMON_PID-spawner-" /proc/[0-9]*/environ 2>/dev/null | wc -l; }
[ "$(mine)" -ge 2 ] || fail "spawner and its setsid child are not both running ($(mine) found)"
expect_http DELETE /plugins/portables/spawner 200
sleep 0.2
[ "$(mine)" = 0 ] || fail "spawner's setsid child outlived its removal: $(grep -l "INFERD_PLUGIN_ID=$DAEMON_PID-spawner-" /proc/[0-9]*/environ 2>/dev/null)"
pass "a plugin's setsid child ends when the plugin is removed"

# ---- a plugin flooding its output ------------------------------------------------------------------
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
       -d "{\"name\": \"chatty\", \"file\": \"file://$PKG/chatty.zip\"}" "$BASE/plugins/portables")
[ "$code" = 201 ] || fail "install chatty: $code $(cat "$T/body")"
logged=$(grep -c "\[chatty\] chatty line" "$T/daemon.log" || true)
[ "$logged" -ge 50 ] && [ "$logged" -le 400 ] ||
  fail "chatty printed 5000 lines; $logged were logged, want about portable.log_lines_per_s (100) a second"
grep -q "\[chatty\] prints more than 100 lines a second (portable.log_lines_per_s)" "$T/daemon.log" ||
  fail "the flood is not said in the log"
expect_http DELETE /plugins/portables/chatty 200
pass "a plugin printing 5000 lines at once: $logged logged, the rest counted (portable.log_lines_per_s)"

# ---- bad packages --------------------------------------------------------------------------------
bad() { # NAME STATUS MESSAGE
  local code
  code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$BASE/plugins/portables" \
         -d "{\"name\": \"$1\", \"file\": \"file://$PKG/$1.zip\"}")
  [ "$code" = "$2" ] || fail "package $1: status $code, want $2: $(cat "$T/body")"
  grep -qF -- "$3" "$T/body" || fail "package $1: body lacks '$3': $(cat "$T/body")"
  [ ! -e "$T/state/plugins/$1" ] || fail "package $1 left $T/state/plugins/$1 behind"
  curl -s "$BASE/plugins/portables" | grep -q "\"name\":\"$1\"" && fail "package $1 is listed"
  return 0
}
bad nomanifest 400 "nomanifest.json"
bad badjson 400 "badjson.json"
bad misnamed 400 "misnamed.json"
bad noexec 400 "missing.py"
bad escape 400 "../evil.txt"
bad linkout 400 "models"
bad installfails 400 "missing: tflite"
bad installhangs 400 "did not finish within 1500 ms"
bad silent 400 "did not say hello within 4000 ms"
bad garbage 400 "answered garbage"
bad mismatch 400 "which its manifest mismatch.json does not declare"
bad crashes 400 "exited with status 4"
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$BASE/plugins/portables" -d '{"name": "x", "file": "http://example.com/x.zip"}')
[ "$code" = 400 ] && grep -q 'file:/// URL' "$T/body" || fail "http URL: $code $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$BASE/plugins/portables" -d '{"name": "../x", "file": "file:///tmp/x.zip"}')
[ "$code" = 400 ] && grep -q 'is not a plugin name' "$T/body" || fail "bad name: $code $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$BASE/plugins/portables" -d '{"name": "x"}')
[ "$code" = 400 ] && grep -qF 'needs \"name\" and \"file\"' "$T/body" || fail "no file: $code $(cat "$T/body")"
ls "$T/state/plugins" | grep -v -E '^(pypeople|monitor|teapot|defect|slow)$' && fail "stray folders in state/plugins"
pass "bad packages refused (400, with the reason) and nothing left: no manifest, bad JSON, misnamed, no executable, ../ entry, link out, install.sh failing and hanging, no handshake, garbage, wrong components, a crash; bad URL, name, body"
stop_daemon

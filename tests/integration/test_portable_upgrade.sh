#!/usr/bin/env bash
# A portable plugin upgraded in place (PUT /plugins/portables/{name},
# `inferd plugin upgrade`) while a rule calls it on every message of a real
# mosquitto stream: every message gets one result, from the old or the new
# version, in that order, none lost or twice. Then the versions that must
# be rolled back (one whose process dies at start, one that cannot open the
# rule's instance, one that declares other components), each with its
# reason, the running version serving on and nothing of the new left; the
# upgrade survives a restart. Then a portable plugin deactivated and
# activated (POST /v1/plugins/{name}/deactivate|activate), and packages
# installed and removed while serving: their routes and estimator
# replacements come and go at once. Packages: portable_versions.py.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rules_lib.sh"
PKG="$T/packages"
mkdir -p "$PKG"
/usr/bin/python3 "$(dirname "$0")/portable_versions.py" "$PKG" || fail "portable_versions.py"

# A publisher still running when a check fails must not hold the test open.
PUB=""
upgrade_cleanup() {
  [ -n "$PUB" ] && { pkill -P "$PUB" 2>/dev/null; kill "$PUB" 2>/dev/null; }
  rules_cleanup
}
trap upgrade_cleanup EXIT
start_broker
export INFERD_MQTT_SERVER="$MQTT_SERVER" INFERD_STATE_DIR="$T/state"
export INFERD_PORTABLE_START_TIMEOUT_MS=4000
start_daemon
expect POST /plugins/portables "{\"name\":\"ver\", \"file\": \"file://$PKG/ver-1.zip\"}" 201 '"version":"1.0.0"'
expect POST /streams '{"sql":"CREATE STREAM nums () WITH (DATASOURCE=\"nums\", FORMAT=\"JSON\")"}' 201
expect POST /rules '{"id": "r", "sql": "SELECT ver(n) AS r FROM nums", "actions": [{"mqtt": {"topic": "nums/out", "sendSingle": true, "qos": 1}}]}' 201
wait_source r nums
sub_start out nums/out

# publish FIRST COUNT: COUNT messages {"n": i} at 100 a second, QoS 1.
publish() {
  /usr/bin/python3 - "$1" "$2" <<'PY' | mosquitto_pub -p "$MQTT_PORT" -t nums -q 1 -l
import sys, time
first, count = int(sys.argv[1]), int(sys.argv[2])
start = time.monotonic()
for i in range(first, first + count):
    print('{"n": %d}' % i, flush=True)
    time.sleep(max(0.0, start + (i - first + 1) * 0.01 - time.monotonic()))
PY
}
# results FROM TO: checks that n FROM..TO-1 each got exactly one result, and
# prints the versions in the order of n ("1 2" for a change from 1 to 2).
results() {
  sub_lines out | /usr/bin/python3 -c '
import json, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
got = {}
for line in sys.stdin:
    r = json.loads(line)["r"]
    if lo <= r["x"] < hi:
        if r["x"] in got:
            sys.exit("n=%d answered twice" % r["x"])
        got[r["x"]] = r["v"]
missing = [n for n in range(lo, hi) if n not in got]
if missing:
    sys.exit(f"{len(missing)} messages lost: {missing[:10]}")
order = [got[n] for n in range(lo, hi)]
runs = [v for i, v in enumerate(order) if i == 0 or order[i - 1] != v]
print(" ".join(map(str, runs)), sum(1 for v in order if v == runs[0]))' "$1" "$2"
}

# ---- 1 -> 2 under a steady stream (REST, the zip uploaded) ----------------------
publish 0 400 &
PUB=$!
sleep 1.5
code=$(curl -s -o "$T/body" -w '%{http_code}' -X PUT -H 'Content-Type: application/zip' \
       --data-binary @"$PKG/ver-2.zip" "$BASE/plugins/portables/ver")
[ "$code" = 200 ] || fail "PUT ver-2: $code $(cat "$T/body")"
grep -q '"version":"2.0.0"' "$T/body" && grep -q '"previousVersion":"1.0.0"' "$T/body" ||
  fail "PUT answer: $(cat "$T/body")"
wait "$PUB" || fail "mosquitto_pub"
PUB=""
sub_wait out 400 30
got=$(results 0 400) || fail "the results of the upgrade: $got"
read -r v1 v2 before <<<"$got"
[ "$v1 $v2" = "1 2" ] || fail "versions in order of the messages: $v1 $v2 (want 1 then 2)"
pass "1.0.0 -> 2.0.0 while 100 messages a second flow: 400 messages, 400 results, none lost or twice; the first $before by 1.0.0, the rest by 2.0.0"
expect GET /v1/plugins/ver "" 200 '"version":"2.0.0"'
[ "$(ls "$T/state/plugins")" = "$(ls "$T/state/plugins" | grep '^ver@')" ] && [ "$(ls "$T/state/plugins" | wc -l)" = 1 ] ||
  fail "plugin folders after the upgrade: $(ls "$T/state/plugins")"
[ "$(ls "$T/state/uploads" | wc -l)" = 1 ] || fail "uploads: $(ls "$T/state/uploads")"
pass "the old version's folder is gone, the new one's upload is kept"

# ---- versions that are rolled back ---------------------------------------------
# upgrade_refused ZIP NEEDLE: 400 with the reason, 2.0.0 serves on, nothing left.
upgrade_refused() {
  local before_dirs
  before_dirs=$(ls "$T/state/plugins")
  code=$(curl -s -o "$T/body" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
         -d "{\"file\": \"file://$PKG/$1\"}" "$BASE/plugins/portables/ver")
  [ "$code" = 400 ] || fail "PUT $1: $code $(cat "$T/body")"
  grep -qF 'portable plugin ver was not upgraded (version 2.0.0 serves on)' "$T/body" &&
    grep -qF -- "$2" "$T/body" || fail "PUT $1: $(cat "$T/body")"
  [ "$(ls "$T/state/plugins")" = "$before_dirs" ] || fail "$1 left $(ls "$T/state/plugins")"
}
publish 400 300 &
PUB=$!
sleep 0.5
upgrade_refused ver-crash.zip 'portable plugin ver exited with status 3'
upgrade_refused ver-badopen.zip 'version 4 cannot open this'
upgrade_refused ver-other.zip 'version 5.0.0 declares its components otherwise than the running 2.0.0: function ver2 is new'
wait "$PUB" || fail "mosquitto_pub"
PUB=""
sub_wait out 700 30
[ "$(results 400 700)" = "2 300" ] || fail "results during the refused upgrades: $(results 400 700)"
pass "a version whose process dies at start, one that cannot open the rule's instance, one that declares another function: each 400 with why, 2.0.0 answers every one of 300 messages meanwhile, no folder left"

expect PUT /plugins/portables/nope "{\"file\": \"file://$PKG/ver-2.zip\"}" 404 'no portable plugin named nope is installed'
expect PUT /plugins/portables/ver '{"file": "http://x/ver.zip"}' 400 'must be a file:/// URL'
pass "an upgrade of a plugin not installed 404; a file that is not file:/// 400"

# ---- the CLI, and a restart ------------------------------------------------------
expect_exit 0 "" "$TEST_INFERD" plugin upgrade ver "$PKG/ver-1.zip" --url "$BASE"
[ "$(cat "$T/out")" = "portable plugin ver upgraded from 2.0.0 to 1.0.0" ] || fail "CLI upgrade: $(cat "$T/out")"
expect_exit 1 "inferd: 400 bad_package: portable plugin ver was not upgraded*" \
  "$TEST_INFERD" plugin upgrade ver "$PKG/ver-crash.zip" --url "$BASE"
sub_stop out
stop_daemon
start_daemon
expect GET /v1/plugins/ver "" 200 '"version":"1.0.0"'
sub_start again nums/out
wait_source r nums
mosquitto_pub -p "$MQTT_PORT" -t nums -q 1 -m '{"n": 1000}'
sub_wait again 1 10
[ "$(sub_lines again)" = '{"r":{"v":1,"x":1000}}' ] || fail "after the restart: $(sub_lines again)"
pass "inferd plugin upgrade NAME FILE.zip (a downgrade here), its refusal exit 1; after a restart the version it left runs the rule"

# ---- deactivate and activate a portable plugin ---------------------------------------
expect POST /v1/plugins/ver/deactivate "" 409 'rule r'
expect DELETE /rules/r "" 200
expect POST /v1/plugins/ver/deactivate "" 200 '"active":false'
expect GET /plugins/portables/ver "" 200 '"status":"inactive"'
expect POST /v1/functions/ver/exec '{"args": [1]}' 404 "no function named 'ver'"
expect GET /ready "" 200
stop_daemon
start_daemon
expect GET /plugins/portables/ver "" 200 '"active":false'
expect POST /v1/plugins/ver/deactivate "" 409 'portable plugin ver is inactive already'
expect POST /v1/plugins/ver/activate "" 200 '"version":"1.0.0"'
expect POST /v1/functions/ver/exec '{"args": [7]}' 200 '"result":{"v":1,"x":7}'
expect GET /plugins/portables/ver "" 200 '"status":"running"'
pass "a portable plugin deactivated: refused while a rule calls it (409 naming it), then its process stops and its functions go, /ready stays 200, and it stays so across a restart; activated again it runs"

# ---- a package installed while the daemon runs is live at once ----------------------
/usr/bin/python3 "$TEST_SRCDIR/plugins/examples/python/pack.py" "$PKG" teapot pypeople >/dev/null ||
  fail "pack.py"
expect GET /teapot "" 404
expect POST /plugins/portables "{\"name\":\"teapot\", \"file\": \"file://$PKG/teapot.zip\"}" 201 '"status":"running"'
expect GET /teapot "" 418 'I am teapot'
expect POST /plugins/portables "{\"name\":\"pypeople\", \"file\": \"file://$PKG/pypeople.zip\"}" 201 '"status":"running"'
expect GET /v1/estimators/peopleCountEstimator "" 200 '"plugin":"pypeople"'
grep -q '"replaced":true' "$T/body" || fail "not replaced: $(cat "$T/body")"
expect DELETE /plugins/portables/pypeople "" 200
expect GET /v1/estimators/peopleCountEstimator "" 200 '"plugin":"estimators"'
expect DELETE /plugins/portables/teapot "" 200
expect GET /teapot "" 404
expect POST /plugins/portables "{\"name\":\"teapot\", \"file\": \"file://$PKG/teapot.zip\"}" 201 '"status":"running"'
expect GET /teapot "" 418 'I am teapot'
pass "installed while serving, a background plugin's routes and an estimator replacement are live at once; removed, they go (the built-in serves again) and the same name installs again without a restart"
stop_daemon

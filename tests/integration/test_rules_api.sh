#!/usr/bin/env bash
# The streams and rules API, with a real mosquitto broker and the real
# daemon: what each bad definition and each bad message gets (and that the
# rule keeps running), the other sources (HTTP push, a file, a portable
# source component) and actions (HTTP, file, log, a portable sink), rule
# control (stop, start, restart, PUT), sendError, and deleting.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rules_lib.sh"

start_broker
export INFERD_MQTT_SERVER="$MQTT_SERVER"
# A second broker that wants a user and a password, for the profiles
# "secure" (right password) and "wrong".
SECURE_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto_passwd -b -c "$T/passwd" sensor s3cret 2>/dev/null || fail "mosquitto_passwd"
{
  echo "listener $SECURE_PORT 127.0.0.1"
  echo "allow_anonymous false"
  echo "password_file $T/passwd"
  echo "persistence false"
  echo "set_tcp_nodelay true"
  [ "$(id -u)" -ne 0 ] || echo "user root"
} >"$T/secure.conf"
/usr/sbin/mosquitto -c "$T/secure.conf" >"$T/secure.log" 2>&1 &
SECURE_PID=$!
for _ in $(seq 1 200); do grep -q ' running$' "$T/secure.log" && break; sleep 0.05; done
SECURE="tcp://127.0.0.1:$SECURE_PORT"
export INFERD_MQTT_PROFILES="{\"local\": {\"server\": \"$MQTT_SERVER\", \"clientId\": \"inferd-local-profile\"}, \"ws\": {\"server\": \"ws://127.0.0.1:8080\"},
  \"secure\": {\"server\": \"$SECURE\", \"username\": \"sensor\", \"password\": \"s3cret\"},
  \"wrong\": {\"server\": \"$SECURE\", \"username\": \"sensor\", \"password\": \"nope\"}}"

# The test plugin with a source and a sink (tests/portable/streamkit).
/usr/bin/python3 - "$TEST_SRCDIR/tests/portable/streamkit" "$T/streamkit.zip" <<'PY'
import os, stat, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w") as z:
    for f in sorted(os.listdir(src)):
        info = zipfile.ZipInfo(f, (2026, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFREG | (0o755 if f == "main.py" else 0o644)) << 16
        z.writestr(info, open(os.path.join(src, f), "rb").read())
PY
RECEIVER_PID=""
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/monitoring_receiver.py" \
  --port-file "$T/rport" --log "$T/received.jsonl" 2>"$T/receiver.log" &
RECEIVER_PID=$!
trap 'kill -KILL $RECEIVER_PID $SECURE_PID 2>/dev/null; rules_cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$T/rport" ] && break; sleep 0.05; done
RPORT=$(cat "$T/rport")
curl -s -X POST "http://127.0.0.1:$RPORT/1/buckets?bucket=rules" >/dev/null

# The C test plugin test_good: a function test_sum(x, ...) and a source
# test_source that emits {"event": "started"} when it starts.
export INFERD_PLUGINS_DIR="$TEST_PLUGIN_DIR"
start_daemon --active test_good
expect POST /plugins/portables "{\"name\": \"streamkit\", \"file\": \"file://$T/streamkit.zip\"}" 201

# ---- bad streams ------------------------------------------------------------------------
expect POST /streams '{"sql":"CREATE STREM demo () WITH (DATASOURCE=\"demo\")"}' 400 'line 1, column 8'
expect POST /streams '{"sql":"CREATE STREAM demo (v BIGNUM) WITH (DATASOURCE=\"demo\")"}' 400 'BIGNUM'
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (FORMAT=\"XML\")"}' 400 'FORMAT must be "JSON" or "BINARY"'
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (COLOUR=\"red\")"}' 400 "stream demo: WITH: unknown property 'COLOUR' (known: DATASOURCE, FORMAT, TYPE, CONF_KEY, SHARED, QOS, TIMESTAMP, KEY, STRICT_VALIDATION)"
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (TYPE=\"kafka\")"}' 400 'unknown TYPE "kafka"'
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (CONF_KEY=\"nope\")"}' 400 'no MQTT connection profile "nope"'
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (CONF_KEY=\"ws\")"}' 400 'mqtt.profiles.ws.server "ws://127.0.0.1:8080" must be tcp://host:port, mqtt://host:port, or ssl://host:port for TLS (websockets are not supported)'
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (TYPE=\"httppush\", DATASOURCE=\"a/b\")"}' 400 'one path segment'
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (QOS=3)"}' 400 "stream demo: WITH: property 'QOS': out of range (got 3; allowed: int in [0, 2])"
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (DATASOURSE=\"d\", QOS=\"high\")"}' 400 "stream demo: WITH: unknown property 'DATASOURSE' (did you mean 'DATASOURCE'? known: DATASOURCE, FORMAT, TYPE, CONF_KEY, SHARED, QOS, TIMESTAMP, KEY, STRICT_VALIDATION); property 'QOS': not an integer"
expect POST /streams 'not json' 400 'the body is not JSON'
expect POST /streams '{"statement": "CREATE STREAM x ()"}' 400 'the body must be {"sql"'
expect GET /streams/nope "" 404 'no stream nope'
expect POST /streams '{"sql":"CREATE STREAM demo (v BIGINT) WITH (DATASOURCE=\"demo\", KEY=\"id\")"}' 400 'stream demo: KEY "id" is not one of its columns'
expect GET /streams "" 200 '[]'
pass "bad streams: SQL with its position, a bad type, FORMAT, option, TYPE, CONF_KEY, push path, QOS, a KEY that is no column, body: 400 each; nothing created"

# The seed engine's docs' first stream, as written (KEY is reserved there
# too), and its schema route.
expect POST /streams '{"sql":"create stream my_stream (id bigint, name string, score float) WITH ( datasource = \"topic/temperature\", FORMAT = \"json\", KEY = \"id\")"}' 201
expect GET /streams/my_stream/schema "" 200 '{"id":{"type":"bigint"},"name":{"type":"string"},"score":{"type":"float"}}'
expect GET /streams/my_stream "" 200 '"KEY":"id"'
expect GET /streams/nope/schema "" 404 'no stream nope'
expect DELETE /streams/my_stream "" 200
pass "the seed engine's example stream with KEY is created as written; GET /streams/{name}/schema gives its columns and types in order"

expect POST /streams '{"sql":"CREATE STREAM demo (v BIGINT, name STRING) WITH (DATASOURCE=\"demo/in\", CONF_KEY=\"local\", QOS=1)"}' 201
expect POST /streams '{"sql":"CREATE STREAM demo () WITH (DATASOURCE=\"other\")"}' 409 'stream demo already exists'
expect GET /streams/demo "" 200 '"fields":[{"name":"v","type":"BIGINT"},{"name":"name","type":"STRING"}]'
grep -qF '"datasource":"demo/in"' "$T/body" && grep -qF '"format":"JSON"' "$T/body" || fail "GET /streams/demo: $(cat "$T/body")"

# ---- bad rules --------------------------------------------------------------------------
A='[{"log": {}}]'
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELEC v FROM demo\", \"actions\": $A}" 400 'sql: '
grep -q 'line 1, column 1' "$T/body" || fail "bad SQL without its position: $(cat "$T/body")"
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT v FROM nope\", \"actions\": $A}" 400 'stream "nope" does not exist'
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT frobnicate(v) FROM demo\", \"actions\": $A}" 400 "unknown function"
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT abs(v, 2) FROM demo\", \"actions\": $A}" 400 'abs'
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT test_sum() FROM demo\", \"actions\": $A}" 400 'test_sum'
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT missing FROM demo\", \"actions\": $A}" 400 'missing'
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT count(*) FROM demo\", \"actions\": $A}" 400 'window'
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"kafka": {}}]}' 400 'unknown action "kafka"'
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"mqtt": {"qos": 1}}]}' 400 "rule r1: actions[0] (mqtt): missing required property 'topic'"
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"mqtt": {"topic": "a/#"}}]}' 400 'no wildcards'
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"http": {"url": "ftp://x"}}]}' 400 'must start with http://'
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {"level": 3}}]}' 400 "rule r1: actions[0] (log): unknown property 'level' (known: sendSingle, enableCache, maxDiskCache, resendInterval)"
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": []}' 400 'non-empty array'
expect POST /rules '{"id": "r 1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}]}' 400 'may only have letters'
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}], "options": {"bufferLength": 0}}' 400 "rule r1: property 'options.bufferLength': out of range (got 0; allowed: uint in [1, 1000000])"
# Every fault of the definition at once, with the closest known name for a typo.
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}], "options": {"speed": 1, "bufferLenght": 5, "qos": 3, "restartStrategy": {"delay": "2x"}}}' 400 "rule r1: unknown property 'options.speed' (known: bufferLength, qos, concurrency, isEventTime, lateTolerance, sendError, sendNilField, restartStrategy); unknown property 'options.bufferLenght' (did you mean 'bufferLength'? known:"
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}], "options": {"speed": 1, "bufferLenght": 5, "qos": 3, "restartStrategy": {"delay": "2x"}}}' 400 "property 'options.qos': out of range (got 3; allowed: int in [0, 2]); property 'options.restartStrategy.delay': not a duration (got \"2x\""
expect POST /rules '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}], "colour": 1}' 400 "rule r1: unknown property 'colour' (known: id, sql, actions, options, triggered)"
expect POST /rules/validate '{"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}]}' 200 '"valid":true'
expect POST /rules/validate "{\"id\": \"r1\", \"sql\": \"SELECT frobnicate(v) FROM demo\", \"actions\": $A}" 400 'unknown function'
# A plugin function's own validate sees the literals (streamkit's scale).
expect POST /rules/validate "{\"id\": \"r1\", \"sql\": \"SELECT scale(v, 2) FROM demo\", \"actions\": $A}" 200
expect POST /rules "{\"id\": \"r1\", \"sql\": \"SELECT scale(v, 'abc') FROM demo\", \"actions\": $A}" 400 "scale: k must be a number, got 'abc'"
# A plugin's validate runs outside the engine's lock: while streamkit's
# slow_check takes 3 s to check one rule, the rules API answers at once.
curl -s -o "$T/slow.body" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "{\"id\": \"rslow\", \"sql\": \"SELECT slow_check(v, 3000) AS v FROM demo\", \"actions\": $A, \"triggered\": false}" \
  "$BASE/rules" >"$T/slow.code" &
SLOW=$!
sleep 0.5
t0=$(date +%s%N)
expect GET /rules "" 200 '[]'
expect POST /rules/validate "{\"id\": \"r1\", \"sql\": \"SELECT v FROM demo\", \"actions\": $A}" 200
took=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$took" -lt 1500 ] || fail "the rules API waited ${took} ms behind a plugin's validate"
wait "$SLOW"
[ "$(cat "$T/slow.code")" = 201 ] || fail "rslow: $(cat "$T/slow.code") $(cat "$T/slow.body")"
expect DELETE /rules/rslow "" 200
pass "a plugin's slow validate holds no other rules call (answered in ${took} ms while it ran)"
expect GET /rules "" 200 '[]'
expect GET /rules/r1 "" 404 'no rule r1'
expect GET /rules/r1/status "" 404 'no rule r1'
expect POST /rules/r1/start "" 404 'no rule r1'
pass "bad rules: SQL with its position, an unknown stream, function, column; wrong arity; an aggregate without a window; bad actions and options: 400 each; validate; nothing created"

# ---- a rule that keeps running through bad messages ----------------------------------------
expect POST /rules "{\"id\": \"rdiv\", \"sql\": \"SELECT 100 / v AS q, upper(name) AS who FROM demo WHERE v IS NOT NULL\",
  \"actions\": [{\"file\": {\"path\": \"$T/rdiv.jsonl\"}}, {\"log\": {}},
                {\"http\": {\"url\": \"http://127.0.0.1:$RPORT/1/buckets/rules/objects\"}}]}" 201
expect POST /rules "{\"id\": \"rerr\", \"sql\": \"SELECT 100 / v AS q FROM demo\", \"options\": {\"sendError\": true},
  \"actions\": [{\"file\": {\"path\": \"$T/rerr.jsonl\"}}]}" 201
expect POST /rules '{"id": "rdiv", "sql": "SELECT v FROM demo", "actions": [{"log": {}}]}' 409 'rule rdiv already exists'
wait_field rdiv status running
wait_field rerr status running
wait_source rdiv demo
pub() { mosquitto_pub -p "$MQTT_PORT" -q 1 -t demo/in -m "$1" || fail "mosquitto_pub $1"; }
pub '{"v": 4, "name": "ann"}'
pub 'this is not JSON'
pub '{"v": "four", "name": "bob"}'
pub '{"v": 0, "name": "cy"}'
pub '[1, 2]'
pub '{"v": 5, "name": "dee"}'
for _ in $(seq 1 100); do [ "$(wc -l <"$T/rdiv.jsonl" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
printf '[{"q":25,"who":"ANN"}]\n[{"q":20,"who":"DEE"}]\n' | diff -u - "$T/rdiv.jsonl" >"$T/diff" \
  || fail "rdiv results: $(cat "$T/diff")"
wait_field rdiv op_1_select_0_exceptions_total 1
[ "$(status_field rdiv source_demo_0_exceptions_total)" = 3 ] || fail "3 malformed messages: $(cat "$T/body")"
grep -q 'division by zero\|divide by zero\|by zero' <<<"$(status_field rdiv op_1_select_0_last_exception)" \
  || fail "last exception: $(cat "$T/body")"
[ "$(status_field rdiv status)" = running ] || fail "rdiv stopped after bad messages"
[ "$(status_field rdiv source_demo_0_records_out_total)" = 3 ] || fail "records out of the source: $(cat "$T/body")"
[ "$(status_field rdiv source_demo_0_connection_status)" = 1 ] || fail "connection status: $(cat "$T/body")"
for _ in $(seq 1 100); do [ "$(wc -l <"$T/rerr.jsonl" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.1; done
sed -n 2p "$T/rerr.jsonl" | grep -q '"error":".*zero' || fail "sendError: $(cat "$T/rerr.jsonl")"
for _ in $(seq 1 100); do [ "$(grep -c '"/1/buckets/rules/objects"' "$T/received.jsonl" 2>/dev/null)" -ge 2 ] && break; sleep 0.1; done
grep '"/1/buckets/rules/objects"' "$T/received.jsonl" | grep -q 'DEE' || fail "http action: $(cat "$T/received.jsonl")"
grep -q 'rule rdiv: \[{"q":25,"who":"ANN"}\]' "$T/daemon.log" || fail "log action line missing"
pass "bad messages (not JSON, a wrong type, an array of non-objects): counted in the status, the rule keeps running; division by zero counted; sendError sends it; file, http and log actions deliver"

# A profile's clientId is a prefix: the stream and an action on the same
# profile are two connections with two ids (one id would make the broker
# drop them in turn).
expect POST /rules '{"id": "rprof", "sql": "SELECT v FROM demo", "actions": [{"mqtt": {"confKey": "local", "topic": "prof/out"}}]}' 201
wait_field rprof sink_mqtt_0_0_connection_status 1
sleep 1
[ "$(status_field rprof sink_mqtt_0_0_connects_total)" = 1 ] && [ "$(status_field rprof source_demo_0_connects_total)" = 1 ] \
  || fail "connections on one profile fight: $(cat "$T/body")"
grep -q 'inferd-local-profile-stream-demo' "$T/broker.log" && grep -q 'inferd-local-profile-rule-rprof-0' "$T/broker.log" \
  || fail "client ids: $(grep -o 'as inferd-[^ ]*' "$T/broker.log" | sort -u)"
expect DELETE /rules/rprof "" 200
pass "a profile's clientId prefixes each connection's id: no two connections fight"

# ---- rule control ------------------------------------------------------------------------
expect POST /rules/rerr/stop "" 200 'Rule rerr was stopped.'
[ "$(status_field rerr status)" = stopped ] || fail "stop: $(cat "$T/body")"
expect GET /rules "" 200 '{"id":"rdiv","status":"running"},{"id":"rerr","status":"stopped"}'
# The seeds' engine's other reads, as its docs' curl requests make them.
expect_json GET /rules/status/all 200 'sorted(j) == ["rdiv", "rerr"] and j["rdiv"]["status"] == "running" and j["rerr"]["status"] == "stopped" and "source_demo_0_records_in_total" in j["rdiv"]'
expect GET /rules/rdiv/topo "" 200 '{"sources":["source_demo"],"edges":{"source_demo":["op_1_select"],"op_1_select":["sink_file_0","sink_log_1","sink_http_2"]}}'
expect GET /rules/nope/topo "" 404 'no rule nope'
[ "$(curl -s -o "$T/body" -w '%{http_code}' "$BASE/ping")" = 200 ] && [ ! -s "$T/body" ] || fail "GET /ping: $(cat "$T/body")"
expect_json GET / 200 'set(j) == {"version", "os", "arch", "upTimeSeconds"} and j["os"] == "Linux"'
pass "GET /rules/status/all (every rule's status by id), /rules/{id}/topo (source, select, sinks), /ping (200, empty) and / (version, os, arch, upTimeSeconds); an unknown rule's topo is 404"
expect POST /rules/rerr/start "" 200
wait_field rerr status running
expect POST /rules/rerr/restart "" 200
wait_field rerr status running
expect PUT /rules/rerr '{"sql": "SELECT v * 2 AS d FROM demo", "actions": [{"file": {"path": "'"$T"'/rerr2.jsonl"}}]}' 200
expect GET /rules/rerr "" 200 'SELECT v * 2 AS d FROM demo'
grep -q '"bufferLength":1024' "$T/body" || fail "options defaults not shown: $(cat "$T/body")"
wait_field rerr status running
wait_source rerr demo
pub '{"v": 21, "name": "x"}'
for _ in $(seq 1 100); do [ -s "$T/rerr2.jsonl" ] && break; sleep 0.1; done
[ "$(cat "$T/rerr2.jsonl")" = '[{"d":42}]' ] || fail "PUT rule: $(cat "$T/rerr2.jsonl" 2>/dev/null)"
expect PUT /rules/rerr '{"sql": "SELECT nope( FROM demo", "actions": [{"log": {}}]}' 400 'sql'
expect GET /rules/rerr "" 200 'SELECT v * 2 AS d FROM demo'
expect DELETE /streams/demo "" 409 'stream demo is read by rules rdiv, rerr'
pass "stop, start, restart, PUT (a bad PUT keeps the old rule); a stream in use cannot be deleted"

# ---- other sources: HTTP push, a file, a portable source; a portable sink ------------------------
printf '{"n": 1}\n{"n": 2}\n\n{"n": 3}\n' >"$T/input.jsonl"
expect POST /streams "{\"sql\":\"CREATE STREAM fromfile () WITH (TYPE=\\\"file\\\", DATASOURCE=\\\"$T/input.jsonl\\\")\"}" 201
expect POST /rules "{\"id\": \"rfile\", \"sql\": \"SELECT sum(n) AS total, count(*) AS c FROM fromfile GROUP BY COUNTWINDOW(3)\",
  \"actions\": [{\"jsonfile\": {\"path\": \"$T/sink.jsonl\", \"sendSingle\": true}}]}" 201
for _ in $(seq 1 100); do [ -s "$T/sink.jsonl" ] && break; sleep 0.1; done
[ "$(cat "$T/sink.jsonl" 2>/dev/null)" = '{"c": 3, "total": 6}' ] || fail "file source through a COUNTWINDOW to a portable sink: $(cat "$T/sink.jsonl" 2>/dev/null)"
expect POST /streams '{"sql":"CREATE STREAM ticks () WITH (TYPE=\"ticker\", DATASOURCE=\"tick-tock\")"}' 201
expect POST /rules "{\"id\": \"rtick\", \"sql\": \"SELECT i, datasource FROM ticks\", \"actions\": [{\"file\": {\"path\": \"$T/ticks.jsonl\", \"sendSingle\": true}}]}" 201
for _ in $(seq 1 100); do [ "$(wc -l <"$T/ticks.jsonl" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.1; done
printf '{"i":0,"datasource":"tick-tock"}\n{"i":1,"datasource":"tick-tock"}\n{"i":2,"datasource":"tick-tock"}\n' \
  | diff -u - "$T/ticks.jsonl" >"$T/diff" || fail "portable source: $(cat "$T/diff")"
expect POST /streams '{"sql":"CREATE STREAM pushed (t FLOAT) WITH (TYPE=\"httppush\", DATASOURCE=\"/readings\")"}' 201
expect POST /push/readings '{"t": 1.5}' 503 'no running rule'
expect POST /rules "{\"id\": \"rpush\", \"sql\": \"SELECT t FROM pushed WHERE t > 1\", \"actions\": [{\"file\": {\"path\": \"$T/pushed.jsonl\", \"sendSingle\": true}}]}" 201
wait_field rpush status running
expect POST /push/readings '[{"t": 1.5}, {"t": 0.5}, {"t": 2}]' 202
expect POST /push/readings 'garbage' 400
expect POST /push/elsewhere '{"t": 1}' 404 'no httppush stream'
for _ in $(seq 1 100); do [ "$(wc -l <"$T/pushed.jsonl" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
printf '{"t":1.5}\n{"t":2.0}\n' | diff -u - "$T/pushed.jsonl" >"$T/diff" || fail "http push: $(cat "$T/diff")"
[ "$(status_field rpush source_pushed_0_exceptions_total)" = 1 ] || fail "the bad push is not counted: $(cat "$T/body")"
pass "sources: a JSON-lines file (COUNTWINDOW into a portable sink), a portable source with its DATASOURCE, HTTP push (503 with no rule, 400 garbage, 404 unknown path)"

# STRICT_VALIDATION (the seed engine's stream option): TRUE, the default
# here, refuses a message whose value a column cannot take; FALSE lets it
# through as it is, and the rule's expressions meet its real type. NULL
# columns are left out of results unless sendNilField; unnamed ones are
# kuiper_field_N.
expect POST /streams '{"sql":"CREATE STREAM sv (size BIGINT, color STRING) WITH (TYPE=\"httppush\", DATASOURCE=\"/sv\", STRICT_VALIDATION=\"maybe\")"}' 400 'STRICT_VALIDATION must be TRUE or FALSE'
expect POST /streams '{"sql":"CREATE STREAM strict (size BIGINT, color STRING) WITH (TYPE=\"httppush\", DATASOURCE=\"/strict\", STRICT_VALIDATION=TRUE)"}' 201
expect POST /streams '{"sql":"CREATE STREAM lenient (size BIGINT, color STRING) WITH (TYPE=\"httppush\", DATASOURCE=\"/lenient\", STRICT_VALIDATION=\"false\")"}' 201
for s in strict lenient; do
  expect POST /rules "{\"id\": \"r$s\", \"sql\": \"SELECT color, size * 2 FROM $s\", \"options\": {\"sendError\": true},
    \"actions\": [{\"file\": {\"path\": \"$T/$s.jsonl\", \"sendSingle\": true}}]}" 201
  wait_field "r$s" status running
done
expect POST /push/strict '{"size": "big", "color": "red"}' 400 "column 'size' is declared BIGINT, got string"
expect POST /push/strict '{"size": 3}' 202
expect POST /push/lenient '[{"size": "big", "color": "red"}, {"size": 3}]' 202
expect POST /rules "{\"id\": \"rnil\", \"sql\": \"SELECT color, size FROM lenient\", \"options\": {\"sendNilField\": true},
  \"actions\": [{\"file\": {\"path\": \"$T/nil.jsonl\", \"sendSingle\": true}}]}" 201
wait_field rnil status running
expect POST /push/lenient '{"size": 4}' 202
for f in strict lenient nil; do
  for _ in $(seq 1 100); do [ "$(wc -l <"$T/$f.jsonl" 2>/dev/null || echo 0)" -ge 1 ] && break; sleep 0.1; done
done
for _ in $(seq 1 100); do [ "$(wc -l <"$T/lenient.jsonl")" -ge 3 ] && break; sleep 0.1; done
printf '{"kuiper_field_0":6}\n' | diff -u - "$T/strict.jsonl" >"$T/diff" || fail "strict: $(cat "$T/diff")"
printf '%s\n' '{"error":"in '"'"'size * 2'"'"': cannot apply * to string and int"}' '{"kuiper_field_0":6}' '{"kuiper_field_0":8}' |
  diff -u - "$T/lenient.jsonl" >"$T/diff" || fail "lenient: $(cat "$T/diff")"
printf '{"color":null,"size":4}\n' | diff -u - "$T/nil.jsonl" >"$T/diff" || fail "sendNilField: $(cat "$T/diff")"
for r in rstrict rlenient rnil; do expect DELETE "/rules/$r" "" 200; done
for s in strict lenient; do expect DELETE "/streams/$s" "" 200; done
pass "STRICT_VALIDATION: TRUE refuses a value its column cannot take, FALSE passes it (the rule's error then), a bad value 400; NULL columns left out unless sendNilField; kuiper_field_N"

# ---- a rule that cannot start: failed, or tried again by its restartStrategy ---------------------
expect POST /rules "{\"id\": \"rnodir\", \"sql\": \"SELECT v FROM demo\", \"actions\": [{\"file\": {\"path\": \"$T/later/out.jsonl\"}}]}" 201
wait_field rnodir status failed
grep -q 'cannot open .*later/out.jsonl' <<<"$(status_field rnodir message)" || fail "failed rule's message: $(cat "$T/body")"
expect POST /rules "{\"id\": \"rretry\", \"sql\": \"SELECT v FROM demo\", \"actions\": [{\"file\": {\"path\": \"$T/later/retry.jsonl\"}}],
  \"options\": {\"restartStrategy\": {\"attempts\": 100, \"delay\": 100, \"multiplier\": 1.5, \"maxDelay\": 300}}}" 201
for _ in $(seq 1 50); do grep -q 'trying again in' <<<"$(status_field rretry message)" && break; sleep 0.1; done
grep -q 'trying again in .* ms (attempt [0-9]* of 100)' <<<"$(status_field rretry message)" || fail "retrying rule: $(cat "$T/body")"
[ "$(status_field rretry status)" = starting ] || fail "a retrying rule is starting: $(cat "$T/body")"
mkdir "$T/later"
wait_field rretry status running 10
expect POST /rules/rnodir/start "" 200
wait_field rnodir status running
pass "a rule whose action cannot open is failed with the reason; with a restartStrategy it is tried again and runs once it can; start after the fix"

# ---- a C function and a C source ---------------------------------------------------------------
expect POST /streams '{"sql":"CREATE STREAM csrc () WITH (TYPE=\"test_source\")"}' 201
expect POST /rules "{\"id\": \"rc\", \"sql\": \"SELECT event, test_sum(1, 2, 0.5) AS total FROM csrc\", \"actions\": [{\"file\": {\"path\": \"$T/c.jsonl\", \"sendSingle\": true}}]}" 201
for _ in $(seq 1 100); do [ -s "$T/c.jsonl" ] && break; sleep 0.1; done
[ "$(cat "$T/c.jsonl" 2>/dev/null)" = '{"event":"started","total":3.5}' ] || fail "C source and function: $(cat "$T/c.jsonl" 2>/dev/null)"
pass "a C plugin's source feeds a stream and its function runs in a rule (arity checked at creation)"

# ---- credentials from a profile -------------------------------------------------------------------
expect POST /streams '{"sql":"CREATE STREAM secured (v BIGINT) WITH (DATASOURCE=\"secure/in\", CONF_KEY=\"secure\")"}' 201
expect POST /rules "{\"id\": \"rsecure\", \"sql\": \"SELECT v + 1 AS w FROM secured\", \"actions\": [{\"file\": {\"path\": \"$T/secure.jsonl\"}}]}" 201
expect POST /rules '{"id": "rwrong", "sql": "SELECT v FROM secured", "actions": [{"mqtt": {"confKey": "wrong", "topic": "x"}}]}' 201
wait_source rsecure secured
mosquitto_pub -p "$SECURE_PORT" -u sensor -P s3cret -t secure/in -m '{"v": 41}' || fail "mosquitto_pub with a password"
for _ in $(seq 1 100); do [ -s "$T/secure.jsonl" ] && break; sleep 0.1; done
[ "$(cat "$T/secure.jsonl" 2>/dev/null)" = '[{"w":42}]' ] || fail "a stream with credentials: $(cat "$T/secure.jsonl" 2>/dev/null)"
for _ in $(seq 1 50); do grep -qi 'not authori' <<<"$(status_field rwrong sink_mqtt_0_0_connection_last_error)" && break; sleep 0.1; done
grep -qi 'not authori' <<<"$(status_field rwrong sink_mqtt_0_0_connection_last_error)" || fail "wrong password: $(cat "$T/body")"
[ "$(status_field rwrong sink_mqtt_0_0_connection_status)" = 0 ] || fail "connected with a wrong password: $(cat "$T/body")"
for r in rsecure rwrong; do expect DELETE "/rules/$r" "" 200; done
expect DELETE /streams/secured "" 200
pass "a profile's username and password: a stream on a broker that wants them reads; a wrong password shows 'not authorised' in the status"

# ---- a retained result -----------------------------------------------------------------------------
expect POST /streams '{"sql":"CREATE STREAM last (v BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/last\")"}' 201
expect POST /rules '{"id": "rlast", "sql": "SELECT v FROM last", "actions": [{"mqtt": {"topic": "state/last", "retained": true, "qos": 1, "sendSingle": true}}]}' 201
wait_field rlast sink_mqtt_0_0_connection_status 1
expect POST /push/last '{"v": 7}' 202
wait_field rlast sink_mqtt_0_0_records_out_total 1
wait_field rlast sink_mqtt_0_0_connection_queued 0 # QoS 1: the broker acknowledged it
# A subscriber that comes after the result still gets it: it was retained.
mosquitto_sub -p "$MQTT_PORT" -t state/last -C 1 -W 10 >"$T/last.out" || fail "no retained result: $(cat "$T/last.out")"
[ "$(cat "$T/last.out")" = '{"v":7}' ] || fail "retained result: $(cat "$T/last.out")"
expect DELETE /rules/rlast "" 200
expect DELETE /streams/last "" 200
pass "an mqtt action with retained: a later subscriber gets the last result"

# ---- stopping a rule during a slow call holds nothing else --------------------------------------
expect POST /streams '{"sql":"CREATE STREAM slowin (ms BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/slowin\")"}' 201
expect POST /rules '{"id": "rslow", "sql": "SELECT sleep_ms(ms) AS slept FROM slowin", "actions": [{"log": {}}]}' 201
wait_field rslow status running
expect POST /push/slowin '{"ms": 4000}' 202
wait_field rslow op_1_select_0_records_in_total 1
curl -s -o "$T/stop.out" -X POST "$BASE/rules/rslow/stop" &
STOP_PID=$!
sleep 0.5
# The stop waits for the 4 s call; the rest of the API does not.
expect GET /streams "" 200 '"slowin"'
expect GET /rules/rslow/status "" 200 '"status":"running"'
kill -0 "$STOP_PID" 2>/dev/null || fail "the stop returned before the slow call did: $(cat "$T/stop.out")"
wait "$STOP_PID"
grep -q 'Rule rslow was stopped.' "$T/stop.out" || fail "stop: $(cat "$T/stop.out")"
[ "$(status_field rslow status)" = stopped ] || fail "after the stop: $(cat "$T/body")"
expect DELETE /rules/rslow "" 200
expect DELETE /streams/slowin "" 200
pass "a stop waits for the rule's slow function call while the other API calls go on"

# ---- /metrics never waits on a change of streams or rules ---------------------------------------
# Replacing a stream stops its rules while holding the engine: here for a
# rule in a 4 s call. A scrape meanwhile answers at once, with the streams
# and rules section of the last scrape.
expect POST /streams '{"sql":"CREATE STREAM slowin2 (ms BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/slowin2\")"}' 201
expect POST /rules '{"id": "rslow2", "sql": "SELECT sleep_ms(ms) AS slept FROM slowin2", "actions": [{"log": {}}]}' 201
wait_field rslow2 status running
curl -s "$BASE/metrics" >/dev/null
expect POST /push/slowin2 '{"ms": 4000}' 202
wait_field rslow2 op_1_select_0_records_in_total 1
curl -s -o "$T/put.out" -X PUT -H 'Content-Type: application/json' \
  -d '{"sql":"CREATE STREAM slowin2 (ms BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/slowin2\")"}' \
  "$BASE/streams/slowin2" &
PUT_PID=$!
sleep 0.5
t=$(curl -s -o "$T/metrics" -w '%{http_code} %{time_total}' "$BASE/metrics")
kill -0 "$PUT_PID" 2>/dev/null || fail "the PUT returned before the slow call did: $(cat "$T/put.out")"
[ "${t%% *}" = 200 ] && awk -v s="${t##* }" 'BEGIN {exit !(s < 1.0)}' ||
  fail "/metrics while a stream change waits for a 4 s call: '$t', want 200 within 1 s"
grep -q '^inferd_rule_running{rule="rslow2"} 1$' "$T/metrics" ||
  fail "/metrics lacks the rules section of the last scrape: $(grep inferd_rule "$T/metrics")"
wait "$PUT_PID"
grep -q 'is updated' "$T/put.out" || fail "the PUT: $(cat "$T/put.out")"
expect DELETE /rules/rslow2 "" 200
expect DELETE /streams/slowin2 "" 200
pass "/metrics answers within a second (the last rules section) while a stream change waits for a 4 s call"

# ---- event time: windows on the messages' own timestamps -----------------------------------------
expect POST /streams '{"sql":"CREATE STREAM timed (ts BIGINT, v BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/timed\", TIMESTAMP=\"when\")"}' 400 'TIMESTAMP "when" is not one of its columns'
expect POST /streams '{"sql":"CREATE STREAM timed (ts BIGINT, v BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/timed\", TIMESTAMP=\"ts\")"}' 201
expect POST /rules '{"id": "rnots", "sql": "SELECT count(*) FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)", "actions": [{"log": {}}], "options": {"isEventTime": true}}' 400 'options.isEventTime: stream demo has no TIMESTAMP'
expect POST /rules '{"id": "rnowin", "sql": "SELECT v FROM timed", "actions": [{"log": {}}], "options": {"isEventTime": true}}' 400 'event time is for queries with a window'
expect POST /rules "{\"id\": \"rtimed\", \"sql\": \"SELECT count(*) AS n, sum(v) AS total, window_start() AS ws, window_end() AS we FROM timed GROUP BY TUMBLINGWINDOW(ss, 10)\",
  \"options\": {\"isEventTime\": true, \"lateTolerance\": 1000}, \"actions\": [{\"file\": {\"path\": \"$T/timed.jsonl\", \"sendSingle\": true}}]}" 201
wait_field rtimed status running
# Window [0, 10 s) gets 1, 2 and 9.6 s (9.6 s after 10.5 s is within the
# 1 s tolerance: the watermark is 9.5 s); 12 s moves the watermark to 11 s
# and closes it; 5 s is then late (dropped, counted); 25 s closes
# [10 s, 20 s) with 10.5 s and 12 s.
for m in '{"ts": 1000, "v": 1}' '{"ts": 2000, "v": 2}' '{"ts": 10500, "v": 10}' '{"ts": 9600, "v": 4}' \
         '{"ts": 12000, "v": 20}' '{"ts": 5000, "v": 100}' '{"ts": 25000, "v": 1000}' '{"v": 7}'; do
  expect POST /push/timed "$m" 202
done
for _ in $(seq 1 100); do [ "$(wc -l <"$T/timed.jsonl" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
printf '{"n":3,"total":7,"ws":0,"we":10000}\n{"n":2,"total":30,"ws":10000,"we":20000}\n' \
  | diff -u - "$T/timed.jsonl" >"$T/diff" || fail "event-time windows: $(cat "$T/diff")"
wait_field rtimed op_1_select_0_dropped_total 1
[ "$(status_field rtimed op_1_select_0_exceptions_total)" = 1 ] || fail "a message without ts: $(cat "$T/body")"
grep -q 'field ts must be milliseconds' <<<"$(status_field rtimed op_1_select_0_last_exception)" || fail "ts error: $(cat "$T/body")"
expect DELETE /rules/rtimed "" 200
expect DELETE /streams/timed "" 200
pass "event time: TUMBLINGWINDOW on the messages' ts with a 1 s tolerance: exact windows, a late message dropped and counted, one without ts an exception"

# ---- concurrency: several messages through a rule at once, results in order ----------------------
expect POST /streams '{"sql":"CREATE STREAM many (v BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/many\")"}' 201
expect POST /rules '{"id": "rwin4", "sql": "SELECT count(*) FROM many GROUP BY COUNTWINDOW(2)", "actions": [{"log": {}}], "options": {"concurrency": 4}}' 400 'options.concurrency: a query with a window'
expect POST /rules "{\"id\": \"rconc\", \"sql\": \"SELECT v, scale(v, 2) AS d FROM many\", \"options\": {\"concurrency\": 4},
  \"actions\": [{\"file\": {\"path\": \"$T/conc.jsonl\", \"sendSingle\": true}}]}" 201
wait_field rconc status running
/usr/bin/python3 -c 'import json; print(json.dumps([{"v": i} for i in range(1, 201)]))' >"$T/many.json"
curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/many.json" "$BASE/push/many" >"$T/code"
[ "$(cat "$T/code")" = 202 ] || fail "push 200 messages: $(cat "$T/code")"
for _ in $(seq 1 100); do [ "$(wc -l <"$T/conc.jsonl" 2>/dev/null || echo 0)" -ge 200 ] && break; sleep 0.1; done
/usr/bin/python3 -c 'import json; [print(json.dumps({"v": i, "d": 2 * i}, separators=(",", ":"))) for i in range(1, 201)]' \
  | diff -u - "$T/conc.jsonl" >"$T/diff" || fail "concurrency 4: results out of order or wrong: $(head -20 "$T/diff")"
expect GET /rules/rconc "" 200 '"concurrency":4'
expect DELETE /rules/rconc "" 200
expect DELETE /streams/many "" 200
pass "concurrency 4: 200 messages through a portable function four at a time, results in arrival order; refused with a window"

# ---- a plugin is not removed from under its streams and rules --------------------------------------
expect DELETE /plugins/portables/streamkit "" 409 'plugin streamkit is used by stream ticks, rule rfile: delete or change them first'
expect GET /plugins/portables/streamkit "" 200 '"status":"running"'
pass "removing a portable plugin whose source, sink or function is in use is refused (409), naming the users"

# ---- deleting ---------------------------------------------------------------------------
for r in rdiv rerr rfile rtick rpush rc rnodir rretry; do expect DELETE "/rules/$r" "" 200 "Rule $r is dropped."; done
expect DELETE /rules/rdiv "" 404
for s in demo fromfile ticks pushed csrc; do expect DELETE "/streams/$s" "" 200 "Stream $s is dropped."; done
expect GET /streams "" 200 '[]'
expect GET /rules "" 200 '[]'
pass "rules and streams deleted"

# ---- a stream shared by two daemons (MQTT 5 shared subscription) ------------------------------
# A second daemon with its own state folder; the broker hands each message
# of the shared subscription to one of them.
INFERD_STATE_DIR="$T/state2" "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/daemon2.log" &
DAEMON2_PID=$!
trap 'kill -KILL $RECEIVER_PID $SECURE_PID $DAEMON2_PID 2>/dev/null; rules_cleanup' EXIT
for _ in $(seq 1 200); do grep -q 'listening on http://' "$T/daemon2.log" && break; sleep 0.05; done
BASE2=$(grep -o 'http://[^ ]*' "$T/daemon2.log" | head -1)
[ -n "$BASE2" ] || fail "the second daemon did not start: $(cat "$T/daemon2.log")"
BASE1=$BASE
for B in "$BASE1" "$BASE2"; do
  BASE=$B
  expect POST /streams '{"sql":"CREATE STREAM work (id BIGINT) WITH (DATASOURCE=\"jobs\", SHARED=\"workers\", QOS=1)"}' 201
  expect POST /rules '{"id": "worker", "sql": "SELECT id FROM work", "actions": [{"mqtt": {"topic": "jobs/done", "sendSingle": true, "qos": 1}}]}' 201
  wait_source worker work
done
sub_start done jobs/done
seq 1 40 | sed 's/.*/{"id": &}/' | mosquitto_pub -p "$MQTT_PORT" -q 1 -t jobs -l || fail "mosquitto_pub jobs"
sub_wait done 40
sub_lines done | sed 's/{"id":\([0-9]*\)}/\1/' | sort -n >"$T/done.txt"
seq 1 40 | diff -u - "$T/done.txt" >"$T/diff" || fail "each job once: $(cat "$T/diff")"
BASE=$BASE1; n1=$(status_field worker source_work_0_records_in_total)
BASE=$BASE2; n2=$(status_field worker source_work_0_records_in_total)
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] && [ $(( n1 + n2 )) -eq 40 ] || fail "shared subscription split $n1 + $n2"
kill -TERM "$DAEMON2_PID"; wait "$DAEMON2_PID" || fail "the second daemon exited with $?"
BASE=$BASE1
pass "SHARED=\"workers\": 40 jobs split $n1 + $n2 between two daemons, each done exactly once"

# ---- definitions that no longer work after a restart are kept, failed, and can be fixed -------------
expect POST /streams '{"sql":"CREATE STREAM ticks2 () WITH (TYPE=\"ticker\")"}' 201
expect POST /streams '{"sql":"CREATE STREAM plain (v BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/plain\")"}' 201
expect POST /rules "{\"id\": \"rscale\", \"sql\": \"SELECT scale(v, 2) AS s FROM plain\", \"actions\": [{\"file\": {\"path\": \"$T/scale.jsonl\", \"sendSingle\": true}}]}" 201
wait_field rscale status running
expect POST /push/plain '{"v": 21}' 202
for _ in $(seq 1 100); do [ -s "$T/scale.jsonl" ] && break; sleep 0.1; done
[ "$(cat "$T/scale.jsonl" 2>/dev/null)" = '{"s":42}' ] || fail "scale: $(cat "$T/scale.jsonl" 2>/dev/null)"
stop_daemon
"$TEST_INFERD" plugin remove streamkit >/dev/null 2>"$T/cli.err" || fail "plugin remove: $(cat "$T/cli.err")"
start_daemon --active test_good
expect GET /streams/ticks2 "" 200 '"error":"stream ticks2: unknown TYPE'
wait_field rscale status failed
grep -q "unknown function 'scale'" <<<"$(status_field rscale message)" || fail "broken rule's message: $(cat "$T/body")"
expect GET /rules "" 200 '{"id":"rscale","status":"failed"}'
expect POST /rules/rscale/start "" 200
wait_field rscale status failed
expect PUT /rules/rscale "{\"sql\": \"SELECT v * 2 AS s FROM plain\", \"actions\": [{\"file\": {\"path\": \"$T/scale.jsonl\", \"sendSingle\": true}}], \"triggered\": true}" 200
wait_field rscale status running
expect POST /push/plain '{"v": 5}' 202
for _ in $(seq 1 100); do [ "$(wc -l <"$T/scale.jsonl")" -ge 2 ] && break; sleep 0.1; done
[ "$(sed -n 2p "$T/scale.jsonl")" = '{"s":10}' ] || fail "fixed rule: $(cat "$T/scale.jsonl")"
expect DELETE /streams/ticks2 "" 200
expect DELETE /rules/rscale "" 200
expect DELETE /streams/plain "" 200
pass "after its plugin was removed with the daemon stopped: the stream and the rule come back failed with the reason, a start stays failed, PUT fixes the rule, DELETE removes both"
stop_daemon

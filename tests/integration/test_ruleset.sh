#!/usr/bin/env bash
# Rulesets as the seed stream engine has them (POST /ruleset/import and
# /ruleset/export): its docs' example file imported by file:// and as
# content, what already exists skipped, each bad entry named with why and
# the rest created, the bad requests refused; and an export imported into
# another daemon (its own state) gives the same streams and rules, running,
# over a real mosquitto.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rules_lib.sh"

start_broker
export INFERD_MQTT_SERVER="$MQTT_SERVER"
start_daemon

# The seed engine's docs' example, as a file.
cat >"$T/ruleset.json" <<'JSON'
{
  "streams": {
    "demo": "CREATE STREAM demo () WITH (DATASOURCE=\"users\", FORMAT=\"JSON\")"
  },
  "tables": {},
  "rules": {
    "rule1": "{\"id\": \"rule1\",\"sql\": \"SELECT * FROM demo\",\"actions\": [{\"log\": {}}]}",
    "rule2": "{\"id\": \"rule2\",\"sql\": \"SELECT * FROM demo\",\"actions\": [{  \"log\": {}}]}"
  }
}
JSON
expect_json POST /ruleset/import 200 'j["streams"] == 1 and j["rules"] == 2 and j["tables"] == 0 and j["skipped"] == [] and j["failed"] == {} and j["message"] == "imported 1 streams, 0 tables and 2 rules"' \
  -d "{\"file\": \"file://$T/ruleset.json\"}"
expect GET /rules "" 200 '[{"id":"rule1","status":"running"},{"id":"rule2","status":"running"}]'
wait_field rule1 source_demo_0_subscribed 1
mosquitto_pub -p "$MQTT_PORT" -q 1 -t users -m '{"name": "ann"}' || fail "mosquitto_pub"
wait_field rule1 sink_log_0_0_records_in_total 1
wait_field rule2 sink_log_0_0_records_in_total 1
# Again, as content: everything exists already.
content=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"content": open(sys.argv[1]).read()}))' "$T/ruleset.json")
expect_json POST /ruleset/import 200 'j["streams"] == 0 and j["rules"] == 0 and j["skipped"] == ["demo", "rule1", "rule2"]' -d "$content"
pass "the seed engine's example ruleset: imported from a file:// URL (1 stream, 2 rules, running, a message reaches both); imported again as content, all of it skipped"

# Bad entries: each named with why, the good one created.
bad=$(/usr/bin/python3 -c 'import json; print(json.dumps({"content": json.dumps({
  "streams": {"broken": "CREATE STREM broken ()", "num": 42},
  "tables": {"t": "CREATE TABLE t () WITH (DATASOURCE=\"x\")"},
  "rules": {"r3": "{\"sql\": \"SELECT * FROM nope\", \"actions\": [{\"log\": {}}]}",
            "r4": {"sql": "SELECT name FROM demo", "actions": [{"log": {}}]},
            "r5": "not json"}})}))')
expect_json POST /ruleset/import 200 'j["streams"] == 0 and j["rules"] == 1 and sorted(j["failed"]) == ["rule r3", "rule r5", "stream broken", "stream num", "table t"] and "expected STREAM" in j["failed"]["stream broken"] and "not a CREATE STREAM statement" in j["failed"]["stream num"] and "tables are not supported" in j["failed"]["table t"] and "stream \"nope\" does not exist" in j["failed"]["rule r3"]' -d "$bad"
expect GET /rules/r4 "" 200 '"id":"r4"'
expect GET /streams/broken "" 404
pass "bad entries (a bad statement, a stream that is no string, a table, a rule on a missing stream, a rule that is not JSON): each named in failed with why; the good rule (its id from its key) created"

# Bad requests: 400 each, nothing created.
expect POST /ruleset/import '{"x": 1}' 400 'the body must be {"content": "<the ruleset'"'"'s JSON as a string>"} or {"file": "file:///path/ruleset.json"}'
expect POST /ruleset/import '{"file": "/tmp/x.json"}' 400 '"file" must be a file:/// URL of a file on this machine'
expect POST /ruleset/import "{\"file\": \"file://$T/nope.json\"}" 400 "the ruleset: $T/nope.json does not exist"
expect POST /ruleset/import '{"content": "[1, 2]"}' 400 'a ruleset is a JSON object of "streams", "tables" and "rules"'
expect POST /ruleset/import '{"content": "{\"streams\": "}' 400 'the ruleset: '
pass "an import body of neither content nor file, a file that is no file:/// URL or is not there, content that is no object or no JSON: 400 each"

# Export, and import into another daemon with its own state; rule2 is
# stopped on purpose and must stay so.
expect POST /rules/rule2/stop "" 200
api POST /ruleset/export ""
[ "$(cat "$T/code")" = 200 ] || fail "export: $(cat "$T/code") $(cat "$T/body")"
cp "$T/body" "$T/exported.json"
/usr/bin/python3 - "$T/exported.json" <<'PY' || fail "export: $(cat "$T/exported.json")"
import json, sys
x = json.load(open(sys.argv[1]))
assert x["tables"] == {}, x
assert x["streams"] == {"demo": 'CREATE STREAM demo () WITH (DATASOURCE="users", FORMAT="JSON")'}, x
assert sorted(x["rules"]) == ["r4", "rule1", "rule2"], x
r1 = json.loads(x["rules"]["rule1"])
assert r1["id"] == "rule1" and r1["sql"] == "SELECT * FROM demo" and r1["actions"] == [{"log": {}}], r1
assert r1["triggered"] is True and json.loads(x["rules"]["rule2"])["triggered"] is False, x["rules"]
PY
stop_daemon
export INFERD_STATE_DIR="$T/state2"
start_daemon
expect GET /rules "" 200 '[]'
content=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"content": open(sys.argv[1]).read()}))' "$T/exported.json")
expect_json POST /ruleset/import 200 'j["streams"] == 1 and j["rules"] == 3 and j["failed"] == {}' -d "$content"
expect GET /rules "" 200 '[{"id":"r4","status":"running"},{"id":"rule1","status":"running"},{"id":"rule2","status":"stopped"}]'
wait_field r4 source_demo_0_subscribed 1
mosquitto_pub -p "$MQTT_PORT" -q 1 -t users -m '{"name": "bob"}' || fail "mosquitto_pub"
wait_field r4 sink_log_0_0_records_in_total 1
stop_daemon
pass "an export (the stream's statement, each rule's JSON with its options and whether it runs) imported into a daemon with its own state: the same stream and 3 rules, the stopped one still stopped"

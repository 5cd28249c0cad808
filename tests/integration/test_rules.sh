#!/usr/bin/env bash
# Streams and rules end to end, with a real mosquitto broker on a loopback
# port, real clients (mosquitto_pub, mosquitto_sub) and the real daemon:
#   - the flow of seed 004: JPEG bytes on a BINARY stream, labelImage (the
#     portable Python example) in the rule, labels on the output topic;
#   - the flow of seed 003: JSON messages with a base64 image, the portable
#     defect function in SELECT and WHERE, results on the output topic;
#   - both again with the built-in estimators as functions;
#   - a tumbling window with exact counts and averages;
#   - the broker stopped and started mid-stream: the rule reconnects, what
#     it produced meanwhile waits in its buffer and arrives, its status
#     says what happened;
#   - the daemon restarted: streams and rules come back, after the portable
#     plugin they call, and run.
# docs/rules.md has the same flows as its tutorial.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rules_lib.sh"

PKG="$T/packages"
MSG="$T/messages"
mkdir -p "$PKG" "$MSG"
/usr/bin/python3 "$TEST_SRCDIR/plugins/examples/python/pack.py" "$PKG" pyai defect >/dev/null \
  || fail "pack.py could not pack pyai and defect"
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/rules_data.py" "$TEST_DATA" "$MSG" \
  || fail "rules_data.py"
N_IMAGES=$(wc -l <"$MSG/labels.txt")
N_SCRATCH=$(wc -l <"$MSG/defects.txt")

# Persistent: the broker restart below keeps a subscriber's session.
BROKER_PERSIST=1 start_broker
export INFERD_MQTT_SERVER="$MQTT_SERVER"
# A name the config defines (the density family) is a function like the built-in ones.
export INFERD_ESTIMATORS='{"crowdFamily": {"type": "density"}}'
start_daemon
# As the seeds install them: 004 on /plugins/portables, 003 on /plugins/functions.
expect POST /plugins/portables "{\"name\":\"pyai\", \"file\": \"file://$PKG/pyai.zip\"}" 201 '"status":"running"'
expect POST /plugins/functions "{\"name\":\"defect\", \"file\": \"file://$PKG/defect.zip\"}" 201 '"status":"running"'

# ---- seed 004: labelImage over JPEG bytes ------------------------------------------------
expect POST /streams '{"sql":"CREATE STREAM tfdemo () WITH (DATASOURCE=\"tfdemo\", FORMAT=\"BINARY\")"}' \
  201 'Stream tfdemo is created.'
expect POST /rules "{
  \"id\": \"ruleTf\",
  \"sql\": \"SELECT labelImage(self)[0]->label as label FROM tfdemo\",
  \"actions\": [{\"mqtt\": {\"server\": \"$MQTT_SERVER\", \"sendSingle\": true, \"topic\": \"ekuiper/labels\"}}]
}" 201 'Rule ruleTf was created successfully.'
wait_field ruleTf status running
wait_source ruleTf tfdemo
sub_start labels ekuiper/labels
for f in "$MSG"/jpeg/*.jpg; do
  mosquitto_pub -p "$MQTT_PORT" -q 1 -t tfdemo -f "$f" || fail "mosquitto_pub $f"
done
sub_wait labels "$N_IMAGES"
sub_lines labels | sed 's/^{"label":"\(.*\)"}$/\1/' >"$T/got_labels.txt"
diff -u "$MSG/labels.txt" "$T/got_labels.txt" >"$T/diff" \
  || fail "labels differ from the truth: $(cat "$T/diff")"
[ "$(status_field ruleTf source_tfdemo_0_records_in_total)" = "$N_IMAGES" ] \
  || fail "ruleTf records in: $(cat "$T/body")"
[ "$(status_field ruleTf sink_mqtt_0_0_records_out_total)" = "$N_IMAGES" ] \
  || fail "ruleTf sink records out: $(cat "$T/body")"
pass "seed 004: $N_IMAGES JPEG images published to tfdemo, $N_IMAGES right labels on ekuiper/labels ({\"label\":...} each)"

# ---- seed 003: inference(image) on base64 JSON messages ------------------------------------
expect POST /streams '{"sql":"CREATE STREAM openvino_demo () WITH (DATASOURCE=\"openvino_demo\")"}' 201
expect POST /rules "{
  \"id\": \"ruleOp\",
  \"sql\": \"SELECT image as origin, inference(image)->base64 as afterProcess from openvino_demo WHERE inference(image)->defect >=0\",
  \"actions\": [{\"mqtt\": {\"server\": \"$MQTT_SERVER\", \"sendSingle\": true, \"topic\": \"ekuiper/defect\"}}]
}" 201
# The same stream, a second rule that keeps the counts, to check them.
expect POST /rules '{"id": "ruleOpCount", "sql": "SELECT inference(image)->defect AS defect FROM openvino_demo WHERE inference(image)->defect >= 0", "actions": [{"mqtt": {"topic": "ekuiper/defect_count", "sendSingle": true}}]}' 201
wait_field ruleOp status running
wait_field ruleOpCount status running
wait_source ruleOp openvino_demo
sub_start defect ekuiper/defect
sub_start defect_count ekuiper/defect_count
mosquitto_pub -p "$MQTT_PORT" -q 1 -t openvino_demo -l <"$MSG/scratches.jsonl" || fail "mosquitto_pub -l"
sub_wait defect "$N_SCRATCH"
sub_wait defect_count "$N_SCRATCH"
sub_lines defect >"$T/defect.jsonl"
/usr/bin/python3 - "$T/defect.jsonl" "$MSG/images.txt" <<'PY' || fail "ruleOp results"
import base64, json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [l.strip() for l in open(sys.argv[2])]
assert len(got) == len(want), (len(got), len(want))
for g, w in zip(got, want):
    assert set(g) == {"origin", "afterProcess"}, g.keys()
    assert g["origin"] == w, "origin is not the image sent"
    jpeg = base64.b64decode(g["afterProcess"])
    assert jpeg[:2] == b"\xff\xd8", "afterProcess is not a JPEG"
PY
sub_lines defect_count | sed 's/^{"defect":\([0-9]*\)}$/\1/' >"$T/got_defects.txt"
diff -u "$MSG/defects.txt" "$T/got_defects.txt" >"$T/diff" \
  || fail "defect counts differ from the truth: $(cat "$T/diff")"
pass "seed 003: $N_SCRATCH base64 images on openvino_demo; origin and a JPEG afterProcess each on ekuiper/defect; counts right"

# ---- the same flows with the built-in estimators as functions --------------------------------
expect POST /rules '{"id": "ruleTfBuiltin", "sql": "SELECT label_image(self)->labels[0]->label AS label FROM tfdemo", "actions": [{"mqtt": {"topic": "builtin/labels", "sendSingle": true}}]}' 201
expect POST /rules '{"id": "ruleOpBuiltin", "sql": "SELECT defects(image)->count AS defect, image AS origin FROM openvino_demo WHERE defects(image)->count >= 0", "actions": [{"mqtt": {"topic": "builtin/defect", "sendSingle": true}}]}' 201
wait_field ruleTfBuiltin status running
wait_field ruleOpBuiltin status running
wait_source ruleTfBuiltin tfdemo
wait_source ruleOpBuiltin openvino_demo
sub_start blabels builtin/labels
sub_start bdefect builtin/defect
for f in "$MSG"/jpeg/*.jpg; do
  mosquitto_pub -p "$MQTT_PORT" -q 1 -t tfdemo -f "$f" || fail "mosquitto_pub $f"
done
mosquitto_pub -p "$MQTT_PORT" -q 1 -t openvino_demo -l <"$MSG/scratches.jsonl" || fail "mosquitto_pub -l"
sub_wait blabels "$N_IMAGES"
sub_wait bdefect "$N_SCRATCH"
sub_lines blabels | sed 's/^{"label":"\(.*\)"}$/\1/' >"$T/got_blabels.txt"
diff -u "$MSG/labels.txt" "$T/got_blabels.txt" >"$T/diff" \
  || fail "imageLabelEstimator labels differ from the truth: $(cat "$T/diff")"
sub_lines bdefect | /usr/bin/python3 -c 'import json,sys; [print(json.loads(l)["defect"]) for l in sys.stdin]' \
  >"$T/got_bdefects.txt"
diff -u "$MSG/defects.txt" "$T/got_bdefects.txt" >"$T/diff" \
  || fail "defectEstimator counts differ from the truth: $(cat "$T/diff")"
pass "built-in estimators as functions: label_image(self) and defects(image) right on every image"

expect POST /streams '{"sql":"CREATE STREAM crowd () WITH (DATASOURCE=\"crowd\", FORMAT=\"BINARY\")"}' 201
expect POST /rules "{\"id\": \"ruleCount\", \"sql\": \"SELECT people_count(self)->count AS n, peopleCountEstimator(self, parse_json('{\\\"targets\\\": \\\"T2\\\"}')) AS t2, crowdFamily(self)->count AS fam FROM crowd\", \"actions\": [{\"mqtt\": {\"topic\": \"crowd/count\", \"sendSingle\": true}}]}" 201
wait_field ruleCount status running
wait_source ruleCount crowd
sub_start crowd crowd/count
for f in "$MSG"/dots/*; do mosquitto_pub -p "$MQTT_PORT" -q 1 -t crowd -f "$f" || fail "mosquitto_pub $f"; done
N_DOTS=$(wc -l <"$MSG/people.txt")
sub_wait crowd "$N_DOTS"
sub_lines crowd >"$T/crowd.jsonl"
/usr/bin/python3 - "$T/crowd.jsonl" "$MSG/people.txt" <<'PY' || fail "people counts: $(cat "$T/crowd.jsonl")"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [int(l) for l in open(sys.argv[2])]
assert [g["n"] for g in got] == want, ([g["n"] for g in got], want)
assert [g["t2"] for g in got] == [{"count": w} for w in want], [g["t2"] for g in got]
assert [g["fam"] for g in got] == want, [g["fam"] for g in got]
PY
pass "people_count(self), peopleCountEstimator(self, options) and crowdFamily(self) (a name the config defines) right on $N_DOTS images"

# ---- a tumbling window: exact counts and averages --------------------------------------------
expect POST /streams '{"sql":"CREATE STREAM readings (sensor STRING, temperature FLOAT) WITH (DATASOURCE=\"sensors/+/reading\")"}' 201
expect POST /rules '{"id": "ruleWindow", "sql": "SELECT count(*) AS n, avg(temperature) AS avg_t, min(temperature) AS lo, max(temperature) AS hi, collect(sensor) AS sensors FROM readings GROUP BY TUMBLINGWINDOW(ss, 2)", "actions": [{"mqtt": {"topic": "stats/window", "sendSingle": true}}]}' 201
wait_field ruleWindow status running
wait_source ruleWindow readings
sub_start window stats/window
# Each burst goes right after a window boundary (a burst takes well under a second).
wait_until_boundary() { # sleeps to 150 ms after the next 2 s boundary
  local now; now=$(date +%s%3N)
  local ms=$(( 2000 - now % 2000 + 150 ))
  sleep "$(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))"
}
publish_readings() { # COUNT FIRST_TEMPERATURE
  for i in $(seq 0 $(( $1 - 1 ))); do
    echo "{\"sensor\": \"s$i\", \"temperature\": $(( $2 + i ))}"
  done | mosquitto_pub -p "$MQTT_PORT" -q 1 -t "sensors/s1/reading" -l || fail "mosquitto_pub readings"
}
wait_until_boundary; publish_readings 5 10   # 10..14: avg 12
wait_until_boundary; publish_readings 8 20   # 20..27: avg 23.5
sub_wait window 2 10
sub_lines window >"$T/window.jsonl"
/usr/bin/python3 - "$T/window.jsonl" <<'PY' || fail "window results: $(cat "$T/window.jsonl")"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])][:2]
assert got[0] == {"n": 5, "avg_t": 12.0, "lo": 10.0, "hi": 14.0,
                  "sensors": ["s0", "s1", "s2", "s3", "s4"]}, got[0]
assert got[1] == {"n": 8, "avg_t": 23.5, "lo": 20.0, "hi": 27.0,
                  "sensors": [f"s{i}" for i in range(8)]}, got[1]
PY
pass "TUMBLINGWINDOW(ss, 2): two windows of 5 and 8 readings, exact count, avg, min, max, collect"

# ---- the broker lost and back -------------------------------------------------------------------
# Input over HTTP push, output over MQTT: while the broker is down the rule
# keeps producing, its action's buffer holds the results, and they arrive
# once the broker is back. A buffer of 4 drops the rest, counted.
expect POST /streams '{"sql":"CREATE STREAM pushed (v BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/pushed\")"}' 201
expect POST /rules '{"id": "rulePush", "sql": "SELECT v * 10 AS v10 FROM pushed", "actions": [{"mqtt": {"topic": "pushed/out", "sendSingle": true, "qos": 1}}], "options": {"bufferLength": 4}}' 201
wait_field rulePush status running
wait_field rulePush sink_mqtt_0_0_connection_status 1
# The subscriber has a session (-c, a fixed id, QoS 1) that the broker keeps
# across its restart: what the rule sends as soon as it is back (perhaps
# before a new subscriber could subscribe) waits there for it.
sub_start pushed pushed/out -c -i rules-test-pushed
expect POST /push/pushed '{"v": 1}' 202
sub_wait pushed 1
sub_stop pushed
stop_broker
wait_field rulePush sink_mqtt_0_0_connection_status 0
[ -n "$(status_field rulePush sink_mqtt_0_0_connection_last_error)" ] || fail "no last error while the broker is down: $(cat "$T/body")"
for v in 2 3 4 5 6 7; do expect POST /push/pushed "{\"v\": $v}" 202; done
wait_field rulePush sink_mqtt_0_0_records_in_total 7
[ "$(status_field rulePush sink_mqtt_0_0_dropped_total)" = 2 ] \
  || fail "with the broker down and a buffer of 4, 2 of 6 results must be dropped: $(cat "$T/body")"
BROKER_PERSIST=1 start_broker "$MQTT_PORT"
sub_start pushed2 pushed/out -c -i rules-test-pushed
wait_field rulePush sink_mqtt_0_0_connection_status 1 30
sub_wait pushed2 4
sub_lines pushed2 >"$T/pushed.jsonl"
printf '{"v10":20}\n{"v10":30}\n{"v10":40}\n{"v10":50}\n' | diff -u - "$T/pushed.jsonl" >"$T/diff" \
  || fail "results buffered while the broker was down: $(cat "$T/diff")"
[ "$(status_field rulePush sink_mqtt_0_0_connects_total)" = 2 ] && \
  [ "$(status_field rulePush sink_mqtt_0_0_disconnects_total)" = 1 ] || fail "reconnect counters: $(cat "$T/body")"
# The MQTT streams reconnect too: the labels flow goes on.
wait_source ruleTf tfdemo
sub_start labels2 ekuiper/labels
mosquitto_pub -p "$MQTT_PORT" -q 1 -t tfdemo -f "$MSG/jpeg/02.jpg" || fail "mosquitto_pub after restart"
sub_wait labels2 1
[ "$(sub_lines labels2)" = "{\"label\":\"$(sed -n 3p "$MSG/labels.txt")\"}" ] || fail "label after the broker restart: $(sub_lines labels2)"
expect GET /metrics "" 200 'inferd_rule_dropped_total 2'
grep -qF 'inferd_rule_records{rule="rulePush",counter="dropped"} 2' "$T/body" \
  && grep -qF 'inferd_rule_running{rule="ruleTf"} 1' "$T/body" || fail "per-rule metrics: $(grep inferd_rule "$T/body")"
pass "broker stopped mid-stream: status shows the lost connection, 4 results buffered and delivered after it came back, 2 dropped and counted; sources reconnect"

# ---- the daemon restarted -------------------------------------------------------------------------
expect POST /rules/ruleOpBuiltin/stop "" 200
stop_daemon
start_daemon
expect GET /streams "" 200 '["crowd","openvino_demo","pushed","readings","tfdemo"]'
wait_field ruleTf status running 60
wait_field ruleOp status running 60
[ "$(status_field ruleOpBuiltin status)" = stopped ] || fail "a stopped rule came back running: $(cat "$T/body")"
wait_source ruleTf tfdemo
sub_start labels3 ekuiper/labels
mosquitto_pub -p "$MQTT_PORT" -q 1 -t tfdemo -f "$MSG/jpeg/05.jpg" || fail "mosquitto_pub after the daemon restart"
sub_wait labels3 1
[ "$(sub_lines labels3)" = "{\"label\":\"$(sed -n 6p "$MSG/labels.txt")\"}" ] || fail "label after the daemon restart: $(sub_lines labels3)"
grep -q 'restored 5 streams and 8 rules' "$T/daemon.log" || fail "no restore line in the log"
pass "daemon restarted: 5 streams and 8 rules restored, running ones running again (after pyai), a stopped one stopped; labels flow"
stop_daemon

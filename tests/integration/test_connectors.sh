#!/usr/bin/env bash
# The pipeline connectors with real peers (connectors_check.py): mqtt_source
# and mqtt_sink through a real mosquitto, driven by mosquitto_pub and
# mosquitto_sub; http_sink against a local receiver that fails then
# recovers, and a slow one (drops counted); and what bad settings get.
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}"
here=$(cd "$(dirname "$0")" && pwd)
check() { /usr/bin/python3 "$here/connectors_check.py" "$BASE" "$TEST_DATA" "$1" \
  "$TEST_SRCDIR/examples/pipelines/count_dots.json" || fail "connectors_check.py $1"; }

start_broker
export INFERD_MQTT_SERVER="$MQTT_SERVER"
start_daemon
check mqtt
check http

# Bad settings are refused when the pipeline is made, each with its reason.
refused() { # NAME ELEMENT-JSON NEEDLE
  local body="{\"$1\": {\"in\": {\"factory\": \"appsrc\", \"next\": \"s\"}, \"s\": $2}}"
  local code
  code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$BASE/v1/pipelines")
  [ "$code" = 400 ] && grep -qF -- "$3" "$T/body" || fail "$1: $code $(cat "$T/body"), want 400 with '$3'"
}
refused a '{"factory": "http_sink", "props": {"url": "ftp://x"}}' 'url \"ftp://x\" must start with http:// or https://'
refused b '{"factory": "http_sink", "props": {"url": "http://x", "method": "GET"}}' "property 'method'"
refused c '{"factory": "mqtt_sink", "props": {"topic": "a/#"}}' 'has no wildcards'
refused d '{"factory": "mqtt_sink", "props": {"topic": "a", "confKey": "nope"}}' 'no MQTT connection profile \"nope\"'
refused e '{"factory": "mqtt_sink", "props": {}}' "property 'topic'"
pass "bad connector settings: 400 with the reason (scheme, method, a wildcard to publish to, an unknown profile, a missing topic)"
stop_daemon

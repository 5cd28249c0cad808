#!/usr/bin/env bash
# MQTT over TLS: a mosquitto that serves TLS only and asks for client
# certificates (all made here by openssl), a stream and a rule of the daemon
# on it through mqtt.server ssl://... with mqtt.tls_ca, tls_cert, tls_key,
# mosquitto_pub and mosquitto_sub as the clients; a profile with the wrong
# CA cannot connect and says so; a certificate without its key is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rules_lib.sh"
cd "$T" || fail "cd"
make_certs "$T"

BROKER_EXTRA="cafile $T/ca.pem
certfile $T/server.pem
keyfile $T/server.key
require_certificate true" start_broker
TLS_ARGS=(--cafile "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key")
mosquitto_pub -p "$MQTT_PORT" -t probe -m x -q 1 2>/dev/null && fail "the broker took a plain client"

export INFERD_MQTT_SERVER="ssl://127.0.0.1:$MQTT_PORT" INFERD_MQTT_TLS_CA="$T/ca.pem" \
       INFERD_MQTT_TLS_CERT="$T/client.pem" INFERD_MQTT_TLS_KEY="$T/client.key"
export INFERD_MQTT_PROFILES="{\"other\": {\"tlsCa\": \"$T/rogue.pem\"}}"
start_daemon
expect POST /streams '{"sql":"CREATE STREAM nums () WITH (DATASOURCE=\"nums\", FORMAT=\"JSON\")"}' 201
expect POST /rules '{"id": "double", "sql": "SELECT n * 2 AS twice FROM nums", "actions": [{"mqtt": {"topic": "nums/out", "sendSingle": true, "qos": 1}}]}' 201
wait_source double nums
wait_field double sink_mqtt_0_0_connection_status 1
sub_start out nums/out "${TLS_ARGS[@]}"
for n in 1 2 3; do mosquitto_pub -p "$MQTT_PORT" "${TLS_ARGS[@]}" -t nums -q 1 -m "{\"n\": $n}" || fail "mosquitto_pub over TLS"; done
sub_wait out 3 20
[ "$(sub_lines out | tr '\n' ' ')" = '{"twice":2} {"twice":4} {"twice":6} ' ] || fail "results: $(sub_lines out)"
pass "a stream and a rule over TLS (ssl://, the CA, a client certificate the broker asks for): 3 messages in, 3 results out"

# A profile whose CA did not sign the broker: no connection, and why.
expect POST /streams '{"sql":"CREATE STREAM bad () WITH (DATASOURCE=\"bad\", FORMAT=\"JSON\", CONF_KEY=\"other\")"}' 201
expect POST /rules '{"id": "nope", "sql": "SELECT * FROM bad", "actions": [{"log": {}}]}' 201
for _ in $(seq 1 100); do
  err=$(status_field nope source_bad_0_connection_last_error)
  [ -n "$err" ] && break
  sleep 0.1
done
[ "$(status_field nope source_bad_0_connection_status)" = 0 ] && [ -n "$err" ] || fail "a broker the CA did not sign: $(cat "$T/body")"
pass "a profile with another CA does not connect; its status says why ($err)"

# A client certificate without its key is refused where it is used.
export INFERD_MQTT_PROFILES="{\"half\": {\"tlsCert\": \"$T/client.pem\", \"tlsKey\": \"\"}}"
stop_daemon
INFERD_MQTT_TLS_KEY= start_daemon
expect POST /streams '{"sql":"CREATE STREAM h () WITH (DATASOURCE=\"h\", FORMAT=\"JSON\")"}' 201
expect POST /rules '{"id": "h", "sql": "SELECT * FROM h", "actions": [{"log": {}}]}' 201
wait_field h status failed 10
grep -qF 'a client certificate and its key go together' "$T/body" || fail "the rule's status: $(cat "$T/body")"
pass "a client certificate without its key: the rule fails at start, saying why"

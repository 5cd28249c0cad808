#!/usr/bin/env bash
# Tokens and passwords are never printed or returned: `inferd config` shows
# "***" for http.token and for an MQTT profile's password; GET /rules/{id}
# shows "***" for an action's password and Authorization header; the state
# database that holds them is 0600 in a 0700 folder.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rules_lib.sh"
INFERD_HTTP_TOKEN=tok-s3cret INFERD_MQTT_PROFILES='{"p1": {"server": "tcp://127.0.0.1:1", "username": "u", "password": "pw-s3cret"}}' \
  "$TEST_INFERD" config >"$T/config" || fail "inferd config"
! grep -q "s3cret" "$T/config" || fail "inferd config prints a secret: $(grep s3cret "$T/config")"
grep -q '^http.token *= "\*\*\*"' "$T/config" || fail "http.token is not shown masked: $(grep http.token "$T/config")"
grep -q '"password":"\*\*\*"' "$T/config" || fail "the profile's password is not masked: $(grep mqtt.profiles "$T/config")"
grep -q '"username":"u"' "$T/config" || fail "what is not secret is hidden too: $(grep mqtt.profiles "$T/config")"
pass "inferd config masks http.token and passwords, and only those"

start_daemon
expect POST /streams '{"sql": "CREATE STREAM s (n BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/s\")"}' 201
expect POST /rules '{"id": "r", "sql": "SELECT n FROM s", "triggered": false, "actions": [{"mqtt": {"server": "tcp://127.0.0.1:1", "topic": "t", "username": "u", "password": "pw-s3cret"}}, {"rest": {"url": "http://127.0.0.1:1/x", "headers": {"Authorization": "Bearer tok-s3cret", "X-Id": "7"}}}]}' 201
expect GET /rules/r "" 200 '"password":"***"'
! grep -q "s3cret" "$T/body" || fail "GET /rules/r returns a secret: $(cat "$T/body")"
grep -q '"Authorization":"\*\*\*"' "$T/body" && grep -q '"X-Id":"7"' "$T/body" ||
  fail "the Authorization header is not masked (or X-Id is): $(cat "$T/body")"
mode=$(stat -c %a "$INFERD_STATE_DIR/inferd.db")
[ "$mode" = 600 ] || fail "inferd.db is $mode, want 600"
dmode=$(stat -c %a "$INFERD_STATE_DIR")
[ "$dmode" = 700 ] || fail "the state folder is $dmode, want 700"
stop_daemon
pass "GET /rules/{id} masks passwords and Authorization; inferd.db 0600 in a 0700 folder"

# A read-only state folder is said to be one (it was reported as "in use by
# a running daemon"). Needs a read-only mount: root only.
if [ "$(id -u)" = 0 ] && mkdir -p "$T/ro" && mount -t tmpfs -o size=1m,ro tmpfs "$T/ro" 2>/dev/null; then
  rc=0
  INFERD_STATE_DIR="$T/ro" "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/ro.log" || rc=$?
  umount "$T/ro"
  [ "$rc" != 0 ] && grep -q "state.dir $T/ro.*: Read-only file system" "$T/ro.log" &&
    ! grep -q "in use" "$T/ro.log" ||
    fail "a read-only state folder: exit $rc: $(tail -3 "$T/ro.log")"
  pass "a read-only state folder: the start fails saying so"
else
  echo "ok - NOT CHECKED: a read-only state folder (needs root to mount one)"
fi

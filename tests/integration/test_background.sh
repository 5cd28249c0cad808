#!/usr/bin/env bash
# Background components: the teapot example (the plugin seed's background
# plugin) with its routes and its periodic work, started after the server
# listens and closed at stop; what a plugin route answers when its handler
# fails or the method is wrong; and the routes and starts that stop the
# daemon from starting: a route on the built-in API, a path two plugins
# declare, a start that fails.
. "$(dirname "$0")/lib.sh"
: "${TEST_BUILD_DIR:?}" "${TEST_PLUGIN_DIR:?}"

# expect_header NAME VALUE: the last response's header (curl -D "$T/headers").
expect_header() {
  grep -qi "^$1: $2"$'\r'"\?$" "$T/headers" || fail "header $1: $2 missing: $(cat "$T/headers")"
}

# ---- teapot ----------------------------------------------------------------
export INFERD_PLUGIN_SETTINGS='{"teapot": {"intervalMs": 20}}'
start_daemon --active teapot
grep -q 'background teapot (plugin teapot 1.0.0) started (3 routes)' "$T/daemon.log" \
  || fail "no start line for teapot"

code=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "$BASE/teapot") || fail "curl /teapot"
[ "$code" = 418 ] || fail "GET /teapot: $code"
[ "$(cat "$T/body")" = "I am teapot" ] || fail "GET /teapot body: $(cat "$T/body")"
expect_header Content-Type text/plain
pass "GET /teapot: 418 'I am teapot', text/plain"

code=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "$BASE/teapot/version") \
  || fail "curl /teapot/version"
[ "$code" = 200 ] && [ "$(cat "$T/body")" = T800 ] || fail "GET /teapot/version: $code $(cat "$T/body")"
expect_header Content-Type text/plain
pass "GET /teapot/version: 200 T800"

code=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' -X POST "$BASE/teapot") \
  || fail "curl POST /teapot"
[ "$code" = 405 ] || fail "POST /teapot: $code"
grep -q '"code":"method_not_allowed"' "$T/body" || fail "POST /teapot body: $(cat "$T/body")"
grep -q 'POST /teapot: background teapot (plugin teapot 1.0.0) allows only GET, HEAD' "$T/body" \
  || fail "POST /teapot message: $(cat "$T/body")"
expect_header Allow "GET, HEAD"
pass "POST /teapot: 405 naming the allowed methods"

code=$(curl -s -o /dev/null -w '%{http_code}' -I "$BASE/teapot") || fail "curl HEAD /teapot"
[ "$code" = 418 ] || fail "HEAD /teapot: $code"
expect_http GET /teapot/nope 404 '"code":"not_found"'
pass "HEAD is served by GET; an undeclared path under /teapot is 404"

# The water warms every 20 ms: the temperature rises, then stops at 100.
temperature() {
  curl -sf "$BASE/teapot/temperature" \
    | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["temperature"])' \
    || fail "GET /teapot/temperature"
}
t1=$(temperature)
for _ in $(seq 1 200); do
  t2=$(temperature)
  [ "$t2" -gt "$t1" ] && break
  sleep 0.05
done
[ "$t2" -gt "$t1" ] || fail "temperature did not rise: $t1 then $t2"
pass "the temperature rises ($t1 -> $t2)"
for _ in $(seq 1 200); do
  grep -q 'boiling water is ready, would you care for a cup of tea?' "$T/daemon.log" && break
  sleep 0.05
done
grep -q '\[teapot\] I boil water, temperature: 1$' "$T/daemon.log" || fail "no 'I boil water, temperature: 1'"
grep -q '\[teapot\] I boil water, temperature: 99$' "$T/daemon.log" || fail "no 'temperature: 99'"
grep -q '\[teapot\] boiling water is ready' "$T/daemon.log" || fail "water never ready"
grep -q 'temperature: 100' "$T/daemon.log" && fail "temperature 100 logged as boiling"
expect_http GET /teapot/temperature 200 '{"temperature": 100}'
pass "the log says 'I boil water, temperature: N' up to 99, then that the water is ready"

# Its own metrics (ABI 2.3): a counter by route, a gauge, a histogram with its buckets.
curl -sf "$BASE/metrics" >"$T/metrics" || fail "GET /metrics"
for line in '# TYPE inferd_plugin_teapot_requests_total counter' \
            'inferd_plugin_teapot_requests_total{instance="teapot",route="/teapot/version"} 1' \
            '# HELP inferd_plugin_teapot_temperature_celsius the water'"'"'s temperature' \
            'inferd_plugin_teapot_temperature_celsius{instance="teapot"} 100' \
            '# TYPE inferd_plugin_teapot_boil_step_seconds histogram' \
            'inferd_plugin_teapot_boil_step_seconds_bucket{instance="teapot",le="1e-06"} *' \
            'inferd_plugin_teapot_boil_step_seconds_bucket{instance="teapot",le="0.01"} *'; do
  grep -q "^$(printf '%s' "$line" | sed 's/[][\.^$]/\\&/g; s/\*$/[0-9]*/')\$" "$T/metrics" ||
    fail "/metrics lacks: $line: $(grep teapot "$T/metrics")"
done
steps=$(sed -n 's/^inferd_plugin_teapot_boil_step_seconds_count{instance="teapot"} //p' "$T/metrics")
[ "${steps:-0}" -ge 100 ] || fail "boil steps counted: '$steps'"
routes=$(grep -c '^inferd_plugin_teapot_requests_total{' "$T/metrics")
[ "$routes" = 3 ] || fail "series of requests_total: $routes"
pass "the teapot's own metrics on /metrics: requests by route (3 series), the temperature (100), $steps boil steps in its histogram"

stop_daemon
lines=$(grep -c 'boiling water is ready' "$T/daemon.log")
sleep 0.1
[ "$(grep -c 'boiling water is ready' "$T/daemon.log")" = "$lines" ] || fail "teapot ran after stop"
grep -q '\[serve\] stopped' "$T/daemon.log" || fail "no clean stop line"
pass "the daemon stops cleanly, the teapot's work with it"

# ---- a plugin route: echo, a failing handler, a bad status; plugin_failed ---
export INFERD_PLUGIN_SETTINGS="{\"test_ev_record\": {\"path\": \"$T/failed.jsonl\"}}"
start_daemon --plugin-dir "$TEST_PLUGIN_DIR" --active test_bg,test_ev_record
code=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' -X PUT -H 'X-Test: hi there' \
       --data-binary 'some body' "$BASE/test_bg/echo?q=a%20b") || fail "curl PUT /test_bg/echo"
[ "$code" = 201 ] || fail "PUT /test_bg/echo: $code $(cat "$T/body")"
expect_header Content-Type application/json
/usr/bin/python3 - "$T/body" <<'PY' || fail "echo: $(cat "$T/body")"
import json, sys
got = json.load(open(sys.argv[1]))
want = {"method": "PUT", "path": "/test_bg/echo", "q": "a b", "header": "hi there", "body": "some body"}
assert got == want, got
PY
pass "a '*' route takes any method and sees method, path, query, header and body"

expect_http GET /test_bg/fail 500 '"code":"plugin_error"'
grep -q 'background test_bg (test_bg, plugin test_bg 1.0): GET /test_bg/fail failed: asked to fail' "$T/body" \
  || fail "plugin_error message: $(cat "$T/body")"
expect_http GET /test_bg/badstatus 500 'GET /test_bg/badstatus failed: it set status 42, which is not an HTTP status'
pass "a failing handler is a 500 plugin_error naming the plugin; so is a bad status"
for _ in $(seq 1 100); do
  [ -f "$T/failed.jsonl" ] && [ "$(wc -l < "$T/failed.jsonl")" -ge 2 ] && break
  sleep 0.05
done
/usr/bin/python3 - "$T/failed.jsonl" <<'PY' || fail "plugin_failed events: $(cat "$T/failed.jsonl")"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
assert len(events) == 2, events
assert all(e["plugin"] == "test_bg" and e["component"] == "test_bg" for e in events), events
assert "asked to fail" in events[0]["message"], events
assert "status 42" in events[1]["message"], events
PY
pass "each failure is published as a plugin_failed event {plugin, component, message}"
expect_http GET /v1/plugins/test_bg 200 '"errors":2'
pass "both failures count in the plugin's errors (/v1/plugins/test_bg)"
stop_daemon

# ---- what stops the start --------------------------------------------------
unset INFERD_PLUGIN_SETTINGS
# refuse ARGS... NEEDLE: inferd serve ARGS exits non-zero, its log has NEEDLE.
refuse() {
  local needle=${*: -1}
  set -- "${@:1:$#-1}"
  local rc=0
  timeout 20 "$TEST_INFERD" serve --listen 127.0.0.1:0 "$@" 2>"$T/refused.log" || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "serve $* should have refused to start (rc $rc)"
  grep -qF -- "$needle" "$T/refused.log" || fail "serve $*: log lacks '$needle': $(cat "$T/refused.log")"
}
refuse --plugin-dir "$TEST_PLUGIN_DIR" --active test_bg_reserved \
  "background test_bg_reserved (plugin test_bg_reserved 1.0): route GET /metrics: that path belongs to the built-in API"
pass "a route on the built-in API (/metrics) stops the start, naming plugin, component, method and path"

mkdir -p "$T/plugins"
cp "$TEST_BUILD_DIR/lib/inferd/plugins/teapot.so" "$TEST_PLUGIN_DIR/test_bg_clash.so" "$T/plugins/"
refuse --plugin-dir "$T/plugins" --active teapot,test_bg_clash \
  "background test_bg_clash (plugin test_bg_clash 1.0): route GET /teapot: path /teapot is already declared by background teapot (plugin teapot 1.0.0)"
pass "a path two plugins declare stops the start, naming both"

INFERD_PLUGIN_SETTINGS='{"test_bg": {"failStart": true}}' \
  refuse --plugin-dir "$TEST_PLUGIN_DIR" --active test_bg \
  "the daemon does not start: background test_bg (test_bg, plugin test_bg 1.0): start failed: failStart was set"
pass "a failing start stops the daemon's start-up, with the plugin's reason"

INFERD_PLUGIN_SETTINGS='{"teapot": {"intervalMs": 0}}' refuse --active teapot "intervalMs"
INFERD_PLUGIN_SETTINGS='{"teapot": 5}' refuse --active teapot \
  "plugin_settings.teapot (the properties of background teapot (plugin teapot 1.0.0)) must be a JSON object"
pass "bad plugin_settings for a component stop the start with the key's name"

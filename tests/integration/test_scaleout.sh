#!/usr/bin/env bash
# Scale-out for requests: two daemons that share nothing but their
# configuration behind HAProxy (Debian's), as packaging/haproxy/inferd.cfg
# has it, with /ready as the health check. Both receive requests; one
# stopped with SIGTERM goes out of the balancer by its /ready (503 during
# http.shutdown_grace_ms) and costs nothing; one killed with SIGKILL costs
# at most the requests it had in flight (3 clients: 3), as HAProxy sends
# again those that fit its buffer, and the other serves the rest.
. "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}" "${TEST_DATA:?}"
command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/setup.sh installs it)"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LB=$(free_port); P1=$(free_port); P2=$(free_port)

# start_node N PORT: a daemon with its own state folder; NODE<N>_PID.
start_node() {
  INFERD_STATE_DIR="$T/state$1" INFERD_HTTP_SHUTDOWN_GRACE_MS=2000 "$TEST_INFERD" serve --listen "127.0.0.1:$2" 2>"$T/node$1.log" &
  eval "NODE$1_PID=$!"
  for _ in $(seq 1 200); do grep -q 'listening on' "$T/node$1.log" && return 0; sleep 0.05; done
  fail "node $1 did not start: $(tail -3 "$T/node$1.log")"
}
requests_of() { # the estimations node PORT has answered (its /metrics)
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^inferd_http_requests_total\{route="\/v1\/estimators\/\*",method="POST",status="200"\}/ {print $2}'
}
HAPROXY_PID=""
scaleout_cleanup() {
  [ -n "$HAPROXY_PID" ] && kill "$HAPROXY_PID" 2>/dev/null
  for p in "${NODE1_PID:-}" "${NODE2_PID:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
  cleanup
}
trap scaleout_cleanup EXIT

start_node 1 "$P1"
start_node 2 "$P2"
sed -e "s/127.0.0.1:8080/127.0.0.1:$LB/; s/127.0.0.1:8081/127.0.0.1:$P1/; s/127.0.0.1:8082/127.0.0.1:$P2/" \
  "$TEST_SRCDIR/packaging/haproxy/inferd.cfg" >"$T/haproxy.cfg"
# HAProxy's log (a line per request, and its health checks) on its stderr:
# what a failure shows.
sed -i 's/^    maxconn 4096$/    maxconn 4096\n    log stderr format raw local0 info/; s/^    mode http$/    mode http\n    log global\n    option httplog/' "$T/haproxy.cfg"
haproxy -c -f "$T/haproxy.cfg" >"$T/haproxy.check" 2>&1 || fail "haproxy -c: $(cat "$T/haproxy.check")"
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
HAPROXY_PID=$!
URL="http://127.0.0.1:$LB/v1/estimators/peopleCountEstimator"
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LB/ready")" = 200 ] && break
  sleep 0.05
done
sleep 1.2 # both servers seen up by the health checks (rise 2, inter 500ms)

# Both take requests.
/usr/bin/python3 "$(dirname "$0")/scaleout_client.py" "$URL" "$TEST_DATA/dots_03_5.png" 2 "$T/r1.json" || fail "client"
a=$(requests_of "$P1"); b=$(requests_of "$P2")
[ "${a:-0}" -gt 10 ] && [ "${b:-0}" -gt 10 ] || fail "requests per daemon: $a and $b"
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert not r["bad"], r' "$T/r1.json" || fail "errors: $(cat "$T/r1.json")"
pass "two daemons behind HAProxy both answer ($a and $b estimations), none failed"

# SIGTERM one in the middle of the load: its /ready turns 503 while it
# still answers, HAProxy takes it out, then it stops. Nothing fails.
/usr/bin/python3 "$(dirname "$0")/scaleout_client.py" "$URL" "$TEST_DATA/dots_03_5.png" 3 "$T/r2.json" &
CLIENT=$!
sleep 1
kill -TERM "$NODE1_PID"
wait "$CLIENT" || fail "client"
wait "$NODE1_PID" || fail "node 1 did not stop cleanly"
NODE1_PID=""
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] > 30 and not r["bad"], r' "$T/r2.json" ||
  fail "stopping a daemon under load: $(cat "$T/r2.json") $(grep -v ' 200 ' "$T/haproxy.log" | head -5)"
grep -q 'inferd1 is DOWN, reason: Layer7 wrong status, code: 503' "$T/haproxy.log" ||
  fail "HAProxy did not see node 1's /ready go 503: $(grep 'is DOWN' "$T/haproxy.log")"
grep -q 'taking requests 2000 ms more' "$T/node1.log" || fail "node 1 had no grace: $(tail -5 "$T/node1.log")"
pass "a daemon stopped (SIGTERM) under load: $(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ok"], "answered,", len(r["bad"]), "failed")' "$T/r2.json"); HAProxy took it out on its /ready 503"

# SIGKILL the other after bringing the first back: at most the ones in flight fail.
start_node 1 "$P1"
sleep 1.5
/usr/bin/python3 "$(dirname "$0")/scaleout_client.py" "$URL" "$TEST_DATA/dots_03_5.png" 3 "$T/r3.json" &
CLIENT=$!
sleep 1
before=$(requests_of "$P1")
kill -KILL "$NODE2_PID"
NODE2_PID=""
wait "$CLIENT" || fail "client"
after=$(requests_of "$P1")
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] > 30 and len(r["bad"]) <= 3, r' "$T/r3.json" ||
  fail "killing a daemon under load: $(cat "$T/r3.json") $(grep -v '" 200 \| 200 [0-9]' "$T/haproxy.log" | head -8)"
[ "$after" -gt "$before" ] || fail "the survivor took nothing after the kill: $before then $after"
pass "a daemon killed (SIGKILL) under load: $(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ok"], "answered,", len(r["bad"]), "failed (its requests in flight)")' "$T/r3.json"); the other took the rest"

# A second SIGTERM ends the grace at once: a 60 s grace, stopped in less.
P3=$(free_port)
INFERD_STATE_DIR="$T/state3" INFERD_HTTP_SHUTDOWN_GRACE_MS=60000 "$TEST_INFERD" serve --listen "127.0.0.1:$P3" 2>"$T/node3.log" &
NODE3=$!
for _ in $(seq 1 200); do grep -q 'listening on' "$T/node3.log" && break; sleep 0.05; done
kill -TERM "$NODE3"
for _ in $(seq 1 100); do grep -q 'taking requests 60000 ms more' "$T/node3.log" && break; sleep 0.05; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/ready")" = 503 ] || fail "/ready during the grace is not 503"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/version")" = 200 ] || fail "requests during the grace are not taken"
kill -TERM "$NODE3"
for _ in $(seq 1 200); do kill -0 "$NODE3" 2>/dev/null || break; sleep 0.05; done
kill -0 "$NODE3" 2>/dev/null && { kill -KILL "$NODE3"; fail "a second SIGTERM did not end the grace: $(tail -3 "$T/node3.log")"; }
grep -q 'SIGTERM received again: stopping now' "$T/node3.log" || fail "node 3's log: $(tail -3 "$T/node3.log")"
pass "during http.shutdown_grace_ms /ready is 503 and requests are taken; a second SIGTERM stops at once"

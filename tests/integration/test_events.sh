#!/usr/bin/env bash
# Events: the monitoring example (the plugin seed's request monitoring event
# plugin) against a real local HTTP receiver (monitoring_receiver.py). Every
# finished request becomes a monitoring_event point that the plugin posts to
# the receiver; a receiver that hangs or is gone slows no request, and the
# failed batches are counted in /metrics; an unusable receiver at start-up
# stops the daemon with the plugin's reason.
. "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}"
RECEIVER_PID=""
cleanup_receiver() { [ -n "$RECEIVER_PID" ] && kill -KILL "$RECEIVER_PID" 2>/dev/null; cleanup; }
trap cleanup_receiver EXIT

# start_receiver [ARGS...]: sets RPORT; requests are logged to $T/received.jsonl.
start_receiver() {
  rm -f "$T/rport" "$T/received.jsonl"
  /usr/bin/python3 "$TEST_SRCDIR/tests/integration/monitoring_receiver.py" \
    --port-file "$T/rport" --log "$T/received.jsonl" "$@" 2>"$T/receiver.log" &
  RECEIVER_PID=$!
  for _ in $(seq 1 200); do
    [ -f "$T/rport" ] && break
    sleep 0.05
  done
  [ -f "$T/rport" ] || fail "the receiver did not start: $(cat "$T/receiver.log")"
  RPORT=$(cat "$T/rport")
}
stop_receiver() { kill -KILL "$RECEIVER_PID"; wait "$RECEIVER_PID" 2>/dev/null || true; RECEIVER_PID=""; }

# objects N: waits (up to 10 s) until the receiver has N point posts.
objects() {
  for _ in $(seq 1 200); do
    [ "$(grep -c '/objects"' "$T/received.jsonl" 2>/dev/null || true)" -ge "$1" ] && return 0
    sleep 0.05
  done
  fail "the receiver got $(grep -c '/objects"' "$T/received.jsonl" || true) points, want $1"
}

# metric NAME: the value of the monitoring subscriber's sample of NAME.
metric() {
  curl -sf "$BASE/metrics" | grep "^$1{subscriber=\"monitoring\",event=\"monitoring_event\"} " \
    | awk '{print $2}'
}

start_receiver
export INFERD_PLUGIN_SETTINGS="{\"monitoring\": {\"url\": \"http://127.0.0.1:$RPORT/1/buckets\", \"bucket\": \"inferd_test\", \"timeoutMs\": 1000}}"
export INFERD_EVENTS_FLUSH_MS=20
start_daemon --active monitoring
grep -q 'event monitoring (plugin monitoring 1.0.0) receives .monitoring_event. events' "$T/daemon.log" \
  || fail "no subscription line"
/usr/bin/python3 - "$T/received.jsonl" <<'PY' || fail "bucket creation: $(cat "$T/received.jsonl")"
import json, sys
first = json.loads(open(sys.argv[1]).readline())
assert first["path"] == "/1/buckets" and first["query"] == {"bucket": "inferd_test"}, first
PY
pass "init created the bucket: POST /1/buckets?bucket=inferd_test"

expect_http GET /health 200
expect_http GET /health 200
expect_http GET /version 200
expect_http POST /version 405
expect_http GET /no/such/route 404
objects 5
/usr/bin/python3 - "$T/received.jsonl" "$(date +%s)" <<'PY' || fail "points: $(cat "$T/received.jsonl")"
import json, sys
now = float(sys.argv[2])
posts = [json.loads(l) for l in open(sys.argv[1])][1:]
assert all(p["path"] == "/1/buckets/inferd_test/objects" for p in posts), posts
assert all(p["content_type"] == "application/json" for p in posts), posts
points = [p["body"] for p in posts]
for p in points:
    assert p["series"] == "request", p
    assert set(p["fields"]) >= {"decode_ms", "queue_ms", "inference_ms", "total_ms"}, p
    assert all(isinstance(v, (int, float)) and v >= 0 for v in p["fields"].values()), p
    assert p["fields"]["total_ms"] < 10000, p
    assert abs(p["time"] - now) < 60, (p["time"], now)
    assert {"route", "method", "status"} <= set(p["tags"]), p
seen = sorted((p["tags"]["method"], p["tags"].get("path", p["tags"]["route"]), str(p["tags"]["status"]))
              for p in points)
want = sorted([("GET", "/health", "200"), ("GET", "/health", "200"), ("GET", "/version", "200"),
               ("POST", "/version", "405"), ("GET", "/no/such/route", "404")])
assert seen == want, seen
PY
pass "every request arrived as a point {series: request, tags, fields, time}"

# The receiver hangs: batches now wait for the plugin's 1 s timeout, on the
# bus's thread. Requests do not: each of 20 answers well inside that timeout.
kill -USR1 "$RECEIVER_PID"
for i in $(seq 1 20); do
  t=$(curl -s -o /dev/null -w '%{time_total}' "$BASE/health") || fail "GET /health with a hung receiver"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$t') < 0.5 else 1)" \
    || fail "GET /health took $t s while the monitoring service hung (request $i)"
done
pass "a hung monitoring service delays no request (20 requests, each < 0.5 s with a 1 s plugin timeout)"

stop_receiver
for _ in $(seq 1 200); do
  f=$(metric inferd_event_failures_total)
  [ -n "$f" ] && [ "$f" -ge 2 ] && break
  curl -s -o /dev/null "$BASE/health"
  sleep 0.05
done
[ -n "$f" ] && [ "$f" -ge 2 ] || fail "inferd_event_failures_total is '$f', want >= 2: $(curl -s "$BASE/metrics" | grep inferd_event)"
grep -q "\[events\] 'monitoring_event' events to monitoring: a batch of [0-9]* failed" "$T/daemon.log" \
  || fail "no failure line in the log"
grep -q "point 1 of [0-9]*: POST http://127.0.0.1:$RPORT/1/buckets/inferd_test/objects: " "$T/daemon.log" \
  || fail "the failure line does not say which post failed"
published=$(metric inferd_event_published_total)
delivered=$(metric inferd_event_delivered_total)
dropped=$(metric inferd_event_dropped_total)
queued=$(metric inferd_event_queue_depth)
[ "$published" -ge 25 ] || fail "published $published, want >= 25"
pass "with the receiver gone, failed batches are counted ($f) and logged; published $published, delivered $delivered, dropped $dropped"
expect_http GET /health 200
stop_daemon
pass "the daemon still answers, and stops cleanly"

# ---- init refuses a monitoring service that cannot take a bucket -------------
start_receiver --bucket-status 500
export INFERD_PLUGIN_SETTINGS="{\"monitoring\": {\"url\": \"http://127.0.0.1:$RPORT/1/buckets\"}}"
rc=0
timeout 20 "$TEST_INFERD" serve --listen 127.0.0.1:0 --active monitoring 2>"$T/refused.log" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "serve should have refused to start (rc $rc)"
grep -qF "event monitoring (monitoring, plugin monitoring 1.0.0): init failed: failed to create bucket plugin_test_bucket: POST http://127.0.0.1:$RPORT/1/buckets?bucket=plugin_test_bucket answered 500, response: {\"error\": \"bucket service is broken\"}" "$T/refused.log" \
  || fail "refusal message: $(cat "$T/refused.log")"
pass "a bucket the service refuses (500) stops the start, with the plugin, the URL and the response"
stop_receiver

rc=0
timeout 20 "$TEST_INFERD" serve --listen 127.0.0.1:0 --active monitoring 2>"$T/refused.log" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "serve should have refused to start (rc $rc)"
grep -q "plugin monitoring 1.0.0): init failed: failed to create bucket plugin_test_bucket: POST http://127.0.0.1:$RPORT/1/buckets?bucket=plugin_test_bucket: .*[Cc]onnect" "$T/refused.log" \
  || fail "refusal message: $(cat "$T/refused.log")"
pass "no monitoring service at all stops the start, saying the connection failed"

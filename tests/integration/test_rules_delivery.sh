#!/usr/bin/env bash
# An HTTP action loses nothing while its receiver is down for a while: it
# tries again (retryInterval, doubling, retryCount times) and delivers in
# order once the receiver is back; with retryCount 0 the failure is counted
# at once. A 4xx is the message's fault and is not retried.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rules_lib.sh"
PORT_R=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RECV_PID=""
trap '[ -n "$RECV_PID" ] && kill -KILL $RECV_PID 2>/dev/null; cleanup' EXIT
receiver() { # STATUS: answers every POST with STATUS, appends 2xx bodies to $T/got.jsonl
  /usr/bin/python3 - "$PORT_R" "$T/got.jsonl" "$1" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, out, status = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if status < 300:
            with open(out, "ab") as f:
                f.write(body + b"\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
  RECV_PID=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT_R") 2>/dev/null && return 0; sleep 0.05; done
  fail "the receiver did not start"
}
start_daemon
expect POST /streams '{"sql": "CREATE STREAM s (n BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/s\")"}' 201
expect POST /rules "{\"id\": \"r\", \"sql\": \"SELECT n FROM s\", \"actions\": [{\"rest\": {\"url\": \"http://127.0.0.1:$PORT_R/in\", \"sendSingle\": true, \"retryInterval\": 200, \"retryCount\": 10}}]}" 201
expect POST /rules "{\"id\": \"r0\", \"sql\": \"SELECT n FROM s\", \"actions\": [{\"rest\": {\"url\": \"http://127.0.0.1:$PORT_R/in0\", \"sendSingle\": true, \"retryCount\": 0}}]}" 201
wait_field r status running
wait_field r0 status running
for n in 1 2 3; do expect POST /push/s "{\"n\": $n}" 202; done
sleep 1   # the receiver is down: the tries fail
wait_field r0 sink_rest_0_0_exceptions_total 3
receiver 200
for _ in $(seq 1 100); do [ "$(wc -l <"$T/got.jsonl" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.1; done
printf '{"n":1}\n{"n":2}\n{"n":3}\n' | diff -u - "$T/got.jsonl" >"$T/diff" ||
  fail "what reached the receiver once it was up: $(cat "$T/diff")"
[ "$(status_field r sink_rest_0_0_exceptions_total)" = 0 ] || fail "retried sends counted as exceptions: $(cat "$T/body")"
[ "$(status_field r sink_rest_0_0_records_out_total)" = 3 ] || fail "records out: $(cat "$T/body")"
pass "receiver down then up: the 3 messages arrive in order, none lost (retryCount 0 counts 3 failures)"

# A 4xx is not retried: one try, one exception.
kill -KILL "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true
: >"$T/got.jsonl"
receiver 400
expect DELETE /rules/r0 "" 200
expect POST /push/s '{"n": 4}' 202
wait_field r sink_rest_0_0_exceptions_total 1
sleep 0.5
[ "$(status_field r sink_rest_0_0_exceptions_total)" = 1 ] || fail "a 400 was retried: $(cat "$T/body")"
stop_daemon
pass "a 400 from the receiver is the message's: not retried, counted once"

# ---- enableCache: an outage and a restart lose nothing within maxDiskCache ------------------
kill -KILL "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true
RECV_PID=""
: >"$T/got.jsonl"
start_daemon
expect POST /rules "{\"id\": \"bad\", \"sql\": \"SELECT n FROM s\", \"actions\": [{\"rest\": {\"url\": \"http://127.0.0.1:$PORT_R/c\", \"enableCache\": \"yes\"}}]}" 400 "rule bad: actions[0] (rest): property 'enableCache': not a bool (got \"yes\"; allowed: bool (true or false))"
expect POST /rules "{\"id\": \"bad\", \"sql\": \"SELECT n FROM s\", \"actions\": [{\"log\": {\"maxDiskCache\": 0}}]}" 400 "rule bad: actions[0] (log): property 'maxDiskCache': out of range (got 0; allowed: uint in [1, 100000000])"
expect POST /streams '{"sql": "CREATE STREAM c (n BIGINT) WITH (TYPE=\"httppush\", DATASOURCE=\"/c\")"}' 201
expect POST /rules "{\"id\": \"rc\", \"sql\": \"SELECT n FROM c\", \"actions\": [{\"rest\": {\"url\": \"http://127.0.0.1:$PORT_R/c\", \"sendSingle\": true, \"retryCount\": 0, \"enableCache\": true, \"maxDiskCache\": 6}}]}" 201
wait_field rc status running
for n in 1 2 3; do expect POST /push/c "{\"n\": $n}" 202; done
wait_field rc sink_rest_0_0_cache_length 3
[ -s "$T/state/cache/rc.0.jsonl" ] || fail "no cache file: $(ls -l "$T/state/cache")"
stop_daemon
start_daemon
wait_field rc status running
wait_field rc sink_rest_0_0_cache_length 3
for n in 4 5 6 7 8; do expect POST /push/c "{\"n\": $n}" 202; done
wait_field rc sink_rest_0_0_dropped_total 2
[ "$(status_field rc sink_rest_0_0_cache_length)" = 6 ] || fail "cache length: $(cat "$T/body")"
receiver 200
for _ in $(seq 1 100); do [ "$(wc -l <"$T/got.jsonl" 2>/dev/null || echo 0)" -ge 6 ] && break; sleep 0.1; done
printf '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n{"n":5}\n{"n":6}\n' | diff -u - "$T/got.jsonl" >"$T/diff" ||
  fail "what reached the receiver from the cache: $(cat "$T/diff")"
wait_field rc sink_rest_0_0_cache_length 0
[ "$(status_field rc sink_rest_0_0_records_out_total)" = 6 ] || fail "records out: $(cat "$T/body")"
[ "$(status_field rc sink_rest_0_0_exceptions_total)" = 0 ] || fail "exceptions: $(cat "$T/body")"
expect POST /push/c '{"n": 9}' 202
for _ in $(seq 1 100); do [ "$(wc -l <"$T/got.jsonl")" -ge 7 ] && break; sleep 0.1; done
[ "$(tail -1 "$T/got.jsonl")" = '{"n":9}' ] || fail "after the cache drained: $(cat "$T/got.jsonl")"
pass "enableCache: 3 results cached while the receiver was down, kept across a daemon restart, 2 more cached and 2 past maxDiskCache 6 dropped and counted; all 6 delivered in order once it was up, then straight through"

expect DELETE /rules/rc "" 200
[ -e "$T/state/cache/rc.0.jsonl" ] && fail "the deleted rule's cache is still there"
stop_daemon
pass "deleting the rule deletes its cache"

# ---- rules.buffer_max_bytes: an action's buffer is bounded in bytes too ----------------------
kill -KILL "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true
RECV_PID=""
export INFERD_RULES_BUFFER_MAX_BYTES=8192
start_daemon
expect POST /streams '{"sql": "CREATE STREAM b () WITH (TYPE=\"httppush\", DATASOURCE=\"/b\")"}' 201
expect POST /rules "{\"id\": \"rb\", \"sql\": \"SELECT n, pad FROM b\", \"actions\": [{\"rest\": {\"url\": \"http://127.0.0.1:$PORT_R/b\", \"sendSingle\": true, \"retryCount\": 100, \"retryInterval\": 1000}}]}" 201
wait_field rb status running
PAD=$(printf 'x%.0s' $(seq 1 2000))
for n in $(seq 1 20); do expect POST /push/b "{\"n\": $n, \"pad\": \"$PAD\"}" 202; done
wait_field rb sink_rest_0_0_records_in_total 1
for _ in $(seq 1 50); do
  api GET /rules/rb/status
  held=$(status_field rb sink_rest_0_0_buffer_length)
  dropped=$(status_field rb sink_rest_0_0_dropped_total)
  [ $((held + dropped + 1)) -eq 20 ] && break
  sleep 0.1
done
[ "$held" -ge 1 ] && [ "$held" -le 4 ] && [ $((held + dropped + 1)) -eq 20 ] ||
  fail "20 results of 2 KB behind one stuck send, 8 KiB of buffer: $held held, $dropped dropped"
expect DELETE /rules/rb "" 200
stop_daemon
pass "rules.buffer_max_bytes 8192: 20 results of 2 KB behind a stuck send: 1 in flight, $held held, $dropped dropped and counted (bufferLength alone would hold all 19)"

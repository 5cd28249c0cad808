#!/usr/bin/env bash
# A C plugin isolated in a worker process (plugins.isolated): its function
# runs in another process; when it segfaults or aborts, the call fails with
# the reason, the daemon stays up, /ready says the plugin is restarting, and
# the worker comes back; a call that never returns times out and the worker
# is replaced; bytes cross in shared memory; what cannot run isolated is
# refused at start with why. The plugin: tests/plugins/crasher.c.
. "$(dirname "$0")/lib.sh"
: "${TEST_PLUGIN_DIR:?}" "${TEST_BUILD_DIR:?}"
mkdir -p "$T/plugins"
cp "$TEST_PLUGIN_DIR"/crasher.so "$TEST_PLUGIN_DIR"/test_good.so "$TEST_PLUGIN_DIR"/test_bad_magic.so \
   "$TEST_BUILD_DIR/lib/inferd/plugins/teapot.so" "$T/plugins/"
export INFERD_PLUGINS_DIR="$T/plugins" INFERD_STATE_DIR="$T/state"
export INFERD_PLUGIN_SETTINGS='{"teapot": {"intervalMs": 150}}'
export INFERD_PORTABLE_HEARTBEAT_MS=200 INFERD_PORTABLE_HEARTBEAT_TIMEOUT_MS=1500
export INFERD_PORTABLE_CALL_TIMEOUT_MS=1000
# The worker is this build's inferd: under AddressSanitizer it reserves
# terabytes of shadow memory, which no RLIMIT_DATA allows (the limit itself
# is tested with Python plugins in test_portable_limits.sh).
export INFERD_PORTABLE_MEMORY_LIMIT_MB=0

# call ARG: POST /v1/functions/crash/exec {"args": [ARG]} -> $T/body, prints the status
call() {
  curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"args\": [\"$1\"]}" "$BASE/v1/functions/crash/exec"
}
worker_pid() {
  curl -s "$BASE/plugins/portables/crasher" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'
}
wait_ready() {
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ready")" = 200 ] && return 0
    sleep 0.05
  done
  fail "/ready did not come back: $(curl -s "$BASE/ready")"
}

INFERD_PLUGINS_ISOLATED=crasher,teapot start_daemon
grep -q 'plugin crasher 1.0.0 runs isolated in a worker process' "$T/daemon.log" || fail "no isolation line"
[ "$(call hi)" = 200 ] || fail "crash(hi): $(cat "$T/body")"
pid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["pid"])' "$T/body")
[ "$pid" != "$DAEMON_PID" ] && [ "$pid" = "$(worker_pid)" ] || fail "crash(hi) ran in pid $pid (daemon $DAEMON_PID, worker $(worker_pid))"
expect_json GET /plugins/portables/crasher 200 'j["isolated"] and j["status"] == "running" and j["language"] == "native"'
pass "an isolated plugin's function runs in its worker (pid $pid), not in the daemon ($DAEMON_PID)"

# A background component in its worker: its routes, its timer, its props.
# (Under make test's parallel sanitizer run its worker was once killed by a
# SIGKILL from outside right after its start: the first answer is awaited,
# its restart is the supervisor's.)
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/teapot")" = 418 ] && break
  sleep 0.05
done
expect_http GET /teapot 418 "I am teapot"
expect_http GET /teapot/version 200 "T800"
t1=$(curl -s "$BASE/teapot/temperature" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["temperature"])')
sleep 0.5
t2=$(curl -s "$BASE/teapot/temperature" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["temperature"])')
[ "$t2" -gt "$t1" ] || fail "the isolated teapot's water did not warm: $t1 then $t2"
tpid=$(curl -s "$BASE/plugins/portables/teapot" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
kill -KILL "$tpid"
for _ in $(seq 1 100); do # until the daemon has a new worker running
  now=$(curl -s "$BASE/plugins/portables/teapot" | /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["pid"] if j["status"] == "running" else "")')
  [ -n "$now" ] && [ "$now" != "$tpid" ] && break
  sleep 0.05
done
[ -n "$now" ] && [ "$now" != "$tpid" ] || fail "the teapot's worker did not come back"
expect_http GET /teapot 418 "I am teapot"
pass "the teapot isolated: its routes answer through its worker, its timer warms the water ($t1 -> $t2), killed it comes back and answers"

segv_says="signal 11 (Segmentation fault)"
# In the sanitizers' build (make test's second run) their handler reports
# the null store and the worker exits 1 instead.
case "$TEST_INFERD" in *build-asan*) segv_says="exited with status 1" ;; esac
for how in "segv|$segv_says" "abort|signal 6 (Aborted)"; do
  before=$(worker_pid)
  [ "$(call "${how%%|*}")" = 500 ] || fail "crash(${how%%|*}): $(cat "$T/body")"
  grep -qF "${how#*|}" "$T/body" || fail "crash(${how%%|*}) says: $(cat "$T/body")"
  kill -0 "$DAEMON_PID" || fail "the daemon died with its plugin"
  expect_http GET /health 200
  wait_ready
  [ "$(call again)" = 200 ] || fail "after crash(${how%%|*}): $(cat "$T/body")"
  [ "$(worker_pid)" != "$before" ] || fail "the worker was not replaced"
done
expect_json GET /plugins/portables/crasher 200 'j["restarts"] == 2'
grep -q 'portable plugin crasher is running again (restart 2)' "$T/daemon.log" || fail "no restart line"
pass "a segfault and an abort in the plugin: the call answers 500 with the signal, the daemon stays up, the worker restarts and serves (2 restarts)"

# /ready while it restarts: kill the worker the hard way and look at once.
kill -KILL "$(worker_pid)"
for _ in $(seq 1 50); do
  code=$(curl -s -o "$T/ready" -w '%{http_code}' "$BASE/ready")
  [ "$code" = 503 ] && break
  sleep 0.01
done
[ "$code" = 503 ] && grep -q 'portable plugin crasher is' "$T/ready" || fail "/ready while the worker is down: $code $(cat "$T/ready")"
wait_ready
pass "/ready is 503 naming the plugin while its worker is down, 200 once it is back"

# A call that never returns: timed out; the worker, which cannot answer its
# heartbeat while it runs, is replaced.
before=$(worker_pid)
[ "$(call spin)" = 504 ] || fail "crash(spin): $(cat "$T/body")"
for _ in $(seq 1 100); do
  now=$(worker_pid)
  [ -n "$now" ] && [ "$now" != "$before" ] && [ "$now" != None ] && break
  sleep 0.05
done
wait_ready
[ "$(call after)" = 200 ] || fail "after the timeout: $(cat "$T/body")"
pass "a call that never returns: 504 after portable.call_timeout_ms; the worker misses its heartbeat and is replaced"

# Bytes in and out: 200 KB go through shared memory.
head -c 200000 /dev/urandom >"$T/in.bin"
curl -s -o "$T/out.json" --data-binary @"$T/in.bin" "$BASE/v1/functions/bytes/exec" || fail "bytes"
/usr/bin/python3 - "$T/in.bin" "$T/out.json" <<'PY' || fail "bytes came back wrong"
import base64, json, sys
sent = open(sys.argv[1], "rb").read()
got = base64.b64decode(json.load(open(sys.argv[2]))["result"])
assert got == sent[::-1], (len(got), len(sent))
PY
[ "$(call fail)" = 500 ] && grep -q 'asked to fail' "$T/body" || fail "crash(fail): $(cat "$T/body")"
expect_json DELETE /plugins/portables/crasher 400 '"is a C plugin running isolated in a worker (plugins.isolated" in j["error"]["message"]'
expect_json POST /v1/plugins/crasher/deactivate 400 '"not a package" in j["error"]["message"]'
pass "200 KB of bytes reversed through the worker; the plugin's own error; DELETE and deactivate refused (it is configured, not installed)"
stop_daemon

# What cannot run isolated is refused at start, with why.
refuse() { # refuse NAME NEEDLE
  rc=0
  INFERD_PLUGINS_ISOLATED=$1 timeout 20 "$TEST_INFERD" serve --listen 127.0.0.1:0 >"$T/out" 2>&1 || rc=$?
  [ "$rc" = 1 ] && grep -qF -- "$2" "$T/out" || fail "plugins.isolated=$1: exit $rc: $(tail -3 "$T/out")"
}
refuse test_good "component test_element is an element, which cannot run isolated (functions, sinks, event and background components can)"
refuse nope "plugins.isolated: plugin 'nope' is not in the plugin folder $T/plugins"
refuse test_bad_magic "plugins.isolated: test_bad_magic: "
pass "a plugin with an element, a name not in plugins.dir, a file that is no plugin: the daemon does not start, saying why"

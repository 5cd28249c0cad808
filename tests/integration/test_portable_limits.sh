#!/usr/bin/env bash
# What the daemon bounds in a portable plugin's process, with the test
# package "limits" (tests/integration/portable_packages.py): its memory
# (portable.memory_limit_mb: a call allocating past it gets its error and
# the plugin restarts with its memory back), its CPU time
# (portable.cpu_limit_s: killed by SIGXCPU and restarted), and a worker
# pool exhausted by stuck calls (the SDK reports itself unhealthy on the
# next heartbeat and the supervisor restarts it); per-package limits in
# portable.limits, and bad entries refused at start.
source "$(dirname "$0")/lib.sh"

PKG="$T/packages"
mkdir -p "$PKG"
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/portable_packages.py" "$TEST_SRCDIR" "$PKG" \
  || fail "portable_packages.py"
export INFERD_STATE_DIR="$T/state"
export INFERD_PORTABLE_START_TIMEOUT_MS=10000
export INFERD_PORTABLE_CALL_TIMEOUT_MS=1500
export INFERD_PORTABLE_HEARTBEAT_MS=200
export INFERD_PORTABLE_HEARTBEAT_TIMEOUT_MS=3000

# ---- bad portable.limits: the daemon does not start -------------------------------------
bad_limits() {
  INFERD_PORTABLE_LIMITS=$1 "$TEST_INFERD" serve --listen 127.0.0.1:0 >/dev/null 2>"$T/bad.err" &
  local pid=$! rc=0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "started with portable.limits $1"; }
  wait "$pid" || rc=$?
  [ "$rc" -ne 0 ] || fail "exit 0 with portable.limits $1"
  grep -qF -- "$2" "$T/bad.err" || fail "portable.limits $1: $(cat "$T/bad.err")"
}
bad_limits '{"limits": {"memory_limit_mb": "lots"}}' "property 'portable.limits.limits.memory_limit_mb': not an integer"
bad_limits '{"limits": {"memory": 100}}' "unknown property 'portable.limits.limits.memory' (did you mean 'memory_limit_mb'?"
bad_limits '{"limits": {"cpu_limit_s": -1}}' 'cpu_limit_s'
bad_limits '{"limits": 5}' "property 'portable.limits.limits': not a JSON object"
pass "bad portable.limits entries (a string, an unknown key, a negative, not an object) stop the start, naming the entry"

# ---- the limits, per package -------------------------------------------------------------
export INFERD_PORTABLE_LIMITS='{"limits": {"memory_limit_mb": 300, "cpu_limit_s": 2}}'
start_daemon
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
       -d "{\"name\": \"limits\", \"file\": \"file://$PKG/limits.zip\"}" "$BASE/plugins/portables")
[ "$code" = 201 ] || fail "install limits: $code $(cat "$T/body")"
field() { curl -s "$BASE/plugins/portables/limits" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', ''))"; }
call() { # call FUNCTION ARG: the status in $T/call.code, the body in $T/call.body
  curl -s -o "$T/call.body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"args\": [$2]}" "$BASE/v1/functions/$1/exec" >"$T/call.code"
}
# wait_restarts N: until the plugin runs again after its Nth restart.
wait_restarts() {
  for _ in $(seq 1 400); do
    [ "$(field restarts)" = "$1" ] && [ "$(field status)" = running ] && return 0
    sleep 0.05
  done
  fail "no restart $1: $(curl -s "$BASE/plugins/portables/limits")"
}
pid=$(field pid)
grep -E '^Max data size +314572800 +314572800 ' "/proc/$pid/limits" >/dev/null \
  || fail "the plugin's data limit: $(grep -E 'data|cpu' "/proc/$pid/limits")"
grep -E '^Max cpu time +2 +4 ' "/proc/$pid/limits" >/dev/null \
  || fail "the plugin's CPU limit: $(grep -E 'data|cpu' "/proc/$pid/limits")"
pass "portable.limits: the plugin runs with RLIMIT_DATA 300 MiB and RLIMIT_CPU 2 s (hard 4)"

# ---- memory: an allocation past the limit fails, the plugin comes back --------------------
call hog 50
[ "$(cat "$T/call.code")" = 200 ] && grep -q '"result":50' "$T/call.body" || fail "hog 50: $(cat "$T/call.code") $(cat "$T/call.body")"
call hog 1000
[ "$(cat "$T/call.code")" = 500 ] && grep -q 'MemoryError' "$T/call.body" \
  || fail "hog 1000: $(cat "$T/call.code") $(cat "$T/call.body")"
wait_restarts 1
field lastError | grep -q 'exited with status 3' || fail "lastError after the hog: $(field lastError)"
grep -q 'out of memory in exec' "$T/daemon.log" || fail "the daemon's log lacks the plugin's reason"
[ "$(field pid)" != "$pid" ] || fail "the same process after running out of memory"
call hog 50
[ "$(cat "$T/call.code")" = 200 ] || fail "hog 50 after the restart: $(cat "$T/call.body")"
pass "a call allocating 1000 MiB under a 300 MiB limit: 500 MemoryError, the plugin exits 3 and restarts, the next call works"

# ---- CPU time: killed by SIGXCPU, restarted ------------------------------------------------
call spin 100
[ "$(cat "$T/call.code")" = 200 ] || fail "spin 100: $(cat "$T/call.body")"
call spin 3000 # past the call timeout (504) or killed first (500)
[ "$(cat "$T/call.code")" = 504 ] || [ "$(cat "$T/call.code")" = 500 ] || fail "spin 3000: $(cat "$T/call.code") $(cat "$T/call.body")"
wait_restarts 2
field lastError | grep -q 'signal 24: it used its CPU time limit (2 s, portable.cpu_limit_s)' \
  || fail "lastError after the spin: $(field lastError)"
pass "a plugin past its 2 s of CPU: killed by SIGXCPU (the reason in lastError), restarted"

# ---- a pool exhausted by stuck calls: unhealthy, restarted ---------------------------------
call hang 60000 &
H1=$!
call hang 60000 &
H2=$!
wait "$H1" "$H2"
[ "$(cat "$T/call.code")" = 504 ] && grep -q 'timed out' "$T/call.body" \
  || fail "a stuck call: $(cat "$T/call.code") $(cat "$T/call.body")"
wait_restarts 3
field lastError | grep -q 'reported itself unhealthy: all 2 call workers have been running one call each' \
  || fail "lastError after the stuck calls: $(field lastError)"
call pid ""
[ "$(cat "$T/call.code")" = 200 ] || fail "pid after the restart: $(cat "$T/call.body")"
pass "two calls stuck on a 2-worker pool: the plugin says it is unhealthy at the next heartbeat, is restarted, and serves again"

curl -sf "$BASE/metrics" >"$T/metrics"
grep -q '^inferd_portable_restarts_total{plugin="limits"} 3' "$T/metrics" || fail "metrics: $(grep portable "$T/metrics")"
stop_daemon
pass "restarts counted in /metrics (3); the daemon stops cleanly"

#!/usr/bin/env bash
# Streams and rules under concurrent create / PUT / DELETE / stop / restart /
# push for a bounded time (rules_stress.py): every answer is one the API
# documents, the daemon stays up, and its log holds no sanitizer report (in
# the ASan build a use-after-free or double free aborts the daemon and is
# printed there). Regression for PUT /streams/S racing DELETE /streams/S
# while a rule on S was stopping (a double free in rules_stream_update).
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
start_daemon
/usr/bin/python3 "$here/rules_stress.py" "$BASE" "${STRESS_SECONDS:-6}" 8 ||
  fail "the stress run failed"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon died under the stress run"
expect_http GET /health 200
! grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/daemon.log" ||
  fail "a sanitizer report in the daemon's log"
stop_daemon
! grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/daemon.log" ||
  fail "a sanitizer report in the daemon's log after stopping"
pass "streams and rules API raced by 8 clients: documented answers only, no crash, no sanitizer report"

#!/usr/bin/env bash
# Pipelines as a service, end to end over HTTP against the real daemon:
# create, frames (synchronous, asynchronous, past their timeout), results as
# Server-Sent Events, PUT while frames flow (each answered by the old or
# the new pipeline), stop/start, a restart (the pipeline comes back
# running), DELETE; what each bad request gets (pipeline_service.py).
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}"
here=$(cd "$(dirname "$0")" && pwd)
client() { /usr/bin/python3 "$here/pipeline_service.py" "$BASE" "$TEST_DATA" "$@" || fail "pipeline_service.py $1"; }

start_daemon
client first "$TEST_SRCDIR/examples/pipelines/count_dots.json"
stop_daemon
pass "stopped cleanly with a pipeline running"
start_daemon
grep -q "pipeline count_dots started again" "$T/daemon.log" || fail "no restart line in the log"
client after_restart
stop_daemon
